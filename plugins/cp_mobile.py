"""CP-Mobile: the DCASE 2024/2025 Task 1 baseline family.

A receptive-field-regularised CNN of inverted-residual blocks (1x1 expand, 3x3 depthwise, 1x1
project), after Schmid et al., DCASE 2023 Workshop, in the simplified form of the DCASE 2024 Task 1
baseline (CPJKU/dcase2024_task1_baseline): a stem of two stride-2 3x3 convs, base 32 channels, width
x1.8 per stage, expansion 2.1, blocks (3, 2, 1), stride (1, 2) at block 3 and (2, 1) at block 4 (as
(frequency, time)), a 1x1 conv classifier, no global response normalisation. On its 256-bin, 1-second
reference input that is the baseline's 61,148 parameters and, layer by layer, its published MAC table
(``ascbench profile cp-mobile --preset dcase --seconds 1``; tests/test_models.py checks both).
"""

from __future__ import annotations

import torch
import torch.nn as nn

import ascbench.plugin as ap


def make_divisible(value: float, divisor: int = 8) -> int:
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn(in_ch: int, out_ch: int, kernel: int = 1, stride=1, groups: int = 1, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
              nn.BatchNorm2d(out_ch)]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class CPMobileBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, expansion: float, stride=(1, 1)):
        super().__init__()
        hidden = make_divisible(in_ch * expansion)
        self.block = nn.Sequential(
            conv_bn(in_ch, hidden),
            conv_bn(hidden, hidden, 3, stride=stride, groups=hidden),
            conv_bn(hidden, out_ch, relu=False),
        )
        strided = tuple(stride) != (1, 1)
        self.shortcut = None
        if in_ch == out_ch:
            self.shortcut = nn.AvgPool2d(3, stride=stride, padding=1) if strided else nn.Identity()
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        if self.shortcut is not None:
            y = y + self.shortcut(x)
        return self.act(y)


class CPMobile(nn.Module):
    def __init__(
        self,
        ctx: ap.ModelContext,
        base_channels: int = 32,
        channels_multiplier: float = 1.8,
        expansion_rate: float = 2.1,
        n_blocks: tuple[int, ...] = (3, 2, 1),
        strides: dict[str, tuple[int, int]] | None = None,
    ):
        super().__init__()
        strides = strides or {"b3": (1, 2), "b4": (2, 1)}
        base = make_divisible(base_channels)
        widths = [base] + [make_divisible(base * channels_multiplier ** s) for s in range(len(n_blocks))]
        self.stem = nn.Sequential(conv_bn(1, widths[0] // 4, 3, stride=2), conv_bn(widths[0] // 4, widths[0], 3, stride=2))
        blocks, index, in_ch = [], 0, widths[0]
        for stage, count in enumerate(n_blocks):
            for _ in range(count):
                index += 1
                blocks.append(CPMobileBlock(in_ch, widths[stage + 1], expansion_rate, tuple(strides.get(f"b{index}", (1, 1)))))
                in_ch = widths[stage + 1]
        self.stages = nn.Sequential(*blocks)
        self.embed_dim = in_ch
        self.classifier = nn.Sequential(nn.Conv2d(in_ch, ctx.num_classes, 1, bias=False), nn.BatchNorm2d(ctx.num_classes))
        for m in self.modules():  # the baseline's initialisation (PyTorch's default differs for convs)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")

    @property
    def feature_extractor(self) -> nn.Module:
        return nn.ModuleList([self.stem, self.stages])

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor, city: torch.Tensor | None = None, time: torch.Tensor | None = None) -> torch.Tensor:
        return self.classifier(self.stages(self.stem(x))).mean(dim=(2, 3))


def _convert_official(state: dict) -> ap.Checkpoint:
    """Official names: ``in_c.N`` (stem), ``stages.sS.bN.block`` (block N, numbered from 1), ``feed_forward``."""
    import re

    out = {}
    for key, tensor in state.items():
        key = re.sub(r"^in_c\.", "stem.", key)
        key = re.sub(r"^stages\.s\d+\.b(\d+)\.", lambda m: f"stages.{int(m.group(1)) - 1}.", key)
        out[re.sub(r"^feed_forward\.", "classifier.", key)] = tensor
    # The official label order: TAU Urban 2020 Mobile's scene labels, sorted (a LabelEncoder).
    return ap.Checkpoint(out, source="DCASE 2024 official",
                         classes=["airport", "bus", "metro", "metro_station", "park", "public_square", "shopping_mall",
                               "street_pedestrian", "street_traffic", "tram"])


OFFICIAL_IMPORTER = ap.Importer(
    "dcase2024-cp-mobile", "CPJKU/dcase2024_task1_baseline",
    recognises=lambda state: "in_c.0.0.weight" in state and any(k.startswith("feed_forward.") for k in state),
    convert=_convert_official)


@ap.hookimpl
def ascbench_models() -> list[ap.ModelSpec]:
    return [ap.ModelSpec("cp-mobile", lambda ctx, **kw: CPMobile(ctx, **kw),
                         "DCASE 2024/25 Task 1 baseline: receptive-field-regularised inverted-residual CNN (no context)",
                         importer=OFFICIAL_IMPORTER, channels_last=True)]  # faster under bf16 (README, Devices)
