"""The training loop: ``fit`` trains one stage and keeps its best validation epoch, built from small parts: the
stage's state (``_Stage``, what checkpoints save and restore), one epoch of steps (``_train_epoch``), the
validation record (``_validate``), model selection and early stopping (``_Selection``); the data-parallel
wrapper and ``torch.compile`` wrap the model the steps call (``distributed.wrap``, ``compiled``)."""

from __future__ import annotations

import copy
import logging
from dataclasses import asdict, dataclass, field
from typing import Iterable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from ascbench import callbacks, checkpoint, distributed
from ascbench.augment import mixup
from ascbench.config import RunConfig
from ascbench.device import Compute, model_needs
from ascbench.errors import PluginError
from ascbench.optim import make_optimizer, make_scheduler, selection_score, validation_record
from ascbench.training import (DataBundle, FitResult, TrainingHook, _freeze_frozen_batchnorm, augment_batch, compiled,
                               predict)

log = logging.getLogger("ascbench")

# --quick (config.quick): every epoch of every stage trains on at most this many clips (a fresh random draw each
# epoch) and validates on at most QUICK_VAL_CLIPS, so a quick run checks the whole pipeline in seconds per stage.
QUICK_EPOCH_CLIPS = 64
QUICK_VAL_CLIPS = 64


def _mean_loss(losses: list[torch.Tensor], sizes: list[int]) -> float:
    """The epoch's mean training loss, clip-weighted, summed on the host in step order (one transfer)."""
    if not losses:
        return 0.0
    total = 0.0
    for value, size in zip(torch.stack(losses).cpu().tolist(), sizes):
        total += value * size
    return total / sum(sizes)


@dataclass
class _Selection:
    """Model selection and early stopping: the best validation epoch so far, its weights, epochs since."""

    best_state: dict | None = None
    best_score: tuple = (-np.inf, -np.inf)
    best_epoch: int = 0
    stale: int = 0

    def update(self, epoch: int, score: tuple, scored: nn.Module) -> None:
        if score > self.best_score:
            self.best_score, self.best_epoch, self.stale = score, epoch, 0
            self.best_state = copy.deepcopy(scored.state_dict())
        else:
            self.stale += 1

    def should_stop(self, config: RunConfig, epoch: int, min_epochs: int, validating: bool) -> bool:
        return bool(config.patience and validating and self.stale >= config.patience and epoch >= min_epochs)


@dataclass
class _Stage:
    """Everything one training stage carries from epoch to epoch, as checkpoints save and restore it."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    scaler: object
    rng: np.random.Generator  # epoch orders and city dropout
    generator: torch.Generator  # augmentation draws (on the CPU, whatever the device)
    hook: TrainingHook
    compute: Compute
    selection: _Selection = field(default_factory=_Selection)
    history: list = field(default_factory=list)

    def state(self, epoch: int, stopped: bool) -> dict:
        """What a checkpoint saves after ``epoch``."""
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "numpy_rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.compute.device.type == "cuda" else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "generator": self.generator.get_state(), "hook": self.hook.state_dict(),
            "best_state": self.selection.best_state, "best_score": self.selection.best_score,
            "best_epoch": self.selection.best_epoch, "stale": self.selection.stale, "history": self.history,
            "stopped": stopped,
        }

    def restore(self, saved: dict) -> None:
        """Back to where a checkpoint left off, random generators included, so a resumed run ends alike."""
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.rng.bit_generator.state = saved["numpy_rng"]
        torch.set_rng_state(saved["torch_rng"])
        if saved.get("cuda_rng") is not None and self.compute.device.type == "cuda":
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        if self.scaler is not None and saved.get("scaler"):
            self.scaler.load_state_dict(saved["scaler"])
        self.generator.set_state(saved["generator"])
        self.hook.load_state_dict(saved["hook"])
        self.selection = _Selection(saved["best_state"], saved["best_score"], saved["best_epoch"], saved["stale"])
        self.history = saved["history"]


def _train_epoch(stage: _Stage, train_model: nn.Module, data: DataBundle, train_rows: np.ndarray, targets: np.ndarray,
                 passes: int, config: RunConfig, epoch: int, desc: str) -> float:
    """One epoch of optimiser steps over ``train_rows`` (``passes`` orders of them); the mean training loss.

    Step losses stay on the device until the epoch ends: reading one (.item()) or testing it on the host would
    wait for the GPU at every step and leave it idle while the next batch is assembled."""
    model, compute, hook, rng = stage.model, stage.compute, stage.hook, stage.rng
    model.train()
    _freeze_frozen_batchnorm(model)
    num_classes, world = len(data.dataset.classes), distributed.world_size()
    order = np.arange(len(train_rows))
    perm = np.concatenate([rng.permutation(order) for _ in range(passes)])
    if config.quick:
        perm = perm[:QUICK_EPOCH_CLIPS]
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
        x = augment_batch(x, config, stage.generator, data.frame_rate)
        (y,) = compute.to(F.one_hot(torch.from_numpy(targets[pos]), num_classes).float())
        x, y = mixup(x, y, config.mixup_alpha, stage.generator)
        with compute.autocast():
            logits = train_model(compute.model_input(x), city, time)
        logits = logits.float()
        if logits.shape != y.shape:
            raise PluginError(f"model {config.model!r} broke the model contract at {desc}, epoch {epoch}: forward "
                              f"returned shape {tuple(logits.shape)} for a batch of {len(pos)}, expected "
                              f"{tuple(y.shape)} (batch, classes)")
        loss = torch.sum(-y * F.log_softmax(logits, dim=1), dim=1).mean()
        extra = hook.extra_loss(model, epoch)
        total = loss if extra is None else loss + extra
        finite &= torch.isfinite(total.detach())
        _step(stage, total)
        hook.after_step(model)
        step_losses.append(loss.detach())
        step_sizes.append(len(pos))
    if not bool(finite):
        raise PluginError(f"model {config.model!r}: the loss became NaN or infinite at {desc}, epoch {epoch}; "
                          "try a lower --lr, --precision fp32, or check the model's forward")
    return _mean_loss(step_losses, step_sizes)


def _step(stage: _Stage, total: torch.Tensor) -> None:
    """One optimiser and schedule step (through the gradient scaler under fp16)."""
    stage.optimizer.zero_grad(set_to_none=True)
    if stage.scaler is not None:
        stage.scaler.scale(total).backward()
        stage.scaler.step(stage.optimizer)
        stage.scaler.update()
    else:
        total.backward()
        stage.optimizer.step()
    stage.scheduler.step()


def _validate(stage: _Stage, data: DataBundle, val_rows: np.ndarray, epoch: int, loss: float) -> tuple[dict, nn.Module]:
    """The epoch's record (training loss, validation scores, learning rate) and the model it scored: the one the
    hook says to score (e.g. a mean teacher), which model selection keeps when the epoch is the best."""
    distributed.sync_buffers(stage.model)  # every rank validates (and stops) exactly as rank 0 does
    record = {"epoch": epoch, "loss": loss}
    scored = stage.hook.eval_model(stage.model)
    if len(val_rows):
        record.update(validation_record(predict(scored, data, val_rows), data.labels[val_rows]))
    record["lr"] = stage.optimizer.param_groups[0]["lr"]
    return record, scored


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

    Model selection and early stopping use ``val_rows``, which must come from labeled *training* data. A stage
    finished before an interruption is replayed from its checkpoint; one in progress resumes after its last epoch.
    """
    targets = data.labels[train_rows] if targets is None else np.asarray(targets)
    if len(targets) != len(train_rows) or (targets < 0).any():
        raise ValueError("fit() needs a known class for every training row")
    if config.quick and len(val_rows) > QUICK_VAL_CLIPS:  # evenly spread, so every class still tends to show
        val_rows = np.asarray(val_rows)[np.linspace(0, len(val_rows) - 1, QUICK_VAL_CLIPS).round().astype(np.int64)]
    # Started (seeding torch) even when the stage is replayed, so the random state after it is what it always was.
    stage, passes, min_epochs = _start_stage(model, train_rows, parameters, hook, config, lr, epochs, seed)
    checkpointer = checkpoint.active()
    name = checkpointer.stage_name(desc) if checkpointer else desc
    done = checkpointer.finished(name) if checkpointer else None
    if done is not None:  # a resumed run replays a finished stage from its checkpoint
        model.load_state_dict(done["model"])
        log.info("%s: finished before the interruption; taken from the checkpoint", name)
        callbacks.stage_end(name, done["result"]["history"])
        return FitResult(**done["result"])
    first_epoch, saved = 1, checkpointer.in_progress(name) if checkpointer else None
    if saved is not None:
        stage.restore(saved)
        first_epoch = saved["epoch"] + 1
        log.info("%s: resuming after epoch %d from the checkpoint", name, saved["epoch"])
    callbacks.stage_start(name, epochs, first_epoch)
    bar = tqdm(range(first_epoch, epochs + 1), desc=desc, unit="epoch", disable=not progress, leave=False,
               initial=first_epoch - 1, total=epochs)
    train_model = compiled(distributed.wrap(model), config.compile)  # the data-parallel wrapper, compiled if asked
    for epoch in bar if not (saved is not None and saved.get("stopped", False)) else ():
        loss = _train_epoch(stage, train_model, data, train_rows, targets, passes, config, epoch, desc)
        record, scored = _validate(stage, data, val_rows, epoch, loss)
        stage.history.append(record)
        callbacks.epoch_end(name, record)
        stage.selection.update(epoch, selection_score(record, config.select_on), scored)
        bar.set_postfix(loss=f"{record['loss']:.3f}", val=f"{record.get('val_accuracy', float('nan')):.3f}")
        log.debug("%s epoch %d: %s", desc, epoch, record)
        stop = stage.selection.should_stop(config, epoch, min_epochs, bool(len(val_rows)))
        if checkpointer:
            checkpointer.save_epoch(name, epoch, stage.state(epoch, stop))
        if stop:
            if epoch < epochs:  # patience running out at the last epoch stops nothing early
                log.info("%s: early stop at epoch %d of %d (no better validation score for %d epochs; best epoch %d)",
                         desc, epoch, epochs, stage.selection.stale, stage.selection.best_epoch)
            break
    bar.close()
    return _finish_stage(stage, name, checkpointer)


def _start_stage(model: nn.Module, train_rows: np.ndarray, parameters: Iterable[nn.Parameter] | None,
                 hook: TrainingHook | None, config: RunConfig, lr: float, epochs: int, seed: int
                 ) -> tuple[_Stage, int, int]:
    """A fresh stage (model on the run's device, optimiser, schedule, seeded generators), the passes over the
    training clips per epoch, and the first epoch early stopping may end."""
    compute = Compute.from_names(config.device, config.precision, model_needs(model), memory_format=config.memory_format)
    compute.prepare(model)  # device and memory format before the optimizer exists: its state lives beside the parameters
    params = [p for p in (parameters if parameters is not None else model.parameters()) if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: every parameter is frozen")
    optimizer = make_optimizer(params, config, lr)
    # With few labeled clips an epoch is only a handful of steps; repeating the clips (in fresh
    # orders) up to min_epoch_clips gives the schedule and early stopping enough steps to work with.
    passes = max(1, int(np.ceil(config.min_epoch_clips / len(train_rows))))
    clips_per_epoch = min(passes * len(train_rows), QUICK_EPOCH_CLIPS) if config.quick else passes * len(train_rows)
    steps_per_epoch = max(1, int(np.ceil(clips_per_epoch / config.batch_size)))
    scheduler = make_scheduler(optimizer, config, lr, epochs, steps_per_epoch)
    rng = np.random.default_rng([seed, 11])
    # Dropout and augmentation draw from torch's generators; reseeding here makes a stage independent
    # of whatever ran before it in the process (e.g. a pretraining stage that was not cached yet).
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    # By default early stopping waits for the warm-up and first third of the one-cycle schedule.
    min_epochs = config.min_epochs if config.min_epochs is not None else max(1, epochs // 3)
    stage = _Stage(model, optimizer, scheduler, compute.grad_scaler(), rng, generator, hook or TrainingHook(), compute)
    return stage, passes, min_epochs


def _finish_stage(stage: _Stage, name: str, checkpointer) -> FitResult:
    """The best epoch's weights back in the model, the stage's result reported and checkpointed."""
    model, selection, history = stage.model, stage.selection, stage.history
    if selection.best_state is not None:
        model.load_state_dict(selection.best_state)
    best_val = history[selection.best_epoch - 1].get("val_accuracy") if history else None
    result = FitResult(selection.best_epoch, best_val, history)
    callbacks.stage_end(name, history)
    if checkpointer:
        checkpointer.finish_stage(name, model.state_dict(), asdict(result))
    return result
