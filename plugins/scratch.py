"""The ``scratch`` strategy: random initialisation, trained on the target's training clips."""

import ascbench.plugin as ap


def train_from_scratch(job: ap.TrainingJob):
    return job.fit(job.build_model(), desc="scratch")


@ap.hookimpl
def ascbench_strategies() -> list[ap.StrategySpec]:
    return [ap.StrategySpec("scratch", train_from_scratch, "train from random initialisation", pretrains=False)]
