#!/usr/bin/env bash
# Runs the client tests: okr-pulse's GraphQL API and WebSocket subscriptions
# tried with the clients people use — graphql-ws and Apollo Client (Node's
# built-in test runner) and Python gql (pytest). DESIGN.md §10, issue 9.
#
#   OKR_PULSE_BIN=target/debug/okr-pulse tests/clients/run.sh
#
# Installs what the tests need (npm ci from package-lock.json; a cached Python
# venv with the pinned versions of python/requirements.txt under
# ${XDG_CACHE_HOME:-$HOME/.cache}/okr-pulse), then runs the Node tests and
# pytest. Each test starts its own okr-pulse on a free port in a fresh data
# folder; this script runs a private copy of the binary (so a rebuild during
# the run changes nothing) and, on exit, ends any process still running that
# copy. Extra arguments go to pytest (e.g. -k ttl). CLIENT_TESTS_DEBUG=1 shows
# the servers' logs of the Node tests.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

started_at=$SECONDS
bin="${OKR_PULSE_BIN:-$here/../../target/debug/okr-pulse}"
if [ ! -x "$bin" ]; then
  echo "ERROR: OKR_PULSE_BIN must name the okr-pulse binary (not found: $bin); build it with cargo build" >&2
  exit 2
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/okr-pulse-client-tests.XXXXXX")"
private_bin="$work/okr-pulse"

# Ends every process still running our private copy of the binary (servers
# left by a test runner that was killed), then removes the copy.
cleanup() {
  local exe pid
  for exe in /proc/[0-9]*/exe; do
    pid="${exe#/proc/}"
    pid="${pid%/exe}"
    if [ "$(readlink "$exe" 2>/dev/null)" = "$private_bin" ]; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$work"
}
trap cleanup EXIT

# Each test runner runs in a process group of its own, ended whole on Ctrl-C or SIGTERM.
child=""
on_signal() {
  if [ -n "$child" ]; then
    kill -TERM -- "-$child" 2>/dev/null || true
  fi
  exit "$1"
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
run_group() {
  local status=0
  setsid "$@" &
  child=$!
  wait "$child" || status=$?
  child=""
  return "$status"
}

cp "$bin" "$private_bin"
export OKR_PULSE_BIN="$private_bin"
# The servers' data folders go here too, so nothing is left even after an interrupted run.
mkdir "$work/tmp"
export TMPDIR="$work/tmp"
echo "okr-pulse: $bin ($("$private_bin" --version 2>/dev/null || echo 'version unknown'))"

section() { printf '\n=== %s ===\n' "$*"; }

section "npm ci"
npm ci --no-audit --no-fund --loglevel=error

section "Python venv"
PYTHON="${PYTHON:-python3}"
CACHE="${OKR_PULSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/okr-pulse}"
requirements_hash="$(sha256sum python/requirements.txt | cut -c1-12)"
VENV="$CACHE/client-tests-gql-4.4.0-$requirements_hash"
if [ ! -f "$VENV/.ready" ]; then
  echo "installing gql and pytest into $VENV"
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r python/requirements.txt
  touch "$VENV/.ready"
fi
echo "using $VENV"

section "Node: graphql-ws and Apollo Client"
node_status=0
run_group node --test --test-concurrency=1 --test-reporter=spec node/*.test.mjs || node_status=$?

section "Python: gql"
pytest_status=0
PYTHONDONTWRITEBYTECODE=1 run_group "$VENV/bin/python" -m pytest python -v --tb=short -rfEP "$@" || pytest_status=$?

section "client tests done in $((SECONDS - started_at)) s"
echo "node --test exit status: $node_status; pytest exit status: $pytest_status"
if [ "$node_status" -ne 0 ] || [ "$pytest_status" -ne 0 ]; then
  exit 1
fi
