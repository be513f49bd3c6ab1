"""Degenerate networks: plant that lights nothing, or has nothing to light (tests only).

Each :class:`Degenerate` is a tiny hand-drawn dataset (UTM 32N drawing meters, see
:mod:`tests.netbuild`) and what the rule says about it, worked out here and not read
from netgis's output:

- light starts at an in-service core and runs along in-service spans between
  in-service nodes; with no in-service core nothing is lit (a validation
  warning, never an error);
- a premise with no lit span at all is not passed, its distance_m is null, it is
  protected against nothing, its loss_db is null and it is not in budget;
- a span that is not lit, and a lit span nobody hangs on, cut off nobody; no
  node's failure costs anybody;
- a KPI whose denominator is zero is null; counts are zero.

No premise of these networks is passed, so every KPI follows from the drawing:
the totals, and the in-service cable (geodesic: drawn length times 1.0004 near
lat 50, see tests/examples/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shapely import Point, Polygon, box

from netgis.dataset import Dataset
from netgis.errors import Problem
from tests.netbuild import dataset

#: The warning validation gives a dataset without an in-service core.
NO_CORE_WARNING = Problem("nodes", None, "kind", "no in-service core node: nothing is lit")
#: Geodesic / drawn length of a line near the drawings' origin (UTM scale factor).
SCALE = 1.0004
#: Fiber count of every span of tests.netbuild.
FIBERS = 24
#: Every drawing fits this box; an area of it covers all premises.
EVERYTHING = box(-100, -100, 500, 500)
#: A point 20 m off the middle of s1 (A/C at x=0 to B at x=300): passed once s1 is lit.
NEAR_S1 = (150.0, 20.0)
#: A point far from all plant: never passed.
FAR = (150.0, 2000.0)


@dataclass(frozen=True)
class Degenerate:
    """A dataset (tests.netbuild tuples) and the spans the rule lights in it."""

    name: str
    nodes: tuple[tuple[Any, ...], ...]
    spans: tuple[tuple[Any, ...], ...]
    premises: tuple[tuple[Any, ...], ...]
    lit: frozenset[str]
    areas: tuple[tuple[str, Polygon], ...] = ()

    def dataset(self) -> Dataset:
        return dataset(self.nodes, self.spans, self.premises, self.areas)

    @property
    def no_core(self) -> bool:
        """No node is an in-service core (nodes: id, x, y, kind, status)."""
        return not any(_field(n, 3, "cabinet") == "core" and _field(n, 4, "in_service")
                       == "in_service" for n in self.nodes)

    def units(self) -> dict[str, int]:
        return {str(p[0]): int(p[3]) if len(p) > 3 else 1 for p in self.premises}

    def in_service_km(self) -> float:
        """Geodesic km of the in-service spans (all drawn straight, none overlapping)."""
        where = {n[0]: (n[1], n[2]) for n in self.nodes}
        drawn = sum(((where[s[1]][0] - where[s[2]][0]) ** 2
                     + (where[s[1]][1] - where[s[2]][1]) ** 2) ** 0.5
                    for s in self.spans if _field(s, 3, "in_service") == "in_service")
        return drawn * SCALE / 1000

    def network_kpis(self) -> dict[str, Any]:
        """kpis.json["network"] by the rule: nothing passed, null where nothing to divide by."""
        return kpis_of(self.units(), self.in_service_km())

    def area_kpis(self) -> list[dict[str, Any]]:
        """Per area: its premises' numbers beside the plant's (drawn inside every area)."""
        out = []
        for area_id, polygon in self.areas:
            assert all(polygon.covers(Point(n[1], n[2])) for n in self.nodes)
            inside = {p[0]: u for p, u in zip(self.premises, self.units().values(), strict=True)
                      if polygon.covers(Point(p[1], p[2]))}
            row = {"area_id": area_id, "name": area_id,
                   **kpis_of(inside, self.in_service_km())}
            del row["spof_spans"], row["spof_nodes"]
            out.append(row)
        return out


def _field(item: tuple[Any, ...], at: int, default: str) -> str:
    """Position ``at`` of a tests.netbuild tuple, or its default when left out."""
    return str(item[at]) if len(item) > at else default


def kpis_of(units: dict[str, int], cable_km: float) -> dict[str, Any]:
    """The KPIs of premises of which none is passed, beside ``cable_km`` of plant."""
    total = sum(units.values())
    coverage = 0.0 if total else None
    return {
        "premises_total": len(units), "units_total": total, "premises_passed": 0,
        "units_passed": 0, "coverage_pct": coverage, "units_connected": 0,
        "take_rate_pct": None, "span_protected_pct": None, "node_protected_pct": None,
        "duct_protected_pct": None, "cable_km": cable_km, "route_km": cable_km,
        "fiber_km": cable_km * FIBERS, "utilization_pct": None, "spof_spans": 0,
        "spof_nodes": 0, "units_in_budget": 0, "budget_coverage_pct": coverage,
    }


def close(key: str, got: Any, want: Any) -> bool:
    """``got`` is ``want``: km within 1 % (the examples' tolerance), all else exactly."""
    if key.endswith("_km") and isinstance(want, float) and want:
        return isinstance(got, float) and abs(got - want) <= 0.01 * want
    return bool(got == want) and type(got) is type(want)


CASES = (
    # two cabinets and a span in service, but no core: light starts nowhere
    Degenerate("no_core", nodes=(("A", 0, 0), ("B", 300, 0)), spans=(("s1", "A", "B"),),
               premises=(("p1", *NEAR_S1, 2, True), ("p2", *FAR)), lit=frozenset(),
               areas=(("all", EVERYTHING),)),
    # everything still planned, the core too
    Degenerate("planned_only",
               nodes=(("C", 0, 0, "core", "planned"), ("B", 300, 0, "cabinet", "planned")),
               spans=(("s1", "C", "B", "planned"),), premises=(("p1", *NEAR_S1, 3),),
               lit=frozenset()),
    # a core in service, its only span planned: the graph has no edge
    Degenerate("planned_spans", nodes=(("C", 0, 0, "core"), ("B", 300, 0)),
               spans=(("s1", "C", "B", "planned"),), premises=(("p1", *NEAR_S1),),
               lit=frozenset()),
    # nodes and premises, no span at all
    Degenerate("no_spans", nodes=(("C", 0, 0, "core"), ("B", 300, 0)), spans=(),
               premises=(("p1", *NEAR_S1, 2, True),), lit=frozenset()),
    # lit plant and nobody to serve: s1 joins the core to B
    Degenerate("no_premises", nodes=(("C", 0, 0, "core"), ("B", 300, 0)),
               spans=(("s1", "C", "B"),), premises=(), lit=frozenset({"s1"}),
               areas=(("all", EVERYTHING),)),
)
CASE_IDS = [c.name for c in CASES]
