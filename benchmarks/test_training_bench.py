"""Training epochs, inference batches and warm-cache data loading: the harness against a plain PyTorch
loop over tensors already in memory on the device (same model, batch size, precision, memory format and
thread count), interleaved round by round (see conftest.py). Model benchmarks report their achieved GFLOP/s
against the machine's sgemm rate. The 10 s-clip benchmarks (64 x 500 log-mels, batch 32, mobileascnet) run in
fp32 and bf16 whatever ``ASCBENCH_BENCH_PRECISION`` says, with absolute throughput targets."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ascbench.complexity import profile
from ascbench.config import RunConfig
from ascbench.data.dataset import DatasetOptions
from ascbench.device import Compute, ModelNeeds
from ascbench.features import get_preset, load_features
from ascbench.protocols import ProtocolOptions
from ascbench.registry import get_registry
from ascbench.fitting import fit
from ascbench.training import DataBundle, compiled, create_model, predict
from conftest import compile_mode, device, precision

MODELS = ["mobileascnet", "se-trans", "cp-mobile"]
BATCH = 32
# Absolute targets of the 10 s-clip benchmarks in their best setting (issue 31: bf16 + channels_last on an
# AVX512-BF16 CPU, 2 threads), clips/s.
LONG_CLIP_TARGETS = {"training": 80.0, "inference": 250.0}


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


def _compute(registry, name: str, precision_name: str | None = None, memory_format: str = "auto") -> Compute:
    """The device, resolved precision and memory format a run of ``name`` computes in (both sides use it)."""
    return Compute.from_names(str(device()), precision_name or precision(), ModelNeeds.of(registry.model(name)),
                              memory_format=memory_format)


def _on_device(data: DataBundle, rows: np.ndarray, compute: Compute):
    x, city, time = data.batch(rows)
    y = torch.from_numpy(data.labels[rows])
    x, city, time, y = (t.to(device()) for t in (x, city, time, y))
    return compute.model_input(x), city, time, y


def _model(registry, data, name, compute: Compute):
    """``name`` built for ``data``, prepared as a run's training stage prepares it (device, memory format, and
    the precision predict follows)."""
    return compute.prepare(create_model(registry.model(name), data.model_context(), RunConfig(model=name)))


def _macs(model, data) -> int:
    """MACs of one clip of ``data`` through ``model`` (counted on a CPU copy, as runs record them)."""
    import copy

    ctx = data.model_context()
    return profile(copy.deepcopy(model).cpu(), ctx.n_mels, ctx.n_frames, ctx.time_dim).macs


def _autocast(compute: Compute):
    return compute.autocast() if compute.precision != "fp32" else contextlib.nullcontext()


@pytest.mark.parametrize("name", MODELS)
def test_training_epoch(interleaved, bundle, name):
    registry, data, rows = bundle
    # se-trans is ~7x slower per epoch on the CPU: fewer rounds keep the suite to minutes.
    rounds = 6 if name == "se-trans" and device().type == "cpu" else 10
    _training_pair(interleaved, registry, data, rows, name, _compute(registry, name), f"training epoch ({name})", rounds)


def _training_pair(interleaved, registry, data: DataBundle, rows: np.ndarray, name: str, compute: Compute, label: str,
                   rounds: int, min_throughput: float | None = None) -> None:
    """One epoch of ``fit`` against a bare loop over the same batches, in ``compute``'s precision and format."""
    config = RunConfig(model=name, batch_size=BATCH, min_epoch_clips=0, city_dropout=0.0, device=str(device()),
                       precision=compute.precision, compile=compile_mode(),
                       memory_format="channels_last" if compute.channels_last else "contiguous")
    harness_model = _model(registry, data, name, compute)
    bare_model = _model(registry, data, name, compute)
    forward = compiled(bare_model, compile_mode())
    x, city, time, y = _on_device(data, rows, compute)
    optimizer = torch.optim.AdamW(bare_model.parameters(), lr=1e-3, weight_decay=1e-4)
    order = np.random.default_rng(0).permutation(len(rows))

    def harness():
        fit(harness_model, data, rows, np.array([], dtype=np.int64), epochs=1, lr=1e-3, config=config, seed=0,
            progress=False)

    def bare():
        bare_model.train()
        for start in range(0, len(order), BATCH):
            idx = torch.from_numpy(order[start:start + BATCH]).to(device())
            with _autocast(compute):
                logits = forward(x[idx], city[idx], time[idx])
            loss = F.cross_entropy(logits.float(), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    # A training step is about 3 forward passes' worth of MACs (forward, and backward for inputs and weights).
    interleaved(label, harness, bare, items=len(rows), rounds=rounds, warmup=1,
                macs_per_item=3 * _macs(bare_model, data), min_throughput=min_throughput)


@pytest.mark.parametrize("name", MODELS)
def test_inference_batch(interleaved, bundle, name):
    """64 clips to class probabilities on the host, with the inference path runs use (no compile)."""
    registry, data, rows = bundle
    _inference_pair(interleaved, registry, data, rows[:64], name, _compute(registry, name), f"inference batch ({name})",
                    rounds=30, warmup=3)


def _inference_pair(interleaved, registry, data: DataBundle, batch: np.ndarray, name: str, compute: Compute,
                    label: str, rounds: int, warmup: int, batch_size: int | None = None,
                    min_throughput: float | None = None) -> None:
    """``predict`` on ``batch`` against a bare forward and softmax of the same tensors, in ``compute``'s precision
    and memory format (predict follows the precision its model was prepared with)."""
    model = _model(registry, data, name, compute).eval()
    x, city, time, _ = _on_device(data, batch, compute)
    size = batch_size or len(batch)

    def harness():
        assert predict(model, data, batch, size).shape[0] == len(batch)

    def bare():
        with torch.inference_mode():
            with _autocast(compute):
                logits = [model(x[s:s + size], city[s:s + size], time[s:s + size]) for s in range(0, len(batch), size)]
            return F.softmax(torch.cat(logits).cpu().double(), dim=1)

    interleaved(label, harness, bare, items=len(batch), rounds=rounds, warmup=warmup,
                macs_per_item=_macs(model, data), min_throughput=min_throughput)


@pytest.fixture(scope="module")
def long_clips():
    """128 synthetic 10 s clips as the apsipa2025 front-end gives them (64 mel bins x 500 frames), held in memory
    as a run holds a small dataset; the model sees the same shapes as on the full-size data."""
    from types import SimpleNamespace

    import pandas as pd

    n = 128
    rng = np.random.default_rng(0)
    features = rng.standard_normal((n, 64, 500)).astype(np.float32)
    classes = [f"scene{i}" for i in range(10)]
    dataset = SimpleNamespace(classes=classes, meta=pd.DataFrame({"city": ["a"] * n}))
    data = DataBundle(dataset, features, rng.integers(0, 10, n), np.ones(n, np.int64),
                      rng.standard_normal((n, 8)).astype(np.float32), ["a"], np.zeros(64, np.float32),
                      np.ones(64, np.float32), frame_rate=50.0)
    return get_registry(), data, np.arange(n)


# fp32 as auto computes it (contiguous), fp32 in channels_last (--memory-format channels_last: the lever left on a
# CPU without bf16), and bf16 (channels_last under auto).
LONG_CLIP_SETTINGS = ["fp32", "fp32+channels_last", "bf16"]


def _long_clip_compute(registry, setting: str) -> Compute:
    precision_name, _, memory_format = setting.partition("+")
    return _compute(registry, "mobileascnet", precision_name, memory_format or "auto")


@pytest.mark.parametrize("setting", LONG_CLIP_SETTINGS)
def test_training_epoch_10s_clips(interleaved, long_clips, setting):
    """mobileascnet on 10 s clips, batch 32, one epoch of 128 clips: issue 31's >= 80 clips/s in the best setting."""
    registry, data, rows = long_clips
    compute = _long_clip_compute(registry, setting)
    _training_pair(interleaved, registry, data, rows, "mobileascnet", compute,
                   f"training epoch, 10 s clips (mobileascnet, {_setting(compute)})", rounds=5,
                   min_throughput=LONG_CLIP_TARGETS["training"] if setting == "bf16" else None)


@pytest.mark.parametrize("setting", LONG_CLIP_SETTINGS)
def test_inference_batch_10s_clips(interleaved, long_clips, setting):
    """mobileascnet on 64 ten-second clips, batch 32: issue 31's >= 250 clips/s in the best setting."""
    registry, data, rows = long_clips
    compute = _long_clip_compute(registry, setting)
    _inference_pair(interleaved, registry, data, rows[:64], "mobileascnet", compute,
                    f"inference batch, 10 s clips (mobileascnet, {_setting(compute)})", rounds=10, warmup=2,
                    batch_size=BATCH, min_throughput=LONG_CLIP_TARGETS["inference"] if setting == "bf16" else None)


def _setting(compute: Compute) -> str:
    return f"{compute.precision}, {'channels_last' if compute.channels_last else 'contiguous'}"


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
