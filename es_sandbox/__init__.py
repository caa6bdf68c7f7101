"""An Elasticsearch-9-compatible local server for the APIs provision uses (development and CI only)."""

from es_sandbox.config import Faults, SandboxConfig
from es_sandbox.server import Sandbox, SandboxServer

__all__ = ["Faults", "Sandbox", "SandboxConfig", "SandboxServer"]
