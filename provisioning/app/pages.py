"""The search page, rendered on the server: a text search, an image upload, "more like this".

Every page works without JavaScript (plain forms and links); ``static/search.js`` only adds
drag-and-drop and a "Searching..." state. Errors a person can fix (a bad filter, an unusable
image) are shown next to the form with the same status the API would give; a cluster that cannot
be reached or a model that is not deployed shows the banner at the top (status 503), which also
appears, without a query, whenever the last health reading found a problem.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from provisioning.app.http_errors import HttpError, classify
from provisioning.app.service import QueryOptions, SearchService, Timed, hit_json
from provisioning.app.uploads import read_upload
from provisioning.queries import Hit

TEMPLATES = Path(__file__).parent / "templates"


def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def page_hit(hit: Hit, options: QueryOptions) -> dict[str, Any]:
    """A hit for the template: the API's fields and the link to its "more like this" page."""
    query = urlencode(options.to_params())
    return {**hit_json(hit), "similar_page": f"/similar/{quote(hit.id, safe='')}?{query}"}


def page_routes(service: SearchService) -> list[Route]:
    templates = environment()
    page = templates.get_template("search.html")

    async def render(
        *,
        kind: str | None = None,
        text: str = "",
        options: QueryOptions | None = None,
        values: dict[str, str] | None = None,
        run: Any = None,
        query_label: str = "",
        similar_to: dict[str, Any] | None = None,
    ) -> Response:
        error: HttpError | None = None
        timed: Timed | None = None
        if run is not None:
            try:
                timed = await run_in_threadpool(run)
            except Exception as exc:  # noqa: BLE001 - shown on the page
                error = classify(exc, service.secrets)
        if error is not None and error.unavailable:
            service.forget_health()
        report = await run_in_threadpool(service.health)
        if timed is not None and not report.ok:  # a reading older than the search that just worked
            report = await run_in_threadpool(lambda: service.health(fresh=True))
        banner = [error.message] if error is not None and error.unavailable else []
        banner += [p for p in report.problems if p not in banner and not (error and error.unavailable)]
        if not report.cluster_reachable or (error is not None and error.type == "cluster_unavailable"):
            banner_title = "Elasticsearch cannot be reached, so nothing can be searched."
        elif error is not None and error.unavailable:
            banner_title = "This search cannot run now."
        else:
            banner_title = "Search is partly unavailable."
        values = values or {}
        context = {
            "banner_title": banner_title,
            "stack": service.stack.spec.name,
            "index": service.index,
            "documents": report.documents,
            "fields": service.fields,
            "kind": kind,
            "text": text,
            "options": options or QueryOptions(),
            "filter_field": values.get("filter_field", ""),
            "filter_value": values.get("filter_value", ""),
            "timed": timed,
            "hits": [page_hit(h, options or QueryOptions()) for h in timed.result.hits] if timed else [],
            "query_label": query_label,
            "similar_to": similar_to,
            "error": error if error is not None and not error.unavailable else None,
            "banner": banner,
            "text_search": report.text_search,
            "max_upload_mb": service.limits.max_upload_bytes // (1024 * 1024),
            "max_k": service.limits.max_k,
        }
        status = error.status if error is not None else 200
        return HTMLResponse(await run_in_threadpool(page.render, context), status_code=status)

    def options_or_error(values: dict[str, str], filters: list[str]) -> tuple[QueryOptions, HttpError | None]:
        try:
            return service.options(values, filters), None
        except Exception as exc:  # noqa: BLE001 - shown on the page
            return QueryOptions(), classify(exc, service.secrets)

    def failing(error: HttpError) -> Any:
        def run() -> Timed:
            raise error

        return run

    async def index(request: Request) -> Response:
        values = dict(request.query_params)
        text = values.get("text", "")
        if not text.strip():
            options, _ = options_or_error(values, request.query_params.getlist("filter"))
            return await render(options=options, values=values)
        options, error = options_or_error(values, request.query_params.getlist("filter"))
        run = failing(error) if error else (lambda: service.text(text, options))
        return await render(
            kind="text", text=text, options=options, values=values, run=run, query_label=f"“{text.strip()}”"
        )

    async def search_image(request: Request) -> Response:
        try:
            upload = await read_upload(request, service.limits.max_upload_bytes)
        except HttpError as exc:
            return await render(kind="image", run=failing(exc), query_label="your image")
        options, error = options_or_error(upload.fields, upload.filters)
        run = failing(error) if error else (lambda: service.image(upload.data, upload.filename, options))
        return await render(
            kind="image",
            options=options,
            values=upload.fields,
            run=run,
            query_label=upload.filename,
            text=upload.fields.get("text", ""),
        )

    async def similar(request: Request) -> Response:
        doc_id = request.path_params["id"]
        values = dict(request.query_params)
        options, error = options_or_error(values, request.query_params.getlist("filter"))
        name = doc_id
        with contextlib.suppress(Exception):  # the query below reports what is wrong
            name = (await run_in_threadpool(service.image_file, doc_id)).name
        run = failing(error) if error else (lambda: service.similar(doc_id, options))
        similar_to = {
            "id": doc_id,
            "name": name,
            "thumbnail_url": f"/api/thumbnails/{quote(doc_id, safe='')}",
        }
        return await render(
            kind="similar",
            options=options,
            values=values,
            run=run,
            query_label=name,
            similar_to=similar_to,
        )

    return [
        Route("/", index, methods=["GET"]),
        Route("/search/image", search_image, methods=["POST"]),
        Route("/similar/{id}", similar, methods=["GET"]),
    ]
