"""The sandbox's REST API, one module per area; each exposes a ``routes`` RouteTable."""

from __future__ import annotations

import importlib

from provisioning.sandbox.http import RouteTable

# Modules are listed here as they are written; each defines ``routes = RouteTable()``.
MODULES = [
    "provisioning.sandbox.api.cluster",
    "provisioning.sandbox.api.indices",
    "provisioning.sandbox.api.templates",
    "provisioning.sandbox.api.documents",
    "provisioning.sandbox.api.search",
    "provisioning.sandbox.api.ingest",
    "provisioning.sandbox.api.ml",
    "provisioning.sandbox.api.inference",
]


def route_tables() -> list[RouteTable]:
    tables = []
    for name in MODULES:
        module = importlib.import_module(name)
        tables.append(module.routes)
    return tables
