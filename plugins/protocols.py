"""The standard protocols: session-holdout (formerly official), unseen-city, unseen-time, and all-labeled (for a submission).

Each is a split function like any third-party protocol's: it returns an ``ap.Split`` of row positions, and the
core checks it (whole groups, labeled test clips, taught classes) before anything trains. The seeded draws they
make (``ap.best_draw``, ``ap.stratified_group_holdout``) are the core's helpers, shared with other protocols.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

import ascbench.plugin as ap


def all_labeled(dataset: ap.ClipDataset, options: ap.ProtocolOptions) -> ap.Split:
    """Every clip trains and nothing is tested: the model to submit, trained with every label there is
    (validation for early stopping still comes from labeled training groups)."""
    return ap.Split(np.arange(len(dataset.meta)), np.array([], dtype=np.int64), {"protocol": "all-labeled"})


def session_holdout(dataset: ap.ClipDataset, options: ap.ProtocolOptions) -> ap.Split:
    """The dataset's own train/test split; else a class-stratified hold-out of whole groups.

    The hold-out uses the dataset's ``split_seed`` when it declares one (one official split for every
    run), else the run's seed.
    """
    split = dataset.meta["split"].fillna("").astype(str)
    if (split == "test").any():
        test = (split == "test").to_numpy()
        # Clips the dataset assigns to neither side (e.g. TAU devices outside fold 1) stay out.
        train = (split == "train").to_numpy() if (split == "train").any() else ~test
        return ap.Split(np.flatnonzero(train), np.flatnonzero(test), {"protocol": "session-holdout", "source": "dataset split"})
    level = dataset.resolve_grouping(options.group_by)
    seed = dataset.split_seed if dataset.split_seed is not None else options.seed
    test = ap.stratified_group_holdout(dataset, dataset.groups(level), options.test_fraction, seed)
    return ap.Split(np.flatnonzero(~test), np.flatnonzero(test),
                    {"protocol": "session-holdout", "source": f"{options.test_fraction:g} of each class's {level}s, seed {seed}"})


def _names(option: str, value: Any) -> tuple[str, ...]:
    """A list option as the run gives it: a list of names, or one comma-separated text (``--test-cities A,B``).
    Held out is a set, so it is stored sorted and once each: ``B,A`` or ``A,A,B`` is the experiment ``A,B`` (one
    digest, one board row), not a second identity for the same split."""
    if isinstance(value, str):
        return tuple(sorted({v.strip() for v in value.split(",") if v.strip()}))
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(sorted({v.strip() for v in value if v.strip()}))
    raise ap.ConfigError(f"protocol.{option} must be a list of names, got {value!r} ({type(value).__name__})")


def _unread(flag: str, reason: str, option: str, value: tuple[str, ...]) -> ap.ConfigError:
    """The refusal of a setting the run would not read (as the core words it for its own fields)."""
    return ap.ConfigError(f"{flag}: {reason}. Drop protocol.{option} = {','.join(value)}: a setting the run does not "
                          "read is refused, not stored as if it mattered")


@dataclass(frozen=True)
class UnseenCityOptions:
    """``unseen-city``'s own options, set as ``--set protocol.test_cities=A,B`` (or ``--test-cities A,B``)."""

    test_cities: tuple[str, ...] = field(default=(), metadata={
        "help": "hold-out cities, comma-separated (default: drawn with the seed, testing no untaught class)"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "test_cities", _names("test_cities", self.test_cities))  # frozen: set once here


TIME_HOLDOUTS = ("time-of-day", "date")
DEFAULT_TEST_PERIODS = ("evening", "night")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class UnseenTimeOptions:
    """``unseen-time``'s own options, set as ``--set protocol.time_holdout=date`` (or ``--time-holdout date``)."""

    time_holdout: str = field(default="time-of-day", metadata={
        "help": "hold out periods of the day (time-of-day: test_periods) or dates (date: test_dates)"})
    test_periods: tuple[str, ...] = field(default=DEFAULT_TEST_PERIODS, metadata={
        "help": "time-of-day: held-out periods among night, morning, afternoon, evening, comma-separated "
                "(default: evening,night)"})
    test_dates: tuple[str, ...] = field(default=(), metadata={
        "help": "date: held-out dates, YYYY-MM-DD, comma-separated (default: the latest dates, a quarter of the clips)"})

    def __post_init__(self) -> None:
        for name in ("test_periods", "test_dates"):
            object.__setattr__(self, name, _names(name, getattr(self, name)))  # frozen: set once here
        if self.time_holdout not in TIME_HOLDOUTS:
            raise ap.ConfigError(f"--time-holdout must be one of {', '.join(TIME_HOLDOUTS)}, not {self.time_holdout!r}")
        unknown = sorted(set(self.test_periods) - set(ap.PERIOD_NAMES))
        if unknown or not self.test_periods:
            raise ap.ConfigError(f"--test-periods takes periods from {', '.join(ap.PERIOD_NAMES)}; "
                                 f"got {', '.join(self.test_periods) or 'none'}")
        for date in self.test_dates:
            if not _DATE.match(date):
                raise ap.ConfigError(f"--test-dates takes dates as YYYY-MM-DD, got {date!r}")
        # The hold-out not chosen reads nothing: a value for it is refused rather than stored as if it shaped the split.
        if self.time_holdout == "date" and self.test_periods != DEFAULT_TEST_PERIODS:
            raise _unread("--test-periods", "--time-holdout date holds out dates, not periods of the day (--test-dates)",
                          "test_periods", self.test_periods)
        if self.time_holdout == "time-of-day" and self.test_dates:
            raise _unread("--test-dates", "--time-holdout time-of-day holds out periods of the day (--test-periods); "
                          "dates need --time-holdout date", "test_dates", self.test_dates)


def _classes_by_city(dataset: ap.ClipDataset) -> tuple[dict[str, set[int]], dict[str, set[int]]]:
    """Per city: the classes its labeled clips teach, and the classes its known-label clips would test."""
    labels = dataset.label_indices()
    frame = pd.DataFrame({"city": dataset.meta["city"].to_numpy(), "y": labels,
                          "labeled": dataset.meta["labeled"].to_numpy()})
    frame = frame[frame["y"] >= 0]
    teaches = frame[frame["labeled"]].groupby("city")["y"].agg(set).to_dict()
    tests = frame.groupby("city")["y"].agg(set).to_dict()
    return teaches, tests


def _untaught_if_held(held: list[str], cities: list[str], teaches: dict, tests: dict) -> tuple[int, int]:
    """(classes tested but untaught, classes left to score) when ``held`` cities test and the rest train."""
    taught = set().union(*(teaches.get(c, set()) for c in cities if c not in held))
    tested = set().union(*(tests.get(c, set()) for c in held))
    return len(tested - taught), len(tested & taught)


def _fold_assignment(dataset: ap.ClipDataset, cities: list[str], folds: int, seed: int,
                     attempts: int = 200) -> list[list[str]]:
    """Cities dealt into ``folds`` folds; among seeded shuffles, the first whose every fold scores some class
    and leaves no tested class untaught, else the one that leaves fewest untaught."""
    teaches, tests = _classes_by_city(dataset)
    rng = np.random.default_rng(seed)

    def cost(assignment: list[list[str]]) -> int:
        total = 0
        for held in assignment:
            untaught, scored = _untaught_if_held(held, cities, teaches, tests)
            total += untaught if scored else 10_000  # a fold with nothing to score cannot run
        return total

    def deal() -> list[list[str]]:
        order = rng.permutation(cities)
        return [sorted(order[k::folds].tolist()) for k in range(folds)]

    return ap.best_draw(deal, cost, attempts)


def unseen_city(dataset: ap.ClipDataset, options: ap.ProtocolOptions) -> ap.Split:
    """Test on cities that never occur in training.

    Without ``test_cities`` the hold-out cities are drawn with the seed, preferring draws that test no
    class left untaught (classes and cities are entangled in real data); with ``folds`` every city is
    tested in exactly one fold.
    """
    cities = sorted(dataset.meta["city"].unique())
    city_col = dataset.meta["city"]
    test_cities = (options.plugin or UnseenCityOptions()).test_cities
    if options.folds and test_cities:
        raise ap.ConfigError(f"--test-cities: --folds {options.folds} chooses the test cities of every fold. Drop "
                             f"protocol.test_cities = {','.join(test_cities)}: a setting the run does not read is "
                             "refused, not stored as if it mattered")
    if options.folds:
        if not 2 <= options.folds <= len(cities):
            raise ap.ConfigError(f"--folds must be between 2 and the number of cities ({len(cities)}), got {options.folds}")
        if not 0 <= options.fold < options.folds:
            raise ap.ConfigError(f"--fold must be in [0, {options.folds}), got {options.fold}")
        held = _fold_assignment(dataset, cities, options.folds, options.seed)[options.fold]
        test = city_col.isin(held).to_numpy()
        return ap.Split(np.flatnonzero(~test), np.flatnonzero(test),
                        {"protocol": "unseen-city", "test_cities_held_out": held, "fold": options.fold,
                         "folds": options.folds})
    if test_cities:
        absent = sorted(set(test_cities) - set(cities))
        if absent:
            raise ap.ConfigError(f"test cities {absent} are not in {dataset.name!r}; its cities: {', '.join(cities)}")
        held = sorted(test_cities)
    else:
        if len(cities) < 2:
            raise ap.ConfigError(f"unseen-city needs at least 2 cities; {dataset.name!r} has {len(cities)}")
        rng = np.random.default_rng(options.seed)
        count = min(len(cities) - 1, max(1, int(round(options.test_fraction * len(cities)))))
        teaches, tests = _classes_by_city(dataset)
        held = ap.best_draw(lambda: sorted(rng.choice(cities, size=count, replace=False).tolist()),
                            lambda candidate: _untaught_if_held(candidate, cities, teaches, tests)[0], 500)
    test = city_col.isin(held).to_numpy()
    return ap.Split(np.flatnonzero(~test), np.flatnonzero(test), {"protocol": "unseen-city", "test_cities_held_out": held})


def unseen_time(dataset: ap.ClipDataset, options: ap.ProtocolOptions) -> ap.Split:
    """Test on times never seen in training: periods of the day, or dates.

    A group of the chosen level that spans held-out and kept times (a session from afternoon into
    evening) is tested on its held-out clips; its other clips train nothing, since they would put
    the group on both sides. They are counted in ``purged_clips``.
    """
    meta = dataset.meta
    own = options.plugin or UnseenTimeOptions()  # checked when made: a known hold-out, known periods, dates
    if own.time_holdout == "time-of-day":
        test = meta["period"].isin(own.test_periods).to_numpy()
        info = {"protocol": "unseen-time", "holdout": "time-of-day", "test_periods": sorted(own.test_periods)}
    else:
        dates = meta["timestamp"].dt.strftime("%Y-%m-%d")
        if own.test_dates:
            absent = sorted(set(own.test_dates) - set(dates))
            if absent:
                raise ap.ConfigError(f"--test-dates {', '.join(absent)}: no clip of {dataset.name!r} was recorded then "
                                     f"(dates run from {dates.min()} to {dates.max()})")
            chosen = sorted(own.test_dates)
        else:  # the latest dates holding about test_fraction of the clips
            cutoff = meta["timestamp"].dt.normalize().quantile(1.0 - options.test_fraction)
            chosen = sorted(d for d in dates.unique() if d >= cutoff.strftime("%Y-%m-%d"))
        test = dates.isin(chosen).to_numpy()
        info = {"protocol": "unseen-time", "holdout": "date", "test_dates": chosen}
    groups = dataset.groups(options.group_by)
    spanning = np.isin(groups, np.unique(groups[test])) & ~test
    info["purged_clips"] = int(spanning.sum())
    return ap.Split(np.flatnonzero(~test & ~spanning), np.flatnonzero(test), info)


@ap.hookimpl
def ascbench_protocols() -> list[ap.ProtocolSpec]:
    return [
        # Was "official": it is ascbench's own hold-out, not the challenge's split (the challenge ships no dev split
        # and no eval labels). The old name still resolves, so stored records and sweep specs keep working.
        ap.ProtocolSpec("session-holdout", session_holdout,
                        "a fixed hold-out of whole sessions (the coarsest grouping the dataset declares: city + day on "
                        "APSIPA, recordings where there are no sessions); a dataset's own published split where it "
                        "ships one", options=(), aliases=("official",)),
        ap.ProtocolSpec("unseen-city", unseen_city, "test cities never seen in training (--test-cities, --folds)",
                        options=("folds", "fold"), options_class=UnseenCityOptions,
                        shortcuts={"--test-cities": "test_cities"},
                        # a core config field once: stored records, sweep specs and config files still name it so
                        renamed={"test_cities": ("test_cities", [])}),
        ap.ProtocolSpec("all-labeled", all_labeled, "every labeled clip trains, nothing is scored: the model to submit "
                        "(then ascbench predict)", options=(), scored=False),
        ap.ProtocolSpec("unseen-time", unseen_time, "test times never seen in training (--test-periods, or --test-dates)",
                        options=(), options_class=UnseenTimeOptions,
                        shortcuts={"--time-holdout": "time_holdout", "--test-periods": "test_periods",
                                   "--test-dates": "test_dates"},
                        # core config fields once: stored records, sweep specs and config files still name them so
                        renamed={"time_holdout": ("time_holdout", "time-of-day"),
                                 "test_periods": ("test_periods", ["evening", "night"]),
                                 "test_dates": ("test_dates", [])}),
    ]
