"""--device and --precision on a machine without a GPU: auto runs on the CPU, an absent device is one line."""

import json

import pytest
import torch

from ascbench.cli import main
from ascbench.config import RunConfig
from ascbench.device import Compute, resolve_device
from ascbench.errors import ConfigError
from ascbench.results import load_rows

TINY = ["run", "--dataset", "embedded-tiny", "--model", "context-only", "--strategy", "scratch", "--epochs", "1",
        "--no-progress"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")
def test_auto_runs_on_the_cpu_and_says_so(runs):
    assert main(TINY + ["--device", "auto"]) == 0
    (row,) = load_rows(runs)
    metrics = json.loads((runs / row["run_id"] / "metrics.json").read_text())
    # --precision auto (the default) resolves to what this CPU computes natively, read here from the kernel's flags
    from pathlib import Path

    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    expected = "bf16" if flags & {"avx512_bf16", "amx_bf16"} else "fp32"
    assert row["device"] == "cpu" and row["precision"] == expected
    assert metrics["compute"]["precision_requested"] == "auto" and metrics["compute"]["precision_reason"]
    assert metrics["compute"]["device"] == "cpu" and metrics["compute"]["device_name"]
    assert metrics["complexity"]["latency_device"] == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")
def test_cuda_without_a_gpu_is_one_clear_line(runs, capsys):
    assert main(TINY + ["--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "CUDA is not available on this machine" in err and "--device cpu" in err
    assert not (runs / "results.jsonl").exists()


@pytest.mark.parametrize("name,words", [("tpu", "is not a device"), ("cuda:7", "CUDA"), ("meta", "not supported")])
def test_unknown_or_absent_devices(name, words):
    if name == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    with pytest.raises(ConfigError, match=words):
        resolve_device(name)


def test_fp16_needs_cuda_and_precision_is_validated():
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
            Compute.from_names("cpu", "fp16")
    with pytest.raises(ConfigError, match="--precision"):
        RunConfig(precision="fp8")


def test_bf16_autocast_trains_on_the_cpu_and_is_recorded(runs):
    assert main(TINY + ["--device", "cpu", "--precision", "bf16", "--model", "mobileascnet-tiny"]) == 0
    (row,) = load_rows(runs)
    assert row["precision"] == "bf16" and 0.0 <= row["accuracy"] <= 1.0


def test_device_is_an_execution_detail_and_precision_is_not():
    base = RunConfig()
    assert base.replace(device="cuda").experiment_digest() == base.experiment_digest()
    assert base.replace(precision="bf16").experiment_digest() != base.experiment_digest()


def _tiny_bundle(tiny):
    import numpy as np

    from ascbench.features import get_preset, load_features
    from ascbench.training import DataBundle

    features, _ = load_features(tiny, get_preset(tiny.feature_preset), progress=False)
    rows = np.flatnonzero(tiny.label_indices() >= 0)[:64]
    return DataBundle.build(tiny, features, rows), rows


def test_compile_wraps_the_training_forward_and_is_an_execution_detail(tiny, registry, monkeypatch):
    import numpy as np

    from ascbench.fitting import fit
    from ascbench.training import create_model

    seen = []
    monkeypatch.setattr(torch, "compile", lambda module, mode=None: seen.append(mode) or module)
    data, rows = _tiny_bundle(tiny)
    config = RunConfig(model="context-only", compile="reduce-overhead", dataset="embedded-tiny")
    model = create_model(registry.model("context-only"), data.model_context(), config)
    fit(model, data, rows, np.array([], dtype=np.int64), epochs=1, lr=1e-3, config=config, seed=0, progress=False)
    assert seen == ["reduce-overhead"]
    assert config.experiment_digest() == config.replace(compile="off").experiment_digest()
    with pytest.raises(ConfigError, match="--compile must be one of off, default"):
        RunConfig(compile="fast")


def test_a_loss_that_turns_nan_stops_the_run_with_advice(tiny, registry):
    import numpy as np

    from ascbench.errors import PluginError
    from ascbench.fitting import fit
    from ascbench.training import create_model

    data, rows = _tiny_bundle(tiny)
    config = RunConfig(model="context-only", dataset="embedded-tiny")
    model = create_model(registry.model("context-only"), data.model_context(), config)
    class NaNOut(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x, city, time):
            return self.inner(x, city, time) * float("nan")

    with pytest.raises(PluginError, match=r"NaN or infinite at train, epoch 1; try a lower --lr"):
        fit(NaNOut(model), data, rows, np.array([], dtype=np.int64), epochs=2, lr=1e-3, config=config, seed=0,
            progress=False)


def test_batches_from_the_resident_copy_equal_the_memory_mapped_path(tiny, monkeypatch):
    import numpy as np

    import ascbench.training as training
    from ascbench.device import CPU

    data, rows = _tiny_bundle(tiny)
    picked = np.array([5, 0, 17, 3])
    resident = data.batch_on(picked, CPU)
    assert data.resident_on(CPU) is not None  # small data: kept whole, normalised, in memory
    for got, want in zip(resident, data.batch(picked)):
        assert torch.equal(got, want)
    resident[0].fill_(7.0)  # a model writing into its batch does not reach the store
    assert torch.equal(data.batch_on(picked, CPU)[0], data.batch(picked)[0])
    monkeypatch.setattr(training, "HOST_RESIDENT_BYTES", 0)  # full-size data stays memory-mapped
    big, _ = _tiny_bundle(tiny)
    assert big.resident_on(CPU) is None
    assert torch.equal(big.batch_on(picked, CPU)[0], data.batch(picked)[0])


# --memory-format: auto keeps fp32 contiguous (published fp32 rows re-run to the digit); asked for by name,
# channels_last applies in fp32 too, only to models whose spec allows it, and is recorded.
@pytest.mark.parametrize("precision, memory_format, allowed, expected", [
    ("fp32", "auto", True, False), ("bf16", "auto", True, True), ("bf16", "auto", False, False),
    ("fp32", "channels_last", True, True), ("bf16", "contiguous", True, False), ("fp32", "contiguous", True, False),
])
def test_memory_format_resolves_per_precision_and_model(precision, memory_format, allowed, expected):
    from ascbench.device import ModelNeeds

    needs = ModelNeeds(channels_last=allowed, model="m")
    compute = Compute.from_names("cpu", precision, needs, memory_format=memory_format)
    assert compute.channels_last is expected
    assert compute.describe()["memory_format"] == ("channels_last" if expected else "contiguous")


def test_channels_last_for_a_model_that_does_not_allow_it_is_refused_by_name():
    from ascbench.device import ModelNeeds

    with pytest.raises(ConfigError, match=r"--memory-format channels_last: model 'flat' does not allow it"):
        Compute.from_names("cpu", "fp32", ModelNeeds(channels_last=False, model="flat"), memory_format="channels_last")
    # predicting with a stored run elsewhere falls back instead
    assert not Compute.from_names("cpu", "fp32", ModelNeeds(model="flat"), strict=False,
                                  memory_format="channels_last").channels_last
    with pytest.raises(ConfigError, match="--memory-format must be one of auto, channels_last, contiguous"):
        RunConfig(memory_format="nhwc")


def test_memory_format_is_an_execution_detail_and_auto_keeps_old_digests():
    base = RunConfig()
    old = {k: v for k, v in base.to_record().items() if k != "memory_format"}  # a config stored before the field
    assert RunConfig.from_stored(old).digest() == base.digest()
    explicit = base.replace(memory_format="channels_last")
    assert explicit.experiment_digest() == base.experiment_digest() and explicit.digest() != base.digest()


def test_fp32_channels_last_trains_in_it_is_recorded_and_reruns(runs, capsys):
    args = TINY + ["--model", "mobileascnet-tiny", "--precision", "fp32", "--memory-format", "channels_last"]
    assert main(args) == 0
    (row,) = load_rows(runs)
    metrics = json.loads((runs / row["run_id"] / "metrics.json").read_text())
    assert metrics["compute"]["memory_format"] == "channels_last" and metrics["compute"]["precision"] == "fp32"
    assert json.loads((runs / row["run_id"] / "config.json").read_text())["memory_format"] == "channels_last"
    capsys.readouterr()
    assert main(["rerun", row["run_id"], "--no-progress"]) == 0
    assert "reproduced" in capsys.readouterr().out


def test_a_pretraining_stage_is_not_shared_across_memory_formats(registry):
    from ascbench.pipeline import resolve
    from ascbench.pretraining import pretrained_state

    config = RunConfig(model="mobileascnet-tiny", dataset="embedded-tiny", pretrain_epochs=1, seed=11, precision="fp32")
    first, other, same = {}, {}, {}
    pretrained_state(resolve(config, registry), progress=False, notes=first)
    pretrained_state(resolve(config.replace(memory_format="channels_last"), registry), progress=False, notes=other)
    pretrained_state(resolve(config.replace(memory_format="contiguous"), registry), progress=False, notes=same)
    assert other["pretraining"]["cached"] is False and other["pretraining"]["stage"] != first["pretraining"]["stage"]
    # contiguous is what auto does in fp32: the same stage, reused
    assert same["pretraining"]["cached"] is True and same["pretraining"]["stage"] == first["pretraining"]["stage"]
