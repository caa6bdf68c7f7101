"""Errors of the ingest stage (per-file problems are not errors: they are recorded in the report)."""

from __future__ import annotations

from provisioning.errors import ProvisionError


class IngestError(ProvisionError):
    """An ingest job that cannot go on: bad source folder, unknown job, cluster refusing every write."""
