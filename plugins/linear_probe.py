"""The ``linear-probe`` strategy: every pretrained weight fixed except the final classifier layer."""

from ascbench import hookimpl
from ascbench.specs import StrategySpec
from ascbench.job import TrainingJob


def linear_probe(job: TrainingJob):
    model = job.load_pretrained(job.build_model())
    job.freeze(model, keep_trainable="classifier")
    return job.fit(model, desc="linear-probe")


@hookimpl
def ascbench_strategies() -> list[StrategySpec]:
    return [StrategySpec("linear-probe", linear_probe, "pretrained model fixed; only the classifier layer trains", pretrains=True)]
