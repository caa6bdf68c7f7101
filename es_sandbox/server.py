"""The sandbox's HTTP server: Elasticsearch wire conventions around the API modules' handlers.

Every response carries ``X-Elastic-Product: Elasticsearch``; media types are negotiated like ES
(``application/vnd.elasticsearch+json; compatible-with=9`` or ``=8``, plain JSON and NDJSON);
query parameters an endpoint does not know are refused with ES's message; ``filter_path``,
``pretty`` and ``format=yaml`` apply to every JSON answer.
"""

from __future__ import annotations

import gzip
import json
import logging
import random
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml

from es_sandbox import api, jsonio, versions
from es_sandbox.config import SandboxConfig
from es_sandbox.http import ApiError, PlainError, Request, Response, Router
from es_sandbox.node import BUILD_HASH
from es_sandbox.params import COMMON, allowed_params
from es_sandbox.persistence import Persister
from es_sandbox.state import LoggedRequest, SandboxState
from es_sandbox.suggestions import did_you_mean

log = logging.getLogger("es_sandbox")

JSON = "application/json"
VENDOR_JSON = "application/vnd.elasticsearch+json"
BODY_TYPES = {
    "application/json",
    "application/x-ndjson",
    "application/vnd.elasticsearch+json",
    "application/vnd.elasticsearch+x-ndjson",
}
SUPPORTED_COMPAT = (8, 9)
_SLASH = "\x00"  # an encoded "/" inside a path segment, while routing


def _parse_media_type(header: str) -> tuple[str, dict[str, str]] | None:
    """``type/subtype; k=v`` -> (type, params); None for an empty header."""
    first = header.split(",")[0].strip()
    if not first:
        return None
    parts = [p.strip() for p in first.split(";")]
    params = {}
    for param in parts[1:]:
        if "=" in param:
            key, value = param.split("=", 1)
            params[key.strip().lower()] = value.strip().strip('"')
    return parts[0].lower(), params


def negotiate(request: Request) -> int:
    """The REST compatibility version of a request, or ES's media_type_header_exception."""
    accept_header = request.headers.get("accept", "")
    content_header = request.headers.get("content-type", "")
    accept = _parse_media_type(accept_header)
    content = _parse_media_type(content_header)
    has_body = request.has_body()
    if has_body:
        if content is None:
            raise PlainError(406, "Content-Type header is missing")
        if content[0] not in BODY_TYPES:
            raise PlainError(406, f"Content-Type header [{content_header}] is not supported")

    def version_of(media: tuple[str, dict[str, str]] | None, header: str, name: str) -> int | None:
        if media is None or "compatible-with" not in media[1]:
            return None
        raw = media[1]["compatible-with"]
        if not re.fullmatch(r"\d+", raw):
            raise ApiError(
                400,
                "media_type_header_exception",
                f"Invalid media-type value on headers [{name}]",
            ).with_cause(ApiError(400, "illegal_argument_exception", f"invalid media-type [{header}]"))
        return int(raw)

    a_version = version_of(accept, accept_header, "Accept")
    c_version = version_of(content, content_header, "Content-Type") if has_body else None
    accept_version = a_version if a_version is not None else 9
    content_version = c_version if c_version is not None else 9

    def media_error(message: str) -> ApiError:
        return ApiError(
            400,
            "media_type_header_exception",
            "Invalid media-type value on headers [Accept, Content-Type]",
        ).with_cause(ApiError(400, "status_exception", message))

    if accept_version not in SUPPORTED_COMPAT:
        raise media_error(
            f"Accept version must be either version 9 or 8, but found {accept_version}. Accept={accept_header}"
        )
    if has_body:
        if content_version not in SUPPORTED_COMPAT:
            raise media_error(
                f"Content-Type version must be either version 9 or 8, but found {content_version}. "
                f"Content-Type={content_header}"
            )
        if content_version != accept_version:
            raise media_error(
                "A compatible version is required on both Content-Type and Accept headers if either one has "
                "requested a compatible version and the compatible versions must match. "
                f"Accept={accept_header}, Content-Type={content_header}"
            )
        if (c_version is None) != (a_version is None):
            raise media_error(
                "A compatible version is required on both Content-Type and Accept headers if either one has "
                f"requested a compatible version. Accept={accept_header}, Content-Type={content_header}"
            )
        return content_version
    return accept_version


def filter_path(body: Any, spec: str) -> Any:
    """ES's ``filter_path``: dotted paths, ``*`` within a name, ``**`` for any depth, ``-`` to exclude."""
    patterns = [p.strip() for p in spec.split(",") if p.strip()]
    includes = [p.split(".") for p in patterns if not p.startswith("-")]
    excludes = [p[1:].split(".") for p in patterns if p.startswith("-")]

    def name_matches(pattern: str, name: str) -> bool:
        if pattern == "*" or pattern == "**":
            return True
        if "*" not in pattern:
            return pattern == name
        regex = ".*".join(re.escape(x) for x in pattern.split("*"))
        return re.fullmatch(regex, name) is not None

    def advance(paths: list[list[str]], name: str) -> tuple[list[list[str]], bool]:
        """Patterns left after descending into ``name``; True when one of them ends here."""
        remaining: list[list[str]] = []
        complete = False
        for path in paths:
            if not path:
                continue
            head = path[0]
            if head == "**":
                remaining.append(path)  # ** can swallow this level
                rest, done = advance([path[1:]], name)
                remaining.extend(rest)
                complete = complete or done or len(path) == 1
                continue
            if name_matches(head, name):
                if len(path) == 1:
                    complete = True
                else:
                    remaining.append(path[1:])
        return remaining, complete

    def include(node: Any, paths: list[list[str]]) -> Any:
        if isinstance(node, list):
            out_list = [include(item, paths) for item in node]
            return [item for item in out_list if item is not _MISSING]
        if not isinstance(node, dict):
            return _MISSING
        out: dict[str, Any] = {}
        for key, value in node.items():
            rest, complete = advance(paths, key)
            if complete:
                out[key] = value
            elif rest:
                filtered = include(value, rest)
                if filtered is not _MISSING and filtered != [] and filtered != {}:
                    out[key] = filtered
        return out if out else _MISSING

    def exclude(node: Any, paths: list[list[str]]) -> Any:
        if isinstance(node, list):
            return [exclude(item, paths) for item in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            rest, complete = advance(paths, key)
            if complete:
                continue
            out[key] = exclude(value, rest) if rest else value
        return out

    result = body
    if includes:
        result = include(result, includes)
        if result is _MISSING:
            result = {}
    if excludes:
        result = exclude(result, excludes)
    return result


class _Missing:
    pass


_MISSING = _Missing()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY: without it, a keep-alive client's delayed ACK stalls each response ~40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet by default; -v on the CLI logs
        log.debug("%s %s", self.address_string(), format % args)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            body = b"".join(chunks)
        else:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
        if self.headers.get("Content-Encoding", "").lower() == "gzip" and body:
            body = gzip.decompress(body)
        return body

    def _dispatch(self) -> None:
        started = time.perf_counter()
        wall = time.time()
        split = urlsplit(self.path)
        # Decode each segment apart, so an encoded "/" (date math: <logs-{now/d}>) stays in its
        # segment; the router sees it as a placeholder, handlers get it back (see _restore_slashes).
        path = "/".join(unquote(segment).replace("/", _SLASH) for segment in split.path.split("/")) or "/"
        if len(path) > 1:
            path = path.rstrip("/") or "/"
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = self._read_body()
        request = Request(self.command, path, params, headers, body, uri=self.path)
        sandbox = self.server.sandbox
        try:
            response = sandbox.handle(request)
        except ApiError as exc:
            response = sandbox.error_response(exc)
        except Exception as exc:  # the request boundary: a sandbox bug answers 500 (logged), as ES would
            log.exception("sandbox failed on %s %s", self.command, self.path)
            response = sandbox.error_response(
                ApiError(500, "exception", f"provision sandbox internal error: {type(exc).__name__}: {exc}")
            )
        write = request.route.write if request.route is not None else False
        # Logged before the answer goes out, so a client that reads the log right after sees it.
        sandbox.state.log.add(
            LoggedRequest(
                self.command, path, response.status, write, wall, (time.perf_counter() - started) * 1000
            )
        )
        if write:
            sandbox.state.mark_dirty()
        self._send(request, response)

    def _send(self, request: Request, response: Response) -> None:
        payload, content_type = render(request, response)
        self.send_response(response.status)
        self.send_header("X-elastic-product", "Elasticsearch")
        for key, value in response.headers.items():
            self.send_header(key, value)
        for warning in request.warnings:
            escaped = warning.replace("\\", "\\\\").replace('"', '\\"')
            self.send_header(
                "Warning",
                f'299 Elasticsearch-{self.server.sandbox.state.emulation.number}-{BUILD_HASH} "{escaped}"',
            )
        if content_type:
            self.send_header("content-type", content_type)
        if payload and "gzip" in request.headers.get("accept-encoding", "").lower():
            # ES compresses responses (http.compression) for clients that accept it.
            payload = gzip.compress(payload, compresslevel=3)
            self.send_header("content-encoding", "gzip")
            self.send_header("vary", "Accept-Encoding")
        self.send_header("content-length", str(len(payload)))
        if self.command != "HEAD" and payload:
            # Headers and body in one write: one segment for small answers, no Nagle interplay.
            buffered: list[bytes] = getattr(self, "_headers_buffer", [])
            self.wfile.write(b"".join([*buffered, b"\r\n", payload]))
            self._headers_buffer = []  # type: ignore[var-annotated]
        else:
            self.end_headers()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _dispatch


def render(request: Request, response: Response) -> tuple[bytes, str | None]:
    """The response body bytes and content type, after filter_path, pretty and format."""
    content_type = response.content_type
    if isinstance(response.body, bytes):
        return response.body, content_type or JSON
    if isinstance(response.body, str):
        return response.body.encode(), content_type or "text/plain; charset=UTF-8"
    if response.body is None:
        return b"", None
    body = response.body
    if request.params.get("filter_path"):
        body = filter_path(body, request.params["filter_path"])
    fmt = request.params.get("format", "json")
    if fmt == "yaml":
        return yaml.safe_dump(body, sort_keys=False).encode(), "application/yaml"
    pretty = request.params.get("pretty") in ("", "true")
    if pretty:  # Jackson's pretty printer puts " : " between keys and values
        payload = (json.dumps(body, indent=2, separators=(",", " : "), ensure_ascii=False) + "\n").encode()
    else:
        payload = jsonio.dumps(body)
    if content_type is None:
        accept = _parse_media_type(request.headers.get("accept", ""))
        if accept is not None and accept[0].startswith("application/vnd.elasticsearch+"):
            content_type = f"{VENDOR_JSON};compatible-with={request.compat}"
        else:
            content_type = JSON
    return payload, content_type


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sandbox: Sandbox


class Sandbox:
    """The request pipeline: faults, routing, handlers; independent of the HTTP transport."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.state = SandboxState(config)
        self.router = Router()
        for table in api.route_tables():
            self.router.include(table)
        self._rng = random.Random(config.faults.seed)
        self._rng_lock = threading.Lock()
        self.state.chance = self.chance  # handlers (bulk) toss the same seeded coin
        self.state.router_routes = self.router.routes  # for GET /_capabilities

    def chance(self, rate: float) -> bool:
        """A seeded coin toss, shared by all fault injection so runs are reproducible."""
        if rate <= 0:
            return False
        with self._rng_lock:
            return self._rng.random() < rate

    def error_response(self, exc: ApiError) -> Response:
        return Response(exc.status, exc.body(), headers=dict(exc.headers))

    def handle(self, request: Request) -> Response:
        faults = self.config.faults
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)
        if "source" in request.params and not request.has_body():
            request.body = request.params["source"].encode()
            request.headers.setdefault("content-type", request.params.get("source_content_type", JSON))
        request.compat = negotiate(request)
        route, path_params = self.router.resolve(request.method, request.path, request.uri)
        request.path_params = {k: v.replace(_SLASH, "/") for k, v in path_params.items()}
        request.path = request.path.replace(_SLASH, "/")
        request.route = route
        self._check_params(request)
        if self.chance(faults.request_503_rate) and request.path != "/":
            raise ApiError(
                503,
                "cluster_block_exception",
                "blocked by: [SERVICE_UNAVAILABLE/2/no master];",
            )
        try:
            with versions.emulating(self.state.emulation):
                result = route.handler(self.state, request)
        except ApiError:
            raise
        except RecursionError as exc:
            raise ApiError(400, "x_content_parse_exception", "request nested too deeply") from exc
        if isinstance(result, Response):
            response = result
        else:
            response = Response(200, result if result is not None else {"acknowledged": True})
        if request.method == "HEAD":
            response.body = b""
        return response

    def _check_params(self, request: Request) -> None:
        route = request.route
        if route is None:
            return
        allowed = route.params | COMMON if route.params is not None else allowed_params(route.api)
        if allowed is None:
            return
        unknown = [p for p in request.params if p not in allowed]
        if not unknown:
            return
        details = ", ".join(did_you_mean(p, sorted(allowed)) for p in unknown)
        plural = "s" if len(unknown) > 1 else ""
        raise ApiError(
            400,
            "illegal_argument_exception",
            f"request [{request.path}] contains unrecognized parameter{plural}: {details}",
        )


class SandboxServer:
    """A sandbox listening on host:port, in a background thread (tests) or the foreground (CLI)."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.sandbox = Sandbox(self.config)
        self.persister: Persister | None = None
        if self.config.data_dir is not None:
            self.persister = Persister(self.sandbox.state, self.config.data_dir)
            self.persister.load()
        self._httpd = _Server((self.config.host, self.config.port), _Handler)
        self._httpd.sandbox = self.sandbox
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> SandboxState:
        return self.sandbox.state

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    def start(self) -> SandboxServer:
        if self.persister is not None:
            self.persister.start()
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="sandbox", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        if self.persister is not None:
            self.persister.start()
        self._httpd.serve_forever()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        if self.persister is not None:
            self.persister.stop()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
