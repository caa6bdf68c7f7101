"""``provision serve``: the search web page and its JSON API, a thin shell over the library.

:func:`create_app` makes the ASGI application for a stack and a cluster; :func:`serve` runs it.
Starlette, Jinja2 and uvicorn are imported here, so ``import provisioning`` never pulls them in.
"""

from provisioning.app.server import create_app, for_serving, serve
from provisioning.app.service import Limits, SearchService

__all__ = ["Limits", "SearchService", "create_app", "for_serving", "serve"]
