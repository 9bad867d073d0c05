"""The ``scratch`` strategy: random initialisation, trained on the labeled training clips."""

from ascbench import hookimpl
from ascbench.specs import StrategySpec
from ascbench.training import TrainingJob


def train_from_scratch(job: TrainingJob):
    model = job.build_model()
    job.fit(model, desc="scratch")
    return model


@hookimpl
def ascbench_strategies() -> list[StrategySpec]:
    return [StrategySpec("scratch", train_from_scratch, "train from random initialisation on the labeled clips")]
