"""The ``ascbench`` command line."""

from __future__ import annotations

import argparse
import json
import os
import logging
import sys
from pathlib import Path

from ascbench import __version__
from ascbench.config import TUPLE_FIELDS, RunConfig
from ascbench.errors import AscbenchError, RunInterrupted

EPILOG_RUN = """examples:
  ascbench run --model mobileascnet --strategy finetune
  ascbench run --model mobileascnet --strategy scratch --protocol unseen-city --seed 1
  ascbench run --model se-trans --strategy scratch --protocol unseen-time --labeled 0.5

Every run writes runs/<run_id>/ (config, metrics, split, weights, log) and one row to
runs/results.jsonl; `ascbench leaderboard` summarises them. `ascbench list` shows every
registered model, strategy, dataset and protocol.

A run saves a checkpoint at every epoch end. If it is killed or stopped with Ctrl-C, running the
same command again continues from the last checkpoint (as does `ascbench run --resume DIR` with
the runs/.<run_id>.partial directory it names) and ends with the same numbers."""


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


def _add_run_parser(sub) -> None:
    d = RunConfig()
    p = sub.add_parser("run", help="train and score one model with one strategy", epilog=EPILOG_RUN,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(run_parser=p)
    p.add_argument("--config", default=None, metavar="FILE",
                   help="a TOML or YAML file of run settings (the field names of config.json); flags given here win")
    p.add_argument("--recipe", default=None, metavar="NAME",
                   help="a registered training recipe (apsipa2025-baseline, dcase2024-baseline, li2026, ...; "
                        "`ascbench list --recipes`): its settings fill every field not given by a flag or --config")
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="FIELD=VALUE",
                   help="set any config field (e.g. --set finetune_lr_scale=0.1 --set val_fraction=0.2); repeatable")
    p.add_argument("--model", default=d.model, help=f"registered model name (default: {d.model})")
    p.add_argument("--strategy", default=d.strategy, help=f"training strategy (default: {d.strategy})")
    p.add_argument("--dataset", default=d.dataset, help=f"dataset (default: {d.dataset}, built in, no download)")
    p.add_argument("--protocol", default=d.protocol, help="official | unseen-city | unseen-time | any registered protocol")
    p.add_argument("--labeled", type=float, default=d.labeled, metavar="F",
                   help="fraction of training clips that keep their label (default: the dataset's own labels)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed for splits, initialisation and batching")
    p.add_argument("--epochs", type=int, default=d.epochs, help="maximum training epochs (early stopping may end sooner)")
    p.add_argument("--pretrain-epochs", type=int, default=d.pretrain_epochs, help="maximum epochs of a pretraining stage")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (one-cycle schedule)")
    p.add_argument("--patience", type=int, default=d.patience, help="early-stopping patience in epochs; 0 disables")
    p.add_argument("--pretrain-on", default=None, metavar="DATASET", help="pretraining source (default: the dataset's own)")
    p.add_argument("--pretrained", default=None, metavar="CHECKPOINT", help="start from these weights instead of pretraining")
    p.add_argument("--pretrain-data-root", default=None, metavar="DIR", help="directory of the pretraining source dataset")
    p.add_argument("--front-end", "--feature-preset", dest="feature_preset", default=None, metavar="NAME",
                   help="feature front-end: embedded | apsipa2025 | dcase2024 | any registered (default: the dataset's; `ascbench list --front-ends`)")
    p.add_argument("--data-root", default=None, help="directory of the dataset's audio and metadata")
    p.add_argument("--skip-bad", action="store_true", help="leave unusable audio files out (listed in the run record)")
    p.add_argument("--other-rate", choices=("resample", "refuse"), default=d.other_rate,
                   help="audio at another sample rate than the dataset declares: resample it (said once; default) "
                        "or count it as unusable (refused, or left out with --skip-bad)")
    _add_split_options(p)
    p.add_argument("--folds", type=int, default=0, metavar="K",
                   help="unseen-city: run K cross-city folds (each city tested once) and report mean and worst fold; "
                        "all folds are checked before the first runs (preview: ascbench data split --folds K)")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=JSON",
                   help="model constructor argument, e.g. --model-arg gru_hidden=96 (repeatable)")
    p.add_argument("--context", default=None, metavar="city,time",
                   help="fuse city and/or time embeddings into a backbone that has none (e.g. cp-mobile, timm:...)")
    semi = p.add_argument_group("semi-supervision (with any strategy)")
    semi.add_argument("--semi", default=d.semi, choices=("none", "pseudo-label", "mean-teacher"),
                      help="how unlabeled training clips are used (default: none)")
    semi.add_argument("--pl-rounds", type=int, default=d.pl_rounds, help="pseudo-label rounds")
    semi.add_argument("--pl-threshold", type=float, default=d.pl_threshold, help="minimum confidence of a pseudo-label")
    semi.add_argument("--pl-unbalanced", action="store_true", help="select pseudo-labels by confidence alone, not per class")
    semi.add_argument("--pl-no-vote", action="store_true",
                      help="pseudo-label clip by clip instead of by recording (the official recipe: "
                           "--pl-rounds 1 --pl-threshold 0 --pl-unbalanced --pl-no-vote)")
    semi.add_argument("--mt-ema", type=float, default=d.mt_ema, help="mean-teacher EMA decay")
    semi.add_argument("--mt-weight", type=float, default=d.mt_weight, help="mean-teacher maximum consistency weight")
    aug = p.add_argument_group("augmentation")
    aug.add_argument("--freq-mask", type=int, default=d.freq_mask, help="SpecAugment widest mel band masked (0: off)")
    aug.add_argument("--time-mask", type=int, default=d.time_mask, help="SpecAugment widest frame span masked (0: off)")
    aug.add_argument("--mixstyle-p", type=float, default=d.mixstyle_p, help="frequency-wise MixStyle probability (0: off)")
    aug.add_argument("--mixstyle-alpha", type=float, default=d.mixstyle_alpha)
    aug.add_argument("--mixup-alpha", type=float, default=d.mixup_alpha, help="mixup Beta parameter (0: off)")
    aug.add_argument("--city-dropout", type=float, default=d.city_dropout,
                     help="rate at which a training clip's city becomes 'unknown', so that index is learned")
    aug.add_argument("--roll-seconds", type=float, default=d.roll_seconds, help="roll clips in time by up to this much (0: off)")
    aug.add_argument("--mask-value", default=d.mask_value, choices=("mean", "floor"),
                     help="what SpecAugment masks write: the mean, or the clip's floor (as the DCASE baseline)")
    train = p.add_argument_group("training")
    train.add_argument("--optimizer", default=d.optimizer, choices=("adamw", "adam", "sgd"))
    train.add_argument("--weight-decay", type=float, default=d.weight_decay)
    train.add_argument("--scheduler", default=d.scheduler, choices=("one-cycle", "step", "cosine", "constant"),
                       help="one-cycle (peak --lr) | step (x step_gamma every step_epochs) | cosine (after warmup_epochs) | constant")
    train.add_argument("--select-on", default=d.select_on, choices=("accuracy", "macro-accuracy", "loss", "last"),
                       help="validation metric that picks the kept epoch and drives early stopping")
    train.add_argument("--min-epochs", type=int, default=d.min_epochs,
                       help="earliest epoch early stopping may end training (default: a third of --epochs)")
    train.add_argument("--val-fraction", type=float, default=d.val_fraction,
                       help="labeled training recordings held out, per class, for model selection")
    train.add_argument("--finetune-lr-scale", type=float, default=d.finetune_lr_scale,
                       help="fine-tuning learning rate = --lr x this")
    train.add_argument("--normalization", default=d.normalization, choices=("per-bin", "none", "input-bn"),
                       help="per-bin standardisation from training clips | none | input-bn (a learned BatchNorm in front "
                            "of the model, as SE-Trans's bn0; needed for official SE-Trans weights)")
    train.add_argument("--pretrain-classes", default=d.pretrain_classes, choices=("source", "target"),
                       help="pretrain on the source's own classes, or on the target's through the dataset's class map")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--device", default=d.device, metavar="DEV",
                   help="auto | cpu | cuda | cuda:N | mps (default: auto, CUDA when present); recorded with the run")
    p.add_argument("--precision", default=d.precision, choices=("fp32", "bf16", "fp16"),
                   help="training precision: autocast to bf16 or fp16 (fp16 with a gradient scaler, CUDA only)")
    p.add_argument("--compile", default=d.compile, choices=("off", "default", "reduce-overhead", "max-autotune"),
                   help="torch.compile the training forward in this mode (default off; helps on CUDA for larger "
                        "models, costs a compile per training stage; see README, Devices)")
    p.add_argument("--logger", dest="loggers", action="append", default=None, metavar="NAME",
                   help="also send every epoch to this run logger (repeatable): csv, tensorboard or a plugin's "
                        "(ascbench list --loggers); the run record keeps the history either way")
    p.add_argument("--log-dir", default=None, metavar="DIR", help="where loggers write (default: <runs dir>/logs)")
    p.add_argument("--runs-dir", default=None, help="where runs are stored (default: $ASCBENCH_RUNS_DIR or ./runs)")
    _add_cache_dir(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--resume", default=None, metavar="DIR",
                   help="continue an interrupted run from its staging directory (runs/.<run_id>.partial); "
                        "its stored config is used and the other run options are ignored")


def _add_split_options(p) -> None:
    """Protocol options shared by `run` and `data split`, so a previewed split is the one a run gets."""
    d = RunConfig()
    g = p.add_argument_group("split (protocol options)")
    g.add_argument("--group-by", default=None, metavar="LEVEL",
                   help="grouping level kept whole on one side: recording, or session where the dataset declares it "
                        "(default: the dataset's coarsest; apsipa2025: session = city + date)")
    g.add_argument("--test-cities", default="", metavar="A,B", help="unseen-city: comma-separated hold-out cities")
    g.add_argument("--time-holdout", default=d.time_holdout, choices=("time-of-day", "date"),
                   help="unseen-time: hold out periods of the day (--test-periods) or dates (--test-dates)")
    g.add_argument("--test-periods", default=",".join(d.test_periods), metavar="P,Q",
                   help="unseen-time by time of day: held-out periods among night, morning, afternoon, evening "
                        f"(default: {','.join(d.test_periods)})")
    g.add_argument("--test-dates", default="", metavar="YYYY-MM-DD,...",
                   help="unseen-time by date: held-out dates (default: the latest dates, a quarter of the clips)")
    g.add_argument("--untaught", default=d.untaught, choices=("exclude", "refuse"),
                   help="a test class no labeled training clip teaches: leave it out of scoring and name it in the "
                        "record (exclude, default), or stop (refuse)")


def _split_fields(args) -> dict:
    """The RunConfig fields that the split options set."""
    names = lambda text: tuple(x.strip() for x in text.split(",") if x.strip())  # noqa: E731
    return {"group_by": args.group_by, "test_cities": names(args.test_cities), "time_holdout": args.time_holdout,
            "test_periods": names(args.test_periods), "test_dates": names(args.test_dates), "untaught": args.untaught}


class _CacheDir(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        os.environ["ASCBENCH_CACHE_DIR"] = values  # read by every cache (data, features, pretraining, checks)
        setattr(namespace, self.dest, values)


def _add_cache_dir(parser) -> None:
    parser.add_argument("--cache-dir", action=_CacheDir, default=None, metavar="DIR",
                        help="where generated data, features and pretraining stages are cached "
                             "(default: $ASCBENCH_CACHE_DIR or ~/.cache/ascbench)")


# Run options whose destination is not the config field of the same name.
_DEST_FIELDS = {"pl_unbalanced": "pl_class_balanced", "pl_no_vote": "pl_group_vote", "model_arg": "model_kwargs"}
_UNSET = object()


def _flag_values(args) -> dict:
    """Every config field as the run options give it (defaults included)."""
    kwargs = {}
    for item in args.model_arg:
        key, sep, value = item.partition("=")
        if not sep:
            raise AscbenchError(f"--model-arg expects KEY=VALUE, got {item!r}")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    fields = {f for f in RunConfig.__dataclass_fields__}
    values = {dest: getattr(args, dest) for dest in fields if hasattr(args, dest)}
    values["loggers"] = tuple(args.loggers or ())
    values.update(_split_fields(args), model_kwargs=kwargs, pl_class_balanced=not args.pl_unbalanced,
                  pl_group_vote=not args.pl_no_vote)
    return values


def _explicit_fields(args) -> dict:
    """The config fields set on the command line (flags actually typed, then --set), and nothing else, so
    that a recipe or a config file supplies the rest. A flag given at its default value still counts."""
    # Repeatable options append to what the namespace holds, so they start at None (untyped) instead of the marker.
    ns = argparse.Namespace(**{a.dest: None if isinstance(a, argparse._AppendAction) else _UNSET
                               for a in args.run_parser._actions if a.dest != "help"})
    args.run_parser.parse_args(args.run_argv, namespace=ns)
    typed = {_DEST_FIELDS.get(dest, dest) for dest, value in vars(ns).items() if value is not _UNSET and value is not None}
    values = _flag_values(args)
    given = {name: values[name] for name in typed if name in values}
    from ascbench.sweep import parse_assignment

    for text in args.assignments:
        key, value = parse_assignment(text, multi=False)
        if key in TUPLE_FIELDS and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        given[key] = value
    return given


def _config_from_args(args) -> RunConfig:
    """The run's config: a recipe's settings, under a --config file's, under the flags and --set typed."""
    given = _explicit_fields(args)
    return RunConfig.from_file(args.config, given) if args.config else RunConfig.from_dict(given)


def cmd_run(args) -> int:
    from tabulate import tabulate

    from ascbench.runner import execute

    progress = not args.no_progress and sys.stderr.isatty()
    if args.resume:
        config = _resume_config(Path(args.resume))
        record = execute(config, progress=progress, resume=args.resume)
        _print_summary(config, record)
        return 0
    config = _config_from_args(args)
    if config.folds:
        if config.protocol != "unseen-city":
            raise AscbenchError("--folds applies to --protocol unseen-city")
        _check_all_folds(config)  # a fold that cannot run must stop us before fold 1 is stored
        records = [execute(config.replace(fold=k), runs_root=args.runs_dir, progress=progress) for k in range(config.folds)]
        rows = [(f"{k + 1}/{config.folds}", ", ".join(r.metrics["split"]["test_cities_held_out"]),
                 f"{100 * r.metrics['macro_accuracy']:.2f}", f"{100 * r.metrics['accuracy']:.2f}",
                 ", ".join(r.metrics["split"].get("excluded_classes", [])) or "-", r.run_id)
                for k, r in enumerate(records)]
        accs = [r.metrics["macro_accuracy"] for r in records]
        print(tabulate(rows, headers=["fold", "test cities", "macro acc %", "accuracy %", "not scored", "run"],
                       tablefmt="simple"))
        print(f"\nmacro accuracy, mean over {config.folds} folds: {100 * sum(accs) / len(accs):.2f} %   "
              f"worst fold: {100 * min(accs):.2f} %")
        return 0
    from ascbench import distributed

    try:
        record = execute(config, runs_root=args.runs_dir, progress=progress)
        main_rank = distributed.is_main()
    finally:
        distributed.teardown()
    if main_rank:  # under torchrun one summary, from rank 0
        _print_summary(config, record)
    return 0


def _check_all_folds(config: RunConfig) -> None:
    from ascbench.registry import get_registry
    from ascbench.split_plan import plan_split

    ds = _load_dataset(config.dataset, config.data_root, require_audio=False)
    for k in range(config.folds):
        try:
            plan_split(ds, config, get_registry(), fold=k)
        except AscbenchError as exc:
            raise AscbenchError(f"fold {k + 1} of {config.folds} cannot run, so no fold was started: {exc}") from None


def cmd_sweep(args) -> int:
    from tabulate import tabulate

    from ascbench.results import runs_dir
    from ascbench.sweep import SweepSpec, already_made, describe, parse_assignment, plan, run_sweep

    spec = SweepSpec.load(args.spec) if args.spec else SweepSpec()
    spec = spec.with_overrides(dict(parse_assignment(a, multi=True) for a in args.grid),
                               dict(parse_assignment(a, multi=False) for a in args.set))
    if not spec.grid and not spec.base:
        raise AscbenchError("nothing to sweep: give a spec file or --grid KEY=V1,V2 (see ascbench sweep --help)")
    cells = spec.cells()
    if args.dry_run:
        cells = plan(cells, args.jobs or 1)
        made = already_made(cells, runs_dir(args.runs_dir), args.published)
        rows = [(describe(c), f"skip ({made[i][0]})" if i in made else "run") for i, c in enumerate(cells)]
        print(tabulate(rows, headers=["cell", "action"], tablefmt="simple"))
        return 0
    outcomes = run_sweep(cells, executor=args.executor, jobs=args.jobs, address=args.address, runs_root=args.runs_dir,
                         gpus_per_cell=args.gpus_per_cell, progress=not args.no_progress and sys.stderr.isatty(), published=args.published)
    rows = [(describe(o.config), o.status, f"{100 * o.accuracy:.2f}" if o.accuracy is not None else "",
             o.run_id if o.status in ("done", "skipped") else o.reason) for o in outcomes]
    print(tabulate(rows, headers=["cell", "status", "accuracy %", "run / reason"], tablefmt="simple"))
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed", "interrupted")}
    print(f"\n{len(outcomes)} cells: {counts['done']} done, {counts['skipped']} skipped (already stored or published), "
          f"{counts['failed']} failed" + (f", {counts['interrupted']} interrupted or not started" if counts["interrupted"] else ""))
    if counts["interrupted"]:
        print("The sweep was interrupted: run the same command again to finish it (stored cells are skipped, "
              "an interrupted cell continues from its last checkpoint).")
        return 130
    return 1 if counts["failed"] else 0


def _resume_config(path: Path) -> RunConfig:
    from ascbench.results import check_unfinished

    check_unfinished(path)  # a finished run is never resumed, so never rewritten or deleted
    return RunConfig.from_stored(json.loads((path / "config.json").read_text(encoding="utf-8")))


def _print_summary(config: RunConfig, record) -> None:
    from tabulate import tabulate

    m, c = record.metrics, record.metrics["complexity"]
    if m.get("accuracy") is None:
        print(tabulate([("run", record.run_id), ("model / strategy / semi", f"{config.model} / {config.strategy} / {config.semi}"),
                        ("dataset / protocol", f"{config.dataset} / {config.protocol}"),
                        ("trained on", f"{m['split']['train_clips']} clips ({m['split']['labeled']} labeled, "
                                       f"{m['split']['val']} of them for validation)"),
                        ("score", "none: this protocol has no test side"),
                        ("next", f"ascbench predict {record.run_id} --dataset DATASET --data-root DIR --output FILE"),
                        ("params", f"{c['params']:,}"), ("wall time", f"{m['timings']['total_s']:.1f} s")],
                       tablefmt="simple"))
        return
    summary = [
        ("run", record.run_id),
        ("model / strategy / semi", f"{config.model} / {config.strategy} / {config.semi}"),
        ("dataset / protocol", f"{config.dataset} / {config.protocol}"),
        ("test clips", m["num_clips"]),
        *([("skipped audio", f"{len(m['skipped_files'])} unusable file(s) left out (--skip-bad; named in metrics.json)")]
          if m.get("skipped_files") else []),
        ("split", _split_line(m)),
        ("macro accuracy", f"{100 * m['macro_accuracy']:.2f} %  (chance {100 / len(m['class_accuracy']):.0f} %; "
                           f"metadata ceiling {_ceiling_text(m)})"),
        ("accuracy", f"{100 * m['accuracy']:.2f} %  (micro: share of test clips right)"),
        ("macro-F1", f"{100 * m['macro_f1']:.2f} %"),
        ("log loss", f"{m['log_loss']:.4f}"),
        ("worst city", f"{100 * m['worst_city_accuracy']:.1f} %"),
        ("worst period", f"{100 * m['worst_period_accuracy']:.1f} %"),
        ("params", f"{c['params']:,}"),
        ("MACs per clip", f"{c['macs']:,}  ({c['clip_seconds']:g} s)"),
        ("MACs per second", f"{c['macs_per_second']:,}"),
        ("param memory", f"{c['param_kb']:.1f} kB (float32)"),
        ("wall time", f"{m['timings']['total_s']:.1f} s" + (f"  (resumed from {m['resumed_from']})" if m.get("resumed_from") else "")),
        ("time split", _time_split(m["timings"])),
    ]
    print(tabulate(summary, tablefmt="simple"))
    per_city = [(k, f"{100 * v:.1f}") for k, v in m["city_accuracy"].items()]
    per_period = [(k, f"{100 * v:.1f}") for k, v in m["period_accuracy"].items()]
    print()
    print(tabulate(per_city, headers=["city", "acc %"], tablefmt="simple"))
    print()
    print(tabulate(per_period, headers=["period", "acc %"], tablefmt="simple"))


def _split_line(metrics: dict) -> str:
    split = metrics["split"]
    text = f"whole {split.get('group_by', 'recording')}s; {split['test_clips']} scored test clips"
    if split.get("excluded_classes"):
        text += f"; not scored (untaught): {', '.join(split['excluded_classes'])}"
    return text


def _ceiling_text(metrics: dict) -> str:
    ceiling = metrics.get("metadata_ceiling")
    if not ceiling:
        return "not recorded"
    return f"{100 * ceiling['best']:.1f} %: what city and time alone score, no audio"


def _time_split(timings: dict[str, float]) -> str:
    parts = (("data", "data_s"), ("features", "features_s"), ("loading", "loading_s"), ("training", "train_s"),
             ("evaluation", "eval_s"))
    total = timings["total_s"] or 1.0
    return " · ".join(f"{label} {timings[key]:.1f} s ({100 * timings[key] / total:.0f} %)"
                      for label, key in parts if key in timings)


def cmd_list(args) -> int:
    from tabulate import tabulate

    from ascbench.registry import get_registry

    reg = get_registry()
    kinds = [k for k in PLURAL if getattr(args, PLURAL[k].replace('-', '_'))] or list(PLURAL)
    for kind in kinds:
        rows = [(name, reg.owner(kind, name), _with_options(kind, reg.get(kind, name))) for name in reg.names(kind)]
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
    if not any(getattr(args, PLURAL[k].replace('-', '_')) for k in PLURAL):  # built into the core, not plugins (yet)
        from ascbench.semi import SEMI_DESCRIPTIONS

        print("semi-supervised methods (--semi, with any strategy):")
        print(tabulate([(name, "core", text) for name, text in SEMI_DESCRIPTIONS.items()],
                       headers=["name", "plugin", "description"], tablefmt="simple"))
    return 0


def _with_options(kind: str, spec) -> str:
    """A plugin's description, and its own options (``--set KIND.FIELD=VALUE``) when it declares any."""
    from ascbench.options import describe

    own = describe(getattr(spec, "options_class", None))
    if not own:
        return spec.description
    return spec.description + "; options: " + ", ".join(f"{kind}.{f}={d!r} ({t})" for f, t, d, _ in own)


def _with_configs(root: Path, rows: list[dict]) -> list[dict]:
    """Rows with their experiment's setting (leaderboard rows are exact experiments), from each run's config."""
    from ascbench.leaderboard import with_settings

    configs = {}
    for row in rows:
        path = root / row["run_id"] / "config.json"
        if path.exists():
            configs[row["run_id"]] = json.loads(path.read_text(encoding="utf-8"))
    return with_settings(rows, configs)


def cmd_new_plugin(args) -> int:
    from ascbench.scaffold import new_plugin

    root = new_plugin(args.name, args.kind, Path(args.dir))
    print(f"wrote {root}\nnext: pip install -e {root} && ascbench list && python -m pytest -q {root / 'tests'}")
    return 0


def cmd_plugins(args) -> int:
    from tabulate import tabulate

    from ascbench.registry import get_registry

    rows = []
    for st in get_registry().status.values():
        registered = ", ".join(st.registered)
        rows.append((st.name, st.source, "ok" if st.ok else "FAILED", registered if st.ok else st.error))
    print(tabulate(rows, headers=["plugin", "module", "status", "registered / error"], tablefmt="simple", maxcolwidths=[None, None, None, 90]))
    print("\n$ASCBENCH_STRICT_PLUGINS=1 makes plugin failures fatal; $ASCBENCH_PLUGINS=a,b loads only those plugins.")
    return 0


def cmd_leaderboard(args) -> int:
    from ascbench.leaderboard import aggregate, render
    from ascbench.results import load_rows, runs_dir

    if args.check:
        from ascbench.publish import check

        problems = check(Path(args.check))
        if problems:
            print("\n\n".join(problems))
            raise AscbenchError(f"published tables in {args.check} do not match their results (diff above)")
        print(f"{args.check}: every published table matches its results")
        return 0
    root = runs_dir(args.runs_dir)
    rows = _with_configs(root, load_rows(root))
    if args.protocol:
        rows = [r for r in rows if r["protocol"] == args.protocol]
    if args.model:
        rows = [r for r in rows if r["model"] == args.model]
    if not rows:
        raise AscbenchError(f"no results in {root / 'results.jsonl'}; run `ascbench run` first")
    if args.publish:
        from ascbench.publish import import_runs, publish

        target = Path(args.publish)
        count = import_runs(root, target, rows, allow_nonstandard=args.allow_nonstandard)
        written = publish(target)
        print(f"published {count} run(s) to {target}: {', '.join(written)}")
        return 0
    table = aggregate(rows)
    if args.sort:
        from ascbench.leaderboard import sort_table

        table = sort_table(table, args.sort)
    text = render(table, args.format)
    if args.output:
        from ascbench.fileio import atomic_write_text

        atomic_write_text(Path(args.output), text if text.endswith("\n") else text + "\n")
        print(f"wrote {args.output}")
    else:
        print(text)
    return 0


def cmd_profile(args) -> int:
    from tabulate import tabulate

    from ascbench.complexity import DCASE_MEMORY_LIMIT_BYTES, latency_ms, profile, torchinfo_macs
    from ascbench.config import RunConfig
    from ascbench.data.timefeatures import TIME_FEATURE_DIM
    from ascbench.features import get_preset
    from ascbench.registry import get_registry
    from ascbench.specs import ModelContext
    from ascbench.training import create_model

    cfg = get_preset(args.preset)
    frames, second = cfg.n_frames(args.seconds), cfg.n_frames(1.0)
    spec = get_registry().model(args.model)
    model = create_model(spec, ModelContext(10, args.cities + 1, TIME_FEATURE_DIM, cfg.n_mels, frames),
                         RunConfig(model=args.model, context=args.context))
    clip = profile(model, cfg.n_mels, frames, TIME_FEATURE_DIM)
    per_second = profile(model, cfg.n_mels, second, TIME_FEATURE_DIM)
    info = torchinfo_macs(model, cfg.n_mels, second, TIME_FEATURE_DIM)
    fits = clip.widest_precision_within()
    print(tabulate([
        ("model", args.model),
        ("input", f"{cfg.n_mels} mel x {frames} frames ({args.seconds:g} s, preset {args.preset}); front-end excluded"),
        ("params", f"{clip.params:,}"),
        ("MACs per second of audio", f"{per_second.macs:,}  (DCASE limit 30,000,000)"),
        ("MACs per clip", f"{clip.macs:,}"),
        ("torchinfo MACs per second", f"{info:,}" if info is not None else "n/a (torchinfo failed)"),
        ("param memory", ", ".join(f"{clip.memory_bytes(p):,} B {p}" for p in ("float32", "float16", "int8"))),
        (f"fits {DCASE_MEMORY_LIMIT_BYTES:,} B", f"at {fits}" if fits else "at no precision"),
        ("CPU latency per clip", f"{latency_ms(model, cfg.n_mels, frames, TIME_FEATURE_DIM):.2f} ms (median, batch 1)"),
    ], tablefmt="simple"))
    return 0


def _load_dataset(name: str, data_root: str | None, require_audio: bool):
    from ascbench.data.dataset import DatasetOptions
    from ascbench.registry import get_registry

    options = DatasetOptions(data_root=Path(data_root) if data_root else None, require_audio=require_audio)
    return get_registry().dataset(name).load(options)


def cmd_data(args) -> int:
    from tabulate import tabulate

    from ascbench.data.summary import dataset_tables, split_table

    if args.data_command == "check":
        from ascbench.data.validate import validate_audio

        ds = _load_dataset(args.dataset, args.data_root, require_audio=True)
        reports = validate_audio(ds, progress=sys.stderr.isatty())
        bad = [r for r in reports if r.problem]
        for r in bad:
            print(f"{ds.root / r.filename}: {r.problem}")
        notes: dict[str, int] = {}
        for r in reports:
            for n in r.notes:
                notes[n] = notes.get(n, 0) + 1
        for note, count in sorted(notes.items()):
            print(f"note: {count} file(s): {note}")
        print(f"{len(bad)} unusable of {len(reports)} files in {ds.name}")
        return 1 if bad else 0
    if args.data_command == "info":
        ds = _load_dataset(args.dataset, args.data_root, require_audio=False)
        print(f"{ds.name}: {ds.description}")
        for title, table in dataset_tables(ds).items():
            print(f"\n{title}:")
            print(tabulate(table, headers="keys", tablefmt="simple", showindex=False))
        return 0

    from ascbench.metadata_ceiling import describe as describe_ceiling
    from ascbench.registry import get_registry
    from ascbench.split_plan import plan_split

    config = RunConfig(dataset=args.dataset, protocol=args.protocol, seed=args.seed, labeled=args.labeled,
                       folds=args.folds, data_root=args.data_root, **_split_fields(args))
    if config.folds and config.protocol != "unseen-city":
        raise AscbenchError("--folds applies to --protocol unseen-city")
    ds = _load_dataset(args.dataset, args.data_root, require_audio=False)
    folds = range(config.folds) if config.folds else [None]
    plans = [plan_split(ds, config, get_registry(), fold=k, val_fraction=0.0) for k in folds]
    if config.folds:
        print(f"{ds.name} under {args.protocol}, {config.folds} folds (seed {args.seed}); every fold can run:")
        rows = [(f"{k + 1}/{config.folds}", ", ".join(p.split.info["test_cities_held_out"]), p.split.info["train_clips"],
                 p.split.info["test_clips"], ", ".join(p.split.excluded_classes) or "-", f"{100 * p.ceiling['best']:.1f}")
                for k, p in enumerate(plans)]
        print(tabulate(rows, headers=["fold", "test cities", "train clips", "scored test clips", "not scored",
                                      "metadata ceiling %"], tablefmt="simple"))
        return 0
    (plan,) = plans
    split, part = plan.split, plan.partition
    print(f"{ds.name} under {args.protocol} (seed {args.seed}), whole {split.info['group_by']}s on one side:")
    print(tabulate(split_table(ds, split, part.labeled), headers="keys", tablefmt="simple", showindex=False))
    if split.excluded_classes:
        print(f"\nnot scored (no labeled training clip teaches them): {', '.join(split.excluded_classes)}")
    if split.info.get("purged_clips"):
        print(f"left out of training: {split.info['purged_clips']} clips of {split.info['group_by']}s that reach into the "
              "held-out times")
    print(f"\nmetadata ceiling (no audio; learns from the labeled training clips): {describe_ceiling(plan.ceiling)}")
    if args.output:
        import numpy as np
        import pandas as pd

        from ascbench.fileio import atomic_write_text

        role = np.full(len(ds.meta), "unused", dtype=object)
        role[part.labeled], role[part.unlabeled], role[split.test] = "train-labeled", "train-unlabeled", "test"
        frame = pd.DataFrame({"filename": ds.meta["filename"], "city": ds.meta["city"], "timestamp": ds.meta["timestamp"],
                              "group": ds.meta["group"], split.info["group_by"]: ds.groups(split.info["group_by"]),
                              "scene_label": ds.meta["scene_label"], "role": role})
        frame = frame.loc[:, ~frame.columns.duplicated()]
        atomic_write_text(Path(args.output), frame.to_csv(index=False))
        print(f"wrote {args.output}")
    return 0


def _find_record(run_id: str, runs_root: str | None, published: str | None) -> tuple[dict, dict, dict]:
    """(row, config, metrics) of a run, from a published directory or the runs store."""
    from ascbench.results import load_rows, runs_dir

    if published:
        path = Path(published) / "results" / f"{run_id}.json"
        if not path.exists():
            raise AscbenchError(f"no published record {path}")
        record = json.loads(path.read_text())
        return record["row"], record["config"], record["metrics"]
    root = runs_dir(runs_root)
    rows = [r for r in load_rows(root) if r["run_id"] == run_id]
    if not rows:
        raise AscbenchError(f"run {run_id!r} is not in {root / 'results.jsonl'} (use --from DIR for a published leaderboard)")
    return (rows[0], json.loads((root / run_id / "config.json").read_text()),
            json.loads((root / run_id / "metrics.json").read_text()))


def cmd_plot(args) -> int:
    from ascbench.fileio import atomic_write_text
    from ascbench.plots import confusion_matrix_plot, grouped_accuracy_bars, learning_curves

    row, config, metrics = _find_record(args.run_id, args.runs_dir, args.source)
    history = metrics.get("history") or []
    if metrics.get("accuracy") is None and not history:
        raise AscbenchError(f"run {args.run_id} was not scored (protocol {config.get('protocol')!r} has no test side) "
                            "and its record holds no epoch history (made before ascbench stored it); nothing to plot")
    out = Path(args.output) if args.output else Path(args.runs_dir or "runs") / args.run_id
    files = {"learning_curves.svg": learning_curves(history)} if history else {}
    if metrics.get("accuracy") is not None:
        classes = list(metrics["class_accuracy"]) if len(metrics["class_accuracy"]) == len(metrics["confusion_matrix"]) \
            else [str(i) for i in range(len(metrics["confusion_matrix"]))]
        files.update({"confusion_matrix.svg": confusion_matrix_plot(metrics["confusion_matrix"], classes),
                      "city_accuracy.svg": grouped_accuracy_bars(metrics["city_accuracy"], "city"),
                      "period_accuracy.svg": grouped_accuracy_bars(metrics["period_accuracy"], "time period")})
    for name, svg in files.items():
        atomic_write_text(out / name, svg)
    print(f"wrote {', '.join(str(out / n) for n in files)}")
    return 0


def _check_plugins_installed(config: dict, metrics: dict) -> None:
    """A row whose plugin is not installed here: say which package (and version) its record names."""
    from ascbench.registry import get_registry

    registry = get_registry()
    for used in metrics.get("provenance", {}).get("plugins", []):
        kind, name = used["kind"], used["name"]
        if name in registry.entries[kind] or (kind == "model" and registry._family_of(name)):
            continue
        package, version = used.get("distribution"), used.get("version")
        if package:
            where = f"package {package} {version or ''}".rstrip()
            hint = f"pip install '{package}=={version}'" if version else f"pip install {package}"
        else:
            where, hint = "no recorded package", f"install the plugin {used.get('plugin')!r} that provided it"
        raise AscbenchError(f"this row needs {kind} {name!r} from plugin {used.get('plugin')!r} ({where}), "
                            f"which is not installed here: {hint}")


def cmd_rerun(args) -> int:
    from ascbench.runner import execute

    row, config, metrics = _find_record(args.run_id, args.runs_dir, args.source)
    _check_plugins_installed(config, metrics)
    record = execute(RunConfig.from_dict(config), runs_root=args.runs_dir, progress=not args.no_progress and sys.stderr.isatty())
    print(f"original  {args.run_id}: accuracy {100 * row['accuracy']:.2f} %  macro-F1 {100 * row['macro_f1']:.2f} %")
    print(f"re-run    {record.run_id}: accuracy {100 * record.row['accuracy']:.2f} %  macro-F1 {100 * record.row['macro_f1']:.2f} %")
    if f"{row['accuracy']:.4f}" != f"{record.row['accuracy']:.4f}":
        print("the re-run differs; compare provenance (versions, machine, threads) in both records")
        return 1
    print("reproduced")
    return 0


def cmd_predict(args) -> int:
    from collections import Counter

    from ascbench.predict import predict_run, submission_frame, write_submission
    from ascbench.registry import get_registry
    from ascbench.results import runs_dir

    run_dir = Path(args.run_id) if Path(args.run_id).is_dir() else runs_dir(args.runs_dir) / args.run_id
    registry = get_registry()
    pred = predict_run(run_dir, args.dataset, registry, data_root=args.data_root,
                       progress=not args.no_progress and sys.stderr.isatty(), threads=args.threads, device=args.device)
    frame = submission_frame(pred, args.format, registry)
    path = write_submission(frame, args.output, args.format)
    counts = Counter(pred.labels)
    print(f"run {pred.run_id} on {pred.dataset.name}: {len(frame)} clips predicted, every file once, known labels")
    if pred.unseen_cities:
        print(f"cities never seen in training (given the unknown-city index): {', '.join(pred.unseen_cities)}")
    print("predicted: " + ", ".join(f"{name} {counts.get(name, 0)}" for name in pred.classes))
    print(f"wrote {path} ({args.format} format)")
    return 0


def cmd_export(args) -> int:
    import yaml

    row, config, metrics = _find_record(args.run_id, args.runs_dir, args.source)
    if metrics.get("accuracy") is None:
        raise AscbenchError(f"run {args.run_id} was not scored (protocol {config.get('protocol')!r}); the meta file reports "
                            "development results, so export the scored run of the same recipe (e.g. under official)")
    c = metrics["complexity"]
    meta = {
        "submission": {"label": f"ascbench_{row['model']}_{row['strategy']}", "name": f"{row['model']} ({row['strategy']})",
                       "abbreviation": row["model"][:10]},
        "system": {
            "description": {"input_sampling_rate": metrics.get("features", {}).get("sample_rate"),
                            "acoustic_features": "log-mel energies", "machine_learning_method": row["model"],
                            "semi_supervised": row.get("semi", "none"), "ascbench_config": config},
            "complexity": {"total_parameters": c["params"], "total_parameters_non_zero": c["params"],
                           "memory_use": c["param_bytes"]["float32"], "memory_use_fp16": c["param_bytes"]["float16"],
                           "macs": c["macs_per_second"], "macs_per_clip": c["macs"],
                           "macs_torchinfo": c.get("torchinfo_macs_per_second")},
        },
        "results": {"development_dataset": {
            "overall": {"accuracy": round(100 * metrics["accuracy"], 2), "logloss": round(metrics["log_loss"], 4)},
            "class_wise": {k: {"accuracy": round(100 * v, 2), "logloss": round(metrics["class_log_loss"][k], 4)}
                           for k, v in metrics["class_accuracy"].items()},
            "city_wise": {k: {"accuracy": round(100 * v, 2)} for k, v in metrics.get("city_accuracy", {}).items()},
        }},
    }
    text = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    if args.output:
        from ascbench.fileio import atomic_write_text

        atomic_write_text(Path(args.output), text)
        print(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ascbench",
        description="Benchmark acoustic scene classifiers under city and time shift. "
                    "Models, strategies, datasets and protocols come from plugins.",
        epilog="start with: ascbench list, then ascbench run --model mobileascnet --strategy finetune",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks and debug logs")
    parser.add_argument("--version", action="version", version=f"ascbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run_parser(sub)

    p = sub.add_parser("list", help="show every registered model, strategy, dataset, protocol, front-end and recipe")
    for kind in PLURAL.values():
        p.add_argument(f"--{kind}", action="store_true", help=f"show only {kind}")
    p.add_argument("--all", action="store_true", help="list every model of model families such as timm:")

    p = sub.add_parser("new-plugin", help="write a ready-to-install plugin package (model or strategy)")
    p.add_argument("name")
    p.add_argument("--kind", choices=("model", "strategy"), default="model")
    p.add_argument("--dir", default=".", help="where to create ascbench-NAME/ (default: here)")

    sub.add_parser("plugins", help="every plugin found, whether it loaded, and what it registered")

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
    _add_cache_dir(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("leaderboard", help="summarise stored results (mean ± std over seeds)")
    p.add_argument("--format", choices=("table", "markdown", "csv"), default="table")
    p.add_argument("--output", help="write to this file instead of the terminal")
    p.add_argument("--protocol", help="only this protocol")
    p.add_argument("--model", help="only this model")
    # Spelled out rather than imported so that --help does not load pandas; test_cli keeps it in step.
    p.add_argument("--sort", choices=("macro_accuracy", "accuracy", "macro_f1", "log_loss", "worst_city", "worst_period", "params", "macs",
                                      "latency_ms", "train_s"), help="sort by this column (best first)")
    p.add_argument("--runs-dir", default=None, help="results store (default: $ASCBENCH_RUNS_DIR or ./runs)")
    p.add_argument("--publish", metavar="DIR", help="copy the (filtered) run records to DIR/results and regenerate DIR's tables")
    p.add_argument("--check", metavar="DIR", help="fail if DIR's published tables differ from what DIR/results regenerates")
    p.add_argument("--allow-nonstandard", action="store_true",
                   help="with --publish: also publish runs whose settings differ from the defaults or their recipe "
                        "(smoke runs, model arguments); their setting column says how")

    p = sub.add_parser("rerun", help="run a stored result again from its recorded config and compare")
    p.add_argument("run_id")
    p.add_argument("--from", dest="source", metavar="DIR", help="a published leaderboard directory holding the record")
    p.add_argument("--runs-dir", default=None)
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("plot", help="confusion matrix and per-city / per-period accuracy of a run (SVG)")
    p.add_argument("run_id")
    p.add_argument("--from", dest="source", metavar="DIR", help="a published leaderboard directory holding the record")
    p.add_argument("--runs-dir", default=None)
    p.add_argument("--output", help="directory for the SVG files (default: the run's directory)")

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
    p.add_argument("--output", required=True, help="submission file to write")
    p.add_argument("--format", choices=("challenge", "dcase"), default="challenge")
    p.add_argument("--runs-dir", default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="auto", metavar="DEV", help="auto | cpu | cuda | cuda:N | mps (default auto)")
    p.add_argument("--no-progress", action="store_true")
    _add_cache_dir(p)

    p = sub.add_parser("export", help="export a run in the DCASE Task 1 submission meta format (YAML)")
    p.add_argument("run_id")
    p.add_argument("--format", choices=("dcase",), default="dcase")
    p.add_argument("--from", dest="source", metavar="DIR", help="a published leaderboard directory holding the record")
    p.add_argument("--runs-dir", default=None)
    p.add_argument("--output", help="write to this file")

    p = sub.add_parser("data", help="inspect a dataset and its splits (metadata only; no audio needed)")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    q = data_sub.add_parser("info", help="clips, labeled fraction, per-city and per-period counts, class balance")
    q.add_argument("dataset")
    q.add_argument("--data-root", default=None)
    q = data_sub.add_parser("check", help="read every audio file; list each unusable one with its reason")
    q.add_argument("dataset")
    q.add_argument("--data-root", default=None)
    q = data_sub.add_parser("split", help="preview a protocol's split: sides, classes not scored, metadata ceiling, folds; write it as CSV")
    q.add_argument("dataset")
    q.add_argument("--protocol", default="official")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--labeled", type=float, default=None)
    _add_split_options(q)
    q.add_argument("--folds", type=int, default=0, metavar="K",
                   help="unseen-city: preview K cross-city folds (test cities, sizes, classes not scored, ceiling)")
    q.add_argument("--data-root", default=None)
    q.add_argument("--output", help="write the split (one row per clip with its role) to this CSV")

    p = sub.add_parser("profile", help="parameters, MACs and memory of a model, without training")
    p.add_argument("model")
    p.add_argument("--preset", default="apsipa2025", help="feature preset giving the input shape (default: apsipa2025)")
    p.add_argument("--seconds", type=float, default=10.0, help="clip length (default: 10)")
    p.add_argument("--cities", type=int, default=8, help="number of known cities (default: 8)")
    p.add_argument("--context", default=None, metavar="city,time", help="profile with context fusion added")
    return parser


def _one_line_plugin_warnings() -> None:
    import warnings

    from ascbench.registry import PluginWarning

    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, PluginWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            original(message, category, filename, lineno, file, line)

    warnings.showwarning = show


PLURAL = {"model": "models", "strategy": "strategies", "dataset": "datasets", "protocol": "protocols",
          "front-end": "front-ends", "recipe": "recipes", "logger": "loggers"}
COMMANDS = {"sweep": cmd_sweep, "new-plugin": cmd_new_plugin, "plugins": cmd_plugins, "plot": cmd_plot, "rerun": cmd_rerun, "export": cmd_export, "predict": cmd_predict, "data": cmd_data, "run": cmd_run, "list": cmd_list, "leaderboard": cmd_leaderboard, "profile": cmd_profile}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.command == "run":  # the run's own options, to tell typed flags from defaults (recipes fill the rest)
        args.run_argv = argv[argv.index("run") + 1:]
    # Under torchrun only rank 0 reports progress; the other ranks speak up only for problems.
    quiet_rank = os.environ.get("RANK", "0") != "0"
    level = logging.DEBUG if args.debug else logging.WARNING if quiet_rank else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    _one_line_plugin_warnings()
    try:
        return COMMANDS[args.command](args)
    except RunInterrupted as exc:
        print(f"ascbench: {exc}", file=sys.stderr)
        return 130
    except AscbenchError as exc:
        if args.debug:
            raise
        print(f"ascbench: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head & co.
        sys.stdout = open(os.devnull, "w")
        return 0
    except Exception as exc:  # a bug or a plugin fault: one line by default, the traceback with --debug
        if args.debug:
            raise
        print(f"ascbench: error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ascbench: interrupted; nothing was written for the unfinished run", file=sys.stderr)
        return 130
