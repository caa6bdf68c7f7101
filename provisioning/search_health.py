"""Whether a stack can answer searches right now: cluster reachable, text model deployed, index present.

What a search application shows before anyone types a query, and what ``/healthz`` answers. Each
call reads the cluster afresh (three small requests), so a cluster that comes back, or a model
that gets deployed again, is seen at the next call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from elasticsearch import ApiError, NotFoundError, TransportError

from provisioning.cluster import Cluster, ClusterError
from provisioning.queries import Searcher, SearchError
from provisioning.stackfile.stack import Stack


@dataclass
class HealthReport:
    index: str
    cluster_reachable: bool = False
    cluster_name: str | None = None
    version: str | None = None
    model: str | None = None  # the declared model that embeds text queries (None: none declared)
    model_ready: bool = False
    index_present: bool = False
    documents: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def text_search(self) -> bool:
        return self.cluster_reachable and self.model_ready and self.index_present

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "cluster": {
                "reachable": self.cluster_reachable,
                "name": self.cluster_name,
                "version": self.version,
            },
            "model": {"name": self.model, "deployed": self.model_ready},
            "index": {"name": self.index, "present": self.index_present, "documents": self.documents},
            "problems": list(self.problems),
        }


def health(
    stack: Stack, cluster: Cluster, *, index: str | None = None, model: str | None = None
) -> HealthReport:
    """Read whether ``index`` (default: the first ingest job's) can be searched by text and image.

    Never raises for the cluster's state: an unreachable cluster, a model that is not deployed or
    a missing index are ``problems`` in the report (each a sentence that says what to do).
    """
    searcher = Searcher(stack, cluster)
    report = HealthReport(index=index or searcher.default_index())
    try:
        info = cluster.client.info().body
    except (ApiError, TransportError) as exc:
        report.problems.append(f"{cluster.error(exc, 'reach the cluster')}")
        return report
    report.cluster_reachable = True
    report.cluster_name = str(info.get("cluster_name", "")) or None
    report.version = str(info.get("version", {}).get("number", "")) or None
    try:
        spec_name = model or searcher.default_model()
    except SearchError:
        spec_name = None
    report.model = spec_name
    if spec_name is not None:
        try:
            problem = searcher.deployment_problem(spec_name)
        except ClusterError as exc:
            problem = str(exc)
        if problem is None:
            report.model_ready = True
        else:
            report.problems.append(f"text search is unavailable: {problem}")
    try:
        count = cluster.client.count(index=report.index)
        report.index_present = True
        report.documents = int(count.body.get("count", 0))
    except NotFoundError:
        report.problems.append(f"index {report.index} does not exist; run `provision apply`")
    except (ApiError, TransportError) as exc:
        report.problems.append(str(cluster.error(exc, f"count the documents of {report.index}")))
    return report
