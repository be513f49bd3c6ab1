"""Files in and out: datasets (a GeoPackage, or a directory of GeoJSON / FlatGeobuf /
GeoParquet layer files) and the atomic writers every output of netgis goes through.

- :mod:`netgis.io.formats`: the formats, and the checks an input passes before GDAL
  reads it (plain paths only, content matching the suffix, GeoPackage tables only);
- :mod:`netgis.io.read`: reading and validating a dataset;
- :mod:`netgis.io.write`: atomic files and folders, writing a dataset;
- :mod:`netgis.io.isolation`: reading untrusted uploads in a limited child process.

The names most callers need are here too (``from netgis.io import read_dataset``).
Where each analysis output is written: :mod:`netgis.engine.outputs` (``netgis analyze``),
:mod:`netgis.products.gaps.output`, :mod:`netgis.products.bead`.
"""

from netgis.io.formats import (
    DIR_FORMATS,
    OGR_DRIVERS,
    TEMP_PREFIX,
    check_plain_path,
    detect_format,
    gdal_path,
    layer_file_format,
    read_format,
)
from netgis.io.read import layer_parts, read_dataset, read_frame, read_raw, validate_path
from netgis.io.write import atomic_dir, atomic_file, write_dataset, write_layer_file

__all__ = ["DIR_FORMATS", "OGR_DRIVERS", "TEMP_PREFIX", "atomic_dir", "atomic_file",
           "check_plain_path", "detect_format", "gdal_path", "layer_file_format",
           "layer_parts", "read_dataset", "read_format", "read_frame", "read_raw",
           "validate_path", "write_dataset", "write_layer_file"]
