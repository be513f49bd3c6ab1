#!/usr/bin/env bash
# Starts the local PostgreSQL cluster if it is down (tests use it for PostGIS).
set -euo pipefail
command -v pg_lsclusters >/dev/null || { echo "PostgreSQL is not installed"; exit 1; }
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  ver=$(ls /etc/postgresql | sort -n | tail -1)
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start || pg_ctlcluster "$ver" main start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432
