"""SQL lives in pipeline/store only, and every save of results is one transaction: a save that fails
half way leaves the rows it was replacing as they were."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import duckdb
import pytest

from pipeline.store import Store

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pipeline", "evaluators", "analysis", "personas")
STORE = ROOT / "pipeline" / "store"

# SQL as this code base writes it (keywords in capitals), and DuckDB functions no prose uses.
SQL = re.compile(
    r"\b(SELECT|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|BEGIN|COMMIT|ROLLBACK|CREATE\s+(TABLE|VIEW)"
    r"|DROP\s+TABLE|ALTER\s+TABLE|GROUP\s+BY|ORDER\s+BY|SET\s+\w+\s*=)\b"
    r"|\b(json_extract\w*|struct_pack|list_value|md5_number)\("
)
DB_CALLS = {"execute", "executemany", "sql", "query", "register", "unregister"}


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (prose about SQL is allowed)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def sql_in(source: str) -> list[str]:
    """Where a module holds SQL: string literals (f-strings with their holes filled) that read as SQL,
    database calls (`.execute(`, `.sql(`, ...) and the raw connection (`.con`)."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    inside_fstring = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    found = []
    for node in ast.walk(tree):
        text = None
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "x" for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = None if id(node) in docstrings or id(node) in inside_fstring else node.value
        if text is not None and SQL.search(text):
            found.append(f"line {node.lineno}: {text.strip()[:60]!r}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in DB_CALLS:
            found.append(f"line {node.lineno}: .{node.func.attr}(")
        if isinstance(node, ast.Attribute) and node.attr == "con":
            found.append(f"line {node.lineno}: .con")
    return found


def test_the_scan_finds_sql_in_strings_calls_and_the_raw_connection_but_not_in_prose():
    planted = '''
"""A module docstring may say SELECT and ORDER BY."""
def f(store, column):
    """So may a function's: DELETE FROM nothing."""
    store.con.execute("SELECT 1")
    rows = store.query(f"SELECT {column}, count(*) FROM records GROUP BY 1")
    sql = "DELETE FROM records WHERE run_id = ?"
    expr = f"struct_pack(a := {column})"
    return "select the rows you want from the list"
'''
    found = sql_in(planted)
    assert any(".con" in f for f in found) and any(".execute(" in f for f in found)
    assert any(".query(" in f for f in found)
    lines = {int(f.split(":")[0].removeprefix("line ")) for f in found if "'" in f}
    assert lines == {5, 6, 7, 8}  # the strings of the body, never the docstrings or the prose


def test_no_module_outside_the_store_holds_sql():
    offenders = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.is_relative_to(STORE):
                continue
            found = sql_in(path.read_text(encoding="utf-8"))
            if found:
                offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}, "SQL outside pipeline/store (make it a named store query):\n" + "\n".join(
        f"{path}: {', '.join(found)}" for path, found in offenders.items()
    )


def test_only_the_transaction_and_the_migrations_begin_one():
    """Every write goes through Store.transaction (commit and each named save use it)."""
    beginning = set()
    for path in sorted(STORE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and "BEGIN TRANSACTION" in ast.unparse(node):
                beginning.add((path.name, node.name))
    assert beginning == {("store.py", "transaction"), ("migrations.py", "migrate")}


# ---- saves are atomic ------------------------------------------------------------------------------


def metric(target: str, metric: str, value: float, group: str = "*") -> dict:
    return {"target": target, "eval_set": "xstest", "group_by": "all", "group_value": group,
            "metric": metric, "value": value, "n": 10}  # fmt: skip


def stored_metrics(store: Store, run_id: str) -> dict[str, float]:
    return {
        row["target"]: row["over_refusal"]
        for row in store.eval_results(eval_run=run_id)
        if "over_refusal" in row
    }


def test_a_failing_eval_save_leaves_the_earlier_results_and_no_partial_rows(db_path):
    store = Store.open(db_path)
    store.save_eval_results("eval-1", [metric("a", "over_refusal", 0.25), metric("b", "over_refusal", 0.5)])
    store.save_eval_results("eval-2", [metric("a", "over_refusal", 0.75)])

    # The second row repeats the first one's key: the insert fails after the delete has run.
    new = [metric("c", "over_refusal", 0.1), metric("c", "over_refusal", 0.2)]
    with pytest.raises(duckdb.ConstraintException):
        store.save_eval_results("eval-1", new)
    assert stored_metrics(store, "eval-1") == {"a": 0.25, "b": 0.5}
    assert stored_metrics(store, "eval-2") == {"a": 0.75}

    # An exception of any kind half way (here after the delete, before the insert) rolls back too.
    def broken(*args):
        raise RuntimeError("the disk went away")

    store._insert = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="disk went away"):
        store.save_eval_results("eval-1", [metric("d", "over_refusal", 0.3)])
    del store._insert
    assert stored_metrics(store, "eval-1") == {"a": 0.25, "b": 0.5}

    # The store is still usable, and a good save replaces the run's rows.
    store.save_eval_results("eval-1", [metric("d", "over_refusal", 0.3)])
    assert stored_metrics(store, "eval-1") == {"d": 0.3}
    store.close()
    reopened = Store.open(db_path, read_only=True)
    assert stored_metrics(reopened, "eval-1") == {"d": 0.3}
    assert stored_metrics(reopened, "eval-2") == {"a": 0.75}
    reopened.close()


def judge(name: str, agreement: float, **extra) -> dict:
    return {"judge": name, "model": "m", "question": "requests", "labels": "labels.csv", "n": 4,
            "failed": 0, "tp": 2, "fp": 0, "fn": 1, "tn": 1, "agreement": agreement, "precision": 1.0,
            "recall": 2 / 3, "f1": 0.8, "category_agreement": None, **extra}  # fmt: skip


def test_a_failing_judge_save_keeps_the_earlier_results(db_path):
    store = Store.open(db_path)
    store.save_judge_results("judges-1", [judge("safety_filter", 0.75)])
    # The first row goes in, the second names no column of the table: both are rolled back.
    with pytest.raises(duckdb.BinderException):
        store.save_judge_results("judges-1", [judge("harm_judge", 0.5), judge("refusal_judge", 0.5, bad=1)])
    assert [(r["judge"], r["agreement"]) for r in store.judge_results()] == [("safety_filter", 0.75)]
    store.close()


def test_scorecards_are_saved_together_or_not_at_all(db_path):
    store = Store.open(db_path)
    good = {"dataset": "core", "run_id": "r", "n": 3, "settings": {"seed": 0}}
    bad = {"dataset": "edge", "run_id": "r", "n": 2, "settings": {"seed": object()}}  # not JSON
    with pytest.raises(TypeError):
        store.save_scorecards([good, bad])
    assert store.latest_scorecards() == []
    (card_id,) = store.save_scorecards([good])
    (card,) = store.latest_scorecards(run_id="r")
    assert (card["dataset"], card["n"]) == ("core", 3) and len(card_id) == 16
    store.close()
