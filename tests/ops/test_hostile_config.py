"""Hostile and clumsy configs, each given to a real `safeset run` process: an alias bomb, a file too
large to be a config, a device instead of a file, duplicate keys, `seed: true`, an API key pasted
where its variable's name belongs. Each is refused at once with one clear message and exit code 2,
quoting no huge value and no secret, and leaves no database behind."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest

from tests.ops.helpers import safeset


def alias_bomb(levels: int = 10) -> str:
    """ "Billion laughs": each level a list of nine aliases of the level below (9**10 values)."""
    lines = ["name: bomb", "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    lines.append(f"stages: {{domains: {{categories: *a{levels - 1}}}}}")
    return "\n".join(lines) + "\n"


def refused(tmp_path: Path, config: str | Path, timeout: float = 20) -> str:
    """Run CONFIG; assert it is refused quickly with exit 2, one message, no traceback, no database.
    Returns stderr."""
    db = tmp_path / "run.duckdb"
    started = time.monotonic()
    result = safeset("run", str(config), "--db", str(db), timeout=timeout)
    seconds = time.monotonic() - started
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr and "error:" in result.stderr
    assert seconds < 10, f"took {seconds:.1f}s"
    assert not db.exists()
    return result.stderr


def test_an_alias_bomb_is_refused_in_a_moment(tmp_path):
    config = tmp_path / "bomb.yaml"
    config.write_text(alias_bomb())
    assert config.stat().st_size < 600
    err = refused(tmp_path, config)
    assert "aliases expand to more than 100,000 values" in err
    assert len(err) < 1000


def test_aliases_within_the_budget_still_work(tmp_path):
    """Anchors are legitimate YAML (one role reused for another): a small config with them runs."""
    config = tmp_path / "anchors.yaml"
    config.write_text(
        "name: anchors\nroles:\n  default: &role {backend: openai, model: m, base_urls: [http://127.0.0.1:9/v1]}\n"
        "  judge: *role\nstages: {domains: &d {scenarios_per_category: 1, categories: [S1]}}\n"
    )
    result = safeset("run", str(config), "--db", str(tmp_path / "ok.duckdb"))
    assert result.returncode == 0, result.stderr


def test_a_huge_value_is_not_quoted_whole_in_the_message(tmp_path):
    """A value inside the budget but large (90,000 numbers where a number belongs): the message stays
    short, because it is built from a bounded repr."""
    config = tmp_path / "long.yaml"
    config.write_text("name: long\nseed: [" + ", ".join(["123456"] * 90_000) + "]\nstages: {domains: {}}\n")
    err = refused(tmp_path, config)
    assert "seed:" in err and len(err) < 1000


def test_a_file_too_large_to_be_a_config_is_refused_unread(tmp_path):
    config = tmp_path / "big.yaml"
    config.write_text("name: big\nstages: {domains: {}}\n" + "# padding\n" * 200_000)
    err = refused(tmp_path, config)
    assert "a config may be at most 1,048,576 bytes" in err


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_refused_not_read_forever(tmp_path, device):
    err = refused(tmp_path, device)
    assert "not a regular file" in err


def test_a_key_written_twice_is_refused_with_both_lines(tmp_path):
    config = tmp_path / "twice.yaml"
    config.write_text("name: twice\nseed: 1\nstages:\n  domains: {}\nseed: 2\n")
    err = refused(tmp_path, config)
    assert "line 5: duplicate key 'seed' (first written on line 2)" in err


def test_a_key_written_twice_in_a_nested_mapping_is_refused(tmp_path):
    config = tmp_path / "nested.yaml"
    config.write_text(
        "name: nested\nstages:\n  domains:\n    scenarios_per_category: 2\n    scenarios_per_category: 3\n"
    )
    assert "line 5: duplicate key 'scenarios_per_category' (first written on line 4)" in refused(
        tmp_path, config
    )


@pytest.mark.parametrize(
    "content, where",
    [
        ("name: b\nseed: true\nstages: {domains: {}}\n", "seed: expected a number, not true/false"),
        (
            "name: b\nstages: {domains: {scenarios_per_category: yes}}\n",
            "stages.domains.scenarios_per_category: expected a number, not true/false",
        ),
        (
            "name: b\nroles: {default: {backend: openai, model: m, max_retries: false}}\n"
            "stages: {domains: {}, scenarios: {}}\n",
            "roles.default.max_retries: expected a number, not true/false",
        ),
    ],
)
def test_a_boolean_where_a_number_belongs_is_refused(tmp_path, content, where):
    config = tmp_path / "bool.yaml"
    config.write_text(content)
    assert where in refused(tmp_path, config)


@pytest.mark.parametrize(
    "key",
    [
        f"sk-proj-{secrets.token_urlsafe(32)}",
        f"hf_{secrets.token_hex(17)}",
        secrets.token_hex(24),  # no known prefix, but a long random run
        f"Bearer {secrets.token_hex(16)}",
    ],
)
def test_an_api_key_pasted_for_its_variable_name_is_refused_without_echoing_it(tmp_path, key):
    config = tmp_path / "key.yaml"
    config.write_text(
        f"name: pasted\nroles: {{default: {{backend: openai, model: m, api_key_env: '{key}'}}}}\n"
        "stages: {domains: {}, scenarios: {}}\n"
    )
    db = tmp_path / "run.duckdb"
    result = safeset("run", str(config), "--db", str(db), "-v")
    assert result.returncode == 2, result.stderr
    assert "looks like an API key, not the name of an environment variable" in result.stderr
    for fragment in (key, key[-12:]):
        assert fragment not in result.stderr and fragment not in result.stdout
    assert not db.exists()


def test_a_variable_name_is_still_accepted(tmp_path):
    config = tmp_path / "name.yaml"
    config.write_text(
        "name: named\nroles: {default: {backend: openai, model: m, api_key_env: MY_TEAM_API_KEY_2024,"
        " base_urls: [http://127.0.0.1:9/v1]}}\n"
        "stages: {domains: {scenarios_per_category: 1, categories: [S1]}}\n"
    )
    result = safeset("run", str(config), "--db", str(tmp_path / "ok.duckdb"))
    assert result.returncode == 0, result.stderr
