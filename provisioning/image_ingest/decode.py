"""Decoding one image file into what the encoder needs, and the facts its document records.

Photo collections hold every kind of image Pillow can open, and some it cannot. Each file either
becomes an upright RGB image (and its width, height, capture date and GPS position) or fails with an
:class:`ImageDecodeError` whose ``kind`` and message say why; callers record that and go on.

Speed: a 6-megapixel JPEG is decoded at the smallest DCT scale (1/2, 1/4 or 1/8) that still leaves
both sides at least the encoder's input size (``Image.draft``), since the encoder shrinks it to 224
pixels anyway; other formats are decoded fully and then box-reduced by an integer factor. Pillow
releases the GIL while it decodes, so several of these run in parallel threads.

Conversions: EXIF orientation is applied (and width/height are reported as displayed, after it);
CMYK, palette, grayscale, 1-bit and 16-bit images become 8-bit RGB (16-bit samples are scaled, not
clipped); transparent images are composited over white, which is how viewers show them.
"""

from __future__ import annotations

import io
import math
import re
import struct
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from provisioning.errors import ProvisionError

FailureKind = Literal["empty", "unidentified", "truncated", "corrupt", "bomb", "read"]

# What Pillow's decoders and plugins raise on malformed input (as its own tests and fuzzing show):
# OSError for decoder failures (truncated data, broken streams), SyntaxError for bad headers,
# ValueError/struct.error/EOFError/IndexError/KeyError/TypeError/ZeroDivisionError for
# inconsistent structures, MemoryError for sizes that pass the pixel limit but not the machine.
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    MemoryError,
)

ORIENTATION = 0x0112
DATETIME = 0x0132
EXIF_IFD = 0x8769
GPS_IFD = 0x8825
DATETIME_ORIGINAL = 0x9003
DATETIME_DIGITIZED = 0x9004
OFFSET_TIME = 0x9010
OFFSET_TIME_ORIGINAL = 0x9011
OFFSET_TIME_DIGITIZED = 0x9012
WHITE = (255, 255, 255, 255)
_SWAPS_SIDES = {5, 6, 7, 8}  # orientations that turn the image a quarter (or transpose it)
# EXIF orientation -> the transposition that makes the image upright (ImageOps.exif_transpose's table).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_OFFSET = re.compile(r"^[+-]\d{2}:\d{2}$")


class ImageDecodeError(ProvisionError):
    """One file that cannot be used as an image; ``kind`` classifies why (for reports and tests)."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind: FailureKind = kind


@dataclass(frozen=True)
class ImageFacts:
    """What a document records about an image, as displayed (after EXIF orientation)."""

    width: int
    height: int
    date: str | None = None  # ISO-8601, from DateTimeOriginal (else DateTimeDigitized, DateTime)
    location: tuple[float, float] | None = None  # (lat, lon) from the GPS IFD


@dataclass(frozen=True)
class DecodedImage:
    image: Image.Image  # RGB, upright; at least ``min_size`` on its short side when it was larger
    facts: ImageFacts


def read_file(path: Path) -> bytes:
    """The file's bytes; an unreadable file is an :class:`ImageDecodeError` of kind ``read``."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ImageDecodeError("read", f"cannot read the file: {exc.strerror or exc}") from exc


def open_image(path: Path, min_size: int | None = None) -> DecodedImage:
    """Decode the image at ``path`` (e.g. a query image) the same way ingest does."""
    return decode_image(read_file(path), min_size=min_size)


def decode_image(data: bytes, *, min_size: int | None = None) -> DecodedImage:
    """Decode image bytes to an upright RGB image, no smaller than ``min_size`` where it was larger.

    The decompression-bomb guard is Pillow's ``Image.MAX_IMAGE_PIXELS``: Pillow itself refuses
    twice that many pixels when it opens the file; between one and two times, where Pillow only
    warns, this refuses too, so that no file over the limit is ever decoded.
    """
    if not data:
        raise ImageDecodeError("empty", "empty file (0 bytes)")
    try:
        # No ``with``: closing a Pillow image frees its pixels, and the result may be this very
        # object; the bytes are in memory, so there is no file handle to release.
        opened = Image.open(io.BytesIO(data))
        width, height = opened.size
        limit = Image.MAX_IMAGE_PIXELS
        if limit and width * height > limit:
            raise ImageDecodeError(
                "bomb",
                f"decompression bomb guard: {width}x{height} is {width * height} pixels, over the "
                f"limit of {limit} (PIL.Image.MAX_IMAGE_PIXELS)",
            )
        orientation, date, location = _exif_facts(opened)
        if min_size and opened.format == "JPEG":
            opened.draft("RGB", (min_size, min_size))
        opened.load()
        rgb = to_rgb(opened)
        if min_size and opened.format != "JPEG":
            factor = min(rgb.size) // min_size
            if factor >= 2:
                rgb = rgb.reduce(factor)
        transpose = _TRANSPOSE.get(orientation)
        if transpose is not None:
            rgb = rgb.transpose(transpose)
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError("bomb", f"decompression bomb: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(
            "unidentified", "not an image Pillow can read (unknown format or a damaged header)"
        ) from exc
    except DECODE_ERRORS as exc:
        message = str(exc)
        if isinstance(exc, OSError) and "truncated" in message:
            raise ImageDecodeError("truncated", f"truncated image: {message}") from exc
        raise ImageDecodeError("corrupt", f"corrupt image ({type(exc).__name__}: {message})") from exc
    if orientation in _SWAPS_SIDES:
        width, height = height, width
    return DecodedImage(rgb, ImageFacts(width, height, date, location))


def to_rgb(image: Image.Image) -> Image.Image:
    """An 8-bit RGB version of any Pillow mode, compositing transparency over white."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I;16") or mode == "I":
        samples = np.asarray(image).astype(np.int64)
        if mode.startswith("I;16") or samples.max(initial=0) > 255:
            samples = (np.clip(samples, 0, 65535) * 255 + 32767) // 65535  # 16-bit range to 8-bit
        gray = Image.fromarray(np.clip(samples, 0, 255).astype(np.uint8), "L")
        return gray.convert("RGB")
    if mode == "F":
        gray = Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8), "L")
        return gray.convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", image.size, WHITE)
        background.alpha_composite(rgba)
        return background.convert("RGB")
    return image.convert("RGB")


# -- EXIF -----------------------------------------------------------------------------------------


def _exif_facts(image: Image.Image) -> tuple[int, str | None, tuple[float, float] | None]:
    """Orientation, capture date and GPS position; a damaged EXIF block just yields none of them."""
    try:
        exif = image.getexif()
        orientation = exif.get(ORIENTATION, 1)
        sub = exif.get_ifd(EXIF_IFD) if EXIF_IFD in exif else {}
        gps = exif.get_ifd(GPS_IFD) if GPS_IFD in exif else {}
    except DECODE_ERRORS:
        return 1, None, None
    date = (
        exif_datetime(sub.get(DATETIME_ORIGINAL), sub.get(OFFSET_TIME_ORIGINAL))
        or exif_datetime(sub.get(DATETIME_DIGITIZED), sub.get(OFFSET_TIME_DIGITIZED))
        or exif_datetime(exif.get(DATETIME), sub.get(OFFSET_TIME))
    )
    return (orientation if isinstance(orientation, int) else 1), date, gps_location(gps)


def exif_datetime(value: Any, offset: Any = None) -> str | None:
    """``2021:06:01 12:34:56`` (EXIF's format) as ISO-8601, with its UTC offset when recorded."""
    if not isinstance(value, str):
        return None
    text = value.strip("\x00 ").strip()
    try:
        parsed = datetime.strptime(text, "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None  # e.g. the "0000:00:00 00:00:00" cameras write when the clock was never set
    iso = parsed.isoformat()
    if isinstance(offset, str) and _OFFSET.match(offset.strip("\x00 ").strip()):
        iso += offset.strip("\x00 ").strip()
    return iso


def _degrees(value: Any, ref: Any) -> float | None:
    if not isinstance(value, tuple | list) or len(value) != 3:
        return None
    try:
        degrees, minutes, seconds = (float(part) for part in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    result = degrees + minutes / 60 + seconds / 3600
    if not math.isfinite(result):
        return None
    reference = ref.strip("\x00 ").upper() if isinstance(ref, str) else ""
    return -result if reference in ("S", "W") else result


def gps_location(gps: Any) -> tuple[float, float] | None:
    """(lat, lon) from a GPS IFD, or None when absent, out of range, or 0,0 (no fix recorded)."""
    if not gps:
        return None
    lat = _degrees(gps.get(2), gps.get(1))
    lon = _degrees(gps.get(4), gps.get(3))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    if lat == 0 and lon == 0:
        return None
    return round(lat, 7), round(lon, 7)
