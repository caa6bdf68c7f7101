"""Connection settings precedence and secret redaction."""

from __future__ import annotations

from pydantic import SecretStr

from provisioning.cluster import ConnectionOptions, redact
from provisioning.stackfile.schema import ClusterSpec


def test_command_line_beats_environment_beats_stack() -> None:
    spec = ClusterSpec(url="http://from-stack:9200", api_key=SecretStr("stack-key"), request_timeout=12)
    env = {"ES_URL": "http://from-env:9200", "ES_API_KEY": "env-key"}
    opts = ConnectionOptions.resolve(spec, env)
    assert (opts.url, opts.api_key, opts.request_timeout) == ("http://from-env:9200", "env-key", 12)
    opts = ConnectionOptions.resolve(spec, env, url="http://from-cli:9200", api_key=None, insecure=True)
    assert (opts.url, opts.api_key, opts.verify_certs) == ("http://from-cli:9200", "env-key", False)
    assert ConnectionOptions.resolve(spec, {}).url == "http://from-stack:9200"


def test_secrets_are_not_in_repr_and_are_redacted() -> None:
    opts = ConnectionOptions(url="https://elastic:pw@es:9200", api_key="k3y-s3cret", password="pw-s3cret")
    assert "k3y-s3cret" not in repr(opts) and "pw-s3cret" not in repr(opts)
    text = "failed at https://elastic:pw@es:9200 with ApiKey k3y-s3cret and pw-s3cret"
    cleaned = redact(text, opts.secrets)
    assert "k3y-s3cret" not in cleaned and "pw-s3cret" not in cleaned and "elastic:pw@" not in cleaned
