"""Reading an uploaded query image: multipart only, bounded in bytes before anything is parsed.

The body is read as a stream and refused with 413 as soon as it passes the limit (plus a little
for the multipart framing), so an oversized upload is never held in memory or on disk; only then
is it parsed, and the file must come in the field ``image``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from provisioning.app.http_errors import HttpError

FIELD = "image"
FRAMING = 64 * 1024  # room for the multipart boundaries, headers and the small form fields


@dataclass
class Upload:
    data: bytes
    filename: str
    fields: dict[str, str]  # the other (text) fields of the form
    filters: list[str]


def _too_large(limit: int) -> HttpError:
    return HttpError(
        413, "payload_too_large", f"the upload is larger than the limit of {limit // (1024 * 1024)} MB"
    )


async def read_upload(request: Request, limit: int) -> Upload:
    """The image in field ``image`` of a multipart request; HttpError 400/413/415 otherwise."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise HttpError(
            415,
            "unsupported_media_type",
            f"send the image as multipart/form-data in the field '{FIELD}' (got {content_type or 'no content type'})",
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + FRAMING:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit + FRAMING:
            raise _too_large(limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    replayed = Request(request.scope, receive=_replay(body))
    try:
        form = await replayed.form(max_files=1, max_fields=32, max_part_size=64 * 1024)
    except HTTPException as exc:
        raise HttpError(400, "invalid_parameter", f"malformed multipart body: {exc.detail}") from None
    try:
        item = form.get(FIELD)
        if item is None:
            sent = ", ".join(sorted(set(form.keys()))) or "none"
            raise HttpError(400, "missing_field", f"no file in the field '{FIELD}' (fields sent: {sent})")
        if not isinstance(item, UploadFile):
            raise HttpError(400, "missing_field", f"the field '{FIELD}' must be a file, not text")
        data = await item.read()
        if len(data) > limit:
            raise _too_large(limit)
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str) and k != "filter"}
        filters = [v for v in form.getlist("filter") if isinstance(v, str)]
        return Upload(data, item.filename or "uploaded image", fields, filters)
    finally:
        await form.close()


def _replay(body: bytes) -> Callable[[], Awaitable[MutableMapping[str, Any]]]:
    sent = False

    async def receive() -> MutableMapping[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
