"""Image ingest: scan a folder, decode, embed with a local encoder, bulk-index into Elasticsearch.

Streaming (memory independent of the corpus), batched, resumable (documents are keyed by the
SHA-256 of their file, and files already indexed are skipped before decoding) and idempotent.
:func:`ingest` is the entry point (``provision ingest`` on the command line).
"""

from __future__ import annotations

from provisioning.image_ingest.errors import IngestError
from provisioning.image_ingest.progress import Progress, TqdmProgress
from provisioning.image_ingest.report import FileFailure, IngestReport, JobReport
from provisioning.image_ingest.run import ingest, run_ingest

__all__ = [
    "FileFailure",
    "IngestError",
    "IngestReport",
    "JobReport",
    "Progress",
    "TqdmProgress",
    "ingest",
    "run_ingest",
]
