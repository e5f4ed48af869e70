"""`safeset inspect`: one record, where it came from and what became of it."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.markup import escape
from rich.tree import Tree

from pipeline.cli.common import console, db_option, fail, user_errors
from pipeline.cli.group import main
from pipeline.lineage import LINEAGE, lineage
from pipeline.store import Store


@main.command()
@click.argument("record_id")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@user_errors
def inspect(record_id: str, db_path: str, as_json: bool) -> None:
    """Show a record (by id or unique id prefix) and its lineage: parents up to the root, the
    prompt, model and seed that made it, the stages that consumed it, and its children.

    \b
    Example:
      safeset inspect 3fa2c1 --db data/safeset.duckdb
    """
    from pipeline.serve.client import served_by

    server = served_by(db_path)
    if server is not None:  # `safeset serve` holds the database: ask it
        info = server.json("GET", f"/v1/records/{record_id}")
    else:
        store = Store.open(db_path, read_only=True)
        try:
            record = store.get(record_id)
            if record is None:
                fail(f"no record with id {record_id!r} in {db_path}")
            info = lineage(store, record)
        finally:
            store.close()
    if as_json:
        click.echo(json.dumps(info, default=str))
        return
    tree = Tree(_label(info))
    _add_parents(tree, info["parents"])
    console.print(tree)
    for outcome in info["outcomes"]:
        reason = f" ({outcome['reason']})" if outcome["reason"] else ""
        console.print(f"→ {outcome['stage']}: {outcome['status']}{reason}", highlight=False)
    for child in info["children"]:
        console.print(f"→ child {child['id']} ({child['stage']})", highlight=False)
    call = info.get("llm_call")
    if call:
        console.print(
            f"LLM call {call['key']} to {call['model']} at {call['endpoint']} "
            f"({call['prompt_tokens']}+{call['completion_tokens']} tokens)",
            highlight=False,
        )
        for message in call["request"]["messages"]:
            console.print(f"  [{message['role']}] {message['content']}", highlight=False, markup=False)


def _label(node: dict[str, Any]) -> str:
    facts = " ".join(f"{k}={node[k]}" for k in LINEAGE[2:8] if node.get(k) is not None)
    data = json.dumps(node["data"], ensure_ascii=False)
    data = data if len(data) < 160 else data[:157] + "..."
    return f"[bold]{node['stage']}[/] {node['id']} {escape(facts)}\n{escape(data)}"


def _add_parents(tree: Tree, parents: list[dict[str, Any]]) -> None:
    for parent in parents:
        branch = tree.add(_label(parent))
        _add_parents(branch, parent.get("parents", []))
