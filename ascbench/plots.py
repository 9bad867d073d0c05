"""Plots people would rather look at than read: accuracy vs. MACs (with the Pareto front),
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


def accuracy_vs_macs(table: pd.DataFrame, title: str = "") -> str:
    """One panel per dataset and protocol (scores under different protocols are not comparable), points
    coloured by training recipe, each panel's Pareto front drawn and its points named."""
    plt = _pyplot()
    panels = list(dict.fromkeys(zip(table["dataset"], table["protocol"])))
    recipe = [s if m == "none" else f"{s} + {m}" for s, m in zip(table["strategy"], table.get("semi", ["none"] * len(table)))]
    recipes = list(dict.fromkeys(recipe))
    colours = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.8), sharex=True, sharey=True, squeeze=False)
    for ax, (dataset, protocol) in zip(axes[0], panels):
        rows = np.flatnonzero((table["dataset"] == dataset).to_numpy() & (table["protocol"] == protocol).to_numpy())
        macs, acc = table["macs"].to_numpy(float)[rows], 100 * table["macro_accuracy"].to_numpy(float)[rows]
        for k, name in enumerate(recipes):
            mine = [j for j, r in enumerate(rows) if recipe[r] == name]
            if mine:
                ax.scatter(macs[mine], acc[mine], color=colours(k % 10), label=name, zorder=3, s=22)
        front = pareto_front(list(macs), list(acc))
        ax.plot(macs[front], acc[front], color="#cc3311", linestyle="--", label="Pareto front", zorder=2)
        for j in front:
            r = rows[j]
            ax.annotate(f"{table['model'].iloc[r]} / {recipe[r]}", (macs[j], acc[j]), fontsize=7, xytext=(4, -3),
                        textcoords="offset points")
        ax.set_xscale("log")
        all_macs = table["macs"].to_numpy(float)
        ax.set_xlim(all_macs.min() / 2, all_macs.max() * 40)  # room on the right for the names
        ax.set_xlabel("MACs per clip (log scale)")
        ax.set_title(f"{dataset} / {protocol}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("macro accuracy (%), mean over seeds")
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:  # every recipe once, whichever panel has it
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in labels:
                handles.append(h)
                labels.append(l)
    axes[0][-1].legend(handles, labels, fontsize=8, loc="lower right")
    fig.suptitle(title or "macro accuracy vs. complexity (Pareto front per protocol)")
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
