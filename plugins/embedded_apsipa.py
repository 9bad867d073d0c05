"""``embedded-apsipa``: synthetic audio on the real APSIPA ASC 2025 dev schedule, written to disk on first use.

``embedded`` spreads every class evenly over cities and times, so city and time never tell the scene. The
real dev metadata (shipped in ``data/apsipa2025/``) is the opposite, and this dataset copies its structure
row for row: its 8 cities, its 328 recordings with their exact timestamps and scenes, and so its 31
sessions (city + date). Each class is recorded in 1-3 cities on 2-11 city-days, Bar only at 20-22 h,
Public square and Traffic street in Xi'an only; a metadata lookup scores on it what it scores on the real
metadata ("nearest in time, same city": 89 % macro accuracy on the recording-grouped session hold-out
against 87 % on the real metadata, 40 % on the session-grouped one against 40 %).

**Kept and cut** (so that a run costs about what a run on ``embedded`` costs: 1,738 s of audio against 1,920 s):

* kept: every recording, with its city, timestamp and scene, hence every session and the joint
  distribution of class x city x time of day; the split seed of ``apsipa2025``, so ``session-holdout`` holds
  out the same sessions (or recordings) as on the real data;
* cut: one clip for every ``clip_divisor`` (5) real clips of a recording, at least one: 1,738 clips
  instead of 8,700; clips of 1 s at 16 kHz instead of 10 s at 44.1 kHz;
* labels: 20 % of the clips carry a visible label, as in the challenge, spread so that each of the 309
  recordings with labeled clips in the real metadata keeps at least one (the rest in proportion to its
  real labeled count). The 19 real recordings without any label stay unlabeled; their scene (needed to
  synthesise them) is that of the nearest-in-time labeled recording of the same city. Every clip keeps
  its true scene for scoring, as in ``embedded``.

**Planted effects** (the audio comes from the ``embedded`` generator: its class profiles, city chains
and time-of-day content):

* class: each scene's background envelope and two event types (``embedded._class_profiles``), the
  evidence an audio model can use on sessions it has never heard;
* city: each city's recording chain (tilt, three resonances, reverberation, level; ``embedded._city_chain``);
* session: each session (city + day) adds its own drift to the city's chain: two resonances of 4-9 dB,
  a tilt of up to 1.5 dB/octave and a level offset of up to 4 dB, shared by all its recordings. A model
  can recognise the session, and sessions are mostly one scene: a split that keeps only recordings
  whole leaks through the audio as it does through the metadata;
* time of day: event density and background level per period (``embedded.PERIOD_CONTENT``);
* level: every chain 30 dB quieter than in ``embedded`` (``HEADROOM_DB``), whose clips clip heavily.

``embedded-apsipa-source`` is its pretraining source (as TAU Urban is for the real challenge): the same
generator in ``embedded``'s 4 source cities, one 6-clip recording per city, class and period on a random
day (960 1-s clips), all labeled.

Generation is deterministic; the output goes to ``$ASCBENCH_DATA_DIR/embedded-apsipa`` (default under
``$ASCBENCH_CACHE_DIR/data``) and is reused while its manifest matches. Commands that read metadata only
(``ascbench data split``) get the clip table without generating any audio.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import soundfile as sf
import torch

import ascbench.plugin as ap
from ascbench_plugins import apsipa2025, embedded

GENERATOR_VERSION = 1
NAME, SOURCE_NAME = "embedded-apsipa", "embedded-apsipa-source"
# The README section that lists what this module plants (linked beside every leaderboard table on this data).
DOCUMENTATION = "README.md#what-was-planted-in-the-built-in-data"
REAL_METADATA = apsipa2025.SHIPPED / apsipa2025.META_FILES["dev"]
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
COLUMNS = ["filename", "scene_label", "labeled", "city", "timestamp", "group", "session", "split"]
# embedded's chains (resonances up to +20 dB, reverberation tails up to 0.9 s, gains up to +6 dB) drive its clips
# into the clipper: about a third of their samples sit at full scale, which buries much of the class evidence.
# Here every chain is 30 dB quieter (cities keep their relative levels): 3 % of clips have more than 1 % of
# their samples clipped, at -32 dBFS RMS median. With embedded's own class profiles, a linear model on band
# energies then scores 71 % on the session hold-out whose metadata ceiling is 40 % (47 % without the headroom).
HEADROOM_DB = -30.0


@dataclass(frozen=True)
class ApsipaLikeSpec:
    """The target: the real dev recordings, scaled down."""

    clip_divisor: int  # one synthetic clip for every this many real clips of a recording (at least one)
    clip_seconds: float
    labeled_fraction: float  # of all clips
    seed: int


@dataclass(frozen=True)
class SourceSpec:
    """The pretraining source: every class in every city and period of the day, one recording each, all labeled."""

    cities: tuple[str, ...]
    clips_per_recording: int
    clip_seconds: float
    seed: int


SPEC = ApsipaLikeSpec(clip_divisor=5, clip_seconds=1.0, labeled_fraction=0.2, seed=11)
SOURCE_SPEC = SourceSpec(tuple(embedded.SOURCE_CITIES), clips_per_recording=6, clip_seconds=SPEC.clip_seconds, seed=12)


# --- the schedule: the real recordings, scaled down -------------------------------------------------------

def real_recordings(path: Path = REAL_METADATA) -> pd.DataFrame:
    """One row per recording of the real dev metadata (city, timestamp, session, scene, clip counts),
    ordered by city and time; a recording without labeled clips gets its nearest labeled neighbour's scene."""
    meta = apsipa2025.read_metadata(path)
    recs = meta.groupby("group", sort=True).agg(
        city=("city", "first"), timestamp=("timestamp", "first"), session=("session", "first"),
        clips=("filename", "size"), labeled_clips=("labeled", "sum"),
        scene=("scene_label", lambda s: next((x for x in s if x), "")))
    recs = recs.reset_index().sort_values(["city", "timestamp", "group"], kind="stable").reset_index(drop=True)
    recs["scene"] = _filled_scenes(recs, path)
    return recs


def _filled_scenes(recs: pd.DataFrame, path: Path) -> pd.Series:
    """Each unknown scene taken from the labeled recording of the same city nearest in time (ties: the
    earlier), the rule that makes sessions leak: its answer is what the real scene most likely was."""
    scenes = recs["scene"].copy()
    for i in np.flatnonzero((recs["scene"] == "").to_numpy()):
        known = recs[(recs["city"] == recs.at[i, "city"]) & (recs["scene"] != "")]
        if known.empty:
            raise ap.DataError(f"{path}: city {recs.at[i, 'city']!r} has no labeled recording to take a scene from; "
                               "label at least one of its recordings")
        gap = (known["timestamp"] - recs.at[i, "timestamp"]).abs()
        scenes.iat[i] = known.loc[gap.sort_values(kind="stable").index[0], "scene"]
    return scenes


def _largest_remainder(quotas: np.ndarray, total: int) -> np.ndarray:
    """Whole numbers summing to ``total`` (``quotas`` sum to it), each the floor of its quota or one more."""
    counts = np.floor(quotas).astype(np.int64)
    order = np.argsort(-(quotas - counts), kind="stable")
    counts[order[: total - int(counts.sum())]] += 1
    return counts


def clip_counts(recs: pd.DataFrame, spec: ApsipaLikeSpec) -> tuple[np.ndarray, np.ndarray]:
    """Clips kept per recording, and how many of them are labeled.

    Kept: a real recording's clip count over ``clip_divisor``, rounded half up, at least one. Labeled:
    ``labeled_fraction`` of all kept clips; each recording with real labels keeps at least one when the
    budget allows (so a metadata lookup finds the same labeled recordings as on the real data), and the
    rest goes in proportion to the real labeled counts.
    """
    kept = np.maximum(1, np.floor(recs["clips"].to_numpy() / spec.clip_divisor + 0.5)).astype(np.int64)
    budget = int(round(spec.labeled_fraction * kept.sum()))
    real = recs["labeled_clips"].to_numpy(dtype=float)
    floor = (real > 0).astype(np.int64)
    if floor.sum() > budget:  # a very small spec: proportional only
        floor[:] = 0
    quotas = real * budget / real.sum()
    excess = np.maximum(quotas - floor, 0.0)
    room = budget - int(floor.sum())
    excess = excess * room / excess.sum() if excess.sum() > 0 else excess
    labeled = np.minimum(floor + _largest_remainder(excess, room), kept)
    return kept, labeled


def _recording_rows(city: str, stamp: pd.Timestamp, scene: str, clips: int, labeled: int) -> list[tuple]:
    """The clip-table rows of one recording; its first ``labeled`` clips carry the visible label (clips of
    one recording are alike, so which ones does not matter)."""
    stem = f"audio/{''.join(ch for ch in city if ch.isalnum())}-{stamp:%Y%m%d-%H%M%S}"
    group, session = f"{city} {stamp.strftime(TIME_FORMAT)}", f"{city} {stamp:%Y-%m-%d}"  # as apsipa2025 names them
    return [(f"{stem}-{k:02d}.wav", scene, k < labeled, city, stamp.strftime(TIME_FORMAT), group, session, "")
            for k in range(clips)]


def build_metadata(spec: ApsipaLikeSpec = SPEC, path: Path = REAL_METADATA) -> pd.DataFrame:
    """The clip table: one row per kept clip, in the standard columns plus ``session`` (no audio needed).
    ``split`` is empty: ``session-holdout`` draws a hold-out with the split seed, as for apsipa2025."""
    recs = real_recordings(path)
    kept, labeled = clip_counts(recs, spec)
    rows = [row for rec, n, n_labeled in zip(recs.itertuples(index=False), kept, labeled)
            for row in _recording_rows(rec.city, rec.timestamp, rec.scene, int(n), int(n_labeled))]
    return pd.DataFrame(rows, columns=COLUMNS)


def source_metadata(spec: SourceSpec = SOURCE_SPEC) -> pd.DataFrame:
    """The source's clip table: one recording per city, class and period, on a random day of the dev months."""
    rng = np.random.default_rng([embedded.GENERATOR_SEED, spec.seed])
    days = pd.date_range("2023-04-21", "2023-08-28", freq="D")
    rows = []
    for city in spec.cities:
        for scene in embedded.CLASSES:
            for period, *_ in ap.PERIODS:
                stamp = embedded._period_time(period, rng, days[int(rng.integers(len(days)))])
                rows += _recording_rows(city, stamp, scene, spec.clips_per_recording, spec.clips_per_recording)
    return pd.DataFrame(rows, columns=COLUMNS)


# --- the audio: embedded's generator, with a drift per session -------------------------------------------

def _stable_seed(text: str) -> int:
    """A seed from a string that is the same in every process (``hash()`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def class_profiles() -> list[dict]:
    """embedded's class profiles: the same scenes as in embedded and embedded-source."""
    return embedded._class_profiles(np.random.default_rng(embedded.GENERATOR_SEED))


def session_drift(session: str) -> dict:
    """The drift a session adds to its city's chain: two resonances, a tilt and a level offset."""
    rng = np.random.default_rng([embedded.GENERATOR_SEED, _stable_seed(session)])
    return {
        "tilt_db_per_oct": float(rng.uniform(-1.5, 1.5)),
        "resonances": [(float(2 ** rng.uniform(np.log2(300), np.log2(6000))), float(rng.uniform(0.15, 0.4)),
                        float(rng.choice([-1, 1]) * rng.uniform(4, 9))) for _ in range(2)],
        "level_db": float(rng.uniform(-4, 4)),
    }


def session_chain(city: str, session: str) -> tuple[dict, float]:
    """The city's recording chain with the session's drift folded in (and HEADROOM_DB), and the session's level
    offset in dB."""
    chain, drift = embedded._city_chain(city), session_drift(session)
    return ({**chain, "tilt_db_per_oct": chain["tilt_db_per_oct"] + drift["tilt_db_per_oct"],
             "resonances": chain["resonances"] + drift["resonances"], "gain_db": chain["gain_db"] + HEADROOM_DB},
            drift["level_db"])


def synth_recording(rows: pd.DataFrame, clip_seconds: float, seed: int, profiles: list[dict]) -> list[np.ndarray]:
    """The clips of one recording (its rows of a clip table), from a generator seeded by the recording
    alone, so that any recording can be made on its own and always sounds the same."""
    first = rows.iloc[0]
    chain, level_db = session_chain(first["city"], first["session"])
    period = str(ap.period_of(np.array([pd.Timestamp(first["timestamp"]).hour]))[0])
    profile = profiles[embedded.CLASSES.index(first["scene_label"])]
    rng = np.random.default_rng([embedded.GENERATOR_SEED, seed, _stable_seed(first["group"])])
    n = int(round(clip_seconds * embedded.SAMPLE_RATE))
    return [embedded._synth_clip(profile, chain, period, level_db, n, rng) for _ in range(len(rows))]


def generate(name: str, meta: pd.DataFrame, clip_seconds: float, seed: int, directory: Path) -> None:
    """Write the WAV file of every row of ``meta``, then ``metadata.csv``, into ``directory``."""
    profiles = class_profiles()
    recordings = [rows for _, rows in meta.groupby("group", sort=False)]
    # Each recording has its own generator, so recordings are made on a thread each (numpy's FFTs release the
    # GIL: 6.0 -> 4.4 s for the dev schedule on 2 cores) with the same bytes; files are written in order.
    with embedded.all_or_nothing(name, directory) as written, \
            ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads())) as pool:
        (directory / "audio").mkdir(parents=True, exist_ok=True)
        try:
            made = pool.map(lambda rows: synth_recording(rows, clip_seconds, seed, profiles), recordings)
            for rows, wavs in zip(recordings, made):
                for filename, wav in zip(rows["filename"], wavs):
                    written.append(directory / filename)
                    sf.write(str(written[-1]), wav, embedded.SAMPLE_RATE, subtype="PCM_16")
        finally:  # a failed write stops the recordings not yet made instead of waiting for them
            pool.shutdown(cancel_futures=True)
    ap.atomic_write_text(directory / "metadata.csv", meta.to_csv(index=False))


def _load(name: str, spec: ApsipaLikeSpec | SourceSpec, table: Callable[[], pd.DataFrame], options: ap.DatasetOptions,
          **dataset_fields) -> ap.ClipDataset:
    """A dataset generated on first use (under ``--data-root`` if given); metadata-only callers
    (``require_audio=False``) get the same clip table without waiting for the audio."""
    directory = Path(options.data_root) if options.data_root else embedded.data_dir() / name
    manifest = {"generator_version": GENERATOR_VERSION, "embedded_generator_version": embedded.GENERATOR_VERSION,
                "seed": embedded.GENERATOR_SEED, "spec": asdict(spec), "headroom_db": HEADROOM_DB,
                "real_metadata_sha256": hashlib.sha256(REAL_METADATA.read_bytes()).hexdigest()}
    if options.require_audio:
        embedded.ensure_generated(directory, manifest,
                                  lambda: generate(name, table(), spec.clip_seconds, spec.seed, directory),
                                  user_folder=bool(options.data_root))
        meta = pd.read_csv(directory / "metadata.csv", keep_default_na=False, dtype={"split": str})
    else:
        meta = table()
    return ap.ClipDataset(name=name, root=directory, meta=meta, classes=list(embedded.CLASSES),
                          sample_rate=embedded.SAMPLE_RATE, clip_seconds=spec.clip_seconds, feature_preset="embedded",
                          groupings={"recording": "group", "session": "session"}, **dataset_fields)


def load(options: ap.DatasetOptions) -> ap.ClipDataset:
    return _load(NAME, SPEC, build_metadata, options, split_seed=apsipa2025.SPLIT_SEED,
                 description="synthetic scenes on the APSIPA 2025 dev schedule (its 8 cities, 328 recordings, 31 sessions)")


def load_source(options: ap.DatasetOptions) -> ap.ClipDataset:
    return _load(SOURCE_NAME, SOURCE_SPEC, source_metadata, options,
                 description=f"synthetic scenes, {len(SOURCE_SPEC.cities)} other cities, all labeled")


@ap.hookimpl
def ascbench_datasets() -> list[ap.DatasetSpec]:
    return [
        ap.DatasetSpec(NAME, load,
                       "synthetic scenes on the real APSIPA 2025 dev schedule (cities, times, sessions, classes), "
                       "1,738 clips, 20 % labeled; split by session (no download)",
                       pretrain_source=SOURCE_NAME, synthetic=True, documentation=DOCUMENTATION),
        ap.DatasetSpec(SOURCE_NAME, load_source,
                       "synthetic scenes from 4 other cities, fully labeled: the pretraining source of embedded-apsipa",
                       synthetic=True, documentation=DOCUMENTATION),
    ]
