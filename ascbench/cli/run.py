"""``ascbench run``: one benchmark run from flags, --set, a config file or a recipe; its summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ascbench.config import TUPLE_FIELDS, RunConfig
from ascbench.errors import AscbenchError
from ascbench.cli.common import add_cache_dir, add_split_options, parse_model_args, split_fields


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


def add_parser(sub) -> None:
    d = RunConfig()
    p = sub.add_parser("run", help="train and score one model with one strategy", epilog=EPILOG_RUN,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(run_parser=p)
    p.add_argument("--config", default=None, metavar="FILE",
                   help="a TOML or YAML file of run settings (the field names of config.json); flags given here win")
    p.add_argument("--recipe", default=None, metavar="NAME",
                   help="a registered training recipe (apsipa2025-baseline, dcase2024-baseline, li2026, ...; "
                        "`ascbench list --recipes`): its settings fill every field not given by a flag or --config; its own "
                        "options are --set recipe.FIELD=VALUE (every built-in: recipe.budget=0.1 runs a tenth of its epochs)")
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="FIELD=VALUE",
                   help="set any config field or plugin option (e.g. --set val_fraction=0.2 --set strategy.lr_scale=0.1 "
                        "--set semi.rounds=3); repeatable; `ascbench list` shows each plugin's options")
    _add_experiment_options(p, d)
    _add_data_options(p, d)
    _add_semi_options(p, d)
    _add_augmentation_options(p, d)
    _add_training_options(p, d)
    _add_machine_options(p, d)


def _add_experiment_options(p: argparse.ArgumentParser, d: RunConfig) -> None:
    """What is run: the model, the strategy and where its weights start."""
    g = p.add_argument_group("what to run")
    g.add_argument("--model", default=d.model, help=f"registered model name (default: {d.model})")
    g.add_argument("--strategy", default=d.strategy, help=f"training strategy (default: {d.strategy})")
    g.add_argument("--dataset", default=d.dataset, help=f"dataset (default: {d.dataset}, built in, no download)")
    g.add_argument("--protocol", default=d.protocol, help="official | unseen-city | unseen-time | any registered protocol")
    g.add_argument("--seed", type=int, default=d.seed, help="seed for splits, initialisation and batching")
    g.add_argument("--model-arg", action="append", default=[], metavar="KEY=JSON",
                   help="model constructor argument, e.g. --model-arg gru_hidden=96 (repeatable)")
    g.add_argument("--context", default=None, metavar="city,time",
                   help="fuse city and/or time embeddings into a backbone that has none (e.g. cp-mobile, timm:...)")
    g.add_argument("--pretrain-on", default=None, metavar="DATASET", help="pretraining source (default: the dataset's own)")
    g.add_argument("--pretrained", default=None, metavar="CHECKPOINT", help="start from these weights instead of pretraining")
    g.add_argument("--pretrain-data-root", default=None, metavar="DIR", help="directory of the pretraining source dataset")


def _add_data_options(p: argparse.ArgumentParser, d: RunConfig) -> None:
    """The dataset, its split and its features."""
    g = p.add_argument_group("data, split and features")
    g.add_argument("--labeled", type=float, default=d.labeled, metavar="F",
                   help="fraction of training clips that keep their label (default: the dataset's own labels)")
    g.add_argument("--front-end", "--feature-preset", dest="feature_preset", default=None, metavar="NAME",
                   help="feature front-end: embedded | apsipa2025 | dcase2024 | any registered (default: the dataset's; `ascbench list --front-ends`)")
    g.add_argument("--data-root", default=None, help="directory of the dataset's audio and metadata")
    g.add_argument("--skip-bad", action="store_true", help="leave unusable audio files out (listed in the run record)")
    g.add_argument("--other-rate", choices=("resample", "refuse"), default=d.other_rate,
                   help="audio at another sample rate than the dataset declares: resample it (said once; default) "
                        "or count it as unusable (refused, or left out with --skip-bad)")
    add_split_options(p)
    g.add_argument("--folds", type=int, default=0, metavar="K",
                   help="unseen-city: run K cross-city folds (each city tested once) and report mean and worst fold; "
                        "all folds are checked before the first runs (preview: ascbench data split --folds K)")


def _add_semi_options(p: argparse.ArgumentParser, d: RunConfig) -> None:
    """Semi-supervision and the built-in methods' shortcuts."""
    g = p.add_argument_group("semi-supervision (with any strategy)")
    g.add_argument("--semi", default=d.semi, metavar="NAME",
                   help="how unlabeled training clips are used: none (default), pseudo-label, mean-teacher or a "
                        "plugin's (ascbench list --semi-methods)")
    # Shortcuts for the built-in methods' own options (any option: --set semi.FIELD=VALUE; ascbench list --semi-methods).
    g.add_argument("--pl-rounds", type=int, default=None, help="pseudo-label rounds (semi.rounds; default 2)")
    g.add_argument("--pl-threshold", type=float, default=None,
                   help="minimum confidence of a pseudo-label (semi.threshold; default 0.5)")
    g.add_argument("--pl-unbalanced", action="store_true",
                   help="select pseudo-labels by confidence alone, not per class (semi.class_balanced=false)")
    g.add_argument("--pl-no-vote", action="store_true",
                   help="pseudo-label clip by clip instead of by recording (semi.group_vote=false; the official "
                        "recipe: --recipe apsipa2025-baseline)")
    g.add_argument("--mt-ema", type=float, default=None, help="mean-teacher EMA decay (semi.ema; default 0.99)")
    g.add_argument("--mt-weight", type=float, default=None,
                   help="mean-teacher maximum consistency weight (semi.weight; default 10)")


def _add_augmentation_options(p: argparse.ArgumentParser, d: RunConfig) -> None:
    """Augmentations of the training batches."""
    g = p.add_argument_group("augmentation")
    g.add_argument("--freq-mask", type=int, default=d.freq_mask, help="SpecAugment widest mel band masked (0: off)")
    g.add_argument("--time-mask", type=int, default=d.time_mask, help="SpecAugment widest frame span masked (0: off)")
    g.add_argument("--mixstyle-p", type=float, default=d.mixstyle_p, help="frequency-wise MixStyle probability (0: off)")
    g.add_argument("--mixstyle-alpha", type=float, default=d.mixstyle_alpha)
    g.add_argument("--mixup-alpha", type=float, default=d.mixup_alpha, help="mixup Beta parameter (0: off)")
    g.add_argument("--city-dropout", type=float, default=d.city_dropout,
                   help="rate at which a training clip's city becomes 'unknown', so that index is learned")
    g.add_argument("--roll-seconds", type=float, default=d.roll_seconds, help="roll clips in time by up to this much (0: off)")
    g.add_argument("--mask-value", default=d.mask_value, choices=("mean", "floor"),
                   help="what SpecAugment masks write: the mean, or the clip's floor (as the DCASE baseline)")


def _add_training_options(p: argparse.ArgumentParser, d: RunConfig) -> None:
    """The optimisation: epochs, optimiser, schedule and model selection."""
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=d.epochs, help="maximum training epochs (early stopping may end sooner)")
    g.add_argument("--pretrain-epochs", type=int, default=d.pretrain_epochs, help="maximum epochs of a pretraining stage")
    g.add_argument("--batch-size", type=int, default=d.batch_size)
    g.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (one-cycle schedule)")
    g.add_argument("--patience", type=int, default=d.patience, help="early-stopping patience in epochs; 0 disables")
    g.add_argument("--optimizer", default=d.optimizer, choices=("adamw", "adam", "sgd"))
    g.add_argument("--weight-decay", type=float, default=d.weight_decay)
    g.add_argument("--scheduler", default=d.scheduler, choices=("one-cycle", "step", "cosine", "constant"),
                   help="one-cycle (peak --lr) | step (x step_gamma every step_epochs) | cosine (after warmup_epochs) | constant")
    g.add_argument("--select-on", default=d.select_on, choices=("accuracy", "macro-accuracy", "loss", "last"),
                   help="validation metric that picks the kept epoch and drives early stopping")
    g.add_argument("--min-epochs", type=int, default=d.min_epochs,
                   help="earliest epoch early stopping may end training (default: a third of --epochs)")
    g.add_argument("--val-fraction", type=float, default=d.val_fraction,
                   help="labeled training recordings held out, per class, for model selection")
    g.add_argument("--finetune-lr-scale", type=float, default=None,
                   help="finetune: learning rate = --lr x this (strategy.lr_scale; default 0.3)")
    g.add_argument("--normalization", default=d.normalization, choices=("per-bin", "none", "input-bn"),
                   help="per-bin standardisation from training clips | none | input-bn (a learned BatchNorm in front "
                        "of the model, as SE-Trans's bn0; needed for official SE-Trans weights)")
    g.add_argument("--pretrain-classes", default=d.pretrain_classes, choices=("source", "target"),
                   help="pretrain on the source's own classes, or on the target's through the dataset's class map")


def _add_machine_options(p: argparse.ArgumentParser, d: RunConfig) -> None:
    """Where and how it runs, and where its results go (no effect on the numbers but --precision)."""
    g = p.add_argument_group("machine and output")
    g.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    g.add_argument("--device", default=d.device, metavar="DEV",
                   help="auto | cpu | cuda | cuda:N | mps (default: auto, CUDA when present); recorded with the run")
    g.add_argument("--precision", default=d.precision, choices=("fp32", "bf16", "fp16", "auto"),
                   help="training and inference precision: autocast to bf16 or fp16 (fp16 with a gradient scaler, CUDA "
                        "only); auto: bf16 where the device computes it natively, else fp32 (the record says which)")
    g.add_argument("--compile", default=d.compile, choices=("off", "default", "reduce-overhead", "max-autotune"),
                   help="torch.compile the training forward in this mode (default off; helps on CUDA for larger "
                        "models, costs a compile per training stage; see README, Devices)")
    g.add_argument("--logger", dest="loggers", action="append", default=None, metavar="NAME",
                   help="also send every epoch to this run logger (repeatable): csv, tensorboard or a plugin's "
                        "(ascbench list --loggers); the run record keeps the history either way")
    g.add_argument("--log-dir", default=None, metavar="DIR", help="where loggers write (default: <runs dir>/logs)")
    g.add_argument("--runs-dir", default=None, help="where runs are stored (default: $ASCBENCH_RUNS_DIR or ./runs)")
    add_cache_dir(g)
    g.add_argument("--no-progress", action="store_true", help="no progress bars")
    g.add_argument("--resume", default=None, metavar="DIR",
                   help="continue an interrupted run from its staging directory (runs/.<run_id>.partial); "
                        "its stored config is used and the other run options are ignored")


# Run options whose destination is not the config field of the same name.
_DEST_FIELDS = {"model_arg": "model_kwargs"}
# Shortcut flags for plugins' own options: flag dest -> (option key, how the flag's value becomes the option's).
_OPTION_FLAGS = {
    "pl_rounds": ("semi.rounds", None), "pl_threshold": ("semi.threshold", None),
    "pl_unbalanced": ("semi.class_balanced", lambda on: not on), "pl_no_vote": ("semi.group_vote", lambda on: not on),
    "mt_ema": ("semi.ema", None), "mt_weight": ("semi.weight", None), "finetune_lr_scale": ("strategy.lr_scale", None),
}


_UNSET = object()


def _flag_values(args) -> dict:
    """Every config field as the run options give it (defaults included)."""
    kwargs = parse_model_args(args.model_arg)
    fields = {f for f in RunConfig.__dataclass_fields__}
    values = {dest: getattr(args, dest) for dest in fields if hasattr(args, dest)}
    values["loggers"] = tuple(args.loggers or ())
    values.update(split_fields(args), model_kwargs=kwargs)
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
    for dest, (key, convert) in _OPTION_FLAGS.items():
        if dest in typed and getattr(args, dest) not in (None, False):
            given[key] = convert(getattr(args, dest)) if convert else getattr(args, dest)
    from ascbench.sweep import parse_assignment

    for text in args.assignments:
        key, value = parse_assignment(text, multi=False)
        if key in TUPLE_FIELDS and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        given[key] = value
    return given


def config_from_args(args) -> RunConfig:
    """The run's config: a recipe's settings, under a --config file's, under the flags and --set typed."""
    given = _explicit_fields(args)
    return RunConfig.from_file(args.config, given) if args.config else RunConfig.from_dict(given)


def command(args) -> int:
    from tabulate import tabulate

    from ascbench.runner import execute

    progress = not args.no_progress and sys.stderr.isatty()
    if args.resume:
        config = _resume_config(Path(args.resume))
        record = execute(config, progress=progress, resume=args.resume)
        _print_summary(config, record)
        return 0
    config = config_from_args(args)
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
    from ascbench import pipeline

    plan = pipeline.resolve(config)
    ds = pipeline.load(plan, require_audio=False)
    for k in range(config.folds):
        try:
            pipeline.split(plan, ds, fold=k)
        except AscbenchError as exc:
            raise AscbenchError(f"fold {k + 1} of {config.folds} cannot run, so no fold was started: {exc}") from None


def _resume_config(path: Path) -> RunConfig:
    from ascbench.results import check_unfinished

    check_unfinished(path)  # a finished run is never resumed, so never rewritten or deleted
    from ascbench.results import read_record_file

    return RunConfig.from_stored(read_record_file(path / "config.json", "run config"))


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
