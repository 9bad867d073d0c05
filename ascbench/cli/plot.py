"""``ascbench plot``: a run's learning curves, confusion matrix and per-city / per-period accuracy.

A finished run is never modified, so plots go to an output folder (``--output DIR``, default
``plots/<run_id>/``), never into the run's directory, the results store or a published board."""

from __future__ import annotations

import sys
from pathlib import Path

from ascbench.errors import AscbenchError
from ascbench.cli.common import add_record_arguments, find_record


def command(args) -> int:
    from ascbench.fileio import check_output_folder
    from ascbench.plots import confusion_matrix_plot, grouped_accuracy_bars, in_day_order, learning_curves

    # A finished run is never modified: plots go to a folder of their own, named after the run.
    out = Path(args.output) if args.output else Path("plots") / Path(args.run_id).name
    check_output_folder(out)  # before any work: a wrong folder is refused at once
    row, config, metrics = find_record(args.run_id, args.runs_dir, args.source)
    history = metrics.get("history") or []
    if metrics.get("accuracy") is None and not history:
        raise AscbenchError(f"run {args.run_id} was not scored (protocol {config.get('protocol')!r} has no test side) "
                            "and its record holds no epoch history (made before ascbench stored it); nothing to plot")
    files = {"learning_curves.svg": learning_curves(history)} if history else {}
    if metrics.get("accuracy") is not None:
        classes = list(metrics["class_accuracy"]) if len(metrics["class_accuracy"]) == len(metrics["confusion_matrix"]) \
            else [str(i) for i in range(len(metrics["confusion_matrix"]))]
        chance = 1.0 / len(classes) if classes else None
        counts = _test_counts(config, metrics)
        files.update({
            "confusion_matrix.svg": confusion_matrix_plot(metrics["confusion_matrix"], classes),
            "city_accuracy.svg": grouped_accuracy_bars(metrics["city_accuracy"], "city", counts.get("city"), chance),
            "period_accuracy.svg": grouped_accuracy_bars(metrics["period_accuracy"], "time period", counts.get("period"),
                                                         chance, order=in_day_order(metrics["period_accuracy"]))})
    _write_outputs(out, files, force=args.force)
    print(f"wrote {', '.join(str(out / n) for n in files)}")
    return 0


def _test_counts(config: dict, metrics: dict) -> dict[str, dict[str, int]]:
    """Test clips per city and per period, from the record's per-clip predictions and the dataset's metadata;
    empty (bars drawn without counts, said on stderr) when either is not at hand."""
    rows = (metrics.get("test_predictions") or {}).get("row")
    if not rows:
        return {}
    try:
        from ascbench.cli.common import load_dataset

        meta = load_dataset(config["dataset"], config.get("data_root"), require_audio=False).meta
        test = meta.iloc[rows]
        return {col: test[col].astype(str).value_counts().to_dict() for col in ("city", "period") if col in test}
    except (AscbenchError, KeyError, IndexError, OSError) as exc:
        print(f"note: bars drawn without clip counts: dataset {config.get('dataset')!r} is not at hand ({exc})",
              file=sys.stderr)
        return {}


def _write_outputs(out: Path, files: dict[str, str], force: bool) -> None:
    """Every plot checked before any is written (no half-replaced set), then written through the guarded writer."""
    from ascbench.fileio import check_output, write_output

    for name in files:
        check_output(out / name, force=force)
    for name, text in files.items():
        write_output(out / name, text, force=force)


def add_parser(sub) -> None:
    p = sub.add_parser("plot", help="learning curves, confusion matrix and per-city / per-period accuracy of a run (SVG)")
    add_record_arguments(p)
    p.add_argument("--output", help="folder for the SVG files (default: plots/<run_id>/; never the run's own folder)")
    p.add_argument("--force", action="store_true", help="replace SVG files already in the output folder")
