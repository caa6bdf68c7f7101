"""What each engine makes of Elasticsearch's answer for one document: a failure with its reason, and
the guard that stops a job whose index refuses everything. Shared, so both engines report alike."""

from __future__ import annotations

from provisioning.image_ingest.bulk import ItemResult
from provisioning.image_ingest.errors import IngestError
from provisioning.image_ingest.report import FileFailure

ABORT_AFTER = 20  # consecutive refused documents, with none accepted yet, that stop a job


def index_failure(relative_path: str, result: ItemResult) -> FileFailure:
    """The report's entry for a document Elasticsearch refused (after the bulk layer's retries)."""
    reason = f"{result.error_type}: {result.reason} (status {result.status})"
    return FileFailure(relative_path, "index", result.error_type or "error", reason)


class RefusalWatch:
    """Counts refusals in a row; raises IngestError when the first :data:`ABORT_AFTER` documents of a
    job were all refused (a mapping or pipeline that cannot take them: going on would only list every
    file as failed)."""

    def __init__(self, job: str, index: str, vector_field: str) -> None:
        self.job = job
        self.index = index
        self.vector_field = vector_field
        self.accepted = 0
        self._in_a_row = 0

    def accepted_one(self) -> None:
        self.accepted += 1
        self._in_a_row = 0

    def refused_one(self, failure: FileFailure) -> None:
        """Count a refusal; raises IngestError when none was accepted and too many were refused."""
        self._in_a_row += 1
        if self.accepted == 0 and self._in_a_row >= ABORT_AFTER:
            raise IngestError(
                f"ingest {self.job}: the first {ABORT_AFTER} documents were all refused by index "
                f"'{self.index}' (last: {failure.reason}); check its mapping (the vector field "
                f"'{self.vector_field}', its dims) and the pipeline"
            )
