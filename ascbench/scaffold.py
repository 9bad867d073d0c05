"""``ascbench new-plugin``: a ready-to-install plugin package (pyproject with the entry point, one
module with a working minimal plugin of any kind, and a test file running its kind's conformance kit and an
end-to-end run)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from ascbench.errors import ConfigError
from ascbench.fileio import atomic_write_text, check_output_folder
from ascbench.kinds import TEMPLATES

# One template per kind (and its test) in ascbench/templates/, formatted with name, module, cls, kind; the kinds
# that have one are declared in ascbench.kinds.
KINDS = TEMPLATES


def _template(name: str) -> str:
    return resources.files("ascbench").joinpath("templates", name).read_text(encoding="utf-8")


def new_plugin(name: str, kind: str, parent: Path) -> Path:
    """Write the package ``ascbench-<name>`` under ``parent`` and return its directory."""
    if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
        raise ConfigError(f"plugin name {name!r}: use lower-case letters, digits and '-' (e.g. my-net)")
    if kind not in KINDS:
        raise ConfigError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    module = "ascbench_" + name.replace("-", "_")
    cls = "".join(part.capitalize() for part in name.split("-"))
    root = parent / f"ascbench-{name}"
    check_output_folder(root, flag="--dir")
    if root.exists():
        raise ConfigError(f"{root} already exists; choose another name or directory")
    fields = {"name": name, "module": module, "cls": cls, "kind": kind, "module_suffix": module[len("ascbench_"):]}
    atomic_write_text(root / "pyproject.toml", _template("pyproject.toml.tmpl").format(**fields))
    atomic_write_text(root / f"{module}.py", _template(f"{kind}.py.tmpl").format(**fields))
    atomic_write_text(root / "tests" / f"test_{module}.py", _template(f"{kind}_test.py.tmpl").format(**fields))
    atomic_write_text(root / "README.md", f"# ascbench-{name}\n\nAn ascbench {kind} plugin.\n\n"
                      f"    pip install -e .\n    ascbench list\n    python -m pytest -q\n")
    return root
