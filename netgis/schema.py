"""The data contract: the four layers of a dataset, their fields, enums and defaults.

Validation, file I/O, storage and the API all read this module; none of them
spells a field name or an enum of its own.

Examples
--------
>>> LAYERS["spans"].id_field
'span_id'
>>> [f.name for f in LAYERS["nodes"].fields][:3]
['node_id', 'kind', 'status']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

FieldType = Literal["text", "int", "bool", "float"]

NODE_KINDS = ("core", "cabinet", "splice", "splitter", "handhole", "pole", "other")
STATUSES = ("in_service", "planned", "retired")
Placement = Literal["aerial", "underground", "buried", "submarine", "other"]
PLACEMENTS: tuple[str, ...] = get_args(Placement)
PREMISE_KINDS = ("residential", "business", "anchor", "other")

IN_SERVICE = "in_service"
CORE = "core"
SPLICE = "splice"
SPLITTER = "splitter"
#: Split ratios N of a 1:N passive splitter that a ``splitter`` node may carry.
SPLIT_RATIOS = (2, 4, 8, 16, 32, 64, 128)

#: Default tolerance between a span's ends and its nodes, in meters (a warning only).
SNAP_TOLERANCE_M = 5.0
#: Default maximum drop length for a premise to count as passed, in meters.
DEFAULT_DROP_M = 150.0

# Defaults of the commands, the API and the maps, each defined here once: the command line
# reads them without importing the heavy modules that use them.

#: Default H3 resolution of the gap roll-up (docs/spec.md §2.8): res 8 cells are about 0.74 km².
DEFAULT_H3_RES = 8
#: Default H3 resolution of premises rolled up on maps: res 9 cells are about 0.1 km², a few
#: street blocks.
DEFAULT_HEX_RESOLUTION = 9
#: Above this many features a map layer is rolled up into H3 hexagons or capped.
DEFAULT_MAX_FEATURES = 20_000
#: Default number of the worst spans, and of the worst nodes, a criticality map draws.
DEFAULT_CRITICAL_TOP = 200
#: Default linkage distance of gap clusters, meters: premises this close share a build.
DEFAULT_LINK_M = 250.0
#: Default largest gap cluster, in units: 16 PON ports of a 1:32 split serve 512 homes, the
#: size of a common distribution cabinet. A larger cluster is split at its natural breaks.
DEFAULT_MAX_CLUSTER_UNITS = 512
#: Default largest extent of a gap cluster, meters (diagonal of its bounding box): about the
#: reach of one distribution area from its cabinet.
DEFAULT_MAX_CLUSTER_EXTENT_M = 2_000.0
#: Default placement of new route, which prices a build.
DEFAULT_PLACEMENT: Placement = "underground"
#: Default distance, meters, within which an unpassed BEAD location counts as reachable.
DEFAULT_REACH_M = 500.0
#: A position asked about more than this many meters beyond the box of the plant's nodes
#: is "far outside" the plant (a warning; a swap of lon/lat that lands inside is suggested).
FAR_OUTSIDE_M = 10_000.0
#: Hits an address search returns when the caller does not say, and at most (API ``limit``).
DEFAULT_SEARCH_LIMIT = 10
MAX_SEARCH_LIMIT = 50
#: The map kinds, as the command line and the API name them (the maps package builds them).
MAP_KINDS = ("coverage", "criticality", "gaps", "areas")


@dataclass(frozen=True)
class Field:
    """One attribute column of a layer."""

    name: str
    type: FieldType
    required: bool = False
    enum: tuple[str, ...] | None = None
    default: str | int | bool | None = None
    minimum: int | None = None
    description: str = ""


@dataclass(frozen=True)
class Layer:
    """One layer of a dataset: an id field, attribute fields and allowed geometry types."""

    name: str
    id_field: str
    fields: tuple[Field, ...]
    geometry_types: tuple[str, ...]
    required: bool = True
    description: str = ""

    @property
    def field_names(self) -> list[str]:
        """The names of the layer's attribute fields, in schema order."""
        return [f.name for f in self.fields]

    def field(self, name: str) -> Field:
        """The field called ``name``; KeyError when the layer has none."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


NODES = Layer(
    name="nodes",
    id_field="node_id",
    description="Points of the plant: central offices, cabinets, splices, poles.",
    geometry_types=("Point",),
    fields=(
        Field("node_id", "text", required=True, description="Unique node id."),
        Field("kind", "text", enum=NODE_KINDS, default="other",
              description="core nodes are sources of service."),
        Field("status", "text", enum=STATUSES, default=IN_SERVICE),
        Field("name", "text"),
        Field("split_ratio", "int", minimum=2,
              description="splitter nodes only: N of a 1:N splitter (2, 4, ..., 128)."),
    ),
)

SPANS = Layer(
    name="spans",
    id_field="span_id",
    description="Fiber cable sections between two nodes.",
    geometry_types=("LineString",),
    fields=(
        Field("span_id", "text", required=True, description="Unique span id."),
        Field("from_node", "text", required=True, description="node_id of one end."),
        Field("to_node", "text", required=True, description="node_id of the other end."),
        Field("status", "text", enum=STATUSES, default=IN_SERVICE),
        Field("fiber_count", "int", minimum=0),
        Field("fibers_used", "int", minimum=0, description="0..fiber_count."),
        Field("placement", "text", enum=PLACEMENTS),
        Field("duct_id", "text", description="Spans sharing a duct_id fail together."),
        Field("owner", "text"),
        Field("install_year", "int"),
    ),
)

PREMISES = Layer(
    name="premises",
    id_field="premise_id",
    description="Homes, businesses and other locations to serve.",
    geometry_types=("Point",),
    fields=(
        Field("premise_id", "text", required=True, description="Unique premise id."),
        Field("units", "int", default=1, minimum=1, description="Living/business units."),
        Field("kind", "text", enum=PREMISE_KINDS, default="residential"),
        Field("connected", "bool", default=False, description="Has an active subscription."),
        Field("address", "text"),
        Field("location_id", "text", description="FCC Fabric location id where known."),
    ),
)

AREAS = Layer(
    name="areas",
    id_field="area_id",
    description="Polygons for roll-ups: districts, counties, service areas.",
    geometry_types=("Polygon", "MultiPolygon"),
    required=False,
    fields=(
        Field("area_id", "text", required=True, description="Unique area id."),
        Field("name", "text"),
    ),
)

LAYERS: dict[str, Layer] = {layer.name: layer for layer in (NODES, SPANS, PREMISES, AREAS)}
LAYER_NAMES: tuple[str, ...] = tuple(LAYERS)


# --------------------------------------------------------------------------- strand-level plant
# The seven optional attribute tables of docs/strands.md: the glass inside the route. A dataset
# without them validates, analyses and writes exactly what it did before they existed.

STRAND_STATES = ("reserved", "broken")
CONNECTION_KINDS = ("splice", "connector")
#: Terminal types a connection may name, and the ones a drop may take its light from.
TERMINAL_TYPES = ("strand", "olt", "in", "out")
DROP_SOURCE_TYPES = ("strand", "out")
#: The two pieces of a strand at a node: toward the cable's to_node, or back to its from_node.
STRAND_SIDES = ("to", "from")
#: Loss of a connection that records none, by kind (dB).
DEFAULT_CONNECTOR_DB = 0.5
#: TIA-598 colours of strands within a tube and of tubes within a cable, in order.
TIA598_COLOURS = ("blue", "orange", "green", "brown", "slate", "white", "red", "black",
                  "yellow", "violet", "rose", "aqua")

CABLES = Layer(
    name="cables", id_field="cable_id", geometry_types=(), required=False,
    description="Cables: numbered strands laid along a sequence of spans.",
    fields=(
        Field("cable_id", "text", required=True),
        Field("from_node", "text", required=True, description="node_id where strand 1..n start."),
        Field("to_node", "text", required=True, description="node_id where they end."),
        Field("fiber_count", "int", required=True, minimum=1),
        Field("fibers_per_tube", "int", minimum=1, description="default: fiber_count."),
        Field("status", "text", enum=STATUSES, default=IN_SERVICE),
        Field("name", "text"),
        Field("install_year", "int"),
    ),
)
CABLE_SPANS = Layer(
    name="cable_spans", id_field="", geometry_types=(), required=False,
    description="The spans a cable runs along, in order from its from_node.",
    fields=(
        Field("cable_id", "text", required=True),
        Field("seq", "int", required=True, minimum=1, description="1..n without gaps."),
        Field("span_id", "text", required=True),
    ),
)
SPLITTERS = Layer(
    name="splitters", id_field="splitter_id", geometry_types=(), required=False,
    description="Passive optical splitters standing at a node.",
    fields=(
        Field("splitter_id", "text", required=True),
        Field("node_id", "text", required=True),
        Field("ratio", "int", required=True, minimum=2, description="2, 4, ..., 128 outputs."),
        Field("inputs", "int", default=1, minimum=1, description="1 or 2."),
        Field("loss_db", "float", description="default: the splitter table by ratio."),
    ),
)
OLT_PORTS = Layer(
    name="olt_ports", id_field="olt_port_id", geometry_types=(), required=False,
    description="OLT ports: where light enters the glass.",
    fields=(
        Field("olt_port_id", "text", required=True),
        Field("node_id", "text", required=True),
        Field("olt_id", "text"),
    ),
)
CONNECTIONS = Layer(
    name="connections", id_field="connection_id", geometry_types=(), required=False,
    description="Splices and connectors joining two terminals at a node.",
    fields=(
        Field("connection_id", "text", required=True),
        Field("node_id", "text", required=True),
        Field("kind", "text", required=True, enum=CONNECTION_KINDS),
        Field("a_type", "text", required=True, enum=TERMINAL_TYPES),
        Field("a_id", "text", required=True),
        Field("a_num", "int", minimum=1),
        Field("a_side", "text", enum=STRAND_SIDES),
        Field("b_type", "text", required=True, enum=TERMINAL_TYPES),
        Field("b_id", "text", required=True),
        Field("b_num", "int", minimum=1),
        Field("b_side", "text", enum=STRAND_SIDES),
        Field("loss_db", "float", description="default: splice_db or connector_db by kind."),
    ),
)
DROPS = Layer(
    name="drops", id_field="drop_id", geometry_types=(), required=False,
    description="Drop fibers from a strand end or splitter output to a premise.",
    fields=(
        Field("drop_id", "text", required=True),
        Field("premise_id", "text", required=True),
        Field("node_id", "text", required=True),
        Field("src_type", "text", required=True, enum=DROP_SOURCE_TYPES),
        Field("src_id", "text", required=True),
        Field("src_num", "int", minimum=1),
        Field("src_side", "text", enum=STRAND_SIDES),
        Field("length_m", "float", description="default: geodesic node to premise."),
    ),
)
STRAND_STATE = Layer(
    name="strand_state", id_field="", geometry_types=(), required=False,
    description="Strands recorded as reserved or broken (every other strand is in use or free).",
    fields=(
        Field("cable_id", "text", required=True),
        Field("strand", "int", required=True, minimum=1),
        Field("state", "text", required=True, enum=STRAND_STATES),
    ),
)
#: The strand layers by name, in the order of docs/strands.md.
STRAND_LAYERS: dict[str, Layer] = {layer.name: layer for layer in (
    CABLES, CABLE_SPANS, SPLITTERS, OLT_PORTS, CONNECTIONS, DROPS, STRAND_STATE)}
STRAND_LAYER_NAMES: tuple[str, ...] = tuple(STRAND_LAYERS)
#: Fields that together identify a row of a strand layer without an id field of its own.
STRAND_KEYS: dict[str, tuple[str, ...]] = {
    "cable_spans": ("cable_id", "seq"),
    "strand_state": ("cable_id", "strand"),
}

#: The files ``netgis trace`` and ``netgis capacity`` write (docs/strands.md, Contracts).
TRACE_FILES = ("trace_paths.csv", "trace_hops.csv", "upstream.csv", "cut_premises.csv")
CAPACITY_FILES = ("span_capacity.csv", "splitter_ports.csv", "premise_capacity.csv",
                  "capacity.json")


# --------------------------------------------------------------------------- analysis results

ResultType = Literal["text", "int", "float", "bool"]


@dataclass(frozen=True)
class ResultField:
    """One analysis column added to a layer by :func:`netgis.engine.analysis.analyze`.

    ``contract`` marks the columns docs/spec.md §3.1 lists for ``netgis analyze``'s
    CSV files (written in this order after the layer's id); the others are
    served by the API and the maps but not written to the CSVs. ``nullable``
    columns may hold null (an empty CSV cell). ``decimals`` rounds a float in
    the CSVs (0.1 mm, 0.0001 dB: far below any tolerance, and stable text).
    """

    name: str
    type: ResultType
    unit: str | None = None
    description: str = ""
    contract: bool = True
    nullable: bool = False
    decimals: int | None = None


RESULT_FIELDS: dict[str, tuple[ResultField, ...]] = {
    "premises": (
        ResultField("passed", "bool", description="A lit span lies within drop_m."),
        ResultField("distance_m", "float", "m",
                    "Geodesic distance to the nearest lit span (null when nothing is lit).",
                    nullable=True, decimals=4),
        ResultField("served_span_id", "text",
                    description="The span that passes the premise (null when not passed).",
                    nullable=True),
        ResultField("span_protected", "bool", description="Survives any single span cut."),
        ResultField("node_protected", "bool",
                    description="Survives any single span cut or node failure."),
        ResultField("duct_protected", "bool",
                    description="Survives any single span cut or duct failure."),
        ResultField("loss_db", "float", "dB",
                    "Optical loss from the core on the least-loss path (null when not passed).",
                    nullable=True, decimals=4),
        ResultField("in_budget", "bool",
                    description="Passed and loss_db within the PON class's budget."),
        ResultField("margin_db", "float", "dB", "budget_db - loss_db (null when not passed).",
                    contract=False, nullable=True),
        ResultField("loss_fiber_km", "float", "km",
                    "Fiber on the least-loss path, drop included (null when not passed).",
                    contract=False, nullable=True),
        ResultField("loss_splitter_db", "float", "dB",
                    "Splitter loss on the least-loss path (null when not passed).",
                    contract=False, nullable=True),
        ResultField("loss_splice_db", "float", "dB",
                    "Splice loss on the least-loss path (null when not passed).",
                    contract=False, nullable=True),
    ),
    "spans": (
        ResultField("lit", "bool", description="In the component of G that holds a core."),
        ResultField("cut_premises", "int", "premises",
                    "Passed premises cut off, worst case, when this span alone is cut."),
        ResultField("cut_units", "int", "units", "Their units."),
        ResultField("length_m", "float", "m", "WGS84 geodesic length.", contract=False),
    ),
    "nodes": (
        ResultField("failure_premises", "int", "premises",
                    "Passed premises cut off, worst case, when this node alone fails."),
        ResultField("failure_units", "int", "units", "Their units."),
    ),
}


def result_columns(layer: str, *, contract_only: bool = False) -> tuple[str, ...]:
    """The id field and the analysis columns of ``layer``, in output order.

    Examples
    --------
    >>> result_columns("spans", contract_only=True)
    ('span_id', 'lit', 'cut_premises', 'cut_units')
    """
    fields = RESULT_FIELDS[layer]
    return (LAYERS[layer].id_field,
            *(f.name for f in fields if f.contract or not contract_only))


KpiType = Literal["int", "float"]


@dataclass(frozen=True)
class KpiField:
    """One KPI of docs/spec.md §2.9: its type, unit and meaning.

    ``per_area`` is false for the network-only KPIs (the spof counts).
    A ``float`` KPI may be null (a zero denominator).
    """

    name: str
    type: KpiType
    unit: str
    description: str
    per_area: bool = True


#: Decimals of a percentage KPI shown to a person (0.01 points); files and feeds keep
#: every digit (docs/analysis.md, "KPIs on a terminal").
PCT_DECIMALS = 2
#: Decimals of a km KPI shown to a person (1 m).
KM_DECIMALS = 3
KPI_FIELDS: tuple[KpiField, ...] = (
    KpiField("premises_total", "int", "premises", "Premise records in scope."),
    KpiField("units_total", "int", "units", "Living/business units in scope."),
    KpiField("premises_passed", "int", "premises",
             "Premise records passed (lit span within the drop length)."),
    KpiField("units_passed", "int", "units", "Units passed."),
    KpiField("coverage_pct", "float", "%", "Coverage: 100 * units passed / units total."),
    KpiField("units_connected", "int", "units",
             "Units connected (active subscription) and passed."),
    KpiField("take_rate_pct", "float", "%", "Take rate: 100 * units connected / units passed."),
    KpiField("span_protected_pct", "float", "%",
             "Percent of passed units protected against any single span cut."),
    KpiField("node_protected_pct", "float", "%",
             "Percent of passed units protected against span cuts and node failures."),
    KpiField("duct_protected_pct", "float", "%",
             "Percent of passed units protected against span cuts and duct failures."),
    KpiField("cable_km", "float", "km", "Sum of in-service span lengths, km."),
    KpiField("route_km", "float", "km",
             "Length of the union of in-service span geometries, km."),
    KpiField("fiber_km", "float", "km",
             "Sum of span length times fiber count over in-service spans, km."),
    KpiField("utilization_pct", "float", "%",
             "100 * fibers used / fiber count over in-service spans that record both."),
    KpiField("spof_spans", "int", "spans",
             "Spans whose cut disconnects passed premises (single points of failure).",
             per_area=False),
    KpiField("spof_nodes", "int", "nodes",
             "Nodes whose failure disconnects passed premises (single points of failure).",
             per_area=False),
    KpiField("units_in_budget", "int", "units",
             "Units passed whose optical loss is within the budget."),
    KpiField("budget_coverage_pct", "float", "%",
             "Serviceable coverage: 100 * units in budget / units total."),
)
#: The capacity KPIs of the strand layers (docs/strands.md): network-wide, and only in
#: ``kpis.json``, the feeds and the dashboard of a dataset that has strand layers.
CAPACITY_KPI_FIELDS: tuple[KpiField, ...] = (
    KpiField("units_connectable", "int", "units",
             "Units not connected that a free port of a live splitter within the drop length "
             "could serve within the budget.", per_area=False),
    KpiField("ports_free", "int", "ports",
             "Splitter outputs with nothing connected, over splitters in service.",
             per_area=False),
    KpiField("strands_free_km", "float", "km",
             "Sum over in-service spans of free strands times span length, km.",
             per_area=False),
)
CAPACITY_KPIS: tuple[str, ...] = tuple(f.name for f in CAPACITY_KPI_FIELDS)
#: Each KPI by its key (the capacity KPIs included).
KPI_BY_NAME: dict[str, KpiField] = {f.name: f for f in (*KPI_FIELDS, *CAPACITY_KPI_FIELDS)}
#: Network-wide KPIs in ``kpis.json`` order.
NETWORK_KPIS: tuple[str, ...] = tuple(f.name for f in KPI_FIELDS)
#: Per-area KPIs in ``kpis.json`` order (after ``area_id`` and ``name``).
AREA_KPIS: tuple[str, ...] = tuple(f.name for f in KPI_FIELDS if f.per_area)


# ---- output files ---------------------------------------------------------------------------

#: The files ``netgis analyze`` writes into its output folder (docs/spec.md §3.1).
ANALYSIS_FILES = ("premises.csv", "spans.csv", "nodes.csv", "kpis.json")
#: The files ``netgis gaps`` writes.
GAP_FILES = ("gaps_clusters.csv", "gaps_h3.csv", "gaps_h3.geojson", "gaps_areas.csv",
             "gaps_premises.csv", "gaps_plan.gpkg")
#: The file ``netgis bead`` writes.
BEAD_FILE = "bead.csv"
#: The files ``netgis bdc`` writes: the FCC BDC fixed availability location list, the
#: Fabric locations left out of it and why, and the summary as JSON and as Markdown.
BDC_FILES = ("bdc_availability.csv", "bdc_left_out.csv", "bdc_summary.json", "bdc_summary.md")
#: Result formats of ``analyze``, ``gaps`` and ``bead`` (``--format``): CSV tables, or GIS
#: layers with geometry (docs/analysis.md, "Results as GIS layers").
RESULT_FORMATS = ("csv", "gpkg", "parquet")
#: The layers each command writes with ``--format gpkg`` (into the one GeoPackage named
#: here) or ``--format parquet`` (one GeoParquet file per layer, ``<layer>.parquet``).
RESULT_LAYER_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "analyze": ("results.gpkg", ("premise_results", "span_results", "node_results")),
    "gaps": ("gaps.gpkg", ("gap_clusters", "h3_gaps", "gap_areas", "gap_premises")),
    "bead": ("bead.gpkg", ("bead_classes",)),
}
#: Every file netgis's commands write into an output folder (analyze, gaps, bead): a folder
#: holding only these is netgis's own and may be written again.
OUTPUT_FILES = frozenset({*ANALYSIS_FILES, *GAP_FILES, BEAD_FILE, *BDC_FILES, *TRACE_FILES,
                          *CAPACITY_FILES,
                          *(gpkg for gpkg, _ in RESULT_LAYER_FILES.values()),
                          *(f"{layer}.parquet" for _, layers in RESULT_LAYER_FILES.values()
                            for layer in layers)})
