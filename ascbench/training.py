"""What training works with: the data (``DataBundle``), models built for it, prediction, the hooks and
augmentations of a training step. The loop itself is ``ascbench.fitting.fit``; strategies get a ``TrainingJob``
(``ascbench.job``).

Features live in memory (or memory-mapped) as one array; a batch is a slice of it, so the loop stays
close to a bare PyTorch loop. Early stopping uses a validation part of the *labeled training* clips only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from time import perf_counter

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ascbench.config import RunConfig
from ascbench.data.dataset import ClipDataset
from ascbench.device import NEEDS_ATTRIBUTE, Compute, ModelNeeds, model_compute
from ascbench.errors import AscbenchError, ConfigError, PluginError, check_returned
from ascbench.features import read_rows
from ascbench.augment import freq_mixstyle, spec_augment, time_roll
from ascbench.layers import ContextFusion, InputBatchNorm
from ascbench.specs import ModelContext, ModelSpec

log = logging.getLogger("ascbench")


def create_model(spec: ModelSpec, ctx: ModelContext, config: RunConfig, label: str | None = None) -> nn.Module:
    """Build ``spec`` for ``ctx`` with the run's model arguments and seed, wrapped with context fusion if asked.
    ``label`` names the model in an error (default: by the global registry)."""
    from ascbench.registry import plugin_label

    torch.manual_seed(config.seed)
    name = label or plugin_label("model", spec.name)
    try:
        built = spec.build(ctx, **config.model_kwargs)
    except AscbenchError:
        raise
    except Exception as exc:  # one line: the arguments the user gave are the likely cause, else the plugin
        reason = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
        if config.model_kwargs:
            args = " ".join(f"--model-arg {k}={v!r}" for k, v in config.model_kwargs.items())
            raise ConfigError(f"{name} cannot be built with {args} ({reason}); `ascbench list models` shows its "
                              "arguments") from None
        raise PluginError(f"{name} cannot be built ({reason})") from exc
    # What the build returns is checked here, else a strategy would be blamed for the model's fault.
    model = check_returned(name, built, nn.Module, "a torch nn.Module")
    if config.context:
        if spec.uses_city or spec.uses_time:
            raise ConfigError(f"model {spec.name!r} already fuses city/time context; --context is for backbones without it")
        try:
            model = ContextFusion(model, ctx.num_classes, ctx.num_cities, ctx.time_dim,
                                  use_city="city" in config.context_parts, use_time="time" in config.context_parts)
        except TypeError as exc:
            raise ConfigError(f"--context cannot wrap model {spec.name!r}: {exc}") from None
    if config.normalization == "input-bn":
        model = InputBatchNorm(model, ctx.n_mels)
    setattr(model, NEEDS_ATTRIBUTE, ModelNeeds.of(spec))  # the spec's capability flags, for the stage's Compute
    return model


def probe_model(spec: ModelSpec, config: RunConfig, dataset: ClipDataset, n_mels: int, n_frames: int,
                label: str | None = None) -> nn.Module:
    """``spec`` as a run training on every clip of ``dataset`` builds it, before any audio is read.

    Runs use it to fail fast on bad model arguments and to fingerprint an architecture. It is built
    under a forked RNG: building draws random numbers, and the run's own draws must not move (a
    stored row has to re-run to the same digits).
    """
    ctx = ModelContext(num_classes=len(dataset.classes), num_cities=dataset.meta["city"].nunique() + 1,
                       time_dim=dataset.time_features().shape[1], n_mels=n_mels, n_frames=n_frames)
    with torch.random.fork_rng(devices=[]):
        return create_model(spec, ctx, config, label)


RESIDENT_CHUNK = 512  # clips normalised and uploaded at a time (bounded host memory for a full-size dataset)
# Largest normalised feature matrix kept in host memory whole (the embedded data: 25 MB); bigger ones (8,700
# APSIPA clips: 1.1 GB) stay memory-mapped and are normalised batch by batch.
HOST_RESIDENT_BYTES = 256 * 1024 ** 2
STATS_CLIPS = 1000  # clips that give the per-mel-bin normalisation statistics (64 bins x frames x 1000 values each)


@dataclass
class DataBundle:
    """One dataset's features and per-clip model inputs, with the normalisation of its training side."""

    dataset: ClipDataset
    features: np.ndarray  # clips x mel bins x frames (memory-mapped from the feature cache)
    labels: np.ndarray  # class index, -1 unknown
    city: np.ndarray  # city index in ``cities`` + 1; 0 for a city unseen in training
    time: np.ndarray  # clips x time features
    cities: list[str]  # the training-side city vocabulary
    mean: np.ndarray  # per mel bin
    std: np.ndarray
    # Seconds spent assembling batches (slicing the feature cache, normalising), so a run can report
    # data loading apart from training compute.
    loading_s: float = field(default=0.0, compare=False)
    # Row of ``features`` for each dataset row, when the dataset lost rows the cache still holds
    # (files left out with --skip-bad): the cache stays memory-mapped instead of being copied.
    feature_rows: np.ndarray | None = None
    frame_rate: float = 50.0  # feature frames per second (time roll is given in seconds)
    # Normalised features, cities and time features of every clip held on a device (the GPU, or host memory
    # for small data), made once when they fit (see ``resident_on``): batches are then a gather.
    _resident: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(cls, dataset: ClipDataset, features: np.ndarray, train_rows: np.ndarray,
              feature_rows: np.ndarray | None = None, normalization: str = "per-bin",
              frame_rate: float = 50.0) -> "DataBundle":
        cities = sorted(dataset.meta["city"].iloc[train_rows].unique())
        lookup = {c: i + 1 for i, c in enumerate(cities)}
        city = np.array([lookup.get(c, 0) for c in dataset.meta["city"]], dtype=np.int64)
        # Statistics from the training side only (no labels involved), so test clips shape nothing; from
        # at most STATS_CLIPS clips evenly spread over it, so a full-size dataset is not copied out of the
        # memory-mapped cache (8,700 APSIPA clips: 2.1 GB peak). A smaller side uses every clip.
        rows = np.sort(train_rows)
        if len(rows) > STATS_CLIPS:
            rows = rows[np.linspace(0, len(rows) - 1, STATS_CLIPS).round().astype(np.int64)]
        if normalization == "per-bin":
            sample = read_rows(features, rows if feature_rows is None else feature_rows[rows])
            mean = sample.mean(axis=(0, 2)).astype(np.float32)
            std = (sample.std(axis=(0, 2)) + 1e-5).astype(np.float32)
        else:  # "none", or "input-bn" (the model's own BatchNorm normalises): features go in as extracted
            mean, std = np.zeros(features.shape[1], np.float32), np.ones(features.shape[1], np.float32)
        return cls(dataset, features, dataset.label_indices(), city, dataset.time_features(), cities, mean, std,
                   feature_rows=feature_rows, frame_rate=frame_rate)

    def model_context(self) -> ModelContext:
        return ModelContext(
            num_classes=len(self.dataset.classes),
            num_cities=len(self.cities) + 1,
            time_dim=self.time.shape[1],
            n_mels=self.features.shape[1],
            n_frames=self.features.shape[2],
        )

    def batch(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised features, city indices and time features of ``rows``, in the order given.

        Callers pass sorted rows where they can: sorted reads are sequential on a memory-mapped array.
        """
        started = perf_counter()
        source = rows if self.feature_rows is None else self.feature_rows[rows]
        x = read_rows(self.features, source).astype(np.float32, copy=False)  # one copy out of the cache
        np.subtract(x, self.mean[:, None], out=x)  # normalised in place: no temporaries per batch
        np.divide(x, self.std[:, None], out=x)
        out = torch.from_numpy(x).unsqueeze(1), torch.from_numpy(self.city[rows]), torch.from_numpy(self.time[rows])
        self.loading_s += perf_counter() - started
        return out

    def resident_on(self, compute: Compute) -> tuple[torch.Tensor, ...] | None:
        """Every clip's normalised features, city and time features held on ``compute``'s device, made on
        first use; None when they would not fit (CUDA: over half the GPU's free memory; CPU: over
        ``HOST_RESIDENT_BYTES``, so a full-size dataset stays memory-mapped) or on other devices.

        Exactly the values ``batch`` gives (normalised on the host, chunk by chunk), so a run computes the
        same with or without it; making it counts as data loading.
        """
        if compute.device.type not in ("cuda", "cpu"):
            return None
        key = str(compute.device)
        if key not in self._resident:
            n = len(self.labels)
            size = n * int(np.prod(self.features.shape[1:])) * 4
            limit = torch.cuda.mem_get_info(compute.device)[0] // 2 if compute.device.type == "cuda" else HOST_RESIDENT_BYTES
            if size > limit:
                self._resident[key] = None
                return None
            started, before = perf_counter(), self.loading_s  # batch() below counts its own time: counted once here
            x = torch.empty((n, 1, *self.features.shape[1:]), dtype=torch.float32, device=compute.device)
            for start in range(0, n, RESIDENT_CHUNK):
                x[start:start + RESIDENT_CHUNK] = self.batch(np.arange(start, min(n, start + RESIDENT_CHUNK)))[0].to(compute.device)
            self._resident[key] = (x, torch.from_numpy(self.city).to(compute.device),
                                   torch.from_numpy(self.time).to(compute.device))
            self.loading_s = before + perf_counter() - started
        return self._resident[key]

    def batch_on(self, rows: np.ndarray, compute: Compute) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``batch(rows)`` on ``compute``'s device: gathered there from the resident copy when there is one,
        else assembled on the host and copied (pinned, without blocking)."""
        resident = self.resident_on(compute)
        if resident is None:
            return compute.to(*self.batch(rows))
        started = perf_counter()
        index = torch.from_numpy(np.asarray(rows, dtype=np.int64))
        index = index.to(compute.device, non_blocking=True) if compute.device.type == "cuda" else index
        out = tuple(t[index] for t in resident)  # a copy: nothing a model does to its batch reaches the store
        self.loading_s += perf_counter() - started
        return out


@dataclass
class FitResult:
    best_epoch: int
    best_val_accuracy: float | None
    history: list[dict] = field(default_factory=list)


# Frames per inference batch: 128 clips of the embedded data's 101 frames. Longer clips get smaller batches,
# so a 10 s APSIPA clip (500 frames) is predicted 25 at a time and activations stay bounded (4.5 GB peak
# with 128 ten-second clips through MobileASCNet; it was also slower).
INFERENCE_FRAMES = 128 * 101


def predict(model: nn.Module, data: DataBundle, rows: np.ndarray, batch_size: int | None = None) -> np.ndarray:
    """Class probabilities for ``rows`` (in the order given)."""
    batch_size = batch_size or max(1, min(128, INFERENCE_FRAMES // data.features.shape[2]))
    model.eval()
    compute = model_compute(model)
    order = np.argsort(rows, kind="stable")
    out = np.empty((len(rows), len(data.dataset.classes)), dtype=np.float64)
    if not len(rows):
        return out
    # In the precision and memory format the model trained in (``compute`` comes from its training stage).
    model = compute.inference_model(model)
    with torch.inference_mode():
        # Logits stay on the device until every batch is done: one transfer (and one wait for the GPU) per call
        # instead of one per batch.
        with compute.autocast():
            logits = [_forward(model, compute, data.batch_on(rows[order[start:start + batch_size]], compute))
                      for start in range(0, len(rows), batch_size)]
        # Softmax in float64 on the CPU, whatever the device (MPS has no float64); row by row, as before.
        out[order] = F.softmax(torch.cat(logits).cpu().double(), dim=1).numpy()
    return out


def _forward(model: nn.Module, compute: Compute, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    x, city, time = batch
    return model(compute.model_input(x), city, time)


def require_finite(probs: np.ndarray, model: str, plugin: str, where: str) -> None:
    """Refuse class probabilities that are not all finite: a model whose outputs are NaN would otherwise argmax
    to class 0 everywhere and be stored as an ordinary chance-level number."""
    bad = ~np.isfinite(probs).all(axis=1)
    if bad.any():
        from ascbench.errors import PluginError

        raise PluginError(f"model {model!r} (plugin {plugin!r}) gave non-finite outputs (NaN or inf) for {int(bad.sum())} "
                          f"of {len(bad)} clips {where}; nothing was stored. Check the model's forward pass, or train "
                          "with a lower --lr / --precision fp32")


class TrainingHook:
    """Extra behaviour inside the training loop (used by semi-supervised methods).

    ``extra_loss`` is added to the supervised loss at every step, ``after_step`` runs after each
    optimiser step, and ``eval_model`` chooses which network validation scores (e.g. an EMA teacher).
    """

    def extra_loss(self, model: nn.Module, epoch: int) -> torch.Tensor | None:
        return None

    def after_step(self, model: nn.Module) -> None:
        pass

    def eval_model(self, model: nn.Module) -> nn.Module:
        return model

    def state_dict(self) -> dict:
        """Everything the hook carries between epochs, for checkpoints (a resumed run restores it)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def augment_batch(x: torch.Tensor, config: RunConfig, generator: torch.Generator, frame_rate: float = 50.0) -> torch.Tensor:
    """The run's augmentations of one normalised batch, in a fixed order: roll, masks, MixStyle (mixup
    follows in the loop, as it also mixes the targets). An augmentation that is off draws nothing."""
    x = time_roll(x, int(config.roll_seconds * frame_rate), generator)
    x = spec_augment(x, config.freq_mask, config.time_mask, generator, config.mask_value)
    return freq_mixstyle(x, config.mixstyle_p, config.mixstyle_alpha, generator)


def _freeze_frozen_batchnorm(model: nn.Module) -> None:
    # A frozen feature extractor must not keep updating its batch-norm statistics either.
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in m.parameters()):
            m.eval()


def compiled(model: nn.Module, mode: str) -> nn.Module:
    """``model`` under ``torch.compile`` in ``mode`` (the module itself for "off"). The compiled wrapper
    shares the parameters, so the optimizer, checkpoints and model selection see the plain module."""
    if mode == "off":
        return model
    return torch.compile(model, mode=None if mode == "default" else mode)
