"""An export job that pushes to the hub (a local stand-in for its API) with the token of the
server's environment: the repository gets exactly the export, the token goes nowhere but the
Authorization header, and the API takes no token of its own."""

from __future__ import annotations

import io
import zipfile

from tests.pipeline.export.hub_server import HubStandIn
from tests.pipeline.export.made_run import RUN, make_run

HF_TOKEN = "hf_served_3c1e9b7a5d2f4e6a8b0c"


def test_an_export_job_pushes_with_the_servers_token(serve, tmp_path):
    make_run(tmp_path / "made.duckdb")  # a run made without the server: it exports it all the same
    hub = HubStandIn()
    hub.start()
    try:
        env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": HF_TOKEN, "HF_HOME": str(tmp_path / "hf"),
               "HF_HUB_OFFLINE": "0"}  # fmt: skip
        served = serve(tmp_path / "made.duckdb", env=env)
        refused = served.client.post(
            f"/v1/runs/{RUN}/exports", json={"push_to_hub": "lab/x", "hf_token": "hf_x"}
        )
        assert refused.status_code == 422  # a token never comes through the API
        bad = served.client.post(f"/v1/runs/{RUN}/exports", json={"push_to_hub": "../../etc"})
        assert bad.status_code == 422
        job = served.client.post(
            f"/v1/runs/{RUN}/exports", json={"push_to_hub": "lab/served", "gated": "auto"}
        )
        assert job.status_code == 202, job.text
        job = served.wait_export(job.json()["job_id"])
        assert job["state"] == "finished", job
        assert job["hub_url"].endswith("lab/served")
        download = served.client.get(f"/v1/exports/{job['job_id']}/download")
        archive = zipfile.ZipFile(io.BytesIO(download.content))
        repo = hub.repos["lab/served"]
        assert repo.private is True and repo.gated == "auto"
        assert repo.files == {name: archive.read(name) for name in archive.namelist()}
        assert {h.get("Authorization") for m, _, h, _ in hub.requests if m != "GET"} == {f"Bearer {HF_TOKEN}"}
        texts = [served.client.get(path).text for path in (f"/v1/exports/{job['job_id']}", f"/v1/runs/{RUN}")]
        served.stop()
    finally:
        hub.stop()
    assert not any(HF_TOKEN in text for text in texts)
    assert HF_TOKEN not in served.log.read_text()
