"""Weights in: reading checkpoints of any provenance, importing official ones, and loading with a report.

Every load says what it did (tensors loaded, left at their initial values, unexpected, of another shape)
and refuses when too little of the model would come from the checkpoint: a silent partial load makes a
"fine-tuned" number that is really a from-scratch one.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from ascbench.errors import ConfigError, DataError
from ascbench.fileio import read_file_bytes
from ascbench.layers import InputBatchNorm

log = logging.getLogger("ascbench")


@dataclass
class Checkpoint:
    """A state dict in ascbench's key names, with the city vocabulary its city embedding indexes."""

    state: dict[str, torch.Tensor]
    cities: list[str] | None = None  # row i+1 of the city embedding is cities[i]; row 0 is "unknown"
    city_key: str | None = None  # the city embedding's key in ``state``
    source: str = "ascbench"
    notes: list[str] = field(default_factory=list)
    classes: list[str] | None = None  # the classifier's classes, in row order; None: unknown


def _array_globals() -> list:
    """What unpickling a numpy array needs, and nothing that runs code: a run's own model.pt stores its
    normalisation statistics (``mean``, ``std``) as arrays, and must load under ``weights_only``."""
    import numpy as np

    multiarray = getattr(np, "_core", None) or np.core  # numpy 2 moved it; files name either path
    dtypes = [type(np.dtype(t)) for t in ("float16", "float32", "float64", "int32", "int64", "bool")]
    return [multiarray.multiarray._reconstruct, np.ndarray, np.dtype, *dtypes]


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The raw contents of a checkpoint file (tensors, plain data and numpy arrays only; no code runs from it)."""
    try:
        with torch.serialization.safe_globals(_array_globals()):
            return torch.load(io.BytesIO(read_file_bytes(path)), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConfigError(f"checkpoint {path} does not exist; --pretrained takes the path of a torch.save file "
                          "(an ascbench run's model.pt or an official checkpoint)") from None
    except Exception as exc:
        raise DataError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}; it must be a torch.save file "
                        "of tensors (a state dict, or a dict holding one)") from exc


def unwrap(raw: object) -> tuple[dict[str, torch.Tensor], str]:
    """The state dict inside a checkpoint: ascbench's ``{"model": ...}``, the official baselines'
    ``{"model_state_dict": ...}``, Lightning's ``{"state_dict": ...}``, or a bare state dict."""
    if isinstance(raw, dict):
        for key, kind in (("model", "ascbench"), ("model_state_dict", "wrapped"), ("state_dict", "lightning")):
            inner = raw.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return inner, kind
        if raw and all(isinstance(v, torch.Tensor) for v in raw.values()):
            return raw, "state dict"
    raise DataError("the checkpoint holds no state dict (a mapping of names to tensors)")


@dataclass
class LoadReport:
    loaded: list[str]
    missing: list[str]  # in the model, not taken from the checkpoint (left at their initial values)
    unexpected: list[str]  # in the checkpoint, not in the model
    mismatched: list[tuple[str, tuple, tuple]]  # (name, checkpoint shape, model shape)
    total: int  # tensors in the model
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(self.loaded)} of {self.total} tensors loaded"]
        if self.missing:
            parts.append(f"{len(self.missing)} left at their initial values ({_few(self.missing)})")
        if self.mismatched:
            parts.append(f"{len(self.mismatched)} of another shape ("
                         + ", ".join(f"{n} {tuple(a)} vs {tuple(b)}" for n, a, b in self.mismatched[:3])
                         + (", ..." if len(self.mismatched) > 3 else "") + ")")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} not in the model ({_few(self.unexpected)})")
        return "; ".join(parts + self.notes)

    def as_dict(self) -> dict:
        return {"loaded": len(self.loaded), "total": self.total, "missing": self.missing, "unexpected": self.unexpected,
                "mismatched": [[n, list(a), list(b)] for n, a, b in self.mismatched], "notes": self.notes}


def _few(names: list[str]) -> str:
    return ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")


def load_with_report(model: nn.Module, checkpoint: Checkpoint, *, target_cities: list[str] | None = None,
                     skip: set[str] = frozenset(), min_fraction: float = 0.5, what: str = "checkpoint") -> LoadReport:
    """Load every tensor of ``checkpoint`` whose name and shape match ``model`` and report the rest.

    The city embedding is remapped by city name onto ``target_cities`` (the run's vocabulary). ``skip``
    names tensors deliberately left out (a classifier for other classes). Refuses (``ConfigError``) when
    fewer than ``min_fraction`` of the model's tensors, or none at all, would load.
    """
    state = _adapt_prefixes(model, dict(checkpoint.state))
    notes = list(checkpoint.notes)
    if checkpoint.city_key and checkpoint.cities is not None and target_cities is not None:
        key = _prefixed(model, checkpoint.city_key)
        if key in state:
            state[key], note = remap_city_rows(state[key], checkpoint.cities, target_cities)
            notes.append(note)
    own = model.state_dict()
    loaded, mismatched = [], []
    for name, tensor in state.items():
        if name in own and name not in skip:
            if tuple(own[name].shape) == tuple(tensor.shape):
                loaded.append(name)
            else:
                mismatched.append((name, tuple(tensor.shape), tuple(own[name].shape)))
    unexpected = sorted(n for n in state if n not in own)
    report = LoadReport(loaded=sorted(loaded), missing=sorted(set(own) - set(loaded)), unexpected=unexpected,
                        mismatched=mismatched, total=len(own), notes=notes)
    if unexpected and any(n.startswith("bn0.") for n in unexpected) and not any(n.startswith("bn0.") for n in own):
        report.notes.append("the checkpoint has an input BatchNorm (bn0): run with --normalization input-bn to use it")
    if not loaded or len(loaded) < min_fraction * len(own):
        raise ConfigError(f"{what}: only {report.summary()}; the checkpoint does not fit model "
                          f"{type(model).__name__}: is it for another model? Pass the --model (and --model-arg) it was "
                          f"trained as: an ascbench run's model.pt loads as it is, and an official checkpoint is "
                          f"converted on loading by the model it was made for ({_importing_models()})")
    model.load_state_dict({n: state[n] for n in loaded}, strict=False)
    return report


def _importing_models() -> str:
    """The registered models that convert official checkpoints when given one with --pretrained."""
    from ascbench.registry import get_registry

    registry = get_registry()
    names = [f"{name} reads {registry.model(name).importer.source}" for name in registry.names("model")
             if registry.model(name).importer is not None]
    return "; ".join(names) or "no registered model reads official checkpoints"


def remap_city_rows(weight: torch.Tensor, source: list[str], target: list[str]) -> tuple[torch.Tensor, str]:
    """Rows of a city embedding re-ordered from ``source`` names to ``target`` names (row 0: unknown).

    ``weight`` has ``len(source)`` rows (a vocabulary without an unknown row, as the official one) or
    ``len(source) + 1`` (ascbench's, row 0 unknown). A target city the source never saw, and the unknown
    row of a source without one, get the mean of the source's city rows.
    """
    offset = weight.shape[0] - len(source)
    if offset not in (0, 1):
        raise DataError(f"the city embedding has {weight.shape[0]} rows for {len(source)} cities")
    rows = {name: weight[i + offset] for i, name in enumerate(source)}
    mean = weight[offset:].mean(dim=0)
    unknown = weight[0] if offset else mean
    out = torch.stack([unknown] + [rows.get(name, mean) for name in target])
    unseen = [c for c in target if c not in rows]
    note = (f"city embedding mapped by name: {len(target) - len(unseen)} of {len(target)} cities found"
            + (f" (new, set to the mean: {', '.join(unseen)})" if unseen else ""))
    return out, note


def _prefixed(model: nn.Module, key: str) -> str:
    return f"net.{key}" if isinstance(model, InputBatchNorm) and not key.startswith(("net.", "bn0.")) else key


def _adapt_prefixes(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys of a bare model's checkpoint for a model wrapped in an input BatchNorm, and back."""
    wrapped = isinstance(model, InputBatchNorm)
    has_net = any(k.startswith("net.") for k in state)
    if wrapped and not has_net:
        return {k if k.startswith("bn0.") else f"net.{k}": v for k, v in state.items()}
    if not wrapped and has_net:
        return {k[4:] if k.startswith("net.") else k: v for k, v in state.items()}
    return state


def to_checkpoint(raw: object, model_spec, path: str) -> Checkpoint:
    """Any checkpoint file's contents as a :class:`Checkpoint` in ascbench's key names: the model's own
    importer converts an official-format one (recognised by its keys), ascbench's own pass through."""
    state, kind = unwrap(raw)
    importer = model_spec.importer
    if importer is not None and importer.recognises(state):
        converted = importer.convert(state)
        converted.notes.insert(0, f"imported from the {importer.source} format")
        log.info("%s: %s checkpoint imported (%s)", path, importer.source, importer.name)
        return converted
    cities = raw.get("cities") if isinstance(raw, dict) and kind == "ascbench" else None
    classes = raw.get("classes") if isinstance(raw, dict) and kind == "ascbench" else None
    city_key = model_spec.city_embedding
    return Checkpoint(state, list(cities) if cities else None, city_key if cities else None, source=kind,
                      classes=list(classes) if classes else None)
