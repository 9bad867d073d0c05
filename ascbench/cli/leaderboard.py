"""``ascbench leaderboard``: tables of stored results; --publish and --check for published boards."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ascbench.errors import AscbenchError


def command(args) -> int:
    from ascbench.leaderboard import aggregate, render
    from ascbench.results import load_rows, runs_dir

    if args.check:
        from ascbench.publish import check

        problems = check(Path(args.check))
        if problems:
            print("\n\n".join(problems))
            raise AscbenchError(f"the board in {args.check} does not check out: a record disagrees with itself or is "
                                "damaged, or a table differs from what its records regenerate (listed above)")
        print(f"{args.check}: every published table matches its results")
        return 0
    if args.output:
        from ascbench.fileio import check_output

        check_output(args.output, force=args.force)
    if args.publish:
        from ascbench.fileio import check_output_folder

        check_output_folder(args.publish, flag="--publish", allow=("board",))
        # Records go into DIR/results: a link there (to the runs folder, into a run) is followed by every write.
        check_output_folder(Path(args.publish) / "results", flag="--publish", allow=("board",))
    root = runs_dir(args.runs_dir)
    # Filtered first: a damaged run the filters leave out does not stop a publish of the others.
    # A protocol by any of its names (official is session-holdout), matching rows stored under either.
    from ascbench.config import current_protocol_name

    wanted = current_protocol_name(args.protocol) if args.protocol else None
    rows = [r for r in load_rows(root) if (not wanted or current_protocol_name(str(r.get("protocol"))) == wanted)
            and (not args.model or r.get("model") == args.model)
            and (args.include_quick or not r.get("quick"))]  # --quick runs check that things run; they rank nothing
    rows, problems = _with_configs(root, rows)
    if problems and args.publish:
        from ascbench.publish import refused

        raise refused(problems, f"the runs in {root}")
    for problem in problems:
        print(f"warning: {problem}; left off the leaderboard", file=sys.stderr)
    if not rows:
        raise AscbenchError(f"no results in {root / 'results.jsonl'} that its run records back; run `ascbench run` first")
    if args.publish:
        from ascbench.publish import import_runs, publish

        target = Path(args.publish)
        _check_board_folder(target, args.force)
        before = set((target / "results").glob("*.json"))
        count = import_runs(root, target, rows, allow_nonstandard=args.allow_nonstandard)
        try:
            written = publish(target)
        except BaseException:
            # The tables could not be made: take back the records just added, so the folder is the board it was.
            for path in set((target / "results").glob("*.json")) - before:
                path.unlink(missing_ok=True)
            raise
        print(f"published {count} run(s) to {target}: {', '.join(written)}")
        return 0
    table = aggregate(rows)
    if args.sort:
        from ascbench.leaderboard import sort_table

        table = sort_table(table, args.sort)
    text = _fitted(table, args.wide) if args.format == "table" and not args.output else render(table, args.format)
    if args.output:
        from ascbench.fileio import write_output

        write_output(args.output, text if text.endswith("\n") else text + "\n", force=args.force)
        print(f"wrote {args.output}")
    else:
        print(text)
    return 0


def _check_board_folder(target: Path, force: bool) -> None:
    """A folder that is not yet a board but holds files a board would write (a site's own index.html) is not
    written over unless --force: the publisher owns a board, not any folder it is pointed at."""
    from ascbench.fileio import BOARD_TABLES

    if (target / "results").is_dir():
        return  # a board already: the publisher regenerates its tables
    clash = [name for name in BOARD_TABLES if os.path.lexists(target / name)]
    if clash and not force:
        raise AscbenchError(f"--publish {target} is not a published board but holds {', '.join(clash)}, which "
                            "publishing would replace; pass --force to replace them, or publish to another folder")


def _fitted(table, wide: bool) -> str:
    """The leaderboard as a terminal table that fits the terminal (``--wide``: every cell whole), through the one
    formatting layer. ``leaderboard.render`` lays the columns out; its plain table is read back column by column
    (the dashes under the headers give each column's extent), so what is shown stays the leaderboard's own."""
    from ascbench.formatting import columns_of_plain_table, render_table
    from ascbench.leaderboard import render

    headers, rows = columns_of_plain_table(render(table, "table"))
    # Numbered, so that a row split over blocks of columns (a narrow terminal) is found in each block.
    return render_table([[k + 1, *row] for k, row in enumerate(rows)], ["#", *headers], wide=wide)


def _with_configs(root: Path, rows: list[dict]) -> tuple[list[dict], list[str]]:
    """Rows with their experiment's setting (leaderboard rows are exact experiments), from each run's config, and
    their per-clip predictions (for intervals and paired tests) and code/data provenance, from its metrics.

    A row is ranked only when its run's record backs it: a missing or damaged config.json or metrics.json, or
    a row whose numbers disagree with its metrics (or they with the per-clip predictions), is left out and
    returned as a problem naming the file and metric (ascbench.records)."""
    from ascbench.leaderboard import setting_of
    from ascbench.records import provenance_key, read_json, verify
    from ascbench.stats import RunPredictions

    kept, problems = [], []
    for row in rows:
        run_dir = root / row["run_id"]
        config, bad_config = read_json(run_dir / "config.json", f"the config of run {row['run_id']}")
        metrics, bad_metrics = read_json(run_dir / "metrics.json", f"the metrics of run {row['run_id']}")
        found = [p for p in (bad_config, bad_metrics) if p] or verify(row, metrics, str(run_dir / "metrics.json"), config)
        if found:
            problems += found
            continue
        kept.append({**row, **setting_of(config, row.get("precision")), "_predictions": RunPredictions.from_metrics(row["seed"], metrics),
                     "_code": provenance_key(row, metrics)})
    return kept, problems


def add_parser(sub) -> None:
    p = sub.add_parser("leaderboard", help="summarise stored results (mean ± std over seeds)")
    p.add_argument("--format", choices=("table", "markdown", "csv"), default="table")
    p.add_argument("--output", help="write to this file instead of the terminal (never inside a run, the results "
                   "store, a published board or the cache)")
    p.add_argument("--force", action="store_true", help="replace --output if it exists")
    p.add_argument("--protocol", help="only this protocol")
    p.add_argument("--model", help="only this model")
    # Spelled out rather than imported so that --help does not load pandas; test_cli keeps it in step.
    p.add_argument("--sort", choices=("macro_accuracy", "accuracy", "macro_f1", "log_loss", "worst_city", "worst_period", "params", "macs",
                                      "latency_ms", "train_s"), help="sort by this column (best first)")
    p.add_argument("--runs-dir", default=None, help="results store (default: $ASCBENCH_RUNS_DIR or ./runs)")
    p.add_argument("--publish", metavar="DIR", help="copy the (filtered) run records to DIR/results and regenerate DIR's tables")
    p.add_argument("--check", metavar="DIR", help="fail if DIR's published tables differ from what DIR/results regenerates")
    p.add_argument("--include-quick", action="store_true",
                   help="also show (and publish) runs made with --quick, which are left out by default")
    p.add_argument("--wide", action="store_true", help="every cell whole on one line, however wide the table gets")
    p.add_argument("--allow-nonstandard", action="store_true",
                   help="with --publish: also publish runs whose settings differ from the defaults or their recipe "
                        "(smoke runs, model arguments); their setting column says how")
