"""Optimisers, learning-rate schedules and model selection, as a run's config names them.

Every schedule is stepped once per optimiser step, so "every 2 epochs" means exactly the steps of two
epochs (``steps_per_epoch`` includes the repeats of ``min_epoch_clips``) and a resumed run continues the
schedule where it stopped.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import torch
import torch.nn as nn

from ascbench.config import RunConfig
from ascbench.metrics import macro_accuracy


def make_optimizer(params: Iterable[nn.Parameter], config: RunConfig, lr: float) -> torch.optim.Optimizer:
    params = list(params)
    if config.optimizer == "adam":  # torch's Adam adds weight decay to the gradient (L2), as the official code has it
        return torch.optim.Adam(params, lr=lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, config: RunConfig, lr: float, epochs: int,
                   steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler:
    total = epochs * steps_per_epoch
    if config.scheduler == "one-cycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total, pct_start=0.15)
    if config.scheduler == "step":  # as StepLR(step_size=step_epochs, gamma) stepped once per epoch
        every = config.step_epochs * steps_per_epoch
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: config.step_gamma ** (step // every))
    if config.scheduler == "cosine":  # linear warm-up, then half a cosine down to zero at the last step
        warmup = int(round(config.warmup_epochs * steps_per_epoch))

        def factor(step: int) -> float:
            if step < warmup:
                return step / max(1, warmup)
            progress = (step - warmup) / max(1, total - warmup)
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def validation_record(probs: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Accuracy, macro accuracy (mean of the class-wise accuracies of the classes present) and log loss."""
    predicted = probs.argmax(1)
    return {
        "val_accuracy": float(np.mean(predicted == truth)),
        "val_macro_accuracy": macro_accuracy(truth, predicted),
        "val_loss": float(-np.mean(np.log(np.clip(probs[np.arange(len(truth)), truth], 1e-15, 1.0)))),
    }


def selection_score(record: dict, select_on: str) -> tuple[float, float]:
    """Larger is better. With a few dozen validation clips accuracy moves in steps, so ties are broken by
    validation loss; without a validation side the training loss decides; "last" always prefers the newer epoch."""
    if select_on == "last":
        return (float(record["epoch"]), 0.0)
    if "val_loss" not in record:
        return (0.0, -record["loss"])
    if select_on == "loss":
        return (-record["val_loss"], 0.0)
    key = "val_macro_accuracy" if select_on == "macro-accuracy" else "val_accuracy"
    return (record[key], -record["val_loss"])
