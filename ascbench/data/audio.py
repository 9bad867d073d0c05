"""Audio reading with soundfile: one clear error per unusable file, fixed-length mono float32 out."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import soundfile as sf

from ascbench.errors import DataError

log = logging.getLogger("ascbench")
_resample_reported: set[tuple[int, int]] = set()


def read_clip(path: Path, sample_rate: int, num_samples: int) -> np.ndarray:
    """Read ``path`` as mono float32 of exactly ``num_samples`` samples.

    Multichannel audio is averaged to mono; a file at another sample rate is resampled (said once per
    rate pair); then a short clip is zero-padded at the end and a long one cropped to its first
    ``num_samples`` samples.
    """
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise DataError(f"cannot read audio file {path}: {exc}") from exc
    if data.shape[0] == 0:
        raise DataError(f"audio file {path} contains no samples")
    mono = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1)
    if sr != sample_rate:
        import torch
        import torchaudio

        if (sr, sample_rate) not in _resample_reported:
            _resample_reported.add((sr, sample_rate))
            log.warning("resampling audio from %d Hz to %d Hz (first seen in %s)", sr, sample_rate, path)
        mono = torchaudio.functional.resample(torch.from_numpy(np.ascontiguousarray(mono)), sr, sample_rate).numpy()
    # One reduction instead of a boolean array per clip; the full check only when the sum is not finite
    # (a NaN/inf sample, or finite float samples whose sum overflows).
    if not np.isfinite(mono.sum(dtype=np.float64)) and not np.all(np.isfinite(mono)):
        raise DataError(f"audio file {path} contains NaN or infinite samples")
    if mono.shape[0] >= num_samples:
        return np.ascontiguousarray(mono[:num_samples])
    return np.pad(mono, (0, num_samples - mono.shape[0]))
