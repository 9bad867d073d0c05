"""Turning a recording timestamp into model inputs and protocol groups."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ascbench.vocabulary import PERIOD_NAMES, PERIODS  # noqa: F401 - re-exported

TIME_FEATURE_DIM = 8


def period_of(hours: np.ndarray | pd.Series) -> np.ndarray:
    """Time-of-day period name for each hour (0-23)."""
    hours = np.asarray(hours, dtype=float)
    out = np.full(hours.shape, "unknown", dtype=object)  # no timestamp (e.g. TAU Urban)
    for name, start, end in PERIODS:
        out[(hours >= start) & (hours < end)] = name
    return out


def cyclic_time_features(timestamps: pd.Series) -> np.ndarray:
    """Eight features per timestamp: sin/cos of hour-of-day, weekday and day-of-year, plus night and weekend flags.

    Cyclic encodings keep 23:00 next to 00:00 and December next to January, which a raw number does not.
    """
    ts = pd.to_datetime(timestamps)
    hour = ts.dt.hour.to_numpy() + ts.dt.minute.to_numpy() / 60.0
    weekday = ts.dt.day_of_week.to_numpy().astype(float)
    doy = ts.dt.day_of_year.to_numpy().astype(float) - 1.0
    two_pi = 2.0 * np.pi
    feats = np.stack(
        [
            np.sin(two_pi * hour / 24.0),
            np.cos(two_pi * hour / 24.0),
            np.sin(two_pi * weekday / 7.0),
            np.cos(two_pi * weekday / 7.0),
            np.sin(two_pi * doy / 365.25),
            np.cos(two_pi * doy / 365.25),
            ((hour < 6) | (hour >= 22)).astype(float),
            (weekday >= 5).astype(float),
        ],
        axis=1,
    )
    # Clips without a timestamp get all-zero time features, the model's "time unknown".
    return np.nan_to_num(feats, nan=0.0).astype(np.float32)
