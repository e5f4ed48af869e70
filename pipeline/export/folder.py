"""Where an export lands, and how it replaces an earlier one without touching anything else.

`--out` is resolved first (`.`, `..`, `~` and symlinks), then it must be new, empty, or exactly an
earlier safeset export: a folder whose manifest (`export.json`) says `generator: safeset` and lists
every file in the folder, each still of the size and sha256 it was written with. Anything else (a
file the manifest does not list, a listed file that was changed, a manifest of another tool) refuses
the folder and leaves it as it was.

The export is written to a staging folder (beside a new destination, inside an existing one, so it is
on the same disk) and moved in only when complete: a new folder is renamed into place; in an existing
one, the earlier export's files (and only those) are removed and the new ones moved in, by renames.
A failure while writing removes the staging folder and changes nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

from pipeline.export.rows import ExportError

MANIFEST = "export.json"
GENERATOR = "safeset"
STAGING_PREFIX = ".safeset-export-"
_SHOWN = 5  # foreign entries named in a refusal


def resolve_out(out: str | Path) -> Path:
    """The real folder `out` names, or an error when it cannot be one."""
    given = Path(out).expanduser()
    path = given.resolve()
    if given.is_symlink() and not path.exists():
        raise ExportError(f"{out} is a link to {path}, which does not exist; pass a folder")
    if path.exists() and not path.is_dir():
        raise ExportError(f"{out} is a file; pass a folder to --out")
    if path == Path(path.anchor):
        raise ExportError(f"{out} is the root of the file system; pass a folder of its own")
    return path


def earlier_export(out: Path) -> list[Path]:
    """The files of the earlier export that `out` holds (none for a new or empty folder); raises, and
    names what is there, when `out` holds anything else."""
    if not out.exists():
        return []
    entries, dirs = _entries(out)
    if not entries and not dirs:
        return []
    listed = _listed_files(out, entries)
    ours = [e for e in entries if e.as_posix() in listed or e == Path(MANIFEST)]
    foreign_dirs = {d for d in dirs if not any(d in f.parents for f in ours)}
    foreign = [e for e in [*entries, *foreign_dirs] if e not in ours and foreign_dirs.isdisjoint(e.parents)]
    if foreign:
        raise ExportError(
            f"{out} is not empty and holds files no safeset export wrote ({_names(foreign)}); nothing "
            "was changed: pass a new or empty folder"
        )
    for entry in ours:
        if entry != Path(MANIFEST) and _fingerprint(out / entry) != listed[entry.as_posix()]:
            raise ExportError(
                f"{out / entry} was changed since safeset exported it; nothing was changed: move it "
                "away or pass a new folder"
            )
    return ours


def _entries(out: Path) -> tuple[list[Path], list[Path]]:
    """Every file (a link counts as one, never followed) and every folder under `out`, relative."""
    files, dirs = [], []
    for root, dirnames, filenames in os.walk(out):
        base = Path(root).relative_to(out)
        for name in dirnames:
            (files if (Path(root) / name).is_symlink() else dirs).append(base / name)
        files += [base / name for name in filenames]
    return files, dirs


def _listed_files(out: Path, entries: list[Path]) -> dict[str, dict[str, Any]]:
    """The files the manifest in `out` lists, or an error when `out` holds no safeset export."""
    refusal = (
        f"{out} is not empty and holds no safeset export ({_names(entries)}); nothing was changed: "
        "pass a new or empty folder"
    )
    manifest_path = out / MANIFEST
    if Path(MANIFEST) not in entries or manifest_path.is_symlink():
        raise ExportError(refusal)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ExportError(refusal) from None
    if not (
        isinstance(manifest, dict)
        and manifest.get("generator") == GENERATOR
        and isinstance(manifest.get("files"), dict)
    ):
        raise ExportError(
            f"{out} holds an {MANIFEST} that is not a safeset export manifest with a list of files "
            "(another tool's, or an older safeset's); nothing was changed: pass a new or empty folder"
        )
    return manifest["files"]


def _names(paths: list[Path]) -> str:
    """The first few paths, for a message."""
    shown = ", ".join(sorted(p.as_posix() for p in paths)[:_SHOWN])
    return shown + (f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else "")


def _fingerprint(path: Path) -> dict[str, Any] | None:
    if path.is_symlink() or not path.is_file():
        return None
    with path.open("rb") as file:
        digest = hashlib.file_digest(file, "sha256").hexdigest()
    return {"size": path.stat().st_size, "sha256": digest}


def file_list(folder: Path) -> dict[str, dict[str, Any]]:
    """{relative path: {size, sha256}} of every file in a finished staging folder but the manifest."""
    files, _ = _entries(folder)
    return {p.as_posix(): _fingerprint(folder / p) for p in sorted(files) if p != Path(MANIFEST)}


def make_staging(out: Path) -> Path:
    """A fresh folder on the same disk as `out`: inside it when it exists, else beside it."""
    where = out if out.is_dir() else out.parent
    staging = where / f"{STAGING_PREFIX}{os.getpid()}-{secrets.token_hex(4)}.partial"
    try:
        staging.mkdir(parents=True)  # with the user's umask, as the export folder it may become
        return staging
    except OSError as exc:
        raise ExportError(f"cannot write to {where}: {exc.strerror}; pass a writable --out") from None


def move_into_place(staging: Path, out: Path, earlier: list[Path]) -> None:
    """Replace the earlier export's files in `out` with the staged ones (or rename a new `out`)."""
    if not out.exists():
        staging.rename(out)
        return
    for path in earlier:
        (out / path).unlink()
    for folder in sorted({p for f in earlier for p in f.parents if p != Path(".")}, reverse=True):
        if not any((out / folder).iterdir()):
            (out / folder).rmdir()
    for entry in sorted(staging.iterdir()):
        entry.rename(out / entry.name)
    staging.rmdir()


def discard(staging: Path) -> None:
    """Remove a staging folder this export made (everything in it is this export's)."""
    shutil.rmtree(staging, ignore_errors=True)
