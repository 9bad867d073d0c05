"""TAU Urban Acoustic Scenes 2020/2022 Mobile development sets (DCASE Task 1).

On-disk layout, as distributed::

    <root>/meta.csv                        tab-separated: filename, scene_label, identifier, source_label
    <root>/evaluation_setup/fold1_train.csv     tab-separated: filename, scene_label
    <root>/evaluation_setup/fold1_evaluate.csv  tab-separated: filename, scene_label
    <root>/audio/<scene>-<city>-<...>-<device>.wav

The city is the prefix of ``identifier`` (``barcelona-0`` -> ``barcelona``), the recording is the
identifier itself (the split group) and the device is ``source_label``. There are no timestamps, so
time features are zero and the period is "unknown". Usable as a target and as a pretraining source
(``--pretrain-on tau-urban --pretrain-data-root DIR``). Root: ``--data-root`` or ``$ASCBENCH_TAU_ROOT``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

import ascbench.plugin as ap

CLASSES = ["airport", "bus", "metro", "metro_station", "park", "public_square", "shopping_mall",
           "street_pedestrian", "street_traffic", "tram"]
META_COLUMNS = ("filename", "scene_label", "identifier", "source_label")
ROOT_ENV = "ASCBENCH_TAU_ROOT"


def _read_tsv(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    problem = ap.file_problem(path)
    if problem is not None and ap.anything_at(path):  # a dangling link, a directory, a FIFO: named, never waited on
        raise ap.DataError(f"tau-urban: {path} {problem}; fix or remove it")
    try:
        frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise ap.DataError(f"tau-urban: {path} does not exist; point --data-root (or --pretrain-data-root) at the "
                           "TAU Urban folder that holds meta.csv and audio/") from None
    except Exception as exc:
        raise ap.DataError(f"tau-urban: cannot parse {path}: {exc}") from exc
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ap.DataError(f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}; found "
                           f"{', '.join(repr(c) for c in frame.columns)} (is it tab-separated?)")
    return frame


def load(options: ap.DatasetOptions) -> ap.ClipDataset:
    root = Path(options.data_root) if options.data_root else (Path(os.environ[ROOT_ENV]) if os.environ.get(ROOT_ENV) else None)
    if root is None:
        raise ap.DataError(f"tau-urban needs its directory: pass --data-root DIR (or --pretrain-data-root) or set ${ROOT_ENV}")
    meta = _read_tsv(root / "meta.csv", META_COLUMNS)
    unknown = np.flatnonzero(~meta["scene_label"].isin(CLASSES).to_numpy())
    if len(unknown):
        raise ap.DataError(f"{root / 'meta.csv'}, row {unknown[0] + 2}, column 'scene_label': unknown scene "
                           f"{meta['scene_label'].iloc[unknown[0]]!r}")
    split = pd.Series("", index=meta.index)
    setup = root / "evaluation_setup"
    for name, role in (("fold1_train.csv", "train"), ("fold1_evaluate.csv", "test")):
        if ap.anything_at(setup / name):  # a dangling link is an error (in _read_tsv), not "no fold file"
            fold = set(_read_tsv(setup / name, ("filename",))["filename"])
            split[meta["filename"].isin(fold)] = role
    table = pd.DataFrame({
        "filename": meta["filename"], "scene_label": meta["scene_label"], "labeled": True,
        "city": meta["identifier"].str.split("-").str[0], "timestamp": pd.NaT,
        "group": meta["identifier"], "split": split, "device": meta["source_label"],
    })
    paths = [root / f for f in table["filename"]]
    present = [p for p in paths if p.is_file()]
    if options.require_audio and not present:
        raise ap.DataError(f"tau-urban: none of the {len(paths)} audio files listed in meta.csv are under {root} "
                           f"(expected e.g. {paths[0]})")
    info = sf.info(str(present[0])) if present else None
    return ap.ClipDataset(
        name="tau-urban", root=root, meta=table, classes=list(CLASSES),
        sample_rate=info.samplerate if info else 44_100,
        clip_seconds=round(info.frames / info.samplerate, 3) if info else 10.0,
        feature_preset="dcase2024", description="TAU Urban Acoustic Scenes Mobile development set",
        source=ap.MetadataSource(root / "meta.csv", {"city": "identifier", "group": "identifier"}),
    )


@ap.hookimpl
def ascbench_datasets() -> list[ap.DatasetSpec]:
    return [ap.DatasetSpec("tau-urban", load, "TAU Urban Acoustic Scenes 2020/2022 Mobile dev (DCASE Task 1; --data-root)",
                           feature_preset="dcase2024")]
