"""OGC API - Features landing page and conformance declaration."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from api.geojson import Link
from api.params import FormatParam
from api.routers.common import url_for
from api.settings import Settings
from maps.kinds import MAP_KINDS

router = APIRouter(tags=["Capabilities"])

OPENAPI_30 = "application/vnd.oai.openapi+json;version=3.0"

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]


class LandingPage(BaseModel):
    title: str
    description: str
    links: list[Link]


class Conformance(BaseModel):
    conformsTo: list[str]


@router.get("/", response_model=LandingPage, summary="Landing page")
def landing_page(request: Request, f: FormatParam = None) -> LandingPage:
    """Links to the API definition, the conformance declaration and the collections."""
    settings: Settings = request.app.state.settings
    links = [
        Link(href=url_for(request, "/"), rel="self", type="application/json", title="This page"),
        Link(href=url_for(request, "/openapi.json"), rel="service-desc", type=OPENAPI_30,
             title="The API definition"),
        Link(href=url_for(request, "/docs"), rel="service-doc", type="text/html",
             title="The API documentation"),
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
    return LandingPage(
        title=settings.title,
        description="Open GIS service for broadband and fiber network assets.",
        links=links,
    )


@router.get("/conformance", response_model=Conformance, summary="Conformance classes")
def conformance(f: FormatParam = None) -> Conformance:
    """The OGC API conformance classes this server implements."""
    return Conformance(conformsTo=CONFORMANCE)


