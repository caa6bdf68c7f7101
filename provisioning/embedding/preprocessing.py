"""CLIP image preprocessing as a plain function of one image: resize the shortest edge, centre-crop,
scale and normalise, exactly as the model's CLIP image processor does (read from its
``preprocessor_config.json`` or its processor object), so that decode workers can run it in
parallel, apart from the forward pass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

# What preprocessing returns: one image as model input, (3, H, W) float32.
Prepared = np.ndarray[Any, np.dtype[np.float32]]


# -- preprocessing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImagePreprocessing:
    """CLIP image preprocessing (resize, centre crop, rescale, normalise), read from the processor.

    It reproduces ``transformers.CLIPImageProcessor`` (same output size arithmetic, same PIL
    resampling filter, same crop offsets) on one image, in numpy and PIL calls that release the GIL,
    so that decode threads can run it in parallel. :meth:`from_processor` returns None for a
    configuration it does not reproduce exactly; the encoder then calls the processor itself.
    """

    shortest_edge: int | None  # resize so the short side has this length (aspect kept)
    resize_to: tuple[int, int] | None  # or resize to exactly (height, width)
    crop: tuple[int, int] | None  # centre crop (height, width)
    resample: int
    rescale_factor: float | None
    mean: np.ndarray[Any, np.dtype[np.float32]] | None
    std: np.ndarray[Any, np.dtype[np.float32]] | None

    @classmethod
    def from_processor(cls, processor: Any) -> ImagePreprocessing | None:
        """The preprocessing of a CLIP-style image processor, or None if it does more than this does."""
        if type(processor).__name__ not in {"CLIPImageProcessor", "CLIPImageProcessorFast"}:
            return None
        size = dict(getattr(processor, "size", None) or {})
        shortest: int | None = None
        resize_to: tuple[int, int] | None = None
        if getattr(processor, "do_resize", False):
            if set(size) == {"shortest_edge"}:
                shortest = int(size["shortest_edge"])
            elif set(size) == {"height", "width"}:
                resize_to = (int(size["height"]), int(size["width"]))
            else:
                return None
        crop: tuple[int, int] | None = None
        if getattr(processor, "do_center_crop", False):
            crop_size = dict(getattr(processor, "crop_size", None) or {})
            if set(crop_size) != {"height", "width"}:
                return None
            crop = (int(crop_size["height"]), int(crop_size["width"]))
            smallest = shortest if shortest is not None else min(resize_to) if resize_to else None
            if smallest is None or max(crop) > smallest:
                return None  # the processor would pad; leave that to it
        rescale = float(processor.rescale_factor) if getattr(processor, "do_rescale", False) else None
        mean = std = None
        if getattr(processor, "do_normalize", False):
            mean = np.asarray(processor.image_mean, dtype=np.float32).reshape(3, 1, 1)
            std = np.asarray(processor.image_std, dtype=np.float32).reshape(3, 1, 1)
            if mean.size != 3 or std.size != 3:
                return None
        resample = int(getattr(processor, "resample", Image.Resampling.BICUBIC))
        return cls(shortest, resize_to, crop, resample, rescale, mean, std)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ImagePreprocessing | None:
        """The preprocessing a ``preprocessor_config.json`` describes, read without transformers.

        Missing keys take ``CLIPImageProcessor``'s defaults, and integer sizes are read as transformers
        reads them (``size: 224`` is the shortest edge, ``crop_size: 224`` a square). None when the file
        is not a CLIP image processor's (its own processor class must be used then).
        """
        kind = config.get("image_processor_type") or config.get("feature_extractor_type")
        if kind not in {"CLIPImageProcessor", "CLIPImageProcessorFast", "CLIPFeatureExtractor"}:
            return None
        size = config.get("size", {"shortest_edge": 224})
        crop = config.get("crop_size", {"height": 224, "width": 224})
        settings = {
            "do_resize": config.get("do_resize", True),
            "size": {"shortest_edge": size} if isinstance(size, int) else size,
            "do_center_crop": config.get("do_center_crop", True),
            "crop_size": {"height": crop, "width": crop} if isinstance(crop, int) else crop,
            "do_rescale": config.get("do_rescale", True),
            "rescale_factor": config.get("rescale_factor", 1 / 255),
            "do_normalize": config.get("do_normalize", True),
            "image_mean": config.get("image_mean", CLIP_MEAN),
            "image_std": config.get("image_std", CLIP_STD),
            "resample": config.get("resample", int(Image.Resampling.BICUBIC)),
        }
        if not isinstance(settings["size"], dict) or not isinstance(settings["crop_size"], dict):
            return None
        processor = type("CLIPImageProcessor", (), settings)()
        return cls.from_processor(processor)

    @property
    def input_size(self) -> int:
        """The smallest side an image must have for this preprocessing not to upscale it."""
        if self.shortest_edge is not None:
            return self.shortest_edge
        if self.resize_to is not None:
            return max(self.resize_to)
        return max(self.crop) if self.crop else 0

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) after the resize step; the arithmetic of transformers' resize helper."""
        if self.resize_to is not None:
            return self.resize_to[1], self.resize_to[0]
        if self.shortest_edge is None:
            return width, height
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = self.shortest_edge, int(self.shortest_edge * long / short)
        return (new_short, new_long) if width <= height else (new_long, new_short)

    def __call__(self, image: Image.Image) -> np.ndarray[Any, np.dtype[np.float32]]:
        """One RGB image as a (3, H, W) float32 array, ready to be stacked into ``pixel_values``."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        if self.crop is not None and self.shortest_edge is not None:
            image = _trim_extreme(image, MAX_ASPECT)
        width, height = self.output_size(*image.size)
        if (width, height) != image.size:
            image = image.resize((width, height), resample=self.resample, reducing_gap=None)
        if self.crop is not None:
            crop_h, crop_w = self.crop
            top, left = (height - crop_h) // 2, (width - crop_w) // 2
            image = image.crop((left, top, left + crop_w, top + crop_h))
        pixels = np.asarray(image, dtype=np.float32).transpose(2, 0, 1)
        if self.rescale_factor is not None:
            pixels = pixels * np.float32(self.rescale_factor)
        if self.mean is not None and self.std is not None:
            pixels = (pixels - self.mean) / self.std
        return np.ascontiguousarray(pixels, dtype=np.float32)


# CLIPImageProcessor's defaults (OPENAI_CLIP_MEAN / OPENAI_CLIP_STD in transformers).
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
MAX_ASPECT = 4.0  # beyond this ratio of long to short side, the middle is cut out before resizing


def _trim_extreme(image: Image.Image, max_aspect: float) -> Image.Image:
    """The centre of a very long image, at most ``max_aspect`` times as long as it is wide.

    Resizing a 1x10000 strip so that its short side becomes 224 pixels would make a 2-gigapixel
    image, of which the centre crop keeps 224x224. Cutting the long side first keeps the result (the
    centre is all the crop ever sees) without the blow-up; up to ``max_aspect`` nothing changes, so
    ordinary photos get exactly the processor's output.
    """
    width, height = image.size
    short, long = min(width, height), max(width, height)
    if long <= max_aspect * short:
        return image
    keep = int(max_aspect * short)
    if width > height:
        left = (width - keep) // 2
        return image.crop((left, 0, left + keep, height))
    top = (height - keep) // 2
    return image.crop((0, top, width, top + keep))
