"""Batch augmentations shared by every strategy, applied to normalised log-mel batches (batch, 1, mel, frames).

Random draws always come from the run's CPU generator, whatever device the batch is on, so a run draws
the same masks, shifts and mixes on every device; only the (small) drawn indices move to the batch.
"""

from __future__ import annotations

import torch


def time_roll(x: torch.Tensor, max_frames: int, generator: torch.Generator) -> torch.Tensor:
    """Roll each clip circularly in time by a random whole number of frames in [-max_frames, max_frames].

    The DCASE baseline rolls the waveform before its front-end; features here are cached, so the roll is
    of frames (the same shift quantised to the hop, and the clip's two ends meet without the STFT's edge).
    """
    if max_frames <= 0:
        return x
    b, n_frames = x.shape[0], x.shape[-1]
    shift = torch.randint(-max_frames, max_frames + 1, (b,), generator=generator)
    index = (torch.arange(n_frames)[None, :] - shift[:, None]) % n_frames  # (b, frames)
    return x.gather(-1, index.to(x.device)[:, None, None, :].expand_as(x))


def spec_augment(x: torch.Tensor, freq_width: int, time_width: int, generator: torch.Generator,
                 fill: str = "mean") -> torch.Tensor:
    """SpecAugment-style masking: one frequency band and one time span per clip, of random width up to the given.

    ``fill="mean"`` writes 0 (the mean after per-bin standardisation); ``"floor"`` writes each clip's own
    minimum, what silence looks like after the front-end's log, as the DCASE baseline's masks (applied
    to the mel power before its log) produce.
    """
    if freq_width <= 0 and time_width <= 0:
        return x
    b, _, n_mels, n_frames = x.shape
    value = x.amin(dim=(1, 2, 3), keepdim=True) if fill == "floor" else None
    x = x.clone()
    for width, size, dim in ((freq_width, n_mels, 2), (time_width, n_frames, 3)):
        if width <= 0:
            continue
        w = torch.randint(0, width + 1, (b,), generator=generator)
        start = (torch.rand(b, generator=generator) * (size - w).clamp(min=1)).long()
        pos = torch.arange(size)
        mask = ((pos[None, :] >= start[:, None]) & (pos[None, :] < (start + w)[:, None])).to(x.device)  # (b, size)
        shape = (b, 1, size, 1) if dim == 2 else (b, 1, 1, size)
        x = x.masked_fill(mask.view(shape), 0.0) if value is None else torch.where(mask.view(shape), value, x)
    return x


def freq_mixstyle(x: torch.Tensor, p: float, alpha: float, generator: torch.Generator) -> torch.Tensor:
    """Frequency-wise MixStyle: mix each clip's per-frequency mean and std with another clip's.

    Device and city differences show up as frequency-dependent gain; mixing these statistics across
    clips (Kim et al., 2022; the standard DCASE trick) teaches invariance to them.
    """
    if p <= 0 or torch.rand(1, generator=generator).item() > p:
        return x
    b = x.shape[0]
    mu = x.mean(dim=(1, 3), keepdim=True)
    sig = (x.var(dim=(1, 3), keepdim=True) + 1e-6).sqrt()
    normed = (x - mu) / sig
    lam = torch.distributions.Beta(alpha, alpha).sample((b, 1, 1, 1)) if alpha > 0 else torch.full((b, 1, 1, 1), 0.5)
    perm = torch.randperm(b, generator=generator)
    lam, perm = lam.to(x.device), perm.to(x.device)
    mix_mu = lam * mu + (1 - lam) * mu[perm]
    mix_sig = lam * sig + (1 - lam) * sig[perm]
    return normed * mix_sig + mix_mu


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup on inputs and one-hot/soft targets ``y`` (batch, classes)."""
    if alpha <= 0:
        return x, y
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    lam = max(lam, 1 - lam)  # keep the first clip dominant, so its context inputs still fit
    perm = torch.randperm(x.shape[0], generator=generator).to(x.device)
    return lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y[perm]
