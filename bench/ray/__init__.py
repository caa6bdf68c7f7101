"""The Ray engine's benchmark: ``python -m bench.ray`` (see :mod:`bench.ray.run`)."""
