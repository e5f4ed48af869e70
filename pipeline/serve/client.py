"""The CLI's side of service mode: while `safeset serve` holds a database, `status`, `inspect`,
`export` and `report` on it ask the server (found through `<db>.serve.json`, with the token from
SAFESET_TOKEN), and `run` says how to submit instead."""

from __future__ import annotations

import os
import shlex
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from pipeline.serve import info
from pipeline.serve.settings import TOKEN_ENV
from pipeline.store import StoreError


class ServedError(StoreError):
    """The server holding the database refused or could not answer; the message says what it said."""


class ServerClient:
    def __init__(self, url: str, pid: int):
        self.url = url
        self.pid = pid
        token = os.environ.get(TOKEN_ENV)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url, headers=headers, timeout=httpx.Timeout(30, read=600))

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServedError(f"the server at {self.url} did not answer: {exc}") from None
        if response.status_code >= 400:
            try:
                message = response.json().get("error", response.text)
                problems = response.json().get("problems") or []
            except ValueError:
                message, problems = response.text[:300], []
            if response.status_code == 401:
                message += f" (set {TOKEN_ENV} to the server's token)"
            detail = "".join(f"\n  - {p}" for p in problems)
            raise ServedError(f"the server at {self.url} answered {response.status_code}: {message}{detail}")
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    def run_id(self, given: str | None) -> str:
        """The run `given` names, or the latest one (the most recently started, else submitted)."""
        if given:
            return self.json("GET", f"/v1/runs/{given}")["run"]
        runs = self.json("GET", "/v1/runs")["runs"]
        if not runs:
            raise ServedError(f"the database served at {self.url} holds no run yet")
        started = [r for r in runs if r.get("created_at")]
        return max(started, key=lambda r: r["created_at"])["run"] if started else runs[-1]["run"]

    def status(self, given: str | None) -> dict[str, Any]:
        run_id = self.run_id(given)
        document = self.json("GET", f"/v1/runs/{run_id}")
        if document["status"] is None:
            raise ServedError(f"run {run_id} is {document['queue']['state']} and has not started yet")
        return document["status"]

    def export(self, run: str | None, out: Path, options: dict[str, Any]) -> dict[str, Any]:
        """Run an export job and unpack its archive into `out` (an earlier export there is replaced,
        as `safeset export` does; anything else in it refuses the export)."""
        from pipeline.export.folder import earlier_export, make_staging, move_into_place, resolve_out

        out = resolve_out(out)
        earlier = earlier_export(out)
        job = self.json("POST", f"/v1/runs/{self.run_id(run)}/exports", json=options)
        while job["state"] in ("queued", "running"):
            time.sleep(0.2)
            job = self.json("GET", f"/v1/exports/{job['job_id']}")
        if job["state"] != "finished":
            raise ServedError(f"the export failed: {job['reason']}")
        staging = make_staging(out)
        with tempfile.TemporaryFile() as archive:
            url = f"/v1/exports/{job['job_id']}/download"
            with self.http.stream("GET", url, params={"archive": "tar.gz"}) as response:
                for chunk in response.iter_bytes():
                    archive.write(chunk)
            archive.seek(0)
            with tarfile.open(fileobj=archive, mode="r:gz") as tar:
                tar.extractall(staging, filter="data")  # no absolute paths, no .., no links out
        move_into_place(staging, out, earlier)
        return job


def served_by(db: str | Path) -> ServerClient | None:
    """The server holding `db`, when one is alive and answers."""
    found = info.read(db)
    if found is None or not info.alive(found.get("pid")):
        return None
    try:
        if httpx.get(f"{found['url']}/v1/health", timeout=2).status_code != 200:
            return None
    except httpx.HTTPError:
        return None
    return ServerClient(found["url"], found["pid"])


def submit_hint(server: ServerClient, db: str, config: str) -> str:
    return (
        f"{db} is served by `safeset serve` at {server.url} (pid {server.pid}); submit the run to it "
        "instead:\n"
        f"  safeset submit {shlex.quote(config)} --db {shlex.quote(db)}\n"
        f"or: curl -X POST -H \"Authorization: Bearer ${TOKEN_ENV}\" -H 'content-type: application/json' "
        f"--data \"$(jq -Rs '{{config: .}}' {shlex.quote(config)})\" {server.url}/v1/runs"
    )
