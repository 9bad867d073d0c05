"""``context-only``: a model that sees only where and when a clip was recorded, never its audio.

It is the floor of the leaderboard: whatever it scores is explained by city and time metadata alone
(on the real APSIPA metadata, with recordings split carelessly, that is nearly everything).
"""

from __future__ import annotations

import torch
import torch.nn as nn

import ascbench.plugin as ap


class ContextOnly(nn.Module):
    def __init__(self, ctx: ap.ModelContext, city_dim: int = 16, time_emb_dim: int = 16, hidden: int = 64):
        super().__init__()
        self.context = ap.ContextEncoder(ctx.num_cities, ctx.time_dim, city_dim, time_emb_dim)
        self.mlp = nn.Sequential(nn.Linear(self.context.out_dim, hidden), nn.ReLU(), nn.Linear(hidden, ctx.num_classes))

    @property
    def classifier(self) -> nn.Module:
        return self.mlp[-1]

    def forward(self, x: torch.Tensor, city: torch.Tensor | None = None, time: torch.Tensor | None = None) -> torch.Tensor:
        return self.mlp(self.context(city, time, x.shape[0]))


@ap.hookimpl
def ascbench_models() -> list[ap.ModelSpec]:
    return [ap.ModelSpec("context-only", lambda ctx, **kw: ContextOnly(ctx, **kw),
                         "city and time only, no audio: how much the metadata alone explains", uses_city=True, uses_time=True)]
