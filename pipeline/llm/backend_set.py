"""Backends made once per distinct settings and reused. A run holds one set, so an endpoint has one
concurrency limit however many stages call it. `safeset serve` holds one for all the runs it drives,
`across_models`: two runs on one OpenAI-compatible endpoint with the same settings share a backend
whatever model each asks for (the client names the model in every request), so one adaptive limiter,
one request/token budget and one connection pool, and together they never exceed the endpoint's
max_concurrency. In-process engines (hf, vllm) are shared per model."""

from __future__ import annotations

from pipeline.llm.backends import Backend, create_backend
from pipeline.llm.roles import RoleConfig
from pipeline.records import canonical_json


class BackendSet:
    def __init__(self, *, across_models: bool = False):
        self.across_models = across_models
        self._backends: dict[str, Backend] = {}

    def backend(self, config: RoleConfig) -> Backend:
        settings = config.model_dump(mode="json")
        if self.across_models and settings.get("backend") == "openai":
            settings.pop("model", None)
        key = canonical_json(settings)
        if key not in self._backends:
            self._backends[key] = create_backend(config)
        return self._backends[key]

    async def aclose(self) -> None:
        for backend in self._backends.values():
            await backend.aclose()
        self._backends.clear()
