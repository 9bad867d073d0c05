"""Confidence intervals and paired tests for leaderboard rows, from the runs' per-clip predictions.

A row's score varies with the seed (initialisation, batching) and with which recordings happen to be in the
test side. Its 95 % interval is a two-level bootstrap: seeds drawn with replacement, then, within each drawn
seed, the test recordings drawn with replacement (clips of one recording move together: they are not
independent), macro accuracy recomputed each time. Runs stored before per-clip predictions were recorded have
only a confusion matrix; their clips are resampled one by one, which understates the interval when a
recording holds several clips.

Two rows are compared by a paired randomisation test on the same seeds and the same test clips: under the
null hypothesis the two systems are exchangeable, so swapping their predictions for a whole recording (of one
seed) is as likely as not. The macro-accuracy difference is a sum of one term per (seed, recording), so each
random swap flips the sign of that term. With micro accuracy and one clip per recording this is McNemar's
exact test (the tests check it against scipy's binomial test).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class RunPredictions:
    """One run's predictions on its test clips: dataset row, recording group, truth and predicted class."""

    seed: int
    rows: np.ndarray
    groups: np.ndarray
    true: np.ndarray
    predicted: np.ndarray
    per_clip: bool = True  # False: rebuilt from a confusion matrix (rows and groups are positions only)

    @classmethod
    def from_metrics(cls, seed: int, metrics: dict) -> "RunPredictions | None":
        """From a run's metrics: its ``test_predictions``, else its confusion matrix; None when unscored."""
        stored = metrics.get("test_predictions")
        if stored:
            return cls(seed, np.asarray(stored["row"]), np.asarray(stored["group"], dtype=str),
                       np.asarray(stored["true"]), np.asarray(stored["predicted"]))
        matrix = np.asarray(metrics.get("confusion_matrix") or [], dtype=np.int64)
        if matrix.size == 0 or matrix.sum() == 0:
            return None
        true, predicted = np.nonzero(matrix)
        counts = matrix[true, predicted]
        true, predicted = np.repeat(true, counts), np.repeat(predicted, counts)
        positions = np.arange(len(true))
        return cls(seed, positions, positions.astype(str), true, predicted, per_clip=False)


def _group_counts(run: RunPredictions, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(correct, total): per recording group and class, how many clips were right and how many there are."""
    _, group = np.unique(run.groups, return_inverse=True)
    correct = np.zeros((group.max() + 1, num_classes))
    total = np.zeros_like(correct)
    np.add.at(total, (group, run.true), 1)
    np.add.at(correct, (group, run.true), run.predicted == run.true)
    return correct, total


def _macro(correct: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Macro accuracy of each row of per-class counts (classes without clips left out)."""
    present = total > 0
    share = np.divide(correct, total, out=np.zeros_like(correct), where=present)
    return share.sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)


def _resample_counts(rng: np.random.Generator, groups: int, draws: int) -> np.ndarray:
    """How often each of ``groups`` is picked in each of ``draws`` resamples of ``groups`` with replacement."""
    picks = rng.integers(0, groups, size=(draws, groups)) + groups * np.arange(draws)[:, None]
    return np.bincount(picks.ravel(), minlength=draws * groups).reshape(draws, groups).astype(float)


def bootstrap_interval(runs: Sequence[RunPredictions], num_classes: int, draws: int = 1000, level: float = 0.95,
                       seed: int = 0) -> tuple[float, float]:
    """The ``level`` percentile interval of a row's mean macro accuracy: seeds, then recordings, resampled."""
    rng = np.random.default_rng(seed)
    n = len(runs)
    # For each run, `draws x n` independent recording resamples (a seed drawn twice gets two resamples).
    scores = np.empty((n, draws, n))
    for i, run in enumerate(runs):
        correct, total = _group_counts(run, num_classes)
        weights = _resample_counts(rng, len(correct), draws * n).reshape(draws, n, len(correct))
        scores[i] = _macro(weights @ correct, weights @ total)
    chosen = rng.integers(0, n, size=(draws, n))
    means = scores[chosen, np.arange(draws)[:, None], np.arange(n)[None, :]].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class PairedTest:
    difference: float  # mean over paired seeds of macro accuracy A - B
    p_value: float
    seeds: int  # pairs of runs compared: seeds present in both rows with the same test clips
    per_seed: tuple[float, ...]  # the difference of each pair
    paired_on: str = "seeds and clips"  # or "clips": the rows share no seed, their runs are paired on clips alone


def _same_clips(a: RunPredictions, b: RunPredictions) -> bool:
    return np.array_equal(np.sort(a.rows), np.sort(b.rows))


def run_pairs(a: Sequence[RunPredictions], b: Sequence[RunPredictions]) -> tuple[list[tuple[RunPredictions, RunPredictions]], str]:
    """The runs of rows ``a`` and ``b`` to compare, and what they are paired on: the same seed on the same test
    clips where the rows share seeds; else (seeds 3-5 against seeds 0-2, on a split that does not depend on the
    seed) runs on the same clips, in seed order, each used once. Only runs with per-clip predictions pair."""
    mine = sorted((r for r in a if r.per_clip), key=lambda r: r.seed)
    theirs = sorted((r for r in b if r.per_clip), key=lambda r: r.seed)
    by_seed = {run.seed: run for run in theirs}
    pairs = [(r, by_seed[r.seed]) for r in mine if r.seed in by_seed and _same_clips(r, by_seed[r.seed])]
    if pairs or any(r.seed in by_seed for r in mine):
        return pairs, "seeds and clips"
    unused = list(theirs)
    for run in mine:
        match = next((other for other in unused if _same_clips(run, other)), None)
        if match is not None:
            unused.remove(match)
            pairs.append((run, match))
    return pairs, "clips"


def why_untested(a: Sequence[RunPredictions], b: Sequence[RunPredictions]) -> str:
    """Why two rows have no paired test: which of them lacks per-clip predictions, or that their runs were
    tested on different clips."""
    if not any(r.per_clip for r in a) or not any(r.per_clip for r in b):
        return "no per-clip predictions"
    return "no runs on the same test clips"


def paired_test(a: Sequence[RunPredictions], b: Sequence[RunPredictions], num_classes: int, draws: int = 10_000,
                seed: int = 0, statistic: str = "macro") -> PairedTest | None:
    """Randomisation test of rows ``a`` and ``b`` paired on seed and clip (see the module docstring), or on clips
    alone where the rows share no seed (``run_pairs``); None when no runs of the two can be paired."""
    pairs, paired_on = run_pairs(a, b)
    terms, per_seed = [], []
    for run_a, run_b in pairs:
        order_a, order_b = np.argsort(run_a.rows), np.argsort(run_b.rows)
        true, groups = run_a.true[order_a], run_a.groups[order_a]
        right = (run_a.predicted[order_a] == true).astype(float) - (run_b.predicted[order_b] == true).astype(float)
        _, group = np.unique(groups, return_inverse=True)
        if statistic == "macro":  # each clip weighs 1 / (its class's clips x classes present)
            classes, per_class = np.unique(true, return_counts=True)
            weight = 1.0 / (per_class[np.searchsorted(classes, true)] * len(classes))
        else:  # micro accuracy: every clip weighs the same
            weight = np.full(len(true), 1.0 / len(true))
        term = np.bincount(group, weights=right * weight)
        terms.append(term)
        per_seed.append(float(term.sum()))
    if not terms:
        return None
    count = len(terms)
    flat = np.concatenate(terms) / count
    observed = float(flat.sum())
    rng = np.random.default_rng(seed)
    signs = rng.integers(0, 2, size=(draws, len(flat)), dtype=np.int8) * 2 - 1
    null = signs @ flat
    extreme = int(np.sum(np.abs(null) >= abs(observed) - 1e-12))
    return PairedTest(observed, (extreme + 1) / (draws + 1), count, tuple(per_seed), paired_on)


def seeds_needed(per_seed: Sequence[float], alpha: float = 0.05, power: float = 0.8, most: int = 200) -> int | None:
    """Seeds a two-sided paired t-test over seeds needs to detect the observed mean difference with ``power``,
    taking the seed-to-seed spread of the differences as observed (on this test side). None: no spread to
    estimate from (fewer than two seeds) or no difference at all; ``most + 1``: more than ``most``."""
    from scipy import stats

    values = np.asarray(per_seed, dtype=float)
    if len(values) < 2 or values.mean() == 0:
        return None
    spread = values.std(ddof=1)
    if spread == 0:
        return 2
    effect = abs(values.mean()) / spread
    for n in range(2, most + 1):
        critical = stats.t.ppf(1 - alpha / 2, n - 1)
        achieved = 1 - stats.nct.cdf(critical, n - 1, effect * math.sqrt(n)) + stats.nct.cdf(-critical, n - 1,
                                                                                             effect * math.sqrt(n))
        if achieved >= power:
            return n
    return most + 1
