"""The standard protocols: official, unseen-city, unseen-time."""

from ascbench import hookimpl
from ascbench.protocols import official, unseen_city, unseen_time
from ascbench.specs import ProtocolSpec


@hookimpl
def ascbench_protocols() -> list[ProtocolSpec]:
    return [
        ProtocolSpec("official", official, "the dataset's own train/test split, else a fixed hold-out of whole groups",
                     options=()),
        ProtocolSpec("unseen-city", unseen_city, "test cities never seen in training (--test-cities, --folds)",
                     options=("test_cities", "folds", "fold")),
        ProtocolSpec("unseen-time", unseen_time, "test times never seen in training (--test-periods, or --test-dates)",
                     options=("time_holdout", "test_periods", "test_dates")),
    ]
