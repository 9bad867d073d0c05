"""Options and helpers shared by several subcommands."""

from __future__ import annotations

import argparse
import dataclasses
import os
import warnings
from pathlib import Path
from typing import Any

from ascbench.config import SPLIT, RunConfig
from ascbench.errors import AscbenchError
from ascbench.shortcuts import declared


class TypedOnly:
    """An argument group whose flags for config fields have no default (``argparse.SUPPRESS``): the parsed
    namespace then holds exactly the fields typed, a flag given at its default value too, and nothing else, so a
    recipe or a config file supplies the rest (``ascbench run``). Other flags (``--wide``) keep their defaults."""

    def __init__(self, group: Any) -> None:
        self.group = group

    def add_argument(self, *flags: str, **kwargs: Any) -> argparse.Action:
        dest = kwargs.get("dest") or flags[0].lstrip("-").replace("-", "_")
        if dest in RunConfig.__dataclass_fields__ or dest in CONFIG_FLAG_DESTS:
            kwargs["default"] = argparse.SUPPRESS
        return self.group.add_argument(*flags, **kwargs)


# Flags that set a config field under a destination of another name (``--model-arg`` fills ``model_kwargs``).
CONFIG_FLAG_DESTS = {"model_arg": "model_kwargs"}


# A field's annotation (a string: config.py postpones them) -> the argparse type of its flag (None: the text).
_FLAG_TYPES = {"int": int, "float": float}


def add_field_flags(p: argparse.ArgumentParser, groups: tuple[str, ...],
                    typed_only: bool = False) -> dict[str, Any]:
    """The flags of the RunConfig fields whose ``flag(...)`` declaration names one of ``groups`` (a group title;
    ``""``: the command's own options), made from the field: ``--field-name`` (or its ``flags``), its type, default
    and help. Each group is created in the order given, its flags in field order; returns the groups by title, for
    the flags that set no field. With ``typed_only``, no flag has a default (:class:`TypedOnly`)."""
    made = {title: p if not title else p.add_argument_group(title) for title in groups}
    for f in dataclasses.fields(RunConfig):
        settings = dict(f.metadata)
        group = settings.pop("group", None)
        if group not in made:
            continue
        flags = settings.pop("flags", None) or ("--" + f.name.replace("_", "-"),)
        settings["help"] = settings.get("help") or None  # no help: argparse shows the flag alone
        if f.type == "bool":
            settings["action"] = "store_true"
        elif "action" not in settings:  # a repeated flag (append) collects its values; others take one, typed
            settings.update(type=_FLAG_TYPES.get(f.type.split(" | ")[0]), default=f.default)
        (TypedOnly(made[group]) if typed_only else made[group]).add_argument(*flags, dest=f.name, **settings)
    return made


def add_split_options(p, typed_only: bool = False) -> None:
    """Protocol options shared by `run` and `data split`, so a previewed split is the one a run gets; with
    ``typed_only``, without defaults (:class:`TypedOnly`)."""
    add_field_flags(p, (SPLIT,), typed_only)


def split_fields(args) -> dict:
    """The RunConfig fields that the split options set: those typed (untyped flags leave no attribute)."""
    return {name: getattr(args, name) for name in ("group_by", "untaught") if hasattr(args, name)}


def add_plugin_shortcuts(p: argparse.ArgumentParser, kinds: tuple[str, ...] | None = None,
                         typed_only: bool = False) -> None:
    """The shortcut flags plugins declare for their own options (each is one --set PREFIX.FIELD=VALUE); with
    ``kinds``, only those of plugins of these kinds (``data split`` takes the protocols'); with ``typed_only``, an
    untyped one leaves no attribute (``argparse.SUPPRESS``), else it holds None (False for a switch)."""
    g = p.add_argument_group("plugins' shortcuts (each sets one of a plugin's options; any: --set PREFIX.FIELD=VALUE)")
    untyped: dict[str, Any] = {"default": argparse.SUPPRESS} if typed_only else {}
    for s in declared().shortcuts:
        if kinds is not None and s.kind not in kinds:
            continue
        try:
            sets = f"--set {s.key}={'VALUE' if s.switch is None else s.switch}"
            # the option's own help, read from the plugin's source, before what the flag stands for
            # A switch that turns an option off must not read as the option's own (positive) help.
            what = f"{s.option} = {s.switch}, instead of: {s.help}" if s.help and s.switch is not None else s.help
            text = f"{s.kind} {s.plugin}: {what} ({sets})" if what else f"{s.kind} {s.plugin}: {sets}"
            text = text.replace("%", "%%")  # argparse formats help with %: a plugin's "30 %" is text
            if s.switch is None:
                g.add_argument(s.flag, dest=s.dest, type=option_value, metavar=s.option.upper(), help=text,
                               **({"default": None} | untyped))
            else:
                g.add_argument(s.flag, dest=s.dest, action="store_true", help=text, **untyped)
        except (argparse.ArgumentError, ValueError) as exc:  # a flag taken already: the plugin's, not the CLI's fault
            from ascbench.registry import PluginWarning

            warnings.warn(f"{s.kind} {s.plugin!r}: shortcut {s.flag} skipped ({exc}); use --set {s.key}=VALUE",
                          PluginWarning, stacklevel=2)


def option_value(text: str) -> Any:
    """A shortcut flag's value, read as ``--set`` reads one (so both reach the option's own type check alike)."""
    from ascbench.sweep import parse_assignment

    return parse_assignment(f"value={text}", multi=False)[1]


def shortcut_options(args, kinds: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """The options that the typed shortcut flags of ``kinds``' plugins set, per option prefix (for a command that
    builds its config from flags alone, as ``data split`` does)."""
    options: dict[str, dict[str, Any]] = {}
    for s in declared().shortcuts:
        value = getattr(args, s.dest, None)
        if s.kind in kinds and value not in (None, False):
            options.setdefault(s.prefix, {})[s.option] = option_value(s.switch) if s.switch is not None else value
    return options


class CacheDir(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        os.environ["ASCBENCH_CACHE_DIR"] = values  # read by every cache (data, features, pretraining, checks)
        setattr(namespace, self.dest, values)


def add_cache_dir(parser) -> None:
    parser.add_argument("--cache-dir", action=CacheDir, default=None, metavar="DIR",
                        help="where generated data, features and pretraining stages are cached "
                             "(default: $ASCBENCH_CACHE_DIR or ~/.cache/ascbench)")


def find_record(run_id: str, runs_root: str | None, published: str | None) -> tuple[dict, dict, dict]:
    """(row, config, metrics) of a run, from a published directory or the runs store."""
    from ascbench.results import RUN_ID_PATTERN, load_rows, read_record_file, runs_dir

    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise AscbenchError(f"{run_id!r} is not a run id (a plain name such as 20260101-120000-mobileascnet-...; "
                            "`ascbench leaderboard` lists them)")
    if published:
        path = Path(published) / "results" / f"{run_id}.json"
        if not path.exists():
            raise AscbenchError(f"no published record {path}")
        record = read_record_file(path, "published record")
        missing = [k for k in ("row", "config", "metrics") if not isinstance(record.get(k), dict)]
        if missing:
            raise AscbenchError(f"published record {path} is damaged: no {', '.join(missing)}")
        return _checked(record["row"], record["config"], record["metrics"], str(path))
    root = runs_dir(runs_root)
    rows = [r for r in load_rows(root) if r["run_id"] == run_id]
    if not rows:
        raise AscbenchError(f"run {run_id!r} is not in {root / 'results.jsonl'} (use --from DIR for a published leaderboard)")
    return _checked(rows[0], read_record_file(root / run_id / "config.json", "run config"),
                    read_record_file(root / run_id / "metrics.json", "run metrics"), str(root / run_id / "metrics.json"))


def _checked(row: dict, config: dict, metrics: dict, where: str) -> tuple[dict, dict, dict]:
    """The record, if it checks out as the leaderboard checks it (ascbench.records.verify); else one error
    listing what is wrong: a command never exports, plots or re-runs a record the leaderboard would leave off."""
    from ascbench.errors import DataError
    from ascbench.records import verify

    problems = verify(row, metrics, where, config)
    if problems:
        raise DataError(f"run {row.get('run_id')}'s record does not check out, so it is not used: "
                        + " | ".join(problems) + " (restore the run's files from a copy, or re-run it)")
    return row, config, metrics


def load_dataset(name: str, data_root: str | None, require_audio: bool):
    from ascbench.data.dataset import DatasetOptions
    from ascbench.registry import get_registry

    options = DatasetOptions(data_root=Path(data_root) if data_root else None, require_audio=require_audio)
    return get_registry().dataset(name).load(options)


def add_record_arguments(p) -> None:
    """The run a command reads: its id, in the runs directory or a published leaderboard (--from)."""
    p.add_argument("run_id")
    p.add_argument("--from", dest="source", metavar="DIR", help="a published leaderboard directory holding the record")
    p.add_argument("--runs-dir", default=None)


def parse_model_args(items: list[str]) -> dict:
    """``--model-arg KEY=JSON`` items as model keyword arguments (a value that is not JSON stays a string)."""
    import json

    from ascbench.errors import AscbenchError

    kwargs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise AscbenchError(f"--model-arg expects KEY=VALUE, got {item!r}")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    return kwargs


def check_folds(config: "RunConfig") -> None:
    """``--folds`` needs a protocol that declares the ``folds`` option (a capability, not a name)."""
    if not config.folds:
        return
    from ascbench.registry import get_registry

    registry = get_registry()
    if "folds" not in (registry.protocol(config.protocol).options or ()):
        declaring = [name for name in registry.names("protocol") if "folds" in (registry.protocol(name).options or ())]
        raise AscbenchError(f"--folds applies to --protocol {' or '.join(declaring) or '(none registered)'}, "
                            f"not {config.protocol}")
