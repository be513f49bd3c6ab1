"""Result fields are declared once (netgis.schema) and every output reads them."""

from __future__ import annotations

import csv
import types
from pathlib import Path
from typing import get_type_hints

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from netgis.engine.analysis import Analysis, analyze, scenario
from netgis.engine.graph import network_from_gdfs, network_to_gdfs
from netgis.engine.kpis import AreaKpis, NetworkKpis
from netgis.engine.outputs import write_outputs
from netgis.io import read_dataset
from netgis.schema import (
    AREA_KPIS,
    KPI_BY_NAME,
    KPI_FIELDS,
    NETWORK_KPIS,
    RESULT_FIELDS,
    result_columns,
)

EXAMPLE = Path(__file__).parent / "examples" / "ring_spur" / "dataset.gpkg"
DTYPE_CHECK = {"bool": pd.api.types.is_bool_dtype, "int": pd.api.types.is_integer_dtype,
               "float": pd.api.types.is_float_dtype, "text": pd.api.types.is_object_dtype}


@pytest.fixture(scope="module")
def result() -> Analysis:
    return analyze(read_dataset(EXAMPLE))


@pytest.mark.parametrize("layer", sorted(RESULT_FIELDS))
def test_every_declared_column_is_produced_with_its_dtype(result: Analysis, layer: str) -> None:
    frame: gpd.GeoDataFrame = getattr(result, layer)
    for f in RESULT_FIELDS[layer]:
        assert f.name in frame.columns, f"{layer}.{f.name} declared but not produced"
        assert DTYPE_CHECK[f.type](frame[f.name].dtype), (layer, f.name, frame[f.name].dtype)
        if not f.nullable:
            assert frame[f.name].notna().all(), f"{layer}.{f.name} is not nullable"


@pytest.mark.parametrize("layer", sorted(RESULT_FIELDS))
def test_csv_headers_come_from_the_schema(result: Analysis, layer: str, tmp_path: Path) -> None:
    write_outputs(result, tmp_path)
    with (tmp_path / f"{layer}.csv").open(newline="") as fh:
        header = next(csv.reader(fh))
    assert tuple(header) == result_columns(layer, contract_only=True)
    assert "length_m" not in result_columns("spans", contract_only=True)
    assert "length_m" in result_columns("spans")


def test_kpis_follow_the_declared_fields(result: Analysis) -> None:
    network = result.kpis["network"]
    assert tuple(network) == NETWORK_KPIS
    for f in KPI_FIELDS:
        value = network[f.name]  # type: ignore[literal-required]
        assert value is None or isinstance(value, int if f.type == "int" else float), f.name


@pytest.mark.parametrize(("typed", "declared", "extra"), [
    (NetworkKpis, NETWORK_KPIS, set()),
    (AreaKpis, AREA_KPIS, {"area_id", "name"}),
])
def test_kpi_types_hold_the_declared_kpis(typed: type, declared: tuple[str, ...],
                                          extra: set[str]) -> None:
    """The TypedDicts of netgis.engine.kpis name exactly the KPIs of the schema (a KPI added
    on one side only fails here), each typed as its KpiField says."""
    hints = get_type_hints(typed)
    assert set(hints) - extra == set(declared)
    for name in declared:
        hint = hints[name]
        kinds = set(hint.__args__) if isinstance(hint, types.UnionType) else {hint}
        assert kinds - {type(None)} == {int if KPI_BY_NAME[name].type == "int" else float}, name


def test_scenario_is_typed_and_its_summary_is_json_ready(result: Analysis) -> None:
    sc = scenario(result, spans=["s5"])
    assert sc.lost.dtype == np.bool_ and len(sc.lost) == len(result.premises)
    assert sorted(result.premises["premise_id"].to_numpy()[sc.lost]) == sc.premise_ids
    assert set(sc.summary()) == {"premises", "units", "premise_ids", "failed_spans",
                                 "failed_nodes"}
    assert sc.failed_spans == ["s5"] and sc.premises == len(sc.premise_ids)


def test_unknown_span_ids_map_to_no_edge(result: Analysis) -> None:
    edges = result.edges_of(["s1", "nope", None])
    assert edges[0] >= 0 and list(edges[1:]) == [-1, -1]
    assert result.graph.edge_span[edges[0]] == "s1"


def test_network_graph_round_trip() -> None:
    ds = read_dataset(EXAMPLE)
    G = network_from_gdfs(ds.nodes, ds.spans)
    nodes, spans = network_to_gdfs(G)
    assert G.graph["crs"] == nodes.crs == spans.crs == ds.crs
    back = network_from_gdfs(nodes, spans.drop(columns="length_m"))
    assert sorted(back.nodes) == sorted(G.nodes)
    assert sorted(back.edges(keys=True)) == sorted(G.edges(keys=True))
    for u, v, k, data in G.edges(keys=True, data=True):
        other = back.edges[u, v, k]
        assert other["length_m"] == pytest.approx(data["length_m"], rel=1e-12)
        assert other["geometry"].equals(data["geometry"])
        assert (other["from_node"], other["to_node"]) == (data["from_node"], data["to_node"])
    got = spans.set_index("span_id").sort_index()
    want = ds.spans.set_index("span_id").sort_index()
    assert list(got["from_node"]) == list(want["from_node"])
    assert got.geometry.geom_equals(want.geometry).all()
