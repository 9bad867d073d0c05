"""What recipes share: a training budget that scales a recipe's epoch counts and keeps its schedule's shape.

A published recipe trains for 20 to 150 epochs, hours on a CPU. ``--set recipe.budget=0.1`` runs the same
recipe at a tenth of that: every epoch count and every schedule length measured in epochs (warm-up, step
interval, patience) is scaled alike, so the learning-rate curve and early stopping keep their shape. A run
at another budget is another experiment (its options are saved with it, and its leaderboard row says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ascbench.errors import ConfigError
from ascbench.specs import Departure, RecipeSpec

# Whole numbers of epochs (at least 1 where the recipe set one; 0 means "off" and stays 0), and fractional ones.
WHOLE_EPOCH_FIELDS = ("epochs", "pretrain_epochs", "step_epochs", "patience", "min_epochs")
FRACTIONAL_EPOCH_FIELDS = ("warmup_epochs",)
# Fields whose harness default would shape a recipe's training if it left them out (validation share, city
# dropout, normalisation, semi-supervision): a recipe that accounts for its settings sets each explicitly.
SILENT_DEFAULTS = ("val_fraction", "city_dropout", "normalization", "semi")


@dataclass(frozen=True)
class BudgetOptions:
    """A recipe's options class, or the base of one: ``recipe.budget``."""

    budget: float = field(default=1.0, metadata={
        "help": "fraction of the recipe's epoch budget (epochs, pretraining epochs, warm-up, step interval and "
                "patience scale alike); 0.1 tries a 150-epoch recipe in 15"})

    def __post_init__(self) -> None:
        if not 0 < self.budget <= 1:
            raise ConfigError(f"recipe.budget must be in (0, 1], got {self.budget!r} (1 is the recipe as published)")


def scale_budget(settings: dict[str, Any], budget: float) -> dict[str, Any]:
    """``settings`` with every epoch count scaled by ``budget`` (whole counts rounded, never below 1)."""
    if budget == 1.0:
        return dict(settings)
    out = dict(settings)
    for name in WHOLE_EPOCH_FIELDS:
        if out.get(name):
            out[name] = max(1, round(out[name] * budget))
    for name in FRACTIONAL_EPOCH_FIELDS:
        if out.get(name):
            out[name] = out[name] * budget
    return out


def configure_budget(options: BudgetOptions, settings: dict[str, Any]) -> dict[str, Any]:
    """``RecipeSpec.configure`` for a recipe whose only option is the budget."""
    return scale_budget(settings, options.budget)


def unaccounted_settings(spec: RecipeSpec, dataset: str | None = None) -> list[str]:
    """The settings ``spec`` makes for ``dataset`` (at its options' defaults) that are neither stated by its source
    (``from_source``) nor named by a ``Departure``, and the ``SILENT_DEFAULTS`` it leaves to the harness."""
    declared = set(spec.from_source).union(*(d.settings for d in spec.departures if isinstance(d, Departure)))
    made = spec.settings_for(dataset)
    return sorted((set(made) - declared) | (set(SILENT_DEFAULTS) - set(made)))
