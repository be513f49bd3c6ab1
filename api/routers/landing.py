"""OGC API - Features landing page and conformance declaration (JSON or HTML)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from netgis.api.geojson import Link
from netgis.api.html import HTML_RESPONSE, page_url, render, wants_html
from netgis.api.params import FormatParam
from netgis.api.routers.common import url_for
from netgis.api.settings import Settings
from netgis.maps.kinds import MAP_KINDS
from netgis.storage.filters import CQL2_CONFORMANCE

router = APIRouter(tags=["Capabilities"])

OPENAPI_30 = "application/vnd.oai.openapi+json;version=3.0"

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    *CQL2_CONFORMANCE,
]


class LandingPage(BaseModel):
    """The API's landing page (OGC API Features): its title and links."""

    title: str
    description: str
    links: list[Link]


class Conformance(BaseModel):
    """The conformance classes (OGC API standards) the API implements."""

    conformsTo: list[str]


@router.get("/", response_model=LandingPage, responses=HTML_RESPONSE, summary="Landing page")
def landing_page(request: Request, f: FormatParam = None) -> Any:
    """Links to the API definition, the conformance declaration and the collections."""
    settings: Settings = request.app.state.settings
    links = [
        Link(href=url_for(request, "/"), rel="self", type="application/json", title="This page"),
        Link(href=page_url(url_for(request, "/")), rel="alternate", type="text/html",
             title="This page as HTML"),
        Link(href=url_for(request, "/openapi.json"), rel="service-desc", type=OPENAPI_30,
             title="The API definition"),
        Link(href=url_for(request, "/docs"), rel="service-doc", type="text/html",
             title="The API documentation"),
        Link(href=url_for(request, "/redoc"), rel="service-doc", type="text/html",
             title="The API reference (ReDoc)"),
        Link(href=url_for(request, "/conformance"), rel="conformance", type="application/json",
             title="Conformance classes"),
        Link(href=url_for(request, "/collections"), rel="data", type="application/json",
             title="The plant: nodes, spans, premises, areas"),
        Link(href=url_for(request, "/analysis/coverage"), rel="related",
             type="application/json", title="Coverage KPIs"),
        Link(href=url_for(request, "/health"), rel="related", type="application/json",
             title="Health"),
    ]
    links += [Link(href=url_for(request, f"/maps/{kind}"), rel="related", type="text/html",
                   title=f"{kind.capitalize()} map") for kind in MAP_KINDS]
    page = LandingPage(
        title=settings.title,
        description="Open GIS service for broadband and fiber network assets.",
        links=links,
    )
    if wants_html(request, f):
        # the pages that have an HTML view are linked as such
        html_paths = ("/conformance", "/collections")
        shown = [link.model_copy(update={"href": page_url(link.href)})
                 if link.href.split("?")[0].endswith(html_paths) else link
                 for link in links if link.rel not in ("self", "alternate")]
        return render(request, "landing.html", title=settings.title,
                      json_url=page_url(str(request.url), "json"), crumbs=[],
                      description=page.description, links=shown)
    return page


@router.get("/conformance", response_model=Conformance, responses=HTML_RESPONSE,
            summary="Conformance classes")
def conformance(request: Request, f: FormatParam = None) -> Any:
    """The OGC API conformance classes this server implements."""
    if wants_html(request, f):
        return render(request, "conformance.html", title="Conformance",
                      json_url=page_url(str(request.url), "json"),
                      crumbs=[("netgis", page_url(url_for(request, "/")))],
                      classes=CONFORMANCE)
    return Conformance(conformsTo=CONFORMANCE)
