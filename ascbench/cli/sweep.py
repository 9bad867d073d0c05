"""``ascbench sweep``: a grid of runs, resumable, on local processes or Ray."""

from __future__ import annotations

import argparse
import sys

from ascbench.errors import AscbenchError
from ascbench.cli.common import add_cache_dir


EPILOG_SWEEP = """examples:
  ascbench sweep leaderboards/grid.toml
  ascbench sweep --grid model=mobileascnet,cp-mobile --grid strategy=scratch,finetune --grid seed=0,1 --set epochs=10
  ascbench sweep grid.toml --executor ray --address ray://head:10001

A spec file:
  [base]                        # config fields shared by every cell
  dataset = "embedded"
  [grid]                        # lists; the cells are their product
  model = ["mobileascnet", "cp-mobile"]
  seed = [0, 1, 2]
  [[exclude]]                   # optional, repeatable: combinations left out
  model = "cp-mobile"
  seed = 2

Cells already in the results store are skipped, so re-running a killed sweep finishes the rest;
a cell killed half-way continues from its last epoch checkpoint. A failing cell is reported and
the others go on; the exit status is 1 if any cell failed."""


def command(args) -> int:
    from ascbench.formatting import format_percent, render_table
    from ascbench.registry import get_registry
    from ascbench.results import runs_dir
    from ascbench.sweep import SweepSpec, already_made, check_names, describe, parse_assignment, plan, run_sweep

    spec = SweepSpec.load(args.spec) if args.spec else SweepSpec()
    spec = spec.with_overrides(dict(parse_assignment(a, multi=True) for a in args.grid),
                               dict(parse_assignment(a, multi=False) for a in args.set))
    if not spec.grid and not spec.base:
        raise AscbenchError("nothing to sweep: give a spec file or --grid KEY=V1,V2 (see ascbench sweep --help)")
    cells = spec.cells()
    if args.dry_run:
        check_names(cells, get_registry())  # a cell listed as "run" must be one that can start
        cells = plan(cells, args.jobs or 1)
        made = already_made(cells, runs_dir(args.runs_dir), args.published)
        rows = [(describe(c), f"skip ({made[i][0]})" if i in made else "run") for i, c in enumerate(cells)]
        print(render_table(rows, ["cell", "action"]))
        return 0
    outcomes = run_sweep(cells, executor=args.executor, jobs=args.jobs, address=args.address, runs_root=args.runs_dir,
                         gpus_per_cell=args.gpus_per_cell, progress=not args.no_progress and sys.stderr.isatty(), published=args.published)
    rows = [(describe(o.config), o.status, format_percent(o.accuracy) if o.accuracy is not None else "",
             o.run_id if o.status in ("done", "skipped") else o.reason) for o in outcomes]
    print(render_table(rows, ["cell", "status", "macro accuracy", "run / reason"]))
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed", "interrupted")}
    print(f"\n{len(outcomes)} cells: {counts['done']} done, {counts['skipped']} skipped (already stored or published), "
          f"{counts['failed']} failed" + (f", {counts['interrupted']} interrupted or not started" if counts["interrupted"] else ""))
    if counts["interrupted"]:
        print("The sweep was interrupted: run the same command again to finish it (stored cells are skipped, "
              "an interrupted cell continues from its last checkpoint).")
        return 130
    return 1 if counts["failed"] else 0


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="run a grid of runs (resumable; local processes or Ray)", epilog=EPILOG_SWEEP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", nargs="?", default=None, help="TOML or YAML file with [base] and [grid] sections")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="a grid axis, e.g. --grid model=mobileascnet,cp-mobile (repeatable; adds to the spec)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config field for every cell, e.g. --set epochs=10 (repeatable; overrides the spec)")
    p.add_argument("--executor", default="local", choices=("local", "ray"),
                   help="local: a process pool on this machine (default); ray: a Ray cluster (pip install 'ascbench[ray]')")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray instance)")
    p.add_argument("--gpus-per-cell", type=float, default=0.0, metavar="N",
                   help="Ray only: GPUs each cell gets (e.g. 1, or 0.5 for two cells per GPU); cells with --device "
                        "auto then train on their share (default 0: CPUs only)")
    p.add_argument("--jobs", type=int, default=None,
                   help="runs at a time (default: one per CPU core); each gets cores/jobs torch threads")
    p.add_argument("--dry-run", action="store_true", help="list the cells and whether each would run, then stop")
    p.add_argument("--published", metavar="DIR", default=None,
                   help="also skip cells already published in DIR (e.g. leaderboards/), to finish a published grid")
    p.add_argument("--runs-dir", default=None, help="where runs are stored (default: $ASCBENCH_RUNS_DIR or ./runs)")
    add_cache_dir(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
