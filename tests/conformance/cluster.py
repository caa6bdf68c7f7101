"""What the runner knows about the target, and the ``requires``/``skip`` decisions made from it.

Runner features are the runner's own (``SUPPORTED_RUNNER_FEATURES``). Cluster facts are read
lazily through the public API and cached: version (``GET /``), cluster features
(``GET /_cluster/state?filter_path=nodes_features``, where the target exposes them), capabilities
(``GET /_capabilities``), operating systems (``GET /_nodes/os``), x-pack (``GET /_xpack``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from tests.conformance.suite import Step
from tests.conformance.transport import Transport, TransportError, encode_query_value

Version = tuple[int, int, int]

SUPPORTED_RUNNER_FEATURES = frozenset(
    {
        "allowed_warnings",
        "allowed_warnings_regex",
        "arbitrary_key",
        "capabilities",
        "catch_unauthorized",
        "close_to",
        "contains",
        "default_shards",  # the runner never changes the default number of shards
        "embedded_stash_key",
        "exists",
        "fips_140",  # the runner never sets up FIPS 140 mode
        "gtelte",
        "headers",
        "is_after",
        "node_selector",
        "regex",
        "skip_os",
        "stash_in_key",
        "stash_in_path",
        "transform_and_set",
        "warnings",
        "warnings_regex",
        "yaml",
    }
)
# Features whose support depends on the target, decided per cluster.
CONDITIONAL_RUNNER_FEATURES = frozenset({"xpack", "no_xpack"})

# Cluster features that predate the cluster-features mechanism ("historical" features): a node of
# this version or later has them. Synthetic ``gte_vX.Y.Z`` features are handled by version.
HISTORICAL_FEATURES: dict[str, Version] = {
    "bulk_auto_id": (7, 5, 0),
    "bulk_require_alias": (7, 10, 0),
}

_VERSION_RE = re.compile(r"(\d+)\.(\d+)\.(\d+)")
_GTE_FEATURE = re.compile(r"^gte_v(\d+\.\d+\.\d+)$")


def parse_version(text: str) -> Version | None:
    match = _VERSION_RE.search(text)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def parse_version_ranges(text: str) -> list[tuple[Version, Version]]:
    """``" - 7.7.99, 8.1.0 - "`` -> inclusive (low, high) pairs; ``all`` covers every version."""
    text = str(text).strip()
    if text == "all":
        return [((0, 0, 0), (10**6, 0, 0))]
    ranges = []
    for chunk in text.split(","):
        if "-" not in chunk:
            raise ValueError(f"version range [{chunk.strip()}] has no '-'")
        low_text, high_text = chunk.split("-", 1)
        low = parse_version(low_text) if low_text.strip() else (0, 0, 0)
        high = parse_version(high_text) if high_text.strip() else (10**6, 0, 0)
        if low is None or high is None:
            raise ValueError(f"cannot read version range [{chunk.strip()}]")
        ranges.append((low, high))
    return ranges


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


class Cluster:
    """Facts about the target, each read once."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._info: dict[str, Any] | None = None
        self._features: set[str] | None = None
        self._features_read = False
        self._features_note = ""
        self._capabilities: dict[str, tuple[bool | None, str]] = {}
        self._os: list[str] | None = None
        self._os_read = False
        self._xpack: bool | None = None

    # --- version -------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        if self._info is None:
            status, body = self.transport.get_json("/")
            if status != 200 or not isinstance(body, dict):
                raise TransportError(f"GET / answered {status}: {str(body)[:200]}")
            self._info = body
        return self._info

    @property
    def version_text(self) -> str:
        return str(self.info().get("version", {}).get("number", "0.0.0"))

    @property
    def version(self) -> Version:
        return parse_version(self.version_text) or (0, 0, 0)

    # --- cluster features ------------------------------------------------------------------------
    def state_features(self) -> set[str] | None:
        """Features every node reports in the cluster state, or None when the target does not say."""
        if not self._features_read:
            self._features_read = True
            try:
                status, body = self.transport.get_json("/_cluster/state", [("filter_path", "nodes_features")])
            except TransportError as exc:
                status, body = 0, str(exc)
            nodes = body.get("nodes_features") if isinstance(body, dict) else None
            if status == 200 and isinstance(nodes, list) and nodes:
                sets = [set(node.get("features") or []) for node in nodes if isinstance(node, dict)]
                self._features = set.intersection(*sets) if sets else set()
            else:
                self._features_note = f"GET /_cluster/state?filter_path=nodes_features answered {status}"
        return self._features

    @property
    def features_note(self) -> str:
        return self._features_note

    def has_feature(self, name: str) -> bool | None:
        """True/False, or None when it cannot be told."""
        gte = _GTE_FEATURE.match(name)
        if gte:
            wanted = parse_version(gte.group(1))
            return wanted is not None and self.version >= wanted
        features = self.state_features()
        if features is not None and name in features:
            return True
        if name in HISTORICAL_FEATURES:
            return self.version >= HISTORICAL_FEATURES[name]
        if features is not None:
            return False
        return None

    # --- capabilities --------------------------------------------------------------------------
    def has_capabilities(self, spec: dict[str, Any]) -> tuple[bool | None, str]:
        """Whether the target reports all the capabilities (True/False/None unknown), and how it said so."""
        query = [
            ("method", str(spec.get("method", "GET")).upper()),
            ("path", str(spec.get("path", "/"))),
        ]
        if spec.get("parameters"):
            query.append(("parameters", encode_query_value(_as_list(spec["parameters"]))))
        if spec.get("capabilities"):
            query.append(("capabilities", encode_query_value(_as_list(spec["capabilities"]))))
        key = repr(query)
        if key not in self._capabilities:
            try:
                status, body = self.transport.get_json("/_capabilities", query)
            except TransportError:
                status, body = 0, None
            supported = body.get("supported") if status == 200 and isinstance(body, dict) else None
            note = "" if status == 200 else f"GET /_capabilities answered {status or 'nothing'}"
            self._capabilities[key] = (supported if isinstance(supported, bool) else None, note)
        return self._capabilities[key]

    # --- nodes ---------------------------------------------------------------------------------
    def os_names(self) -> list[str] | None:
        if not self._os_read:
            self._os_read = True
            try:
                status, body = self.transport.get_json("/_nodes/os")
            except TransportError:
                status, body = 0, None
            if status == 200 and isinstance(body, dict) and isinstance(body.get("nodes"), dict):
                names = []
                for node in body["nodes"].values():
                    os_info = node.get("os", {}) if isinstance(node, dict) else {}
                    names.append(str(os_info.get("pretty_name") or os_info.get("name") or ""))
                self._os = names
        return self._os

    def has_xpack(self) -> bool:
        if self._xpack is None:
            try:
                status, _ = self.transport.get_json("/_xpack")
            except TransportError:
                status = 0
            self._xpack = status == 200
        return self._xpack


def _with_reason(text: str, payload: dict[str, Any]) -> str:
    reason = payload.get("reason")
    return f"{text}: {reason}" if reason else text


def _runner_feature_gap(features: Iterable[Any], cluster: Cluster) -> str | None:
    for feature in features:
        name = str(feature)
        if name in SUPPORTED_RUNNER_FEATURES:
            continue
        if name == "xpack" and cluster.has_xpack():
            continue
        if name == "no_xpack" and not cluster.has_xpack():
            continue
        if name in CONDITIONAL_RUNNER_FEATURES:
            return f"requires runner feature [{name}], which does not hold for the target"
        return f"requires runner feature [{name}], which this runner does not support"
    return None


def _capability_text(spec: dict[str, Any]) -> str:
    caps = ", ".join(str(c) for c in _as_list(spec.get("capabilities")))
    params = _as_list(spec.get("parameters"))
    extra = f" parameters [{', '.join(map(str, params))}]" if params else ""
    return f"{str(spec.get('method', 'GET')).upper()} {spec.get('path', '/')} [{caps}]{extra}"


def check_requires(payload: Any, cluster: Cluster) -> str | None:
    """The skip reason when a ``requires`` does not hold, else None."""
    if not isinstance(payload, dict):
        return f"malformed requires section: {payload!r}"
    gap = _runner_feature_gap(_as_list(payload.get("test_runner_features")), cluster)
    if gap:
        return _with_reason(gap, payload)
    for feature in _as_list(payload.get("cluster_features")):
        has = cluster.has_feature(str(feature))
        if has is False:
            return _with_reason(f"requires cluster feature [{feature}], which the target lacks", payload)
        if has is None:
            note = cluster.features_note or "no cluster features reported"
            return _with_reason(
                f"requires cluster feature [{feature}], which cannot be verified ({note})", payload
            )
    for spec in _as_list(payload.get("capabilities")):
        if not isinstance(spec, dict):
            return f"malformed capabilities requirement: {spec!r}"
        supported, note = cluster.has_capabilities(spec)
        if supported is not True:
            how = (
                "the target does not support"
                if supported is False
                else f"cannot be verified ({note or 'unknown'})"
            )
            return _with_reason(f"requires capability {_capability_text(spec)}, which {how}", payload)
    return None


def check_skip(payload: Any, cluster: Cluster) -> str | None:
    """The skip reason when a ``skip`` applies, else None."""
    if not isinstance(payload, dict):
        return f"malformed skip section: {payload!r}"
    gap = _runner_feature_gap(_as_list(payload.get("features")), cluster)
    if gap:
        return _with_reason(gap, payload)
    if payload.get("awaits_fix"):
        return _with_reason(f"muted upstream, awaits fix [{payload['awaits_fix']}]", payload)
    if "version" in payload:
        text = str(payload["version"])
        if text.strip() == "all":
            return _with_reason("muted upstream (skip version: all)", payload)
        try:
            ranges = parse_version_ranges(text)
        except ValueError as exc:
            return f"malformed skip version: {exc}"
        if any(low <= cluster.version <= high for low, high in ranges):
            return _with_reason(
                f"skip version [{text.strip()}] covers the target's {cluster.version_text}", payload
            )
    for feature in _as_list(payload.get("cluster_features")):
        has = cluster.has_feature(str(feature))
        if has is True:
            return _with_reason(f"skipped on cluster feature [{feature}], which the target has", payload)
        if has is None:
            return _with_reason(f"skip on cluster feature [{feature}], which cannot be verified", payload)
    for issue in _as_list(payload.get("known_issues")):
        if not isinstance(issue, dict):
            return f"malformed known_issues entry: {issue!r}"
        introduced, fixed = str(issue.get("cluster_feature")), str(issue.get("fixed_by"))
        has_issue, has_fix = cluster.has_feature(introduced), cluster.has_feature(fixed)
        if has_issue is None or has_fix is None:
            return _with_reason(f"known issue [{introduced}] fixed by [{fixed}] cannot be verified", payload)
        if has_issue and not has_fix:
            return _with_reason(f"known issue [{introduced}], not fixed by [{fixed}] on the target", payload)
    for spec in _as_list(payload.get("capabilities")):
        if isinstance(spec, dict) and cluster.has_capabilities(spec)[0] is True:
            return _with_reason(
                f"skipped on capability {_capability_text(spec)}, which the target has", payload
            )
    if payload.get("os"):
        names = cluster.os_names() or []
        for wanted in _as_list(payload["os"]):
            if str(wanted) in names:
                return _with_reason(f"skipped on operating system [{wanted}]", payload)
    return None


def check_prerequisites(steps: Iterable[Step], cluster: Cluster) -> str | None:
    for step in steps:
        reason = (
            check_requires(step.payload, cluster)
            if step.kind == "requires"
            else check_skip(step.payload, cluster)
        )
        if reason:
            return reason
    return None


def check_file_requires(requires: dict[str, Any] | None) -> str | None:
    """The clients-tests file-level ``requires: {stack, serverless, feature_flag}``."""
    if not requires:
        return None
    if requires.get("stack") is False:
        return "file requires stack: false (a serverless-only test)"
    if requires.get("feature_flag"):
        return f"file requires feature flag [{requires['feature_flag']}], which cannot be verified"
    return None
