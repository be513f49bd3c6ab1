"""Strand-level plant (docs/strands.md): the glass inside the route.

:func:`validate_strands` checks the seven optional strand layers against a route dataset;
:func:`strand_plant` indexes them; :mod:`.trace` follows the glass from OLT ports to
premises (and back, and under a cut); :mod:`.capacity` counts strands, ports and
connectable premises; :mod:`.diversity` compares two premises' best paths.
"""

from netgis.strand_plant import (
    StrandPlant,
    StrandReport,
    strand_plant,
    terminal_text,
    validate_strands,
)

__all__ = ["StrandPlant", "StrandReport", "strand_plant", "terminal_text", "validate_strands"]
