"""The training loop, the data it reads (``DataBundle``) and prediction; strategies get a ``TrainingJob``
(``ascbench.job``).

Features live in memory (or memory-mapped) as one array; a batch is a slice of it, so the loop stays
close to a bare PyTorch loop. Early stopping uses a validation part of the *labeled training* clips only.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import asdict, dataclass, field
from time import perf_counter
from typing import Iterable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from ascbench import callbacks, checkpoint, distributed
from ascbench.config import RunConfig
from ascbench.data.dataset import ClipDataset
from ascbench.device import Compute, model_compute
from ascbench.errors import ConfigError, PluginError
from ascbench.features import read_rows
from ascbench.augment import freq_mixstyle, mixup, spec_augment, time_roll
from ascbench.layers import ContextFusion, InputBatchNorm
from ascbench.optim import make_optimizer, make_scheduler, selection_score, validation_record
from ascbench.specs import ModelContext, ModelSpec

log = logging.getLogger("ascbench")


def create_model(spec: ModelSpec, ctx: ModelContext, config: RunConfig) -> nn.Module:
    """Build ``spec`` for ``ctx`` with the run's model arguments and seed, wrapped with context fusion if asked."""
    torch.manual_seed(config.seed)
    model = spec.build(ctx, **config.model_kwargs)
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
    return model


def probe_model(spec: ModelSpec, config: RunConfig, dataset: ClipDataset, n_mels: int, n_frames: int) -> nn.Module:
    """``spec`` as a run training on every clip of ``dataset`` builds it, before any audio is read.

    Runs use it to fail fast on bad model arguments and to fingerprint an architecture. It is built
    under a forked RNG: building draws random numbers, and the run's own draws must not move (a
    stored row has to re-run to the same digits).
    """
    ctx = ModelContext(num_classes=len(dataset.classes), num_cities=dataset.meta["city"].nunique() + 1,
                       time_dim=dataset.time_features().shape[1], n_mels=n_mels, n_frames=n_frames)
    with torch.random.fork_rng(devices=[]):
        return create_model(spec, ctx, config)


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
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            pos = order[start:start + batch_size]
            logits = model(*data.batch_on(rows[pos], compute))
            # Softmax in float64 on the CPU, whatever the device (MPS has no float64).
            out[pos] = F.softmax(logits.cpu().double(), dim=1).numpy()
    return out


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


def _mean_loss(losses: list[torch.Tensor], sizes: list[int]) -> float:
    """The epoch's mean training loss, clip-weighted, summed on the host in step order (one transfer)."""
    if not losses:
        return 0.0
    total = 0.0
    for value, size in zip(torch.stack(losses).cpu().tolist(), sizes):
        total += value * size
    return total / sum(sizes)


def fit(
    model: nn.Module,
    data: DataBundle,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    *,
    epochs: int,
    lr: float,
    config: RunConfig,
    seed: int,
    targets: np.ndarray | None = None,
    desc: str = "train",
    parameters: Iterable[nn.Parameter] | None = None,
    hook: TrainingHook | None = None,
    progress: bool = True,
) -> FitResult:
    """Train ``model`` on ``train_rows`` (labels from ``targets`` or the dataset); keep the best validation epoch.

    Model selection and early stopping use ``val_rows``, which must come from labeled *training* data.
    """
    targets = data.labels[train_rows] if targets is None else np.asarray(targets)
    if len(targets) != len(train_rows) or (targets < 0).any():
        raise ValueError("fit() needs a known class for every training row")
    hook = hook or TrainingHook()
    compute = Compute.from_names(config.device, config.precision)
    model.to(compute.device)  # before the optimizer exists, so its state lives beside the parameters
    scaler = compute.grad_scaler()
    params = [p for p in (parameters if parameters is not None else model.parameters()) if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: every parameter is frozen")
    optimizer = make_optimizer(params, config, lr)
    # With few labeled clips an epoch is only a handful of steps; repeating the clips (in fresh
    # orders) up to min_epoch_clips gives the schedule and early stopping enough steps to work with.
    passes = max(1, int(np.ceil(config.min_epoch_clips / len(train_rows))))
    steps_per_epoch = max(1, int(np.ceil(passes * len(train_rows) / config.batch_size)))
    scheduler = make_scheduler(optimizer, config, lr, epochs, steps_per_epoch)
    rng = np.random.default_rng([seed, 11])
    # Dropout and augmentation draw from torch's generators; reseeding here makes a stage independent
    # of whatever ran before it in the process (e.g. a pretraining stage that was not cached yet).
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    num_classes = len(data.dataset.classes)
    best_state, best_score, best_epoch, stale = None, (-np.inf, -np.inf), 0, 0
    # By default early stopping waits for the warm-up and first third of the one-cycle schedule.
    min_epochs = config.min_epochs if config.min_epochs is not None else max(1, epochs // 3)
    history: list[dict] = []
    order = np.arange(len(train_rows))
    checkpointer = checkpoint.active()
    stage = checkpointer.stage_name(desc) if checkpointer else desc
    done = checkpointer.finished(stage) if checkpointer else None
    if done is not None:  # a resumed run replays a finished stage from its checkpoint
        model.load_state_dict(done["model"])
        log.info("%s: finished before the interruption; taken from the checkpoint", stage)
        callbacks.stage_end(stage, done["result"]["history"])
        return FitResult(**done["result"])
    first_epoch = 1
    saved = checkpointer.in_progress(stage) if checkpointer else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        rng.bit_generator.state = saved["numpy_rng"]
        torch.set_rng_state(saved["torch_rng"])
        if saved.get("cuda_rng") is not None and compute.device.type == "cuda":
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        if scaler is not None and saved.get("scaler"):
            scaler.load_state_dict(saved["scaler"])
        generator.set_state(saved["generator"])
        hook.load_state_dict(saved["hook"])
        best_state, best_score, best_epoch, stale = saved["best_state"], saved["best_score"], saved["best_epoch"], saved["stale"]
        history = saved["history"]
        first_epoch = saved["epoch"] + 1
        log.info("%s: resuming after epoch %d from the checkpoint", stage, saved["epoch"])
    bar = tqdm(range(first_epoch, epochs + 1), desc=desc, unit="epoch", disable=not progress, leave=False,
               initial=first_epoch - 1, total=epochs)
    train_model = compiled(distributed.wrap(model), config.compile)
    world = distributed.world_size()
    stopped_early = saved is not None and saved.get("stopped", False)
    for epoch in bar if not stopped_early else ():
        model.train()
        _freeze_frozen_batchnorm(model)
        perm = np.concatenate([rng.permutation(order) for _ in range(passes)])
        # Step losses stay on the device until the epoch ends: reading one (.item()) or testing it on the
        # host would wait for the GPU at every step and leave it idle while the next batch is assembled.
        step_losses: list[torch.Tensor] = []
        step_sizes: list[int] = []
        finite = torch.ones((), dtype=torch.bool, device=compute.device)
        for start in range(0, len(perm), config.batch_size):
            pos = perm[start:start + config.batch_size]
            pos = pos[np.argsort(train_rows[pos], kind="stable")]  # sequential reads; targets follow
            if len(pos) < 2 * world:  # batch norm cannot train on a single clip (per data-parallel rank)
                continue
            # Drawn for the whole batch before sharing it out, so every rank's generator stays in step.
            drop = rng.random(len(pos)) < config.city_dropout if config.city_dropout > 0 else None
            mine = distributed.share(np.arange(len(pos)))
            pos = pos[mine]
            x, city, time = data.batch_on(train_rows[pos], compute)
            if drop is not None:
                city = city.masked_fill(compute.to(torch.from_numpy(drop[mine]))[0], 0)
            # Augmented where the batch is, with draws from the CPU generator: the same draws on every device.
            x = augment_batch(x, config, generator, data.frame_rate)
            (y,) = compute.to(F.one_hot(torch.from_numpy(targets[pos]), num_classes).float())
            x, y = mixup(x, y, config.mixup_alpha, generator)
            with compute.autocast():
                logits = train_model(x, city, time)
            logits = logits.float()
            if logits.shape != y.shape:
                raise PluginError(f"model {config.model!r} broke the model contract at {desc}, epoch {epoch}: forward "
                                  f"returned shape {tuple(logits.shape)} for a batch of {len(pos)}, expected "
                                  f"{tuple(y.shape)} (batch, classes)")
            loss = torch.sum(-y * F.log_softmax(logits, dim=1), dim=1).mean()
            extra = hook.extra_loss(model, epoch)
            total = loss if extra is None else loss + extra
            finite &= torch.isfinite(total.detach())
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(total).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                total.backward()
                optimizer.step()
            scheduler.step()
            hook.after_step(model)
            step_losses.append(loss.detach())
            step_sizes.append(len(pos))
        if not bool(finite):
            raise PluginError(f"model {config.model!r}: the loss became NaN or infinite at {desc}, epoch {epoch}; "
                              "try a lower --lr, --precision fp32, or check the model's forward")
        distributed.sync_buffers(model)  # every rank validates (and stops) exactly as rank 0 does
        record = {"epoch": epoch, "loss": _mean_loss(step_losses, step_sizes)}
        scored = hook.eval_model(model)
        if len(val_rows):
            record.update(validation_record(predict(scored, data, val_rows), data.labels[val_rows]))
        record["lr"] = optimizer.param_groups[0]["lr"]
        history.append(record)
        callbacks.epoch_end(stage, record)
        score = selection_score(record, config.select_on)
        if score > best_score:
            best_score, best_epoch, stale = score, epoch, 0
            best_state = copy.deepcopy(scored.state_dict())
        else:
            stale += 1
        bar.set_postfix(loss=f"{record['loss']:.3f}", val=f"{record.get('val_accuracy', float('nan')):.3f}")
        log.debug("%s epoch %d: %s", desc, epoch, record)
        stop = bool(config.patience and len(val_rows) and stale >= config.patience and epoch >= min_epochs)
        if checkpointer:
            checkpointer.save_epoch(stage, epoch, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if compute.device.type == "cuda" else None,
                "scaler": scaler.state_dict() if scaler is not None else None,
                "generator": generator.get_state(), "hook": hook.state_dict(), "best_state": best_state,
                "best_score": best_score, "best_epoch": best_epoch, "stale": stale, "history": history,
                "stopped": stop,
            })
        if stop:
            log.info("%s: early stop at epoch %d (best epoch %d)", desc, epoch, best_epoch)
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    best_val = history[best_epoch - 1].get("val_accuracy") if history else None
    result = FitResult(best_epoch, best_val, history)
    callbacks.stage_end(stage, history)
    if checkpointer:
        checkpointer.finish_stage(stage, model.state_dict(), asdict(result))
    return result
