"""The API documentation pages, /docs (Swagger UI) and /redoc (ReDoc), working offline.

FastAPI's own pages load their scripts, styles, favicon and (ReDoc) fonts
from CDNs; these load the vendored releases from /static/vendor
(scripts/vendor-assets.sh), so they work without internet.

ReDoc 2 always shows the Redocly logo from ``cdn.redoc.ly`` at the foot of its
menu (no option turns it off); the page's Content-Security-Policy allows
images from this server only, so the browser never asks for it (it logs the
refusal and leaves the logo out). Swagger UI's page has a policy of the same kind:
scripts from this server and its one inline script, by hash.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

from netgis.maps.csp import content_security_policy

router = APIRouter(include_in_schema=False)

VENDOR = "/static/vendor"


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI over /openapi.json, from the vendored swagger-ui-dist."""
    root = _root(request)
    page = get_swagger_ui_html(
        openapi_url=f"{root}/openapi.json",
        title=f"{request.app.title}: API documentation",
        swagger_js_url=f"{root}{VENDOR}/swagger-ui-dist/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{VENDOR}/swagger-ui-dist/swagger-ui.css",
        swagger_favicon_url=f"{root}{VENDOR}/swagger-ui-dist/favicon-32x32.png",
        # no call to the online validator (swagger.io) from the browser
        swagger_ui_parameters={"validatorUrl": None},
    )
    # the vendored files and the page's one inline script (by its hash) run, nothing else
    page.headers["Content-Security-Policy"] = content_security_policy(
        bytes(page.body).decode())
    return page


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    """ReDoc over /openapi.json, from the vendored redoc bundle, without web fonts."""
    root = _root(request)
    page = get_redoc_html(
        openapi_url=f"{root}/openapi.json",
        title=f"{request.app.title}: API reference",
        redoc_js_url=f"{root}{VENDOR}/redoc/bundles/redoc.standalone.js",
        redoc_favicon_url=f"{root}{VENDOR}/swagger-ui-dist/favicon-32x32.png",
        with_google_fonts=False,
    )
    # ReDoc runs its search index in a worker made from a blob: URL
    policy = content_security_policy(bytes(page.body).decode()) + "; worker-src 'self' blob:"
    page.headers["Content-Security-Policy"] = policy
    return page
