"""A database in a folder the user may not write (or not even search): one clear line, exit code 2,
nothing half-written. The commands run as real processes obeying file permissions (as root, with
the capabilities that override them dropped)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.ops.helpers import SAFESET, safeset, table_counts

CONFIG = "name: perms\nstages: {domains: {scenarios_per_category: 2, categories: [S1, S2]}}\n"


def as_user(*args: str) -> subprocess.CompletedProcess:
    """`safeset ARGS` subject to file permissions: root loses CAP_DAC_OVERRIDE/READ_SEARCH."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("needs setpriv to drop root's permission override")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    return subprocess.run([*prefix, *SAFESET, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def folders(tmp_path):
    """A config, a folder without write permission and one without any permission."""
    config = tmp_path / "perms.yaml"
    config.write_text(CONFIG)
    locked, sealed = tmp_path / "locked", tmp_path / "sealed"
    locked.mkdir()
    sealed.mkdir()
    locked.chmod(0o555)
    sealed.chmod(0o000)
    yield config, locked, sealed
    locked.chmod(0o755)
    sealed.chmod(0o755)


def one_clear_line(result: subprocess.CompletedProcess, words: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], result.stderr


def test_a_new_database_in_a_folder_without_write_permission(folders):
    config, locked, sealed = folders
    for db, words in (
        (locked / "run.duckdb", "Permission denied"),
        (locked / "sub" / "run.duckdb", "cannot create the folder"),
        (sealed / "run.duckdb", "cannot reach"),
    ):
        one_clear_line(as_user("run", str(config), "--db", str(db)), words)
    assert list(locked.iterdir()) == []


@pytest.mark.parametrize("command", [("status",), ("runs",), ("export", "--out", "OUT"), ("score",)])
def test_reading_commands_on_a_folder_that_cannot_be_searched(folders, tmp_path, command):
    _, _, sealed = folders
    args = [a.replace("OUT", str(tmp_path / "out")) for a in command]
    result = as_user(*args, "--db", str(sealed / "run.duckdb"))
    one_clear_line(result, "Permission denied")
    assert not (tmp_path / "out").exists()


def test_an_existing_database_in_a_folder_turned_read_only_stays_intact(folders, tmp_path):
    config, _, _ = folders
    home = tmp_path / "home"
    home.mkdir()
    db = home / "run.duckdb"
    assert safeset("run", str(config), "--db", str(db)).returncode == 0
    before = table_counts(db)
    bigger = tmp_path / "bigger.yaml"
    bigger.write_text(CONFIG.replace("perms", "bigger").replace("2, categories", "3, categories"))
    home.chmod(0o555)
    try:
        result = as_user("run", str(bigger), "--db", str(db))
    finally:
        home.chmod(0o755)
    one_clear_line(result, "permission denied")
    assert table_counts(db) == before
    assert sorted(p.name for p in home.iterdir()) == ["run.duckdb"]
