"""JSON as Elasticsearch sends and receives it, typed: request bodies, responses, plan bodies.

``JsonValue`` is pydantic's recursive alias (``None | bool | int | float | str | list | dict``); the
helpers narrow a value read from a response to the shape the caller expects, without ``Any``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import JsonValue, WithJsonSchema

JsonObject = dict[str, JsonValue]

# For pydantic models: the same types, published in JSON Schema as "any object" / "any value"
# rather than as pydantic's recursive JsonValue definition.
SchemaObject = Annotated[JsonObject, WithJsonSchema({"additionalProperties": True, "type": "object"})]
SchemaValue = Annotated[JsonValue, WithJsonSchema({}, mode="validation")]

__all__ = [
    "JsonObject",
    "JsonValue",
    "SchemaObject",
    "SchemaValue",
    "as_int",
    "as_list",
    "as_object",
    "as_str",
    "to_json_object",
]


def as_object(value: JsonValue | object) -> JsonObject:
    """``value`` when it is a JSON object, else an empty one (an absent section reads as empty)."""
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    return {}


def as_list(value: JsonValue | object) -> list[JsonValue]:
    """``value`` when it is a JSON array, else an empty one."""
    return list(value) if isinstance(value, list) else []


def as_str(value: JsonValue | object, default: str | None = None) -> str | None:
    """``value`` as a string when it is a scalar, ``default`` when it is absent or not a scalar."""
    if value is None or isinstance(value, dict | list):
        return default
    return str(value)


def as_int(value: JsonValue | object, default: int = 0) -> int:
    """``value`` as an integer (Elasticsearch sometimes echoes numbers as strings)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value))
        except ValueError:
            return default
    return default


def to_json_object(value: Mapping[str, object]) -> JsonObject:
    """A deep copy of a response body (a Mapping of JSON values) as a plain JSON object."""
    return {str(k): _to_json(v) for k, v in value.items()}


def _to_json(value: object) -> JsonValue:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    return str(value)
