"""A dataset's scorecard on TRIDENT's three risk-coverage dimensions (lexical diversity, malicious
intent, jailbreak tactics) plus semantic diversity. The store keeps them in its `scorecards` table
(`store.save_scorecards`, `store.latest_scorecards`, `store.scorecard_history`).

A scorecard is plain JSON: {"dataset", "run_id", "n", "skipped", "lexical": {...}, "semantic":
{...} | None, "intent": {...}, "tactics": {...} | None, "settings": {...}}. Semantic metrics (and
the offline intent classifier) use a seeded sample of `semantic_sample` texts, so datasets of
different sizes are compared at the same n.
"""

from __future__ import annotations

import random
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from analysis import lexical, semantic
from analysis.intent import classify, intent_coverage
from analysis.lexical_stream import LexicalStream
from analysis.tactics import tactic_coverage
from analysis.textset import StageTexts, TextSet

Embed = Callable[[list[str]], np.ndarray]


class ScoreSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tokens: lexical.Convention = Field(
        default="evorefuse", description="how texts become tokens (analysis.lexical.tokenize)"
    )
    msttr_window: int = Field(default=800, ge=1, description="MSTTR window in tokens (EvoRefuse: 800)")
    self_bleu_sample: int = Field(default=1000, ge=2, description="texts sampled for Self-BLEU")
    semantic_sample: int = Field(default=10_000, ge=2, description="texts embedded for semantic metrics")
    cluster_threshold: float = Field(default=0.8, ge=-1, le=1, description="cosine joining two texts")
    min_category_items: int = Field(default=10, ge=1, description="k in 'categories with >= k texts'")
    categories: Literal["given", "classifier"] = Field(
        default="given", description="category labels as given (else the classifier), or always classified"
    )
    semantic: bool = Field(default=True, description="compute embeddings (semantic metrics, classifier)")
    seed: int = 0


def score(data: TextSet | StageTexts, settings: ScoreSettings, embed: Embed | None) -> dict[str, Any]:
    """Every metric of `data`, read in one streamed pass (see the module's docstring). Without `embed`
    (or with settings.semantic off) the semantic section is None and unlabelled texts stay without a
    category."""
    sample = _sample(data.n, settings.semantic_sample, settings.seed)
    wanted = iter(sample)
    next_wanted = next(wanted, None)
    sampled_texts: list[str] = []
    sampled_tactics: list[str | None] = []
    labels: Counter[str] = Counter()
    tactics: Counter[str] = Counter()
    cells: Counter[tuple[str, str]] = Counter()
    index = 0
    with tempfile.TemporaryDirectory(prefix="safeset-score-") as folder:
        lexical_stream = LexicalStream(settings.tokens, Path(folder))
        for texts, categories, text_tactics in data.batches():
            lexical_stream.add(texts)
            labels.update(c for c in categories if c)
            tactics.update(t for t in text_tactics if t)
            cells.update((t, c) for t, c in zip(text_tactics, categories, strict=True) if t and c)
            while next_wanted is not None and next_wanted < index + len(texts):
                sampled_texts.append(texts[next_wanted - index])
                sampled_tactics.append(text_tactics[next_wanted - index])
                next_wanted = next(wanted, None)
            index += len(texts)
        lexical_card = lexical_stream.metrics(settings.msttr_window, settings.self_bleu_sample, settings.seed)
    card: dict[str, Any] = {
        "dataset": data.name,
        "run_id": data.run_id,
        "n": index,
        "skipped": data.skipped,
        "lexical": lexical_card,
        "settings": settings.model_dump(),
    }
    vectors = None
    if embed is not None and settings.semantic and sample:
        vectors = np.asarray(embed(sampled_texts), dtype=np.float32)
        card["semantic"] = {
            "n": len(sample),
            "mean_pairwise_distance": semantic.mean_pairwise_distance(vectors),
            "vendi": semantic.vendi_score(vectors),
            "clusters": semantic.cluster_count(vectors, settings.cluster_threshold),
        }
    else:
        card["semantic"] = None
    if settings.categories == "given" and labels:
        category_source = "given"
    elif vectors is not None and embed is not None:
        # the classifier labels the semantic sample, so coverage is the sample's
        category_source = "classifier"
        classified = classify(vectors, embed)
        labels = Counter(classified)
        tactics = Counter(t for t in sampled_tactics if t)
        cells = Counter((t, c) for t, c in zip(sampled_tactics, classified, strict=True) if t)
    else:
        category_source = "none"
    unlabelled = (len(sample) if category_source == "classifier" else index) - sum(labels.values())
    card["intent"] = {
        **intent_coverage(labels, unlabelled, settings.min_category_items),
        "source": category_source,
    }
    card["tactics"] = tactic_coverage(tactics, cells, list(card["intent"]["counts"])) if tactics else None
    return card


def _sample(n: int, size: int, seed: int) -> list[int]:
    return sorted(random.Random(seed).sample(range(n), size)) if n > size else list(range(n))


def token_convention(card: dict[str, Any]) -> str:
    """The scorecard's token convention in words (cards stored before it was a setting used words)."""
    name = card["settings"].get("tokens", "words")
    return f"{name}: {lexical.CONVENTIONS[name]}"


def headline(card: dict[str, Any]) -> dict[str, float | int | None]:
    """The scorecard's one-number metrics, in the order tables show them."""
    lex, sem, intent, tac = card["lexical"], card["semantic"] or {}, card["intent"], card["tactics"] or {}
    return {
        "items": card["n"],
        "distinct-1": lex["distinct_1"],
        "distinct-2": lex["distinct_2"],
        "distinct-3": lex["distinct_3"],
        f"MSTTR-{card['settings']['msttr_window']}": lex["msttr"],
        "MTLD": lex["mtld"],
        "HD-D": lex["hdd"],
        "Self-BLEU": lex["self_bleu"],
        "cosine distance": sem.get("mean_pairwise_distance"),
        "Vendi": sem.get("vendi"),
        "clusters": sem.get("clusters"),
        "intent entropy": intent["entropy"],
        "intent evenness": intent["normalised_entropy"],
        "intent Gini": intent["gini"],
        f"categories ≥{intent['min_items']}": intent["categories_with_min_items"],
        "tactics": tac.get("distinct"),
        "tactic evenness": tac.get("evenness"),
        "tactic×category fill": tac.get("fill"),
    }
