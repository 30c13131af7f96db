"""The catalog's web UI: server-rendered pages, a little plain JavaScript, no build step.

``router`` holds every page (``/ui/...``), the static files and the ``/`` redirect; see
docs/ui.md.
"""

from __future__ import annotations

from fastapi import APIRouter

from shoal.catalog.ui import pages_auth, pages_catalog, pages_integrations

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
for _module in (pages_auth, pages_integrations, pages_catalog):
    router.include_router(_module.router)
