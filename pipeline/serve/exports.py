"""Export jobs: one `export_run` of one run (any format of `safeset export`, optionally pushed to the
hub with the server's HF_TOKEN), written under the server's data folder as `exports/<job>/export/`
and downloaded from there as a zip or tar.gz archive. Nothing outside `exports/` is ever served:
job ids are checked against their shape, and every path is resolved and checked to lie inside.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import tarfile
import zipfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pipeline.llm.roles import redact_text
from pipeline.serve.reads import Reader
from pipeline.serve.settings import ServeSettings
from pipeline.store import serve_queue as queue
from pipeline.store.thread import StoreThread

log = logging.getLogger(__name__)
JOB_ID = re.compile(r"^[0-9a-f]{16}$")
ARCHIVES = {"zip": ".zip", "tar.gz": ".tar.gz"}


class ExportOptions(BaseModel):
    """POST /v1/runs/{id}/exports: the options of `safeset export`."""

    model_config = ConfigDict(extra="forbid")
    format: Literal["parquet", "jsonl", "hf", "sft", "dpo", "llamafactory"] = "parquet"
    test_fraction: float = Field(default=0.1, ge=0, lt=1)
    license: str = Field(default="cc-by-4.0", pattern=r"^[A-Za-z0-9][A-Za-z0-9.+-]{0,63}$")
    gated: Literal["auto", "manual"] | None = None
    push_to_hub: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$",
        description="also upload to this hub dataset repo, with the server's HF_TOKEN",
    )  # fmt: skip
    public: bool = False
    reviewed_only: bool = Field(default=False, description="leave out rows nobody reviewed by hand")


class ExportJobs:
    def __init__(self, settings: ServeSettings, db: StoreThread, reader: Reader):
        self.settings = settings
        self.db = db
        self.reader = reader
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        await self.db.call(queue.fail_unfinished_exports)

    async def create(self, run_id: str, options: ExportOptions) -> dict[str, Any]:
        job_id = secrets.token_hex(8)
        await self.db.call(lambda s: queue.create_export(s, job_id, run_id, options.model_dump()))
        task = asyncio.create_task(self._run(job_id, run_id, options), name=f"export:{job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await self.db.call(lambda s: queue.get_export(s, job_id))

    def folder(self, job_id: str) -> Path:
        if not JOB_ID.match(job_id):
            raise ValueError("not a job id")
        root = self.settings.exports_dir.resolve()
        path = (root / job_id).resolve()
        if not path.is_relative_to(root) or path == root:
            raise ValueError("not a job id")
        return path

    async def _run(self, job_id: str, run_id: str, options: ExportOptions) -> None:
        from pipeline.export import ExportError, export_run
        from pipeline.export.hub import push_to_hub

        await self.db.call(lambda s: queue.set_export(s, job_id, "running"))
        out = self.folder(job_id) / "export"
        try:
            manifest = await self.reader.job(
                lambda store: export_run(
                    self.settings.db, out, options.format, run=run_id, test_fraction=options.test_fraction,
                    license=options.license, gated=options.gated, store=store,
                    reviewed_only=options.reviewed_only,
                )
            )  # fmt: skip
            url = None
            if options.push_to_hub:
                url = await asyncio.to_thread(
                    push_to_hub, out, options.push_to_hub, private=not options.public, gated=options.gated
                )
            await self.db.call(
                lambda s: queue.set_export(s, job_id, "finished", manifest=manifest, hub_url=url)
            )
        except (ExportError, OSError) as exc:
            reason = redact_text(str(exc))
            await self.db.call(lambda s: queue.set_export(s, job_id, "failed", reason=reason))
        except Exception as exc:
            log.exception("export job %s failed", job_id)
            reason = f"internal error ({type(exc).__name__}); see the server's log"
            await self.db.call(lambda s: queue.set_export(s, job_id, "failed", reason=reason))

    async def archive(self, job_id: str, kind: str) -> Path:
        """The archive of a finished job's export (made on first request)."""
        folder = self.folder(job_id)
        path = folder / f"safeset-export-{job_id}{ARCHIVES[kind]}"
        if not path.exists():
            await asyncio.to_thread(_pack, folder / "export", path, kind)
        return path

    async def shutdown(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _pack(source: Path, path: Path, kind: str) -> None:
    staged = path.with_name(f".{path.name}.tmp")
    files = sorted(p for p in source.rglob("*") if p.is_file() and not p.is_symlink())
    if kind == "zip":
        with zipfile.ZipFile(staged, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in files:
                archive.write(file, file.relative_to(source).as_posix())
    else:
        with tarfile.open(staged, "w:gz") as archive:
            for file in files:
                archive.add(file, file.relative_to(source).as_posix(), recursive=False)
    staged.replace(path)
