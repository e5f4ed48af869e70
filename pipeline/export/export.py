"""Export a run's datasets from DuckDB to files: stream each dataset's rows in Arrow batches, write
them split by split, then add a dataset card (`README.md`) and a manifest (`export.json`) that lists
every file with its size and sha256.

The export is written into a staging folder and moved into place at the end (`folder.py`), so `out`
never holds half an export, and only an earlier export's own files are ever replaced. An export is a
function of the run's records and the options: rows are ordered by id, tables by key, and neither the
card nor the manifest holds a time, so two identical runs export to byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.datasets import DATASETS
from pipeline.export.card import card_stats, render_card
from pipeline.export.folder import (
    GENERATOR,
    MANIFEST,
    discard,
    earlier_export,
    file_list,
    make_staging,
    move_into_place,
    resolve_out,
)
from pipeline.export.formats import FORMATS, Part, llamafactory_info, parts
from pipeline.export.rows import SPLITS, ExportError, check_rows, datasets_in_run
from pipeline.export.writers import JsonlWriter, ParquetWriter
from pipeline.store import Store
from pipeline.store.dataset_rows import DatasetQuery

EXPORT_MEMORY = "512MB"


def export_run(
    db_path: str | Path,
    out: str | Path,
    fmt: str,
    *,
    run: str | None = None,
    test_fraction: float = 0.1,
    license: str = "cc-by-4.0",
    gated: str | None = None,
    batch_size: int = 10_000,
    store: Store | None = None,
    reviewed_only: bool = False,
) -> dict[str, Any]:
    """Export the datasets of `run` (default: the latest) and return the manifest. Reviews by hand are
    honoured: rows rejected by their latest review are left out, edits applied, and with
    `reviewed_only` rows nobody reviewed are left out too. `store`: read this
    open store (a cursor of the server that holds the database) instead of opening `db_path`; the
    database's memory settings are then left as they are."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
    if not 0 <= test_fraction < 1:
        raise ExportError(f"test fraction {test_fraction} must be in [0, 1)")
    out = resolve_out(out)
    earlier = earlier_export(out)
    given = store
    store = given or Store.open(db_path, read_only=True)
    try:
        run_id, chosen, exported = _plan(store, run, fmt)
        staging = make_staging(out)
        try:
            manifest = _write(store, staging, run_id, fmt, chosen, exported, test_fraction, batch_size,
                              license, gated, reviewed_only, bound_memory=given is None)  # fmt: skip
        except BaseException as exc:
            discard(staging)
            if isinstance(exc, OSError):
                raise ExportError(
                    f"cannot write the export to {out}: {os.strerror(exc.errno) if exc.errno else exc}; "
                    "nothing was written" + (" and the earlier export is as it was" if earlier else "")
                ) from None
            raise
    finally:
        if given is None:
            store.close()
    try:
        move_into_place(staging, out, earlier)
    except OSError as exc:
        raise ExportError(
            f"cannot move the export into {out}: {exc.strerror or exc}; the complete export is in {staging}"
        ) from None
    return manifest


def _plan(store: Store, run: str | None, fmt: str) -> tuple[str, list[Part], list[str]]:
    """The run, the parts the format makes of its datasets, and those datasets (checked)."""
    run_id = store.resolve_run(run, with_records_in=tuple(DATASETS))
    datasets = datasets_in_run(store, run_id)
    if not datasets:
        raise ExportError(
            f"run {run_id} has no dataset rows yet (core, edge, overrefusal_test, overrefusal_align); "
            "see `safeset status`"
        )
    chosen = parts(fmt, datasets)
    if not chosen:
        raise ExportError(_nothing_for(fmt, datasets))
    exported = [d for d in datasets if any(p.dataset == d for p in chosen)]
    for dataset in exported:
        check_rows(store, run_id, dataset)
    return run_id, chosen, exported


def _write(
    store: Store,
    staging: Path,
    run_id: str,
    fmt: str,
    chosen: list[Part],
    exported: list[str],
    test_fraction: float,
    batch_size: int,
    license: str,
    gated: str | None,
    reviewed_only: bool,
    bound_memory: bool = True,
) -> dict[str, Any]:
    """Write every file of the export into `staging`; returns the manifest (written last)."""
    # Rows are sorted by id in bounded memory: one thread, a capped cache, and a sort that spills to a
    # folder in the staging area (on the export's disk, removed before the files are listed).
    spill = staging / ".sort"
    if bound_memory:
        store.limit_export_memory(EXPORT_MEMORY, spill)
    manifest: dict[str, Any] = {
        "generator": GENERATOR,
        "safeset_version": __version__,
        "format": fmt,
        "run_id": run_id,
        "seed": store.run_seed(run_id),
        "test_fraction": test_fraction,
        "reviewed_only": reviewed_only,
        "parts": {},
    }
    queries = {d: store.dataset_query(run_id, d, test_fraction, reviewed_only) for d in exported}
    for part in chosen:
        manifest["parts"][part.name] = _write_part(
            store, part, fmt, staging, queries[part.dataset], batch_size
        )
    stats = card_stats(store, run_id, queries)
    shutil.rmtree(spill, ignore_errors=True)
    if fmt == "hf":
        _convert_to_hf(staging, manifest)
    if fmt == "llamafactory":
        info = {
            f"safeset_{name}_{split}": llamafactory_info(Part(entry["dataset"], None, name), split)
            for name, entry in manifest["parts"].items()
            for split in entry["files"]
        }
        (staging / "dataset_info.json").write_text(json.dumps(info, indent=2) + "\n")
    (staging / "README.md").write_text(render_card(manifest, stats, license=license, gated=gated))
    manifest["files"] = file_list(staging)
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _write_part(
    store: Store, part: Part, fmt: str, root: Path, query: DatasetQuery, batch_size: int
) -> dict[str, Any]:
    staged_fmt = "parquet" if fmt == "hf" else fmt
    paths = {split: part.path(staged_fmt, split) for split in SPLITS}
    writer = ParquetWriter(root, paths) if staged_fmt == "parquet" else JsonlWriter(root, paths)
    try:
        for after, upto in query.ranges:
            for batch in store.dataset_batches(query, part.columns, after, upto, batch_size):
                writer.write(batch)
    finally:
        writer.close()
    rows = {split: writer.rows[split] for split in SPLITS if writer.rows[split]}
    return {"dataset": part.dataset, "rows": rows, "files": {s: str(paths[s]) for s in rows}}


def _convert_to_hf(root: Path, manifest: dict[str, Any]) -> None:
    """Staged parquet -> a DatasetDict per dataset, saved with `save_to_disk` (memory-mapped, not loaded)."""
    import datasets

    for name, entry in manifest["parts"].items():
        files = {split: str(root / path) for split, path in entry["files"].items()}
        loaded = datasets.load_dataset("parquet", data_files=files, cache_dir=str(root / ".cache"))
        loaded.save_to_disk(str(root / f"{name}.hf"))
        del loaded
        shutil.rmtree(root / name)
        (root / f"{name}.hf").rename(root / name)
        for state in sorted((root / name).glob("*/state.json")):
            _content_fingerprint(state)
        entry["files"] = {split: name for split in files}
    shutil.rmtree(root / ".cache", ignore_errors=True)


def _content_fingerprint(state_path: Path) -> None:
    """`datasets` fingerprints a split from where it was loaded (the staging folder's random name);
    make it the sha256 of the split's data instead, so identical exports are identical files."""
    state = json.loads(state_path.read_text())
    digest = hashlib.sha256()
    for data_file in state["_data_files"]:
        with (state_path.parent / data_file["filename"]).open("rb") as file:
            digest.update(hashlib.file_digest(file, "sha256").digest())
    state["_fingerprint"] = digest.hexdigest()[:16]
    state_path.write_text(json.dumps(state, indent=2, sort_keys=True))


def _nothing_for(fmt: str, datasets: list[str]) -> str:
    have = ", ".join(datasets)
    if fmt == "dpo":
        return (
            f"the run has {have}: DPO pairs come from overrefusal_align (core and edge hold no rejected "
            "answer); export core/edge with --format sft"
        )
    return f"the run has {have}, none of which the {fmt} format takes"
