"""One entry point per map kind over an :class:`netgis.engine.analysis.Analysis` (CLI and API)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Unpack, cast

import folium
import geopandas as gpd
import pandas as pd
import shapely

from netgis.errors import ConfigError, NotFoundError, Problem, ValidationError
from netgis.geodesy import transform_geoms
from netgis.maps.areas import areas_map
from netgis.maps.coverage import coverage_map
from netgis.maps.criticality import criticality_classes, criticality_map
from netgis.maps.gaps import gap_edges, gaps_map
from netgis.products.names import PlaceNames, place_names, with_places
from netgis.schema import DEFAULT_CRITICAL_TOP
from netgis.schema import MAP_KINDS as MAP_KINDS  # defined where netgis reads it without folium

if TYPE_CHECKING:
    from pyproj import CRS

    from netgis.engine.analysis import Analysis, ScenarioResult
    from netgis.engine.kpis import Kpis
    from netgis.maps._base import MapOptions



def build_map(
    kind: str,
    analysis: Analysis,
    *,
    scenario: ScenarioResult | None = None,
    ranking: pd.DataFrame | None = None,
    hex_resolution: int | None = None,
    bbox: Sequence[float] | None = None,
    area_id: str | None = None,
    top: int = DEFAULT_CRITICAL_TOP,
    top_control: bool = False,
    trace_url: str | None = None,
    splices_url: str | None = None,
    names: PlaceNames | None = None,
    **options: Unpack[MapOptions],
) -> folium.Map:
    """The ``kind`` map of an analysis.

    Parameters
    ----------
    kind
        One of :data:`MAP_KINDS`.
    analysis
        The result of :func:`netgis.engine.analysis.analyze`.
    scenario
        criticality only: what :func:`netgis.engine.analysis.scenario` returns.
    ranking
        gaps only: ranked build clusters (``netgis.products.gaps.gap_analysis(...).plan.clusters``).
    hex_resolution
        H3 resolution: of rolled-up premises (coverage, criticality) or of the
        gap cells (gaps); each builder's default when None.
    bbox, area_id
        Draw only what lies in this WGS84 box (min lon, min lat, max lon,
        max lat) and/or in this area: premises and nodes inside, spans,
        areas and ranked clusters that intersect it (see :func:`clip`). The
        legend classes are those of the whole network, so that two views
        compare; the gaps map outlines the area.
    top, top_control
        criticality only: draw the ``top`` worst spans and nodes (of the view),
        with a control to change it (see :func:`maps.criticality_map`).
    trace_url, splices_url
        coverage only: a server's strand endpoints, for the "Trace to OLT" action of a
        premise's popup and the splice diagram link of a node's (see
        :func:`maps.coverage_map`).
    names
        The street and area of the spans and nodes (what
        :func:`netgis.products.names.place_names` of the analysed dataset gives, which
        ``None`` computes): shown as ``street, area`` in span, node and build popups
        where known.
    **options
        ``m``, ``basemap``, ``tiles_url``, ``tiles_attribution``, ``streets`` (by default
        the dataset's, when it has a ``streets`` layer), ``base_url``, ``max_features``.

    Examples
    --------
    >>> from netgis.engine.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> dataset = read_dataset("tests/examples/ring_spur/dataset.gpkg")
    >>> type(build_map("coverage", analyze(dataset), tiles_url=None)).__name__
    'Map'
    """
    if kind not in MAP_KINDS:
        raise ConfigError(f"map kind must be one of {', '.join(MAP_KINDS)}, not {kind!r}")
    analysis, ranking = _named(analysis, ranking,
                               names if names is not None else place_names(analysis.dataset))
    # classes of the whole network, before any clipping: every view gets the same legend
    whole = analysis
    if bbox is not None or area_id is not None:
        analysis, ranking = clip(analysis, ranking, bbox=bbox, area_id=area_id)
    res: dict[str, Any] = {} if hex_resolution is None else {"hex_resolution": hex_resolution}
    if analysis.dataset.streets is not None and "streets" not in options:
        # the dataset's own context, drawn when the page has no base map
        options["streets"] = analysis.dataset.streets
    if kind == "coverage":
        return coverage_map(analysis.premises, analysis.spans, analysis.nodes, **res,
                            trace_url=trace_url, splices_url=splices_url, **options)
    if kind == "criticality":
        span_edges, node_edges = criticality_classes(whole.spans, whole.nodes, top)
        return criticality_map(analysis.spans, analysis.nodes, premises=analysis.premises,
                               scenario=scenario, top=top, span_edges=span_edges,
                               node_edges=node_edges, top_control=top_control, **res, **options)
    if kind == "gaps":
        gap_res: dict[str, Any] = {} if hex_resolution is None else {"resolution": hex_resolution}
        outline = None
        if area_id is not None:
            areas = whole.dataset.areas
            outline = areas[areas["area_id"] == area_id]
        return gaps_map(analysis.premises, spans=analysis.spans, ranking=ranking,
                        unit_edges=gap_edges(whole.premises, **gap_res), outline=outline,
                        **gap_res, **options)
    return areas_map(analysis.dataset.areas, analysis.kpis["areas"], **options)


def _named(analysis: Analysis, ranking: pd.DataFrame | None, names: PlaceNames
           ) -> tuple[Analysis, pd.DataFrame | None]:
    """The analysis's spans and nodes, and the ranked builds, with their ``place`` (street,
    area) where one is known; as they were where none is."""
    spans = with_places(analysis.spans, names, id_field="span_id")
    nodes = with_places(analysis.nodes, names, id_field="node_id")
    if spans is not analysis.spans or nodes is not analysis.nodes:
        analysis = replace(analysis, spans=spans, nodes=nodes)
    if isinstance(ranking, gpd.GeoDataFrame) and len(ranking) and ranking.geometry.name in ranking:
        ranking = with_places(ranking, names)
    return analysis, ranking


def _window(analysis: Analysis, bbox: Sequence[float] | None,
            area_id: str | None) -> shapely.Geometry:
    """The clip polygon in the dataset CRS."""
    crs = cast("CRS", analysis.premises.crs)  # analyzed layers always carry the dataset CRS
    parts = []
    if bbox is not None:
        if len(bbox) != 4 or not (bbox[0] < bbox[2] and bbox[1] < bbox[3]):
            raise ValidationError([Problem("parameters", None, "bbox",
                                           "must be min lon, min lat, max lon, max lat")])
        # densified so that the box's edges stay where they are once reprojected
        west, south, east, north = (float(v) for v in bbox)
        box = shapely.segmentize(shapely.box(west, south, east, north), 0.001)
        parts.append(transform_geoms([box], 4326, crs)[0])
    if area_id is not None:
        areas = analysis.dataset.areas
        hit = areas[areas["area_id"] == area_id]
        if hit.empty:
            raise NotFoundError("areas", area_id)
        parts.append(hit.geometry.iloc[0])
    return shapely.intersection_all(parts) if len(parts) > 1 else parts[0]


def clip(
    analysis: Analysis,
    ranking: pd.DataFrame | None = None,
    *,
    bbox: Sequence[float] | None = None,
    area_id: str | None = None,
) -> tuple[Analysis, pd.DataFrame | None]:
    """The analysis (and ranking) cut down to a WGS84 ``bbox`` and/or an area.

    Premises and nodes inside (boundary included), spans, areas, streets and ranked
    clusters intersecting; the KPI rows of the areas kept. Figures are not
    recomputed: a cut span still shows its network-wide cut impact.

    Examples
    --------
    >>> from netgis.engine.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> dataset = read_dataset("tests/examples/ring_spur/dataset.gpkg")
    >>> r = analyze(dataset)
    >>> small, _ = clip(r, bbox=(8.67, 50.10, 8.69, 50.12))
    >>> len(r.premises), len(small.premises)
    (6, 4)
    """
    window = _window(analysis, bbox, area_id)

    def keep(frame: gpd.GeoDataFrame, inside: bool) -> gpd.GeoDataFrame:
        geoms = frame.geometry.values
        mask = shapely.covers(window, geoms) if inside else shapely.intersects(window, geoms)
        return frame[mask]

    areas = keep(analysis.dataset.areas, False)
    streets = analysis.dataset.streets
    if area_id is not None:
        areas = areas[areas["area_id"] == area_id]
    kept_ids = set(areas["area_id"])
    kpis: Kpis = {"network": analysis.kpis["network"],
                  "areas": [a for a in analysis.kpis["areas"] if a["area_id"] in kept_ids]}
    clipped = replace(
        analysis,
        premises=keep(analysis.premises, True),
        spans=keep(analysis.spans, False),
        nodes=keep(analysis.nodes, True),
        kpis=kpis,
        dataset=replace(analysis.dataset, areas=areas, streets=None if streets is None
                        else keep(streets, False)),
    )
    if isinstance(ranking, gpd.GeoDataFrame):
        crs = cast("CRS", analysis.premises.crs)  # analyzed layers always carry the dataset CRS
        hits = shapely.intersects(window, ranking.to_crs(crs).geometry.values)
        ranking = ranking[hits]
    return clipped, ranking
