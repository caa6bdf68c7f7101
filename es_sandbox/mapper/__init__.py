"""Index mappings, as Elasticsearch's ``index.mapper`` package has them: one module per concern.

A mapping is kept as the canonical dict Elasticsearch returns from ``GET _mapping``.
:mod:`~es_sandbox.mapper.parameters` holds each field type's parameter table,
:mod:`~es_sandbox.mapper.parsing` turns definitions into canonical form,
:mod:`~es_sandbox.mapper.merging` applies mapping updates, :mod:`~es_sandbox.mapper.lookup` compiles a
mapping for queries, and :mod:`~es_sandbox.mapper.documents` parses documents against it
(with :mod:`~es_sandbox.mapper.dense_vector` and :mod:`~es_sandbox.mapper.geo` for those field types).
"""
