"""What metadata alone scores on a split: three rules that never hear the audio.

* ``recording_lookup``: the majority training label of the test clip's own recording (city +
  timestamp); a recording absent from training falls back to the city prior. On a split that keeps
  recordings whole it never fires and equals the city prior.
* ``nearest_in_time``: the label of the labeled training clip recorded nearest in time in the same
  city (ties: the earlier one); a clip without a timestamp, or of a city without training clips,
  falls back to the city prior.
  Recordings come in sessions (one place, minutes apart, one scene), so on a split that cuts
  sessions this rule is nearly perfect.
* ``city_prior``: the majority training label of the clip's city, else the overall majority.

Each is scored as macro accuracy (the mean of class-wise accuracies, the challenge's metric) over the
scored test clips; ``best`` is the highest of the three. It is a lower bound on what metadata can
explain, not an upper one: a model with city and time inputs may find more. A model scoring near it
has not shown that it listens.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ascbench.metrics import macro_accuracy

from ascbench.data.dataset import ClipDataset

RULES = ("recording_lookup", "nearest_in_time", "city_prior")


def _majority(values: pd.Series) -> int:
    counts = values.value_counts()
    return int(min(counts.index[counts == counts.max()]))  # ties: the lowest class index


def _nearest_in_time(train: pd.DataFrame, test: pd.DataFrame, fallback: np.ndarray) -> np.ndarray:
    pred = fallback.copy()
    train, timed = train[train["t"].notna()], test[test["t"].notna()]
    for city, rows in timed.groupby("city", sort=False):
        known = train[train["city"] == city]
        if known.empty:
            continue
        # One label per distinct training time (clips of one recording share it).
        stamps = known.groupby("t")["y"].agg(_majority).sort_index()
        times, labels = stamps.index.to_numpy(dtype=np.int64), stamps.to_numpy()
        t = rows["t"].to_numpy(dtype=np.int64)
        after = np.clip(np.searchsorted(times, t), 0, len(times) - 1)
        before = np.clip(after - 1, 0, len(times) - 1)
        take_before = np.abs(t - times[before]) <= np.abs(times[after] - t)
        pred[test.index.get_indexer(rows.index)] = np.where(take_before, labels[before], labels[after])
    return pred


def metadata_ceiling(dataset: ClipDataset, train_rows: np.ndarray, test_rows: np.ndarray) -> dict[str, float]:
    """Macro accuracy of each metadata-only rule on ``test_rows``, learning from ``train_rows`` (the
    training clips whose labels a run may use); with ``recording_hits`` (test clips whose recording
    trains) and ``best``."""
    labels = dataset.label_indices()
    meta = dataset.meta
    train_rows = np.asarray(train_rows, dtype=np.int64)
    test_rows = np.asarray(test_rows, dtype=np.int64)
    train_rows = train_rows[labels[train_rows] >= 0]
    test_rows = test_rows[labels[test_rows] >= 0]
    if len(train_rows) == 0 or len(test_rows) == 0:
        return {**{r: float("nan") for r in RULES}, "best": float("nan"), "recording_hits": 0.0, "test_clips": 0}

    def frame(rows: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"rec": dataset.groups("recording")[rows], "city": meta["city"].to_numpy()[rows],
                             "t": meta["timestamp"].to_numpy()[rows], "y": labels[rows]}).reset_index(drop=True)

    train, test = frame(train_rows), frame(test_rows)
    overall = _majority(train["y"])
    by_city = train.groupby("city")["y"].agg(_majority)
    city_prior = test["city"].map(by_city).fillna(overall).to_numpy(dtype=np.int64)
    by_recording = train.groupby("rec")["y"].agg(_majority)
    hits = test["rec"].isin(by_recording.index).to_numpy()
    recording = np.where(hits, test["rec"].map(by_recording).fillna(-1).to_numpy(dtype=np.int64), city_prior)
    nearest = _nearest_in_time(train, test, city_prior)
    truth = test["y"].to_numpy()
    scores = {"recording_lookup": macro_accuracy(truth, recording), "nearest_in_time": macro_accuracy(truth, nearest),
              "city_prior": macro_accuracy(truth, city_prior)}
    return {**scores, "best": max(scores.values()), "recording_hits": float(hits.mean()), "test_clips": int(len(test))}


def describe(ceiling: dict[str, float]) -> str:
    """One line for summaries: the three rules and the share of test clips whose recording trains."""
    if not ceiling.get("test_clips"):
        return "none (no test side)"
    return (f"recording lookup {100 * ceiling['recording_lookup']:.1f} %, nearest in time (same city) "
            f"{100 * ceiling['nearest_in_time']:.1f} %, city prior {100 * ceiling['city_prior']:.1f} % "
            f"(macro accuracy; {100 * ceiling['recording_hits']:.0f} % of test clips share a recording with training)")
