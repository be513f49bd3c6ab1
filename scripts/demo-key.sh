#!/usr/bin/env bash
# The write key of `make demo`: made once at random into FILE (mode 0600), then reused,
# so the key a user noted keeps working; printed on stdout.
# Usage: scripts/demo-key.sh [FILE]   (default .netgis-demo-key)
set -euo pipefail
file="${1:-.netgis-demo-key}"
if [[ ! -s "$file" ]]; then
  umask 077
  # 16 random bytes as 32 hex digits: nothing an HTTP header or NETGIS_API_KEYS must escape
  od -An -tx1 -N16 /dev/urandom | tr -d ' \n' > "$file"
  echo >> "$file"
fi
chmod 600 "$file"
tr -d '\n' < "$file"
echo
