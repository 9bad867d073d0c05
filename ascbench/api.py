"""The Python API for notebooks and scripts: the same registry, runner and results store as the CLI.

    import ascbench
    ascbench.list_models()                                   # every registered model name
    model = ascbench.create_model("mobileascnet", dataset="embedded")
    record = ascbench.run(ascbench.RunConfig(model="mobileascnet-tiny", strategy="scratch", epochs=5))
    record.metrics["macro_accuracy"]
    ascbench.load_results()                                  # the runs directory as a pandas DataFrame

Imports are deferred to the call, so ``import ascbench`` stays light for plugins that only need
``ascbench.hookimpl``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ascbench.defaults import DEFAULT_DATASET

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import torch.nn as nn

    from ascbench.config import RunConfig
    from ascbench.results import RunRecord


def list_models(include_families: bool = False) -> list[str]:
    """Registered model names; with ``include_families`` also every model of families such as ``timm:``."""
    from ascbench.registry import get_registry

    registry = get_registry()
    names = registry.names("model")
    if include_families:
        for prefix in registry.names("model family"):
            names += registry.family_names(prefix)
    return names


def list_plugins(kind: str) -> list[str]:
    """Registered names of one kind: ``model``, ``strategy``, ``dataset`` or ``protocol``."""
    from ascbench.registry import get_registry

    return get_registry().names(kind)


def create_model(name: str, dataset: str = DEFAULT_DATASET, data_root: str | None = None, **model_kwargs: Any) -> "nn.Module":
    """A freshly initialised model sized for ``dataset`` (its classes, cities, feature preset and clip
    length), as a run would build it; reads the dataset's metadata, not its audio."""
    from pathlib import Path

    from ascbench.config import RunConfig
    from ascbench.data.dataset import DatasetOptions
    from ascbench.registry import get_registry
    from ascbench.training import probe_model
    from ascbench.features import get_preset

    registry = get_registry()
    spec = registry.dataset(dataset)
    ds = spec.load(DatasetOptions(data_root=Path(data_root) if data_root else None, require_audio=False))
    cfg = get_preset(spec.feature_preset)
    config = RunConfig(model=name, dataset=dataset, model_kwargs=dict(model_kwargs))
    return probe_model(registry.model(name), config, ds, cfg.n_mels, cfg.n_frames(ds.clip_seconds))


def run(config: "RunConfig | dict[str, Any]", runs_dir: str | os.PathLike | None = None,
        progress: bool = False) -> "RunRecord":
    """Run one benchmark cell and store it (as ``ascbench run``); ``config`` may be a dict of fields."""
    from ascbench.config import RunConfig
    from ascbench.runner import execute

    if isinstance(config, dict):
        config = RunConfig.from_dict(config)
    return execute(config, runs_root=runs_dir, progress=progress)


def load_results(runs_dir: str | os.PathLike | None = None) -> "pd.DataFrame":
    """Every row of the results store (``runs/results.jsonl``) as a DataFrame, one row per run."""
    import pandas as pd

    from ascbench.results import load_rows, runs_dir as default_runs_dir

    return pd.DataFrame(load_rows(default_runs_dir(runs_dir)))
