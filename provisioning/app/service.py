"""What the web application does, as plain method calls on the library: no HTTP in here.

:class:`SearchService` holds the stack, the cluster and one :class:`~provisioning.queries.Searcher`
(so the image encoder is loaded once, on the first image query), checks the limits of what people
may ask, and turns request values into library arguments. The routes in :mod:`.api` and
:mod:`.pages` are thin shells around it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from provisioning.app.http_errors import HttpError
from provisioning.app.thumbnails import Thumbnails
from provisioning.cluster import Cluster
from provisioning.image_files import ImageFile, image_file
from provisioning.more_like_this import similar
from provisioning.queries import Hit, Searcher, SearchError, SearchResult
from provisioning.query_filters import keyword_fields, parse_filter, term_filter
from provisioning.search_health import HealthReport, health
from provisioning.stackfile.stack import Stack


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int = 20 * 1024 * 1024
    max_k: int = 100
    max_text_chars: int = 1000
    max_id_chars: int = 512  # Elasticsearch's limit on _id (in bytes)
    health_ttl_s: float = 2.0  # how long the page reuses a health reading


@dataclass(frozen=True)
class QueryOptions:
    k: int = 12
    min_score: float | None = None
    filters: tuple[tuple[str, str], ...] = ()

    def to_params(self) -> list[tuple[str, str]]:
        params = [("k", str(self.k))]
        if self.min_score is not None:
            params.append(("min_score", f"{self.min_score:g}"))
        params.extend(("filter", f"{f}:{v}") for f, v in self.filters)
        return params


@dataclass
class Timed:
    result: SearchResult
    server_ms: float


@dataclass
class SearchService:
    stack: Stack
    cluster: Cluster
    index: str
    limits: Limits = field(default_factory=Limits)
    searcher: Searcher = field(init=False)
    thumbnails: Thumbnails = field(init=False)
    fields: list[str] = field(init=False)
    _health: tuple[float, HealthReport] | None = field(init=False, default=None)
    _health_lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.searcher = Searcher(self.stack, self.cluster)
        self.searcher.vector_field(self.index)  # refuses an index without one clear vector field
        self.fields = keyword_fields(self.stack, self.index)
        self.thumbnails = Thumbnails()

    @classmethod
    def create(
        cls, stack: Stack, cluster: Cluster, index: str | None = None, limits: Limits | None = None
    ) -> SearchService:
        """The service for ``index`` (default: the first ingest job's); SearchError for an index
        the stack neither declares nor templates."""
        chosen = index or Searcher(stack, cluster).default_index()
        if not stack.index_is_declared_or_templated(chosen):
            raise SearchError(
                f"index {chosen} is not declared (or matched by a template) in {stack.path.name}"
            )
        return cls(stack, cluster, chosen, limits or Limits())

    @property
    def secrets(self) -> list[str]:
        return self.cluster.options.secrets

    # -- request values ----------------------------------------------------------------------------
    def options(
        self, values: Mapping[str, str], filters: Iterable[str] = (), *, default_k: int = 12
    ) -> QueryOptions:
        """``k``, ``min_score`` and ``filter`` (``field:value``, repeatable; or ``filter_field`` and
        ``filter_value``, the page's controls) from request values; HttpError 400 when malformed."""
        k = default_k
        raw_k = (values.get("k") or "").strip()
        if raw_k:
            try:
                k = int(raw_k)
            except ValueError:
                raise HttpError(
                    400, "invalid_parameter", f"k must be a whole number, not {raw_k!r}"
                ) from None
        if not 1 <= k <= self.limits.max_k:
            raise HttpError(400, "invalid_parameter", f"k must be between 1 and {self.limits.max_k}, not {k}")
        min_score: float | None = None
        raw_score = (values.get("min_score") or "").strip()
        if raw_score:
            try:
                min_score = float(raw_score)
            except ValueError:
                min_score = math.nan
            if not math.isfinite(min_score) or min_score < 0:
                raise HttpError(
                    400, "invalid_parameter", f"min_score must be a number of at least 0, not {raw_score!r}"
                )
        pairs = [parse_filter(text) for text in filters if text]
        field_name, value = (values.get("filter_field") or "").strip(), values.get("filter_value") or ""
        if field_name and value.strip():
            pairs.append((field_name, value.strip()))
        self._filter(pairs)  # FilterError (400) for a field that is not allowed
        return QueryOptions(k, min_score, tuple(pairs))

    def check_id(self, doc_id: str) -> str:
        if not doc_id or len(doc_id.encode()) > self.limits.max_id_chars or not doc_id.isprintable():
            raise HttpError(400, "invalid_parameter", "an image id is 1 to 512 printable characters")
        return doc_id

    def check_text(self, text: str) -> str:
        text = text.strip()
        if not text:
            raise HttpError(400, "invalid_parameter", "text is empty: describe the images to find")
        if len(text) > self.limits.max_text_chars:
            raise HttpError(
                400, "invalid_parameter", f"text is longer than {self.limits.max_text_chars} characters"
            )
        return text

    # -- queries -------------------------------------------------------------------------------------
    def _filter(self, pairs: Iterable[tuple[str, str]]) -> dict[str, Any] | None:
        return term_filter(self.stack, self.index, pairs, allowed=self.fields)

    def text(self, text: str, options: QueryOptions) -> Timed:
        started = time.perf_counter()
        result = self.searcher.search_text(
            self.check_text(text),
            k=options.k,
            index=self.index,
            filter=self._filter(options.filters),
            min_score=options.min_score,
        )
        return Timed(result, (time.perf_counter() - started) * 1000)

    def image(self, data: bytes, name: str, options: QueryOptions) -> Timed:
        started = time.perf_counter()
        result = self.searcher.search_image(
            data,
            k=options.k,
            index=self.index,
            filter=self._filter(options.filters),
            min_score=options.min_score,
            name=name,
        )
        return Timed(result, (time.perf_counter() - started) * 1000)

    def similar(self, doc_id: str, options: QueryOptions) -> Timed:
        started = time.perf_counter()
        result = similar(
            self.stack,
            self.cluster,
            self.check_id(doc_id),
            k=options.k,
            index=self.index,
            filter=self._filter(options.filters),
            min_score=options.min_score,
            searcher=self.searcher,
        )
        return Timed(result, (time.perf_counter() - started) * 1000)

    def image_file(self, doc_id: str) -> ImageFile:
        return image_file(self.stack, self.cluster, self.check_id(doc_id), index=self.index)

    def thumbnail(self, doc_id: str) -> bytes:
        return self.thumbnails.get(self.image_file(doc_id))

    def health(self, *, fresh: bool = False) -> HealthReport:
        """The cluster's state, read at most every ``health_ttl_s`` unless ``fresh``."""
        with self._health_lock:
            now = time.monotonic()
            if not fresh and self._health is not None and now - self._health[0] < self.limits.health_ttl_s:
                return replace(self._health[1])
            report = health(self.stack, self.cluster, index=self.index)
            self._health = (now, report)
            return replace(report)

    def forget_health(self) -> None:
        """Drop the cached reading (after a query failed or succeeded against what it said)."""
        with self._health_lock:
            self._health = None


def hit_json(hit: Hit) -> dict[str, Any]:
    """A hit as the API returns it: rank, score, id, name, path, the source and its URLs."""
    from urllib.parse import quote

    ref = quote(hit.id, safe="")
    return {
        **hit.to_json(),
        "source": hit.source,
        "image_url": f"/api/images/{ref}",
        "thumbnail_url": f"/api/thumbnails/{ref}",
        "similar_url": f"/api/similar/{ref}",
    }


def result_json(timed: Timed) -> dict[str, Any]:
    document = timed.result.to_json()
    document["hits"] = [hit_json(h) for h in timed.result.hits]
    document["server_ms"] = round(timed.server_ms, 2)
    return document
