"""Publishing leaderboards: byte-identical regeneration, and a check that catches an edited number."""

import json

import pytest

from ascbench.cli import main
from ascbench.plots import pareto_front
from ascbench.publish import check, publish

TINY = ["--dataset", "embedded-tiny", "--epochs", "1", "--no-progress", "--strategy", "scratch"]


@pytest.fixture
def published(runs, tmp_path):
    for model, seed in (("context-only", "0"), ("context-only", "1"), ("mobileascnet-cnn", "0")):
        args = ["run", "--model", model, "--seed", seed, *TINY]
        if model == "mobileascnet-cnn":
            args += ["--model-arg", "channels=[8,8,8]", "--model-arg", "stem_channels=8"]
        assert main(args) == 0
    target = tmp_path / "board"
    # 1-epoch smoke runs with model arguments: not the defaults, so publishing them has to be asked for.
    assert main(["leaderboard", "--publish", str(target)]) == 2
    assert not (target / "results").exists()
    assert main(["leaderboard", "--publish", str(target), "--allow-nonstandard"]) == 0
    return target


def test_nonstandard_runs_are_refused_then_marked_by_their_setting(published, capsys):
    md = (published / "leaderboard.md").read_text()
    assert "default + epochs=1" in md
    assert "default + epochs=1, model.channels=[8,8,8], model.stem_channels=8" in md


def test_publish_writes_tables_records_and_a_self_contained_page(published):
    assert len(list((published / "results").glob("*.json"))) == 3
    record = json.loads(next((published / "results").glob("*.json")).read_text())
    assert {"row", "config", "metrics"} <= set(record)
    md = (published / "leaderboard.md").read_text()
    assert "context-only" in md and "mobileascnet-cnn" in md and "± " in md
    page = (published / "index.html").read_text()
    assert "<svg" in page and "sortBy" in page and '<section class="board"' in page
    assert 'src="http' not in page and "<link" not in page  # nothing fetched from a network: the page is self-contained
    assert "\\begin{tabular}" in (published / "leaderboard.tex").read_text()


def test_regeneration_is_byte_identical(published):
    before = {p.name: p.read_bytes() for p in published.iterdir() if p.is_file()}
    publish(published)
    assert {p.name: p.read_bytes() for p in published.iterdir() if p.is_file()} == before
    assert check(published) == []
    assert main(["leaderboard", "--check", str(published)]) == 0


def test_check_fails_on_an_edited_number_and_names_the_row(published, capsys):
    path = published / "leaderboard.md"
    lines = path.read_text().splitlines()
    i = next(i for i, line in enumerate(lines) if "mobileascnet-cnn" in line)
    lines[i] = lines[i].replace(" | 1 | ", " | 7 | ", 1) if " | 1 | " in lines[i] else lines[i] + " edited"
    path.write_text("\n".join(lines) + "\n")
    assert main(["leaderboard", "--check", str(published)]) == 2
    out = capsys.readouterr().out
    assert "mobileascnet-cnn" in out and "leaderboard.md" in out


def test_pareto_front():
    macs = [10, 20, 30, 40, 5]
    acc = [0.5, 0.7, 0.6, 0.8, 0.4]
    assert pareto_front(macs, acc) == [4, 0, 1, 3]


def test_rerun_reproduces_a_published_row(published, capsys):
    run_id = sorted(p.stem for p in (published / "results").glob("*.json"))[0]
    assert main(["rerun", run_id, "--from", str(published), "--no-progress"]) == 0
    assert "reproduced" in capsys.readouterr().out


def test_export_dcase_meta(published, capsys):
    import yaml

    run_id = sorted(p.stem for p in (published / "results").glob("*.json"))[-1]
    assert main(["export", run_id, "--from", str(published)]) == 0
    meta = yaml.safe_load(capsys.readouterr().out)
    record = json.loads((published / "results" / f"{run_id}.json").read_text())
    assert meta["system"]["complexity"]["total_parameters"] == record["row"]["params"]
    assert meta["results"]["development_dataset"]["overall"]["accuracy"] == round(100 * record["row"]["macro_accuracy"], 2)
    assert set(meta["results"]["development_dataset"]["class_wise"]) == set(record["metrics"]["class_accuracy"])


def test_plot_command_writes_svgs(published, tmp_path, capsys):
    run_id = sorted(p.stem for p in (published / "results").glob("*.json"))[0]
    assert main(["plot", run_id, "--from", str(published), "--output", str(tmp_path / "plots")]) == 0
    for name in ("confusion_matrix.svg", "city_accuracy.svg", "period_accuracy.svg"):
        assert (tmp_path / "plots" / name).read_text().lstrip().startswith("<?xml")


def test_leaderboard_sorting(published, capsys):
    assert main(["leaderboard", "--sort", "params", "--format", "csv"]) == 0
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    params = [float(r["params"]) for r in rows]
    assert len(rows) == 2 and params == sorted(params)  # the smallest model first


def _browser() -> str | None:
    import shutil

    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def test_the_page_renders_in_a_headless_browser_without_network(published, tmp_path):
    """The published page as a reader's browser shows it, with every network request refused: a section per
    dataset x protocol, each with every row of its table, its figure and links to records that exist. Needs a
    Chromium: skipped where none is installed, except where ASCBENCH_REQUIRE_BROWSER=1 (CI sets it, and
    .ci/run installs Debian's chromium when it is absent), where a missing browser fails the test."""
    import csv
    import html as html_lib
    import os
    import re
    import subprocess

    browser = _browser()
    if browser is None:
        if os.environ.get("ASCBENCH_REQUIRE_BROWSER") == "1":
            pytest.fail("ASCBENCH_REQUIRE_BROWSER=1 but no chromium/google-chrome on PATH (Debian: apt-get install chromium)")
        pytest.skip("no chromium/google-chrome on PATH (Debian: apt-get install chromium)")
    offline = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--proxy-server=socks5://127.0.0.1:9",
               "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp_path / 'profile'}"]
    page = (published / "index.html").resolve().as_uri()
    dom = subprocess.run([browser, *offline, "--dump-dom", page], capture_output=True, text=True, timeout=120).stdout
    rows = list(csv.DictReader((published / "leaderboard.csv").open()))
    boards = sorted({(r["dataset"], r["protocol"]) for r in rows})
    sections = re.findall(r'<section class="board" id="([^"]+)"[^>]*>(.*?)</section>', dom, flags=re.S)
    assert len(sections) == len(boards) > 0
    for (dataset, protocol), (_, body) in zip(boards, sections):
        # Every built-in dataset the fixture publishes is synthetic, and the heading must say so.
        assert f"{dataset} (synthetic audio) — {protocol}" in html_lib.unescape(body)
        expected = sum(r["dataset"] == dataset and r["protocol"] == protocol for r in rows)
        assert body.count("<tr><td>") == expected and "<svg" in body
    links = re.findall(r'href="(results/[^"]+)"', dom)
    assert len(links) == len(list((published / "results").glob("*.json")))
    assert all((published / link).is_file() for link in links)
    shot = tmp_path / "page.png"
    subprocess.run([browser, *offline, f"--screenshot={shot}", "--window-size=1400,1000", page],
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one


def test_the_repositorys_published_leaderboard_matches_its_records():
    """What `ascbench leaderboard --check leaderboards/` checks, in CI: a contributed row whose tables
    were not regenerated, or an edited number, fails here."""
    from pathlib import Path

    boards = Path(__file__).resolve().parent.parent / "leaderboards"
    published = [b for b in (boards, *sorted(boards.glob("*/"))) if (b / "results").is_dir()]
    if not published:
        pytest.skip("no published leaderboard in this checkout")
    for board in published:  # the main board and each study published beside it (e.g. leaderboards/precision)
        assert check(board) == [], board


def test_records_name_each_plugins_package_and_rerun_says_what_to_install(published, capsys):
    import hashlib

    import ascbench_plugins.context_only as plugin_module

    path = sorted((published / "results").glob("*.json"))[0]
    record = json.loads(path.read_text())
    used = {p["kind"]: p for p in record["metrics"]["provenance"]["plugins"]}
    assert set(used) == {"model", "strategy", "semi", "dataset", "protocol", "front-end"}
    model = used["model"]
    assert model["distribution"] == "ascbench" and model["plugin"] == "context-only"
    expected = hashlib.sha256(open(plugin_module.__file__, "rb").read()).hexdigest()[:16]  # independent of ascbench
    assert model["source_sha256"] == expected
    # A row whose model comes from a package this machine lacks: rerun names the package and version.
    record["config"]["model"] = record["row"]["model"] = "my-net"
    record["metrics"]["provenance"]["plugins"][0] = {**model, "name": "my-net", "plugin": "my-net",
                                                      "distribution": "ascbench-my-net", "version": "0.3.0"}
    path.write_text(json.dumps(record))
    capsys.readouterr()
    assert main(["rerun", path.stem, "--from", str(published)]) == 2
    err = capsys.readouterr().err
    assert "model 'my-net' from plugin 'my-net' (package ascbench-my-net 0.3.0)" in err
    assert "pip install 'ascbench-my-net==0.3.0'" in err
