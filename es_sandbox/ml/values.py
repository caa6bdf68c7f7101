"""Elasticsearch's value conventions that the ML APIs share: ids, byte sizes, time values, errors.

Each helper reproduces the message Elasticsearch gives for the same mistake, so that a client (or a
test written against a real cluster) sees the same error from the sandbox.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from es_sandbox import http
from es_sandbox.http import ApiError

ID_LENGTH_LIMIT = 64
_VALID_ID = re.compile(r"^[a-z0-9](?:[a-z0-9_\-.]*[a-z0-9])?$")


def is_valid_id(value: str) -> bool:
    """``MlStrings.isValidId``: lowercase alphanumerics, ``-``, ``_`` and ``.``, alphanumeric at both ends."""
    return bool(_VALID_ID.match(value))


def invalid_id_message(field: str, value: str) -> str:
    return (
        f"Invalid {field}; '{value}' can contain lowercase alphanumeric (a-z and 0-9), hyphens or "
        "underscores; must start and end with alphanumeric"
    )


def too_long_message(field: str, value: str) -> str:
    return f"Invalid {field}; '{value}' cannot contain more than {ID_LENGTH_LIMIT} characters."


def validation_error(*messages: str) -> ApiError:
    """``ActionRequestValidationException``: numbered messages, each ending in ``;``."""
    body = "".join(f"{i}: {m};" for i, m in enumerate(messages, start=1))
    return ApiError(400, "action_request_validation_exception", f"Validation Failed: {body}")


def status_error(status: int, reason: str, **extra: Any) -> ApiError:
    """``ElasticsearchStatusException``, the generic typed error of the ML plugin."""
    return ApiError(status, "status_exception", reason, **extra)


def missing_model(model_id: str) -> ApiError:
    return ApiError(404, "resource_not_found_exception", f"Could not find trained model [{model_id}]")


def missing_deployment(deployment_id: str) -> ApiError:
    return ApiError(
        404, "resource_not_found_exception", f"No known model deployment with id [{deployment_id}]"
    )


def license_error(feature: str) -> ApiError:
    """``LicenseUtils.newComplianceException``: 403 with the expired feature named in the error."""
    return ApiError(
        403,
        "security_exception",
        f"current license is non-compliant for [{feature}]",
        **{"license.expired.feature": feature},
    )


def parse_error(parser: str, reason: str) -> ApiError:
    """An x-content parse failure (wrong type, bad value) as ObjectParser words it."""
    return ApiError(400, "x_content_parse_exception", f"[{parser}] {reason}")


def reject_unknown(parser: str, body: dict[str, Any], known: set[str] | frozenset[str]) -> None:
    """ObjectParser's strictness: the first unknown key fails, with a did-you-mean suggestion."""
    for key in body:
        if key not in known:
            raise http.unknown_field(parser, key, known)


def expect_type(parser: str, field: str, value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    """Reject a value of the wrong JSON type the way ObjectParser does; bools are not numbers here."""
    ok = isinstance(value, kind) and not (isinstance(value, bool) and bool not in _as_tuple(kind))
    if not ok:
        raise parse_error(parser, f"[{field}] failed to parse field [{field}]: expected {what}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


# ---------------------------------------------------------------------------------------------
# Byte sizes (ByteSizeValue)

_UNITS: dict[str, tuple[int, str]] = {
    "b": (1, "b"),
    "k": (1024, "kb"),
    "kb": (1024, "kb"),
    "m": (1024**2, "mb"),
    "mb": (1024**2, "mb"),
    "g": (1024**3, "gb"),
    "gb": (1024**3, "gb"),
    "t": (1024**4, "tb"),
    "tb": (1024**4, "tb"),
    "p": (1024**5, "pb"),
    "pb": (1024**5, "pb"),
}
_SIZE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


@dataclass(frozen=True)
class ByteSize:
    """A parsed size that remembers how it was written, as ``ByteSizeValue`` does."""

    bytes: int
    rep: str  # getStringRep(): "10kb", "0", "1630b"

    @classmethod
    def of_bytes(cls, n: int) -> ByteSize:
        return cls(n, str(n) if n <= 0 else f"{n}b")

    @classmethod
    def parse(cls, setting: str, value: Any) -> ByteSize:
        text = str(value)
        if text in ("0", "-1"):
            return cls(int(text), text)
        m = _SIZE.match(text)
        unit = m.group(2).lower() if m else ""
        if not m or unit not in _UNITS:
            raise ApiError(
                400,
                "parse_exception",
                f"failed to parse setting [{setting}] with value [{text}] as a size in bytes: "
                "unit is missing or unrecognized",
            )
        number = float(m.group(1))
        factor, suffix = _UNITS[unit]
        shown = m.group(1)
        return cls(int(number * factor), shown if number <= 0 else f"{shown}{suffix}")


def human_bytes(n: int) -> str:
    """``ByteSizeValue.toString()``: the largest unit, one decimal truncated, ".0" dropped."""
    for factor, suffix in ((1024**5, "pb"), (1024**4, "tb"), (1024**3, "gb"), (1024**2, "mb"), (1024, "kb")):
        if n >= factor:
            return _one_decimal(n / factor, suffix)
    return _one_decimal(float(n), "b")


def _one_decimal(value: float, suffix: str) -> str:
    text = repr(value)
    if "e" in text or "E" in text:
        return f"{value:.1f}{suffix}"
    whole, _, frac = text.partition(".")
    digit = frac[:1] or "0"
    return f"{whole}{suffix}" if digit == "0" else f"{whole}.{digit}{suffix}"


# ---------------------------------------------------------------------------------------------
# Time values (TimeValue)

_TIME = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(nanos|micros|ms|s|m|h|d)\s*$")
_TIME_FACTORS = {"nanos": 1e-9, "micros": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_time(setting: str, value: Any) -> float:
    """Seconds from an Elasticsearch time value (``30s``, ``10m``, ``-1``)."""
    text = str(value)
    if text in ("-1", "0"):
        return float(text)
    m = _TIME.match(text)
    if not m:
        raise ApiError(
            400,
            "illegal_argument_exception",
            f"failed to parse setting [{setting}] with value [{text}] as a time value: unit is missing or unrecognized",
        )
    return float(m.group(1)) * _TIME_FACTORS[m.group(2)]


def parse_int(setting: str, value: Any) -> int:
    """An integer query parameter; Elasticsearch answers a non-number with a number format error."""
    if isinstance(value, bool):
        raise bad_int(setting, value)
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        raise bad_int(setting, value) from None


def bad_int(setting: str, value: Any) -> ApiError:
    return ApiError(
        400, "illegal_argument_exception", f"Failed to parse int parameter [{setting}] with value [{value}]"
    )


def parse_bool(setting: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value)
    if text in ("", "true"):
        return True
    if text == "false":
        return False
    raise ApiError(
        400,
        "illegal_argument_exception",
        f"Failed to parse value [{text}] as only [true] or [false] are allowed.",
    )
