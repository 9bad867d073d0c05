"""CochlScene in its distributed layout, and pretraining on several sources mapped onto the target's classes."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from ascbench.config import RunConfig
from ascbench.data.dataset import DatasetOptions
from ascbench.errors import ConfigError, DataError
from ascbench.pipeline import resolve
from ascbench.pretraining import pretrained_state, pretraining_source
from ascbench_plugins import cochlscene, tau_urban

RATE = 16_000


def _tone(freq: float, rng) -> np.ndarray:
    return (0.1 * np.sin(2 * np.pi * freq * np.arange(RATE) / RATE) + 0.01 * rng.standard_normal(RATE)).astype(np.float32)


@pytest.fixture(scope="module")
def cochl_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cochl")
    rng = np.random.default_rng(1)
    for part in ("Train", "Val", "Test"):
        for c, scene in enumerate(["Bus", "Cafe", "Park", "Subway"]):
            (root / part / scene).mkdir(parents=True)
            for rec in range(2):
                for seg in range(2):
                    sf.write(str(root / part / scene / f"{scene}_user{rec:04d}_{part[:2]}{c}{rec}_{seg:03d}.wav"), _tone(300 + 200 * c, rng), RATE)
    return root


@pytest.fixture(scope="module")
def tau_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("tau")
    (root / "audio").mkdir()
    rng = np.random.default_rng(2)
    lines = ["filename\tscene_label\tidentifier\tsource_label"]
    for c, scene in enumerate(["airport", "bus", "tram"]):
        for rec in range(2):
            # As in TAU, a location id is one place, so one scene: airport-lisbon-0, bus-lisbon-2, ...
            name = f"audio/{scene}-lisbon-{2 * c + rec}-0-a.wav"
            sf.write(str(root / name), _tone(500 + 100 * c, rng), RATE)
            lines.append(f"{name}\t{scene}\tlisbon-{2 * c + rec}\ta")
    (root / "meta.csv").write_text("\n".join(lines) + "\n")
    return root


def test_layout_is_read(cochl_root):
    ds = cochlscene.load(DatasetOptions(data_root=cochl_root))
    assert len(ds.meta) == 3 * 4 * 2 * 2
    assert ds.meta["filename"].iloc[0].startswith("Train/Bus/Bus_user0000_Tr")
    assert ds.meta["group"].nunique() == 3 * 4 * 2  # segments of one recording share a group
    assert set(ds.meta["split"]) == {"train", "test"} and ds.clip_seconds == 1.0


def test_a_folder_that_is_no_scene_is_named(tmp_path):
    (tmp_path / "Train" / "Beach").mkdir(parents=True)
    with pytest.raises(DataError, match="Beach"):
        cochlscene.load(DatasetOptions(data_root=tmp_path))


def test_two_sources_map_onto_the_targets_classes(registry, cochl_root, tau_root):
    config = RunConfig(strategy="finetune", dataset="apsipa2025", pretrain_on="tau-urban,cochlscene", pretrain_classes="target",
                       pretrain_data_root=f"tau-urban={tau_root},cochlscene={cochl_root}")
    source = pretraining_source(resolve(config, registry), config.pretrain_on)
    meta = source.dataset.meta
    # TAU: airport and bus map (tram does not); CochlScene: Bus, Park, Subway map (Cafe does not).
    assert source.counts == {"tau-urban": 4, "cochlscene": 3 * 3 * 2 * 2}
    assert set(meta["scene_label"]) == {"Airport", "Bus", "Urban park", "Metro"}
    assert source.dataset.classes == registry.dataset("apsipa2025").load(DatasetOptions(require_audio=False)).classes
    # The stacked features index both memory-mapped sources as one array, rows in the merged table's order.
    feats = source.features(resolve(replace(config, feature_preset="embedded"), registry), progress=False)
    assert feats.shape[0] == len(meta) and feats[np.array([0, len(meta) - 1])].shape[0] == 2


def test_pretraining_on_two_sources_keeps_the_targets_classifier(registry, cochl_root, tau_root):
    config = RunConfig(strategy="finetune", model="mobileascnet", dataset="apsipa2025", pretrain_on="tau-urban,cochlscene",
                       pretrain_classes="target", pretrain_epochs=1, feature_preset="embedded",
                       pretrain_data_root=f"tau-urban={tau_root},cochlscene={cochl_root}",
                       model_kwargs={"stem_channels": 8, "channels": [8, 16, 16], "gru_hidden": 16})
    notes: dict = {}
    checkpoint = pretrained_state(resolve(config, registry), progress=False, notes=notes)
    assert checkpoint.classes == registry.dataset("apsipa2025").load(DatasetOptions(require_audio=False)).classes
    assert notes["pretraining"]["clips_per_source"] == {"tau-urban": 4, "cochlscene": 36}


def test_several_sources_need_target_classes():
    with pytest.raises(ConfigError, match="--pretrain-classes target"):  # refused with the config, before any data
        RunConfig(strategy="finetune", pretrain_on="tau-urban,cochlscene")


def test_one_root_for_two_sources_is_refused(registry, tmp_path):
    config = RunConfig(strategy="finetune", dataset="apsipa2025", pretrain_on="tau-urban,cochlscene", pretrain_classes="target",
                       pretrain_data_root=str(tmp_path))
    with pytest.raises(ConfigError, match="tau-urban=/data/tau"):
        pretraining_source(resolve(config, registry), config.pretrain_on)
