"""Submit -> watch (SSE) -> records -> export -> download, through a real `safeset serve`; the export
equals the one `safeset export` makes of the same run made by `safeset run`."""

from __future__ import annotations

import io
import json
import zipfile

from tests.ops.helpers import safeset


def sse_events(client, path: str) -> list[tuple[str, dict]]:
    events, name = [], None
    with client.stream("GET", path, timeout=120) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
    return events


def test_submit_watch_read_export_download(serve, world, tmp_path):
    from tests.serve.conftest import config_text

    text = config_text(world)
    served = serve()
    submitted = served.client.post("/v1/runs", json={"config": text})
    assert submitted.status_code == 202, submitted.text
    run_id = submitted.json()["run"]
    assert submitted.json()["queue"]["state"] == "queued"
    again = served.client.post("/v1/runs", json={"config": text})  # the same run while it is active
    assert again.status_code == 200 and again.json()["queued"] is False

    events = sse_events(served.client, f"/v1/runs/{run_id}/events")
    names = [name for name, _ in events]
    assert names[-1] == "end" and events[-1][1]["state"] == "finished"
    progress = [doc for name, doc in events if name == "progress"]
    assert len(progress) >= 2
    assert progress[-1]["records"]["core"] == 24 and progress[-1]["records"]["edge"] == 25

    doc = served.client.get(f"/v1/runs/{run_id}").json()
    assert doc["queue"]["state"] == "finished"
    assert doc["status"]["run"] == run_id and doc["status"]["stages"]["core"]["pending"] == 0

    # records: filters and cursor paging over all 24 core records
    seen, cursor = [], None
    while True:
        params = {"dataset": "core", "limit": 10, **({"cursor": cursor} if cursor else {})}
        page = served.client.get(f"/v1/runs/{run_id}/records", params=params).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 24 and len({r["id"] for r in seen}) == 24
    assert all(r["stage"] == "core" for r in seen)
    category = seen[0]["category"]
    filtered = served.client.get(
        f"/v1/runs/{run_id}/records", params={"dataset": "core", "category": category}
    )
    assert {r["category"] for r in filtered.json()["items"]} == {category}
    word = seen[0]["data"]["instruction"].split()[0]
    found = served.client.get(f"/v1/runs/{run_id}/records", params={"q": word.upper()}).json()["items"]
    assert seen[0]["id"] in {r["id"] for r in found}

    lineage = served.client.get(f"/v1/records/{seen[0]['id']}").json()
    assert lineage["stage"] == "core" and lineage["parents"], lineage
    assert served.client.get("/v1/records/ffffffffffffffff").status_code == 404

    # export as a job, downloaded as a zip: the same files as `safeset export` of a CLI run
    job = served.client.post(f"/v1/runs/{run_id}/exports", json={"format": "sft"}).json()
    job = served.wait_export(job["job_id"])
    assert job["state"] == "finished", job
    download = served.client.get(f"/v1/exports/{job['job_id']}/download", params={"archive": "zip"})
    assert download.status_code == 200
    served_files = {n: z for z in [zipfile.ZipFile(io.BytesIO(download.content))] for n in z.namelist()}
    archive = zipfile.ZipFile(io.BytesIO(download.content))

    config = tmp_path / "cli.yaml"
    config.write_text(text)
    cli_db = tmp_path / "cli.duckdb"
    assert safeset("run", str(config), "--db", str(cli_db)).returncode == 0
    out = tmp_path / "cli-export"
    assert safeset("export", "--db", str(cli_db), "--format", "sft", "--out", str(out)).returncode == 0
    cli_files = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert set(served_files) == set(cli_files)
    for name, content in cli_files.items():
        assert archive.read(name) == content, name
