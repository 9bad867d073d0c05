"""``ascbench predict``: a stored run on another dataset (the eval set) and a checked submission."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ascbench.cli.common import add_cache_dir


def command(args) -> int:
    from collections import Counter

    from ascbench.predict import predict_run, submission_frame, write_submission
    from ascbench.registry import get_registry
    from ascbench.results import runs_dir

    from ascbench.fileio import check_output

    check_output(args.output, force=args.force)  # before minutes of extraction, not after
    run_dir = Path(args.run_id) if Path(args.run_id).is_dir() else runs_dir(args.runs_dir) / args.run_id
    registry = get_registry()
    pred = predict_run(run_dir, args.dataset, registry, data_root=args.data_root,
                       progress=not args.no_progress and sys.stderr.isatty(), threads=args.threads, device=args.device)
    frame = submission_frame(pred, args.format, registry)
    path = write_submission(frame, args.output, args.format, force=args.force)
    counts = Counter(pred.labels)
    print(f"run {pred.run_id} on {pred.dataset.name}: {len(frame)} clips predicted, every file once, known labels")
    if pred.unseen_cities:
        print(f"cities never seen in training (given the unknown-city index): {', '.join(pred.unseen_cities)}")
    print("predicted: " + ", ".join(f"{name} {counts.get(name, 0)}" for name in pred.classes))
    print(f"wrote {path} ({args.format} format)")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="predict a dataset (the eval set) with a stored run and write a submission",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""examples:
  ascbench predict RUN_ID --dataset apsipa2025-eval --data-root EVAL_AUDIO --output submission.csv
  ascbench predict RUN_ID --dataset apsipa2025-eval --data-root EVAL_AUDIO --output output.tsv --format dcase

challenge: the dataset's own submission table (APSIPA 2025: the eval metadata with scene_label filled
in, as the official baseline writes it). dcase: DCASE Task 1 output, tab-separated filename,
scene_label and one probability column per class. The file is checked (every clip once, known labels)
before it is written; cities the run never trained on get the unknown-city index.""")
    p.add_argument("run_id", help="a run id in the runs directory, or a run directory")
    p.add_argument("--dataset", required=True, help="dataset to predict, e.g. apsipa2025-eval")
    p.add_argument("--data-root", default=None, help="directory of its audio")
    p.add_argument("--output", required=True, help="submission file to write (never inside a run, the results store, "
                   "a published board or the cache)")
    p.add_argument("--force", action="store_true", help="replace --output if it exists")
    p.add_argument("--format", choices=("challenge", "dcase"), default="challenge")
    p.add_argument("--runs-dir", default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="auto", metavar="DEV", help="auto | cpu | cuda | cuda:N | mps (default auto)")
    p.add_argument("--no-progress", action="store_true")
    add_cache_dir(p)
