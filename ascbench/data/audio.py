"""Audio reading with soundfile: each file decoded once, checked, and conformed to fixed-length mono float32.

Problems that make a file unusable (it is refused, or skipped with ``--skip-bad``): missing, not a regular
file (a FIFO, a device such as ``/dev/zero``, a socket, or a link to one: refused from ``os.stat`` before
anything is opened, so nothing blocks or reads forever), unreadable, empty, truncated (fewer samples than
its header declares), NaN or infinite samples, samples beyond ``MAX_ABS_SAMPLE`` (see there), and the same
audio samples as an earlier file of the dataset under another name (:func:`mark_duplicates`: a copy
would sit on both sides of a split; ``--skip-bad`` keeps the first). Notes on what is
adapted: another sample rate (resampled), several channels (averaged to mono), a length other than the
declared clip length (zero-padded at the end, or cropped to the first seconds).

Feature extraction reads through :func:`read_checked`, so a run's first pass over the audio both
checks every file and computes its features: a dataset is decoded once, not once to validate and
again to extract.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import soundfile as sf

from ascbench.data.checks import special_kind

log = logging.getLogger("ascbench")
# Decoded samples are full scale at |x| = 1: integer PCM cannot exceed it, and float files exceed it only by
# the headroom of unclipped processing. 16 (+24 dBFS) is far beyond any real over; a file past it holds
# samples on another scale (integer values written as float, or garbage such as 1e30) and would dominate
# every statistic computed over the dataset, so it is refused like NaN.
MAX_ABS_SAMPLE = 16.0
# Bumped whenever the per-file checks change, so that cached reports made by older checks are redone.
CHECKS_VERSION = 2
_resample_reported: set[tuple[int, int]] = set()


@dataclass(frozen=True)
class FileReport:
    filename: str
    problem: str | None  # None: usable
    notes: tuple[str, ...] = ()


def _wav_data_shortfall(path: Path) -> tuple[int, int] | None:
    """(declared, present) bytes of a WAV file's data chunk when the file ends early, else None.

    libsndfile quietly reads what is there, so truncation is only visible in the RIFF header.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        offset = 12
        while offset + 8 <= size:
            f.seek(offset)
            chunk = f.read(8)
            declared = int.from_bytes(chunk[4:8], "little")
            if chunk[:4] == b"data":
                present = size - offset - 8
                return (declared, present) if present < declared else None
            offset += 8 + declared + (declared & 1)
    return None


class Decoded(NamedTuple):
    samples: np.ndarray | None  # mono, at the file's own rate; None when unusable
    rate: int
    problem: str | None
    notes: tuple[str, ...]
    digest: str | None = None  # of the mono samples: equal for the same audio under two names


def _unusable(problem: str) -> Decoded:
    return Decoded(None, 0, problem, ())


def _file_problem(path: Path) -> str | None:
    """Why ``path`` is no audio file, from ``os.stat`` alone (a FIFO would block an open, /dev/zero never end)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "missing (or a broken or looping link)" if path.is_symlink() else "missing"
    except OSError:
        return "missing (or a broken or looping link)"
    kind = special_kind(st.st_mode)
    if kind == "a directory":
        return "not a file but a directory"
    if kind is not None:
        return f"not a regular file but {kind}{' (through a link)' if path.is_symlink() else ''}; nothing was read"
    if st.st_size == 0:
        return "empty file (0 bytes)"
    return None


def _sample_problem(data: np.ndarray) -> str | None:
    """NaN, infinite or absurdly large samples; min and max are two cheap passes, and NaN propagates through both."""
    lo, hi = float(data.min()), float(data.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "NaN or infinite samples"
    peak = max(-lo, hi)
    if peak > MAX_ABS_SAMPLE:
        return (f"samples up to {peak:.3g}, far outside the full scale [-1, 1] (more than {MAX_ABS_SAMPLE:g}); "
                "the file holds values on another scale or garbage")
    return None


def _decode(path: Path, sample_rate: int, num_samples: int) -> Decoded:
    """The file's mono samples at its own rate, with its problem or notes and a digest of its samples."""
    problem = _file_problem(path)
    if problem is not None:
        return _unusable(problem)
    try:
        with sf.SoundFile(str(path)) as f:
            rate, channels, declared_frames = f.samplerate, f.channels, f.frames
            data = f.read(dtype="float32", always_2d=True)
    except Exception as exc:
        return _unusable(f"unreadable: {str(exc).splitlines()[0]}")
    if data.shape[0] == 0:
        return _unusable("no samples")
    shortfall = _wav_data_shortfall(path) if path.suffix.lower() == ".wav" else None
    if shortfall or data.shape[0] < declared_frames:
        declared, present = shortfall or (declared_frames, data.shape[0])
        return _unusable(f"truncated: the header declares {declared} bytes of audio, {present} are present")
    problem = _sample_problem(data)
    if problem is not None:
        return _unusable(problem)
    notes = []
    if rate != sample_rate:
        notes.append(f"sample rate {rate} Hz (resampled to {sample_rate})")
    if channels != 1:
        notes.append(f"{channels} channels (averaged to mono)")
    length = data.shape[0] * sample_rate / rate
    if abs(length - num_samples) > 1:
        notes.append(f"{length / sample_rate:.2f} s long ({'zero-padded' if length < num_samples else 'cropped'} "
                     f"to {num_samples / sample_rate:g} s)")
    mono = np.ascontiguousarray(data[:, 0] if channels == 1 else data.mean(axis=1))
    # The samples, not the file's bytes: a copy with another header or container is the same audio.
    return Decoded(mono, rate, None, tuple(notes), hashlib.sha256(mono).hexdigest())


def read_checked(path: Path, sample_rate: int, num_samples: int) -> tuple[np.ndarray | None, str | None, tuple[str, ...]]:
    """Read ``path`` as mono float32 of exactly ``num_samples`` samples, with its check.

    Returns (clip, problem, notes): the clip is None exactly when ``problem`` says why the file is
    unusable. Multichannel audio is averaged to mono; another sample rate is resampled (said once per
    rate pair); a short clip is zero-padded at the end and a long one cropped to its first samples.
    """
    return _conform(path, _decode(path, sample_rate, num_samples), sample_rate, num_samples)[:3]


def read_checked_digest(path: Path, sample_rate: int, num_samples: int) -> tuple[np.ndarray | None, str | None,
                                                                                tuple[str, ...], str | None]:
    """:func:`read_checked` with the digest of the file's samples (for :func:`mark_duplicates`)."""
    return _conform(path, _decode(path, sample_rate, num_samples), sample_rate, num_samples)


def _conform(path: Path, decoded: Decoded, sample_rate: int, num_samples: int) -> tuple[np.ndarray | None, str | None,
                                                                                       tuple[str, ...], str | None]:
    mono, rate, problem, notes, digest = decoded
    if mono is None:
        return None, problem, notes, None
    if rate != sample_rate:
        import torch
        import torchaudio

        if (rate, sample_rate) not in _resample_reported:
            _resample_reported.add((rate, sample_rate))
            log.warning("resampling audio from %d Hz to %d Hz (first seen in %s)", rate, sample_rate, path)
        mono = torchaudio.functional.resample(torch.from_numpy(np.ascontiguousarray(mono)), rate, sample_rate).numpy()
    if mono.shape[0] >= num_samples:
        return np.ascontiguousarray(mono[:num_samples]), None, notes, digest
    return np.pad(mono, (0, num_samples - mono.shape[0])), None, notes, digest


def inspect_file(path: Path, sample_rate: int, num_samples: int) -> tuple[str | None, tuple[str, ...]]:
    """(problem, notes) of one file, without conforming its samples."""
    return _decode(path, sample_rate, num_samples)[2:4]


def inspect_file_digest(path: Path, sample_rate: int, num_samples: int) -> tuple[str | None, tuple[str, ...], str | None]:
    """:func:`inspect_file` with the digest of the file's samples (for :func:`mark_duplicates`)."""
    return _decode(path, sample_rate, num_samples)[2:]


def mark_duplicates(reports: list[FileReport], digests: Sequence[str | None]) -> list[FileReport]:
    """``reports`` with every file whose samples equal an earlier file's made unusable, naming that file.

    The same audio under two names would be counted twice and could sit on both sides of a split (as
    train and test, or in two cities). The first file of each set is kept, so ``--skip-bad`` leaves one copy.
    """
    first: dict[str, str] = {}
    out = []
    for report, digest in zip(reports, digests):
        if digest is not None and report.problem is None:
            original = first.setdefault(digest, report.filename)
            if original != report.filename:
                report = FileReport(report.filename, f"the same audio samples as {original} (a copy under another "
                                    "name); remove one of them from the data", report.notes)
        out.append(report)
    return out
