"""Plant that arrives in other people's formats: the Open Fibre Data Standard
(:mod:`netgis.interop.ofds`) and any GIS layer mapped by a TOML file
(:mod:`netgis.interop.mapping`)."""
