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

**Grouping levels.** ``groupings`` maps each level at which a split may be made, finest first, to the
metadata column holding its group id; every dataset has ``recording`` (the ``group`` column). A
dataset whose recordings come in sessions (one place, minutes apart, often one scene) declares a
coarser level, e.g. APSIPA 2025's ``session``; protocols keep whole groups of the chosen level
(``--group-by``, default the coarsest) on one side.

**Filenames** are checked here for every dataset: they must be relative paths that stay inside the
audio root, and must be unique once surrounding white space is removed.

**Meaning** is checked here too (:mod:`ascbench.data.checks`), for every plugin: one city, label or
recording id written two ways (``xi'an`` beside ``Xi'an``), a ``labeled`` cell that is not a clear
true/false, a timestamp in another format, with a UTC offset or outside the dataset's recording dates
(``time_range``; by default 1990 to today), and a recording with two scene labels are refused, naming
the metadata file (``source``), row and column.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ascbench.data.checks import (TIME_FORMAT, MetadataSource, Where, check_one_label_per_recording, check_spellings,
                                  check_time_range, parse_flags, parse_timestamps)
from ascbench.data.timefeatures import cyclic_time_features, period_of
from ascbench.errors import ConfigError, DataError

_DRIVE = re.compile(r"^[A-Za-z]:")  # a Windows drive: absolute too
# The trivial grouping level every dataset has: each clip its own group. No protocol keeps it by --group-by; a
# protocol that keeps no groups whole (ProtocolSpec.keeps_groups_whole) has its split recorded at this level.
CLIP_LEVEL = "clip"
STANDARD_COLUMNS = ("filename", "scene_label", "labeled", "city", "timestamp", "group", "split")


@dataclass(frozen=True)
class DatasetOptions:
    """What a dataset loader may be told by the user."""

    data_root: Path | None = None
    cache_dir: Path | None = None
    require_audio: bool = True  # False for commands that read only metadata (ascbench data info)
    plugin: Any = None  # the dataset's own options (DatasetSpec.options_class), set as --set dataset.FIELD=VALUE


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
    # Split levels, finest first: level name -> metadata column of its group ids.
    groupings: dict[str, str] = field(default_factory=lambda: {"recording": "group"})
    # A dataset without its own train/test split may fix the seed of the official hold-out, so that
    # "official" means one split for every run; None draws it with the run's seed.
    split_seed: int | None = None
    # Where the table came from (metadata file, its column names), so that errors name the file and row.
    source: MetadataSource = field(default_factory=MetadataSource)
    # The first and last recording times the dataset can have; None: 1990 to today.
    time_range: tuple[str, str] | None = None
    time_format: str = TIME_FORMAT  # of timestamps given as text

    def __post_init__(self) -> None:
        missing = [c for c in STANDARD_COLUMNS if c not in self.meta.columns]
        if missing:
            raise DataError(f"dataset {self.name!r}: metadata lacks column(s) {', '.join(missing)}")
        meta = self.meta.reset_index(drop=True).copy()
        meta["filename"] = _checked_filenames(self.source.locate(self.name), meta["filename"])
        absent = [col for col in self.groupings.values() if col not in meta.columns]
        if absent or "recording" not in self.groupings:
            raise DataError(f"dataset {self.name!r}: groupings {self.groupings} need a 'recording' level and "
                            f"columns that exist (missing: {', '.join(absent) or '-'})")
        where = self.source.locate(self.name)
        meta["timestamp"] = parse_timestamps(meta["timestamp"], where, "timestamp", self.time_format)
        check_time_range(meta["timestamp"], where, "timestamp", self.time_range, f"dataset {self.name!r}")
        meta["labeled"] = parse_flags(meta["labeled"], where, "labeled")
        meta["period"] = period_of(meta["timestamp"].dt.hour.to_numpy())
        _check_names(meta, self.classes, self.groupings, where)
        known = meta["scene_label"] != ""
        unknown = sorted(set(meta.loc[known, "scene_label"]) - set(self.classes))
        if unknown:
            raise DataError(f"dataset {self.name!r}: unknown scene label(s) {unknown}; classes are {self.classes}")
        if (meta["labeled"] & ~known).any():
            row = int(np.flatnonzero(meta["labeled"] & ~known)[0])
            raise DataError(f"{where.at('labeled', [row])}: marked labeled but has no scene_label")
        check_one_label_per_recording(meta["scene_label"], meta[self.groupings["recording"]], where,
                                      self.groupings["recording"])
        meta["split"] = _checked_split(meta["split"], where)
        self.meta = meta

    @property
    def num_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))

    @property
    def default_grouping(self) -> str:
        """The coarsest declared level: what protocols keep whole unless told otherwise."""
        return list(self.groupings)[-1]

    def resolve_grouping(self, level: str | None) -> str:
        """``level`` checked against the declared levels; None gives the default."""
        if level is None or level == "":
            return self.default_grouping
        if level not in self.groupings:
            raise ConfigError(f"--group-by {level!r}: dataset {self.name!r} declares the levels "
                              f"{', '.join(self.groupings)} (finest first)")
        return level

    def groups(self, level: str | None = None) -> np.ndarray:
        """Group id of every clip at ``level`` (default: the coarsest declared level; ``clip``: every clip its own)."""
        if level == CLIP_LEVEL:
            return self.meta["filename"].astype(str).to_numpy()
        return self.meta[self.groupings[self.resolve_grouping(level)]].astype(str).to_numpy()

    def label_indices(self) -> np.ndarray:
        """Class index per clip, -1 where the scene is unknown."""
        lookup = {c: i for i, c in enumerate(self.classes)}
        return self.meta["scene_label"].map(lookup).fillna(-1).to_numpy(dtype=np.int64)

    def time_features(self) -> np.ndarray:
        return cyclic_time_features(self.meta["timestamp"])

    def audio_paths(self) -> list[Path]:
        return [self.root / f for f in self.meta["filename"]]

    def fingerprint(self) -> str:
        """A short hash of the metadata, so results can name exactly which clip table they used."""
        cols = list(STANDARD_COLUMNS)
        payload = self.meta[cols].astype(str).to_csv(index=False).encode()
        return hashlib.sha256(payload).hexdigest()[:16]


def _check_names(meta: pd.DataFrame, classes: list[str], groupings: dict[str, str], where: Where) -> None:
    """Cities, labels and group ids: one spelling per name, then surrounding white space dropped (a name
    padded the same way in every row is still one name). Empty means unknown. Cities and labels are
    compared loosely (accents and punctuation too), recording ids strictly (see ``name_key``)."""
    names = [("city", (), True), ("scene_label", classes, True), *((col, (), False) for col in groupings.values())]
    for column, known, loose in names:
        values = meta[column].fillna("").astype(str)
        check_spellings(values, where, column, known, loose)
        meta[column] = values.str.strip()


SPLIT_VALUES = ("", "train", "test")  # a dataset's own split: train, test, or neither side (empty)


def _checked_split(split: pd.Series, where: Where) -> pd.Series:
    """The ``split`` column with surrounding white space dropped; any other value than train, test or empty is
    refused with its row (a ``TEST`` or ``val`` would otherwise silently put its clips on no side)."""
    values = split.fillna("").astype(str).str.strip()
    bad = np.flatnonzero(~values.isin(SPLIT_VALUES))
    if len(bad):
        raise DataError(f"{where.at('split', [int(bad[0])])}: split {values.iloc[bad[0]]!r} is not one of 'train', 'test' "
                        f"or empty ({len(bad)} row(s)); write the dataset's own split in those words")
    return values


def leaves_root(name: str) -> bool:
    """Whether a metadata filename points outside the audio root: absolute (POSIX, UNC or a Windows
    drive) or climbing out with '..' (with either slash)."""
    return name.startswith(("/", "\\")) or bool(_DRIVE.match(name)) or ".." in name.replace("\\", "/").split("/")


def _checked_filenames(where: Where, names: pd.Series) -> pd.Series:
    """Filenames stripped of surrounding white space, refused when they leave the audio root or repeat.

    The duplicate check runs after stripping: 'a.wav' and 'a.wav ' name one file, and would put the
    same audio on both sides of a split. Rows are named as the metadata file numbers them (``where``).
    """
    names = names.astype(str).str.strip()
    for row, name in enumerate(names):
        if not name or leaves_root(name):
            raise DataError(f"{where.at('filename', [row])}: filename {name!r} is not a relative path inside "
                            "the data root (absolute paths and '..' are refused); fix the metadata file")
    dup = names.duplicated(keep="first").to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero((names == names.iloc[row]).to_numpy())[0])
        raise DataError(f"{where.at('filename', [first, row])} name the same file {names.iloc[row]!r} "
                        "(after removing surrounding white space); remove one of them")
    return names
