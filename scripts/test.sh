#!/usr/bin/env bash
# Runs every test: the whole suite on SQLite, then the database-backed
# integration tests again on PostgreSQL at 127.0.0.1:5432. Installs what the
# tests need first (the BigQuery emulator's cached venv, pinned versions).
#
# Under CI (CI=true) the PostgreSQL run is mandatory. Elsewhere it is skipped,
# loudly, when no server answers on that port.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_URL="${OKR_PULSE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"

section() { printf '\n=== %s ===\n' "$*"; }

if cargo nextest --version >/dev/null 2>&1; then
  run_tests() { cargo nextest run --no-fail-fast "$@"; }
else
  echo "cargo-nextest is not installed; using cargo test"
  run_tests() { cargo test --no-fail-fast "$@"; }
fi

section "BigQuery emulator"
OKR_PULSE_BQEMULATOR="$(scripts/bq-emulator.sh)"
export OKR_PULSE_BQEMULATOR
echo "using $OKR_PULSE_BQEMULATOR"

section "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

section "SQLite: the whole suite"
run_tests --workspace

postgres_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }

if ! postgres_up && [ "${CI:-}" = "true" ] && command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "PostgreSQL is not answering; starting it"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  for _ in $(seq 1 30); do postgres_up && break; sleep 1; done
fi

if postgres_up; then
  section "PostgreSQL: the database-backed suite ($PG_URL)"
  OKR_PULSE_TEST_DATABASE=postgres OKR_PULSE_TEST_POSTGRES_URL="$PG_URL" run_tests --test api
elif [ "${CI:-}" = "true" ]; then
  echo "ERROR: CI=true but no PostgreSQL server answers on 127.0.0.1:5432" >&2
  exit 1
else
  cat >&2 <<'MSG'

!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!!  SKIPPED: the PostgreSQL suite. No server answers on 127.0.0.1:5432.     !!
!!  Start one (trust auth, user postgres) to run it; under CI it is required. !!
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
MSG
fi
