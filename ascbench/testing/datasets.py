"""The dataset kit: what a loader must give the core beyond the standard columns (which ``ClipDataset`` itself
refuses to lack): the same table twice, labels that teach, groups that nest, finite time features and
readable audio at the declared rate and length."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from ascbench.data.audio import read_checked
from ascbench.data.dataset import ClipDataset, DatasetOptions
from ascbench.registry import Registry, get_registry
from ascbench.testing.kit import ConformanceError, bind


def _load(name: str, registry: Registry, data_root: Path | None, plugin: Any = None) -> ClipDataset:
    return registry.dataset(name).load(DatasetOptions(data_root=data_root, plugin=plugin))


def _fail(name: str, registry: Registry, check: str, why: str) -> ConformanceError:
    return ConformanceError(f"dataset {name!r} (plugin {registry.owner('dataset', name)!r}) fails {check}: {why}")


def check_dataset_is_reproducible(name, registry, data_root, plugin):
    """Two loads give the same clip table (same fingerprint), so a stored run names exactly its data."""
    a, b = (_load(name, registry, data_root, plugin) for _ in range(2))
    if a.fingerprint() != b.fingerprint():
        raise _fail(name, registry, "check_dataset_is_reproducible", "two loads give different clip tables")


def check_dataset_labels_teach(name, registry, data_root, plugin):
    """Classes are unique and non-empty, and every labeled clip's label is one of them. A set with no labeled
    clip at all is allowed: an evaluation set (APSIPA 2025 eval) is only predicted."""
    ds = _load(name, registry, data_root, plugin)
    if len(set(ds.classes)) != len(ds.classes) or not ds.classes:
        raise _fail(name, registry, "check_dataset_labels_teach", f"classes must be unique and non-empty: {ds.classes}")
    labels = ds.label_indices()[ds.meta["labeled"].to_numpy()]
    if (labels < 0).any():
        raise _fail(name, registry, "check_dataset_labels_teach", "a labeled clip has no known class")


def check_dataset_groups_nest(name, registry, data_root, plugin):
    """Each declared grouping level nests in the next coarser one, and a recording is made in one city:
    otherwise keeping a level whole would not keep the finer levels whole."""
    ds = _load(name, registry, data_root, plugin)
    levels = list(ds.groupings)
    pairs = list(zip(levels, levels[1:])) + [("recording", "city")]
    for fine, coarse in pairs:
        coarse_of = ds.meta.groupby(ds.groupings[fine])[ds.groupings.get(coarse, coarse)].nunique()
        if (coarse_of > 1).any():
            raise _fail(name, registry, "check_dataset_groups_nest",
                        f"{fine} {coarse_of.index[coarse_of.to_numpy() > 1][0]!r} spans several {coarse} values")


def check_dataset_time_features(name, registry, data_root, plugin):
    """Every clip has a timestamp the time features can encode: (clips, 8), finite."""
    ds = _load(name, registry, data_root, plugin)
    time = ds.time_features()
    if time.shape != (len(ds.meta), 8) or not np.isfinite(time).all():
        raise _fail(name, registry, "check_dataset_time_features", f"time features of shape {time.shape} or not finite")


def check_dataset_audio_readable(name, registry, data_root, plugin):
    """The first, middle and last files read at the declared sample rate and clip length."""
    ds = _load(name, registry, data_root, plugin)
    paths = ds.audio_paths()
    for i in sorted({0, len(paths) // 2, len(paths) - 1}):
        clip, problem, _ = read_checked(paths[i], ds.sample_rate, ds.num_samples)
        if clip is None:
            raise _fail(name, registry, "check_dataset_audio_readable", f"{paths[i]}: {problem}")
        if clip.shape != (ds.num_samples,) or not np.isfinite(clip).all():
            raise _fail(name, registry, "check_dataset_audio_readable", f"{paths[i]} read as {clip.shape}, not finite")


DATASET_CHECKS: tuple[Callable, ...] = (check_dataset_is_reproducible, check_dataset_labels_teach,
                                        check_dataset_groups_nest, check_dataset_time_features,
                                        check_dataset_audio_readable)


def dataset_checks(name: str, registry: Registry | None = None, data_root: str | Path | None = None,
                   plugin: Any = None) -> list[Callable[[], None]]:
    """Each dataset check bound to one registered dataset (``data_root`` where its files are; ``plugin``: an
    instance of its options class)."""
    registry = registry or get_registry()
    registry.dataset(name)
    return bind(DATASET_CHECKS, name, registry, Path(data_root) if data_root else None, plugin)


def check_dataset(name: str, registry: Registry | None = None, data_root: str | Path | None = None,
                  plugin: Any = None) -> None:
    """Run every dataset check; raises ``ConformanceError`` on the first failure."""
    for check in dataset_checks(name, registry, data_root, plugin):
        check()
