"""Leaderboard tables from the results store: one line per **exact experiment** (every config field but the
seed and execution details: two runs with different epochs or model arguments are two rows), averaged
over seeds, ranked by macro accuracy (the mean of class-wise accuracies: the metric the APSIPA 2025
challenge and DCASE Task 1 rank by), with micro accuracy, macro-F1 and log loss beside it.

A row's ``setting`` column names what it ran beyond the columns shown: ``default``, a recipe's name, and
every field that differs from the defaults (or from the recipe), e.g. ``default + epochs=2``. A seed run
twice (``ascbench rerun``) counts once; a run whose score is NaN is counted apart, not averaged.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pandas as pd
from tabulate import tabulate

from ascbench.config import EXECUTION_FIELDS, RunConfig

GROUP_KEYS = ["dataset", "protocol", "model", "strategy", "semi", "labeled"]
# Where the data lives is not what was run: a row made on two machines stays one row.
_NOT_THE_EXPERIMENT = {"seed", "data_root", "pretrain_data_root", *EXECUTION_FIELDS}


def setting_of(config: dict[str, Any]) -> dict[str, str]:
    """``setting`` (a short id of everything that defines the experiment except the columns a row shows
    and the seed) and ``setting_label`` (the recipe or ``default``, plus each field that differs)."""
    cfg = RunConfig.from_stored(config)
    full = {k: v for k, v in cfg.to_dict().items() if k not in _NOT_THE_EXPERIMENT}
    digest = hashlib.sha256(json.dumps(full, sort_keys=True).encode()).hexdigest()[:8]
    baseline = RunConfig.from_dict({"recipe": cfg.recipe, "dataset": cfg.dataset} if cfg.recipe else {}).to_dict()
    shown = set(GROUP_KEYS) | {"recipe"}
    differs = [f"{k}={_short(v)}" for k, v in sorted(full.items()) if k not in shown and v != baseline.get(k)]
    label = (cfg.recipe or "default") + (" + " + ", ".join(differs) if differs else "")
    return {"setting": digest, "setting_label": label, "nonstandard": bool(differs)}


def _short(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":")) if isinstance(value, (dict, list)) else str(value)


def with_settings(rows: list[dict], configs: dict[str, dict]) -> list[dict]:
    """``rows`` with their experiment's setting, from each run's stored config (by run id)."""
    return [{**row, **setting_of(configs[row["run_id"]])} if row["run_id"] in configs else row for row in rows]
FORMATS = ("table", "markdown", "csv")


SORT_KEYS = ("macro_accuracy", "accuracy", "macro_f1", "log_loss", "worst_city", "worst_period", "params", "macs", "latency_ms", "train_s")


COSTS = ("params", "macs", "latency_ms", "train_s")  # lower is cheaper


def sort_table(table: pd.DataFrame, key: str, registry: Any = None) -> pd.DataFrame:
    """Sort by one column, best first: a metric's direction comes from its plugin (``higher_is_better``),
    costs go lowest first, other scores (worst city, worst period) highest first."""
    if registry is None:
        from ascbench.registry import get_registry

        registry = get_registry()
    metric = key.replace("_", "-")
    if metric in registry.entries["metric"]:
        ascending = not registry.metric(metric).higher_is_better
    else:
        ascending = key in COSTS
    return table.sort_values(key, ascending=ascending, kind="stable").reset_index(drop=True)


def aggregate(rows: list[dict]) -> pd.DataFrame:
    """Mean and standard deviation over seeds for each group; complexity is per model so it is taken as is.

    Runs without a score (a protocol with no test side, such as all-labeled) are left out."""
    df = pd.DataFrame([r for r in rows if r.get("accuracy") is not None])
    if "semi" not in df:
        df["semi"] = "none"
    df["semi"] = df["semi"].fillna("none")
    if "setting" not in df:  # rows without their configs: grouped by the shown columns only
        df["setting"], df["setting_label"] = "", "?"
    df["setting"] = df["setting"].fillna("")
    df["setting_label"] = df["setting_label"].fillna("?")
    # A seed run again (ascbench rerun) is a check of the row, not another sample of it: the first run counts.
    order = df["finished"] if "finished" in df else pd.Series(range(len(df)))
    df = df.assign(_order=order.to_numpy()).sort_values("_order", kind="stable")
    df = df.drop_duplicates([*GROUP_KEYS, "setting", "seed"], keep="first")
    df["failed"] = df["macro_accuracy"].isna() if "macro_accuracy" in df else False
    df["labeled"] = df["labeled"].map(lambda v: "dataset" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:g}")
    for col in ("macro_accuracy", "worst_city_accuracy", "worst_period_accuracy", "latency_ms", "train_s", "metadata_ceiling"):
        if col not in df:
            df[col] = np.nan
    grouped = df.groupby([*GROUP_KEYS, "setting"], sort=False, dropna=False)
    runs_of = {key: part for key, part in grouped}
    out = grouped.agg(
        setting_label=("setting_label", "first"),
        seeds=("macro_accuracy", "count"), runs=("seed", "size"), failed=("failed", "sum"),
        macro_accuracy=("macro_accuracy", "mean"), macro_accuracy_std=("macro_accuracy", "std"),
        accuracy=("accuracy", "mean"), accuracy_std=("accuracy", "std"),
        macro_f1=("macro_f1", "mean"), log_loss=("log_loss", "mean"),
        metadata_ceiling=("metadata_ceiling", "mean"),
        worst_city=("worst_city_accuracy", "mean"), worst_period=("worst_period_accuracy", "mean"),
        params=("params", "first"), macs=("macs", "first"), param_kb=("param_kb", "first"),
        latency_ms=("latency_ms", "median"), train_s=("train_s", "median"),
        run_ids=("run_id", list) if "run_id" in df else ("seed", lambda s: []),
        classes=("_classes", "max") if "_classes" in df else ("seed", lambda s: np.nan),
    ).reset_index()
    out = out.sort_values(["dataset", "protocol", "macro_accuracy"], ascending=[True, True, False]).reset_index(drop=True)
    if "_predictions" in df:
        out = with_statistics(out, {key: [p for p in part["_predictions"] if p is not None]
                                    for key, part in runs_of.items()})
    return out


ROW_KEY = [*GROUP_KEYS, "setting"]
TIE_LEVEL = 0.05  # a row whose paired test against the best gives p >= this is marked as indistinguishable from it


def with_statistics(table: pd.DataFrame, predictions: dict[tuple, list]) -> pd.DataFrame:
    """Each row's 95 % bootstrap interval of macro accuracy, and its paired test against the best row of its
    dataset x protocol (see ascbench.stats); rows without per-clip predictions get an interval over clips
    rebuilt from their confusion matrices and no test."""
    from ascbench.stats import bootstrap_interval, paired_test

    table = table.copy()
    keys = [tuple(row) for row in table[ROW_KEY].itertuples(index=False)]
    runs = [predictions.get(key, []) for key in keys]
    classes = [1 + max((int(max(r.true.max(), r.predicted.max())) for r in rs), default=0) for rs in runs]
    intervals = [bootstrap_interval(rs, c) if rs else (np.nan, np.nan) for rs, c in zip(runs, classes)]
    table["_runs"] = runs  # for comparisons beyond the best row (the claims of a published leaderboard)
    table["ci_low"], table["ci_high"] = [i[0] for i in intervals], [i[1] for i in intervals]
    table["ci_over"] = ["recordings" if rs and all(r.per_clip for r in rs) else "clips" if rs else ""
                        for rs in runs]
    table["p_vs_best"], table["vs_best"] = np.nan, ""
    for _, part in table.groupby(["dataset", "protocol"], sort=False):
        scored = part[part["seeds"] > 0]
        if scored.empty:
            continue
        best = scored["macro_accuracy"].idxmax()
        table.loc[best, "vs_best"] = "best"
        for i in scored.index.drop(best):
            test = paired_test(runs[i], runs[best], max(classes[i], classes[best]))
            if test is None:
                table.loc[i, "vs_best"] = "untested"
                continue
            table.loc[i, "p_vs_best"] = test.p_value
            table.loc[i, "vs_best"] = "tied" if test.p_value >= TIE_LEVEL else "worse"
    return table


def _human_macs(macs: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if macs >= scale:
            return f"{macs / scale:.2f} {unit}"
    return f"{macs:.0f}"


def _mean_std(mean: float, std: float, seeds: int) -> str:
    """"61.2 ± 3.4" over seeds; one seed has no spread to show; no scored seed is "n/a"."""
    if seeds == 0 or np.isnan(mean):
        return "n/a"
    return f"{100 * mean:.1f}" if seeds == 1 else f"{100 * mean:.1f} ± {100 * std:.1f}"


def _interval(low: float, high: float) -> str:
    return "n/a" if np.isnan(low) else f"{100 * low:.1f}–{100 * high:.1f}"


def _versus_best(label: str, p: float) -> str:
    """"best", "tied (p 0.41)": indistinguishable from the best, "worse (p 0.003)", or "untested" (no per-clip
    predictions in its records to pair)."""
    if label not in ("tied", "worse"):
        return label
    return f"{label} (p < 0.001)" if p < 0.001 else f"{label} (p {p:.2g})"  # 10,000 draws resolve no finer


def render(table: pd.DataFrame, fmt: str = "table") -> str:
    if fmt == "csv":
        return table.drop(columns=["run_ids", "_runs"], errors="ignore").to_csv(index=False, float_format="%.4f")
    blank = pd.Series(np.nan, index=table.index)
    stats = {col: table[col] if col in table else blank for col in ("ci_low", "ci_high", "vs_best", "p_vs_best")}
    shown = pd.DataFrame({
        "dataset": table["dataset"], "protocol": table["protocol"], "model": table["model"],
        "strategy": table["strategy"], "semi": table["semi"], "labeled": table["labeled"],
        "setting": table["setting_label"], "seeds": table["seeds"],
        "failed runs": table["failed"].astype(int),
        "macro acc %": [_mean_std(m, s, n) for m, s, n in zip(table["macro_accuracy"], table["macro_accuracy_std"], table["seeds"])],
        "95 % CI": [_interval(lo, hi) for lo, hi in zip(stats["ci_low"], stats["ci_high"])],
        "vs best": [_versus_best(v, p) for v, p in zip(stats["vs_best"], stats["p_vs_best"])],
        "accuracy %": [_mean_std(m, s, n) for m, s, n in zip(table["accuracy"], table["accuracy_std"], table["seeds"])],
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
    if not shown["failed runs"].any():  # the column says something only when a run failed
        shown = shown.drop(columns="failed runs")
    if "ci_low" not in table:  # a local results store: no per-clip predictions at hand
        shown = shown.drop(columns=["95 % CI", "vs best"])
    return tabulate(shown, headers="keys", tablefmt="github" if fmt == "markdown" else "simple", showindex=False)
