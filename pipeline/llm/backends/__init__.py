"""Backend registry: one module per backend, imported only when a role uses it.

A backend turns a `ChatRequest` into a `Completion` (`async complete`) and releases what it holds
(`async aclose`). Retries of transport faults are the backend's; schema retries and caching are the
client's (pipeline.llm.client).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol

from pipeline.llm.types import ChatRequest, Completion, FatalLLMError

_REGISTRY = {
    "openai": "pipeline.llm.backends.openai_backend:OpenAIBackend",
    "hf": "pipeline.llm.backends.hf_backend:HFBackend",
    "vllm": "pipeline.llm.backends.vllm_backend:VLLMBackend",
}


class Backend(Protocol):
    async def complete(self, request: ChatRequest) -> Completion: ...

    async def aclose(self) -> None: ...


def create_backend(config) -> Backend:
    module_name, class_name = _REGISTRY[config.backend].split(":")
    return getattr(importlib.import_module(module_name), class_name)(config)


def check_local_model(backend: str, model: str) -> None:
    """Fail at once, without importing the engine, when a model given as a path is not a directory."""
    if model.startswith(("/", "./", "../", "~")) and not Path(model).expanduser().is_dir():
        raise cannot_load(backend, model, FileNotFoundError("no such directory"))


def cannot_load(backend: str, model: str, exc: BaseException, offline: str = "") -> FatalLLMError:
    """The one message for an in-process model that cannot be loaded, naming the alternatives
    (`offline`: one more, such as a model that needs no download)."""
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    return FatalLLMError(
        f"the {backend} backend cannot load the model {model!r}: {reason}\n"
        "It may be offline, gated or misspelt. Alternatives: download it and set the role's model to its "
        f"local directory;{offline} point every role at an OpenAI-compatible server with "
        "`safeset run CONFIG --endpoint URL --model NAME`; or start the repository's vLLM server with "
        "`docker compose up` and use its URL."
    )
