# pgbench_lib.sh: what the pgbench benchmarks (sends.sh, transitions.sh) share. Sourced after
# env.sh: the settings, a scratch folder for the pgbench scripts ($tmp, removed at exit),
# tps (one pgbench run → its rate) and ratio.
CLIENTS="${BENCH_CLIENTS:-8}"
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
PGBENCH="$PG_BINDIR/pgbench"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# run_pgbench runs one pgbench script with the bench's settings and prints pgbench's report;
# PGBENCH_EXTRA adds options (e.g. -D to define a variable).
run_pgbench() {
	"$PGBENCH" -n -M prepared ${PGBENCH_EXTRA:-} -c "$CLIENTS" -j "$CLIENTS" -T "$SECONDS_PER_RUN" -f "$1" "$DATABASE_URL" 2>"$tmp/err" ||
		{ cat "$tmp/err" >&2; return 1; }
}

# tps runs one pgbench script and prints its rate (transactions per second).
tps() { run_pgbench "$1" | awk '/^tps = / { printf "%d", $3 }'; }

# ratio A B prints A / B with two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# bench_header NAME prints the settings line of a benchmark.
bench_header() {
	echo "$1: $CLIENTS clients, ${SECONDS_PER_RUN}s per run, $("$PG_BINDIR/psql" -X -tA "$DATABASE_URL" -c "select 'fsync=' || current_setting('fsync')")"
}
