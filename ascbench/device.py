"""Where a run computes (``--device``) and in which precision (``--precision``).

Batches are assembled on the CPU (from the memory-mapped feature cache, augmented there with the
run's seeded generators, so CPU and GPU runs draw the same masks), then copied to the device:
from pinned memory and without blocking on CUDA. Mixed precision uses autocast; float16 adds a
gradient scaler and needs CUDA. ``auto`` resolves to bf16 where the device computes it natively (a CPU
with AVX512-BF16 or AMX, a CUDA GPU that supports it) and to fp32 elsewhere; the record states the resolved
precision and why. Under a reduced precision a model whose spec allows it computes in channels_last (NHWC):
there it is measurably faster; in fp32 it would move the last bits of the logits, so fp32 stays contiguous
and published fp32 numbers stay what they were, unless ``--memory-format channels_last`` asks for it (recorded
with the run). Checkpoints and stored weights are always loaded onto the CPU first,
so a run killed on one device resumes on another.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import platform
import weakref
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import torch
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_conv_bn_weights

from ascbench.config import MEMORY_FORMATS
from ascbench.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from ascbench.specs import ModelSpec

DEVICE_CHOICES = "auto | cpu | cuda | cuda:N | mps"
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
PRECISION_CHOICES = (*PRECISIONS, "auto")  # auto: resolved per device by resolve_precision


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; an explicit device that is absent is one line."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    device = parse_device_name(name)
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
    return device


def parse_device_name(name: str) -> torch.device:
    """A device name's form, without asking whether this machine has it (a sweep's cells may run on a Ray
    cluster's GPUs that the machine checking them lacks; :func:`resolve_device` checks presence)."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"--device {name!r} is not a device; use {DEVICE_CHOICES}") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"--device {name!r} is not supported; use {DEVICE_CHOICES}")
    return device


@dataclass(frozen=True)
class ModelNeeds:
    """What a model spec declares about how it may compute (its capability flags, see ``ModelSpec``)."""

    channels_last: bool = False  # its convolutions may run in channels_last (NHWC) under reduced precision
    fp32_only: bool = False  # it must stay fp32: --precision auto gives fp32 for it, bf16/fp16 are refused
    model: str = ""  # the spec's name, for messages

    @classmethod
    def of(cls, spec: "ModelSpec") -> "ModelNeeds":
        return cls(channels_last=spec.channels_last, fp32_only=spec.fp32_only, model=spec.name)


NEEDS_ATTRIBUTE = "_ascbench_needs"  # set on a model by training.create_model, read when a stage starts
COMPUTE_ATTRIBUTE = "_ascbench_compute"  # set by Compute.prepare: inference follows the run's settings


def model_needs(model: torch.nn.Module) -> ModelNeeds:
    """The capability flags of the spec ``model`` was built from (none declared for a model built elsewhere)."""
    return getattr(model, NEEDS_ATTRIBUTE, ModelNeeds())


@functools.lru_cache(maxsize=1)
def cpu_computes_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic in hardware (AVX512-BF16 or AMX), so autocast to bf16 is faster
    than fp32 rather than emulated. torch's dispatch level says AMX directly; AVX512-BF16 it does not name,
    so the kernel's CPU flags are read too."""
    capability = str(torch.backends.cpu.get_cpu_capability()).upper()
    if "AMX" in capability or "BF16" in capability:
        return True
    return bool(_cpuinfo_flags() & {"avx512_bf16", "amx_bf16"})


def _cpuinfo_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: no flags known, so auto stays fp32
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def resolve_precision(requested: str, device: torch.device, needs: ModelNeeds = ModelNeeds()) -> tuple[str, str]:
    """The precision a run computes in and why: ``auto`` is bf16 where ``device`` computes bf16 natively and
    fp32 elsewhere (or where the model must stay fp32); an explicit precision is itself."""
    if requested != "auto":
        return requested, "requested"
    if needs.fp32_only:
        return "fp32", f"auto: model {needs.model or '(unnamed)'!r} declares fp32_only"
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bf16", f"auto: {torch.cuda.get_device_name(device)} supports bf16"
        return "fp32", "auto: this GPU has no native bf16"
    if device.type == "cpu":
        if cpu_computes_bf16():
            return "bf16", "auto: the CPU has bf16 instructions (AVX512-BF16 or AMX)"
        return "fp32", f"auto: the CPU has no bf16 instructions (torch dispatch {torch.backends.cpu.get_cpu_capability()})"
    return "fp32", f"auto: bf16 is not used on {device.type}"


@dataclass(frozen=True)
class Compute:
    """A run's device, its resolved precision and memory format, as training and evaluation use them."""

    device: torch.device
    precision: str = "fp32"  # resolved: fp32 | bf16 | fp16
    requested: str = ""  # what --precision said ("" when made directly with a precision)
    reason: str = ""  # why ``precision`` (auto's choice, or "requested")
    channels_last: bool = False

    @classmethod
    def from_names(cls, device: str, precision: str, needs: ModelNeeds = ModelNeeds(), *,
                   strict: bool = True, memory_format: str = "auto") -> "Compute":
        """``device``, ``precision`` and ``memory_format`` resolved for a model with ``needs``. Not ``strict``
        (predicting with a stored run's weights elsewhere), a precision this device cannot compute falls back to
        fp32, and channels_last for a model that does not allow it to contiguous, instead of failing."""
        if precision not in PRECISION_CHOICES:
            raise ConfigError(f"--precision must be one of {', '.join(PRECISION_CHOICES)}, not {precision!r}")
        resolved = resolve_device(device)
        chosen, reason = resolve_precision(precision, resolved, needs)
        problem = None
        if chosen == "fp16" and resolved.type != "cuda":
            problem = f"--precision fp16 needs a CUDA device (here: {resolved}); use bf16 or fp32"
        elif chosen != "fp32" and needs.fp32_only:
            problem = (f"--precision {chosen}: model {needs.model or '(unnamed)'!r} declares fp32_only in its ModelSpec; "
                       "use --precision fp32 or auto")
        if problem is not None:
            if strict:
                raise ConfigError(problem)
            chosen, reason = "fp32", f"fallback: {problem.split(';')[0]}"
        return cls(resolved, chosen, precision, reason, _channels_last(memory_format, chosen, needs, strict))

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` on the device in the memory format it computes in, remembering these settings so that
        inference on it (``predict``) computes as training did."""
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        setattr(model, COMPUTE_ATTRIBUTE, replace(self, device=torch.device("cpu")))  # the device follows the parameters
        return model

    def inference_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module inference calls: under a reduced precision, a copy of ``model`` (in eval mode) with each
        batch norm that directly follows a convolution in an ``nn.Sequential`` folded into the convolution
        (cp-mobile infers 10 s clips ~1.4x faster in bf16); ``model`` itself in fp32, where folding would move
        the logits' last bits. The copy is made once per model and refreshed from its current weights."""
        if self.precision == "fp32" or not any(_foldable_pairs(m) for m in model.modules()):
            return model
        structure = _structure(model)
        folded = _FOLDED_COPIES.get(model)
        if folded is None or structure is None or folded.signature != structure:
            try:
                folded = _FoldedCopy(model, self.channels_last, structure)
            except (TypeError, RuntimeError):  # a plugin model holding something uncopyable infers unfolded
                return model
            if structure is not None:
                _FOLDED_COPIES[model] = folded
        return folded.refreshed()

    def model_input(self, x: torch.Tensor) -> torch.Tensor:
        """A batch of features in the model's memory format (channels_last for 4-D batches when it is on)."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

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
        return {"device": str(self.device), "device_name": name, "precision": self.precision,
                "precision_requested": self.requested or self.precision, "precision_reason": self.reason or "requested",
                "memory_format": "channels_last" if self.channels_last else "contiguous"}

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


CPU = Compute(torch.device("cpu"))


def _channels_last(memory_format: str, precision: str, needs: ModelNeeds, strict: bool) -> bool:
    """Whether a model with ``needs`` computes in channels_last. ``auto``: only under reduced precision, because
    in fp32 it changes the logits' last bits (oneDNN picks other kernels) and fp32 numbers published before
    must re-run to the same digits; asked for by name, in any precision. Only for a model whose spec allows it
    (one that ``.view()``s an activation would compute garbage)."""
    if memory_format not in MEMORY_FORMATS:
        raise ConfigError(f"--memory-format must be one of {', '.join(MEMORY_FORMATS)}, not {memory_format!r}")
    if memory_format == "contiguous":
        return False
    if memory_format == "auto":
        return needs.channels_last and precision != "fp32"
    if not needs.channels_last and strict:
        raise ConfigError(f"--memory-format channels_last: model {needs.model or '(unnamed)'!r} does not allow it "
                          "(its ModelSpec leaves channels_last False, e.g. because it reshapes activations with "
                          "view); use --memory-format auto or contiguous")
    return needs.channels_last


def _foldable_pairs(module: torch.nn.Module) -> list[int]:
    """Positions i in an ``nn.Sequential`` where a 2-D convolution is directly followed by an eval-mode batch norm
    with running statistics: the batch norm is then an affine map of the convolution's output, foldable into it."""
    if not isinstance(module, torch.nn.Sequential):
        return []
    layers = list(module)
    return [i for i in range(len(layers) - 1)
            if type(layers[i]) is torch.nn.Conv2d and type(layers[i + 1]) is torch.nn.BatchNorm2d
            and not layers[i + 1].training and layers[i + 1].running_mean is not None]


def _structure(model: torch.nn.Module) -> tuple | None:
    """What a folded copy was built from, or None if that cannot be told (the copy is then built at every call).

    Weights and running statistics may change between calls: the copy is refreshed from them. Anything else
    changing means building the copy anew: a module replaced (its identity), its mode, any of its settings
    (stride, padding, eps, pooling sizes: compared by value) and its hooks (by identity), and any tensor's
    identity and layout. A module holding a tensor that is not one of the model's parameters or buffers (a GRU's
    list of its weights is) could change it in place unseen, so such a model is never kept."""
    known = {id(t) for t in (*model.parameters(), *model.buffers())}
    modules = []
    for name, module in model.named_modules():
        settings = []
        for key, value in vars(module).items():
            if key in ("_parameters", "_buffers", "_modules"):
                continue
            plain = _plain(value, known)
            if plain is _UNTRACKABLE:
                return None
            settings.append((key, plain))
        modules.append((name, id(module), type(module), tuple(settings)))
    tensors = tuple((name, id(t), t.shape, t.dtype, t.device)
                    for name, t in (*model.named_parameters(), *model.named_buffers()))
    return tuple(modules), tensors


_UNTRACKABLE = object()
_PLAIN_TYPES = (int, float, complex, str, bytes, bool, type(None), torch.dtype, torch.device, torch.memory_format)


def _plain(value: object, known: set[int]) -> object:
    """``value`` as something that compares equal exactly when the setting is the same: plain values and their
    containers by value (a list is snapshotted as a tuple, so changing it in place shows), the model's own
    tensors and anything else (a hook, an activation function, a plugin's object) by identity; _UNTRACKABLE for
    any other tensor."""
    if isinstance(value, torch.Tensor):
        return ("tensor", id(value)) if id(value) in known else _UNTRACKABLE
    if isinstance(value, _PLAIN_TYPES):
        return (type(value), value)
    if isinstance(value, (tuple, list)):
        items = tuple(_plain(v, known) for v in value)
        return _UNTRACKABLE if _UNTRACKABLE in items else (type(value), items)
    if isinstance(value, dict):  # the hook tables among them
        items = tuple((_plain(k, known), _plain(v, known)) for k, v in value.items())
        return _UNTRACKABLE if any(_UNTRACKABLE in pair for pair in items) else (type(value), items)
    return ("id", id(value))


class _FoldedCopy:
    """A copy of a model with each foldable convolution + batch norm pair folded into one convolution.

    Building it (a deep copy) took 25 ms for MobileASCNet, 0.8 s of the default run's 31 inference calls;
    refreshing it copies the weights and folds each pair again with the same arithmetic
    (``fuse_conv_bn_weights``, what ``fuse_conv_bn_eval`` calls), so its logits are those of a fresh copy."""

    def __init__(self, model: torch.nn.Module, channels_last: bool, signature: tuple | None):
        self.signature = signature
        self.module = copy.deepcopy(model)
        source = dict(model.named_modules())
        self.pairs: list[tuple[torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.Conv2d]] = []
        folded_names: set[str] = set()
        for name, sequential in self.module.named_modules():
            for i in _foldable_pairs(sequential):
                conv_name, bn_name = (f"{name}.{j}" if name else str(j) for j in (i, i + 1))
                sequential[i] = fuse_conv_bn_eval(sequential[i], sequential[i + 1])
                sequential[i + 1] = torch.nn.Identity()
                self.pairs.append((source[conv_name], source[bn_name], sequential[i]))
                folded_names.update((conv_name, bn_name))
        if channels_last:
            self.module.to(memory_format=torch.channels_last)
        copied = dict((*self.module.named_parameters(), *self.module.named_buffers()))
        self.copies = [(tensor, copied[name]) for name, tensor in (*model.named_parameters(), *model.named_buffers())
                       if name.rpartition(".")[0] not in folded_names]

    @torch.no_grad()
    def refreshed(self) -> torch.nn.Module:
        for tensor, copied in self.copies:
            copied.copy_(tensor)
        for conv, bn, fused in self.pairs:
            weight, bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps,
                                                bn.weight, bn.bias)
            fused.weight.copy_(weight)
            fused.bias.copy_(bias)
        return self.module


# Keyed weakly by the trained model, so a copy goes when its model does.
_FOLDED_COPIES: "weakref.WeakKeyDictionary[torch.nn.Module, _FoldedCopy]" = weakref.WeakKeyDictionary()


def model_compute(model: torch.nn.Module) -> Compute:
    """How inference on ``model`` computes: on the device its parameters are on (CPU for a model without
    parameters), in the precision and memory format its training stage prepared it for (fp32 otherwise)."""
    param = next(model.parameters(), None)
    settings = getattr(model, COMPUTE_ATTRIBUTE, CPU)
    return replace(settings, device=param.device) if param is not None else settings
