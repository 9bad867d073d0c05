"""The front-end kit: a front-end's settings give finite features of the shape the models are told, the same
features for the same audio, and a pure tone lands in the mel band that holds its frequency (checked against
the mel scale computed independently, with librosa's formulas written out)."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from ascbench.features import FeatureConfig, LogMel
from ascbench.registry import Registry, get_registry
from ascbench.testing.kit import ConformanceError, bind

SECONDS = 1.0


def _fail(name: str, registry: Registry, check: str, why: str) -> ConformanceError:
    return ConformanceError(f"front-end {name!r} (plugin {registry.owner('front-end', name)!r}) fails {check}: {why}")


def _tone(cfg: FeatureConfig, hz: float) -> torch.Tensor:
    t = np.arange(int(SECONDS * cfg.sample_rate)) / cfg.sample_rate
    return torch.from_numpy((0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32))[None]


def _features(cfg: FeatureConfig, wave: torch.Tensor) -> torch.Tensor:
    out = LogMel(cfg)(wave)
    return out[..., : cfg.max_frames] if cfg.max_frames else out


def _hz_to_mel(hz: float, scale: str) -> float:
    if scale == "htk":
        return 2595.0 * math.log10(1.0 + hz / 700.0)
    # Slaney: linear below 1 kHz, logarithmic above.
    return hz / (200.0 / 3) if hz < 1000 else 15.0 + math.log(hz / 1000.0) / (math.log(6.4) / 27.0)


def check_frontend_shape(name, registry, cfg):
    """One second of audio gives (mel bins, frames) as ``FeatureConfig.n_frames`` says, all finite."""
    try:
        out = _features(cfg, _tone(cfg, 440.0))
    except Exception as exc:
        raise _fail(name, registry, "check_frontend_shape", f"extraction raised {type(exc).__name__}: {exc}") from exc
    want = (1, cfg.n_mels, cfg.n_frames(SECONDS))
    if tuple(out.shape) != want or not torch.isfinite(out).all():
        raise _fail(name, registry, "check_frontend_shape", f"features of shape {tuple(out.shape)} (expected {want}) "
                    "or not finite")


def check_frontend_deterministic(name, registry, cfg):
    """The same audio gives the same features (the feature cache relies on it)."""
    wave = _tone(cfg, 440.0) + 0.01 * torch.randn(1, int(SECONDS * cfg.sample_rate), generator=torch.Generator().manual_seed(0))
    if not torch.equal(_features(cfg, wave), _features(cfg, wave)):
        raise _fail(name, registry, "check_frontend_deterministic", "two extractions of one clip differ")


def check_frontend_tone_lands_in_its_band(name, registry, cfg):
    """A 1 kHz tone's loudest mel band is the one centred nearest 1 kHz on the front-end's mel scale."""
    hz = 1000.0
    f_max = cfg.f_max or cfg.sample_rate / 2
    low, high = _hz_to_mel(cfg.f_min, cfg.mel_scale), _hz_to_mel(f_max, cfg.mel_scale)
    centres = np.linspace(low, high, cfg.n_mels + 2)[1:-1]  # the filters' centres, equally spaced in mels
    expected = int(np.argmin(np.abs(centres - _hz_to_mel(hz, cfg.mel_scale))))
    loudest = int(_features(cfg, _tone(cfg, hz))[0].mean(dim=-1).argmax())
    if abs(loudest - expected) > 1:
        raise _fail(name, registry, "check_frontend_tone_lands_in_its_band",
                    f"a {hz:.0f} Hz tone is loudest in mel band {loudest}, expected {expected} (+-1)")


FRONTEND_CHECKS: tuple[Callable, ...] = (check_frontend_shape, check_frontend_deterministic,
                                         check_frontend_tone_lands_in_its_band)


def frontend_checks(name: str, registry: Registry | None = None) -> list[Callable[[], None]]:
    """Each front-end check bound to one registered front-end."""
    registry = registry or get_registry()
    return bind(FRONTEND_CHECKS, name, registry, registry.front_end(name).config)


def check_frontend(name: str, registry: Registry | None = None) -> None:
    """Run every front-end check; raises ``ConformanceError`` on the first failure."""
    for check in frontend_checks(name, registry):
        check()
