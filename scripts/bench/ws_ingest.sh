#!/usr/bin/env bash
# ws_ingest.sh — seed 002: session entries uploaded over WebSocket (sidecar → one
# herald.ingest_session_batch call per message), against the same entries written straight
# into the same tables, in the same run:
#   insert  one INSERT per entry, each its own transaction (a naive client)
#   copy    one transaction per K entries, the events with COPY (the fastest bulk path)
# C clients each upload S sessions of M events in messages of K entries. Prints entries/s of
# each, the ratios ws/copy (target >= 0.5 with K = 100) and ws/insert (target >= 10), and
# checks after every run that the database holds exactly what was sent and acknowledged.
# Settings: WS_BENCH_CLIENTS (16), WS_BENCH_SESSIONS (10), WS_BENCH_EVENTS (1000),
# WS_BENCH_BATCH (100), WS_BENCH_INSERT_SESSIONS (sessions per client for the slow insert
# baseline, 1), WS_BENCH_ROUNDS (3: the modes run in turn this many times and each keeps
# its best rate, so that load from elsewhere on the machine does not decide the ratios),
# HERALD_PG_POOL (the sidecar's query connections; its default is 4).
set -euo pipefail
export HERALD_INSTANCE="${HERALD_INSTANCE:-bench}"
source "$(dirname "$0")/../env.sh"
cd "$HERALD_ROOT"

CLIENTS="${WS_BENCH_CLIENTS:-16}"
SESSIONS="${WS_BENCH_SESSIONS:-10}"
EVENTS="${WS_BENCH_EVENTS:-1000}"
BATCH="${WS_BENCH_BATCH:-100}"
INSERT_SESSIONS="${WS_BENCH_INSERT_SESSIONS:-1}"
ROUNDS="${WS_BENCH_ROUNDS:-3}"
export HERALD_PG_POOL="${HERALD_PG_POOL:-4}"
LOAD="$HERALD_ROOT/sidecar/$HERALD_SIDECAR_BUILD/herald-ws-load"

make -s -C extension install >/dev/null
make -s -C sidecar B="$HERALD_SIDECAR_BUILD" >/dev/null
scripts/cluster.sh setup
scripts/sidecar.sh restart >/dev/null
trap 'scripts/sidecar.sh stop >/dev/null 2>&1; scripts/cluster.sh stop >/dev/null 2>&1 || true' EXIT

# run MODE SESSIONS: empty the tables, run the load, print its lines; the rate goes to $rate.
run() {
	psql_herald -c "TRUNCATE herald.session_events, herald.sessions"
	local out
	out="$("$LOAD" --mode "$1" --host "$HOST" --port "$PORT" --database-url "$DATABASE_URL" --clients "$CLIENTS" \
		--sessions "$2" --events "$EVENTS" --batch "$BATCH" --check)" || { echo "$out"; echo "ws_ingest: $1 run failed"; exit 1; }
	echo "$out" | sed 's/^/  /'
	rate="$(echo "$out" | sed -n 's/.*entries_per_s=\([0-9]*\).*/\1/p')"
}

echo "ws_ingest: $CLIENTS clients, sessions of $EVENTS events, $BATCH entries per message (sidecar pool $HERALD_PG_POOL)"
ws=0 insert=0 copy=0
for round in $(seq "$ROUNDS"); do
	echo " round $round"
	run ws "$SESSIONS"; [ "$rate" -gt "$ws" ] && ws=$rate
	run insert "$INSERT_SESSIONS"; [ "$rate" -gt "$insert" ] && insert=$rate
	run copy "$SESSIONS"; [ "$rate" -gt "$copy" ] && copy=$rate
done
awk -v ws="$ws" -v ins="$insert" -v cp="$copy" 'BEGIN {
	printf "ws_ingest: best of the rounds: ws %d entries/s, insert-per-entry %d entries/s, copy %d entries/s\n", ws, ins, cp
	printf "ws_ingest: ratio ws/copy = %.2f (target >= 0.50), ratio ws/insert = %.1f (target >= 10)\n", ws / cp, ws / ins
}'
