"""The application object and the server that runs it (``provision serve``).

:func:`create_app` builds a Starlette application for one stack and cluster: the page
(:mod:`.pages`), the JSON API (:mod:`.api`), static files, security headers on every answer, and
JSON errors for unknown ``/api`` URLs. :func:`serve` runs it with uvicorn, on 127.0.0.1 unless told
otherwise. The application only reads from the cluster.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provisioning.app.api import api_routes, error_response
from provisioning.app.http_errors import HttpError
from provisioning.app.pages import page_routes
from provisioning.app.service import Limits, SearchService
from provisioning.cluster import Cluster
from provisioning.stackfile.stack import Stack

log = logging.getLogger("provisioning.app")

STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
        b"base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class SecurityHeaders:
    """Adds the headers above to every response (pure ASGI, so streaming files stay streamed)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def for_serving(cluster: Cluster) -> Cluster:
    """The same cluster with a client that gives up quickly (one retry, short backoff), so that a
    page says "cluster unavailable" within about a second instead of after the CLI's retries."""
    options = replace(cluster.options, max_retries=1, retry_backoff_base=0.1, retry_backoff_cap=0.5)
    return Cluster.connect(options)


def create_app(
    stack: Stack, cluster: Cluster, *, index: str | None = None, limits: Limits | None = None
) -> Starlette:
    """The search application for ``stack`` on ``cluster`` (``index``: default the first ingest
    job's). Raises SearchError for an index the stack does not declare or template."""
    service = SearchService.create(stack, cluster, index, limits)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
        message = {404: "no such page or API", 405: f"{request.method} is not allowed here"}.get(
            exc.status_code, str(exc.detail)
        )
        error = HttpError(exc.status_code, kind, message)
        if request.url.path.startswith("/api/") or request.url.path == "/healthz":
            return error_response(error)
        body = (
            f'<!doctype html><title>{exc.status_code}</title><h1>{message}</h1><p><a href="/">Search</a></p>'
        )
        return HTMLResponse(body, status_code=exc.status_code)

    app = Starlette(
        routes=[
            *api_routes(service),
            *page_routes(service),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        exception_handlers={HTTPException: http_error},
    )
    app.state.service = service
    app.add_middleware(SecurityHeaders)
    return app


def serve(
    stack: Stack,
    cluster: Cluster,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    index: str | None = None,
    log_level: str = "info",
) -> None:
    """Run the application until interrupted (uvicorn; access log on stderr)."""
    import uvicorn

    app = create_app(stack, for_serving(cluster), index=index)
    service: SearchService = app.state.service
    if host not in LOOPBACK:
        log.warning(
            "listening on %s: anyone who can reach this address can search the index and see its images",
            host,
        )
    log.info(
        "stack %s, index %s, cluster %s: open http://%s:%d/",
        stack.spec.name,
        service.index,
        cluster.url,
        host if ":" not in host else f"[{host}]",
        port,
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level, server_header=False, proxy_headers=False)
