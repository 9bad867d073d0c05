import pytest
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from ascbench.complexity import count_macs, profile
from ascbench.errors import PluginError
from ascbench.specs import ModelContext


class TinyConvNet(nn.Module):
    """A standard conv, a depthwise conv, a pointwise conv, pooling and a linear layer."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1, bias=False)  # 8x10 -> 8x10
        self.bn = nn.BatchNorm2d(4)
        self.dw = nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False)
        self.pw = nn.Conv2d(4, 6, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        x = self.pw(self.dw(torch.relu(self.bn(self.conv(x)))))
        return self.fc(self.pool(x).flatten(1))


class TinyGRU(nn.Module):
    def __init__(self, bidirectional=False, layers=1):
        super().__init__()
        self.emb = nn.Embedding(5, 3)
        self.gru = nn.GRU(3, 4, num_layers=layers, batch_first=True, bidirectional=bidirectional)

    def forward(self, tokens):
        out, _ = self.gru(self.emb(tokens))
        return out


def test_conv_net_matches_a_hand_count():
    hand = (
        8 * 10 * 4 * (1 * 9)  # conv: every output element costs in_ch * 3 * 3
        + 8 * 10 * 4 * (1 * 9)  # depthwise: one input channel per output channel
        + 8 * 10 * 6 * 4  # pointwise: 4 inputs per output element
        + 6 * 3  # linear
    )
    assert count_macs(TinyConvNet(), torch.zeros(1, 1, 8, 10)) == hand == 7698


def test_gru_matches_a_hand_count():
    steps, i, h = 7, 3, 4
    assert count_macs(TinyGRU(), torch.zeros(1, steps, dtype=torch.long)) == steps * 3 * h * (i + h)
    # Bidirectional, two layers: the second layer reads both directions (2h inputs).
    expected = 2 * steps * 3 * h * (i + h) + 2 * steps * 3 * h * (2 * h + h)
    assert count_macs(TinyGRU(bidirectional=True, layers=2), torch.zeros(1, steps, dtype=torch.long)) == expected


def test_conv_and_linear_agree_with_torch_flop_counter():
    model, x = TinyConvNet().eval(), torch.zeros(1, 1, 8, 10)
    with FlopCounterMode(display=False) as counter:
        model(x)
    assert counter.get_total_flops() == 2 * count_macs(model, x)


def test_layer_without_rule_fails_loudly():
    class Mystery(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(3))

        def forward(self, x):
            return x * self.w

    with pytest.raises(PluginError, match="no MAC rule for layer type Mystery"):
        count_macs(nn.Sequential(Mystery()), torch.zeros(1, 3))


def test_mobileascnet_lands_near_the_papers_size(registry):
    ctx = ModelContext(num_classes=10, num_cities=9, time_dim=8, n_mels=64, n_frames=500)
    model = registry.model("mobileascnet").build(ctx)
    c = profile(model, 64, 500, 8)
    assert 0.33e6 <= c.params <= 0.41e6  # the paper reports about 0.37 M
    assert c.param_bytes == 4 * c.params
    # GRU over 500 / 16 time steps after the stem and three 2x poolings.
    gru = model.gru
    gru_macs = 31 * 3 * gru.hidden_size * (gru.input_size + gru.hidden_size)
    assert c.macs > gru_macs


def test_depthwise_only_model_matches_a_hand_count():
    model = nn.Sequential(nn.Conv2d(6, 6, (3, 5), padding=(1, 2), groups=6, bias=False))
    assert count_macs(model, torch.zeros(1, 6, 4, 9)) == 4 * 9 * 6 * (3 * 5)


def test_gru_agrees_with_torch_flop_counter_on_cpu():
    model, x = TinyGRU(), torch.zeros(1, 9, dtype=torch.long)
    with FlopCounterMode(display=False) as counter:
        model(x)
    assert counter.get_total_flops() == 2 * count_macs(model, x)


def test_transformer_layer_against_torch_flop_counter():
    # FlopCounterMode counts the linear layers but not CPU attention kernels; our rule adds the
    # score and weighted-sum products (2 * L * L * E) on top.
    layer = nn.TransformerEncoderLayer(32, 4, 16, 0.0, batch_first=True)
    x = torch.zeros(1, 10, 32)
    with FlopCounterMode(display=False) as counter:
        layer(x)
    assert count_macs(layer, x) == counter.get_total_flops() // 2 + 2 * 10 * 10 * 32


def test_memory_at_each_precision():
    from ascbench.complexity import Complexity

    c = Complexity(params=100_000, macs=0, param_bytes=400_000)
    assert c.memory_bytes("float16") == 200_000 and c.memory_bytes("int8") == 100_000
    assert c.widest_precision_within(128_000) == "int8"
    assert Complexity(params=50_000, macs=0, param_bytes=200_000).widest_precision_within(128_000) == "float16"
    assert Complexity(params=200_000, macs=0, param_bytes=800_000).widest_precision_within(128_000) is None
