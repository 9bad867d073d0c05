"""The built-in semi-supervised methods (``--semi``): ``none``, ``pseudo-label`` and ``mean-teacher``.

``none`` is the core's ``ap.supervised`` (labeled clips only); the other two are written here against the facade
like any third-party method: they train through ``ap.fit_rows``, and the mean teacher hooks into each step as an
``ap.TrainingHook``. ``select_pseudo_labels`` and ``recording_vote`` are pseudo-label's pieces, importable from
``ascbench_plugins.semi_methods`` by anyone building a variant.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

import ascbench.plugin as ap

log = logging.getLogger("ascbench")


def select_pseudo_labels(probs: np.ndarray, threshold: float, fraction: float, class_balanced: bool) -> np.ndarray:
    """Positions (into ``probs``) of the clips to pseudo-label.

    Every clip whose top probability reaches ``threshold`` is a candidate. Class-balanced selection
    then keeps the most confident ``fraction`` of each predicted class separately, so a class the
    model over-predicts cannot flood the training set; otherwise the most confident ``fraction`` overall.
    """
    confidence, predicted = probs.max(axis=1), probs.argmax(axis=1)
    candidates = np.flatnonzero(confidence >= threshold)
    groups = [candidates[predicted[candidates] == c] for c in np.unique(predicted)] if class_balanced else [candidates]
    chosen = []
    for group in groups:
        keep = int(np.ceil(fraction * len(group)))
        chosen.append(group[np.argsort(-confidence[group], kind="stable")[:keep]])
    return np.sort(np.concatenate(chosen)) if chosen else np.array([], dtype=np.int64)


def recording_vote(job: ap.TrainingJob, probs: np.ndarray) -> np.ndarray:
    """Replace each unlabeled clip's prediction by its recording's.

    A recording has one scene, so its clips should share a label: a recording with a labeled training
    clip passes that label on; otherwise the clips' probabilities are averaged. Only training clips
    (labeled and unlabeled) take part, never validation or test clips.
    """
    part, data = job.partition, job.data
    groups = data.dataset.meta["group"].to_numpy()
    num_classes = probs.shape[1]
    frame = pd.DataFrame(probs, columns=range(num_classes))
    frame["group"] = groups[part.unlabeled]
    voted = np.array(frame.groupby("group")[list(range(num_classes))].transform("mean"), dtype=float)
    known = {}
    for row in part.labeled:
        known.setdefault(groups[row], np.zeros(num_classes))[data.labels[row]] += 1
    for i, g in enumerate(groups[part.unlabeled]):
        if g in known:
            voted[i] = known[g] / known[g].sum()
    return voted


def _help(text: str) -> dict:
    return {"help": text}


@dataclass(frozen=True)
class PseudoLabelOptions:
    """``pseudo-label``'s own options, set as ``--set semi.rounds=3`` (or ``--pl-rounds 3``)."""

    rounds: int = field(default=2, metadata=_help("pseudo-label rounds; round r keeps the most confident r/rounds of each class"))
    threshold: float = field(default=0.5, metadata=_help("minimum top probability for a pseudo-label, in [0, 1)"))
    class_balanced: bool = field(default=True, metadata=_help("select the same share of each class (false: by confidence alone)"))
    group_vote: bool = field(default=True, metadata=_help("pseudo-label whole recordings: a labeled clip's label, else the mean prediction"))
    restart: bool = field(default=True, metadata=_help("each round retrains from the strategy's starting point (false: "
                                                        "continues from the best model so far)"))

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError(f"semi.rounds (--pl-rounds) must be at least 1, got {self.rounds}")
        if not 0 <= self.threshold < 1:
            raise ValueError(f"semi.threshold (--pl-threshold) must be in [0, 1), got {self.threshold}")


@dataclass(frozen=True)
class MeanTeacherOptions:
    """``mean-teacher``'s own options, set as ``--set semi.ema=0.999`` (or ``--mt-ema 0.999``)."""

    ema: float = field(default=0.99, metadata=_help("EMA decay of the teacher, in [0, 1)"))
    weight: float = field(default=10.0, metadata=_help("maximum consistency weight (ramped up over the first 30 % of epochs)"))

    def __post_init__(self) -> None:
        if not 0 <= self.ema < 1:
            raise ValueError(f"semi.ema (--mt-ema) must be in [0, 1), got {self.ema}")
        if self.weight < 0:
            raise ValueError(f"semi.weight (--mt-weight) must be at least 0, got {self.weight}")


def pseudo_label(job: ap.TrainingJob, model: nn.Module, lr: float, epochs: int, desc: str) -> list[ap.FitResult]:
    """Train on labels, pseudo-label the unlabeled pool, train on both; repeated for ``semi.rounds`` rounds with
    a confidence threshold and a growing, class-balanced selection. The APSIPA 2025 baseline is one round
    with every clip (threshold 0, no balancing or vote) continuing from the best labeled-only model
    (``semi.restart = false``); the ``apsipa2025-baseline`` recipe sets exactly that."""
    cfg, part, data = job.semi_options or PseudoLabelOptions(), job.partition, job.data
    initial = copy.deepcopy(model.state_dict())
    results = [ap.fit_rows(job, model, part.labeled, None, lr, epochs, f"{desc} (labeled)")]
    rounds = job.notes.setdefault("pseudo_label_rounds", [])
    for r in range(1, cfg.rounds + 1):
        if len(part.unlabeled) == 0:
            break
        probs = ap.predict(model, data, part.unlabeled)
        if cfg.group_vote:
            probs = recording_vote(job, probs)
        pos = select_pseudo_labels(probs, cfg.threshold, r / cfg.rounds, cfg.class_balanced)
        rows, guesses = part.unlabeled[pos], probs[pos].argmax(axis=1)
        truth = data.labels[rows]
        known = truth >= 0
        entry = {"round": r, "pool": int(len(part.unlabeled)), "selected": int(len(rows)),
                 "accuracy_where_known": float(np.mean(guesses[known] == truth[known])) if known.any() else None,
                 "per_class": np.bincount(guesses, minlength=len(data.dataset.classes)).tolist()}
        rounds.append(entry)
        log.info("pseudo-label round %d: %d of %d unlabeled clips selected, accuracy where known %s",
                 r, entry["selected"], entry["pool"], entry["accuracy_where_known"])
        if cfg.restart:  # retrain from the strategy's starting point; otherwise continue from the best model so far
            model.load_state_dict(initial)
        train_rows = np.concatenate([part.labeled, rows])
        targets = np.concatenate([data.labels[part.labeled], guesses])
        results.append(ap.fit_rows(job, model, train_rows, targets, lr, epochs, f"{desc} (round {r})"))
    return results


class MeanTeacher(ap.TrainingHook):
    """Consistency between the student and an exponential-moving-average teacher on unlabeled clips,
    each seeing its own augmentation of the clip (Tarvainen and Valpola, 2017)."""

    def __init__(self, job: ap.TrainingJob, model: nn.Module, epochs: int):
        self.job, self.epochs = job, epochs
        self.options = job.semi_options or MeanTeacherOptions()
        self.teacher = copy.deepcopy(model)
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.rng = np.random.default_rng([job.config.seed, 23])
        self.generator = torch.Generator().manual_seed(job.config.seed + 1)

    def weight(self, epoch: int) -> float:
        ramp = min(1.0, epoch / max(1.0, 0.3 * self.epochs))  # sigmoid ramp-up over the first 30 %
        return self.options.weight * float(np.exp(-5.0 * (1.0 - ramp) ** 2))

    def extra_loss(self, model: nn.Module, epoch: int) -> torch.Tensor | None:
        pool = self.job.partition.unlabeled
        if len(pool) == 0:
            return None
        rows = self.rng.choice(pool, size=min(len(pool), self.job.config.batch_size), replace=False)
        compute = ap.model_compute(model)
        x, city, time = self.job.data.batch_on(rows, compute)
        self.teacher.to(compute.device)  # follows the student onto the run's device (a no-op once there)
        # Each view is augmented with draws from the run's CPU generator, as in fit: the same draws on any device.
        teacher_x = ap.augment_batch(x, self.job.config, self.generator, self.job.data.frame_rate)
        with torch.no_grad():
            self.teacher.train()
            target = F.softmax(self.teacher(teacher_x, city, time).float(), dim=1)
        student_x = ap.augment_batch(x, self.job.config, self.generator, self.job.data.frame_rate)
        student = F.softmax(model(student_x, city, time).float(), dim=1)
        return self.weight(epoch) * F.mse_loss(student, target)

    @torch.no_grad()
    def after_step(self, model: nn.Module) -> None:
        decay = self.options.ema
        for t, s in zip(self.teacher.state_dict().values(), model.state_dict().values()):
            if t.dtype.is_floating_point:
                t.mul_(decay).add_(s, alpha=1 - decay)
            else:
                t.copy_(s)

    def eval_model(self, model: nn.Module) -> nn.Module:
        return self.teacher  # the teacher is the better model; validation selects its weights

    def state_dict(self) -> dict:
        return {"teacher": self.teacher.state_dict(), "rng": self.rng.bit_generator.state,
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.teacher.load_state_dict(state["teacher"])
        self.rng.bit_generator.state = state["rng"]
        self.generator.set_state(state["generator"])


def mean_teacher(job: ap.TrainingJob, model: nn.Module, lr: float, epochs: int, desc: str) -> list[ap.FitResult]:
    hook = MeanTeacher(job, model, epochs)
    job.notes["mean_teacher"] = {"ema": hook.options.ema, "max_weight": hook.options.weight,
                                 "unlabeled_pool": int(len(job.partition.unlabeled))}
    return [ap.fit_rows(job, model, job.partition.labeled, None, lr, epochs, f"{desc} (mean teacher)", hook)]


@ap.hookimpl
def ascbench_semi_methods() -> list[ap.SemiSpec]:
    return [
        ap.SemiSpec("none", ap.supervised, "labeled clips only"),
        ap.SemiSpec("pseudo-label", pseudo_label, "rounds of confident, class-balanced pseudo-labels on the unlabeled "
                    "clips (the challenge recipe)", options_class=PseudoLabelOptions,
                    shortcuts={"--pl-rounds": "rounds", "--pl-threshold": "threshold",
                               "--pl-unbalanced": "class_balanced=false", "--pl-no-vote": "group_vote=false"},
                    # its options were core config fields once: stored records and files still name them so
                    renamed={"pl_rounds": ("rounds", 2), "pl_threshold": ("threshold", 0.5),
                             "pl_class_balanced": ("class_balanced", True), "pl_group_vote": ("group_vote", True),
                             "pl_restart": ("restart", True)}),
        ap.SemiSpec("mean-teacher", mean_teacher, "consistency with an EMA teacher on the unlabeled clips",
                    # its EMA teacher follows one process's weights: data-parallel ranks would each keep their own
                    options_class=MeanTeacherOptions, data_parallel=False,
                    shortcuts={"--mt-ema": "ema", "--mt-weight": "weight"},
                    renamed={"mt_ema": ("ema", 0.99), "mt_weight": ("weight", 10.0)}),
    ]
