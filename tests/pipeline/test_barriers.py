"""Barriers that decide part of their inputs early: the persona pool decides the scenario personas as
soon as the personas stage has finished, and instructions start on them while the expansion runs.
The dataset is the one a strict barrier (waiting for every persona) makes: the same records, the same
outcomes and reasons, in a world where personas repeat within the scenarios and across depths."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.config import validate_config
from pipeline.records import Record
from pipeline.runner import Runner
from pipeline.stage import Outcome, Stage
from pipeline.stages import STAGES
from pipeline.stages.persona_pool import PersonaPoolStage
from pipeline.stages.related_personas import RelatedPersonasStage
from pipeline.store import Store
from pipeline.taxonomy import hazard
from tests.ops.helpers import dataset
from tests.pipeline.stages.conftest import trident_config
from tests.pipeline.stages.trident_world import World
from tests.servers.chat_server import ChatServer, Latency

TRIDENT = ("domains", "scenarios", "personas", "related_personas", "persona_pool", "instructions",
           "safety_filter", "dedup", "core", "tactics", "rewrite", "edge")  # fmt: skip
_PERSONA = re.compile(r"^(.*) Occupation: (.*)\. Personality: (.*)\. Opinions: (.*) Life experience: (.*)$")


class RepeatingPersonas(World):
    """The TRIDENT world, with personas that repeat: every scenario of S1 gets the same persona (so
    scenario personas repeat each other), and one related persona in two copies the persona it
    relates to (so expansions repeat the scenario personas)."""

    def _Persona(self, user: str, seed: Any, body: dict) -> dict:
        if user.startswith("Persona: "):
            if int(hashlib.sha256(f"{user}{seed}".encode()).hexdigest(), 16) % 2 == 0:
                parent = user.removeprefix("Persona: ").split("\n\n", 1)[0]
                summary, occupation, traits, opinions, life = _PERSONA.match(parent).groups()
                return {"summary": summary, "occupation": occupation, "opinions": opinions,
                        "personality_traits": traits.split(", "), "life_experience": life}  # fmt: skip
        elif f"(intent domain: {hazard('S1').name})" in user:
            return super()._Persona("S1", None, body)
        return super()._Persona(user, seed, body)


class StrictPool(PersonaPoolStage):
    """The persona pool as a strict barrier: it waits for every persona."""

    def early_inputs(self) -> tuple[str, ...]:
        return ()


class SlowExpansion(RelatedPersonasStage):
    """Related personas that take a while, one at a time (`run` sets its concurrency to 1), so the
    expansion is still running when the scenario personas are pooled."""

    async def process(self, item: Record) -> Outcome:
        await asyncio.sleep(0.1)
        return await super().process(item)


def stages_with(*replacements: type[Stage]) -> list[type[Stage]]:
    by_name = {cls.name: cls for cls in replacements}
    return [by_name.get(cls.name, cls) for cls in STAGES]


@pytest.fixture(scope="module")
def world():
    with ChatServer(script=RepeatingPersonas(), latency=Latency(base=0.005)) as server:
        yield server


def run(world: ChatServer, db: Path, stages: list[type[Stage]], **settings: Any) -> None:
    raw = trident_config(world, name="barriers", seed=5, related_personas={"concurrency": 1}, **settings)
    store = Store.open(db)
    try:
        Runner(validate_config(raw, stages=stages), store, argv=["test"]).run()
    finally:
        store.close()


def outcomes(db: Path) -> dict[tuple[str, str], tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT stage, item_id, status, n_outputs, reason FROM progress").fetchall()
    finally:
        con.close()
    return {(stage, item): rest for stage, item, *rest in rows}


def first_and_last(db: Path, stage: str) -> tuple[int, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT min(seq), max(seq) FROM records WHERE stage = ?", [stage]).fetchone()
    finally:
        con.close()


@pytest.fixture(scope="module")
def strict(world, tmp_path_factory):
    db = tmp_path_factory.mktemp("strict") / "strict.duckdb"
    run(world, db, stages_with(StrictPool, SlowExpansion))
    return db


def test_pooling_the_scenario_personas_early_makes_the_strict_barriers_dataset(world, strict, tmp_path):
    db = tmp_path / "early.duckdb"
    run(world, db, stages_with(SlowExpansion))
    assert dataset(db, TRIDENT) == dataset(strict, TRIDENT)
    assert outcomes(db) == outcomes(strict)  # statuses, output counts and reasons too
    pooled = {item: rest for (stage, item), rest in outcomes(db).items() if stage == "persona_pool"}
    personas = dataset(db, ("personas", "related_personas"))
    data = {item: rest[0] for records in personas.values() for item, rest in records.items()}
    depth = {item: (json.loads(d) if isinstance(d, str) else d)["depth"] for item, d in data.items()}
    dropped = {item: reason for item, (status, _, reason) in pooled.items() if status == "dropped"}
    # Both decisions had work: scenario personas that repeat each other, and expansions that repeat
    # a scenario persona decided before them, named by its id as a single decision names it.
    assert any(depth[item] == 0 for item in dropped)
    named = [re.match(r"duplicate of persona (\w+) ", reason).group(1) for reason in dropped.values()]
    assert any(depth[item] == 1 and depth[of] == 0 for item, of in zip(dropped, named, strict=True))
    assert dataset(db, ("core",))["core"] and dataset(db, ("edge",))["edge"]


def test_instructions_start_while_the_expansion_still_runs(world, strict, tmp_path):
    db = tmp_path / "early.duckdb"
    run(world, db, stages_with(SlowExpansion))
    assert first_and_last(db, "instructions")[0] < first_and_last(db, "related_personas")[1]
    # A strict pool waits for the last related persona.
    assert first_and_last(strict, "instructions")[0] > first_and_last(strict, "related_personas")[1]


def test_a_pool_pairing_several_domains_per_persona_waits_for_every_persona(world, tmp_path):
    """Pairing more domains counts the own domain of every kept persona: nothing is decided early."""
    db = tmp_path / "several.duckdb"
    run(world, db, stages_with(SlowExpansion), persona_pool={"domains_per_persona": 2})
    assert first_and_last(db, "instructions")[0] > first_and_last(db, "related_personas")[1]
