"""The JSON API: the same searches as the page, for programs.

==========================  ======================================================================
``GET /api/search``         ``text`` (required), ``k`` (1-100, default 10), ``min_score``, ``filter``
                            (``field:value`` on a keyword field, repeatable)
``POST /api/search/image``  multipart, the file in field ``image`` (20 MB at most); ``k``,
                            ``min_score``, ``filter`` as form fields or query parameters
``GET /api/similar/{id}``   the images nearest to indexed image ``id`` (itself left out)
``GET /api/images/{id}``    the original file, from its ingest job's source folder only
``GET /api/thumbnails/{id}``a JPEG at most 256 pixels a side
``GET /healthz``            200 or 503: cluster reachable, text model deployed, index present
==========================  ======================================================================

Searches answer the library's :class:`~provisioning.queries.SearchResult` as JSON, each hit with
``image_url``, ``thumbnail_url`` and ``similar_url``; errors are ``{"error": {...}}`` with the
statuses listed in :mod:`provisioning.app.http_errors`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from provisioning.app.http_errors import HttpError, classify
from provisioning.app.service import SearchService, result_json
from provisioning.app.uploads import read_upload

Endpoint = Callable[[Request], Awaitable[Response]]


def error_response(error: HttpError) -> JSONResponse:
    return JSONResponse(error.to_json(), status_code=error.status)


def api_routes(service: SearchService) -> list[Route]:
    def guarded(handler: Endpoint) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a JSON error
                error = classify(exc, service.secrets)
                if error.unavailable:
                    service.forget_health()
                return error_response(error)

        return endpoint

    async def search(request: Request) -> Response:
        params = request.query_params
        if "text" not in params:
            raise HttpError(400, "invalid_parameter", "give the text to search for: ?text=...")
        options = service.options(params, params.getlist("filter"), default_k=10)
        timed = await run_in_threadpool(service.text, params["text"], options)
        return JSONResponse(result_json(timed))

    async def search_image(request: Request) -> Response:
        upload = await read_upload(request, service.limits.max_upload_bytes)
        values = {**request.query_params, **upload.fields}
        filters = upload.filters or request.query_params.getlist("filter")
        options = service.options(values, filters, default_k=10)
        timed = await run_in_threadpool(service.image, upload.data, upload.filename, options)
        return JSONResponse(result_json(timed))

    async def similar(request: Request) -> Response:
        params = request.query_params
        options = service.options(params, params.getlist("filter"), default_k=10)
        timed = await run_in_threadpool(service.similar, request.path_params["id"], options)
        return JSONResponse(result_json(timed))

    async def image(request: Request) -> Response:
        found = await run_in_threadpool(service.image_file, request.path_params["id"])
        return FileResponse(
            found.path,
            media_type=found.media_type,
            headers={"Cache-Control": "private, max-age=300", "Content-Disposition": "inline"},
        )

    async def thumbnail(request: Request) -> Response:
        data = await run_in_threadpool(service.thumbnail, request.path_params["id"])
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})

    async def healthz(request: Request) -> Response:
        report = await run_in_threadpool(service.health, fresh=True)
        return JSONResponse(report.to_json(), status_code=200 if report.ok else 503)

    return [
        Route("/api/search", guarded(search), methods=["GET"]),
        Route("/api/search/image", guarded(search_image), methods=["POST"]),
        Route("/api/similar/{id}", guarded(similar), methods=["GET"]),
        Route("/api/images/{id}", guarded(image), methods=["GET"]),
        Route("/api/thumbnails/{id}", guarded(thumbnail), methods=["GET"]),
        Route("/healthz", guarded(healthz), methods=["GET"]),
    ]
