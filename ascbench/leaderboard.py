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

from ascbench.config import EXECUTION_FIELDS, RunConfig, hashed_form

GROUP_KEYS = ["dataset", "protocol", "model", "strategy", "semi", "labeled"]
ROW_KEY = [*GROUP_KEYS, "setting"]  # one leaderboard row: the shown columns and the exact experiment
# Where the data lives is not what was run: a row made on two machines stays one row.
# A run of `--folds K` is one fold of an experiment, as a seed is one sample of it: its row covers all K.
_NOT_THE_EXPERIMENT = {"seed", "fold", "data_root", "pretrain_data_root", *EXECUTION_FIELDS}


def setting_of(config: dict[str, Any], resolved_precision: str | None = None) -> dict[str, str]:
    """``setting`` (a short id of everything that defines the experiment except the columns a row shows
    and the seed) and ``setting_label`` (the recipe or ``default``, plus each field that differs, written as
    the ``--set`` assignments that would make it: ``epochs=2, model.width=48, strategy.lr_scale=0.5``).

    ``--precision auto`` is identified by what it resolved to (``resolved_precision``, the row's): runs of one
    config made in bf16 on one machine and in fp32 on another are two experiments, never one row's seeds."""
    cfg = RunConfig.from_stored(config)
    full = {k: v for k, v in hashed_form(cfg.to_dict()).items() if k not in _NOT_THE_EXPERIMENT}
    identity = {**full, "precision": resolved_precision} if cfg.precision == "auto" and resolved_precision else full
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    recipe = {"recipe": cfg.recipe, "dataset": cfg.dataset} if cfg.recipe else {}
    baseline = hashed_form(RunConfig.from_dict(recipe).to_dict())
    shown = set(GROUP_KEYS) | {"recipe"}
    mine = _assignments({k: v for k, v in full.items() if k not in shown})
    theirs = _assignments({k: v for k, v in baseline.items() if k not in shown})
    differs = [f"{k}={_short(v)}" for k, v in sorted(mine.items()) if k not in theirs or theirs[k] != v]
    label = (cfg.recipe or "default") + (" + " + ", ".join(differs) if differs else "")
    return {"setting": digest, "setting_label": label, "nonstandard": bool(differs)}


# Config fields whose dict values are per-plugin settings, named as their `--set` prefixes are.
_PREFIXES = {"model_kwargs": "model.", "options": ""}


def _assignments(fields: dict[str, Any]) -> dict[str, Any]:
    """Config fields as flat ``name=value`` assignments: a dict field becomes one assignment per key (with
    its ``--set`` prefix: ``model.width``, ``strategy.lr_scale``), so no label holds JSON."""
    flat = {}
    for key, value in fields.items():
        if isinstance(value, dict):
            prefix = _PREFIXES.get(key, f"{key}.")
            for name, inner in _assignments(value).items():
                flat[f"{prefix}{name}"] = inner
        else:
            flat[key] = value
    return flat


def _short(value: Any) -> str:
    """A value as a label shows it: lists as ``[8,8,8]``, everything else as str()."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_short(v) for v in value) + "]"
    return str(value)


def with_settings(rows: list[dict], configs: dict[str, dict]) -> list[dict]:
    """``rows`` with their experiment's setting, from each run's stored config (by run id)."""
    return [{**row, **setting_of(configs[row["run_id"]], row.get("precision"))} if row["run_id"] in configs else row
            for row in rows]
FORMATS = ("table", "markdown", "csv")


SORT_KEYS = ("macro_accuracy", "accuracy", "macro_f1", "log_loss", "worst_city", "worst_period", "params", "macs", "latency_ms", "train_s")


COSTS = ("params", "macs", "latency_ms", "train_s")  # lower is cheaper


def sort_table(table: pd.DataFrame, key: str, registry: Any = None) -> pd.DataFrame:
    """Sort by one column, best first, within each dataset x protocol section (scores under different
    protocols are not comparable, so sections never mix): a metric's direction comes from its plugin
    (``higher_is_better``), costs go lowest first, other scores (worst city, worst period) highest first."""
    if registry is None:
        from ascbench.registry import get_registry

        registry = get_registry()
    metric = key.replace("_", "-")
    if registry.has("metric", metric):
        ascending = not registry.metric(metric).higher_is_better
    else:
        ascending = key in COSTS
    sections = [col for col in ("dataset", "protocol") if col in table]
    return table.sort_values([*sections, key], ascending=[True] * len(sections) + [ascending],
                             kind="stable").reset_index(drop=True)


def current_runs(df: pd.DataFrame) -> pd.DataFrame:
    """The runs a row is made of: of each experiment, only those made with the code and data of its newest run
    (``_code``: plugin sources and dataset fingerprint, see ascbench.records) — a plugin fixed and re-run is
    never hidden behind its older records, nor averaged with them — and of each seed (and fold) run more than
    once, the newest. ``superseded`` counts what was left out."""
    order = df["finished"].fillna("") if "finished" in df else pd.Series(range(len(df)), index=df.index)
    df = df.assign(_order=order.to_numpy()).sort_values("_order", kind="stable")
    newest = df.groupby(ROW_KEY, sort=False, dropna=False)["_code"].transform("last")
    current = df[df["_code"] == newest]
    kept = current.drop_duplicates([*ROW_KEY, "seed", "fold"], keep="last")
    superseded = (df.groupby(ROW_KEY, dropna=False).size() - kept.groupby(ROW_KEY, dropna=False).size()).rename("superseded")
    return kept.join(superseded, on=ROW_KEY)


def _prepared(rows: list[dict]) -> pd.DataFrame:
    """The scored runs as a frame, every column aggregate() reads present."""
    df = pd.DataFrame([r for r in rows if r.get("accuracy") is not None])
    if "semi" not in df:
        df["semi"] = "none"
    df["semi"] = df["semi"].fillna("none")
    if "protocol" in df:  # a record made under a protocol's old name is a row of the protocol as named today
        from ascbench.config import current_protocol_name

        df["protocol"] = df["protocol"].map(lambda p: current_protocol_name(p) if isinstance(p, str) else p)
    if "setting" not in df:  # rows without their configs: grouped by the shown columns only
        df["setting"], df["setting_label"] = "", "?"
    df["setting"] = df["setting"].fillna("")
    df["setting_label"] = df["setting_label"].fillna("?")
    for col, empty in (("_code", ""), ("fold", "")):
        df[col] = df[col].fillna(empty) if col in df else empty
    df["labeled"] = df["labeled"].map(lambda v: "dataset" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:g}")
    for col in ("macro_accuracy", "worst_city_accuracy", "worst_period_accuracy", "latency_ms", "train_s", "metadata_ceiling"):
        if col not in df:
            df[col] = np.nan
    return df


def _over_seeds_and_folds(part: pd.DataFrame) -> dict[str, float]:
    """One row's spread over seeds (a seed's folds averaged into one score first), how many cross-city folds
    its runs cover and its worst fold (lowest macro accuracy, averaged over seeds); 0 folds: not a folded row."""
    per_seed = part.groupby("seed")[["macro_accuracy", "accuracy"]].mean()
    folded = part[part["fold"] != ""]
    per_fold = folded.groupby("fold")["macro_accuracy"].mean()
    return {"macro_accuracy_std": per_seed["macro_accuracy"].std(), "accuracy_std": per_seed["accuracy"].std(),
            "folds": len(per_fold), "worst_fold": per_fold.min() if len(per_fold) else np.nan}


def aggregate(rows: list[dict]) -> pd.DataFrame:
    """Mean and standard deviation over seeds for each group; complexity is per model so it is taken as is.
    A run of ``--folds K`` is one fold of its row: the row is the mean over folds and seeds, with its worst fold.

    Runs without a score (a protocol with no test side, such as all-labeled) are left out."""
    df = current_runs(_prepared(rows))
    df["failed"] = df["macro_accuracy"].isna()
    df["_scored_seed"] = df["seed"].where(~df["failed"])
    grouped = df.groupby(ROW_KEY, sort=False, dropna=False)
    runs_of = {key: part for key, part in grouped}
    out = grouped.agg(
        setting_label=("setting_label", "first"),
        seeds=("_scored_seed", "nunique"), runs=("seed", "size"),
        failed=("failed", "sum"), superseded=("superseded", "first"),
        macro_accuracy=("macro_accuracy", "mean"), accuracy=("accuracy", "mean"),
        macro_f1=("macro_f1", "mean"), log_loss=("log_loss", "mean"),
        metadata_ceiling=("metadata_ceiling", "mean"),
        worst_city=("worst_city_accuracy", "mean"), worst_period=("worst_period_accuracy", "mean"),
        params=("params", "first"), macs=("macs", "first"), param_kb=("param_kb", "first"),
        latency_ms=("latency_ms", "median"), train_s=("train_s", "median"),
        run_ids=("run_id", list) if "run_id" in df else ("seed", lambda s: []),
        classes=("_classes", "max") if "_classes" in df else ("seed", lambda s: np.nan),
        chance=("_chance", "mean") if "_chance" in df else ("seed", lambda s: np.nan),
        # What the row's runs were made with and when, for the tables' headers.
        commits=("git_commit", lambda s: sorted(set(s.dropna()))) if "git_commit" in df else ("seed", lambda s: []),
        first_made=("finished", "min") if "finished" in df else ("seed", lambda s: ""),
        last_made=("finished", "max") if "finished" in df else ("seed", lambda s: ""),
    )
    extra = pd.DataFrame.from_dict({key: _over_seeds_and_folds(part) for key, part in runs_of.items()}, orient="index")
    extra.index = out.index  # runs_of follows the groups' order, as out does
    out = out.join(extra).reset_index()
    out = out.sort_values(["dataset", "protocol", "macro_accuracy"], ascending=[True, True, False]).reset_index(drop=True)
    if "_predictions" in df:
        out = with_statistics(out, {key: [p for p in part["_predictions"] if p is not None]
                                    for key, part in runs_of.items()})
    return out


TIE_LEVEL = 0.05  # a row whose paired test against the best gives p >= this is marked as indistinguishable from it


def with_statistics(table: pd.DataFrame, predictions: dict[tuple, list]) -> pd.DataFrame:
    """Each row's 95 % bootstrap interval of macro accuracy, and its paired test against the best row of its
    dataset x protocol (see ascbench.stats); rows without per-clip predictions get an interval over clips
    rebuilt from their confusion matrices and no test. A row left untested says why (``untested_why``); a
    test of rows that share no seed pairs their runs on the test clips alone (``paired_on``)."""
    from ascbench.stats import bootstrap_interval, paired_test, why_untested

    table = table.copy()
    keys = [tuple(row) for row in table[ROW_KEY].itertuples(index=False)]
    folded = table["folds"].to_numpy() > 0 if "folds" in table else np.zeros(len(table), dtype=bool)
    # A folded row's runs test different clips each (one fold each): its interval and test would need the
    # folds pooled, which is not its score (the mean over folds); it gets neither.
    runs = [[] if fold else predictions.get(key, []) for key, fold in zip(keys, folded)]
    classes = [1 + max((int(max(r.true.max(), r.predicted.max())) for r in rs), default=0) for rs in runs]
    intervals = [bootstrap_interval(rs, c) if rs else (np.nan, np.nan) for rs, c in zip(runs, classes)]
    table["_runs"] = runs  # for comparisons beyond the best row (the claims of a published leaderboard)
    table["ci_low"], table["ci_high"] = [i[0] for i in intervals], [i[1] for i in intervals]
    table["ci_over"] = ["recordings" if rs and all(r.per_clip for r in rs) else "clips" if rs else ""
                        for rs in runs]
    table["p_vs_best"], table["vs_best"], table["untested_why"], table["paired_on"] = np.nan, "", "", ""
    for _, part in table.groupby(["dataset", "protocol"], sort=False):
        scored = part[part["seeds"] > 0]
        if scored.empty:
            continue
        best = scored["macro_accuracy"].idxmax()
        table.loc[best, "vs_best"] = "best"
        for i in scored.index.drop(best):
            test = None if folded[i] or folded[best] else paired_test(runs[i], runs[best], max(classes[i], classes[best]))
            if test is None:
                table.loc[i, "vs_best"] = "untested"
                table.loc[i, "untested_why"] = ("cross-city folds" if folded[i] or folded[best]
                                                else why_untested(runs[i], runs[best]))
                continue
            table.loc[i, "p_vs_best"] = test.p_value
            table.loc[i, "paired_on"] = test.paired_on
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


def _versus_best(label: str, p: float, why: str = "", paired_on: str = "") -> str:
    """"best", "tied (p 0.41)": indistinguishable from the best, "worse (p 0.003)" ("..., other seeds" when
    the rows share no seed and were paired on their test clips alone), or "untested: " and why."""
    if label == "untested":
        return f"untested: {why}" if why else label
    if label not in ("tied", "worse"):
        return label
    other = ", other seeds" if paired_on == "clips" else ""
    return f"{label} (p < 0.001{other})" if p < 0.001 else f"{label} (p {p:.2g}{other})"  # 10,000 draws resolve no finer


def versus_best_labels(table: pd.DataFrame) -> list[str]:
    """Each row's "vs best" cell (see ``_versus_best``); blank where the table has no statistics."""
    def column(name: str) -> list:
        return [v if isinstance(v, str) else "" for v in table[name]] if name in table else [""] * len(table)

    p_values = table["p_vs_best"] if "p_vs_best" in table else [np.nan] * len(table)
    return [_versus_best(v, p, w, o) for v, p, w, o in zip(column("vs_best"), p_values, column("untested_why"),
                                                           column("paired_on"))]


def render(table: pd.DataFrame, fmt: str = "table") -> str:
    if fmt == "csv":
        plain = table.drop(columns=["run_ids", "_runs"], errors="ignore")
        if "commits" in plain:
            plain = plain.assign(commits=[" ".join(c) for c in plain["commits"]])
        return plain.to_csv(index=False, float_format="%.4f")
    blank = pd.Series(np.nan, index=table.index)
    stats = {col: table[col] if col in table else blank for col in ("ci_low", "ci_high")}
    shown = pd.DataFrame({
        "dataset": table["dataset"], "protocol": table["protocol"], "model": table["model"],
        "strategy": table["strategy"], "semi": table["semi"], "labeled": table["labeled"],
        "setting": table["setting_label"], "seeds": table["seeds"],
        "failed runs": table["failed"].astype(int),
        "macro acc %": [_mean_std(m, s, n) for m, s, n in zip(table["macro_accuracy"], table["macro_accuracy_std"], table["seeds"])],
        "95 % CI": [_interval(lo, hi) for lo, hi in zip(stats["ci_low"], stats["ci_high"])],
        "vs best": versus_best_labels(table),
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
