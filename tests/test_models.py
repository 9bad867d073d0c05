"""Every registered model: shapes, context handling, MAC rules, and one epoch end to end."""

import pytest
import torch

from ascbench.complexity import profile
from ascbench.config import RunConfig
from ascbench.errors import ConfigError
from ascbench.runner import execute
from ascbench.specs import ModelContext
from ascbench.training import create_model

CTX = ModelContext(num_classes=10, num_cities=5, time_dim=8, n_mels=64, n_frames=51)

# Narrow settings so that each model trains in a second or two.
from small_models import SMALL  # noqa: E402


def test_every_builtin_model_is_covered(registry):
    assert set(registry.names("model")) <= set(SMALL)


# The forward contract itself is checked for every model by the conformance kit (test_conformance.py).


@pytest.mark.parametrize("name", sorted(n for n in SMALL if not n.startswith("timm:")))
def test_trains_one_epoch_end_to_end(runs, name):
    record = execute(RunConfig(model=name, strategy="scratch", dataset="embedded-tiny", epochs=1,
                               model_kwargs=SMALL[name]), progress=False)
    assert 0.0 <= record.metrics["accuracy"] <= 1.0
    assert record.row["params"] > 0


def test_timm_backbone_end_to_end_with_context(runs):
    record = execute(RunConfig(model="timm:resnet10t", strategy="scratch", dataset="embedded-tiny", epochs=1,
                               context="city,time"), progress=False)
    assert record.metrics["complexity"]["params"] > 0


def test_context_fusion_only_wraps_backbones_without_context(registry):
    with pytest.raises(ConfigError, match="already fuses"):
        create_model(registry.model("mobileascnet"), CTX, RunConfig(context="city"))
    plain = create_model(registry.model("cp-mobile"), CTX, RunConfig(model_kwargs={"base_channels": 8}))
    fused = create_model(registry.model("cp-mobile"), CTX, RunConfig(model_kwargs={"base_channels": 8}, context="city"))
    assert sum(p.numel() for p in fused.parameters()) > sum(p.numel() for p in plain.parameters())
    x, city = torch.randn(2, 1, 64, 51), torch.tensor([1, 2])
    fused.eval()
    assert not torch.allclose(fused(x, city), fused(x, torch.tensor([3, 4])))  # the city matters


def test_mobileascnet_ablations_differ_as_documented(registry):
    def count(name):
        return sum(p.numel() for p in create_model(registry.model(name), CTX, RunConfig()).parameters())

    full, early, gru, cnn = (count(n) for n in ("mobileascnet", "mobileascnet-early", "mobileascnet-gru", "mobileascnet-cnn"))
    assert cnn < gru < early < full  # each ablation removes parts
    m = create_model(registry.model("mobileascnet-cnn"), CTX, RunConfig())
    assert m.gru is None and m.fusion is None


def test_mobileascnet_tiny_meets_dcase_limits(registry):
    from ascbench.features import PRESETS

    cfg = PRESETS["apsipa2025"]
    ctx = ModelContext(10, 9, 8, cfg.n_mels, cfg.n_frames(1.0))
    c = profile(create_model(registry.model("mobileascnet-tiny"), ctx, RunConfig()), cfg.n_mels, cfg.n_frames(1.0), 8)
    assert c.macs <= 30_000_000
    assert c.widest_precision_within(128_000) in ("float32", "float16")


def test_cp_mobile_reference_size(registry):
    ctx = ModelContext(10, 1, 8, 256, 65)
    c = profile(create_model(registry.model("cp-mobile"), ctx, RunConfig()), 256, 65, 8)
    assert 60_000 <= c.params <= 62_000  # the DCASE 2024 baseline: about 61 k


def test_se_trans_reference_complexity(registry):
    ctx = ModelContext(10, 9, 8, 64, 501)
    c = profile(create_model(registry.model("se-trans"), ctx, RunConfig()), 64, 501, 8)
    assert 2.5e9 <= c.macs <= 3.5e9  # about 3 G MACs per 10-second clip in the official code
