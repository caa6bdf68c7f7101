"""Between tests, bring the cluster back to empty, the way ESRestTestCase does, through the public API.

Order: inference endpoints, ingest pipelines, model deployments, trained models, data streams,
indices (their aliases go with them), index templates, component templates, legacy templates,
persistent/transient cluster settings. Built-in resources stay: preconfigured inference endpoints
(ids starting with ``.``), prepackaged trained models (``lang_ident_model_1``), templates and
pipelines Elasticsearch installs itself (``_meta.managed: true``, dot-prefixed or known names),
system indices and data streams.

An API the target does not have (404/405/400/501 on the listing call) is simply a step with nothing
to do; any other failure is reported back, never raised, so one stuck resource does not stop the run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from tests.conformance.transport import Transport, TransportError

UNSUPPORTED = frozenset({400, 404, 405, 410, 501})
# Statuses that mean "no such API" for good (404 does not: some listings answer 404 when empty).
NO_SUCH_API = frozenset({400, 405, 410, 501})
BUILTIN_MODELS = frozenset({"lang_ident_model_1"})

# Templates and pipelines Elasticsearch and its plugins install (besides _meta.managed ones).
_BUILTIN_TEMPLATE_NAMES = frozenset(
    {
        "logs",
        "logs-settings",
        "logs-mappings",
        "metrics",
        "metrics-settings",
        "metrics-mappings",
        "metrics-tsdb-settings",
        "synthetics",
        "synthetics-settings",
        "synthetics-mappings",
        "data-streams-mappings",
        "ilm-history",
        "ilm-history-7",
        "security_audit_log",
        "saml-service-provider",
        "search-acl-filter",
        "logstash-index-template",
        "kibana-reporting",
    }
)
_BUILTIN_TEMPLATE_PREFIXES = (
    ".",
    "ilm-history-",
    "apm-",
    "apm@",
    "profiling-",
    "elastic-connectors",
    "behavioral_analytics-",
    "entities_",
    "traces-",
    "traces@",
)
_BUILTIN_PIPELINE_NAMES = frozenset(
    {
        "ent-search-generic-ingestion",
        "search-default-ingestion",
        "behavioral_analytics-events-final_pipeline",
        "reindex-data-stream-pipeline",
        "logs-default-pipeline",
    }
)
_BUILTIN_PIPELINE_PREFIXES = (".", "xpack_monitoring_", "apm@", "traces-apm", "metrics-apm", "logs-apm")


def _managed(body: Any) -> bool:
    meta = body.get("_meta") if isinstance(body, dict) else None
    return isinstance(meta, dict) and meta.get("managed") is True


def builtin_template(name: str, body: Any) -> bool:
    return (
        _managed(body)
        or name in _BUILTIN_TEMPLATE_NAMES
        or "@" in name  # logs@mappings, ecs@mappings, ...: ES's own component templates
        or name.startswith(_BUILTIN_TEMPLATE_PREFIXES)
    )


def builtin_pipeline(name: str, body: Any) -> bool:
    return (
        _managed(body)
        or name in _BUILTIN_PIPELINE_NAMES
        or "@" in name
        or name.startswith(_BUILTIN_PIPELINE_PREFIXES)
    )


def _q(name: str) -> str:
    return quote(name, safe="")


class Wiper:
    def __init__(
        self,
        transport: Transport,
        log: Callable[[str], None] | None = None,
        missing_apis: set[str] | None = None,
    ) -> None:
        self.transport = transport
        self.log = log or (lambda _message: None)
        self.problems: list[str] = []
        # Listing calls the target answered as unknown; shared across wipes so they are asked once.
        self.missing_apis = missing_apis if missing_apis is not None else set()

    def _list(self, path: str, query: list[tuple[str, str]] | None = None) -> Any:
        """The JSON of a listing call, or None when the target lacks the API."""
        if path in self.missing_apis:
            return None
        status, body = self.transport.get_json(path, query)
        if status == 200:
            return body
        if status in NO_SUCH_API:
            self.missing_apis.add(path)
        elif status not in UNSUPPORTED:
            self.problems.append(f"GET {path} answered {status}")
        return None

    def _delete(self, method: str, path: str, query: list[tuple[str, str]] | None = None) -> None:
        response = self.transport.request(method, path, query=query, headers={"Accept": "application/json"})
        self.log(f"wipe: {method} {path} -> {response.status}")
        if response.status >= 300 and response.status != 404:
            self.problems.append(f"{method} {path} answered {response.status}: {response.text[:200]}")

    def wipe(self) -> list[str]:
        """Run every step; the problems met (empty when the cluster is clean)."""
        self.problems = []
        steps: list[Callable[[], None]] = [
            self.inference_endpoints,
            self.pipelines,
            self.deployments,
            self.trained_models,
            self.data_streams,
            self.indices,
            self.index_templates,
            self.component_templates,
            self.legacy_templates,
            self.cluster_settings,
        ]
        for step in steps:
            try:
                step()
            except TransportError as exc:
                self.problems.append(f"{step.__name__}: {exc}")
        return self.problems

    def inference_endpoints(self) -> None:
        body = self._list("/_inference/_all")
        endpoints = body.get("endpoints", []) if isinstance(body, dict) else []
        for endpoint in endpoints:
            inference_id = str(endpoint.get("inference_id", ""))
            task_type = str(endpoint.get("task_type", ""))
            if not inference_id or inference_id.startswith("."):
                continue  # preconfigured endpoints cannot be deleted
            path = (
                f"/_inference/{_q(task_type)}/{_q(inference_id)}"
                if task_type
                else f"/_inference/{_q(inference_id)}"
            )
            self._delete("DELETE", path, [("force", "true")])

    def pipelines(self) -> None:
        body = self._list("/_ingest/pipeline")
        if isinstance(body, dict):
            for name, pipeline in body.items():
                if not builtin_pipeline(name, pipeline):
                    self._delete("DELETE", f"/_ingest/pipeline/{_q(name)}")

    def deployments(self) -> None:
        body = self._list("/_ml/trained_models/_stats", [("size", "10000")])
        stats = body.get("trained_model_stats", []) if isinstance(body, dict) else []
        seen: set[str] = set()
        for stat in stats:
            deployment = stat.get("deployment_stats") if isinstance(stat, dict) else None
            if not isinstance(deployment, dict):
                continue
            deployment_id = str(deployment.get("deployment_id") or stat.get("model_id") or "")
            if deployment_id and deployment_id not in seen:
                seen.add(deployment_id)
                self._delete(
                    "POST", f"/_ml/trained_models/{_q(deployment_id)}/deployment/_stop", [("force", "true")]
                )

    def trained_models(self) -> None:
        body = self._list("/_ml/trained_models", [("size", "10000")])
        configs = body.get("trained_model_configs", []) if isinstance(body, dict) else []
        for config in configs:
            if not isinstance(config, dict):
                continue
            model_id, tags = str(config.get("model_id", "")), config.get("tags") or []
            if not model_id or model_id in BUILTIN_MODELS or "prepackaged" in tags:
                continue
            self._delete("DELETE", f"/_ml/trained_models/{_q(model_id)}", [("force", "true")])

    def data_streams(self) -> None:
        body = self._list("/_data_stream/*", [("expand_wildcards", "all")])
        streams = body.get("data_streams", []) if isinstance(body, dict) else []
        for stream in streams:
            if isinstance(stream, dict) and stream.get("name") and not stream.get("system"):
                self._delete(
                    "DELETE", f"/_data_stream/{_q(str(stream['name']))}", [("expand_wildcards", "all")]
                )

    def indices(self) -> None:
        """Every non-system index, hidden ones included.

        ``_resolve/index`` tells system indices apart; where the target lacks it, ``GET /*`` lists
        the indices and dot-prefixed names (reserved for system use) are left alone.
        """
        names: list[str] = []
        resolved = self._list("/_resolve/index/*", [("expand_wildcards", "all")])
        if isinstance(resolved, dict) and isinstance(resolved.get("indices"), list):
            for entry in resolved["indices"]:
                if isinstance(entry, dict) and "system" not in (entry.get("attributes") or []):
                    names.append(str(entry.get("name")))
        else:
            listed = self._list("/*", [("expand_wildcards", "all")])
            if isinstance(listed, dict):
                names = [name for name in listed if not name.startswith(".")]
        for start in range(0, len(names), 50):
            batch = ",".join(_q(name) for name in names[start : start + 50])
            self._delete("DELETE", f"/{batch}", [("ignore_unavailable", "true"), ("expand_wildcards", "all")])

    def index_templates(self) -> None:
        body = self._list("/_index_template")
        templates = body.get("index_templates", []) if isinstance(body, dict) else []
        for template in templates:
            name = str(template.get("name", ""))
            if name and not builtin_template(name, template.get("index_template")):
                self._delete("DELETE", f"/_index_template/{_q(name)}")

    def component_templates(self) -> None:
        body = self._list("/_component_template")
        templates = body.get("component_templates", []) if isinstance(body, dict) else []
        for template in templates:
            name = str(template.get("name", ""))
            if name and not builtin_template(name, template.get("component_template")):
                self._delete("DELETE", f"/_component_template/{_q(name)}")

    def legacy_templates(self) -> None:
        body = self._list("/_template")
        if isinstance(body, dict):
            for name, template in body.items():
                if not builtin_template(name, template):
                    self._delete("DELETE", f"/_template/{_q(name)}")

    def cluster_settings(self) -> None:
        body = self._list("/_cluster/settings", [("flat_settings", "true")])
        if not isinstance(body, dict):
            return
        reset: dict[str, dict[str, None]] = {}
        for scope in ("persistent", "transient"):
            values = body.get(scope)
            if isinstance(values, dict) and values:
                reset[scope] = dict.fromkeys(values)
        if reset:
            response = self.transport.request(
                "PUT",
                "/_cluster/settings",
                body=json.dumps(reset).encode(),
                headers={"Accept": "application/json", "Content-Type": "application/json"},
            )
            if response.status >= 300:
                self.problems.append(
                    f"PUT /_cluster/settings answered {response.status}: {response.text[:200]}"
                )
