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


def accuracy_vs_macs(table: pd.DataFrame, chance: float | None = None, ceiling: float | None = None,
                     title: str = "") -> str:
    """One dataset x protocol (scores under different protocols are not comparable): each row a point at its
    mean macro accuracy with its 95 % interval as a whisker, coloured by training recipe and numbered as in the
    table (numbers instead of names, so labels stay short), the Pareto front, chance and the metadata ceiling
    as lines; the legend sits outside the data. Rows of one model share its MACs: they are drawn slightly apart
    (``_dodged``) so each stays readable."""
    plt = _pyplot()
    recipe = [s if m == "none" else f"{s} + {m}" for s, m in zip(table["strategy"], table.get("semi", ["none"] * len(table)))]
    colours = plt.get_cmap("tab10")
    acc = 100 * table["macro_accuracy"].to_numpy(float)
    macs = _dodged(table["macs"].to_numpy(float), acc)
    low = 100 * table["ci_low"].to_numpy(float) if "ci_low" in table else np.full(len(table), np.nan)
    high = 100 * table["ci_high"].to_numpy(float) if "ci_high" in table else np.full(len(table), np.nan)
    fig, ax = plt.subplots(figsize=(8.5, 4.6))
    for k, name in enumerate(dict.fromkeys(recipe)):
        mine = np.array([r == name for r in recipe])
        spread = np.where(np.isnan(low[mine]), 0, [acc[mine] - low[mine], high[mine] - acc[mine]])
        ax.errorbar(macs[mine], acc[mine], yerr=spread, fmt="o", color=colours(k % 10), ecolor=colours(k % 10),
                    elinewidth=0.8, capsize=2, markersize=4.5, label=name, zorder=3, alpha=0.9)
    # A small fixed offset per point, alternating sides, keeps equal-MAC points (one model, several recipes) apart.
    for i, (x, y) in enumerate(zip(macs, acc)):
        ax.annotate(str(i + 1), (x, y), fontsize=6.5, xytext=(4 if i % 2 else -10, 2), textcoords="offset points")
    front = pareto_front(list(table["macs"].to_numpy(float)), list(acc))  # found on the true MACs, drawn where shown
    ax.plot(macs[front], acc[front], color="#cc3311", linestyle="--", linewidth=1, label="Pareto front", zorder=2)
    if chance is not None:
        ax.axhline(100 * chance, color="#777777", linestyle=":", linewidth=1, label=f"chance ({100 * chance:.1f} %)")
    if ceiling is not None and not np.isnan(ceiling):
        ax.axhline(100 * ceiling, color="#0077bb", linestyle="-.", linewidth=1,
                   label=f"metadata ceiling ({100 * ceiling:.1f} %)")
    ax.set_xscale("log")
    ax.set_xlabel("MACs per clip (log scale)")
    ax.set_ylabel("macro accuracy (%): mean, 95 % CI")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return _svg(fig)


def grouped_accuracy_bars(values: dict[str, float], what: str) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = list(values)
    ax.bar(names, [100 * values[n] for n in names], color="#228833")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"accuracy per {what}")
    ax.set_ylim(0, 100)
    ax.tick_params(axis="x", rotation=45)
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
    fig.colorbar(image, ax=ax, fraction=0.046)
    return _svg(fig)


def learning_curves(history: list[dict]) -> str:
    """Training and validation loss (left) and validation macro accuracy (right) by epoch, one colour per
    training stage (pretraining, fine-tuning, each pseudo-label round...), from a run record's history."""
    plt = _pyplot()
    colours = plt.get_cmap("tab10")
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    for k, entry in enumerate(history):
        stage, records = entry["stage"], entry["epochs"]
        epochs = [r["epoch"] for r in records]
        colour = colours(k % 10)
        loss_ax.plot(epochs, [r["loss"] for r in records], color=colour, label=f"{stage}: train")
        if any("val_loss" in r for r in records):
            loss_ax.plot(epochs, [r.get("val_loss", np.nan) for r in records], color=colour, linestyle="--",
                         label=f"{stage}: validation")
            acc_ax.plot(epochs, [100 * r.get("val_macro_accuracy", np.nan) for r in records], color=colour,
                        marker="o", markersize=3, label=stage)
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="macro accuracy %", title="validation macro accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return _svg(fig)
