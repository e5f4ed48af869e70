"""Turn pydantic validation errors into lines a user can act on: the field path as written in the
YAML, the value found, and what is allowed.

Pydantic's error locations also name the union member it tried (a discriminator tag such as
`openai`, or labels such as `list[...]`); users never wrote those, so the locations are walked
against the model to drop them and to find the keys allowed where an unknown key was written.
"""

from __future__ import annotations

import difflib
import itertools
import reprlib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from pipeline.llm.roles import redact_text

_SECRET_KEYS = ("api_key", "token", "password", "secret")
# Errors whose message says what is wrong without the value, which may hold a secret or be huge.
_VALUE_NOT_REPEATED = ("looks_like_secret", "url_credentials", "url_not_http", "plan_too_large")


# A value that fits no member of a union gets one "wrong type" error per member it did not fit;
# when another error explains the value from inside a member, those are noise, else they merge.
_MEMBER_MISMATCH = {
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dict_type": "a mapping",
    "list_type": "a list",
}


def describe(exc: ValidationError, model: type[BaseModel], prefix: tuple = ()) -> list[str]:
    errors = [(_walk(model, tuple(e["loc"]))[0], e) for e in exc.errors(include_url=False)]
    problems = []
    for path, error in errors:
        explained = any(
            other is not error and other_path[: len(path)] == path and other["type"] not in _MEMBER_MISMATCH
            for other_path, other in errors
        )
        if error["type"] in _MEMBER_MISMATCH:
            if not explained:
                problems.append(_mismatch(prefix + path, [e for p, e in errors if p == path]))
            continue
        where = _path(prefix + path)
        kind = error["type"]
        got = _redacted(error.get("input"))
        ctx = error.get("ctx", {})
        if kind == "extra_forbidden":
            parent_path, parent = _walk(model, tuple(error["loc"])[:-1])
            allowed = list(parent.model_fields) if parent is not None else []
            problems.append(unknown_key(prefix + parent_path + (path[-1],), path[-1], allowed))
        elif kind in _VALUE_NOT_REPEATED:
            problems.append(f"{where}: {error['msg']}")
        elif kind == "missing":
            problems.append(f"{where}: required, but missing")
        elif kind in ("literal_error", "enum"):
            problems.append(f"{where}: got {_short(got)}; allowed: {ctx['expected']}")
        elif kind == "union_tag_invalid":
            problems.append(f"{where}: got {_short(ctx['tag'])}; allowed: {ctx['expected_tags']}")
        elif kind == "union_tag_not_found":
            problems.append(f"{where}.{ctx['discriminator'].strip(chr(39))}: required, but missing")
        else:
            problems.append(f"{where}: {error['msg'].rstrip('.')} (got {_short(got)})")
    return list(dict.fromkeys(problems))


def _mismatch(loc: tuple, errors: list[dict[str, Any]]) -> str:
    expected = sorted({_MEMBER_MISMATCH[e["type"]] for e in errors if e["type"] in _MEMBER_MISMATCH})
    return f"{_path(loc)}: got {_short(_redacted(errors[0].get('input')))}; expected {' or '.join(expected)}"


def unknown_key(loc: tuple, key: object, allowed: list[str]) -> str:
    if str(key) in _SECRET_KEYS:
        return (
            f"{_path(loc)}: secrets never go in a config; put the key in an environment variable "
            "and name it with api_key_env"
        )
    hint = difflib.get_close_matches(str(key), allowed, n=1)
    did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
    return f"{_path(loc)}: unknown key{did_you_mean}; allowed: {', '.join(allowed) or '(none)'}"


def _walk(model: type[BaseModel], loc: tuple) -> tuple[tuple, type[BaseModel] | None]:
    """The location as the user wrote it, and the model class it ends on (None if not a model)."""
    path: list[Any] = []
    annotation: Any = model
    discriminator: str | None = None
    for part in loc:
        annotation, discriminator = _unwrap(annotation, discriminator)
        members = _members(annotation)
        if len(members) > 1:
            chosen = _member_named(members, discriminator, part)
            if chosen is not None:  # the part names a union member: not part of the user's path
                annotation, discriminator = chosen, None
                continue
            annotation = next((m for m in members if _has(m, part)), members[0])
            annotation, discriminator = _unwrap(annotation, None)
        path.append(part)
        annotation, discriminator = _child(annotation, part)
    annotation, _ = _unwrap(annotation, discriminator)
    return tuple(path), annotation if _is_model(annotation) else None


def _unwrap(annotation: Any, discriminator: str | None) -> tuple[Any, str | None]:
    """Strip Annotated (keeping a discriminator it declares) and Optional."""
    if typing.get_origin(annotation) is typing.Annotated:
        base, *metadata = typing.get_args(annotation)
        for meta in metadata:
            discriminator = getattr(meta, "discriminator", None) or discriminator
        return _unwrap(base, discriminator)
    members = _members(annotation)
    if len(members) == 1 and members[0] is not annotation:
        return _unwrap(members[0], discriminator)
    return annotation, discriminator


def _members(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def _member_named(members: list[Any], discriminator: str | None, part: object) -> Any:
    if not isinstance(part, str):
        return None
    for member in members:
        base, _ = _unwrap(member, None)
        tagged = discriminator and _is_model(base) and discriminator in base.model_fields
        if tagged and part in typing.get_args(base.model_fields[discriminator].annotation):
            return base
        if part.startswith("list[") and typing.get_origin(base) is list:
            return base
        if part.startswith("tagged-union[") and typing.get_origin(member) is typing.Annotated:
            return member
        if _is_model(base) and part == base.__name__:
            return base
    return None


def _child(annotation: Any, part: object) -> tuple[Any, str | None]:
    if _is_model(annotation):
        field = annotation.model_fields.get(str(part))
        return (field.annotation, field.discriminator) if field else (None, None)
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, set) and typing.get_args(annotation):
        return typing.get_args(annotation)[0], None
    if origin is dict:
        return typing.get_args(annotation)[1], None
    return None, None


def _has(annotation: Any, part: object) -> bool:
    base, _ = _unwrap(annotation, None)
    if _is_model(base):
        return str(part) in base.model_fields
    return isinstance(part, int) == (typing.get_origin(base) in (list, tuple, set))


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _path(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 2, 50, 50
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4


def _redacted(value: object, depth: int = _REPR.maxlevel) -> object:
    """`value` with user:password@ and query strings dropped from every URL in its strings, so an
    error never repeats credentials written into a URL. Only what `_short` shows of it is walked (the
    first items, two levels deep), so a huge value costs no more than its short repr."""
    if isinstance(value, str):
        return redact_text(value)
    if depth <= 0:
        return value  # shown as [...] or {...}
    if isinstance(value, (list, tuple)):
        shown = [_redacted(v, depth - 1) for v in value[: _REPR.maxlist + 1]]
        return tuple(shown) if isinstance(value, tuple) else shown
    if isinstance(value, dict):
        items = itertools.islice(value.items(), _REPR.maxdict + 1)
        return {k: _redacted(v, depth - 1) for k, v in items}
    return value


def _short(value: object) -> str:
    """A repr of at most 60 characters, built without ever forming the whole repr of a huge value."""
    text = _REPR.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
