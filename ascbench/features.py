"""Log-mel features with torchaudio, extracted in parallel batches and cached on disk once per dataset and preset.

A cache entry is one ``.npy`` array (clips x mel bins x frames) plus ``index.json``, opened
memory-mapped, so a warm epoch is a slice rather than thousands of file opens. Entries are keyed by
the *content* of the audio files and the preset: a touched or copied file with the same bytes
reuses its entry, a changed one re-extracts. Hashing every audio file on every run would cost a
read of the whole dataset, so a small memo maps the files' paths, sizes and modification times to
their content key; only a change of those re-hashes. Each entry records the digest of its array,
checked whenever it is opened: a truncated or corrupted entry is rebuilt, never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torchaudio
from tqdm.auto import tqdm

from ascbench.data.audio import FileReport, read_checked
from ascbench.data.dataset import ClipDataset
from ascbench.errors import ConfigError, DataError
from ascbench.fileio import atomic_write_text, cache_root, exclusive_lock, files_state_digest

log = logging.getLogger("ascbench")


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int
    n_fft: int
    win_length: int
    hop_length: int
    n_mels: int
    f_min: float
    f_max: float | None = None
    max_frames: int | None = None  # crop to this many frames (the challenge baseline keeps 500)

    def n_frames(self, clip_seconds: float) -> int:
        frames = int(round(clip_seconds * self.sample_rate)) // self.hop_length + 1  # centred frames
        return min(frames, self.max_frames) if self.max_frames else frames


PRESETS: dict[str, FeatureConfig] = {
    # The embedded datasets: 16 kHz, 50 ms windows, 20 ms hop.
    "embedded": FeatureConfig(16_000, 1024, 800, 320, 64, 50.0, 8000.0),
    # APSIPA ASC 2025 baseline and MobileASCNet paper: 500 frames per 10 s clip.
    "apsipa2025": FeatureConfig(44_100, 2048, 1764, 882, 64, 50.0, None, max_frames=500),
    # DCASE Task 1 baseline.
    "dcase": FeatureConfig(32_000, 4096, 3072, 500, 256, 0.0, None),
}


def get_preset(name: str) -> FeatureConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown feature preset {name!r}; valid presets: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


class LogMel(torch.nn.Module):
    """Magnitude mel spectrogram (Hann window, Slaney mel scale and norm) in dB."""

    def __init__(self, cfg: FeatureConfig):
        super().__init__()
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, win_length=cfg.win_length, hop_length=cfg.hop_length,
            f_min=cfg.f_min, f_max=cfg.f_max, n_mels=cfg.n_mels, power=1.0, norm="slaney", mel_scale="slaney",
        )
        self.to_db = torchaudio.transforms.AmplitudeToDB(stype="magnitude", top_db=None)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        return self.to_db(self.mel(waveforms))


def cache_key(dataset: ClipDataset, cfg: FeatureConfig) -> str:
    """Identifies exactly these files (path, size, modification time) under exactly this preset."""
    return files_state_digest(dataset.audio_paths(), _salt(dataset, cfg))


def _salt(dataset: ClipDataset, cfg: FeatureConfig) -> str:
    return json.dumps(asdict(cfg), sort_keys=True) + f"{dataset.sample_rate}|{dataset.clip_seconds}|{FORMAT_VERSION}"


def content_key(dataset: ClipDataset, cfg: FeatureConfig, threads: int | None = None) -> str:
    """Identifies the bytes of every audio file (in dataset order) under this preset."""
    def file_digest(path: Path) -> bytes:
        h = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                while chunk := f.read(1 << 22):
                    h.update(chunk)
        except OSError as exc:  # missing, a directory, a link loop: the audio checks name it; the key only needs to differ
            h.update(f"unreadable {exc.errno}".encode())
        return h.digest()

    h = hashlib.sha256(_salt(dataset, cfg).encode())
    with ThreadPoolExecutor(max_workers=threads or torch.get_num_threads()) as pool:  # hashlib releases the GIL
        for name, digest in zip(dataset.meta["filename"], pool.map(file_digest, dataset.audio_paths())):
            h.update(name.encode() + b"\0" + digest)
    return h.hexdigest()[:24]


FORMAT_VERSION = 2


def _memo(dataset: ClipDataset, cfg: FeatureConfig) -> Path:
    return features_dir() / "by-file-state" / f"{dataset.name}-{cache_key(dataset, cfg)}"


def audio_content_key(dataset: ClipDataset, cfg: FeatureConfig, threads: int | None = None) -> str:
    """:func:`content_key`, hashed only when the files' paths, sizes or modification times changed."""
    memo = _memo(dataset, cfg)
    key = _memo_key(memo)
    if key is None:
        key = content_key(dataset, cfg, threads)
        atomic_write_text(memo, key)
    return key


def _memo_key(memo: Path) -> str | None:
    """The content key a memo holds, or None. The key names a cache folder, so anything but a hex
    digest (a damaged or planted memo, say "../../elsewhere") is not trusted."""
    try:
        key = memo.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return key if re.fullmatch(r"[0-9a-f]{24}", key) else None


def features_dir() -> Path:
    return Path(os.environ.get("ASCBENCH_FEATURE_DIR") or cache_root() / "features")


def extract(dataset: ClipDataset, cfg: FeatureConfig, batch_size: int = 8, progress: bool = True,
            threads: int | None = None) -> tuple[np.ndarray, list[FileReport]]:
    """Check every clip of ``dataset`` and compute its log-mel features (no caching).

    Returns the features and one :class:`FileReport` per clip. An unusable file (missing, truncated,
    NaN samples, ...) is not an exception here: its report says why and its row holds the features
    of silence, so the caller decides whether to refuse the dataset or leave the file out.

    Files are decoded by a thread pool (libsndfile releases the GIL) one batch ahead of the batched
    mel computation, which uses torch's own intra-op threads. Small batches let decoding overlap the
    mel computation and keep each STFT batch in cache: on 2 cores, 8 ten-second clips per batch ran
    1.2x faster than 64 (benchmarks/test_features_bench.py); the features are identical either way.
    """
    front_end = LogMel(cfg)
    paths = dataset.audio_paths()
    filenames = list(dataset.meta["filename"])
    n_frames = cfg.n_frames(dataset.clip_seconds)
    out = np.empty((len(paths), cfg.n_mels, n_frames), dtype=np.float32)
    reports: list[FileReport] = []
    silence = np.zeros(dataset.num_samples, dtype=np.float32)
    bar = tqdm(total=len(paths), desc=f"log-mel {dataset.name}", unit="clip", disable=not progress, leave=False)

    silent_features = None

    def features_of(clips: np.ndarray) -> np.ndarray:
        wave = torch.from_numpy(clips)
        if dataset.sample_rate != cfg.sample_rate:
            wave = torchaudio.functional.resample(wave, dataset.sample_rate, cfg.sample_rate)
        return front_end(wave)[..., :n_frames].numpy()

    def read_batch(start: int) -> list[tuple[np.ndarray | None, str | None, tuple[str, ...]]]:
        return list(pool.map(lambda p: read_checked(p, dataset.sample_rate, dataset.num_samples),
                             paths[start:start + batch_size]))

    starts = list(range(0, len(paths), batch_size))
    with ThreadPoolExecutor(max_workers=threads or torch.get_num_threads()) as pool, \
            ThreadPoolExecutor(max_workers=1) as prefetch, torch.inference_mode():
        pending = prefetch.submit(read_batch, starts[0]) if starts else None
        for i, start in enumerate(starts):
            batch = pending.result()
            pending = prefetch.submit(read_batch, starts[i + 1]) if i + 1 < len(starts) else None
            reports += [FileReport(name, problem, notes)
                        for name, (_, problem, notes) in zip(filenames[start:start + batch_size], batch)]
            usable = [k for k, (clip, _, _) in enumerate(batch) if clip is not None]
            if len(usable) < len(batch):  # unusable files get silence's features, computed once
                if silent_features is None:
                    silent_features = features_of(silence[None])[0]
                out[start:start + len(batch)] = silent_features
            if usable:
                rows = np.arange(start, start + len(batch))[usable] if len(usable) < len(batch) else slice(start, start + len(batch))
                out[rows] = features_of(np.stack([batch[k][0] for k in usable]))
            bar.update(len(batch))
    bar.close()
    return out, reports


def _array_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


class CheckedFeatures(NamedTuple):
    features: np.ndarray  # clips x mel bins x frames, memory-mapped; an unusable clip's row is silence
    reports: list[FileReport]  # one per clip, in dataset order
    cached: bool  # True when nothing was extracted


def _open_entry(directory: Path, dataset: ClipDataset) -> tuple[np.ndarray, list[FileReport]] | None:
    """The entry's array and file reports if it is complete and intact; None if absent. A damaged entry is removed."""
    array_path, index_path = directory / "features.npy", directory / "index.json"
    if not index_path.exists():  # the index is written last: without it the entry is incomplete
        return None
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        problem = None
        if index.get("files") != list(dataset.meta["filename"]):
            problem = "it lists other files"
        elif "reports" not in index:
            log.info("feature cache entry %s predates the cached audio checks; extracting again", directory)
            shutil.rmtree(directory, ignore_errors=True)
            return None
        elif array_path.stat().st_size != index["bytes"]:
            problem = f"features.npy has {array_path.stat().st_size} bytes, the index says {index['bytes']}"
        elif _array_digest(array_path) != index["sha256"]:
            problem = "features.npy does not match its recorded digest"
        else:
            remarks = {r["filename"]: FileReport(r["filename"], r["problem"], tuple(r["notes"])) for r in index["reports"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
    if problem is None:
        return np.load(array_path, mmap_mode="r"), [remarks.get(f) or FileReport(f, None) for f in index["files"]]
    log.warning("feature cache entry %s is damaged (%s); extracting again", directory, problem)
    shutil.rmtree(directory, ignore_errors=True)
    return None


def _write_entry(directory: Path, dataset: ClipDataset, cfg: FeatureConfig, feats: np.ndarray,
                 reports: list[FileReport], key: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".features.{os.getpid()}.npy"
    try:
        np.save(tmp, feats)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, directory / "features.npy")
        # The index is written last and marks the entry complete. Only files with something to say
        # are listed, so the index of a clean dataset stays small.
        atomic_write_text(directory / "index.json", json.dumps({
            "files": list(dataset.meta["filename"]), "config": asdict(cfg), "content_key": key,
            "shape": list(feats.shape), "bytes": (directory / "features.npy").stat().st_size,
            "sha256": _array_digest(directory / "features.npy"),
            "reports": [asdict(r) for r in reports if r.problem or r.notes]}))
    except BaseException:
        tmp.unlink(missing_ok=True)
        shutil.rmtree(directory, ignore_errors=True)
        raise


def load_checked_features(dataset: ClipDataset, cfg: FeatureConfig, progress: bool = True,
                          threads: int | None = None) -> CheckedFeatures:
    """Features and audio checks for every clip of ``dataset``, from the cache or extracted on a miss.

    The checks come from the same decoding pass as the features and are cached with them, so a
    dataset's audio is read once, whatever the later runs. A cache that cannot be written (full
    disk, read-only directory) is a :class:`DataError` naming the directory; nothing half-written is
    left in it.
    """
    root = features_dir()
    known = _memo_key(_memo(dataset, cfg))
    if known is not None:
        found = _open_entry(root / f"{dataset.name}-{known}", dataset)
        if found is not None:
            return CheckedFeatures(*found, cached=True)
    try:
        with exclusive_lock(root / f".{dataset.name}.lock"):
            key = audio_content_key(dataset, cfg, threads)
            directory = root / f"{dataset.name}-{key}"
            found = _open_entry(directory, dataset)  # same bytes under a new file state, or filled while we waited
            if found is not None:
                return CheckedFeatures(*found, cached=True)
            feats, reports = extract(dataset, cfg, progress=progress, threads=threads)
            _write_entry(directory, dataset, cfg, feats, reports, key)
    except OSError as exc:
        raise DataError(f"cannot write the feature cache in {root}: {exc.strerror or exc}; free some space or point "
                        f"$ASCBENCH_CACHE_DIR (or --cache-dir) at a writable directory") from exc
    return CheckedFeatures(np.load(directory / "features.npy", mmap_mode="r"), reports, cached=False)


def unusable_files_error(dataset: ClipDataset, bad: list[FileReport], hint: str) -> DataError:
    """One line naming the first few unusable files of ``dataset``, how many there are, and what to do."""
    listing = "; ".join(f"{r.filename}: {r.problem}" for r in bad[:3])
    return DataError(f"{len(bad)} unusable audio file(s) in {dataset.name} ({listing}{'; ...' if len(bad) > 3 else ''}); "
                     f"`ascbench data check {dataset.name}` lists them all{hint}")


def load_features(dataset: ClipDataset, cfg: FeatureConfig, progress: bool = True,
                  threads: int | None = None) -> tuple[np.ndarray, bool]:
    """:func:`load_checked_features` for a dataset that must be usable whole: (features, cached).

    An unusable file is a :class:`DataError` listing it (a pretraining source, for instance, has no
    ``--skip-bad``).
    """
    feats, reports, cached = load_checked_features(dataset, cfg, progress, threads)
    bad = [r for r in reports if r.problem]
    if bad:
        raise unusable_files_error(dataset, bad, "")
    return feats, cached
