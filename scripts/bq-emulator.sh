#!/usr/bin/env bash
# Installs the BigQuery emulator (bqemulator, DuckDB-backed) into a cached
# Python venv with pinned versions, and prints the path of its executable.
#
#   scripts/bq-emulator.sh            install if needed, print the path
#   $(scripts/bq-emulator.sh) start --project my-project --rest-port 9050
#
# DuckDB cannot download its spatial extension here, so the extension comes
# from PyPI and is installed from the wheel's file.
#
# The printed executable is the venv's bin/bqemulator, replaced on every run
# by a wrapper that runs scripts/bqemulator-locked.py (copied into the venv):
# the same command line as bqemulator, but DuckDB runs with external access
# off (no read_text, read_blob, read_csv, glob, ATTACH, COPY …), extension
# auto-install, auto-load and downloads off, and its configuration locked so
# that SQL cannot turn them back on. Callers that hard-code the venv's
# bin/bqemulator get the locked emulator too, so the venv's name is unchanged.
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

# Installs (atomically, only when it differs) the file $1 with the content on
# stdin and the mode $2.
install_file() {
  local target="$1" mode="$2" tmp
  tmp="$(mktemp "$target.XXXXXX")"
  cat >"$tmp"
  if cmp -s "$tmp" "$target"; then
    rm -f "$tmp"
    chmod "$mode" "$target"
  else
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$target"
  fi
}

LAUNCHER="$VENV/share/okr-pulse/bqemulator-locked.py"
mkdir -p "$(dirname "$LAUNCHER")"
install_file "$LAUNCHER" 644 <"$(dirname "${BASH_SOURCE[0]}")/bqemulator-locked.py"
printf '#!/usr/bin/env bash\n# Written by okr-pulse scripts/bq-emulator.sh: bqemulator with DuckDB locked down.\nexec %q -I %q "$@"\n' \
  "$VENV/bin/python" "$LAUNCHER" | install_file "$VENV/bin/bqemulator" 755

echo "$VENV/bin/bqemulator"
