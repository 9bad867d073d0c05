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
    """Embeds where (city index, 0 = unknown) and when (cyclic time features) a clip was recorded."""

    def __init__(self, num_cities: int, time_dim: int, city_dim: int = 16, time_emb_dim: int = 16):
        super().__init__()
        self.city = nn.Embedding(num_cities, city_dim)
        self.time = nn.Linear(time_dim, time_emb_dim)
        self.out_dim = city_dim + time_emb_dim

    def forward(self, city: torch.Tensor | None, time: torch.Tensor | None, batch: int) -> torch.Tensor:
        device = self.city.weight.device
        if city is None:  # no city given means unknown city
            city = torch.zeros(batch, dtype=torch.long, device=device)
        if time is None:
            time = torch.zeros(batch, self.time.in_features, device=device)
        return torch.cat([self.city(city), F.relu(self.time(time))], dim=1)


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
