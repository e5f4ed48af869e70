"""Faults on the TRIDENT path: schema-breaking answers are retried, then recorded with their reason;
responses that keep complying fail the item; --retry-failed completes the run to its targets without
overshooting them; a guard model's native answers work as the judge; config mistakes are named."""

from __future__ import annotations

import pytest

from pipeline.config import ConfigError, validate_config
from pipeline.stages import STAGES
from pipeline.stages.safety_filter import parse_guard
from pipeline.status import run_status
from tests.pipeline.stages.conftest import TACTICS, Run, run, trident_config
from tests.pipeline.stages.trident_world import World

DOMAINS = ["S1", "S2", "S10", "S14"]


def test_schema_breaks_and_complying_responses_are_failures_until_retried(chat_server, db_path):
    world = World(
        break_schema={"Persona": "intent domain: Hate", "RewriteAnswer": "Tactic: past tense"},
        comply_always={"[S2"},
    )
    server = chat_server(script=world)
    raw = trident_config(server)
    summary = run(raw, db_path)
    assert summary.counts["personas"] == {"done": 6, "failed": 2}
    assert summary.counts["rewrite"]["failed"] == 5

    result = Run(db_path)
    reasons = {(f["stage"], f["reason"]): f["count"] for f in result.store.failure_reasons(result.run_id)}
    persona_reason = next(r for s, r in reasons if s == "personas")
    assert persona_reason.startswith("answer broke the Persona schema 3 time(s); last: not valid JSON")
    assert next(r for s, r in reasons if s == "rewrite").startswith("answer broke the RewriteAnswer schema")
    assert (
        reasons[
            ("core", "no acceptable response in 3 attempt(s); last: judged complies: it does what was asked")
        ]
        == 6
    )
    coverage = run_status(result.store, result.run_id, STAGES)["coverage"]
    assert coverage["category"]["S10"] == {"target": 6, "selected": 0, "final": 0}
    assert coverage["category"]["S2"] == {"target": 6, "selected": 6, "final": 0}
    assert coverage["tactic"]["past_tense"] == {"target": 5, "selected": 5, "final": 0}
    for name in TACTICS[:2]:  # S2 instructions fail their responses on edge too
        not_s2 = sum(r.category != "S2" for r in result.records("tactics") if r.tactic == name)
        assert coverage["tactic"][name] == {"target": 5, "selected": 5, "final": not_s2}
    result.close()

    world.break_schema.clear()
    world.comply_always.clear()
    summary = run(raw, db_path, retry_failed=True)
    assert not any(counts.get("failed") for counts in summary.counts.values())
    result = Run(db_path)
    assert result.count("core", "category") == {code: 6 for code in DOMAINS}  # filled, not overshot
    assert result.count("edge", "tactic") == {name: 5 for name in TACTICS}
    result.close()


def test_a_served_guard_model_judges_in_its_own_format(chat_server, db_path):
    world = World(safe_every=4, comply_always={"[S1]"})
    server = chat_server(script=world)
    stages = {"tactics": None, "rewrite": None, "edge": None}
    guard = {"guard_model": True}
    run(trident_config(server, safety_filter=guard, core=guard, **stages), db_path)
    result = Run(db_path)
    assert "LlamaGuardPrompt" not in world.calls and "ResponseCheck" not in world.calls
    outcomes = result.outcomes("safety_filter")
    for record in result.records("instructions"):
        status, reason = outcomes[record.id]
        assert (status == "dropped") == ("/safe]" in record.data["instruction"])
    kept = result.records("safety_filter")
    assert kept and all(r.data["judged_category"] == r.category and r.prompt_name is None for r in kept)
    assert result.count("core", "category") == {"S2": 6, "S10": 6, "S14": 6}  # S1 replies judged unsafe
    reasons = {f["reason"] for f in result.store.failure_reasons(result.run_id)}
    assert reasons == {"no acceptable response in 3 attempt(s); last: judged unsafe (S2)"}
    result.close()


def test_guard_answers_are_parsed_or_refused():
    assert parse_guard("safe").verdict == "safe"
    unsafe = parse_guard("\n unsafe\nS1, S10,S3 \n")
    assert (unsafe.verdict, unsafe.categories) == ("unsafe", ["S1", "S10", "S3"])
    with pytest.raises(Exception, match="neither safe nor unsafe"):
        parse_guard("I think this is fine")


def test_the_same_config_gives_the_same_datasets(chat_server, tmp_path):
    server = chat_server(script=World(safe_every=5, dup_every=4))
    raw = trident_config(server)
    ids = []
    for name in ("a", "b"):
        run(raw, tmp_path / f"{name}.duckdb")
        result = Run(tmp_path / f"{name}.duckdb")
        ids.append(
            {stage: sorted(r.id for r in result.records(stage)) for stage in ("dedup", "core", "edge")}
        )
        result.close()
    assert ids[0] == ids[1] and ids[0]["edge"]


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        (
            {"tactics": {"tactics": ["cipher", "vigenere"]}},
            r"stages\.tactics\.tactics.*unknown tactics \['vigenere'\]",
        ),
        ({"tactics": {"per_tactic": 0}}, r"stages\.tactics\.per_tactic"),
        ({"dedup": {"per_category": 0}}, r"stages\.dedup\.per_category"),
        ({"related_personas": {"depth": -1}}, r"stages\.related_personas\.depth"),
        ({"persona_pool": {"cosine": 2}}, r"stages\.persona_pool\.cosine"),
        ({"core": {"max_attempts": 0}}, r"stages\.core\.max_attempts"),
        (
            {"safety_filter": {"guard": True}},
            r"stages\.safety_filter\.guard: unknown key \(did you mean 'guard_model'\?\)",
        ),
        ({"persona_pool": None}, r"stages\.instructions: needs stage 'persona_pool'"),
    ],
)
def test_config_mistakes_name_the_field(chat_server, stages, message):
    server = chat_server()
    with pytest.raises(ConfigError, match=message):
        validate_config(trident_config(server, **stages), stages=STAGES)
