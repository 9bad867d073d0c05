import os

import numpy as np
import pytest
import torch
import torchaudio

from ascbench import features
from ascbench.data.audio import read_clip
from ascbench.features import PRESETS, FeatureConfig, load_features


def test_matches_a_direct_torchaudio_computation(tiny):
    cfg = PRESETS["embedded"]
    feats, _ = load_features(tiny, cfg, progress=False)
    assert feats.shape == (len(tiny.meta), cfg.n_mels, cfg.n_frames(tiny.clip_seconds))
    wave = torch.from_numpy(read_clip(tiny.audio_paths()[3], tiny.sample_rate, tiny.num_samples))
    mel = torchaudio.transforms.MelSpectrogram(16000, n_fft=1024, win_length=800, hop_length=320, f_min=50.0,
                                               f_max=8000.0, n_mels=64, power=1.0, norm="slaney", mel_scale="slaney")
    expected = 20 * torch.log10(torch.clamp(mel(wave), min=1e-10))
    np.testing.assert_allclose(feats[3], expected.numpy(), atol=1e-3)


def test_second_load_is_a_cache_hit(tiny, monkeypatch):
    cfg = PRESETS["embedded"]
    load_features(tiny, cfg, progress=False)

    def must_not_extract(*args, **kwargs):
        raise AssertionError("features were extracted again")

    monkeypatch.setattr(features, "extract", must_not_extract)
    feats, cached = load_features(tiny, cfg, progress=False)
    assert cached and isinstance(feats, np.memmap)


def test_cache_is_keyed_by_config_and_file_state(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("ASCBENCH_FEATURE_DIR", str(tmp_path / "feats"))
    cfg = PRESETS["embedded"]
    calls = []
    real = features.extract
    monkeypatch.setattr(features, "extract", lambda *a, **k: calls.append(1) or real(*a, **k))
    load_features(tiny, cfg, progress=False)
    load_features(tiny, cfg, progress=False)
    assert len(calls) == 1
    other = FeatureConfig(16_000, 512, 400, 160, 40, 50.0, 8000.0)
    assert load_features(tiny, other, progress=False)[0].shape[1] == 40
    assert len(calls) == 2
    # Touching an audio file invalidates the entry.
    path = tiny.audio_paths()[0]
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    load_features(tiny, cfg, progress=False)
    assert len(calls) == 3


def test_unreadable_audio_names_the_file(tiny, tmp_path):
    from ascbench.errors import DataError

    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(DataError, match="broken.wav"):
        read_clip(bad, 16000, 16000)


def test_other_sample_rates_are_resampled(tmp_path, caplog, monkeypatch):
    import soundfile as sf

    from ascbench.data import audio

    monkeypatch.setattr(audio, "_resample_reported", set())  # said once per process; earlier tests may have

    t = np.arange(8000) / 8000
    sf.write(str(tmp_path / "low.wav"), np.sin(2 * np.pi * 440 * t).astype(np.float32), 8000)
    caplog.set_level("WARNING", logger="ascbench")
    clip = read_clip(tmp_path / "low.wav", 16000, 16000)
    assert clip.shape == (16000,) and "resampling audio from 8000 Hz to 16000 Hz" in caplog.text
    spectrum = np.abs(np.fft.rfft(clip))
    assert abs(np.argmax(spectrum) * 16000 / 16000 - 440) < 3  # still a 440 Hz tone


def test_apsipa_preset_keeps_500_frames():
    assert PRESETS["apsipa2025"].n_frames(10.0) == 500
    assert PRESETS["dcase"].n_frames(1.0) == 65
