#!/usr/bin/env bash
# test.sh runs every test, stopping at nothing, and exits non-zero if any failed:
#   1. the sidecar's unit tests, built with AddressSanitizer + UBSan
#   2. pg_regress and pg_isolation_regress, each on a throw-away instance of their own
#   3. end-to-end tests (node's test runner: real HTTP/SSE/WebSocket/TCP clients and a real
#      browser) against a fresh test cluster and the ASan build of the sidecar
# It uses instance "test" (its own data, ports and logs), never a `make run` instance.
set -uo pipefail
export HERALD_INSTANCE="${HERALD_TEST_INSTANCE:-test}"
source "$(dirname "$0")/env.sh"
cd "$HERALD_ROOT"

LOGDIR="$HERALD_INSTANCE_DIR/logs"
passed=0
failed=0
failed_steps=()

scripts/bootstrap.sh || exit 1
make -s -C extension install >/dev/null && make -s -C sidecar B="$HERALD_SIDECAR_BUILD" >/dev/null || { echo "test: build failed"; exit 1; }
make -s -C sidecar B="$HERALD_SIDECAR_BUILD" asan >/dev/null || { echo "test: ASan build failed"; exit 1; }
# A previous run may have left servers behind (interrupted run): stop them before wiping.
scripts/sidecar.sh stop >/dev/null 2>&1 || true
[ -f "$HERALD_INSTANCE_DIR/pg/PG_VERSION" ] && scripts/cluster.sh stop >/dev/null 2>&1
rm -rf "$HERALD_INSTANCE_DIR"
mkdir -p "$LOGDIR"
ensure_pg_can_reach "$HERALD_ROOT"
[ "$(id -u)" = 0 ] && chown -R postgres: "$HERALD_INSTANCE_DIR"

# count_step adds a step's passed/failed counts to the totals.
count_step() {
	local name="$1" p="$2" f="$3" rc="$4"
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
	passed=$((passed + p)); failed=$((failed + f))
	[ "$f" = 0 ] || failed_steps+=("$name")
	echo "== $name: $p passed, $f failed"
}

# ---- 1. unit tests (ASan/UBSan) ----
units=(sidecar/$HERALD_SIDECAR_BUILD/asan/tests/*)
up=0; uf=0
for t in "${units[@]}"; do
	[ -x "$t" ] || continue
	if "$t" >"$LOGDIR/unit-$(basename "$t").log" 2>&1; then up=$((up + 1)); else uf=$((uf + 1)); echo "unit test $(basename "$t") FAILED:"; tail -30 "$LOGDIR/unit-$(basename "$t").log"; fi
done
count_step "unit tests (ASan/UBSan)" "$up" "$uf" 0

# ---- 2. pg_regress and isolation ----
PGXS_DIR="$(dirname "$("$PG_BINDIR/pg_config" --pgxs)")/.."
regress_tests=$(cd regress/sql && ls *.sql 2>/dev/null | sed 's/\.sql$//' | sort)
if [ -n "$regress_tests" ]; then
	as_pg "$PGXS_DIR/test/regress/pg_regress" --inputdir=regress --outputdir="$HERALD_INSTANCE_DIR/regress" \
		--temp-instance="$HERALD_INSTANCE_DIR/regress/tmp" --temp-config=regress/herald.conf --port="$HERALD_REGRESS_PORT" \
		--bindir="$PG_BINDIR" --dbname=herald_regress --load-extension=herald $regress_tests \
		>"$LOGDIR/pg_regress.log" 2>&1
	rc=$?
	cat "$LOGDIR/pg_regress.log" | grep -E '^(ok|not ok|test |     [a-z]|\s+\S+\s+\.\.\. )' || true
	rp=$(grep -cE '^ok |\.\.\. ok' "$LOGDIR/pg_regress.log")
	rf=$(grep -cE '^not ok |\.\.\. FAILED' "$LOGDIR/pg_regress.log")
	[ "$rc" = 0 ] || { cat "$HERALD_INSTANCE_DIR/regress/regression.diffs" 2>/dev/null | head -80; }
	count_step "pg_regress" "$rp" "$rf" "$rc"
fi
iso_tests=$(cd regress/specs 2>/dev/null && ls *.spec 2>/dev/null | sed 's/\.spec$//' | sort)
if [ -n "$iso_tests" ]; then
	as_pg "$PGXS_DIR/test/isolation/pg_isolation_regress" --inputdir=regress --outputdir="$HERALD_INSTANCE_DIR/isolation" \
		--temp-instance="$HERALD_INSTANCE_DIR/isolation/tmp" --temp-config=regress/herald.conf --port="$((HERALD_REGRESS_PORT + 1))" \
		--bindir="$PG_BINDIR" --dbname=herald_regress --load-extension=herald $iso_tests \
		>"$LOGDIR/isolation.log" 2>&1
	rc=$?
	grep -E '\.\.\. (ok|FAILED)|^(ok|not ok)' "$LOGDIR/isolation.log" || true
	ip=$(grep -cE '^ok |\.\.\. ok' "$LOGDIR/isolation.log")
	if_=$(grep -cE '^not ok |\.\.\. FAILED' "$LOGDIR/isolation.log")
	[ "$rc" = 0 ] || { cat "$HERALD_INSTANCE_DIR/isolation/regression.diffs" 2>/dev/null | head -80; }
	count_step "isolation" "$ip" "$if_" "$rc"
fi

# ---- 3. end to end ----
export HERALD_SIDECAR_BIN="$HERALD_ROOT/sidecar/$HERALD_SIDECAR_BUILD/asan/herald-sidecar"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# Short intervals so cadence tests run in seconds (the defaults are the seeds' own).
export HERALD_V1_INTERVAL_MS="${HERALD_V1_INTERVAL_MS:-1500}" HERALD_V1_KEEPALIVE_MS="${HERALD_V1_KEEPALIVE_MS:-300}"
export HERALD_LISTEN_CHECK_MS="${HERALD_LISTEN_CHECK_MS:-1000}"
export HERALD_SSE_MAX_BUFFER="${HERALD_SSE_MAX_BUFFER:-1048576}" # slow-consumer test: cut after 1 MiB unsent
export HERALD_WS_IDLE_MS="${HERALD_WS_IDLE_MS:-1500}"
export HERALD_FM_ID_TIMEOUT_MS="${HERALD_FM_ID_TIMEOUT_MS:-1000}" HERALD_FM_CLIENT_MAX_BUFFER="${HERALD_FM_CLIENT_MAX_BUFFER:-1048576}"
export ORIGIN="${ORIGIN:-http://allowed.example}"
# Broker: a short liveness period, and a known SECRET so tests can make (and forge) tokens.
export HERALD_EVENTS_STATUS_MS="${HERALD_EVENTS_STATUS_MS:-1000}" SECRET="${SECRET:-herald-e2e-secret-0123456789abcdef0123456789}"
e2e_files=$(ls regress/e2e/*.test.mjs regress/browser/*.test.mjs 2>/dev/null)
if [ -n "$e2e_files" ]; then
	if scripts/cluster.sh setup && scripts/sidecar.sh start; then
		(cd regress && node --test --test-concurrency=1 --test-timeout=120000 --test-reporter=spec ${e2e_files//regress\//}) \
			>"$LOGDIR/e2e.log" 2>&1
		rc=$?
		cat "$LOGDIR/e2e.log"
		ep=$(grep -E '^ℹ pass [0-9]+' "$LOGDIR/e2e.log" | awk '{print $3}' | tail -1)
		ef=$(grep -E '^ℹ fail [0-9]+' "$LOGDIR/e2e.log" | awk '{print $3}' | tail -1)
		count_step "end-to-end" "${ep:-0}" "${ef:-0}" "$rc"
		if grep -qE 'ERROR: AddressSanitizer|runtime error:' "$HERALD_INSTANCE_DIR/sidecar.log"; then
			echo "the sidecar reported memory or undefined-behaviour errors:"; grep -A30 -E 'ERROR: AddressSanitizer|runtime error:' "$HERALD_INSTANCE_DIR/sidecar.log" | head -60
			count_step "sidecar sanitizers" 0 1 1
		fi
	else
		echo "test: could not start the test cluster or the sidecar"
		tail -30 "$HERALD_INSTANCE_DIR/postgresql.log" "$HERALD_INSTANCE_DIR/sidecar.log" 2>/dev/null
		count_step "end-to-end" 0 1 1
	fi
	scripts/sidecar.sh stop >/dev/null 2>&1
	scripts/cluster.sh stop >/dev/null 2>&1
fi

echo
[ ${#failed_steps[@]} = 0 ] || echo "failed steps: ${failed_steps[*]}"
echo "logs: $LOGDIR"
echo "herald: $passed passed, $failed failed"
[ "$failed" = 0 ]
