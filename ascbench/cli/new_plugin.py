"""``ascbench new-plugin``: a ready-to-install plugin package with its conformance test."""

from __future__ import annotations

from pathlib import Path

from ascbench.scaffold import KINDS


def command(args) -> int:
    from ascbench.scaffold import new_plugin

    root = new_plugin(args.name, args.kind, Path(args.dir))
    print(f"wrote {root}\nnext: pip install -e {root} && ascbench list && python -m pytest -q {root / 'tests'}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("new-plugin", help="write a ready-to-install plugin package of any kind (" + ", ".join(KINDS)
                       + ") with its conformance test")
    p.add_argument("name")
    p.add_argument("--kind", choices=KINDS, default="model")
    p.add_argument("--dir", default=".", help="where to create ascbench-NAME/ (default: here)")
