"""Deployment: docker-compose.yml is accepted by `docker compose config` (or Debian's
`docker-compose config`) when that CLI is here, and the Dockerfile, the compose file and
configs/compose.yaml agree with each other and with the project. No docker engine runs here."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from pipeline.cli.common import DEFAULT_DB
from pipeline.config import load_config
from pipeline.stages import STAGES

ROOT = Path(__file__).parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def compose_cli() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def flags(command: list[str]) -> dict[str, str]:
    return dict(arg.removeprefix("--").split("=", 1) for arg in command)


@pytest.mark.compose
@pytest.mark.skipif(
    compose_cli() is None, reason="neither `docker compose` nor `docker-compose` is installed"
)
def test_docker_compose_config_accepts_the_file_and_resolves_the_settings(tmp_path):
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(tmp_path), "HF_TOKEN": "hf_from_the_env",
           "GENERATOR_MODEL": "org/generator-7b", "GUARD_GPU": "0", "GUARD_GPU_MEMORY": "0.35"}  # fmt: skip
    result = subprocess.run(
        [*compose_cli(), "-f", str(COMPOSE), "config"], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == {"vllm", "guard", "pipeline"}
    assert flags(services["vllm"]["command"])["model"] == "org/generator-7b"
    assert flags(services["guard"]["command"])["model"] == "meta-llama/Llama-Guard-3-8B"
    assert flags(services["guard"]["command"])["gpu-memory-utilization"] == "0.35"
    for name in ("vllm", "guard"):
        (device,) = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
        assert "healthcheck" in services[name]
    assert services["guard"]["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == ["0"]
    pipeline = services["pipeline"]
    assert {s: d["condition"] for s, d in pipeline["depends_on"].items()} == {
        "vllm": "service_healthy",
        "guard": "service_healthy",
    }
    mounts = {str(v).split(":")[1] if isinstance(v, str) else v["target"] for v in pipeline["volumes"]}
    assert {"/work/data", "/cache/huggingface"} <= mounts
    assert pipeline["environment"]["HF_TOKEN"] == "hf_from_the_env"  # from the environment only
    assert "SAFESET_TOKEN" in pipeline["environment"]  # serve refuses 0.0.0.0 without it
    assert pipeline["command"] == ["serve", "--host=0.0.0.0", "--port=8750", "--db=data/safeset.duckdb"]
    assert "/v1/health" in " ".join(pipeline["healthcheck"]["test"])
    (port,) = pipeline["ports"]  # "127.0.0.1:8750:8750", or its long form (docker compose v2)
    if isinstance(port, dict):
        port = f"{port['host_ip']}:{port['published']}:{port['target']}"
    assert port.removesuffix("/tcp") == "127.0.0.1:8750:8750"


def test_the_compose_file_holds_no_secret_values():
    compose = yaml.safe_load(COMPOSE.read_text())
    for name, service in compose["services"].items():
        for entry in service.get("environment", []):
            assert isinstance(entry, str) and "=" not in entry, f"{name} sets {entry} in the file"
    assert not re.search(r"\b(sk-|hf_)[A-Za-z0-9]", COMPOSE.read_text())


def test_the_compose_config_points_each_role_at_its_service():
    compose = yaml.safe_load(COMPOSE.read_text())
    served = {
        name: flags(compose["services"][name]["command"])["served-model-name"] for name in ("vllm", "guard")
    }
    plan = load_config(ROOT / "configs" / "compose.yaml", stages=STAGES)
    generator, judge = plan.config.roles.resolve("generator")[0], plan.config.roles.resolve("judge")[0]
    assert (generator.model, generator.base_urls) == (served["vllm"], ["http://vllm:8000/v1"])
    assert (judge.model, judge.base_urls) == (served["guard"], ["http://guard:8000/v1"])
    for stage in ("safety_filter", "core", "edge"):  # the judge answers in Llama Guard's own format
        assert plan.stage(stage).params.guard_model is True
    serve = flags(compose["services"]["pipeline"]["command"][1:])
    assert serve["db"] == DEFAULT_DB and serve["port"] in compose["services"]["pipeline"]["ports"][0]


def test_the_dockerfile_matches_the_project():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    torch_pin = next(d for d in project["project"]["dependencies"] if d.startswith("torch"))
    assert f"ARG TORCH_VERSION={torch_pin.split('==')[1]}" in DOCKERFILE
    assert "FROM ${PYTHON_IMAGE}" in DOCKERFILE and "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILE
    assert "download.pytorch.org/whl/cpu" in DOCKERFILE  # the CPU wheel, never a CUDA build
    assert re.search(r"^ARG EXTRAS=", DOCKERFILE, re.M) and "${EXTRAS:+[${EXTRAS}]}" in DOCKERFILE
    (user,) = re.findall(r"^USER (\S+)$", DOCKERFILE, re.M)
    assert user not in ("root", "0")
    workdir = re.findall(r"^WORKDIR (\S+)$", DOCKERFILE, re.M)[-1]
    volumes = re.search(r"^VOLUME (\[.*\])$", DOCKERFILE, re.M)[1]
    assert str(Path(workdir) / Path(DEFAULT_DB).parent) in volumes  # the default database is on a volume
    assert "HF_HOME=/cache/huggingface" in DOCKERFILE and "/cache/huggingface" in volumes
    # Every package of the wheel comes from a folder the build stage copies and .dockerignore keeps.
    copied = set(re.findall(r"^COPY (\w+) \1$", DOCKERFILE, re.M))
    ignored = (ROOT / ".dockerignore").read_text().split()
    dirs = project["tool"]["setuptools"].get("package-dir", {})
    for package in project["tool"]["setuptools"]["packages"]:
        folder = dirs.get(package, package).split(".")[0]
        assert folder in copied, f"the image lacks {folder}/ (package {package})"
        assert folder not in ignored
