"""Building blocks shared by model plugins, so that model files stay short and never copy each other."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvBNReLU(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


class DepthwiseSeparableConv(nn.Sequential):
    """A depthwise 3x3 conv then a pointwise 1x1 conv, each followed by batch norm (ReLU optional at the end)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, final_relu: bool = True):
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, in_ch, kernel, padding=kernel // 2, groups=in_ch, bias=False),
            nn.BatchNorm2d(in_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_ch, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        if final_relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ResidualDSBlock(nn.Module):
    """Two depthwise-separable convs with a ResNet-style shortcut, then optional pooling."""

    def __init__(self, in_ch: int, out_ch: int, pool: tuple[int, int] | None = (2, 2)):
        super().__init__()
        self.body = nn.Sequential(DepthwiseSeparableConv(in_ch, out_ch), DepthwiseSeparableConv(out_ch, out_ch, final_relu=False))
        self.shortcut = (
            nn.Identity() if in_ch == out_ch else nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch))
        )
        self.act = nn.ReLU(inplace=True)
        self.pool = nn.AvgPool2d(pool) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.body(x) + self.shortcut(x)))


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc = nn.Sequential(nn.Linear(channels, hidden, bias=False), nn.ReLU(inplace=True), nn.Linear(hidden, channels, bias=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.fc(x.mean(dim=(2, 3)))
        return x * weights[:, :, None, None]


class ContextEncoder(nn.Module):
    """Embeds where (city index, 0 = unknown) and when (cyclic time features) a clip was recorded.

    Either part can be left out (``city_dim=0`` or ``time_emb_dim=0``). A missing input is treated as
    unknown: city index 0, all-zero time features.
    """

    def __init__(self, num_cities: int, time_dim: int, city_dim: int = 16, time_emb_dim: int = 16):
        super().__init__()
        if city_dim <= 0 and time_emb_dim <= 0:
            raise ValueError("a context encoder needs a city or a time part")
        self.city = nn.Embedding(num_cities, city_dim) if city_dim > 0 else None
        self.time = nn.Linear(time_dim, time_emb_dim) if time_emb_dim > 0 else None
        self.time_dim = time_dim
        self.out_dim = max(city_dim, 0) + max(time_emb_dim, 0)

    def forward(self, city: torch.Tensor | None, time: torch.Tensor | None, batch: int) -> torch.Tensor:
        parts = []
        if self.city is not None:
            if city is None:
                city = torch.zeros(batch, dtype=torch.long, device=self.city.weight.device)
            parts.append(self.city(city))
        if self.time is not None:
            if time is None:
                time = torch.zeros(batch, self.time_dim, device=self.time.weight.device)
            parts.append(F.relu(self.time(time)))
        return torch.cat(parts, dim=1)


class EarlyFusion(nn.Module):
    """Concatenate audio and context features, mix them with one fully connected layer."""

    def __init__(self, audio_dim: int, context_dim: int):
        super().__init__()
        self.fc = nn.Linear(audio_dim + context_dim, audio_dim)

    def forward(self, audio: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc(torch.cat([audio, context], dim=1)))


class GatedFusion(nn.Module):
    """A sigmoid gate decides, per feature, how much comes from the audio and how much from the context."""

    def __init__(self, audio_dim: int, context_dim: int):
        super().__init__()
        self.gate = nn.Linear(audio_dim + context_dim, audio_dim)
        self.context_proj = nn.Linear(context_dim, audio_dim)

    def forward(self, audio: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        g = torch.sigmoid(self.gate(torch.cat([audio, context], dim=1)))
        return g * audio + (1.0 - g) * torch.tanh(self.context_proj(context))


FUSIONS = {"early": EarlyFusion, "gated": GatedFusion}


class ContextFusion(nn.Module):
    """Adds city/time context to any backbone that exposes ``embed(x) -> (batch, embed_dim)``.

    Used by ``--context city,time`` so that the effect of the embeddings can be measured on models
    that were not designed with them.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, num_cities: int, time_dim: int,
                 use_city: bool = True, use_time: bool = True, fusion: str = "gated"):
        super().__init__()
        if not hasattr(backbone, "embed") or not hasattr(backbone, "embed_dim"):
            raise TypeError(f"{type(backbone).__name__} has no embed()/embed_dim, so context cannot be fused into it")
        self.backbone = backbone
        self.context = ContextEncoder(num_cities, time_dim, 16 if use_city else 0, 16 if use_time else 0)
        self.fusion = FUSIONS[fusion](backbone.embed_dim, self.context.out_dim)
        self.head = nn.Linear(backbone.embed_dim, num_classes)

    @property
    def feature_extractor(self) -> nn.Module:
        return self.backbone

    @property
    def classifier(self) -> nn.Module:
        return self.head

    def forward(self, x: torch.Tensor, city: torch.Tensor | None = None, time: torch.Tensor | None = None) -> torch.Tensor:
        h = self.backbone.embed(x)
        return self.head(self.fusion(h, self.context(city, time, h.shape[0])))


class InputBatchNorm(nn.Module):
    """A learned BatchNorm over the mel bins in front of any model (``--normalization input-bn``), as the
    APSIPA 2025 SE-Trans's ``bn0``: the features go in as extracted and the network normalises them."""

    def __init__(self, net: nn.Module, n_mels: int):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(n_mels)
        self.net = net

    @property
    def feature_extractor(self) -> nn.Module:
        return self.net.feature_extractor

    @property
    def classifier(self) -> nn.Module:
        return self.net.classifier

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.embed(self._normalise(x))

    @property
    def embed_dim(self) -> int:
        return self.net.embed_dim

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        # (batch, 1, mels, frames) -> mels as channels -> back
        return self.bn0(x.transpose(1, 2)).transpose(1, 2)

    def forward(self, x: torch.Tensor, city: torch.Tensor | None = None, time: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self._normalise(x), city, time)
