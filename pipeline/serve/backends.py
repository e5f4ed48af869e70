"""The LLM backends of a server, shared by all the runs it drives: two runs on one endpoint (the same
role settings, whatever model they ask for) go through one backend, so through one adaptive limiter,
one request/token budget and one connection pool, and together never exceed the endpoint's
max_concurrency. In-process engines (hf, vllm) are shared per model as well."""

from __future__ import annotations

from pipeline.llm.backends import Backend, create_backend
from pipeline.llm.roles import RoleConfig
from pipeline.records import canonical_json


class ServerBackends:
    def __init__(self) -> None:
        self._backends: dict[str, Backend] = {}

    def backend(self, config: RoleConfig) -> Backend:
        settings = config.model_dump(mode="json")
        if settings.get("backend") == "openai":  # the client names the model in every request
            settings.pop("model", None)
        key = canonical_json(settings)
        if key not in self._backends:
            self._backends[key] = create_backend(config)
        return self._backends[key]

    async def aclose(self) -> None:
        for backend in self._backends.values():
            await backend.aclose()
        self._backends.clear()
