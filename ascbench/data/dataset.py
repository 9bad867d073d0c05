"""The clip table every dataset plugin produces, and the checks it must pass.

A dataset is an audio root plus one metadata row per clip in these standard columns:

============  ==============================================================================
filename      audio path relative to the root
scene_label   the scene class, or empty when unknown
labeled       whether training may see the label (False for the unlabeled pool)
city          where the clip was recorded
timestamp     when it was recorded (datetime)
group         recording id: clips of one recording must never sit on both sides of a split
split         the dataset's own split, "train" or "test" (empty when it has none)
============  ==============================================================================

``period`` (night/morning/afternoon/evening) is derived from ``timestamp``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ascbench.data.timefeatures import cyclic_time_features, period_of
from ascbench.errors import DataError

STANDARD_COLUMNS = ("filename", "scene_label", "labeled", "city", "timestamp", "group", "split")


@dataclass(frozen=True)
class DatasetOptions:
    """What a dataset loader may be told by the user."""

    data_root: Path | None = None
    cache_dir: Path | None = None
    require_audio: bool = True  # False for commands that read only metadata (ascbench data info)


@dataclass
class ClipDataset:
    name: str
    root: Path
    meta: pd.DataFrame
    classes: list[str]
    sample_rate: int
    clip_seconds: float
    feature_preset: str
    description: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [c for c in STANDARD_COLUMNS if c not in self.meta.columns]
        if missing:
            raise DataError(f"dataset {self.name!r}: metadata lacks column(s) {', '.join(missing)}")
        meta = self.meta.reset_index(drop=True).copy()
        meta["timestamp"] = pd.to_datetime(meta["timestamp"])
        meta["labeled"] = meta["labeled"].astype(bool)
        meta["period"] = period_of(meta["timestamp"].dt.hour.to_numpy())
        known = meta["scene_label"].notna() & (meta["scene_label"] != "")
        unknown = sorted(set(meta.loc[known, "scene_label"]) - set(self.classes))
        if unknown:
            raise DataError(f"dataset {self.name!r}: unknown scene label(s) {unknown}; classes are {self.classes}")
        if (meta["labeled"] & ~known).any():
            row = int(np.flatnonzero(meta["labeled"] & ~known)[0])
            raise DataError(f"dataset {self.name!r}: row {row} is marked labeled but has no scene_label")
        self.meta = meta

    @property
    def num_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))

    def label_indices(self) -> np.ndarray:
        """Class index per clip, -1 where the scene is unknown."""
        lookup = {c: i for i, c in enumerate(self.classes)}
        return np.array([lookup.get(s, -1) for s in self.meta["scene_label"].fillna("")], dtype=np.int64)

    def time_features(self) -> np.ndarray:
        return cyclic_time_features(self.meta["timestamp"])

    def audio_paths(self) -> list[Path]:
        return [self.root / f for f in self.meta["filename"]]

    def fingerprint(self) -> str:
        """A short hash of the metadata, so results can name exactly which clip table they used."""
        cols = list(STANDARD_COLUMNS)
        payload = self.meta[cols].astype(str).to_csv(index=False).encode()
        return hashlib.sha256(payload).hexdigest()[:16]
