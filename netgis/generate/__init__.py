"""A synthetic city fiber plant, deterministic by seed, for tests, demos and benchmarks.

The city is a jittered street grid (blocks of about 120 m) in a UTM CRS. The
plant covers the inner part of the grid, cut into cabinet districts (tiles):

- one or more *core* sites (central offices) sit at the root of some tiles;
- *feeder rings* run along the streets from each core through its cabinets
  and back, so every cabinet is 2-edge connected to a core, except where a
  ring is still open (its closing span is ``planned``);
- *distribution trees* run from each cabinet or core along the tile's streets
  (a trunk with laterals); branch points are splices (some splitters), other
  points poles (aerial spans) or handholes;
- feeder spans carry duct ids; some consecutive spans and some pairs of ring
  exits at a core share one duct, so they fail together;
- a few border tiles are ``planned`` (cabinet, tree and the spur that will
  feed it), some street links that would close loops are ``planned``, and a
  few old aerial detours with their poles are ``retired``.

Premises sit along every street of the grid (a few meters to ~60 m off the
street), including an unfibered fringe; a few percent form far clusters
(hamlets more than 150 m from any span). District polygons cover
everything. ``connected`` is set only where the street has working plant.

Premises are produced in fixed blocks of :data:`BLOCK` records, each with its
own random stream, so the data never depends on how it is batched: writing 10
million premises chunk by chunk gives the same records as generating them at
once, with memory bounded by the chunk size.

The steps are modules: :mod:`~netgis.generate.city` (street grid, hamlets,
districts, placement on the earth), :mod:`~netgis.generate.plant` (cabinet
districts, trees, rings; spans as :class:`~netgis.generate.plant.SpanBatch`
records), :mod:`~netgis.generate.premises` (the premise blocks),
:mod:`~netgis.generate.strands` (the optional strand-level plant: cables,
splitters, OLT ports, splices and drops laid into the route plant; ``strands=True``,
``netgis generate --strands``) and :mod:`~netgis.generate.writers`
(:func:`generate_city`, :func:`write_city`).

Examples
--------
>>> from netgis.generate import generate_city
>>> ds = generate_city(premises=2000, seed=1)
>>> len(ds.premises)
2000
>>> int((ds.nodes["kind"] == "core").sum())
1
>>> sorted(set(ds.spans["status"]))
['in_service', 'planned', 'retired']
"""

from __future__ import annotations

from netgis.generate.city import DEFAULT_CENTER, DEFAULT_CRS, FAR_SHARE
from netgis.generate.premises import BLOCK
from netgis.generate.writers import DEFAULT_CHUNK, generate_city, write_city

__all__ = [
    "BLOCK",
    "DEFAULT_CENTER",
    "DEFAULT_CHUNK",
    "DEFAULT_CRS",
    "FAR_SHARE",
    "generate_city",
    "write_city",
]
