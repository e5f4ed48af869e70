"""Where a server keeps its files and what it accepts.

Everything the server reads or writes lives beside its database: `<db>.serve/` holds the submitted
configs and the exports (each in a folder named by its job id), and `<db>.serve.json` tells the CLI
that a server holds the database (its URL and pid, never the token).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

TOKEN_ENV = "SAFESET_TOKEN"  # the bearer token every route but /v1/health asks for
MAX_BODY_BYTES = 2 * 1024 * 1024  # a config is a few kilobytes (configs are capped at 1 MiB)


@dataclass(frozen=True)
class ServeSettings:
    db: Path
    host: str = "127.0.0.1"
    port: int = 8750
    workers: int = 2
    token: str | None = None
    max_body: int = MAX_BODY_BYTES

    @classmethod
    def from_env(cls, db: str | Path, **kwargs) -> ServeSettings:
        return cls(db=Path(db).resolve(), token=os.environ.get(TOKEN_ENV) or None, **kwargs)

    @property
    def data_dir(self) -> Path:
        return self.db.parent / f"{self.db.name}.serve"

    @property
    def configs_dir(self) -> Path:
        return self.data_dir / "configs"

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "exports"

    @property
    def url(self) -> str:
        """Where a client on this machine reaches the server (a wildcard address through loopback)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
