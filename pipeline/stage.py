"""The unit of extension: a stage turns the records of the stages it consumes into records of its own.

Write a stage as one small class:

- `LLMStage` (most stages): name the prompt template, the answer schema and the role, then fill in
  two hooks: `variables(item)` gives the template its values, `parse(item, result)` turns the parsed
  answer into output records (or a `Drop` with a reason). `samples(item)` asks for several answers
  in one call (n); `self.ctx.record(parents, data, made_by=result)` makes a record with the call's
  prompt, model, seed and cache key in its lineage.
- `Stage.process(item)` for anything else that works item by item (several calls, CPU work).
- `skip(item)`: an item that is not this stage's work (a persona already at the expansion depth, a
  final search state) is finished with no outputs and nothing called, counted as done. A `Drop`
  is different: an item the stage deliberately leaves out, with the reason.
- A source stage (`consumes = ()`) implements `plan()`: the records that seed the run. It runs on a
  worker thread before the run starts and may read the store with `ctx.read_blocking`.
- A barrier stage (`barrier = True`) sees all of its inputs at once in `process_all`, after every
  upstream stage has finished (dedup needs the whole set). It runs on a worker thread. On a resumed
  or retried run it is handed only the items not yet finished: what earlier sessions kept is in the
  store (`ctx.read_blocking`), and a barrier that fills targets must count it.
- `early_inputs()`: a barrier's consumed stages whose records it can decide as soon as that stage
  has finished, while the others still run (the persona pool's scenario personas, which sort before
  every expansion); downstream work on them starts at once. Deciding them in a `process_all` call
  of their own must give what one call with every item gives: the later call finds their outcomes
  in the store, exactly as a resumed run does.

The runner owns everything else: which items are ready, concurrency, retries of the LLM layer,
commits, failures and progress. A failure is an exception: `LLMFailure` carries its reason and
attempts; any other exception is recorded with its type and message. A stage that finds the user's
input unusable while it plans (a seed file it cannot read, a run it reads that does not exist) raises
`StageInputError`: the run stops before it writes anything and the CLI names the problem (exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, Field

from pipeline.config_model import ConfigModel
from pipeline.llm.roles import RUNTIME
from pipeline.llm.types import ChatRequest, Result
from pipeline.prompts import PromptTemplate, load_prompt
from pipeline.records import Record

if TYPE_CHECKING:
    from pipeline.context import StageContext


class StageInputError(Exception):
    """Input named in a stage's settings that the stage cannot use; the user fixes it and runs again."""

    def __init__(self, stage: str, problem: str):
        self.stage = stage
        self.problem = problem
        super().__init__(f"stages.{stage}: {problem}")


class StageParams(ConfigModel):
    """Settings every stage has; each stage extends it with its own (`stages.<name>` in a config)."""

    concurrency: int = Field(
        default=64,
        ge=1,
        description="items in flight; by default 64, or twice the batch_size of an in-process engine the "
        "stage calls when that is more",
        json_schema_extra=RUNTIME,
    )


class LLMParams(StageParams):
    temperature: float = Field(default=0.9, ge=0, le=2)
    top_p: float = Field(default=0.95, gt=0, le=1)
    max_tokens: int = Field(default=512, ge=1)


@dataclass(frozen=True)
class Drop:
    """An item the stage deliberately leaves out, with the reason (stored and shown by status), and
    any records of a pseudo-stage (consumed by no stage) that say what was left out."""

    reason: str
    records: tuple[Record, ...] = ()


Outcome = list[Record] | Drop


class Stage:
    name: ClassVar[str]
    description: ClassVar[str] = ""
    consumes: ClassVar[tuple[str, ...]] = ()  # stages whose records are this stage's work items
    roles: ClassVar[tuple[str, ...]] = ()  # LLM roles it calls
    barrier: ClassVar[bool] = False
    Params: ClassVar[type[StageParams]] = StageParams

    def __init__(self, params: StageParams, ctx: StageContext):
        self.params = params
        self.ctx = ctx

    @classmethod
    def is_source(cls) -> bool:
        return not cls.consumes

    def skip(self, item: Record) -> bool:
        """True for an item that is not this stage's work: the runner finishes it as done with no
        outputs without calling `process` (a barrier decides about all its items in `process_all`)."""
        return False

    def plan(self) -> list[Record]:
        raise NotImplementedError(f"source stage {self.name} must implement plan()")

    async def process(self, item: Record) -> Outcome:
        raise NotImplementedError(f"stage {self.name} must implement process()")

    def process_all(self, items: list[Record]) -> dict[str, Outcome]:
        raise NotImplementedError(f"barrier stage {self.name} must implement process_all()")

    def early_inputs(self) -> tuple[str, ...]:
        """For a barrier: the consumed stages whose records it decides as soon as that stage has
        finished, before the others have (none: it waits for all of them)."""
        return ()


class LLMStage(Stage):
    """One prompt, one call per item, one schema."""

    role: ClassVar[str] = "generator"
    prompt: ClassVar[str]  # file name in prompts/, without .yaml
    Answer: ClassVar[type[BaseModel] | None] = None  # None: free text
    Params = LLMParams

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "roles" not in cls.__dict__:  # a stage that also calls other roles declares them all
            cls.roles = (cls.role,)

    def __init__(self, params: LLMParams, ctx: StageContext):
        super().__init__(params, ctx)
        self.template: PromptTemplate = load_prompt(self.prompt)
        self.llm = ctx.llm(self.role)

    def variables(self, item: Record) -> dict[str, object]:
        raise NotImplementedError

    def samples(self, item: Record) -> int:
        """Answers asked for in the item's one call (the request's n); `result.parsed` holds them all."""
        return 1

    def parse(self, item: Record, result: Result) -> Outcome:
        raise NotImplementedError

    def request(self, item: Record) -> ChatRequest:
        p = self.params
        return self.template.request(
            self.variables(item),
            seed=self.ctx.seed_for(item.id),
            n=self.samples(item),
            temperature=p.temperature,
            top_p=p.top_p,
            max_tokens=p.max_tokens,
        )

    async def process(self, item: Record) -> Outcome:
        result = await self.llm.complete(self.request(item), self.Answer)
        return self.parse(item, result)
