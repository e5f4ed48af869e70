"""The web UI of `safeset serve` in a real headless Chromium (Debian's, driven by Playwright; no browser
is downloaded): submit a run, watch it finish, filter the dataset browser, open a record's lineage,
review three records with the keyboard, export reviewed rows only; the token prompt; record text that
holds HTML renders as text. Screenshots of each page are saved in the test's tmp folder."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from collections.abc import Iterator

import pytest

from pipeline.records import Record
from pipeline.store import CommitBatch, Store
from tests.pipeline.export.made_run import RUN, dataset_records
from tests.serve.conftest import TOKEN, config_text

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.chromium,
    pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)"),
]
HOSTILE = '<script>window.pwned = 1</script><img src="x" onerror="window.pwned = 2">'


@pytest.fixture
def browser() -> Iterator:
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def signed_in(browser, served, tmp_path):
    """A page past the token prompt (a wrong token first, which the prompt refuses)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{served.url}/")
    assert page.url == f"{served.url}/login"
    page.fill("#token", "wrong")
    page.click("button[type=submit]")
    page.wait_for_selector("#login-error:has-text('refused')")
    page.screenshot(path=tmp_path / "01-login.png")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_selector("#runs")
    return page


def test_submit_watch_browse_lineage_review_export(serve, world, browser, tmp_path):
    served = serve()
    page = signed_in(browser, served, tmp_path)

    page.fill("textarea[name=config]", config_text(world))
    page.click("#submit button[type=submit]")
    row = page.wait_for_selector("#runs tr[data-state=finished]", timeout=180_000)
    run_id = row.get_attribute("data-run")
    page.wait_for_selector(f"tr[data-run='{run_id}'] .stage[data-stage=core]:has-text('core 24/24')")
    page.wait_for_selector(f"tr[data-run='{run_id}'] td.name:has-text('served')")  # named once it ran
    assert page.inner_text(f"tr[data-run='{run_id}'] td.cost").startswith("$")
    assert page.is_disabled(f"tr[data-run='{run_id}'] button[data-action=stop]")
    page.screenshot(path=tmp_path / "02-runs.png", full_page=True)

    # the browser: core by default, then filtered by intended category (counts per value in the options)
    page.click(f"a[href='#/browse/{run_id}']")
    page.wait_for_selector("#rows tbody tr")
    assert page.inner_text("#total") == "rows 1–24 of 24"
    options = page.eval_on_selector_all(
        "select[name=category] option", "els => els.map(e => [e.value, e.textContent])"
    )
    category, label = options[1]
    expected = int(label.split("(")[1].rstrip(")"))
    page.select_option("select[name=category]", category)
    page.wait_for_selector(f"#total:has-text('of {expected}')")
    cells = page.eval_on_selector_all("#rows tbody tr td:nth-child(2)", "els => els.map(e => e.textContent)")
    assert cells == [category] * expected
    page.screenshot(path=tmp_path / "03-browse.png", full_page=True)

    # a record's lineage: the core record above its instruction, persona, scenario ...
    page.click("#rows tbody tr:first-child td a")
    page.wait_for_selector("#lineage .node")
    stages = page.eval_on_selector_all("#lineage .node", "els => els.map(e => e.dataset.stage)")
    assert stages[0] == "core" and len(stages) >= 4 and "personas" in stages
    page.screenshot(path=tmp_path / "04-record.png", full_page=True)

    # review three core records with the keyboard: accept, reject, edit the response
    page.goto(f"{served.url}/#/review/{run_id}?dataset=core")
    page.wait_for_selector("#current[data-id]")
    page.fill("#reviewer", "ana")
    page.press("#reviewer", "Tab")
    page.click("h1")  # focus out of the inputs: the keys go to the queue
    ids = []
    for key in ("a", "r"):
        ids.append(page.get_attribute("#current", "data-id"))
        page.keyboard.press(key)
        page.wait_for_selector(f"#current[data-id]:not([data-id='{ids[-1]}'])")
    ids.append(page.get_attribute("#current", "data-id"))
    page.keyboard.press("e")
    page.fill("textarea[name=edit-response]", "A kinder, safer answer.")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector(f"#current[data-id]:not([data-id='{ids[-1]}'])")
    page.keyboard.press("k")  # back to the edited record: its review is in its history
    page.wait_for_selector(f"#current[data-id='{ids[2]}'] #history td.decision-edit")
    assert page.inner_text("#current dd[data-field=response]") == "A kinder, safer answer."
    page.screenshot(path=tmp_path / "05-review.png", full_page=True)
    decisions = [served.client.get(f"/v1/records/{i}/reviews").json()["reviews"][-1] for i in ids]
    assert [(d["decision"], d["reviewer"]) for d in decisions] == [("accept", "ana"), ("reject", "ana"),
                                                                   ("edit", "ana")]  # fmt: skip

    # export the reviewed rows only, from the runs page
    page.goto(f"{served.url}/#/runs")
    page.check("input[name=reviewed_only]")
    page.select_option("select[name=format]", "jsonl")
    page.click(f"tr[data-run='{run_id}'] button:has-text('Export')")
    link = page.wait_for_selector("#exports a[data-job]", timeout=120_000)
    page.screenshot(path=tmp_path / "06-export.png", full_page=True)
    archive = served.client.get(link.get_attribute("href"))
    assert archive.status_code == 200
    files = zipfile.ZipFile(io.BytesIO(archive.content))
    core = [json.loads(line) for line in files.read("core.jsonl").decode().splitlines()]
    assert sorted(r["id"] for r in core) == sorted([ids[0], ids[2]])
    assert {r["id"]: r["response"] for r in core}[ids[2]] == "A kinder, safer answer."
    card = files.read("README.md").decode()
    assert "only rows a reviewer accepted or edited" in card and "| core | 24 | 3 | 12% | 1 | 1 |" in card
    assert all(shot.stat().st_size > 10_000 for shot in tmp_path.glob("0*.png"))


def test_record_text_that_holds_html_renders_as_text(serve, browser, tmp_path):
    db = tmp_path / "made.duckdb"
    data = {"instruction": HOSTILE, "response": "an aligned answer", "category": "S1",
            "judged_category": "S1", "persona": "a persona"}  # fmt: skip
    hostile = Record(id=Record.make_id(RUN, "core", (), data), run_id=RUN, stage="core", data=data,
                     category="S1", persona_id="persona-0")  # fmt: skip
    store = Store.open(db)
    store.ensure_run(RUN, "made", {"name": "made", "seed": 7, "stages": {}}, 7, None, "test")
    store.commit(CommitBatch(records=[*dataset_records(per_category=2), hostile]))
    store.close()
    served = serve(db)
    served.client.post(f"/v1/records/{hostile.id}/reviews",
                       json={"reviewer": "<b>ana</b>", "decision": "accept", "note": HOSTILE})  # fmt: skip
    page = signed_in(browser, served, tmp_path)

    page.goto(f"{served.url}/#/browse/{RUN}?dataset=core&q=pwned")
    page.wait_for_selector("#rows tbody tr")
    assert page.inner_text("#rows tbody tr td.text >> nth=4") == HOSTILE
    page.goto(f"{served.url}/#/record/{hostile.id}")
    page.wait_for_selector("#reviews table")
    assert HOSTILE in page.inner_text("#main") and "<b>ana</b>" in page.inner_text("#reviews")
    assert page.query_selector("#main script, #main img, #main b") is None
    assert page.evaluate("window.pwned") is None
    page.screenshot(path=tmp_path / "07-hostile.png", full_page=True)


def made(stage: str, data: dict, *parents: Record) -> Record:
    ids = tuple(p.id for p in parents)
    record_id = Record.make_id(RUN, stage, ids, data)
    return Record(id=record_id, run_id=RUN, stage=stage, parent_ids=ids, data=data, category="S2")


def test_an_evorefuse_record_shows_its_tree_back_to_the_seeds(serve, browser, tmp_path):
    """Two seeds, a mutation of each, their recombination, and the test prompt it became: each step with
    its strategy, verdict, reason and fitness terms, as the evolve stage stores them."""
    seeds = [made("overrefusal_seeds", {"instruction": f"seed question {i}"}) for i in (1, 2)]
    step = {"iteration": 1, "verdict": "safe", "harmless_reason": "it asks about a game", "fitness": -0.5,
            "refusal_term": -0.25, "confidence_term": -0.25}  # fmt: skip
    mutation = {**step, "operation": "mutation"}
    mutated = [
        made("evolve", {**mutation, "strategy": f"strategy-{i}", "instruction": f"mutated {i}"}, seed)
        for i, seed in enumerate(seeds)
    ]
    crossed = made("evolve", {**step, "iteration": 2, "operation": "recombination", "strategy": None,
                              "instruction": "recombined", "fitness": -0.1}, *mutated)  # fmt: skip
    final = {"instruction": "recombined", "seed_instruction": "seed question 1", "harmless_reason": "a game",
             "refusal_rate": 0.5, "refusal_rates": {"m": 0.5}, "fitness": -0.1}  # fmt: skip
    test_record = made("overrefusal_test", final, crossed)
    db = tmp_path / "evo.duckdb"
    store = Store.open(db)
    store.ensure_run(RUN, "made", {"name": "made", "seed": 7, "stages": {}}, 7, None, "test")
    store.commit(CommitBatch(records=[*seeds, *mutated, crossed, test_record]))
    store.close()
    served = serve(db)
    page = signed_in(browser, served, tmp_path)
    page.goto(f"{served.url}/#/record/{test_record.id}")
    page.wait_for_selector("#lineage .node")
    stages = page.eval_on_selector_all("#lineage .node", "els => els.map(e => e.dataset.stage)")
    assert stages == [
        "overrefusal_test",
        "evolve",
        "evolve",
        "overrefusal_seeds",
        "evolve",
        "overrefusal_seeds",
    ]
    tree = page.inner_text("#lineage")
    for shown in ("recombination", "mutation", "strategy-0", "strategy-1", "safe", "it asks about a game",
                  "refusal_term", "confidence_term", "-0.25", "seed question 2"):  # fmt: skip
        assert shown in tree, shown
    page.screenshot(path=tmp_path / "08-evorefuse.png", full_page=True)
