"""Intervals and paired tests against independent computations: scikit-learn's balanced accuracy, scipy's exact
binomial test (McNemar), an exhaustive enumeration of every swap, a plain-loop bootstrap, and power tables."""

import itertools

import numpy as np
import pytest
from scipy import stats as scipy_stats
from sklearn.metrics import balanced_accuracy_score

from ascbench.leaderboard import aggregate
from ascbench.metrics import macro_accuracy
from ascbench.stats import RunPredictions, bootstrap_interval, paired_test, seeds_needed


def _run(seed, true, predicted, groups=None, rows=None):
    true, predicted = np.asarray(true), np.asarray(predicted)
    rows = np.arange(len(true)) if rows is None else np.asarray(rows)
    groups = rows.astype(str) if groups is None else np.asarray(groups, dtype=str)
    return RunPredictions(seed, rows, groups, true, predicted)


def test_macro_accuracy_is_balanced_accuracy():
    rng = np.random.default_rng(0)
    true, predicted = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    assert macro_accuracy(true, predicted) == pytest.approx(balanced_accuracy_score(true, predicted), abs=1e-12)


def test_paired_test_on_micro_accuracy_with_one_clip_per_recording_is_mcnemars_exact_test():
    # 12 clips only A gets right, 4 only B, 30 both, 14 neither.
    a_right = np.array([1] * 12 + [0] * 4 + [1] * 30 + [0] * 14, dtype=bool)
    b_right = np.array([0] * 12 + [1] * 4 + [1] * 30 + [0] * 14, dtype=bool)
    true = np.zeros(60, dtype=int)
    a, b = _run(0, true, np.where(a_right, 0, 1)), _run(0, true, np.where(b_right, 0, 1))
    test = paired_test([a], [b], 2, draws=200_000, statistic="micro")
    exact = scipy_stats.binomtest(12, 16, 0.5).pvalue
    assert test.difference == pytest.approx(8 / 60)
    assert test.p_value == pytest.approx(exact, abs=0.004)  # Monte Carlo error at 200k draws: about 0.0006


def test_paired_macro_test_matches_an_exhaustive_enumeration_of_swaps():
    """Every one of the 2^8 ways of swapping the two systems' predictions recording by recording, each
    scored from scratch with scikit-learn: the exact p-value the randomisation test estimates."""
    rng = np.random.default_rng(3)
    groups = np.repeat([f"rec{i}" for i in range(8)], 3)
    true = rng.integers(0, 3, len(groups))
    pred_a = np.where(rng.random(len(groups)) < 0.75, true, (true + 1) % 3)
    pred_b = np.where(rng.random(len(groups)) < 0.45, true, (true + 2) % 3)
    observed = balanced_accuracy_score(true, pred_a) - balanced_accuracy_score(true, pred_b)
    extreme = 0
    for swap in itertools.product([False, True], repeat=8):
        swapped = np.repeat(swap, 3)
        a, b = np.where(swapped, pred_b, pred_a), np.where(swapped, pred_a, pred_b)
        extreme += abs(balanced_accuracy_score(true, a) - balanced_accuracy_score(true, b)) >= abs(observed) - 1e-12
    exact = extreme / 256
    test = paired_test([_run(0, true, pred_a, groups)], [_run(0, true, pred_b, groups)], 3, draws=100_000)
    assert test.difference == pytest.approx(observed, abs=1e-12)
    assert test.p_value == pytest.approx(exact, abs=0.01)


def test_paired_test_pairs_seeds_and_clips_and_refuses_what_cannot_pair():
    true = np.array([0, 1, 0, 1])
    a = [_run(0, true, true), _run(1, true, true)]
    b = [_run(1, true, 1 - true), _run(2, true, 1 - true)]
    test = paired_test(a, b, 2, draws=1000)
    assert test.seeds == 1 and test.per_seed == (1.0,)  # only seed 1 is in both
    other_clips = [_run(1, true, 1 - true, rows=[4, 5, 6, 7])]
    assert paired_test(a, other_clips, 2) is None
    from_matrix = RunPredictions.from_metrics(1, {"confusion_matrix": [[2, 0], [0, 2]]})
    assert not from_matrix.per_clip and paired_test(a, [from_matrix], 2) is None


def test_bootstrap_interval_agrees_with_a_plain_loop_bootstrap():
    rng = np.random.default_rng(5)
    runs = []
    for seed, skill in enumerate((0.55, 0.7, 0.62)):
        groups = np.repeat(np.arange(40), 3).astype(str)
        true = np.repeat(rng.integers(0, 4, 40), 3)
        predicted = np.where(rng.random(120) < skill, true, rng.integers(0, 4, 120))
        runs.append(_run(seed, true, predicted, groups))
    low, high = bootstrap_interval(runs, 4, draws=4000)
    plain = []
    loop_rng = np.random.default_rng(11)
    for _ in range(1500):  # seeds with replacement, then recordings with replacement within each
        scores = []
        for run in (runs[i] for i in loop_rng.integers(0, 3, 3)):
            names = np.unique(run.groups)
            picked = np.concatenate([np.flatnonzero(run.groups == g) for g in loop_rng.choice(names, len(names))])
            scores.append(balanced_accuracy_score(run.true[picked], run.predicted[picked]))
        plain.append(np.mean(scores))
    assert low == pytest.approx(np.quantile(plain, 0.025), abs=0.015)
    assert high == pytest.approx(np.quantile(plain, 0.975), abs=0.015)
    assert bootstrap_interval([_run(0, [0, 1, 2], [0, 1, 2])], 3) == (1.0, 1.0)  # always right: no spread


def test_seeds_needed_matches_the_power_tables():
    # A paired t-test needs 10 pairs for 80 % power at effect size 1 (two-sided, alpha 0.05) and 34 at 0.5
    # (Cohen's tables); each list has standard deviation 1 and the mean is the effect size.
    assert seeds_needed([0.0, 1.0, 2.0]) == 10
    assert seeds_needed([-0.5, 0.5, 1.5]) == 34
    assert seeds_needed([1.0]) is None and seeds_needed([0.1, -0.1]) is None


def test_leaderboard_rows_get_intervals_and_marks_from_their_predictions():
    true = np.tile(np.arange(4), 30)
    rng = np.random.default_rng(1)

    def row(model, seed, skill):
        predicted = np.where(rng.random(len(true)) < skill, true, (true + 1) % 4)
        return {"run_id": f"{model}-{seed}", "dataset": "d", "protocol": "official", "model": model,
                "strategy": "scratch", "semi": "none", "labeled": None, "seed": seed, "setting": "x",
                "setting_label": "default", "accuracy": float(np.mean(predicted == true)),
                "macro_accuracy": macro_accuracy(true, predicted), "macro_f1": 0.5, "log_loss": 1.0,
                "params": 1, "macs": 1, "param_kb": 1.0, "_predictions": _run(seed, true, predicted)}

    rows = [row("strong", s, 0.9) for s in range(3)] + [row("close", s, 0.88) for s in range(3)] + \
           [row("weak", s, 0.4) for s in range(3)]
    table = aggregate(rows).set_index("model")
    assert table.loc["strong", "vs_best"] == "best"
    assert table.loc["close", "vs_best"] == "tied" and table.loc["close", "p_vs_best"] >= 0.05
    assert table.loc["weak", "vs_best"] == "worse" and table.loc["weak", "p_vs_best"] < 0.001
    assert table.loc["weak", "ci_low"] < table.loc["weak", "macro_accuracy"] < table.loc["weak", "ci_high"]
    assert table.loc["weak", "ci_over"] == "recordings"


def test_a_claim_pairs_rows_that_differ_only_in_its_column(tmp_path):
    from ascbench.claims import Claim, compare, read_claims
    from ascbench.errors import ConfigError

    true = np.tile(np.arange(4), 30)
    rng = np.random.default_rng(2)

    def row(model, strategy, seed, skill):
        predicted = np.where(rng.random(len(true)) < skill, true, (true + 1) % 4)
        return {"run_id": f"{model}-{strategy}-{seed}", "dataset": "d", "protocol": "official", "model": model,
                "strategy": strategy, "semi": "none", "labeled": None, "seed": seed, "setting": f"{model}{strategy}",
                "setting_label": "default", "accuracy": float(np.mean(predicted == true)),
                "macro_accuracy": macro_accuracy(true, predicted), "macro_f1": 0.5, "log_loss": 1.0,
                "params": 1, "macs": 1, "param_kb": 1.0, "_predictions": _run(seed, true, predicted)}

    rows = [row(m, st, s, skill) for (m, st, skill) in (("ctx", "scratch", 0.9), ("plain", "scratch", 0.5),
                                                        ("ctx", "finetune", 0.7), ("plain", "finetune", 0.69))
            for s in range(3)]
    lines = compare(aggregate(rows), Claim("context", "model", "ctx", "plain")).set_index("strategy")
    assert len(lines) == 2  # one pair per strategy; rows of different strategies are never paired
    assert lines.loc["scratch", "verdict"] == "ctx better" and lines.loc["scratch", "p"] == "< 0.001"
    assert lines.loc["finetune", "verdict"] == "unresolved" and int(lines.loc["finetune", "seeds paired"]) == 3
    assert lines.loc["scratch", "difference (points)"] > 30
    bad = tmp_path / "claims.toml"
    bad.write_text('[[claim]]\nname = "x"\nkey = "colour"\na = "red"\nb = "blue"\n')
    with pytest.raises(ConfigError, match="key 'colour' is not a row column"):
        read_claims(bad)
