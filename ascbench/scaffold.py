"""``ascbench new-plugin``: a ready-to-install plugin package (pyproject with the entry point, one
module with a working minimal model, strategy, semi-supervised method or metric, one test file)."""

from __future__ import annotations

import re
from pathlib import Path

from ascbench.errors import ConfigError
from ascbench.fileio import atomic_write_text

PYPROJECT = '''[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "ascbench-{name}"
version = "0.1.0"
description = "{kind} plugin for ascbench: {name}"
requires-python = ">=3.10"
dependencies = ["ascbench"]

[project.entry-points.ascbench]
{name} = "{module}"

[tool.setuptools]
py-modules = ["{module}"]
'''

MODEL = '''"""{name}: a minimal ascbench model plugin. Replace the network; keep the forward signature."""

import torch
import torch.nn as nn

from ascbench import hookimpl
from ascbench.layers import ContextEncoder, GatedFusion, ResidualDSBlock
from ascbench.specs import ModelContext, ModelSpec


class {cls}(nn.Module):
    def __init__(self, ctx: ModelContext, width: int = 16):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.block = ResidualDSBlock(width, width)
        self.context = ContextEncoder(ctx.num_cities, ctx.time_dim)
        self.fusion = GatedFusion(width, self.context.out_dim)
        self.classifier = nn.Linear(width, ctx.num_classes)

    @property
    def feature_extractor(self) -> nn.Module:  # lets the freeze strategy work
        return nn.ModuleList([self.stem, self.block])

    def forward(self, x: torch.Tensor, city: torch.Tensor | None = None, time: torch.Tensor | None = None) -> torch.Tensor:
        h = self.block(self.stem(x)).mean(dim=(2, 3))
        return self.classifier(self.fusion(h, self.context(city, time, h.shape[0])))


@hookimpl
def ascbench_models():
    return [ModelSpec("{name}", lambda ctx, **kw: {cls}(ctx, **kw), "{name}: describe it in one line",
                      uses_city=True, uses_time=True)]
'''

STRATEGY = '''"""{name}: a minimal ascbench strategy plugin (pretrained start, smaller learning rate)."""

from dataclasses import dataclass, field

from ascbench import hookimpl
from ascbench.specs import StrategySpec


@dataclass(frozen=True)
class Options:
    """Set from any run as --set strategy.lr_scale=0.05 (or [options.strategy] in a config file)."""

    lr_scale: float = field(default=0.1, metadata={{"help": "fine-tuning learning rate = --lr x this"}})


def train(job):
    model = job.load_pretrained(job.build_model())
    return job.fit(model, lr=job.config.lr * job.options.lr_scale, desc="{name}")


@hookimpl
def ascbench_strategies():
    return [StrategySpec("{name}", train, "{name}: describe it in one line", options_class=Options)]
'''

MODEL_TEST = '''import pytest

from ascbench.testing import model_checks


@pytest.mark.parametrize("check", model_checks("{name}"), ids=lambda check: check.__name__)
def test_conformance(check):
    check()
'''

STRATEGY_TEST = '''from ascbench.config import RunConfig
from ascbench.runner import execute


def test_runs_end_to_end(tmp_path):
    config = RunConfig(strategy="{name}", dataset="embedded-tiny", epochs=1, pretrain_epochs=1,
                       model="mobileascnet-cnn", model_kwargs={{"channels": [8, 8, 8], "stem_channels": 8}},
                       options={{"strategy": {{"lr_scale": 0.05}}}})
    record = execute(config, runs_root=tmp_path, progress=False)
    assert 0.0 <= record.metrics["accuracy"] <= 1.0
'''


SEMI = '''"""{name}: a minimal ascbench semi-supervised method (one round of confident pseudo-labels)."""

from dataclasses import dataclass, field

import numpy as np

from ascbench import hookimpl
from ascbench.semi import fit_rows, supervised
from ascbench.specs import SemiSpec
from ascbench.training import predict


@dataclass(frozen=True)
class Options:
    """Set from any run as --set semi.threshold=0.8."""

    threshold: float = field(default=0.9, metadata={{"help": "keep unlabeled clips predicted at least this confidently"}})


def fit(job, model, lr, epochs, desc):
    results = supervised(job, model, lr, epochs, desc)  # the labeled clips first
    pool = job.partition.unlabeled  # read without labels; never validation or test clips
    if len(pool):
        probs = predict(model, job.data, pool)
        keep = probs.max(axis=1) >= job.semi_options.threshold
        rows = np.concatenate([job.partition.labeled, pool[keep]])
        targets = np.concatenate([job.data.labels[job.partition.labeled], probs[keep].argmax(axis=1)])
        job.notes["{name}"] = {{"pseudo_labelled": int(keep.sum()), "pool": int(len(pool))}}
        results.append(fit_rows(job, model, rows, targets, lr, epochs, f"{{desc}} ({name})"))
    return results


@hookimpl
def ascbench_semi_methods():
    return [SemiSpec("{name}", fit, "{name}: describe it in one line", options_class=Options)]
'''

METRIC = '''"""{name}: a minimal ascbench metric (the accuracy of the class the model serves worst)."""

import numpy as np

from ascbench import hookimpl
from ascbench.specs import MetricSpec


def compute(y_true, probs, classes):
    predicted = probs.argmax(axis=1)
    return float(min(np.mean(predicted[y_true == c] == c) for c in np.unique(y_true)))


@hookimpl
def ascbench_metrics():
    return [MetricSpec("{name}", compute, higher_is_better=True, description="{name}: describe it in one line")]
'''

SEMI_TEST = '''from ascbench.config import RunConfig
from ascbench.runner import execute


def test_runs_end_to_end_with_its_option(tmp_path):
    config = RunConfig(semi="{name}", dataset="embedded-tiny", epochs=1, strategy="scratch", model="context-only",
                       options={{"semi": {{"threshold": 0.0}}}})
    record = execute(config, runs_root=tmp_path, progress=False)
    assert record.metrics["strategy_notes"]["{name}"]["pseudo_labelled"] > 0
'''

METRIC_TEST = '''import numpy as np

from ascbench.config import RunConfig
from ascbench.runner import execute
from ascbench_{module_suffix} import compute


def test_a_hand_counted_case():
    probs = np.eye(3)[[0, 0, 1, 2, 2]]  # predictions 0, 0, 1, 2, 2
    assert compute(np.array([0, 1, 1, 2, 2]), probs, ["a", "b", "c"]) == 0.5  # class 1: one of two right


def test_every_run_is_scored(tmp_path):
    record = execute(RunConfig(dataset="embedded-tiny", epochs=1, strategy="scratch", model="context-only"),
                     runs_root=tmp_path, progress=False)
    assert 0.0 <= record.metrics["scores"]["{name}"] <= 1.0
'''

TEMPLATES = {"model": (MODEL, MODEL_TEST), "strategy": (STRATEGY, STRATEGY_TEST), "semi": (SEMI, SEMI_TEST),
             "metric": (METRIC, METRIC_TEST)}


def new_plugin(name: str, kind: str, parent: Path) -> Path:
    """Write the package ``ascbench-<name>`` under ``parent`` and return its directory."""
    if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
        raise ConfigError(f"plugin name {name!r}: use lower-case letters, digits and '-' (e.g. my-net)")
    if kind not in TEMPLATES:
        raise ConfigError(f"--kind must be one of {', '.join(TEMPLATES)}, not {kind!r}")
    module = "ascbench_" + name.replace("-", "_")
    cls = "".join(part.capitalize() for part in name.split("-"))
    root = parent / f"ascbench-{name}"
    if root.exists():
        raise ConfigError(f"{root} already exists; choose another name or directory")
    fields = {"name": name, "module": module, "cls": cls, "kind": kind, "module_suffix": module[len("ascbench_"):]}
    atomic_write_text(root / "pyproject.toml", PYPROJECT.format(**fields))
    code, test = TEMPLATES[kind]
    atomic_write_text(root / f"{module}.py", code.format(**fields))
    atomic_write_text(root / "tests" / f"test_{module}.py", test.format(**fields))
    atomic_write_text(root / "README.md", f"# ascbench-{name}\n\nAn ascbench {kind} plugin.\n\n"
                      f"    pip install -e .\n    ascbench list\n    python -m pytest -q\n")
    return root
