"""A strand plant on the ring_spur example for the tests of the strand routes and pages.

Two OLT ports feed splitter SP1 at B by cables around both sides of the ring (K1 by A, K3
by D; P2's connector records a lower loss, so its paths are the best); SP1 feeds the spur
cable K2 (strand 1 dropped at E, strand 2 passing E to a drop at F, strand 3 into splitter
SP2 at F), two drops of p_north100 at B; a third OLT port P3 is patched to a planned cable
K4 whose drop reaches p_ring (only with planned plant); p_ring's other drop hangs on a
strand lit from nowhere (open); K1 has a broken and a reserved strand; p_end lies within
the drop length of SP2's free outputs (connectable).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.helpers import EXAMPLES_DIR

TABLES: dict[str, str] = {
    "cables": """cable_id,from_node,to_node,fiber_count,fibers_per_tube,status,name,install_year
K1,C,B,12,6,,feeder west,2019
K2,B,F,12,6,,spur,2020
K3,C,B,12,,,feeder east,2021
K4,C,A,4,,planned,,
""",
    "cable_spans": """cable_id,seq,span_id
K1,1,s1
K1,2,s2
K2,1,s5
K2,2,s6
K3,1,s4
K3,2,s3
K4,1,s1
""",
    "olt_ports": """olt_port_id,node_id,olt_id
P1,C,OLT1
P2,C,OLT1
P3,C,OLT1
""",
    "splitters": """splitter_id,node_id,ratio,inputs,loss_db
SP1,B,8,2,
SP2,F,8,1,10.5
""",
    "connections": """\
connection_id,node_id,kind,a_type,a_id,a_num,a_side,b_type,b_id,b_num,b_side,loss_db
c1,C,connector,olt,P1,,,strand,K1,1,,
c2,B,splice,strand,K1,1,,in,SP1,1,,
c3,B,splice,out,SP1,1,,strand,K2,1,,
c4,C,connector,olt,P2,,,strand,K3,1,,0.3
c5,B,splice,strand,K3,1,,in,SP1,2,,
c6,B,splice,out,SP1,4,,strand,K2,2,,
c7,B,splice,out,SP1,5,,strand,K2,3,,
c8,F,splice,strand,K2,3,,in,SP2,1,,
c9,C,connector,olt,P3,,,strand,K4,1,,
""",
    "drops": """drop_id,premise_id,node_id,src_type,src_id,src_num,src_side,length_m
d1,p_spur1,E,strand,K2,1,from,
d2,p_north100,B,out,SP1,2,,30
d3,p_spur2,F,strand,K2,2,,
d4,p_ring,A,strand,K1,3,from,
d5,p_north100,B,out,SP1,3,,35
d6,p_ring,A,strand,K4,1,,
""",
    "strand_state": """cable_id,strand,state
K1,5,broken
K1,6,reserved
""",
}


def strand_dataset(folder: Path) -> Path:
    """ring_spur as a dataset directory (GeoJSON layers) with the strand tables above, in
    ``folder``/ring_strands; returns that directory."""
    out = folder / "ring_strands"
    shutil.copytree(EXAMPLES_DIR / "ring_spur" / "dataset", out)
    for name, text in TABLES.items():
        (out / f"{name}.csv").write_text(text, encoding="utf-8")
    return out
