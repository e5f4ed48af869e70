"""Refusal detection: one interface, several classifiers, chosen by config.

Every classifier answers `await classifier.probabilities(prompts, responses)` with p̂(refusal) per
response, in [0, 1]. The kinds:

- `prefix` / `substring`: phrase lists (XSTest's startswith set; the GCG-style substring set). 0 or 1.
- `judge`: an LLM judge through the LLM client, either refusal/normal or XSTest's full compliance /
  full refusal / partial refusal; with `votes > 1` the share of votes.
- `classifier` (the default): a calibrated logistic regression over MiniLM embeddings of the opening
  and of the whole response plus phrase-list hits, built by evaluators/refusal_train.py and validated
  on real labelled responses (evaluators/refusal_validate.py).
- `embedding`: all-MiniLM-L6-v2 embeddings and a logistic regression trained at first use on short
  labelled refusing and complying responses shipped in data/refusal/ (or a file of your own).

Each kind's config class sits beside its classifier (evaluators/refusal_lists.py, refusal_judge.py,
refusal_embedding.py, refusal_classifier.py) and builds it (`config.build(judge=..., embedder=...)`);
this module gathers them into the union `RefusalConfig`, chosen by `kind`.

    classifier = build_refusal_classifier(ClassifierConfig(kind="classifier"), embedder=Embedder())
    rates = await classifier.probabilities(["How do I kill a process?"], ["Sorry, I can't help."])
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from evaluators.refusal_base import RefusalClassifier, RefusalConfigBase
from evaluators.refusal_classifier import ClassifierConfig
from evaluators.refusal_embedding import EmbeddingConfig
from evaluators.refusal_judge import JudgeConfig
from evaluators.refusal_lists import PrefixConfig, SubstringConfig

# Every kind, told apart by `kind`. A new kind: a config class with `build` beside its classifier, added here.
RefusalConfig = Annotated[
    PrefixConfig | SubstringConfig | JudgeConfig | EmbeddingConfig | ClassifierConfig,
    Field(discriminator="kind"),
]


def build_refusal_classifier(
    config: RefusalConfigBase, *, judge: Any = None, embedder: Any = None
) -> RefusalClassifier:
    """The classifier a config names. `judge` (an LLMClient) is needed by `judge`, `embedder`
    (pipeline.embedder.Embedder) by `embedding` and `classifier`."""
    if not isinstance(config, RefusalConfigBase):
        raise TypeError(f"not a refusal classifier config: {config!r}")
    return config.build(judge=judge, embedder=embedder)


__all__ = [
    "ClassifierConfig",
    "EmbeddingConfig",
    "JudgeConfig",
    "PrefixConfig",
    "RefusalClassifier",
    "RefusalConfig",
    "SubstringConfig",
    "build_refusal_classifier",
]
