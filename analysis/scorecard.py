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
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from analysis import lexical, semantic
from analysis.intent import classify, intent_coverage
from analysis.tactics import tactic_coverage
from analysis.textset import TextSet

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


def score(data: TextSet, settings: ScoreSettings, embed: Embed | None) -> dict[str, Any]:
    """Every metric of `data`. Without `embed` (or with settings.semantic off) the semantic section
    is None and unlabelled texts stay without a category."""
    tokens = [lexical.tokenize(t, settings.tokens) for t in data.texts]
    stream = [token for text in tokens for token in text]
    card: dict[str, Any] = {
        "dataset": data.name,
        "run_id": data.run_id,
        "n": len(data.texts),
        "skipped": data.skipped,
        "lexical": {
            "tokens": len(stream),
            "mean_tokens": len(stream) / len(tokens) if tokens else 0.0,
            **{f"distinct_{n}": lexical.distinct_n(tokens, n) for n in (1, 2, 3)},
            "msttr": lexical.msttr(stream, settings.msttr_window),
            "mtld": lexical.mtld(stream),
            "hdd": lexical.hdd(stream),
            "self_bleu": lexical.self_bleu(tokens, settings.self_bleu_sample, settings.seed),
        },
        "settings": settings.model_dump(),
    }
    sample = _sample(len(data.texts), settings.semantic_sample, settings.seed)
    vectors = None
    if embed is not None and settings.semantic and sample:
        vectors = np.asarray(embed([data.texts[i] for i in sample]), dtype=np.float32)
        card["semantic"] = {
            "n": len(sample),
            "mean_pairwise_distance": semantic.mean_pairwise_distance(vectors),
            "vendi": semantic.vendi_score(vectors),
            "clusters": semantic.cluster_count(vectors, settings.cluster_threshold),
        }
    else:
        card["semantic"] = None
    categories, category_source = _categories(data, settings, sample, vectors, embed)
    card["intent"] = {**intent_coverage(categories, settings.min_category_items), "source": category_source}
    tactics = data.tactics if category_source != "classifier" else [data.tactics[i] for i in sample]
    has_tactics = any(tactics)
    card["tactics"] = (
        tactic_coverage(tactics, categories, list(card["intent"]["counts"])) if has_tactics else None
    )
    return card


def _sample(n: int, size: int, seed: int) -> list[int]:
    return sorted(random.Random(seed).sample(range(n), size)) if n > size else list(range(n))


def _categories(
    data: TextSet, settings: ScoreSettings, sample: list[int], vectors: np.ndarray | None, embed: Embed | None
) -> tuple[list[str | None], str]:
    """The label per text and where it came from ("given", "classifier" on the sample, "none")."""
    if settings.categories == "given" and any(data.categories):
        return data.categories, "given"
    if vectors is not None and embed is not None:
        return classify(vectors, embed), "classifier"
    return data.categories, "none"


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
