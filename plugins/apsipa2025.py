"""The APSIPA ASC 2025 Grand Challenge data ("city and time-aware semi-supervised ASC", CAS 2023 audio).

Metadata: CSVs with columns ``filename,location,record_time,scene_label`` (``scene_label`` empty for
unlabeled clips, ``record_time`` as ``YYYY-MM-DD HH:MM:SS``; the eval CSV starts with a UTF-8 byte-order
mark). The official metadata ships with ascbench; a CSV of the same name in the data root overrides it (one
that is there but unusable, a dangling link or a directory say, is an error, never replaced by the
shipped file). Recording dates must lie within those of the official metadata (``TIME_RANGE``); a city or
label written two ways (``xi'an`` beside ``Xi'an``) is refused (see :mod:`ascbench.data.checks`).
Audio: ``<root>/<filename>.wav``, 44.1 kHz, 10 s, under ``--data-root`` or ``$ASCBENCH_APSIPA2025_ROOT``.

Each ``(location, record_time)`` pair is one long recording cut into clips with a single label (the
``recording`` level). Recordings come in **sessions**: one city, one day, minutes apart, often one
scene. A split that keeps only recordings whole leaks through them: "the label of the training
recording nearest in time in the same city" scores about 88 % macro accuracy on a recording-grouped
hold-out. The ``session`` level (city + calendar date; 31 sessions in dev) is therefore the default
split unit. Why the date: recordings of one city on different days are at least 11 h apart in dev,
so the date boundary is a natural gap; chaining recordings less than G apart leaves the nearest-in-time
lookup at 44-50 % for any G from 20 min to 2 h, and still over 30 % at 4 h (see README, "Metadata ceiling").

The eval set has no labels; ``official`` therefore trains on dev and tests on a held-out quarter of each
class's labeled dev sessions, drawn once with a fixed seed (``split_seed``), stratified by class.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

import ascbench.plugin as ap


CLASSES = ["Bus", "Airport", "Metro", "Restaurant", "Shopping mall", "Public square", "Urban park",
           "Traffic street", "Construction site", "Bar"]
COLUMNS = ("filename", "location", "record_time", "scene_label")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
SAMPLE_RATE, CLIP_SECONDS = 44_100, 10.0
META_FILES = {"dev": "APSIPA2025_GC_ASC_dev_metadata.csv", "eval": "APSIPA2025_GC_ASC_eval_metadata.csv"}
SHIPPED = Path(__file__).parent / "data" / "apsipa2025"
ROOT_ENV = "ASCBENCH_APSIPA2025_ROOT"
SPLIT_SEED = 2025
# The recording dates of the official dev and eval metadata (2023-04-21 12:12 to 2023-08-28 10:07), whole days:
# a clip dated outside them is a typing or clock error, and would become the test side of a date hold-out.
TIME_RANGE = ("2023-04-21 00:00:00", "2023-08-28 23:59:59")
SOURCE_COLUMNS = {"city": "location", "timestamp": "record_time", "group": "location + record_time",
                  "session": "location + record_time"}


def read_metadata(path: Path) -> pd.DataFrame:
    """Read and check one metadata CSV; every problem is reported with the file, row and column."""
    try:
        meta = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise ap.DataError(f"metadata file {path} does not exist") from None
    except Exception as exc:
        raise ap.DataError(f"cannot parse metadata file {path}: {exc}") from exc
    meta.columns = [c.strip() for c in meta.columns]
    missing = [c for c in COLUMNS if c not in meta.columns]
    if missing:
        raise ap.DataError(f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}; "
                           f"found {', '.join(repr(c) for c in meta.columns)}; expected {', '.join(COLUMNS)}")
    if meta.empty:
        raise ap.DataError(f"{path} has a header but no rows; expected one row per clip ({', '.join(COLUMNS)})")
    row = lambda i: i + 2  # noqa: E731 - CSV line number: the header is line 1
    where = ap.MetadataSource(path).locate("apsipa2025")
    # Stripped before any check: 'a' and 'a ' name one WAV and must count as duplicates.
    meta["filename"] = meta["filename"].str.strip()
    outside = np.flatnonzero(meta["filename"].map(ap.leaves_root).to_numpy())
    if len(outside):
        raise ap.DataError(f"{path}, row {row(outside[0])}, column 'filename': {meta['filename'].iloc[outside[0]]!r} "
                           "would read audio outside the data root (absolute paths and '..' are refused)")
    for col in ("filename", "location", "record_time"):
        empty = np.flatnonzero(meta[col].str.strip() == "")
        if len(empty):
            raise ap.DataError(f"{path}, row {row(empty[0])}, column {col!r}: empty value")
    stamps = ap.parse_timestamps(meta["record_time"], where, "record_time", TIME_FORMAT)
    # Before anything strips or matches them: 'xi'an' beside 'Xi'an' is one city written two ways.
    ap.check_spellings(meta["location"], where, "location")
    ap.check_spellings(meta["scene_label"], where, "scene_label", CLASSES)
    labels = meta["scene_label"].str.strip()
    unknown = np.flatnonzero((labels != "") & ~labels.isin(CLASSES))
    if len(unknown):
        raise ap.DataError(f"{path}, row {row(unknown[0])}, column 'scene_label': unknown scene {labels.iloc[unknown[0]]!r}; "
                           f"classes are {', '.join(CLASSES)}")
    dup = np.flatnonzero(meta["filename"].duplicated().to_numpy())
    if len(dup):
        raise ap.DataError(f"{path}, row {row(dup[0])}, column 'filename': duplicate filename {meta['filename'].iloc[dup[0]]!r}")
    return pd.DataFrame({
        "filename": meta["filename"] + ".wav",
        "scene_label": labels,
        "labeled": labels != "",
        "city": meta["location"].str.strip(),
        "timestamp": stamps,
        # From the parsed time: '2023-6-18 8:44:34' and '2023-06-18 08:44:34' are one recording.
        "group": meta["location"].str.strip() + " " + stamps.dt.strftime(TIME_FORMAT),
        "session": meta["location"].str.strip() + " " + stamps.dt.strftime("%Y-%m-%d"),
    })


def metadata_path(part: str, root: Path | None) -> Path:
    """The data root's metadata file if there is anything of that name there, else the shipped one. Anything
    there must be usable: a dangling link or a directory is an error naming it, never the shipped file."""
    if root is not None and ap.anything_at(root / META_FILES[part]):
        return ap.readable_file(root / META_FILES[part], "metadata file",
                                f"; fix it, or remove it from {root} to use the official metadata shipped with ascbench")
    return SHIPPED / META_FILES[part]


def audio_root(options: ap.DatasetOptions) -> Path | None:
    if options.data_root:
        return Path(options.data_root)
    return Path(os.environ[ROOT_ENV]) if os.environ.get(ROOT_ENV) else None


def load(part: str, options: ap.DatasetOptions) -> ap.ClipDataset:
    root = audio_root(options)
    source = metadata_path(part, root)
    meta = read_metadata(source)
    # dev has no official test side: the official protocol draws one with SPLIT_SEED at the chosen level.
    meta["split"] = "" if part == "dev" else "test"
    if options.require_audio:
        if root is None:
            raise ap.DataError(f"apsipa2025 needs its audio: pass --data-root DIR or set ${ROOT_ENV} "
                               f"(a directory of {len(meta)} files named <filename>.wav)")
        if not root.is_dir():
            raise ap.DataError(f"apsipa2025 audio root {root} does not exist; expected {len(meta)} files named <filename>.wav there")
        present = np.array([(root / f).is_file() for f in meta["filename"]])
        if not present.any():
            found = sum(1 for _ in root.glob("*.wav"))
            raise ap.DataError(f"apsipa2025: none of the {len(meta)} audio files of {META_FILES[part]} are in {root} "
                               f"({found} .wav files found there; expected names like {meta['filename'].iloc[0]})")
        # Missing files stay in the table: the audio checks report them as unusable, so a run refuses
        # them by name, or leaves them out with --skip-bad and lists them in its record.
    return ap.ClipDataset(name="apsipa2025" if part == "dev" else "apsipa2025-eval", root=root or SHIPPED, meta=meta,
                          classes=list(CLASSES), sample_rate=SAMPLE_RATE, clip_seconds=CLIP_SECONDS,
                          feature_preset="apsipa2025", description=f"APSIPA ASC 2025 {part}",
                          groupings={"recording": "group", "session": "session"}, split_seed=SPLIT_SEED,
                          source=ap.MetadataSource(source, SOURCE_COLUMNS), time_range=TIME_RANGE, time_format=TIME_FORMAT)


def submission(dataset: ap.ClipDataset, labels: list[str]) -> pd.DataFrame:
    """The official baseline's eval output: the eval metadata with ``scene_label`` filled in."""
    meta = dataset.meta
    return pd.DataFrame({"filename": meta["filename"].str.removesuffix(".wav"), "location": meta["city"],
                         "record_time": meta["timestamp"].dt.strftime(TIME_FORMAT), "scene_label": labels})


# The pretraining sources' scenes that are APSIPA scenes (--pretrain-classes target): TAU Urban 2020 gives 7
# of the 10, CochlScene 5, together 8 (Construction site and Bar are in neither); the rest are left out.
CLASS_MAPS = {
    "tau-urban": {"airport": "Airport", "bus": "Bus", "metro": "Metro", "park": "Urban park",
                  "public_square": "Public square", "shopping_mall": "Shopping mall", "street_traffic": "Traffic street"},
    "cochlscene": {"Bus": "Bus", "Park": "Urban park", "Restaurant": "Restaurant", "Street": "Traffic street",
                   "Subway": "Metro"},
}


@ap.hookimpl
def ascbench_datasets() -> list[ap.DatasetSpec]:
    return [
        ap.DatasetSpec("apsipa2025", lambda options: load("dev", options),
                       "APSIPA ASC 2025 dev: 8,700 clips, 20 % labeled, 8 cities (audio via --data-root)",
                       feature_preset="apsipa2025", class_maps=CLASS_MAPS),
        ap.DatasetSpec("apsipa2025-eval", lambda options: load("eval", options),
                       "APSIPA ASC 2025 eval: 1,100 unlabeled clips, 12 cities (6 unseen in dev)", feature_preset="apsipa2025",
                       submission=submission),
    ]
