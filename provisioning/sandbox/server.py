"""The sandbox's HTTP server: Elasticsearch wire conventions around the API modules' handlers."""

from __future__ import annotations

import gzip
import json
import logging
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from provisioning.sandbox import api
from provisioning.sandbox.config import SandboxConfig
from provisioning.sandbox.http import ApiError, Request, Response, Router
from provisioning.sandbox.state import LoggedRequest, SandboxState

log = logging.getLogger("provisioning.sandbox")

JSON = "application/json"
VENDOR_JSON = "application/vnd.elasticsearch+json"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
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
        path = unquote(split.path) or "/"
        if len(path) > 1:
            path = path.rstrip("/")
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = self._read_body()
        request = Request(self.command, path, params, headers, body)
        sandbox = self.server.sandbox
        write = False
        try:
            response = sandbox.handle(request)
            route_write = getattr(request, "_write", False)
            write = bool(route_write)
        except ApiError as exc:
            response = Response(exc.status, exc.body())
            write = bool(getattr(request, "_write", False))
        self._send(request, response)
        sandbox.state.log.add(
            LoggedRequest(self.command, path, response.status, write, wall, (time.perf_counter() - started) * 1000)
        )

    def _send(self, request: Request, response: Response) -> None:
        accept = request.headers.get("accept", "") + request.headers.get("content-type", "")
        content_type = response.content_type
        payload: bytes
        if isinstance(response.body, bytes):
            payload = response.body
        elif isinstance(response.body, str):
            payload = response.body.encode()
        elif response.body is None:
            payload = b""
        else:
            pretty = request.params.get("pretty") in ("", "true")
            payload = json.dumps(response.body, indent=2 if pretty else None, separators=None if pretty else (",", ":")).encode()
        if content_type is None and payload:
            if VENDOR_JSON in accept:
                content_type = f"{VENDOR_JSON};compatible-with=9"
            else:
                content_type = f"{JSON}"
        self.send_response(response.status)
        self.send_header("X-elastic-product", "Elasticsearch")
        for key, value in response.headers.items():
            self.send_header(key, value)
        if content_type:
            self.send_header("content-type", content_type)
        if self.command == "HEAD":
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            return
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _dispatch


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

    def chance(self, rate: float) -> bool:
        """A seeded coin toss, shared by all fault injection so runs are reproducible."""
        if rate <= 0:
            return False
        with self._rng_lock:
            return self._rng.random() < rate

    def handle(self, request: Request) -> Response:
        faults = self.config.faults
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)
        route, path_params = self.router.resolve(request.method, request.path)
        request.path_params = path_params
        setattr(request, "_write", route.write)  # noqa: B010 - read back by the transport for the log
        if self.chance(faults.request_503_rate) and request.path != "/":
            raise ApiError(503, "unavailable_shards_exception", "[sandbox] injected fault: service unavailable")
        result = route.handler(self.state, request)
        if isinstance(result, Response):
            return result
        return Response(200, result if result is not None else {"acknowledged": True})


class SandboxServer:
    """A sandbox listening on host:port, in a background thread (tests) or the foreground (CLI)."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.sandbox = Sandbox(self.config)
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
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="sandbox", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
