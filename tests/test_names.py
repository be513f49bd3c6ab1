"""Spans, nodes and builds named by street and area (netgis.products.names), checked against
a brute-force reading of the same rules on a small generated city with streets: every
feature's anchor point against every named street (shapely distances) and every area."""

from __future__ import annotations

from dataclasses import replace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from netgis.dataset import Dataset
from netgis.generate import generate_city
from netgis.products.names import (
    DEFAULT_STREET_TOLERANCE_M,
    place_label,
    place_names,
    with_places,
)


@pytest.fixture(scope="module")
def city() -> Dataset:
    """A generated city of 500 premises (UTM 32N) with its streets and four areas; one
    street left unnamed, so that a nearer unnamed line never names a span."""
    made = generate_city(premises=500, seed=4)
    assert made.streets is not None and len(made.streets) > 5 and len(made.areas) > 1
    streets = made.streets.copy()
    streets.loc[streets.index[0], "name"] = None
    return replace(made, streets=streets)


def _anchor(geom: shapely.Geometry) -> shapely.Geometry:
    if geom.geom_type == "LineString":
        return geom.interpolate(0.5, normalized=True)
    return geom


def _brute_street(point: shapely.Geometry, streets: gpd.GeoDataFrame,
                  tolerance_m: float) -> str | None:
    """The name of the nearest named street within the tolerance (first in layer order on a
    tie), by measuring the distance to every street."""
    best, best_d = None, np.inf
    for name, line in zip(streets["name"], streets.geometry, strict=True):
        if not isinstance(name, str) or not name.strip():
            continue
        d = point.distance(line)
        if d <= tolerance_m and d < best_d:
            best, best_d = name.strip(), d
    return best


def _brute_area(point: shapely.Geometry, areas: gpd.GeoDataFrame) -> str | None:
    for area_id, name, polygon in zip(areas["area_id"], areas["name"], areas.geometry,
                                      strict=True):
        if polygon.covers(point):
            return str(name) if isinstance(name, str) and name else str(area_id)
    return None


def test_span_and_node_places_equal_a_brute_force_reading(city: Dataset) -> None:
    names = place_names(city)
    assert city.streets is not None
    for layer, frame, table in (("spans", city.spans, names.spans),
                                ("nodes", city.nodes, names.nodes)):
        id_field = "span_id" if layer == "spans" else "node_id"
        want = pd.DataFrame(
            [(_brute_street(_anchor(g), city.streets, DEFAULT_STREET_TOLERANCE_M),
              _brute_area(_anchor(g), city.areas)) for g in frame.geometry],
            columns=["street", "area"], index=frame[id_field].astype(str).to_numpy())
        got = table.reindex(want.index)
        assert got["street"].tolist() == want["street"].tolist(), layer
        assert got["area"].tolist() == want["area"].tolist(), layer
        # the city is small and its plant runs along its streets: nearly all are named
        assert want["street"].notna().mean() > 0.8 and want["area"].notna().all()


def test_labels_put_street_and_area_before_the_id(city: Dataset) -> None:
    names = place_names(city)
    span_id = str(city.spans["span_id"].iloc[3])
    street, area = names.spans.loc[span_id, ["street", "area"]]
    assert names.span_label(span_id) == f"{street}, {area}: span {span_id}"
    assert names.label("span", span_id) == names.span_label(span_id)
    assert names.place("span", span_id) == f"{street}, {area}"
    assert names.label("span", "no-such-span") == "span no-such-span"
    assert place_label(None, "Ostend", "#2 gap-p1") == "Ostend: #2 gap-p1"


def test_a_spans_own_street_wins_over_the_streets_layer(city: Dataset) -> None:
    spans = city.spans.copy()
    spans["street"] = None
    spans.loc[spans.index[0], "street"] = "  Am Kabelgraben "
    names = place_names(city, spans=spans)
    first = str(spans["span_id"].iloc[0])
    assert names.spans.loc[first, "street"] == "Am Kabelgraben"
    # the others fall back on the streets layer
    assert names.spans.drop(index=first)["street"].tolist() == \
        place_names(city).spans.drop(index=first)["street"].tolist()


def test_a_geographic_dataset_gets_the_same_names(city: Dataset) -> None:
    """Distances are metres: a dataset in EPSG:4326 is measured in its UTM zone."""
    assert city.streets is not None
    lonlat = Dataset(*(city.layers()[n].to_crs(4326) for n in ("nodes", "spans", "premises",
                                                                "areas")),
                     streets=city.streets.to_crs(4326))
    projected, geographic = place_names(city), place_names(lonlat)
    assert geographic.index.work.to_epsg() == 32632
    assert (projected.spans["street"] == geographic.spans["street"]).mean() > 0.97
    assert projected.spans["area"].tolist() == geographic.spans["area"].tolist()


def test_without_streets_and_areas_everything_is_its_bare_id(city: Dataset) -> None:
    bare = replace(city, streets=None, areas=city.areas.iloc[0:0])
    names = place_names(bare)
    assert names.spans.isna().all().all() and names.nodes.isna().all().all()
    span_id = str(city.spans["span_id"].iloc[0])
    assert names.span_label(span_id) == f"span {span_id}"
    # nothing to add: the very frame comes back
    assert with_places(city.spans, names, id_field="span_id") is city.spans


def test_builds_are_named_by_their_centroid(city: Dataset) -> None:
    from netgis.engine.analysis import analyze
    from netgis.products.progress import ranked_clusters

    clusters = ranked_clusters(analyze(city))
    assert len(clusters)
    names = place_names(city)
    named = with_places(clusters, names)
    assert city.streets is not None
    for place, hull in zip(named["place"], clusters.geometry, strict=True):
        centre = hull.centroid
        parts = [p for p in (_brute_street(centre, city.streets, DEFAULT_STREET_TOLERANCE_M),
                             _brute_area(centre, city.areas)) if p]
        assert place == (", ".join(parts) or None)


def test_a_bad_tolerance_is_refused_by_name(city: Dataset) -> None:
    from netgis.errors import ValidationError

    with pytest.raises(ValidationError, match="tolerance_m"):
        place_names(city, tolerance_m=float("nan"))
