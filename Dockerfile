# safeset, the service: the CLI and the pipeline on a CPU image. LLMs are served elsewhere (the `vllm`
# and `guard` services of docker-compose.yml, or any OpenAI-compatible API); the embedder and the
# in-process `hf` backend run here on the CPU.
#
#   docker build -t safeset .                              # base install
#   docker build -t safeset --build-arg EXTRAS=finetune .  # with TRL for `safeset finetune --launch`
#   docker run --rm -v safeset-data:/work/data safeset run configs/quickstart.yaml --max-items 2
#
# The database lives in /work/data (the CLI's default --db is data/safeset.duckdb) and the Hugging
# Face cache in /cache/huggingface: mount volumes on both. Secrets (OPENAI_API_KEY, HF_TOKEN) come
# from the environment at run time only, never from the image.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pipeline pipeline
COPY personas personas
COPY evaluators evaluators
COPY analysis analysis
COPY prompts prompts
COPY data data
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
# Optional extras of pyproject.toml, comma-separated (e.g. "finetune").
ARG EXTRAS=""
# torch is pinned in pyproject.toml; its CPU wheel comes first so that pip never pulls a CUDA build.
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HOME=/cache/huggingface

RUN pip install --index-url "${TORCH_INDEX}" "torch==${TORCH_VERSION}"
COPY --from=build /wheels /wheels
RUN wheel="$(ls /wheels/safeset-*.whl)" \
    && pip install "${wheel}${EXTRAS:+[${EXTRAS}]}" \
    && rm -rf /wheels

RUN useradd --create-home --uid 10001 safeset \
    && mkdir -p /work/data /cache/huggingface \
    && chown -R safeset:safeset /work /cache
COPY --chown=safeset:safeset configs /work/configs
USER safeset
WORKDIR /work
VOLUME ["/work/data", "/cache/huggingface"]

ENTRYPOINT ["safeset"]
CMD ["--help"]
