"""provision: declarative provisioning of image similarity search on Elasticsearch, as a library.

Everything the ``provision`` command does is one call here, with typed inputs and a report out::

    import provisioning

    stack = provisioning.load_stack("stack.yaml")            # Stack; SpecError lists every problem
    cluster = provisioning.connect(stack)                     # Cluster (stack's cluster:, ES_* env)
    report = provisioning.converge(stack, cluster)            # plan, checks, apply, ingest, smoke tests
    assert report.ok, report.to_json()

The calls:

- :func:`load_stack` (``provision validate``): read, interpolate, validate and cross-check a stack
  file; raises :class:`SpecError` holding every problem, each with ``file:line:col`` and key path.
- :func:`connect`: a :class:`Cluster` from the stack's ``cluster:`` section, ES_* variables and
  arguments (in that order of precedence); secrets never appear in its messages.
- :func:`plan` (``provision plan``): the ordered :class:`Plan` of Changes that would converge the
  cluster; reads only.
- :func:`apply`: carry out a :class:`Plan` in order, stopping at the first failure
  (:class:`ApplyReport`); refuses a plan with conflicts, blocked changes or errors before any write.
- :func:`converge` (``provision apply``): the whole workflow, returning a :class:`ConvergeReport`.
- :func:`destroy` (``provision destroy``): delete what the stack manages, in reverse order.
- :func:`status` (``provision status``): per resource present, managed, drifted, with deployment
  state and document counts (:class:`StatusReport`).
- :func:`ingest` (``provision ingest``): embed images and bulk-index them, incrementally
  (:class:`IngestReport`); the report is not ``ok`` when a job had more failed files than it
  tolerates (:class:`FailureTolerance`: the job's ``max_failed``, or the ``max_failed`` argument);
  a converted encoder refused by its quality gate raises
  :class:`QualityGateError` (an :class:`EncoderError`), a vector field filled by another encoder
  :class:`EncoderMismatchError` (an :class:`IngestError`). :class:`EncoderFingerprint` is the typed
  identity of an image encoder's vectors, recorded in the index with what it embedded.
  ``engine="ray"`` runs the jobs on Ray Data (``docs/scale-out.md``).
- :func:`export_embeddings` (``provision ingest --export DIR``): embed into Parquet shards, no cluster;
  :func:`load_embeddings` (``--from DIR``): bulk-load them with no model, after checking their dims and
  encoder (:class:`ShardError`).
- :func:`verify` (``provision verify``): run the smoke tests (:class:`VerifyReport`).
- :func:`search` (``provision search``): one kNN query by text or example image (:class:`SearchResult`).
- :func:`similar`: "more like this", the images nearest to an indexed one by its stored vector.
- :func:`health`: whether the stack can answer searches now (:class:`HealthReport`).
- :func:`image_file`: the original file of an indexed image, never outside its source folder.

Errors are typed (:class:`ProvisionError` and its subclasses); nothing here prints or exits.
Attributes are imported on first use, so ``import provisioning`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "load_stack": "provisioning.stackfile.load",
    "Stack": "provisioning.stackfile.stack",
    "connect": "provisioning.cluster",
    "Cluster": "provisioning.cluster",
    "ConnectionOptions": "provisioning.cluster",
    "ClusterError": "provisioning.cluster",
    "plan": "provisioning.planning",
    "destroy_plan": "provisioning.planning",
    "Plan": "provisioning.changes",
    "Change": "provisioning.changes",
    "Conflict": "provisioning.changes",
    "apply": "provisioning.executor",
    "ApplyReport": "provisioning.executor",
    "ChangeResult": "provisioning.executor",
    "PlanNotApplicable": "provisioning.executor",
    "converge": "provisioning.workflow",
    "ConvergeOptions": "provisioning.workflow",
    "ConvergeReport": "provisioning.workflow",
    "destroy": "provisioning.workflow",
    "DestroyOptions": "provisioning.workflow",
    "DestroyReport": "provisioning.workflow",
    "status": "provisioning.stack_status",
    "StatusReport": "provisioning.stack_status",
    "ingest": "provisioning.image_ingest.run",
    "export_embeddings": "provisioning.image_ingest.exporting",
    "load_embeddings": "provisioning.image_ingest.loading",
    "ShardError": "provisioning.image_ingest.shards",
    "IngestReport": "provisioning.image_ingest.report",
    "IngestError": "provisioning.image_ingest.errors",
    "FailureTolerance": "provisioning.image_ingest.tolerance",
    "verify": "provisioning.smoke_tests",
    "rollover_gate": "provisioning.smoke_tests",
    "VerifyReport": "provisioning.smoke_tests",
    "VerifyError": "provisioning.smoke_tests",
    "search": "provisioning.queries",
    "SearchResult": "provisioning.queries",
    "SearchError": "provisioning.queries",
    "ModelUnavailable": "provisioning.queries",
    "QueryImageError": "provisioning.queries",
    "UnknownImage": "provisioning.queries",
    "similar": "provisioning.more_like_this",
    "health": "provisioning.search_health",
    "HealthReport": "provisioning.search_health",
    "image_file": "provisioning.image_files",
    "ImageFile": "provisioning.image_files",
    "UnsafeImagePath": "provisioning.image_files",
    "EncoderFingerprint": "provisioning.embedding.fingerprint",
    "EncoderError": "provisioning.embedding.errors",
    "QualityGateError": "provisioning.embedding.quality_gate",
    "EncoderMismatchError": "provisioning.image_ingest.encoder_record",
    "ProvisionError": "provisioning.errors",
    "SpecError": "provisioning.errors",
}

__all__ = [
    "ApplyReport",
    "Change",
    "ChangeResult",
    "Cluster",
    "ClusterError",
    "Conflict",
    "ConnectionOptions",
    "ConvergeOptions",
    "ConvergeReport",
    "DestroyOptions",
    "DestroyReport",
    "EncoderError",
    "EncoderFingerprint",
    "EncoderMismatchError",
    "FailureTolerance",
    "HealthReport",
    "ImageFile",
    "IngestError",
    "IngestReport",
    "ModelUnavailable",
    "Plan",
    "PlanNotApplicable",
    "ProvisionError",
    "QualityGateError",
    "QueryImageError",
    "SearchError",
    "SearchResult",
    "ShardError",
    "SpecError",
    "Stack",
    "StatusReport",
    "UnknownImage",
    "UnsafeImagePath",
    "VerifyError",
    "VerifyReport",
    "apply",
    "connect",
    "converge",
    "destroy",
    "destroy_plan",
    "export_embeddings",
    "health",
    "image_file",
    "ingest",
    "load_embeddings",
    "load_stack",
    "plan",
    "rollover_gate",
    "search",
    "similar",
    "status",
    "verify",
]

if TYPE_CHECKING:
    from provisioning.changes import Change, Conflict, Plan
    from provisioning.cluster import Cluster, ClusterError, ConnectionOptions, connect
    from provisioning.embedding.errors import EncoderError
    from provisioning.embedding.fingerprint import EncoderFingerprint
    from provisioning.embedding.quality_gate import QualityGateError
    from provisioning.errors import ProvisionError, SpecError
    from provisioning.executor import ApplyReport, ChangeResult, PlanNotApplicable, apply
    from provisioning.image_files import ImageFile, UnsafeImagePath, image_file
    from provisioning.image_ingest.encoder_record import EncoderMismatchError
    from provisioning.image_ingest.errors import IngestError
    from provisioning.image_ingest.exporting import export_embeddings
    from provisioning.image_ingest.loading import load_embeddings
    from provisioning.image_ingest.report import IngestReport
    from provisioning.image_ingest.run import ingest
    from provisioning.image_ingest.shards import ShardError
    from provisioning.image_ingest.tolerance import FailureTolerance
    from provisioning.more_like_this import similar
    from provisioning.planning import destroy_plan, plan
    from provisioning.queries import (
        ModelUnavailable,
        QueryImageError,
        SearchError,
        SearchResult,
        UnknownImage,
        search,
    )
    from provisioning.search_health import HealthReport, health
    from provisioning.smoke_tests import VerifyError, VerifyReport, rollover_gate, verify
    from provisioning.stack_status import StatusReport, status
    from provisioning.stackfile.load import load_stack
    from provisioning.stackfile.stack import Stack
    from provisioning.workflow import (
        ConvergeOptions,
        ConvergeReport,
        DestroyOptions,
        DestroyReport,
        converge,
        destroy,
    )


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'provisioning' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
