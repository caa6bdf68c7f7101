"""The document an ingest pipeline runs on (Elasticsearch's IngestDocument).

Its ``_source``, its metadata (``_index``, ``_id``, ``_routing``, ...) and ``_ingest`` (timestamp,
pipeline, on_failure details), addressed by dotted paths and ``{{field}}`` templates the way
processors address them; and the ``Dropped`` signal a ``drop`` processor raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from es_sandbox.http import ApiError
from es_sandbox.util import es_str

_TEMPLATE = re.compile(r"\{\{\{?\s*([^{}\s]+)\s*\}?\}\}")


class Dropped(Exception):
    """A drop processor ran: the document is not indexed."""


@dataclass
class IngestDocument:
    source: dict[str, Any]
    meta: dict[str, Any]
    ingest: dict[str, Any] = field(default_factory=dict)
    pipeline_stack: list[str] = field(default_factory=list)  # the pipelines running, outermost first

    def _root_and_path(self, path: str) -> tuple[dict[str, Any], list[str]]:
        if path.startswith("_ingest."):
            return self.ingest, path[len("_ingest.") :].split(".")
        if path in (
            "_index",
            "_id",
            "_routing",
            "_version",
            "_version_type",
            "_if_seq_no",
            "_if_primary_term",
        ):
            return self.meta, [path]
        if path.startswith("_source."):
            path = path[len("_source.") :]
        return self.source, path.split(".")

    def has(self, path: str) -> bool:
        root, parts = self._root_and_path(path)
        node: Any = root
        for part in parts:
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return False
        return True

    def get(self, path: str) -> Any:
        root, parts = self._root_and_path(path)
        node: Any = root
        for i, part in enumerate(parts):
            if isinstance(node, dict):
                if part not in node:
                    raise ApiError(
                        400,
                        "illegal_argument_exception",
                        f"field [{part}] not present as part of path [{path}]",
                    )
                node = node[part]
            elif isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ApiError(
                        400,
                        "illegal_argument_exception",
                        f"[{part}] is not an integer, cannot be used as an index as part of path [{path}]"
                        if not part.isdigit()
                        else f"[{part}] is out of bounds for array with length [{len(node)}] as part of path [{path}]",
                    )
                node = node[int(part)]
            else:
                raise ApiError(
                    400,
                    "illegal_argument_exception",
                    f"cannot resolve [{part}] from object of type [{java_type(node)}] as part of path [{path}]",
                )
            del i
        return node

    def set(self, path: str, value: Any) -> None:
        root, parts = self._root_and_path(path)
        node: Any = root
        for part in parts[:-1]:
            if isinstance(node, dict):
                child = node.get(part)
                if child is None:
                    child = {}
                    node[part] = child
                node = child
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise ApiError(
                    400,
                    "illegal_argument_exception",
                    f"cannot set [{parts[-1]}] with parent object of type [{java_type(node)}] as part of path [{path}]",
                )
        if isinstance(node, list) and parts[-1].isdigit():
            node[int(parts[-1])] = value
        elif isinstance(node, dict):
            node[parts[-1]] = value
        else:
            raise ApiError(
                400,
                "illegal_argument_exception",
                f"cannot set [{parts[-1]}] with parent object of type [{java_type(node)}] as part of path [{path}]",
            )

    def remove(self, path: str) -> None:
        root, parts = self._root_and_path(path)
        node: Any = root
        for part in parts[:-1]:
            if not isinstance(node, dict) or part not in node:
                raise ApiError(
                    400, "illegal_argument_exception", f"field [{part}] not present as part of path [{path}]"
                )
            node = node[part]
        if not isinstance(node, dict) or parts[-1] not in node:
            raise ApiError(
                400, "illegal_argument_exception", f"field [{parts[-1]}] not present as part of path [{path}]"
            )
        del node[parts[-1]]

    def render(self, template: Any) -> Any:
        """Mustache-style ``{{field}}`` / ``{{{field}}}`` references (missing fields render empty)."""
        if not isinstance(template, str) or "{{" not in template:
            return template

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("ctx."):
                name = name[4:]
            if not self.has(name):
                return ""
            value = self.get(name)
            if isinstance(value, (dict, list)):
                return es_str(value)
            return es_str(value)

        return _TEMPLATE.sub(replace, template)

    def to_simulate(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("_index", "_id", "_routing"):
            if self.meta.get(key) is not None:
                out[key] = self.meta[key]
        out["_version"] = str(self.meta.get("_version", "-3"))
        out["_source"] = self.source
        out["_ingest"] = {k: v for k, v in self.ingest.items() if not k.startswith("on_failure")}
        return out


def java_type(value: Any) -> str:
    if isinstance(value, str):
        return "java.lang.String"
    if isinstance(value, bool):
        return "java.lang.Boolean"
    if isinstance(value, int):
        return "java.lang.Integer"
    if isinstance(value, float):
        return "java.lang.Double"
    if isinstance(value, list):
        return "java.util.ArrayList"
    return "java.util.HashMap"
