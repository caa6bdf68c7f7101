"""Ray for the tests: one local instance per test module, 2 CPUs, its temp dir private to the run.

Ray's own default temp dir (/tmp/ray) is shared by everyone on the machine, and its sockets' paths
must stay under 108 bytes, so the instance lives in a short private folder that is removed after.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator

import ray

NUM_CPUS = 2


def ray_instance() -> Iterator[str]:
    """Start Ray (num_cpus=2, no dashboard); yield its address for other drivers; shut it down after."""
    previous = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"  # no token written to ~/.ray for a throw-away instance
    temp_dir = tempfile.mkdtemp(prefix="provision-ray-")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(
        num_cpus=NUM_CPUS,
        include_dashboard=False,
        _temp_dir=temp_dir,
        logging_level=logging.WARNING,
    )
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)
        if previous is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = previous
