"""The ``scratch`` strategy: random initialisation, trained on the target's training clips."""

from ascbench import hookimpl
from ascbench.specs import StrategySpec
from ascbench.job import TrainingJob


def train_from_scratch(job: TrainingJob):
    return job.fit(job.build_model(), desc="scratch")


@hookimpl
def ascbench_strategies() -> list[StrategySpec]:
    return [StrategySpec("scratch", train_from_scratch, "train from random initialisation", pretrains=False)]
