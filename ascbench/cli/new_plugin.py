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
    what = "write a ready-to-install plugin package of any kind (" + ", ".join(KINDS) + ") with its conformance test"
    p = sub.add_parser("new-plugin", help=what, description=what + ". The package is ascbench-NAME/: pyproject.toml "
                       "with the entry point, one module importing ascbench.plugin, and tests running the kind's kit and "
                       "a one-epoch run. Try it without installing: ascbench --plugins-dir ascbench-NAME list",
                       epilog="example: ascbench new-plugin my-net --kind model --dir plugins/")
    p.add_argument("name", help="the plugin's name: lower-case letters, digits and '-' (e.g. my-net)")
    p.add_argument("--kind", choices=KINDS, default="model", help="what the plugin adds (default: model)")
    p.add_argument("--dir", default=".", help="where to create ascbench-NAME/ (default: here)")
