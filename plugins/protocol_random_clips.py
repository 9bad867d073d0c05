"""``random-clips``: the APSIPA 2025 baseline's own split, kept for comparison and marked leaky.

The baseline (JishengBai/APSIPA2025GC-ASC, ``train.py``) shuffles the dev metadata and keeps the first 80 %
of the rows for training, the rest for validation; the development numbers it and its users report are
macro accuracy on the labeled clips of that validation part. Clips of one recording, and recordings of one
session (one place, minutes apart, mostly one scene), land on both sides, so a clip's recording-mates
teach its label: on ``embedded-apsipa`` the metadata alone (the label of the nearest training clip in time,
same city) scores far above chance under this split and near chance under ``official``.

Here the labeled clips are split 80/20 clip by clip with the run's seed (``protocol.test_fraction``), the
baseline's rounding (``int(0.8 * n)`` train). Departures from the baseline's own shuffle: it shuffles every
row, labeled or not, so its labeled test side is 20 % of the labeled clips only on average and a fifth of
the unlabeled clips sit on its validation side (pseudo-labelled there for its second stage's model
selection); here every unlabeled clip trains (semi-supervised methods may use it, never its label), and
early stopping uses a validation part of the training side, not the scored clips as the baseline's does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import ascbench.plugin as ap

NAME = "random-clips"
LEAK = "random clips, recordings and sessions straddle train and test"
DESCRIPTION = (f"leaky: {LEAK}; for comparison with reported baseline numbers only (the APSIPA 2025 baseline's "
               "random 80/20 split of the labeled clips; protocol.test_fraction)")


@dataclass(frozen=True)
class RandomClipsOptions:
    test_fraction: float = field(default=0.2, metadata={
        "help": "share of the labeled clips tested (the baseline's 0.2: it trains on int(0.8 n) of them)"})

    def __post_init__(self) -> None:
        if not 0.0 < self.test_fraction < 1.0:
            raise ap.ConfigError(f"protocol.test_fraction must be in (0, 1), got {self.test_fraction!r}")


def random_clips(dataset: ap.ClipDataset, options: ap.ProtocolOptions) -> ap.Split:
    """Labeled clips split at random, clip by clip, ignoring recordings and sessions; unlabeled clips train."""
    fraction = (options.plugin or RandomClipsOptions()).test_fraction
    labeled = np.flatnonzero(dataset.meta["labeled"].to_numpy() & (dataset.label_indices() >= 0))
    shuffled = np.random.default_rng(options.seed).permutation(labeled)
    test = shuffled[int(len(shuffled) * (1.0 - fraction)):]  # the baseline's rounding: int(0.8 n) train
    train = np.setdiff1d(np.arange(len(dataset.meta)), test)
    return ap.Split(train, np.sort(test), {"protocol": NAME,
                                        "source": f"{fraction:g} of the labeled clips at random, seed {options.seed}"})


@ap.hookimpl
def ascbench_protocols() -> list[ap.ProtocolSpec]:
    return [ap.ProtocolSpec(NAME, random_clips, DESCRIPTION, options=(), options_class=RandomClipsOptions,
                         keeps_groups_whole=False, leak=LEAK)]
