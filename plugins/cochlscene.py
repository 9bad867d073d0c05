"""CochlScene (Jeong and Park, 2022): 76k ten-second clips of 13 scenes from 831 crowd-sourced recorders.

On-disk layout, as distributed::

    <root>/Train/<Scene>/<Scene>_<recorder and recording id>_<segment>.wav
    <root>/Val/<Scene>/...
    <root>/Test/<Scene>/...

The scene is the folder name; a recording (the split group) is a file's name without its trailing
segment number, so segments of one recording stay on one side. The manual Train/Val/Test split is kept
as the ``split`` column (Val counts as training). There are no cities or time stamps: every clip has
the city "cochlscene" and the period "unknown". Mostly a pretraining source (``--pretrain-on
cochlscene``, or with TAU Urban: ``--pretrain-on tau-urban,cochlscene``); a target dataset declares how
its classes map onto CochlScene's (``DatasetSpec.class_maps``). Root: ``--data-root`` or
``$ASCBENCH_COCHLSCENE_ROOT``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import soundfile as sf

import ascbench.plugin as ap

CLASSES = ["Bus", "Cafe", "Car", "CrowdedIndoor", "Elevator", "Kitchen", "Park", "ResidentialArea", "Restaurant",
           "Restroom", "Street", "Subway", "SubwayStation"]
PARTS = {"Train": "train", "Val": "train", "Test": "test"}
ROOT_ENV = "ASCBENCH_COCHLSCENE_ROOT"


def load(options: ap.DatasetOptions) -> ap.ClipDataset:
    root = Path(options.data_root) if options.data_root else (Path(os.environ[ROOT_ENV]) if os.environ.get(ROOT_ENV) else None)
    if root is None:
        raise ap.DataError(f"cochlscene needs its directory: pass --data-root DIR (or --pretrain-data-root "
                           f"cochlscene=DIR) or set ${ROOT_ENV}")
    rows = []
    for part, role in PARTS.items():
        if not (root / part).is_dir():
            continue
        for scene_dir in sorted(p for p in (root / part).iterdir() if p.is_dir()):
            if scene_dir.name not in CLASSES:
                raise ap.DataError(f"cochlscene: {scene_dir} is not one of the 13 scenes ({', '.join(CLASSES)}); "
                                   "is --data-root the folder holding Train/, Val/ and Test/?")
            for wav in sorted(scene_dir.glob("*.wav")):
                name = f"{part}/{scene_dir.name}/{wav.name}"
                rows.append({"filename": name, "scene_label": scene_dir.name, "labeled": True, "city": "cochlscene",
                             "timestamp": pd.NaT, "group": re.sub(r"_\d+$", "", wav.stem), "split": role})
    if not rows:
        raise ap.DataError(f"cochlscene: no Train/<Scene>/*.wav, Val/ or Test/ files under {root}")
    # The rate and length come from the first regular file: a FIFO named *.wav would block sf.info (the audio
    # checks name it later).
    first = next((r["filename"] for r in rows if ap.file_problem(root / r["filename"]) is None), None)
    if first is None:
        raise ap.DataError(f"cochlscene: none of the {len(rows)} .wav files under {root} is a readable regular file")
    info = sf.info(str(root / first))
    return ap.ClipDataset(name="cochlscene", root=root, meta=pd.DataFrame(rows), classes=list(CLASSES),
                          sample_rate=info.samplerate, clip_seconds=round(info.frames / info.samplerate, 3),
                          feature_preset="apsipa2025", description="CochlScene (13 scenes, crowd-sourced)")


@ap.hookimpl
def ascbench_datasets() -> list[ap.DatasetSpec]:
    return [ap.DatasetSpec("cochlscene", load, "CochlScene: 13 scenes, 76k crowd-sourced 10 s clips (--data-root)",
                           feature_preset="apsipa2025")]
