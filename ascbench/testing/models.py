"""The model kit: forward signature and shape, optional context, the unknown city, determinism, complexity,
state-dict round trip, one training step."""

from __future__ import annotations

import io
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ascbench.complexity import profile
from ascbench.config import RunConfig
from ascbench.registry import Registry, get_registry
from ascbench.specs import ModelContext, ModelSpec
from ascbench.testing.kit import ConformanceError, bind
from ascbench.training import create_model

CONTEXT = ModelContext(num_classes=10, num_cities=5, time_dim=8, n_mels=64, n_frames=51)




def _build(spec: ModelSpec, kwargs: dict[str, Any], seed: int = 0) -> nn.Module:
    return create_model(spec, CONTEXT, RunConfig(model=spec.name, model_kwargs=kwargs, seed=seed))


def _inputs(batch: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 1, CONTEXT.n_mels, CONTEXT.n_frames, generator=g)
    city = torch.randint(1, CONTEXT.num_cities, (batch,), generator=g)
    return x, city, torch.randn(batch, CONTEXT.time_dim, generator=g)


def _expect(condition: bool, spec: ModelSpec, owner: str, check: str, why: str) -> None:
    if not condition:
        raise ConformanceError(f"model {spec.name!r} (plugin {owner!r}) fails {check}: {why}")


def check_output_shape(spec, owner, kwargs):
    """forward(x, city, time) returns float logits of shape (batch, num_classes)."""
    out = _build(spec, kwargs).eval()(*_inputs())
    _expect(isinstance(out, torch.Tensor), spec, owner, "check_output_shape", f"forward returned {type(out).__name__}")
    _expect(tuple(out.shape) == (4, CONTEXT.num_classes), spec, owner, "check_output_shape",
            f"forward returned shape {tuple(out.shape)}, expected (4, {CONTEXT.num_classes})")
    _expect(out.dtype == torch.float32, spec, owner, "check_output_shape", f"logits are {out.dtype}, expected float32")


def check_optional_context(spec, owner, kwargs):
    """forward works without city and time (they are optional), and uses them when it declares so."""
    model = _build(spec, kwargs).eval()
    x, city, time = _inputs()
    with torch.no_grad():
        plain = model(x)
        _expect(tuple(plain.shape) == (4, CONTEXT.num_classes), spec, owner, "check_optional_context",
                "forward(x) without city/time must work")
        if spec.uses_city:
            other = model(x, (city % (CONTEXT.num_cities - 1)) + 1, time)
            _expect(not torch.allclose(model(x, city, time), other), spec, owner, "check_optional_context",
                    "declares uses_city but the city index does not change the output")


def check_unknown_city(spec, owner, kwargs):
    """City index 0 (unknown) is accepted and gives finite output."""
    x, _, time = _inputs()
    with torch.no_grad():
        out = _build(spec, kwargs).eval()(x, torch.zeros(4, dtype=torch.long), time)
    _expect(bool(torch.isfinite(out).all()), spec, owner, "check_unknown_city", "non-finite logits for the unknown city")


def check_deterministic(spec, owner, kwargs):
    """The same seed builds the same weights and the same outputs."""
    a, b = _build(spec, kwargs, seed=3).eval(), _build(spec, kwargs, seed=3).eval()
    with torch.no_grad():
        _expect(torch.equal(a(*_inputs()), b(*_inputs())), spec, owner, "check_deterministic",
                "two models built with the same seed give different outputs")


def check_complexity(spec, owner, kwargs):
    """Parameters and MACs can be counted (every layer has a MAC rule)."""
    try:
        c = profile(_build(spec, kwargs), CONTEXT.n_mels, CONTEXT.n_frames, CONTEXT.time_dim)
    except Exception as exc:
        raise ConformanceError(f"model {spec.name!r} (plugin {owner!r}) fails check_complexity: {exc}") from exc
    _expect(c.params > 0, spec, owner, "check_complexity", "the model has no parameters")


def check_state_dict_roundtrip(spec, owner, kwargs):
    """Weights saved with torch.save load into a fresh instance and give identical outputs."""
    model, fresh = _build(spec, kwargs, seed=1).eval(), _build(spec, kwargs, seed=2).eval()
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    with torch.no_grad():
        _expect(torch.equal(model(*_inputs()), fresh(*_inputs())), spec, owner, "check_state_dict_roundtrip",
                "a reloaded state dict gives different outputs")


def check_trains_one_step(spec, owner, kwargs):
    """One optimiser step gives a finite loss and finite gradients, and changes the weights."""
    model = _build(spec, kwargs).train()
    x, city, time = _inputs()
    loss = F.cross_entropy(model(x, city, time), torch.arange(4) % CONTEXT.num_classes)
    _expect(bool(torch.isfinite(loss)), spec, owner, "check_trains_one_step", f"loss is {loss.item()}")
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    _expect(bool(grads) and all(torch.isfinite(g).all() for g in grads), spec, owner, "check_trains_one_step",
            "no gradient reached the parameters, or a gradient is not finite")


CHECKS: tuple[Callable, ...] = (check_output_shape, check_optional_context, check_unknown_city, check_deterministic,
                                check_complexity, check_state_dict_roundtrip, check_trains_one_step)


def model_checks(name: str, registry: Registry | None = None, **model_kwargs) -> list[Callable[[], None]]:
    """Each conformance check bound to one registered model, ready to call (and named after the check)."""
    registry = registry or get_registry()
    return bind(CHECKS, registry.model(name), registry.owner("model", name), model_kwargs)


def check_model(name: str, registry: Registry | None = None, **model_kwargs) -> None:
    """Run every conformance check on a registered model; raises ``ConformanceError`` on the first failure."""
    for check in model_checks(name, registry, **model_kwargs):
        check()
