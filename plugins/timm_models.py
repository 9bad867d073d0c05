"""``timm:<name>``: any timm architecture as a backbone on one-channel log-mel spectrograms.

Names come from timm's own registry (``timm.list_models()``), so every architecture of the installed
timm version is available, always randomly initialised: nothing is downloaded. Combine with
``--context city,time`` to add city/time fusion to a backbone that has none.
"""

from __future__ import annotations


import torch
import torch.nn as nn

import ascbench.plugin as ap

PREFIX = "timm:"


class TimmBackbone(nn.Module):
    def __init__(self, ctx: ap.ModelContext, name: str, **kwargs):
        super().__init__()
        import timm

        kwargs = {"pretrained": False, "num_classes": ctx.num_classes, "in_chans": 1, **kwargs}
        if kwargs["pretrained"]:
            raise ValueError("ascbench never downloads weights; use --pretrained CHECKPOINT for your own")
        try:  # fixed-size models (ViTs) need the spectrogram size; most CNNs do not take the argument
            self.net = timm.create_model(name, img_size=(ctx.n_mels, ctx.n_frames), **kwargs)
        except TypeError:
            self.net = timm.create_model(name, **kwargs)
        # Some heads add a hidden layer after pooling (MobileNetV3); pre-logits then have that width.
        self.embed_dim = getattr(self.net, "head_hidden_size", None) or self.net.num_features

    @property
    def classifier(self) -> nn.Module:
        return self.net.get_classifier()

    @property
    def feature_extractor(self) -> nn.Module:
        head = {id(p) for p in self.classifier.parameters()}
        body = nn.Module()
        body.params = nn.ParameterList([p for p in self.net.parameters() if id(p) not in head])
        return body

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_head(self.net.forward_features(x), pre_logits=True)

    def forward(self, x: torch.Tensor, city: torch.Tensor | None = None, time: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x)


def _resolve(name: str) -> ap.ModelSpec | None:
    import timm

    if not timm.is_model(name):
        return None
    return ap.ModelSpec(f"{PREFIX}{name}", lambda ctx, **kw: TimmBackbone(ctx, name, **kw), f"timm {name} on log-mels (random init)")


def _names() -> list[str]:
    import timm

    return list(timm.list_models())


@ap.hookimpl
def ascbench_model_families() -> list[ap.ModelFamily]:
    # timm is imported only when a timm model is asked for, so other commands start fast.
    return [ap.ModelFamily(PREFIX, _resolve, _names, "any timm architecture on one-channel log-mels, random init")]
