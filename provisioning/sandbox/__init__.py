"""An Elasticsearch-9-compatible local server for the APIs provision uses (development and CI only)."""

from provisioning.sandbox.config import Faults, SandboxConfig
from provisioning.sandbox.server import Sandbox, SandboxServer

__all__ = ["Faults", "Sandbox", "SandboxConfig", "SandboxServer"]
