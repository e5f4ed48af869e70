"""Near-duplicate instructions are dropped within a run, against earlier runs and against reference
files; distinct ones are kept."""

from __future__ import annotations

import json
import re

import pytest

from pipeline.config import ConfigError
from pipeline.stages import STAGES
from tests.pipeline.stages.conftest import Run, run, trident_config
from tests.pipeline.stages.trident_world import World

UP_TO_DEDUP = {"core": None, "tactics": None, "rewrite": None, "edge": None}


def core_words(instruction: str) -> str:
    """The words of an instruction without its tag and the planted "Please," of a near-duplicate."""
    return re.sub(r"^\[[^\]]*\] (Please, )?", "", instruction).rstrip("?!")


def test_planted_near_duplicates_are_dropped_and_distinct_ones_kept(chat_server, db_path):
    server = chat_server(script=World(dup_every=3))
    raw = trident_config(server, dedup={"per_category": None, "cosine": 0.9}, **UP_TO_DEDUP)
    run(raw, db_path)
    result = Run(db_path)
    candidates = result.records("safety_filter")
    outcomes = result.outcomes("dedup")
    groups: dict[str, list] = {}  # an instruction and its planted near-copies
    for record in candidates:
        groups.setdefault(core_words(record.data["instruction"]), []).append(record)
    assert sum(len(g) > 1 for g in groups.values()) >= 4
    for group in groups.values():
        statuses = [outcomes[r.id][0] for r in group]
        assert statuses.count("done") == 1  # one of each group is kept, every distinct one is
        kept_id = group[statuses.index("done")].id
        for record in group:
            status, reason = outcomes[record.id]
            if status == "dropped":
                pattern = rf"near-duplicate of instruction {kept_id} \((exact|minhash|embedding) [\d.]+\)"
                assert re.fullmatch(pattern, reason), reason
    kept = [r.data["instruction"] for r in result.records("dedup")]
    assert len({core_words(t) for t in kept}) == len(kept)
    result.close()


def test_instructions_kept_by_an_earlier_run_are_duplicates(chat_server, db_path):
    server = chat_server(script=World(seedless=True))  # a second run asks the same and gets the same
    keep_all = {"per_category": None}
    run(trident_config(server, name="first", dedup=keep_all, **UP_TO_DEDUP), db_path)
    first = Run(db_path)
    first_id, first_kept = first.run_id, {r.data["instruction"] for r in first.records("dedup")}
    first.close()

    run(trident_config(server, name="second", dedup=keep_all, **UP_TO_DEDUP), db_path)
    second = Run(db_path)
    outcomes = second.outcomes("dedup")
    repeated = [r for r in second.records("safety_filter") if r.data["instruction"] in first_kept]
    assert len(repeated) >= 16  # the instructions of the unexpanded personas, at least
    for record in repeated:
        assert outcomes[record.id] == (
            "dropped",
            f"near-duplicate of an instruction of run {first_id} (exact 1.00)",
        )
    assert len(second.records("dedup")) < len(outcomes) - len(repeated) + 1
    second.close()

    run(
        trident_config(server, name="third", dedup={"across_runs": False, **keep_all}, **UP_TO_DEDUP), db_path
    )
    third = Run(db_path)
    assert not any("of run" in (reason or "") for _, reason in third.outcomes("dedup").values())
    assert third.records("dedup")
    third.close()


def test_reference_datasets_count_as_earlier(chat_server, db_path, tmp_path):
    server = chat_server(script=World(seedless=True))
    keep_all = {"per_category": None}
    run(trident_config(server, name="source", dedup=keep_all, **UP_TO_DEDUP), tmp_path / "other.duckdb")
    source = Run(tmp_path / "other.duckdb")
    known = {r.data["instruction"] for r in source.records("dedup")}
    source.close()
    reference = tmp_path / "reference.jsonl"  # the same requests, shouted
    reference.write_text("".join(json.dumps({"prompt": text.upper() + " !"}) + "\n" for text in known))

    dedup = {"reference": [str(reference)], "reference_column": "prompt", **keep_all}
    run(trident_config(server, name="source", dedup=dedup, **UP_TO_DEDUP), db_path)
    result = Run(db_path)
    outcomes = result.outcomes("dedup")
    repeated = [r for r in result.records("safety_filter") if r.data["instruction"] in known]
    assert len(repeated) >= 16
    for record in repeated:
        assert outcomes[record.id] == ("dropped", f"near-duplicate of a row of {reference} (exact 1.00)")
    result.close()


def test_a_missing_reference_file_is_a_config_error(chat_server, tmp_path):
    server = chat_server()
    from pipeline.config import validate_config

    raw = trident_config(server, dedup={"reference": [str(tmp_path / "nope.jsonl")]})
    with pytest.raises(ConfigError, match=r"stages\.dedup\.reference.*does not exist"):
        validate_config(raw, stages=STAGES)
