"""Small JPEG versions of indexed images for the result grid, made once and kept in memory.

Originals are decoded with the ingest decoder (the same decompression-bomb guard, EXIF
orientation, RGB) at the smallest scale that still covers the thumbnail, then shrunk. A bounded
LRU cache keyed by the file's path, size and modification time keeps repeated pages cheap and
notices a file that changed.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict

from PIL import Image

from provisioning.image_files import ImageFile
from provisioning.image_ingest.decode import ImageDecodeError, open_image
from provisioning.queries import QueryImageError

THUMBNAIL_SIDE = 256
CAPACITY = 1024


class Thumbnails:
    def __init__(self, side: int = THUMBNAIL_SIDE, capacity: int = CAPACITY) -> None:
        self.side = side
        self.capacity = capacity
        self._cache: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.made = 0  # thumbnails computed (not served from the cache)

    def get(self, image: ImageFile) -> bytes:
        """The JPEG thumbnail of ``image``; QueryImageError when its file is not a usable image."""
        stat = image.path.stat()
        key = (str(image.path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        data = self._make(image)
        with self._lock:
            self._cache[key] = data
            self.made += 1
            while len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
        return data

    def _make(self, image: ImageFile) -> bytes:
        try:
            decoded = open_image(image.path, min_size=self.side)
        except ImageDecodeError as exc:
            raise QueryImageError(exc.kind, f"image {image.relative_path} cannot be shown: {exc}") from None
        picture = decoded.image.copy()
        picture.thumbnail((self.side, self.side), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=85, optimize=True)
        return out.getvalue()
