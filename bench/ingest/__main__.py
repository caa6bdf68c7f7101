"""``python -m bench.ingest``: see :mod:`bench.ingest.run`."""

from __future__ import annotations

import sys

from bench.ingest.run import main

sys.exit(main())
