#!/usr/bin/env bash
# Installs the Debian packages netgis needs and makes sure PostgreSQL runs.
# Idempotent and quick when everything is already there.
set -euo pipefail
# prometheus: its promtool checks the /metrics scrape in the tests (the service is not started)
# libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0: WeasyPrint (netgis report --pdf)
# postgresql-client-15: pg_dump, pg_restore and psql (netgis db backup/restore on PostGIS)
# gdal-bin: ogrinfo/ogr2ogr, the OGC API clients the tests run against the server
# qgis python3-qgis: the tests open the project of `netgis qgis` with PyQGIS (/usr/bin/python3)
PKGS=(python3-venv libsqlite3-mod-spatialite gdal-data postgresql-15-postgis-3 postgresql-client-15 chromium fonts-dejavu-core
      prometheus libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 gdal-bin qgis python3-qgis)
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
