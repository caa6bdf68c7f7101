"""The license APIs (get, post, delete, trial and basic start and status) and ``GET _xpack``.

The license decides which features X-Pack reports as available: basic by default, a 30-day trial
(or ``license="trial"`` in the config) unlocks the paid ML features as Elasticsearch's does.
"""

from __future__ import annotations

import time
from typing import Any

from es_sandbox.http import Request, Response, RouteTable, bad_request
from es_sandbox.node import BUILD_DATE, BUILD_HASH
from es_sandbox.state import SandboxState
from es_sandbox.util import new_uuid, now_millis

routes = RouteTable()

TRIAL_DAYS = 30

_PAID = ("trial", "platinum", "enterprise", "gold")


def _license_info(state: SandboxState) -> dict[str, Any]:
    info: dict[str, Any] = state.part("license", dict)
    if "uid" not in info:
        info.update(
            {
                "uid": new_uuid(),
                "issue_date_in_millis": now_millis(),
                "trial_used": state.license_type != "basic",
                "issued_to": state.config.cluster_name,
                "issuer": "elasticsearch",
            }
        )
        if state.license_type != "basic":
            info["expiry_date_in_millis"] = info["issue_date_in_millis"] + TRIAL_DAYS * 86_400_000
    return info


def _iso(millis: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis / 1000)) + f".{millis % 1000:03d}Z"


def _license_body(state: SandboxState) -> dict[str, Any]:
    info = _license_info(state)
    body: dict[str, Any] = {
        "status": "active",
        "uid": info["uid"],
        "type": state.license_type,
        "issue_date": _iso(info["issue_date_in_millis"]),
        "issue_date_in_millis": info["issue_date_in_millis"],
    }
    if state.license_type != "basic" and "expiry_date_in_millis" in info:
        expiry = info["expiry_date_in_millis"]
        body["expiry_date"] = _iso(expiry)
        body["expiry_date_in_millis"] = expiry
        if expiry < now_millis():
            body["status"] = "expired"
    body.update(
        {
            "max_nodes": 1000 if state.license_type in ("basic", "trial") else info.get("max_nodes", 1000),
            "max_resource_units": None,
            "issued_to": info["issued_to"],
            "issuer": info["issuer"],
            "start_date_in_millis": -1,
        }
    )
    return body


@routes.route("GET", "/_license", write=False, api="license.get")
def get_license(state: SandboxState, request: Request) -> dict[str, Any]:
    with state.lock:
        return {"license": _license_body(state)}


@routes.route("PUT|POST", "/_license", api="license.post")
def post_license(state: SandboxState, request: Request) -> dict[str, Any]:
    body = request.json_object(required=True)
    licenses = body.get("licenses") or ([body["license"]] if "license" in body else None)
    if not isinstance(licenses, list) or not licenses or not isinstance(licenses[0], dict):
        raise bad_request("failed to parse licenses: expected [licenses] to be an array of license objects")
    lic = licenses[0]
    for key in ("uid", "type", "issue_date_in_millis", "issued_to", "issuer", "signature"):
        if key not in lic:
            raise bad_request(f"[{key}] is required for a license")
    ltype = str(lic["type"])
    if ltype not in ("basic", *_PAID):
        raise bad_request(f"unknown license type [{ltype}]")
    expiry = int(lic.get("expiry_date_in_millis", 0))
    if expiry and expiry < now_millis():
        return {"acknowledged": True, "license_status": "expired"}
    with state.lock:
        info = _license_info(state)
        info.update(
            {
                "uid": lic["uid"],
                "issue_date_in_millis": int(lic["issue_date_in_millis"]),
                "issued_to": lic["issued_to"],
                "issuer": lic["issuer"],
                "max_nodes": lic.get("max_nodes", 1000),
            }
        )
        if expiry:
            info["expiry_date_in_millis"] = expiry
        if ltype == "trial":
            info["trial_used"] = True
        state.license_type = ltype
    return {"acknowledged": True, "license_status": "valid"}


@routes.route("DELETE", "/_license", api="license.delete")
def delete_license(state: SandboxState, request: Request) -> dict[str, Any]:
    with state.lock:
        info = _license_info(state)
        if state.license_type != "basic":
            info.update(
                {
                    "uid": new_uuid(),
                    "issue_date_in_millis": now_millis(),
                    "issued_to": state.config.cluster_name,
                    "issuer": "elasticsearch",
                }
            )
            info.pop("expiry_date_in_millis", None)
            state.license_type = "basic"
    return {"acknowledged": True}


@routes.route("GET", "/_license/trial_status", write=False, api="license.get_trial_status")
def trial_status(state: SandboxState, request: Request) -> dict[str, Any]:
    with state.lock:
        return {"eligible_to_start_trial": not _license_info(state)["trial_used"]}


@routes.route("GET", "/_license/basic_status", write=False, api="license.get_basic_status")
def basic_status(state: SandboxState, request: Request) -> dict[str, Any]:
    with state.lock:
        return {"eligible_to_start_basic": state.license_type != "basic"}


_TRIAL_ACK = (
    "This API initiates a free 30-day trial for all platinum features. By starting this trial, you agree that it "
    "is subject to the terms and conditions at https://www.elastic.co/legal/trial_license/. To begin your free "
    'trial, call /start_trial again and specify the "acknowledge=true" parameter.'
)


@routes.route("POST", "/_license/start_trial", api="license.post_start_trial")
def start_trial(state: SandboxState, request: Request) -> Response:
    acknowledge = request.flag("acknowledge")
    ltype = request.param("type", "trial") or "trial"
    if ltype not in ("trial", "platinum", "enterprise", "gold"):
        raise bad_request(f"Cannot start trial of type [{ltype}]. Valid trial types are [trial].")
    with state.lock:
        info = _license_info(state)
        if info["trial_used"]:
            return Response(
                403,
                {
                    "acknowledged": True,
                    "trial_was_started": False,
                    "error_message": "Trial was already activated.",
                },
            )
        if not acknowledge:
            return Response(
                200,
                {
                    "acknowledged": False,
                    "trial_was_started": False,
                    "error_message": "Operation failed: Needs acknowledgement.",
                    "acknowledge": {"message": _TRIAL_ACK},
                },
            )
        info.update({"uid": new_uuid(), "issue_date_in_millis": now_millis(), "trial_used": True})
        info["expiry_date_in_millis"] = info["issue_date_in_millis"] + TRIAL_DAYS * 86_400_000
        state.license_type = "trial"
    return Response(200, {"acknowledged": True, "trial_was_started": True, "type": "trial"})


@routes.route("POST", "/_license/start_basic", api="license.post_start_basic")
def start_basic(state: SandboxState, request: Request) -> Response:
    acknowledge = request.flag("acknowledge")
    with state.lock:
        if state.license_type == "basic":
            return Response(
                403,
                {
                    "acknowledged": True,
                    "basic_was_started": False,
                    "error_message": "Operation failed: Current license is basic.",
                },
            )
        if not acknowledge:
            return Response(
                200,
                {
                    "acknowledged": False,
                    "basic_was_started": False,
                    "error_message": "Operation failed: Needs acknowledgement.",
                    "acknowledge": {
                        "message": "This license update requires acknowledgement. To acknowledge the license, please "
                        "read the following messages and call /start_basic again, this time with the "
                        '"acknowledge=true" parameter:'
                    },
                },
            )
        info = _license_info(state)
        info.update({"uid": new_uuid(), "issue_date_in_millis": now_millis()})
        info.pop("expiry_date_in_millis", None)
        state.license_type = "basic"
    return Response(200, {"basic_was_started": True, "acknowledged": True})


# -- X-Pack ------------------------------------------------------------------------------------------------

_FEATURES_BASIC = (
    "aggregate_metric",
    "analytics",
    "archive",
    "data_streams",
    "data_tiers",
    "enrich",
    "eql",
    "esql",
    "frozen_indices",
    "ilm",
    "logstash",
    "rollup",
    "security",
    "slm",
    "spatial",
    "sql",
    "transform",
    "voting_only",
)

_FEATURES_PAID = (
    "ccr",
    "enterprise_search",
    "graph",
    "ml",
    "monitoring",
    "searchable_snapshots",
    "universal_profiling",
    "watcher",
)


@routes.route("GET", "/_xpack", write=False, api="xpack.info")
def xpack_info(state: SandboxState, request: Request) -> dict[str, Any]:
    categories = request.param("categories", "build,license,features") or ""
    wanted = {c.strip() for c in categories.split(",") if c.strip()}
    for category in wanted:
        if category not in ("build", "license", "features", "_none"):
            raise bad_request(f"invalid category [{category}]")
    with state.lock:
        body: dict[str, Any] = {}
        if "build" in wanted:
            body["build"] = {"hash": BUILD_HASH, "date": BUILD_DATE}
        if "license" in wanted:
            lic: dict[str, Any] = {
                "uid": _license_info(state)["uid"],
                "type": state.license_type,
                "mode": state.license_type,
                "status": "active",
            }
            if state.license_type != "basic":
                lic["expiry_date_in_millis"] = _license_info(state).get("expiry_date_in_millis")
            body["license"] = lic
        if "features" in wanted:
            paid = state.license_type in _PAID
            features = {name: {"available": True, "enabled": True} for name in _FEATURES_BASIC}
            features.update({name: {"available": paid, "enabled": True} for name in _FEATURES_PAID})
            body["features"] = dict(sorted(features.items()))
    if "features" in wanted and request.param("human", "true") != "false":
        body["tagline"] = "You know, for X"
    return body
