"""Adding an LLM stage that asks for n samples is one stage class, one prompt file and one line in the
stage list (README, "Adding a stage"): such a stage, built here, runs through the real runner against
the scripted OpenAI-compatible server, with n outputs per item and the call in each one's lineage.
The other hooks a stage relies on: `skip(item)`, and `ctx.attempt`, each item's own when items overlap."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

import pipeline.prompts
import pipeline.stages
from pipeline.config import validate_config
from pipeline.llm.types import LLMFailure, Result
from pipeline.prompts import load_prompt
from pipeline.records import Record, derive_seed
from pipeline.runner import Runner
from pipeline.stage import LLMParams, LLMStage, Outcome, Stage
from pipeline.store import Store
from tests.conftest import scripted_roles

# The prompt file: prompts/paraphrase.yaml
PROMPT = """\
name: paraphrase
version: 1
description: the scenario said again in other words
user: |
  Say this scenario again in other words: $scenario
  Answer in JSON: {"text": "..."}
"""


# The stage file: pipeline/stages/paraphrases.py
class Paraphrase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=2000)


class ParaphrasesParams(LLMParams):
    per_scenario: int = Field(default=3, ge=1, le=16, description="paraphrases asked for per scenario")


class ParaphrasesStage(LLMStage):
    name = "paraphrases"
    description = "each scenario said again in other words, n times"
    consumes = ("scenarios",)
    prompt = "paraphrase"
    Answer = Paraphrase
    Params = ParaphrasesParams

    def variables(self, item: Record) -> dict[str, object]:
        return {"scenario": item.data["scenario"]}

    def samples(self, item: Record) -> int:
        return self.params.per_scenario

    def parse(self, item: Record, result: Result) -> Outcome:
        return [self.ctx.record((item,), {"paraphrase": p.text}, made_by=result) for p in result.parsed]


@pytest.fixture
def paraphrase_prompt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The shipped prompts and the new one in a prompts folder of the test's own."""
    folder = tmp_path / "prompts"
    shutil.copytree(pipeline.prompts.prompts_dir(), folder)
    (folder / "paraphrase.yaml").write_text(PROMPT)
    monkeypatch.setattr(pipeline.prompts, "prompts_dir", lambda: folder)
    load_prompt.cache_clear()
    yield
    load_prompt.cache_clear()


def run(raw: dict, db_path: Path, **kwargs: bool):
    store = Store.open(db_path)
    try:
        return Runner(
            validate_config(raw, stages=pipeline.stages.STAGES), store, argv=["test"], **kwargs
        ).run()
    finally:
        store.close()


def test_a_new_stage_asking_for_n_samples_runs_with_lineage(
    chat_server, db_path, paraphrase_prompt, monkeypatch
):
    # The line in the stage list.
    monkeypatch.setattr(pipeline.stages, "STAGES", [*pipeline.stages.STAGES, ParaphrasesStage])
    asked: Counter[int] = Counter()

    def script(body: dict) -> None:
        if body["messages"][-1]["content"].startswith("Say this scenario again"):
            asked[body["n"]] += 1
        return None

    server = chat_server(script=script)
    raw = {
        "name": "t",
        "seed": 5,
        "roles": scripted_roles(server),
        "stages": {
            "domains": {"categories": ["S1", "S2"], "scenarios_per_category": 2},
            "scenarios": {},
            "paraphrases": {"per_scenario": 3},
        },
    }
    summary = run(raw, db_path)
    assert summary.counts["paraphrases"] == {"done": 4}
    assert asked == {3: 4 * 3}  # the server answers each of the n samples of one call on its own

    store = Store.open(db_path, read_only=True)
    try:
        paraphrases = store.records(summary.run_id, "paraphrases")
        by_parent = Counter(r.parent_ids for r in paraphrases)
        assert len(by_parent) == 4 and set(by_parent.values()) == {3}
        for record in paraphrases:
            scenario = store.get(record.parent_ids[0])
            assert scenario.stage == "scenarios" and record.category == scenario.category
            assert (record.prompt_name, record.prompt_version, record.model) == ("paraphrase", 1, "scripted")
            assert record.seed == derive_seed(5, "paraphrases", scenario.id)
            call = store.cache_entry(record.request_key)
            assert call["request"]["n"] == 3 and call["request"]["template"] == "paraphrase@1"
            answers = [json.loads(sample["text"])["text"] for sample in call["response"]["samples"]]
            assert len(answers) == 3 and record.data["paraphrase"] in answers
        assert len({r.data["paraphrase"] for r in paraphrases}) == 12  # n distinct samples, not one repeated
    finally:
        store.close()


def test_a_stage_without_its_prompt_file_stops_before_the_run_starts(chat_server, db_path, monkeypatch):
    monkeypatch.setattr(pipeline.stages, "STAGES", [*pipeline.stages.STAGES, ParaphrasesStage])
    server = chat_server()
    raw = {
        "name": "t",
        "roles": scripted_roles(server),
        "stages": {
            "domains": {"categories": ["S1"], "scenarios_per_category": 1},
            "scenarios": {},
            "paraphrases": {},
        },
    }
    with pytest.raises(FileNotFoundError, match="no prompt template 'paraphrase'.*known: .*scenario"):
        run(raw, db_path)
    assert server.stats.requests == 0
    store = Store.open(db_path, read_only=True)
    assert store.run_ids() == []
    store.close()


class S1ParaphrasesStage(ParaphrasesStage):
    def skip(self, item: Record) -> bool:
        return item.category != "S1"


def test_skipped_items_are_done_with_no_outputs_and_no_call(
    chat_server, db_path, paraphrase_prompt, monkeypatch
):
    monkeypatch.setattr(pipeline.stages, "STAGES", [*pipeline.stages.STAGES, S1ParaphrasesStage])
    asked: list[str] = []

    def script(body: dict) -> None:
        if body["messages"][-1]["content"].startswith("Say this scenario again"):
            asked.append(body["messages"][-1]["content"])
        return None

    server = chat_server(script=script)
    raw = {
        "name": "t",
        "roles": scripted_roles(server),
        "stages": {
            "domains": {"categories": ["S1", "S2"], "scenarios_per_category": 2},
            "scenarios": {},
            "paraphrases": {"per_scenario": 2},
        },
    }
    summary = run(raw, db_path)
    assert summary.counts["paraphrases"] == {"done": 4}
    store = Store.open(db_path, read_only=True)
    try:
        scenarios = {r.id: r for r in store.records(summary.run_id, "scenarios")}
        rows = store.con.execute(
            "SELECT item_id, status, n_outputs, reason FROM progress WHERE stage = 'paraphrases'"
        ).fetchall()
        assert sorted((scenarios[i].category, s, n, r) for i, s, n, r in rows) == [
            ("S1", "done", 2, None),
            ("S1", "done", 2, None),
            ("S2", "done", 0, None),
            ("S2", "done", 0, None),
        ]
        assert {r.category for r in store.records(summary.run_id, "paraphrases")} == {"S1"}
        assert len(asked) == 2 * 2  # the two S1 scenarios, two samples each; none for S2
    finally:
        store.close()


class AttemptStage(Stage):
    """Fails each scenario on its first try after a number of attempts that depends on its domain,
    then, retried, records the attempt it was started at."""

    name = "attempts"
    consumes = ("scenarios",)
    failing = True

    async def process(self, item: Record) -> Outcome:
        await asyncio.sleep(0.05)  # the items of the stage overlap
        if AttemptStage.failing:
            raise LLMFailure("not yet", int(item.category[1:]) * 10)
        return [self.ctx.record((item,), {"attempt": self.ctx.attempt})]


def test_each_retried_item_starts_at_its_own_attempt(chat_server, db_path, monkeypatch):
    monkeypatch.setattr(pipeline.stages, "STAGES", [*pipeline.stages.STAGES, AttemptStage])
    monkeypatch.setattr(AttemptStage, "failing", True)
    server = chat_server()
    raw = {
        "name": "t",
        "roles": scripted_roles(server),
        "stages": {
            "domains": {"categories": ["S1", "S2", "S3"], "scenarios_per_category": 3},
            "scenarios": {},
            "attempts": {},
        },
    }
    assert run(raw, db_path).counts["attempts"] == {"failed": 9}
    AttemptStage.failing = False
    assert run(raw, db_path, retry_failed=True).counts["attempts"] == {"done": 9}
    store = Store.open(db_path, read_only=True)
    try:
        records = store.records(store.resolve_run(None), "attempts")
        assert sorted((r.category, r.data["attempt"]) for r in records) == sorted(
            (f"S{d}", d * 10) for d in (1, 2, 3) for _ in range(3)
        )
    finally:
        store.close()
