"""Dataset and split summaries, and the metadata-only lookup that makes leakage visible."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ascbench.data.dataset import ClipDataset
from ascbench.protocols import Split


def dataset_tables(ds: ClipDataset) -> dict[str, pd.DataFrame]:
    """Counts a user checks first: totals, per city, per period, per class."""
    meta = ds.meta
    known = meta["scene_label"].fillna("") != ""
    totals = pd.DataFrame([
        ("clips", len(meta)), ("labeled", int(meta["labeled"].sum())),
        ("labeled fraction", round(float(meta["labeled"].mean()), 4)),
        ("cities", meta["city"].nunique()), ("recordings", meta["group"].nunique()),
        ("first recording", str(meta["timestamp"].min())), ("last recording", str(meta["timestamp"].max())),
    ], columns=["what", "value"])
    per_city = meta.groupby("city").agg(clips=("filename", "size"), labeled=("labeled", "sum"),
                                        recordings=("group", "nunique")).reset_index()
    per_period = meta.groupby("period").agg(clips=("filename", "size"), labeled=("labeled", "sum")).reset_index()
    per_class = (meta[known].groupby("scene_label").agg(clips=("filename", "size"), cities=("city", "nunique"))
                 .reindex(ds.classes, fill_value=0).rename_axis("class").reset_index())
    return {"dataset": totals, "cities": per_city, "periods": per_period, "classes (known labels)": per_class}


def metadata_lookup_score(ds: ClipDataset, train_rows: np.ndarray, test_rows: np.ndarray) -> dict[str, float]:
    """Score a rule that never hears the audio: predict the majority training label of the clip's
    recording (city + timestamp), else of its city, else overall.

    On a split by recording the first rule never fires, and the score shows what city alone explains;
    on a careless random-clip split of the APSIPA data it is nearly perfect.
    """
    labels = ds.label_indices()
    meta = ds.meta
    train = train_rows[labels[train_rows] >= 0]
    test = test_rows[labels[test_rows] >= 0]
    if len(train) == 0 or len(test) == 0:
        return {"accuracy": float("nan"), "macro_accuracy": float("nan"), "recording_hits": 0.0}
    frame = pd.DataFrame({"group": meta["group"].to_numpy()[train], "city": meta["city"].to_numpy()[train], "y": labels[train]})
    by_group = frame.groupby("group")["y"].agg(lambda s: s.value_counts().idxmax()).to_dict()
    by_city = frame.groupby("city")["y"].agg(lambda s: s.value_counts().idxmax()).to_dict()
    overall = int(frame["y"].value_counts().idxmax())
    groups, cities = meta["group"].to_numpy()[test], meta["city"].to_numpy()[test]
    pred = np.array([by_group.get(g, by_city.get(c, overall)) for g, c in zip(groups, cities)])
    truth = labels[test]
    per_class = [np.mean(pred[truth == c] == c) for c in np.unique(truth)]
    return {"accuracy": float(np.mean(pred == truth)), "macro_accuracy": float(np.mean(per_class)),
            "recording_hits": float(np.mean([g in by_group for g in groups]))}


def split_table(ds: ClipDataset, split: Split, labeled_rows: np.ndarray) -> pd.DataFrame:
    """One row per side: clips, labeled clips, cities, periods, and the classes the side lacks."""
    meta, labels = ds.meta, ds.label_indices()
    rows = []
    for side, idx, lab in (("train", split.train, labeled_rows), ("test", split.test, split.test)):
        present = {ds.classes[i] for i in np.unique(labels[lab]) if i >= 0}
        rows.append({
            "side": side, "clips": len(idx), "labeled": len(lab),
            "recordings": meta["group"].iloc[idx].nunique(),
            "cities": ", ".join(sorted(meta["city"].iloc[idx].unique())),
            "periods": ", ".join(sorted(meta["period"].iloc[idx].unique())),
            "classes lacking": ", ".join(c for c in ds.classes if c not in present) or "-",
        })
    return pd.DataFrame(rows)
