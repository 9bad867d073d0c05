"""The pretraining stage shared by strategies that start from pretrained weights.

It goes through the run's pipeline (``ascbench.pipeline``): its sources are loaded by ``load_source``, their
log-mels come from ``whole_features`` with the run's own front-end, and ``split_whole`` holds out the
validation clips, so a source gets the same audio checks, cache and grouping as the run's own dataset.

A stage is keyed by everything that shapes its weights (model, its arguments and its layer
structure, source dataset and its metadata fingerprint, feature preset, recipe, seed) and cached under
``$ASCBENCH_CACHE_DIR/pretrained``, so the second fine-tuning run with the same stage skips it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ascbench import callbacks, distributed, pipeline, provenance
from ascbench.device import Compute, ModelNeeds
from ascbench.data.dataset import ClipDataset
from ascbench.errors import ConfigError, DataError
from ascbench.features import FeatureConfig, audio_content_key
from ascbench.fileio import cache_root
from ascbench.fitting import fit
from ascbench.training import DataBundle, create_model, probe_model
from ascbench.weights import Checkpoint, read_checkpoint, to_checkpoint, unwrap

log = logging.getLogger("ascbench")


def pretrained_dir() -> Path:
    return cache_root() / "pretrained"


def pretrained_state(plan: pipeline.Plan, progress: bool = True, notes: dict | None = None) -> Checkpoint:
    """Weights of the run's model to start from: ``--pretrained`` (any supported format), or pretrained on the
    source dataset (from the cache when possible) with the run's front-end. The classes they were trained on
    come with them.

    What was used is recorded in ``notes["pretraining"]`` when ``notes`` is given.
    """
    config, registry = plan.config, plan.registry
    notes = notes if notes is not None else {}
    if config.pretrained:
        return _given_checkpoint(plan, notes)
    source_name = config.pretrain_on or registry.dataset(config.dataset).pretrain_source
    if not source_name:
        raise ConfigError(
            f"dataset {config.dataset!r} declares no pretraining source; pass --pretrain-on DATASET or --pretrained CHECKPOINT"
        )
    source = pretraining_source(plan, source_name)
    recipe = _stage_recipe(plan, source, source_name)
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    path = pretrained_dir() / f"{config.model}-{source_name}-{key}.pt"
    classes = source.dataset.classes
    notes["pretraining"] = {"source": source_name, "stage": path.name, "cached": path.exists(), "classes": classes}
    if source.mapped:
        notes["pretraining"]["clips_per_source"] = source.counts
    stage = f"pretrain {source_name}"
    if path.exists():
        log.info("reusing cached pretraining stage %s", path.name)
        stored = read_checkpoint(path)
        # The stage's learning curve travels with its weights, so a run that reuses it still records it.
        callbacks.stage_end(stage, stored.get("history", []) if isinstance(stored, dict) else [])
        return Checkpoint(unwrap(stored)[0], source="pretraining stage", classes=classes)
    log.info("pretraining %s on %s for up to %d epochs (cached as %s)", config.model, source_name, config.pretrain_epochs, path.name)
    state = _train_stage(plan, source, stage, progress, notes["pretraining"], path, recipe)
    return Checkpoint(state, source="pretraining stage", classes=classes)


def _given_checkpoint(plan: pipeline.Plan, notes: dict) -> Checkpoint:
    """``--pretrained FILE``: read in whatever supported format it is, converted to the run's model."""
    config = plan.config
    log.info("starting from checkpoint %s", config.pretrained)
    checkpoint = to_checkpoint(read_checkpoint(config.pretrained), plan.registry.model(config.model), config.pretrained)
    notes["pretraining"] = {"checkpoint": str(config.pretrained), "format": checkpoint.source,
                            "classes": checkpoint.classes}
    return checkpoint


def _stage_recipe(plan: pipeline.Plan, source: PretrainingSource, source_name: str) -> dict:
    """Everything a pretraining stage's weights depend on: its cache key, and stored with the weights."""
    config, feature_cfg = plan.config, plan.feature_config
    probe = probe_model(plan.registry.model(config.model), config, source.dataset, feature_cfg.n_mels,
                        feature_cfg.n_frames(source.dataset.clip_seconds))
    return {
        "model": config.model, "model_kwargs": config.model_kwargs, "context": config.context, "source": source_name,
        # The layer structure (kinds, widths, strides): a model whose code changes under the same name
        # must not pick up a stage trained for its old architecture.
        "architecture": hashlib.sha256(repr(probe).encode()).hexdigest()[:16],
        # The metadata fingerprint alone would miss regenerated or replaced audio; the feature key
        # covers every file's size and modification time.
        "source_fingerprint": source.dataset.fingerprint(), "source_features": source.content_key(feature_cfg),
        "features": asdict(feature_cfg),
        "epochs": config.pretrain_epochs, "lr": config.lr, "batch_size": config.batch_size,
        "min_epoch_clips": config.min_epoch_clips,
        "weight_decay": config.weight_decay, "city_dropout": config.city_dropout, "seed": config.seed,
        "val_fraction": config.val_fraction, "patience": config.patience,
        "augmentation": [config.freq_mask, config.time_mask, config.mixstyle_p, config.mixstyle_alpha, config.mixup_alpha],
        "training": {k: getattr(config, k) for k in (
            "optimizer", "scheduler", "step_epochs", "step_gamma", "warmup_epochs", "select_on", "min_epochs",
            "normalization", "roll_seconds", "mask_value", "pretrain_classes")},
        # A --quick stage trains on a few clips per epoch: never the stage a full run reuses (keys unchanged otherwise).
        **({"quick": True} if config.quick else {}),
        # How the stage computes changes its weights beyond the last bits (a few epochs amplify a changed summation
        # order into points of accuracy): a stage trained on 2 threads, in bf16 or on a GPU is not the stage a
        # 1-thread fp32 CPU run would have trained, so reusing it would make that run unreproducible.
        "execution": _stage_execution(plan),
    }


def _stage_execution(plan: pipeline.Plan) -> dict:
    """The thread count, device and resolved precision a pretraining stage trains with (part of its key)."""
    config = plan.config
    needs = ModelNeeds.of(plan.model)
    compute = Compute.from_names(config.device, config.precision, needs, memory_format=config.memory_format)
    execution = {"threads": torch.get_num_threads(), "device": compute.device.type, "precision": compute.precision}
    if compute.channels_last != Compute.from_names(config.device, config.precision, needs).channels_last:
        # Only a layout other than auto's is named, so stages cached before --memory-format keep their keys.
        execution["memory_format"] = "channels_last" if compute.channels_last else "contiguous"
    if compute.device.type == "cpu":
        # oneDNN picks kernels by instruction set; the CPU model name stands in for it.
        execution["cpu"] = provenance.cpu_name()
    return execution


def _train_stage(plan: pipeline.Plan, source: PretrainingSource, stage: str, progress: bool, note: dict, path: Path,
                 recipe: dict) -> dict:
    """Pretrain on the whole source (a held-out validation part for model selection) and cache the weights."""
    config, feature_cfg = plan.config, plan.feature_config
    features = source.features(plan, progress)
    dataset = source.dataset
    part = pipeline.split_whole(plan, dataset)
    data = DataBundle.build(dataset, features, np.arange(len(dataset.meta)), normalization=config.normalization,
                            frame_rate=feature_cfg.sample_rate / feature_cfg.hop_length)
    model = create_model(plan.registry.model(config.model), data.model_context(), config)
    result = fit(model, data, part.labeled, part.val, epochs=config.pretrain_epochs, lr=config.lr, config=config,
                 seed=config.seed, desc=stage, progress=progress)
    note.update(best_epoch=result.best_epoch, best_val_accuracy=result.best_val_accuracy, epochs_run=len(result.history))
    if distributed.is_main():  # data-parallel ranks hold the same weights; one writes them
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save({"model": model.state_dict(), "recipe": recipe, "history": result.history}, tmp)
        os.replace(tmp, path)
    return model.state_dict()


@dataclass
class PretrainingSource:
    """What a pretraining stage trains on: one dataset as it is, or one or more datasets' clips of the
    target's classes (``--pretrain-classes target``), relabelled through the target's class maps."""

    dataset: ClipDataset
    parts: list[tuple[ClipDataset, np.ndarray]]  # each source and its rows kept, in the order of dataset.meta
    mapped: bool
    counts: dict[str, int]

    def content_key(self, cfg: FeatureConfig) -> str:
        return "+".join(audio_content_key(ds, cfg) for ds, _ in self.parts)

    def features(self, plan: pipeline.Plan, progress: bool = True) -> np.ndarray | StackedFeatures:
        arrays = [pipeline.whole_features(plan, ds, progress) for ds, _ in self.parts]
        if not self.mapped:
            return arrays[0]
        return StackedFeatures([(a, rows) for a, (_, rows) in zip(arrays, self.parts)])


class StackedFeatures:
    """Selected rows of several memory-mapped feature arrays, indexed as one (clips x mels x frames) array
    without copying them together; clips of different lengths are cut to the shortest."""

    def __init__(self, parts: list[tuple[np.ndarray, np.ndarray]]):
        mels = {a.shape[1] for a, _ in parts}
        if len(mels) != 1:
            raise DataError(f"pretraining sources give different numbers of mel bins ({sorted(mels)})")
        self.parts = parts
        self.frames = min(a.shape[2] for a, _ in parts)
        self.offsets = np.cumsum([0] + [len(rows) for _, rows in parts])
        self.shape = (int(self.offsets[-1]), mels.pop(), self.frames)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        index = np.atleast_1d(np.asarray(index, dtype=np.int64))
        out = np.empty((len(index),) + self.shape[1:], dtype=np.float32)
        which = np.searchsorted(self.offsets, index, side="right") - 1
        for k, (array, rows) in enumerate(self.parts):
            mine = np.flatnonzero(which == k)
            if len(mine):
                source_rows = rows[index[mine] - self.offsets[k]]
                order = np.argsort(source_rows, kind="stable")  # sequential reads on the memory map
                out[mine[order]] = array[source_rows[order]][..., :self.frames]
        return out


def _source_roots(text: str | None, names: list[str]) -> dict[str, Path | None]:
    """--pretrain-data-root: one directory for one source, or NAME=DIR,NAME=DIR for several."""
    if not text:
        return {n: None for n in names}
    if "=" not in text:
        if len(names) > 1:
            raise ConfigError(f"--pretrain-data-root {text!r}: with several sources ({', '.join(names)}) name each "
                              "one's directory, e.g. --pretrain-data-root tau-urban=/data/tau,cochlscene=/data/cochl")
        return {names[0]: Path(text)}
    roots = {}
    for item in text.split(","):
        name, _, directory = item.partition("=")
        if name.strip() not in names:
            raise ConfigError(f"--pretrain-data-root names {name.strip()!r}, which is not a pretraining source "
                              f"of this run ({', '.join(names)})")
        roots[name.strip()] = Path(directory.strip())
    return {n: roots.get(n) for n in names}


def pretraining_source(plan: pipeline.Plan, source_name: str) -> PretrainingSource:
    """The clips a pretraining stage of ``plan`` trains on: ``source_name`` (one dataset, or several joined by
    commas), loaded by the pipeline; with ``--pretrain-classes target`` only the clips whose scene maps onto
    one of the target's classes, relabelled."""
    config, target_dataset = plan.config, plan.config.dataset
    names = [n.strip() for n in source_name.split(",") if n.strip()]
    if target_dataset in names:
        # Every labeled clip of a source trains; for the target itself that includes its test side.
        raise ConfigError(f"--pretrain-on {target_dataset!r} is the dataset under test: pretraining would see its test "
                          f"clips (and, under unseen-city or unseen-time, its held-out cities or periods). Pretrain on "
                          f"another dataset (--pretrain-on), start from --pretrained CHECKPOINT, or use --strategy scratch")
    roots = _source_roots(config.pretrain_data_root, names)
    loaded = [pipeline.load_source(plan, n, roots[n]) for n in names]
    if config.pretrain_classes == "source":
        only = loaded[0]
        return PretrainingSource(only, [(only, np.arange(len(only.meta)))], mapped=False, counts={})
    target = plan.dataset
    target_classes = pipeline.load(plan, require_audio=False, check_model=False).classes
    frames, parts, counts = [], [], {}
    for name, ds in zip(names, loaded):
        mapping = target.class_maps.get(name) or {c: c for c in ds.classes if c in target_classes}
        bad = sorted(set(mapping.values()) - set(target_classes))
        if bad:
            raise ConfigError(f"dataset {target_dataset!r} maps {name!r} scenes onto {bad}, which are not its classes")
        rows = np.flatnonzero(ds.meta["labeled"].to_numpy() & ds.meta["scene_label"].isin(mapping).to_numpy())
        if not len(rows):
            raise ConfigError(f"--pretrain-on {name}: none of its scenes map onto the classes of {target_dataset!r}")
        meta = ds.meta.iloc[rows]
        frames.append(pd.DataFrame({
            "filename": [f"{name}/{f}" for f in meta["filename"]], "scene_label": meta["scene_label"].map(mapping).to_numpy(),
            "labeled": True, "city": [f"{name}:{c}" for c in meta["city"]], "timestamp": meta["timestamp"].to_numpy(),
            "group": [f"{name}:{g}" for g in meta["group"]], "split": ""}))
        parts.append((ds, rows))
        counts[name] = int(len(rows))
        log.info("pretraining on %d of %d %s clips, mapped onto %s's classes", len(rows), len(ds.meta), name, target_dataset)
    merged = ClipDataset(name="+".join(names), root=loaded[0].root, meta=pd.concat(frames, ignore_index=True),
                         classes=list(target_classes), sample_rate=loaded[0].sample_rate,
                         clip_seconds=min(ds.clip_seconds for ds in loaded), feature_preset=loaded[0].feature_preset,
                         description=f"{' + '.join(names)} on the classes of {target_dataset}")
    return PretrainingSource(merged, parts, mapped=True, counts=counts)
