"""The ``finetune`` strategy: pretrain on a source dataset, then fine-tune every weight on the target.

The pretraining stage is the dataset's declared source (``--pretrain-on`` to change it, or
``--pretrained CHECKPOINT``) and is cached across runs. Fine-tuning uses a lower learning rate
(``lr * finetune_lr_scale``) so the pretrained features are adapted rather than overwritten.
"""

from ascbench import hookimpl
from ascbench.specs import StrategySpec
from ascbench.job import TrainingJob


def pretrain_then_finetune(job: TrainingJob):
    model = job.load_pretrained(job.build_model())
    return job.fit(model, lr=job.config.lr * job.config.finetune_lr_scale, desc="finetune")


@hookimpl
def ascbench_strategies() -> list[StrategySpec]:
    return [StrategySpec("finetune", pretrain_then_finetune, "pretrain on the source dataset, then fine-tune all weights at a lower learning rate", pretrains=True)]
