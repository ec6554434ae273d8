#!/usr/bin/env bash
# Runs every test: the whole suite on SQLite, the dashboard's browser tests
# in Debian's Chromium, then the database-backed integration tests again on
# PostgreSQL at 127.0.0.1:5432. Installs what the tests need first (the
# BigQuery emulator's cached venv, pinned versions; the web packages from
# web/package-lock.json; Debian's chromium package).
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

section "Dashboard: web/dist matches web/src"
fresh_dist="$(mktemp -d)"
(cd web && npm ci --no-audit --no-fund --loglevel=error && npm run --silent typecheck \
  && npm run --silent build -- --outDir "$fresh_dist" --emptyOutDir >/dev/null)
if ! diff -r "$fresh_dist" web/dist >/dev/null; then
  diff -rq "$fresh_dist" web/dist >&2 || true
  echo "ERROR: web/dist differs from a fresh build of web/src; run (cd web && npm ci && npm run build) and commit web/dist" >&2
  exit 1
fi
rm -rf "$fresh_dist"

section "Dashboard and GraphiQL in Chromium"
if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  echo "installing Debian's chromium for the browser tests"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
(cd web && OKR_PULSE_BIN="$PWD/../target/debug/okr-pulse" npm test)

section "Subscriptions with the clients people use: graphql-ws, Apollo Client, Python gql"
OKR_PULSE_BIN="$PWD/target/debug/okr-pulse" tests/clients/run.sh

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
