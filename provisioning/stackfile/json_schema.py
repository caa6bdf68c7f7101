"""The JSON Schema of stack.yaml (draft 2020-12), generated from the spec models.

Editors with yaml-language-server complete and check stack files against it. Any object may be
written as ``{file: path}`` instead, so every reference to a spec object also admits that form.
"""

from __future__ import annotations

import json
from typing import Any

from provisioning.stackfile.schema import StackSpec

SCHEMA_ID = "https://github.com/provision/provision/schema/stack.schema.json"
FILE_REF = {
    "type": "object",
    "description": "the body read from a YAML or JSON file, relative to the file that references it",
    "properties": {"file": {"type": "string"}},
    "required": ["file"],
    "additionalProperties": False,
}


def _allow_file_refs(node: Any, top: bool = True) -> Any:
    if isinstance(node, dict):
        if "$ref" in node and len(node) == 1 and not top:
            return {"anyOf": [node, {"$ref": "#/$defs/FileRef"}]}
        return {k: _allow_file_refs(v, top=False) for k, v in node.items()}
    if isinstance(node, list):
        return [_allow_file_refs(v, top=False) for v in node]
    return node


def stack_schema() -> dict[str, Any]:
    schema = StackSpec.model_json_schema(by_alias=True, mode="validation")
    defs = schema.pop("$defs", {})
    body = _allow_file_refs(schema)
    defs = {name: _allow_file_refs(value) for name, value in defs.items()}
    defs["FileRef"] = FILE_REF
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **body,
        "$defs": defs,
    }


def stack_schema_json() -> str:
    return json.dumps(stack_schema(), indent=2, sort_keys=True) + "\n"
