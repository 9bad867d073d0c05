"""Predictions of a stored run on another dataset (the challenge's eval set), and submission files.

A run directory holds the trained weights, the training side's normalisation and city vocabulary
(``model.pt``) and the full config. ``predict_run`` rebuilds the model, extracts the target's features
with the run's front-end, maps every city the run never trained on to the unknown-city index (0), gives
real time features from the target's timestamps, and returns class probabilities for every clip.
``write_submission`` checks the result (every file once, known labels) before writing it atomically.

Formats:

* ``challenge``: the dataset's own submission table when its plugin declares one (APSIPA 2025: its
  eval metadata CSV with ``scene_label`` filled in, as the official baseline writes it); else
  ``filename,scene_label``.
* ``dcase``: DCASE Task 1 output, tab-separated: ``filename``, ``scene_label`` and one probability
  column per class, in the run's class order.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ascbench.config import RunConfig
from ascbench.data.dataset import ClipDataset, DatasetOptions
from ascbench.device import Compute, ModelNeeds
from ascbench.errors import ConfigError, DataError
from ascbench.features import load_checked_features, unusable_files_error
from ascbench.options import resolve_frontend
from ascbench.fileio import read_file_bytes, write_output
from ascbench.registry import Registry
from ascbench.results import read_record_file
from ascbench.specs import ModelContext
from ascbench.training import DataBundle, create_model, predict, require_finite

FORMATS = ("challenge", "dcase")


@dataclass
class Predictions:
    dataset: ClipDataset
    classes: list[str]
    probabilities: np.ndarray  # clips x classes, in dataset order
    unseen_cities: list[str]  # target cities the run never trained on (given the unknown-city index)
    run_id: str

    @property
    def labels(self) -> list[str]:
        return [self.classes[i] for i in self.probabilities.argmax(axis=1)]


def load_run_weights(run_dir: Path) -> dict:
    """``model.pt`` of a run, loaded without executing pickled code (numpy arrays allowed as data)."""
    path = run_dir / "model.pt"
    if not path.exists():
        raise DataError(f"{run_dir} has no model.pt: is it a finished run directory (runs/<run_id>)?")
    try:
        raw = read_file_bytes(path)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    core = getattr(np, "_core", None) or np.core  # numpy 2 renamed np.core
    numpy_globals = [core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.float32))]
    try:
        with torch.serialization.safe_globals(numpy_globals):
            return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DataError(f"cannot read {path}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None


def predict_run(run_dir: str | os.PathLike, dataset_name: str, registry: Registry, data_root: str | None = None,
                progress: bool = True, threads: int | None = None, device: str = "auto") -> Predictions:
    """Class probabilities of the run stored in ``run_dir`` for every clip of ``dataset_name``, computed
    on ``device`` (``auto``: CUDA when present; weights trained anywhere load on any device)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        raise DataError(f"{run_dir} is not a run directory (no config.json)")
    config = RunConfig.from_stored(read_record_file(run_dir / "config.json", "run config"))
    # An absent GPU fails here, before any audio is read. The run's precision (auto resolved for this device; fp32
    # where this device cannot compute it, e.g. an fp16 run predicted on a CPU).
    spec = registry.model(config.model)
    compute = Compute.from_names(device, config.precision, ModelNeeds.of(spec), strict=False,
                                 memory_format=config.memory_format)
    saved = load_run_weights(run_dir)
    classes, cities = list(saved["classes"]), list(saved["cities"])
    target = registry.dataset(dataset_name).load(DatasetOptions(data_root=Path(data_root) if data_root else None))
    if list(target.classes) != classes:
        raise ConfigError(f"run {run_dir.name} predicts {classes}; dataset {dataset_name!r} has classes {target.classes}")
    cfg = resolve_frontend(config, registry)  # the training run's front-end, with its frontend.FIELD options
    checked = load_checked_features(target, cfg, progress=progress, threads=threads)
    bad = [r for r in checked.reports if r.problem]
    if bad:  # a submission must answer for every file
        raise unusable_files_error(target, bad, "; a submission needs every file")
    lookup = {c: i + 1 for i, c in enumerate(cities)}
    city = np.array([lookup.get(c, 0) for c in target.meta["city"]], dtype=np.int64)
    mean, std = (np.asarray(saved[k], dtype=np.float32) for k in ("mean", "std"))
    data = DataBundle(target, checked.features, target.label_indices(), city, target.time_features(), cities, mean, std)
    context = ModelContext(num_classes=len(classes), num_cities=len(cities) + 1, time_dim=data.time.shape[1],
                           n_mels=checked.features.shape[1], n_frames=checked.features.shape[2])
    model = create_model(spec, context, config)
    model.load_state_dict(saved["model"])
    probs = predict(compute.prepare(model), data, np.arange(len(target.meta)))
    require_finite(probs, config.model, registry.owner("model", config.model), f"of {dataset_name}")
    unseen = sorted(set(target.meta["city"]) - set(cities))
    return Predictions(target, classes, probs, unseen, run_dir.name)


def submission_frame(pred: Predictions, fmt: str, registry: Registry) -> pd.DataFrame:
    """The submission table in ``fmt``, checked: every clip once, every label a known class."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown submission format {fmt!r}; valid: {', '.join(FORMATS)}")
    labels = pred.labels
    if fmt == "dcase":
        frame = pd.DataFrame({"filename": pred.dataset.meta["filename"], "scene_label": labels})
        for k, name in enumerate(pred.classes):
            frame[name] = np.round(pred.probabilities[:, k], 6)
    else:
        writer = registry.dataset(pred.dataset.name).submission
        frame = (writer(pred.dataset, labels) if writer else
                 pd.DataFrame({"filename": pred.dataset.meta["filename"], "scene_label": labels}))
    _check_submission(frame, pred)
    return frame


def _check_submission(frame: pd.DataFrame, pred: Predictions) -> None:
    if len(frame) != len(pred.dataset.meta) or frame["filename"].duplicated().any():
        raise DataError(f"submission has {len(frame)} rows for {len(pred.dataset.meta)} clips, or a file twice; "
                        "nothing was written")
    unknown = sorted(set(frame["scene_label"]) - set(pred.classes))
    if unknown:
        raise DataError(f"submission labels {unknown} are not classes of the run; nothing was written")


def write_submission(frame: pd.DataFrame, path: str | os.PathLike, fmt: str, force: bool = False) -> Path:
    """Write the checked submission through the guarded writer: never into a run or the results store, never
    over an existing file unless ``force``."""
    text = frame.to_csv(index=False, sep="\t" if fmt == "dcase" else ",")
    return write_output(path, text, force=force)
