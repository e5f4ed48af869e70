"""Persona answers as records: one per distinct persona sampled in a call, with its fields, its text
and its depth in the expansion. A persona is its own `persona_id`, which every record made from it
(its expansions, its instructions, their responses) inherits."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from personas.model import Persona
from pipeline.llm.types import Result
from pipeline.records import Record

if TYPE_CHECKING:
    from pipeline.context import StageContext


def persona_records(
    ctx: StageContext, item: Record, result: Result, personas: list[Persona], depth: int
) -> list[Record]:
    """The records of `personas`, answers of `result` to `item`; repeated personas are kept once."""
    records: dict[str, Record] = {}
    for persona in personas:
        data = {**persona.model_dump(), "text": persona.text(), "depth": depth}
        record = ctx.record((item,), data, made_by=result)
        records.setdefault(record.id, dataclasses.replace(record, persona_id=record.id))
    return list(records.values())
