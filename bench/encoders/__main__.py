"""``python -m bench.encoders``: see :mod:`bench.encoders.run`."""

from __future__ import annotations

import sys

from bench.encoders.run import main

sys.exit(main())
