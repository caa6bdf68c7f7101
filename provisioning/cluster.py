"""The one place an Elasticsearch client is built, and where its errors become ours.

Connection settings come from three places, most specific first: command-line options, the
ES_* environment variables, the stack's ``cluster`` section. Secrets are kept out of every
message this module produces (``redact``), because CI logs are public more often than not.

Errors become one line each: a refusal says the status and Elasticsearch's reason
(:func:`error_reason`); a cluster that cannot be reached says the URL and the cause in words
(:func:`unreachable_cause`: "connection refused", "TLS certificate not trusted", "name or service
not known", "timed out"), never the nested exception text of the transport layers.
"""

from __future__ import annotations

import errno
import http.client
import logging
import os
import re
import socket
import ssl
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import elastic_transport
from elasticsearch import ApiError, Elasticsearch, TransportError, UnsupportedProductError

from provisioning.errors import ProvisionError
from provisioning.es_versions import check_supported
from provisioning.stackfile.schema import ClusterSpec
from provisioning.stackfile.stack import Stack

log = logging.getLogger("provisioning.cluster")

RETRY_ON_STATUS = (429, 502, 503, 504)


class ClusterError(ProvisionError):
    """Elasticsearch refused a request or could not be reached; the message says which and why."""

    def __init__(self, message: str, *, status: int | None = None, error_type: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type


@dataclass(frozen=True)
class ConnectionOptions:
    url: str = "http://localhost:9200"
    api_key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_certs: str | None = None
    verify_certs: bool = True
    request_timeout: float = 30.0
    max_retries: int = 3
    retry_backoff_base: float = 0.5
    retry_backoff_cap: float = 10.0

    @property
    def secrets(self) -> list[str]:
        return [s for s in (self.api_key, self.password) if s]

    @classmethod
    def resolve(
        cls,
        spec: ClusterSpec | None,
        env: Mapping[str, str] | None = None,
        **cli: Any,
    ) -> ConnectionOptions:
        """Command line beats environment beats the stack file."""
        env = os.environ if env is None else env
        opts = cls()
        if spec is not None:
            opts = replace(
                opts,
                url=spec.url,
                api_key=spec.api_key.get_secret_value() if spec.api_key else None,
                username=spec.username,
                password=spec.password.get_secret_value() if spec.password else None,
                ca_certs=spec.ca_certs,
                verify_certs=spec.verify_certs,
                request_timeout=spec.request_timeout,
                max_retries=spec.max_retries,
            )
        from_env: dict[str, Any] = {
            "url": env.get("ES_URL"),
            "api_key": env.get("ES_API_KEY"),
            "username": env.get("ES_USERNAME"),
            "password": env.get("ES_PASSWORD"),
            "ca_certs": env.get("ES_CA_CERTS"),
        }
        opts = replace(opts, **{k: v for k, v in from_env.items() if v})
        given: dict[str, Any] = {
            k: v for k, v in cli.items() if v is not None and k in cls.__dataclass_fields__
        }
        opts = replace(opts, **given)
        if cli.get("insecure"):
            opts = replace(opts, verify_certs=False)
        return opts


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (and URL credentials) replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return re.sub(r"(https?://)[^/@\s:]+:[^/@\s]+@", r"\1***:***@", text)


def build_client(options: ConnectionOptions) -> Elasticsearch:
    """A client with retries and backoff on 429/502/503/504 and on timeouts."""
    if not options.verify_certs and options.url.startswith("https"):
        log.warning("TLS certificate verification is disabled (--insecure); do not do this in production")
        warnings.filterwarnings("ignore", message=".*verify_certs=False.*")
    if options.api_key and options.username:
        raise ProvisionError(
            "both an API key and a username are configured (from the stack, ES_* variables or options); "
            "Elasticsearch takes one kind of credentials: remove one"
        )
    basic = (options.username, options.password or "") if options.username else None
    extra: dict[str, Any] = {"ca_certs": options.ca_certs} if options.ca_certs else {}
    return Elasticsearch(
        options.url,
        api_key=options.api_key,
        basic_auth=basic,
        **extra,
        verify_certs=options.verify_certs,
        ssl_show_warn=options.verify_certs,
        request_timeout=options.request_timeout,
        max_retries=options.max_retries,
        retry_on_status=RETRY_ON_STATUS,
        retry_on_timeout=True,
        retry_backoff_base=options.retry_backoff_base,
        retry_backoff_cap=options.retry_backoff_cap,
    )


def error_reason(body: object) -> tuple[str | None, str]:
    """``(type, reason)`` of an Elasticsearch error body, the reason with its cause appended.

    The one place an error response becomes words: every message the library builds from a refusal
    (a resource write, a search, a bulk request) goes through here.
    """
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            kind = error.get("type")
            reason = str(error.get("reason", ""))
            cause = error.get("caused_by")
            if isinstance(cause, dict) and cause.get("reason") and cause.get("reason") != reason:
                reason = f"{reason} (caused by {cause.get('type')}: {cause.get('reason')})"
            return (str(kind) if kind else None), reason
        if isinstance(error, str):
            return None, error
    return None, str(body)[:500]


def error_text(exc: ApiError) -> str:
    """``type: reason`` of a refused request (:func:`error_reason`), for one-line messages."""
    kind, reason = error_reason(exc.body)
    return f"{kind}: {reason}" if kind else reason or str(exc.message)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception behind it (causes, contexts, retried attempts), outermost first."""
    seen: list[BaseException] = []
    pending: list[BaseException] = [exc]
    while pending and len(seen) < 50:
        current = pending.pop(0)
        if any(current is known for known in seen):
            continue
        seen.append(current)
        behind: list[object] = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        behind += list(getattr(current, "errors", ()) or ())
        behind += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        pending += [b for b in behind if isinstance(b, BaseException)]
    return seen


_NAME_ERRORS = {socket.EAI_NONAME: "name or service not known"}
for _code, _words in (
    ("EAI_NODATA", "name or service not known"),
    ("EAI_AGAIN", "temporary failure in name resolution"),
):
    if hasattr(socket, _code):
        _NAME_ERRORS[getattr(socket, _code)] = _words
_OS_ERRORS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by the server",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "timed out",
}
_NOT_TLS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST")


def unreachable_cause(exc: BaseException, timeout: float | None = None) -> str:
    """Why a request got no HTTP answer, in words: "connection refused", "TLS certificate not
    trusted (self-signed certificate)", "name or service not known", "timed out after 30s", ...

    Looks through the transport's wrapped exceptions for the one that says what happened; falls
    back to the innermost exception's own message, on one line.
    """
    chain = _chain(exc)
    after = f" after {timeout:g}s" if timeout else ""
    for err in chain:
        if isinstance(err, ssl.SSLCertVerificationError):
            detail = err.verify_message or err.reason or "certificate verify failed"
            if "mismatch" in str(detail).lower():
                return f"TLS certificate not valid for this host name ({detail})"
            return f"TLS certificate not trusted ({detail})"
    for err in chain:
        if isinstance(err, ssl.SSLError):
            reason = str(err.reason or "")
            if reason.upper() in _NOT_TLS:
                return "TLS handshake failed: the server does not speak TLS (is the URL http://?)"
            return f"TLS handshake failed ({reason or err})"
    for err in chain:
        if isinstance(err, socket.gaierror):
            return _NAME_ERRORS.get(err.errno or 0, f"cannot resolve the host name ({err.strerror or err})")
        if isinstance(err, elastic_transport.ConnectionTimeout | TimeoutError | socket.timeout):
            return f"timed out{after}"
        if type(err).__name__ in ("ReadTimeoutError", "ConnectTimeoutError"):  # urllib3's
            return f"timed out{after}"
    for err in chain:
        if isinstance(err, http.client.RemoteDisconnected):
            return "the server closed the connection without answering"
        if isinstance(err, http.client.BadStatusLine | http.client.LineTooLong):
            return "the server did not answer in HTTP (is it Elasticsearch, and the port right?)"
        if isinstance(err, OSError) and err.errno in _OS_ERRORS:
            return _OS_ERRORS[err.errno]
    innermost = chain[-1]
    text = " ".join(str(innermost).split()) or type(innermost).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def describe_error(
    exc: Exception,
    action: str,
    secrets: Iterable[str] = (),
    *,
    url: str | None = None,
    credentials: str | None = None,
    timeout: float | None = None,
) -> ClusterError:
    """A ClusterError that says what was attempted, what Elasticsearch answered, and nothing secret.

    ``url`` (already redacted) names the cluster in messages about reaching it; ``credentials`` is
    what was sent ("the API key", "the username", None for nothing), for 401 and 403 answers.
    One line, whatever went wrong: a cluster that cannot be reached is the URL and the cause
    (:func:`unreachable_cause`), not the transport's nested exception text.
    """
    secrets = list(secrets)
    where = f"Elasticsearch at {url}" if url else "Elasticsearch"
    if isinstance(exc, UnsupportedProductError):
        return ClusterError(
            redact(
                f"{action}: the server at {url or 'the URL given'} answered, but it is not Elasticsearch",
                secrets,
            ),
            status=exc.meta.status if exc.meta else None,
        )
    if isinstance(exc, ApiError):
        kind, reason = error_reason(exc.body)
        status = exc.meta.status if exc.meta else None
        detail = f"{kind}: {reason}" if kind else reason
        if status in (401, 403):
            given = f"with {credentials} given" if credentials else "with no credentials given"
            text = f"{action}: {where} answered {status} {given}: {detail}"
            if status == 401:
                text += {
                    "the API key": " (check --api-key or ES_API_KEY)",
                    "the username": " (check --username and --password, or ES_USERNAME and ES_PASSWORD)",
                }.get(credentials or "", " (pass --api-key, or --username and --password)")
            elif kind == "security_exception" and "license" in reason:
                text += " (the cluster's license does not allow this; see cluster.license: trial)"
            return ClusterError(redact(text, secrets), status=status, error_type=kind)
        text = (
            f"{action}: Elasticsearch answered {status} {detail}"
            if kind
            else f"{action}: Elasticsearch answered {status}: {detail}"
        )
        return ClusterError(redact(text, secrets), status=status, error_type=kind)
    if isinstance(exc, TransportError):
        cause = unreachable_cause(exc, timeout)
        if cause.startswith("TLS certificate"):
            cause += "; pass --ca-certs, or --insecure for a test cluster"
        return ClusterError(redact(f"{action}: cannot reach {where}: {cause}", secrets))
    return ClusterError(redact(f"{action}: {' '.join(str(exc).split())}", secrets))


class Cluster:
    """A client plus what every command needs to know about the cluster it talks to."""

    def __init__(self, client: Elasticsearch, options: ConnectionOptions) -> None:
        self.client = client
        self.options = options
        self._version: tuple[int, int, int] | None = None
        self._info: dict[str, Any] | None = None
        self._license: str | None = None

    @classmethod
    def connect(cls, options: ConnectionOptions) -> Cluster:
        return cls(build_client(options), options)

    @property
    def url(self) -> str:
        return redact(self.options.url, self.options.secrets)

    @property
    def credentials(self) -> str | None:
        """What this connection authenticates with, as messages name it."""
        if self.options.api_key:
            return "the API key"
        if self.options.username or urlsplit(self.options.url).username:
            return "the username"
        return None

    def error(self, exc: Exception, action: str) -> ClusterError:
        """``exc`` (a refusal, or no answer at all) as one line that names this cluster's URL."""
        return describe_error(
            exc,
            action,
            self.options.secrets,
            url=self.url,
            credentials=self.credentials,
            timeout=self.options.request_timeout,
        )

    def info(self) -> dict[str, Any]:
        """``GET /``, read once per run."""
        if self._info is None:
            # Plain JSON, not the 9.x client's compatible-with=9 media type, so that a cluster of
            # another major version still says which version it is.
            plain = {"accept": "application/json", "content-type": "application/json"}
            try:
                self._info = dict(self.client.options(headers=plain).info().body)
            except (ApiError, TransportError) as exc:
                raise self.error(exc, "read the cluster's version") from None
        return self._info

    def license_type(self) -> str | None:
        """The cluster's license type (``GET _license``, read once), None when it cannot be read."""
        if self._license is None:
            try:
                body = self.client.license.get().body
            except (ApiError, TransportError):
                return None
            self._license = str((body.get("license") or {}).get("type", "basic"))
        return self._license

    def ensure_supported(self) -> tuple[int, int, int]:
        """The cluster's version (``GET /``, read once per run); raises UnsupportedVersion for one this
        tool does not speak to (anything but 9.x), before any other request."""
        version = self.version()
        check_supported(version, self.url)
        return version

    @property
    def is_sandbox(self) -> bool:
        """The provision sandbox runs models with the local torch, so version warnings do not apply."""
        return bool(self.info().get("version", {}).get("build_type") == "sandbox")

    def version(self) -> tuple[int, int, int]:
        if self._version is None:
            number = str(self.info()["version"]["number"])
            parts = [int(p) for p in re.findall(r"\d+", number)[:3]]
            while len(parts) < 3:
                parts.append(0)
            self._version = (parts[0], parts[1], parts[2])
        return self._version

    def close(self) -> None:
        self.client.close()


def connect(
    stack: Stack | None = None,
    *,
    url: str | None = None,
    api_key: str | None = None,
    username: str | None = None,
    password: str | None = None,
    ca_certs: str | None = None,
    insecure: bool | None = None,
    env: Mapping[str, str] | None = None,
) -> Cluster:
    """A :class:`Cluster` for ``stack``: its ``cluster:`` section, overridden by the ES_URL, ES_API_KEY,
    ES_USERNAME, ES_PASSWORD and ES_CA_CERTS environment variables (``env``, default
    ``os.environ``), overridden by the arguments. Nothing is sent until the first request.

    Raises ProvisionError when both an API key and a username are configured.
    """
    options = ConnectionOptions.resolve(
        stack.spec.cluster if stack is not None else None,
        env,
        url=url,
        api_key=api_key,
        username=username,
        password=password,
        ca_certs=ca_certs,
        insecure=insecure,
    )
    return Cluster.connect(options)
