"""``python -m es_sandbox``: the same server as ``provision sandbox``, with the same options."""

from es_sandbox.cli import command

command(prog_name="python -m es_sandbox")
