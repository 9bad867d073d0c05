"""``ascbench rerun``: a stored or published row run again from its record, and compared."""

from __future__ import annotations

import sys

from ascbench.config import RunConfig
from ascbench.errors import AscbenchError
from ascbench.cli.common import add_record_arguments, find_record


def _check_plugins_installed(config: dict, metrics: dict) -> None:
    """A row whose plugin is not installed here: say which package (and version) its record names."""
    from ascbench.registry import get_registry

    registry = get_registry()
    for used in metrics.get("provenance", {}).get("plugins", []):
        kind, name = used["kind"], used["name"]
        if registry.has(kind, name):
            continue
        package, version = used.get("distribution"), used.get("version")
        if package:
            where = f"package {package} {version or ''}".rstrip()
            hint = f"pip install '{package}=={version}'" if version else f"pip install {package}"
        else:
            where, hint = "no recorded package", f"install the plugin {used.get('plugin')!r} that provided it"
        raise AscbenchError(f"this row needs {kind} {name!r} from plugin {used.get('plugin')!r} ({where}), "
                            f"which is not installed here: {hint}")


def command(args) -> int:
    from ascbench.runner import execute

    row, config, metrics = find_record(args.run_id, args.runs_dir, args.source)
    _check_plugins_installed(config, metrics)
    from ascbench.cli.run import console_progress
    from ascbench.formatting import format_percent

    bars = not args.no_progress and sys.stderr.isatty()
    with console_progress(bars):
        record = execute(_as_it_ran(RunConfig.from_dict(config), row), runs_root=args.runs_dir, progress=bars)
    print(f"original  {args.run_id}: accuracy {format_percent(row['accuracy'])}  macro-F1 {format_percent(row['macro_f1'])}")
    print(f"re-run    {record.run_id}: accuracy {format_percent(record.row['accuracy'])}  "
          f"macro-F1 {format_percent(record.row['macro_f1'])}")
    if f"{row['accuracy']:.4f}" != f"{record.row['accuracy']:.4f}":
        made, now = row.get("git_commit"), record.row.get("git_commit")
        if made and now and made != now:
            print(f"the re-run differs: the original was made at commit {made[:10]}, the re-run at {now[:10]}; code "
                  "changed since can change the numbers (git diff the two commits)")
        else:
            print("the re-run differs; compare provenance (versions, machine, threads) in both records")
        return 1
    print("reproduced")
    return 0


def _as_it_ran(config: RunConfig, row: dict) -> RunConfig:
    """``config`` with what its machine chose pinned: ``--precision auto`` becomes the precision it resolved to
    there, and an unset thread count the threads it used. Both change the numbers (bf16 against fp32; another
    summation order), so a re-run on a machine that would choose otherwise still repeats the original."""
    pinned = {}
    if config.precision == "auto" and row.get("precision"):
        pinned["precision"] = row["precision"]
    if config.threads is None and row.get("threads"):
        pinned["threads"] = int(row["threads"])
    if pinned:
        print("as the original ran: " + ", ".join(f"--{k} {v}" for k, v in pinned.items()))
    return config.replace(**pinned)


def add_parser(sub) -> None:
    p = sub.add_parser("rerun", help="run a stored result again from its recorded config and compare")
    add_record_arguments(p)
    p.add_argument("--no-progress", action="store_true")
