"""The standard protocols: official, unseen-city, unseen-time, and all-labeled (for a submission)."""

import ascbench.plugin as ap


@ap.hookimpl
def ascbench_protocols() -> list[ap.ProtocolSpec]:
    return [
        ap.ProtocolSpec("official", ap.official, "the dataset's own train/test split, else a fixed hold-out of whole groups",
                        options=()),
        ap.ProtocolSpec("unseen-city", ap.unseen_city, "test cities never seen in training (--test-cities, --folds)",
                        options=("test_cities", "folds", "fold")),
        ap.ProtocolSpec("all-labeled", ap.all_labeled, "every labeled clip trains, nothing is scored: the model to submit "
                        "(then ascbench predict)", options=(), scored=False),
        ap.ProtocolSpec("unseen-time", ap.unseen_time, "test times never seen in training (--test-periods, or --test-dates)",
                        options=("time_holdout", "test_periods", "test_dates")),
    ]
