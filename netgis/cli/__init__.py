"""The ``netgis`` command line: parses options, calls the library, formats the output; it
holds no analysis. One module per group of commands; :mod:`netgis.cli.common` has the app
and what the groups share, and :func:`main` is the entry point.

Exit codes: 0 success, 2 invalid input (every problem listed on stderr),
1 internal error. A user's mistake never prints a traceback.
"""

from netgis.cli import data, analysis, bdc, strands, db, plans, pages, qgis  # noqa: I001 (the order of --help)
from netgis.cli.common import app, main

__all__ = ["analysis", "app", "bdc", "data", "db", "main", "pages", "plans", "qgis", "strands"]
