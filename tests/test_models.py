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
    from ascbench.features import get_preset

    cfg = get_preset("apsipa2025")
    ctx = ModelContext(10, 9, 8, cfg.n_mels, cfg.n_frames(1.0))
    c = profile(create_model(registry.model("mobileascnet-tiny"), ctx, RunConfig()), cfg.n_mels, cfg.n_frames(1.0), 8)
    assert c.macs <= 30_000_000
    assert c.widest_precision_within(128_000) in ("float32", "float16")


# The DCASE 2024 Task 1 baseline's published complexity table (CPJKU/dcase2024_task1_baseline README),
# one row per convolution on a 256-bin x 65-frame input: (in, out, groups, kernel, out freq, out time).
CP_MOBILE_CONVS = [
    (1, 8, 1, 3, 128, 33), (8, 32, 1, 3, 64, 17),                                     # stem
    (32, 64, 1, 1, 64, 17), (64, 64, 64, 3, 64, 17), (64, 32, 1, 1, 64, 17),          # b1
    (32, 64, 1, 1, 64, 17), (64, 64, 64, 3, 64, 17), (64, 32, 1, 1, 64, 17),          # b2
    (32, 64, 1, 1, 64, 17), (64, 64, 64, 3, 64, 9), (64, 32, 1, 1, 64, 9),            # b3, stride (1, 2)
    (32, 64, 1, 1, 64, 9), (64, 64, 64, 3, 32, 9), (64, 56, 1, 1, 32, 9),             # b4, stride (2, 1)
    (56, 120, 1, 1, 32, 9), (120, 120, 120, 3, 32, 9), (120, 56, 1, 1, 32, 9),        # b5
    (56, 120, 1, 1, 32, 9), (120, 120, 120, 3, 32, 9), (120, 104, 1, 1, 32, 9),       # b6
    (104, 10, 1, 1, 32, 9),                                                           # classifier
]


def test_cp_mobile_matches_the_dcase_2024_baseline_layer_by_layer(registry):
    model = create_model(registry.model("cp-mobile"), ModelContext(10, 1, 8, 256, 65), RunConfig())
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    shapes = []
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[2:]))) for m in convs]
    c = profile(model, 256, 65, 8)
    for h in hooks:
        h.remove()
    built = [(m.in_channels, m.out_channels, m.groups, m.kernel_size[0]) + shape for m, shape in zip(convs, shapes[:len(convs)])]
    assert built == CP_MOBILE_CONVS
    hand = sum(i // g * o * k * k * f * t for i, o, g, k, f, t in CP_MOBILE_CONVS)
    assert c.macs == hand
    # The published total (29,419,156) also counts each batch norm as 2 MACs per channel (NeSsi's rule).
    bn = sum(2 * m.num_features for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert (c.params, hand + bn) == (61_148, 29_419_156)


def test_se_trans_reference_complexity(registry):
    ctx = ModelContext(10, 9, 8, 64, 501)
    c = profile(create_model(registry.model("se-trans"), ctx, RunConfig()), 64, 501, 8)
    assert 2.5e9 <= c.macs <= 3.5e9  # about 3 G MACs per 10-second clip in the official code
