"""Geo points in every form Elasticsearch accepts: object, array, ``"lat,lon"`` string, geohash, WKT."""

from __future__ import annotations

import re
from typing import Any

from es_sandbox.http import ApiError
from es_sandbox.util import es_str


def parse_geo_point(value: Any, path: str) -> tuple[float, float]:
    """(lat, lon) from any of ES's geo_point formats: object, [lon, lat], "lat,lon", WKT, geohash."""
    lat: float
    lon: float
    if isinstance(value, dict):
        if "lat" not in value or "lon" not in value:
            if "type" in value and "coordinates" in value:
                coords = value["coordinates"]
                lon, lat = float(coords[0]), float(coords[1])
            else:
                missing = "lat" if "lat" not in value else "lon"
                raise ApiError(400, "illegal_argument_exception", f"field [{missing}] missing")
        else:
            lat, lon = _geo_number(value["lat"], "lat"), _geo_number(value["lon"], "lon")
    elif isinstance(value, list):
        if len(value) < 2:
            raise ApiError(
                400,
                "illegal_argument_exception",
                "[geo_point] field type should have at least two dimensions",
            )
        lon, lat = _geo_number(value[0], "lon"), _geo_number(value[1], "lat")
    elif isinstance(value, str):
        text = value.strip()
        wkt = re.fullmatch(r"POINT\s*\(\s*(\S+)\s+(\S+)(?:\s+\S+)?\s*\)", text, re.IGNORECASE)
        if wkt:
            lon, lat = float(wkt.group(1)), float(wkt.group(2))
        elif "," in text:
            parts = [p.strip() for p in text.split(",")]
            if len(parts) not in (2, 3):
                raise ApiError(
                    400,
                    "illegal_argument_exception",
                    f"failed to parse [{text}], expected 2 or 3 coordinates but found: [{len(parts)}]",
                )
            lat, lon = _geo_number(parts[0], "lat"), _geo_number(parts[1], "lon")
        else:
            lat, lon = _geohash(text)
    else:
        raise ApiError(400, "illegal_argument_exception", "geo_point expected")
    if not -90 <= lat <= 90:
        raise ApiError(
            400, "illegal_argument_exception", f"illegal latitude value [{es_str(lat)}] for {path}"
        )
    if not -180 <= lon <= 180:
        raise ApiError(
            400, "illegal_argument_exception", f"illegal longitude value [{es_str(lon)}] for {path}"
        )
    return (lat, lon)


def _geo_number(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise ApiError(400, "illegal_argument_exception", f"[{name}] must be a number")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ApiError(400, "number_format_exception", f'For input string: "{es_str(value)}"') from exc


_GEOHASH = "0123456789bcdefghjkmnpqrstuvwxyz"


def _geohash(text: str) -> tuple[float, float]:
    lat_range, lon_range = [-90.0, 90.0], [-180.0, 180.0]
    even = True
    if not text or any(c not in _GEOHASH for c in text.lower()):
        raise ApiError(
            400, "illegal_argument_exception", f"unsupported symbol [{text[:1]}] in geohash [{text}]"
        )
    for char in text.lower():
        bits = _GEOHASH.index(char)
        for mask in (16, 8, 4, 2, 1):
            target = lon_range if even else lat_range
            mid = (target[0] + target[1]) / 2
            if bits & mask:
                target[0] = mid
            else:
                target[1] = mid
            even = not even
    return ((lat_range[0] + lat_range[1]) / 2, (lon_range[0] + lon_range[1]) / 2)
