"""Official checkpoints in: the importers against the official code's own logits (../shared/reference), and
the load report that makes a partial or failed load visible."""

from pathlib import Path

import numpy as np
import pytest
import torch

from ascbench.config import RunConfig
from ascbench.errors import ConfigError
from ascbench.runner import execute
from ascbench.specs import ModelContext
from ascbench.training import create_model
from ascbench.weights import Checkpoint, load_with_report, read_checkpoint, remap_city_rows, to_checkpoint

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(), reason="../shared/reference is not present")


def _official_se_trans(tmp_path: Path) -> Path:
    """The reference weights as official checkpoint files store them: wrapped in model_state_dict."""
    state = torch.load(REFERENCE / "apsipa2025" / "se_trans_official_state_dict.pt", weights_only=True)
    path = tmp_path / "official_se_trans.pt"
    torch.save({"model_state_dict": state, "epoch": torch.tensor(7)}, path)
    return path


@needs_reference
def test_imported_se_trans_gives_the_official_logits_within_1e_5(registry, tmp_path):
    from ascbench_plugins.se_trans import OFFICIAL_CITIES

    spec = registry.model("se-trans")
    checkpoint = to_checkpoint(read_checkpoint(_official_se_trans(tmp_path)), spec, "official")
    model = create_model(spec, ModelContext(10, len(OFFICIAL_CITIES) + 1, 8, 64, 500),
                         RunConfig(model="se-trans", normalization="input-bn"))
    report = load_with_report(model, checkpoint, target_cities=list(OFFICIAL_CITIES))
    assert len(report.loaded) == report.total and not report.unexpected and not report.mismatched
    io = np.load(REFERENCE / "apsipa2025" / "se_trans_io.npz")
    model.eval()
    with torch.no_grad():  # official layout (batch, 1, frames, mels); official city i is ascbench's i + 1
        logits = model(torch.from_numpy(io["x"]).transpose(2, 3), torch.from_numpy(io["city"]) + 1,
                       torch.from_numpy(io["time"]))
    assert np.abs(logits.numpy() - io["logits"]).max() < 1e-5


@needs_reference
def test_imported_cp_mobile_gives_the_official_logits_within_1e_5(registry):
    spec = registry.model("cp-mobile")
    raw = torch.load(REFERENCE / "dcase2024" / "cp_mobile_official_state_dict.pt", weights_only=True)
    checkpoint = to_checkpoint(raw, spec, "official")
    model = create_model(spec, ModelContext(10, 1, 8, 256, 65), RunConfig(model="cp-mobile"))
    report = load_with_report(model, checkpoint)
    assert len(report.loaded) == report.total == 126
    io = np.load(REFERENCE / "dcase2024" / "cp_mobile_io.npz")
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(io["x"]))
    assert np.abs(logits.numpy() - io["logits"]).max() < 1e-5


@needs_reference
def test_weights_of_another_model_are_refused_with_the_report(registry):
    raw = torch.load(REFERENCE / "dcase2024" / "cp_mobile_official_state_dict.pt", weights_only=True)
    model = create_model(registry.model("se-trans"), ModelContext(10, 5, 8, 64, 101), RunConfig(model="se-trans"))
    with pytest.raises(ConfigError, match=r"only 0 of \d+ tensors loaded.*does not fit model SETrans"):
        load_with_report(model, to_checkpoint(raw, registry.model("se-trans"), "x"))


def test_official_bn0_without_input_bn_is_named_in_the_report(registry):
    model = create_model(registry.model("cp-mobile"), ModelContext(10, 1, 8, 64, 101), RunConfig(model="cp-mobile"))
    state = dict(model.state_dict(), **{"bn0.weight": torch.ones(64)})
    report = load_with_report(model, Checkpoint(state))
    assert report.unexpected == ["bn0.weight"] and "--normalization input-bn" in report.summary()


def test_city_rows_are_remapped_by_name():
    weight = torch.arange(4 * 2, dtype=torch.float32).view(4, 2)  # ascbench layout: row 0 unknown, then a, b, c
    out, note = remap_city_rows(weight, ["a", "b", "c"], ["c", "a", "z"])
    torch.testing.assert_close(out[0], weight[0])
    torch.testing.assert_close(out[1], weight[3])  # c
    torch.testing.assert_close(out[2], weight[1])  # a
    torch.testing.assert_close(out[3], weight[1:].mean(0))  # z: never seen, the mean
    assert "2 of 3 cities found" in note and "z" in note


@needs_reference
def test_a_run_starts_from_an_official_checkpoint_and_records_the_load(registry, runs, tmp_path):
    path = _official_se_trans(tmp_path)
    record = execute(RunConfig(model="se-trans", strategy="finetune", dataset="embedded-tiny", epochs=1,
                               pretrained=str(path), normalization="input-bn"), progress=False)
    loaded = record.metrics["strategy_notes"]["weights_loaded"]
    # The embedded data uses the APSIPA scene names, so even the classifier is taken; the cities are not
    # the official ones, so every row of the city embedding starts at the official rows' mean.
    assert loaded["loaded"] == loaded["total"] and not loaded["missing"]
    assert any("city embedding mapped by name" in n for n in loaded["notes"])
    assert record.metrics["strategy_notes"]["pretraining"]["format"] == "APSIPA 2025 official"
