"""``ascbench list``: every registered plugin of every kind, with their own options."""

from __future__ import annotations


PLURAL = {"model": "models", "strategy": "strategies", "semi": "semi-methods", "metric": "metrics", "dataset": "datasets", "protocol": "protocols",
          "front-end": "front-ends", "recipe": "recipes", "logger": "loggers", "command": "commands"}


def command(args) -> int:
    from tabulate import tabulate

    from ascbench.registry import get_registry

    reg = get_registry()
    kinds = [k for k in PLURAL if getattr(args, PLURAL[k].replace('-', '_'))] or list(PLURAL)
    for kind in kinds:
        rows = [(name, reg.owner(kind, name), _with_options(kind, reg.get(kind, name))) for name in reg.names(kind)]
        if kind == "command" and not rows:
            continue  # built-in commands are in `ascbench --help`; only plugins' are listed here
        if kind == "model":
            for prefix in reg.names("model family"):
                family, owner = reg.get("model family", prefix), reg.owner("model family", prefix)
                names = reg.family_names(prefix)
                if args.all:
                    rows += [(name, owner, family.description) for name in names]
                else:
                    rows.append((f"{prefix}<name>", owner, f"{family.description} ({len(names)} models; --all lists them)"))
        print(f"{PLURAL[kind]}:")
        print(tabulate(rows, headers=["name", "plugin", "description"], tablefmt="simple"))
        print()
    return 0


def _with_options(kind: str, spec) -> str:
    """A plugin's description, and its own options (``--set KIND.FIELD=VALUE``) when it declares any."""
    from ascbench.options import describe

    own = describe(getattr(spec, "options_class", None))
    if not own:
        return getattr(spec, "description", None) or getattr(spec, "help", "")
    return spec.description + "; options: " + ", ".join(f"{kind}.{f}={d!r} ({t})" for f, t, d, _ in own)


def add_parser(sub) -> None:
    p = sub.add_parser("list", help="show every registered plugin of every kind (models, strategies, semi methods, datasets, protocols, front-ends, recipes, loggers, metrics, plugin commands)")
    for kind in PLURAL.values():
        p.add_argument(f"--{kind}", action="store_true", help=f"show only {kind}")
    p.add_argument("--all", action="store_true", help="list every model of model families such as timm:")
