"""The APSIPA ASC 2025 loader on the real metadata, with small WAVs synthesised for a subset of rows."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from ascbench.cli import main
from ascbench.data.dataset import DatasetOptions
from ascbench.errors import DataError
from ascbench.protocols import ProtocolOptions
from ascbench_plugins import apsipa2025
from ascbench_plugins.protocols import UnseenTimeOptions, unseen_city, unseen_time
from ascbench_plugins.protocols import session_holdout as official

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "apsipa2025"
META_DIR = SHARED if SHARED.is_dir() else apsipa2025.SHIPPED


def _metadata_only(part="dev"):
    return apsipa2025.load(part, DatasetOptions(data_root=META_DIR, require_audio=False))


def test_counts_match_the_challenge():
    dev, ev = _metadata_only("dev"), _metadata_only("eval")
    assert len(dev.meta) == 8700 and int(dev.meta["labeled"].sum()) == 1740 and dev.meta["city"].nunique() == 8
    assert dev.meta["timestamp"].min() >= pd.Timestamp("2023-04-01") and dev.meta["timestamp"].max() < pd.Timestamp("2023-09-01")
    assert len(ev.meta) == 1100 and ev.meta["city"].nunique() == 12 and not ev.meta["labeled"].any()
    assert len(set(ev.meta["city"]) - set(dev.meta["city"])) == 6
    assert "filename" in ev.meta.columns and not ev.meta["filename"].iloc[0].startswith("\ufeff")  # BOM handled


def test_time_features_vary_on_the_real_metadata():
    feats = _metadata_only().time_features()
    assert feats.shape == (8700, 8)
    assert (feats.std(axis=0)[:6] > 0.05).all()


@pytest.mark.parametrize("protocol,options", [
    (official, ProtocolOptions()), (unseen_city, ProtocolOptions(seed=0)), (unseen_city, ProtocolOptions(seed=3)),
    (unseen_time, ProtocolOptions(plugin=UnseenTimeOptions(time_holdout="date"))),
])
def test_no_recording_on_both_sides(protocol, options):
    ds = _metadata_only()
    split = protocol(ds, options)
    groups = ds.meta["group"].to_numpy()
    assert not set(groups[split.train]) & set(groups[split.test])
    if protocol is unseen_city:
        assert not set(ds.meta["city"].iloc[split.train]) & set(ds.meta["city"].iloc[split.test])


def test_data_split_command_prints_the_ceiling_and_writes_roles(capsys, tmp_path):
    out_csv = tmp_path / "split.csv"
    assert main(["data", "split", "apsipa2025", "--protocol", "official", "--data-root", str(META_DIR), "--output", str(out_csv)]) == 0
    out = capsys.readouterr().out
    assert "metadata ceiling" in out and "classes lacking" in out
    roles = pd.read_csv(out_csv)["role"].value_counts()
    assert roles["test"] > 0 and roles["labeled"] > 0


def test_data_info_command(capsys):
    assert main(["data", "info", "apsipa2025", "--data-root", str(META_DIR)]) == 0
    out = capsys.readouterr().out
    assert "8700" in out and "1740" in out and "Xi'an" in out


def _write_csv(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_renamed_column_names_file_and_column(tmp_path):
    bad = _write_csv(tmp_path / "meta.csv", "filename,city,record_time,scene_label\na,Xi'an,2023-06-18 18:44:34,Bus\n")
    with pytest.raises(DataError, match=r"meta\.csv: missing column\(s\) 'location'"):
        apsipa2025.read_metadata(bad)


def test_bad_timestamp_names_file_row_and_column(tmp_path):
    bad = _write_csv(tmp_path / "meta.csv",
                     "filename,location,record_time,scene_label\na,Xi'an,2023-06-18 18:44:34,Bus\nb,Xi'an,18/06/2023 18:44,Bus\n")
    with pytest.raises(DataError, match=r"meta\.csv, row 3, column 'record_time'"):
        apsipa2025.read_metadata(bad)


def test_unknown_label_and_duplicate_filename(tmp_path):
    bad = _write_csv(tmp_path / "m.csv", "filename,location,record_time,scene_label\na,X,2023-06-18 18:44:34,Beach\n")
    with pytest.raises(DataError, match=r"row 2, column 'scene_label': unknown scene 'Beach'"):
        apsipa2025.read_metadata(bad)
    dup = _write_csv(tmp_path / "d.csv", "filename,location,record_time,scene_label\na,X,2023-06-18 18:44:34,Bus\na,X,2023-06-18 18:44:34,\n")
    with pytest.raises(DataError, match=r"row 3, column 'filename': duplicate"):
        apsipa2025.read_metadata(dup)


def test_missing_audio_root_says_where_and_how_many(tmp_path):
    with pytest.raises(DataError, match=r"does not exist; expected 8700 files"):
        apsipa2025.load("dev", DatasetOptions(data_root=tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"none of the 8700 audio files.*0 \.wav files found"):
        apsipa2025.load("dev", DatasetOptions(data_root=tmp_path / "empty"))


@pytest.fixture(scope="module")
def audio_subset(tmp_path_factory):
    """WAVs for labeled clips of three cities, two recordings per (city, class), two clips each."""
    root = tmp_path_factory.mktemp("apsipa-audio")
    ds = _metadata_only()
    lab = ds.meta[ds.meta["labeled"] & ds.meta["city"].isin(["Luoyang", "Chongqing", "Xi'an"])]
    taught = set(lab[lab["city"] != "Luoyang"]["scene_label"])
    lab = lab[lab["scene_label"].isin(taught)]
    rows = []
    for _, rec in lab.groupby(["city", "scene_label"]):
        for _, clips in list(rec.groupby("group"))[:2]:
            rows.extend(clips.index[:2])
    rng = np.random.default_rng(0)
    for i in rows:
        tone = np.sin(2 * np.pi * (200 + 90 * ds.classes.index(ds.meta.at[i, "scene_label"])) * np.arange(44_100) / 44_100)
        sf.write(str(root / ds.meta.at[i, "filename"]), (0.1 * tone + 0.01 * rng.standard_normal(44_100)).astype(np.float32), 44_100)
    return root, len(rows)


def test_end_to_end_unseen_city_on_synthesised_audio(audio_subset, runs, capsys):
    root, count = audio_subset
    args = ["run", "--dataset", "apsipa2025", "--data-root", str(root), "--model", "mobileascnet", "--strategy", "scratch",
            "--protocol", "unseen-city", "--test-cities", "Luoyang", "--epochs", "1", "--no-progress", "--skip-bad",
            "--model-arg", "channels=[8,16,16]", "--model-arg", "stem_channels=8", "--model-arg", "gru_hidden=16"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Luoyang" in out  # per-city accuracy of the held-out city
    assert f"{8700 - count} unusable file(s) left out" in out  # the rows without audio, counted
    import json

    from ascbench.results import load_rows

    (row,) = load_rows(runs)
    metrics = json.loads((runs / row["run_id"] / "metrics.json").read_text())
    assert set(metrics["city_accuracy"]) == {"Luoyang"}
    assert "Luoyang" not in metrics["split"]["train_cities"]
    assert metrics["split"]["train_clips"] + metrics["split"]["test_clips"] == count
    assert len(metrics["skipped_files"]) == 8700 - count and metrics["skipped_files"][0]["problem"] == "missing"
