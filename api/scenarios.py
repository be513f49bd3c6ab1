"""What-if scenarios (``POST /analysis/scenarios`` and a design plan's
``POST /plans/{name}/scenarios``): the request and answer models and the computation,
shared by the two routers (routers never import each other).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import shapely
from pydantic import BaseModel, ConfigDict, Field

from netgis.api.errors import ProblemItem
from netgis.api.geojson import Geometry, frame_to_features
from netgis.api.routers.common import timestamp
from netgis.errors import Problem, ValidationError
from netgis.schema import LAYERS, RESULT_FIELDS

if TYPE_CHECKING:
    from netgis.engine.analysis import Analysis


class OpticsWhatIf(BaseModel):
    """Other optical parameters, or split ratios at some nodes, without editing data."""

    model_config = ConfigDict(extra="forbid")

    pon_class: Literal["gpon-b+", "gpon-c+", "xgs-pon-n1", "xgs-pon-n2"] | None = None
    budget_db: float | None = Field(None, ge=0, le=100)
    atten_db_per_km: float | None = Field(None, ge=0, le=10)
    splice_db: float | None = Field(None, ge=0, le=10)
    fixed_db: float | None = Field(None, ge=0, le=50)
    split_ratios: dict[str, int] = Field(
        default_factory=dict, description="node_id -> N: the splitter becomes a 1:N one (a "
                                          "node that is not a splitter is a 422).")


class ScenarioIn(BaseModel):
    """Everything that fails at once: spans, nodes, ducts and an area (WGS84 polygon);
    and what-ifs on the optical parameters."""

    model_config = ConfigDict(extra="forbid")  # {"span": [...]} is a 422, not "no impact"

    spans: list[str] = Field(default_factory=list)
    nodes: list[str] = Field(default_factory=list)
    ducts: list[str] = Field(default_factory=list)
    area: Geometry | None = Field(None, description="A Polygon or MultiPolygon (WGS84).")
    drop_m: float | None = Field(None, gt=0, le=100_000)
    optics: OpticsWhatIf | None = Field(
        None, description="Premises that enter or leave the budget under these parameters.")


class BudgetChange(BaseModel):
    """Premises that enter or leave the optical budget under a what-if."""

    budget_db: float
    split_ratios: dict[str, int]
    units_in_budget_before: int
    units_in_budget_after: int
    units_entering: int
    units_leaving: int
    entering: list[str]
    leaving: list[str]
    warnings: list[ProblemItem] = Field(
        default_factory=list, description="Named splitters that serve no passed premise: "
                                          "their split ratio changes nothing.")


class ScenarioResult(BaseModel):
    """The premises passed before the scenario that lose every path to a working core."""

    data_version: int
    drop_m: float
    impacted_premises: int
    impacted_units: int
    failed_spans: list[str]
    failed_nodes: list[str]
    premises: Any = Field(description="The impacted premises as a GeoJSON FeatureCollection "
                          "(at most the server's page limit; numberMatched tells all).")
    optics: BudgetChange | None = None


def scenario_area(body: ScenarioIn) -> shapely.Geometry | None:
    """The scenario's area as a shapely polygon (None when not given).

    Raises
    ------
    ValidationError
        Naming ``area`` when it is not a valid, non-empty Polygon or MultiPolygon.
    """
    if body.area is None:
        return None
    if body.area.type not in ("Polygon", "MultiPolygon"):
        raise ValidationError([Problem("scenario", None, "area",
                                       "must be a Polygon or MultiPolygon")])
    try:
        area = shapely.from_geojson(body.area.model_dump_json(exclude_none=True))
    except shapely.errors.GEOSException as exc:
        raise ValidationError([Problem("scenario", None, "area",
                                       f"not a valid GeoJSON geometry ({exc})")]) from None
    if area.is_empty or not area.is_valid:
        raise ValidationError([Problem("scenario", None, "area",
                                       "the polygon is empty or not valid")])
    return area


def run_scenario(result: Analysis, version: int, body: ScenarioIn,
                 area: shapely.Geometry | None, *, page_limit: int) -> ScenarioResult:
    """The premises of ``result`` (the analysis of data version ``version``) that lose
    service when everything ``body`` names fails, and its optical what-if; at most
    ``page_limit`` premises listed."""
    from netgis.engine.analysis import budget_scenario, scenario
    from netgis.engine.optics import LossBudget

    out = scenario(result, spans=body.spans, nodes=body.nodes, ducts=body.ducts, area=area,
                   area_crs=4326)
    change = None
    if body.optics is not None:
        what_if = body.optics
        base = LossBudget.preset(what_if.pon_class) if what_if.pon_class else result.budget
        budget = base.with_(budget_db=what_if.budget_db, atten_db_per_km=what_if.atten_db_per_km,
                            splice_db=what_if.splice_db, fixed_db=what_if.fixed_db)
        what = budget_scenario(result, budget=budget, split_ratios=what_if.split_ratios)
        change = BudgetChange(**what.summary(),
                              warnings=[ProblemItem(**w.as_dict()) for w in what.warnings])
    lost = result.premises[out.lost]
    shown = lost.sort_values("premise_id").iloc[:page_limit].to_crs(4326)
    columns = [*LAYERS["premises"].field_names, *(f.name for f in RESULT_FIELDS["premises"])]
    features = frame_to_features(shown, LAYERS["premises"], columns)
    return ScenarioResult(
        data_version=version, drop_m=result.drop_m,
        impacted_premises=out.premises, impacted_units=out.units,
        failed_spans=out.failed_spans, failed_nodes=out.failed_nodes,
        premises={"type": "FeatureCollection", "features": features,
                  "numberMatched": len(lost), "numberReturned": len(features),
                  "timeStamp": timestamp(), "links": []},
        optics=change,
    )
