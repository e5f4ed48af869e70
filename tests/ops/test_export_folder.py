"""Export and the user's files: `safeset export` (a real process) over real TRIDENT runs against the
scripted server. It never deletes what it did not write (a folder with the user's files, a manifest
of another tool, an earlier export with a file added or changed, `--out ..` from inside an export),
resolves `.` and symlinks, stops on a full disk with one line and nothing half-written, and two runs
with the same seed export to byte-identical files in every format."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import duckdb
import pytest
import yaml

from tests.ops.helpers import SAFESET, safeset, tmpfs
from tests.pipeline.stages.conftest import trident_config
from tests.pipeline.stages.trident_world import World
from tests.servers.chat_server import ChatServer, Latency

FORMATS = ("parquet", "jsonl", "hf", "sft", "llamafactory")
ROOT = Path(__file__).parents[2]


def fingerprints(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under `folder`."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def safeset_in(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """`safeset ARGS` run from `cwd`, with this checkout's code (PYTHONPATH; `-m` alone would import
    the package from `cwd`)."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return subprocess.run(
        [*SAFESET, *args], cwd=cwd, capture_output=True, text=True, timeout=180,
        env={**os.environ, "PYTHONPATH": path},
    )  # fmt: skip


def commit_order(db: Path) -> list[str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return [i for (i,) in con.execute("SELECT id FROM records ORDER BY seq").fetchall()]
    finally:
        con.close()


def refused(result: subprocess.CompletedProcess, message: str) -> None:
    """Exit 2 with one line that says why (an hf export's progress bars may come before it)."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], result.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs of the same config (seed 11) into two databases. Answers come back with uneven
    latency, so the two runs commit their records in different orders."""
    folder = tmp_path_factory.mktemp("export-runs")
    latency = Latency(base=0.002, tail=0.03, tail_rate=0.3)
    with ChatServer(script=World(), latency=latency) as server:
        config = folder / "trident.yaml"
        config.write_text(yaml.safe_dump(trident_config(server, name="det", seed=11)))
        dbs = [folder / "first.duckdb", folder / "second.duckdb"]
        for db in dbs:
            result = safeset("run", str(config), "--db", str(db))
            assert result.returncode == 0, result.stderr
    return dbs


def export(db: Path, out: Path | str, fmt: str = "jsonl", **kwargs) -> subprocess.CompletedProcess:
    return safeset("export", "--db", str(db), "--format", fmt, "--out", str(out), **kwargs)


# ---- 10: determinism -----------------------------------------------------------------------------


def test_two_runs_with_the_same_seed_export_byte_identical_files(runs, tmp_path):
    first, second = runs
    assert commit_order(first) != commit_order(second)  # the same records, committed in another order
    assert sorted(commit_order(first)) == sorted(commit_order(second))
    for fmt in FORMATS:
        outs = [tmp_path / f"{fmt}-1", tmp_path / f"{fmt}-2"]
        for db, out in zip(runs, outs, strict=True):
            result = export(db, out, fmt)
            assert result.returncode == 0, result.stderr
        files = fingerprints(outs[0])
        assert files == fingerprints(outs[1]), fmt
        manifest = json.loads((outs[0] / "export.json").read_text())
        listed = {path: entry["sha256"] for path, entry in manifest["files"].items()}
        assert listed == {p: h for p, h in files.items() if p != "export.json"}, fmt
        assert manifest["generator"] == "safeset"


# ---- 1: never delete the user's files ------------------------------------------------------------


def test_a_folder_with_the_users_files_is_refused_untouched(runs, tmp_path):
    mine = tmp_path / "project"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    (mine / "export.json").write_text('{"name": "my project", "version": 3}')  # another tool's
    before = fingerprints(mine)
    refused(export(runs[0], mine), "not a safeset export manifest")
    assert fingerprints(mine) == before


def test_an_earlier_export_with_anything_added_or_changed_is_refused_untouched(runs, tmp_path):
    out = tmp_path / "out"
    assert export(runs[0], out, "parquet").returncode == 0
    (out / "core" / "checkpoint.bin").write_bytes(b"\x00" * 100)  # the user's, beside the export's
    before = fingerprints(out)
    refused(export(runs[0], out, "jsonl"), "holds files no safeset export wrote (core/checkpoint.bin)")
    assert fingerprints(out) == before

    (out / "core" / "checkpoint.bin").unlink()
    with (out / "README.md").open("a") as card:
        card.write("\nMy notes on this data.\n")
    before = fingerprints(out)
    refused(export(runs[0], out, "jsonl"), "README.md was changed since safeset exported it")
    assert fingerprints(out) == before


def test_an_earlier_export_is_replaced_file_by_file_and_nothing_else_goes(runs, tmp_path):
    out = tmp_path / "out"
    beside = tmp_path / "beside.txt"
    beside.write_text("mine")
    assert export(runs[0], out, "parquet").returncode == 0
    inode = out.stat().st_ino
    result = export(runs[0], out, "jsonl")
    assert result.returncode == 0, result.stderr
    assert sorted(fingerprints(out)) == ["README.md", "core.jsonl", "edge.jsonl", "export.json"]
    assert out.stat().st_ino == inode  # the same folder, its contents replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["beside.txt", "out"]  # no staging left
    assert beside.read_text() == "mine"


def test_out_dot_dot_from_inside_an_earlier_export_deletes_nothing(runs, tmp_path):
    """An export, the user's notes beside its files, a second export inside it; from inside the
    second, `--out ..` names the first: refused, since it holds more than that export wrote."""
    parent = tmp_path / "exports"
    assert export(runs[0], parent).returncode == 0
    (parent / "notes.txt").write_text("keep me")
    inner = parent / "sft"
    assert export(runs[0], inner, "sft").returncode == 0
    before = fingerprints(parent)
    result = safeset_in(inner, "export", "--db", str(runs[0]), "--out", "..")
    refused(result, f"{parent} is not empty and holds files no safeset export wrote (notes.txt, sft)")
    assert fingerprints(parent) == before and inner.is_dir()


def test_out_dot_replaces_the_export_it_is_run_from_and_refuses_a_users_folder(runs, tmp_path):
    out = tmp_path / "export"
    assert export(runs[0], out, "parquet").returncode == 0
    result = safeset_in(out, "export", "--db", str(runs[0]), "--format", "jsonl", "--out", ".")
    assert result.returncode == 0, result.stderr
    assert (out / "core.jsonl").is_file() and not (out / "core").exists()

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "draft.md").write_text("keep me")
    refused(safeset_in(mine, "export", "--db", str(runs[0]), "--out", "."), "draft.md")
    assert fingerprints(mine) == {"draft.md": hashlib.sha256(b"keep me").hexdigest()}


def test_out_a_symlink_is_resolved(runs, tmp_path):
    target = tmp_path / "real"
    link = tmp_path / "link"
    assert export(runs[0], target, "parquet").returncode == 0
    link.symlink_to(target, target_is_directory=True)
    result = export(runs[0], link, "jsonl")
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and link.resolve() == target
    assert (target / "core.jsonl").is_file() and not (target / "core").exists()

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    (tmp_path / "to-mine").symlink_to(mine, target_is_directory=True)
    refused(export(runs[0], tmp_path / "to-mine"), "notes.txt")
    assert (mine / "notes.txt").read_text() == "keep me"

    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    refused(export(runs[0], tmp_path / "dangling"), "which does not exist")
    assert not (tmp_path / "nowhere").exists()


# ---- 9: a full disk --------------------------------------------------------------------------------


def test_a_full_disk_stops_the_export_with_the_earlier_one_intact(runs, tmp_path):
    """Exports go to a 96 KiB disk: a jsonl export fits; with the disk filled up, a parquet export
    (or one to a new folder) stops with one line, leaves no partial folder and the earlier export as
    it was. Without root: the same limit on the size of any file export writes."""
    with tmpfs(tmp_path / "disk", 96) as mounted:
        disk = tmp_path / "disk"
        out = disk / "out"
        assert export(runs[0], out, "jsonl").returncode == 0
        before = fingerprints(disk)
        limit = None
        if mounted:
            with (disk / "filler").open("wb") as filler:  # leave 8 KiB
                free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
                filler.write(b"\0" * (free - 8192))
            before = fingerprints(disk)
        else:
            limit = 4096
        reason = "No space left on device" if mounted else "File too large"
        for target, fmt in ((out, "parquet"), (disk / "new", "jsonl"), (out, "hf")):
            result = safeset("export", "--db", str(runs[0]), "--format", fmt, "--out", str(target),
                             file_size=limit)  # fmt: skip
            refused(result, f"cannot write the export to {target}: {reason}; nothing was written")
            assert fingerprints(disk) == before, fmt
            assert sorted(p.name for p in disk.iterdir()) == sorted(["out", *(["filler"] if mounted else [])])
