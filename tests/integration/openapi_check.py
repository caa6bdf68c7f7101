"""Checking request bodies against Elastic's OpenAPI description of the Elasticsearch API.

Requests are recorded at the transport (a node class of the official client that keeps what it
sends) while the project talks to a real server, then each body is validated against the
requestBody schema of the operation its method and path match.

Four known gaps of the description (2025-03 snapshot) are corrected, each narrowly:
- ``UserDefinedValue`` (any JSON value: ``_meta`` entries, ``set.value``, script params) is
  rendered as a bare ``{"type": "object"}``; such schemas are read as "any value".
- NLP inference options list ``vocabulary`` as required; it is an output field, and Elasticsearch
  refuses it on model creation ("illegal setting [vocabulary]"), so it is not required here.
- ``oneOf`` with an OpenAPI ``discriminator`` (mapping properties by ``type``) is read as ``anyOf``:
  JSON Schema has no discriminators, and an object field without ``type`` matches two branches.
- ``_stop`` of a deployment takes ``force``/``allow_no_match`` in the body since 8.18; the snapshot
  predates that, and the official client sends them there.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import jsonschema
from elastic_transport import Urllib3HttpNode

from tests.conftest import CONFORMANCE

OPENAPI = CONFORMANCE / "openapi" / "elasticsearch-openapi.json"


@dataclass(frozen=True)
class Sent:
    method: str
    path: str
    body: bytes | None
    content_type: str


class RecordingNode(Urllib3HttpNode):
    """A transport node that keeps every request it sends (class-level, for one test at a time)."""

    sent: ClassVar[list[Sent]] = []

    def perform_request(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: Any = None,
        request_timeout: Any = None,
    ) -> Any:  # type: ignore[override]
        content_type = str((headers or {}).get("content-type", ""))
        RecordingNode.sent.append(Sent(method, target.split("?", 1)[0], body, content_type))
        return super().perform_request(
            method, target, body=body, headers=headers, request_timeout=request_timeout
        )


BODY_NEWER_THAN_SNAPSHOT = [re.compile(r"^POST /_ml/trained_models/[^/]+/deployment/_stop$")]


def _any_for_user_defined(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("type") == "object" and not set(node) - {"type", "description", "externalDocs"}:
            return {k: v for k, v in node.items() if k != "type"}
        out = {k: _any_for_user_defined(v) for k, v in node.items()}
        if "discriminator" in out and "oneOf" in out:
            # OpenAPI picks the branch by the discriminator (an object without `type` is an object
            # property); JSON Schema's oneOf would fail on branches that differ only in it.
            out["anyOf"] = out.pop("oneOf")
        if (
            "properties" in out
            and "vocabulary" in out["properties"]
            and "vocabulary" in out.get("required", [])
        ):
            out["required"] = [r for r in out["required"] if r != "vocabulary"]
        return out
    if isinstance(node, list):
        return [_any_for_user_defined(v) for v in node]
    return node


@cache
def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(Path(OPENAPI).read_text())
    fixed: dict[str, Any] = _any_for_user_defined(document)
    return fixed


@cache
def _operations() -> list[tuple[re.Pattern[str], str, dict[str, Any]]]:
    ops = []
    for template, methods in _document()["paths"].items():
        regex = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
        literal = len(re.sub(r"\{[^}]+\}", "", template))
        for method, op in methods.items():
            ops.append((regex, method.upper(), op, literal))
    ops.sort(
        key=lambda item: -item[3]
    )  # most literal path first: /_index_template/_simulate_index/{x} before /{index}/...
    return [(r, m, o) for r, m, o, _ in ops]


def operation_for(method: str, path: str) -> dict[str, Any] | None:
    for regex, op_method, op in _operations():
        if op_method == method and regex.match(path):
            return op
    return None


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        target: Any = _document()
        for part in ref.lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def body_schema(op: dict[str, Any]) -> dict[str, Any] | None:
    request = op.get("requestBody")
    if not request:
        return None
    content = _resolve(request).get("content", {})
    for media in ("application/json", "application/x-ndjson"):
        if media in content:
            return dict(content[media]["schema"])
    return None


def problems(sent: Sent) -> list[str]:
    """Why ``sent`` is not a body Elasticsearch's API description accepts; [] when it is."""
    op = operation_for(sent.method, sent.path)
    if op is None:
        return [f"{sent.method} {sent.path}: no such operation in the OpenAPI description"]
    schema = body_schema(op)
    if sent.body is None or not sent.body.strip():
        return []
    if schema is None:
        if any(p.match(f"{sent.method} {sent.path}") for p in BODY_NEWER_THAN_SNAPSHOT):
            return []
        return [f"{sent.method} {sent.path}: sent a body, but the operation takes none"]
    text = sent.body.decode()
    if "ndjson" in sent.content_type or sent.path.endswith("/_bulk"):
        documents = [json.loads(line) for line in text.splitlines() if line.strip()]
        schema = {"type": "array"}
        payload: Any = documents
    else:
        payload = json.loads(text)
    root = {**schema, "components": _document()["components"]}
    out = [
        f"{sent.method} {sent.path}: {e.message} at {list(e.absolute_path)}"
        for e in jsonschema.Draft202012Validator(root).iter_errors(payload)
    ]
    resolved = _resolve(schema)
    allowed = resolved.get("properties")
    if isinstance(payload, dict) and isinstance(allowed, dict) and resolved.get("type") == "object":
        unknown = sorted(set(payload) - set(allowed))
        if unknown:
            out.append(f"{sent.method} {sent.path}: top-level keys {unknown} are not in the API description")
    return out
