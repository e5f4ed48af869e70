"""What each export format holds: which datasets, which columns (a projection over the dataset's rows)
and where each split goes.

- `hf`, `parquet`, `jsonl`: every dataset with all its columns and lineage.
- `sft`: chat `messages` (user instruction, assistant answer), as TRL's SFTTrainer reads them. The
  answer is the aligned response (core, edge) or the helpful `chosen` answer (overrefusal_align);
  overrefusal_test has no answer and is left out.
- `dpo`: conversational `prompt` / `chosen` / `rejected`, as TRL's DPOTrainer reads them, from
  overrefusal_align only: its rejected answer is a real refusal of a harmless request. core and edge
  hold no rejected answer (the store never keeps a harmful one, and a made-up terse refusal would teach
  only style), so they go to SFT.
- `llamafactory`: the same SFT and DPO data as sharegpt files, with a `dataset_info.json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.store.dataset_rows import Column, Message

FORMATS = ("parquet", "jsonl", "hf", "sft", "dpo", "llamafactory")

# The instruction and the answer SFT trains on, per dataset.
SFT_PAIRS = {"core": "response", "edge": "response", "overrefusal_align": "chosen"}


@dataclass(frozen=True)
class Part:
    """One output of an export: a projection of one dataset's rows written to one file per split."""

    dataset: str
    columns: dict[str, Column] | None  # output column -> what it holds (None: every column of the rows)
    name: str  # file stem or folder, e.g. "core" or "overrefusal_align_dpo"

    def path(self, fmt: str, split: str | None) -> Path:
        """Where the split lands inside the export folder (None: one file holds every split)."""
        if fmt == "jsonl":
            return Path(f"{self.name}.jsonl")
        if fmt == "llamafactory":
            return Path(f"{self.name}_{split}.jsonl")
        if fmt == "parquet":
            return Path(self.name) / f"{split}.parquet"
        return Path(self.name) / f"{split}.jsonl"  # sft, dpo; hf writes parquet first, then converts


def parts(fmt: str, datasets: list[str]) -> list[Part]:
    """The parts an export in `fmt` makes from the datasets a run has."""
    if fmt in ("parquet", "jsonl", "hf"):
        return [Part(d, None, d) for d in datasets]
    if fmt == "sft":
        user = Message("role", "user", "content", "instruction")
        return [
            Part(
                d, {"id": "id", "messages": (user, Message("role", "assistant", "content", SFT_PAIRS[d]))}, d
            )
            for d in datasets
            if d in SFT_PAIRS
        ]
    if fmt == "dpo":
        columns: dict[str, Column] = {
            "id": "id",
            "prompt": (Message("role", "user", "content", "instruction"),),
            "chosen": (Message("role", "assistant", "content", "chosen"),),
            "rejected": (Message("role", "assistant", "content", "rejected"),),
        }
        return [Part(d, columns, d) for d in datasets if d == "overrefusal_align"]
    if fmt == "llamafactory":
        human = Message("from", "human", "value", "instruction")
        sharegpt = [
            Part(d, {"id": "id", "conversations": (human, Message("from", "gpt", "value", SFT_PAIRS[d]))}, d)
            for d in datasets
            if d in SFT_PAIRS
        ]
        ranking = [
            Part(
                d,
                {
                    "id": "id",
                    "conversations": (human,),
                    "chosen": Message("from", "gpt", "value", "chosen"),
                    "rejected": Message("from", "gpt", "value", "rejected"),
                },
                f"{d}_dpo",
            )
            for d in datasets
            if d == "overrefusal_align"
        ]
        return sharegpt + ranking
    raise ValueError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")


def llamafactory_info(part: Part, split: str) -> dict:
    """The `dataset_info.json` entry of one sharegpt file."""
    entry: dict = {
        "file_name": str(part.path("llamafactory", split)),
        "formatting": "sharegpt",
        "columns": {"messages": "conversations"},
    }
    if part.name.endswith("_dpo"):
        entry["ranking"] = True
        entry["columns"].update(chosen="chosen", rejected="rejected")
    return entry
