"""Running YAML REST tests against a cluster: one test = setup, test steps, teardown, wipe."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.conformance.assertions import (
    Stash,
    StepFailure,
    compare,
    contains,
    evaluate,
    first_difference,
    is_number,
    is_regex,
    java_str,
    match_regex,
    short,
    truthy,
)
from tests.conformance.cluster import (
    Cluster,
    check_file_requires,
    check_prerequisites,
    check_requires,
    check_skip,
    parse_version_ranges,
)
from tests.conformance.spec import ParamError, PreparedRequest, SpecRegistry, UnknownApi
from tests.conformance.suite import Section, Step, TestFile
from tests.conformance.transport import (
    HttpResponse,
    Transport,
    TransportError,
    parse_warning_headers,
    vendor_type,
)
from tests.conformance.wipe import Wiper

CATCHES = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "missing": 404,
    "request_timeout": 408,
    "conflict": 409,
    "unavailable": 503,
}
# ``catch: request`` is any error status other than the named client errors (as in the Java runner).
REQUEST_EXCLUDED = frozenset({400, 401, 403, 404, 408, 409})
DO_KEYS = frozenset(
    {
        "catch",
        "headers",
        "warnings",
        "warnings_regex",
        "allowed_warnings",
        "allowed_warnings_regex",
        "node_selector",
    }
)
# Elastic's tests authenticate setup calls as the test cluster's superuser; the runner's own
# credentials play that role, as in the official clients' runners.
TEST_SUPERUSER_AUTH = "Basic eF9wYWNrX3Jlc3RfdXNlcjp4LXBhY2stdGVzdC1wYXNzd29yZA=="
LEGACY_TEMPLATE_WARNING = "Legacy index templates are deprecated in favor of composable templates."
BASE64_CREDENTIALS = re.compile(r"^#base64EncodeCredentials\(([^,]+),([^)]+)\)$")


class SkipTest(Exception):
    """The test cannot run here; the message is why."""


@dataclass
class Exchange:
    """One request and its response, kept for ``--verbose`` output of failures."""

    api: str
    method: str
    url: str
    request_headers: dict[str, str]
    request_body: bytes | None
    status: int | None
    response_headers: list[tuple[str, str]]
    response_body: bytes

    def render(self, limit: int = 2000) -> str:
        def cut(data: bytes | None) -> str:
            if not data:
                return ""
            text = data.decode("utf-8", errors="replace")
            return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"

        headers = {
            k: ("<redacted>" if k.lower() == "authorization" else v) for k, v in self.request_headers.items()
        }
        lines = [f"> {self.method} {self.url}   [{self.api}]"]
        lines += [f"> {k}: {v}" for k, v in headers.items()]
        if self.request_body:
            lines.append("> " + cut(self.request_body).replace("\n", "\n> "))
        lines.append(f"< {self.status if self.status is not None else 'no response'}")
        lines += [f"< {k}: {v}" for k, v in self.response_headers if k in ("content-type", "warning")]
        if self.response_body:
            lines.append("< " + cut(self.response_body).replace("\n", "\n< "))
        return "\n".join(lines)


@dataclass
class TestResult:
    __test__ = False  # not a pytest test class
    file: str
    test: str
    outcome: str  # "pass", "fail" or "skip"
    message: str = ""
    duration_s: float = 0.0
    exchanges: list[Exchange] = field(default_factory=list)
    wipe_problems: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.file}::{self.test}"

    def line(self) -> str:
        label = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}[self.outcome]
        return f"{label} {self.id}" + (f": {self.message}" if self.message and self.outcome != "pass" else "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "test": self.test,
            "outcome": self.outcome,
            "message": self.message,
            "duration_s": round(self.duration_s, 3),
        }


@dataclass
class Context:
    """State of one running test: the stash and the last response."""

    stash: Stash = field(default_factory=Stash)
    response: HttpResponse | None = None
    parsed: bool = False
    body: Any = None
    exchanges: list[Exchange] = field(default_factory=list)

    def set_response(self, response: HttpResponse | None) -> None:
        self.response = response
        if response is None:
            self.parsed, self.body = False, None
        else:
            self.parsed, self.body = response.parsed()
        self.stash.body = self.body

    def actual(self, path: Any) -> Any:
        """The value a path in an assertion names: a stashed value, or a path in the response."""
        path = "" if path is None else str(path)
        if path.startswith("$") and not path.startswith("${"):
            return self.stash.lookup(path)
        if self.response is None:
            return None
        if not self.parsed:
            if path == "" and self.response.method == "HEAD":
                return self.response.status < 400  # exists APIs: true on 200, false on 404
            return None
        return evaluate(self.body, path, self.stash)


def _cut(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error_summary(response: HttpResponse) -> str:
    ok, body = response.parsed()
    if ok and isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return _cut(f"{error.get('type')}: {error.get('reason')}")
    if ok and isinstance(body, dict) and "error" in body:
        return _cut(java_str(body["error"]))
    return _cut(response.text) if response.raw else "(no body)"


def _instant(value: Any) -> datetime:
    moment = datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


class Runner:
    """Runs test files against one cluster, wiping it between tests."""

    def __init__(
        self,
        transport: Transport,
        registry: SpecRegistry,
        *,
        wipe: bool = True,
        compat: int | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.transport = transport
        self.registry = registry
        self.cluster = Cluster(transport)
        self.wipe_enabled = wipe
        self._compat = compat
        self.log = log or (lambda _message: None)
        self._wiped_once = False
        self._missing_apis: set[str] = set()
        self._handlers: dict[str, Callable[[Context, Any], None]] = {
            "do": self._do,
            "match": self._match,
            "length": self._length,
            "is_true": self._is_true,
            "is_false": self._is_false,
            "gt": self._ordered(">", lambda c: c > 0),
            "gte": self._ordered(">=", lambda c: c >= 0),
            "lt": self._ordered("<", lambda c: c < 0),
            "lte": self._ordered("<=", lambda c: c <= 0),
            "set": self._set,
            "transform_and_set": self._transform_and_set,
            "contains": self._contains,
            "close_to": self._close_to,
            "exists": self._exists,
            "not_exists": self._not_exists,
            "is_after": self._is_after,
            "skip": self._inline_skip,
            "requires": self._inline_requires,
        }

    @property
    def compat(self) -> int:
        if self._compat is None:
            self._compat = self.cluster.version[0] or 9
        return self._compat

    # --- running -------------------------------------------------------------------------------
    def run(
        self, files: Iterable[TestFile], selected: Callable[[str], bool] = lambda _id: True
    ) -> Iterator[TestResult]:
        for test_file in files:
            if test_file.error:
                result = TestResult(test_file.display, "(file)", "fail", test_file.error)
                if selected(result.id):
                    yield result
                continue
            for test in test_file.tests:
                if selected(f"{test_file.display}::{test.name}"):
                    yield self.run_test(test_file, test)

    @property
    def wipe_missing_apis(self) -> list[str]:
        """Listing calls of the wipe that the target does not have (so those resources are not wiped)."""
        return sorted(self._missing_apis)

    def wipe(self) -> list[str]:
        return Wiper(self.transport, self.log, self._missing_apis).wipe()

    def run_test(self, test_file: TestFile, test: Section) -> TestResult:
        started = time.monotonic()
        result = TestResult(test_file.display, test.name, "pass")
        try:
            reason = check_file_requires(test_file.file_requires)
            for section in (test_file.setup, test_file.teardown, test):
                if reason is None and section is not None:
                    reason = check_prerequisites(section.prerequisites, self.cluster)
        except TransportError as exc:
            result.outcome, result.message = "fail", f"cannot read the target's version or features: {exc}"
            return result
        if reason:
            result.outcome, result.message = "skip", reason
            result.duration_s = time.monotonic() - started
            return result

        if self.wipe_enabled and not self._wiped_once:
            self._wiped_once = True
            self.wipe()
        context = Context()
        phase = "setup: "
        try:
            if test_file.setup is not None:
                self._run_steps(test_file.setup.steps, context)
            phase = ""
            self._run_steps(test.steps, context)
        except StepFailure as exc:
            result.outcome, result.message = "fail", f"{phase}{exc}"
        except SkipTest as exc:
            result.outcome, result.message = "skip", f"{phase}{exc}"
        except TransportError as exc:
            result.outcome, result.message = "fail", f"{phase}no response: {exc}"
        if test_file.teardown is not None:
            try:
                self._run_steps(test_file.teardown.steps, context)
            except (StepFailure, SkipTest, TransportError) as exc:
                if result.outcome == "pass":
                    result.outcome, result.message = "fail", f"teardown: {exc}"
        if self.wipe_enabled:
            try:
                result.wipe_problems = self.wipe()
            except TransportError as exc:
                result.wipe_problems = [str(exc)]
        result.exchanges = context.exchanges
        result.duration_s = time.monotonic() - started
        return result

    def _run_steps(self, steps: list[Step], context: Context) -> None:
        for step in steps:
            handler = self._handlers.get(step.kind)
            if handler is None:
                raise StepFailure(f"unsupported step [{step.kind}]")
            handler(context, step.payload)

    # --- prerequisites in the middle of a section ----------------------------------------------
    def _inline_skip(self, context: Context, payload: Any) -> None:
        reason = check_skip(payload, self.cluster)
        if reason:
            raise SkipTest(reason)

    def _inline_requires(self, context: Context, payload: Any) -> None:
        reason = check_requires(payload, self.cluster)
        if reason:
            raise SkipTest(reason)

    # --- do ------------------------------------------------------------------------------------
    def _do(self, context: Context, payload: Any) -> None:
        if not isinstance(payload, dict):
            raise StepFailure(f"do: expected a mapping, got {short(payload)}")
        api_items = [(k, v) for k, v in payload.items() if k not in DO_KEYS]
        if len(api_items) != 1:
            raise StepFailure(f"do: expected exactly one API call, got {[k for k, _ in api_items]}")
        api, raw_args = api_items[0]
        catch = payload.get("catch")
        catch = None if catch is None else str(catch)
        args = context.stash.resolve(dict(raw_args or {}))
        headers = {
            str(k): java_str(v) for k, v in context.stash.resolve(payload.get("headers") or {}).items()
        }
        self._check_node_selector(payload.get("node_selector"))

        try:
            ignore = {int(code) for code in _as_list(args.get("ignore"))}
        except (TypeError, ValueError) as exc:
            raise StepFailure(
                f"[{api}]: ignore must list status codes, got {short(args.get('ignore'))}"
            ) from exc
        try:
            prepared = self.registry.build(api, args)
        except ParamError as exc:
            if catch == "param":
                context.set_response(None)
                return
            raise StepFailure(f"[{api}]: {exc}") from exc
        except UnknownApi as exc:
            raise StepFailure(str(exc)) from exc
        if catch == "param":
            # As the Java runner: a parameter error is the client's to raise; nothing is sent.
            context.set_response(None)
            return

        response = self._send(context, prepared, headers)
        context.set_response(response)
        status = response.status
        is_error = (
            status >= 400 and not (response.method == "HEAD" and status == 404) and status not in ignore
        )
        if catch:
            self._check_catch(api, catch, response, is_error, context)
            return
        if is_error:
            raise StepFailure(
                f"[{api}] {prepared.method} {prepared.path} returned {status}: {_error_summary(response)}"
            )
        self._check_warnings(api, payload, response)

    def _send(
        self, context: Context, prepared: PreparedRequest, step_headers: dict[str, str]
    ) -> HttpResponse:
        headers = self._media_headers(prepared, step_headers)
        for name, value in step_headers.items():
            if name.lower() == "authorization" and value == TEST_SUPERUSER_AUTH:
                continue
            for existing in [k for k in headers if k.lower() == name.lower()]:
                del headers[existing]
            headers[name] = value
        url = self.transport.url_for(prepared.path, prepared.query)
        try:
            response = self.transport.request(
                prepared.method, prepared.path, query=prepared.query, body=prepared.body, headers=headers
            )
        except TransportError:
            context.exchanges.append(
                Exchange(prepared.api, prepared.method, url, headers, prepared.body, None, [], b"")
            )
            raise
        context.exchanges.append(
            Exchange(
                prepared.api,
                prepared.method,
                url,
                response.request_headers,
                prepared.body,
                response.status,
                response.headers,
                response.raw,
            )
        )
        return response

    def _media_headers(self, prepared: PreparedRequest, step_headers: dict[str, str]) -> dict[str, str]:
        """Default ``Accept``/``Content-Type``: compatible-with vendor types, unless the step sets one.

        Elasticsearch requires both headers to ask for the same compatible version, or neither; so
        when a step sets one of them (plain ``application/json``, or ``compatible-with=8``), the
        other follows it.
        """
        given = {name.lower(): value for name, value in step_headers.items()}
        chosen = given.get("content-type") or given.get("accept")
        compat: int | None = self.compat
        if chosen is not None:
            found = re.search(r"compatible-with=(\d+)", chosen)
            compat = int(found.group(1)) if found else None

        def media(kind: str) -> str:
            return vendor_type(kind, compat) if compat is not None else f"application/{kind}"

        headers = {"Accept": media("json")}
        if prepared.body_kind:
            headers["Content-Type"] = media(prepared.body_kind)
        return headers

    def _check_node_selector(self, selector: Any) -> None:
        if not selector:
            return
        if not isinstance(selector, dict):
            raise StepFailure(f"node_selector: expected a mapping, got {short(selector)}")
        for name, value in selector.items():
            if name == "version":
                if str(value).strip() == "current":
                    continue
                try:
                    ranges = parse_version_ranges(str(value))
                except ValueError as exc:
                    raise StepFailure(f"node_selector: {exc}") from exc
                version = self.cluster.version
                if not any(low <= version <= high for low, high in ranges):
                    raise SkipTest(
                        f"node_selector version [{value}] selects no node of the target ({version})"
                    )
            else:
                raise SkipTest(
                    f"node_selector [{name}] needs per-node routing, which a single-URL runner cannot do"
                )

    def _check_catch(
        self, api: str, catch: str, response: HttpResponse, is_error: bool, context: Context
    ) -> None:
        status = response.status
        if catch in CATCHES:
            if status != CATCHES[catch]:
                raise StepFailure(
                    f"[{api}] expected catch [{catch}] ({CATCHES[catch]}) but got {status}: {_error_summary(response)}"
                )
            return
        if catch == "request":
            if not is_error or status in REQUEST_EXCLUDED:
                raise StepFailure(
                    f"[{api}] expected catch [request] (an error other than 400/401/403/404/408/409) "
                    f"but got {status}: {_error_summary(response)}"
                )
            return
        if is_regex(catch):
            if not is_error:
                raise StepFailure(f"[{api}] expected an error matching {catch} but got {status}")
            error = context.body.get("error") if context.parsed and isinstance(context.body, dict) else None
            if error is None:
                raise StepFailure(
                    f"[{api}] expected an error body matching {catch}; got {status}: {short(response.text)}"
                )
            if not (
                match_regex(catch, java_str(error), verbose=False)
                or match_regex(catch, json.dumps(error), verbose=False)
            ):
                raise StepFailure(f"[{api}] error {short(java_str(error), 300)} does not match {catch}")
            return
        raise StepFailure(f"unsupported catch value [{catch}]")

    def _check_warnings(self, api: str, payload: dict[str, Any], response: HttpResponse) -> None:
        messages, unparsed = parse_warning_headers(response.header_values("warning"))
        expected = [str(w) for w in _as_list(payload.get("warnings"))]
        expected_regex = [re.compile(str(p)) for p in _as_list(payload.get("warnings_regex"))]
        allowed = {str(w) for w in _as_list(payload.get("allowed_warnings"))}
        allowed_regex = [re.compile(str(p)) for p in _as_list(payload.get("allowed_warnings_regex"))]
        unexpected: list[str] = []
        for message in messages:
            if message in allowed:
                continue
            if message in expected:
                expected.remove(message)
                continue
            hit = next((p for p in expected_regex if p.fullmatch(message)), None)
            if hit is not None:
                expected_regex.remove(hit)
                continue
            if any(p.fullmatch(message) for p in allowed_regex):
                continue
            if message.endswith(LEGACY_TEMPLATE_WARNING):
                continue
            unexpected.append(message)
        problems = []
        if unexpected:
            problems.append(f"unexpected warning(s) {unexpected}")
        if unparsed:
            problems.append(f"malformed Warning header(s) {unparsed}")
        if expected:
            problems.append(f"missing expected warning(s) {expected}")
        if expected_regex:
            problems.append(f"no warning matched {[p.pattern for p in expected_regex]}")
        if problems:
            raise StepFailure(f"[{api}] " + "; ".join(problems))

    # --- assertions ----------------------------------------------------------------------------
    @staticmethod
    def _pairs(kind: str, payload: Any) -> list[tuple[Any, Any]]:
        if not isinstance(payload, dict) or not payload:
            raise StepFailure(f"{kind}: expected a mapping of path to value, got {short(payload)}")
        return list(payload.items())

    def _match(self, context: Context, payload: Any) -> None:
        for path, raw_expected in self._pairs("match", payload):
            actual = context.actual(path)
            expected = context.stash.resolve(raw_expected)
            if is_regex(expected):
                if actual is None:
                    raise StepFailure(
                        f"match [{path}]: field is missing (expected to match {expected.strip()})"
                    )
                if not match_regex(expected, actual, verbose=True):
                    raise StepFailure(
                        f"match [{path}]: {short(actual)} does not match {short(expected.strip())}"
                    )
                continue
            if expected is None:
                if actual is not None:
                    raise StepFailure(f"match [{path}]: expected null but was {short(actual)}")
                continue
            if actual is None:
                raise StepFailure(f"match [{path}]: field is missing (expected {short(expected)})")
            difference = first_difference(actual, expected)
            if difference:
                raise StepFailure(f"match [{path}]: {difference}")

    def _length(self, context: Context, payload: Any) -> None:
        for path, raw_expected in self._pairs("length", payload):
            expected = context.stash.resolve(raw_expected)
            try:
                wanted = int(expected)
            except (TypeError, ValueError) as exc:
                raise StepFailure(
                    f"length [{path}]: expected length {short(expected)} is not a number"
                ) from exc
            actual = context.actual(path)
            if not isinstance(actual, dict | list | str):
                raise StepFailure(f"length [{path}]: {short(actual)} has no length")
            if len(actual) != wanted:
                raise StepFailure(
                    f"length [{path}]: expected {wanted} but was {len(actual)}: {short(actual)}"
                )

    def _is_true(self, context: Context, payload: Any) -> None:
        actual = context.actual(payload)
        if not truthy(actual):
            raise StepFailure(f"is_true [{payload}]: was {short(actual)}")

    def _is_false(self, context: Context, payload: Any) -> None:
        actual = context.actual(payload)
        if truthy(actual):
            raise StepFailure(f"is_false [{payload}]: was {short(actual)}")

    def _ordered(self, symbol: str, holds: Callable[[int], bool]) -> Callable[[Context, Any], None]:
        def check(context: Context, payload: Any) -> None:
            for path, raw_expected in self._pairs(symbol, payload):
                expected = context.stash.resolve(raw_expected)
                actual = context.actual(path)
                if actual is None:
                    raise StepFailure(f"[{path}] {symbol} {short(expected)}: field is missing")
                if not holds(compare(actual, expected)):
                    raise StepFailure(f"[{path}] {symbol} {short(expected)}: was {short(actual)}")

        return check

    def _set(self, context: Context, payload: Any) -> None:
        for path, name in self._pairs("set", payload):
            context.stash[str(name)] = context.actual(path)

    def _transform_and_set(self, context: Context, payload: Any) -> None:
        for name, expression in self._pairs("transform_and_set", payload):
            text = str(expression)
            found = BASE64_CREDENTIALS.match(text)
            if found:
                user = java_str(context.actual(found.group(1).strip()))
                secret = java_str(context.actual(found.group(2).strip()))
                context.stash[str(name)] = base64.b64encode(f"{user}:{secret}".encode()).decode()
            else:
                context.stash[str(name)] = text  # unknown transformations stash the value as is

    def _contains(self, context: Context, payload: Any) -> None:
        for path, raw_expected in self._pairs("contains", payload):
            expected = context.stash.resolve(raw_expected)
            actual = context.actual(path)
            if not contains(actual, expected):
                raise StepFailure(f"contains [{path}]: {short(actual)} does not contain {short(expected)}")

    def _close_to(self, context: Context, payload: Any) -> None:
        for path, raw_expected in self._pairs("close_to", payload):
            expected = context.stash.resolve(raw_expected)
            if (
                not isinstance(expected, dict)
                or not is_number(expected.get("value"))
                or not is_number(expected.get("error"))
            ):
                raise StepFailure(
                    f"close_to [{path}]: expected {{value, error}} numbers, got {short(expected)}"
                )
            actual = context.actual(path)
            if not is_number(actual):
                raise StepFailure(f"close_to [{path}]: {short(actual)} is not a number")
            if abs(float(actual) - float(expected["value"])) > float(expected["error"]):
                raise StepFailure(
                    f"close_to [{path}]: expected {expected['value']} ± {expected['error']} but was {actual}"
                )

    def _exists(self, context: Context, payload: Any) -> None:
        if context.actual(payload) is None:
            raise StepFailure(f"exists [{payload}]: field is missing")

    def _not_exists(self, context: Context, payload: Any) -> None:
        actual = context.actual(payload)
        if actual is not None:
            raise StepFailure(f"not_exists [{payload}]: the field is there ({short(actual)})")

    def _is_after(self, context: Context, payload: Any) -> None:
        for path, raw_expected in self._pairs("is_after", payload):
            expected = context.stash.resolve(raw_expected)
            actual = context.actual(path)
            try:
                actual_time, expected_time = _instant(actual), _instant(expected)
            except ValueError as exc:
                raise StepFailure(f"is_after [{path}]: {exc}") from exc
            if not actual_time > expected_time:
                raise StepFailure(f"is_after [{path}]: {actual} is not after {expected}")
