"""What differs between the Elasticsearch 9.x minors this tool supports, for the product to adapt to.

The product reads the cluster's version once per run (``GET /``, :meth:`Cluster.version`) and asks
here; each fact names the release where it changed and its source:

- 9.0: ``dense_vector`` fields that declare no ``index_options`` get ``int8_hnsw`` (float vectors;
  the default since 8.14);
- 9.1: ``bbq_hnsw`` instead for float vectors of 384 dims or more, stored with
  ``rescore_vector.oversample: 3.0`` (elastic/elasticsearch#129825, #127134); the
  ``_source.exclude_vectors`` option (#128735);
- 9.2: new indices leave vectors out of ``_source`` (``index.mapping.exclude_source_vectors``,
  #130382, #131907): a vector is read back with ``_source_exclude_vectors=false``; templates and
  pipelines get ``created_date``/``modified_date`` (#130847, #131536), never the stack's;
- 9.3: bulk and index requests accept float vectors as base64 of big-endian float32 (#137072);
  ``element_type: bfloat16`` (#138492);
- 9.4: ``bbq_disk`` becomes the default index type where the license is enterprise (or trial)
  (#144885); ``query_vector_builder.lookup`` builds a kNN query vector from a stored document in
  the same request (#141488).

The sandbox emulates each of these per version (``es_sandbox/versions.py``), which is how the
product's adaptations are tested.

Versions before 9.0 are refused at the first request (the 9.x client speaks only to 9.x).
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioning.errors import ProvisionError

Version = tuple[int, int, int]

FIRST_SUPPORTED: Version = (9, 0, 0)
NEWEST_KNOWN: Version = (9, 4, 0)
BBQ_DEFAULT_FROM: Version = (9, 1, 0)
BBQ_DEFAULT_MIN_DIMS = 384
SOURCE_EXCLUDES_VECTORS_FROM: Version = (9, 2, 0)
BASE64_VECTORS_FROM: Version = (9, 3, 0)
BBQ_DISK_DEFAULT_FROM: Version = (9, 4, 0)
LOOKUP_FROM: Version = (9, 4, 0)
ENTERPRISE_LICENSES = ("enterprise", "trial")


class UnsupportedVersion(ProvisionError):
    """The cluster runs an Elasticsearch version this tool does not speak to."""


def shown(version: Version) -> str:
    return ".".join(str(p) for p in version)


def check_supported(version: Version, url: str) -> None:
    """Raises UnsupportedVersion for anything but 9.x, naming the version, the URL and the range."""
    if version < FIRST_SUPPORTED or version[0] != FIRST_SUPPORTED[0]:
        raise UnsupportedVersion(
            f"{url} runs Elasticsearch {shown(version)}; provision supports Elasticsearch "
            f"{shown(FIRST_SUPPORTED)} to {FIRST_SUPPORTED[0]}.x (tested up to {shown(NEWEST_KNOWN)}): "
            "upgrade the cluster, or use a provision release made for it"
        )


@dataclass(frozen=True)
class IndexTypeCost:
    """What one index type costs per vector and what it does to recall, for ``plan``'s notes."""

    name: str
    bytes_per_vector: int  # the quantised (or raw) vectors searched, excluding the HNSW graph
    recall: str


def default_index_type(
    version: Version, element_type: str, dims: int | None, license_type: str | None
) -> str | None:
    """The ``index_options.type`` a new index gives a ``dense_vector`` field that declares none."""
    if element_type not in ("float", "bfloat16") or dims is None:
        return None  # byte and bit vectors are indexed as they are (hnsw)
    if version >= BBQ_DISK_DEFAULT_FROM and (license_type or "") in ENTERPRISE_LICENSES:
        return "bbq_disk"
    if version >= BBQ_DEFAULT_FROM and dims >= BBQ_DEFAULT_MIN_DIMS:
        return "bbq_hnsw"
    return "int8_hnsw"


def index_type_cost(index_type: str, dims: int) -> IndexTypeCost:
    """Memory per vector searched and the effect on recall of ``index_type`` at ``dims``."""
    raw = 4 * dims
    if index_type.startswith("bbq"):
        return IndexTypeCost(
            index_type,
            dims // 8 + 16,
            "1 bit per dimension, ~32x less memory than float; recall relies on rescoring the top "
            "candidates with the float vectors (rescore_vector.oversample, 3.0 by default)",
        )
    if index_type.startswith("int4"):
        return IndexTypeCost(index_type, dims // 2 + 4, "4 bits per dimension; a few points of recall lost")
    if index_type.startswith("int8"):
        return IndexTypeCost(index_type, dims + 4, "1 byte per dimension; recall within about 1% of float")
    return IndexTypeCost(index_type, raw, "float vectors, exact distances; the most memory")


def supports_base64_vectors(version: Version) -> bool:
    return version >= BASE64_VECTORS_FROM


def source_excludes_vectors(version: Version) -> bool:
    return version >= SOURCE_EXCLUDES_VECTORS_FROM


def supports_lookup(version: Version) -> bool:
    return version >= LOOKUP_FROM
