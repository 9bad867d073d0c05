"""Everything a plugin needs from ascbench, in one module (as llm's plugins need only ``import llm``).

The one documented style::

    import ascbench.plugin as ap

    @ap.hookimpl
    def ascbench_models():
        return [ap.ModelSpec("my-net", MyNet, "one line")]

A plugin imports nothing else from ascbench; ``tests/test_plugin_surface.py`` holds the built-in plugins and the
scaffold templates to that. What is here is the contract: the hook marker, every spec class, the options a plugin
may extend, the training job a strategy or semi-supervised method is handed (as a :class:`TrainingJob`
``Protocol``: the contract, not the training loop), the errors a plugin may raise, and the helpers the built-in
plugins use (layers, data checks, file writing, the training calls a semi-supervised method makes, the seeded
draws a protocol makes). Everything else in ascbench
may change between versions without notice.

This module imports torch (the layers are ``nn.Module``s); ``import ascbench`` does not import it.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch.nn as nn

from ascbench.callbacks import LoggerContext, RunLogger
from ascbench.complexity import register_rule
from ascbench.data.checks import (MetadataSource, anything_at, check_spellings, file_problem, parse_timestamps,
                                  readable_file)
from ascbench.data.dataset import ClipDataset, DatasetOptions, leaves_root
from ascbench.data.timefeatures import PERIODS, period_of
from ascbench.device import model_compute
from ascbench.errors import AscbenchError, ConfigError, DataError, PluginError, UnknownNameError
from ascbench.features import FeatureConfig
from ascbench.fileio import (atomic_write_text, cache_root, data_cache_root, exclusive_lock,
                             generated_dataset_manifest, guarded_area, mark_cache_area)
from ascbench.hookspecs import hookimpl
from ascbench.layers import (FUSIONS, ContextEncoder, ContextFusion, ConvBNReLU, DepthwiseSeparableConv, EarlyFusion,
                             GatedFusion, InputBatchNorm, ResidualDSBlock, SqueezeExcite)
from ascbench.metrics import confusion_matrix, log_loss, macro_accuracy, macro_f1
from ascbench.protocols import ProtocolOptions, Split, best_draw, stratified_group_holdout
from ascbench.recipes import BudgetOptions, configure_budget, scale_budget
from ascbench.semi import fit_rows, supervised
from ascbench.specs import (CommandSpec, DatasetSpec, Departure, FrontEndSpec, Importer, LoggerSpec, MetricSpec,
                            ModelContext, ModelFamily, ModelSpec, ProtocolSpec, RecipeSpec, SemiSpec, StrategySpec)
from ascbench.training import FitResult, TrainingHook, augment_batch, predict
from ascbench.vocabulary import PERIOD_NAMES
from ascbench.weights import Checkpoint


@runtime_checkable
class TrainingJob(Protocol):
    """What a strategy (``StrategySpec.train``) and a semi-supervised method (``SemiSpec.fit``) are handed.

    ``config`` is the run's settings (``config.lr``, ``config.epochs``, ``config.seed``...), ``data`` its features
    and labels (``data.labels``, ``data.dataset``), ``partition`` the row indices (``labeled``, ``unlabeled``,
    ``val``), ``notes`` what the plugin did (saved with the run), ``options`` / ``semi_options`` the plugin's own
    options (its ``options_class``). A semi-supervised method trains through :func:`fit_rows`.
    """

    config: Any
    data: Any
    partition: Any
    notes: dict
    options: Any
    semi_options: Any

    def build_model(self) -> nn.Module:
        """A fresh model for this run's data, initialised from the run's seed."""

    def load_pretrained(self, model: nn.Module) -> nn.Module:
        """The starting weights (``--pretrained`` or the pretraining stage) loaded into ``model``."""

    def freeze(self, model: nn.Module, keep_trainable: str) -> None:
        """Freeze every parameter except ``model.head`` or ``model.classifier`` (``keep_trainable``)."""

    def fit(self, model: nn.Module, *, lr: float | None = None, epochs: int | None = None,
            desc: str = "train") -> nn.Module:
        """Train ``model`` with the run's semi-supervised method; returns it."""


__all__ = [
    # hooks and specs
    "hookimpl", "CommandSpec", "DatasetSpec", "FrontEndSpec", "Importer", "LoggerSpec", "MetricSpec", "ModelContext",
    "ModelFamily", "ModelSpec", "ProtocolSpec", "RecipeSpec", "Departure", "SemiSpec", "StrategySpec",
    # options a plugin extends or reads
    "BudgetOptions", "DatasetOptions", "ProtocolOptions",
    # errors
    "AscbenchError", "ConfigError", "DataError", "PluginError", "UnknownNameError",
    # training
    "TrainingJob", "FitResult", "TrainingHook", "fit_rows", "supervised", "predict", "augment_batch", "model_compute",
    "Checkpoint",
    # data
    "ClipDataset", "MetadataSource", "anything_at", "check_spellings", "file_problem", "parse_timestamps",
    "readable_file", "leaves_root", "PERIODS", "PERIOD_NAMES", "period_of", "FeatureConfig",
    # protocols: the split a protocol returns, and the seeded draws the built-in ones make
    "Split", "best_draw", "stratified_group_holdout",
    # metrics (ascbench's own definitions: a plugin's score agrees with metrics.json)
    "macro_accuracy", "macro_f1", "log_loss", "confusion_matrix",
    # recipes, loggers, files
    "configure_budget", "scale_budget", "LoggerContext", "RunLogger", "atomic_write_text", "cache_root", "guarded_area",
    "exclusive_lock", "data_cache_root", "mark_cache_area", "generated_dataset_manifest",
    # layers
    "FUSIONS", "ContextEncoder", "ContextFusion", "ConvBNReLU", "DepthwiseSeparableConv", "EarlyFusion", "GatedFusion",
    "InputBatchNorm", "ResidualDSBlock", "SqueezeExcite",
    # complexity: a custom layer's MAC rule (``register_rule(MyLayer, macs)``, or ``None`` for zero cost)
    "register_rule",
]
