"""Names a run's config is checked against (periods of the day, untaught-class policies),
in a module that imports nothing: ``ascbench.config`` needs them, and the command line imports the config to
build ``ascbench --help``, which must not wait for numpy and pandas (``ascbench.protocols`` and
``ascbench.data.timefeatures``, which use them, take them from here)."""

from __future__ import annotations

# Period boundaries in hours; each period is [start, end).
PERIODS: tuple[tuple[str, int, int], ...] = (
    ("night", 0, 6),
    ("morning", 6, 12),
    ("afternoon", 12, 18),
    ("evening", 18, 24),
)
PERIOD_NAMES: tuple[str, ...] = tuple(p[0] for p in PERIODS)
UNTAUGHT_POLICIES = ("exclude", "refuse")
