"""Recipes: named training settings that fill every field a run does not set itself, recorded with the run."""

import json

import numpy as np
import pytest
import soundfile as sf

from ascbench.cli import main
from ascbench.config import RunConfig
from ascbench.errors import ConfigError
from ascbench.specs import RecipeSpec

RECIPES = ("apsipa2025-baseline", "dcase2024-baseline", "li2026")


@pytest.mark.parametrize("name", RECIPES)
def test_every_shipped_recipe_is_a_valid_config_with_its_source_and_departures(registry, name):
    spec = registry.recipe(name)
    config = RunConfig.from_dict({"recipe": name, "dataset": "embedded"})
    assert all(config.value(k) == (tuple(v) if isinstance(v, list) else v) for k, v in spec.settings.items())
    assert spec.source and spec.identical and spec.departures
    for dataset in spec.per_dataset:
        RunConfig.from_dict({"recipe": name, "dataset": dataset})


def test_explicit_fields_win_over_the_recipe():
    config = RunConfig.from_dict({"recipe": "apsipa2025-baseline", "epochs": 3, "lr": 3e-3})
    assert (config.epochs, config.lr, config.optimizer, config.scheduler) == (3, 3e-3, "adam", "step")


def test_per_dataset_settings_apply_only_to_their_dataset():
    assert RunConfig.from_dict({"recipe": "li2026", "dataset": "apsipa2025"}).pretrain_on == "tau-urban,cochlscene"
    assert RunConfig.from_dict({"recipe": "li2026", "dataset": "embedded"}).pretrain_on is None


def test_an_unknown_recipe_names_the_valid_ones():
    with pytest.raises(Exception, match="apsipa2025-baseline"):
        RunConfig.from_dict({"recipe": "apsipa-baseline"})


def test_a_recipe_may_not_choose_the_seed_or_the_data():
    with pytest.raises(ValueError, match="seed"):
        RecipeSpec("bad", {"seed": 3})


def test_unknown_field_suggests_the_right_one():
    with pytest.raises(ConfigError, match="did you mean weight_decay"):
        RunConfig.from_dict({"weight_decy": 0.1})


def test_the_budget_option_scales_every_epoch_count_alike():
    config = RunConfig.from_dict({"recipe": "li2026", "recipe.budget": 0.1})
    assert (config.epochs, config.pretrain_epochs, config.step_epochs, config.patience) == (10, 10, 1, 1)
    assert config.options["recipe"] == {"budget": 0.1}  # saved with the run: another budget, another experiment
    dcase = RunConfig.from_dict({"recipe": "dcase2024-baseline", "recipe.budget": 0.1})
    assert dcase.epochs == 15 and dcase.warmup_epochs == pytest.approx(0.367) and dcase.patience == 0  # 0: off, stays off
    published = RunConfig.from_dict({"recipe": "dcase2024-baseline"})
    assert (published.epochs, published.warmup_epochs) == (150, 3.67) and published.options == {}


def test_a_recipe_option_of_its_own_and_explicit_fields_over_it():
    plain = RunConfig.from_dict({"recipe": "li2026", "recipe.augment": False})
    assert (plain.roll_seconds, plain.mixup_alpha, plain.freq_mask, plain.time_mask) == (0.0, 0.0, 0, 0)
    assert RunConfig.from_dict({"recipe": "li2026", "recipe.augment": False, "mixup_alpha": 0.2}).mixup_alpha == 0.2


@pytest.mark.parametrize("data, message", [
    ({"recipe": "li2026", "recipe.budget": 0}, "recipe.budget must be in"),
    ({"recipe": "li2026", "recipe.budgit": 0.5}, "did you mean recipe.budget"),
    ({"recipe": "li2026", "recipe.augment": "no"}, "recipe.augment of recipe 'li2026' must be bool"),
    ({"recipe.budget": 0.5}, "names no recipe"),
])
def test_bad_recipe_options_are_refused_naming_the_option(data, message):
    from ascbench.options import resolve_all
    from ascbench.registry import get_registry

    with pytest.raises(ConfigError, match=message):
        resolve_all(RunConfig.from_dict(data), get_registry())  # from_dict already refuses all but the last


def test_cli_recipe_typed_flags_and_set_are_recorded(runs, capsys):
    # --lr typed at ascbench's default still wins over the recipe's 1e-4: typed flags are told from defaults.
    code = main(["run", "--recipe", "apsipa2025-baseline", "--model", "se-trans", "--dataset", "embedded-tiny",
                 "--epochs", "2", "--lr", "3e-3", "--set", "val_fraction=0.2", "--set", "model_kwargs={\"channels\": [8, 16]}",
                 "--no-progress"])
    assert code == 0
    run_dir = next(p for p in runs.iterdir() if p.is_dir() and not p.name.startswith("."))
    config = json.loads((run_dir / "config.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert config["recipe"] == "apsipa2025-baseline" and config["lr"] == 3e-3 and config["val_fraction"] == 0.2
    assert config["optimizer"] == "adam" and config["normalization"] == "input-bn" and config["feature_preset"] == "apsipa2025"
    # val_fraction is the recipe's own setting now (0.15, declared), so --set val_fraction=0.2 overrides it too.
    assert metrics["recipe"]["overridden"] == {"lr": 3e-3, "epochs": 2, "val_fraction": 0.2}
    assert metrics["features"]["log"] == "db10" and metrics["features"]["top_db"] == 80.0
    stages = metrics["strategy_notes"]["stages"]
    assert [s["semi"] for s in stages] == ["pseudo-label", "pseudo-label"]  # labeled, then one round on every clip
    assert metrics["strategy_notes"]["pseudo_label_rounds"][0]["selected"] == metrics["split"]["unlabeled"]


def test_dcase_recipe_runs_on_cp_mobile(runs):
    assert main(["run", "--recipe", "dcase2024-baseline", "--model", "cp-mobile", "--dataset", "embedded-tiny",
                 "--epochs", "2", "--set", "model_kwargs={\"base_channels\": 8}", "--set", "recipe.budget=0.1",
                 "--no-progress"]) == 0
    run_dir = next(p for p in runs.iterdir() if p.is_dir() and not p.name.startswith("."))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["recipe"]["options"] == {"budget": 0.1} and metrics["recipe"]["settings"]["epochs"] == 15
    assert metrics["recipe"]["overridden"] == {"epochs": 2}
    assert metrics["features"]["log"] == "ln" and metrics["features"]["n_mels"] == 256
    assert metrics["strategy_notes"]["stages"][0]["best_epoch"] == 2  # the last epoch is kept


def test_li2026_recipe_finetunes_mobileascnet(runs):
    assert main(["run", "--recipe", "li2026", "--model", "mobileascnet", "--dataset", "embedded-tiny", "--epochs", "2",
                 "--pretrain-epochs", "1", "--set", "model_kwargs={\"stem_channels\": 8, \"channels\": [8, 16, 16], \"gru_hidden\": 16}",
                 "--no-progress"]) == 0
    run_dir = next(p for p in runs.iterdir() if p.is_dir() and not p.name.startswith("."))
    config = json.loads((run_dir / "config.json").read_text())
    assert config["strategy"] == "finetune" and config["pretrain_classes"] == "target" and config["roll_seconds"] == 0.5
