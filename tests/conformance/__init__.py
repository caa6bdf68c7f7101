"""A runner for Elastic's YAML REST tests, usable against any Elasticsearch URL.

``python -m tests.conformance --es-url URL PATH...`` (see ``docs/conformance.md``). The pieces:
``suite`` reads test files, ``spec`` turns API calls into HTTP requests by the REST API spec,
``transport`` sends them, ``runner`` executes steps and assertions, ``cluster`` decides
requires/skip, ``wipe`` empties the cluster between tests, ``cli`` is the command line.
"""
