import os

import numpy as np
import pytest
import torch
import torchaudio

from ascbench import features
from ascbench.data.audio import read_checked
from ascbench.features import get_preset, FeatureConfig, load_features


def read_clip(path, sample_rate: int, num_samples: int) -> np.ndarray:
    """One usable clip, conformed to ``sample_rate`` and ``num_samples`` as feature extraction reads it."""
    clip, problem, _ = read_checked(path, sample_rate, num_samples)
    assert clip is not None, f"{path}: {problem}"
    return clip


def test_matches_a_direct_torchaudio_computation(tiny):
    cfg = get_preset("embedded")
    feats, _ = load_features(tiny, cfg, progress=False)
    assert feats.shape == (len(tiny.meta), cfg.n_mels, cfg.n_frames(tiny.clip_seconds))
    wave = torch.from_numpy(read_clip(tiny.audio_paths()[3], tiny.sample_rate, tiny.num_samples))
    mel = torchaudio.transforms.MelSpectrogram(16000, n_fft=1024, win_length=800, hop_length=320, f_min=50.0,
                                               f_max=8000.0, n_mels=64, power=1.0, norm="slaney", mel_scale="slaney")
    expected = 20 * torch.log10(torch.clamp(mel(wave), min=1e-10))
    np.testing.assert_allclose(feats[3], expected.numpy(), atol=1e-3)


def test_second_load_is_a_cache_hit(tiny, monkeypatch):
    cfg = get_preset("embedded")
    load_features(tiny, cfg, progress=False)

    def must_not_extract(*args, **kwargs):
        raise AssertionError("features were extracted again")

    monkeypatch.setattr(features, "extract", must_not_extract)
    feats, cached = load_features(tiny, cfg, progress=False)
    assert cached and isinstance(feats, np.memmap)


@pytest.fixture
def own_copy(tiny, tmp_path, monkeypatch):
    """A private copy of the tiny dataset (files may be changed) with its own feature cache."""
    import dataclasses
    import shutil

    monkeypatch.setenv("ASCBENCH_FEATURE_DIR", str(tmp_path / "feats"))
    shutil.copytree(tiny.root / "audio", tmp_path / "data" / "audio")
    return dataclasses.replace(tiny, root=tmp_path / "data", meta=tiny.meta.copy())


@pytest.fixture
def extractions(monkeypatch):
    calls = []
    real = features.extract
    monkeypatch.setattr(features, "extract", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_cache_is_keyed_by_config_and_audio_content(own_copy, extractions):
    cfg = get_preset("embedded")
    load_features(own_copy, cfg, progress=False)
    load_features(own_copy, cfg, progress=False)
    assert len(extractions) == 1
    other = FeatureConfig(16_000, 512, 400, 160, 40, 50.0, 8000.0)
    assert load_features(own_copy, other, progress=False)[0].shape[1] == 40
    assert len(extractions) == 2
    # Touching a file (same bytes) re-hashes but reuses the entry ...
    path = own_copy.audio_paths()[0]
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert load_features(own_copy, cfg, progress=False)[1] is True
    assert len(extractions) == 2
    # ... and changing its bytes extracts again, with the new audio.
    import soundfile as sf

    sf.write(str(path), np.zeros(own_copy.num_samples, dtype=np.float32), own_copy.sample_rate, subtype="PCM_16")
    feats, cached = load_features(own_copy, cfg, progress=False)
    assert not cached and len(extractions) == 3
    assert feats[0].max() < -100  # silence in dB


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_entry_is_detected_and_rebuilt(own_copy, extractions, damage, caplog):
    cfg = get_preset("embedded")
    good = np.array(load_features(own_copy, cfg, progress=False)[0])
    (entry,) = [p for p in (own_copy.root.parent / "feats").iterdir() if p.name.startswith(own_copy.name + "-")]
    array = entry / "features.npy"
    data = bytearray(array.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[len(data) // 3:]
    array.write_bytes(bytes(data))
    caplog.set_level("WARNING", logger="ascbench")
    feats, cached = load_features(own_copy, cfg, progress=False)
    assert not cached and len(extractions) == 2
    assert "is damaged" in caplog.text
    np.testing.assert_array_equal(feats, good)


def test_a_full_disk_is_a_clear_error_and_leaves_no_entry(own_copy, monkeypatch):
    import errno

    from ascbench.errors import DataError

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(features.np, "save", no_space)
    with pytest.raises(DataError, match=r"cannot write the feature cache in .*feats: No space left on device; free some space"):
        load_features(own_copy, get_preset("embedded"), progress=False)
    leftovers = [p for p in (own_copy.root.parent / "feats").iterdir() if p.name.startswith(own_copy.name + "-")]
    assert leftovers == []


def test_an_unwritable_cache_directory_is_a_clear_error(own_copy, tmp_path, monkeypatch):
    from ascbench.errors import DataError

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setenv("ASCBENCH_FEATURE_DIR", str(blocker / "features"))
    with pytest.raises(DataError, match="cannot write the feature cache .*not-a-directory/features"):
        load_features(own_copy, get_preset("embedded"), progress=False)


def test_unreadable_audio_is_a_problem_not_a_crash(tiny, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    clip, problem, _ = read_checked(bad, 16000, 16000)
    assert clip is None and problem


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
    assert get_preset("apsipa2025").n_frames(10.0) == 500
    assert get_preset("dcase2024").n_frames(1.0) == 65


def test_read_rows_reads_the_cache_file_as_fancy_indexing_would(tmp_path):
    from ascbench.features import open_cached_array, read_rows

    x = np.random.default_rng(0).standard_normal((40, 3, 5)).astype(np.float32)
    np.save(tmp_path / "a.npy", x)
    cached = open_cached_array(tmp_path / "a.npy")
    for rows in ([3, 4, 5, 9, 10, 0, 39], [], [7], list(range(40)), [5, 5, 6], [-1, 2]):
        assert np.array_equal(read_rows(cached, np.array(rows, dtype=np.int64)), x[rows])
    assert np.array_equal(read_rows(x, np.array([2, 1])), x[[2, 1]])  # arrays in memory: plain indexing
    with pytest.raises(IndexError):
        read_rows(cached, np.array([40]))
