"""Submit -> watch -> records -> export -> download through `safeset serve`, against the real vLLM
server on the tiny local model (structure only: its text is noise, guided decoding keeps it in the
schema)."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from pipeline.datasets import CoreRow
from tests.pipeline.stages.test_trident_vllm import CONFIG
from tests.serve.test_flow import sse_events

pytestmark = pytest.mark.vllm


def test_a_served_run_on_vllm_end_to_end(serve, vllm_server):
    served = serve()
    body = {"config": CONFIG, "endpoint": vllm_server.url, "model": vllm_server.model}
    submitted = served.client.post("/v1/runs", json=body)
    assert submitted.status_code == 202, submitted.text
    run_id = submitted.json()["run"]

    events = sse_events(served.client, f"/v1/runs/{run_id}/events")
    assert events[-1] == ("end", {"run": run_id, "state": "finished", "reason": None})
    status = served.client.get(f"/v1/runs/{run_id}").json()["status"]
    assert all(counts["pending"] == 0 for counts in status["stages"].values())
    assert status["llm"]["calls"] > 0

    core = served.client.get(f"/v1/runs/{run_id}/records", params={"dataset": "core"}).json()["items"]
    assert core
    for record in core:
        CoreRow.model_validate(record["data"])
        assert record["model"] == "tiny"
    lineage = served.client.get(f"/v1/records/{core[0]['id']}").json()
    assert lineage["llm_call"]["model"] == "tiny"

    job = served.client.post(f"/v1/runs/{run_id}/exports", json={"format": "sft"}).json()
    assert served.wait_export(job["job_id"])["state"] == "finished"
    download = served.client.get(f"/v1/exports/{job['job_id']}/download", params={"archive": "tar.gz"})
    with tarfile.open(fileobj=io.BytesIO(download.content), mode="r:gz") as archive:
        manifest = json.load(archive.extractfile("export.json"))
        names = set(archive.getnames())
    assert manifest["run_id"] == run_id and "README.md" in names
    assert sum(manifest["parts"]["core"]["rows"].values()) == len(core)
    assert set(manifest["files"]) <= names
