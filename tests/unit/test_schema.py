"""The published JSON Schema of stack.yaml: current, valid for the real stacks, strict on unknown keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from provisioning.stackfile.json_schema import stack_schema, stack_schema_json

REPO = Path(__file__).resolve().parents[2]


def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((REPO / "schema" / "stack.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schema_is_current() -> None:
    committed = (REPO / "schema" / "stack.schema.json").read_text()
    assert committed == stack_schema_json(), "run `make schema` and commit schema/stack.schema.json"


def test_schema_is_draft_2020_12() -> None:
    assert stack_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_root_stack_validates() -> None:
    doc: Any = yaml.safe_load((REPO / "stack.yaml").read_text())
    errors = list(_validator().iter_errors(doc))
    assert errors == []


def test_unknown_key_is_rejected() -> None:
    doc: Any = yaml.safe_load((REPO / "stack.yaml").read_text())
    doc["encoders"]["clip-image"]["batchsize"] = 8
    assert list(_validator().iter_errors(doc))
    doc = yaml.safe_load((REPO / "stack.yaml").read_text())
    doc["modles"] = {}
    assert list(_validator().iter_errors(doc))
