"""The Elasticsearch 9.x versions the sandbox emulates, and everything that differs between them.

One table, ``CHANGES``: each version-dependent behaviour, the release that introduced it and where
that is recorded (release notes or the pull request). The rest of the sandbox never compares version
numbers itself; it asks the emulation in force (``current()``) whether a behaviour applies
(``has(key)``) or for a value that depends on one (``default_index_options``, ``cluster_features``,
``capabilities``, ...).

Which emulation is in force: the server makes ``state.emulation`` current for each request
(``emulating``); code outside a request (unit tests, startup) sees the newest version on a basic
license. An index keeps the version it was created with (``index.version.created``), as in
Elasticsearch, so that defaults keyed on the index version (``Emulation.for_index``) stay stable for
indices restored from a ``--data`` directory written by another version.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class EsVersion:
    """An Elasticsearch release number, ordered."""

    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def minor_line(self) -> str:
        return f"{self.major}.{self.minor}"


_VERSION_TEXT = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+|x))?$")


class UnsupportedVersion(ValueError):
    """A version the sandbox does not emulate (the message names the supported range)."""


@dataclass(frozen=True)
class Release:
    """Facts one minor line reports about itself (``GET /``, ``index.version.created``)."""

    lucene: str
    index_version: int  # the id ``index.version.created`` carries (ES's ``IndexVersion`` layout)
    build_date: str


# The minor lines the sandbox emulates and what each reports about itself. Lucene: 9.0 shipped
# Lucene 10.1 (IndexVersions.UPGRADE_TO_LUCENE_10_1_0) and 9.2.0 Lucene 10.3.1 (9.2.0 release notes:
# "Update to lucene 10.3.1"); the other lines' numbers are the sandbox's stand-ins within the Lucene
# minor of that time. ``index_version``: 9.0's is UPGRADE_TO_LUCENE_10_1_0 (9_009_0_00), 9.2's the value
# the sandbox has always reported; the others are stand-ins, ordered like ES's ids (M_NNN_S_PP) so that
# ``Emulation.for_index`` can tell versions apart, not ES's exact numbers. Build dates are stand-ins.
RELEASES: dict[tuple[int, int], Release] = {
    (9, 0): Release("10.1.0", 9_009_0_00, "2025-04-15T00:00:00.000Z"),
    (9, 1): Release("10.2.2", 9_033_0_00, "2025-07-22T00:00:00.000Z"),
    (9, 2): Release("10.3.1", 9_039_0_00, "2025-10-21T00:00:00.000Z"),
    (9, 3): Release("10.3.2", 9_062_0_00, "2026-02-03T00:00:00.000Z"),
    (9, 4): Release("10.4.0", 9_080_0_00, "2026-04-21T00:00:00.000Z"),
}
OLDEST = EsVersion(9, 0, 0)
NEWEST = EsVersion(9, 4, 0)
SUPPORTED_RANGE = "9.0 to 9.4"


def parse_version(text: str) -> EsVersion:
    """``9.2`` / ``9.2.x`` (the minor's first release, ``9.2.0``) or ``9.2.5``; refuses what is not emulated."""
    match = _VERSION_TEXT.match(str(text).strip())
    if match is None:
        raise UnsupportedVersion(
            f"cannot read Elasticsearch version [{text}]: expected MAJOR.MINOR or MAJOR.MINOR.PATCH "
            f"(the sandbox emulates {SUPPORTED_RANGE})"
        )
    major, minor = int(match.group(1)), int(match.group(2))
    patch = int(match.group(3)) if match.group(3) not in (None, "x") else 0
    if (major, minor) not in RELEASES:
        raise UnsupportedVersion(
            f"the sandbox does not emulate Elasticsearch {major}.{minor}; it emulates {SUPPORTED_RANGE} "
            f"({', '.join(f'{a}.{b}.x' for a, b in RELEASES)})"
        )
    return EsVersion(major, minor, patch)


@dataclass(frozen=True)
class Change:
    """One behaviour that differs between 9.x releases: on from ``since`` on."""

    key: str
    since: EsVersion
    what: str
    source: str


def _v(text: str) -> EsVersion:
    major, minor, patch = (int(p) for p in text.split("."))
    return EsVersion(major, minor, patch)


# Every version-dependent behaviour of the sandbox. Keys are what the code asks ``has`` about.
CHANGES: dict[str, Change] = {
    change.key: change
    for change in (
        Change(
            "dense_vector.default_bbq_hnsw",
            _v("9.1.0"),
            "float vectors of 384 dims or more default to index_options bbq_hnsw (int8_hnsw below; "
            "int8_hnsw for every indexed float vector before)",
            "elastic/elasticsearch#129825 (9.1.0 release notes)",
        ),
        Change(
            "dense_vector.bbq_default_oversample",
            _v("9.1.0"),
            "bbq_* index_options without rescore_vector store rescore_vector.oversample 3.0 "
            "(IndexVersions.DEFAULT_OVERSAMPLE_VALUE_FOR_BBQ, a Lucene 10.2.1 index version)",
            "elastic/elasticsearch#127134",
        ),
        Change(
            "search.source_exclude_vectors",
            _v("9.1.0"),
            "`_source.exclude_vectors` in search requests and `_source_exclude_vectors` on get/search",
            "elastic/elasticsearch#128735 (backported to 8.19 as #129142)",
        ),
        Change(
            "index.mapping.exclude_source_vectors",
            _v("9.2.0"),
            "the index setting exists and defaults to true for new indices: vectors are left out of "
            "`_source` unless asked for",
            "elastic/elasticsearch#130382, #131907 (9.2.0 release notes: 'Remove vectors from "
            "`_source` transparently')",
        ),
        Change(
            "dense_vector.bbq_disk",
            _v("9.2.0"),
            "the bbq_disk (DiskBBQ) index_options type",
            "elastic/elasticsearch#135299 (9.2.0 release notes)",
        ),
        Change(
            "tracking_info",
            _v("9.2.0"),
            "pipelines, component and index templates carry system-managed created_date / "
            "modified_date (capabilities pipeline_tracking_info, component_template_tracking_info)",
            "elastic/elasticsearch#130847, #131536, #132083 (9.2.0 release notes)",
        ),
        Change(
            "ml.low_priority_update_allocations",
            _v("9.2.4"),
            "updating a low-priority deployment to more than 1 allocation is refused",
            "elastic/elasticsearch#139989, backport #140156 (9.2.4 release notes)",
        ),
        Change(
            "ml.low_priority_adaptive_max",
            _v("9.2.5"),
            "a low-priority deployment's adaptive_allocations.max_number_of_allocations must be 1",
            "elastic/elasticsearch#140163, backport #140544 (9.2.5 release notes)",
        ),
        Change(
            "dense_vector.base64_indexing",
            _v("9.3.0"),
            "float (and bfloat16) vectors may be sent as base64 strings of big-endian float32 values "
            "in index and bulk requests",
            "elastic/elasticsearch#137072",
        ),
        Change(
            "dense_vector.bfloat16",
            _v("9.3.0"),
            "element_type bfloat16 (two bytes per dimension; values rounded to bfloat16 when stored)",
            "elastic/elasticsearch#138492 (docs: elastic/elasticsearch-specification#5728, since 9.3.0)",
        ),
        Change(
            "dense_vector.bbq_disk_license",
            _v("9.3.0"),
            "writing vectors to a bbq_disk field of an index created 9.3+ needs an enterprise license "
            "(a trial counts); reads are not licensed",
            "elastic/elasticsearch#139087 (9.3.0 release notes: 'Disk bbq license enforcement')",
        ),
        Change(
            "dense_vector.default_bbq_disk",
            _v("9.4.0"),
            "where the license allows bbq_disk, new indices default float vectors to bbq_disk (where "
            "9.1-9.3 chose bbq_hnsw)",
            "elastic/elasticsearch#144885",
        ),
        Change(
            "knn.lookup_query_vector_builder",
            _v("9.4.0"),
            "query_vector_builder.lookup: {id, index, path, routing?} takes the query vector from a "
            "stored document",
            "elastic/elasticsearch#141488 (issue #141069)",
        ),
        Change(
            "knn.query_vector_base64",
            _v("9.4.0"),
            "query_vector may be a base64 string (big-endian float32) for float fields",
            "elastic/elasticsearch#142675 (docs: 'base64-encoded vector string ... stack: ga 9.4')",
        ),
    )
}

# Licenses that allow what the enterprise level allows (ES counts a trial as enterprise).
ENTERPRISE_LICENSES = frozenset({"enterprise", "trial"})

BBQ_DEFAULT_THRESHOLD = 384
DEFAULT_M = 16
DEFAULT_EF_CONSTRUCTION = 100
DEFAULT_OVERSAMPLE = 3.0
BBQ_DISK_DEFAULT_CLUSTER_SIZE = 384

# Cluster features (``GET _cluster/state/nodes_features``) of every 9.x node that the sandbox
# implements, as ES names them (NodeFeature ids in server/ and x-pack/).
BASE_FEATURES = (
    "mapper.vectors.bit_vectors",
    "mapper.vectors.int4_quantization",
    "mapper.dense_vector.rescore_vector",
    "mapper.dense_vector.rescore_zero_vector",
    "search.vectors.k_param_supported",
)
VERSIONED_FEATURES: dict[str, str] = {
    "mapper.dense_vector.default_oversample_value_for_bbq": "dense_vector.bbq_default_oversample",
    "search.vectors.mappers.default_bbq_hnsw": "dense_vector.default_bbq_hnsw",
}

# REST capabilities (``GET _capabilities``) the sandbox implements, by (method, path pattern), with
# the behaviour key a capability depends on (None: every 9.x).
CAPABILITIES: dict[tuple[str, str], dict[str, str | None]] = {
    ("PUT", "/_component_template/{name}"): {
        "dlm.downsampling_method": None,
        "dlm.frozen_after": None,
        "failure_store.lifecycle.frozen_after_rejected": None,
        "component_template_tracking_info": "tracking_info",
    },
    ("POST", "/_component_template/{name}"): {
        "dlm.downsampling_method": None,
        "dlm.frozen_after": None,
        "failure_store.lifecycle.frozen_after_rejected": None,
        "component_template_tracking_info": "tracking_info",
    },
    ("GET", "/_component_template"): {"local_param_deprecated": None},
    ("GET", "/_component_template/{name}"): {"local_param_deprecated": None},
    ("PUT", "/_ingest/pipeline/{id}"): {"pipeline_tracking_info": "tracking_info"},
    ("GET", "/_search"): {
        "dense_vector_docvalue_fields": None,
        "k_default_to_size": None,
        "knn_quantized_vector_rescore_oversample": None,
        "byte_float_bit_dot_product_with_bugfix": None,
        "exclude_vectors_param": "search.source_exclude_vectors",
    },
    ("POST", "/_search"): {
        "dense_vector_docvalue_fields": None,
        "k_default_to_size": None,
        "knn_quantized_vector_rescore_oversample": None,
        "byte_float_bit_dot_product_with_bugfix": None,
        "exclude_vectors_param": "search.source_exclude_vectors",
    },
    ("GET", "/{index}/_search"): {"dense_vector_docvalue_fields": None, "k_default_to_size": None},
    ("POST", "/{index}/_search"): {"dense_vector_docvalue_fields": None, "k_default_to_size": None},
    ("PUT", "/{index}"): {"lookup_index_mode": None},
}


class Emulation:
    """What a cluster of one Elasticsearch version does where 9.x releases differ."""

    def __init__(self, version: EsVersion, license_type: Callable[[], str] = lambda: "basic") -> None:
        if (version.major, version.minor) not in RELEASES:
            raise UnsupportedVersion(f"the sandbox does not emulate Elasticsearch {version}")
        self.version = version
        self._license_type = license_type

    def __repr__(self) -> str:
        return f"Emulation({self.version})"

    # --- the version and the release's facts ----------------------------------------------------
    @property
    def release(self) -> Release:
        return RELEASES[(self.version.major, self.version.minor)]

    @property
    def number(self) -> str:
        return str(self.version)

    @property
    def index_version_created(self) -> str:
        return str(self.release.index_version)

    def has(self, key: str) -> bool:
        """Whether the behaviour ``key`` (a ``CHANGES`` key) applies to this version."""
        return self.version >= CHANGES[key].since

    @property
    def enterprise(self) -> bool:
        """The license allows enterprise features (a trial counts)."""
        return str(self._license_type()).lower() in ENTERPRISE_LICENSES

    def for_index(self, settings: Mapping[str, Any] | None) -> Emulation:
        """The emulation for behaviours keyed on the index's creation version (the same license)."""
        created = (settings or {}).get("index.version.created")
        if created is None or str(created) == self.index_version_created:
            return self
        for (major, minor), release in RELEASES.items():
            if str(release.index_version) == str(created):
                return Emulation(EsVersion(major, minor, 0), self._license_type)
        return self

    # --- dense_vector --------------------------------------------------------------------------
    def element_types(self) -> tuple[str, ...]:
        base = ("float", "byte", "bit")
        return (*base, "bfloat16") if self.has("dense_vector.bfloat16") else base

    def index_option_types(self) -> tuple[str, ...]:
        base = ("hnsw", "int8_hnsw", "int4_hnsw", "bbq_hnsw", "flat", "int8_flat", "int4_flat", "bbq_flat")
        return (*base, "bbq_disk") if self.has("dense_vector.bbq_disk") else base

    def bbq_default_oversample(self) -> bool:
        return self.has("dense_vector.bbq_default_oversample")

    def default_index_options(
        self, element_type: str, dims: int | None, indexed: bool
    ) -> dict[str, Any] | None:
        """The ``index_options`` a new field gets when its mapping names none (None: no default)."""
        if element_type not in ("float", "bfloat16") or not indexed or dims is None:
            return None
        hnsw = {"m": DEFAULT_M, "ef_construction": DEFAULT_EF_CONSTRUCTION}
        if self.has("dense_vector.default_bbq_hnsw") and dims >= BBQ_DEFAULT_THRESHOLD:
            if self.has("dense_vector.default_bbq_disk") and self.enterprise:
                return {
                    "type": "bbq_disk",
                    "cluster_size": BBQ_DISK_DEFAULT_CLUSTER_SIZE,
                    "rescore_vector": {"oversample": DEFAULT_OVERSAMPLE},
                }
            return {"type": "bbq_hnsw", **hnsw, "rescore_vector": {"oversample": DEFAULT_OVERSAMPLE}}
        return {"type": "int8_hnsw", **hnsw}

    def bbq_disk_write_refusal(self) -> str | None:
        """Why a vector write to a bbq_disk field is refused on this license, else None."""
        if self.has("dense_vector.bbq_disk_license") and not self.enterprise:
            return "current license is non-compliant for [DiskBBQ]"
        return None

    def exclude_source_vectors_default(self) -> bool:
        return self.has("index.mapping.exclude_source_vectors")

    # --- cluster features and REST capabilities ------------------------------------------------
    def cluster_features(self) -> list[str]:
        features = set(BASE_FEATURES)
        features.update(name for name, key in VERSIONED_FEATURES.items() if self.has(key))
        return sorted(features)

    def capabilities(self, method: str, path: str) -> frozenset[str]:
        """The capabilities of the endpoint ``method path`` (placeholder names do not matter)."""
        shape = path_shape(path)
        out: set[str] = set()
        for (m, pattern), known in CAPABILITIES.items():
            if m == method.upper() and path_shape(pattern) == shape:
                out.update(name for name, key in known.items() if key is None or self.has(key))
        return frozenset(out)


def path_shape(path: str) -> str:
    """A REST path pattern with its placeholders unnamed: ``/_x/{id}`` and ``/_x/{name}`` are one."""
    return re.sub(r"\{[^}/]*\}", "{}", path.rstrip("/") or "/")


_CURRENT: ContextVar[Emulation | None] = ContextVar("es_sandbox_emulation", default=None)
_DEFAULT = Emulation(NEWEST)


def current() -> Emulation:
    """The emulation in force: the request's cluster, or the newest version outside a request."""
    emulation = _CURRENT.get()
    return emulation if emulation is not None else _DEFAULT


@contextlib.contextmanager
def emulating(emulation: Emulation) -> Iterator[Emulation]:
    """Make ``emulation`` current for the code run inside (one request)."""
    token = _CURRENT.set(emulation)
    try:
        yield emulation
    finally:
        _CURRENT.reset(token)


def table() -> list[dict[str, str]]:
    """The version table, for docs and ``provision sandbox --help``: behaviour, since, source."""
    return [
        {"behaviour": c.what, "since": str(c.since), "key": c.key, "source": c.source}
        for c in sorted(CHANGES.values(), key=lambda c: (c.since, c.key))
    ]
