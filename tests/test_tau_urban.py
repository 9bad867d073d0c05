"""The TAU Urban Acoustic Scenes loader on a small tree generated in the distributed layout."""

import numpy as np
import pytest
import soundfile as sf

from ascbench.config import RunConfig
from ascbench.data.dataset import DatasetOptions
from ascbench.errors import DataError
from ascbench.protocols import ProtocolOptions
from ascbench.runner import execute
from ascbench_plugins import tau_urban
from ascbench_plugins.protocols import session_holdout as official

CITIES = ["barcelona", "helsinki", "lisbon"]
SMALL = {"stem_channels": 8, "channels": [8, 16, 16], "gru_hidden": 16}


@pytest.fixture(scope="module")
def tau_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("tau")
    (root / "audio").mkdir()
    (root / "evaluation_setup").mkdir()
    rng = np.random.default_rng(0)
    meta, train, evaluate = ["filename\tscene_label\tidentifier\tsource_label"], ["filename\tscene_label"], ["filename\tscene_label"]
    for c, scene in enumerate(tau_urban.CLASSES):
        for city in CITIES:
            for rec in range(2):
                identifier = f"{city}-{rec + 10 * c}"
                for seg, device in enumerate(["a", "b"]):
                    name = f"audio/{scene}-{identifier}-{seg}-{device}.wav"
                    tone = np.sin(2 * np.pi * (300 + 150 * c) * np.arange(44_100) / 44_100)
                    sf.write(str(root / name), (0.1 * tone + 0.01 * rng.standard_normal(44_100)).astype(np.float32), 44_100)
                    meta.append(f"{name}\t{scene}\t{identifier}\t{device}")
                    if city == "lisbon" and device == "b":
                        continue  # listed in meta.csv but in neither fold, as some TAU devices are
                    (evaluate if rec == 1 else train).append(f"{name}\t{scene}")
    (root / "meta.csv").write_text("\n".join(meta) + "\n")
    (root / "evaluation_setup" / "fold1_train.csv").write_text("\n".join(train) + "\n")
    (root / "evaluation_setup" / "fold1_evaluate.csv").write_text("\n".join(evaluate) + "\n")
    return root


def test_layout_is_read(tau_root):
    ds = tau_urban.load(DatasetOptions(data_root=tau_root))
    assert len(ds.meta) == 10 * 3 * 2 * 2
    assert set(ds.meta["city"]) == set(CITIES)
    assert ds.meta["group"].iloc[0] == "barcelona-0" and set(ds.meta["device"]) == {"a", "b"}
    assert ds.sample_rate == 44_100 and ds.clip_seconds == 1.0
    assert set(ds.meta["period"]) == {"unknown"} and not ds.time_features().any()
    split = official(ds, ProtocolOptions())
    assert set(ds.meta["split"].iloc[split.train]) == {"train"} and set(ds.meta["split"].iloc[split.test]) == {"test"}
    unused = (ds.meta["split"] == "").sum()
    assert unused == 10 * 2 * 1 and len(split.train) + len(split.test) == len(ds.meta) - unused


def test_comma_separated_meta_is_a_clear_error(tmp_path):
    (tmp_path / "meta.csv").write_text("filename,scene_label,identifier,source_label\na.wav,bus,x-1,a\n")
    with pytest.raises(DataError, match="tab-separated"):
        tau_urban.load(DatasetOptions(data_root=tmp_path))


def test_as_a_target(tau_root, runs):
    record = execute(RunConfig(model="mobileascnet-cnn", strategy="scratch", dataset="tau-urban", data_root=str(tau_root),
                               epochs=1, model_kwargs={"stem_channels": 8, "channels": [8, 16, 16]}), progress=False)
    assert record.metrics["num_clips"] == 10 * 3 * 2 - 10  # evaluate fold without the unlisted lisbon device
    assert record.metrics["complexity"]["clip_seconds"] == 1.0


def test_as_a_pretraining_source_with_another_label_set(tau_root, runs):
    record = execute(RunConfig(strategy="finetune", dataset="embedded-tiny", pretrain_on="tau-urban",
                               pretrain_data_root=str(tau_root), epochs=1, pretrain_epochs=1, model_kwargs=SMALL),
                     progress=False)
    notes = record.metrics["strategy_notes"]
    assert notes["pretraining"]["source"] == "tau-urban"
    assert {"head.1.weight", "head.1.bias"} <= set(notes["reinitialised_after_pretraining"])
