"""embedded-apsipa: synthetic audio on the real APSIPA 2025 dev schedule.

The tests check properties of the generated data against the shipped real metadata (never model
scores): the same recordings, sessions and class x city x time structure; the same metadata ceilings
under recording and session grouping; the same classes left unscored by unseen-time; city chains,
session drifts and time of day that shift the audio measurably; deterministic output. The audio checks
synthesise a few recordings directly, so no test waits for the whole dataset (one slow test does).
"""

from __future__ import annotations

import errno
import hashlib

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from ascbench import pipeline
from ascbench.config import RunConfig
from ascbench.data.dataset import DatasetOptions
from ascbench.errors import DataError
from ascbench_plugins import apsipa2025, embedded
from ascbench_plugins import embedded_apsipa as ea

META_ONLY = DatasetOptions(require_audio=False)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return ea.build_metadata()


@pytest.fixture(scope="module")
def synthetic(registry):
    return registry.dataset("embedded-apsipa").load(META_ONLY)


@pytest.fixture(scope="module")
def real(registry):
    return registry.dataset("apsipa2025").load(META_ONLY)


def _ceiling(dataset, protocol: str = "official", **fields) -> tuple[float, object]:
    plan = pipeline.resolve(RunConfig(dataset=dataset.name, protocol=protocol, **fields))
    split_plan = pipeline.split(plan, dataset, fold=None, val_fraction=0.0)
    return split_plan.ceiling["nearest_in_time"], split_plan.split


def _frame_db(wav: np.ndarray, bands: int = 32) -> np.ndarray:
    """Log energy per 64-ms frame in log-spaced bands from 150 Hz to 8 kHz: a cheap log-mel."""
    frames = np.lib.stride_tricks.sliding_window_view(wav, 1024)[::512] * np.hanning(1024)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(1024, 1 / embedded.SAMPLE_RATE)
    edges = np.geomspace(150, 8000, bands + 1)  # from 150 Hz: at least two FFT bins a band
    energy = np.stack([power[:, (freqs >= lo) & (freqs < hi)].sum(1) for lo, hi in zip(edges, edges[1:])], 1)
    return 10 * np.log10(energy + 1e-12)


def _band_db(wav: np.ndarray) -> np.ndarray:
    """The clip's mean log-mel stand-in."""
    return _frame_db(wav).mean(0)


def _clips(city: str, stamp: str, scene: str = "Bus", clips: int = 4, session: str | None = None) -> np.ndarray:
    """Band energies of the clips of one made-up recording (the generator takes any clip table)."""
    when = pd.Timestamp(stamp)
    rows = pd.DataFrame(ea._recording_rows(city, when, scene, clips, 0), columns=ea.COLUMNS)
    if session is not None:
        rows["session"] = session
    wavs = ea.synth_recording(rows, ea.SPEC.clip_seconds, ea.SPEC.seed, ea.class_profiles())
    return np.stack([_band_db(w) for w in wavs])


def _gap(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference (dB) between two sets' mean band energies."""
    return float(np.mean(np.abs(a.mean(0) - b.mean(0))))


# --- the schedule --------------------------------------------------------------------------------------

def test_recordings_sessions_and_classes_are_the_real_ones(synthetic, real):
    syn, ref = synthetic.meta, real.meta
    assert syn["group"].nunique() == ref["group"].nunique() == 328
    assert set(syn["session"]) == set(ref["session"]) and syn["session"].nunique() == 31
    assert set(syn["city"]) == set(ref["city"])
    # Every labeled real recording keeps its city, time and scene.
    known = ref[ref["labeled"]].groupby("group")[["city", "timestamp", "scene_label"]].first()
    mine = syn.groupby("group")[["city", "timestamp", "scene_label"]].first()
    pd.testing.assert_frame_equal(mine.loc[known.index], known, check_dtype=False)
    # Hence the joint structure: each class in the same cities and periods as on the real data.
    for column in ("city", "period"):
        assert (syn.groupby("scene_label")[column].agg(set).to_dict()
                == ref[ref["labeled"]].groupby("scene_label")[column].agg(set).to_dict())
    assert set(syn.loc[syn["scene_label"] == "Bar", "timestamp"].dt.hour) <= {20, 21, 22}


def test_labels_are_a_fifth_and_every_labeled_recording_keeps_one(synthetic, real):
    meta = synthetic.meta
    assert len(meta) == 1738  # one clip per 5 real clips of a recording, at least one
    assert meta["labeled"].mean() == pytest.approx(0.2, abs=0.002)
    real_labeled = set(real.meta.loc[real.meta["labeled"], "group"])
    assert set(meta.loc[meta["labeled"], "group"]) == real_labeled
    assert (meta["scene_label"] != "").all()  # every clip keeps its true scene for scoring


def test_clip_counts_respect_a_small_budget():
    """A spec too small for one label per recording spreads its labels in proportion, within each recording."""
    recs = ea.real_recordings()
    kept, labeled = ea.clip_counts(recs, ea.ApsipaLikeSpec(clip_divisor=50, clip_seconds=0.25, labeled_fraction=0.1, seed=1))
    assert (kept >= 1).all() and (labeled <= kept).all()
    assert labeled.sum() == round(0.1 * kept.sum())
    assert labeled[recs["labeled_clips"].to_numpy() == 0].sum() == 0


def test_declares_session_grouping_and_the_real_split_seed(synthetic, registry):
    assert synthetic.groupings == {"recording": "group", "session": "session"}
    assert synthetic.default_grouping == "session"
    assert synthetic.split_seed == apsipa2025.SPLIT_SEED
    assert registry.dataset("embedded-apsipa").pretrain_source == "embedded-apsipa-source"


def test_source_has_other_cities_all_labeled_every_class_everywhere(registry, synthetic):
    source = registry.dataset("embedded-apsipa-source").load(META_ONLY).meta
    assert not set(source["city"]) & set(synthetic.meta["city"])
    assert source["labeled"].all()
    cells = source.groupby(["city", "scene_label", "period"]).size()
    assert len(cells) == source["city"].nunique() * len(embedded.CLASSES) * 4


def test_metadata_is_pinned(table):
    """Same table on every machine and run; a change to the schedule must change this hash on purpose."""
    digest = hashlib.sha256(table.to_csv(index=False).encode()).hexdigest()
    assert digest == "6ad9bcbc703886a33290a9c3a71d57bde207f621e93fb9c106c4c992db21a691"
    digest = hashlib.sha256(ea.source_metadata().to_csv(index=False).encode()).hexdigest()
    assert digest == "120b0418439051cf9ed7ad16c36218339cf37e29cc3cc959159ff564f07e013f"


def test_a_city_without_any_label_is_refused_by_name(tmp_path):
    path = tmp_path / "dev.csv"
    path.write_text("filename,location,record_time,scene_label\n"
                    "a,Xi'an,2023-05-01 10:00:00,Bus\nb,Nowhere,2023-05-01 11:00:00,\n")
    with pytest.raises(DataError, match=r"dev\.csv: city 'Nowhere' has no labeled recording"):
        ea.build_metadata(path=path)


# --- what the protocols see ------------------------------------------------------------------------------

@pytest.mark.parametrize("level", ["recording", "session"])
def test_metadata_ceiling_matches_the_real_metadata(synthetic, real, level):
    mine, _ = _ceiling(synthetic, group_by=level)
    theirs, _ = _ceiling(real, group_by=level)
    assert abs(mine - theirs) < 0.03, (level, mine, theirs)


def test_recording_grouping_leaks_and_session_grouping_does_not(synthetic):
    by_recording, _ = _ceiling(synthetic, group_by="recording")
    by_session, _ = _ceiling(synthetic, group_by="session")
    assert by_recording > 0.8 and by_session < 0.5


@pytest.mark.parametrize("periods", [("evening", "night"), ("morning",)])
def test_unseen_time_scores_what_the_real_data_scores(synthetic, real, periods):
    """Classes recorded only in the held-out periods (Bar at 20-22 h) cannot be taught; classes never recorded
    in them cannot be tested: both leave the same classes scored as on the real metadata."""
    _, mine = _ceiling(synthetic, protocol="unseen-time", options={"protocol": {"test_periods": periods}})
    _, theirs = _ceiling(real, protocol="unseen-time", options={"protocol": {"test_periods": periods}})
    labels = lambda ds, split: set(ds.meta["scene_label"].iloc[split.test])  # noqa: E731
    assert labels(synthetic, mine) == labels(real, theirs)
    assert mine.excluded_classes == theirs.excluded_classes
    if "evening" in periods:
        assert "Bar" in mine.excluded_classes
    else:
        assert "Bar" not in labels(synthetic, mine)


# --- the planted audio effects ---------------------------------------------------------------------------

def test_city_chain_shifts_the_spectrum_far_above_clip_noise(real):
    """One scene, one session drift, one time: only the city's chain differs between the sets."""
    cities = sorted(real.meta["city"].unique())
    sets = {c: _clips(c, "2023-05-02 10:00:00", clips=6, session="one session") for c in cities}
    between = [_gap(sets[a], sets[b]) for i, a in enumerate(cities) for b in cities[i + 1:]]
    within = [_gap(s[::2], s[1::2]) for s in sets.values()]
    assert np.mean(between) > 5 * np.mean(within) and min(between) > max(within), (between, within)


def test_each_session_drifts_its_recordings_alike():
    """Two recordings of one session sound alike; the same scene on other days of that city does not."""
    session = [_clips("Xi'an", f"2023-05-02 10:{m}:00", clips=6) for m in ("00", "20")]
    other_days = [_clips("Xi'an", f"2023-05-{day} 10:00:00", clips=6) for day in ("03", "09", "17")]
    within = _gap(*session)
    across = [_gap(session[0], day) for day in other_days]
    assert min(across) > 2 * within and np.mean(across) > 4 * within, (across, within)


def test_time_of_day_changes_the_content():
    night, afternoon = _clips("Hefei", "2023-05-02 03:00:00"), _clips("Hefei", "2023-05-02 15:00:00")
    assert afternoon.mean() - night.mean() > 6.0  # dB: busier and louder in the afternoon


def test_a_recording_sounds_the_same_alone_or_in_the_dataset(tmp_path, table):
    """Each recording's generator is seeded by the recording alone: same bytes however the table is cut."""
    meta = table
    groups = list(meta["group"].unique()[:2])
    in_order = [meta[meta["group"] == g] for g in groups]
    ea.generate("t", pd.concat(in_order), 0.25, ea.SPEC.seed, tmp_path / "a")
    ea.generate("t", pd.concat(in_order[::-1]), 0.25, ea.SPEC.seed, tmp_path / "b")
    alone = in_order[0]
    ea.generate("t", alone, 0.25, ea.SPEC.seed, tmp_path / "c")
    for filename in alone["filename"]:
        data = [(tmp_path / d / filename).read_bytes() for d in "abc"]
        assert data[0] == data[1] == data[2]
    info = sf.info(str(tmp_path / "a" / alone["filename"].iloc[0]))
    assert info.samplerate == embedded.SAMPLE_RATE and info.frames == 4000


def test_generated_on_first_use_and_reused(tmp_path, monkeypatch):
    """The loader writes audio, metadata.csv and manifest once; the CSV is the table metadata-only callers get."""
    small = ea.ApsipaLikeSpec(clip_divisor=50, clip_seconds=0.1, labeled_fraction=0.2, seed=ea.SPEC.seed)
    table = lambda: ea.build_metadata(small).head(12)  # noqa: E731
    options = DatasetOptions(data_root=tmp_path / "ds")
    ds = ea._load("t", small, table, options)
    assert (tmp_path / "ds" / "manifest.json").exists() and len(list((tmp_path / "ds" / "audio").glob("*.wav"))) == 12
    assert ds.fingerprint() == ea._load("t", small, table, DatasetOptions(data_root=tmp_path / "ds", require_audio=False)).fingerprint()
    monkeypatch.setattr(ea, "generate", lambda *a, **k: pytest.fail("regenerated a dataset whose manifest matches"))
    assert ea._load("t", small, table, options).fingerprint() == ds.fingerprint()


def test_a_full_disk_during_generation_leaves_nothing_behind(tmp_path, table, audio_writes_fail):
    audio_writes_fail(3, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(DataError, match=r"cannot write the t dataset to .*No space left on device.*nothing was left"):
        ea.generate("t", table.head(8), 0.1, ea.SPEC.seed, tmp_path / "t")
    assert list((tmp_path / "t" / "audio").iterdir()) == [] and not (tmp_path / "t" / "metadata.csv").exists()


def test_an_interrupted_generation_leaves_nothing_behind(tmp_path, table, audio_writes_fail):
    """Ctrl-C half-way (while recordings are being made on other threads) removes what was written and stays an
    interruption, not an error of another kind."""
    calls = audio_writes_fail(5, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        ea.generate("t", table.head(24), 0.1, ea.SPEC.seed, tmp_path / "t")
    assert len(calls) == 6
    assert list((tmp_path / "t" / "audio").iterdir()) == [] and not (tmp_path / "t" / "metadata.csv").exists()


def test_a_folder_in_the_way_of_a_clip_is_named_and_kept(tmp_path, table):
    """A folder where a clip goes: the clips written before it are removed, the folder (not ascbench's) is left, and
    the message names it and says to remove it, not that the data root is unwritable."""
    meta = table.head(8)
    blocker = tmp_path / "t" / meta["filename"].iloc[4]
    blocker.mkdir(parents=True)
    with pytest.raises(DataError) as caught:
        ea.generate("t", meta, 0.1, ea.SPEC.seed, tmp_path / "t")
    message = str(caught.value)
    assert str(blocker) in message and "in the way" in message and "writable" not in message
    assert [p.name for p in (tmp_path / "t" / "audio").iterdir()] == [blocker.name] and blocker.is_dir()


@pytest.mark.parametrize("name", ["embedded-apsipa", "embedded-tiny"])
def test_a_data_root_that_cannot_hold_a_dataset_is_one_line(tmp_path, registry, name):
    (tmp_path / "a-file").write_text("")
    root = tmp_path / "a-file" / "data"
    with pytest.raises(DataError, match=rf"cannot generate the dataset in {root}: .*writable folder"):
        registry.dataset(name).load(DatasetOptions(data_root=root))


# --- embedded itself is untouched ------------------------------------------------------------------------

def _digest(directory) -> str:
    h = hashlib.sha256()
    for path in sorted(directory.rglob("*.wav")):
        h.update(path.name.encode() + path.read_bytes())
    h.update((directory / "metadata.csv").read_bytes())
    h.update((directory / "manifest.json").read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("name, digest", [
    ("embedded-tiny", "14ff495f485686028ec5d4414a0ab53dd5b270f98a91fe0ddd91dead1a6d6d4a"),
    ("embedded-tiny-source", "9bfc86e79ec3c9c46c33b6a596b3c19a2c248dfa5adf0e53a97e08a8f7d8f922"),
])
def test_embedded_datasets_are_bit_identical(registry, name, digest):
    """embedded's cache (and the published board's features) stay valid: its generator and manifest are shared
    with embedded-apsipa but produce the same bytes as before (digests taken before the refactor). The
    session's cached copies are used, so the suite generates nothing more."""
    ds = registry.dataset(name).load(DatasetOptions())
    assert _digest(ds.root) == digest


# --- the whole dataset (slow: about 15 s of generation) --------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", ["embedded-apsipa", "embedded-apsipa-source"])
def test_generated_datasets_conform(name):
    """The conformance kit on the whole generated data (audio readable at its rate and length, groups nest)."""
    from ascbench.testing import check_dataset

    check_dataset(name)


@pytest.mark.slow
def test_audio_evidence_beats_the_metadata_ceiling_on_session_holdout(registry):
    """A linear model on band energies, a weak listener, clearly beats what metadata scores on a session hold-out,
    and scores higher still when only recordings are kept whole (the session drift leaks)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from ascbench.metrics import macro_accuracy

    ds = registry.dataset("embedded-apsipa").load(DatasetOptions())
    frames = [_frame_db(sf.read(str(path))[0]) for path in ds.audio_paths()]
    features = np.stack([np.concatenate([f.mean(0), f.std(0)]) for f in frames])  # spectrum and its fluctuation
    labels, scores = ds.label_indices(), {}
    for level in ("recording", "session"):
        plan = pipeline.resolve(RunConfig(dataset=ds.name, group_by=level))
        split_plan = pipeline.split(plan, ds, fold=None, val_fraction=0.0)
        train, test = np.concatenate([split_plan.partition.labeled, split_plan.partition.val]), split_plan.partition.test
        scaler = StandardScaler().fit(features[train])
        model = LogisticRegression(max_iter=3000, C=0.1).fit(scaler.transform(features[train]), labels[train])
        scores[level] = (macro_accuracy(labels[test], model.predict(scaler.transform(features[test]))), split_plan.ceiling["best"])
    assert scores["session"][0] > scores["session"][1] + 0.15, scores
    assert scores["recording"][0] > scores["session"][0], scores


def test_every_synthetic_dataset_says_so_and_links_what_was_planted(registry):
    """Boards print a synthetic dataset's nature and link its planted effects beside every table: each built-in
    synthetic dataset must declare both, and the link must land on a heading the README has."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    anchors = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
               for h in re.findall(r"^#+ (.+)$", readme, flags=re.M)}
    for name in ("embedded-apsipa", "embedded-apsipa-source", "embedded", "embedded-source"):
        spec = registry.dataset(name)
        assert spec.synthetic, name
        page, _, anchor = spec.documentation.partition("#")
        assert page == "README.md" and anchor in anchors, (name, spec.documentation)
