"""Audio reading with soundfile: each file decoded once, checked, and conformed to fixed-length mono float32.

Problems that make a file unusable (it is refused, or skipped with ``--skip-bad``): missing, unreadable,
empty, truncated (fewer samples than its header declares), NaN or infinite samples. Notes on what is
adapted: another sample rate (resampled), several channels (averaged to mono), a length other than the
declared clip length (zero-padded at the end, or cropped to the first seconds).

Feature extraction reads through :func:`read_checked`, so a run's first pass over the audio both
checks every file and computes its features: a dataset is decoded once, not once to validate and
again to extract.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ascbench.errors import DataError

log = logging.getLogger("ascbench")
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


def _decode(path: Path, sample_rate: int, num_samples: int) -> tuple[np.ndarray | None, int, str | None, tuple[str, ...]]:
    """(mono samples at the file's own rate, that rate, problem, notes); samples are None when unusable."""
    if not path.is_file():
        if path.is_dir():
            return None, 0, "not a file but a directory", ()
        return None, 0, "missing (or a broken or looping link)" if path.is_symlink() else "missing", ()
    if path.stat().st_size == 0:
        return None, 0, "empty file (0 bytes)", ()
    try:
        with sf.SoundFile(str(path)) as f:
            rate, channels, declared_frames = f.samplerate, f.channels, f.frames
            data = f.read(dtype="float32", always_2d=True)
    except Exception as exc:
        return None, 0, f"unreadable: {str(exc).splitlines()[0]}", ()
    if data.shape[0] == 0:
        return None, 0, "no samples", ()
    shortfall = _wav_data_shortfall(path) if path.suffix.lower() == ".wav" else None
    if shortfall or data.shape[0] < declared_frames:
        declared, present = shortfall or (declared_frames, data.shape[0])
        return None, 0, f"truncated: the header declares {declared} bytes of audio, {present} are present", ()
    # One reduction instead of a boolean array per clip; the full check only when the sum is not finite
    # (a NaN/inf sample, or finite float samples whose sum overflows).
    if not np.isfinite(data.sum(dtype=np.float64)) and not np.all(np.isfinite(data)):
        return None, 0, "NaN or infinite samples", ()
    notes = []
    if rate != sample_rate:
        notes.append(f"sample rate {rate} Hz (resampled to {sample_rate})")
    if channels != 1:
        notes.append(f"{channels} channels (averaged to mono)")
    length = data.shape[0] * sample_rate / rate
    if abs(length - num_samples) > 1:
        notes.append(f"{length / sample_rate:.2f} s long ({'zero-padded' if length < num_samples else 'cropped'} "
                     f"to {num_samples / sample_rate:g} s)")
    mono = data[:, 0] if channels == 1 else data.mean(axis=1)
    return mono, rate, None, tuple(notes)


def read_checked(path: Path, sample_rate: int, num_samples: int) -> tuple[np.ndarray | None, str | None, tuple[str, ...]]:
    """Read ``path`` as mono float32 of exactly ``num_samples`` samples, with its check.

    Returns (clip, problem, notes): the clip is None exactly when ``problem`` says why the file is
    unusable. Multichannel audio is averaged to mono; another sample rate is resampled (said once per
    rate pair); a short clip is zero-padded at the end and a long one cropped to its first samples.
    """
    mono, rate, problem, notes = _decode(path, sample_rate, num_samples)
    if mono is None:
        return None, problem, notes
    if rate != sample_rate:
        import torch
        import torchaudio

        if (rate, sample_rate) not in _resample_reported:
            _resample_reported.add((rate, sample_rate))
            log.warning("resampling audio from %d Hz to %d Hz (first seen in %s)", rate, sample_rate, path)
        mono = torchaudio.functional.resample(torch.from_numpy(np.ascontiguousarray(mono)), rate, sample_rate).numpy()
    if mono.shape[0] >= num_samples:
        return np.ascontiguousarray(mono[:num_samples]), None, notes
    return np.pad(mono, (0, num_samples - mono.shape[0])), None, notes


def read_clip(path: Path, sample_rate: int, num_samples: int) -> np.ndarray:
    """:func:`read_checked`'s clip; an unusable file is a :class:`DataError` naming it and why."""
    clip, problem, _ = read_checked(path, sample_rate, num_samples)
    if clip is None:
        raise DataError(f"audio file {path} is unusable: {problem}")
    return clip


def inspect_file(path: Path, sample_rate: int, num_samples: int) -> tuple[str | None, tuple[str, ...]]:
    """(problem, notes) of one file, without conforming its samples."""
    return _decode(path, sample_rate, num_samples)[2:]
