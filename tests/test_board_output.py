"""What a board shows: never a stale, mislabelled or unverified row (issues 29 and 30). Every test builds its own
small board from hand-made records (no training), so the file runs in seconds."""

from __future__ import annotations

import html
import json
import shutil
import subprocess

import numpy as np
import pytest

from ascbench.cli import main
from ascbench import metrics as metrics_module
from ascbench.publish import check, publish

TRUE = np.tile(np.arange(4), 15)  # 60 test clips, 4 classes, 3 clips per recording


def _metrics(seed: int, skill: float, sha: str = "aaa", fingerprint: str = "fp", salt: int = 0) -> dict:
    rng = np.random.default_rng(1000 * seed + int(100 * skill) + salt)
    predicted = np.where(rng.random(len(TRUE)) < skill, TRUE, (TRUE + 1) % 4)
    classes = np.unique(TRUE)
    macro = float(np.mean([np.mean(predicted[TRUE == c] == c) for c in classes]))
    matrix = np.zeros((4, 4), dtype=int)
    np.add.at(matrix, (TRUE, predicted), 1)
    return {
        # An honest record: every score its per-clip predictions determine agrees with them (ascbench.records).
        "accuracy": float(np.mean(predicted == TRUE)), "macro_accuracy": macro,
        "macro_f1": metrics_module.macro_f1(TRUE, predicted), "log_loss": 1.0, "num_clips": len(TRUE),
        "worst_city_accuracy": 0.3, "worst_period_accuracy": 0.3,
        "class_accuracy": {str(c): 0.5 for c in classes}, "confusion_matrix": matrix.tolist(),
        "test_predictions": {"row": list(range(len(TRUE))), "group": [f"r{i // 3}" for i in range(len(TRUE))],
                             "true": TRUE.tolist(), "predicted": predicted.tolist()},
        "provenance": {"git_commit": "0123456789abcdef", "plugins": [
            {"kind": "model", "name": "m", "plugin": "p", "distribution": "x", "version": "1", "source_sha256": sha}]},
        "timings": {"train_s": 1.0}, "dataset_fingerprint": fingerprint,
    }


def _record(model: str, seed: int, skill: float, finished: str, protocol: str = "official", strategy: str = "scratch",
            **kw) -> dict:
    metrics = _metrics(seed, skill, **kw)
    config = {"dataset": "embedded", "model": model, "strategy": strategy, "protocol": protocol, "seed": seed}
    run_id = f"{finished.replace(':', '')}-{model}-{strategy}-{protocol}-s{seed}"
    row = {"run_id": run_id, "finished": finished, "dataset": "embedded", "protocol": protocol, "model": model,
           "strategy": strategy, "semi": "none", "labeled": None, "seed": seed, "fold": None,
           "git_commit": "0123456789abcdef", "dataset_fingerprint": metrics["dataset_fingerprint"],
           "params": 1000, "macs": 2e6, "param_kb": 4.0, "latency_ms": 1.0, "train_s": 1.0, "metadata_ceiling": 0.25,
           "worst_city_accuracy": 0.3, "worst_period_accuracy": 0.3,
           **{k: metrics[k] for k in ("accuracy", "macro_accuracy", "macro_f1", "log_loss")}}
    return {"row": row, "config": config, "metrics": metrics}


def _board(tmp_path, records: list[dict], name: str = "board"):
    board = tmp_path / name
    (board / "results").mkdir(parents=True)
    for record in records:
        (board / "results" / f"{record['row']['run_id']}.json").write_text(json.dumps(record))
    publish(board)
    return board


def _claims_board(tmp_path, records: list[dict]):
    """A board of ``records`` with one claim: model ctx against plain."""
    board = tmp_path / "board"
    (board / "results").mkdir(parents=True)
    (board / "claims.toml").write_text('[[claim]]\nname = "context"\nkey = "model"\na = "ctx"\nb = "plain"\n')
    for r in records:
        (board / "results" / f"{r['row']['run_id']}.json").write_text(json.dumps(r))
    publish(board)
    return board


def _store(tmp_path, records: list[dict]):
    runs = tmp_path / "runs"
    runs.mkdir()
    with open(runs / "results.jsonl", "w") as table:
        for record in records:
            run_dir = runs / record["row"]["run_id"]
            run_dir.mkdir()
            (run_dir / "config.json").write_text(json.dumps(record["config"]))
            (run_dir / "metrics.json").write_text(json.dumps(record["metrics"]))
            table.write(json.dumps(record["row"]) + "\n")
    return runs


# --- 1. stale rows -------------------------------------------------------------------------------------------

def test_a_fixed_plugin_rerun_replaces_the_old_number(tmp_path):
    old = _record("m", 0, 0.3, "2026-01-01T00:00:00", sha="old")
    new = _record("m", 0, 0.9, "2026-02-01T00:00:00", sha="fixed")  # same config and seed, edited plugin
    md = (_board(tmp_path, [old, new]) / "leaderboard.md").read_text()
    shown = f"{100 * new['row']['macro_accuracy']:.1f}"
    assert shown in md and f"{100 * old['row']['macro_accuracy']:.1f}" not in md


def test_older_seeds_made_with_other_code_are_not_averaged_into_the_row(tmp_path):
    records = [_record("m", s, 0.3, f"2026-01-01T00:0{s}:00", sha="old") for s in range(3)]
    records.append(_record("m", 0, 0.9, "2026-02-01T00:00:00", sha="fixed"))
    from ascbench.publish import read_published
    from ascbench.leaderboard import aggregate

    board = tmp_path / "b"
    (board / "results").mkdir(parents=True)
    for r in records:
        (board / "results" / f"{r['row']['run_id']}.json").write_text(json.dumps(r))
    table = aggregate(read_published(board)[0])
    assert len(table) == 1 and table.iloc[0]["seeds"] == 1 and table.iloc[0]["superseded"] == 3
    assert table.iloc[0]["macro_accuracy"] == pytest.approx(records[-1]["row"]["macro_accuracy"])


def test_sweep_does_not_call_a_cell_stored_when_its_plugin_changed(tmp_path, registry):
    from ascbench.config import RunConfig
    from ascbench.runner import _plugin_provenance
    from ascbench.sweep import already_made

    cell = RunConfig.from_dict({"dataset": "embedded-tiny", "model": "mobileascnet-tiny", "strategy": "scratch"})
    record = _record("mobileascnet-tiny", 0, 0.5, "2026-01-01T00:00:00")
    record["config"] = cell.to_dict()
    record["row"].update(dataset=cell.dataset, protocol=cell.protocol)  # a row agrees with its run's config
    record["metrics"]["provenance"]["plugins"] = _plugin_provenance(cell, registry)
    from ascbench.device import Compute, ModelNeeds  # what every run records: the precision auto resolved to

    record["metrics"]["compute"] = {"precision": Compute.from_names(
        "auto", cell.precision, ModelNeeds.of(registry.model(cell.model))).precision}
    runs = _store(tmp_path, [record])
    assert already_made([cell], runs, registry=registry) == {0: ("stored", record["row"])}
    record["metrics"]["provenance"]["plugins"][0]["source_sha256"] = "before-the-fix"
    (runs / record["row"]["run_id"] / "metrics.json").write_text(json.dumps(record["metrics"]))
    assert already_made([cell], runs, registry=registry) == {}


# --- 2. records verify themselves ---------------------------------------------------------------------------

def test_check_refuses_a_record_whose_score_disagrees_with_its_predictions(tmp_path, capsys):
    good, bad = _record("a", 0, 0.6, "2026-01-01T00:00:00"), _record("b", 0, 0.5, "2026-01-01T00:01:00")
    board = _board(tmp_path, [good, bad])
    path = board / "results" / f"{bad['row']['run_id']}.json"
    bad["row"]["macro_accuracy"] = bad["metrics"]["macro_accuracy"] = 0.99  # edited in both places
    path.write_text(json.dumps(bad))
    problems = check(board)
    assert any(str(path) in p and "macro_accuracy" in p and "0.990000" in p and "per-clip predictions" in p
               for p in problems)
    assert main(["leaderboard", "--check", str(board)]) == 2


def test_a_damaged_record_is_named_not_a_traceback(tmp_path, capsys):
    board = _board(tmp_path, [_record("a", 0, 0.6, "2026-01-01T00:00:00"), _record("b", 0, 0.5, "2026-01-01T00:01:00")])
    damaged = sorted((board / "results").glob("*.json"))[0]
    damaged.write_text('{"row": {')
    assert any(str(damaged) in p and "is damaged: not JSON" in p for p in check(board))
    assert main(["leaderboard", "--check", str(board)]) == 2
    assert "JSONDecodeError" not in capsys.readouterr().err


def test_local_board_leaves_out_an_edited_row_and_a_damaged_record(tmp_path, monkeypatch, capsys):
    honest, edited, damaged = (_record("honest", 0, 0.5, "2026-01-01T00:00:00"),
                               _record("edited", 0, 0.4, "2026-01-01T00:01:00"),
                               _record("damaged", 0, 0.45, "2026-01-01T00:02:00"))
    edited["row"]["macro_accuracy"] = 0.99  # a hand-edited results row: must never rank best
    runs = _store(tmp_path, [honest, edited, damaged])
    (runs / damaged["row"]["run_id"] / "metrics.json").write_text("{not json")
    assert main(["leaderboard", "--runs-dir", str(runs), "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    assert "honest" in out and "edited" not in out and "damaged" not in out
    assert "macro_accuracy is 0.990000 in the results row" in err
    assert f"{runs / damaged['row']['run_id'] / 'metrics.json'} is damaged: not JSON" in err


# --- 3, 4. the page names its data, claims name their winner ------------------------------------------------

def test_every_rendering_names_the_synthetic_data_protocol_commit_and_date(tmp_path):
    board = _board(tmp_path, [_record("a", 0, 0.6, "2026-01-01T00:00:00"), _record("b", 0, 0.5, "2026-01-03T00:00:00")])
    for name in ("leaderboard.md", "leaderboard.tex", "index.html"):
        text = " ".join(html.unescape((board / name).read_text()).split())
        assert "procedurally generated synthetic audio" in text, name
        assert "a fixed hold-out of whole sessions" in text, name  # what `session-holdout` means, from its plugin
        assert "0123456789ab" in text and "2026-01-01" in text and "2026-01-03" in text, name


def test_claims_on_the_page_name_the_better_value(tmp_path):
    records = [_record(m, s, skill, f"2026-01-01T00:0{s}:00") for m, skill in (("ctx", 0.95), ("plain", 0.3))
               for s in range(3)]
    board = _claims_board(tmp_path, records)
    page, md = (board / "index.html").read_text(), (board / "leaderboard.md").read_text()
    assert "ctx better" in page and "ctx better" in md
    assert "a better" not in page and "b better" not in page


# --- 5, 6, 7. folds, untested, sorting ----------------------------------------------------------------------

def test_cross_city_folds_are_one_row_with_their_worst_fold():
    from ascbench.leaderboard import aggregate, setting_of

    rows = []
    for fold, acc in enumerate((0.4, 0.5, 0.6, 0.7)):
        config = {"dataset": "embedded", "model": "m", "strategy": "scratch", "protocol": "unseen-city",
                  "folds": 4, "fold": fold}
        rows.append({"run_id": f"r{fold}", "dataset": "embedded", "protocol": "unseen-city", "model": "m",
                     "strategy": "scratch", "semi": "none", "labeled": None, "seed": 0, "fold": f"{fold + 1}/4",
                     "accuracy": acc, "macro_accuracy": acc, "macro_f1": acc, "log_loss": 1.0, "params": 1,
                     "macs": 1, "param_kb": 1.0, **setting_of(config)})
    table = aggregate(rows)
    assert len(table) == 1
    row = table.iloc[0]
    assert row["folds"] == 4 and row["worst_fold"] == pytest.approx(0.4) and row["macro_accuracy"] == pytest.approx(0.55)
    assert row["setting_label"] == "default + folds=4"  # no 0-based fold number in the label


def test_untested_says_why_and_rows_on_other_seeds_pair_on_their_clips():
    from ascbench.leaderboard import aggregate
    from ascbench.publish import _row_of

    best = [_row_of(_record("best", s, 0.95, f"2026-01-01T00:0{s}:00")) for s in range(3)]
    later = [_row_of(_record("later", s, 0.3, f"2026-01-02T00:0{s}:00")) for s in (5, 6, 7)]
    blind = _record("blind", 0, 0.2, "2026-01-03T00:00:00")
    del blind["metrics"]["test_predictions"]
    table = aggregate([*best, *later, _row_of(blind)]).set_index("model")
    assert table.loc["later", "vs_best"] == "worse" and table.loc["later", "paired_on"] == "clips"
    assert table.loc["blind", "vs_best"] == "untested"
    assert table.loc["blind", "untested_why"] == "no per-clip predictions"


def test_sorting_never_mixes_protocol_sections():
    from ascbench.leaderboard import aggregate, sort_table
    from ascbench.publish import _row_of

    rows = [_row_of(_record(m, 0, skill, "2026-01-01T00:00:00", protocol=p))
            for p, m, skill in (("official", "a", 0.9), ("official", "b", 0.4), ("unseen-city", "c", 0.7),
                                ("unseen-city", "d", 0.2))]
    table = sort_table(aggregate(rows), "accuracy")
    # Records made under the old name "official" are rows of session-holdout, as today's runs are.
    assert list(table["protocol"]) == ["session-holdout", "session-holdout", "unseen-city", "unseen-city"]
    assert list(table["model"]) == ["a", "b", "c", "d"]


# --- 8, 9. export and plot ----------------------------------------------------------------------------------

def test_export_reports_macro_accuracy_and_only_the_protocols_settings(tmp_path, capsys):
    import yaml

    record = _record("a", 0, 0.6, "2026-01-01T00:00:00")
    record["metrics"].update(complexity={"params": 1, "macs_per_second": 1, "macs": 1,
                                         "param_bytes": {"float32": 4, "float16": 2}},
                             class_log_loss={str(c): 1.0 for c in range(4)}, city_accuracy={})
    record["row"].update(params=1, macs=1)  # as the row of a run with that complexity says
    record["config"]["test_cities"] = []  # as records stored it before it became unseen-city's option: not official's
    board = _board(tmp_path, [record])
    assert main(["export", record["row"]["run_id"], "--from", str(board)]) == 0
    meta = yaml.safe_load(capsys.readouterr().out)
    assert meta["results"]["development_dataset"]["overall"]["accuracy"] == round(100 * record["row"]["macro_accuracy"], 2)
    assert "test_cities" not in meta["system"]["description"]["ascbench_config"]


def test_plot_never_writes_into_a_run_folder(tmp_path, monkeypatch, capsys):
    record = _record("a", 0, 0.6, "2026-01-01T00:00:00")
    # A dataset not installed here: bars drawn without clip counts, nothing to load, a fast test.
    record["config"]["dataset"] = record["row"]["dataset"] = "not-installed"
    record["metrics"].update(city_accuracy={"x": 0.5}, period_accuracy={"night": 0.5, "morning": 0.6},
                             history=[{"stage": "pretrain", "epochs": [{"epoch": 1, "loss": 1.0}]},
                                      {"stage": "finetune", "epochs": [{"epoch": 1, "loss": 0.9}]}])
    runs = _store(tmp_path, [record])
    run_id = record["row"]["run_id"]
    monkeypatch.chdir(tmp_path)
    assert main(["plot", run_id, "--runs-dir", str(runs), "--output", str(runs / run_id)]) == 2
    assert "would write into the finished run" in capsys.readouterr().err
    assert sorted(p.name for p in (runs / run_id).iterdir()) == ["config.json", "metrics.json"]
    assert main(["plot", run_id, "--runs-dir", str(runs)]) == 0
    out = tmp_path / "plots" / run_id
    assert (out / "confusion_matrix.svg").is_file() and (out / "learning_curves.svg").is_file()
    assert main(["plot", run_id, "--runs-dir", str(runs)]) == 2  # no silent overwrite


def test_plots_order_periods_by_time_of_day_and_label_the_colour_scale():
    from ascbench.plots import confusion_matrix_plot, in_day_order

    assert in_day_order(["night", "afternoon", "morning", "evening"]) == ["morning", "afternoon", "evening", "night"]
    assert "row-normalised" in confusion_matrix_plot([[3, 1], [0, 4]], ["a", "b"])


# --- 10, 11. widths -------------------------------------------------------------------------------------------

def _wide_board(tmp_path):
    records = [_record(m, s, skill, f"2026-01-01T00:{s:02d}:00", strategy=st, sha="s")
               for m, skill in (("mobileascnet-early", 0.8), ("mobileascnet-gru", 0.6), ("context-only", 0.3))
               for st in ("finetune", "linear-probe") for s in range(2)]
    records[-1]["config"]["model_kwargs"] = {"channels": [8, 8, 8], "stem_channels": 8}  # a long setting label
    return _board(tmp_path, records)


def test_leaderboard_md_fits_100_columns_and_holds_no_json(tmp_path):
    md = (_wide_board(tmp_path) / "leaderboard.md").read_text()
    assert max(len(line) for line in md.splitlines()) <= 100
    assert '{"' not in md and "model.channels=[8,8,8]" in md


def test_the_page_fits_1280_pixels_without_sideways_scrolling(tmp_path):
    browser = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    if browser is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium)")
    board = _wide_board(tmp_path)
    page = (board / "index.html").read_text()
    probe = ("<script>window.addEventListener('load',()=>{const p=document.createElement('p');p.id='probe';"
             "p.textContent=document.documentElement.scrollWidth+'/'+window.innerWidth;document.body.appendChild(p);});"
             "</script></body>")
    (board / "probe.html").write_text(page.replace("</body>", probe))
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
                          f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", (board / "probe.html").as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    import re

    scroll, inner = map(int, re.search(r'id="probe">(\d+)/(\d+)<', dom).groups())
    assert scroll <= inner, f"page is {scroll} px wide in a {inner} px window"
    assert page.count("<th>dataset</th>") == 0 and page.count("<th>semi</th>") == 0  # constants in the header


def test_publish_refuses_a_run_whose_row_disagrees_with_its_record(tmp_path, capsys):
    good, edited = _record("good", 0, 0.5, "2026-01-01T00:00:00"), _record("edited", 0, 0.4, "2026-01-01T00:01:00")
    edited["row"]["accuracy"] = 0.95
    runs = _store(tmp_path, [good, edited])
    target = tmp_path / "board"
    assert main(["leaderboard", "--runs-dir", str(runs), "--publish", str(target), "--allow-nonstandard"]) == 2
    err = capsys.readouterr().err
    assert str(runs / edited["row"]["run_id"] / "metrics.json") in err and "accuracy is 0.950000" in err
    assert not (target / "results").exists()  # nothing published
    assert main(["leaderboard", "--runs-dir", str(runs), "--publish", str(target), "--model", "good"]) == 0


def test_chance_and_ceiling_are_one_line_when_equal_and_labels_never_overlap():
    from ascbench.plots import _label_offsets, _pyplot, _reference_lines

    plt = _pyplot()
    fig, ax = plt.subplots()
    _reference_lines(ax, 0.1, 0.1)
    assert [line.get_label() for line in ax.get_lines()] == ["chance = metadata ceiling (10.0 %)"]
    x, y = np.full(6, 1e6), np.array([40.0, 40.1, 40.2, 40.3, 55.0, 40.4])  # one crowded spot
    ax.set_xscale("log")
    ax.plot(x, y, "o")
    offsets = _label_offsets(x, y, ax, 6.5)
    heights = sorted(ax.transData.transform((xi, yi))[1] * 72 / fig.dpi + dy for (_, dy), xi, yi in zip(offsets, x, y))
    assert min(np.diff(heights)) >= 1.2 * 6.5 - 1e-6  # a line of text apart
    plt.close(fig)


def test_chance_averages_over_runs_that_score_different_classes(tmp_path):
    """unseen-city scores 3 to 5 classes per seed: chance is a uniform guess's macro accuracy averaged over runs,
    not one over the most classes any run scored."""
    records = [_record("a", s, 0.6, f"2026-01-01T00:0{s}:00") for s in range(2)]
    records[1]["metrics"]["class_accuracy"] = {"0": 0.5, "1": 0.5}  # this seed scores 2 classes, the other 4
    board = _board(tmp_path, records)
    text = " ".join((board / "leaderboard.md").read_text().split())
    assert "chance 37.5 %" in text  # (1/4 + 1/2) / 2, by hand
    assert check(board) == []


def test_claim_columns_are_the_paired_seeds_means_and_every_rendering_names_the_data(tmp_path):
    import csv

    records = [_record("ctx", s, 0.9, f"2026-01-01T00:0{s}:00") for s in range(5)]
    records += [_record("plain", s, 0.3, f"2026-01-02T00:0{s}:00") for s in range(3)]  # 3 seeds against 5
    board = _claims_board(tmp_path, records)
    from ascbench.claims import compare, read_claims
    from ascbench.publish import read_published
    from ascbench.leaderboard import aggregate

    line = compare(aggregate(read_published(board)[0]), read_claims(board / "claims.toml")[0]).iloc[0]
    by_hand = [np.mean([r["metrics"]["macro_accuracy"] for r in records if r["row"]["model"] == m and
                        r["row"]["seed"] < 3]) for m in ("ctx", "plain")]
    assert line["ctx %"] == round(100 * by_hand[0], 1) and line["plain %"] == round(100 * by_hand[1], 1)
    assert abs(line["ctx %"] - line["plain %"] - line["difference (points)"]) <= 0.11
    md, page = (board / "leaderboard.md").read_text(), html.unescape((board / "index.html").read_text())
    assert "## Claims on embedded (synthetic audio)" in md and "Claims on embedded (synthetic audio)" in page
    assert page.count("embedded (synthetic audio) — session-holdout: macro accuracy against MACs") == 1
    rows = list(csv.DictReader((board / "leaderboard.csv").open()))
    assert rows and all(r["audio"] == "synthetic audio" for r in rows)
    one_seed = _board(tmp_path, [_record("solo", 0, 0.6, "2026-01-01T00:00:00")], name="single")
    assert "nan" not in (one_seed / "leaderboard.tex").read_text()


def test_a_markdown_board_links_what_was_planted_and_the_link_resolves():
    from pathlib import Path

    from ascbench.board_table import dataset_note

    repo = Path(__file__).resolve().parent.parent
    note = dataset_note("embedded-apsipa", repo / "leaderboards", markdown=True)
    assert "[what was planted in it](../README.md#what-was-planted-in-the-built-in-data)" in note
    assert "### What was planted in the built-in data" in (repo / "README.md").read_text()
    assert "(what was planted in it: ../README.md#" in dataset_note("embedded-apsipa", repo / "leaderboards")  # LaTeX
