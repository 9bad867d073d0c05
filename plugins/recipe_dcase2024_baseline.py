"""Recipe: the DCASE 2024 Task 1 baseline's training (CPJKU/dcase2024_task1_baseline).

AdamW at 5e-3 (weight decay 1e-4) on a cosine schedule after a linear warm-up, batch 256, 150 epochs,
the last epoch kept; waveform roll of up to 0.1 s, frequency masks of up to 48 of the 256 mel bins
written at the front-end's floor, frequency MixStyle (p 0.4, alpha 0.3); the ``dcase2024`` front-end
(natural log of the HTK power mel) with no further normalisation.
"""

import ascbench.plugin as ap


@ap.hookimpl
def ascbench_recipes() -> list[ap.RecipeSpec]:
    return [ap.RecipeSpec(
        "dcase2024-baseline",
        settings={
            "strategy": "scratch", "optimizer": "adamw", "lr": 5e-3, "weight_decay": 1e-4, "scheduler": "cosine",
            "warmup_epochs": 3.67, "batch_size": 256, "epochs": 150, "patience": 0, "select_on": "last",
            "val_fraction": 0.0, "min_epoch_clips": 0, "city_dropout": 0.0,
            "feature_preset": "dcase2024", "normalization": "none",
            "roll_seconds": 0.1, "freq_mask": 48, "time_mask": 0, "mask_value": "floor",
            "mixstyle_p": 0.4, "mixstyle_alpha": 0.3, "mixup_alpha": 0.0, "semi": "none",
        },
        description="DCASE 2024 Task 1 baseline training: AdamW 5e-3, cosine with warm-up, batch 256, 150 epochs, "
                    "last epoch kept, roll 0.1 s, frequency masks <= 48 bins, frequency MixStyle 0.4/0.3",
        source="CPJKU/dcase2024_task1_baseline (commit 9948d19)",
        identical="front-end (to 6.6e-5), CP-Mobile architecture and official weights (logits exact), optimiser, "
                  "peak rate, weight decay, batch size, epochs, last-epoch model, MixStyle, mask width",
        departures=(
            ap.Departure("warm-up is 3.67 epochs, the official 2,000 steps on the full (100 %) split of 139,620 clips at batch "
                      "256, given in epochs so it scales with the data (the official code asks users to divide the steps by "
                      "the subset size by hand)", ("warmup_epochs",)),
            ap.Departure("roll is of feature frames (quantised to the 15.6 ms hop, circular) because features are cached; the "
                      "official rolls the waveform before its front-end", ("roll_seconds",)),
            ap.Departure("a mask writes the clip's own minimum feature; the official masks the mel power before its log, which "
                      "gives exactly ln(1e-5): equal wherever the clip has a silent bin", ("mask_value",)),
            "evaluation runs in float32; the official evaluates in float16 to fit its 128 kB parameter budget",
            "the official subset files (5-100 %) are TAU Urban's own; use --labeled for a labeled fraction",
        ),
        from_source=("strategy", "optimizer", "lr", "weight_decay", "scheduler", "batch_size", "epochs", "patience",
                     "select_on", "val_fraction", "min_epoch_clips", "city_dropout", "feature_preset", "normalization",
                     "freq_mask", "time_mask", "mixstyle_p", "mixstyle_alpha", "mixup_alpha", "semi"),
        options_class=ap.BudgetOptions, configure=ap.configure_budget,
    )]
