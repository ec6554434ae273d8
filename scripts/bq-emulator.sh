#!/usr/bin/env bash
# Installs the BigQuery emulator (bqemulator, DuckDB-backed) into a cached
# Python venv with pinned versions, and prints the path of its executable.
#
#   scripts/bq-emulator.sh            install if needed, print the path
#   $(scripts/bq-emulator.sh) start --project my-project --rest-port 9050
#
# DuckDB cannot download its spatial extension here, so the extension comes
# from PyPI and is installed from the wheel's file.
set -euo pipefail

BQEMULATOR_VERSION=1.4.0
DUCKDB_VERSION=1.5.5
CACHE="${OKR_PULSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/okr-pulse}"
VENV="$CACHE/bqemulator-$BQEMULATOR_VERSION-duckdb-$DUCKDB_VERSION"
PYTHON="${PYTHON:-python3}"

if [ ! -f "$VENV/.ready" ]; then
  echo "installing bqemulator $BQEMULATOR_VERSION into $VENV" >&2
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  "$PYTHON" -m venv "$VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "bqemulator==$BQEMULATOR_VERSION" "duckdb==$DUCKDB_VERSION" \
    "duckdb-extension-spatial==$DUCKDB_VERSION" numpy >&2
  "$VENV/bin/python" - >&2 <<'PY'
import os
import duckdb
import duckdb_extension_spatial as ext

path = os.path.join(os.path.dirname(ext.__file__), "extensions", "v" + duckdb.__version__, "spatial.duckdb_extension")
duckdb.connect().execute(f"INSTALL '{path}'")
PY
  touch "$VENV/.ready"
fi

echo "$VENV/bin/bqemulator"
