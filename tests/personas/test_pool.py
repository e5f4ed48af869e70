"""The persona pool, expansion and persona records, without the runner: shallow personas win over
their near-duplicates, earlier sessions' personas count, every kept persona gets its domains."""

from __future__ import annotations

from evaluators.dedup import find_duplicates
from personas.expansion import RELATIONS, expands, relation
from personas.model import Persona
from personas.pool import pool_personas
from personas.records import persona_records
from pipeline.context import RunContext
from pipeline.llm.types import ChatRequest, Completion, Result, Sample
from pipeline.records import Record

BASE = "A retired chemistry teacher in a small town who resents the school board and keeps a notebook"


def minhash(texts, reference):
    return find_duplicates(texts, reference=reference, jaccard=0.7)


def persona(text: str, depth: int, category: str, n: int) -> Record:
    return Record(
        id=f"p{n}", run_id="r", stage="personas", data={"text": text, "depth": depth}, category=category
    )


def test_a_near_duplicate_is_dropped_in_favour_of_the_shallower_persona():
    deep = persona(BASE + " of grievances.", 1, "S2", 1)
    shallow = persona(BASE + " of grievances!", 0, "S1", 2)
    other = persona("A night-shift nurse who organises a union drive and distrusts management", 1, "S3", 3)
    pool = pool_personas([deep, other, shallow], [], minhash, 1, seed=7)
    assert [(p.id, codes) for p, codes in pool.kept] == [("p2", ["S1"]), ("p3", ["S3"])]
    assert pool.dropped.keys() == {"p1"} and pool.dropped["p1"].startswith("duplicate of persona p2 (")


def test_personas_pooled_in_earlier_sessions_are_not_pooled_again_and_their_domains_count():
    earlier = [
        Record(
            id="e1",
            run_id="r",
            stage="persona_pool",
            data={"persona": BASE + "."},
            category="S1",
            parent_ids=("p0",),
        ),
        Record(
            id="e2",
            run_id="r",
            stage="persona_pool",
            data={"persona": "someone else"},
            category="S2",
            parent_ids=("p9",),
        ),
    ]
    again = persona(BASE + ".", 0, "S3", 1)
    fresh = persona("A logistics manager at a port who owes money to the wrong people", 0, "S1", 2)
    pool = pool_personas([again, fresh], earlier, minhash, 2, seed=7)
    assert pool.dropped == {"p1": pool.dropped["p1"]}
    assert pool.dropped["p1"].startswith("duplicate of persona p0 (")  # the persona that pair came from
    # Its own S1, then the least used of S2 (paired in an earlier session) and S3 (never): S3.
    assert [(p.id, codes) for p, codes in pool.kept] == [("p2", ["S1", "S3"])]


def test_expansion_stops_at_the_depth_and_names_a_relation_fixed_by_the_seed():
    assert expands(0, 1) and not expands(1, 1) and not expands(0, 0)
    assert relation(3) == RELATIONS[3] and relation(3 + len(RELATIONS)) == RELATIONS[3]


def test_persona_answers_become_one_record_each_with_the_call_in_the_lineage():
    ctx = RunContext("run", 5, None, None, None).for_stage("personas")  # type: ignore[arg-type]
    scenario = Record(id="s1", run_id="run", stage="scenarios", data={"scenario": "x"}, category="S4")
    answer = {
        "summary": "A bookkeeper.",
        "occupation": "bookkeeper",
        "personality_traits": ["meticulous"],
        "opinions": "Rules are for others.",
        "life_experience": "Lost a business.",
    }
    request = ChatRequest(
        messages=({"role": "user", "content": "q"},), model="m", template="persona@2", seed=9
    )
    result = Result(request=request, completion=Completion(samples=[Sample(text="{}")] * 2), key="k")
    twice = [Persona.model_validate(answer), Persona.model_validate(answer)]
    (record,) = persona_records(ctx, scenario, result, twice, depth=0)  # the repeat is kept once
    assert record.persona_id == record.id and record.category == "S4" and record.parent_ids == ("s1",)
    assert record.data["depth"] == 0 and record.data["text"].startswith(
        "A bookkeeper. Occupation: bookkeeper."
    )
    assert (record.prompt_name, record.prompt_version, record.model, record.seed, record.request_key) == (
        "persona",
        2,
        "m",
        9,
        "k",
    )
