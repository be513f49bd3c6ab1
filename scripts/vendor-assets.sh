#!/usr/bin/env bash
# Reproduce maps/static/vendor/: the JS/CSS that netgis maps load, taken from
# the released npm packages (no CDN at run time). Run by hand when upgrading an
# asset; tests and builds never run it. Needs `npm` and the npm registry.
#
# Leaflet for the maps: the map builders draw premises as circle markers,
# write their own legend HTML and aggregate large layers to H3 hexagons, so
# folium's other defaults (jquery, bootstrap, awesome-markers, font-awesome)
# and leaflet.markercluster are never referenced (see maps/assets.py).
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
