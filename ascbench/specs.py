"""What plugins register: small frozen records pairing a name with a callable."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ascbench.defaults import DEFAULT_FRONT_END

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import torch.nn as nn

    from ascbench.data.dataset import ClipDataset, DatasetOptions
    from ascbench.features import FeatureConfig
    from ascbench.protocols import ProtocolOptions, Split
    from ascbench.plugin import TrainingJob  # the contract a plugin is handed, not the training job itself

_NAME = re.compile(r"^[a-z0-9][a-z0-9._:-]*$")


def check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{kind} name {name!r} is invalid: use lower-case letters, digits and . _ : - (e.g. 'my-net')"
        )


def check_shortcuts(kind: str, name: str, options_class: type | None, shortcuts: dict[str, str],
                    renamed: dict[str, tuple[str, Any]]) -> None:
    """Each shortcut flag (``--x``) and old config name sets an option the plugin has."""
    fields = set(getattr(options_class, "__dataclass_fields__", {}))
    targets = [(flag, target.partition("=")[0]) for flag, target in shortcuts.items()]
    targets += [(old, value[0] if isinstance(value, tuple) else value) for old, value in renamed.items()]
    for label, option in targets:
        if option not in fields:
            raise ValueError(f"{kind} {name!r}: {label} sets option {option!r}, which its options_class does not have")
    bad = [flag for flag in shortcuts if not re.match(r"^--[a-z0-9][a-z0-9-]*$", flag)]
    if bad:
        raise ValueError(f"{kind} {name!r}: shortcut flags are --lower-case-words, not {bad}")


@dataclass(frozen=True)
class ModelContext:
    """Everything a model needs to know about its input and output sizes."""

    num_classes: int
    num_cities: int  # including index 0, the "unknown city"
    time_dim: int
    n_mels: int
    n_frames: int


@dataclass(frozen=True)
class Importer:
    """Turns another code base's checkpoint of a model into ascbench's key names (see ascbench.weights).

    ``recognises(state)`` says whether a state dict is in that format; ``convert(state)`` returns an
    ``ascbench.weights.Checkpoint`` (key mapping, kernel transposes, the source's city vocabulary).
    """

    name: str
    source: str  # the code base, e.g. "JishengBai/APSIPA2025GC-ASC"
    recognises: Callable[[dict], bool]
    convert: Callable[[dict], Any]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable[..., "nn.Module"]
    description: str = ""
    uses_city: bool = False
    uses_time: bool = False
    default_kwargs: dict[str, Any] = field(default_factory=dict)
    # Key of the city embedding in the model's state dict: checkpoints are remapped onto a run's cities by name.
    city_embedding: str | None = None
    importer: Importer | None = None  # reads the official checkpoints of this architecture
    # Capability flags (ascbench.device): channels_last: its convolutions may compute in channels_last (NHWC)
    # under bf16/fp16, where that is faster (opt-in: a forward that .view()s an NHWC activation would fail);
    # fp32_only: it must stay fp32 (--precision auto then resolves to fp32, bf16/fp16 are refused).
    channels_last: bool = False
    fp32_only: bool = False

    def __post_init__(self) -> None:
        check_name("model", self.name)


@dataclass(frozen=True)
class StrategySpec:
    name: str
    train: Callable[["TrainingJob"], "nn.Module"]
    description: str = ""
    # Capability flag: starts from pretrained weights (job.load_pretrained). False makes --pretrained and
    # --pretrain-on an error rather than silently ignored; None (undeclared) checks nothing.
    pretrains: bool | None = None
    # The strategy's own options: a dataclass of typed fields with defaults, set as --set strategy.FIELD=VALUE
    # and handed to it as job.options (see ascbench.options).
    options_class: type | None = None
    # Shortcut flags for its own options: flag -> "FIELD" (takes the value) or "FIELD=VALUE" (a switch), e.g.
    # {"--pl-rounds": "rounds"}. Old config names of its options: name -> (FIELD, the value configs held when it was
    # not set), e.g. {"pl_rounds": ("rounds", 2)}. Both are literal dicts: ``ascbench run --help`` reads them from
    # the plugin's source without importing it (ascbench.shortcuts).
    shortcuts: dict[str, str] = field(default_factory=dict)
    renamed: dict[str, tuple[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_name("strategy", self.name)
        check_shortcuts("strategy", self.name, self.options_class, self.shortcuts, self.renamed)


@dataclass(frozen=True)
class MetricSpec:
    """A score of a run's test predictions: ``compute(y_true, probs, classes) -> float`` with the true class
    indices, the class probabilities (clips x classes) and the class names. ``higher_is_better`` tells
    leaderboards which way to rank. Every registered metric is computed for every scored run and stored in
    ``metrics.json: scores``."""

    name: str
    compute: Callable[..., float]
    higher_is_better: bool
    description: str = ""

    def __post_init__(self) -> None:
        check_name("metric", self.name)


@dataclass(frozen=True)
class SemiSpec:
    """A semi-supervised method (``--semi NAME``), orthogonal to the strategy: how fitting uses the
    unlabeled training clips. ``fit(job, model, lr, epochs, desc)`` trains ``model`` through
    ``ascbench.fitting.fit`` (once or in rounds) and returns the list of ``FitResult`` of its stages.
    It may read ``job.partition.unlabeled`` without labels; never validation or test clips.
    ``options_class``: its own options, set as ``--set semi.FIELD=VALUE`` and given as ``job.semi_options``.
    """

    name: str
    fit: Callable[..., list]
    description: str = ""
    options_class: type | None = None
    # Capability flag: False for a method that cannot run data-parallel (e.g. one whose teacher must see every
    # batch of one process); the core then refuses such a run up front instead of training a wrong model.
    data_parallel: bool = True
    # Shortcut flags for its own options: flag -> "FIELD" (takes the value) or "FIELD=VALUE" (a switch), e.g.
    # {"--pl-rounds": "rounds"}. Old config names of its options: name -> (FIELD, the value configs held when it was
    # not set), e.g. {"pl_rounds": ("rounds", 2)}. Both are literal dicts: ``ascbench run --help`` reads them from
    # the plugin's source without importing it (ascbench.shortcuts).
    shortcuts: dict[str, str] = field(default_factory=dict)
    renamed: dict[str, tuple[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_name("semi-supervised method", self.name)
        check_shortcuts("semi-supervised method", self.name, self.options_class, self.shortcuts, self.renamed)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    load: Callable[["DatasetOptions"], "ClipDataset"]
    description: str = ""
    # True: its audio is generated by the plugin (no recordings); leaderboards say so beside every table.
    synthetic: bool = False
    # Where what the data is, and for synthetic data what was planted in it, is written: a URL or a path from the
    # repository root (``README.md#anchor``). Leaderboards link it beside every table.
    documentation: str = ""
    # Dataset(s) to pretrain on when a strategy needs a source domain (as TAU Urban is for APSIPA), comma-separated.
    pretrain_source: str | None = None
    # How other datasets' scene labels map onto this dataset's (source dataset -> {source label: label}), for
    # pretraining on the target's classes (--pretrain-classes target); a source without a map keeps the labels
    # whose names the target shares.
    class_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    feature_preset: str = DEFAULT_FRONT_END
    # The challenge's submission table for predicted labels (``ascbench predict --format challenge``);
    # None: filename and scene_label.
    submission: Callable[["ClipDataset", list[str]], "pd.DataFrame"] | None = None
    # Its own options (a dataclass), set as --set dataset.FIELD=VALUE and given to load() as options.plugin.
    options_class: type | None = None

    def __post_init__(self) -> None:
        check_name("dataset", self.name)


@dataclass(frozen=True)
class ProtocolSpec:
    name: str
    split: Callable[["ClipDataset", "ProtocolOptions"], "Split"]
    description: str = ""
    # The ProtocolOptions fields it reads beyond seed, group_by and untaught; a run that sets another
    # (e.g. --test-periods under official) is refused instead of silently ignored. None: undeclared.
    options: tuple[str, ...] | None = None
    # Capability flag: False for a protocol with no test side (it trains on every labeled clip, to make the
    # model one submits); its runs are stored but not scored, and leaderboards leave them out.
    scored: bool = True
    # The protocol's own options (a dataclass), set as --set protocol.FIELD=VALUE, given as options.plugin.
    options_class: type | None = None
    # Capability flag: False for a protocol that splits clip by clip, so recordings and sessions may straddle train
    # and test (to compare with numbers reported on such splits). The core then checks no group, records the split
    # as grouped by "clip" and marks it leaky with ``leak``, the reason, which such a protocol must give.
    keeps_groups_whole: bool = True
    leak: str = ""
    # Old names of this protocol that still resolve to it (records, sweep specs and scripts keep working); every
    # new run and every table uses ``name``.
    aliases: tuple[str, ...] = ()
    # Shortcut flags and old config names of its options, as StrategySpec's ({"--test-cities": "test_cities"}).
    shortcuts: dict[str, str] = field(default_factory=dict)
    renamed: dict[str, tuple[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_name("protocol", self.name)
        for alias in self.aliases:
            check_name("protocol", alias)
        check_shortcuts("protocol", self.name, self.options_class, self.shortcuts, self.renamed)
        if not self.keeps_groups_whole and not self.leak:
            raise ValueError(f"protocol {self.name!r} keeps no groups whole: it must say why its split leaks (leak=...)")


@dataclass(frozen=True)
class ModelFamily:
    """Many models under one prefix (e.g. ``timm:``), resolved only when asked for.

    ``resolve(suffix)`` returns the ``ModelSpec`` for ``prefix + suffix`` or ``None`` when there is no such
    model; ``names()`` lists the suffixes. Neither is called unless a user asks for the family, so a
    family backed by a heavy library costs nothing at start-up.
    """

    prefix: str
    resolve: Callable[[str], ModelSpec | None]
    names: Callable[[], list[str]]
    description: str = ""

    def __post_init__(self) -> None:
        if not self.prefix.endswith(":"):
            raise ValueError(f"model family prefix {self.prefix!r} must end with ':'")
        check_name("model family", self.prefix[:-1])


@dataclass(frozen=True)
class FrontEndSpec:
    """A named log-mel front-end: its settings, and where they come from.

    ``config`` is every setting that shapes the features (the feature cache is keyed by it); ``source``
    names the code it reproduces and ``departures`` says how it differs, if at all. Its options are the
    ``FeatureConfig`` fields themselves: ``--set frontend.n_mels=128`` runs this front-end with one setting
    changed (a run records the settings it used, and the cache keys on them).
    """

    name: str
    config: "FeatureConfig"
    description: str = ""
    source: str = ""
    departures: str = ""

    def __post_init__(self) -> None:
        check_name("front-end", self.name)


@dataclass(frozen=True)
class Departure:
    """One way a recipe departs from its source, machine-readable: the settings it concerns (none for a departure
    in code, not in a setting) and the reason, a sentence."""

    reason: str
    settings: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class RecipeSpec:
    """A named, documented set of training settings (``ascbench run --recipe NAME``).

    ``settings`` are config fields (see ``RunConfig``); ``per_dataset`` adds or replaces some for one dataset
    (the pretraining sources of a paper exist only for its own data). Fields given explicitly (flags,
    ``--set``, a config file, a sweep cell) win over the recipe's. ``source`` names what it reproduces,
    ``identical`` and ``departures`` say how faithfully, each departure with its reason (a ``Departure`` names the
settings it concerns); ``from_source`` names the settings the source states.

    ``options_class``: the recipe's own options (``--set recipe.FIELD=VALUE``, e.g. ``recipe.budget=0.1``), a
    dataclass like every plugin's; ``configure(options, settings)`` returns the settings those options give
    (called with the options resolved and the settings for the dataset; the options are saved with the run).
    """

    name: str
    settings: dict[str, Any]
    description: str = ""
    source: str = ""
    identical: str = ""
    departures: tuple[str | Departure, ...] = ()
    per_dataset: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The settings whose values the source states; with the departures' settings, a recipe that declares them
    # accounts for every setting it makes (ascbench.recipes.unaccounted_settings; the recipe kit checks it).
    from_source: tuple[str, ...] = ()
    options_class: type | None = None
    configure: Callable[[Any, dict[str, Any]], dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        check_name("recipe", self.name)
        fixed = {"recipe", "seed", "dataset", "data_root", "device", "threads", "fold"} & (
            set(self.settings).union(*self.per_dataset.values()) if self.per_dataset else set(self.settings))
        if fixed:
            raise ValueError(f"recipe {self.name!r} sets {sorted(fixed)}: a recipe describes training, not which "
                             "data, seed or machine a run uses")
        if (self.options_class is None) != (self.configure is None):
            raise ValueError(f"recipe {self.name!r}: options_class and configure come together (the options are "
                             "only read by configure)")

    def settings_for(self, dataset: str | None, options: Any = None) -> dict[str, Any]:
        """The fields this recipe sets for ``dataset`` under its resolved ``options`` (None: their defaults)."""
        settings = {**self.settings, **self.per_dataset.get(dataset or "", {})}
        if self.configure is None:
            return settings
        return self.configure(options if options is not None else self.options_class(), settings)


@dataclass(frozen=True)
class LoggerSpec:
    """A run logger (``ascbench run --logger NAME``): ``create(ctx)`` returns an
    ``ascbench.callbacks.RunLogger`` for one run, given a ``LoggerContext``.

    ``requires`` names the importable modules it needs (checked before the run starts, so a missing
    package is one clear line, not a failure after training); ``install`` says how to get them.
    """

    name: str
    create: Callable[..., Any]
    description: str = ""
    requires: tuple[str, ...] = ()
    install: str = ""

    def __post_init__(self) -> None:
        check_name("logger", self.name)


@dataclass(frozen=True)
class CommandSpec:
    """A subcommand a plugin adds to the command line: ``ascbench NAME ...`` (as llm's ``register_commands``).

    ``add_arguments(parser)`` declares its options on its argparse subparser; ``run(args)`` does the work and
    returns the exit status. A name a built-in command already has is refused (the plugin is skipped).
    """

    name: str
    add_arguments: Callable[[Any], None]
    run: Callable[[Any], int]
    help: str = ""

    def __post_init__(self) -> None:
        check_name("command", self.name)
