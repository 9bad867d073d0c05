"""Split protocols: which clips train and which test, always by whole recording.

A protocol returns a ``Split`` of row positions; ``partition`` then decides which training clips are
labeled (the labeled fraction) and holds out a validation part of the labeled clips. Test clips are
never seen by training, pseudo-labelling or early stopping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ascbench.data.dataset import ClipDataset
from ascbench.errors import ConfigError

TIME_HOLDOUTS = ("time-of-day", "date")


@dataclass(frozen=True)
class ProtocolOptions:
    seed: int = 0
    test_fraction: float = 0.25  # of recordings (official without a split) or of cities (unseen-city)
    test_cities: tuple[str, ...] = ()  # explicit hold-out cities for unseen-city
    time_holdout: str = "time-of-day"  # unseen-time: hold out evening+night, or the latest dates
    test_periods: tuple[str, ...] = ("evening", "night")
    folds: int = 0  # unseen-city: K cross-city folds (0 = a single seeded hold-out)
    fold: int = 0  # which fold this run tests


@dataclass
class Split:
    train: np.ndarray  # row positions of the training side (labeled and unlabeled)
    test: np.ndarray  # row positions scored at the end (clips with a known label only)
    info: dict = field(default_factory=dict)


def _finish(dataset: ClipDataset, train_mask: np.ndarray, test_mask: np.ndarray, info: dict) -> Split:
    known = dataset.label_indices() >= 0
    train = np.flatnonzero(train_mask)
    test = np.flatnonzero(test_mask & known)
    if len(train) == 0 or len(test) == 0:
        raise ConfigError(f"protocol leaves an empty side on {dataset.name!r}: {len(train)} train, {len(test)} test clips")
    groups = dataset.meta["group"].to_numpy()
    shared = set(groups[train]) & set(groups[test])
    if shared:  # would leak: clips of one recording on both sides
        raise ConfigError(f"split puts recording(s) {sorted(shared)[:3]} on both sides")
    meta = dataset.meta
    for side, rows in (("train", train), ("test", test)):
        info[f"{side}_clips"] = int(len(rows))
        info[f"{side}_cities"] = sorted(meta["city"].iloc[rows].unique())
        info[f"{side}_periods"] = sorted(meta["period"].iloc[rows].unique())
    return Split(train=train, test=test, info=info)


def _random_groups(dataset: ClipDataset, fraction: float, seed: int) -> np.ndarray:
    groups = np.array(sorted(dataset.meta["group"].unique()))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(groups, size=max(1, int(round(fraction * len(groups)))), replace=False)
    return dataset.meta["group"].isin(set(chosen)).to_numpy()


def official(dataset: ClipDataset, options: ProtocolOptions) -> Split:
    """The dataset's own train/test split; a seeded split by recording where it has none."""
    split = dataset.meta["split"].fillna("").astype(str)
    if (split == "test").any():
        test = (split == "test").to_numpy()
        # Clips the dataset assigns to neither side (e.g. TAU devices outside fold 1) stay out.
        train = (split == "train").to_numpy() if (split == "train").any() else ~test
        return _finish(dataset, train, test, {"protocol": "official", "source": "dataset split"})
    test = _random_groups(dataset, options.test_fraction, options.seed)
    return _finish(dataset, ~test, test, {"protocol": "official", "source": f"random recordings, seed {options.seed}"})


def classes_without_training_labels(dataset: ClipDataset, train_mask: np.ndarray, test_mask: np.ndarray) -> list[str]:
    """Classes scored on the test side that no labeled training clip teaches."""
    labels = dataset.label_indices()
    labeled = dataset.meta["labeled"].to_numpy()
    taught = set(labels[train_mask & labeled & (labels >= 0)])
    tested = set(labels[test_mask & (labels >= 0)])
    return [dataset.classes[c] for c in sorted(tested - taught)]


def unseen_city(dataset: ClipDataset, options: ProtocolOptions) -> Split:
    """Test on cities that never occur in training.

    Without ``test_cities`` the hold-out cities are drawn with the seed, skipping draws that would test
    a class no labeled training clip teaches (classes and cities are entangled in real data).
    """
    cities = sorted(dataset.meta["city"].unique())
    city_col = dataset.meta["city"]
    if options.folds:
        if not 2 <= options.folds <= len(cities):
            raise ConfigError(f"--folds must be between 2 and the number of cities ({len(cities)}), got {options.folds}")
        if not 0 <= options.fold < options.folds:
            raise ConfigError(f"--fold must be in [0, {options.folds}), got {options.fold}")
        order = np.random.default_rng(options.seed).permutation(cities)
        held = sorted(order[options.fold::options.folds].tolist())  # every city is tested in exactly one fold
        test = city_col.isin(held).to_numpy()
        return _finish(dataset, ~test, test, {"protocol": "unseen-city", "test_cities_held_out": held,
                                              "fold": options.fold, "folds": options.folds})
    if options.test_cities:
        absent = sorted(set(options.test_cities) - set(cities))
        if absent:
            raise ConfigError(f"test cities {absent} are not in {dataset.name!r}; its cities: {', '.join(cities)}")
        held = sorted(options.test_cities)
    else:
        if len(cities) < 2:
            raise ConfigError(f"unseen-city needs at least 2 cities; {dataset.name!r} has {len(cities)}")
        rng = np.random.default_rng(options.seed)
        count = min(len(cities) - 1, max(1, int(round(options.test_fraction * len(cities)))))
        held = None
        for _ in range(500):
            candidate = sorted(rng.choice(cities, size=count, replace=False).tolist())
            test = city_col.isin(candidate).to_numpy()
            if not classes_without_training_labels(dataset, ~test, test):
                held = candidate
                break
        if held is None:
            raise ConfigError(
                f"no draw of {count} hold-out cities in {dataset.name!r} leaves every tested class with labeled "
                "training clips (classes and cities are entangled); choose them with --test-cities"
            )
    test = city_col.isin(held).to_numpy()
    return _finish(dataset, ~test, test, {"protocol": "unseen-city", "test_cities_held_out": held})


def unseen_time(dataset: ClipDataset, options: ProtocolOptions) -> Split:
    """Test on time periods that never occur in training: times of day, or the latest dates."""
    meta = dataset.meta
    if options.time_holdout == "time-of-day":
        test = meta["period"].isin(options.test_periods).to_numpy()
        info = {"protocol": "unseen-time", "holdout": "time-of-day", "test_periods": list(options.test_periods)}
    elif options.time_holdout == "date":
        dates = meta["timestamp"].dt.normalize()
        cutoff = dates.quantile(1.0 - options.test_fraction)
        test = (dates >= cutoff).to_numpy()
        info = {"protocol": "unseen-time", "holdout": "date", "test_from": str(cutoff.date())}
    else:
        raise ConfigError(f"unknown time holdout {options.time_holdout!r}; valid: {', '.join(TIME_HOLDOUTS)}")
    # A recording spans one timestamp, so holding out by time never splits a recording.
    return _finish(dataset, ~test, test, info)


@dataclass
class Partition:
    """Row positions for each role in one run."""

    labeled: np.ndarray  # training clips whose label the strategy may use
    unlabeled: np.ndarray  # training clips whose label it may not
    val: np.ndarray  # labeled clips held out for early stopping
    test: np.ndarray


def partition(dataset: ClipDataset, split: Split, labeled_fraction: float | None, val_fraction: float, seed: int) -> Partition:
    """Choose the labeled training clips and a validation part of them, stratified by class, by recording."""
    labels = dataset.label_indices()
    rng = np.random.default_rng([seed, 7])
    train = split.train
    if labeled_fraction is None:
        is_labeled = dataset.meta["labeled"].to_numpy()[train]
    else:
        if not 0.0 < labeled_fraction <= 1.0:
            raise ConfigError(f"--labeled must be in (0, 1], got {labeled_fraction}")
        is_labeled = np.zeros(len(train), dtype=bool)
        for c in np.unique(labels[train][labels[train] >= 0]):
            pos = np.flatnonzero(labels[train] == c)
            wanted = max(1, int(round(labeled_fraction * len(pos))))
            is_labeled[rng.choice(pos, size=wanted, replace=False)] = True
    labeled, unlabeled = train[is_labeled], train[~is_labeled]
    if len(labeled) == 0:
        raise ConfigError(f"no labeled training clips in {dataset.name!r} under this protocol")
    untaught = sorted(set(labels[split.test]) - set(labels[labeled]))
    if untaught:
        names = ", ".join(dataset.classes[c] for c in untaught)
        raise ConfigError(f"split of {dataset.name!r} tests class(es) {names} but has no labeled training clip of them; "
                          "choose other hold-out cities or periods")

    groups = dataset.meta["group"].to_numpy()
    val_groups: set = set()
    for c in np.unique(labels[labeled]):
        class_groups = sorted(set(groups[labeled[labels[labeled] == c]]))
        if len(class_groups) >= 3 and val_fraction > 0:
            take = max(1, int(round(val_fraction * len(class_groups))))
            val_groups.update(rng.choice(class_groups, size=take, replace=False).tolist())
    in_val = np.isin(groups[labeled], list(val_groups))
    # Unlabeled clips of validation recordings would let the model peek at them; keep them out.
    unlabeled = unlabeled[~np.isin(groups[unlabeled], list(val_groups))]
    return Partition(labeled=labeled[~in_val], unlabeled=unlabeled, val=labeled[in_val], test=split.test)
