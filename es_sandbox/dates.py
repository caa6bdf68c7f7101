"""Date parsing the way Elasticsearch's ``date`` field does it, for the formats people use.

ES formats are Java DateTimeFormatter patterns or named formats joined by ``||``. The sandbox
supports the named formats that matter (``strict_date_optional_time``, ``date_optional_time``,
``epoch_millis``, ``epoch_second``, ``strict_date``, ``date``, ``basic_date`` ...) and the common
pattern letters (``yyyy MM dd HH mm ss SSS Z XXX EEE MMM a``), which covers mappings written for
log and image metadata. A format it cannot compile is rejected at mapping time, not silently
ignored, so a mapping that works here is one ES accepts too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

DEFAULT_FORMAT = "strict_date_optional_time||epoch_millis"

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

# ISO 8601 as ES's strict_date_optional_time reads it: date, optional time, optional zone.
_ISO = re.compile(
    r"(?P<y>[+-]?\d{4,9})(?:-(?P<M>\d{2})(?:-(?P<d>\d{2})"
    r"(?:[T ](?P<H>\d{2})(?::?(?P<m>\d{2})(?::?(?P<s>\d{2})(?:[.,](?P<f>\d{1,9}))?)?)?"
    r"(?P<z>Z|[+-]\d{2}(?::?\d{2})?)?)?)?)?"
)

Parser = Callable[[str], int]


class DateFormatError(ValueError):
    """A value that does not match the field's format."""


def _zone(text: str | None) -> timezone:
    if not text or text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours = int(digits[:2])
    minutes = int(digits[2:4]) if len(digits) > 2 else 0
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _millis(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _parse_iso(value: str, strict: bool) -> int:
    match = _ISO.fullmatch(value)
    if not match or (strict and len(match.group("y").lstrip("+-")) != 4):
        raise DateFormatError(value)
    g = match.groupdict()
    try:
        year = int(g["y"])
        frac = (g["f"] or "0").ljust(6, "0")[:6]
        dt = datetime(
            year,
            int(g["M"] or 1),
            int(g["d"] or 1),
            int(g["H"] or 0),
            int(g["m"] or 0),
            int(g["s"] or 0),
            int(frac),
            tzinfo=_zone(g["z"]),
        )
    except ValueError as exc:
        raise DateFormatError(value) from exc
    return _millis(dt)


def _epoch(scale: int) -> Parser:
    def parse(value: str) -> int:
        try:
            number = float(value)
        except ValueError as exc:
            raise DateFormatError(value) from exc
        if math.isnan(number) or math.isinf(number):
            raise DateFormatError(value)
        return int(number * scale)

    return parse


_NAMED: dict[str, Parser] = {
    "strict_date_optional_time": lambda v: _parse_iso(v, True),
    "date_optional_time": lambda v: _parse_iso(v, False),
    "strict_date_optional_time_nanos": lambda v: _parse_iso(v, True),
    "strict_date_time": lambda v: _parse_iso(v, True),
    "date_time": lambda v: _parse_iso(v, False),
    "strict_date_time_no_millis": lambda v: _parse_iso(v, True),
    "date_time_no_millis": lambda v: _parse_iso(v, False),
    "strict_date_hour_minute_second": lambda v: _parse_iso(v, True),
    "date_hour_minute_second": lambda v: _parse_iso(v, False),
    "epoch_millis": _epoch(1),
    "epoch_second": _epoch(1000),
}

_PATTERN_NAMED = {
    "strict_date": "yyyy-MM-dd",
    "date": "yyyy-MM-dd",
    "basic_date": "yyyyMMdd",
    "strict_year_month_day": "yyyy-MM-dd",
    "year_month_day": "yyyy-MM-dd",
    "strict_year_month": "yyyy-MM",
    "year_month": "yyyy-MM",
    "strict_year": "yyyy",
    "year": "yyyy",
    "basic_date_time": "yyyyMMdd'T'HHmmss.SSSZ",
    "basic_date_time_no_millis": "yyyyMMdd'T'HHmmssZ",
    "strict_hour_minute_second": "HH:mm:ss",
    "hour_minute_second": "HH:mm:ss",
}

_TOKENS: list[tuple[str, str]] = [
    ("yyyy", r"(?P<y>\d{4})"),
    ("uuuu", r"(?P<y>\d{4})"),
    ("yy", r"(?P<y2>\d{2})"),
    ("MMMM", r"(?P<Mname>[A-Za-z]+)"),
    ("MMM", r"(?P<Mname>[A-Za-z]{3})"),
    ("MM", r"(?P<M>\d{2})"),
    ("M", r"(?P<M>\d{1,2})"),
    ("dd", r"(?P<d>\d{2})"),
    ("d", r"(?P<d>\d{1,2})"),
    ("HH", r"(?P<H>\d{2})"),
    ("H", r"(?P<H>\d{1,2})"),
    ("hh", r"(?P<h>\d{2})"),
    ("h", r"(?P<h>\d{1,2})"),
    ("mm", r"(?P<m>\d{2})"),
    ("ss", r"(?P<s>\d{2})"),
    ("SSSSSSSSS", r"(?P<f>\d{9})"),
    ("SSSSSS", r"(?P<f>\d{6})"),
    ("SSS", r"(?P<f>\d{3})"),
    ("EEEE", r"(?P<E>[A-Za-z]+)"),
    ("EEE", r"(?P<E>[A-Za-z]{3})"),
    ("XXX", r"(?P<z>Z|[+-]\d{2}:\d{2})"),
    ("XX", r"(?P<z>Z|[+-]\d{4})"),
    ("X", r"(?P<z>Z|[+-]\d{2})"),
    ("ZZZZZ", r"(?P<z>Z|[+-]\d{2}:\d{2})"),
    ("Z", r"(?P<z>[+-]\d{4}|Z)"),
    ("a", r"(?P<a>AM|PM|am|pm)"),
]


def _compile_pattern(pattern: str) -> Parser:
    """A Java DateTimeFormatter pattern (common letters only) as a parser to epoch millis."""
    regex = ""
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "'":
            end = pattern.find("'", i + 1)
            if end < 0:
                raise ValueError(f"Invalid format: [{pattern}]: unterminated literal")
            regex += re.escape(pattern[i + 1 : end]) if end > i + 1 else "'"
            i = end + 1
            continue
        if char in "[]":  # optional sections: accept them as plain optional groups
            regex += "(?:" if char == "[" else ")?"
            i += 1
            continue
        for token, part in _TOKENS:
            if pattern.startswith(token, i):
                if part.split(">")[0] in regex:  # a letter used twice: back-reference free copy
                    part = re.sub(r"\?P<\w+>", "", part)
                regex += part
                i += len(token)
                break
        else:
            if char.isalpha():
                raise ValueError(f"Invalid format: [{pattern}]: Unknown pattern letter: {char}")
            regex += re.escape(char)
            i += 1
    compiled = re.compile(regex)

    def parse(value: str) -> int:
        match = compiled.fullmatch(value)
        if not match:
            raise DateFormatError(value)
        g = {k: v for k, v in match.groupdict().items() if v is not None}
        try:
            year = int(g["y"]) if "y" in g else (2000 + int(g["y2"]) if "y2" in g else 1970)
            month = _MONTHS.index(g["Mname"][:3].lower()) + 1 if "Mname" in g else int(g.get("M", 1))
            hour = int(g.get("H", g.get("h", 0)))
            if "a" in g:
                hour = hour % 12 + (12 if g["a"].lower() == "pm" else 0)
            frac = (g.get("f", "0")).ljust(6, "0")[:6]
            dt = datetime(
                year,
                month,
                int(g.get("d", 1)),
                hour,
                int(g.get("m", 0)),
                int(g.get("s", 0)),
                int(frac),
                tzinfo=_zone(_normal_zone(g.get("z"))),
            )
        except ValueError as exc:
            raise DateFormatError(value) from exc
        if "E" in g and g["E"][:3].lower() not in _DAYS:
            raise DateFormatError(value)
        return _millis(dt)

    return parse


def _normal_zone(text: str | None) -> str | None:
    if text is None or text == "Z":
        return text
    if re.fullmatch(r"[+-]\d{2}", text):
        return text + ":00"
    return text


class DateFormat:
    """A compiled ``format`` value: tries each ``||`` alternative in order, as ES does."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.parsers: list[Parser] = []
        for part in spec.split("||"):
            name = part.strip()
            if name in _NAMED:
                self.parsers.append(_NAMED[name])
            elif name in _PATTERN_NAMED:
                self.parsers.append(_compile_pattern(_PATTERN_NAMED[name]))
            elif name:
                self.parsers.append(_compile_pattern(name))
            else:
                raise ValueError(f"Invalid format: [{spec}]: empty format")

    def parse(self, value: object) -> int:
        """Epoch millis; numbers are epoch millis (ES accepts them when epoch_millis is a format)."""
        if isinstance(value, bool):
            raise DateFormatError(str(value).lower())
        if isinstance(value, (int, float)):
            if any(p is _NAMED["epoch_millis"] for p in self.parsers):
                return int(value)
            if any(p is _NAMED["epoch_second"] for p in self.parsers):
                return int(value * 1000)
            value = str(value)
        text = str(value)
        for parser in self.parsers:
            try:
                return parser(text)
            except DateFormatError:
                continue
        raise DateFormatError(text)


def format_millis(millis: int) -> str:
    """The strict_date_optional_time rendering ES uses for date values in ``fields`` output."""
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


_DATE_MATH = re.compile(r"([+-]\d+|/)([yMwdhHms])")
_UNIT_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "H": 3600, "m": 60, "s": 1}


def parse_date_math(value: object, fmt: DateFormat, now_millis: int, round_up: bool = False) -> int:
    """A range bound: a date in the field's format, or date math like ``now-1d/d``."""
    text = str(value) if not isinstance(value, (int, float)) or isinstance(value, bool) else None
    if text is None:
        return fmt.parse(value)
    if text.startswith("now"):
        base, expr = now_millis, text[3:]
    elif "||" in text and not text.startswith("||"):
        anchor, expr = text.split("||", 1)
        base = fmt.parse(anchor)
    else:
        return fmt.parse(text)
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=base)
    pos = 0
    while pos < len(expr):
        match = _DATE_MATH.match(expr, pos)
        if not match:
            raise DateFormatError(text)
        op, unit = match.groups()
        dt = _round(dt, unit, round_up) if op == "/" else _add(dt, int(op), unit)
        pos = match.end()
    return _millis(dt)


def _add(dt: datetime, amount: int, unit: str) -> datetime:
    if unit == "y":
        return dt.replace(year=dt.year + amount)
    if unit == "M":
        month = dt.month - 1 + amount
        return dt.replace(year=dt.year + month // 12, month=month % 12 + 1)
    return dt + timedelta(seconds=amount * _UNIT_SECONDS[unit])


def _round(dt: datetime, unit: str, up: bool) -> datetime:
    if unit == "y":
        start = dt.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        end = start.replace(year=start.year + 1)
    elif unit == "M":
        start = dt.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = _add(start, 1, "M")
    elif unit == "w":
        start = (dt - timedelta(days=dt.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + timedelta(days=7)
    elif unit == "d":
        start = dt.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + timedelta(days=1)
    elif unit in "hH":
        start = dt.replace(minute=0, second=0, microsecond=0)
        end = start + timedelta(hours=1)
    elif unit == "m":
        start = dt.replace(second=0, microsecond=0)
        end = start + timedelta(minutes=1)
    else:
        start = dt.replace(microsecond=0)
        end = start + timedelta(seconds=1)
    return end - timedelta(milliseconds=1) if up else start


_JAVA_TOKENS = re.compile(r"yyyy|yy|uuuu|MM|dd|HH|mm|ss|SSS|'[^']*'")
_DATE_MATH_NAME = re.compile(r"\{([^{}]*)(?:\{([^{}|]*)(?:\|([^{}]*))?\})?\}")


def format_java(millis: int, pattern: str) -> str:
    """A date in a Java DateTimeFormatter pattern (the letters date math index names use)."""
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
    values = {
        "yyyy": f"{dt.year:04d}",
        "uuuu": f"{dt.year:04d}",
        "yy": f"{dt.year % 100:02d}",
        "MM": f"{dt.month:02d}",
        "dd": f"{dt.day:02d}",
        "HH": f"{dt.hour:02d}",
        "mm": f"{dt.minute:02d}",
        "ss": f"{dt.second:02d}",
        "SSS": f"{dt.microsecond // 1000:03d}",
    }

    def token(match: re.Match[str]) -> str:
        text = match.group(0)
        return text[1:-1] if text.startswith("'") else values[text]

    return _JAVA_TOKENS.sub(token, pattern)


def resolve_date_math_name(name: str, now_millis: int) -> str:
    """``<logs-{now/d}>`` -> ``logs-2024.05.01``: ES's date math in index and alias names.

    Within ``<...>``, each ``{expression{format|time_zone}}`` is date math (``now``, or an anchor
    date before ``||``) rendered with the Java format (``yyyy.MM.dd`` by default); the rest is kept.
    Names not in angle brackets are returned as they are.
    """
    if not (name.startswith("<") and name.endswith(">")):
        return name
    inner = name[1:-1]
    anchor_format = DateFormat("strict_date_optional_time||epoch_millis")

    def expand(match: re.Match[str]) -> str:
        expression, fmt = match.group(1), match.group(2) or "yyyy.MM.dd"
        millis = parse_date_math(expression, anchor_format, now_millis)
        return format_java(millis, fmt)

    return _DATE_MATH_NAME.sub(expand, inner)
