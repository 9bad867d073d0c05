"""The standard protocols: official, unseen-city, unseen-time, and all-labeled (for a submission)."""

from ascbench import hookimpl
from ascbench.protocols import all_labeled, official, unseen_city, unseen_time
from ascbench.specs import ProtocolSpec


@hookimpl
def ascbench_protocols() -> list[ProtocolSpec]:
    return [
        ProtocolSpec("official", official, "the dataset's own train/test split, else a fixed hold-out of whole groups",
                     options=()),
        ProtocolSpec("unseen-city", unseen_city, "test cities never seen in training (--test-cities, --folds)",
                     options=("test_cities", "folds", "fold")),
        ProtocolSpec("all-labeled", all_labeled, "every labeled clip trains, nothing is scored: the model to submit "
                     "(then ascbench predict)", options=(), scored=False),
        ProtocolSpec("unseen-time", unseen_time, "test times never seen in training (--test-periods, or --test-dates)",
                     options=("time_holdout", "test_periods", "test_dates")),
    ]
