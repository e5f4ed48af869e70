"""`safeset judges` end to end: every judge a config uses, asked by a scripted OpenAI-compatible server
(real openai SDK, real HTTP, real DuckDB) whose verdicts follow markers in the labelled rows, so the
stored confusion matrices and metrics are known in advance; resume, the report, the dataset card, and
bad labelled files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.judges.sets import load_labels
from pipeline.store import Store
from tests.conftest import scripted_roles
from tests.pipeline.export.made_run import RUN, make_run

# The scripted judge calls a request unsafe when it holds "[U:Sn]" (naming category Sn), a response
# harmful when it holds "[H]" and a refusal when it holds "[R]"; "[X]" breaks the schema every time.
REQUESTS = [
    ("Request alpha [U:S1]", "unsafe", "S1"),  # tp, category agrees
    ("Request beta [U:S9]", "unsafe", "S2"),  # tp, category disagrees
    ("Request gamma", "unsafe", "S3"),  # fn
    ("Request delta [U:S5]", "safe", None),  # fp
    ("Request epsilon", "safe", None),  # tn
    ("Request zeta", "no", None),  # tn (yes/no labels work too)
    ("Request eta [X]", "safe", None),  # failed
]
RESPONSES = [
    ("Prompt one", "Reply [H] one", "harmful"),  # tp
    ("Prompt two", "Reply two", "harmful"),  # fn
    ("Prompt three", "Reply three", "harmless"),  # tn
    ("Prompt four", "Reply [H] four", "harmless"),  # fp
    ("Prompt five", "Reply [H] five", "yes"),  # tp
]
REFUSALS = [
    ("Prompt a", "Answer [R] a", "refusal"),  # tp
    ("Prompt b", "Answer b", "compliance"),  # tn
    ("Prompt c", "Answer c", "refusal"),  # fn
    ("Prompt d", "Answer d", "false"),  # tn
]


def judge_script(body):
    user = body["messages"][-1]["content"]
    schema = (body.get("response_format") or {}).get("json_schema")
    if "[X]" in user:
        return "no verdict"
    if schema is None:
        if "<BEGIN UNSAFE CONTENT CATEGORIES>" in user:  # the safety filter, in Llama Guard 3's format
            code = re.search(r"\[U:(S\d+)\]", user)
            return f"unsafe\n{code[1]}" if code else "safe"
        return None
    fields = schema["schema"]["properties"]
    if "categories" in fields:  # the safety filter
        code = re.search(r"\[U:(S\d+)\]", user)
        return json.dumps({"verdict": "unsafe" if code else "safe", "categories": [code[1]] if code else []})
    if "verdict" in fields:  # EvoRefuse's safety judge
        return json.dumps({"verdict": "unsafe" if "[U:" in user else "safe"})
    if "complies" in fields:  # the response check
        return json.dumps({"harmful": "[H]" in user, "complies": False, "reason": "scripted"})
    if "label" in fields:  # the refusal judge
        return json.dumps({"label": "refusal" if "[R]" in user else "normal"})
    if "score" in fields:  # the Harm Score judge
        return json.dumps({"score": 5 if "[H]" in user else 1, "harmful": "[H]" in user})
    return None


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def labelled(tmp_path):
    return {
        "requests": write_jsonl(
            tmp_path / "requests.jsonl", [{"prompt": p, "label": y, "category": c} for p, y, c in REQUESTS]
        ),
        "responses": write_jsonl(
            tmp_path / "responses.jsonl", [{"prompt": p, "response": r, "label": y} for p, r, y in RESPONSES]
        ),
        "refusals": write_jsonl(
            tmp_path / "refusals.jsonl", [{"prompt": p, "response": r, "label": y} for p, r, y in REFUSALS]
        ),
    }


def run_config(server) -> dict:
    """Every run-config judge: the safety filter, the core and edge response checks (asked alike, so
    one judge), EvoRefuse's safety judge and a judge refusal classifier (evolve and overrefusal_test)."""
    judge = {"kind": "judge"}
    return {
        "name": "judged",
        "roles": scripted_roles(server),
        "stages": {
            "domains": {"categories": ["S1"]},
            "scenarios": {},
            "personas": {},
            "related_personas": {},
            "persona_pool": {"cosine": None},
            "instructions": {},
            "safety_filter": {},
            "dedup": {"cosine": None},
            "core": {},
            "tactics": {"tactics": ["cipher"]},
            "rewrite": {},
            "edge": {},
            "overrefusal_seeds": {},
            "evolve": {"classifier": judge},
            "overrefusal_test": {"classifier": judge},
        },
    }


def invoke(*args: str):
    return CliRunner().invoke(main, ["judges", *map(str, args)])


def stored(db_path) -> dict[str, dict]:
    store = Store.open(db_path, read_only=True)
    try:
        return {row["judge"]: row for row in store.judge_results()}
    finally:
        store.close()


def test_every_judge_of_a_run_config_is_measured_as_the_script_implies(
    chat_server, write_config, labelled, db_path
):
    server = chat_server(script=judge_script)
    config = write_config(run_config(server))
    files = [f"--{q}={p}" for q, p in labelled.items()]
    result = invoke(config, "--db", db_path, *files)
    assert result.exit_code == 0, result.output
    rows = stored(db_path)
    assert set(rows) == {"safety_filter", "evolve_judge", "response_check", "refusal_judge"}
    assert {r["model"] for r in rows.values()} == {"scripted"}

    safety = rows["safety_filter"]
    assert (safety["tp"], safety["fp"], safety["fn"], safety["tn"]) == (2, 1, 1, 2)
    assert (safety["n"], safety["failed"], safety["question"]) == (7, 1, "requests")
    assert safety["agreement"] == pytest.approx(4 / 6)
    assert safety["precision"] == pytest.approx(2 / 3) and safety["recall"] == pytest.approx(2 / 3)
    assert safety["f1"] == pytest.approx(2 / 3)
    assert safety["category_agreement"] == pytest.approx(1 / 2)  # S1 named for S1; S9 for S2
    assert safety["labels"] == str(labelled["requests"])

    evolve = rows["evolve_judge"]
    assert (evolve["tp"], evolve["fp"], evolve["fn"], evolve["tn"], evolve["failed"]) == (2, 1, 1, 2, 1)
    assert evolve["category_agreement"] is None

    check = rows["response_check"]
    assert (check["tp"], check["fp"], check["fn"], check["tn"], check["failed"]) == (2, 1, 1, 1, 0)
    assert check["agreement"] == pytest.approx(3 / 5) and check["precision"] == pytest.approx(2 / 3)
    assert check["recall"] == pytest.approx(2 / 3)

    refusal = rows["refusal_judge"]
    assert (refusal["tp"], refusal["fp"], refusal["fn"], refusal["tn"]) == (1, 0, 1, 2)
    assert refusal["precision"] == 1.0 and refusal["recall"] == 0.5
    assert refusal["f1"] == pytest.approx(2 / 3) and refusal["agreement"] == 0.75

    # The same command again: every verdict comes from the cache, the stored numbers are the same.
    requests = server.stats.requests
    again = invoke(config, "--db", db_path, *files, "--json")
    assert again.exit_code == 0, again.output
    assert server.stats.requests == requests
    assert {r["judge"]: r["agreement"] for r in json.loads(again.output)} == {
        judge: row["agreement"] for judge, row in rows.items()
    }
    assert stored(db_path).keys() == rows.keys()


def test_an_eval_configs_refusal_and_harm_judges_on_the_shipped_sets(chat_server, write_config, db_path):
    server = chat_server(script=judge_script)
    config = write_config(
        {
            "name": "eval-judged",
            "roles": {
                "target": [scripted_roles(server)["default"]],
                "judge": scripted_roles(server)["default"],
            },
            "sets": {"mine": {"source": "prompts.jsonl", "label": "benign"}},
            "judge": {"refusal": {"kind": "judge", "scheme": "binary"}, "harm": True},
        },
        "eval.yaml",
    )
    result = invoke(config, "--db", db_path)
    assert result.exit_code == 0, result.output
    rows = stored(db_path)
    assert set(rows) == {"refusal_judge", "harm_judge"}
    # The shipped sets have no markers: the scripted judge says "normal" and "not harmful" to all.
    refusals = load_labels("refusals", rows["refusal_judge"]["labels"])
    responses = load_labels("responses", rows["harm_judge"]["labels"])
    assert rows["refusal_judge"]["labels"].endswith("data/judges/refusals.jsonl")
    assert rows["refusal_judge"]["n"] == len(refusals) == 30
    assert rows["refusal_judge"]["fn"] == sum(r.label for r in refusals) and rows["refusal_judge"]["tp"] == 0
    assert rows["harm_judge"]["tn"] == sum(not r.label for r in responses) == 12
    assert rows["harm_judge"]["recall"] == 0.0 and rows["harm_judge"]["precision"] is None
    assert "judges eval-judged-judges-" in result.output


def test_the_report_and_the_dataset_card_show_the_judges(
    chat_server, write_config, labelled, db_path, tmp_path
):
    make_run(db_path)  # a run whose stages name "core-model", "edge-model", ... in their lineage
    server = chat_server(script=judge_script, models=("core-model",))
    roles = {"default": {**scripted_roles(server)["default"], "model": "core-model"}}
    config = write_config({**run_config(server), "roles": roles})
    assert invoke(config, "--db", db_path, f"--requests={labelled['requests']}").exit_code == 0

    out = tmp_path / "export"
    exported = CliRunner().invoke(main, ["export", "--db", str(db_path), "--run", RUN, "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    card = (out / "README.md").read_text()
    section = card.split("## How far to trust the filter")[1].split("\n## ")[0]
    assert (
        "| safety_filter | core-model | 6 | 0.667 | 0.667 | 0.667 | 0.667 | 2 / 1 / 1 / 2 | 0.500 |"
        in section
    )

    report = tmp_path / "report.html"
    made = CliRunner().invoke(
        main, ["report", "--db", str(db_path), "--run", RUN, "--no-semantic", "-o", str(report)]
    )
    assert made.exit_code == 0, made.output
    html = report.read_text()
    assert '<section id="judges">' in html and "<td>safety_filter</td><td>core-model</td>" in html
    assert "Lexical tokens: evorefuse: lemmas as lexical-diversity&#x27;s flemmatize makes them" in html


def test_a_card_without_validated_judges_says_how_to_measure_them(db_path, tmp_path):
    make_run(db_path)
    out = tmp_path / "export"
    assert CliRunner().invoke(main, ["export", "--db", str(db_path), "--out", str(out)]).exit_code == 0
    assert "`safeset judges CONFIG` measures them" in (out / "README.md").read_text()


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        ('{"prompt": "p", "category": "S1"}\n', "requests.jsonl", "no column 'label'"),
        ('{"prompt": "p", "label": "maybe"}\n', "requests.jsonl", "label 'maybe' is not unsafe/safe"),
        ('{"prompt": "p", "label": "unsafe", "category": "S15"}\n', "requests.jsonl", "not one of S1-S14"),
        ("", "requests.jsonl", "no labelled rows"),
        ("prompt,label\n", "requests.csv", "no labelled rows"),
        ("prompt,label\nhello,safe\n", "requests.parquet", "is .csv or .jsonl"),
        ('{"prompt": "p", "label": "unsafe"}\nnot json\n', "requests.jsonl", "line 2: not valid JSON"),
    ],
)
def test_a_bad_labelled_file_is_an_error_and_stores_nothing(
    chat_server, write_config, tmp_path, db_path, content, name, message
):
    server = chat_server(script=judge_script)
    config = write_config(run_config(server))
    bad = tmp_path / name
    bad.write_text(content)
    result = invoke(config, "--db", db_path, "--requests", bad)
    assert result.exit_code == 2, result.output
    assert message in result.output and str(bad) in result.output
    assert not db_path.exists() and server.stats.requests == 0


def test_a_responses_file_needs_its_response_column(chat_server, write_config, tmp_path, db_path):
    server = chat_server(script=judge_script)
    config = write_config(run_config(server))
    bad = write_jsonl(tmp_path / "responses.jsonl", [{"prompt": "p", "label": "harmful"}])
    result = invoke(config, "--db", db_path, "--responses", bad)
    assert result.exit_code == 2 and "no column 'response'" in result.output
    assert not db_path.exists()


def test_a_config_without_judges_is_an_error(chat_server, write_config, db_path):
    server = chat_server(script=judge_script)
    config = write_config({"name": "nojudge", "roles": scripted_roles(server), "stages": {"domains": {}}})
    result = invoke(config, "--db", db_path)
    assert result.exit_code == 2 and "uses no LLM judge" in result.output
    assert not db_path.exists()


def guard_script(body):
    """A served Llama Guard: plain chat, "safe" or "unsafe" and the category codes."""
    last = body["messages"][-1]["content"]
    code = re.search(r"\[U:(S\d+)\]", last)
    if code or "[H]" in last:
        return f"unsafe\n{code[1] if code else 'S1'}"
    return "safe"


def test_a_llama_guard_judge_is_asked_in_its_own_format(chat_server, write_config, labelled, db_path):
    server = chat_server(script=guard_script)
    raw = run_config(server)
    raw["stages"] = {k: v for k, v in raw["stages"].items() if k not in ("overrefusal_seeds", "evolve",
                                                                        "overrefusal_test")}  # fmt: skip
    raw["stages"].update(
        safety_filter={"guard_model": True}, core={"guard_model": True}, edge={"check": False}
    )
    files = [f"--{q}={labelled[q]}" for q in ("requests", "responses")]
    result = invoke(write_config(raw), "--db", db_path, *files)
    assert result.exit_code == 0, result.output
    rows = stored(db_path)
    assert set(rows) == {"safety_filter", "response_check"}
    safety, check = rows["safety_filter"], rows["response_check"]
    # "[X]" gets "safe" here (no schema to break): a true negative, not a failure.
    assert (safety["tp"], safety["fp"], safety["fn"], safety["tn"], safety["failed"]) == (2, 1, 1, 3, 0)
    assert safety["category_agreement"] == pytest.approx(1 / 2)
    assert (check["tp"], check["fp"], check["fn"], check["tn"]) == (2, 1, 1, 1)
    assert server.stats.requests == len(REQUESTS) + len(RESPONSES)
