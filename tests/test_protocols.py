import numpy as np
import pytest

from ascbench.errors import ConfigError
from ascbench.protocols import ProtocolOptions, partition
from ascbench_plugins.protocols import UnseenCityOptions, UnseenTimeOptions, unseen_city, unseen_time
from ascbench_plugins.protocols import session_holdout as official


def _groups(ds, rows):
    return set(ds.meta["group"].iloc[rows])


def _column(ds, rows, col):
    return set(ds.meta[col].iloc[rows])


def test_official_uses_the_dataset_split_and_never_shares_a_recording(tiny):
    split = official(tiny, ProtocolOptions())
    assert set(tiny.meta["split"].iloc[split.test]) == {"test"}
    assert set(tiny.meta["split"].iloc[split.train]) == {"train"}
    assert not _groups(tiny, split.train) & _groups(tiny, split.test)


def test_unseen_city_holds_out_whole_cities(tiny):
    split = unseen_city(tiny, ProtocolOptions(seed=3))
    train_cities, test_cities = _column(tiny, split.train, "city"), _column(tiny, split.test, "city")
    assert train_cities and test_cities and not train_cities & test_cities
    assert train_cities | test_cities == set(tiny.meta["city"])
    assert split.info["test_cities_held_out"] == sorted(test_cities)


def test_unseen_city_is_deterministic_and_seed_dependent(tiny):
    a = unseen_city(tiny, ProtocolOptions(seed=1)).info["test_cities_held_out"]
    assert a == unseen_city(tiny, ProtocolOptions(seed=1)).info["test_cities_held_out"]
    seen = {tuple(unseen_city(tiny, ProtocolOptions(seed=s)).info["test_cities_held_out"]) for s in range(6)}
    assert len(seen) > 1


def test_unseen_city_explicit_cities(tiny):
    city = sorted(tiny.meta["city"].unique())[0]
    split = unseen_city(tiny, ProtocolOptions(plugin=UnseenCityOptions(test_cities=(city,))))
    assert _column(tiny, split.test, "city") == {city}
    with pytest.raises(ConfigError, match="Atlantis"):
        unseen_city(tiny, ProtocolOptions(plugin=UnseenCityOptions(test_cities=("Atlantis",))))


def test_unseen_time_of_day(tiny):
    split = unseen_time(tiny, ProtocolOptions())
    assert _column(tiny, split.test, "period") == {"evening", "night"}
    assert _column(tiny, split.train, "period") == {"morning", "afternoon"}


def test_unseen_time_by_date(tiny):
    split = unseen_time(tiny, ProtocolOptions(plugin=UnseenTimeOptions(time_holdout="date")))
    ts = tiny.meta["timestamp"].dt.normalize()
    assert ts.iloc[split.train].max() < ts.iloc[split.test].min()
    assert not _groups(tiny, split.train) & _groups(tiny, split.test)


def test_labeled_fraction_is_per_class_and_validation_comes_from_labeled_training_clips(registry):
    from ascbench.data.dataset import DatasetOptions

    ds = registry.dataset("embedded").load(DatasetOptions())
    split = official(ds, ProtocolOptions())
    part = partition(ds, split, labeled_fraction=0.5, val_fraction=0.15, seed=0)
    labels = ds.label_indices()
    train_labels = labels[split.train]
    for c in range(10):
        n_train = int(np.sum(train_labels == c))
        n_labeled = int(np.sum(labels[part.labeled] == c) + np.sum(labels[part.val] == c))
        assert n_labeled == round(0.5 * n_train)
    test = set(part.test)
    for rows in (part.labeled, part.unlabeled, part.val):
        assert not test & set(rows)  # nothing of the test side in any training role
    assert not _groups(ds, part.val) & (_groups(ds, part.labeled) | _groups(ds, part.unlabeled))
    assert len(part.val) > 0


def test_default_labels_are_the_datasets_own(tiny):
    split = official(tiny, ProtocolOptions())
    part = partition(tiny, split, None, 0.0, 0)
    assert tiny.meta["labeled"].iloc[part.labeled].all()
    assert not tiny.meta["labeled"].iloc[part.unlabeled].any()


def test_bad_labeled_fraction(tiny):
    with pytest.raises(ConfigError, match="--labeled"):
        partition(tiny, official(tiny, ProtocolOptions()), 1.5, 0.1, 0)


def test_cross_city_folds_test_every_city_once(tiny):
    cities = set(tiny.meta["city"])
    tested = []
    for k in range(3):
        split = unseen_city(tiny, ProtocolOptions(folds=3, fold=k, seed=2))
        held = set(split.info["test_cities_held_out"])
        assert not held & _column(tiny, split.train, "city")
        tested.extend(held)
    assert sorted(tested) == sorted(cities)
    with pytest.raises(ConfigError, match="--folds"):
        unseen_city(tiny, ProtocolOptions(folds=99))


@pytest.mark.parametrize("given", ["Taipei,Beijing", "Beijing,Taipei,Beijing", ["Taipei", " Beijing", "Taipei"]])
def test_held_out_names_are_a_set_one_experiment_however_written(given):
    """Reordered or repeated hold-out names are the same split, so they must be one config digest (one board row,
    one sweep cell), not a second identity."""
    from ascbench.config import RunConfig

    written = RunConfig.from_dict({"protocol": "unseen-city", "protocol.test_cities": given})
    plain = RunConfig.from_dict({"protocol": "unseen-city", "protocol.test_cities": "Beijing,Taipei"})
    assert written.digest() == plain.digest()
    periods = [UnseenTimeOptions(test_periods=p).test_periods for p in ("night,evening", ["evening", "night", "night"])]
    assert periods == [("evening", "night")] * 2
