"""Requests, responses, errors and routing for the sandbox, on Elasticsearch's wire conventions."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from es_sandbox import jsonio
from es_sandbox.suggestions import levenshtein_similarity

if TYPE_CHECKING:
    from es_sandbox.state import SandboxState

# Exceptions that are plain Java exceptions rather than ElasticsearchException subclasses. ES's
# root_cause walks down the cause chain only through ElasticsearchExceptions, so an error caused by
# one of these reports itself as the root cause (e.g. x_content_parse_exception, not its cause).
NON_ES_TYPES = frozenset(
    {
        "illegal_argument_exception",
        "illegal_state_exception",
        "x_content_parse_exception",
        "media_type_header_exception",
        "number_format_exception",
        "json_parse_exception",
        "unsupported_operation_exception",
        "arithmetic_exception",
        "null_pointer_exception",
        "date_time_parse_exception",
    }
)


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
        self.headers: dict[str, str] = {}

    def with_cause(self, cause: ApiError) -> ApiError:
        """Chain ``cause`` (shown as ``caused_by``), returning self for ``raise X.with_cause(Y)``."""
        self.caused_by = cause
        return self

    def to_error(self) -> dict[str, Any]:
        body: dict[str, Any] = {"root_cause": [self.root_cause()], **self.to_error_object()}
        return body

    def root_cause(self) -> dict[str, Any]:
        if (
            self.caused_by is not None
            and self.type not in NON_ES_TYPES
            and self.caused_by.type not in NON_ES_TYPES
        ):
            return self.caused_by.root_cause()
        return {"type": self.type, "reason": self.reason, **self.extra}

    def to_error_object(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "reason": self.reason, **self.extra}
        if self.caused_by is not None:
            out["caused_by"] = self.caused_by.to_error_object()
        return out

    def body(self) -> dict[str, Any]:
        return {"error": self.to_error(), "status": self.status}


class PlainError(ApiError):
    """An error ES answers with a bare string (``{"error": "...", "status": N}``), e.g. 405/406."""

    def __init__(self, status: int, message: str, include_status: bool = True) -> None:
        super().__init__(status, "plain", message)
        self.include_status = include_status

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.reason}
        if self.include_status:
            out["status"] = self.status
        return out


def bad_request(reason: str, type: str = "illegal_argument_exception", **extra: Any) -> ApiError:
    return ApiError(400, type, reason, **extra)


def not_found(reason: str, type: str = "resource_not_found_exception", **extra: Any) -> ApiError:
    return ApiError(404, type, reason, **extra)


def parse_failure(parser: str, field_name: str, cause: ApiError | None = None) -> ApiError:
    """ES's ObjectParser wrapper: "[parser] failed to parse field [field]" with the real cause."""
    error = ApiError(400, "x_content_parse_exception", f"[{parser}] failed to parse field [{field_name}]")
    if cause is not None:
        error.with_cause(cause)
    return error


def unknown_field(parser: str, field_name: str, known: Iterable[str] = ()) -> ApiError:
    """ES's ObjectParser error for an unknown key, with its did-you-mean suggestion."""

    reason = f"[{parser}] unknown field [{field_name}]"
    close = sorted(k for k in known if levenshtein_similarity(field_name, k) > 0.7)
    if close:
        reason += f" did you mean {'[' + close[0] + ']' if len(close) == 1 else close}?"
    return ApiError(400, "x_content_parse_exception", reason)


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes
    path_params: dict[str, str] = field(default_factory=dict)
    uri: str = ""
    compat: int = 9  # the REST API compatibility version negotiated from the media types
    warnings: list[str] = field(default_factory=list)
    route: Route | None = None
    _json: Any = None
    _parsed: bool = False

    def has_body(self) -> bool:
        return bool(self.body.strip())

    def json(self) -> Any:
        """The body as JSON; ES answers malformed JSON with 400 x_content_parse_exception."""
        if self._parsed:
            return self._json
        if not self.has_body():
            self._parsed = True
            return None
        try:
            self._json = jsonio.loads(self.body)
        except json.JSONDecodeError as exc:
            raise ApiError(
                400,
                "x_content_parse_exception",
                f"[{exc.lineno}:{exc.colno}] Unexpected character or end of input: {exc.msg}",
            ) from exc
        except UnicodeDecodeError as exc:
            raise ApiError(400, "x_content_parse_exception", f"Invalid UTF-8 in request body: {exc}") from exc
        self._parsed = True
        return self._json

    def json_object(self, required: bool = False) -> dict[str, Any]:
        data = self.json()
        if data is None:
            if required:
                raise ApiError(400, "parse_exception", "request body is required")
            return {}
        if not isinstance(data, dict):
            raise ApiError(
                400,
                "parse_exception",
                "request body or source parameter is required" if data is None else "Expected START_OBJECT",
            )
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

    def int_param(self, name: str, default: int) -> int:
        value = self.params.get(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError as exc:
            raise bad_request(
                f"Failed to parse int parameter [{name}] with value [{value}]",
            ).with_cause(ApiError(400, "number_format_exception", f'For input string: "{value}"')) from exc

    def warn(self, message: str) -> None:
        """Add a deprecation warning, sent back as a ``Warning: 299 ...`` header like ES."""
        if message not in self.warnings:
            self.warnings.append(message)


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
    api: str | None = None
    params: frozenset[str] | None = None  # query parameters the API accepts; None: not checked

    def match(self, path: str) -> dict[str, str] | None:
        m = self.regex.fullmatch(path)
        return m.groupdict() if m else None


class RouteTable:
    """Routes collected by decorators in each api module, then merged into the server's router.

    ``api`` names the endpoint as the REST API spec does (``indices.create``); with it, or with an
    explicit ``params`` set, the server rejects unknown query parameters the way ES does.
    """

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(
        self,
        method: str,
        pattern: str,
        handler: Handler,
        *,
        write: bool | None = None,
        api: str | None = None,
        params: Iterable[str] | None = None,
    ) -> None:
        segments = [s for s in pattern.split("/") if s]
        regex = "/" + "/".join(_PARAM.sub(lambda m: f"(?P<{m.group(1)}>[^/]+)", s) for s in segments)
        literal = sum(1 for s in segments if not _PARAM.search(s))
        is_write = write if write is not None else method in ("PUT", "POST", "DELETE")
        self.routes.append(
            Route(
                method,
                pattern,
                handler,
                re.compile(regex if segments else "/"),
                literal,
                is_write,
                api,
                frozenset(params) if params is not None else None,
            )
        )

    def route(
        self,
        method: str,
        *patterns: str,
        write: bool | None = None,
        api: str | None = None,
        params: Iterable[str] | None = None,
    ) -> Callable[[Handler], Handler]:
        def deco(func: Handler) -> Handler:
            for methods in method.split("|"):
                for pattern in patterns:
                    self.add(methods, pattern, func, write=write, api=api, params=params)
            return func

        return deco


class Router:
    """Resolves a method and path to a route, the way ES's RestController does.

    Routes are bucketed by number of path segments; within a bucket, patterns with more literal
    segments win (``/_ml/trained_models/_stats`` over ``/_ml/trained_models/{id}``). A HEAD request
    uses a HEAD route if one matches, else the GET route of the same path.
    """

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self._by_length: dict[int, list[Route]] = {}

    def include(self, table: RouteTable) -> None:
        self.routes.extend(table.routes)
        self.routes.sort(key=lambda r: (-r.literal_segments, r.pattern.count("{")))
        self._by_length = {}
        for route in self.routes:
            length = len([s for s in route.pattern.split("/") if s])
            self._by_length.setdefault(length, []).append(route)

    def resolve(self, method: str, path: str, uri: str | None = None) -> tuple[Route, dict[str, str]]:
        length = len([s for s in path.split("/") if s])
        candidates = self._by_length.get(length, [])
        allowed: set[str] = set()
        fallback: tuple[Route, dict[str, str]] | None = None
        for route in candidates:
            params = route.match(path)
            if params is None:
                continue
            if route.method == method:
                return route, params
            if method == "HEAD" and route.method == "GET" and fallback is None:
                fallback = (route, params)
            allowed.add(route.method)
        if fallback is not None:
            return fallback
        shown = uri or path
        if allowed:
            error = PlainError(
                405,
                f"Incorrect HTTP method for uri [{shown}] and method [{method}], "
                f"allowed: [{', '.join(sorted(allowed))}]",
            )
            error.headers["Allow"] = ",".join(sorted(allowed))
            raise error
        raise PlainError(
            400, f"no handler found for uri [{shown}] and method [{method}]", include_status=False
        )
