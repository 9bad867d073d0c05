"""Audio reading with soundfile: one clear error per unusable file, fixed-length mono float32 out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from ascbench.errors import DataError


def read_clip(path: Path, sample_rate: int, num_samples: int) -> np.ndarray:
    """Read ``path`` as mono float32 of exactly ``num_samples`` samples.

    Multichannel audio is averaged to mono; a short clip is zero-padded at the end and a long one
    cropped to its first ``num_samples`` samples. A different sample rate is an error here: resampling
    belongs to the feature front-end, which knows the preset's rate.
    """
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise DataError(f"cannot read audio file {path}: {exc}") from exc
    if data.shape[0] == 0:
        raise DataError(f"audio file {path} contains no samples")
    if sr != sample_rate:
        raise DataError(f"audio file {path} has sample rate {sr} Hz, expected {sample_rate} Hz")
    mono = data.mean(axis=1)
    if not np.all(np.isfinite(mono)):
        raise DataError(f"audio file {path} contains NaN or infinite samples")
    if mono.shape[0] >= num_samples:
        return np.ascontiguousarray(mono[:num_samples])
    return np.pad(mono, (0, num_samples - mono.shape[0]))
