"""Full-size runs on the default embedded dataset (marked slow: minutes, not seconds)."""

import pytest

from ascbench.config import RunConfig
from ascbench.runner import execute

pytestmark = pytest.mark.slow


def test_default_run_is_well_above_chance_and_shift_costs_accuracy(runs):
    scores = {p: execute(RunConfig(protocol=p, seed=0), progress=False).metrics["accuracy"]
              for p in ("official", "unseen-city", "unseen-time")}
    assert scores["official"] >= 0.2  # at least twice chance (10 classes)
    assert scores["unseen-city"] < scores["official"]
    assert scores["unseen-time"] < scores["official"]
