"""What a query runs against on one index (its shard): the searcher, the mapping, statistics.

:class:`ShardContext` is the sandbox's SearchExecutionContext: one index's searcher (its live rows
and columns), the compiled mapping, index settings, per-request statistics caches and the masks of
named queries. Errors raised while building a query on a shard are ``query_shard_exception``s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from es_sandbox.http import ApiError
from es_sandbox.mapper.lookup import LeafField

Result = tuple[np.ndarray, np.ndarray]


def parsing_error(reason: str, **extra: Any) -> ApiError:
    return ApiError(400, "parsing_exception", reason, **extra)


def shard_error(ctx: ShardContext, reason: str, cause: ApiError | None = None) -> ApiError:
    """ES's QueryShardException ("failed to create query: ..."), raised while building a query."""
    error = ApiError(
        400,
        "query_shard_exception",
        f"failed to create query: {reason}",
        index_uuid=ctx.index_uuid,
        index=ctx.index_name,
    )
    return error.with_cause(cause or ApiError(400, "illegal_argument_exception", reason))


class ShardContext:
    """One index's searcher plus what queries need: mapping, stats caches, named-query masks."""

    def __init__(
        self,
        index_name: str,
        index_uuid: str,
        searcher: Any,
        fields: Mapping[str, LeafField],
        objects: Mapping[str, Any],
        settings: Mapping[str, Any],
        now_millis: int,
        store: Any = None,
        state: Any = None,
    ) -> None:
        self.index_name = index_name
        self.index_uuid = index_uuid
        self.searcher = searcher
        self.n = searcher.n
        self.fields = fields
        self.objects = objects
        self.settings = settings
        self.now_millis = now_millis
        self.store = store
        self.state = state
        self.named: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.inner_hits: dict[str, Any] = {}  # name -> compound.InnerHitsResult, for the fetch phase
        self.allow_unmapped = settings.get("index.query.parse.allow_unmapped_fields", "true") != "false"
        self._stats: dict[str, tuple[int, float]] = {}

    def empty(self) -> Result:
        return np.zeros(self.n, dtype=bool), np.zeros(self.n, dtype=np.float32)

    def everything(self, score: float = 1.0) -> Result:
        return np.ones(self.n, dtype=bool), np.full(self.n, score, dtype=np.float32)

    def column(self, path: str) -> list[list[Any] | None]:
        column: list[list[Any] | None] = self.searcher.column(path)
        return column

    def live(self) -> np.ndarray:
        live: np.ndarray = self.searcher.live
        return live

    def field(self, name: str) -> LeafField | None:
        return self.fields.get(name)

    def unmapped(self, name: str) -> Result:
        if not self.allow_unmapped:
            raise self.no_mapping_error(name)
        return self.empty()

    def no_mapping_error(self, name: str) -> ApiError:
        """SearchExecutionContext.failIfFieldMappingNotFound, with allow_unmapped_fields false."""
        return ApiError(
            400,
            "query_shard_exception",
            f"No field mapping can be found for the field with name [{name}]",
            index_uuid=self.index_uuid,
            index=self.index_name,
        )

    def text_stats(self, path: str) -> tuple[int, float]:
        """(documents with the field, average field length) over live rows, for BM25."""
        cached = self._stats.get(path)
        if cached is None:
            live = self.live()
            lengths = self.column(f"{path}\x00len")
            values = self.column(path)
            count = 0
            total = 0
            for row in range(self.n):
                if not live[row]:
                    continue
                entry = values[row]
                if entry is None:
                    continue
                count += 1
                length_entry = lengths[row]
                total += sum(length_entry) if length_entry else len(entry)
            cached = (count, (total / count) if count else 1.0)
            self._stats[path] = cached
        return cached
