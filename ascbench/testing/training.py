"""The strategy and semi-supervised method kits: run the plugin end to end on the tiny embedded dataset (twice,
with the same seed) and check that it trains and scores, never reads a clip of the test side before the final
scoring, and gives the same numbers again. Both runs are made once per kit and shared by its checks."""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from ascbench.config import RunConfig
from ascbench.errors import PluginError
from ascbench.registry import Registry, get_registry
from ascbench.testing.kit import ConformanceError, bind

DEFAULT_MODEL = ("mobileascnet", {"stem_channels": 8, "channels": [8, 16, 16], "gru_hidden": 16})


@dataclass
class Trial:
    """Two runs of one configuration, with every training read recorded; made on first use."""

    kind: str
    name: str
    registry: Registry
    config: RunConfig
    _runs: list = field(default_factory=list)

    @property
    def owner(self) -> str:
        return self.registry.owner(self.kind, self.name)

    def fail(self, check: str, why: str) -> ConformanceError:
        what = "semi-supervised method" if self.kind == "semi" else self.kind
        return ConformanceError(f"{what} {self.name!r} (plugin {self.owner!r}) fails {check}: {why}")

    def runs(self) -> list[tuple[Any, set[int], set[int]]]:
        """(record, rows read while training, test rows) for each of the two runs."""
        if not self._runs:
            for _ in range(2):
                with tempfile.TemporaryDirectory(prefix="ascbench-kit-") as root:
                    try:
                        self._runs.append(_run_watching_reads(self.config, self.registry, root))
                    except PluginError as exc:  # it raised, or returned None or the wrong type: the run cannot end
                        raise self.fail("a run on embedded-tiny", str(exc)) from exc
        return self._runs


@contextlib.contextmanager
def _recording_reads(seen: set[int]):
    """Record every row of the run's dataset read through ``DataBundle.batch_on`` (how the loop, validation and
    pseudo-labelling read clips) until the runner's final scoring starts."""
    import ascbench.pipeline as pipeline
    from ascbench.training import DataBundle

    real_batch, real_predict, state = DataBundle.batch_on, pipeline.predict, {"on": True}

    def batch_on(bundle, rows, compute):
        if state["on"] and bundle.dataset.name == target[0]:
            seen.update(int(r) for r in rows)
        return real_batch(bundle, rows, compute)

    def final_predict(*args, **kwargs):
        state["on"] = False
        return real_predict(*args, **kwargs)

    target = [None]
    DataBundle.batch_on, pipeline.predict = batch_on, final_predict
    try:
        yield target
    finally:
        DataBundle.batch_on, pipeline.predict = real_batch, real_predict


def _run_watching_reads(config: RunConfig, registry: Registry, root: str):
    from ascbench.runner import execute

    seen: set[int] = set()
    with _recording_reads(seen) as target:
        target[0] = config.dataset
        record = execute(config, registry=registry, runs_root=root, progress=False)
    split = pd.read_csv(f"{root}/{record.run_id}/split.csv")
    return record, seen, set(np.flatnonzero(split["role"].to_numpy() == "test"))


def check_trains_and_scores(trial: Trial) -> None:
    """The run ends with a model that scores the test side: finite macro accuracy in [0, 1]."""
    record = trial.runs()[0][0]
    score = record.metrics["macro_accuracy"]
    if score is None or not 0.0 <= score <= 1.0:
        raise trial.fail("check_trains_and_scores", f"macro accuracy {score!r}")


def check_never_reads_the_test_side(trial: Trial) -> None:
    """No clip of the test side is read before the final scoring (not to train, validate or pseudo-label)."""
    record, seen, test = trial.runs()[0]
    if not seen:
        raise trial.fail("check_never_reads_the_test_side", "training read no clip at all")
    leaked = sorted(seen & test)
    if leaked:
        raise trial.fail("check_never_reads_the_test_side", f"{len(leaked)} test clip(s) read while training, "
                         f"e.g. row {leaked[0]}")


def check_is_reproducible(trial: Trial) -> None:
    """The same config and seed give the same predictions (confusion matrix and log loss), so a row re-runs."""
    (a, _, _), (b, _, _) = trial.runs()
    same = a.metrics["confusion_matrix"] == b.metrics["confusion_matrix"] and a.metrics["log_loss"] == b.metrics["log_loss"]
    if not same:
        raise trial.fail("check_is_reproducible", f"two runs with seed {trial.config.seed} differ "
                         f"(log loss {a.metrics['log_loss']} vs {b.metrics['log_loss']})")


CHECKS: tuple[Callable, ...] = (check_trains_and_scores, check_never_reads_the_test_side, check_is_reproducible)


def _config(fields: dict[str, Any], model: str, model_kwargs: dict | None, options: dict | None,
            registry: Registry) -> RunConfig:
    # A short pretraining stage only where the strategy has one: a setting the run does not read is refused.
    short = {"pretrain_epochs": 1} if registry.strategy(fields["strategy"]).pretrains is not False else {}
    return RunConfig.from_dict({"dataset": "embedded-tiny", "model": model, "model_kwargs": model_kwargs or {},
                                "epochs": 2, **short, "min_epoch_clips": 0, "threads": 1, "seed": 1,
                                **fields, "options": options or {}})


def strategy_checks(name: str, registry: Registry | None = None, model: str = DEFAULT_MODEL[0],
                    model_kwargs: dict | None = DEFAULT_MODEL[1], options: dict | None = None) -> list[Callable[[], None]]:
    """Each strategy check bound to one registered strategy, trained on ``embedded-tiny`` with a narrow model;
    ``options`` are the run's plugin options by kind (``{"strategy": {"lr_scale": 0.1}}``)."""
    registry = registry or get_registry()
    registry.strategy(name)
    trial = Trial("strategy", name, registry, _config({"strategy": name}, model, model_kwargs, options, registry))
    return bind(CHECKS, trial)


def semi_checks(name: str, registry: Registry | None = None, model: str = DEFAULT_MODEL[0],
                model_kwargs: dict | None = DEFAULT_MODEL[1], options: dict | None = None) -> list[Callable[[], None]]:
    """Each semi-supervised method check bound to one registered method, under the ``scratch`` strategy."""
    registry = registry or get_registry()
    registry.semi(name)
    trial = Trial("semi", name, registry, _config({"strategy": "scratch", "semi": name}, model, model_kwargs, options, registry))
    return bind(CHECKS, trial)


def check_strategy(name: str, registry: Registry | None = None, **kwargs: Any) -> None:
    """Run every strategy check; raises ``ConformanceError`` on the first failure."""
    for check in strategy_checks(name, registry, **kwargs):
        check()


def check_semi(name: str, registry: Registry | None = None, **kwargs: Any) -> None:
    """Run every semi-supervised method check; raises ``ConformanceError`` on the first failure."""
    for check in semi_checks(name, registry, **kwargs):
        check()


__all__ = ["strategy_checks", "semi_checks", "check_strategy", "check_semi", "Trial"]
