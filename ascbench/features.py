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

from ascbench.data.audio import CHECKS_VERSION, FileReport, mark_duplicates, read_checked_digest
from ascbench.data.checks import file_problem
from ascbench.data.dataset import ClipDataset
from ascbench.errors import ConfigError, DataError
from ascbench.fileio import (atomic_write_text, cache_root, exclusive_lock, feature_cache_root, files_state_digest,
                             mark_cache_area)

log = logging.getLogger("ascbench")


LOG_SCALES = ("db20", "db10", "ln")  # 20·log10 (amplitude dB), 10·log10 (librosa power_to_db), natural log
MEL_SCALES = ("slaney", "htk")
PAD_MODES = ("reflect", "constant")


@dataclass(frozen=True)
class FeatureConfig:
    """Every setting of a log-mel front-end; two front-ends with equal configs compute equal features.

    The defaults are ascbench's own (embedded) front-end: magnitude mel, Slaney scale and filter
    normalisation, reflect-padded centring, 20·log10. The official front-ends differ in the log
    (``db10`` with ``top_db``: librosa's ``power_to_db``; ``ln`` with an offset: the DCASE baseline), the
    power, the mel scale and the padding.
    """

    sample_rate: int
    n_fft: int
    win_length: int
    hop_length: int
    n_mels: int
    f_min: float
    f_max: float | None = None
    max_frames: int | None = None  # crop to this many frames (the challenge baseline keeps 500)
    power: float = 1.0  # 1: magnitude mel, 2: power mel
    mel_scale: str = "slaney"
    mel_norm: str | None = "slaney"  # filter area normalisation ("slaney") or none
    pad_mode: str = "reflect"  # how a centred STFT pads the clip's ends (librosa >= 0.10: "constant", zeros)
    log: str = "db20"
    top_db: float | None = None  # clip each clip to this many dB below its own maximum (db scales only)
    log_offset: float = 0.0  # ln(x + offset) for the "ln" scale

    def __post_init__(self) -> None:
        for name, value, valid in (("log", self.log, LOG_SCALES), ("mel_scale", self.mel_scale, MEL_SCALES),
                                   ("pad_mode", self.pad_mode, PAD_MODES)):
            if value not in valid:
                raise ConfigError(f"front-end setting {name}={value!r} is not one of {', '.join(valid)}")
        if self.log == "ln" and self.log_offset <= 0:
            raise ConfigError("front-end setting log='ln' needs log_offset > 0 (ln(x + offset); the DCASE baseline uses 1e-5)")

    def n_frames(self, clip_seconds: float) -> int:
        frames = int(round(clip_seconds * self.sample_rate)) // self.hop_length + 1  # centred frames
        return min(frames, self.max_frames) if self.max_frames else frames


def get_preset(name: str) -> FeatureConfig:
    """The settings of the front-end registered as ``name`` (built-ins: plugins/frontends.py)."""
    from ascbench.registry import get_registry

    return get_registry().front_end(name).config


class LogMel(torch.nn.Module):
    """A log-mel front-end as ``cfg`` describes it: waveforms (batch, samples) to (batch, mel bins, frames)."""

    def __init__(self, cfg: FeatureConfig):
        super().__init__()
        self.cfg = cfg
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, win_length=cfg.win_length, hop_length=cfg.hop_length,
            f_min=cfg.f_min, f_max=cfg.f_max, n_mels=cfg.n_mels, power=cfg.power, norm=cfg.mel_norm,
            mel_scale=cfg.mel_scale, pad_mode=cfg.pad_mode,
        )

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        mel = self.mel(waveforms)
        cfg = self.cfg
        if cfg.log == "ln":
            return torch.log(mel + cfg.log_offset)
        # As librosa's power_to_db / amplitude_to_db with ref 1 and amin 1e-10. top_db is applied per clip
        # (torchaudio's AmplitudeToDB would take one maximum over the whole batch) and before any crop.
        db = (20.0 if cfg.log == "db20" else 10.0) * torch.log10(torch.clamp(mel, min=1e-10))
        if cfg.top_db is not None:
            db = torch.maximum(db, db.amax(dim=(-2, -1), keepdim=True) - cfg.top_db)
        return db


def cache_key(dataset: ClipDataset, cfg: FeatureConfig) -> str:
    """Identifies exactly these files (path, size, modification time) under exactly this preset."""
    return files_state_digest(dataset.audio_paths(), _salt(dataset, cfg))


def _salt(dataset: ClipDataset, cfg: FeatureConfig) -> str:
    return json.dumps(asdict(cfg), sort_keys=True) + f"{dataset.sample_rate}|{dataset.clip_seconds}|{FORMAT_VERSION}"


def content_key(dataset: ClipDataset, cfg: FeatureConfig, threads: int | None = None) -> str:
    """Identifies the bytes of every audio file (in dataset order) under this preset."""
    def file_digest(path: Path) -> bytes:
        h = hashlib.sha256()
        problem = file_problem(path)
        if problem is not None:  # never opened: a FIFO would block, /dev/zero never end; the audio checks name it
            h.update(f"unusable: {problem}".encode())
            return h.digest()
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
    return feature_cache_root()


def extract(dataset: ClipDataset, cfg: FeatureConfig, batch_size: int = 8, progress: bool = True,
            threads: int | None = None) -> tuple[np.ndarray, list[FileReport]]:
    """Check every clip of ``dataset`` and compute its log-mel features (no caching).

    Returns the features and one :class:`FileReport` per clip. An unusable file (missing, truncated,
    NaN samples, ...) is not an exception here: its report says why and its row holds the features
    of silence, so the caller decides whether to refuse the dataset or leave the file out. A file with
    the same samples as an earlier one is unusable too (:func:`ascbench.data.audio.mark_duplicates`),
    found here from the digests of the one decoding pass, before any split is made.

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
    digests: list[str | None] = []
    silence = np.zeros(dataset.num_samples, dtype=np.float32)
    bar = tqdm(total=len(paths), desc=f"log-mel {dataset.name}", unit="clip", disable=not progress, leave=False)

    silent_features = None

    def features_of(clips: np.ndarray) -> np.ndarray:
        wave = torch.from_numpy(clips)
        if dataset.sample_rate != cfg.sample_rate:
            wave = torchaudio.functional.resample(wave, dataset.sample_rate, cfg.sample_rate)
        return front_end(wave)[..., :n_frames].numpy()

    def read_batch(start: int) -> list[tuple[np.ndarray | None, str | None, tuple[str, ...], str | None]]:
        return list(pool.map(lambda p: read_checked_digest(p, dataset.sample_rate, dataset.num_samples),
                             paths[start:start + batch_size]))

    starts = list(range(0, len(paths), batch_size))
    with ThreadPoolExecutor(max_workers=threads or torch.get_num_threads()) as pool, \
            ThreadPoolExecutor(max_workers=1) as prefetch, torch.inference_mode():
        pending = prefetch.submit(read_batch, starts[0]) if starts else None
        for i, start in enumerate(starts):
            batch = pending.result()
            pending = prefetch.submit(read_batch, starts[i + 1]) if i + 1 < len(starts) else None
            reports += [FileReport(name, problem, notes)
                        for name, (_, problem, notes, _) in zip(filenames[start:start + batch_size], batch)]
            digests += [digest for *_, digest in batch]
            usable = [k for k, (clip, *_) in enumerate(batch) if clip is not None]
            if len(usable) < len(batch):  # unusable files get silence's features, computed once
                if silent_features is None:
                    silent_features = features_of(silence[None])[0]
                out[start:start + len(batch)] = silent_features
            if usable:
                rows = np.arange(start, start + len(batch))[usable] if len(usable) < len(batch) else slice(start, start + len(batch))
                out[rows] = features_of(np.stack([batch[k][0] for k in usable]))
            bar.update(len(batch))
    bar.close()
    return out, mark_duplicates(reports, digests)


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


def open_cached_array(path: Path) -> np.ndarray:
    """The cached feature array, memory-mapped read-only (read batches with :func:`read_rows`)."""
    return np.load(path, mmap_mode="r")


def read_rows(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``array[rows]`` as a new array. From a memory-mapped cache file the rows are read with ``pread``
    (runs of consecutive rows in one call) instead of through the mapping: every page touched through
    the mapping stays mapped into the process, and the kernel maps whole page-cache folios (up to
    megabytes) around each, so sampling 1,000 of the 8,700 APSIPA clips for the normalisation
    statistics mapped nearly the whole 1.1 GB file (resident file pages 0.27 -> 1.26 GB, measured).
    Read with ``pread`` the file stays in the page cache, shared and reclaimable, and out of the
    process's resident memory.
    """
    rows = np.asarray(rows, dtype=np.int64)
    filename = getattr(array, "filename", None)
    if filename is None or os.path.getsize(filename) != array.offset + array.nbytes or not array.flags.c_contiguous:
        return np.array(array[rows])  # in memory, or a view of part of a file: plain indexing
    out = np.empty((len(rows), *array.shape[1:]), dtype=array.dtype)
    if len(rows) == 0:
        return out
    if rows.min() < -len(array) or rows.max() >= len(array):
        raise IndexError(f"row {rows.max()} out of range for {len(array)} rows")
    rows = np.where(rows < 0, rows + len(array), rows)
    row_bytes = out[0].nbytes
    buffer = memoryview(out.reshape(len(rows), -1)).cast("B")
    # Runs where both the file rows and the output positions advance by one: one read each.
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    fd = os.open(filename, os.O_RDONLY)
    try:
        for start, stop in zip(np.r_[0, breaks], np.r_[breaks, len(rows)]):
            want = (stop - start) * row_bytes
            got = os.preadv(fd, [buffer[start * row_bytes:stop * row_bytes]], array.offset + int(rows[start]) * row_bytes)
            if got != want:
                raise OSError(f"{filename}: short read ({got} of {want} bytes) at row {rows[start]}")
    finally:
        os.close(fd)
    return out


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
        elif "reports" not in index or index.get("checks") != CHECKS_VERSION:
            log.info("feature cache entry %s predates the current audio checks; extracting again", directory)
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
        return open_cached_array(array_path), [remarks.get(f) or FileReport(f, None) for f in index["files"]]
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
            "files": list(dataset.meta["filename"]), "config": asdict(cfg), "content_key": key, "checks": CHECKS_VERSION,
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
        mark_cache_area(root, "$ASCBENCH_FEATURE_DIR (or --cache-dir)")
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
    return CheckedFeatures(open_cached_array(directory / "features.npy"), reports, cached=False)


def unusable_files_error(dataset: ClipDataset, bad: list[FileReport], hint: str) -> DataError:
    """One line naming the first few unusable files of ``dataset``, how many there are, and what to do."""
    listing = "; ".join(f"{r.filename}: {r.problem}" for r in bad[:3])
    return DataError(f"{len(bad)} unusable audio file(s) in {dataset.name} ({listing}{'; ...' if len(bad) > 3 else ''}); "
                     f"`{data_check_command(dataset)}` lists them all{hint}")


def data_check_command(dataset: ClipDataset) -> str:
    """The ``ascbench data check`` command line for ``dataset`` where it was read from, ready to paste."""
    import shlex

    return f"ascbench data check {dataset.name} --data-root {shlex.quote(str(dataset.root))}"


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
