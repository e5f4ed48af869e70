"""`safeset eval` end to end: XSTest prompts through scripted targets and judges (real openai SDK, real
HTTP, real DuckDB), eval sets from benchmarks, generated runs and files, and config errors."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.config import ConfigError
from pipeline.eval.config import load_eval_config
from pipeline.eval.sets import EvalSet, load_set
from pipeline.sources import SourceError
from pipeline.store import Store
from tests.pipeline.export.made_run import RUN, make_run
from tests.servers.chat_server import Faults

XSTEST = Path(__file__).resolve().parents[3].parent / "shared" / "benchmarks" / "xstest_v2_prompts.csv"
REFUSE = "I'm sorry, but I can't help with that."
COMPLY = "Sure. Here is some general information."


def refuses(prompt: str) -> bool:
    return re.search(r"\b(kill|smash|bank)\b", prompt, re.IGNORECASE) is not None


def breaks_harm_judge(prompt: str) -> bool:
    return "fire" in prompt


def script(body):
    user = body["messages"][-1]["content"]
    schema = (body.get("response_format") or {}).get("json_schema")
    if schema is None:  # a target's answer
        return REFUSE if body["model"] == "strict" or refuses(user) else COMPLY
    refused = f"<<<\n{REFUSE}" in user
    if "label" in schema["schema"]["properties"]:
        return json.dumps({"label": "refusal" if refused else "normal"})
    if breaks_harm_judge(user):
        return "no verdict"
    return json.dumps({"score": 1 if refused else 5, "harmful": not refused})


@pytest.fixture
def xstest_sample(tmp_path):
    """Every 9th XSTest prompt (50, both labels, all types), in the file's own format."""
    with XSTEST.open() as f:
        rows = list(csv.DictReader(f))[::9]
    path = tmp_path / "xstest_sample.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path, rows


def role(server, model, **extra):
    return {
        "backend": "openai",
        "model": model,
        "base_urls": [server.url],
        "initial_concurrency": 16,
        **extra,
    }


@pytest.fixture
def eval_config(chat_server, write_config, xstest_sample):
    served = chat_server(script=script, models=("scripted", "strict"))
    broken = chat_server(faults=Faults(rate_500=1.0), models=("broken",))
    config = {
        "name": "xstest-eval",
        "roles": {
            "target": [
                role(served, "scripted"),
                role(served, "strict"),
                role(broken, "broken", max_retries=0),
            ],
            "judge": role(served, "scripted"),
        },
        "sets": {"xstest": {"benchmark": "xstest", "source": str(xstest_sample[0])}},
        "refusal": [{"kind": "prefix"}, {"kind": "substring"}],
        "judge": {"refusal": {"kind": "judge"}, "harm": True},
    }
    return write_config(config, "eval.yaml"), served


def mean(values):
    values = list(values)
    return sum(values) / len(values)


def test_xstest_eval_through_scripted_servers(eval_config, db_path, xstest_sample):
    path, served = eval_config
    rows = xstest_sample[1]
    result = CliRunner().invoke(main, ["eval", str(path), "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert "xstest-eval-" in result.output and "strict" in result.output

    store = Store.open(db_path, read_only=True)
    table = {(r["target"], r["group"]): r for r in store.eval_results()}
    by_type = {r["group"]: r for r in store.eval_results(group_by="category") if r["target"] == "scripted"}
    store.close()
    benign = [r["prompt"] for r in rows if not r["type"].startswith("contrast")]
    harmful = [r["prompt"] for r in rows if r["type"].startswith("contrast")]
    judged = [p for p in harmful if not breaks_harm_judge(p)]

    scripted = table[("scripted", "*")]
    assert scripted["n"] == 50 and scripted["failed"] == 0
    assert scripted["over_refusal"] == pytest.approx(mean(map(refuses, benign)))
    assert scripted["compliance"] == pytest.approx(1 - mean(map(refuses, harmful)))
    assert scripted["refusal_prefix"] == scripted["refusal_substring"] == mean(map(refuses, benign + harmful))
    # A judge item whose harm verdict broke the schema failed as a whole: its refusal verdict is missing too.
    assert scripted["refusal_judge"] == pytest.approx(mean(map(refuses, benign + judged)))
    assert scripted["asr"] == pytest.approx(mean(not refuses(p) for p in judged))
    assert scripted["harm_5"] == scripted["asr"]
    assert scripted["harm_score"] == pytest.approx(mean(1 if refuses(p) else 5 for p in judged))
    assert 0 < scripted["over_refusal"] < 1 and 0 < scripted["asr"] < 1

    strict = table[("strict", "*")]
    assert (strict["over_refusal"], strict["compliance"], strict["asr"], strict["harm_score"]) == (1, 0, 0, 1)
    assert table[("broken", "*")] == {**table[("broken", "*")], "failed": 1.0, "n": 50}
    assert "over_refusal" not in table[("broken", "*")]

    homonyms = [r["prompt"] for r in rows if r["type"] == "homonyms"]
    assert by_type["homonyms"]["over_refusal"] == pytest.approx(mean(map(refuses, homonyms)))
    assert by_type["homonyms"]["n"] == len(homonyms)

    # The same command again: every answer and verdict comes from the cache, the results are the same.
    requests = served.stats.requests
    again = CliRunner().invoke(main, ["eval", str(path), "--db", str(db_path), "--json"])
    assert again.exit_code == 0, again.output
    assert served.stats.requests == requests
    metrics = {
        (r["target"], r["set"], r["grouping"], r["group"], r["metric"]): r["value"]
        for r in json.loads(again.output)
    }
    assert metrics[("scripted", "xstest", "all", "*", "over_refusal")] == scripted["over_refusal"]

    # Failures are rows: status shows the broken target's answers and the judge's schema breaks.
    status = CliRunner().invoke(main, ["status", "--db", str(db_path), "--json"])
    stages = json.loads(status.output)["stages"]
    assert stages["eval_answers"]["failed"] == 50 and stages["eval_answers"]["done"] == 100
    assert stages["eval_judge"]["failed"] == 2 * (len(harmful) - len(judged))  # scripted and strict


def test_generated_sets_are_the_test_splits_of_a_run(db_path):
    make_run(db_path)
    store = Store.open(db_path, read_only=True)
    try:
        core = load_set("core", EvalSet(generated="core"), store)
        edge = load_set("edge", EvalSet(generated="edge", run=RUN[:6], test_fraction=0.2), store)
        align = load_set("align", EvalSet(generated="overrefusal_align", split="train"), store)
    finally:
        store.close()
    assert (
        len(core) == 3
        and {i.label for i in core} == {"harmful"}
        and {i.category for i in core} == {"S1", "S2", "S10"}
    )
    assert len(edge) == 6 and all(i.tactic in ("past_tense", "roleplay") for i in edge)
    assert len(align) == 27 and {i.label for i in align} == {"benign"}


def test_benchmarks_load_xstest_and_ask_the_hub_for_the_rest(monkeypatch):
    xstest = load_set("x", EvalSet(benchmark="xstest", source=str(XSTEST)), None)
    assert len(xstest) == 450 and sum(i.label == "harmful" for i in xstest) == 200
    assert xstest[0].category == "homonyms" and xstest[0].key == "v2-1"

    import datasets

    asked = []

    def fake_load(name, subset=None, split=None):
        asked.append((name, subset, split))
        return datasets.Dataset.from_list([{"prompt": "a request", "category": "chemical_biological"}])

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    harmbench = load_set("h", EvalSet(benchmark="harmbench"), None)
    orbench = load_set("o", EvalSet(benchmark="orbench-hard"), None)
    assert asked == [
        ("walledai/HarmBench", "standard", "train"),
        ("bench-llm/or-bench", "or-bench-hard-1k", "train"),
    ]
    assert harmbench[0].label == "harmful" and orbench[0].label == "benign"
    assert harmbench[0].category == "chemical_biological"


def test_file_sets_take_a_label_or_a_label_column(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text(
        '{"text": "q1", "kind": "unsafe", "c": "S1"}\n{"text": "q2", "kind": "safe", "c": "S2"}\n'
    )
    items = load_set(
        "mine",
        EvalSet(source=str(path), prompt_column="text", label_column="kind", category_column="c"),
        None,
    )
    assert [(i.prompt, i.label, i.category) for i in items] == [
        ("q1", "harmful", "S1"),
        ("q2", "benign", "S2"),
    ]
    with pytest.raises(SourceError, match="no column 'prompt'"):
        load_set("mine", EvalSet(source=str(path), label="benign"), None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"roles": {"judge": {"backend": "openai", "model": "j"}}}, "roles.target: name the model"),
        ({"sets": {"x": {"source": "a.csv"}}}, "needs label"),
        ({"sets": {"x": {"benchmark": "xstest", "label": "benign"}}}, "labels its prompts itself"),
        ({"sets": {"x": {"benchmark": "nope"}}}, "sets.x.benchmark"),
        ({"sets": {"x": {"generated": "core", "source": "a.csv"}}}, "drop source"),
        (
            {"judge": {"harm": True}, "roles": {"target": {"backend": "openai", "model": "t"}}},
            "set roles.judge",
        ),
        ({"answerz": {}}, "unknown key (did you mean 'answers'?)"),
        (
            {"refusal": [{"kind": "prefix"}, {"kind": "prefix", "phrases": ["no"]}]},
            "one classifier of each kind",
        ),
    ],
)
def test_config_errors_name_the_field(write_config, change, message):
    config = {
        "name": "e",
        "roles": {"target": {"backend": "openai", "model": "t"}},
        "sets": {"x": {"benchmark": "xstest"}},
    }
    path = write_config({**config, **change})
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_eval_config(path)


def test_an_unreadable_set_fails_before_anything_is_written(write_config, db_path, tmp_path):
    config = {"name": "e", "roles": {"target": {"backend": "openai", "model": "t"}},
              "sets": {"x": {"source": str(tmp_path / "missing.csv"), "label": "benign"}}}  # fmt: skip
    result = CliRunner().invoke(main, ["eval", str(write_config(config)), "--db", str(db_path)])
    assert result.exit_code == 2 and "file not found" in result.output
    store = Store.open(db_path, read_only=True)
    assert store.runs() == []
    store.close()


def test_the_shipped_xstest_config_validates():
    config, plan = load_eval_config("configs/eval_xstest.yaml")
    assert config.sets["xstest"].benchmark == "xstest"
    assert [s.cls.name for s in plan.stages] == ["eval_prompts", "eval_answers", "eval_refusal", "eval_judge"]


@pytest.mark.vllm
def test_xstest_eval_through_the_local_vllm_server(vllm_server, write_config, db_path, xstest_sample):
    tiny = {"backend": "openai", "model": vllm_server.model, "base_urls": [vllm_server.url]}
    config = {
        "name": "xstest-vllm",
        "roles": {"target": tiny, "judge": tiny},
        "sets": {"xstest": {"benchmark": "xstest", "source": str(xstest_sample[0])}},
        "answers": {"max_tokens": 32},
        "judge": {"refusal": {"kind": "judge", "scheme": "xstest"}, "harm": True, "max_tokens": 32},
    }
    path = write_config(config, "eval.yaml")
    result = CliRunner().invoke(main, ["eval", str(path), "--db", str(db_path)])
    assert result.exit_code == 0, result.output

    store = Store.open(db_path, read_only=True)
    row = next(r for r in store.eval_results() if r["eval_set"] == "xstest")
    harm_n = store.con.execute(
        "SELECT n FROM eval_results WHERE metric = 'harm_score' AND group_by = 'all'"
    ).fetchone()[0]
    answers = store.records(row["eval_run"], "eval_answers")
    judge_failed = store.progress_counts(row["eval_run"])["eval_judge"].get("failed", 0)
    calls = sum(u["calls"] for u in store.usage(row["eval_run"]))
    store.close()
    assert row["target"] == "tiny" and row["n"] == 50 and row["failed"] == 0
    assert len(answers) == 50 and all(a.model == "tiny" and a.request_key for a in answers)
    for metric in ("refusal_prefix", "refusal_judge", "over_refusal", "compliance", "harm_5", "asr"):
        assert 0 <= row[metric] <= 1, metric
    assert 1 <= row["harm_score"] <= 5
    harmful = sum(r["type"].startswith("contrast") for r in xstest_sample[1])
    assert harm_n + judge_failed == harmful  # guided decoding keeps the judge inside its schema

    again = CliRunner().invoke(main, ["eval", str(path), "--db", str(db_path)])
    assert again.exit_code == 0, again.output
    store = Store.open(db_path, read_only=True)
    assert sum(u["calls"] for u in store.usage(row["eval_run"])) == calls  # all from the cache
    store.close()


def test_the_embedding_refusal_classifier_scores_answers(chat_server, write_config, db_path, tmp_path):
    served = chat_server(script=lambda body: REFUSE if "weather" in str(body) else COMPLY)
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "What is the weather like?"}\n{"prompt": "How do I bake bread?"}\n')
    config = {
        "name": "embedding-eval",
        "roles": {"target": role(served, "scripted")},
        "sets": {"mine": {"source": str(prompts), "label": "benign"}},
        "refusal": [{"kind": "embedding"}],
    }
    result = CliRunner().invoke(main, ["eval", str(write_config(config, "eval.yaml")), "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    store = Store.open(db_path, read_only=True)
    run_id = store.resolve_run(None)
    answers = {r.id: r.data["answer"] for r in store.records(run_id, "eval_answers")}
    scores = {
        answers[r.parent_ids[0]]: r.data["refusal"]["embedding"]
        for r in store.records(run_id, "eval_refusal")
    }
    row = store.eval_results()[0]
    store.close()
    assert scores[REFUSE] > 0.5 > scores[COMPLY]
    assert row["n"] == 2 and row["over_refusal"] == row["refusal_embedding"] == pytest.approx(
        mean(scores.values())
    )


def test_endpoint_and_model_point_the_target_at_another_server(
    chat_server, write_config, db_path, xstest_sample
):
    served = chat_server(script=script, models=("strict",))
    config = {
        "name": "override",
        # the configured target is unreachable: only the override can answer
        "roles": {"target": {"backend": "openai", "model": "t", "base_urls": ["http://127.0.0.1:9/v1"]}},
        "sets": {"xstest": {"benchmark": "xstest", "source": str(xstest_sample[0])}},
        "refusal": [{"kind": "prefix"}],
    }
    path = write_config(config, "eval.yaml")
    args = ["eval", str(path), "--db", str(db_path), "--json"]
    result = CliRunner().invoke(main, [*args, "--endpoint", served.url, "--model", "strict"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {r["target"] for r in rows} == {"strict"}
    overall = {r["metric"]: r["value"] for r in rows if r["grouping"] == "all" and r["set"] == "xstest"}
    assert overall["failed"] == 0 and overall["over_refusal"] == 1.0  # "strict" refuses everything

    missing = CliRunner().invoke(main, [*args, "--endpoint", served.url])
    assert missing.exit_code == 2 and "--endpoint needs --model" in missing.output


def test_model_alone_renames_every_target_and_keeps_its_backend(write_config):
    config = {
        "name": "e",
        "roles": {"target": [{"backend": "hf", "model": "a"}, {"backend": "openai", "model": "b"}],
                  "judge": {"backend": "openai", "model": "j"}},
        "sets": {"x": {"benchmark": "xstest"}},
    }  # fmt: skip
    loaded, _ = load_eval_config(write_config(config), model="mine")
    assert [(t.backend, t.model) for t in loaded.roles.resolve("target")] == [
        ("hf", "mine"),
        ("openai", "mine"),
    ]
    assert loaded.roles.resolve("judge")[0].model == "j"
