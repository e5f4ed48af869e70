"""The persona pool: every persona (from scenarios and their expansion), near-duplicates removed,
each kept persona paired with the intent domains it will ask about (personas.sampling)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from personas.sampling import pair_domains
from pipeline.records import Record

# (texts, reference texts) -> per text None, or the duplicate it is (with `of`, `method`, `score`;
# evaluators.dedup.Duplicate), `of` indexing reference + texts.
FindDuplicates = Callable[[Sequence[str], Sequence[str]], list[Any]]


@dataclass(frozen=True)
class Pool:
    kept: list[tuple[Record, list[str]]]  # persona record, the domain codes it asks about
    dropped: dict[str, str]  # persona record id -> why it was left out


def pool_personas(
    personas: list[Record],
    earlier: list[Record],
    find_duplicates: FindDuplicates,
    domains_per_persona: int,
    seed: int,
) -> Pool:
    """Pool `personas` (persona records) given the pairs `earlier` sessions of the run made. Shallow
    personas win ties; domains are those of every persona seen, and each kept persona asks about its
    own first, then the least used (counting the earlier pairs)."""
    personas = sorted(personas, key=lambda r: (r.data["depth"], r.id))
    # Pooled in earlier sessions (or early in this one: the scenario personas), each text with the
    # persona it came from, in the personas' order (which breaks ties between equal matches).
    pooled: dict[str, str] = {}
    for record in sorted(earlier, key=lambda r: r.parent_ids[0]):
        pooled.setdefault(record.data["persona"], record.parent_ids[0])
    reference = list(pooled)
    duplicates = find_duplicates([r.data["text"] for r in personas], reference)
    kept, dropped = [], {}
    for persona, dup in zip(personas, duplicates, strict=True):
        if dup is None:
            kept.append(persona)
            continue
        of = pooled[reference[dup.of]] if dup.of < len(reference) else personas[dup.of - len(reference)].id
        dropped[persona.id] = f"duplicate of persona {of} ({dup.method} {dup.score:.2f})"
    domains = sorted({r.category for r in [*personas, *earlier]}, key=lambda code: int(code[1:]))
    per_persona = min(domains_per_persona, len(domains))
    used = Counter(r.category for r in earlier)
    pairs = pair_domains([r.category for r in kept], domains, per_persona, seed, used)
    return Pool(list(zip(kept, pairs, strict=True)), dropped)
