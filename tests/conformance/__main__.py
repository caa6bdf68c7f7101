"""``python -m tests.conformance``: see :mod:`tests.conformance.cli`."""

import sys

from tests.conformance.cli import main

sys.exit(main())
