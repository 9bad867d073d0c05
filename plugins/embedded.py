"""The embedded datasets: procedurally synthesised scenes written to disk on first use.

They mirror the APSIPA ASC 2025 structure so that the protocols mean something: ten scene classes,
several cities and recording periods, a few clips cut from each recording, 20 % of the training
clips labeled. The shift is real:

* each **city** has its own recording chain: spectral tilt, three resonances/notches, reverberation, level;
* each **time period** changes the content: event density and background level (quiet nights, busy
  afternoons), and each date drifts the background slightly.

``embedded-source`` has other cities and every clip labeled; it is the pretraining source for
``embedded``, as TAU Urban Acoustic Scenes is for the real challenge. The ``-tiny`` variants exist
for smoke tests.

Generation is deterministic from ``GENERATOR_SEED`` and the spec; the output goes to
``$ASCBENCH_DATA_DIR`` (default ``~/.cache/ascbench/data``) and is reused while its manifest matches.
"""

from __future__ import annotations

import errno
import json
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import soundfile as sf

import ascbench.plugin as ap

CLASSES = [
    "Bus", "Airport", "Metro", "Restaurant", "Shopping mall",
    "Public square", "Urban park", "Traffic street", "Construction site", "Bar",
]
SAMPLE_RATE = 16_000
GENERATOR_VERSION = 3
GENERATOR_SEED = 20250
# The README section that lists what the built-in data plants (linked beside every leaderboard table on it).
DOCUMENTATION = "README.md#what-was-planted-in-the-built-in-data"

TARGET_CITIES = ["Arden", "Belmora", "Corvale", "Dunmere", "Eastwick", "Fairhaven", "Glenrock", "Harrowgate"]
SOURCE_CITIES = ["Ironbridge", "Juniper", "Kestrel", "Lowfield"]

# Per period: (event-rate multiplier, background gain in dB).
PERIOD_CONTENT = {"night": (0.1, -12.0), "morning": (1.0, 0.0), "afternoon": (1.8, 3.0), "evening": (0.5, -5.0)}


@dataclass(frozen=True)
class EmbeddedSpec:
    cities: tuple[str, ...]
    recordings_per_cell: int  # recordings per (city, class, period)
    clips_per_recording: int
    clip_seconds: float
    labeled_fraction: float  # of all clips, per class; every clip keeps its true label for scoring
    test_fraction: float  # of recordings, the dataset's own "official" split
    seed: int


SPECS = {
    "embedded": EmbeddedSpec(tuple(TARGET_CITIES), 1, 3, 2.0, 0.2, 0.25, 1),
    "embedded-source": EmbeddedSpec(tuple(SOURCE_CITIES), 1, 3, 2.0, 1.0, 0.0, 2),
    "embedded-tiny": EmbeddedSpec(tuple(TARGET_CITIES[:6]), 1, 1, 1.0, 0.5, 0.25, 3),
    "embedded-tiny-source": EmbeddedSpec(tuple(SOURCE_CITIES[:2]), 1, 1, 1.0, 1.0, 0.0, 4),
}


# --- the world: classes and cities as fixed random draws --------------------------------------------

def _class_profiles(rng: np.random.Generator) -> list[dict]:
    """Each class: a background spectral envelope (bumps on a log-frequency axis) and two event types."""
    profiles = []
    for _ in CLASSES:
        bumps = [(rng.uniform(np.log2(60), np.log2(7000)), rng.uniform(0.4, 1.5), rng.uniform(6, 18)) for _ in range(3)]
        events = []
        for _ in range(2):
            events.append(
                {
                    "kind": rng.choice(["tone", "chirp", "click", "burst"]),
                    "freq": float(2 ** rng.uniform(np.log2(150), np.log2(6000))),
                    "dur": float(rng.uniform(0.03, 0.35)),
                    "rate": float(rng.uniform(0.8, 4.0)),  # events per second at the reference density
                    "gain_db": float(rng.uniform(-6, 4)),
                }
            )
        profiles.append({"bumps": bumps, "slope": float(rng.uniform(-4, 1)), "events": events})
    return profiles


def _city_chain(name: str) -> dict:
    rng = np.random.default_rng([GENERATOR_SEED, sum(map(ord, name)), len(name)])
    return {
        "tilt_db_per_oct": float(rng.uniform(-8.0, 8.0)),
        "resonances": [
            (float(2 ** rng.uniform(np.log2(200), np.log2(6000))), float(rng.uniform(0.2, 0.6)), float(rng.choice([-1, 1]) * rng.uniform(8, 20)))
            for _ in range(3)
        ],
        "rt60": float(rng.uniform(0.05, 0.9)),
        "gain_db": float(rng.uniform(-12, 6)),
    }


def _db_envelope(freqs: np.ndarray, bumps, slope_db_per_oct: float) -> np.ndarray:
    logf = np.log2(np.maximum(freqs, 20.0))
    env = slope_db_per_oct * (logf - np.log2(1000.0))
    for centre, width, height in bumps:
        env = env + height * np.exp(-0.5 * ((logf - centre) / width) ** 2)
    return env


# --- one clip -----------------------------------------------------------------------------------------

def _event(kind: str, freq: float, n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    window = np.hanning(n)
    if kind == "tone":
        sig = np.sin(2 * np.pi * freq * t) + 0.4 * np.sin(4 * np.pi * freq * t)
    elif kind == "chirp":
        f = freq * (1 + 0.8 * t / max(t[-1], 1e-3))
        sig = np.sin(2 * np.pi * np.cumsum(f) / SAMPLE_RATE)
    elif kind == "click":
        sig = rng.standard_normal(n) * np.exp(-t * 60.0)
        window = np.ones(n)
    else:  # band-limited noise burst around freq
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
        spec *= np.exp(-0.5 * (np.log2(np.maximum(f, 1) / freq) / 0.5) ** 2)
        sig = np.fft.irfft(spec, n)
        sig /= np.abs(sig).max() + 1e-9
    return sig * window


def _synth_clip(profile: dict, chain: dict, period: str, date_drift_db: float, n: int, rng: np.random.Generator) -> np.ndarray:
    rate_mult, bg_db = PERIOD_CONTENT[period]
    nfft = 1 << (n - 1).bit_length()
    freqs = np.fft.rfftfreq(nfft, 1 / SAMPLE_RATE)

    # Background bed: coloured noise with the class envelope, jittered per clip.
    jitter = [(c + rng.normal(0, 0.15), w, h + rng.normal(0, 2)) for c, w, h in profile["bumps"]]
    bed_db = _db_envelope(freqs, jitter, profile["slope"])
    bed = np.fft.irfft(np.fft.rfft(rng.standard_normal(nfft)) * 10 ** (bed_db / 20), nfft)[:n]
    bed *= 10 ** ((bg_db + date_drift_db) / 20) / (np.std(bed) + 1e-9) * 0.05

    # Recurring events: Poisson arrivals whose density depends on the period.
    x = bed
    for ev in profile["events"]:
        count = rng.poisson(ev["rate"] * rate_mult * n / SAMPLE_RATE)
        length = max(16, int(ev["dur"] * SAMPLE_RATE))
        for _ in range(count):
            start = int(rng.integers(0, max(1, n - length)))
            seg = _event(ev["kind"], ev["freq"] * rng.uniform(0.9, 1.1), min(length, n - start), rng)
            x[start:start + seg.size] += seg * 0.08 * 10 ** ((ev["gain_db"] + rng.normal(0, 3)) / 20)

    # The city's recording chain: tilt and resonances, room reverberation, level.
    chain_db = _db_envelope(freqs, [(np.log2(f), w, g) for f, w, g in chain["resonances"]], chain["tilt_db_per_oct"])
    ir_len = int(chain["rt60"] * SAMPLE_RATE)
    ir = np.zeros(nfft)
    ir[0] = 1.0
    if ir_len > 1:
        tail = rng.standard_normal(ir_len - 1) * np.exp(-6.9 * np.arange(1, ir_len) / ir_len) * 0.3
        ir[1:ir_len] = tail[: nfft - 1]
    y = np.fft.irfft(np.fft.rfft(x, nfft) * np.fft.rfft(ir) * 10 ** (chain_db / 20), nfft)[:n]
    y *= 10 ** (chain["gain_db"] / 20)
    return np.clip(y, -0.99, 0.99).astype(np.float32)


# --- the dataset on disk ------------------------------------------------------------------------------

def _period_time(period: str, rng: np.random.Generator, day: pd.Timestamp) -> pd.Timestamp:
    start, end = next((s, e) for name, s, e in ap.PERIODS if name == period)
    seconds = int(rng.integers(start * 3600, end * 3600))
    return day + pd.Timedelta(seconds=seconds)


def _write_clips(spec: EmbeddedSpec, directory: Path, profiles: list[dict], rng: np.random.Generator, n: int,
                 days: pd.DatetimeIndex, rows: list[tuple], written: list[Path]) -> None:
    """Synthesise and write every clip, appending its metadata row and its path as it goes."""
    for city in spec.cities:
        chain = _city_chain(city)
        for label_idx, label in enumerate(CLASSES):
            for period, *_ in ap.PERIODS:
                for _ in range(spec.recordings_per_cell):
                    day = days[int(rng.integers(len(days)))]
                    stamp = _period_time(period, rng, day)
                    drift = float(np.sin(2 * np.pi * day.day_of_year / 365.0) * 3.0)
                    group = f"{city}-{stamp:%Y%m%d%H%M%S}-{label_idx}"
                    for clip in range(spec.clips_per_recording):
                        wav = _synth_clip(profiles[label_idx], chain, period, drift, n, rng)
                        filename = f"audio/{group}-{clip}.wav"
                        written.append(directory / filename)
                        sf.write(str(written[-1]), wav, SAMPLE_RATE, subtype="PCM_16")
                        rows.append((filename, label, city, stamp.strftime("%Y-%m-%d %H:%M:%S"), group))


@contextmanager
def all_or_nothing(name: str, directory: Path) -> Iterator[list[Path]]:
    """A list for the block to append each file it writes to. If the block fails or is interrupted (Ctrl-C), the
    files written so far are removed; a failed write becomes one DataError naming the dataset, the path and what
    to do."""
    written: list[Path] = []
    try:
        yield written
    except BaseException as exc:
        _remove_written(written)  # a full disk, or an interrupted run, must not stay full of half a dataset
        if isinstance(exc, (OSError, sf.LibsndfileError)):
            raise ap.DataError(_write_failure(name, directory, written[-1] if written else directory, exc)) from None
        raise


def _remove_written(written: list[Path]) -> None:
    for path in written:
        try:
            if path.is_file() and not path.is_symlink():  # a folder or link in the way is not ours to remove
                path.unlink()
        except OSError:
            pass


def _write_failure(name: str, directory: Path, path: Path, exc: BaseException) -> str:
    reason = getattr(exc, "strerror", None) or str(exc)
    errno_ = getattr(exc, "errno", None)
    if errno_ in (errno.ENOSPC, errno.EDQUOT):
        fix = "free some space there, or point ASCBENCH_DATA_DIR (or --data-root) at a folder with room"
    elif os.path.lexists(path) and not path.is_file() or path.is_symlink():
        fix = "a folder or link is in the way there; remove it, or point --data-root elsewhere"
    else:
        fix = "point ASCBENCH_DATA_DIR (or --cache-dir, or --data-root) at a writable folder"
    where = "" if str(path) in reason else f" (at {path})"
    return f"cannot write the {name} dataset to {directory}: {reason}{where}; {fix}; nothing was left behind"


def generate(name: str, spec: EmbeddedSpec, directory: Path) -> pd.DataFrame:
    """Write the WAV files and ``metadata.csv`` of one embedded dataset into ``directory``."""
    profiles = _class_profiles(np.random.default_rng(GENERATOR_SEED))
    rng = np.random.default_rng([GENERATOR_SEED, spec.seed])
    n = int(round(spec.clip_seconds * SAMPLE_RATE))
    days = pd.date_range("2023-04-21", "2023-08-28", freq="D")
    rows: list[tuple] = []
    with all_or_nothing(name, directory) as written:
        (directory / "audio").mkdir(parents=True, exist_ok=True)
        _write_clips(spec, directory, profiles, rng, n, days, rows, written)
    meta = pd.DataFrame(rows, columns=["filename", "scene_label", "city", "timestamp", "group"])

    # The dataset's own split is by recording, so that no recording straddles train and test.
    groups = meta["group"].unique()
    test_groups = set(rng.choice(groups, size=int(round(spec.test_fraction * len(groups))), replace=False))
    meta["split"] = np.where(meta["group"].isin(test_groups), "test", "train")
    # As in the challenge, a fraction of all clips carries a visible label; the rest are the unlabeled
    # pool. The truth is kept for every clip, so evaluation and pseudo-label accuracy can use it.
    meta["labeled"] = False
    for _, idx in meta.groupby("scene_label").groups.items():
        idx = np.asarray(idx)
        keep = rng.choice(idx, size=max(1, int(round(spec.labeled_fraction * len(idx)))), replace=False)
        meta.loc[keep, "labeled"] = True
    ap.atomic_write_text(directory / "metadata.csv", meta.to_csv(index=False))
    return meta


def data_dir() -> Path:
    return ap.data_cache_root()


def ensure_generated(directory: Path, manifest: dict, build: Callable[[], object], user_folder: bool = False) -> None:
    """Run ``build`` (which writes ``directory``'s files and ``metadata.csv``) unless the manifest stored there
    equals ``manifest``; under a lock, so that concurrent runs generate once and never read half a dataset.
    ``user_folder``: the user named ``directory`` (``--data-root``), so it is written only if new, empty or
    generated before by this dataset's generator."""
    directory = Path(os.path.abspath(directory))  # "data/audio/.." names the lock after "data", not ".."
    # Round-trip through JSON so the comparison with the stored manifest is like for like.
    manifest = json.loads(json.dumps(manifest))
    manifest_path = directory / "manifest.json"
    for path in (directory / "metadata.csv", manifest_path):
        if ap.anything_at(path):
            # A dangling link, a directory or a FIFO there is the user's to fix: regenerating would silently
            # replace it, and reading a FIFO would block.
            ap.readable_file(path, "metadata file" if path.suffix == ".csv" else "manifest")

    def up_to_date() -> bool:
        return ap.generated_dataset_manifest(manifest_path) == manifest and (directory / "metadata.csv").exists()

    if user_folder:
        _refuse_foreign_folder(directory, manifest_path, manifest)
    if not up_to_date():
        try:
            if not user_folder:  # generated into the cache: tag its root, so no later --output lands in it
                ap.mark_cache_area(directory.parent, "$ASCBENCH_DATA_DIR (or --cache-dir)")
            with ap.exclusive_lock(directory.parent / f".{directory.name}.lock"):
                if not up_to_date():  # another process may have generated it while we waited
                    # A provisional manifest first: a generation cut short (a kill, a crash) leaves a folder known
                    # as this generator's, which the next run regenerates instead of refusing as someone else's.
                    directory.mkdir(parents=True, exist_ok=True)
                    ap.atomic_write_text(manifest_path, json.dumps({**manifest, "complete": False}, indent=2,
                                                                   sort_keys=True))
                    build()
                    # The manifest goes last: an interrupted generation is redone, never half-used.
                    ap.atomic_write_text(manifest_path, json.dumps(manifest, indent=2, sort_keys=True))
        except OSError as exc:  # a data root under a file, or read-only: the folder and the fix, not a traceback
            reason = f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else str(exc)
            raise ap.DataError(f"cannot generate the dataset in {directory}: {reason}; point --data-root "
                               "(or ASCBENCH_DATA_DIR) at a writable folder") from None


def _refuse_foreign_folder(directory: Path, manifest_path: Path, manifest: dict) -> None:
    """Generate only into a folder that is new, empty, or one this dataset's generator wrote (its manifest, maybe
    provisional, for the same dataset): a --data-root holding someone's files, another dataset, a run or a
    published board is refused, never written over, and so is a folder inside any of those."""
    kept = (ap.guarded_area(directory / "metadata.csv", allow=("cache", "dataset"))
            or ap.guarded_area(directory, allow=("cache",)))
    if kept:
        raise ap.DataError(f"--data-root {directory} is inside {kept}; a generated dataset is never written there. "
                           "Pass an empty or new folder (or none: the cache is used)")
    if not directory.is_dir():
        return
    foreign = sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))
    if not foreign:
        return
    stored = ap.generated_dataset_manifest(manifest_path)
    if stored is None:
        what = ("a manifest.json that is not ascbench's" if manifest_path.exists()
                else f"files ascbench did not generate ({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}; "
                     "no manifest.json)")
        raise ap.DataError(f"--data-root {directory} holds {what}: it is never written over. Pass an empty or new "
                           "folder (if ascbench generated this one and its manifest was damaged, delete the folder to "
                           "generate it again)")
    if stored.get("spec") != manifest.get("spec"):
        raise ap.DataError(f"--data-root {directory} holds another generated dataset (its manifest.json describes "
                           "another one): it is never written over. Pass an empty or new folder for this one")


def load_embedded(name: str, options: ap.DatasetOptions) -> ap.ClipDataset:
    spec = SPECS[name]
    directory = Path(options.data_root) if options.data_root else data_dir() / name
    manifest = {"generator_version": GENERATOR_VERSION, "seed": GENERATOR_SEED, "spec": asdict(spec)}
    ensure_generated(directory, manifest, lambda: generate(name, spec, directory), user_folder=bool(options.data_root))
    meta = pd.read_csv(directory / "metadata.csv", keep_default_na=False)
    return ap.ClipDataset(
        name=name,
        root=directory,
        meta=meta,
        classes=list(CLASSES),
        sample_rate=SAMPLE_RATE,
        clip_seconds=spec.clip_seconds,
        feature_preset="embedded",
        description=f"synthetic scenes, {len(spec.cities)} cities",
        source=ap.MetadataSource(directory / "metadata.csv"),
    )


@ap.hookimpl
def ascbench_datasets() -> list[ap.DatasetSpec]:
    def loader(name: str):
        return lambda options: load_embedded(name, options)

    return [
        ap.DatasetSpec("embedded", loader("embedded"),
                       "synthetic city/time-shifted scenes, 8 cities, every class in every city and period, "
                       "20 % labeled (no download)",
                       pretrain_source="embedded-source", synthetic=True, documentation=DOCUMENTATION),
        ap.DatasetSpec("embedded-source", loader("embedded-source"),
                       "synthetic scenes from 4 other cities, fully labeled: the pretraining source", synthetic=True,
                       documentation=DOCUMENTATION),
        ap.DatasetSpec("embedded-tiny", loader("embedded-tiny"),
                       "a very small embedded dataset for smoke tests", pretrain_source="embedded-tiny-source",
                       synthetic=True, documentation=DOCUMENTATION),
        ap.DatasetSpec("embedded-tiny-source", loader("embedded-tiny-source"),
                       "pretraining source for embedded-tiny", synthetic=True, documentation=DOCUMENTATION),
    ]
