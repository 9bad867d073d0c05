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
    assert row["device"] == "cpu" and row["precision"] == "fp32"
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
