"""From an API name and its arguments to an HTTP request, by the REST API spec JSON files.

Path selection follows the official runners: among the spec's paths whose parts are all given,
the one using the most parts wins (the first listed on a tie). Method: the first listed, except
that a request with a body goes out as POST when the spec lists GET first and POST too (a body on
GET is legal for Elasticsearch but not portable). Remaining arguments must be query parameters of
the API or common ones (``_common.json``); anything else is a client-side (``catch: param``) error.

An API missing from the spec folder falls back to the official Python client's generated
endpoint code (generated from the same specification): the client method is called against a
recorder that captures method, path, query and body instead of sending them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

from tests.conformance.transport import encode_query_value

CLIENT_PARAMS = frozenset({"ignore"})  # understood by the runner, never sent


class ParamError(Exception):
    """The request cannot be built: unknown parameter, missing path part, body not supported."""


class UnknownApi(Exception):
    """Neither the spec folder nor the client knows the API."""


@dataclass(frozen=True)
class ApiPath:
    template: str
    methods: tuple[str, ...]
    parts: tuple[str, ...]


@dataclass(frozen=True)
class ApiSpec:
    name: str
    paths: tuple[ApiPath, ...]
    params: frozenset[str]
    body: Mapping[str, Any] | None
    accept: tuple[str, ...] = ()
    content_type: tuple[str, ...] = ()

    @property
    def all_parts(self) -> frozenset[str]:
        return frozenset(part for path in self.paths for part in path.parts)

    @property
    def ndjson_body(self) -> bool:
        return bool(self.body and self.body.get("serialize") == "bulk") or any(
            "ndjson" in t for t in self.content_type
        )


@dataclass
class PreparedRequest:
    api: str
    method: str
    path: str
    query: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    body_kind: str | None = None  # "json" or "x-ndjson": picks the Content-Type
    source: str = "spec"  # "spec" or "client" (the fallback)


def _parse_spec(name: str, raw: Mapping[str, Any]) -> ApiSpec:
    paths = []
    for entry in raw.get("url", {}).get("paths", []):
        parts = tuple((entry.get("parts") or {}).keys())
        paths.append(ApiPath(entry["path"], tuple(m.upper() for m in entry.get("methods", [])), parts))
    headers = raw.get("headers") or {}
    return ApiSpec(
        name=name,
        paths=tuple(paths),
        params=frozenset((raw.get("params") or {}).keys()),
        body=raw.get("body"),
        accept=tuple(headers.get("accept") or ()),
        content_type=tuple(headers.get("content_type") or ()),
    )


class SpecRegistry:
    """The API specs of one or more folders (later folders override earlier ones)."""

    def __init__(self, folders: list[Path], *, client_fallback: bool = True) -> None:
        self.folders = folders
        self.client_fallback = client_fallback
        self.common_params: frozenset[str] = frozenset()
        self._specs: dict[str, ApiSpec] = {}
        self._recorder: _Recorder | None = None
        for folder in folders:
            common = folder / "_common.json"
            if common.is_file():
                raw = json.loads(common.read_text(encoding="utf-8"))
                self.common_params = self.common_params | frozenset((raw.get("params") or {}).keys())
            for path in sorted(folder.glob("*.json")):
                if path.name.startswith("_"):
                    continue
                for name, raw_spec in json.loads(path.read_text(encoding="utf-8")).items():
                    self._specs[name] = _parse_spec(name, raw_spec)

    def __contains__(self, api: str) -> bool:
        return api in self._specs

    def get(self, api: str) -> ApiSpec | None:
        return self._specs.get(api)

    def names(self) -> list[str]:
        return sorted(self._specs)

    def build(self, api: str, args: Mapping[str, Any]) -> PreparedRequest:
        """The request for ``api`` called with ``args`` (path parts, query params and ``body``)."""
        spec = self._specs.get(api)
        if spec is not None:
            return build_from_spec(spec, args, self.common_params)
        if not self.client_fallback:
            raise UnknownApi(f"unknown API [{api}]: not in the REST spec folder(s)")
        if self._recorder is None:
            self._recorder = _Recorder()
        return self._recorder.build(api, args)


def _quote_part(value: Any) -> str:
    return quote(encode_query_value(value), safe=",*")


def _pick_method(methods: tuple[str, ...], has_body: bool) -> str:
    if not methods:
        raise ParamError("the spec lists no HTTP method")
    if has_body and methods[0] in ("GET", "HEAD") and "POST" in methods:
        return "POST"
    return methods[0]


def serialize_body(body: Any, ndjson: bool) -> bytes:
    """A ``body`` as YAML gives it: a mapping, a list (NDJSON lines for bulk-style APIs) or a string."""
    if ndjson:
        if isinstance(body, str):
            text = body
        else:
            items = body if isinstance(body, list) else [body]
            lines = [
                item.rstrip("\n") if isinstance(item, str) else json.dumps(item, separators=(",", ":"))
                for item in items
            ]
            text = "\n".join(lines)
        if not text.endswith("\n"):
            text += "\n"
        return text.encode("utf-8")
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def build_from_spec(spec: ApiSpec, args: Mapping[str, Any], common_params: frozenset[str]) -> PreparedRequest:
    args = dict(args)
    body = args.pop("body", None)
    for client_param in CLIENT_PARAMS:
        args.pop(client_param, None)
    all_parts = spec.all_parts
    parts: dict[str, Any] = {}
    query: list[tuple[str, str]] = []
    for key, value in args.items():
        if key in all_parts:
            parts[key] = value
        elif key in spec.params or key in common_params:
            if value is not None:
                query.append((key, encode_query_value(value)))
        else:
            raise ParamError(f"param [{key}] not supported by [{spec.name}]")

    best: ApiPath | None = None
    for candidate in spec.paths:
        if all(part in parts for part in candidate.parts) and (
            best is None or len(candidate.parts) > len(best.parts)
        ):
            best = candidate
    if best is None:
        needed = " or ".join(f"[{', '.join(p.parts)}]" for p in spec.paths)
        raise ParamError(f"[{spec.name}] needs path part(s) {needed}; given [{', '.join(parts)}]")
    unused = [part for part in parts if part not in best.parts]
    if unused:
        raise ParamError(f"path part(s) [{', '.join(unused)}] not used by [{spec.name}] path {best.template}")
    path = best.template
    for part in best.parts:
        path = path.replace("{" + part + "}", _quote_part(parts[part]))

    payload: bytes | None = None
    kind: str | None = None
    if body is not None:
        if spec.body is None:
            raise ParamError(f"body is not supported by [{spec.name}]")
        payload = serialize_body(body, spec.ndjson_body)
        kind = "x-ndjson" if spec.ndjson_body else "json"
    return PreparedRequest(
        spec.name, _pick_method(best.methods, payload is not None), path, query, payload, kind
    )


class _Captured(Exception):
    def __init__(
        self, method: str, path: str, params: Mapping[str, Any], headers: Mapping[str, str], body: Any
    ):
        super().__init__(method, path)
        self.method = method
        self.path = path
        self.params = dict(params or {})
        self.headers = {k.lower(): v for k, v in (headers or {}).items()}
        self.body = body


class _Recorder:
    """The official client, pointed nowhere: its API methods build requests that we capture."""

    RENAMES: Mapping[str, str] = {"from": "from_"}

    def __init__(self) -> None:
        from elasticsearch import Elasticsearch

        class Recording(Elasticsearch):
            def perform_request(
                self,
                method: str,
                path: str,
                *,
                params: Mapping[str, Any] | None = None,
                headers: Mapping[str, str] | None = None,
                body: Any = None,
                endpoint_id: str | None = None,
                path_parts: Mapping[str, Any] | None = None,
            ) -> NoReturn:
                raise _Captured(method, path, params or {}, headers or {}, body)

        self.client = Recording("http://recorder.invalid:9200")

    def build(self, api: str, args: Mapping[str, Any]) -> PreparedRequest:
        target: Any = self.client
        for attribute in api.split("."):
            target = getattr(target, attribute, None)
            if target is None or attribute.startswith("_"):
                raise UnknownApi(f"unknown API [{api}]: not in the REST spec folder(s) nor in the client")
        if not callable(target):
            raise UnknownApi(f"unknown API [{api}]: not an API method of the client")
        kwargs = {self.RENAMES.get(k, k): v for k, v in args.items() if k not in CLIENT_PARAMS}
        if isinstance(kwargs.get("body"), str):
            with contextlib.suppress(ValueError):  # an NDJSON or plain-text body goes as is
                kwargs["body"] = json.loads(kwargs["body"])
        try:
            target(**kwargs)
        except _Captured as captured:
            ndjson = "ndjson" in captured.headers.get("content-type", "")
            payload = None if captured.body is None else serialize_body(captured.body, ndjson)
            query = [(k, encode_query_value(v)) for k, v in captured.params.items() if v is not None]
            kind = None if payload is None else ("x-ndjson" if ndjson else "json")
            return PreparedRequest(api, captured.method, captured.path, query, payload, kind, source="client")
        except (TypeError, ValueError) as exc:
            raise ParamError(f"[{api}] (client fallback): {exc}") from exc
        raise UnknownApi(f"[{api}]: the client method sent no request")
