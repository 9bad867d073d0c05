"""SE-Trans: the APSIPA ASC 2025 Grand Challenge baseline architecture.

Two convolutional blocks with squeeze-and-excitation, pooled to 16 time steps, a one-layer
transformer encoder over time, max over time, then a 16-dim city embedding and a 16-dim projection
of the 8-dim cyclic time encoding fused with the audio features by a linear layer.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

import ascbench.plugin as ap


class SEConvBlock(nn.Module):
    """Two 3x3 convs, each with batch norm and squeeze-and-excitation, then 2x2 average pooling."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)
        self.bn1, self.se1 = nn.BatchNorm2d(out_ch), ap.SqueezeExcite(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2, self.se2 = nn.BatchNorm2d(out_ch), ap.SqueezeExcite(out_ch)
        self.pool = nn.AvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.se1(self.bn1(self.conv1(x))))
        x = F.relu(self.se2(self.bn2(self.conv2(x))))
        return self.pool(x)


class SETrans(nn.Module):
    def __init__(
        self,
        ctx: ap.ModelContext,
        channels: tuple[int, int] = (64, 128),
        time_steps: int = 16,
        heads: int = 8,
        feedforward: int = 32,
        dropout: float = 0.1,
        use_context: bool = True,
        city_dim: int = 16,
        time_emb_dim: int = 16,
    ):
        super().__init__()
        self.blocks = nn.Sequential(SEConvBlock(1, channels[0]), SEConvBlock(channels[0], channels[1]))
        self.pool = nn.AdaptiveAvgPool2d((1, time_steps))
        self.encoder = nn.TransformerEncoderLayer(channels[1], heads, feedforward, dropout, batch_first=True)
        if use_context:
            self.context = ap.ContextEncoder(ctx.num_cities, ctx.time_dim, city_dim, time_emb_dim)
            self.fusion = ap.EarlyFusion(channels[1], self.context.out_dim)
        else:
            self.context, self.fusion = None, None
        self.fc = nn.Linear(channels[1], ctx.num_classes)

    @property
    def feature_extractor(self) -> nn.Module:
        return self.blocks

    @property
    def classifier(self) -> nn.Module:
        return self.fc

    def forward(self, x: torch.Tensor, city: torch.Tensor | None = None, time: torch.Tensor | None = None) -> torch.Tensor:
        x = self.pool(self.blocks(x)).squeeze(2).transpose(1, 2)  # (batch, steps, channels)
        h = self.encoder(x).amax(dim=1)
        if self.fusion is not None:
            h = self.fusion(h, self.context(city, time, h.shape[0]))
        return self.fc(h)


# The official code's fixed city vocabulary (its config's location_to_index, in index order).
OFFICIAL_CITIES = ["Xi'an", "Xianyang", "Changchun", "Jinan", "Hefei", "Sanya", "Nanning", "Haikou", "Guilin",
                   "Guangzhou", "Chongqing", "Shenyang", "Beijing", "Baishan", "Taiyuan", "Tianjin", "Nanchang",
                   "Shanghai", "Luoyang", "Liupanshui", "Shangrao", "Dandong"]


def _official_key(key: str) -> str | None:
    """The ascbench name of one official SE_Trans tensor; None for the unused ``encoder_layer`` template copy."""
    if key.startswith("encoder_layer."):
        return None
    for old, new in (("SE_block1.", "blocks.0."), ("SE_block2.", "blocks.1."), ("encoder.layers.0.", "encoder."),
                     ("location_embedding.", "context.city."), ("time_mapping.", "context.time."),
                     ("fusion_layer.", "fusion.fc."), ("bn0.", "bn0."), ("fc.", "fc.")):
        if key.startswith(old):
            return new + key[len(old):]
    return key


def _convert_official(state: dict) -> ap.Checkpoint:
    out = {}
    for key, tensor in state.items():
        new = _official_key(key)
        if new is None:
            continue
        if new.startswith("blocks.") and ".conv" in new and tensor.dim() == 4:
            tensor = tensor.transpose(2, 3).contiguous()  # official input is (frames, mels); ascbench's (mels, frames)
        out[new] = tensor
    return ap.Checkpoint(out, cities=list(OFFICIAL_CITIES), city_key="context.city.weight",
                         source="APSIPA 2025 official",
                         notes=["official encoder_layer (an unused template copy) ignored"],
                         classes=["Bus", "Airport", "Metro", "Restaurant", "Shopping mall", "Public square", "Urban park",
                               "Traffic street", "Construction site", "Bar"])


OFFICIAL_IMPORTER = ap.Importer(
    "apsipa2025-se-trans", "JishengBai/APSIPA2025GC-ASC",
    recognises=lambda state: "SE_block1.conv1.weight" in state and "location_embedding.weight" in state,
    convert=_convert_official)


@ap.hookimpl
def ascbench_models() -> list[ap.ModelSpec]:
    return [
        ap.ModelSpec(
            "se-trans",
            lambda ctx, **kw: SETrans(ctx, **kw),
            "APSIPA ASC 2025 official baseline: SE conv blocks + transformer, city/time fused linearly",
            uses_city=True,
            uses_time=True,
            city_embedding="context.city.weight",
            importer=OFFICIAL_IMPORTER,
            channels_last=True,  # bf16 + channels_last trains ~1.5x faster than bf16 contiguous on the CPU
        )
    ]
