"""One-off queries: a text or an example image becomes a vector, a kNN search returns images.

Text is embedded inside Elasticsearch by the deployed model (``query_vector_builder``: one round
trip) or, on request, through ``_infer`` first; images are embedded on this host by the declared
encoder, since ML nodes run text models only.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from elasticsearch import ApiError, NotFoundError, TransportError

from provisioning.cluster import Cluster
from provisioning.errors import ProvisionError
from provisioning.mappings import dense_vector_fields, find_field
from provisioning.stackfile.schema import KNN_MAX_NUM_CANDIDATES, ModelSpec
from provisioning.stackfile.stack import Stack


class SearchError(ProvisionError):
    """A query that cannot be run: no such image, no deployed model, a refused search."""


class ModelUnavailable(SearchError):
    """The text model cannot embed a query now: missing, not deployed, or without an allocation."""


class UnknownImage(SearchError):
    """No document with that id in the index (or its file is gone)."""


class QueryImageError(SearchError):
    """A query image that cannot be used; ``kind`` is the decoder's (``bomb``, ``unidentified``...)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Hit:
    rank: int
    score: float
    id: str
    source: dict[str, Any]

    @property
    def name(self) -> str | None:
        value = self.source.get("image_name")
        return str(value) if value is not None else None

    @property
    def path(self) -> str | None:
        value = self.source.get("relative_path")
        return str(value) if value is not None else None

    def to_json(self) -> dict[str, Any]:
        return {"rank": self.rank, "score": self.score, "id": self.id, "name": self.name, "path": self.path}


@dataclass
class SearchResult:
    query: str
    kind: Literal["text", "image"]
    index: str
    field: str
    k: int
    num_candidates: int
    hits: list[Hit] = dataclasses.field(default_factory=list)
    latency_ms: float = 0.0
    took_ms: int | None = None
    vector: list[float] | None = dataclasses.field(default=None, repr=False)
    min_score: float | None = None  # hits scoring lower were dropped
    filter: Any = None  # the kNN filter, as sent

    def to_json(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "kind": self.kind,
            "index": self.index,
            "field": self.field,
            "k": self.k,
            "num_candidates": self.num_candidates,
            "min_score": self.min_score,
            "filter": self.filter,
            "latency_ms": round(self.latency_ms, 2),
            "took_ms": self.took_ms,
            "hits": [h.to_json() for h in self.hits],
        }


def source_value(source: dict[str, Any], dotted: str) -> Any:
    """``exif.date`` from ``{"exif": {"date": ...}}`` (or a literal dotted key)."""
    if dotted in source:
        return source[dotted]
    node: Any = source
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def model_ref(model: ModelSpec) -> str:
    """The id a query names the model by: the alias when one is declared (it follows rollovers)."""
    if model.alias:
        return model.alias
    if model.deployment and model.deployment.deployment_id:
        return model.deployment.deployment_id
    return model.model_id


def default_num_candidates(k: int) -> int:
    return min(max(int(k * 1.5), k), KNN_MAX_NUM_CANDIDATES)


class Searcher:
    """Runs kNN queries for one stack; loads encoders once."""

    def __init__(self, stack: Stack, cluster: Cluster) -> None:
        self.stack = stack
        self.cluster = cluster
        self._encoders: dict[str, Any] = {}
        self._encoder_lock = threading.Lock()  # loads each encoder once; one forward pass at a time
        self._deployment_problems: dict[tuple[str, str], str | None] = {}

    # -- defaults from the stack -------------------------------------------------------------
    def default_index(self) -> str:
        indices = list(
            dict.fromkeys([j.index for j in self.stack.spec.ingest.values()] + list(self.stack.spec.indices))
        )
        if not indices:
            raise SearchError("the stack declares no index; pass --index")
        return indices[0]

    def vector_field(self, index: str, field: str | None = None) -> str:
        if field:
            return field
        for job in self.stack.spec.ingest.values():
            if job.index == index:
                return job.vector_field
        vectors = list(dense_vector_fields(self.stack.effective_mappings(index)))
        if len(vectors) != 1:
            raise SearchError(
                f"index {index} has {len(vectors)} dense_vector fields in the stack; cannot choose one"
            )
        return vectors[0]

    def similarity(self, index: str, field: str) -> str:
        mapping = find_field(self.stack.effective_mappings(index), field) or {}
        return str(mapping.get("similarity", "cosine"))

    def default_model(self) -> str:
        candidates = [
            n for n, m in self.stack.spec.models.items() if m.deployment and m.task_type == "text_embedding"
        ]
        if not candidates:
            raise SearchError("the stack declares no deployed text_embedding model to embed text queries")
        return candidates[0]

    def default_encoder(self, index: str) -> str:
        for job in self.stack.spec.ingest.values():
            if job.index == index:
                return job.encoder
        if len(self.stack.spec.encoders) == 1:
            return next(iter(self.stack.spec.encoders))
        raise SearchError(f"no encoder is tied to index {index}; declare an ingest job for it")

    # -- embedding -----------------------------------------------------------------------------
    def encoder(self, name: str) -> Any:
        """The declared encoder ``name``, loaded on first use (once, also under concurrent calls)."""
        with self._encoder_lock:
            if name not in self._encoders:
                from provisioning.embedding.loading import load_stack_encoder

                if name not in self.stack.spec.encoders:
                    raise SearchError(f"encoder {name!r} is not declared in {self.stack.path.name}")
                self._encoders[name] = load_stack_encoder(self.stack, name)
            return self._encoders[name]

    def embed_image(self, image: Path | bytes, encoder: str) -> list[float]:
        """The query image (a file, or its bytes) decoded exactly as ingest decodes images (the
        decompression-bomb guard, EXIF orientation, RGB), then embedded. Raises QueryImageError."""
        from provisioning.image_ingest.decode import ImageDecodeError, decode_image, open_image

        if isinstance(image, Path) and not image.is_file():
            raise SearchError(f"image not found: {image}")
        model = self.encoder(encoder)
        try:
            if isinstance(image, Path):
                decoded = open_image(image, min_size=model.input_size)
            else:
                decoded = decode_image(image, min_size=model.input_size)
        except ImageDecodeError as exc:
            what = str(image) if isinstance(image, Path) else "the uploaded file"
            raise QueryImageError(exc.kind, f"cannot use {what} as a query image: {exc}") from None
        with self._encoder_lock:
            vectors = model.encode_images([decoded.image])
        return [float(x) for x in vectors[0]]

    def embed_text(self, text: str, ref: str) -> list[float]:
        """The text's vector from the deployed model, through ``_infer``."""
        try:
            answer = self.cluster.client.ml.infer_trained_model(
                model_id=ref, docs=[{"text_field": text}], timeout="30s"
            )
        except (ApiError, TransportError) as exc:
            raise self._model_error(exc, ref) from None
        result = answer.body["inference_results"][0]
        if "predicted_value" not in result:
            raise SearchError(f"model {ref} did not return an embedding: {result}")
        return [float(x) for x in result["predicted_value"]]

    def deployment_problem(self, spec_name: str, model_id: str | None = None) -> str | None:
        """Why the declared model ``spec_name`` (or ``model_id`` standing in for it, during a rollover)
        cannot embed a query now: no deployment, or one that is not started with an allocation
        (``GET _ml/trained_models/<id>/_stats``); None when it can. Read once per model and run."""
        spec = self.stack.spec.models[spec_name]
        model = model_id or spec.model_id
        deployment = (spec.deployment.deployment_id if spec.deployment else None) or model
        key = (model, deployment)
        if key not in self._deployment_problems:
            self._deployment_problems[key] = self._read_deployment_problem(model, deployment)
        return self._deployment_problems[key]

    def _read_deployment_problem(self, model: str, deployment: str) -> str | None:
        try:
            answer = self.cluster.client.ml.get_trained_models_stats(model_id=model)
        except NotFoundError:
            return f"model {model} does not exist; run `provision apply`"
        except (ApiError, TransportError) as exc:
            raise self.cluster.error(exc, f"read the deployment of model {model}") from None
        for item in answer.body.get("trained_model_stats", []):
            stats = item.get("deployment_stats") or {}
            if stats.get("deployment_id") != deployment:
                continue
            alloc = stats.get("allocation_status") or {}
            count, target = (
                int(alloc.get("allocation_count", 0)),
                int(alloc.get("target_allocation_count", 0)),
            )
            if stats.get("state") == "started" and count > 0:
                return None
            return (
                f"deployment {deployment} of model {model} is {stats.get('state')} with {count}/{target} "
                "allocations, so it cannot embed the query; wait for it, or run `provision apply` "
                "(`provision status` shows its state)"
            )
        return f"model {model} has no deployment {deployment}; run `provision apply`"

    def _model_error(self, exc: ApiError | TransportError, ref: str) -> ProvisionError:
        """The error of a query that embeds its text with model ``ref``: blamed on the model only when
        Elasticsearch's answer is about the model (it names it, or its deployment)."""
        err = self.cluster.error(exc, f"embed the query with model {ref}")
        text = str(err)
        if ref in text and (
            "deploy" in text or "allocat" in text or "not found" in text or "missing" in text
        ):
            return ModelUnavailable(
                f"{text}. Is the model deployed? Run `provision apply` (or check `provision status`)."
            )
        return err

    # -- searching -----------------------------------------------------------------------------
    def knn(
        self,
        *,
        index: str,
        field: str,
        k: int,
        num_candidates: int,
        query_vector: list[float] | None = None,
        builder_ref: str | None = None,
        text: str | None = None,
        lookup: dict[str, str] | None = None,
        filter: Any = None,
        similarity: float | None = None,
        min_score: float | None = None,
        query: str,
        kind: Literal["text", "image"],
    ) -> SearchResult:
        """One kNN search; hits scoring below ``min_score`` (a ``_score``) are dropped.

        The query vector is ``query_vector``, or built inside Elasticsearch: from ``text`` by the
        deployed model ``builder_ref`` (``query_vector_builder.text_embedding``), or from a stored
        document (``lookup``: ``{"id", "index", "path"}``, Elasticsearch 9.4's
        ``query_vector_builder.lookup``)."""
        knn: dict[str, Any] = {"field": field, "k": k, "num_candidates": num_candidates}
        if query_vector is not None:
            knn["query_vector"] = query_vector
        elif lookup is not None:
            knn["query_vector_builder"] = {"lookup": lookup}
        else:
            knn["query_vector_builder"] = {"text_embedding": {"model_id": builder_ref, "model_text": text}}
        if filter is not None:
            knn["filter"] = filter
        if similarity is not None:
            knn["similarity"] = similarity
        started = time.perf_counter()
        try:
            answer = self.cluster.client.search(index=index, knn=knn, size=k, source_excludes=[field])
        except NotFoundError as exc:
            if lookup is not None:
                raise UnknownImage(f"no image with id {lookup['id']!r} in index {index}") from None
            raise self.cluster.error(exc, f"kNN search on {index}") from None
        except (ApiError, TransportError) as exc:
            if builder_ref is not None:
                raise self._model_error(exc, builder_ref) from None
            raise self.cluster.error(exc, f"kNN search on {index}") from None
        latency = (time.perf_counter() - started) * 1000
        found = [
            h for h in answer.body["hits"]["hits"] if min_score is None or float(h["_score"]) >= min_score
        ]
        hits = [
            Hit(rank=i + 1, score=float(h["_score"]), id=str(h["_id"]), source=dict(h.get("_source") or {}))
            for i, h in enumerate(found)
        ]
        return SearchResult(
            query,
            kind,
            index,
            field,
            k,
            num_candidates,
            hits,
            latency,
            answer.body.get("took"),
            query_vector,
            min_score,
            filter,
        )

    def search_text(
        self,
        text: str,
        *,
        k: int = 10,
        index: str | None = None,
        model: str | None = None,
        via: Literal["query_vector_builder", "infer"] = "query_vector_builder",
        filter: Any = None,
        min_score: float | None = None,
    ) -> SearchResult:
        index = index or self.default_index()
        field = self.vector_field(index)
        spec_name = model or self.default_model()
        if spec_name not in self.stack.spec.models:
            raise SearchError(f"model {spec_name!r} is not declared in {self.stack.path.name}")
        ref = model_ref(self.stack.spec.models[spec_name])
        # via "infer": the vector from _infer, sent with the query; otherwise built in the search
        # (only then is an error of the search the model's)
        vector = self.embed_text(text, ref) if via == "infer" else None
        return self.knn(
            index=index,
            field=field,
            k=k,
            num_candidates=default_num_candidates(k),
            query_vector=vector,
            builder_ref=ref if vector is None else None,
            text=text,
            filter=filter,
            min_score=min_score,
            query=text,
            kind="text",
        )

    def search_image(
        self,
        image: Path | bytes,
        *,
        k: int = 10,
        index: str | None = None,
        encoder: str | None = None,
        filter: Any = None,
        min_score: float | None = None,
        name: str | None = None,
    ) -> SearchResult:
        """Images like ``image`` (a file, or an uploaded file's bytes, then called ``name``)."""
        index = index or self.default_index()
        field = self.vector_field(index)
        vector = self.embed_image(image, encoder or self.default_encoder(index))
        return self.knn(
            index=index,
            field=field,
            k=k,
            num_candidates=default_num_candidates(k),
            query_vector=vector,
            filter=filter,
            min_score=min_score,
            query=str(image) if isinstance(image, Path) else (name or "uploaded image"),
            kind="image",
        )


def search(
    stack: Stack,
    cluster: Cluster,
    *,
    text: str | None = None,
    image: Path | None = None,
    k: int = 10,
    index: str | None = None,
    model: str | None = None,
    via: Literal["query_vector_builder", "infer"] = "query_vector_builder",
    filter: Any = None,
    min_score: float | None = None,
) -> SearchResult:
    """One kNN query: images like ``text`` (embedded inside Elasticsearch by a deployed model, with
    ``query_vector_builder`` or ``_infer``) or like the example ``image`` (embedded on this host).

    ``index`` defaults to the first ingest job's, ``model`` to the first deployed text model;
    ``num_candidates`` is Elasticsearch's default for ``k`` (1.5 k). Returns the hits (rank, score,
    id, ``_source`` without the vector) and the round trip's latency in milliseconds. ``filter`` is a
    query DSL filter applied during the kNN search (see :func:`provisioning.query_filters.term_filter`);
    hits whose ``_score`` is below ``min_score`` are dropped. Raises SearchError (no such image,
    QueryImageError for an unusable one, ModelUnavailable when the text model is not deployed) or
    ClusterError (a refused search, an unreachable cluster); ValueError unless exactly one of ``text``
    and ``image`` is given.
    """
    if (text is None) == (image is None):
        raise ValueError("give exactly one of text or image")
    cluster.ensure_supported()
    searcher = Searcher(stack, cluster)
    if text is not None:
        return searcher.search_text(
            text, k=k, index=index, model=model, via=via, filter=filter, min_score=min_score
        )
    assert image is not None
    return searcher.search_image(image, k=k, index=index, filter=filter, min_score=min_score)
