#!/usr/bin/env bash
# Reproduce maps/static/vendor/: the JS/CSS that netgis maps load, taken from
# the released npm packages (no CDN at run time). Run by hand when upgrading an
# asset; tests and builds never run it. Needs `npm` and the npm registry.
#
# Leaflet, and Leaflet.VectorGrid for the layers a page draws from the server's
# vector tiles (maps/_base.py VectorTileLayer; its bundled build carries pbf and
# vector-tile, BSD licensed; its README holds its Beerware licence and theirs).
# The map builders draw premises as circle markers, write their own legend HTML
# and aggregate large layers to H3 hexagons or vector tiles, so folium's other
# defaults (jquery, bootstrap, awesome-markers, font-awesome) and
# leaflet.markercluster are never referenced (see maps/assets.py). Vega, Vega-Lite
# and vega-embed draw the dashboard's charts; axe-core runs only in the browser tests.
# Swagger UI and ReDoc serve /docs and /redoc offline (api/routers/docs.py), with the
# licences of what their bundles contain.
#
# Usage: scripts/vendor-assets.sh            (from the repository root)
set -euo pipefail

# package@version  then the files to keep, relative to the package root
ASSETS=(
  "leaflet@1.9.4 LICENSE dist/leaflet.js dist/leaflet.css dist/images/layers.png dist/images/layers-2x.png dist/images/marker-icon.png dist/images/marker-icon-2x.png dist/images/marker-shadow.png"
  "vega@6.4.0 LICENSE build/vega.min.js"
  "vega-lite@6.5.0 LICENSE build/vega-lite.min.js"
  "vega-embed@7.3.0 LICENSE build/vega-embed.min.js"
  "axe-core@4.10.3 LICENSE LICENSE-3RD-PARTY.txt axe.min.js"
  "leaflet.vectorgrid@1.3.0 README.md dist/Leaflet.VectorGrid.bundled.min.js"
  "swagger-ui-dist@5.35.0 LICENSE NOTICE swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css favicon-32x32.png"
  "redoc@2.5.4 LICENSE bundles/redoc.standalone.js bundles/redoc.standalone.js.LICENSE.txt"
)

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/maps/static/vendor"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

for entry in "${ASSETS[@]}"; do
  read -r spec files <<<"$entry"
  name="${spec%@*}"
  (cd "$tmp" && npm pack --silent "$spec" >/dev/null)
  tarball="$(ls "$tmp"/*.tgz)"
  mkdir -p "$tmp/$name"
  tar -xzf "$tarball" -C "$tmp/$name"
  rm -f "$tarball"
  rm -rf "${dest:?}/$name"
  for f in $files; do
    mkdir -p "$dest/$name/$(dirname "$f")"
    cp "$tmp/$name/package/$f" "$dest/$name/$f"
  done
  echo "$spec" >"$dest/$name/VERSION"
  echo "vendored $spec into ${dest#"$root"/}/$name"
done
