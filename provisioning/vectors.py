"""Elasticsearch 9's rules for ``dense_vector`` fields, shared by spec validation and the sandbox.

One definition, so that ``provision validate`` and the sandbox (which must reject what
Elasticsearch rejects) cannot drift apart (DenseVectorFieldMapper).
"""

from __future__ import annotations

MAX_DIMS = 4096
MAX_DIMS_BIT = 4096 * 8
SIMILARITIES = ("l2_norm", "dot_product", "cosine", "max_inner_product")
ELEMENT_TYPES = ("float", "byte", "bit")
INDEX_OPTION_TYPES = (
    "hnsw",
    "int8_hnsw",
    "int4_hnsw",
    "bbq_hnsw",
    "flat",
    "int8_flat",
    "int4_flat",
    "bbq_flat",
    "bbq_disk",
)
