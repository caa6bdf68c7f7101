"""A cluster that cannot be reached, or refuses the credentials, is one clean line: the URL and the cause.

Real failures, each through the command line (``provision plan STACK --es-url URL``): a closed
port, a TCP server that answers something other than HTTP, one that reads the request and closes,
one that never answers, an HTTPS URL whose server has a self-signed certificate (made here with the
``openssl`` command), an HTTPS URL on a plain-text port, a host name in the reserved ``.invalid``
domain, and a small HTTP server answering 401 and 403 with Elasticsearch's error bodies (the
sandbox has no security). Each must exit 1 with exactly one line on stderr, starting with
``error:``, that names the URL (credentials redacted) and the cause, and never a secret.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
API_KEY = "Vk9JZDVZVUJMeUc6c2VjcmV0LWtleS12YWx1ZQ=="
PASSWORD = "hunter2-s3cret"


def _plan(url: str, *extra: str, stack: Path = DATA / "good_stack.yaml") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for name in ("ES_URL", "ES_API_KEY", "ES_USERNAME", "ES_PASSWORD", "ES_CA_CERTS"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "provisioning", "plan", stack.name, "--es-url", url, *extra],
        cwd=stack.parent,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def _one_error_line(done: subprocess.CompletedProcess[str], url: str, cause: str) -> str:
    """The run failed with exactly one stderr line, ``error: ...``, naming ``url`` and ``cause``."""
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    (line,) = lines
    assert line.startswith("error: "), line
    assert url in line and cause in line, line
    assert "Error(" not in line and "caused by" not in line and "Traceback" not in done.stderr, line
    for secret in (API_KEY, PASSWORD):
        assert secret not in done.stderr + done.stdout
    return line


# -- servers ---------------------------------------------------------------------------------------
class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def _serve(handler: type[socketserver.BaseRequestHandler]) -> Iterator[int]:
    server = _TcpServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


class _Garbage(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.recv(65536)
        self.request.sendall(b"SSH-2.0-OpenSSH_9.6\r\nProtocol mismatch.\r\n")


class _Hangup(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.recv(65536)  # read the request, then close without a word


class _Silent(socketserver.BaseRequestHandler):
    stop = threading.Event()

    def handle(self) -> None:
        self.request.recv(65536)
        self.stop.wait(30)


def _es_error(status: int, kind: str, reason: str) -> bytes:
    return json.dumps(
        {
            "error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason},
            "status": status,
        }
    ).encode()


class _Secured(BaseHTTPRequestHandler):
    """Elasticsearch with security on: user ``viewer`` lacks privileges (403), anything else is 401."""

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization", "")
        viewer = "Basic " + base64.b64encode(f"viewer:{PASSWORD}".encode()).decode()
        if auth != viewer:
            status, body = (
                401,
                _es_error(
                    401,
                    "security_exception",
                    "unable to authenticate with provided credentials and anonymous access is not allowed "
                    "for this request",
                ),
            )
        else:
            status, body = (
                403,
                _es_error(
                    403,
                    "security_exception",
                    f"action [{self.path.split('?')[0]}] is unauthorized for user [viewer] with effective "
                    "roles [viewer], this action is granted by the cluster privileges [monitor_ml,manage_ml,all]",
                ),
            )
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.elasticsearch+json;compatible-with=9")
        self.send_header("X-elastic-product", "Elasticsearch")
        self.send_header("WWW-Authenticate", 'ApiKey, Basic realm="security", charset="UTF-8"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def secured() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Secured)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by itself, and its key, made with the openssl command."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_secured(self_signed: tuple[Path, Path]) -> Iterator[int]:
    """The secured server behind TLS with the self-signed certificate."""
    cert, key = self_signed
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Secured)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    # The handshake runs in accept(); one the client aborts (our certificate refused) is an OSError
    # that socketserver drops, as the test expects.
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the cases -------------------------------------------------------------------------------------
def test_closed_port_is_connection_refused() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    line = _one_error_line(_plan(url, "--api-key", API_KEY), url, "connection refused")
    assert (
        line == f"error: read the cluster's version: cannot reach Elasticsearch at {url}: connection refused"
    )


def test_credentials_in_the_url_are_redacted() -> None:
    port = _closed_port()
    done = _plan(f"http://elastic:{PASSWORD}@127.0.0.1:{port}")
    _one_error_line(done, f"http://***:***@127.0.0.1:{port}", "connection refused")


def test_unresolvable_host_names_the_resolver_answer() -> None:
    url = "http://elasticsearch.provision-test.invalid:9200"
    done = _plan(url)
    line = _one_error_line(done, url, "")
    # Without any DNS server the resolver may only say it could not ask.
    assert line.endswith((": name or service not known", ": temporary failure in name resolution"))


def test_a_server_that_is_not_http() -> None:
    for port in _serve(_Garbage):
        url = f"http://127.0.0.1:{port}"
        _one_error_line(_plan(url), url, "the server did not answer in HTTP")


def test_a_server_that_hangs_up() -> None:
    for port in _serve(_Hangup):
        url = f"http://127.0.0.1:{port}"
        _one_error_line(_plan(url), url, "the server closed the connection without answering")


def test_a_server_that_never_answers_times_out(tmp_path: Path) -> None:
    stack = tmp_path / "stack.yaml"
    text = (
        (DATA / "good_stack.yaml").read_text().replace("bad_stacks/support/", f"{DATA}/bad_stacks/support/")
    )
    stack.write_text(text + "cluster: {request_timeout: 1, max_retries: 0}\n")
    _Silent.stop.clear()
    try:
        for port in _serve(_Silent):
            url = f"http://127.0.0.1:{port}"
            _one_error_line(_plan(url, stack=stack), url, "timed out after 1s")
    finally:
        _Silent.stop.set()


def test_https_with_a_self_signed_certificate_is_not_trusted(
    tls_secured: int, self_signed: tuple[Path, Path]
) -> None:
    url = f"https://127.0.0.1:{tls_secured}"
    line = _one_error_line(
        _plan(url, "--api-key", API_KEY), url, "TLS certificate not trusted (self-signed certificate)"
    )
    assert line.endswith("pass --ca-certs, or --insecure for a test cluster")
    # Trusting it gets through to the server, whose answer is then the cause.
    cert, _ = self_signed
    trusted = _plan(url, "--api-key", API_KEY, "--ca-certs", str(cert))
    _one_error_line(trusted, url, "401 with the API key given")


def test_https_on_a_plain_text_port() -> None:
    for port in _serve(_Garbage):
        _one_error_line(
            _plan(f"https://127.0.0.1:{port}"), f"https://127.0.0.1:{port}", "TLS handshake failed"
        )


def test_401_says_which_credentials_were_refused(secured: ThreadingHTTPServer) -> None:
    url = f"http://127.0.0.1:{secured.server_address[1]}"
    with_key = _one_error_line(_plan(url, "--api-key", API_KEY), url, "401 with the API key given")
    assert "unable to authenticate with provided credentials" in with_key
    assert with_key.endswith("(check --api-key or ES_API_KEY)")
    with_user = _one_error_line(
        _plan(url, "--username", "elastic", "--password", PASSWORD), url, "401 with the username given"
    )
    assert with_user.endswith("(check --username and --password, or ES_USERNAME and ES_PASSWORD)")
    anonymous = _one_error_line(_plan(url), url, "401 with no credentials given")
    assert anonymous.endswith("(pass --api-key, or --username and --password)")


def test_403_names_the_user_and_the_missing_privilege(secured: ThreadingHTTPServer) -> None:
    url = f"http://127.0.0.1:{secured.server_address[1]}"
    done = _plan(url, "--username", "viewer", "--password", PASSWORD)
    line = _one_error_line(done, url, "403 with the username given")
    assert "is unauthorized for user [viewer]" in line
