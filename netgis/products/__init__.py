"""What is built on an analysis: gap plans (:mod:`netgis.products.gaps`), BEAD
eligibility, KPI feeds, the progress dashboard's and report's content, address search and
vector tiles."""
