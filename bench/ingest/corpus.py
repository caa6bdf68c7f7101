"""Synthetic image corpora: photo-like JPEGs for the benchmark, and every kind of bad input for tests.

Photo-like means what makes real photos expensive to decode: several megapixels, smooth gradients
and shapes under sensor-like noise, so that the JPEG holds a realistic few megabytes of entropy-coded
data (decoding cost follows the compressed size, not just the pixel count).

The bad-input corpus pairs each file with what ingest must do with it: embed it (and, for some, what
its document records) or skip it for a stated kind of reason.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def photo_like_jpeg(seed: int, width: int = 3072, height: int = 2048, quality: int = 92) -> bytes:
    """A JPEG that costs what a camera photo of the same size costs to decode (2-3 MB at 6 MP)."""
    rng = np.random.default_rng(seed)
    small_w, small_h = max(8, width // 4), max(8, height // 4)
    field = rng.uniform(0, 255, size=(5, 7, 3)).astype(np.uint8)
    image = Image.fromarray(field, "RGB").resize((small_w, small_h), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(5, 12))):
        x0, y0 = int(rng.integers(-small_w // 4, small_w)), int(rng.integers(-small_h // 4, small_h))
        x1 = x0 + int(rng.integers(small_w // 20 + 1, small_w // 2 + 2))
        y1 = y0 + int(rng.integers(small_h // 20 + 1, small_h // 2 + 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = int(rng.integers(0, 3))
        if shape == 0:
            draw.ellipse([x0, y0, x1, y1], fill=colour)
        elif shape == 1:
            draw.rectangle([x0, y0, x1, y1], fill=colour)
        else:
            draw.polygon([(x0, y1), ((x0 + x1) // 2, y0), (x1, y1)], fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(1.5)).resize((width, height), Image.Resampling.BICUBIC)
    pixels = np.asarray(image, dtype=np.int16)
    noise = rng.integers(-20, 21, size=pixels.shape, dtype=np.int16)
    noisy = np.clip(pixels + noise, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(noisy, "RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def write_photo_corpus(directory: Path, count: int, width: int, height: int, *, seed: int = 0) -> list[Path]:
    """``count`` photo-like JPEGs in ``directory`` (kept if already there: generating is slow)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = directory / f"IMG_{i:05d}.jpg"
        if not path.exists() or path.stat().st_size == 0:
            partial = path.with_suffix(".part")
            partial.write_bytes(photo_like_jpeg(seed + i, width, height))
            partial.replace(path)
        paths.append(path)
    return paths


def small_jpeg(seed: int, width: int = 96, height: int = 72, quality: int = 90) -> bytes:
    """A small photo-like JPEG for tests (distinct content for each seed)."""
    return photo_like_jpeg(seed, width, height, quality)


# -- PNG by hand: Pillow cannot write 16-bit colour, nor a real decompression bomb cheaply ------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_bytes(pixels: np.ndarray, colour_type: int, bit_depth: int) -> bytes:
    """A PNG of ``pixels`` (rows x columns x channels, big-endian for 16 bits), no filtering."""
    height, width = pixels.shape[:2]
    if bit_depth == 16:
        rows = pixels.astype(">u2").reshape(height, -1).view(np.uint8)
    else:
        rows = pixels.astype(np.uint8).reshape(height, -1)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


def png_bomb(side: int = 14_000) -> bytes:
    """A grey PNG of ``side`` x ``side`` pixels (196 megapixels by default) that is a few hundred KB.

    Above twice Pillow's default ``MAX_IMAGE_PIXELS`` (89.5 MP), so Pillow refuses to open it; the
    data is complete, so a decoder without the guard would really allocate and fill the pixels.
    """
    compressor = zlib.compressobj(9)
    row = b"\x00" * (side + 1)
    parts = [compressor.compress(row * 500) for _ in range(side // 500)]
    parts.append(compressor.compress(row * (side % 500)))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", b"".join(parts))
        + _chunk(b"IEND", b"")
    )


# -- the bad-input corpus -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A file of the bad-input corpus and what ingest must do with it."""

    relative_path: str
    embeddable: bool
    kind: str | None = None  # the failure kind expected when not embeddable
    width: int | None = None  # expected document width/height (as displayed) when checked
    height: int | None = None
    date: str | None = None
    location: tuple[float, float] | None = None


def _jpeg(image: Image.Image, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, **params)
    return out.getvalue()


def _gradient(width: int, height: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, width)[None, :, None]
    y = np.linspace(0, 1, height)[:, None, None]
    base = rng.uniform(0, 1, size=(1, 1, 3))
    return (255 * (0.5 * x + 0.3 * y + 0.2 * base)).clip(0, 1 * 255)


def write_bad_input_corpus(root: Path, *, with_bomb: bool = True) -> list[Case]:
    """Write the bad-input corpus under ``root``; return every file with its expected outcome."""
    root.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def put(relative: str, data: bytes, case: Case) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        cases.append(case)

    plain = small_jpeg(1)
    put("ok/plain.jpg", plain, Case("ok/plain.jpg", True, width=96, height=72))
    put("ok/nested/plain.jpg", small_jpeg(2), Case("ok/nested/plain.jpg", True))  # same name, other folder
    put("ok/UPPER.JPG", small_jpeg(3), Case("ok/UPPER.JPG", True))  # camera-style upper-case extension

    rgb = Image.fromarray(_gradient(80, 60, 4).astype(np.uint8), "RGB")
    put("ok/cmyk.jpg", _jpeg(rgb.convert("CMYK")), Case("ok/cmyk.jpg", True, width=80, height=60))
    put("ok/gray.jpg", _jpeg(rgb.convert("L")), Case("ok/gray.jpg", True, width=80, height=60))

    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed rotated a quarter turn: portrait
    put("ok/rotated.jpg", _jpeg(rgb, exif=exif), Case("ok/rotated.jpg", True, width=60, height=80))

    exif = Image.Exif()
    exif[0x0132] = "2020:01:01 00:00:00"
    exif.get_ifd(0x8769)[0x9003] = "2021:06:01 12:34:56"
    exif.get_ifd(0x8769)[0x9011] = "+02:00"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "S", (33.0, 51.0, 36.0), "E", (151.0, 12.0, 36.0)
    put(
        "ok/gps.jpg",
        _jpeg(Image.fromarray(_gradient(64, 48, 5).astype(np.uint8), "RGB"), exif=exif),
        Case(
            "ok/gps.jpg",
            True,
            width=64,
            height=48,
            date="2021-06-01T12:34:56+02:00",
            location=(-33.86, 151.21),
        ),
    )

    ramp16 = (np.linspace(0, 65535, 50 * 40).reshape(40, 50)).astype(np.uint16)
    put("ok/gray16.png", png_bytes(ramp16, 0, 16), Case("ok/gray16.png", True, width=50, height=40))
    alpha16 = np.full((40, 50), 30000, dtype=np.uint16)
    put(
        "ok/gray16_alpha.png",
        png_bytes(np.stack([ramp16, alpha16], axis=-1), 4, 16),
        Case("ok/gray16_alpha.png", True, width=50, height=40),
    )
    rgba16 = np.stack([ramp16, ramp16[::-1], np.full_like(ramp16, 20000), alpha16], axis=-1)
    put("ok/rgba16.png", png_bytes(rgba16, 6, 16), Case("ok/rgba16.png", True, width=50, height=40))

    palette = Image.new("P", (50, 40))
    palette.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0, 0, 0] * 253)
    palette.putdata([(i // 7) % 3 for i in range(50 * 40)])
    out = io.BytesIO()
    palette.save(out, "PNG", transparency=bytes([0, 128, 255]))  # per-entry alpha: transparent, half, opaque
    put("ok/palette_alpha.png", out.getvalue(), Case("ok/palette_alpha.png", True, width=50, height=40))
    bilevel = io.BytesIO()
    rgb.convert("1").save(bilevel, "PNG")
    put("ok/bilevel.png", bilevel.getvalue(), Case("ok/bilevel.png", True, width=80, height=60))

    put("bad/empty.jpg", b"", Case("bad/empty.jpg", False, kind="empty"))
    put(
        "bad/text.jpg",
        b"this is a text file, not a photo\n" * 20,
        Case("bad/text.jpg", False, kind="unidentified"),
    )
    put(
        "bad/corrupt.jpg",
        plain[:2] + bytes(np.random.default_rng(9).integers(0, 256, len(plain) - 2, dtype=np.uint8)),
        Case("bad/corrupt.jpg", False, kind="unidentified"),
    )
    put(
        "bad/truncated.jpg",
        small_jpeg(6, 320, 240)[: len(small_jpeg(6, 320, 240)) // 2],
        Case("bad/truncated.jpg", False, kind="truncated"),
    )
    jpeg = bytearray(small_jpeg(7, 320, 240))
    damaged = bytearray(jpeg)
    table = damaged.index(b"\xff\xc4")  # a Huffman table, overwritten: the decoder cannot go on
    damaged[table + 5 : table + 25] = b"\xff" * 20
    put("bad/corrupt_huffman.jpg", bytes(damaged), Case("bad/corrupt_huffman.jpg", False, kind="corrupt"))
    garbled = bytearray(jpeg)
    scan_start = garbled.index(b"\xff\xda") + 20 + (len(garbled) // 3)
    garbled[scan_start : scan_start + 200] = bytes(
        np.random.default_rng(1).integers(0, 256, 200, dtype=np.uint8)
    )
    # Garbage inside the entropy-coded data: libjpeg resynchronises and shows artefacts, as viewers do.
    put("ok/garbled_scan.jpg", bytes(garbled), Case("ok/garbled_scan.jpg", True, width=320, height=240))
    if with_bomb:
        put("bad/bomb.png", png_bomb(), Case("bad/bomb.png", False, kind="bomb"))
    (root / "notes.txt").write_text("not selected by the include globs\n", encoding="utf-8")
    return cases
