import hashlib

import numpy as np
import pandas as pd
import soundfile as sf

from ascbench.data.dataset import DatasetOptions
from ascbench.data.timefeatures import PERIOD_NAMES
from ascbench_plugins import embedded


def _digest(directory):
    h = hashlib.sha256()
    for path in sorted(directory.rglob("*.wav")):
        h.update(path.name.encode() + path.read_bytes())
    h.update((directory / "metadata.csv").read_bytes())
    return h.hexdigest()


def test_generation_is_deterministic(tmp_path):
    a = embedded.load_embedded("embedded-tiny", DatasetOptions(data_root=tmp_path / "a"))
    b = embedded.load_embedded("embedded-tiny", DatasetOptions(data_root=tmp_path / "b"))
    assert _digest(a.root) == _digest(b.root)


def test_structure_mirrors_the_challenge(registry):
    ds = registry.dataset("embedded").load(DatasetOptions())
    meta = ds.meta
    assert len(ds.classes) == 10 and set(meta["scene_label"]) == set(ds.classes)
    assert meta["city"].nunique() >= 6
    assert set(meta["period"]) == set(PERIOD_NAMES)
    assert meta["timestamp"].dt.normalize().nunique() > 20  # many dates, not one day
    assert 0.15 < meta["labeled"].mean() < 0.25  # challenge-like: most clips unlabeled
    # Every clip of one recording shares city, timestamp and label.
    per_group = meta.groupby("group")[["city", "timestamp", "scene_label"]].nunique()
    assert (per_group == 1).all().all()
    # Real WAV files at the declared rate and length.
    info = sf.info(str(ds.root / meta["filename"].iloc[0]))
    assert info.samplerate == embedded.SAMPLE_RATE and info.frames == ds.num_samples
    # The metadata on disk is a plain CSV in the standard columns.
    on_disk = pd.read_csv(ds.root / "metadata.csv")
    assert {"filename", "scene_label", "labeled", "city", "timestamp", "group", "split"} <= set(on_disk.columns)


def test_data_dir_honours_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ASCBENCH_DATA_DIR", str(tmp_path / "data"))
    ds = embedded.load_embedded("embedded-tiny-source", DatasetOptions())
    assert ds.root == tmp_path / "data" / "embedded-tiny-source"
    assert (ds.root / "manifest.json").exists()


def test_cities_change_the_recording_chain(registry):
    """The same class sounds different in different cities: long-term spectra differ by city."""
    ds = registry.dataset("embedded").load(DatasetOptions())
    meta = ds.meta
    spectra = {}
    for city in meta["city"].unique()[:3]:
        rows = meta[(meta["city"] == city) & (meta["scene_label"] == "Bus")]["filename"][:6]
        mags = [np.abs(np.fft.rfft(sf.read(str(ds.root / f))[0]))[:4000] for f in rows]
        spectra[city] = 20 * np.log10(np.mean(mags, axis=0) + 1e-9)
    values = list(spectra.values())
    diffs = [np.mean(np.abs(values[i] - values[j])) for i in range(3) for j in range(i + 1, 3)]
    assert min(diffs) > 1.0  # dB: a real change of colouration or level, not noise
