"""The builders: layers, legends, feature counts, aggregation, assets, errors."""

from __future__ import annotations

import itertools

import folium
import geopandas as gpd
import pandas as pd
import pytest
import shapely

from netgis.engine.analysis import Analysis, scenario
from netgis.errors import ConfigError, NotFoundError, ValidationError
from netgis.maps import (
    areas_map,
    build_map,
    coverage_map,
    criticality_map,
    gaps_map,
    inline_html,
    static_dir,
)
from netgis.maps._base import VectorTileLayer
from tests.maps.helpers import (
    asset_urls,
    features_by_class,
    overlay_names,
    properties,
    walk,
)


def test_coverage_ring_spur_counts_and_popups(ring: Analysis) -> None:
    m = coverage_map(ring.premises, ring.spans, ring.nodes)
    counts = features_by_class(m)
    # README: every premise but p_far is passed; all six spans are lit; C core, A/B/D cabinets
    assert counts == {"netgis-premise-passed": 5, "netgis-premise-unpassed": 1,
                      "netgis-span-lit": 6, "netgis-core": 1, "netgis-cabinet": 3}
    (far,) = properties(m, "netgis-premise-unpassed")
    assert far["premise_id"] == "p_far" and far["_id"] == "p_far" and far["passed"] is False
    spur2 = next(p for p in properties(m, "netgis-premise-passed") if p["premise_id"] == "p_spur2")
    assert spur2["served_span_id"] == "s6" and spur2["distance_m"] == pytest.approx(50.02, abs=0.05)
    assert spur2["units"] == 5
    names = overlay_names(m)
    assert "Premises passed, in budget (margin 3 dB or more) (5)" in names
    assert "Premises not passed (1)" in names
    html = m.get_root().render()
    assert "netgis-legend" in html and "not passed" in html
    layer_controls = [e for e in walk(m) if isinstance(e, folium.LayerControl)]
    assert len(layer_controls) == 1


def test_coverage_city_classes_match_analysis(city: Analysis) -> None:
    m = coverage_map(city.premises, city.spans, city.nodes)
    counts = features_by_class(m)
    s = city.spans
    assert counts["netgis-premise-passed"] == int(city.premises["passed"].sum())
    assert counts["netgis-premise-unpassed"] == int((~city.premises["passed"]).sum())
    assert counts["netgis-span-lit"] == int(s["lit"].sum())
    assert counts["netgis-span-planned"] == int(((s["status"] == "planned") & ~s["lit"]).sum())
    assert counts["netgis-span-unlit"] == int(((s["status"] != "planned") & ~s["lit"]).sum())
    assert counts["netgis-cabinet"] == int((city.nodes["kind"] == "cabinet").sum())
    assert sum(counts.values()) == (len(city.premises) + len(s)
                                    + int(city.nodes["kind"].isin(["core", "cabinet"]).sum()))


def test_coverage_rolls_up_to_hexagons_above_the_cap(city: Analysis) -> None:
    m = coverage_map(city.premises, city.spans, city.nodes, max_features=30, hex_resolution=8)
    counts = features_by_class(m)
    assert "netgis-premise-passed" not in counts
    hexes = properties(m, "netgis-hex")
    assert len(hexes) == counts["netgis-hex"] > 1
    assert sum(h["premises"] for h in hexes) == len(city.premises)
    assert sum(h["units_passed"] for h in hexes) == int(
        city.premises.loc[city.premises["passed"], "units"].sum())
    assert len({h["h3_cell"] for h in hexes}) == len(hexes)
    # spans above the cap: one merged feature per span class
    assert counts["netgis-span-lit"] == 1
    assert properties(m, "netgis-span-lit")[0]["features"] == int(city.spans["lit"].sum())
    assert m.options["prefer_canvas"] is True
    assert "rolled up to H3 res 8" in m.get_root().render()


def test_criticality_ring_spur(ring: Analysis) -> None:
    sc = scenario(ring, nodes=["E"])
    area = shapely.box(477268 + 650, 5551310 + 200, 477268 + 900, 5551310 + 350)
    m = criticality_map(ring.spans, ring.nodes, premises=ring.premises, scenario=sc,
                        scenario_area=area, scenario_area_crs=ring.premises.crs)
    counts = features_by_class(m)
    # README: s5 (7 units) and s6 (6 units) are bridges; B (7) and E (6) are SPOF nodes
    assert counts["netgis-span-spof"] == 2 and counts["netgis-span-safe"] == 4
    assert sorted(p["span_id"] for p in properties(m, "netgis-span-spof")) == ["s5", "s6"]
    assert sorted(p["node_id"] for p in properties(m, "netgis-node-spof")) == ["B", "E"]
    assert {p["span_id"]: p["cut_units"] for p in properties(m, "netgis-span-spof")} == {
        "s5": 7, "s6": 6}
    lost = sorted(p["premise_id"] for p in properties(m, "netgis-scenario-premise"))
    assert lost == sorted(sc.premise_ids) == ["p_end", "p_spur2"]
    assert [p["node_id"] for p in properties(m, "netgis-scenario-node")] == ["E"]
    assert counts["netgis-scenario-area"] == 1
    assert "2 premises, 6 units lost" in m.get_root().render()


def test_criticality_weights_grow_with_cut_units(city: Analysis) -> None:
    m = criticality_map(city.spans, city.nodes)
    weight_of = {}
    for layer in [e for e in walk(m) if isinstance(e, folium.GeoJson)]:
        feats = layer.data["features"]
        style = layer.style_function(feats[0])
        if style["className"] == "netgis-span-spof":
            for f in feats:
                weight_of[f["properties"]["span_id"]] = (f["properties"]["cut_units"],
                                                         style["weight"])
    assert len(weight_of) == int((city.spans["cut_units"] > 0).sum()) > 0
    pairs = sorted(weight_of.values())
    assert all(w1 <= w2 for (_, w1), (_, w2) in itertools.pairwise(pairs))


def test_criticality_caps_spof_layers(city: Analysis) -> None:
    m = criticality_map(city.spans, city.nodes, max_features=3)
    spof = properties(m, "netgis-span-spof")
    assert len(spof) == 3
    worst = sorted(city.spans["cut_units"], reverse=True)[:3]
    assert sorted((p["cut_units"] for p in spof), reverse=True) == worst
    # every other span (critical ones beyond the cap too) is the grey line, merged
    assert properties(m, "netgis-span-safe")[0]["features"] == len(city.spans) - 3


def test_criticality_draws_other_spans_from_vector_tiles_above_the_cap(city: Analysis) -> None:
    tiles = "/tiles/{layer}/{z}/{x}/{y}.mvt"
    m = criticality_map(city.spans, city.nodes, max_features=3, vector_tiles=tiles)
    # the worst three still drawn as GeoJSON, the rest from the spans tiles (not merged)
    assert len(properties(m, "netgis-span-spof")) == 3
    assert "netgis-span-safe" not in features_by_class(m)
    grids = [e for e in walk(m) if isinstance(e, VectorTileLayer)]
    assert [(g.layer, g.id_field) for g in grids] == [("spans", "span_id")]
    assert grids[0].url == tiles.replace("{layer}", "spans")
    assert [r["style"]["className"] for r in grids[0].rules] == ["netgis-span-safe"]
    # the legend says so (its text is escaped into the page's script)
    page = m.get_root().render()
    assert f"{len(city.spans) - 3} other spans \\u0026gt; 3: drawn from vector tiles" in page


def test_gaps_hexagons_sum_to_unpassed_units(city: Analysis) -> None:
    p = city.premises
    ranking = gpd.GeoDataFrame(
        {"rank": [2, 1, 3], "cluster_id": ["g2", "g1", "g3"], "units": [4, 9, 1]},
        geometry=list(p.geometry.iloc[:3]), crs=p.crs)
    m = gaps_map(p, spans=city.spans, ranking=ranking, max_rank_labels=2)
    hexes = properties(m, "netgis-gap-hex")
    unpassed = p[~p["passed"]]
    assert sum(h["units"] for h in hexes) == int(unpassed["units"].sum())
    assert sum(h["premises"] for h in hexes) == len(unpassed)
    assert all(h["h3_cell"] and len(h["h3_cell"]) == 15 for h in hexes)
    assert features_by_class(m)["netgis-premise-unpassed"] == len(unpassed)
    html = m.get_root().render()
    assert "Build ranking (top 2)" in html
    assert '"label": "1"' in html and '"label": "2"' in html and '"label": "3"' not in html
    assert "g1" in html


def test_gaps_ranking_by_h3_cell(ring: Analysis) -> None:
    m = gaps_map(ring.premises, ranking=pd.DataFrame({"rank": [1], "h3_cell": ["881f1d4a01fffff"]}))
    html = m.get_root().render()
    assert "881f1d4a01fffff" in html
    (hexagon,) = properties(m, "netgis-gap-hex")
    assert hexagon["units"] == 1 and hexagon["min_distance_m"] == pytest.approx(300.1, abs=0.2)


def test_areas_choropleth(ring: Analysis) -> None:
    areas = ring.dataset.areas
    m = areas_map(areas, ring.kpis["areas"], protected="span_protected_pct")
    cov = {p["area_id"]: p for p in properties(m, "netgis-area-coverage")}
    prot = {p["area_id"]: p for p in properties(m, "netgis-area-protected")}
    assert set(cov) == set(prot) == {"west", "east"}
    # README: west 100 % covered and protected, east 88.9 % covered, 12.5 % protected
    assert cov["west"]["coverage_pct"] == 100.0 and cov["east"]["coverage_pct"] == 88.9
    assert prot["east"]["span_protected_pct"] == 12.5
    assert "Span protected % (2 areas)" in overlay_names(m)
    with pytest.raises(ConfigError):
        areas_map(areas, ring.kpis["areas"], protected="nonsense_pct")


def test_existing_map_gets_layers_and_one_control(ring: Analysis) -> None:
    m = coverage_map(ring.premises, ring.spans, ring.nodes)
    m2 = criticality_map(ring.spans, ring.nodes, m=m)
    assert m2 is m
    controls = [k for k, e in m._children.items() if isinstance(e, folium.LayerControl)]
    order = list(m._children)
    groups = [k for k, e in m._children.items() if isinstance(e, folium.FeatureGroup)]
    assert len(controls) == 1 and order.index(controls[0]) > max(order.index(g) for g in groups)
    fits = [e for e in m._children.values() if isinstance(e, folium.FitBounds)]
    assert len(fits) == 1  # one extent over what both builders drew
    counts = features_by_class(m)
    assert counts["netgis-premise-passed"] == 5 and counts["netgis-span-spof"] == 2


def test_pages_reference_only_local_assets(ring: Analysis) -> None:
    m = coverage_map(ring.premises, ring.spans, ring.nodes, base_url="/netgis/static/")
    urls = asset_urls(m.get_root().render())
    assert urls and all(u.startswith("/netgis/static/vendor/") for u in urls)
    for u in urls:
        assert (static_dir() / u.removeprefix("/netgis/static/")).is_file()
    assert "cdn" not in m.get_root().render().lower()
    assert folium.Map.default_js[0][1].startswith("https://")  # the class lists stay untouched


def test_inline_page_is_self_contained(ring: Analysis) -> None:
    html = inline_html(gaps_map(ring.premises, spans=ring.spans))
    assert asset_urls(html) == []
    assert "url(images/" not in html and "data:image/png;base64," in html
    assert "L.map(" in html and "sourceMappingURL" not in html


def test_tile_layer_is_configurable(ring: Analysis) -> None:
    url = "http://127.0.0.1:9/tiles/{z}/{x}/{y}.png"
    m = coverage_map(ring.premises, ring.spans, ring.nodes, tiles_url=url, tiles_attribution="me")
    tiles = [e for e in walk(m) if isinstance(e, folium.TileLayer)]
    assert len(tiles) == 1 and tiles[0].tiles == url
    plain = coverage_map(ring.premises, ring.spans, ring.nodes)
    assert not [e for e in walk(plain) if isinstance(e, folium.TileLayer)]


def test_inputs_are_not_changed(ring: Analysis) -> None:
    before = ring.premises.copy()
    coverage_map(ring.premises, ring.spans, ring.nodes, max_features=2)
    pd.testing.assert_frame_equal(ring.premises, before)


def test_missing_columns_and_bad_options(ring: Analysis) -> None:
    with pytest.raises(ValidationError) as err:
        coverage_map(ring.dataset.premises, ring.spans, ring.nodes)
    assert err.value.problems[0].layer == "premises"
    assert err.value.problems[0].field == "passed"
    with pytest.raises(ValidationError):
        criticality_map(ring.dataset.spans, ring.nodes)
    with pytest.raises(ConfigError):
        coverage_map(ring.premises, ring.spans, ring.nodes, max_features=0)
    with pytest.raises(ConfigError):
        gaps_map(ring.premises, resolution=16)


def test_empty_layers_still_render(ring: Analysis) -> None:
    pages = [
        areas_map(ring.dataset.areas.iloc[:0], []),
        coverage_map(ring.premises.iloc[:0], ring.spans, ring.nodes),
        gaps_map(ring.premises.iloc[:0]),
        criticality_map(ring.spans.iloc[:0], ring.nodes.iloc[:0]),
    ]
    for m in pages:
        assert "L.map(" in m.get_root().render()
    assert features_by_class(pages[1])["netgis-span-lit"] == 6
    assert "netgis-premise-passed" not in features_by_class(pages[1])


def test_build_map_by_kind(ring: Analysis) -> None:
    for kind, cls in (("coverage", "netgis-premise-passed"), ("criticality", "netgis-span-spof"),
                      ("gaps", "netgis-gap-hex"), ("areas", "netgis-area-coverage")):
        assert cls in features_by_class(build_map(kind, ring))
    sc = scenario(ring, spans=["s6"])
    m = build_map("criticality", ring, scenario=sc)
    assert sorted(p["premise_id"] for p in properties(m, "netgis-scenario-premise")) == [
        "p_end", "p_spur2"]
    with pytest.raises(ConfigError):
        build_map("heat", ring)


def test_build_map_clipped_to_area_and_bbox(ring: Analysis) -> None:
    west = build_map("coverage", ring, area_id="west")
    # README: west holds p_north100 and p_ring, the four ring spans and part of s5
    ids = sorted(p["premise_id"] for p in properties(west, "netgis-premise-passed"))
    assert ids == ["p_north100", "p_ring"]
    assert sorted(p["span_id"] for p in properties(west, "netgis-span-lit")) == [
        "s1", "s2", "s3", "s4", "s5"]
    areas = build_map("areas", ring, area_id="east")
    assert [p["area_id"] for p in properties(areas, "netgis-area-coverage")] == ["east"]
    far = ring.premises.to_crs(4326).geometry[ring.premises["premise_id"] == "p_far"].iloc[0]
    box = (far.x - 0.0005, far.y - 0.0005, far.x + 0.0005, far.y + 0.0005)
    m = build_map("coverage", ring, bbox=box)
    assert features_by_class(m) == {"netgis-premise-unpassed": 1}
    with pytest.raises(NotFoundError):
        build_map("coverage", ring, area_id="nowhere")
    with pytest.raises(ValidationError):
        build_map("coverage", ring, bbox=(1.0, 2.0, 0.0, 3.0))


def test_coverage_colours_passed_premises_by_optical_margin() -> None:
    from netgis.engine.analysis import analyze
    from netgis.io import read_dataset
    from tests.helpers import EXAMPLES_DIR

    r = analyze(read_dataset(EXAMPLES_DIR / "optical_ring" / "dataset.gpkg"))
    m = coverage_map(r.premises, r.spans, r.nodes)
    counts = features_by_class(m)
    # README: p_tight has 0.12 dB to spare, p_too_far is 0.58 dB over, three have room
    assert counts["netgis-premise-passed"] == 3
    assert counts["netgis-premise-tight"] == 1 and counts["netgis-premise-out-of-budget"] == 1
    (tight,) = properties(m, "netgis-premise-tight")
    assert tight["premise_id"] == "p_tight" and tight["margin_db"] == pytest.approx(0.12, abs=0.02)
    (out,) = properties(m, "netgis-premise-out-of-budget")
    assert out["premise_id"] == "p_too_far" and out["in_budget"] is False
    assert out["loss_splitter_db"] == pytest.approx(13.7) and out["loss_fiber_km"] > 36
    html = m.get_root().render()
    assert "out of optical budget" in html and "optical loss dB" in html
