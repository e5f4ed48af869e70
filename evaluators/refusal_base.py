"""What every refusal classifier shares: the interface it answers and the base of its config.

Each kind's config lives beside its classifier (evaluators/refusal_{lists,judge,embedding,classifier}.py)
and builds it; evaluators/refusal.py gathers the kinds into the config union `RefusalConfig`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict


class RefusalClassifier(Protocol):
    name: str

    async def probabilities(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]: ...


class RefusalConfigBase(BaseModel):
    """A refusal classifier's settings (`kind` names it in a config) and how to build it."""

    model_config = ConfigDict(extra="forbid")
    # What build() must be given: "judge" (an LLM client of the judge role), "embedder", or nothing.
    needs: ClassVar[tuple[str, ...]] = ()

    def build(self, *, judge: Any = None, embedder: Any = None) -> RefusalClassifier:
        """The classifier. `judge` (pipeline.llm.client.LLMClient) and `embedder`
        (pipeline.embedder.Embedder) are given to the kinds that need them."""
        raise NotImplementedError(f"{type(self).__name__} must implement build()")
