"""The page a map sits in (a module of its own so that assets and csp both use it)."""

from __future__ import annotations

import folium
from branca.element import Figure


def figure_of(m: folium.Map) -> Figure:
    """The page (branca Figure) holding ``m``."""
    root = m.get_root()
    if not isinstance(root, Figure):
        raise TypeError("a folium.Map always sits in a Figure")
    return root
