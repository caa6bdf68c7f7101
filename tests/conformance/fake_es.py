"""A tiny in-memory stand-in for Elasticsearch, to test the conformance runner itself.

It knows just enough (documents, bulk, search, pipelines, templates, trained models, a few listing
calls) for synthetic YAML tests, records every request, and can be told to answer a given request
with a canned status, body and headers (``respond``) or to add Warning headers (``warn``).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

VERSION = "9.2.0"
Reply = tuple[int, Any, dict[str, str]]


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


def error(status: int, kind: str, reason: str) -> Reply:
    cause = {"type": kind, "reason": reason}
    return status, {"error": {"root_cause": [cause], **cause}, "status": status}, {}


@dataclass
class FakeState:
    version: str = VERSION
    indices: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"docs": {}, "hidden": bool}
    pipelines: dict[str, Any] = field(default_factory=dict)
    index_templates: dict[str, Any] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    features: list[str] | None = None  # nodes_features in _cluster/state; None: API absent
    canned: dict[tuple[str, str], Reply] = field(default_factory=dict)
    warnings: dict[tuple[str, str], list[str]] = field(default_factory=dict)


class FakeElasticsearch:
    def __init__(self) -> None:
        self.state = FakeState()
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorded = Recorded(
                    self.command,
                    unquote(split.path),
                    dict(parse_qsl(split.query, keep_blank_values=True)),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                with fake._lock:
                    fake.requests.append(recorded)
                    status, payload, headers = fake.dispatch(recorded)
                text = isinstance(payload, str)
                data = (
                    b"" if payload is None else (payload.encode() if text else json.dumps(payload).encode())
                )
                self.send_response(status)
                self.send_header("X-Elastic-Product", "Elasticsearch")
                for message in fake.state.warnings.get((recorded.method, recorded.path), []):
                    escaped = message.replace("\\", "\\\\").replace('"', '\\"')
                    self.send_header("Warning", f'299 Elasticsearch-{VERSION}-abcdef1 "{escaped}"')
                for key, value in headers.items():
                    self.send_header(key, value)
                if payload is not None:
                    kind = (
                        "text/plain; charset=UTF-8"
                        if text
                        else "application/vnd.elasticsearch+json;compatible-with=9"
                    )
                    self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeElasticsearch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def respond(
        self, method: str, path: str, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> None:
        self.state.canned[(method, path)] = (status, body, headers or {})

    def warn(self, method: str, path: str, *messages: str) -> None:
        self.state.warnings[(method, path)] = list(messages)

    def calls(self, method: str | None = None) -> list[str]:
        """``"METHOD /path"`` of the requests so far (the runner's bookkeeping GETs included)."""
        return [f"{r.method} {r.path}" for r in self.requests if method is None or r.method == method]

    # --- routing -------------------------------------------------------------------------------
    def dispatch(self, request: Recorded) -> Reply:
        canned = self.state.canned.get((request.method, request.path))
        if canned is not None:
            return canned
        for method, pattern, handler in self._routes():
            if method == request.method:
                found = re.fullmatch(pattern, request.path)
                if found:
                    return handler(request, *found.groups())
        return error(400, "illegal_argument_exception", f"no handler for [{request.method} {request.path}]")

    def _routes(self) -> list[tuple[str, str, Callable[..., Reply]]]:
        return [
            ("GET", r"/", self._info),
            ("GET", r"/_cluster/state", self._cluster_state),
            ("POST", r"/_bulk", self._bulk),
            ("GET", r"/_ingest/pipeline", lambda r: (200, self.state.pipelines, {})),
            ("PUT", r"/_ingest/pipeline/([^/]+)", self._put_pipeline),
            ("GET", r"/_ingest/pipeline/([^/]+)", self._get_pipeline),
            ("DELETE", r"/_ingest/pipeline/([^/]+)", self._delete_pipeline),
            ("GET", r"/_index_template", self._get_templates),
            ("PUT", r"/_index_template/([^/]+)", self._put_template),
            ("DELETE", r"/_index_template/([^/]+)", self._delete_template),
            ("GET", r"/_ml/trained_models", self._get_models),
            ("DELETE", r"/_ml/trained_models/([^/]+)", self._delete_model),
            ("GET", r"/\*", self._list_indices),
            ("PUT", r"/([^/_][^/]*)", self._create_index),
            ("HEAD", r"/([^/_][^/]*)", self._exists_index),
            ("DELETE", r"/([^/_][^/]*)", self._delete_indices),
            ("PUT", r"/([^/_][^/]*)/_doc/([^/]+)", self._index_doc),
            ("POST", r"/([^/_][^/]*)/_doc/([^/]+)", self._index_doc),
            ("GET", r"/([^/_][^/]*)/_doc/([^/]+)", self._get_doc),
            ("GET", r"/([^/_][^/]*)/_search", self._search),
            ("POST", r"/([^/_][^/]*)/_search", self._search),
        ]

    def _info(self, request: Recorded) -> Reply:
        version = {"number": self.state.version, "build_flavor": "default"}
        return 200, {"name": "fake", "version": version, "tagline": "You Know, for Search"}, {}

    def _cluster_state(self, request: Recorded) -> Reply:
        if self.state.features is None:
            return error(400, "illegal_argument_exception", "no cluster state here")
        return 200, {"nodes_features": [{"node_id": "n1", "features": self.state.features}]}, {}

    def _json(self, request: Recorded) -> Any:
        return json.loads(request.body) if request.body else {}

    def _create_index(self, request: Recorded, name: str) -> Reply:
        if name in self.state.indices:
            return error(400, "resource_already_exists_exception", f"index [{name}/abc] already exists")
        hidden = bool(self._json(request).get("settings", {}).get("index.hidden"))
        self.state.indices[name] = {"docs": {}, "hidden": hidden}
        return 200, {"acknowledged": True, "shards_acknowledged": True, "index": name}, {}

    def _exists_index(self, request: Recorded, name: str) -> Reply:
        return (200 if name in self.state.indices else 404), None, {}

    def _delete_indices(self, request: Recorded, names: str) -> Reply:
        for name in names.split(","):
            if name not in self.state.indices:
                if request.query.get("ignore_unavailable") == "true":
                    continue
                return error(404, "index_not_found_exception", f"no such index [{name}]")
            del self.state.indices[name]
        return 200, {"acknowledged": True}, {}

    def _list_indices(self, request: Recorded) -> Reply:
        wanted = request.query.get("expand_wildcards") in ("all", "hidden")
        shown: dict[str, Any] = {
            n: {"settings": {}} for n, i in self.state.indices.items() if wanted or not i["hidden"]
        }
        return 200, shown, {}

    def _index_doc(self, request: Recorded, index: str, doc_id: str) -> Reply:
        docs = self.state.indices.setdefault(index, {"docs": {}, "hidden": False})["docs"]
        result = "updated" if doc_id in docs else "created"
        docs[doc_id] = self._json(request)
        return (201 if result == "created" else 200), {"_index": index, "_id": doc_id, "result": result}, {}

    def _get_doc(self, request: Recorded, index: str, doc_id: str) -> Reply:
        if index not in self.state.indices:
            return error(404, "index_not_found_exception", f"no such index [{index}]")
        docs = self.state.indices[index]["docs"]
        if doc_id not in docs:
            return 404, {"_index": index, "_id": doc_id, "found": False}, {}
        return 200, {"_index": index, "_id": doc_id, "found": True, "_source": docs[doc_id]}, {}

    def _bulk(self, request: Recorded) -> Reply:
        lines = [json.loads(line) for line in request.body.decode().splitlines() if line.strip()]
        items = []
        for action, source in zip(lines[::2], lines[1::2], strict=False):
            ((op, meta),) = action.items()
            docs = self.state.indices.setdefault(meta["_index"], {"docs": {}, "hidden": False})["docs"]
            doc_id = str(meta.get("_id", len(docs) + 1))
            docs[doc_id] = source
            items.append({op: {"_index": meta["_index"], "_id": doc_id, "status": 201, "result": "created"}})
        return 200, {"errors": False, "took": 1, "items": items}, {}

    def _search(self, request: Recorded, index: str) -> Reply:
        if index not in self.state.indices:
            return error(404, "index_not_found_exception", f"no such index [{index}]")
        docs = self.state.indices[index]["docs"]
        hits = [{"_index": index, "_id": i, "_score": 1.0, "_source": s} for i, s in sorted(docs.items())]
        return 200, {"took": 1, "hits": {"total": {"value": len(hits), "relation": "eq"}, "hits": hits}}, {}

    def _put_pipeline(self, request: Recorded, name: str) -> Reply:
        self.state.pipelines[name] = self._json(request)
        return 200, {"acknowledged": True}, {}

    def _get_pipeline(self, request: Recorded, name: str) -> Reply:
        if name not in self.state.pipelines:
            return 404, {}, {}
        return 200, {name: self.state.pipelines[name]}, {}

    def _delete_pipeline(self, request: Recorded, name: str) -> Reply:
        if self.state.pipelines.pop(name, None) is None:
            return error(404, "resource_not_found_exception", f"pipeline [{name}] is missing")
        return 200, {"acknowledged": True}, {}

    def _get_templates(self, request: Recorded) -> Reply:
        listed = [{"name": n, "index_template": t} for n, t in self.state.index_templates.items()]
        return 200, {"index_templates": listed}, {}

    def _put_template(self, request: Recorded, name: str) -> Reply:
        self.state.index_templates[name] = self._json(request)
        return 200, {"acknowledged": True}, {}

    def _delete_template(self, request: Recorded, name: str) -> Reply:
        if self.state.index_templates.pop(name, None) is None:
            return error(404, "resource_not_found_exception", f"index_template [{name}] missing")
        return 200, {"acknowledged": True}, {}

    def _get_models(self, request: Recorded) -> Reply:
        configs = [{"model_id": m, **c} for m, c in self.state.models.items()]
        return 200, {"count": len(configs), "trained_model_configs": configs}, {}

    def _delete_model(self, request: Recorded, model_id: str) -> Reply:
        if self.state.models.pop(model_id, None) is None:
            return error(404, "resource_not_found_exception", f"Could not find trained model [{model_id}]")
        return 200, {"acknowledged": True}, {}
