"""The training loop and the job a strategy plugin receives.

Features live in memory (or memory-mapped) as one array; a batch is a slice of it, so the loop stays
close to a bare PyTorch loop. Early stopping uses a validation part of the *labeled training* clips only.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from ascbench.config import RunConfig
from ascbench.data.dataset import ClipDataset
from ascbench.errors import ConfigError
from ascbench.layers import ContextFusion
from ascbench.protocols import Partition
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
    return model


@dataclass
class DataBundle:
    """One dataset's features and per-clip model inputs, with the normalisation of its training side."""

    dataset: ClipDataset
    features: np.ndarray  # clips x mel bins x frames
    labels: np.ndarray  # class index, -1 unknown
    city: np.ndarray  # city index in ``cities`` + 1; 0 for a city unseen in training
    time: np.ndarray  # clips x time features
    cities: list[str]  # the training-side city vocabulary
    mean: np.ndarray  # per mel bin
    std: np.ndarray

    @classmethod
    def build(cls, dataset: ClipDataset, features: np.ndarray, train_rows: np.ndarray) -> "DataBundle":
        cities = sorted(dataset.meta["city"].iloc[train_rows].unique())
        lookup = {c: i + 1 for i, c in enumerate(cities)}
        city = np.array([lookup.get(c, 0) for c in dataset.meta["city"]], dtype=np.int64)
        # Statistics from the training side only (no labels involved), so test clips shape nothing.
        sample = features[np.sort(train_rows)]
        mean = sample.mean(axis=(0, 2)).astype(np.float32)
        std = (sample.std(axis=(0, 2)) + 1e-5).astype(np.float32)
        return cls(dataset, features, dataset.label_indices(), city, dataset.time_features(), cities, mean, std)

    def model_context(self) -> ModelContext:
        return ModelContext(
            num_classes=len(self.dataset.classes),
            num_cities=len(self.cities) + 1,
            time_dim=self.time.shape[1],
            n_mels=self.features.shape[1],
            n_frames=self.features.shape[2],
        )

    def batch(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows = np.sort(rows)  # sorted reads are sequential on a memory-mapped array
        x = (np.asarray(self.features[rows]) - self.mean[:, None]) / self.std[:, None]
        return torch.from_numpy(x).unsqueeze(1), torch.from_numpy(self.city[rows]), torch.from_numpy(self.time[rows])


@dataclass
class FitResult:
    best_epoch: int
    best_val_accuracy: float | None
    history: list[dict] = field(default_factory=list)


def predict(model: nn.Module, data: DataBundle, rows: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """Class probabilities for ``rows`` (in the order given)."""
    model.eval()
    order = np.argsort(rows, kind="stable")
    out = np.empty((len(rows), len(data.dataset.classes)), dtype=np.float64)
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            pos = order[start:start + batch_size]
            x, city, time = data.batch(rows[pos])
            out[pos] = F.softmax(model(x, city, time).double(), dim=1).numpy()
    return out


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
    desc: str = "train",
    parameters: Iterable[nn.Parameter] | None = None,
    progress: bool = True,
) -> FitResult:
    """Train ``model`` on labeled ``train_rows``; keep the weights of the best validation epoch."""
    labels = data.labels[train_rows]
    if (labels < 0).any():
        raise ValueError("fit() was given training rows without a label")
    params = [p for p in (parameters if parameters is not None else model.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay)
    steps_per_epoch = max(1, int(np.ceil(len(train_rows) / config.batch_size)))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.15)
    rng = np.random.default_rng([seed, 11])
    # Dropout draws from torch's global generator; reseeding here makes a stage independent of
    # whatever ran before it in the process (e.g. a pretraining stage that was not cached yet).
    torch.manual_seed(seed)
    best_state, best_score, best_epoch, stale = None, -np.inf, 0, 0
    history: list[dict] = []
    bar = tqdm(range(1, epochs + 1), desc=desc, unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        perm = rng.permutation(train_rows)
        total_loss = 0.0
        for start in range(0, len(perm), config.batch_size):
            rows = np.sort(perm[start:start + config.batch_size])
            if len(rows) < 2:  # batch norm cannot train on a single clip
                continue
            x, city, time = data.batch(rows)
            if config.city_dropout > 0:
                drop = torch.from_numpy(rng.random(len(rows)) < config.city_dropout)
                city = city.masked_fill(drop, 0)
            loss = F.cross_entropy(model(x, city, time), torch.from_numpy(data.labels[rows]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * len(rows)
        record = {"epoch": epoch, "loss": total_loss / len(perm)}
        if len(val_rows):
            probs = predict(model, data, val_rows)
            truth = data.labels[val_rows]
            record["val_accuracy"] = float(np.mean(probs.argmax(1) == truth))
            record["val_loss"] = float(-np.mean(np.log(np.clip(probs[np.arange(len(truth)), truth], 1e-15, 1.0))))
        history.append(record)
        # Select on validation log loss: with a few dozen validation clips, accuracy moves in large
        # steps and picks lucky epochs; the loss is smoother.
        score = -record.get("val_loss", record["loss"])
        if score > best_score:
            best_score, best_epoch, stale = score, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        bar.set_postfix(loss=f"{record['loss']:.3f}", val=f"{record.get('val_accuracy', float('nan')):.3f}")
        log.debug("%s epoch %d: %s", desc, epoch, record)
        if config.patience and len(val_rows) and stale >= config.patience:
            log.info("%s: early stop at epoch %d (best epoch %d)", desc, epoch, best_epoch)
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    best_val = history[best_epoch - 1].get("val_accuracy") if history else None
    return FitResult(best_epoch, best_val, history)


@dataclass
class TrainingJob:
    """What a strategy plugin works with: the run's config, its data and the ways to build and fit a model."""

    config: RunConfig
    model_spec: ModelSpec
    data: DataBundle
    partition: Partition
    pretrained_state: Callable[[], dict[str, torch.Tensor]]  # pretraining stage, cached across runs
    progress: bool = True
    notes: dict = field(default_factory=dict)  # strategies record what they did here; saved with the run

    def build_model(self) -> nn.Module:
        """A fresh model for this run's data, initialised from the run's seed."""
        return create_model(self.model_spec, self.data.model_context(), self.config)

    def fit(self, model: nn.Module, *, lr: float | None = None, epochs: int | None = None, desc: str = "train",
            parameters: Iterable[nn.Parameter] | None = None) -> FitResult:
        result = fit(
            model, self.data, self.partition.labeled, self.partition.val,
            epochs=epochs or self.config.epochs, lr=lr or self.config.lr, config=self.config,
            seed=self.config.seed, desc=desc, parameters=parameters, progress=self.progress,
        )
        self.notes.setdefault("stages", []).append(
            {"stage": desc, "best_epoch": result.best_epoch, "best_val_accuracy": result.best_val_accuracy,
             "epochs_run": len(result.history)}
        )
        return result


def load_compatible(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Load every tensor whose name and shape match; return the names left at their initial values.

    The city embedding of a pretrained model indexes the source's cities, not the target's, so it is
    the usual mismatch.
    """
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(usable, strict=False)
    return sorted(set(own) - set(usable))
