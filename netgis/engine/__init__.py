"""The analysis: :func:`netgis.engine.analysis.analyze` and the steps it is made of (graph,
coverage, optics, redundancy, KPIs), its output files, and the streamed and Dask engines
that run it over premises in chunks (see docs/architecture.md)."""
