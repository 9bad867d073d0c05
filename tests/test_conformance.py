"""The conformance kit on every built-in model, and on models that break its rules."""

import types

import pytest
import torch
import torch.nn as nn

from ascbench import hookimpl
from ascbench.registry import build_registry
from ascbench.specs import ModelSpec
from ascbench.testing import ConformanceError, check_model, model_checks

from small_models import SMALL as _ALL  # noqa: E402

SMALL = {k: v for k, v in _ALL.items() if k != "timm:mobilenetv3_small_050"}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_builtin_models_conform(name):
    check_model(name, **SMALL[name])


def _registry_with(model_cls, uses_city=False):
    @hookimpl
    def ascbench_models():
        return [ModelSpec("rule-breaker", lambda ctx, **kw: model_cls(ctx), uses_city=uses_city)]

    return build_registry([("bad-plugin", types.SimpleNamespace(ascbench_models=ascbench_models))], strict=True)


class WrongShape(nn.Module):
    def __init__(self, ctx):
        super().__init__()
        self.fc = nn.Linear(ctx.n_mels, ctx.num_classes + 1)

    def forward(self, x, city=None, time=None):
        return self.fc(x.mean(dim=(1, 3)))


class IgnoresCity(nn.Module):
    def __init__(self, ctx):
        super().__init__()
        self.fc = nn.Linear(ctx.n_mels, ctx.num_classes)

    def forward(self, x, city=None, time=None):
        return self.fc(x.mean(dim=(1, 3)))


def test_wrong_shape_fails_naming_the_check_and_plugin():
    with pytest.raises(ConformanceError, match=r"'rule-breaker' \(plugin 'bad-plugin'\) fails check_output_shape: .*\(4, 11\)"):
        check_model("rule-breaker", registry=_registry_with(WrongShape))


def test_declared_city_use_is_checked():
    with pytest.raises(ConformanceError, match="check_optional_context: declares uses_city"):
        check_model("rule-breaker", registry=_registry_with(IgnoresCity, uses_city=True))


def test_checks_are_named_for_parametrisation():
    names = [c.__name__ for c in model_checks("context-only")]
    assert names[0] == "check_output_shape" and "check_trains_one_step" in names


def test_wrong_shape_at_run_time_names_the_model_and_rule(runs):
    from ascbench.config import RunConfig
    from ascbench.errors import PluginError
    from ascbench.runner import execute

    registry = _registry_with(WrongShape)
    with pytest.raises(PluginError, match="'rule-breaker' broke the model contract at scratch, epoch 1"):
        execute(RunConfig(model="rule-breaker", strategy="scratch", dataset="embedded-tiny", epochs=1),
                registry=registry, progress=False)
    assert not (runs / "results.jsonl").exists()


# --- the kits of the other plugin kinds ---------------------------------------------------------------------

from ascbench.data.dataset import DatasetOptions  # noqa: E402
from ascbench.features import FeatureConfig  # noqa: E402
from ascbench.specs import DatasetSpec, FrontEndSpec, SemiSpec, StrategySpec  # noqa: E402
from ascbench.testing import (check_dataset, check_frontend, check_semi, check_strategy,  # noqa: E402
                              dataset_checks, frontend_checks, semi_checks, strategy_checks)
from ascbench.registry import get_registry  # noqa: E402


@pytest.mark.parametrize("name", ["embedded", "embedded-source", "embedded-tiny", "embedded-tiny-source"])
def test_builtin_datasets_conform(name):
    check_dataset(name)


@pytest.mark.parametrize("name", get_registry().names("front-end"))
def test_builtin_front_ends_conform(name):
    check_frontend(name)


# Each built-in strategy and semi method trains twice on embedded-tiny; scratch x none is covered by both lists.
@pytest.mark.parametrize("name", get_registry().names("strategy"))
def test_builtin_strategies_conform(name):
    check_strategy(name)


@pytest.mark.parametrize("name", [n for n in get_registry().names("semi") if n != "none"])
def test_builtin_semi_methods_conform(name):
    check_semi(name, options={"semi": {"rounds": 1}} if name == "pseudo-label" else None)


def _plugin_registry(**hooks):
    return build_registry([("bad-plugin", types.SimpleNamespace(**{k: hookimpl(v) for k, v in hooks.items()}))],
                          strict=True)


def test_a_dataset_whose_recording_spans_two_cities_fails_naming_the_check():
    def tangled(options):
        ds = get_registry().dataset("embedded-tiny").load(DatasetOptions())
        meta = ds.meta.copy()
        other = int((meta["city"] != meta.loc[0, "city"]).to_numpy().argmax())  # a clip from another city
        meta.loc[other, "group"] = meta.loc[0, "group"]
        return type(ds)(**{**ds.__dict__, "name": "tangled", "meta": meta})

    registry = _plugin_registry(ascbench_datasets=lambda: [DatasetSpec("tangled", tangled)])
    with pytest.raises(ConformanceError, match=r"dataset 'tangled' \(plugin 'bad-plugin'\) fails "
                                               r"check_dataset_groups_nest: recording .* spans several city"):
        check_dataset("tangled", registry)
    assert [c.__name__ for c in dataset_checks("tangled", registry)][0] == "check_dataset_is_reproducible"


def test_a_front_end_that_cannot_run_fails_naming_the_check():
    broken = FeatureConfig(16_000, 256, 800, 320, 64, 50.0, 8000.0)  # window longer than the FFT
    registry = _plugin_registry(ascbench_frontends=lambda: [FrontEndSpec("broken", broken)])
    with pytest.raises(ConformanceError, match=r"front-end 'broken' \(plugin 'bad-plugin'\) fails check_frontend_shape"):
        check_frontend("broken", registry)


def test_a_front_end_whose_bands_are_not_where_its_scale_says_fails():
    # Checked against a scale that disagrees with the filters (linear Hz), the tone lands in another band.
    import ascbench.testing.frontends as kit

    real = kit._hz_to_mel
    try:
        kit._hz_to_mel = lambda hz, scale: hz
        with pytest.raises(ConformanceError, match="check_frontend_tone_lands_in_its_band: a 1000 Hz tone is loudest"):
            frontend_checks("embedded")[2]()
    finally:
        kit._hz_to_mel = real


def test_a_strategy_that_peeks_at_the_test_side_fails():
    def peeking(job):
        from ascbench.device import Compute

        job.data.batch_on(job.partition.test[:4], Compute.from_names("cpu", "fp32"))  # looks at test clips
        return job.fit(job.build_model(), desc="peek")

    registry = _plugin_registry(ascbench_strategies=lambda: [StrategySpec("peeking", peeking, pretrains=False)])
    checks = {c.__name__: c for c in strategy_checks("peeking", registry)}
    checks["check_trains_and_scores"]()
    with pytest.raises(ConformanceError, match=r"strategy 'peeking' \(plugin 'bad-plugin'\) fails "
                                               r"check_never_reads_the_test_side: 4 test clip\(s\) read"):
        checks["check_never_reads_the_test_side"]()


def test_a_semi_method_with_unseeded_randomness_fails_reproducibility():
    import torch

    from ascbench.semi import supervised

    def noisy(job, model, lr, epochs, desc):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1e-2 * torch.randn(p.shape, generator=torch.Generator().manual_seed(torch.seed())))
        return supervised(job, model, lr, epochs, desc)

    registry = _plugin_registry(ascbench_semi_methods=lambda: [SemiSpec("noisy", noisy)])
    with pytest.raises(ConformanceError, match=r"semi-supervised method 'noisy' \(plugin 'bad-plugin'\) fails "
                                               r"check_is_reproducible"):
        check_semi("noisy", registry)
    assert [c.__name__ for c in semi_checks("noisy", registry)] == [
        "check_trains_and_scores", "check_never_reads_the_test_side", "check_is_reproducible"]


from ascbench.callbacks import RunLogger  # noqa: E402
from ascbench.specs import LoggerSpec, RecipeSpec  # noqa: E402
from ascbench.testing import check_logger, check_recipe, logger_checks, recipe_checks  # noqa: E402


@pytest.mark.parametrize("name", get_registry().names("recipe"))
def test_builtin_recipes_conform(name):
    check_recipe(name)


@pytest.mark.parametrize("name", get_registry().names("logger"))
def test_builtin_loggers_conform(name):
    import importlib.util

    if any(importlib.util.find_spec(m) is None for m in get_registry().logger(name).requires):
        pytest.skip(f"logger {name}'s package is not installed")
    check_logger(name)


def test_a_recipe_naming_a_model_that_does_not_exist_fails_naming_the_dataset():
    typo = RecipeSpec("typo", {"model": "mobileascnett"}, "a typo", source="x", identical="y",
                      per_dataset={"embedded-tiny": {"epochs": 2}})
    registry = _plugin_registry(ascbench_recipes=lambda: [typo])
    with pytest.raises(ConformanceError, match=r"recipe 'typo' \(plugin 'bad-plugin'\) fails "
                                               r"check_recipe_is_a_valid_config: on dataset 'embedded'.*mobileascnett"):
        check_recipe("typo", registry)
    assert [c.__name__ for c in recipe_checks("typo", registry)] == [
        "check_recipe_is_a_valid_config", "check_recipe_says_what_it_reproduces", "check_recipe_options"]


def test_a_recipe_without_its_source_or_with_undocumented_options_fails():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Bare:
        steps: int = 3  # no help text

    silent = RecipeSpec("silent", {"epochs": 2}, "terse", departures=("none",))
    bare = RecipeSpec("bare", {"epochs": 2}, "d", source="s", identical="i", options_class=Bare,
                      configure=lambda options, settings: settings)
    registry = _plugin_registry(ascbench_recipes=lambda: [silent, bare])
    with pytest.raises(ConformanceError, match="check_recipe_says_what_it_reproduces: description, source and identical"):
        recipe_checks("silent", registry)[1]()
    with pytest.raises(ConformanceError, match=r"check_recipe_options: options without a help text: \['steps'\]"):
        recipe_checks("bare", registry)[2]()


def test_a_logger_that_breaks_on_an_unscored_run_fails_naming_the_step(tmp_path):
    class Fragile(RunLogger):
        def finish(self, summary):
            print(f"{summary['macro_accuracy']:.3f}")  # None when the run has no test side

    registry = _plugin_registry(ascbench_loggers=lambda: [LoggerSpec("fragile", lambda ctx: Fragile())])
    with pytest.raises(ConformanceError, match=r"logger 'fragile' \(plugin 'bad-plugin'\) fails "
                                               r"check_logger_takes_every_event: finish raised TypeError"):
        logger_checks("fragile", registry)[0]()


# --- the metric kit -------------------------------------------------------------------------------------------------

import numpy as np  # noqa: E402

from ascbench.specs import MetricSpec  # noqa: E402
from ascbench.testing import check_metric  # noqa: E402


@pytest.mark.parametrize("name", get_registry().names("metric"))
def test_builtin_metrics_conform(name):
    check_metric(name)


def _metric_registry(compute, higher_is_better=True):
    @hookimpl
    def ascbench_metrics():
        return [MetricSpec("odd-metric", compute, higher_is_better)]

    return build_registry([("metric-plugin", types.SimpleNamespace(ascbench_metrics=ascbench_metrics))], strict=True)


def _accuracy(y_true, probs, classes):
    return float(np.mean(probs.argmax(axis=1) == y_true))


def _sorts_in_place(y_true, probs, classes):
    probs.sort(axis=1)
    return 0.5


@pytest.mark.parametrize("compute, higher, rule", [
    (_accuracy, False, r"check_metric_ranks_the_way_it_declares: declares lower is better"),
    (lambda y, p, c: float("nan"), True, r"check_metric_gives_a_finite_number: .*finite number, got nan"),
    (lambda y, p, c: float(np.mean((p.argmax(1) == y) * np.linspace(0, 1, len(y)))), True,  # weighs clips by position
     r"check_metric_is_a_function_of_the_predictions: gives .* reordered"),
    (_sorts_in_place, True, r"check_metric_is_a_function_of_the_predictions: compute changed the arrays"),
    (lambda y, p, c: p[len(y)], True, r"check_metric_gives_a_finite_number: compute raised IndexError"),
], ids=["wrong-direction", "nan", "order-dependent", "mutates", "raises"])
def test_a_metric_breaking_a_rule_fails_naming_it(compute, higher, rule):
    with pytest.raises(ConformanceError, match=r"metric 'odd-metric' \(plugin 'metric-plugin'\) fails " + rule):
        check_metric("odd-metric", registry=_metric_registry(compute, higher))
