"""The ``linear-probe`` strategy: every pretrained weight fixed except the final classifier layer."""

import ascbench.plugin as ap


def linear_probe(job: ap.TrainingJob):
    model = job.load_pretrained(job.build_model())
    job.freeze(model, keep_trainable="classifier")
    return job.fit(model, desc="linear-probe")


@ap.hookimpl
def ascbench_strategies() -> list[ap.StrategySpec]:
    return [ap.StrategySpec("linear-probe", linear_probe, "pretrained model fixed; only the classifier layer trains", pretrains=True)]
