"""`<db>.serve.json`: tells the CLI that a server holds the database, and where it listens.

It holds the URL, the pid and the database path, never the token (the CLI reads that from the same
environment variable as the server). A file whose process is gone, or whose server does not answer
its health check, is stale: the CLI then opens the database as usual.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pipeline import __version__


def info_path(db: str | Path) -> Path:
    return Path(f"{Path(db).resolve()}.serve.json")


def publish(db: Path, url: str) -> None:
    path = info_path(db)
    staged = path.with_name(f".{path.name}.tmp")
    staged.write_text(json.dumps({"url": url, "pid": os.getpid(), "db": str(db), "version": __version__}))
    staged.replace(path)


def withdraw(db: Path) -> None:
    path = info_path(db)
    info = read(db)
    if info is not None and info.get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def read(db: str | Path) -> dict[str, Any] | None:
    try:
        info = json.loads(info_path(db).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and isinstance(info.get("url"), str) else None


def alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
