"""The ``finetune`` strategy: pretrain on a source dataset, then fine-tune every weight on the target.

The pretraining stage is the dataset's declared source (``--pretrain-on`` to change it, or
``--pretrained CHECKPOINT``) and is cached across runs. Fine-tuning uses a lower learning rate
(``lr * strategy.lr_scale``, its own option) so the pretrained features are adapted rather than overwritten.
"""

from dataclasses import dataclass, field

import ascbench.plugin as ap


@dataclass(frozen=True)
class FinetuneOptions:
    """Set as ``--set strategy.lr_scale=0.1`` (or ``--finetune-lr-scale 0.1``)."""

    lr_scale: float = field(default=0.3, metadata={"help": "fine-tuning learning rate = --lr x this"})

    def __post_init__(self) -> None:
        if self.lr_scale <= 0:
            raise ValueError(f"strategy.lr_scale (--finetune-lr-scale) must be above 0, got {self.lr_scale}")


def pretrain_then_finetune(job: ap.TrainingJob):
    model = job.load_pretrained(job.build_model())
    scale = (job.options or FinetuneOptions()).lr_scale
    return job.fit(model, lr=job.config.lr * scale, desc="finetune")


@ap.hookimpl
def ascbench_strategies() -> list[ap.StrategySpec]:
    return [ap.StrategySpec("finetune", pretrain_then_finetune, "pretrain on the source dataset, then fine-tune all weights at a lower learning rate", pretrains=True,
                            options_class=FinetuneOptions, shortcuts={"--finetune-lr-scale": "lr_scale"},
                            renamed={"finetune_lr_scale": ("lr_scale", 0.3)})]
