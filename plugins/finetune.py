"""The ``finetune`` strategy: pretrain on a source dataset, then fine-tune every weight on the target.

The pretraining stage is the dataset's declared source (``--pretrain-on`` to change it, or
``--pretrained CHECKPOINT``) and is cached across runs. Fine-tuning uses a lower learning rate
(``lr * finetune_lr_scale``) so the pretrained features are adapted rather than overwritten.
"""

import logging

from ascbench import hookimpl
from ascbench.specs import StrategySpec
from ascbench.training import TrainingJob, load_compatible

log = logging.getLogger("ascbench")


def pretrain_then_finetune(job: TrainingJob):
    model = job.build_model()
    fresh = load_compatible(model, job.pretrained_state())
    if fresh:
        log.info("not taken from pretraining (shape differs, e.g. the city vocabulary): %s", ", ".join(fresh))
    job.notes["reinitialised_after_pretraining"] = fresh
    job.fit(model, lr=job.config.lr * job.config.finetune_lr_scale, desc="finetune")
    return model


@hookimpl
def ascbench_strategies() -> list[StrategySpec]:
    return [StrategySpec("finetune", pretrain_then_finetune, "pretrain on the source dataset, then fine-tune all weights at a lower learning rate")]
