"""Dataset and split summaries (what metadata alone scores is in ascbench.metadata_ceiling)."""

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
        *((f"{level}s", len(set(ds.groups(level)))) for level in list(ds.groupings)[1:]),
        ("split levels (finest first)", ", ".join(ds.groupings)),
        ("first recording", str(meta["timestamp"].min())), ("last recording", str(meta["timestamp"].max())),
    ], columns=["what", "value"])
    per_city = meta.groupby("city").agg(clips=("filename", "size"), labeled=("labeled", "sum"),
                                        recordings=("group", "nunique")).reset_index()
    per_period = meta.groupby("period").agg(clips=("filename", "size"), labeled=("labeled", "sum")).reset_index()
    per_class = (meta[known].groupby("scene_label").agg(clips=("filename", "size"), cities=("city", "nunique"))
                 .reindex(ds.classes, fill_value=0).rename_axis("class").reset_index())
    return {"dataset": totals, "cities": per_city, "periods": per_period, "classes (known labels)": per_class}


def split_table(ds: ClipDataset, split: Split, labeled_rows: np.ndarray) -> pd.DataFrame:
    """One row per side: clips, labeled clips, cities, periods, and the classes the side lacks."""
    meta, labels = ds.meta, ds.label_indices()
    level = split.info.get("group_by", ds.default_grouping)
    groups = ds.groups(level)
    rows = []
    for side, idx, lab in (("train", split.train, labeled_rows), ("test", split.test, split.test)):
        present = {ds.classes[i] for i in np.unique(labels[lab]) if i >= 0}
        rows.append({
            "side": side, "clips": len(idx), "labeled": len(lab),
            "recordings": meta["group"].iloc[idx].nunique(),
            **({f"{level}s": len(set(groups[idx]))} if level != "recording" else {}),
            "cities": ", ".join(sorted(meta["city"].iloc[idx].unique())),
            "periods": ", ".join(sorted(meta["period"].iloc[idx].unique())),
            "classes lacking": ", ".join(c for c in ds.classes if c not in present) or "-",
        })
    return pd.DataFrame(rows)
