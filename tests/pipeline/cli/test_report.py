"""`safeset report`: the HTML file on a finished run, rendered by headless Chromium, with the scorecard
and plots visible in a screenshot and every section in the DOM."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from analysis.svg import PALETTE
from pipeline.cli import main
from pipeline.eval import results as eval_results
from pipeline.eval.metrics import MetricRow
from pipeline.store import Store
from tests.analysis.analysis_world import instructions, make_run

CHROMIUM = shutil.which("chromium")


def needs_chromium(test):
    """Skip without Chromium (a failure under SAFESET_REQUIRE_ALL=1, see tests/conftest.py)."""
    skip = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
    return pytest.mark.chromium(skip(test))


def chromium(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", *args, page.as_uri(),
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A report on the second of two runs (so it has history), beside an outside dataset."""
    tmp = tmp_path_factory.mktemp("report")
    db = tmp / "safeset.duckdb"
    outside = tmp / "outside.jsonl"
    rows = [
        {"prompt": text, "hazard": "S8" if i % 2 else "S12"}
        for i, text in enumerate(instructions(40, seed=7))
    ]
    outside.write_text("\n".join(json.dumps(r) for r in rows))
    make_run(db, run_id="analysis-0001", seed=0)
    runner = CliRunner()
    assert runner.invoke(main, ["score", "--db", str(db), "--no-semantic"]).exit_code == 0
    make_run(db, run_id="analysis-0002", n_core=90, seed=1)
    store = Store.open(db)  # an eval of two models, as `safeset eval` stores it
    eval_results.save(store, "eval-0001", [
        MetricRow("model-a", "xstest", "all", "*", "over_refusal", 0.3, 50),
        MetricRow("model-b", "xstest", "all", "*", "asr", 0.1, 50),
        MetricRow("model-a", "xstest", "category", "homonyms", "over_refusal", 0.4, 10),
        MetricRow("model-b", "xstest", "category", "contrast_homonyms", "asr", 0.2, 10),
    ])  # fmt: skip
    store.close()
    page = tmp / "report.html"
    args = ["report", "--db", str(db), "--run", "analysis-0002", "-o", str(page), "--compare", str(outside),
            "--text-column", "prompt", "--category-column", "hazard", "--semantic-sample", "40"]  # fmt: skip
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert f"wrote {page}" in result.stdout
    return page


def test_the_file_is_self_contained(report):
    html = report.read_text()
    assert "<script" not in html and "<link" not in html and "<img" not in html
    assert not re.search(r"(src|href)=", html)
    assert set(re.findall(r"https?://[^\s\"']+", html)) == {
        "http://www.w3.org/2000/svg"
    }  # SVG namespace only


@needs_chromium
def test_chromium_renders_every_section(report, tmp_path):
    dom = chromium(tmp_path, report, "--dump-dom").stdout
    sections = ("scorecard", "diversity", "categories", "tactics", "evolution", "history", "evaluation",
                "failures")  # fmt: skip
    for section in sections:
        assert f'<section id="{section}">' in dom, section
    # diversity, categories, the edge heatmap, 2 search curves, 2 eval bars, failures
    assert dom.count("<svg") == 8
    evaluation = dom[dom.index('<section id="evaluation">') :]
    assert "model-a · eval-0001" in evaluation and "model-b · eval-0001" in evaluation
    table = dom[dom.index('<table class="scorecard">') : dom.index("</table>")]
    assert "core" in table and "edge" in table and "outside.jsonl (compared)" in table
    assert "MSTTR-800" in table and "Vendi" in table and "tactic×category fill" in table
    history = dom[dom.index('<section id="history">') :]
    assert "analysis-0001" in history and "analysis-0002" in history
    assert "answer broke the schema" in dom and "evolve_candidates: fitness per iteration" in dom


@needs_chromium
def test_a_screenshot_shows_the_scorecard_and_plots(report, tmp_path):
    from PIL import Image

    shot = tmp_path / "report.png"
    chromium(tmp_path, report, f"--screenshot={shot}", "--window-size=1280,2600", "--hide-scrollbars")
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 2600)
    pixels = image.load()

    def share(box: tuple[int, int, int, int], match) -> float:
        x0, y0, x1, y1 = box
        hits = sum(match(pixels[x, y]) for x in range(x0, x1, 2) for y in range(y0, y1, 2))
        return hits / (((x1 - x0) // 2) * ((y1 - y0) // 2))

    def dark(p):
        return sum(p) < 200

    palette = [tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for c in PALETTE[:3]]

    def plotted(p):
        return any(sum(abs(a - b) for a, b in zip(p, c, strict=True)) < 30 for c in palette)

    # The scorecard table: text in the top band, under the title.
    assert share((0, 100, 640, 500), dark) > 0.01
    # Bars and heatmap cells in the palette colours further down; and not a blank page anywhere.
    assert share((0, 500, 1280, 2600), plotted) > 0.01
    assert share((0, 0, 1280, 2600), lambda p: p != (255, 255, 255)) > 0.03


def test_a_run_without_datasets_still_gets_a_report(tmp_path, db_path):
    from pipeline.store import Store

    store = Store.open(db_path)
    store.ensure_run("empty-run", "empty", {}, 0, None, "test")
    store.close()
    page = tmp_path / "empty.html"
    result = CliRunner().invoke(main, ["report", "--db", str(db_path), "-o", str(page), "--no-semantic"])
    assert result.exit_code == 0, result.output
    html = page.read_text()
    assert "No dataset of this run has records yet." in html and "No failed items." in html


def test_no_run_is_a_clear_error(db_path):
    result = CliRunner().invoke(main, ["report", "--db", str(db_path)])
    assert result.exit_code == 2 and "holds no run yet" in result.output
