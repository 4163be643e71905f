#!/usr/bin/env bash
# transitions.sh: the cost of the report state machine (issue 3). pgbench runs, in the same
# invocation and against the same cluster, (a) herald.transition() on herald.reports — C
# validation, version, history row, owner's stream message and doorbell — and (b) a plain
# UPDATE of the status column of an equivalent table without any of that. Each client
# walks its own reports (pending → queued → canceled → pending ...), so clients never wait
# on each other's rows. Printed: both rates and the ratio; target ratio ≥ 0.75 (the machine
# costs at most 25 % of plain UPDATE throughput); and, to show where the cost is, the
# transition rate with the doorbell (NOTIFY) trigger switched off. Measured twice: with the
# cluster's commit durability (NOTIFY's cluster-wide commit lock is held through the WAL
# flush, so notifying commits cannot share a flush), and with synchronous_commit = off
# (CPU-bound: the machine's own work shows). The transition rate is measured with the doorbells
# handed to the background worker (herald.doorbell_via_worker = on, the default: the worker sends
# the NOTIFYs, a batch per transaction) and with the committing transaction notifying itself
# (off: the behaviour without the worker).
#   scripts/bench/run.sh transitions    (BENCH_CLIENTS, BENCH_SECONDS, BENCH_REPORTS)
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$HERALD_ROOT"
source scripts/bench/pgbench_lib.sh
PER_CLIENT="${BENCH_REPORTS:-1000}"
make -s -C extension install >/dev/null
# (cluster.sh restarts a running postmaster when a new herald.so was installed)
scripts/cluster.sh setup >/dev/null
psql_herald >/dev/null <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS public.bench_plain_reports;
CREATE TABLE public.bench_plain_reports (LIKE herald.reports INCLUDING DEFAULTS);
ALTER TABLE public.bench_plain_reports ADD PRIMARY KEY (id);
CREATE INDEX ON public.bench_plain_reports (owner, created_at);
INSERT INTO public.bench_plain_reports (id, owner)
SELECT md5('bench-report-' || i)::uuid, md5('bench-owner-' || i)::uuid
  FROM generate_series(0, $CLIENTS * $PER_CLIENT + $PER_CLIENT) i;
-- start from the same state every time: the bench reports' history (by the cascade) and
-- their owners' streams and messages left by earlier runs are removed
DELETE FROM herald.reports WHERE id IN (SELECT id FROM public.bench_plain_reports);
DELETE FROM herald.outbox WHERE stream IN (SELECT 'user:' || owner FROM public.bench_plain_reports);
DELETE FROM herald.streams WHERE stream IN (SELECT 'user:' || owner FROM public.bench_plain_reports);
INSERT INTO herald.reports (id, owner) SELECT id, owner FROM public.bench_plain_reports;
VACUUM ANALYZE public.bench_plain_reports;
VACUUM ANALYZE herald.reports;
VACUUM ANALYZE herald.report_history;
VACUUM ANALYZE herald.outbox;
VACUUM ANALYZE herald.streams;
SQL

cat >"$tmp/plain.sql" <<SQL
\set r :client_id * $PER_CLIENT + random(1, $PER_CLIENT)
UPDATE public.bench_plain_reports
   SET status = CASE status WHEN 'pending' THEN 'queued' WHEN 'queued' THEN 'canceled' ELSE 'pending' END::herald.report_status,
       version = version + 1, updated_at = now()
 WHERE id = md5('bench-report-' || :r)::uuid;
SQL
cat >"$tmp/transition.sql" <<SQL
\set r :client_id * $PER_CLIENT + random(1, $PER_CLIENT)
SELECT herald.transition(id, CASE status WHEN 'pending' THEN 'queued' WHEN 'queued' THEN 'canceled' ELSE 'pending' END)
  FROM herald.reports WHERE id = md5('bench-report-' || :r)::uuid;
SQL


bench_header transitions
# doorbell_off/on switch the outbox's NOTIFY trigger, to show what the doorbell costs (the
# trigger is always switched back on, even if the run fails).
doorbell() { psql_herald -c "ALTER TABLE herald.outbox ${1^^} TRIGGER outbox_announce" >/dev/null; }
trap 'doorbell enable; rm -rf "$tmp"' EXIT
best() { printf '%s\n' "$@" | sort -n | tail -1; }
for mode in on off; do
	export PGOPTIONS="-c synchronous_commit=$mode"
	# alternate the runs three times, keep the best of each, so drift hits all alike
	ps=(); ts=(); ds=(); ns=()
	for _ in 1 2 3; do
		ps+=("$(tps "$tmp/plain.sql")"); ts+=("$(tps "$tmp/transition.sql")")
		ds+=("$(PGOPTIONS="$PGOPTIONS -c herald.doorbell_via_worker=off" tps "$tmp/transition.sql")")
		doorbell disable; ns+=("$(tps "$tmp/transition.sql")"); doorbell enable
	done
	p=$(best "${ps[@]}"); t=$(best "${ts[@]}"); d=$(best "${ds[@]}"); n=$(best "${ns[@]}")
	verdict=$(awk -v t="$t" -v p="$p" 'BEGIN { print (t >= 0.75 * p) ? "meets" : "misses" }')
	printf 'transitions: synchronous_commit=%-3s plain UPDATE %6d tps  herald.transition %6d tps  ratio %s (%s the 0.75 target); doorbell sent by the transaction itself %6d tps (%s); without the doorbell %6d tps (%s)\n' \
		"$mode" "$p" "$t" "$(ratio "$t" "$p")" "$verdict" "$d" "$(ratio "$d" "$p")" "$n" "$(ratio "$n" "$p")"
done
# What each transaction writes to the WAL (full-page images included, as they come with the
# cluster's checkpoints): one more run of each, the WAL insert position before and after.
unset PGOPTIONS
wal_per_txn() {
	local before after n
	before="$("$PG_BINDIR/psql" -X -tA "$DATABASE_URL" -c 'select pg_current_wal_insert_lsn()')"
	n="$("$PGBENCH" -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -T "$SECONDS_PER_RUN" -f "$1" "$DATABASE_URL" 2>/dev/null |
		awk '/^number of transactions actually processed:/ { print $NF }')"
	after="$("$PG_BINDIR/psql" -X -tA "$DATABASE_URL" -c 'select pg_current_wal_insert_lsn()')"
	"$PG_BINDIR/psql" -X -tA "$DATABASE_URL" -c "select round(pg_wal_lsn_diff('$after', '$before') / greatest($n, 1))"
}
echo "transitions: WAL per transaction: plain UPDATE $(wal_per_txn "$tmp/plain.sql") bytes, herald.transition $(wal_per_txn "$tmp/transition.sql") bytes"

