"""JPEG decoding paths for ingest, measured on the benchmark's photos (CPU milliseconds per image).

    draft         what ingest does: libjpeg's DCT scaling through Pillow's ``Image.draft`` to the
                  smallest scale whose sides are still >= the model's input size, then RGB
    draft+reduce  DCT scaling one step less, then Pillow's ``Image.reduce(2)`` (box filter)
    turbojpeg     PyTurboJPEG over the system's libjpeg-turbo, same scaling factor as draft (only
                  when ``turbojpeg`` imports and finds the library; it is not a dependency)

Each is timed on one thread with that thread's CPU clock, after one untimed image. A path replaces
draft in ingest only if it is faster here, on an idle machine.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image


def _draft(data: bytes, size: int) -> Image.Image:
    from provisioning.image_ingest.decode import decode_image

    return decode_image(data, min_size=size).image


def _draft_reduce(data: bytes, size: int) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.draft("RGB", (2 * size, 2 * size))
    image.load()
    return image.convert("RGB").reduce(2)


def _turbojpeg() -> Callable[[bytes, int], Image.Image] | None:
    try:
        from turbojpeg import TJPF_RGB, TurboJPEG

        decoder = TurboJPEG()
    except (ImportError, OSError, RuntimeError):
        return None

    def decode(data: bytes, size: int) -> Image.Image:
        width, height, _, _ = decoder.decode_header(data)
        factor = (1, 1)
        for num, den in sorted(decoder.scaling_factors, key=lambda f: f[0] / f[1]):
            if width * num // den >= size and height * num // den >= size:
                factor = (num, den)
                break
        return Image.fromarray(decoder.decode(data, pixel_format=TJPF_RGB, scaling_factor=factor))

    return decode


def measure(paths: list[Path], size: int = 224) -> dict[str, float | None]:
    """Core-ms per image of each path on ``paths`` (None: the path is not available here)."""
    datas = [path.read_bytes() for path in paths]
    paths_by_name: dict[str, Callable[[bytes, int], Image.Image] | None] = {
        "draft": _draft,
        "draft+reduce": _draft_reduce,
        "turbojpeg": _turbojpeg(),
    }
    out: dict[str, float | None] = {}
    for name, decode in paths_by_name.items():
        if decode is None:
            out[name] = None
            continue
        decode(datas[0], size)
        started = time.thread_time()
        for data in datas:
            decode(data, size)
        out[name] = 1000 * (time.thread_time() - started) / len(datas)
    return out
