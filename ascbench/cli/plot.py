"""``ascbench plot``: a run's learning curves, confusion matrix and per-city / per-period accuracy."""

from __future__ import annotations

from pathlib import Path

from ascbench.errors import AscbenchError
from ascbench.cli.common import add_record_arguments, find_record


def command(args) -> int:
    from ascbench.fileio import check_output_folder, write_output
    from ascbench.plots import confusion_matrix_plot, grouped_accuracy_bars, learning_curves

    row, config, metrics = find_record(args.run_id, args.runs_dir, args.source)
    history = metrics.get("history") or []
    if metrics.get("accuracy") is None and not history:
        raise AscbenchError(f"run {args.run_id} was not scored (protocol {config.get('protocol')!r} has no test side) "
                            "and its record holds no epoch history (made before ascbench stored it); nothing to plot")
    # A finished run is never modified: plots go to a folder of their own, named after the run.
    out = Path(args.output) if args.output else Path("plots") / Path(args.run_id).name
    check_output_folder(out)
    files = {"learning_curves.svg": learning_curves(history)} if history else {}
    if metrics.get("accuracy") is not None:
        classes = list(metrics["class_accuracy"]) if len(metrics["class_accuracy"]) == len(metrics["confusion_matrix"]) \
            else [str(i) for i in range(len(metrics["confusion_matrix"]))]
        files.update({"confusion_matrix.svg": confusion_matrix_plot(metrics["confusion_matrix"], classes),
                      "city_accuracy.svg": grouped_accuracy_bars(metrics["city_accuracy"], "city"),
                      "period_accuracy.svg": grouped_accuracy_bars(metrics["period_accuracy"], "time period")})
    for name, svg in files.items():
        write_output(out / name, svg, force=True)  # re-plotting a run replaces its own plots
    print(f"wrote {', '.join(str(out / n) for n in files)}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("plot", help="learning curves, confusion matrix and per-city / per-period accuracy of a run (SVG)")
    add_record_arguments(p)
    p.add_argument("--output", help="directory for the SVG files (default: plots/RUN_ID; never inside a run, "
                   "which is never modified)")
