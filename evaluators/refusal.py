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

    classifier = build_refusal_classifier(ClassifierConfig(kind="classifier"), embedder=Embedder())
    rates = await classifier.probabilities(["How do I kill a process?"], ["Sorry, I can't help."])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class RefusalClassifier(Protocol):
    name: str

    async def probabilities(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]: ...


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PrefixConfig(_Config):
    """A refusal starts with one of `phrases` (XSTest's string match; default list in
    data/refusal/phrases.yaml)."""

    kind: Literal["prefix"]
    phrases: list[str] | None = Field(default=None, min_length=1, description="default: the XSTest set")
    ignore_case: bool = True


class SubstringConfig(_Config):
    """A refusal contains one of `phrases` anywhere (GCG/AutoDAN-style test prefixes)."""

    kind: Literal["substring"]
    phrases: list[str] | None = Field(default=None, min_length=1, description="default: the GCG-style set")
    ignore_case: bool = False


class JudgeConfig(_Config):
    """An LLM judge (the `judge` role). `binary`: refusal / normal. `xstest`: full_compliance /
    full_refusal / partial_refusal, a partial refusal counting `partial`."""

    kind: Literal["judge"]
    scheme: Literal["binary", "xstest"] = "binary"
    votes: int = Field(default=1, ge=1, description="answers sampled per response; p̂ is their mean")
    temperature: float = Field(default=0.0, ge=0, le=2)
    partial: float = Field(default=0.5, ge=0, le=1)
    max_tokens: int = Field(default=64, ge=8)

    @model_validator(mode="after")
    def _votes_need_sampling(self) -> JudgeConfig:
        if self.votes > 1 and self.temperature == 0:
            raise ValueError("votes > 1 needs temperature > 0, or every vote is the same")
        return self


class EmbeddingConfig(_Config):
    """Sentence embeddings + logistic regression, trained at first use on `examples` (jsonl with
    `response` and `refusal` (true/false); default data/refusal/responses.jsonl)."""

    kind: Literal["embedding"]
    examples: str | None = None
    regularization: float = Field(default=4.0, gt=0, description="inverse L2 strength (C)")


class ClassifierConfig(_Config):
    """The calibrated refusal classifier (evaluators/refusal_classifier.py): `model` is a model file
    built by `python -m evaluators.refusal_train`; default data/refusal/classifier.json."""

    kind: Literal["classifier"]
    model: str | None = None

    @field_validator("model")
    @classmethod
    def _model_exists(cls, model: str | None) -> str | None:
        if model is not None and not Path(model).is_file():
            raise ValueError(f"{model}: file not found; build one with python -m evaluators.refusal_train")
        return model


RefusalConfig = Annotated[
    PrefixConfig | SubstringConfig | JudgeConfig | EmbeddingConfig | ClassifierConfig,
    Field(discriminator="kind"),
]


def build_refusal_classifier(config: Any, *, judge: Any = None, embedder: Any = None) -> RefusalClassifier:
    """The classifier a config names. `judge` (an LLMClient) is needed by `judge`, `embedder`
    (pipeline.embedder.Embedder) by `embedding` and `classifier`."""
    if isinstance(config, PrefixConfig | SubstringConfig):
        from evaluators.refusal_lists import PhraseClassifier

        return PhraseClassifier.from_config(config)
    if isinstance(config, JudgeConfig):
        from evaluators.refusal_judge import JudgeClassifier

        if judge is None:
            raise ValueError("the judge refusal classifier needs an LLM client for the judge role")
        return JudgeClassifier(config, judge)
    if isinstance(config, EmbeddingConfig):
        from evaluators.refusal_embedding import EmbeddingClassifier

        if embedder is None:
            raise ValueError("the embedding refusal classifier needs an embedder")
        return EmbeddingClassifier(config, embedder)
    if isinstance(config, ClassifierConfig):
        from evaluators.refusal_classifier import CalibratedClassifier

        if embedder is None:
            raise ValueError("the calibrated refusal classifier needs an embedder")
        return CalibratedClassifier(config, embedder)
    raise TypeError(f"not a refusal classifier config: {config!r}")
