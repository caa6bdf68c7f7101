"""What each failure becomes over HTTP: a status, a short type and a message a person can act on.

The JSON API answers every error as ``{"error": {"status", "type", "message"}}``; the page shows the
same message (503s in the banner at the top). The documented statuses:

=====  ==========================  ===========================================================
400    invalid_parameter           a malformed ``k``, ``min_score``, ``filter`` or id
400    invalid_filter              a filter on a field that is not a keyword field of the index
400    missing_field               an upload without a file in the multipart field ``image``
400    invalid_image               an empty, truncated or corrupt image
403    forbidden                   an image whose recorded path leaves its source folder
404    not_found                   an unknown image id, a file gone, an unknown URL
405    method_not_allowed          e.g. GET on ``/api/search/image``
413    payload_too_large           an upload over the byte limit, or over the pixel limit
415    unsupported_media_type      not multipart/form-data, or not an image Pillow can read
502    search_refused              Elasticsearch refused the search (a 4xx it should not give)
503    cluster_unavailable         the cluster cannot be reached (or answers 429/5xx)
503    model_unavailable           the text model is missing, not deployed or not allocated
503    index_missing               the index does not exist (run ``provision apply``)
500    internal_error              anything else (details in the server's log, never secrets)
=====  ==========================  ===========================================================
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from provisioning.cluster import ClusterError, redact
from provisioning.image_files import UnsafeImagePath
from provisioning.queries import ModelUnavailable, QueryImageError, SearchError, UnknownImage
from provisioning.query_filters import FilterError

log = logging.getLogger("provisioning.app")


class HttpError(Exception):
    """An error with its HTTP status and type, raised by the web layer or made by :func:`classify`."""

    def __init__(self, status: int, type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message

    @property
    def unavailable(self) -> bool:
        return self.status == 503

    def to_json(self) -> dict[str, Any]:
        return {"error": {"status": self.status, "type": self.type, "message": self.message}}


def classify(exc: BaseException, secrets: Iterable[str] = ()) -> HttpError:
    """The HttpError for ``exc`` (library errors by type; anything else is a logged 500)."""
    if isinstance(exc, HttpError):
        return exc
    message = redact(str(exc), secrets)
    if isinstance(exc, QueryImageError):
        if exc.kind == "bomb":
            return HttpError(413, "payload_too_large", message)
        if exc.kind == "unidentified":
            return HttpError(415, "unsupported_media_type", message)
        return HttpError(400, "invalid_image", message)
    if isinstance(exc, FilterError):
        return HttpError(400, "invalid_filter", message)
    if isinstance(exc, UnknownImage):
        return HttpError(404, "not_found", message)
    if isinstance(exc, UnsafeImagePath):
        return HttpError(403, "forbidden", message)
    if isinstance(exc, ModelUnavailable):
        return HttpError(503, "model_unavailable", message)
    if isinstance(exc, ClusterError):
        if exc.error_type == "index_not_found_exception":
            return HttpError(503, "index_missing", f"{message}. Run `provision apply` to create it.")
        if exc.status is None or exc.status >= 500 or exc.status == 429:
            return HttpError(503, "cluster_unavailable", message)
        return HttpError(502, "search_refused", message)
    if isinstance(exc, SearchError):
        return HttpError(400, "invalid_parameter", message)
    log.error("internal error: %s", redact(f"{type(exc).__name__}: {exc}", secrets))
    return HttpError(500, "internal_error", "internal error; the server's log has the details")
