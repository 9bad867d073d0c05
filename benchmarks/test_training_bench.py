"""Training epochs, inference batches and warm-cache data loading: the harness against a plain PyTorch
loop over tensors already in memory (same model, batch size and thread count)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ascbench.config import RunConfig
from ascbench.data.dataset import DatasetOptions
from ascbench.features import get_preset, load_features
from ascbench.protocols import ProtocolOptions
from ascbench.registry import get_registry
from ascbench.training import DataBundle, create_model, fit, predict

MODELS = ["mobileascnet", "se-trans", "cp-mobile"]
BATCH = 32
TRAIN_CLIPS = 256  # 8 steps per epoch


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
    rows = np.sort(split.train[data.labels[split.train] >= 0][:TRAIN_CLIPS])
    return registry, data, rows


def _in_memory(data: DataBundle, rows: np.ndarray):
    x, city, time = data.batch(rows)
    return x.clone(), city.clone(), time.clone(), torch.from_numpy(data.labels[rows])


def _model(registry, data, name):
    return create_model(registry.model(name), data.model_context(), RunConfig(model=name))


@pytest.mark.parametrize("name", MODELS)
def test_training_epoch_harness(benchmark, pair, bundle, name):
    registry, data, rows = bundle
    model = _model(registry, data, name)
    config = RunConfig(model=name, batch_size=BATCH, min_epoch_clips=0, city_dropout=0.0)
    benchmark.group = f"train epoch {name}"
    benchmark.pedantic(fit, args=(model, data, rows, np.array([], dtype=np.int64)),
                       kwargs=dict(epochs=1, lr=1e-3, config=config, seed=0, progress=False), rounds=5, warmup_rounds=1)
    pair(f"training epoch ({name})", "harness", len(rows), "clips")


@pytest.mark.parametrize("name", MODELS)
def test_training_epoch_bare(benchmark, pair, bundle, name):
    registry, data, rows = bundle
    model = _model(registry, data, name)
    x, city, time, y = _in_memory(data, rows)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    order = np.random.default_rng(0).permutation(len(rows))

    def epoch():
        model.train()
        for start in range(0, len(order), BATCH):
            idx = torch.from_numpy(order[start:start + BATCH])
            loss = F.cross_entropy(model(x[idx], city[idx], time[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    benchmark.group = f"train epoch {name}"
    benchmark.pedantic(epoch, rounds=5, warmup_rounds=1)
    pair(f"training epoch ({name})", "bare", len(rows), "clips")


@pytest.mark.parametrize("name", MODELS)
def test_inference_batch_harness(benchmark, pair, bundle, name):
    registry, data, rows = bundle
    model = _model(registry, data, name)
    batch = rows[:64]
    benchmark.group = f"inference {name}"
    probs = benchmark(predict, model, data, batch, 64)
    assert probs.shape[0] == 64
    pair(f"inference batch ({name})", "harness", 64, "clips")


@pytest.mark.parametrize("name", MODELS)
def test_inference_batch_bare(benchmark, pair, bundle, name):
    registry, data, rows = bundle
    model = _model(registry, data, name).eval()
    x, city, time, _ = _in_memory(data, rows[:64])

    def infer():
        with torch.inference_mode():
            return F.softmax(model(x, city, time), dim=1)

    benchmark.group = f"inference {name}"
    benchmark(infer)
    pair(f"inference batch ({name})", "bare", 64, "clips")


def _epoch_order(data: DataBundle, rows: np.ndarray) -> list[np.ndarray]:
    perm = np.random.default_rng(0).permutation(rows)
    return [np.sort(perm[s:s + BATCH]) for s in range(0, len(perm), BATCH)]


def test_data_loading_epoch_harness(benchmark, pair, bundle):
    _, data, _ = bundle
    rows = np.flatnonzero(data.labels >= 0)
    batches = _epoch_order(data, rows)
    benchmark.group = "data loading epoch"
    benchmark(lambda: [data.batch(b) for b in batches])
    pair("data loading epoch (warm cache)", "harness", len(rows), "clips")


def test_data_loading_epoch_bare(benchmark, pair, bundle):
    _, data, _ = bundle
    rows = np.flatnonzero(data.labels >= 0)
    x, city, time, _ = _in_memory(data, np.sort(rows))
    position = {r: i for i, r in enumerate(np.sort(rows))}
    batches = [torch.tensor([position[r] for r in b]) for b in _epoch_order(data, rows)]
    benchmark.group = "data loading epoch"
    benchmark(lambda: [(x[b], city[b], time[b]) for b in batches])
    pair("data loading epoch (warm cache)", "bare", len(rows), "clips")
