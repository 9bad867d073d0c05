"""Where a run computes (``--device``) and in which precision (``--precision``).

Batches are assembled on the CPU (from the memory-mapped feature cache, augmented there with the
run's seeded generators, so CPU and GPU runs draw the same masks), then copied to the device:
from pinned memory and without blocking on CUDA. Mixed precision uses autocast; float16 adds a
gradient scaler and needs CUDA. Checkpoints and stored weights are always loaded onto the CPU first,
so a run killed on one device resumes on another.
"""

from __future__ import annotations

import contextlib
import platform
from dataclasses import dataclass
from typing import Iterator

import torch

from ascbench.errors import ConfigError

DEVICE_CHOICES = "auto | cpu | cuda | cuda:N | mps"
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; an explicit device that is absent is one line."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"--device {name!r} is not a device; use {DEVICE_CHOICES}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: CUDA is not available on this machine "
                              f"(torch {torch.__version__}, {torch.cuda.device_count()} GPUs seen); use --device cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError(f"--device {name}: Apple MPS is not available here; use --device cpu or auto")
    elif device.type != "cpu":
        raise ConfigError(f"--device {name!r} is not supported; use {DEVICE_CHOICES}")
    return device


@dataclass(frozen=True)
class Compute:
    """A run's device and precision, as training and evaluation use them."""

    device: torch.device
    precision: str = "fp32"

    @classmethod
    def from_names(cls, device: str, precision: str) -> "Compute":
        if precision not in PRECISIONS:
            raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        resolved = resolve_device(device)
        if precision == "fp16" and resolved.type != "cuda":
            raise ConfigError(f"--precision fp16 needs a CUDA device (here: {resolved}); use bf16 or fp32")
        return cls(resolved, precision)

    def to(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Copies of ``tensors`` on the device (pinned and non-blocking on CUDA); the tensors on the CPU."""
        if self.device.type == "cpu":
            return tensors
        cuda = self.device.type == "cuda"
        return tuple((t.pin_memory() if cuda else t).to(self.device, non_blocking=cuda) for t in tensors)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            yield
            return
        with torch.autocast(device_type=self.device.type, dtype=dtype):
            yield

    def grad_scaler(self) -> "torch.amp.GradScaler | None":
        """A gradient scaler for float16 (its small range underflows gradients); None otherwise."""
        return torch.amp.GradScaler(self.device.type) if self.precision == "fp16" else None

    def describe(self) -> dict[str, str]:
        """What the record says about where the run computed."""
        if self.device.type == "cuda":
            name = torch.cuda.get_device_name(self.device)
        elif self.device.type == "mps":
            name = "Apple MPS"
        else:
            name = platform.processor() or platform.machine()
        return {"device": str(self.device), "device_name": name, "precision": self.precision}

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


CPU = Compute(torch.device("cpu"))


def model_compute(model: torch.nn.Module) -> Compute:
    """The device a model's parameters are on (CPU for a model without parameters)."""
    param = next(model.parameters(), None)
    return Compute(param.device) if param is not None else CPU
