"""The sandbox's REST API, one module per area; each exposes a ``routes`` RouteTable."""

from __future__ import annotations

import importlib

from es_sandbox.http import RouteTable

# Modules are listed here as they are written; each defines ``routes = RouteTable()``.
MODULES = [
    "es_sandbox.api.info",
    "es_sandbox.api.cluster_health",
    "es_sandbox.api.cluster_settings",
    "es_sandbox.api.cluster_state",
    "es_sandbox.api.license",
    "es_sandbox.api.nodes",
    "es_sandbox.api.cat",
    "es_sandbox.api.indices",
    "es_sandbox.api.templates",
    "es_sandbox.api.legacy_templates",
    "es_sandbox.api.documents",
    "es_sandbox.api.bulk",
    "es_sandbox.api.search",
    "es_sandbox.api.pipelines",
    "es_sandbox.api.ml",
    "es_sandbox.api.inference",
]


def route_tables() -> list[RouteTable]:
    tables = []
    for name in MODULES:
        module = importlib.import_module(name)
        tables.append(module.routes)
    return tables
