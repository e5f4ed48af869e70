"""The base of every config model: unknown keys refused, and no boolean where a number belongs.

Pydantic's lax mode reads `seed: true` as 1 and `temperature: false` as 0.0; a boolean in a number
field is a slip in the YAML, so it is refused rather than converted.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError


class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        errors: list[InitErrorDetails] = []
        for name, value in data.items():
            field = cls.model_fields.get(name) if isinstance(name, str) else None
            if field is None or not isinstance(value, bool):
                continue
            allowed = typing.get_args(field.annotation) or (field.annotation,)
            if bool not in allowed and any(t in (int, float) for t in allowed):
                error = PydanticCustomError("bool_for_number", "expected a number, not true/false")
                errors.append({"type": error, "loc": (name,), "input": value})
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return data
