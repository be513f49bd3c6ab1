"""``python -m netgis.cli``: the command line."""

from netgis.cli import main

main()
