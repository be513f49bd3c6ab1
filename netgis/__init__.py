"""netgis: geospatial models of fiber plant, coverage and redundancy analysis.

The library is free of web and HTML code; ``api`` and ``maps`` build on it.
"""

__version__ = "0.1.0"
