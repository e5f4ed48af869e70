"""Persona expansion (TRIDENT step 4, Persona Hub's persona-to-persona): from each persona, personas
"in a close relationship" with it, iterated to a depth. A persona of depth d is expanded while
d < depth; the relation named in the prompt is drawn per persona from its seed, so expansions do not
all go one way."""

from __future__ import annotations

RELATIONS = (
    "colleague", "sibling", "client", "mentor", "neighbour", "rival", "child", "friend since school",
    "employee", "landlord", "online acquaintance", "former partner", "teacher", "business partner",
)  # fmt: skip


def relation(seed: int) -> str:
    """The relation a persona's expansion asks about, fixed by the persona's seed."""
    return RELATIONS[seed % len(RELATIONS)]


def expands(persona_depth: int, depth: int) -> bool:
    """Whether a persona `persona_depth` steps from its scenario is expanded further."""
    return persona_depth < depth
