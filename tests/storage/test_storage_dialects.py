"""The dialect shims: distances in meters and bbox filters agree across databases."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import mysql

from netgis.errors import StorageError
from netgis.geodesy import geodesic_distance_m
from netgis.storage import Repository, dialects
from netgis.storage.engine import normalize_url
from netgis.storage.models import LAYER_TABLES


@pytest.mark.parametrize(("a", "b"), [((8.68, 50.11), (8.69, 50.12)),
                                      ((-122.4, 37.77), (-122.0, 37.3)),
                                      ((179.9, -16.5), (179.95, -16.45))])
def test_distance_m_is_geodesic(repo: Repository, a: tuple[float, float],
                                b: tuple[float, float]) -> None:
    dialect = repo.engine.dialect
    expr = dialects.distance_m(dialect, dialects.point(dialect, *a), dialects.point(dialect, *b))
    with repo.engine.connect() as conn:
        got = float(conn.execute(select(expr)).scalar_one())
    want = float(geodesic_distance_m([a[0]], [a[1]], [b[0]], [b[1]])[0])
    assert got == pytest.approx(want, rel=1e-3)


def test_bbox_filter_uses_exact_intersection(repo: Repository) -> None:
    import geopandas as gpd
    import shapely

    nodes = gpd.GeoDataFrame({"node_id": ["a", "b", "c"], "kind": ["core", "splice", "splice"]},
                             geometry=shapely.points([[0, 0], [2, 2], [0, 2]]), crs=4326)
    spans = gpd.GeoDataFrame({"span_id": ["diag", "top"], "from_node": ["a", "c"],
                              "to_node": ["b", "b"]},
                             geometry=[shapely.LineString([(0, 0), (2, 2)]),
                                       shapely.LineString([(0, 2), (2, 2)])], crs=4326)
    premises = gpd.GeoDataFrame({"premise_id": ["p"]}, geometry=[shapely.Point(1, 1)], crs=4326)
    from netgis.dataset import Dataset, empty_layer

    repo.load_dataset(Dataset(nodes, spans, premises, empty_layer("areas")))
    table = LAYER_TABLES["spans"]
    with repo.engine.connect() as conn:
        def hits(bbox: tuple[float, float, float, float]) -> list[str]:
            cond = dialects.bbox_filter(conn.dialect, table, bbox)
            return list(conn.execute(select(table.c.span_id).where(cond)
                                     .order_by(table.c.span_id)).scalars())

        # inside the diagonal's envelope but off the line itself
        assert hits((1.5, 0.1, 1.9, 0.4)) == []
        assert hits((0.9, 0.9, 1.1, 1.1)) == ["diag"]
        assert hits((-1.0, -1.0, 3.0, 3.0)) == ["diag", "top"]


def test_urls_and_unsupported_databases() -> None:
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"
    from netgis.errors import ConfigError

    with pytest.raises(ConfigError):
        normalize_url("mysql://u@h/db")
    with pytest.raises(ConfigError):
        normalize_url("not a url")
    with pytest.raises(StorageError):
        dialects.dialect_name(mysql.dialect())
