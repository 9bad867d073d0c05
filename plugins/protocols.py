"""The standard protocols: session-holdout (formerly official), unseen-city, unseen-time, and all-labeled (for a submission)."""

import ascbench.plugin as ap


@ap.hookimpl
def ascbench_protocols() -> list[ap.ProtocolSpec]:
    return [
        # Was "official": it is ascbench's own hold-out, not the challenge's split (the challenge ships no dev split
        # and no eval labels). The old name still resolves, so stored records and sweep specs keep working.
        ap.ProtocolSpec("session-holdout", ap.official,
                        "a fixed hold-out of whole sessions (the coarsest grouping the dataset declares: city + day on "
                        "APSIPA, recordings where there are no sessions); a dataset's own published split where it "
                        "ships one", options=(), aliases=("official",)),
        ap.ProtocolSpec("unseen-city", ap.unseen_city, "test cities never seen in training (--test-cities, --folds)",
                        options=("test_cities", "folds", "fold")),
        ap.ProtocolSpec("all-labeled", ap.all_labeled, "every labeled clip trains, nothing is scored: the model to submit "
                        "(then ascbench predict)", options=(), scored=False),
        ap.ProtocolSpec("unseen-time", ap.unseen_time, "test times never seen in training (--test-periods, or --test-dates)",
                        options=("time_holdout", "test_periods", "test_dates")),
    ]
