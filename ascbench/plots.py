"""Plots people would rather look at than read: accuracy vs. MACs (intervals, Pareto front, chance, ceiling),
per-city and per-period accuracy, and confusion matrices. SVG output is deterministic."""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np
import pandas as pd


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "ascbench"  # stable element ids, so files regenerate identically
    import matplotlib.pyplot as plt

    return plt


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def pareto_front(macs: Sequence[float], accuracy: Sequence[float]) -> list[int]:
    """Indices of the points no other point beats on both fewer MACs and higher accuracy."""
    order = sorted(range(len(macs)), key=lambda i: (macs[i], -accuracy[i]))
    front, best = [], -np.inf
    for i in order:
        if accuracy[i] > best:
            front.append(i)
            best = accuracy[i]
    return front


def _dodged(macs: np.ndarray, acc: np.ndarray, close: float = 1.1, step: float = 1.15, widest: float = 6.0) -> np.ndarray:
    """MACs spread apart where rows crowd one spot (a model under several recipes, or variants within ``close``x
    of each other): a small factor per row, in order of accuracy, the crowd kept within ``widest``x around its
    centre, so points, whiskers and numbers stay apart. Only the drawing moves; the table has the true MACs."""
    order = np.argsort(macs, kind="stable")
    crowds, current = [], [order[0]] if len(order) else []
    for i in order[1:]:
        if macs[i] <= macs[current[-1]] * close:
            current.append(i)
        else:
            crowds.append(current)
            current = [i]
    crowds += [current] if current else []
    out = macs.copy()
    for crowd in (np.array(c) for c in crowds if len(c) > 1):
        centre = float(np.exp(np.log(macs[crowd]).mean()))
        ranks = np.argsort(np.argsort(acc[crowd], kind="stable"), kind="stable")
        factor = min(step, widest ** (1 / (len(crowd) - 1)))
        out[crowd] = centre * factor ** (ranks - (len(crowd) - 1) / 2)
    return out


# Fixed across every figure of a board: a model keeps its colour, a strategy its marker shape.
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
            "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h")


def model_colours(models) -> dict[str, str]:
    """One colour per model, from the sorted set of every model on the board (not per figure), so a model has
    the same colour in every section's figure."""
    return {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(sorted(set(models)))}


def _marker(strategy: str, strategies: list[str]) -> str:
    return _MARKERS[strategies.index(strategy) % len(_MARKERS)]


def _label_offsets(x: np.ndarray, y: np.ndarray, ax, fontsize: float) -> list[tuple[float, float]]:
    """Offsets (points) for the row numbers beside their points such that no two labels overlap: labels are
    placed in order of height, each moved up past any earlier label whose box it would cover."""
    fig = ax.figure
    fig.canvas.draw()
    display = ax.transData.transform(np.column_stack([x, y]))
    to_points = 72.0 / fig.dpi
    height, width = 1.2 * fontsize, 0.7 * fontsize * 3  # up to three digits
    placed: list[tuple[float, float]] = []
    offsets = [(0.0, 0.0)] * len(x)
    for i in np.argsort(display[:, 1], kind="stable"):
        px, py = display[i, 0] * to_points + 4, display[i, 1] * to_points - height / 3
        while any(abs(px - qx) < width and abs(py - qy) < height for qx, qy in placed):
            py += height / 2
        placed.append((px, py))
        offsets[i] = (4.0, py - display[i, 1] * to_points)
    return offsets


def accuracy_vs_macs(table: pd.DataFrame, chance: float | None = None, ceiling: float | None = None,
                     title: str = "", colours: dict[str, str] | None = None) -> str:
    """One dataset x protocol (scores under different protocols are not comparable): each row a point at its
    mean macro accuracy with its 95 % interval as a whisker, coloured by model (``colours``: the board's fixed
    map, so colours mean the same in every figure) and shaped by strategy, numbered as in the table (labels
    moved apart where they would overlap), the Pareto front, chance and the metadata ceiling as lines (one
    line when they are equal); the legend sits outside the data. Rows of one model share its MACs: they are
    drawn slightly apart (``_dodged``) so each stays readable."""
    plt = _pyplot()
    colours = colours or model_colours(table["model"])
    strategies = sorted(set(table["strategy"]))
    acc = 100 * table["macro_accuracy"].to_numpy(float)
    macs = _dodged(table["macs"].to_numpy(float), acc)
    low = 100 * table["ci_low"].to_numpy(float) if "ci_low" in table else np.full(len(table), np.nan)
    high = 100 * table["ci_high"].to_numpy(float) if "ci_high" in table else np.full(len(table), np.nan)
    fig, ax = plt.subplots(figsize=(8.5, 4.6))
    for model, strategy in dict.fromkeys(zip(table["model"], table["strategy"])):
        mine = ((table["model"] == model) & (table["strategy"] == strategy)).to_numpy()
        # Clipped at 0: a mean can lie outside a bootstrap interval of few seeds; an error bar cannot be negative.
        spread = np.clip(np.where(np.isnan(low[mine]), 0, [acc[mine] - low[mine], high[mine] - acc[mine]]), 0, None)
        ax.errorbar(macs[mine], acc[mine], yerr=spread, fmt=_marker(strategy, strategies), color=colours[model],
                    ecolor=colours[model], elinewidth=0.8, capsize=2, markersize=4.5, zorder=3, alpha=0.9)
    # Legend entries: one per model (colour) and one per strategy (shape), not per combination.
    for model in dict.fromkeys(table["model"]):
        ax.plot([], [], "o", color=colours[model], label=model)
    for strategy in strategies:
        ax.plot([], [], _marker(strategy, strategies), color="#444444", fillstyle="none", label=strategy)
    front = pareto_front(list(table["macs"].to_numpy(float)), list(acc))  # found on the true MACs, drawn where shown
    ax.plot(macs[front], acc[front], color="#cc3311", linestyle="--", linewidth=1, label="Pareto front", zorder=2)
    _reference_lines(ax, chance, ceiling)
    ax.set_xscale("log")
    ax.set_xlabel("MACs per clip (log scale)")
    ax.set_ylabel("macro accuracy (%): mean, 95 % CI")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    for i, (offset, x, y) in enumerate(zip(_label_offsets(macs, acc, ax, 6.5), macs, acc)):
        ax.annotate(str(i + 1), (x, y), fontsize=6.5, xytext=offset, textcoords="offset points")
    return _svg(fig)


def _reference_lines(ax, chance: float | None, ceiling: float | None) -> None:
    """Chance and the metadata ceiling as horizontal lines; one line naming both when they are equal at the
    precision shown (two lines drawn on top of each other would hide one)."""
    has_ceiling = ceiling is not None and not np.isnan(ceiling)
    if chance is not None and has_ceiling and round(100 * chance, 1) == round(100 * ceiling, 1):
        ax.axhline(100 * chance, color="#777777", linestyle=":", linewidth=1.2,
                   label=f"chance = metadata ceiling ({100 * chance:.1f} %)")
        return
    if chance is not None:
        ax.axhline(100 * chance, color="#777777", linestyle=":", linewidth=1, label=f"chance ({100 * chance:.1f} %)")
    if has_ceiling:
        ax.axhline(100 * ceiling, color="#0077bb", linestyle="-.", linewidth=1,
                   label=f"metadata ceiling ({100 * ceiling:.1f} %)")


# Time-of-day period names in the order of a day; periods named otherwise follow, alphabetically.
DAY_ORDER = ("dawn", "early-morning", "morning", "late-morning", "noon", "midday", "afternoon", "late-afternoon",
             "evening", "dusk", "late-evening", "night", "late-night", "midnight")


def in_day_order(periods) -> list[str]:
    known = {name: i for i, name in enumerate(DAY_ORDER)}
    return sorted(periods, key=lambda p: (known.get(str(p).lower().replace(" ", "-").replace("_", "-"), len(known)), str(p)))


def grouped_accuracy_bars(values: dict[str, float], what: str, counts: dict[str, int] | None = None,
                          chance: float | None = None, order: Sequence[str] | None = None) -> str:
    """Accuracy per city or period: each bar labelled with its value and, given ``counts``, its number of test
    clips (a bar over 3 clips says little); ``chance`` as a line; bars in ``order`` (periods: time of day)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    names = list(order) if order is not None else list(values)
    bars = ax.bar(names, [100 * values[n] for n in names], color="#228833")
    labels = [f"{100 * values[n]:.0f}" + (f"\nn={counts[n]}" if counts and n in counts else "") for n in names]
    ax.bar_label(bars, labels=labels, fontsize=7, padding=2)
    if chance is not None:
        ax.axhline(100 * chance, color="#777777", linestyle=":", linewidth=1, label=f"chance ({100 * chance:.1f} %)")
        ax.legend(fontsize=7, loc="upper right")
    ax.set_ylabel("accuracy (% of test clips)")
    ax.set_title(f"accuracy per {what}" + (" (n: test clips)" if counts else ""))
    ax.set_ylim(0, 115)
    ax.tick_params(axis="x", rotation=45)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")  # rotated names end under their bar
    return _svg(fig)


def confusion_matrix_plot(matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> str:
    plt = _pyplot()
    cm = np.asarray(matrix, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    for i in range(len(classes)):
        for j in range(len(classes)):
            if cm[i, j]:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    bar = fig.colorbar(image, ax=ax, fraction=0.046)
    bar.set_label("share of the true class's clips (row-normalised); numbers are clip counts")
    return _svg(fig)


def learning_curves(history: list[dict]) -> str:
    """Training and validation loss (left) and validation macro accuracy (right), one colour per training stage
    (pretraining, fine-tuning, each pseudo-label round...), from a run record's history. Stages follow each
    other on one axis of epochs counted across stages (a stage's epoch 1 is not the previous stage's), split
    by dotted lines and named in the legend; every epoch has a marker, so a one-epoch stage shows."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    colours = plt.get_cmap("tab10")
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    start = 0
    for k, entry in enumerate(history):
        stage, records = entry["stage"], entry["epochs"]
        epochs = [start + r["epoch"] for r in records]
        colour = colours(k % 10)
        loss_ax.plot(epochs, [r["loss"] for r in records], color=colour, marker="o", markersize=3,
                     label=f"{stage}: train")
        if any("val_loss" in r for r in records):
            loss_ax.plot(epochs, [r.get("val_loss", np.nan) for r in records], color=colour, linestyle="--",
                         marker="s", markersize=3, fillstyle="none", label=f"{stage}: validation")
            acc_ax.plot(epochs, [100 * r.get("val_macro_accuracy", np.nan) for r in records], color=colour,
                        marker="o", markersize=3, label=stage)
        if k and len(history) > 1:
            for ax in (loss_ax, acc_ax):
                ax.axvline(start + 0.5, color="#999999", linestyle=":", linewidth=1)
        start = max(epochs, default=start)
    axis = "epoch (counted across stages)" if len(history) > 1 else "epoch"
    loss_ax.set(xlabel=axis, ylabel="loss", title="loss")
    acc_ax.set(xlabel=axis, ylabel="macro accuracy %", title="validation macro accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return _svg(fig)
