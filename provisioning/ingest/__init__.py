"""Image ingest: scan a folder, decode, embed with a local encoder, bulk-index into Elasticsearch.

Streaming (memory independent of the corpus), batched, resumable (documents are keyed by the
SHA-256 of their file, and files already indexed are skipped before decoding) and idempotent.
:func:`run_ingest` is the entry point; ``python -m provisioning.ingest`` runs it from a shell.
"""

from __future__ import annotations

from provisioning.ingest.errors import IngestError
from provisioning.ingest.progress import Progress, TqdmProgress
from provisioning.ingest.report import FileFailure, IngestReport, JobReport, render_text
from provisioning.ingest.run import run_ingest

__all__ = [
    "FileFailure",
    "IngestError",
    "IngestReport",
    "JobReport",
    "Progress",
    "TqdmProgress",
    "render_text",
    "run_ingest",
]
