"""The query DSL, as Elasticsearch's ``index.query`` package has it: parsed once, evaluated per index.

:mod:`~es_sandbox.query.parser` turns a request's query (and ``knn`` clauses) into the nodes of
:mod:`~es_sandbox.query.nodes`, which evaluate against a :mod:`~es_sandbox.query.context` (one index's
searcher), scoring text with :mod:`~es_sandbox.query.bm25`, vectors exactly with
:mod:`~es_sandbox.query.knn` and ``script_score`` with :mod:`~es_sandbox.query.script`.
"""
