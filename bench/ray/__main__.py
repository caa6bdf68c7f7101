"""``python -m bench.ray``: see :mod:`bench.ray.run`."""

from __future__ import annotations

import sys

from bench.ray.run import main

sys.exit(main())
