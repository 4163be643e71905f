#!/usr/bin/env bash
# sends.sh: the cost of the outbox (issue 3). pgbench runs, in the same invocation and
# against the same cluster, herald.send() of a 100-byte message (seq under the stream's row
# lock, outbox row, commit-time doorbell) to ONE stream shared by every client and to MANY
# streams (one per message, chosen at random among 10 000), and as a baseline a bare INSERT
# of the same row into an equivalent table without the outbox machinery. One message per
# transaction. Printed: the three rates and the ratios to the bare INSERT; with the
# cluster's commit durability and with synchronous_commit = off. The sends are measured with the
# doorbells handed to the background worker (herald.doorbell_via_worker = on, the default) and
# with the sending transaction notifying itself ("direct": off).
#   scripts/bench/run.sh sends          (BENCH_CLIENTS, BENCH_SECONDS)
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$HERALD_ROOT"
source scripts/bench/pgbench_lib.sh
make -s -C extension install >/dev/null
# (cluster.sh restarts a running postmaster when a new herald.so was installed)
scripts/cluster.sh setup >/dev/null
psql_herald >/dev/null <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS public.bench_plain_outbox;
CREATE TABLE public.bench_plain_outbox (
	stream text NOT NULL,
	seq bigint GENERATED ALWAYS AS IDENTITY,
	kind text NOT NULL DEFAULT 'message',
	data text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (stream, seq)
);
DELETE FROM herald.streams WHERE stream LIKE 'bench.%';	-- and their messages (ON DELETE CASCADE)
SQL

msg="$(printf 'x%.0s' $(seq 1 100))"
cat >"$tmp/insert.sql" <<SQL
\set s random(1, 10000)
INSERT INTO public.bench_plain_outbox (stream, data) VALUES ('bench.' || :s, '$msg');
SQL
cat >"$tmp/one.sql" <<SQL
SELECT herald.send('bench.one', '$msg');
SQL
cat >"$tmp/many.sql" <<SQL
\set s random(1, 10000)
SELECT herald.send('bench.' || :s, '$msg');
SQL


bench_header sends
for mode in on off; do
	export PGOPTIONS="-c synchronous_commit=$mode"
	i=$(tps "$tmp/insert.sql"); one=$(tps "$tmp/one.sql"); many=$(tps "$tmp/many.sql")
	PGOPTIONS="$PGOPTIONS -c herald.doorbell_via_worker=off"
	d1=$(tps "$tmp/one.sql"); dmany=$(tps "$tmp/many.sql")
	printf 'sends: synchronous_commit=%-3s bare INSERT %7d tps  send one stream %7d tps (%s)  send many streams %7d tps (%s)  direct doorbell: one %7d (%s) many %7d (%s)\n' \
		"$mode" "$i" "$one" "$(ratio "$one" "$i")" "$many" "$(ratio "$many" "$i")" \
		"$d1" "$(ratio "$d1" "$i")" "$dmany" "$(ratio "$dmany" "$i")"
done
# the outbox kept every message once, without holes
"$PG_BINDIR/psql" -X -tA "$DATABASE_URL" -c "
	SELECT 'sends: check ' || CASE WHEN bool_and(n = s.last_seq AND mx = s.last_seq) THEN 'ok: every bench stream is 1..last_seq without holes'
	                               ELSE 'FAILED: a bench stream has holes' END
	  FROM (SELECT stream, count(*) AS n, max(seq) AS mx FROM herald.messages WHERE stream LIKE 'bench.%' GROUP BY stream) o
	  JOIN herald.streams s USING (stream)"
