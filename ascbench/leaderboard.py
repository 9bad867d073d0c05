"""Leaderboard tables from the results store: one line per model x strategy x dataset x protocol x labeled
fraction, averaged over seeds, ranked by macro accuracy (the mean of class-wise accuracies: the metric
the APSIPA 2025 challenge and DCASE Task 1 rank by), with micro accuracy, macro-F1 and log loss beside it."""

from __future__ import annotations

import numpy as np
import pandas as pd
from tabulate import tabulate

GROUP_KEYS = ["dataset", "protocol", "model", "strategy", "semi", "labeled"]
FORMATS = ("table", "markdown", "csv")


SORT_KEYS = ("macro_accuracy", "accuracy", "macro_f1", "log_loss", "worst_city", "worst_period", "params", "macs", "latency_ms", "train_s")


def sort_table(table: pd.DataFrame, key: str) -> pd.DataFrame:
    """Sort by one column: best first (lowest first for log loss and costs)."""
    ascending = key in ("log_loss", "params", "macs", "latency_ms", "train_s")
    return table.sort_values(key, ascending=ascending, kind="stable").reset_index(drop=True)


def aggregate(rows: list[dict]) -> pd.DataFrame:
    """Mean and standard deviation over seeds for each group; complexity is per model so it is taken as is.

    Runs without a score (a protocol with no test side, such as all-labeled) are left out."""
    df = pd.DataFrame([r for r in rows if r.get("accuracy") is not None])
    if "semi" not in df:
        df["semi"] = "none"
    df["semi"] = df["semi"].fillna("none")
    df["labeled"] = df["labeled"].map(lambda v: "dataset" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:g}")
    for col in ("macro_accuracy", "worst_city_accuracy", "worst_period_accuracy", "latency_ms", "train_s", "metadata_ceiling"):
        if col not in df:
            df[col] = np.nan
    grouped = df.groupby(GROUP_KEYS, sort=False, dropna=False)
    out = grouped.agg(
        seeds=("seed", "nunique"), runs=("seed", "size"),
        macro_accuracy=("macro_accuracy", "mean"), macro_accuracy_std=("macro_accuracy", "std"),
        accuracy=("accuracy", "mean"), accuracy_std=("accuracy", "std"),
        macro_f1=("macro_f1", "mean"), log_loss=("log_loss", "mean"),
        metadata_ceiling=("metadata_ceiling", "mean"),
        worst_city=("worst_city_accuracy", "mean"), worst_period=("worst_period_accuracy", "mean"),
        params=("params", "first"), macs=("macs", "first"), param_kb=("param_kb", "first"),
        latency_ms=("latency_ms", "median"), train_s=("train_s", "median"),
    ).reset_index()
    out["accuracy_std"] = out["accuracy_std"].fillna(0.0)
    out["macro_accuracy_std"] = out["macro_accuracy_std"].fillna(0.0)
    return out.sort_values(["dataset", "protocol", "macro_accuracy"], ascending=[True, True, False]).reset_index(drop=True)


def _human_macs(macs: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if macs >= scale:
            return f"{macs / scale:.2f} {unit}"
    return f"{macs:.0f}"


def render(table: pd.DataFrame, fmt: str = "table") -> str:
    if fmt == "csv":
        return table.to_csv(index=False, float_format="%.4f")
    shown = pd.DataFrame({
        "dataset": table["dataset"], "protocol": table["protocol"], "model": table["model"],
        "strategy": table["strategy"], "semi": table["semi"], "labeled": table["labeled"], "seeds": table["seeds"], "runs": table["runs"],
        "macro acc %": [f"{100 * m:.1f} ± {100 * s:.1f}" for m, s in zip(table["macro_accuracy"], table["macro_accuracy_std"])],
        "accuracy %": [f"{100 * m:.1f} ± {100 * s:.1f}" for m, s in zip(table["accuracy"], table["accuracy_std"])],
        "macro-F1 %": (100 * table["macro_f1"]).round(1),
        "log loss": table["log_loss"].round(3),
        # What city and time alone score on the same splits (macro accuracy; see ascbench.metadata_ceiling).
        "metadata ceiling %": (100 * table["metadata_ceiling"]).round(1),
        "worst city %": (100 * table["worst_city"]).round(1),
        "worst period %": (100 * table["worst_period"]).round(1),
        "params": table["params"].map(lambda p: f"{p / 1e3:.1f} k"),
        "MACs/clip": table["macs"].map(_human_macs),
        "param kB": table["param_kb"].round(1),
        "latency ms": table["latency_ms"].round(2),
        "train s": table["train_s"].round(1),
    })
    return tabulate(shown, headers="keys", tablefmt="github" if fmt == "markdown" else "simple", showindex=False)
