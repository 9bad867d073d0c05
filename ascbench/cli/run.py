"""``ascbench run``: one benchmark run from flags, --set, a config file or a recipe; its summary."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, ContextManager

from ascbench.config import (AUGMENTATION, DATA, EXPERIMENT, GENERAL, MACHINE, SEMI, SPLIT, TRAINING,
                             RunConfig)
from ascbench.errors import AscbenchError, ConfigError
from ascbench.fileio import read_file_text
from ascbench.shortcuts import declared
from ascbench.cli.common import (CONFIG_FLAG_DESTS, TypedOnly, add_cache_dir, add_field_flags, add_plugin_shortcuts,
                                 check_folds, option_value, parse_model_args)


EPILOG_RUN = """examples:
  ascbench run --model mobileascnet --strategy finetune
  ascbench run --model mobileascnet --strategy scratch --protocol unseen-city --seed 1
  ascbench run --model se-trans --strategy scratch --protocol unseen-time --labeled 0.5

Every run writes runs/<run_id>/ (config, metrics, split, weights, log) and one row to
runs/results.jsonl; `ascbench leaderboard` summarises them. `ascbench list` shows every
registered model, strategy, dataset and protocol.

A run saves a checkpoint at every epoch end. If it is killed or stopped with Ctrl-C, running the
same command again continues from the last checkpoint (as does `ascbench run --resume DIR` with
the runs/.<run_id>.partial directory it names) and ends with the same numbers.

Where settings come from, each source over the ones before it:
  recipe < --config file < typed flags < --set (a later --set over an earlier one).
A field two sources give different values is named in one warning line on stderr. A setting the run
would not read (e.g. --pretrain-epochs under --strategy scratch) is refused, not stored."""


# How the sources of a run's settings stack up, each over the ones before it (stated in `ascbench run --help`).
PRECEDENCE = "recipe < --config file < typed flags < --set, a later --set over an earlier one"


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="train and score one model with one strategy", epilog=EPILOG_RUN,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(run_parser=p)
    p.add_argument("--config", default=None, metavar="FILE",
                   help="a TOML or YAML file of run settings (the field names of config.json); typed flags and --set win "
                        "over it (see the end of this help)")
    # The flags of config fields are made from the fields (ascbench.config.flag): each is declared once, there.
    groups = add_field_flags(p, (GENERAL, EXPERIMENT, DATA, SPLIT, SEMI), typed_only=True)
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="FIELD=VALUE",
                   help="set any config field or plugin option (e.g. --set val_fraction=0.2 --set strategy.lr_scale=0.1 "
                        "--set semi.rounds=3); repeatable; wins over typed flags and --config, a later --set over an earlier "
                        "one; `ascbench list` shows each plugin's options")
    TypedOnly(groups[EXPERIMENT]).add_argument(
        "--model-arg", action="append", metavar="KEY=JSON",
        help="model constructor argument, e.g. --model-arg gru_hidden=96 (repeatable)")
    machine = add_field_flags(p, (AUGMENTATION, TRAINING, MACHINE), typed_only=True)[MACHINE]
    _add_output_options(machine)
    # Last: a plugin's shortcut that clashes with a core flag is the one skipped (with a warning), never the core's.
    add_plugin_shortcuts(p, typed_only=True)


def _add_output_options(g: Any) -> None:
    """Where the results go and how the run shows itself: no config field (no effect on the numbers)."""
    g.add_argument("--runs-dir", default=None, help="where runs are stored (default: $ASCBENCH_RUNS_DIR or ./runs)")
    add_cache_dir(g)
    g.add_argument("--no-progress", action="store_true",
                   help="no progress bars: one line per epoch instead (as always in log.txt and when not on a terminal)")
    g.add_argument("--wide", action="store_true", help="summary tables with every cell whole on one line")
    g.add_argument("--resume", default=None, metavar="DIR",
                   help="continue an interrupted run from its staging directory (runs/.<run_id>.partial); "
                        "its stored config is used, and a run setting given beside it is refused")


def _flag_values(args) -> dict:
    """The config fields the typed run flags give: an untyped one leaves no attribute (its default is
    ``argparse.SUPPRESS``, see :class:`TypedOnly`), so what the namespace holds is exactly what was typed."""
    typed = vars(args)
    values = {name: typed[name] for name in RunConfig.__dataclass_fields__ if name in typed}
    if "loggers" in values:
        values["loggers"] = tuple(values["loggers"])
    if "model_arg" in typed:  # --model-arg KEY=JSON, repeated: the model's keyword arguments
        values[CONFIG_FLAG_DESTS["model_arg"]] = parse_model_args(typed["model_arg"])
    return values


def _explicit_fields(args) -> dict:
    """The config fields set on the command line (flags typed, then --set), and nothing else, so that a recipe
    or a config file supplies the rest. A flag given at its default value still counts."""
    given = _flag_values(args)
    for s in declared().shortcuts:
        if hasattr(args, s.dest):  # typed (a shortcut has no default either)
            given[s.key] = option_value(s.switch) if s.switch is not None else getattr(args, s.dest)
    from ascbench.sweep import parse_assignment

    for text in args.assignments:
        key, value = parse_assignment(text, multi=False)
        given[key] = value  # a list field's comma-separated text is split by RunConfig.from_dict, as from a file
    return given


def config_from_args(args) -> RunConfig:
    """The run's config: the sources in the order of PRECEDENCE, each over the one before; a field two sources
    give different values is said once, on stderr."""
    given = _explicit_fields(args)
    warn_conflicts(_sources(args))
    return RunConfig.from_file(args.config, given) if args.config else RunConfig.from_dict(given)


def _sources(args) -> list[tuple[str, Any, str]]:
    """(key, value, how it was given) for every setting of the run, lowest precedence first; keys as ``--set``
    names them (``seed``, ``strategy.lr_scale``, ``model.width``)."""
    from ascbench.config import read_table
    from ascbench.sweep import parse_assignment

    found: list[tuple[str, Any, str]] = []
    if args.config:
        found += [(key, value, f"{args.config}: {key} = {value!r}") for key, value in _flat(read_table(args.config, "config file"))]
    found += [(key, value, _typed_label(args, key, value)) for key, value in _flat(_explicit_fields(_without_assignments(args)))]
    for text in args.assignments:
        key, value = parse_assignment(text, multi=False)
        found.append((key, value, f"--set {text}"))
    return found


def _without_assignments(args):
    copy = argparse.Namespace(**vars(args))
    copy.assignments = []
    return copy


def _flat(table: dict) -> list[tuple[str, Any]]:
    """A table of config fields as ``--set`` keys: ``options.strategy.lr_scale`` and ``model_kwargs.width``
    become ``strategy.lr_scale`` and ``model.width``."""
    out = []
    for key, value in table.items():
        if key == "options" and isinstance(value, dict):
            out += [(f"{kind}.{k}", v) for kind, values in value.items() if isinstance(values, dict) for k, v in values.items()]
        elif key == "model_kwargs" and isinstance(value, dict):
            out += [(f"model.{k}", v) for k, v in value.items()]
        else:
            out.append((key, list(value) if isinstance(value, tuple) else value))
    return out


def _typed_label(args, key: str, value: Any) -> str:
    """How ``key`` was typed: ``--seed 2``, ``--finetune-lr-scale 0.1``, ``--model-arg width=3``."""
    if key.startswith("model."):
        return f"--model-arg {key.split('.', 1)[1]}={json.dumps(value)}"
    dest = next((s.dest for s in declared().shortcuts if s.key == key), key)
    for action in args.run_parser._actions:
        if action.dest == dest and action.option_strings:  # a switch (--skip-bad, --pl-unbalanced) shows no value
            return action.option_strings[0] + ("" if action.nargs == 0 else f" {_shown(value)}")
    return f"--{key.replace('_', '-')} {_shown(value)}"


def _shown(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def warn_conflicts(sources: list[tuple[str, Any, str]]) -> None:
    """One stderr line for each setting that two sources (the config file, the typed flags, --set) give
    different values, naming the one that applies (the last: ``sources`` are in the order of PRECEDENCE).
    Within one source the last occurrence wins without a word, as on any command line."""
    by_key: dict[str, dict[str, tuple[Any, str]]] = {}
    for key, value, label in sources:
        by_key.setdefault(key.replace("-", "_"), {})[_source_of(label)] = (value, label)
    for key, given in by_key.items():
        if len({json.dumps(_comparable(v), sort_keys=True, default=str) for v, _ in given.values()}) > 1:
            labels = [label for _, label in given.values()]
            print(f"ascbench: warning: {key} is given different values ({'; '.join(labels)}); {labels[-1]} applies "
                  f"(precedence: {PRECEDENCE})", file=sys.stderr)


def _source_of(label: str) -> str:
    return "set" if label.startswith("--set ") else "flag" if label.startswith("--") else "config"


def _comparable(value: Any) -> Any:
    """A value as typed (``"2"``) and as parsed (``2``), or a list and a comma-separated text, compare equal."""
    if isinstance(value, (list, tuple)):
        return [_comparable(v) for v in value]
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return [v.strip() for v in value.split(",")] if "," in value else value
        return parsed
    return value


def command(args) -> int:
    progress = not args.no_progress and sys.stderr.isatty()
    if args.resume:
        from ascbench.runner import execute

        config = _resume_config(Path(args.resume))
        _check_nothing_but_resume(args)
        with console_progress(progress):
            record = execute(config, progress=progress, resume=args.resume)
        _print_summary(config, record, args.wide)
        return 0
    config = config_from_args(args)  # a config error is told before torch is imported: in a fraction of a second
    _check_before_start(config, args)
    from ascbench.runner import execute

    if config.folds:
        check_folds(config)
        if config.fold:  # the loop below sets it: a value given here would be ignored
            raise ConfigError(f"fold = {config.fold}: `ascbench run --folds {config.folds}` runs every fold in turn; "
                              "drop fold (a sweep cell with folds and fold runs a single fold)")
        _check_all_folds(config)  # a fold that cannot run must stop us before fold 1 is stored
        with console_progress(progress):
            records = [execute(config.replace(fold=k), runs_root=args.runs_dir, progress=progress)
                       for k in range(config.folds)]
        _print_folds(config, records, args.wide)
        return 0
    from ascbench import distributed

    try:
        with console_progress(progress):
            record = execute(config, runs_root=args.runs_dir, progress=progress)
        main_rank = distributed.is_main()
    finally:
        distributed.teardown()
    if main_rank:  # under torchrun one summary, from rank 0
        _print_summary(config, record, args.wide)
    return 0


def _check_before_start(config: RunConfig, args) -> None:
    """Plugin names, their options and the model's arguments, checked before the run is announced (no audio is
    read); a fault in settings that came partly from a config file says where they were read."""
    from ascbench.registry import get_registry
    from ascbench.sweep import check_cell

    try:
        check_cell(config, get_registry())
    except AscbenchError as exc:
        if args.config:  # the same error, located
            exc.args = (f"{exc} (the run's settings: config file {args.config}, with the command line's over it)",)
        raise


def console_progress(bars: bool) -> ContextManager[None]:
    """Where a run's one line per epoch goes besides its log.txt: standard output, unless a progress bar is drawn
    on the terminal that standard output also is (a log file, a pipe or CI gets every line)."""
    from ascbench.callbacks import epoch_lines_to

    return epoch_lines_to(None if bars and sys.stdout.isatty() else sys.stdout)


def _print_folds(config: RunConfig, records: list, wide: bool) -> None:
    from ascbench.formatting import format_percent, render_table

    rows = [(f"{k + 1}/{config.folds}", ", ".join(r.metrics["split"]["test_cities_held_out"]),
             format_percent(r.metrics["macro_accuracy"]), format_percent(r.metrics["accuracy"]),
             ", ".join(r.metrics["split"].get("excluded_classes", [])) or "-", r.run_id)
            for k, r in enumerate(records)]
    accs = [r.metrics["macro_accuracy"] for r in records]
    print(render_table(rows, ["fold", "test cities", "macro accuracy", "accuracy", "not scored", "run"], wide=wide))
    print(f"\nmacro accuracy, mean over {config.folds} folds: {format_percent(sum(accs) / len(accs))}   "
          f"worst fold: {format_percent(min(accs))}")


def _check_all_folds(config: RunConfig) -> None:
    from ascbench import pipeline

    plan = pipeline.resolve(config)
    ds = pipeline.load(plan, require_audio=False)
    for k in range(config.folds):
        try:
            pipeline.split(plan, ds, fold=k)
        except AscbenchError as exc:
            raise AscbenchError(f"fold {k + 1} of {config.folds} cannot run, so no fold was started: {exc}") from None


def _check_nothing_but_resume(args) -> None:
    """--resume continues a run with its stored config: a run setting given beside it would be ignored."""
    given = sorted(_explicit_fields(args)) + (["--config"] if args.config else [])
    home = Path(args.resume).resolve().parent
    if args.runs_dir is not None and Path(args.runs_dir).resolve() != home:
        raise ConfigError(f"--resume {args.resume} is stored where it was started, in {home}, not in --runs-dir "
                          f"{args.runs_dir}; drop --runs-dir (or pass --runs-dir {home})")
    if given:
        raise ConfigError(f"--resume {args.resume} continues the run with its stored config, so "
                          f"{', '.join(given)} would be ignored; drop them (or start a new run without --resume)")


def _resume_config(path: Path) -> RunConfig:
    from ascbench.results import check_unfinished

    check_unfinished(path)  # a finished run is never resumed, so never rewritten or deleted
    try:
        stored = json.loads(read_file_text(path / "config.json"))
        if not isinstance(stored, dict):
            raise ValueError(f"it holds {type(stored).__name__}, not a table of fields")
        return RunConfig.from_stored(stored)
    except (OSError, ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ConfigError(f"--resume {path}: its config.json cannot be read ({exc}); the staging directory is "
                          "damaged: delete it and run the command again (it starts from the first epoch)") from None
    except ConfigError as exc:
        raise ConfigError(f"--resume {path}: its config.json is not a valid run config ({exc})") from None


def _print_summary(config: RunConfig, record, wide: bool = False) -> None:
    from ascbench.formatting import format_int, format_percent, format_seconds, render_pairs, render_table

    m, c = record.metrics, record.metrics["complexity"]
    head = [("run", record.run_id), ("model / strategy / semi", f"{config.model} / {config.strategy} / {config.semi}"),
            ("dataset / protocol", f"{config.dataset} / {config.protocol}")]
    if config.quick:
        head.append(("quick", "a quick run (--quick): every stage shortened; not for publishing"))
    if m.get("accuracy") is None:
        print(render_pairs([*head,
                            ("trained on", f"{m['split']['train_clips']} clips ({m['split']['labeled']} labeled, "
                                           f"{m['split']['val']} of them for validation)"),
                            ("score", "none: this protocol has no test side"),
                            ("next", f"ascbench predict {record.run_id} --dataset DATASET --data-root DIR --output FILE"),
                            ("params", format_int(c["params"])), ("wall time", format_seconds(m["timings"]["total_s"]))],
                           wide=wide))
        return
    summary = [
        *head,
        ("test clips", m["num_clips"]),
        *([("skipped audio", f"{len(m['skipped_files'])} unusable file(s) left out (--skip-bad; named in metrics.json)")]
          if m.get("skipped_files") else []),
        ("split", _split_line(m)),
        ("macro accuracy", f"{format_percent(m['macro_accuracy'])}  (chance {format_percent(1 / len(m['class_accuracy']), 0)}; "
                           f"metadata ceiling {_ceiling_text(m)})"),
        ("accuracy", f"{format_percent(m['accuracy'])}  (micro: share of test clips right)"),
        ("macro-F1", format_percent(m["macro_f1"])),
        ("log loss", f"{m['log_loss']:.4f}"),
        ("worst city", format_percent(m["worst_city_accuracy"], 1)),
        ("worst period", format_percent(m["worst_period_accuracy"], 1)),
        ("params", format_int(c["params"])),
        ("MACs per clip", f"{format_int(c['macs'])}  ({c['clip_seconds']:g} s)"),
        ("MACs per second", format_int(c["macs_per_second"])),
        ("param memory", f"{c['param_kb']:.1f} kB (float32)"),
        ("wall time", format_seconds(m["timings"]["total_s"])
         + (f"  (resumed from {m['resumed_from']})" if m.get("resumed_from") else "")),
        ("time split", _time_split(m["timings"])),
    ]
    print(render_pairs(summary, wide=wide))
    print()
    print(render_table([(k, format_percent(v, 1)) for k, v in m["city_accuracy"].items()], ["city", "accuracy"], wide=wide))
    print()
    print(render_table([(k, format_percent(v, 1)) for k, v in m["period_accuracy"].items()], ["period", "accuracy"],
                       wide=wide))


def _split_line(metrics: dict) -> str:
    split = metrics["split"]
    text = f"whole {split.get('group_by', 'recording')}s; {split['test_clips']} scored test clips"
    if split.get("leaky"):
        text = f"LEAKY ({split['leak']}); {text}"
    if split.get("excluded_classes"):
        text += f"; not scored (untaught): {', '.join(split['excluded_classes'])}"
    return text


def _ceiling_text(metrics: dict) -> str:
    ceiling = metrics.get("metadata_ceiling")
    if not ceiling:
        return "not recorded"
    from ascbench.formatting import format_percent

    return f"{format_percent(ceiling['best'], 1)}: what city and time alone score, no audio"


def _time_split(timings: dict[str, float]) -> str:
    parts = (("data", "data_s"), ("features", "features_s"), ("loading", "loading_s"), ("training", "train_s"),
             ("evaluation", "eval_s"))
    from ascbench.formatting import format_percent, format_seconds

    total = timings["total_s"] or 1.0
    return " · ".join(f"{label} {format_seconds(timings[key])} ({format_percent(timings[key] / total, 0)})"
                      for label, key in parts if key in timings)
