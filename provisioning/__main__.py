"""``python -m provisioning``: the same as the ``provision`` console script."""

from provisioning.cli import main

main()
