"""GET /analysis/serviceability warns about a position far outside the plant and suggests
swapped coordinates when the swap lands inside it."""

from __future__ import annotations

import math
from pathlib import Path

from fastapi.testclient import TestClient

from netgis.api.app import create_app
from netgis.engine.analysis import position_warnings
from netgis.generate import generate_city
from netgis.schema import FAR_OUTSIDE_M
from tests.api.helpers import make_settings


def test_swapped_far_and_near_positions(tmp_path: Path) -> None:
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'w.db'}"))
    with TestClient(app) as client:
        app.state.repo.load_dataset(generate_city(premises=200, seed=3))
        _, result = app.state.services.analysis()
        west, south, east, north = result.plant_extent
        lon, lat = (west + east) / 2, (south + north) / 2

        inside = client.get("/analysis/serviceability", params={"lon": lon, "lat": lat})
        assert inside.status_code == 200
        assert inside.json()["warnings"] == []

        swapped = client.get("/analysis/serviceability", params={"lon": lat, "lat": lon})
        body = swapped.json()
        assert swapped.status_code == 200
        # the existing answer is unchanged: still not passed, thousands of km away
        assert body["passed"] is False and body["distance_m"] > 1_000_000
        codes = [w["code"] for w in body["warnings"]]
        assert codes == ["far_outside_plant", "swapped_coordinates"]
        far, swap = body["warnings"]
        assert far["distance_m"] > 1_000_000 and "km outside" in far["message"]
        assert (swap["lon"], swap["lat"]) == (lon, lat)

        # far, but swapping does not help either (a latitude beyond +-90 cannot be swapped in)
        ocean = client.get("/analysis/serviceability", params={"lon": -150.0, "lat": -40.0})
        assert [w["code"] for w in ocean.json()["warnings"]] == ["far_outside_plant"]

        # just beyond the plant: within the margin there is no warning, past it there is
        step = (FAR_OUTSIDE_M / 2) / (111_320 * math.cos(math.radians(lat)))
        near = client.get("/analysis/serviceability", params={"lon": east + step, "lat": lat})
        assert near.json()["warnings"] == []
        beyond = east + 3 * step
        assert [w["code"] for w in position_warnings(result, beyond, lat)] == [
            "far_outside_plant"]
        doc = client.get("/openapi.json").json()
        assert "PositionWarning" in doc["components"]["schemas"]
