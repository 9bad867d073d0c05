"""What a strategy plugin works with: ``TrainingJob`` (the run's config and data, and the ways to build,
load, freeze and fit a model). Fitting goes through the run's semi-supervised method (``--semi``),
which in turn drives the training loop in ``ascbench.training``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

import torch.nn as nn

from ascbench.config import RunConfig
from ascbench.errors import ConfigError, check_returned
from ascbench.registry import plugin_label
from ascbench.protocols import Partition
from ascbench.specs import ModelSpec, SemiSpec
from ascbench.training import DataBundle, create_model
from ascbench.weights import Checkpoint, load_with_report

log = logging.getLogger("ascbench")


@dataclass
class TrainingJob:
    """What a strategy plugin works with: the run's config, its data and the ways to build and fit a model."""

    config: RunConfig
    model_spec: ModelSpec
    data: DataBundle
    partition: Partition
    pretrained_state: Callable[[], "Checkpoint"]  # --pretrained, or the pretraining stage (cached across runs)
    # --semi: how fitting uses the unlabeled clips; a registered method (labeled clips only is one too), so the
    # job has no built-in fallback of its own.
    semi_method: SemiSpec
    progress: bool = True
    notes: dict = field(default_factory=dict)  # strategies record what they did here; saved with the run
    options: Any = None  # the strategy's own options (StrategySpec.options_class), set as strategy.FIELD
    semi_options: Any = None  # its own options (SemiSpec.options_class), set as semi.FIELD
    # How errors name the chosen plugins by kind ("model 'x' (plugin 'p')"); set by ascbench.pipeline.train.
    names: dict[str, str] = field(default_factory=dict)

    def build_model(self) -> nn.Module:
        """A fresh model for this run's data, initialised from the run's seed."""
        return create_model(self.model_spec, self.data.model_context(), self.config, self.names.get("model"))

    def load_pretrained(self, model: nn.Module) -> nn.Module:
        """Load the starting weights (``--pretrained`` or the pretraining stage) into ``model``, with a report.

        Every tensor whose name and shape match is taken; a classifier trained on other classes (TAU Urban's
        for APSIPA) is left fresh; a checkpoint that names its cities has its city embedding remapped onto
        this run's cities by name. Too little matching is an error, not a silent from-scratch run.
        """
        checkpoint = self.pretrained_state()
        skip: set[str] = set()
        classifier = getattr(model, "classifier", None)
        if checkpoint.classes is not None and checkpoint.classes != self.data.dataset.classes and classifier is not None:
            names = {id(p): n for n, p in model.named_parameters()}
            skip = {names[id(p)] for p in classifier.parameters()}
            log.info("starting weights were trained on other classes; the classifier starts fresh")
        report = load_with_report(model, checkpoint, target_cities=self.data.cities, skip=skip,
                                  what=f"starting weights for model {self.config.model!r}")
        log.info("starting weights: %s", report.summary())  # names what was left out, and why: said once
        self.notes["reinitialised_after_pretraining"] = report.missing
        self.notes["weights_loaded"] = report.as_dict()
        return model

    def freeze(self, model: nn.Module, keep_trainable: str) -> None:
        """Freeze every parameter except those of ``model.<keep_trainable>`` ("head" or "classifier").

        ``head`` is everything after the feature extractor (GRU, context, fusion, classifier): the model
        must expose ``feature_extractor``. ``classifier`` is the final layer only.
        """
        if keep_trainable == "head":
            part = getattr(model, "feature_extractor", None)
            if part is None:
                raise ConfigError(f"model {self.config.model!r} exposes no feature_extractor, so it cannot be frozen")
            for p in part.parameters():
                p.requires_grad_(False)
        elif keep_trainable == "classifier":
            part = getattr(model, "classifier", None)
            if part is None:
                raise ConfigError(f"model {self.config.model!r} exposes no classifier, so it cannot be linear-probed")
            keep = {id(p) for p in part.parameters()}
            for p in model.parameters():
                p.requires_grad_(id(p) in keep)
        else:
            raise ValueError(f"keep_trainable must be 'head' or 'classifier', not {keep_trainable!r}")
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        self.notes["trainable_params"] = trainable
        log.info("%d of %d parameters trainable", trainable, sum(p.numel() for p in model.parameters()))

    def fit(self, model: nn.Module, *, lr: float | None = None, epochs: int | None = None, desc: str = "train") -> nn.Module:
        """Train ``model`` on this run's training clips with the run's semi-supervised method (``--semi``).

        Freeze parameters (``requires_grad_(False)``) before calling to keep them fixed.
        """
        # what it returns is its own fault, not the strategy's that called fit (what it raises: pipeline.train)
        results = check_returned(self.names.get("semi") or plugin_label("semi", self.config.semi),
                                 self.semi_method.fit(self, model, lr or self.config.lr, epochs or self.config.epochs,
                                                      desc), list, "a list of FitResult")
        for result in results:
            self.notes.setdefault("stages", []).append(
                {"stage": desc, "semi": self.config.semi, "best_epoch": result.best_epoch,
                 "best_val_accuracy": result.best_val_accuracy, "epochs_run": len(result.history)}
            )
        return model

