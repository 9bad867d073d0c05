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
