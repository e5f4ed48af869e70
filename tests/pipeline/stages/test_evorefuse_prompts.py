"""EvoRefuse as published, on the controlled world: the mutator is told the seed may be harmful, each
strategy's examples rotate, recombination keeps the brevity clause, the target gets the conservative
system prompt, and a harmful *chosen* answer never becomes DPO data."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest

from tests.pipeline.stages.conftest import Run, run
from tests.pipeline.stages.evorefuse_world import SEEDS, World
from tests.pipeline.stages.test_evolve import evo_config, write_seeds


@pytest.fixture(scope="module")
def evo(tmp_path_factory):
    from tests.servers.chat_server import ChatServer

    world = World(harmful_answers={"laptop"})
    bodies: list[dict] = []

    def script(body):
        bodies.append(body)
        return world(body)

    server = ChatServer(script=script)
    server.start()
    folder = tmp_path_factory.mktemp("evo")
    db_path = folder / "run.duckdb"
    try:
        run(evo_config(server, write_seeds(folder), samples=8, iterations=2), db_path)
    finally:
        server.stop()
    result = Run(db_path)
    yield result, world, bodies
    result.close()


def _users(bodies: list[dict], marker: str) -> list[str]:
    return [b["messages"][-1]["content"] for b in bodies if marker in b["messages"][-1]["content"]]


def test_the_mutator_makes_harmless_look_alikes_with_rotating_examples(evo):
    _, _, bodies = evo
    prompts = _users(bodies, "Rewrite it with this strategy")
    assert prompts and all("may itself ask for something harmful" in p for p in prompts)
    examples = defaultdict(set)
    for prompt in prompts:
        strategy = re.search(r"strategy \(\w+ / (\w+)\)", prompt).group(1)
        examples[strategy].add(prompt.split("Example of the direction: ", 1)[1].split("\n", 1)[0])
    assert max(len(seen) for seen in examples.values()) > 1  # not one example copied every time
    violent = [p for p in prompts if "/ violent_words)" in p]
    assert violent and all("many violent words and phrases" in p for p in violent)


def test_recombination_keeps_only_what_triggers_over_refusal(evo):
    _, _, bodies = evo
    prompts = _users(bodies, "Two harmless instructions")
    assert prompts and all(
        "retain only what is" in p and "likely to trigger over-refusal" in p for p in prompts
    )


def test_the_judge_is_lenient_unless_certain_and_weighs_the_reason(evo):
    _, _, bodies = evo
    prompts = _users(bodies, "The author argues it is harmless because")
    assert prompts and all(
        "only when you\nare certain" in p and "Weigh the author's argument" in p for p in prompts
    )


def test_the_target_gets_the_conservative_system_prompt_by_default(evo):
    _, world, _ = evo
    assert world.systems and all("Sorry, I can't help with that." in s for s in world.systems)


def test_a_harmful_chosen_answer_is_dropped_before_it_becomes_dpo_data(evo):
    result, world, _ = evo
    tests = {r.id: r.data["instruction"] for r in result.records("overrefusal_test")}
    outcomes = result.outcomes("overrefusal_align")
    laptop = [item for item, text in tests.items() if "laptop" in text]
    assert laptop and set(outcomes) == set(tests)
    for item, (status, reason) in outcomes.items():
        if item in laptop:
            assert status == "dropped" and reason.startswith(
                "the chosen answer was judged harmful (Harm Score 5)"
            )
        else:
            assert status == "done"
    assert world.calls["harm"] == len(tests)  # every chosen answer was harm-checked
    aligned = result.records("overrefusal_align")
    assert len(aligned) == len(tests) - len(laptop) and all(
        "laptop" not in r.data["instruction"] for r in aligned
    )
    assert len(tests) == len(SEEDS)
