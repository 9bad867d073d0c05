"""Training epochs, inference batches and warm-cache data loading: the harness against a plain PyTorch
loop over tensors already in memory on the device (same model, batch size, precision and thread count),
interleaved round by round (see conftest.py)."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ascbench.config import RunConfig
from ascbench.data.dataset import DatasetOptions
from ascbench.device import PRECISIONS, Compute
from ascbench.features import get_preset, load_features
from ascbench.protocols import ProtocolOptions
from ascbench.registry import get_registry
from ascbench.fitting import fit
from ascbench.training import DataBundle, compiled, create_model, predict
from conftest import compile_mode, device, precision

MODELS = ["mobileascnet", "se-trans", "cp-mobile"]
BATCH = 32


@pytest.fixture(scope="module")
def bundle():
    """The embedded dataset's features from a warm cache, as a training run sees them."""
    registry = get_registry()
    dataset = registry.dataset("embedded").load(DatasetOptions())
    split = registry.protocol("official").split(dataset, ProtocolOptions(seed=0))
    features, _ = load_features(dataset, get_preset("embedded"), progress=False)
    features, cached = load_features(dataset, get_preset("embedded"), progress=False)
    assert cached
    data = DataBundle.build(dataset, features, split.train)
    # 256 clips (8 steps) on the CPU; on a GPU every labeled training clip, so an epoch is not all start-up.
    clips = 256 if device().type == "cpu" else None
    rows = np.sort(split.train[data.labels[split.train] >= 0][:clips])
    return registry, data, rows


def _on_device(data: DataBundle, rows: np.ndarray):
    x, city, time = data.batch(rows)
    y = torch.from_numpy(data.labels[rows])
    return tuple(t.to(device()) for t in (x, city, time, y))


def _model(registry, data, name):
    return create_model(registry.model(name), data.model_context(), RunConfig(model=name)).to(device())


def _autocast():
    dtype = PRECISIONS[precision()]
    return torch.autocast(device().type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


@pytest.mark.parametrize("name", MODELS)
def test_training_epoch(interleaved, bundle, name):
    registry, data, rows = bundle
    config = RunConfig(model=name, batch_size=BATCH, min_epoch_clips=0, city_dropout=0.0, device=str(device()),
                       precision=precision(), compile=compile_mode())
    harness_model = _model(registry, data, name)
    bare_model = _model(registry, data, name)
    forward = compiled(bare_model, compile_mode())
    x, city, time, y = _on_device(data, rows)
    optimizer = torch.optim.AdamW(bare_model.parameters(), lr=1e-3, weight_decay=1e-4)
    order = np.random.default_rng(0).permutation(len(rows))

    def harness():
        fit(harness_model, data, rows, np.array([], dtype=np.int64), epochs=1, lr=1e-3, config=config, seed=0,
            progress=False)

    def bare():
        bare_model.train()
        for start in range(0, len(order), BATCH):
            idx = torch.from_numpy(order[start:start + BATCH]).to(device())
            with _autocast():
                logits = forward(x[idx], city[idx], time[idx])
            loss = F.cross_entropy(logits.float(), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    # se-trans is ~7x slower per epoch on the CPU: fewer rounds keep the suite to minutes.
    rounds = 6 if name == "se-trans" and device().type == "cpu" else 10
    interleaved(f"training epoch ({name})", harness, bare, items=len(rows), rounds=rounds, warmup=1)


@pytest.mark.parametrize("name", MODELS)
def test_inference_batch(interleaved, bundle, name):
    """64 clips to class probabilities on the host, with the inference path runs use (no compile)."""
    registry, data, rows = bundle
    model = _model(registry, data, name).eval()
    batch = rows[:64]
    x, city, time, _ = _on_device(data, batch)

    def harness():
        assert predict(model, data, batch, 64).shape[0] == 64

    def bare():
        with torch.inference_mode():
            return F.softmax(model(x, city, time), dim=1).cpu()

    interleaved(f"inference batch ({name})", harness, bare, items=64, rounds=30, warmup=3)


def _epoch_order(rows: np.ndarray) -> list[np.ndarray]:
    perm = np.random.default_rng(0).permutation(rows)
    return [np.sort(perm[s:s + BATCH]) for s in range(0, len(perm), BATCH)]


def test_data_loading_epoch(interleaved, bundle):
    """Every labeled clip in batches as the training loop gets them on the CPU (gathered from the normalised
    copy the bundle keeps in memory when the data is small, as here; else read from the memory-mapped cache
    and normalised per batch), against indexing normalised tensors already in memory."""
    _, data, _ = bundle
    rows = np.sort(np.flatnonzero(data.labels >= 0))
    batches = _epoch_order(rows)
    x, city, time = data.batch(rows)
    position = {r: i for i, r in enumerate(rows)}
    indices = [torch.tensor([position[r] for r in b]) for b in batches]

    compute = Compute(torch.device("cpu"))

    def harness():  # as the training loop asks for batches
        return [data.batch_on(b, compute) for b in batches]

    def bare():
        return [(x[i], city[i], time[i]) for i in indices]

    interleaved("data loading epoch (warm cache)", harness, bare, items=len(rows), rounds=30, warmup=3)
