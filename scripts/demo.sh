#!/usr/bin/env bash
# One command that shows okr-pulse's bars moving on their own.
#
#   scripts/demo.sh
#
# It starts the BigQuery emulator on free ports, creates a small CRM dataset
# (crm.leads, crm.deals, crm.tickets) for the current quarter, keeps inserting
# rows every few seconds, starts okr-pulse against the emulator with a 10 s
# sync interval, seeds OKRs linked to queries over that data through the
# GraphQL API, and prints the dashboard link. Ctrl-C stops everything.
#
# Environment:
#   OKR_PULSE_BIN   server binary to use (default: `cargo build --release`
#                   in the repository, then target/release/okr-pulse)
#   DEMO_PORT       port of the server (default 8080)
#   DEMO_SECONDS    stop by itself after this many seconds (default: run
#                   until Ctrl-C)
#   DEMO_INSERT_EVERY  seconds between two batches of new CRM rows (default 3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${DEMO_PORT:-8080}"
SECONDS_TO_RUN="${DEMO_SECONDS:-}"
INSERT_EVERY="${DEMO_INSERT_EVERY:-3}"
PROJECT=demo-project

log() { printf '[demo] %s\n' "$*" >&2; }
die() { printf '[demo] error: %s\n' "$*" >&2; exit 1; }

for tool in curl python3; do
  command -v "$tool" >/dev/null || die "$tool is needed"
done
case "$PORT" in '' | *[!0-9]*) die "DEMO_PORT must be a port number, not '$PORT'" ;; esac
case "$SECONDS_TO_RUN" in *[!0-9]*) die "DEMO_SECONDS must be a number of seconds, not '$SECONDS_TO_RUN'" ;; esac

# --- Every background process ends with the script ------------------------
# Each long-running child is started with setsid, so it leads its own process
# group (its pid is the group id): stopping the group also stops whatever it
# started, and Ctrl-C reaches only this script, which stops them in order.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/okr-pulse-demo.XXXXXX")"
PIDS=()
CLEANED=0

stop_group() {
  local pid=$1 i
  # The group, or the process alone if it has not become a group yet.
  kill -TERM -- "-$pid" 2>/dev/null || { kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; return 0; }
  for i in $(seq 1 100); do # up to 10 s for a graceful exit
    kill -0 -- "-$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local status=$?
  [ "$CLEANED" = 1 ] && return
  CLEANED=1
  trap - EXIT INT TERM
  # The newest first: the server, then the feeder, then the emulator.
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    stop_group "${PIDS[i]}"
  done
  if [ "$status" != 0 ] && [ "$status" != 130 ] && [ "$status" != 143 ]; then
    for f in "$WORK"/*.log; do
      [ -s "$f" ] || continue
      printf '[demo] --- last lines of %s ---\n' "$(basename "$f")" >&2
      tail -n 8 "$f" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-300 >&2
    done
  fi
  rm -rf "$WORK"
  log "stopped; everything the demo started has ended"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_bg() { # start_bg LOGFILE CMD... ; sets LAST_PID
  local i
  setsid "${@:2}" >"$1" 2>&1 </dev/null &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  # Until setsid has run, the group does not exist and could not be stopped.
  for i in $(seq 1 50); do
    [ "$(ps -o pgid= -p "$LAST_PID" 2>/dev/null | tr -d ' ')" = "$LAST_PID" ] && return 0
    kill -0 "$LAST_PID" 2>/dev/null || return 0
    sleep 0.1
  done
  die "could not start $2 in its own process group"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

answers() { curl -s -o /dev/null --max-time 2 "$1"; }

wait_for() { # wait_for URL PID WHAT SECONDS
  local i
  for i in $(seq 1 $(($4 * 5))); do
    answers "$1" && return 0
    kill -0 "$2" 2>/dev/null || die "$3 exited before it answered"
    sleep 0.2
  done
  die "$3 did not answer on $1 within $4 s"
}

if answers "http://127.0.0.1:$PORT/"; then
  die "something already answers on 127.0.0.1:$PORT; pick another DEMO_PORT"
fi

# The server binary first, so that a failed build starts nothing.
if [ -n "${OKR_PULSE_BIN:-}" ]; then
  BIN="$OKR_PULSE_BIN"
else
  log "building okr-pulse (cargo build --release)"
  (cd "$ROOT" && cargo build --release) || die "cargo build --release failed"
  BIN="$ROOT/target/release/okr-pulse"
fi
[ -x "$BIN" ] || die "no executable server binary at $BIN"

# --- 1. The BigQuery emulator ---------------------------------------------
BQ="$("$ROOT/scripts/bq-emulator.sh")"
BQ_PORT="$(free_port)"
BQ_GRPC_PORT="$(free_port)"
while [ "$BQ_GRPC_PORT" = "$BQ_PORT" ]; do BQ_GRPC_PORT="$(free_port)"; done
BQ_URL="http://127.0.0.1:$BQ_PORT"
log "starting the BigQuery emulator on $BQ_URL"
start_bg "$WORK/bqemulator.log" "$BQ" start --project "$PROJECT" \
  --rest-port "$BQ_PORT" --grpc-port "$BQ_GRPC_PORT" --ephemeral
BQ_PID=$LAST_PID
wait_for "$BQ_URL/" "$BQ_PID" "the BigQuery emulator" 60

# --- 2. Sample CRM data ----------------------------------------------------
# js STRING: STRING as a JSON string (plain bash: python3 takes half a second
# to start on a busy machine, and the feeder runs this every few seconds).
js() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\t'/\\t}
  s=${s//$'\r'/\\r}
  printf '"%s"' "$s"
}

# bq_query SQL: runs one statement on the emulator; fails on any error.
bq_query() {
  local answer
  answer="$(curl -sS --max-time 30 -X POST "$BQ_URL/bigquery/v2/projects/$PROJECT/queries" \
    -H 'content-type: application/json' \
    --data-binary "{\"query\": $(js "$1"), \"useLegacySql\": false}")" || {
    echo "the emulator did not answer: $1" >&2
    return 1
  }
  case "$answer" in
    *'"jobComplete":true'*) case "$answer" in *'"errorResult"'* | *'"errors":'*) ;; *) return 0 ;; esac ;;
  esac
  printf 'the emulator refused: %s\n%s\n' "$1" "${answer:0:800}" >&2
  return 1
}

curl -sS --fail-with-body --max-time 30 -o "$WORK/dataset.json" -X POST \
  "$BQ_URL/bigquery/v2/projects/$PROJECT/datasets" -H 'content-type: application/json' \
  -d "{\"datasetReference\":{\"projectId\":\"$PROJECT\",\"datasetId\":\"crm\"}}" ||
  die "could not create the dataset crm: $(cat "$WORK/dataset.json" 2>/dev/null)"

# The current quarter, in UTC (the organization's default time zone), and the
# minutes since it began: the starting rows are spread over them.
read -r PERIOD_START PERIOD_END QUARTER ELAPSED_MIN <<<"$(python3 - <<'PY'
import datetime as dt
now = dt.datetime.now(dt.timezone.utc)
q = (now.month - 1) // 3
start = dt.date(now.year, 3 * q + 1, 1)
end = (dt.date(now.year + 1, 1, 1) if q == 3 else dt.date(now.year, 3 * q + 4, 1)) - dt.timedelta(days=1)
began = dt.datetime(start.year, start.month, 1, tzinfo=dt.timezone.utc)
print(start, end, f"Q{q + 1}-{now.year}", max(1, int((now - began).total_seconds() // 60) - 1))
PY
)"
QUARTER="${QUARTER/-/ }"

log "creating crm.leads, crm.deals and crm.tickets with rows for $QUARTER ($PERIOD_START .. $PERIOD_END)"
bq_query "CREATE TABLE crm.leads (created_at TIMESTAMP, qualified BOOL)"
bq_query "CREATE TABLE crm.deals (closed_at TIMESTAMP, amount NUMERIC)"
bq_query "CREATE TABLE crm.tickets (opened_at TIMESTAMP, resolved_hours FLOAT64)"
# spread N: the x-th of N rows lands x/N of the way back to the start of
# the quarter.
spread() { echo "TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL CAST(x * $ELAPSED_MIN / $1 AS INT64) MINUTE)"; }
# 330 leads, 70 % qualified (231).
bq_query "INSERT INTO crm.leads (created_at, qualified)
  SELECT $(spread 330), MOD(x, 10) < 7 FROM UNNEST(GENERATE_ARRAY(1, 330)) AS x"
# 18 deals of 8,000 to 38,000.
bq_query "INSERT INTO crm.deals (closed_at, amount)
  SELECT $(spread 18), CAST(8000 + MOD(x * 7919, 30000) AS NUMERIC) FROM UNNEST(GENERATE_ARRAY(1, 18)) AS x"
# 400 tickets resolved in 5 to 44 hours (24.5 on average, half within a day).
bq_query "INSERT INTO crm.tickets (opened_at, resolved_hours)
  SELECT $(spread 400), CAST(5 + MOD(x * 13, 40) AS FLOAT64) FROM UNNEST(GENERATE_ARRAY(1, 400)) AS x"

# The feeder: every few seconds, new leads, sometimes a deal, and tickets
# resolved faster than before. It runs until the script stops it.
feeder() {
  while :; do
    sleep "$INSERT_EVERY"
    local leads="" tickets="" i n
    n=$((1 + RANDOM % 3))
    for ((i = 0; i < n; i++)); do
      leads+="${leads:+, }(CURRENT_TIMESTAMP(), $([ $((RANDOM % 10)) -lt 7 ] && echo TRUE || echo FALSE))"
    done
    bq_query "INSERT INTO crm.leads (created_at, qualified) VALUES $leads" || true
    if [ $((RANDOM % 10)) -lt 4 ]; then
      bq_query "INSERT INTO crm.deals (closed_at, amount) VALUES (CURRENT_TIMESTAMP(), $((5000 + RANDOM % 30000)))" || true
    fi
    n=$((1 + RANDOM % 2))
    for ((i = 0; i < n; i++)); do
      tickets+="${tickets:+, }(CURRENT_TIMESTAMP(), $((2 + RANDOM % 12)).$((RANDOM % 10)))"
    done
    bq_query "INSERT INTO crm.tickets (opened_at, resolved_hours) VALUES $tickets" || true
  done
}
export BQ_URL PROJECT INSERT_EVERY
start_bg "$WORK/feeder.log" bash -c "set -uo pipefail; $(declare -f js bq_query feeder); feeder"
log "inserting new CRM rows every ${INSERT_EVERY}s"

# --- 3. The server ---------------------------------------------------------
DATA_DIR="$(mktemp -d "$WORK/data.XXXXXX")"
BASE="http://127.0.0.1:$PORT"
server_env=(
  env -u DATABASE_URL -u AUTH_JWT_SECRET -u GOOGLE_APPLICATION_CREDENTIALS
  DATA_DIR="$DATA_DIR"
  LISTEN_ADDR="127.0.0.1:$PORT"
  BIGQUERY_EMULATOR_HOST="$BQ_URL"
  SYNC_INTERVAL=10s
  SYNC_TICK=1s
  GCE_METADATA_HOST=127.0.0.1:9
  SHUTDOWN_TIMEOUT=5s
)
log "starting okr-pulse on $BASE (data in $DATA_DIR)"
start_bg "$WORK/server.log" "${server_env[@]}" "$BIN"
SERVER_PID=$LAST_PID
wait_for "$BASE/readyz" "$SERVER_PID" "okr-pulse" 60
ready() { [ "$(curl -s -o /dev/null --max-time 3 -w '%{http_code}' "$BASE/readyz")" = 200 ]; }
for _ in $(seq 1 50); do
  ready && break
  sleep 0.2
done
ready || die "okr-pulse answers but $BASE/readyz does not say ready"
[ -s "$DATA_DIR/jwt-secret" ] || die "the server did not create $DATA_DIR/jwt-secret"

# The same user as the admin token the server prints on its first run.
TOKEN="$("${server_env[@]}" "$BIN" token --org default --email admin@default.local \
  --name Admin --sub admin --role admin 2>"$WORK/token.log")" || die "could not mint the admin token"
TOKEN="$(printf '%s' "$TOKEN" | tail -n 1 | tr -d '[:space:]')"
[ -n "$TOKEN" ] || die "the token command printed nothing"

# --- 4. OKRs through the GraphQL API --------------------------------------
# gql WHAT QUERY VARIABLES_JSON [PATH]: runs one operation; stops the demo
# with WHAT and the server's message on any error; prints the value at PATH
# (dot-separated) of `data`.
gql() {
  local what=$1 query=$2 variables=$3 path=${4:-} body answer
  body="{\"query\": $(js "$query"), \"variables\": $variables}"
  answer="$(curl -sS --max-time 60 -X POST "$BASE/graphql" -H 'content-type: application/json' \
    -H "Authorization: Bearer $TOKEN" --data-binary "$body")" || die "$what: the server did not answer"
  python3 - "$what" "$path" "$answer" <<'PY' || exit 1
import json, sys
what, path, answer = sys.argv[1:4]
try:
    doc = json.loads(answer)
except ValueError:
    sys.exit(f"[demo] error: {what}: the server answered something that is not JSON:\n{answer[:500]}")
if doc.get("errors") or doc.get("data") is None:
    lines = []
    for e in doc.get("errors") or []:
        ext = e.get("extensions") or {}
        extra = ", ".join(f"{k}={v}" for k, v in ext.items())
        lines.append(f"  {e.get('message')}" + (f" ({extra})" if extra else ""))
    sys.exit(f"[demo] error: {what} failed:\n" + ("\n".join(lines) or answer[:500]))
value = doc["data"]
for key in filter(None, path.split(".")):
    value = value[key]
if path:
    print(value if not isinstance(value, (dict, list)) else json.dumps(value))
PY
}

log "seeding OKRs for $QUARTER through the GraphQL API"
CONNECTION="$(gql "createConnection" \
  'mutation($input: CreateConnectionInput!) { createConnection(input: $input) { id } }' \
  "{\"input\": {\"name\": \"CRM\", \"projectId\": \"$PROJECT\"}}" createConnection.id)"

objective() { # objective TITLE DESCRIPTION [PARENT_ID]
  local parent=""
  [ -n "${3:-}" ] && parent=", \"parentId\": $(js "$3")"
  gql "createObjective '$1'" \
    'mutation($input: CreateObjectiveInput!) { createObjective(input: $input) { id } }' \
    "{\"input\": {\"title\": $(js "$1"), \"description\": $(js "$2"), \"periodStart\": \"$PERIOD_START\", \"periodEnd\": \"$PERIOD_END\"$parent}}" \
    createObjective.id
}

key_result() { # key_result OBJECTIVE_ID TITLE UNIT KIND-FIELDS-JSON
  gql "createKeyResult '$2'" \
    'mutation($input: CreateKeyResultInput!) { createKeyResult(input: $input) { id } }' \
    "{\"input\": {\"objectiveId\": $(js "$1"), \"title\": $(js "$2"), \"unit\": $(js "$3"), $4}}" \
    createKeyResult.id
}

link() { # link KEY_RESULT_ID SQL
  gql "linkDataSource ($2)" \
    'mutation($input: LinkDataSourceInput!) { linkDataSource(input: $input) { id state lastValue } }' \
    "{\"input\": {\"keyResultId\": $(js "$1"), \"connectionId\": $(js "$CONNECTION"), \"sql\": $(js "$2"), \"syncIntervalSeconds\": 10}}" \
    linkDataSource.lastValue
}

COMPANY="$(objective "Win $QUARTER" "Company objective: a fuller pipeline and happier customers.")"
PIPELINE="$(objective "Grow the pipeline" "Sales: more qualified leads, more deals won." "$COMPANY")"
CUSTOMERS="$(objective "Delight customers" "Support: answer faster, keep customers happy." "$COMPANY")"

LEADS="$(key_result "$PIPELINE" "Qualified leads" "leads" '"kind": "METRIC", "startValue": 0, "targetValue": 400')"
REVENUE="$(key_result "$PIPELINE" "Closed revenue" "USD" '"kind": "METRIC", "startValue": 0, "targetValue": 800000')"
DEALS="$(key_result "$PIPELINE" "Deals won" "deals" '"kind": "METRIC", "startValue": 0, "targetValue": 60')"
FAST="$(key_result "$CUSTOMERS" "Tickets resolved within a day" "tickets" '"kind": "METRIC", "startValue": 0, "targetValue": 320')"
RESOLUTION="$(key_result "$CUSTOMERS" "Average resolution time" "hours" '"kind": "KPI", "kpiCondition": "AT_MOST", "targetValue": 24')"
NPS="$(key_result "$CUSTOMERS" "Net Promoter Score" "points" '"kind": "METRIC", "startValue": 30, "targetValue": 50')"

PERIOD="DATE(%s) BETWEEN @period_start AND @period_end"
# shellcheck disable=SC2059
{
  v="$(link "$LEADS" "SELECT COUNT(*) FROM crm.leads WHERE qualified AND $(printf "$PERIOD" created_at)")"
  log "  Qualified leads        <- crm.leads   ($v)"
  v="$(link "$REVENUE" "SELECT COALESCE(SUM(amount), 0) FROM crm.deals WHERE $(printf "$PERIOD" closed_at)")"
  log "  Closed revenue         <- crm.deals   ($v)"
  v="$(link "$DEALS" "SELECT COUNT(*) FROM crm.deals WHERE $(printf "$PERIOD" closed_at)")"
  log "  Deals won              <- crm.deals   ($v)"
  v="$(link "$FAST" "SELECT COUNT(*) FROM crm.tickets WHERE resolved_hours <= 24 AND $(printf "$PERIOD" opened_at)")"
  log "  Tickets within a day   <- crm.tickets ($v)"
  v="$(link "$RESOLUTION" "SELECT AVG(resolved_hours) FROM crm.tickets WHERE $(printf "$PERIOD" opened_at)")"
  log "  Average resolution     <- crm.tickets ($v)"
}
gql "checkIn (Net Promoter Score)" \
  'mutation($input: CheckInInput!) { checkIn(input: $input) { id } }' \
  "{\"input\": {\"keyResultId\": $(js "$NPS"), \"value\": 44, \"note\": \"Survey of $(date -u +%B)\"}}"
log "  Net Promoter Score     <- a manual check-in (44)"

# --- 5. Watch ----------------------------------------------------------------
cat <<EOF

okr-pulse demo is running; the data grows every ${INSERT_EVERY}s and syncs every 10s.

  Dashboard: $BASE/#token=$TOKEN
  GraphiQL:  $BASE/graphql
  Token:     $TOKEN

EOF
if [ -n "$SECONDS_TO_RUN" ]; then
  log "stopping by itself in ${SECONDS_TO_RUN}s (DEMO_SECONDS)"
  end=$((SECONDS + SECONDS_TO_RUN))
else
  log "press Ctrl-C to stop"
  end=""
fi
while [ -z "$end" ] || [ "$SECONDS" -lt "$end" ]; do
  kill -0 "$SERVER_PID" 2>/dev/null || die "okr-pulse exited"
  kill -0 "$BQ_PID" 2>/dev/null || die "the BigQuery emulator exited"
  sleep 1 & # in the background, so that Ctrl-C is handled at once
  wait $! || true
done
