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
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    macs, acc = table["macs"].to_numpy(float), 100 * table["accuracy"].to_numpy(float)
    labels = [f"{m} / {s}" for m, s in zip(table["model"], table["strategy"])]
    ax.scatter(macs, acc, color="#4477aa", zorder=3)
    for x, y, label in zip(macs, acc, labels):
        ax.annotate(label, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    front = pareto_front(list(macs), list(acc))
    ax.plot(macs[front], acc[front], color="#cc3311", linestyle="--", label="Pareto front", zorder=2)
    ax.set_xscale("log")
    ax.set_xlabel("MACs per clip (log scale)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title or "accuracy vs. complexity")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
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
