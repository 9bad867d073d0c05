"""``ascbench list``: every registered plugin of every kind, and each plugin's own options with their help.

A model family (``timm:``) is shown as its pattern: counting or naming its models means importing the library
behind it (timm imports torchvision: seconds), so only ``--models --all`` does that.
"""

from __future__ import annotations

from typing import Any

from ascbench.kinds import LISTED

# kind -> its `ascbench list --PLURAL` flag and heading (declared in ascbench.kinds)
PLURAL = {kind.name: kind.plural for kind in LISTED}
# The prefix of a kind's options in `--set KIND.FIELD=VALUE`.
OPTION_PREFIX = {kind.name: kind.option_prefix or kind.name for kind in LISTED}


def command(args) -> int:
    from ascbench.formatting import render_table
    from ascbench.registry import get_registry

    reg = get_registry()
    kinds = [k for k in PLURAL if getattr(args, PLURAL[k].replace('-', '_'))] or list(PLURAL)
    for kind in kinds:
        rows = [(name, reg.owner(kind, name), _description(reg.get(kind, name))) for name in reg.names(kind)]
        if kind == "command" and not rows:
            continue  # built-in commands are in `ascbench --help`; only plugins' are listed here
        if kind == "model":
            rows += _family_rows(reg, args.all)
        print(f"{PLURAL[kind]}:")
        print(render_table(rows, ["name", "plugin", "description"], wide=args.wide))
        options = _option_rows(kind, reg)
        if options:
            prefix = OPTION_PREFIX[kind]
            print(f"\n{kind} options (--set {prefix}.FIELD=VALUE):")
            print(render_table(options, ["option", "of", "type", "default", "help"], wide=args.wide))
        print()
    return 0


def _description(spec: Any) -> str:
    text = getattr(spec, "description", None) or getattr(spec, "help", "") or ""
    aliases = getattr(spec, "aliases", ())
    return f"{text} (old name: {', '.join(aliases)})" if aliases else text


def _family_rows(reg, every: bool) -> list[tuple[str, str, str]]:
    """One row per model family (its pattern), or with ``every`` one per model of it (imports the family)."""
    rows = []
    for prefix in reg.names("model family"):
        family, owner = reg.get("model family", prefix), reg.owner("model family", prefix)
        if every:
            rows += [(name, owner, family.description) for name in reg.family_names(prefix)]
        else:
            rows.append((f"{prefix}<name>", owner, f"{family.description} (`ascbench list --models --all` names them)"))
    return rows


def _option_rows(kind: str, reg) -> list[tuple[str, str, str, str, str]]:
    """(option, plugin name, type, default, help) of every option each plugin of ``kind`` declares."""
    from ascbench.options import describe

    prefix = OPTION_PREFIX[kind]
    rows = []
    for name in reg.names(kind):
        for field, type_name, default, help_text in describe(getattr(reg.get(kind, name), "options_class", None)):
            rows.append((f"{prefix}.{field}", name, type_name, repr(default) if isinstance(default, str) else default,
                         help_text or "-"))
    return rows


def add_parser(sub) -> None:
    p = sub.add_parser("list", help="show every registered plugin of every kind (" + ", ".join(PLURAL.values())
                       + ") and their options")
    for kind in PLURAL.values():
        p.add_argument(f"--{kind}", action="store_true", help=f"show only {kind}")
    p.add_argument("--all", action="store_true", help="list every model of model families such as timm: (imports them)")
    p.add_argument("--wide", action="store_true", help="every cell whole on one line, however wide the table gets")
