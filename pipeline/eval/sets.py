"""Eval sets: prompts with a label (harmful or benign), a category and a tactic, from a public
benchmark, a generated dataset's test split, or a file of your own.

Benchmarks load from the Hugging Face hub unless `source` points at a local copy with the same
columns: XSTest (safe prompts models over-refuse, and unsafe contrast prompts), HarmBench (harmful
behaviours), OR-Bench hard-1k (benign, over-refusal) and OR-Bench toxic (harmful).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.sources import SourceError, column, read_rows
from pipeline.store import Store

Label = Literal["harmful", "benign"]
DATASET_LABELS: dict[str, Label] = {
    "core": "harmful",
    "edge": "harmful",
    "overrefusal_test": "benign",
    "overrefusal_align": "benign",
}


@dataclass(frozen=True)
class EvalItem:
    set: str
    key: str  # the row's id in its source (record id, benchmark id or row number)
    prompt: str
    label: Label
    category: str | None = None
    tactic: str | None = None


@dataclass(frozen=True)
class Benchmark:
    hub: str
    subset: str | None
    split: str
    label: Callable[[dict[str, Any]], Label]
    category: str  # column


def _xstest_label(row: dict[str, Any]) -> Label:
    # XSTest's unsafe prompts are the `contrast_*` types (the hub copy also has label safe/unsafe).
    return "harmful" if str(row["type"]).startswith("contrast") else "benign"


BENCHMARKS: dict[str, Benchmark] = {
    "xstest": Benchmark("walledai/XSTest", None, "test", _xstest_label, "type"),
    "harmbench": Benchmark("walledai/HarmBench", "standard", "train", lambda row: "harmful", "category"),
    "orbench-hard": Benchmark(
        "bench-llm/or-bench", "or-bench-hard-1k", "train", lambda row: "benign", "category"
    ),
    "orbench-toxic": Benchmark(
        "bench-llm/or-bench", "or-bench-toxic", "train", lambda row: "harmful", "category"
    ),
}


class EvalSet(BaseModel):
    """One eval set: `benchmark`, `generated` (a dataset of a run in the database) or a `source` file
    with a `label` (or `label_column`)."""

    model_config = ConfigDict(extra="forbid")
    benchmark: Literal["xstest", "harmbench", "orbench-hard", "orbench-toxic"] | None = None
    generated: Literal["core", "edge", "overrefusal_test", "overrefusal_align"] | None = None
    run: str | None = Field(default=None, description="generated: run id or prefix (default: the latest)")
    source: str | None = Field(default=None, description="file, saved dataset folder or hub id")
    subset: str | None = Field(default=None, description="hub dataset configuration")
    split: str | None = Field(default=None, description="default: test for generated, train for files")
    test_fraction: float = Field(
        default=0.1, gt=0, lt=1, description="generated: as `safeset export` split it"
    )
    prompt_column: str = "prompt"
    label: Label | None = Field(default=None, description="every prompt's label")
    label_column: str | None = Field(default=None, description="a column whose values give the label")
    harmful_values: list[str] = Field(default_factory=lambda: ["harmful", "unsafe"])
    category_column: str | None = None
    limit: int | None = Field(default=None, ge=1, description="the first N prompts")

    @model_validator(mode="after")
    def _one_kind(self) -> EvalSet:
        kinds = [k for k in ("benchmark", "generated") if getattr(self, k)]
        if len(kinds) > 1:
            raise ValueError("give one of benchmark or generated, not both")
        if self.generated and (self.source or self.label or self.label_column):
            raise ValueError("a generated set takes its prompts and labels from the run; drop source/label")
        if not kinds and not self.source:
            raise ValueError(
                "give benchmark (xstest, harmbench, orbench-hard, orbench-toxic), generated, or source"
            )
        if self.source and not kinds and (self.label is None) == (self.label_column is None):
            raise ValueError("a source file needs label (harmful or benign) or label_column, one of them")
        if self.benchmark and (self.label or self.label_column):
            raise ValueError(f"the {self.benchmark} benchmark labels its prompts itself; drop label")
        if self.run and not self.generated:
            raise ValueError("run only goes with generated")
        return self


def load_set(name: str, spec: EvalSet, store: Store | None) -> list[EvalItem]:
    """The prompts of one eval set. `store` is needed for generated sets."""
    if spec.generated:
        if store is None:
            raise SourceError(f"set {name}: generated sets need the database")
        items = _generated(name, spec, store)
    elif spec.benchmark:
        items = _benchmark(name, spec, BENCHMARKS[spec.benchmark])
    else:
        items = _file(name, spec)
    if not items:
        raise SourceError(f"set {name}: no prompts")
    return items[: spec.limit] if spec.limit else items


def _benchmark(name: str, spec: EvalSet, bench: Benchmark) -> list[EvalItem]:
    source = spec.source or bench.hub
    subset = spec.subset if spec.source else bench.subset
    rows = read_rows(source, split=spec.split or bench.split, subset=subset)
    prompts = column(rows, "prompt", source)
    categories = column(rows, bench.category, source)
    return [
        EvalItem(name, str(row.get("id_v2") or i), prompt, bench.label(row), category)
        for i, (row, prompt, category) in enumerate(zip(rows, prompts, categories, strict=True))
    ]


def _file(name: str, spec: EvalSet) -> list[EvalItem]:
    source = spec.source or ""
    rows = read_rows(source, split=spec.split or "train", subset=spec.subset)
    prompts = column(rows, spec.prompt_column, source)
    categories = column(rows, spec.category_column, source) if spec.category_column else [None] * len(rows)
    if spec.label_column:
        harmful = {v.lower() for v in spec.harmful_values}
        labels = [
            "harmful" if str(v).lower() in harmful else "benign"
            for v in column(rows, spec.label_column, source)
        ]
    else:
        labels = [spec.label] * len(rows)
    return [
        EvalItem(name, str(i), str(p), label, None if c is None else str(c))  # type: ignore[arg-type]
        for i, (p, label, c) in enumerate(zip(prompts, labels, categories, strict=True))
    ]


def _generated(name: str, spec: EvalSet, store: Store) -> list[EvalItem]:
    dataset = spec.generated or ""
    query = store.dataset_query(_run_with(store, dataset, spec.run), dataset, spec.test_fraction)
    rows = store.dataset_prompts(query, spec.split or "test")
    label = DATASET_LABELS[dataset]
    return [EvalItem(name, rid, prompt, label, category, tactic) for rid, prompt, category, tactic in rows]


def _run_with(store: Store, dataset: str, run: str | None) -> str:
    if run:
        return store.resolve_run(run)
    run_id = store.last_run_with(dataset)
    if not run_id:
        raise SourceError(f"no run in {store.path} has a {dataset} dataset; run one, or set run:")
    return run_id
