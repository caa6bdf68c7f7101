"""A plain HTTP client for the runner: sends exactly the request built from the REST spec.

The runner does not go through the official client's API methods (they validate and reshape
arguments); it sends method, path, query and body as prepared, with Elasticsearch's
compatible-with media types, and hands back status, headers and the decoded body.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

import urllib3
import yaml

JSON_TYPES = ("application/json", "application/vnd.elasticsearch+json")
YAML_TYPES = ("application/yaml", "application/vnd.elasticsearch+yaml")


class TransportError(Exception):
    """No HTTP response at all: connection refused, timeout, TLS failure."""


def vendor_type(kind: str, compat: int) -> str:
    """``application/vnd.elasticsearch+json; compatible-with=9`` and the like."""
    return f"application/vnd.elasticsearch+{kind}; compatible-with={compat}"


@dataclass
class HttpResponse:
    method: str
    url: str
    status: int
    headers: list[tuple[str, str]]  # as received, names lower-cased, repeated headers kept apart
    raw: bytes
    request_headers: dict[str, str] = field(default_factory=dict)
    request_body: bytes | None = None

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def header_values(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key == name]

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    @property
    def is_json(self) -> bool:
        return self.content_type in JSON_TYPES

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", errors="replace")

    def parsed(self) -> tuple[bool, Any]:
        """(True, value) when the body is JSON or YAML, else (False, the body as text)."""
        if not self.raw:
            return False, ""
        if self.content_type in JSON_TYPES:
            try:
                return True, json.loads(self.raw)
            except ValueError:
                return False, self.text
        if self.content_type in YAML_TYPES:
            try:
                return True, yaml.safe_load(self.raw)
            except yaml.YAMLError:
                return False, self.text
        return False, self.text


def encode_query_value(value: Any) -> str:
    """Query and path values as Elasticsearch reads them: booleans lower-case, lists comma-joined."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(encode_query_value(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    if value is None:
        return ""
    return str(value)


class Transport:
    """One target cluster: base URL, credentials, TLS and timeouts."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        ca_certs: str | None = None,
        verify_certs: bool = True,
        timeout: float = 120.0,
    ) -> None:
        split = urlsplit(url)
        if split.scheme not in ("http", "https") or not split.netloc:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.base_url = f"{split.scheme}://{split.netloc}{split.path.rstrip('/')}"
        self.auth_header: str | None = None
        if api_key:
            self.auth_header = f"ApiKey {api_key}"
        elif basic_auth:
            token = base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode()
            self.auth_header = f"Basic {token}"
        kwargs: dict[str, Any] = {"retries": False, "timeout": urllib3.Timeout(connect=10.0, read=timeout)}
        if split.scheme == "https":
            kwargs["cert_reqs"] = "CERT_REQUIRED" if verify_certs else "CERT_NONE"
            if ca_certs:
                kwargs["ca_certs"] = ca_certs
        if not verify_certs:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self._pool = urllib3.PoolManager(num_pools=2, maxsize=2, **kwargs)

    def close(self) -> None:
        self._pool.clear()

    def url_for(self, path: str, query: list[tuple[str, str]] | None = None) -> str:
        url = self.base_url + (path if path.startswith("/") else "/" + path)
        if query:
            url += "?" + urlencode(query)
        return url

    def request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """Send one request; headers given here win over the defaults (case-insensitively)."""
        merged: dict[str, str] = {}
        if self.auth_header:
            merged["Authorization"] = self.auth_header
        for name, value in (headers or {}).items():
            for existing in [k for k in merged if k.lower() == name.lower()]:
                del merged[existing]
            merged[name] = value
        url = self.url_for(path, query)
        try:
            response = self._pool.request(
                method, url, body=body, headers=merged, redirect=False, preload_content=True
            )
        except urllib3.exceptions.HTTPError as exc:
            raise TransportError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
        received = [(k.lower(), v) for k, v in response.headers.iteritems()]
        return HttpResponse(method, url, response.status, received, response.data or b"", merged, body)

    def get_json(self, path: str, query: list[tuple[str, str]] | None = None) -> tuple[int, Any]:
        """GET with plain JSON media types (for the runner's own bookkeeping calls)."""
        response = self.request("GET", path, query=query, headers={"Accept": "application/json"})
        ok, value = response.parsed()
        return response.status, value if ok else None


WARNING_RE = re.compile(r'(\d{3}) (\S+) "((?:[^"\\]|\\.)*)"(?: "[^"]*")?')


def parse_warning_headers(values: list[str]) -> tuple[list[str], list[str]]:
    """The messages of RFC 7234 ``Warning`` headers and the values that did not parse.

    Elasticsearch escapes ``"`` and ``\\`` and percent-encodes a few characters (``%`` among them) in
    the message; both are undone so messages compare with the plain text a test expects.
    """
    messages: list[str] = []
    unparsed: list[str] = []
    for value in values:
        found = list(WARNING_RE.finditer(value))
        if not found:
            unparsed.append(value)
            continue
        for match in found:
            text = re.sub(r"\\(.)", r"\1", match.group(3))
            messages.append(unquote(text) if "%" in text else text)
    return messages, unparsed
