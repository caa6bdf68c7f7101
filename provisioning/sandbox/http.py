"""Requests, responses, errors and routing for the sandbox, on Elasticsearch's wire conventions."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provisioning.sandbox.state import SandboxState


class ApiError(Exception):
    """An error answered the way Elasticsearch answers it.

    ``type`` is Elasticsearch's exception name in snake case (``resource_not_found_exception``),
    ``reason`` its message; ``extra`` lands next to them in the error object (e.g. ``index``).
    """

    def __init__(self, status: int, type: str, reason: str, **extra: Any) -> None:
        super().__init__(f"[{status}] {type}: {reason}")
        self.status = status
        self.type = type
        self.reason = reason
        self.extra = extra
        self.caused_by: ApiError | None = None

    def to_error(self) -> dict[str, Any]:
        cause: dict[str, Any] = {"type": self.type, "reason": self.reason, **self.extra}
        body: dict[str, Any] = {"root_cause": [self.root_cause()], **cause}
        if self.caused_by is not None:
            body["caused_by"] = self.caused_by.to_error_object()
        return body

    def root_cause(self) -> dict[str, Any]:
        if self.caused_by is not None:
            return self.caused_by.root_cause()
        return {"type": self.type, "reason": self.reason, **self.extra}

    def to_error_object(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "reason": self.reason, **self.extra}
        if self.caused_by is not None:
            out["caused_by"] = self.caused_by.to_error_object()
        return out

    def body(self) -> dict[str, Any]:
        return {"error": self.to_error(), "status": self.status}


def bad_request(reason: str, type: str = "illegal_argument_exception", **extra: Any) -> ApiError:
    return ApiError(400, type, reason, **extra)


def not_found(reason: str, type: str = "resource_not_found_exception", **extra: Any) -> ApiError:
    return ApiError(404, type, reason, **extra)


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes
    path_params: dict[str, str] = field(default_factory=dict)

    def has_body(self) -> bool:
        return bool(self.body.strip())

    def json(self) -> Any:
        """The body as JSON; ES answers malformed JSON with 400 x_content_parse_exception / parse_exception."""
        if not self.has_body():
            return None
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(400, "x_content_parse_exception", f"Failed to parse request body: {exc}") from exc

    def json_object(self, required: bool = False) -> dict[str, Any]:
        data = self.json()
        if data is None:
            if required:
                raise ApiError(400, "parse_exception", "request body is required")
            return {}
        if not isinstance(data, dict):
            raise ApiError(400, "x_content_parse_exception", "request body must be a JSON object")
        return data

    def param(self, name: str, default: str | None = None) -> str | None:
        return self.params.get(name, default)

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.params.get(name)
        if value is None:
            return default
        if value in ("", "true"):
            return True
        if value == "false":
            return False
        raise bad_request(f"Failed to parse value [{value}] as only [true] or [false] are allowed.")


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list -> JSON; bytes/str sent as is
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None


Handler = Callable[["SandboxState", Request], "Response | dict[str, Any] | list[Any] | None"]

_PARAM = re.compile(r"\{(\w+)\}")


@dataclass
class Route:
    method: str
    pattern: str
    handler: Handler
    regex: re.Pattern[str]
    literal_segments: int
    write: bool

    def match(self, path: str) -> dict[str, str] | None:
        m = self.regex.fullmatch(path)
        return m.groupdict() if m else None


class RouteTable:
    """Routes collected by decorators in each api module, then merged into the server's router."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, pattern: str, handler: Handler, *, write: bool | None = None) -> None:
        segments = [s for s in pattern.split("/") if s]
        regex = "/" + "/".join(
            _PARAM.sub(lambda m: f"(?P<{m.group(1)}>[^/]+)", s) for s in segments
        )
        literal = sum(1 for s in segments if not _PARAM.search(s))
        is_write = write if write is not None else method in ("PUT", "POST", "DELETE")
        self.routes.append(Route(method, pattern, handler, re.compile(regex if segments else "/"), literal, is_write))

    def route(self, method: str, *patterns: str, write: bool | None = None) -> Callable[[Handler], Handler]:
        def deco(func: Handler) -> Handler:
            for methods in method.split("|"):
                for pattern in patterns:
                    self.add(methods, pattern, func, write=write)
            return func

        return deco


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def include(self, table: RouteTable) -> None:
        self.routes.extend(table.routes)
        # More literal segments first, so /_ml/trained_models/_stats wins over /_ml/trained_models/{id}.
        self.routes.sort(key=lambda r: (-r.literal_segments, r.pattern.count("{")))

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed: set[str] = set()
        lookup = "GET" if method == "HEAD" else method
        for route in self.routes:
            params = route.match(path)
            if params is None:
                continue
            if route.method == method or (route.method == lookup and method == "HEAD"):
                return route, params
            allowed.add(route.method)
        if allowed:
            raise ApiError(
                405,
                "method_not_allowed",
                f"Incorrect HTTP method for uri [{path}] and method [{method}], allowed: {sorted(allowed)}",
            )
        raise ApiError(400, "illegal_argument_exception", f"no handler found for uri [{path}] and method [{method}]")
