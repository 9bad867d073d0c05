"""The official front-ends, reproduced: ascbench's extraction path (decode, resample, log-mel, crop) against
the official code's own log-mels of the reference clips in ../shared/reference (see its README)."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from ascbench.data.dataset import ClipDataset
from ascbench.errors import ConfigError
from ascbench.features import FeatureConfig, LogMel, extract, get_preset

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(), reason="../shared/reference is not present")


def _dataset(tmp_path: Path, clips: dict[str, Path], sample_rate: int, seconds: float, front_end: str) -> ClipDataset:
    for name, source in clips.items():
        shutil.copy(source, tmp_path / name)
    names = list(clips)
    meta = pd.DataFrame({"filename": names, "scene_label": "", "labeled": False, "city": "x",
                         "timestamp": "2023-05-01 12:00:00", "group": names, "split": ""})
    return ClipDataset("reference", tmp_path, meta, ["a"], sample_rate, seconds, front_end)


@needs_reference
def test_apsipa2025_front_end_equals_the_official_log_mel_within_1e_3_db(tmp_path):
    ref = REFERENCE / "apsipa2025"
    dataset = _dataset(tmp_path, {"plain.wav": ref / "clip_plain.wav", "silence.wav": ref / "clip_silence.wav"},
                       44_100, 10.0, "apsipa2025")
    feats, reports = extract(dataset, get_preset("apsipa2025"), progress=False)
    assert not any(r.problem for r in reports)
    for row, name in enumerate(("plain", "silence")):
        official = np.load(ref / f"official_logmel_{name}.npy")  # (frames, mels)
        assert feats[row].shape == official.T.shape == (64, 500)
        assert np.abs(feats[row] - official.T).max() < 1e-3
    # The clip with 0.2 s of digital silence is where 20*log10, no top_db or reflect padding would show.
    silent = np.load(ref / "official_logmel_silence.npy")
    assert silent.min() == pytest.approx(silent.max() - 80.0)


@needs_reference
def test_dcase2024_front_end_equals_the_official_log_mel_within_1e_3(tmp_path):
    ref = REFERENCE / "dcase2024"
    dataset = _dataset(tmp_path, {"clip.wav": ref / "clip_1s_44k.wav"}, 44_100, 1.0, "dcase2024")
    feats, _ = extract(dataset, get_preset("dcase2024"), progress=False)  # resampled 44.1 -> 32 kHz on the way
    official = np.load(ref / "official_logmel_1s.npy")
    assert feats[0].shape == official.shape == (256, 65)
    assert np.abs(feats[0] - official).max() < 1e-3


def test_top_db_is_per_clip_not_per_batch():
    cfg = get_preset("apsipa2025")
    loud = torch.randn(44_100)
    quiet = 1e-4 * torch.randn(44_100)
    front_end = LogMel(cfg)
    together = front_end(torch.stack([loud, quiet]))
    alone = front_end(quiet[None])
    torch.testing.assert_close(together[1], alone[0])


def test_front_end_settings_are_checked():
    with pytest.raises(ConfigError, match="log='log2'"):
        FeatureConfig(16_000, 512, 512, 256, 32, 0.0, log="log2")
    with pytest.raises(ConfigError, match="log_offset"):
        FeatureConfig(16_000, 512, 512, 256, 32, 0.0, log="ln")


def test_front_ends_are_plugins_listed_with_their_source(registry):
    assert {"embedded", "apsipa2025", "dcase2024"} <= set(registry.names("front-end"))
    assert "APSIPA2025GC-ASC" in registry.front_end("apsipa2025").source
