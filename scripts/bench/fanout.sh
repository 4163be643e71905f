#!/usr/bin/env bash
# fanout.sh: SSE fan-out (issue 5) — herald-sidecar against nginx + nchan, in the same
# invocation, with the same load program (sidecar/tools/herald-sse-load.c: epoll subscribers,
# publishers, per-message latency from publishing to receipt, loss / duplicate / reorder
# checks, server RSS per connection). One nginx worker against one sidecar loop thread.
# Publishing, each system its own way: herald with SELECT herald.send('user:<name>', body) in
# autocommit (the latency runs from before the statement, commit included; BENCH_HERALD_PUBLISH
# =post uses POST /v2/message instead), nchan with POST /pub/<channel> (which answers only
# once every subscriber has been written). Subscribers: GET /v2/sse?username=<name> and
# GET /sub/<channel> (eventsource).
# Broadcasts (bcast*) publish the same way: herald with herald.send in autocommit, its primary
# path (a committed row in the database, announced by the doorbell, fanned out by the sidecar;
# the latency again includes the commit), nchan with POST. BENCH_BCAST_PUBLISH=post publishes
# herald's broadcasts over HTTP too, with POST /v2/message, whose sidecar fans the message out
# as soon as the send has committed: on 2 cores both busy with the fan-out, that extra hop
# through the sidecar's loop caps one serial publisher at 1 000 subscribers near 2x nchan's
# rate (README, Performance). "As fast as it goes" is flow-controlled on both sides: nchan's
# publish answers only after its fan-out; herald's answers after the commit, so its publisher
# uses the load tool's window instead (--window BENCH_BCAST_WINDOW: message k is published
# once message k-W has reached every subscriber). "@no-window" is herald flooded without it.
# Scenarios:
#   peruser   1 000 subscribers on distinct streams, 1 000 messages/s, BENCH_PERUSER_MSGS messages
#   idle      10 000 idle subscribers: server memory per connection
#   bcast1k   one stream, 1 000 subscribers, BENCH_BCAST1K_MSGS messages as fast as one publisher goes
#   bcast10k  one stream, 10 000 subscribers, BENCH_BCAST10K_MSGS messages, likewise
#   (bcast*: herald also without the window, "@no-window": a flood that builds a backlog)
#   (bcast*: then herald again at the publish rate nchan reached: same offered load, "@nchan-rate",
#    and at twice that rate, "@2x-nchan-rate": at least twice nchan's deliveries/s (the rate is
#    rounded up), compare the p99 — the issue's target, checked and printed as a verdict; the
#    windowed run measures how far past 2x herald goes, and what that costs in p99)
#   (bcast*: the windowed herald run, the nchan run and the @2x-nchan-rate run are repeated
#    BENCH_REPEAT times (default 3) and reported as medians, each column on its own: one run of
#    either server moves by ±30 % on this machine; the other runs are single)
#   scripts/bench/run.sh fanout           (needs HERALD_BENCH_DEPS=1 scripts/bootstrap.sh for nchan)
#   BENCH_SCENARIOS="peruser idle" scripts/bench/run.sh fanout
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$HERALD_ROOT"

SCENARIOS="${BENCH_SCENARIOS:-peruser idle bcast1k bcast10k}"
PERUSER_MSGS="${BENCH_PERUSER_MSGS:-10000}"
BCAST1K_MSGS="${BENCH_BCAST1K_MSGS:-500}"
BCAST10K_MSGS="${BENCH_BCAST10K_MSGS:-100}"
NCHAN_PORT="${HERALD_NCHAN_PORT:-$((PORT + 7))}"
RUN="r$$"
HERALD_PUBLISH="${BENCH_HERALD_PUBLISH:-sql}"
BCAST_PUBLISH="${BENCH_BCAST_PUBLISH:-sql}"
BCAST_WINDOW="${BENCH_BCAST_WINDOW:-4}"
REPEAT="${BENCH_REPEAT:-3}"

if ! command -v nginx >/dev/null || [ ! -f /usr/lib/nginx/modules/ngx_nchan_module.so ]; then
	echo "fanout: nginx + nchan missing: run HERALD_BENCH_DEPS=1 scripts/bootstrap.sh" >&2
	exit 1
fi
make -s -C extension install >/dev/null
make -s -C sidecar B="$HERALD_SIDECAR_BUILD" >/dev/null
LOAD="$HERALD_ROOT/sidecar/$HERALD_SIDECAR_BUILD/herald-sse-load"
export HERALD_SIDECAR_BIN="$HERALD_ROOT/sidecar/$HERALD_SIDECAR_BUILD/herald-sidecar"
export HERALD_LOG_LEVEL=warn HERALD_FOLLOWERMAZE=0 HERALD_RELAY=0 HERALD_EMULATOR=0
# (cluster.sh restarts a running postmaster when a new herald.so was installed)
scripts/cluster.sh setup >/dev/null

NDIR="$HERALD_INSTANCE_DIR/nchan"
mkdir -p "$NDIR/logs" "$NDIR/tmp"
cat >"$NDIR/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_nchan_module.so;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $NDIR/nginx.pid;
error_log $NDIR/logs/error.log warn;
events { worker_connections 19000; multi_accept on; }
http {
	access_log off;
	keepalive_requests 10000000;
	client_body_temp_path $NDIR/tmp/body;
	proxy_temp_path $NDIR/tmp/proxy;
	fastcgi_temp_path $NDIR/tmp/fastcgi;
	uwsgi_temp_path $NDIR/tmp/uwsgi;
	scgi_temp_path $NDIR/tmp/scgi;
	server {
		listen $HOST:$NCHAN_PORT backlog=4096;
		location ~ ^/sub/(.+)\$ {
			nchan_subscriber eventsource;
			nchan_channel_id \$1;
			nchan_subscriber_first_message newest;
		}
		location ~ ^/pub/(.+)\$ {
			nchan_publisher;
			nchan_channel_id \$1;
			nchan_message_buffer_length 20000;
			nchan_message_timeout 10m;
		}
	}
}
EOF

nchan_start() {
	nginx -p "$NDIR" -c "$NDIR/nginx.conf" -g 'daemon on;' 2>>"$NDIR/logs/error.log"
	for _ in $(seq 100); do
		[ -f "$NDIR/nginx.pid" ] && pgrep -P "$(cat "$NDIR/nginx.pid")" >/dev/null && return 0
		sleep 0.05
	done
	echo "fanout: nginx did not start" >&2; exit 1
}
nchan_stop() {
	[ -f "$NDIR/nginx.pid" ] || return 0
	local pid; pid="$(cat "$NDIR/nginx.pid")"
	kill -QUIT "$pid" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$NDIR/nginx.pid"
}
nchan_pid() { pgrep -P "$(cat "$NDIR/nginx.pid")" | head -1; }
herald_start() { scripts/sidecar.sh restart >/dev/null; }
herald_stop() { scripts/sidecar.sh stop-sidecar >/dev/null 2>&1 || true; }
herald_pid() { cat "$HERALD_INSTANCE_DIR/sidecar.pid"; }
trap 'herald_stop; nchan_stop' EXIT

RESULTS="$HERALD_INSTANCE_DIR/fanout-results.txt"
: >"$RESULTS"

# run <scenario> <server> args...: one load run against a freshly started server.
run() {
	local scen="$1" server="$2"; shift 2
	local port pid sub pub
	local extra=()
	local publish="$HERALD_PUBLISH"
	case "$scen" in bcast*) publish="$BCAST_PUBLISH" ;; esac
	if [ "$server" = herald ]; then
		herald_start; port="$PORT"; pid="$(herald_pid)"
		if [ "$publish" = sql ]; then
			# --pub /v2/message?username=X  ->  herald.send('user:X', ...)
			local args=() a
			for a in "$@"; do
				case "$a" in /v2/message\?username=*) args+=("user:${a#/v2/message?username=}") ;; *) args+=("$a") ;; esac
			done
			set -- "${args[@]}"
			extra=(--db "$DATABASE_URL")
		fi
	else
		nchan_start; port="$NCHAN_PORT"; pid="$(nchan_pid)"
	fi
	local out
	out="$("$LOAD" --host "$HOST" --port "$port" --pid "$pid" --label "$scen/$server" "${extra[@]}" "$@" 2>&1)" || true
	echo "$out" | grep -v '^RESULT' | sed 's/^/    /'
	echo "$out" | grep '^RESULT' >>"$RESULTS" || echo "RESULT label=$scen/$server failed=1" >>"$RESULTS"
	if [ "$server" = herald ]; then herald_stop; else nchan_stop; fi
}

for scen in $SCENARIOS; do
	echo "--- $scen"
	case "$scen" in
	peruser)
		run peruser herald --sub "/v2/sse?username=$RUN-p{i}" --pub "/v2/message?username=$RUN-p{i}" -n 1000 --streams 1000 \
			--messages "$PERUSER_MSGS" --rate 1000 --publishers 8
		run peruser nchan --sub "/sub/$RUN-p{i}" --pub "/pub/$RUN-p{i}" -n 1000 --streams 1000 \
			--messages "$PERUSER_MSGS" --rate 1000 --publishers 8 ;;
	idle)
		run idle herald --sub "/v2/sse?username=$RUN-i{i}" -n 10000 --streams 10000 --idle --settle-ms 2000
		run idle nchan --sub "/sub/$RUN-i{i}" -n 10000 --streams 10000 --idle --settle-ms 2000 ;;
	bcast1k | bcast10k)
		if [ "$scen" = bcast1k ]; then n=1000 msgs="$BCAST1K_MSGS"; else n=10000 msgs="$BCAST10K_MSGS"; fi
		for r in $(seq "$REPEAT"); do
			run "$scen" herald --sub "/v2/sse?username=$RUN-$scen-$r" --pub "/v2/message?username=$RUN-$scen-$r" -n "$n" --streams 1 \
				--messages "$msgs" --publishers 1 --window "$BCAST_WINDOW"
		done
		run "$scen@no-window" herald --sub "/v2/sse?username=$RUN-$scen-f" --pub "/v2/message?username=$RUN-$scen-f" -n "$n" \
			--streams 1 --messages "$msgs" --publishers 1
		for r in $(seq "$REPEAT"); do
			run "$scen" nchan --sub "/sub/$RUN-$scen-$r" --pub "/pub/$RUN-$scen-$r" -n "$n" --streams 1 --messages "$msgs" --publishers 1
		done
		# the same offered load: herald published at the rate (messages/s, rounded up) at which
		# nchan delivered (the median of its runs) ...
		dps="$(grep "label=$scen/nchan " "$RESULTS" | sed -n 's/.* deliveries_per_s=\([0-9]*\).*/\1/p' | sort -n |
			awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }')"
		if [ -n "$dps" ] && [ "$dps" -gt 0 ]; then
			rate=$(( (dps + n - 1) / n )); rate2=$(( (205 * dps + 100 * n - 1) / (100 * n) ))
			run "$scen@nchan-rate" herald --sub "/v2/sse?username=$RUN-$scen-r" --pub "/v2/message?username=$RUN-$scen-r" -n "$n" \
				--streams 1 --messages "$msgs" --publishers 1 --rate "$rate"
			# ... and at twice that (2.05x, rounded up: the measured rate includes the last message's
			# fan-out, so it comes out a little under the offered one): the target is at least twice
			# nchan's deliveries/s with a lower p99
			for r in $(seq "$REPEAT"); do
				run "$scen@2x-nchan-rate" herald --sub "/v2/sse?username=$RUN-$scen-r2-$r" --pub "/v2/message?username=$RUN-$scen-r2-$r" \
					-n "$n" --streams 1 --messages "$((msgs * 2))" --publishers 1 --rate "$rate2"
			done
		fi ;;
	*) echo "fanout: unknown scenario $scen" >&2 ;;
	esac
done

# The table (markdown, for the README) and the ratios. A scenario run several times (bcast*)
# is one row of medians, each column on its own ("runs" says how many).
awk -v target_ratio=2 '
function val(line, key,   m) { if (match(line, " " key "=[^ ]*")) { m = substr(line, RSTART + length(key) + 2, RLENGTH - length(key) - 2); return m } return "" }
function median(k, m,   i, j, c, t, a) {
  c = N[k]; for (i = 1; i <= c; i++) a[i] = V[k, m, i]
  for (i = 2; i <= c; i++) { t = a[i]; for (j = i - 1; j >= 1 && (a[j] == "" ? -1 : a[j] + 0) > (t == "" ? -1 : t + 0); j--) a[j + 1] = a[j]; a[j + 1] = t }
  return c ? a[int((c + 1) / 2)] : "" }
{ split(val($0, "label"), a, "/"); s = a[1]; srv = a[2]; if (!(s in seen)) { order[++n] = s; seen[s] = 1 }
  k = s SUBSEP srv
  if (val($0, "failed") != "") { F[k] = 1; next }
  N[k]++
  split("subs lost dup reordered p50_us p99_us max_us deliveries_per_s bytes_per_conn pub_rate deliveries expected ack_p50_us ack_p99_us", keys, " ")
  for (i in keys) V[k, keys[i], N[k]] = val($0, keys[i]) }
function R(s, srv, m) { return median(s SUBSEP srv, m) }
function ms(us) { return us == "" ? "-" : sprintf("%.2f", us / 1000) }
function ratio(x, y) { return (x == "" || y == "" || y + 0 == 0) ? "-" : sprintf("%.2f", x / y) }
function verdict(d, p) { return (d != "-" && p != "-" && d + 0 >= target_ratio && p + 0 < 1) ? "meets" : "misses" }
END {
  print ""
  print "| scenario | server | runs | subscribers | delivered/expected | lost | dup | reordered | p50 ms | p99 ms | max ms | p50 / p99 ms from ack | deliveries/s | publish/s | bytes/conn |"
  print "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  for (i = 1; i <= n; i++) { s = order[i]
    for (j = 1; j <= 2; j++) { srv = j == 1 ? "herald" : "nchan"; k = s SUBSEP srv
      if (!N[k] && !F[k]) continue
      if (!N[k]) { printf "| %s | %s | failed |\n", s, srv; continue }
      if (s == "idle")
        printf "| %s | %s | %d | %s | - | - | - | - | - | - | - | - | - | - | %s |\n", s, srv, N[k], R(s, srv, "subs"), R(s, srv, "bytes_per_conn")
      else
        printf "| %s | %s | %d%s | %s | %s/%s | %s | %s | %s | %s | %s | %s | %s / %s | %s | %s | %s |\n", s, srv, N[k], F[k] ? " (+failed)" : "",
          R(s, srv, "subs"), R(s, srv, "deliveries"), R(s, srv, "expected"),
          R(s, srv, "lost"), R(s, srv, "dup"), R(s, srv, "reordered"), ms(R(s, srv, "p50_us")), ms(R(s, srv, "p99_us")), ms(R(s, srv, "max_us")),
          ms(R(s, srv, "ack_p50_us")), ms(R(s, srv, "ack_p99_us")),
          R(s, srv, "deliveries_per_s"), R(s, srv, "pub_rate"), R(s, srv, "bytes_per_conn") } }
  print ""
  print "ratios herald / nchan:"
  for (i = 1; i <= n; i++) { s = order[i]
    if (index(s, "@") > 0) { b = substr(s, 1, index(s, "@") - 1); at = substr(s, index(s, "@") + 1)
      d = ratio(R(s, "herald", "deliveries_per_s"), R(b, "nchan", "deliveries_per_s")); p = ratio(R(s, "herald", "p99_us"), R(b, "nchan", "p99_us"))
      printf "  %-9s at %s: deliveries/s %s, p99 %s\n", b, at, d, p
      if (at == "2x-nchan-rate") tv[b] = sprintf("at twice nchan'"'"'s rate %s× its deliveries/s, p99 %s× (%s)", d, p, verdict(d, p))
      continue }
    if (s == "idle") { printf "  %-9s memory per connection %s (lower is better)\n", s, ratio(R(s, "herald", "bytes_per_conn"), R(s, "nchan", "bytes_per_conn")); continue }
    d = ratio(R(s, "herald", "deliveries_per_s"), R(s, "nchan", "deliveries_per_s")); p = ratio(R(s, "herald", "p99_us"), R(s, "nchan", "p99_us"))
    printf "  %-9s deliveries/s %s (higher is better), p99 %s (lower is better)\n", s, d, p
    if (s ~ /^bcast/) wv[s] = sprintf("as fast as the windowed publisher goes: %s× its deliveries/s at %s× its p99", d, p) }
  for (i = 1; i <= n; i++) { s = order[i]
    if (s in tv) printf "target %s (at least 2x nchan'"'"'s deliveries/s with a lower p99): %s; %s\n", s, tv[s], wv[s] }
}' "$RESULTS"
echo "raw results: $RESULTS"
