"""The ``freeze`` strategy: pretrained feature extractor kept fixed; GRU, context and classifier train.

The model must expose ``feature_extractor`` (every built-in audio model does). Batch-norm statistics
of the frozen part stay fixed too.
"""

import ascbench.plugin as ap


def frozen_features(job: ap.TrainingJob):
    model = job.load_pretrained(job.build_model())
    job.freeze(model, keep_trainable="head")
    return job.fit(model, desc="freeze")


@ap.hookimpl
def ascbench_strategies() -> list[ap.StrategySpec]:
    return [ap.StrategySpec("freeze", frozen_features, "pretrained feature extractor frozen; the rest of the model trains", pretrains=True)]
