"""What the operations tests share: the CLI as a real process, a database's contents, small disks."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

SAFESET = [sys.executable, "-m", "pipeline.cli"]
TABLES = ("runs", "sessions", "records", "progress", "llm_cache", "llm_usage")


def safeset(*args: str, env: dict[str, str] | None = None, file_size: int | None = None,
            timeout: float = 180) -> subprocess.CompletedProcess:  # fmt: skip
    """Run `safeset ARGS` as its own process; `file_size` caps the size of any file it writes
    (RLIMIT_FSIZE: writing past it fails with EFBIG, which Python turns into an error, not a signal)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))

    return subprocess.run(
        [*SAFESET, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        preexec_fn=limit if file_size else None,
    )


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [*SAFESET, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def settled(server, timeout_s: float = 10.0) -> None:
    """Wait until an in-process ChatServer has no call in flight: the calls of a killed client are
    answered or dropped before its answers are counted."""
    deadline = time.monotonic() + timeout_s
    while server.stats.concurrent:
        assert time.monotonic() < deadline, f"{server.stats.concurrent} calls still in flight"
        time.sleep(0.01)


def table_counts(db: Path) -> dict[str, int] | None:
    """Rows per table of a safeset database (None when there is no file)."""
    if not db.exists():
        return None
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    finally:
        con.close()


def sessions(db: Path) -> list[str]:
    """The status of each session of a safeset database, oldest first."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return [s for (s,) in con.execute("SELECT status FROM sessions ORDER BY session").fetchall()]
    finally:
        con.close()


def dataset(db: Path, stages: tuple[str, ...]) -> dict[str, dict[str, tuple]]:
    """{stage: {record id: (data, parents, lineage)}} of the latest run: what "the same dataset" means."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT stage, id, data, parent_ids, category, tactic, persona_id, model, seed, request_key "
            "FROM records WHERE stage IN (SELECT unnest(?::VARCHAR[])) "
            "AND run_id = (SELECT run_id FROM runs ORDER BY created_at DESC LIMIT 1)",
            [list(stages)],
        ).fetchall()
    finally:
        con.close()
    out: dict[str, dict[str, tuple]] = {s: {} for s in stages}
    for stage, id_, *rest in rows:
        out[stage][id_] = tuple(tuple(v) if isinstance(v, list) else v for v in rest)
    return out


def can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@contextlib.contextmanager
def tmpfs(path: Path, size_kib: int, read_only: bool = False) -> Iterator[bool]:
    """A tmpfs of `size_kib` at `path` (yields True), or nothing (False) where mounting is not
    permitted (not root, or no CAP_SYS_ADMIN in a container)."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size_kib}k" + (",ro" if read_only else "")
    mounted = (
        can_mount()
        and (
            subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
        ).returncode
        == 0
    )
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], check=True)


def remount_read_only(path: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)


class ServerProcess:
    """A scripted chat server in a process of its own, so it does not share the GIL with the client
    under test: `url`, `stats()` (a copy of its Stats), `stop()`, `kill()` (an outage: SIGKILL, open
    connections reset). `port` binds a given port, e.g. to bring a killed server back."""

    def __init__(self, port: int = 0, **server_args: object):
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(server_args, port, child), daemon=True)
        self._process.start()
        self.url: str = self._conn.recv()
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])

    def kill(self) -> None:
        self._process.kill()
        self._process.join(10)

    def stats(self):
        self._conn.send("stats")
        return self._conn.recv()

    def stop(self) -> None:
        if self._process.is_alive():
            self._conn.send("stop")
            self._process.join(10)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _serve(server_args: dict, port: int, conn) -> None:
    from tests.servers.chat_server import ChatServer

    server = ChatServer(**server_args)
    conn.send(server.start(port))
    while (message := conn.recv()) != "stop":
        if message == "stats":
            conn.send(server.stats)
    server.stop()
