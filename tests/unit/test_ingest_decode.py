"""Decoding: every bad-input case, conversions (checked on pixels), EXIF facts, draft mode."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.ingest.corpus import Case, png_bytes, small_jpeg, write_bad_input_corpus
from provisioning.image_ingest.decode import (
    ImageDecodeError,
    decode_image,
    exif_datetime,
    gps_location,
    open_image,
    read_file,
    to_rgb,
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Case]]:
    root = tmp_path_factory.mktemp("bad-input")
    return root, write_bad_input_corpus(root)


def test_every_case_of_the_bad_input_corpus(corpus: tuple[Path, list[Case]]) -> None:
    root, cases = corpus
    assert {c.kind for c in cases if not c.embeddable} == {
        "empty",
        "unidentified",
        "truncated",
        "corrupt",
        "bomb",
    }
    for case in cases:
        data = (root / case.relative_path).read_bytes()
        if not case.embeddable:
            with pytest.raises(ImageDecodeError) as caught:
                decode_image(data, min_size=64)
            assert caught.value.kind == case.kind, case.relative_path
            assert str(caught.value), case.relative_path
            continue
        decoded = decode_image(data, min_size=64)
        assert decoded.image.mode == "RGB", case.relative_path
        if case.width is not None:
            assert (decoded.facts.width, decoded.facts.height) == (case.width, case.height), (
                case.relative_path
            )
        assert decoded.facts.date == case.date, case.relative_path
        if case.location is not None:
            assert decoded.facts.location == pytest.approx(case.location, abs=1e-6)
        else:
            assert decoded.facts.location is None


def test_exif_rotation_turns_pixels_and_sizes(corpus: tuple[Path, list[Case]]) -> None:
    root, _ = corpus
    decoded = decode_image((root / "ok/rotated.jpg").read_bytes())
    assert decoded.image.size == (60, 80)  # stored 80x60, orientation 6
    assert (decoded.facts.width, decoded.facts.height) == (60, 80)


@pytest.mark.parametrize(
    ("orientation", "swapped"), [(1, False), (3, False), (5, True), (6, True), (8, True)]
)
def test_orientations(orientation: int, swapped: bool) -> None:
    image = Image.new("RGB", (40, 20), (10, 20, 30))
    image.paste((250, 0, 0), (0, 0, 10, 10))  # a red corner, to see where it goes
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    image.save(out, "PNG", exif=exif)
    decoded = decode_image(out.getvalue())
    assert decoded.image.size == ((20, 40) if swapped else (40, 20))
    assert (decoded.facts.width, decoded.facts.height) == decoded.image.size


def test_cmyk_becomes_the_same_colour_in_rgb() -> None:
    out = io.BytesIO()
    Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(out, "JPEG", quality=95)  # red in CMYK
    red = np.asarray(decode_image(out.getvalue()).image).reshape(-1, 3).mean(axis=0)
    assert red[0] > 240 and red[1] < 15 and red[2] < 15


def test_sixteen_bit_samples_are_scaled_not_clipped() -> None:
    ramp = np.linspace(0, 65535, 64 * 16).reshape(16, 64).astype(np.uint16)
    gray = np.asarray(decode_image(png_bytes(ramp, 0, 16)).image)[..., 0].astype(float)
    assert gray.min() == 0 and gray.max() == 255
    assert 120 < gray.mean() < 135  # a clip at 255 would make almost everything white
    rgb16 = np.stack([ramp, np.zeros_like(ramp), np.full_like(ramp, 65535)], axis=-1)
    colour = np.asarray(decode_image(png_bytes(rgb16, 2, 16)).image).astype(float)
    assert colour[..., 2].min() == 255 and colour[..., 1].max() == 0


def test_transparency_is_composited_over_white() -> None:
    palette = Image.new("P", (4, 1))
    palette.putpalette([0, 0, 0] * 256)
    palette.putdata([0, 1, 2, 3])
    out = io.BytesIO()
    palette.save(out, "PNG", transparency=bytes([0, 128, 255, 255]))  # per-entry alpha
    pixels = np.asarray(decode_image(out.getvalue()).image)[0, :, 0]
    assert pixels[0] == 255  # fully transparent black shows the white background
    assert 120 < pixels[1] < 135  # half transparent black is grey
    assert pixels[2] == 0 and pixels[3] == 0
    rgba = Image.new("RGBA", (2, 2), (0, 0, 0, 0))
    assert np.asarray(to_rgb(rgba)).min() == 255


def test_grayscale_and_bilevel_become_rgb() -> None:
    for mode in ("L", "1", "LA", "I", "F"):
        image = Image.new(mode, (8, 8))
        assert to_rgb(image).mode == "RGB", mode


def test_jpeg_draft_decodes_at_the_smallest_scale_still_large_enough() -> None:
    data = small_jpeg(3, 1600, 1200)
    decoded = decode_image(data, min_size=224)
    assert decoded.image.size == (400, 300)  # 1/4: 1/8 would give 200x150, under 224
    assert min(decoded.image.size) >= 224
    assert (decoded.facts.width, decoded.facts.height) == (1600, 1200)  # facts are the original's
    assert decode_image(data).image.size == (1600, 1200)  # no min_size: full decode


def test_other_formats_are_reduced_by_an_integer_factor() -> None:
    big = png_bytes(np.zeros((800, 1000, 3), dtype=np.uint8), 2, 8)
    decoded = decode_image(big, min_size=100)
    assert decoded.image.size == (125, 100)
    assert (decoded.facts.width, decoded.facts.height) == (1000, 800)


def test_pixel_limit_between_warning_and_error_is_refused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    data = png_bytes(np.zeros((30, 40), dtype=np.uint8), 0, 8)  # 1200 pixels: Pillow only warns
    with pytest.warns(Image.DecompressionBombWarning), pytest.raises(ImageDecodeError) as caught:
        decode_image(data)
    assert caught.value.kind == "bomb" and "MAX_IMAGE_PIXELS" in str(caught.value)


def test_unreadable_file_is_a_read_failure(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError) as caught:
        read_file(tmp_path / "missing.jpg")
    assert caught.value.kind == "read"
    path = tmp_path / "a.jpg"
    path.write_bytes(small_jpeg(1))
    assert open_image(path, min_size=32).image.mode == "RGB"


def test_exif_dates() -> None:
    assert exif_datetime("2021:06:01 12:34:56") == "2021-06-01T12:34:56"
    assert exif_datetime("2021:06:01 12:34:56\x00", "-05:00") == "2021-06-01T12:34:56-05:00"
    assert exif_datetime("2021:06:01 12:34:56", "garbage") == "2021-06-01T12:34:56"
    assert exif_datetime("0000:00:00 00:00:00") is None  # a camera whose clock was never set
    assert exif_datetime("yesterday") is None
    assert exif_datetime(None) is None


def test_gps_positions() -> None:
    assert gps_location({1: "N", 2: (52.0, 22.0, 30.0), 3: "W", 4: (4.0, 53.0, 0.0)}) == pytest.approx(
        (52.375, -4.8833333), abs=1e-6
    )
    assert gps_location({1: "N", 2: (0.0, 0.0, 0.0), 3: "E", 4: (0.0, 0.0, 0.0)}) is None  # no fix
    assert gps_location({1: "N", 2: (95.0, 0.0, 0.0), 3: "E", 4: (1.0, 0.0, 0.0)}) is None  # out of range
    assert gps_location({1: "N", 2: (1.0, 2.0), 3: "E", 4: (1.0, 0.0, 0.0)}) is None  # malformed
    assert gps_location({}) is None


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_damaged_exif_does_not_lose_the_image() -> None:
    out = io.BytesIO()
    Image.new("RGB", (16, 16)).save(out, "JPEG", exif=b"Exif\x00\x00MM\x00\x2a\xff\xff\xff\xff")
    decoded = decode_image(out.getvalue())
    assert decoded.image.size == (16, 16)
    assert decoded.facts.date is None and decoded.facts.location is None
