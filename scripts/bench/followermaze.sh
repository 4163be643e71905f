#!/usr/bin/env bash
# followermaze.sh: seed 004 throughput and memory (issue 9). Runs the verification program
# (scripts/followermaze, default options: 100 clients, batches up to 100, seed 666) against a
# fresh optimised sidecar, for 1 000 000 and then 10 000 000 events, and prints the wall time,
# events/s, and the sidecar's peak RSS (VmHWM) next to its idle RSS: the baseline, measured
# in the same invocation. Memory must stay flat from 1 M to 10 M events.
# Targets: 10 M events in under 15 s with the sidecar's VmHWM under 64 MB.
#   scripts/bench/run.sh followermaze     (FM_BENCH_EVENTS="1000000 10000000" to change the runs)
# The sidecar runs with the relay off and a DATABASE_URL nobody answers (the follower maze does
# not use PostgreSQL). Ports: eventListenerPort, clientListenerPort and PORT from env.sh (override
# them if an instance already uses them).
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$HERALD_ROOT"
make -s -C sidecar B="$HERALD_SIDECAR_BUILD" "$HERALD_SIDECAR_BUILD/herald-sidecar" "$HERALD_SIDECAR_BUILD/followermaze" >/dev/null
SIDECAR="sidecar/$HERALD_SIDECAR_BUILD/herald-sidecar"
PROGRAM="sidecar/$HERALD_SIDECAR_BUILD/followermaze"
RUNS="${FM_BENCH_EVENTS:-1000000 10000000}"
LOGDIR="$HERALD_INSTANCE_DIR"
mkdir -p "$LOGDIR"
LOG="$LOGDIR/followermaze-bench-sidecar.log"

for p in "$PORT" "$eventListenerPort" "$clientListenerPort"; do
	if ss -Hltn "sport = :$p" | grep -q .; then
		echo "followermaze bench: port $p is in use; set PORT/eventListenerPort/clientListenerPort" >&2
		exit 1
	fi
done

pid=""
stop_sidecar() {
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	pid=""
}
trap stop_sidecar EXIT

start_sidecar() {
	HERALD_RELAY=0 HERALD_LOG_LEVEL=warn DATABASE_URL="postgresql://postgres@127.0.0.1:1/herald" \
		"$SIDECAR" >>"$LOG" 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		curl -fsS "http://$HOST:$PORT/healthcheck" >/dev/null 2>&1 && return 0
		kill -0 "$pid" 2>/dev/null || { echo "followermaze bench: the sidecar exited; see $LOG" >&2; exit 1; }
		sleep 0.05
	done
	echo "followermaze bench: the sidecar did not answer" >&2
	exit 1
}

kb() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

printf '%-10s %8s %8s %12s %14s %12s %12s %14s\n' events wall_s flow_s events/s notifications idle_RSS_MB VmHWM_MB program_RSS_MB
declare -A hwm wall
status=0
for n in $RUNS; do
	start_sidecar
	idle=$(kb "$pid" VmRSS)
	t0=$(date +%s.%N)
	out=$(totalEvents="$n" logInterval=0 /usr/bin/time -f 'maxrss_kb=%M' "$PROGRAM" 2>&1) || {
		echo "$out" | tail -20
		echo "followermaze bench: the verification program failed at $n events"
		status=1
		stop_sidecar
		continue
	}
	t1=$(date +%s.%N)
	peak=$(kb "$pid" VmHWM)
	stop_sidecar
	flow=$(sed -n 's/^result .*seconds=\([0-9.]*\).*/\1/p' <<<"$out")
	notes=$(sed -n 's/^result .*notifications=\([0-9]*\).*/\1/p' <<<"$out")
	prss=$(sed -n 's/^maxrss_kb=//p' <<<"$out")
	w=$(echo "$t1 - $t0" | bc -l)
	hwm[$n]=$peak
	wall[$n]=$w
	printf '%-10s %8.2f %8.2f %12.0f %14s %12.1f %12.1f %14.1f\n' "$n" "$w" "$flow" "$(echo "$n / $w" | bc -l)" "$notes" \
		"$(echo "$idle / 1024" | bc -l)" "$(echo "$peak / 1024" | bc -l)" "$(echo "$prss / 1024" | bc -l)"
done

if [ -n "${hwm[1000000]:-}" ] && [ -n "${hwm[10000000]:-}" ]; then
	printf 'ratio 10M/1M: wall x%.2f, sidecar VmHWM x%.2f (flat memory: ~1)\n' \
		"$(echo "${wall[10000000]} / ${wall[1000000]}" | bc -l)" "$(echo "${hwm[10000000]} / ${hwm[1000000]}" | bc -l)"
fi
if [ -n "${hwm[10000000]:-}" ]; then
	ok=$(echo "${wall[10000000]} < 15 && ${hwm[10000000]} < 65536" | bc -l)
	if [ "$ok" = 1 ]; then echo "target (10 M events < 15 s, VmHWM < 64 MB): met"; else echo "target (10 M events < 15 s, VmHWM < 64 MB): MISSED"; status=1; fi
fi
exit $status
