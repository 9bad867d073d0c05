"""The one typed configuration of a run. CLI flags map onto it; it is saved with every result,
so that any leaderboard row can be re-run exactly from its record."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ascbench.defaults import DEFAULT_DATASET, DEFAULT_MODEL, DEFAULT_PROTOCOL, DEFAULT_SEMI, DEFAULT_STRATEGY
from ascbench.errors import AscbenchError, ConfigError
from ascbench.fileio import read_file_text
from ascbench.options import KINDS as OPTION_KINDS, OPTION_INT_LIMIT, fold_dotted
from ascbench.shortcuts import declared
# From the import-free vocabulary, not ascbench.protocols (numpy, pandas): `ascbench --help` imports this module.
from ascbench.vocabulary import UNTAUGHT_POLICIES

if TYPE_CHECKING:  # pragma: no cover
    from ascbench.protocols import ProtocolOptions


PRECISION_NAMES = ("fp32", "bf16", "fp16", "auto")  # auto: see ascbench.device.resolve_precision
OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULERS = ("one-cycle", "step", "cosine", "constant")
SELECTION_METRICS = ("accuracy", "macro-accuracy", "loss", "last")
NORMALIZATIONS = ("per-bin", "none", "input-bn")
MASK_VALUES = ("mean", "floor")
PRETRAIN_CLASSES = ("source", "target")
OTHER_RATE_POLICIES = ("resample", "refuse")
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")  # torch.compile's modes
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")  # auto: see ascbench.device.Compute.from_names

# The groups of `ascbench run --help`, in its order. A field declares its flag once, here: its group, help and any
# other argparse setting (``choices``, ``metavar``, ``flags`` for names other than ``--field-name``, ``action``);
# the command line makes the flag from the field (name, type, default). A field without one is set by --set only.
GENERAL = ""  # the run command's own options (beside --config and --set)
EXPERIMENT = "what to run"
DATA = "data, split and features"
SPLIT = "split (protocol options)"  # shared with `ascbench data split`
SEMI = "semi-supervision (with any strategy)"
AUGMENTATION = "augmentation"
TRAINING = "training"
MACHINE = "machine and output"


def flag(default: Any, group: str, text: str = "", **argparse_settings: Any) -> Any:
    """A config field with a flag of ``ascbench run`` in ``group``, helped by ``text``."""
    return field(default=default, metadata={"group": group, "help": text, **argparse_settings})


@dataclass(frozen=True)
class RunConfig:
    model: str = flag(DEFAULT_MODEL, EXPERIMENT, f"registered model name (default: {DEFAULT_MODEL})")
    strategy: str = flag(DEFAULT_STRATEGY, EXPERIMENT, f"training strategy (default: {DEFAULT_STRATEGY})")
    dataset: str = flag(DEFAULT_DATASET, EXPERIMENT, f"dataset (default: {DEFAULT_DATASET}, built in, no download)")
    protocol: str = flag(DEFAULT_PROTOCOL, EXPERIMENT, f"how train and test are split (default: {DEFAULT_PROTOCOL}); "
                         "`ascbench list --protocols` says what each one tests (session-holdout was called official)")
    labeled: float | None = flag(None, DATA, "fraction of training clips that keep their label (default: the dataset's "
                                 "own labels)", metavar="F")
    seed: int = flag(0, EXPERIMENT, "seed for splits, initialisation and batching")
    epochs: int = flag(30, TRAINING, "maximum training epochs (early stopping may end sooner)")
    batch_size: int = flag(32, TRAINING)
    min_epoch_clips: int = 256  # an epoch repeats the training clips until it has seen at least this many (0: one pass)
    lr: float = flag(3e-3, TRAINING, "peak learning rate (one-cycle schedule)")
    weight_decay: float = flag(1e-4, TRAINING)
    optimizer: str = flag("adamw", TRAINING, choices=OPTIMIZERS)  # sgd: momentum 0.9
    scheduler: str = flag("one-cycle", TRAINING, "one-cycle (peak --lr) | step (x step_gamma every step_epochs) | "
                          "cosine (after warmup_epochs) | constant", choices=SCHEDULERS)
    step_epochs: int = 2
    step_gamma: float = 0.9
    warmup_epochs: float = 0.0  # cosine: linear warm-up over this many epochs
    patience: int = flag(8, TRAINING, "early-stopping patience in epochs; 0 disables")
    select_on: str = flag("accuracy", TRAINING, "validation metric that picks the kept epoch and drives early stopping",
                          choices=SELECTION_METRICS)  # accuracy: ties broken by loss
    min_epochs: int | None = flag(None, TRAINING, "earliest epoch early stopping may end training (default: a third "
                                  "of --epochs)")
    val_fraction: float = flag(0.15, TRAINING, "labeled training recordings held out, per class, for model selection")
    city_dropout: float = flag(0.1, AUGMENTATION, "rate at which a training clip's city becomes 'unknown', so that "
                               "index is learned")
    # strategies that pretrain (finetune, freeze, ...): the pretraining stage on the dataset's source
    pretrain_epochs: int = flag(20, TRAINING, "maximum epochs of a pretraining stage")
    pretrain_on: str | None = flag(None, EXPERIMENT, "pretraining source (default: the dataset's own)", metavar="DATASET")
    pretrained: str | None = flag(None, EXPERIMENT, "start from these weights instead of pretraining",
                                  metavar="CHECKPOINT")
    pretrain_data_root: str | None = flag(None, EXPERIMENT, "directory of the pretraining source dataset", metavar="DIR")
    feature_preset: str | None = flag(None, DATA, "feature front-end: embedded | apsipa2025 | dcase2024 | any registered "
                                      "(default: the dataset's; `ascbench list --front-ends`)", metavar="NAME",
                                      flags=("--front-end", "--feature-preset"))
    normalization: str = flag("per-bin", TRAINING, "per-bin standardisation from training clips | none | input-bn (a "
                              "learned BatchNorm in front of the model, as SE-Trans's bn0; needed for official SE-Trans "
                              "weights)", choices=NORMALIZATIONS)
    pretrain_classes: str = flag("source", TRAINING, "pretrain on the source's own classes, or on the target's through "
                                 "the dataset's class map", choices=PRETRAIN_CLASSES)
    recipe: str | None = flag(None, GENERAL, "a registered training recipe (apsipa2025-baseline, dcase2024-baseline, "
                              "li2026, ...; `ascbench list --recipes`): its settings fill every field not given by a flag "
                              "or --config; its own options are --set recipe.FIELD=VALUE (every built-in: "
                              "recipe.budget=0.1 runs a tenth of its epochs)", metavar="NAME")
    data_root: str | None = flag(None, DATA, "directory of the dataset's audio and metadata")
    skip_bad: bool = flag(False, DATA, "leave unusable audio files out (listed in the run record)")
    other_rate: str = flag("resample", DATA, "audio at another sample rate than the dataset declares: resample it (said "
                           "once; default) or count it as unusable (refused, or left out with --skip-bad)",
                           choices=OTHER_RATE_POLICIES)
    folds: int = flag(0, DATA, "unseen-city: run K cross-city folds (each city tested once) and report mean and worst "
                      "fold; all folds are checked before the first runs (preview: ascbench data split --folds K)",
                      metavar="K")
    fold: int = 0
    group_by: str | None = flag(None, SPLIT, "grouping level kept whole on one side: recording, or session where the "
                                "dataset declares it (default: the dataset's coarsest; apsipa2025: session = city + date)",
                                metavar="LEVEL")
    untaught: str = flag("exclude", SPLIT, "a test class no labeled training clip teaches: leave it out of scoring and "
                         "name it in the record (exclude, default), or stop (refuse)", choices=UNTAUGHT_POLICIES)
    # semi-supervision (orthogonal to the strategy); a method's own knobs are its options (semi.FIELD)
    semi: str = flag(DEFAULT_SEMI, SEMI, f"how unlabeled training clips are used: {DEFAULT_SEMI} (default: labeled clips "
                     "only) or any registered method (ascbench list --semi-methods)", metavar="NAME")
    # augmentation, applied to every training batch
    freq_mask: int = flag(0, AUGMENTATION, "SpecAugment widest mel band masked (0: off)")  # on the embedded data it hurt
    time_mask: int = flag(0, AUGMENTATION, "SpecAugment widest frame span masked (0: off)")
    mixstyle_p: float = flag(0.0, AUGMENTATION, "frequency-wise MixStyle probability (0: off)")
    mixstyle_alpha: float = flag(0.3, AUGMENTATION)
    mixup_alpha: float = flag(0.0, AUGMENTATION, "mixup Beta parameter (0: off)")
    roll_seconds: float = flag(0.0, AUGMENTATION, "roll clips in time by up to this much (0: off)")  # whole frames
    mask_value: str = flag("mean", AUGMENTATION, "what SpecAugment masks write: the mean, or the clip's floor (as the "
                           "DCASE baseline)", choices=MASK_VALUES)
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # --model-arg KEY=JSON, or --set model.KEY=VALUE
    context: str | None = flag(None, EXPERIMENT, "fuse city and/or time embeddings into a backbone that has none (e.g. "
                               "cp-mobile, timm:...)", metavar="city,time")
    threads: int | None = flag(None, MACHINE, "torch threads (default: all cores)")
    device: str = flag("auto", MACHINE, "auto | cpu | cuda | cuda:N | mps (default: auto, CUDA when present); recorded "
                       "with the run", metavar="DEV")
    # auto since 2026-12-02: paired fp32-vs-bf16 runs found no accuracy lost (leaderboards/precision, README).
    precision: str = flag("auto", MACHINE, "training and inference precision: auto (default): bf16 where the device "
                          "computes it natively, else fp32 (the record says which); fp32; or autocast to bf16 or fp16 "
                          "(fp16 with a gradient scaler, CUDA only)", choices=PRECISION_NAMES)
    compile: str = flag("off", MACHINE, "torch.compile the training forward in this mode (default off; helps on CUDA "
                        "for larger models, costs a compile per training stage; see README, Devices)",
                        choices=COMPILE_MODES)
    # channels_last is opt-in in fp32: it moves the logits' last bits, and fp32 rows published before it existed
    # must re-run to the same digits. On a CPU without bf16 (auto = fp32) it is the lever that is left.
    memory_format: str = flag("auto", MACHINE, "layout of convolution activations: auto (default): channels_last "
                              "under bf16/fp16 for models whose spec allows it, contiguous in fp32; channels_last (in "
                              "fp32 too: mobileascnet and cp-mobile train 1.3-1.4x faster on an AVX2 CPU, in other last "
                              "bits); or contiguous (recorded with the run)", choices=MEMORY_FORMATS)
    # Plugins' own options by kind, e.g. {"strategy": {"lr_scale": 0.1}} (--set strategy.lr_scale=0.1); checked
    # against the chosen plugin's options class before any data is read (ascbench.options).
    options: dict[str, Any] = field(default_factory=dict)
    loggers: tuple[str, ...] = flag((), MACHINE, "also send every epoch to this run logger (repeatable): csv, "
                                    "tensorboard or a plugin's (ascbench list --loggers); the run record keeps the "
                                    "history either way", metavar="NAME", flags=("--logger",), action="append")
    log_dir: str | None = flag(None, MACHINE, "where loggers write (default: <runs dir>/logs)", metavar="DIR")
    # --quick: QUICK_SETTINGS fill every field not given (as a recipe's do, over it), so every stage, pretraining
    # included, is short; the run's row is marked quick and the leaderboard leaves it out unless asked.
    quick: bool = flag(False, TRAINING, "a quick check that everything runs: every stage (pretraining too) a couple of "
                       "one-pass epochs unless given; the record is marked quick, and the leaderboard leaves it out "
                       "unless asked")

    def __post_init__(self) -> None:
        for name in TUPLE_FIELDS:
            object.__setattr__(self, name, _name_set(getattr(self, name)))
        if isinstance(self.context, str) and self.context.strip():
            # The model reads which parts are present, not their order: "time, city" is "city,time", one digest.
            parts = {p.strip() for p in self.context.split(",")}
            object.__setattr__(self, "context", ",".join(p for p in ("city", "time") if p in parts)
                               if parts <= {"city", "time"} else self.context)
        # Types first, for every field: a sweep spec's `epochs = 1.5` or `loggers = 3` must fail
        # here, before any data is read, not inside a plugin after feature extraction.
        for f in dataclasses.fields(self):
            if "None" in f.type.split(" | ") and isinstance(getattr(self, f.name), str) and not getattr(self, f.name).strip():
                # "" would be stored as a setting unlike the unset default it behaves as (another digest)
                raise ConfigError(f"{_flag(f.name)} is empty; leave it unset for the default, or give a value")
            _check_type(f.name, f.type, getattr(self, f.name))
            # A number field holds a float however it was written (--lr 1, lr = 1 in TOML, --set lr=1.0): one
            # experiment has one digest, so a sweep never runs it twice nor a board splits its seeds over two rows.
            value = getattr(self, f.name)
            if "float" in f.type.split(" | ") and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, f.name, float(value))
        for name, interval in BOUNDS.items():
            value = getattr(self, name)
            if value is not None and not _within(value, interval):
                raise ConfigError(f"{_flag(name)} must be in {interval}, got {value!r}")
        if self.other_rate not in OTHER_RATE_POLICIES:
            raise ConfigError(f"--other-rate must be one of {', '.join(OTHER_RATE_POLICIES)}, not {self.other_rate!r}")
        if self.compile not in COMPILE_MODES:
            raise ConfigError(f"--compile must be one of {', '.join(COMPILE_MODES)}, not {self.compile!r}")
        if self.precision not in PRECISION_NAMES:
            raise ConfigError(f"--precision must be one of {', '.join(PRECISION_NAMES)}, not {self.precision!r}")
        if self.memory_format not in MEMORY_FORMATS:
            raise ConfigError(f"--memory-format must be one of {', '.join(MEMORY_FORMATS)}, not {self.memory_format!r}")
        for name, valid in (("optimizer", OPTIMIZERS), ("scheduler", SCHEDULERS), ("select_on", SELECTION_METRICS),
                            ("normalization", NORMALIZATIONS), ("mask_value", MASK_VALUES),
                            ("pretrain_classes", PRETRAIN_CLASSES)):
            if getattr(self, name) not in valid:
                raise ConfigError(f"{_flag(name)} must be one of {', '.join(valid)}, not {getattr(self, name)!r}")
        if self.folds == 1 or (self.folds and self.fold >= self.folds):
            raise ConfigError(f"--folds takes 0 (no folds) or at least 2, and fold < folds; got folds={self.folds}, fold={self.fold}")
        self._check_protocol_fields()
        for key, value in self.model_kwargs.items():
            if any(abs(n) > OPTION_INT_LIMIT for n in _whole_numbers_in(value)):
                raise ConfigError(f"model argument {key} = {value!r}: a whole number beyond ±{OPTION_INT_LIMIT:,} (a "
                                  "width, a depth, a count) is a typo no model needs; it is refused before the model "
                                  "is built")
        bad = [k for k, v in self.options.items() if k not in OPTION_KINDS or not isinstance(v, dict)]
        if bad:
            raise ConfigError(f"options {bad}: plugin options are given per kind ({', '.join(OPTION_KINDS)}) as a "
                              "table of fields, e.g. --set strategy.lr_scale=0.1 or [options.strategy] in a config file")
        if self.pretrain_on and "," in self.pretrain_on and self.pretrain_classes != "target":
            raise ConfigError(f"--pretrain-on {self.pretrain_on}: several sources need one label space; add "
                              "--pretrain-classes target to map each source's scenes onto the target's")
        if self.pretrain_on and self.pretrain_on == self.dataset:
            raise ConfigError(f"--pretrain-on {self.pretrain_on!r} is the dataset under test: pretraining would see its "
                              "test clips; pretrain on another dataset, start from --pretrained CHECKPOINT, or use --strategy scratch")
        if self.context is not None and not set(self.context_parts) <= {"city", "time"} or self.context == "":
            raise ConfigError(f"--context takes city, time or city,time; got {self.context!r}")

    def _check_protocol_fields(self) -> None:
        # A protocol's own settings (unseen-time's test periods...) are its options, checked by its options class.
        if self.untaught not in UNTAUGHT_POLICIES:
            raise ConfigError(f"--untaught must be one of {', '.join(UNTAUGHT_POLICIES)}, not {self.untaught!r}")

    def protocol_options(self, fold: int | None = None, plugin: Any = None) -> ProtocolOptions:
        """What the protocol plugin is told: the split-related fields of this config, and its own options."""
        from ascbench.protocols import ProtocolOptions

        return ProtocolOptions(seed=self.seed, folds=self.folds,
                               fold=self.fold if fold is None else fold, group_by=self.group_by, untaught=self.untaught,
                               plugin=plugin)

    @property
    def context_parts(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in (self.context or "").split(",") if p.strip())

    def to_dict(self) -> dict[str, Any]:
        """Every field as given (plugin options: those set); what digests and comparisons read."""
        d = dataclasses.asdict(self)
        for name in TUPLE_FIELDS:
            d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        """A config from a table of fields; a named ``recipe`` fills every field the table leaves out."""
        data = fold_dotted(_renamed(data))  # "strategy.lr_scale" -> options, "model.width" -> model_kwargs
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known - {_LEGACY})
        if unknown:
            hints = [f"{u!r} (did you mean {', '.join(difflib.get_close_matches(u, known, 2))}?)"
                     if difflib.get_close_matches(u, known, 2) else repr(u) for u in unknown]
            tables = [u for u in unknown if isinstance(data[u], dict)]
            where = (f"; a plugin's options are not a table of their own ({', '.join(map(repr, tables))}): write them "
                     f"under [options.KIND] (KIND: {', '.join(OPTION_KINDS)}), e.g. [options.protocol] "
                     "test_cities = [...], or as --set protocol.test_cities=...") if tables else ""
            raise ConfigError(f"unknown config field(s) {', '.join(hints)}; `ascbench run --help` lists every field "
                              f"(each is also --set NAME=VALUE){where}")
        if data.get("quick") is True:  # before the recipe, so the quick settings win over its epochs
            data = _under(QUICK_SETTINGS, data)
        if data.get("recipe"):
            given = (data.get("options") or {}).get("recipe") if isinstance(data.get("options"), dict) else None
            recipe = fold_dotted(_renamed(recipe_settings(data["recipe"], data.get("dataset", DEFAULT_DATASET), given)))
            data = _under(_for_chosen_plugins(recipe, data), data)
        if isinstance(data.get("protocol"), str):  # before the old fields are placed: their messages name it so
            data["protocol"] = current_protocol_name(data["protocol"])
        data = _options_of_chosen_plugins(data)
        return cls(**data)

    @classmethod
    def from_file(cls, path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> "RunConfig":
        """A TOML or YAML table of config fields (``epochs = 10``), with ``overrides`` on top; checked
        like every other config, before any data is read."""
        fields = read_table(path, "config file")
        # The file alone first, so that a fault is blamed on where it was written: the file's, or the command line's.
        try:
            file_config = cls.from_dict(fields)
        except ConfigError as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
        if not overrides:
            return file_config
        try:
            return cls.from_dict(_under(fold_dotted(_renamed(fields)), fold_dotted(_renamed(overrides))))
        except ConfigError as exc:
            raise ConfigError(f"{exc} (from the command line's settings, over config file {path})") from None

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> "RunConfig":
        """A config as a run directory or a published record stores it: bookkeeping keys (``_digest``)
        are dropped; fields added since take their defaults."""
        config = cls.from_dict({k: v for k, v in data.items() if not k.startswith("_")})
        return config.replace(options=set_options(config))

    def value(self, key: str) -> Any:
        """A field (``epochs``), a plugin option (``semi.rounds``: None when unset, the plugin's default
        applies) or a model argument (``model.width``), by the name a recipe, ``--set`` or a sweep uses."""
        kind, dot, name = key.partition(".")
        if not dot:
            return getattr(self, key)
        return (self.model_kwargs if kind == "model" else self.options.get(kind, {})).get(name)

    def to_record(self) -> dict[str, Any]:
        """The config as a run's record stores it: every option of each chosen plugin with the value the run
        used, defaults included, so that a later change of a plugin's default cannot change what a stored row
        means. :meth:`from_stored` reads it back with the options at today's defaults left out, so a record
        written before options were stored in full compares equal to one written after."""
        return {**self.to_dict(), "options": resolved_options(self)}

    def replace(self, **changes: Any) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    def _comparable(self) -> dict[str, Any]:
        """:meth:`to_dict` with the options at their plugin's default left out: an option given at its default,
        a record storing every option and one storing only those set all compare equal (in the form hashes read:
        :func:`hashed_form`)."""
        return hashed_form({**self.to_dict(), "options": set_options(self)})

    def digest(self) -> str:
        """A stable hash of the whole config: runs with equal digests were run exactly alike."""
        return hashlib.sha256(json.dumps(self._comparable(), sort_keys=True).encode()).hexdigest()[:12]

    def experiment_digest(self) -> str:
        """The digest without execution details (thread count): what a sweep compares to skip a finished cell."""
        d = {k: v for k, v in self._comparable().items() if k not in EXECUTION_FIELDS}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


# What --quick sets unless given explicitly: a couple of epochs per stage, each one pass over its clips.
QUICK_SETTINGS: dict[str, Any] = {"epochs": 2, "pretrain_epochs": 2, "min_epoch_clips": 0, "patience": 0}


SEED_LIMIT = 2**32  # numpy's and torch's seeds are unsigned 32-bit: ascbench owns the bound, not numpy

# Allowed values of numeric fields, as intervals ("[1, 100000]": 1 to 100,000 inclusive); None values skip the check.
# Every count has a finite upper end, far beyond any real run, so that a typo (1e20 clips per epoch, a batch of a
# billion) is refused at once instead of running for ever or failing deep inside training. A batch of one clip is
# refused too: batch norm cannot train on it.
MAX_EPOCHS = 100_000
MAX_EPOCH_CLIPS = 10_000_000
BOUNDS = {
    "seed": f"[0, {SEED_LIMIT})", "epochs": f"[1, {MAX_EPOCHS}]", "pretrain_epochs": f"[1, {MAX_EPOCHS}]",
    "batch_size": "[2, 65536]", "min_epoch_clips": f"[0, {MAX_EPOCH_CLIPS}]", "patience": f"[0, {MAX_EPOCHS}]",
    "threads": "[1, 4096]", "folds": "[0, 1000]", "fold": "[0, 1000)",
    "lr": "(0, 1000]", "weight_decay": "[0, 1000]", "labeled": "(0, 1]",
    "val_fraction": "[0, 1)", "city_dropout": "[0, 1)", "freq_mask": "[0, 100000]", "time_mask": "[0, 100000]",
    "mixstyle_p": "[0, 1]", "mixstyle_alpha": "(0, 1000]", "mixup_alpha": "[0, 1000]",
    "step_epochs": f"[1, {MAX_EPOCHS}]", "step_gamma": "(0, 1]", "warmup_epochs": f"[0, {MAX_EPOCHS}]",
    "min_epochs": f"[1, {MAX_EPOCHS}]", "roll_seconds": "[0, 3600]",
}


# Fields that were core config fields and are now the options of the plugin they belong to. Stored configs,
# sweep specs and config files that still name them keep working: each is moved into the options of its plugin
# when the run chose that plugin, and dropped when it holds that plugin's default (a record of a run with
# --semi none stored pl_rounds = 2, which did nothing).
# Each plugin declares its own (StrategySpec/SemiSpec/ProtocolSpec ``renamed=``); ascbench.shortcuts reads them.
_LEGACY = "_legacy"


# Of those, the ones that left the config after leaderboards were published, with the value configs held when
# they were not set. Every hash of a config (its digest, a leaderboard row's setting id) still reads each as the
# field it was, holding the value the run used, so a published setting id and a stored run's digest stay what they
# were. (The semi methods' options left before any table was published: they are hashed as options.)
HASHED_AS_FIELDS: dict[str, Any] = {"test_cities": [], "time_holdout": "time-of-day",
                                     "test_periods": ["evening", "night"], "test_dates": []}


# Fields added after runs were stored, with the default that reproduces what those runs did. A config at that
# default hashes as a config from before the field existed, so stored digests (run ids' suffixes, resumable
# checkpoints, sweeps' finished cells) stay valid.
ADDED_FIELDS: dict[str, Any] = {"memory_format": "auto"}


def hashed_form(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` (as :meth:`RunConfig.to_dict` gives it) as hashes read it: each of ``HASHED_AS_FIELDS`` taken
    out of its plugin's options and written back as a field (its old default when the run chose another plugin)."""
    out = {**config, "options": {kind: dict(values) for kind, values in (config.get("options") or {}).items()}}
    for name, default in ADDED_FIELDS.items():  # left out at their default: older records keep their digests
        if out.get(name, default) == default:
            out.pop(name, None)
    renamed = declared().renamed
    for old, default in HASHED_AS_FIELDS.items():
        value, r = default, renamed.get(old)
        if r is not None and config.get(r.kind) == r.plugin and r.option in out["options"].get(r.prefix, {}):
            value = out["options"][r.prefix].pop(r.option)
            if not out["options"][r.prefix]:
                del out["options"][r.prefix]
        out[old] = list(value) if isinstance(value, tuple) else value
    return out


def _renamed(data: dict[str, Any]) -> dict[str, Any]:
    """Set aside renamed fields (``pl_rounds``) until the chosen plugins are known (after a recipe is applied)."""
    renamed = declared().renamed
    legacy = {k: data[k] for k in renamed if k in data}
    if not legacy:
        return data
    return {**{k: v for k, v in data.items() if k not in renamed}, _LEGACY: legacy}


def _under(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``, plugin options merged field by field (a recipe's ``semi.rounds`` survives a
    config that sets ``semi.threshold``)."""
    merged = {**base, **top}
    if _LEGACY in base or _LEGACY in top:
        merged[_LEGACY] = {**base.get(_LEGACY, {}), **top.get(_LEGACY, {})}
    # Tables merge key by key, as `--set model.width=32` over a file's [model_kwargs] does: `--model-arg width=32`
    # over the same file must not drop its other model arguments. A table that is not a table is left for the
    # config's type check to name.
    low, high = base.get("model_kwargs"), top.get("model_kwargs")
    if isinstance(low, dict) and isinstance(high, dict):
        merged["model_kwargs"] = {**low, **high}
    low, high = base.get("options", {}), top.get("options", {})
    if isinstance(low, dict) and isinstance(high, dict):
        options = {kind: {**low[kind], **high[kind]}
                   if isinstance(low.get(kind), dict) and isinstance(high.get(kind), dict)
                   else high.get(kind, low.get(kind)) for kind in {*low, *high}}
        if options:
            merged["options"] = options
    return merged


def _for_chosen_plugins(recipe: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """A recipe's settings without its options for a plugin kind where the run chose another plugin than the
    recipe's (li2026's ``strategy.lr_scale`` is finetune's; under ``--strategy scratch`` it is not the user's
    mistake, and it would mean nothing)."""
    options = recipe.get("options") or {}
    defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    other = {kind for kind in options if kind in given and given[kind] != recipe.get(kind, defaults.get(kind))}
    if not other:
        return recipe
    return {**recipe, "options": {kind: values for kind, values in options.items() if kind not in other}}


def _options_of_chosen_plugins(data: dict[str, Any]) -> dict[str, Any]:
    legacy = data.get(_LEGACY)
    if not legacy:
        return data
    data = {k: v for k, v in data.items() if k != _LEGACY}
    options = {kind: dict(values) for kind, values in (data.get("options") or {}).items()}
    defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    for old, value in legacy.items():
        r = declared().renamed[old]
        chosen = data.get(r.kind, defaults[r.kind])
        if isinstance(value, tuple):  # as a list, as configs stored it and as the default is declared
            value = list(value)
        if chosen == r.plugin:
            if value != r.default:
                options.setdefault(r.prefix, {}).setdefault(r.option, value)
        elif value != r.default:
            raise ConfigError(f"{old} = {value!r} is an option of {r.kind} {r.plugin!r} ({r.prefix}.{r.option}), but "
                              f"this run's {r.kind} is {chosen!r}; drop it or choose --{r.kind} {r.plugin}")
    if options:
        data["options"] = options
    return data


def current_protocol_name(name: str) -> str:
    """A protocol's current name: an old name its plugin declares as an alias (``official``) maps to it, so that
    stored records, sweep specs and config files written before a rename run, compare and group as it."""
    from ascbench.registry import get_registry

    try:
        return get_registry().canonical("protocol", name)
    except AscbenchError:  # no registry to ask (a broken plugin): the name as given, refused later if unknown
        return name


def recipe_settings(name: str, dataset: str | None = None, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fields a registered recipe sets for ``dataset`` under its ``recipe.FIELD`` options (checked against
    its options class here, before any field is filled; recipes are plugins: ``ascbench list --recipes``)."""
    from ascbench.options import resolve
    from ascbench.registry import get_registry

    registry = get_registry()
    spec = registry.recipe(name)
    resolved = resolve("recipe", name, registry.owner("recipe", name), spec.options_class, options)
    return spec.settings_for(dataset, resolved)


def read_table(path: str | os.PathLike, what: str) -> dict[str, Any]:
    """The top-level table of a TOML, YAML (``.yaml``/``.yml``) or JSON file; one clear line when it cannot be read.
    Every format reads a value alike: YAML as YAML 1.2 does (``010`` is ten, ``1e-3`` a number, ``no`` text, a key
    given twice refused, as TOML does), dates as their ISO text (``2024-01-05`` is ``"2024-01-05"``, as
    ``--set`` reads it), and a leading byte-order mark is ignored."""
    path = Path(path)
    try:
        text = read_file_text(path, encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {path}: {getattr(exc, 'strerror', None) or exc}") from None
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            data = _yaml_table(text)
        elif suffix == ".json":
            data = json.loads(text, object_pairs_hook=_json_table)
        else:
            import tomllib

            data = tomllib.loads(text)
    except ConfigError as exc:
        raise ConfigError(f"{what} {path}: {exc}") from None
    except Exception as exc:
        kind = "YAML" if suffix in (".yaml", ".yml") else "JSON" if suffix == ".json" else \
            "TOML (a .yaml, .yml or .json name is read as that format)"
        raise ConfigError(f"{what} {path} does not parse as {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must hold a table of settings, not {type(data).__name__}")
    return _dates_as_text(data)


def _json_table(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (the json module would keep the last silently; TOML and YAML
    refuse it too)."""
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ConfigError(f"{', '.join(twice)} given twice in one object; keep one")
    return dict(pairs)


def _dates_as_text(value: Any) -> Any:
    import datetime

    if isinstance(value, (datetime.date, datetime.time)):  # datetime is a date
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _dates_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dates_as_text(v) for v in value]
    return value


def _yaml_table(text: str) -> Any:
    """YAML read by YAML 1.2's core schema (PyYAML speaks 1.1, where ``010`` is eight, ``1e-3`` is text and
    ``no`` is false), refusing a key given twice."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers
                if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool")]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                 list("tTfF"))
    Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
                                 list("-+0123456789"))
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
        list("-+0123456789."))

    def integer(loader: Any, node: Any) -> int:
        value = loader.construct_scalar(node)
        return int(value, 8) if value.startswith("0o") else int(value, 16) if value.startswith("0x") else int(value)

    def floating(loader: Any, node: Any) -> float:
        value = loader.construct_scalar(node).lower()
        return float(value.replace(".inf", "inf").replace(".nan", "nan"))

    def mapping(loader: Any, node: Any, deep: bool = False) -> dict:
        keys = [loader.construct_object(key, deep=deep) for key, _ in node.value]
        twice = sorted({str(k) for k in keys if keys.count(k) > 1})
        if twice:
            raise ConfigError(f"{', '.join(twice)} given twice in one table (line {node.start_mark.line + 1}); "
                              "keep one")
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    Loader.add_constructor("tag:yaml.org,2002:int", integer)
    Loader.add_constructor("tag:yaml.org,2002:float", floating)
    Loader.add_constructor("tag:yaml.org,2002:map", lambda loader, node: mapping(loader, node, deep=True))
    return yaml.load(text, Loader=Loader) or {}  # noqa: S506 - a SafeLoader with 1.2 scalars


def flag_of(name: str) -> str:
    """How a user sets config field ``name`` on the command line: its flag (``--val-fraction``, ``--logger``), or
    ``--set step_gamma`` for a field with no flag of its own, so that a message never names a flag that does not
    exist."""
    field_ = RunConfig.__dataclass_fields__.get(name)
    if field_ is None or "group" not in field_.metadata:
        return f"--set {name}"
    return (field_.metadata.get("flags") or (f"--{name.replace('_', '-')}",))[0]


def flag_name(name: str) -> str:
    """``--val-fraction (val_fraction)``: a config field as a message names it, flag and field."""
    flag = flag_of(name)
    return flag if flag.startswith("--set ") else f"{flag} ({name})"


_flag = flag_name


def set_options(config: RunConfig) -> dict[str, dict[str, Any]]:
    """The options of ``config`` that differ from their plugin's default today (a stored record holds every
    option, :meth:`RunConfig.to_record`; in memory, and in every digest, only those set count)."""
    full = resolved_options(config)
    defaults = resolved_options(config.replace(options={}))
    out = {kind: {k: v for k, v in values.items() if k not in defaults.get(kind, {}) or defaults[kind][k] != v}
           for kind, values in full.items()}
    return {kind: values for kind, values in out.items() if values}


def resolved_options(config: RunConfig) -> dict[str, dict[str, Any]]:
    """Every option of each chosen plugin that declares options, with its value (the given one, else the
    plugin's default); kinds without an options class, and front-ends (whose settings the run's metrics
    record in full), keep what was given. A config that cannot be resolved (an unknown plugin in an old
    record) keeps its options as given: its record is still readable."""
    from ascbench.options import resolve_for
    from ascbench.registry import get_registry

    out = {kind: dict(values) for kind, values in config.options.items()}
    try:
        registry = get_registry()
        for kind in OPTION_KINDS:
            if kind == "frontend" or getattr(config, kind) is None:
                continue
            resolved = resolve_for(config, registry, kind)
            if resolved is not None:
                out[kind] = json.loads(json.dumps(dataclasses.asdict(resolved), default=str))
    except AscbenchError:
        return {kind: dict(values) for kind, values in config.options.items()}
    return out


def _within(value: float, interval: str) -> bool:
    low_text, high_text = interval[1:-1].split(",")
    low, high = float(low_text), float(high_text)
    above = value >= low if interval[0] == "[" else value > low
    below = value <= high if interval[-1] == "]" else value < high
    return above and below


def _check_type(name: str, annotation: str, value: Any) -> None:
    """``value`` against a field annotation such as ``int``, ``float | None`` or ``tuple[str, ...]``."""
    checks = {
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
        "str": lambda v: isinstance(v, str),
        "bool": lambda v: isinstance(v, bool),
        "None": lambda v: v is None,
        "tuple[str, ...]": lambda v: isinstance(v, tuple) and all(isinstance(x, str) for x in v),
        "dict[str, Any]": lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v),
    }
    options = [a.strip() for a in annotation.split("|")]
    if not any(checks[a](value) for a in options):
        wanted = " or ".join("a list of names" if a.startswith("tuple") else "a table" if a.startswith("dict")
                             else "null" if a == "None" else "a whole number" if a == "int" else "a number" if a == "float"
                             else "true or false" if a == "bool" else "text" for a in options)
        if isinstance(value, float) and not math.isfinite(value):  # 1e999 reads as inf: say why it is refused
            why = "not a number" if math.isnan(value) else "a number too large for a float, such as 1e999, reads as inf"
            raise ConfigError(f"{_flag(name)} must be a finite number, got {value!r} ({why})")
        hint = ""
        if name in OPTION_KINDS and isinstance(value, dict):  # [protocol] name = ... / test_cities = ... in a file
            hint = (f"; {name} is the plugin's name (e.g. {name} = \"...\"), and its options go under "
                    f"[options.{name}] in a config file or --set {name}.FIELD=VALUE")
        elif name == "model" and isinstance(value, dict):
            hint = ("; model is the model's name (e.g. model = \"mobileascnet\"), and its arguments go under "
                    "[model_kwargs] in a config file or --set model.ARG=VALUE")
        raise ConfigError(f"{_flag(name)} must be {wanted}, got {value!r} ({type(value).__name__}){hint}")


def _whole_numbers_in(value: Any) -> list[int]:
    """Every whole number in a model argument, inside lists and tables too (``channels = [8, 16, 10**9]``)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _whole_numbers_in(v)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _whole_numbers_in(v)]
    return []


TUPLE_FIELDS = ("loggers",)  # lists in JSON, tuples here (hashable, frozen)


def _name_set(value: Any) -> Any:
    """A list field as one reading for every source: a list, a tuple (a repeated flag) or comma-separated text
    (`loggers = "csv"` in a file, `--set loggers=csv,tensorboard`, `--logger csv,tensorboard`), each name stripped
    and kept once (["csv", "csv"] is one csv logger, not two writers of one file). Anything else is left for the
    type check to name."""
    items = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
    if items is None or not all(isinstance(v, str) for v in items):
        return tuple(value) if isinstance(value, list) else value
    return tuple(dict.fromkeys(part.strip() for v in items for part in v.split(",") if part.strip()))

# Fields that decide how a run executes, not what it computes (up to floating-point summation order).
# torch.compile fuses kernels, and the memory format picks other kernels: the same computation in another
# summation order. Loggers only watch.
EXECUTION_FIELDS = ("threads", "device", "compile", "memory_format", "loggers", "log_dir")
