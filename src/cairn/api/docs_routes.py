"""``/docs``: Swagger UI from files Cairn serves itself (the ``swagger-ui-bundle``
package), so the API explorer works on a machine with no internet access. FastAPI's own
page loads the same files from a CDN, which is blank offline."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from cairn.errors import NotFound

router = APIRouter(include_in_schema=False)

ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
"""The files the page loads; nothing else of the bundle is reachable."""


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    """The Swagger UI page over ``/openapi.json``, every asset from ``/docs/assets``."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Cairn API",
        swagger_js_url="/docs/assets/swagger-ui-bundle.js",
        swagger_css_url="/docs/assets/swagger-ui.css",
        swagger_favicon_url="/docs/assets/favicon-32x32.png",
    )


@router.get("/docs/assets/{name}")
def swagger_asset(name: str) -> FileResponse:
    """One of the bundle's files, cached for a day."""
    from swagger_ui_bundle import swagger_ui_path

    if name not in ASSETS:
        raise NotFound(f"no documentation asset {name!r}")
    return FileResponse(
        str(swagger_ui_path / name),
        media_type=ASSETS[name],
        headers={"Cache-Control": "public, max-age=86400"},
    )
