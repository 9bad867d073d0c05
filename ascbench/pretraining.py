"""The pretraining stage shared by strategies that start from pretrained weights.

A stage is keyed by everything that shapes its weights (model, its arguments and its layer
structure, source dataset and its metadata fingerprint, feature preset, recipe, seed) and cached under
``$ASCBENCH_CACHE_DIR/pretrained``, so the second fine-tuning run with the same stage skips it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ascbench import distributed
from ascbench.config import RunConfig
from ascbench.data.dataset import DatasetOptions
from ascbench.errors import ConfigError, DataError
from ascbench.features import FeatureConfig, audio_content_key, load_features
from ascbench.fileio import cache_root
from ascbench.protocols import Split, partition
from ascbench.registry import Registry
from ascbench.training import DataBundle, create_model, fit, probe_model
from ascbench.weights import Checkpoint, read_checkpoint, to_checkpoint, unwrap

log = logging.getLogger("ascbench")


def pretrained_dir() -> Path:
    return cache_root() / "pretrained"


def load_checkpoint_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict of a cached pretraining stage."""
    return unwrap(read_checkpoint(path))[0]


def pretrained_state(
    config: RunConfig, registry: Registry, target_dataset: str, feature_cfg: FeatureConfig, progress: bool = True,
    notes: dict | None = None,
) -> Checkpoint:
    """Weights of ``config.model`` to start from: ``--pretrained`` (any supported format), or pretrained on the
    source dataset (from the cache when possible). The classes they were trained on come with them.

    What was used is recorded in ``notes["pretraining"]`` when ``notes`` is given.
    """
    notes = notes if notes is not None else {}
    if config.pretrained:
        log.info("starting from checkpoint %s", config.pretrained)
        checkpoint = to_checkpoint(read_checkpoint(config.pretrained), registry.model(config.model), config.pretrained)
        notes["pretraining"] = {"checkpoint": str(config.pretrained), "format": checkpoint.source,
                                "classes": checkpoint.classes}
        return checkpoint
    source_name = config.pretrain_on or registry.dataset(target_dataset).pretrain_source
    if not source_name:
        raise ConfigError(
            f"dataset {target_dataset!r} declares no pretraining source; pass --pretrain-on DATASET or --pretrained CHECKPOINT"
        )
    if source_name == target_dataset:
        # Every labeled clip of a source trains; for the target itself that includes its test side.
        raise ConfigError(f"--pretrain-on {source_name!r} is the dataset under test: pretraining would see its test "
                          f"clips (and, under unseen-city or unseen-time, its held-out cities or periods). Pretrain on "
                          f"another dataset (--pretrain-on), start from --pretrained CHECKPOINT, or use --strategy scratch")
    source_root = Path(config.pretrain_data_root) if config.pretrain_data_root else None
    source = registry.dataset(source_name).load(DatasetOptions(data_root=source_root))
    model_spec = registry.model(config.model)
    probe = probe_model(model_spec, config, source, feature_cfg.n_mels, feature_cfg.n_frames(source.clip_seconds))
    recipe = {
        "model": config.model, "model_kwargs": config.model_kwargs, "context": config.context, "source": source_name,
        # The layer structure (kinds, widths, strides): a model whose code changes under the same name
        # must not pick up a stage trained for its old architecture.
        "architecture": hashlib.sha256(repr(probe).encode()).hexdigest()[:16],
        # The metadata fingerprint alone would miss regenerated or replaced audio; the feature key
        # covers every file's size and modification time.
        "source_fingerprint": source.fingerprint(), "source_features": audio_content_key(source, feature_cfg),
        "features": asdict(feature_cfg),
        "epochs": config.pretrain_epochs, "lr": config.lr, "batch_size": config.batch_size,
        "min_epoch_clips": config.min_epoch_clips,
        "weight_decay": config.weight_decay, "city_dropout": config.city_dropout, "seed": config.seed,
        "val_fraction": config.val_fraction, "patience": config.patience,
        "augmentation": [config.freq_mask, config.time_mask, config.mixstyle_p, config.mixstyle_alpha, config.mixup_alpha],
        "training": {k: getattr(config, k) for k in (
            "optimizer", "scheduler", "step_epochs", "step_gamma", "warmup_epochs", "select_on", "min_epochs",
            "normalization", "roll_seconds", "mask_value", "pretrain_classes")},
    }
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    path = pretrained_dir() / f"{config.model}-{source_name}-{key}.pt"
    notes["pretraining"] = {"source": source_name, "stage": path.name, "cached": path.exists(), "classes": source.classes}
    if path.exists():
        log.info("reusing cached pretraining stage %s", path.name)
        return Checkpoint(load_checkpoint_state(path), source="pretraining stage", classes=source.classes)

    log.info("pretraining %s on %s for up to %d epochs (cached as %s)", config.model, source_name, config.pretrain_epochs, path.name)
    features, _ = load_features(source, feature_cfg, progress=progress, threads=config.threads)
    all_rows = np.arange(len(source.meta))
    # Every labeled clip of the source trains, whatever its own split (a validation part is held out).
    split = Split(train=all_rows, test=np.array([], dtype=np.int64))
    part = partition(source, split, None, config.val_fraction, config.seed)
    data = DataBundle.build(source, features, all_rows, normalization=config.normalization,
                           frame_rate=feature_cfg.sample_rate / feature_cfg.hop_length)
    model = create_model(model_spec, data.model_context(), config)
    result = fit(model, data, part.labeled, part.val, epochs=config.pretrain_epochs, lr=config.lr, config=config,
                 seed=config.seed, desc=f"pretrain {source_name}", progress=progress)
    notes["pretraining"].update(best_epoch=result.best_epoch, best_val_accuracy=result.best_val_accuracy,
                                epochs_run=len(result.history))
    if distributed.is_main():  # data-parallel ranks hold the same weights; one writes them
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save({"model": model.state_dict(), "recipe": recipe}, tmp)
        os.replace(tmp, path)
    return Checkpoint(model.state_dict(), source="pretraining stage", classes=source.classes)
