"""Speed paths that must not change results: --precision auto resolves as documented and is recorded, reduced
precision computes channels_last where the model's spec allows it (and fp32 never does), inference follows the
training stage's precision, and every path gives finite outputs close to fp32 contiguous."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ascbench import device as device_mod
from ascbench.device import Compute, ModelNeeds, cpu_computes_bf16, model_compute, resolve_precision
from ascbench.errors import ConfigError
from ascbench.specs import ModelSpec

CPU = torch.device("cpu")


@pytest.fixture
def cpu_flags(monkeypatch):
    """Set what the CPU reports: torch's dispatch level and the kernel's flags (the cached answer cleared)."""
    def set_flags(capability: str, flags: set[str]) -> None:
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
        monkeypatch.setattr(device_mod, "_cpuinfo_flags", lambda: set(flags))
        cpu_computes_bf16.cache_clear()

    yield set_flags
    cpu_computes_bf16.cache_clear()


@pytest.mark.parametrize("capability,flags,native", [
    ("AVX512", {"avx512f", "avx512_bf16"}, True),  # AMD EPYC (Zen 4): AVX512-BF16, no AMX
    ("AVX512", {"avx512f", "amx_bf16", "amx_tile"}, True),  # Intel Sapphire Rapids
    ("AMX", set(), True),  # torch's own dispatch level names AMX
    ("AVX512", {"avx512f"}, False),  # Skylake-X: AVX-512 without bf16
    ("AVX2", {"avx2"}, False),
    ("DEFAULT", set(), False),  # not x86, or no flags readable
])
def test_auto_is_bf16_only_where_the_cpu_computes_bf16(cpu_flags, capability, flags, native):
    cpu_flags(capability, flags)
    precision, reason = resolve_precision("auto", CPU)
    assert precision == ("bf16" if native else "fp32") and reason.startswith("auto:")
    compute = Compute.from_names("cpu", "auto")
    assert compute.precision == precision and compute.describe()["precision_requested"] == "auto"
    assert compute.describe()["precision_reason"] == reason


def test_explicit_precisions_are_themselves_and_auto_respects_fp32_only(cpu_flags):
    cpu_flags("AVX512", {"avx512_bf16"})
    assert resolve_precision("bf16", CPU) == ("bf16", "requested")
    assert resolve_precision("fp32", CPU) == ("fp32", "requested")
    precision, reason = resolve_precision("auto", CPU, ModelNeeds(fp32_only=True))
    assert precision == "fp32" and "fp32_only" in reason
    with pytest.raises(ConfigError, match="fp32_only"):
        Compute.from_names("cpu", "bf16", ModelNeeds(fp32_only=True))
    # Predicting from stored weights elsewhere falls back instead of failing.
    fallback = Compute.from_names("cpu", "fp16", strict=False)
    assert fallback.precision == "fp32" and fallback.reason.startswith("fallback")


def test_channels_last_only_under_reduced_precision_and_only_when_the_spec_allows():
    allows = ModelNeeds(channels_last=True)
    assert Compute.from_names("cpu", "bf16", allows).channels_last
    assert not Compute.from_names("cpu", "fp32", allows).channels_last  # fp32 numbers stay as published
    assert not Compute.from_names("cpu", "bf16", ModelNeeds()).channels_last  # opt-in
    assert ModelSpec("x", lambda ctx: None).channels_last is False
    batch = torch.zeros(2, 3, 5, 7)
    assert Compute.from_names("cpu", "bf16", allows).model_input(batch).is_contiguous(memory_format=torch.channels_last)
    assert Compute.from_names("cpu", "fp32", allows).model_input(batch) is batch


def test_the_built_in_convolutional_models_declare_channels_last(registry):
    for name in ("mobileascnet", "mobileascnet-tiny", "cp-mobile", "se-trans"):
        assert registry.model(name).channels_last, name


def _inputs(n_frames: int = 51, batch: int = 4):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(batch, 1, 64, n_frames, generator=g), torch.randint(0, 4, (batch,), generator=g),
            torch.randn(batch, 8, generator=g))


@pytest.mark.parametrize("name", ["mobileascnet-tiny", "cp-mobile", "se-trans"])
def test_channels_last_and_bf16_give_finite_logits_close_to_fp32_contiguous(registry, name):
    from ascbench.config import RunConfig
    from ascbench.specs import ModelContext
    from ascbench.training import create_model

    spec = registry.model(name)
    ctx = ModelContext(num_classes=10, num_cities=4, time_dim=8, n_mels=64, n_frames=101)
    x, city, time = _inputs()
    reference = create_model(spec, ctx, RunConfig(model=name)).eval()
    with torch.inference_mode():
        expected = reference(x, city, time)
    for precision in ("fp32", "bf16"):
        compute = Compute.from_names("cpu", precision, ModelNeeds.of(spec))
        model = compute.prepare(create_model(spec, ctx, RunConfig(model=name)).eval())
        assert model_compute(model) == compute
        with torch.inference_mode(), compute.autocast():
            got = model(compute.model_input(x), city, time).float()
        assert torch.isfinite(got).all()
        if precision == "fp32":  # the default path is the one published numbers come from: unchanged
            assert torch.equal(got, expected)
        else:
            scale = expected.abs().max().item()
            assert (got - expected).abs().max().item() < 0.05 * scale + 0.05, name


def test_predict_follows_the_training_stage_precision(registry, monkeypatch):
    """predict() computes under the autocast and memory format its model was prepared with."""
    from ascbench import training
    from ascbench.config import RunConfig

    spec = registry.model("mobileascnet-tiny")
    data = _bundle()
    for precision, expected in (("fp32", (False, False)), ("bf16", (True, True))):
        seen: list[tuple] = []
        model = training.create_model(spec, data.model_context(), RunConfig(model=spec.name))
        Compute.from_names("cpu", precision, ModelNeeds.of(spec)).prepare(model)
        model.register_forward_pre_hook(lambda _, args: seen.append(
            (torch.is_autocast_enabled("cpu"), model.stem[0].weight.stride(1) == 1)))  # NHWC strides
        probs = training.predict(model, data, np.arange(10))
        assert np.isfinite(probs).all() and probs.dtype == np.float64
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-9)
        assert seen and set(seen) == {expected}, precision


def _bundle():
    from types import SimpleNamespace

    import pandas as pd

    from ascbench.training import DataBundle

    n = 10
    features = np.random.default_rng(0).standard_normal((n, 64, 101)).astype(np.float32)
    dataset = SimpleNamespace(classes=[f"c{i}" for i in range(10)], meta=pd.DataFrame({"city": ["a"] * n}))
    return DataBundle(dataset, features, np.zeros(n, np.int64), np.ones(n, np.int64), np.zeros((n, 8), np.float32),
                      ["a"], np.zeros(64, np.float32), np.ones(64, np.float32))


def test_a_run_records_the_resolved_precision(runs, cpu_flags):
    from ascbench.cli import main
    from ascbench.results import load_rows

    cpu_flags("AVX2", {"avx2"})  # auto must resolve to fp32 here, whatever this machine is
    assert main(["run", "--dataset", "embedded-tiny", "--model", "context-only", "--strategy", "scratch",
                 "--epochs", "1", "--no-progress", "--device", "cpu", "--precision", "auto"]) == 0
    (row,) = load_rows(runs)
    compute = json.loads((runs / row["run_id"] / "metrics.json").read_text())["compute"]
    assert row["precision"] == "fp32" and compute["precision"] == "fp32"
    assert compute["precision_requested"] == "auto" and "no bf16 instructions" in compute["precision_reason"]
    assert compute["memory_format"] == "contiguous"


def _fresh_fold(model: torch.nn.Module) -> torch.nn.Module:
    """The folded copy built from scratch, as inference_model did on every call before it kept one."""
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = copy.deepcopy(model)
    for sequential in folded.modules():
        for i in device_mod._foldable_pairs(sequential):
            sequential[i] = fuse_conv_bn_eval(sequential[i], sequential[i + 1])
            sequential[i + 1] = torch.nn.Identity()
    return folded.to(memory_format=torch.channels_last)


@pytest.mark.parametrize("name", ["cp-mobile", "mobileascnet"])
def test_the_kept_folded_copy_follows_the_model(registry, name):
    """inference_model keeps one folded copy per model and refreshes it: after the weights and running statistics
    move (as between two validations), its logits are bit for bit those of a copy folded afresh; a changed model
    (a replaced layer, another mode) gets a new copy."""
    from ascbench.config import RunConfig
    from ascbench.specs import ModelContext
    from ascbench.training import create_model

    spec = registry.model(name)
    ctx = ModelContext(num_classes=10, num_cities=4, time_dim=8, n_mels=64, n_frames=101)
    model = create_model(spec, ctx, RunConfig(model=name))
    bf16 = Compute.from_names("cpu", "bf16", ModelNeeds.of(spec))
    bf16.prepare(model)
    x, city, time = _inputs()
    model.eval()
    first = bf16.inference_model(model)
    generator = torch.Generator().manual_seed(0)
    for _ in range(2):  # a training step's worth of change: weights, biases and running statistics
        with torch.no_grad():
            for tensor in (*model.parameters(), *(b for b in model.buffers() if b.is_floating_point())):
                tensor.add_(0.05 * torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype))
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_var.abs_().add_(0.1)
        kept = bf16.inference_model(model)
        assert kept is first
        with torch.inference_mode(), bf16.autocast():
            assert torch.equal(kept(bf16.model_input(x), city, time), _fresh_fold(model)(bf16.model_input(x), city, time))
    model.train()
    model.eval()
    assert bf16.inference_model(model) is first  # the same structure and mode: still the kept copy
    sequential = next(m for m in model.modules() if device_mod._foldable_pairs(m))
    i = device_mod._foldable_pairs(sequential)[0] + 1
    replacement = torch.nn.BatchNorm2d(sequential[i].num_features).eval()
    with torch.no_grad():
        replacement.running_mean.uniform_(-0.5, 0.5, generator=generator)
    sequential[i] = replacement  # a layer replaced, as a strategy may replace one between stages
    rebuilt = bf16.inference_model(model)
    assert rebuilt is not first
    with torch.inference_mode(), bf16.autocast():
        assert torch.equal(rebuilt(bf16.model_input(x), city, time), _fresh_fold(model)(bf16.model_input(x), city, time))


@pytest.mark.parametrize("name", ["cp-mobile", "mobileascnet-tiny"])
def test_reduced_precision_inference_folds_batchnorm_into_convolutions(registry, name):
    """bf16 inference runs a copy with conv + batch norm folded (same logits up to bf16 rounding); fp32 inference and
    the trained model itself are untouched."""
    from ascbench.config import RunConfig
    from ascbench.specs import ModelContext
    from ascbench.training import create_model

    spec = registry.model(name)
    ctx = ModelContext(num_classes=10, num_cities=4, time_dim=8, n_mels=64, n_frames=101)
    model = create_model(spec, ctx, RunConfig(model=name))
    with torch.no_grad():  # running statistics away from the identity, so folding has something to fold
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    model.eval()
    x, city, time = _inputs()
    fp32 = Compute.from_names("cpu", "fp32", ModelNeeds.of(spec))
    assert fp32.inference_model(model) is model
    with torch.inference_mode():
        expected = model(x, city, time)
    bf16 = Compute.from_names("cpu", "bf16", ModelNeeds.of(spec))
    folded = bf16.inference_model(model)
    count = lambda m: sum(isinstance(layer, torch.nn.BatchNorm2d) for layer in m.modules())  # noqa: E731
    assert folded is not model and count(folded) < count(model) and count(model) > 0
    with torch.inference_mode():
        assert torch.allclose(folded(x, city, time), expected, rtol=1e-4, atol=1e-4)  # folding alone: fp32-exact-ish
        with bf16.autocast():
            got = folded(bf16.model_input(x), city, time).float()
    assert torch.isfinite(got).all() and (got - expected).abs().max() < 0.05 * expected.abs().max() + 0.05


def _replace_first_folded_batchnorm_keeping_its_tensors(model: torch.nn.Module) -> None:
    sequential = next(m for m in model.modules() if device_mod._foldable_pairs(m))
    i = device_mod._foldable_pairs(sequential)[0] + 1
    old = sequential[i]
    new = torch.nn.BatchNorm2d(old.num_features, eps=0.5).eval()
    new.weight, new.bias, new.running_mean, new.running_var = old.weight, old.bias, old.running_mean, old.running_var
    new.num_batches_tracked = old.num_batches_tracked
    sequential[i] = new


# Changes between two inference calls that leave every weight tensor where it was; each must rebuild the copy.
MODEL_CHANGES = {
    "a weightless layer replaced by one of its type": lambda m: [setattr(b, "pool", torch.nn.AvgPool2d((2, 1)))
                                                                 for b in m.blocks],
    "a convolution's stride set in place": lambda m: setattr(m.stem[0], "stride", (1, 1)),
    "a forward hook added": lambda m: m.head.register_forward_hook(lambda mod, i, o: o * 2),
    "a folded batch norm replaced, its tensors kept": _replace_first_folded_batchnorm_keeping_its_tensors,
    "an unfolded batch norm's eps": lambda m: setattr(m.bn0, "eps", 0.5),
    "a convolution's padding mode": lambda m: setattr(m.stem[0], "padding_mode", "circular"),
}


@pytest.mark.parametrize("change", list(MODEL_CHANGES))
def test_the_kept_folded_copy_is_rebuilt_when_the_model_changes(change):
    """Whatever changes between two calls (a setting, a hook, a replaced layer), the logits are those of a copy
    folded afresh: the kept copy is used only while nothing but weight values has changed."""
    import ascbench
    from ascbench.layers import InputBatchNorm

    model = ascbench.create_model("mobileascnet-tiny", dataset="embedded-apsipa")
    if change == "an unfolded batch norm's eps":
        model = InputBatchNorm(model, 64)
    torch.manual_seed(0)
    with torch.no_grad():  # trained-looking batch norms: fresh ones hide some differences
        for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.3, 0.3)
    bf16 = Compute(CPU, "bf16", channels_last=True)
    bf16.prepare(model)
    model.eval()
    x, city, time = _inputs(n_frames=101)
    bf16.inference_model(model)
    MODEL_CHANGES[change](model)
    model.eval()  # as predict does
    with torch.inference_mode(), bf16.autocast():
        kept = bf16.inference_model(model)(bf16.model_input(x), city, time)
        fresh = _fresh_fold(model)(bf16.model_input(x), city, time)
    assert torch.equal(kept, fresh)
