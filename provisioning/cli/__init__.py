"""The ``provision`` command line (:mod:`.commands`) and the options its commands share (:mod:`.options`).

The only part of the package that prints or exits.
"""

from provisioning.cli.commands import cli, main

__all__ = ["cli", "main"]
