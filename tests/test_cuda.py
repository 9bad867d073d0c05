"""The CUDA path: runs only where CUDA is present (skipped elsewhere, as on CI's CPU machines)."""

import json

import pytest
import torch

from ascbench.cli import main
from ascbench.config import RunConfig
from ascbench.results import load_rows
from ascbench.runner import execute

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

TINY = dict(dataset="embedded-tiny", model="mobileascnet-tiny", strategy="scratch", epochs=2)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_training_on_cuda_in_every_precision(runs, precision):
    record = execute(RunConfig(device="cuda", precision=precision, **TINY), progress=False)
    assert record.row["device"].startswith("cuda") and record.row["precision"] == precision
    assert record.metrics["complexity"]["latency_device"].startswith("cuda")
    assert torch.cuda.get_device_name(0) == record.metrics["compute"]["device_name"]
    assert 0.0 <= record.metrics["accuracy"] <= 1.0


def test_cuda_and_cpu_agree_closely_in_fp32(tmp_path):
    config = RunConfig(**TINY, threads=1)
    cpu = execute(config.replace(device="cpu"), runs_root=tmp_path / "cpu", progress=False)
    gpu = execute(config.replace(device="cuda"), runs_root=tmp_path / "gpu", progress=False)
    assert abs(cpu.metrics["log_loss"] - gpu.metrics["log_loss"]) < 0.05


def test_weights_trained_on_cuda_predict_on_the_cpu(runs, tmp_path):
    record = execute(RunConfig(device="cuda", **TINY), progress=False)
    state = torch.load(runs / record.run_id / "model.pt", map_location="cpu", weights_only=False)
    assert all(t.device.type == "cpu" for t in state["model"].values())


def test_cli_device_cuda(runs):
    assert main(["run", "--device", "cuda", "--dataset", "embedded-tiny", "--model", "context-only", "--strategy",
                 "scratch", "--epochs", "1", "--no-progress"]) == 0
    (row,) = load_rows(runs)
    assert json.loads((runs / row["run_id"] / "metrics.json").read_text())["compute"]["device"].startswith("cuda")


def test_compiled_training_on_cuda_matches_eager_closely(tmp_path):
    config = RunConfig(device="cuda", **TINY)
    eager = execute(config, runs_root=tmp_path / "eager", progress=False)
    fused = execute(config.replace(compile="default"), runs_root=tmp_path / "compiled", progress=False)
    assert fused.config["compile"] == "default"
    assert abs(eager.metrics["log_loss"] - fused.metrics["log_loss"]) < 0.05


def test_predict_on_cuda_and_on_the_cpu_agree(tmp_path):
    from ascbench.predict import predict_run
    from ascbench.registry import get_registry

    record = execute(RunConfig(device="cuda", **TINY), runs_root=tmp_path, progress=False)
    on_gpu = predict_run(tmp_path / record.run_id, "embedded-tiny", get_registry(), progress=False, device="cuda")
    on_cpu = predict_run(tmp_path / record.run_id, "embedded-tiny", get_registry(), progress=False, device="cpu")
    assert abs(on_gpu.probabilities - on_cpu.probabilities).max() < 1e-4
