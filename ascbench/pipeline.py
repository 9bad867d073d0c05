"""The named stages of a run: resolve, load, features, split, train, evaluate, profile (store is
``ascbench.results.commit_run``). The runner chains them; ``ascbench data split``, ``ascbench profile`` and the
Python API call the ones they need, so a previewed split or a profiled model is exactly what a run uses.

    plan = resolve(config)                      # every name, option and file checked; nothing read yet
    dataset = load(plan)
    run_features = features(plan, dataset)      # cached log-mels, unusable files refused or left out
    split_plan = split(plan, dataset)           # protocol, the core's checks, partition, metadata ceiling
    model = train(plan, job)                    # the strategy (and its semi method) on a TrainingJob
    metrics = evaluate(plan, model, data, split_plan.partition.test)
    complexity = profile(plan, model, n_frames, time_dim, dataset.clip_seconds)

A pretraining stage (``ascbench.pretraining``) learns from datasets the run does not score; it uses the same
stages in their whole-dataset form: ``load_source``, ``whole_features`` and ``split_whole``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch.nn as nn

from ascbench.applicability import check_applicable
from ascbench.complexity import latency_ms, profile as count_complexity, torchinfo_macs
from ascbench.config import RunConfig, flag_of
from ascbench.data.audio import FileReport
from ascbench.data.dataset import ClipDataset, DatasetOptions
from ascbench.errors import AscbenchError, ConfigError, DataError, PluginError, call_plugin, check_returned
from ascbench.features import (CheckedFeatures, FeatureConfig, data_check_command, load_checked_features, load_features,
                               unusable_files_error)
from ascbench.metrics import evaluate as score_predictions
from ascbench.options import frontend_name, resolve_all
from ascbench.protocols import Partition, Split, partition
from ascbench.registry import Registry, get_registry, plugin_label
from ascbench.specs import DatasetSpec, LoggerSpec, ModelSpec, SemiSpec, StrategySpec
from ascbench.split_plan import SplitPlan, plan_split
from ascbench.training import DataBundle, predict, probe_model, require_finite

log = logging.getLogger("ascbench")

@dataclass(frozen=True)
class Plan:
    """A config with every plugin it names resolved and every option checked: what the later stages need."""

    config: RunConfig
    registry: Registry
    model: ModelSpec
    strategy: StrategySpec
    semi: SemiSpec
    dataset: DatasetSpec
    options: dict[str, Any]  # each kind's resolved options (ascbench.options.resolve_all); "frontend" included
    loggers: list[LoggerSpec] = field(default_factory=list)

    @property
    def feature_config(self) -> FeatureConfig:
        """The front-end's settings, with any ``frontend.FIELD`` options applied."""
        return self.options["frontend"]

    @property
    def front_end(self) -> str:
        return frontend_name(self.config, self.registry)

    def owner(self, kind: str) -> str:
        return self.registry.owner(kind, getattr(self.config, kind))


def resolve(config: RunConfig, registry: Registry | None = None) -> Plan:
    """Stage ``resolve``: every name, option and file the config refers to, checked in a second, before any
    data is read (a typo must not fail after feature extraction)."""
    registry = registry or get_registry()
    model, strategy, semi = registry.model(config.model), registry.strategy(config.strategy), registry.semi(config.semi)
    dataset = registry.dataset(config.dataset)
    registry.protocol(config.protocol)
    if registry.canonical("protocol", config.protocol) != config.protocol:  # an old name, e.g. from the Python API
        config = config.replace(protocol=registry.canonical("protocol", config.protocol))
    if config.recipe:
        registry.recipe(config.recipe)  # an unknown recipe in a stored config fails here, naming the valid ones
    options = resolve_all(config, registry)
    check_applicable(config, registry)  # a setting the run would not read is refused, not stored
    if config.pretrained and not Path(config.pretrained).is_file():
        what = ("no such file" if not os.path.lexists(config.pretrained) else "a folder" if Path(config.pretrained).is_dir()
                else "not a regular file (a pipe, a device, a socket or a broken link)")
        raise ConfigError(f"--pretrained {config.pretrained}: {what}; pass the path of a torch.save checkpoint "
                          "(an ascbench run's model.pt or an official checkpoint)")
    loggers = [_logger_spec(registry, name) for name in config.loggers]
    return Plan(config, registry, model, strategy, semi, dataset, options, loggers)


def load(plan: Plan, require_audio: bool = True, check_model: bool = True) -> ClipDataset:
    """Stage ``load``: the dataset's clip table (with its own options); a model that cannot be built for it
    fails here, before any audio is decoded (``check_model=False``: the table only, e.g. for its classes)."""
    config = plan.config
    dataset = call_plugin(f"dataset {config.dataset!r} (plugin {plan.owner('dataset')!r})", plan.dataset.load,
                          DatasetOptions(data_root=Path(config.data_root) if config.data_root else None,
                                         require_audio=require_audio, plugin=plan.options["dataset"]),
                          returns=ClipDataset)
    check_against_data(config, plan.feature_config, dataset)
    if check_model:
        _check_model_builds(plan, dataset)
        split(plan, dataset)  # the split and partition checks on the table alone, before any audio is decoded
    return dataset


def check_against_data(config: RunConfig, cfg: FeatureConfig, dataset: ClipDataset) -> None:
    """The ranges that depend on the data, checked once its clip length and the front-end are known (before
    any audio is decoded): a mask as wide as the spectrogram blanks whole clips, a roll longer than the clip
    only wraps around. Each refusal names the flag and the range valid for this data."""
    n_frames = cfg.n_frames(dataset.clip_seconds)
    shape = f"{cfg.n_mels} mel bins x {n_frames} frames for {dataset.name}'s {dataset.clip_seconds:g} s clips"
    for name, value, size in (("freq_mask", config.freq_mask, cfg.n_mels), ("time_mask", config.time_mask, n_frames)):
        if value >= size:
            raise ConfigError(f"{flag_of(name)} {value} ({name}) is as wide as the spectrogram ({shape}) and "
                              f"would blank whole clips; for this data it must be in [0, {size - 1}]")
    if config.roll_seconds > dataset.clip_seconds:
        raise ConfigError(f"--roll-seconds {config.roll_seconds:g} (roll_seconds) is longer than {dataset.name}'s "
                          f"{dataset.clip_seconds:g} s clips (a circular roll only wraps around); for this data it "
                          f"must be in [0, {dataset.clip_seconds:g}]")


def load_source(plan: Plan, name: str, data_root: Path | None = None) -> ClipDataset:
    """Stage ``load`` for a dataset the run learns from but does not score (a pretraining source): its
    registered loader with its default options, audio required (and the data-dependent ranges checked on it,
    as its clips go through the same augmentation)."""
    dataset = plan.registry.dataset(name).load(DatasetOptions(data_root=data_root))
    check_against_data(plan.config, plan.feature_config, dataset)
    return dataset


@dataclass
class RunFeatures:
    """Stage ``features``' result: the feature matrix and the clips it covers."""

    checked: CheckedFeatures
    kept_rows: np.ndarray | None  # feature rows of the clips kept (None: all; ``dataset.meta`` was cut to match)
    skipped: list[dict]  # files left out with --skip-bad, and why


def features(plan: Plan, dataset: ClipDataset, progress: bool = True) -> RunFeatures:
    """Stage ``features``: log-mels of every clip (from the cache, or extracted once), unusable audio refused
    or, with ``--skip-bad``, left out of ``dataset``."""
    checked = load_checked_features(dataset, plan.feature_config, progress=progress, threads=plan.config.threads)
    kept, skipped = _drop_bad_audio(dataset, checked, plan.config)
    return RunFeatures(checked, kept, skipped)


def whole_features(plan: Plan, dataset: ClipDataset, progress: bool = True) -> np.ndarray:
    """Stage ``features`` for a dataset used whole (a pretraining source): the run's front-end, from the cache
    or extracted once. An unusable file is refused, naming it: there is no ``--skip-bad`` here, as clips left
    out of a cached pretraining stage would not show in the run that reuses it."""
    return load_features(dataset, plan.feature_config, progress=progress, threads=plan.config.threads)[0]


def split_whole(plan: Plan, dataset: ClipDataset) -> Partition:
    """Stage ``split`` for a dataset used whole: every labeled clip trains, whatever its own split or protocol,
    but the run's validation fraction, held out by recording with the run's seed; nothing is tested."""
    rows = np.arange(len(dataset.meta))
    return partition(dataset, Split(train=rows, test=np.array([], dtype=np.int64)), None,
                     plan.config.val_fraction, plan.config.seed)


def split(plan: Plan, dataset: ClipDataset, fold: int | None = None, val_fraction: float | None = None) -> SplitPlan:
    """Stage ``split``: the protocol's split through the core's checks, the partition into labeled, unlabeled,
    validation and test clips, and what metadata alone scores on it."""
    return plan_split(dataset, plan.config, plan.registry, fold=fold, val_fraction=val_fraction)


def train(plan: Plan, job: Any) -> nn.Module:
    """Stage ``train``: the strategy on a ``TrainingJob``. A failure inside a plugin names that plugin (found
    from where the error was raised); a disk that cannot be written is the disk's fault, not theirs."""
    job.names = {kind: _named(plan, kind) for kind in ("model", "strategy", "semi")}
    try:
        model = plan.strategy.train(job)
    except AscbenchError:
        raise
    except OSError as exc:  # a full or read-only disk under a checkpoint or cache write
        where = exc.filename or "the runs or cache directory"
        raise DataError(f"cannot write {where}: {exc.strerror or exc}; free some space or choose a writable "
                        "--runs-dir / --cache-dir; nothing of this run was stored") from exc
    except Exception as exc:
        raise PluginError(f"training failed in {_culprit(plan, exc)}: {type(exc).__name__}: {exc}") from exc
    return check_returned(_named(plan, "strategy"), model, nn.Module,
                          "the trained model (a torch nn.Module); its train(job) must return the model")


def _named(plan: Plan, kind: str) -> str:
    return plugin_label(kind, getattr(plan.config, kind), plan.registry)


def _culprit(plan: Plan, exc: BaseException) -> str:
    """The chosen plugin whose code raised ``exc``: the deepest frame of its traceback in a module of the
    strategy, the semi method or the model (its builder's or its class's). Where no frame or several tell,
    the strategy and the model are named, as both ran."""
    modules = {kind: {_module(fn)} - {None} for kind, fn in
               (("strategy", plan.strategy.train), ("semi", plan.semi.fit), ("model", plan.model.build))}
    frames = [tb.tb_frame.f_globals.get("__name__") for tb in _tracebacks(exc)]
    for module in reversed(frames):
        kinds = [kind for kind, names in modules.items() if module in names]
        if len(kinds) == 1:
            return _named(plan, kinds[0])
        if kinds:
            break
    return f"{_named(plan, 'strategy')} with {_named(plan, 'model')}"


def _module(fn: Any) -> str | None:
    """The module of a plugin's function; None for the core's own (``ascbench.semi.supervised``, which ``--semi
    none`` registers), whose frames say nothing about which plugin failed."""
    module = getattr(fn, "__module__", None)
    return None if module is None or module == "ascbench" or module.startswith("ascbench.") else module


def _tracebacks(exc: BaseException) -> list:
    out, tb = [], exc.__traceback__
    while tb is not None:
        out.append(tb)
        tb = tb.tb_next
    return out


# The metrics of a run whose protocol has no test side.
UNSCORED = {"num_clips": 0, "accuracy": None, "macro_accuracy": None, "macro_f1": None, "log_loss": None,
            "worst_city_accuracy": None, "worst_period_accuracy": None, "class_accuracy": {}, "city_accuracy": {},
            "period_accuracy": {}, "confusion_matrix": [], "scored": False}


def evaluate(plan: Plan, model: nn.Module, data: DataBundle, test_rows: np.ndarray, groups: np.ndarray) -> dict:
    """Stage ``evaluate``: the model's predictions on the test clips (on the run's device), the core's metrics,
    every registered metric, and the per-clip predictions (row, recording group, truth, prediction) that
    confidence intervals and paired tests between runs are computed from. No test side: stored, not scored."""
    if not len(test_rows):
        return dict(UNSCORED)
    probs = predict(model, data, test_rows)
    require_finite(probs, plan.config.model, plan.registry.owner("model", plan.config.model), "at evaluation")
    meta = data.dataset.meta.iloc[test_rows]
    truth = data.labels[test_rows]
    metrics = score_predictions(truth, probs, data.dataset.classes, cities=meta["city"].tolist(),
                                periods=meta["period"].tolist())
    metrics["scores"] = _scores(plan.registry, truth, probs, data.dataset.classes)
    metrics["test_predictions"] = {"row": test_rows.tolist(), "group": groups[test_rows].tolist(),
                                   "true": truth.tolist(), "predicted": probs.argmax(axis=1).tolist()}
    return metrics


def profile(plan: Plan, model: nn.Module, n_frames: int, time_dim: int, clip_seconds: float, device: str) -> dict:
    """Stage ``profile``: parameters, MACs per clip and per second (ours and torchinfo's), parameter memory,
    and single-clip latency on the run's device (measured before the model moves to the CPU for counting)."""
    cfg = plan.feature_config
    latency = latency_ms(model, cfg.n_mels, n_frames, time_dim)
    model = model.cpu()  # MACs are counted on the CPU
    per_clip = count_complexity(model, cfg.n_mels, n_frames, time_dim)
    one_second = cfg.n_frames(1.0)
    per_second = count_complexity(model, cfg.n_mels, one_second, time_dim)
    return {**per_clip.as_dict(), "macs_per_second": per_second.macs,
            "torchinfo_macs_per_second": torchinfo_macs(model, cfg.n_mels, one_second, time_dim),
            "latency_ms": round(latency, 3), "latency_device": device, "clip_seconds": clip_seconds,
            "precision": "float32", "model_kwargs": {**plan.model.default_kwargs, **plan.config.model_kwargs}}


def _check_model_builds(plan: Plan, dataset: ClipDataset) -> None:
    """Build the model once before feature extraction, so a bad ``--model-arg`` fails in seconds."""
    config, cfg = plan.config, plan.feature_config
    try:
        probe_model(plan.model, config, dataset, cfg.n_mels, cfg.n_frames(dataset.clip_seconds), _named(plan, "model"))
    except AscbenchError:
        raise
    except Exception as exc:
        if not config.model_kwargs:  # nothing the user gave: the plugin's own fault
            raise PluginError(f"model {config.model!r} (plugin {plan.owner('model')!r}) cannot be built for "
                              f"{dataset.name}: {type(exc).__name__}: {exc}") from exc
        args = " ".join(f"--model-arg {k}={v!r}" for k, v in config.model_kwargs.items())
        raise ConfigError(f"model {config.model!r} (plugin {plan.owner('model')!r}) cannot be "
                          f"built with {args}: {type(exc).__name__}: {exc}") from None


def _drop_bad_audio(dataset: ClipDataset, checked: CheckedFeatures, config: RunConfig) -> tuple[np.ndarray | None, list[dict]]:
    """Refuse a dataset with unusable audio files, or leave them out with --skip-bad (listed in the record).

    Returns the feature rows of the clips kept (None: all of them; ``dataset.meta`` is cut to match)
    and the files left out.
    """
    reports = checked.reports
    if config.other_rate == "refuse":  # the resampling note becomes a problem
        reports = [r if r.problem or not any(n.startswith("sample rate") for n in r.notes) else
                   FileReport(r.filename, next(n for n in r.notes if n.startswith("sample rate")).split(" (")[0]
                              + f", the dataset declares {dataset.sample_rate} Hz (--other-rate refuse)")
                   for r in reports]
    bad = [r for r in reports if r.problem]
    noted = sorted({n.split(" (")[0] if "channels" in n or "sample rate" in n else "length differs" for r in reports for n in r.notes})
    if noted:
        log.info("audio notes for %s: %s (see `%s`)", dataset.name, "; ".join(noted), data_check_command(dataset))
    if not bad:
        return None, []
    if not config.skip_bad:
        raise unusable_files_error(dataset, bad, ", --skip-bad leaves them out")
    log.warning("skipping %d unusable audio file(s) of %s (listed in metrics.json)", len(bad), dataset.name)
    keep = ~dataset.meta["filename"].isin({r.filename for r in bad}).to_numpy()
    dataset.meta = dataset.meta[keep].reset_index(drop=True)
    return np.flatnonzero(keep), [{"filename": r.filename, "problem": r.problem} for r in bad]


def _scores(registry: Registry, y_true: np.ndarray, probs: np.ndarray, classes: list[str]) -> dict[str, float | None]:
    """Every registered metric on the test predictions; one that raises is stored as None with a warning
    (a broken metric plugin must not cost the run)."""
    scores: dict[str, float | None] = {}
    for name in registry.names("metric"):
        try:
            scores[name] = float(registry.metric(name).compute(y_true, probs, classes))
        except Exception as exc:  # noqa: BLE001
            log.warning("metric %r (plugin %r) failed: %s: %s", name, registry.owner("metric", name),
                        type(exc).__name__, exc)
            scores[name] = None
    return scores


def _logger_spec(registry: Registry, name: str) -> LoggerSpec:
    """The logger named ``name``, its packages checked now: a missing one is one line before any work."""
    spec = registry.logger(name)
    missing = [module for module in spec.requires if importlib.util.find_spec(module) is None]
    if missing:
        raise ConfigError(f"--logger {name} needs the {', '.join(missing)} package: "
                          f"{spec.install or 'pip install ' + ' '.join(missing)}")
    return spec
