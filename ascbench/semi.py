"""Semi-supervised training's interface, orthogonal to the strategy (``--semi``).

A strategy decides the starting weights and what is frozen; the semi-supervised method (a plugin's
``SemiSpec.fit``) decides how the unlabeled training clips are used while fitting, and trains through
``fit_rows``. Only ``partition.unlabeled`` is ever read without its label; validation and test clips are never
pseudo-labelled. The built-in methods (pseudo-label, mean teacher) live in ``ascbench_plugins.semi_methods``;
``supervised`` (labeled clips only) is here, the building block every method starts from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch.nn as nn

from ascbench.fitting import fit
from ascbench.training import FitResult, TrainingHook

if TYPE_CHECKING:  # pragma: no cover
    from ascbench.job import TrainingJob


def fit_rows(job: "TrainingJob", model: nn.Module, rows: np.ndarray, targets: np.ndarray | None, lr: float,
             epochs: int, desc: str, hook: TrainingHook | None = None) -> FitResult:
    """Fit ``model`` on ``rows`` (their labels, or ``targets`` such as pseudo-labels), validating on the run's
    validation clips: the one training call a semi-supervised method needs."""
    return fit(model, job.data, rows, job.partition.val, targets=targets, epochs=epochs, lr=lr, config=job.config,
               seed=job.config.seed, desc=desc, hook=hook, progress=job.progress)


def supervised(job: "TrainingJob", model: nn.Module, lr: float, epochs: int, desc: str) -> list[FitResult]:
    """Labeled clips only (``--semi none``): the unlabeled pool is not used."""
    return [fit_rows(job, model, job.partition.labeled, None, lr, epochs, desc)]
