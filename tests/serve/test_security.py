"""Bad input and security of `safeset serve`: the bearer token, loopback without one, body limits,
invalid configs (422 with the CLI's field paths, nothing stored), unknown ids, path tricks, secrets."""

from __future__ import annotations

import os
import subprocess
import sys

import duckdb
import httpx
import yaml

from tests.ops.helpers import safeset
from tests.pipeline.stages.conftest import trident_config
from tests.serve.conftest import TOKEN, config_text, free_port


def test_every_route_but_health_needs_the_token(serve, world):
    served = serve()
    bare = httpx.Client(base_url=served.url)
    assert bare.get("/v1/health").json() == {"status": "ok"}
    for method, path in [("GET", "/v1/runs"), ("GET", "/v1/openapi.json"), ("GET", "/v1/docs"),
                         ("POST", "/v1/runs"), ("GET", "/v1/exports/0123456789abcdef/download"),
                         ("GET", "/v1/nowhere")]:  # fmt: skip
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            response = bare.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.json()["error"].startswith("missing or wrong bearer token")
    assert served.client.get("/v1/runs").json() == {"runs": []}


def test_a_non_loopback_address_without_a_token_is_refused(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SAFESET_TOKEN"}
    db = tmp_path / "open.duckdb"
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "serve", "--db", str(db), "--host", "0.0.0.0",
         "--port", str(free_port())],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0 without a token" in result.stderr
    assert not db.exists()


def test_an_invalid_config_gets_the_cli_problems_and_stores_nothing(serve, world, tmp_path):
    served = serve()
    config = trident_config(world, name="bad")
    config["stages"]["domains"]["scenarios_per_category"] = -1
    config["stages"]["tactics"]["tactics"] = ["no_such_tactic"]
    response = served.client.post("/v1/runs", json={"config": config})
    assert response.status_code == 422
    problems = response.json()["problems"]
    assert any(p.startswith("stages.domains.scenarios_per_category:") for p in problems), problems
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    cli = safeset("run", str(path), "--db", str(tmp_path / "cli.duckdb"))
    assert cli.returncode == 2
    cli_problems = [
        line.strip().removeprefix("- ") for line in cli.stderr.splitlines() if line.strip().startswith("- ")
    ]
    assert problems == cli_problems

    for body in ({"config": "name: [unclosed"}, {"config": "just text"}, {"config": config, "seed": -3},
                 {"config": config, "endpoint": "http://127.0.0.1:9/v1"}, {"nothing": 1}):  # fmt: skip
        response = served.client.post("/v1/runs", json=body)
        assert response.status_code == 422, body
        assert response.json()["problems"], response.json()
    response = served.client.post(
        "/v1/runs", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422 and "Traceback" not in response.text

    leaky = trident_config(world, name="leaky")
    leaky["roles"]["default"]["base_urls"] = [world.url.replace("http://", "http://user:pw@")]
    response = served.client.post("/v1/runs", json={"config": leaky})
    assert response.status_code == 422
    assert "roles.default.base_urls.0: a URL with credentials" in response.json()["problems"][0]
    assert "pw" not in response.text

    outside = tmp_path / "seeds.jsonl"
    outside.write_text('{"instruction": "How do I kill a python process?"}\n')
    response = served.client.post(
        "/v1/runs",
        json={
            "config": {
                "name": "outside",
                "roles": config["roles"],
                "stages": {"overrefusal_seeds": {"file": str(outside)}},
            }
        },
    )
    assert response.status_code == 422
    assert response.json()["problems"][0].startswith("stages.overrefusal_seeds.file:")

    assert served.client.get("/v1/runs").json() == {"runs": []}
    assert not list((served.db.parent / f"{served.db.name}.serve" / "configs").iterdir())
    served.stop()
    con = duckdb.connect(str(served.db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM serve_runs").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
    finally:
        con.close()


def test_unknown_ids_and_path_tricks_get_404(serve, world):
    served = serve()
    for path in ["/v1/runs/nope", "/v1/runs/nope/events", "/v1/runs/nope/records", "/v1/runs/nope/failures",
                 "/v1/runs/nope/scorecards", "/v1/runs/nope/report", "/v1/records/abc123",
                 "/v1/exports/0123456789abcdef", "/v1/exports/0123456789abcdef/download",
                 "/v1/exports/..%2F..%2F..%2Fetc%2Fpasswd/download", "/v1/exports/%2e%2e/download",
                 "/v1/records/..%2F..%2Fetc"]:  # fmt: skip
        response = served.client.get(path)
        assert response.status_code == 404, path
        assert "error" in response.json()
    for path in [
        "/v1/runs/nope/stop",
        "/v1/runs/nope/resume",
        "/v1/runs/nope/retry",
        "/v1/runs/nope/exports",
    ]:
        assert served.client.post(path).status_code == 404, path
    for query in ({"cursor": "1 OR 1=1"}, {"limit": 10_000}, {"cursor": "-1"}):
        run_id = served.client.post("/v1/runs", json={"config": config_text(world, name="q")}).json()["run"]
        response = served.client.get(f"/v1/runs/{run_id}/records", params=query)
        assert response.status_code == 422, query
    response = served.client.get("/v1/exports/0123456789abcdef/download", params={"archive": "../x"})
    assert response.status_code == 422


def test_oversized_bodies_get_413(serve):
    served = serve()
    big = b'{"config": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    response = served.client.post("/v1/runs", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "larger than" in response.json()["error"]

    def chunks():  # no Content-Length: the limit counts what arrives
        for _ in range(48):
            yield b"x" * 65536

    response = served.client.post("/v1/runs", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert served.client.get("/v1/health").status_code == 200


def test_secrets_stay_out_of_responses_and_logs(serve, world, tmp_path, monkeypatch):
    secret = "sk-served-secret-9c2e"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    served = serve()
    run_id = served.client.post("/v1/runs", json={"config": config_text(world, name="secret")}).json()["run"]
    doc = served.wait_for(run_id)
    assert world.stats.authorizations[f"Bearer {secret}"] > 0  # the key was used, from the environment
    paths = (f"/v1/runs/{run_id}", "/v1/runs", f"/v1/runs/{run_id}/records", "/v1/openapi.json")
    bodies = [served.client.get(path).text for path in paths]
    served.stop()
    assert not any(secret in body or TOKEN in body for body in bodies)
    log = served.log.read_text()
    assert secret not in log and TOKEN not in log
    info = served.db.parent / f"{served.db.name}.serve.json"
    assert not info.exists()  # withdrawn at shutdown
    for path in served.db.parent.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes() and TOKEN.encode() not in path.read_bytes(), path
    assert doc["status"]["run"] == run_id


def test_a_second_server_on_the_same_port_or_database_is_refused(serve, tmp_path):
    served = serve()
    command = [sys.executable, "-m", "pipeline.cli", "serve"]
    env = {**os.environ, "SAFESET_TOKEN": TOKEN}
    same_port = subprocess.run([*command, "--db", str(tmp_path / "other.duckdb"), "--port", str(served.port)],
                               capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert same_port.returncode == 2 and f"cannot listen on 127.0.0.1:{served.port}" in same_port.stderr
    assert not (tmp_path / "other.duckdb").exists()
    same_db = subprocess.run([*command, "--db", str(served.db), "--port", str(free_port())],
                             capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert same_db.returncode == 2 and "is in use by" in same_db.stderr
    assert served.client.get("/v1/runs").status_code == 200
