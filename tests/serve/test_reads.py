"""The run document of a run whose stored config this version cannot read: the document still comes,
with the reason in `status_error`, and the API answers it (not a 500)."""

from __future__ import annotations

from pipeline.serve import reads
from pipeline.store import Store


def test_a_run_with_an_unreadable_config_still_has_a_document(tmp_path):
    store = Store.open(tmp_path / "old.duckdb")
    try:
        store.ensure_run("old-1", "old", {"name": "old", "stages": {"no_such_stage": {}}}, 0, None, "0.0.1")
        document = reads.run_document(store, "old-1")
    finally:
        store.close()
    assert document["run"] == "old-1" and document["status"] is None
    assert "stages.no_such_stage: unknown key" in document["status_error"]
    assert document["sessions"] == []
