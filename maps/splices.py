"""The splice diagram of a node: the glass at one node of the strand-level plant, as tables.

For each cable at the node (arriving, leaving or passing through): its tubes and strands
in TIA-598 colours, each colour shown as a swatch *and* named in text, and what each
strand end at the node is joined to: the other terminal of its connection (``strand:C7:12:to``,
``in:SP1:1``, ``olt:P1``), or its drop and premise; a strand not cut at the node passes
through (express). Then the splitters and OLT ports at the node, port by port.

The page is plain HTML (real tables with captions and header cells, no script), every
value escaped (Jinja2 autoescaping), with the Content-Security-Policy of the map pages
(:mod:`maps.csp`).

Examples
--------
>>> from netgis.io import read_dataset
>>> from netgis.strand_plant import strand_plant
>>> import pandas as pd
>>> ds = read_dataset("tests/examples/ring_spur/dataset.gpkg")
>>> tables = {"cables": pd.DataFrame({"cable_id": ["K1"], "from_node": ["C"], "to_node": ["B"],
...                                   "fiber_count": [2]}),
...           "cable_spans": pd.DataFrame({"cable_id": ["K1", "K1"], "seq": [1, 2],
...                                        "span_id": ["s1", "s2"]})}
>>> page, policy = splice_page(strand_plant(ds, tables), "A")
>>> "passes through (express, not cut here)" in page, "script-src 'self'" in policy
(True, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape

from netgis.maps.csp import content_security_policy, with_policy
from netgis.schema import TIA598_COLOURS
from netgis.strand_plant import StrandPlant, Terminal, terminal_text

#: Display colour of each TIA-598 colour name (the name is always written beside it).
COLOUR_HEX: dict[str, str] = {
    "blue": "#1f5fbf", "orange": "#f28c28", "green": "#2e8b3e", "brown": "#8b5a2b",
    "slate": "#708090", "white": "#ffffff", "red": "#d62728", "black": "#000000",
    "yellow": "#ffd700", "violet": "#8a2be2", "rose": "#ff66b2", "aqua": "#00ced1",
}
if set(COLOUR_HEX) != set(TIA598_COLOURS):  # pragma: no cover (a new colour in the schema)
    raise RuntimeError("maps.splices.COLOUR_HEX differs from netgis.schema.TIA598_COLOURS")

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
    trim_blocks=True, lstrip_blocks=True,
)


@dataclass(frozen=True)
class EndText:
    """What a terminal at the node is joined to, in words: a verb, the other terminal as
    text (``code``) and what follows (a connection id, a premise)."""

    kind: str  # connection, drop, open, express
    words: str
    code: str = ""
    after: str = ""


@dataclass
class StrandRow:
    """One strand of a cable at the node."""

    strand: int
    tube: int
    tube_colour: str
    colour: str
    state: str
    #: the ends at the node (one at the cable's ends, two where it is cut inside), or none
    ends: list[EndText] = field(default_factory=list)
    express: bool = False


@dataclass
class CableAtNode:
    """A cable visiting the node: where it comes from and goes, and its strands."""

    cable_id: str
    name: str | None
    status: str
    fiber_count: int
    fibers_per_tube: int
    tubes: int
    role: str  # starts, ends, passes
    direction: str
    #: (label, node id) of each side of the node the cable's strands end on
    sides: list[tuple[str, str]]
    neighbours: list[str]
    strands: list[StrandRow]
    cut_here: int = 0


@dataclass
class DevicePort:
    """One port of a splitter or OLT port at the node and what it is joined to."""

    port: str
    end: EndText


@dataclass
class Device:
    """A splitter or an OLT port at the node."""

    kind: str
    device_id: str
    title: str
    ports: list[DevicePort]


def _end(plant: StrandPlant, t: Terminal) -> EndText:
    """What terminal ``t`` is joined to."""
    got = plant.conn_at.get(t)
    if got is not None:
        row, other = got
        conns = plant.tables["connections"]
        kind = str(conns["kind"].iat[row])
        cid = str(conns["connection_id"].iat[row])
        words = "spliced to" if kind == "splice" else "connected to"
        return EndText("connection", words, terminal_text(other), f"({kind} {cid})")
    d = plant.drop_at.get(t)
    if d is not None:
        drops = plant.tables["drops"]
        return EndText("drop", f"drop {drops['drop_id'].iat[d]} ->",
                       f"premise {drops['premise_id'].iat[d]}")
    return EndText("open", "nothing connected (open end)")


def _direction(plant: StrandPlant, cable: str, pos: int) -> tuple[str, str, list[str]]:
    cab = plant.cables[cable]
    if pos == 0:
        return ("starts", f"starts here and leaves toward {cab.nodes[1]} over span "
                f"{cab.spans[0]} (to {cab.nodes[-1]})", [cab.nodes[1]])
    if pos == cab.last:
        return ("ends", f"arrives from {cab.nodes[-2]} over span {cab.spans[-1]} and ends here "
                f"(from {cab.nodes[0]})", [cab.nodes[-2]])
    return ("passes", f"passes through: from {cab.nodes[pos - 1]} over span "
            f"{cab.spans[pos - 1]}, on to {cab.nodes[pos + 1]} over span {cab.spans[pos]}",
            [cab.nodes[pos - 1], cab.nodes[pos + 1]])


def cables_at(plant: StrandPlant, node_id: str) -> list[CableAtNode]:
    """Every cable visiting ``node_id``, by cable_id, with its strands' ends at the node."""
    out = []
    cables = plant.tables["cables"].set_index("cable_id")
    for cable in sorted(c for c, cab in plant.cables.items() if node_id in cab.pos):
        cab = plant.cables[cable]
        pos = cab.pos[node_id]
        role, direction, neighbours = _direction(plant, cable, pos)
        if role == "starts":
            sides = [(f"toward {cab.nodes[1]} (side to)", "to")]
        elif role == "ends":
            sides = [(f"from {cab.nodes[-2]} (side from)", "from")]
        else:
            sides = [(f"back toward {cab.nodes[pos - 1]} (side from)", "from"),
                     (f"on toward {cab.nodes[pos + 1]} (side to)", "to")]
        rows = []
        cut_here = 0
        for k in range(1, cab.fiber_count + 1):
            tube, colour = cab.tube_colour(k)
            row = StrandRow(k, tube, TIA598_COLOURS[(tube - 1) % 12], colour,
                            plant.state.get((cable, k), ""))
            if role == "passes" and pos not in plant.cut_positions(cable, k):
                row.express = True
            else:
                cut_here += role == "passes"
                row.ends = [_end(plant, ("strand", cable, k, pos, side)) for _, side in sides]
            rows.append(row)
        info = cables.loc[cable] if cable in cables.index else None
        name = None if info is None or info.get("name") is None else str(info.get("name"))
        out.append(CableAtNode(cable, name, cab.status, cab.fiber_count, cab.fibers_per_tube,
                               -(-cab.fiber_count // cab.fibers_per_tube), role, direction,
                               sides, neighbours, rows, cut_here))
    return out


def devices_at(plant: StrandPlant, node_id: str) -> list[Device]:
    """The splitters (by id) and then the OLT ports (by id) at ``node_id``, port by port."""
    out = []
    olts = plant.tables["olt_ports"].set_index("olt_port_id")
    for sid in sorted(s for s, v in plant.splitter.items() if v[0] == node_id):
        _, ratio, inputs, loss = plant.splitter[sid]
        loss_text = f"loss {loss:g} dB" if loss is not None else "loss by its ratio"
        title = (f"Splitter {sid}: 1:{ratio}, {inputs} input{'s' if inputs > 1 else ''}, "
                 f"{loss_text}")
        ports = [DevicePort(f"input {k}", _end(plant, ("in", sid, k)))
                 for k in range(1, inputs + 1)]
        ports += [DevicePort(f"output {k}", _end(plant, ("out", sid, k)))
                  for k in range(1, ratio + 1)]
        out.append(Device("splitter", sid, title, ports))
    for port in sorted(p for p, n in plant.olt_node.items() if n == node_id):
        olt = olts.loc[port, "olt_id"] if port in olts.index else None
        title = f"OLT port {port}" + (f" of OLT {olt!s}" if olt is not None else "")
        out.append(Device("olt", port, title, [DevicePort("port", _end(plant, ("olt", port)))]))
    return out


def splice_page(plant: StrandPlant, node_id: str, *, node: Mapping[str, Any] | None = None,
                base_url: str = "/static") -> tuple[str, str]:
    """The splice diagram of ``node_id`` and its Content-Security-Policy.

    ``node`` holds what the page says about the node (``kind``, ``status``, ``name``);
    links to other nodes' diagrams are relative (the page is served at
    ``.../maps/splices/<node_id>``).
    """
    cables = cables_at(plant, node_id)
    devices = devices_at(plant, node_id)
    info = dict(node or {})
    page = _ENV.get_template("splices.html.j2").render(
        node_id=node_id, node=info, cables=cables, devices=devices, colours=COLOUR_HEX,
        href=lambda n: quote(str(n), safe=""), base_url=base_url.rstrip("/"),
        colour_class=lambda c: f"sw-{c}")
    policy = content_security_policy(page)
    return with_policy(page, policy), policy
