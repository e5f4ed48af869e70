"""Reading a config file safely: a bounded read of a regular file, and a YAML loader that refuses
duplicate keys and alias bombs.

PyYAML builds an alias as a reference to the node it names, so a few hundred bytes of nested
aliases ("billion laughs") load quickly into a value whose expanded size is astronomical; anything
that walks it (validation, an error message) then runs out of memory. The loader counts each node's
expanded size while composing and stops past `MAX_NODES`.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_BYTES = 1024 * 1024  # a config is a few kilobytes; this leaves room for long category lists
MAX_NODES = 100_000  # values in the config once every alias is expanded


class ConfigFileError(Exception):
    """The file cannot be read as a config; the message says why (never quoting a huge value)."""


def read_config_text(path: Path) -> str:
    """The file's text: a regular file of at most MAX_BYTES, read without ever reading more."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigFileError("file not found; ready configs are in configs/") from None
    except OSError as exc:
        raise ConfigFileError(f"cannot read the file: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigFileError("not a regular file; give the path of a YAML config")
    if info.st_size > MAX_BYTES:
        raise ConfigFileError(f"{info.st_size:,} bytes; a config may be at most {MAX_BYTES:,} bytes")
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)  # the file may have grown since stat()
        if len(data) > MAX_BYTES:
            raise ConfigFileError(f"more than {MAX_BYTES:,} bytes; a config may be at most that")
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"cannot read the file: {exc}") from None


class _ConfigLoader(yaml.SafeLoader):
    """SafeLoader that bounds alias expansion and refuses a key written twice in one mapping."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._sizes: dict[int, int] = {}  # id(node) -> size with aliases expanded

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        node = super().compose_node(parent, index)
        if node is None or id(node) in self._sizes:  # an alias: the node it names was counted
            return node
        size = 1
        if isinstance(node, SequenceNode):
            size += sum(self._sizes.get(id(child), 1) for child in node.value)
        elif isinstance(node, MappingNode):
            size += sum(self._sizes.get(id(k), 1) + self._sizes.get(id(v), 1) for k, v in node.value)
        if size > MAX_NODES:
            raise yaml.YAMLError(
                f"line {node.start_mark.line + 1}: aliases expand to more than {MAX_NODES:,} values; "
                "a config this large is refused"
            )
        self._sizes[id(node)] = size
        return node

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            line = key_node.start_mark.line + 1
            if key_node.value in seen:
                raise yaml.YAMLError(
                    f"line {line}: duplicate key {key_node.value[:60]!r} (first written on line "
                    f"{seen[key_node.value]}); each key may appear once"
                )
            seen[key_node.value] = line
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str) -> Any:
    """The YAML value of `text`; yaml.YAMLError when it is not valid, or is a bomb, or repeats a key."""
    loader = _ConfigLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
