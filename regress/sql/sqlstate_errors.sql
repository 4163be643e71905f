-- sqlstate_errors: the errors of the streams and reports API, with their SQLSTATE, message
-- and hint, as clients (and the sidecar's HTTP mapping) see them.
-- err runs a statement and returns the error it raised (code 'none' when it succeeded).
CREATE FUNCTION pg_temp.err(q text) RETURNS TABLE(code text, message text, detail text, hint text)
	LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	code := 'none';
	RETURN NEXT;
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
		detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
	RETURN NEXT;
END
$$;

INSERT INTO herald.reports (id, owner)
VALUES ('00000000-0000-0000-0000-00000000e001', '00000000-0000-0000-0000-00000000e0aa');

-- HR001: a transition outside the table, from each status
\x on
SELECT * FROM pg_temp.err($$SELECT herald.transition('00000000-0000-0000-0000-00000000e001', 'completed')$$);
SELECT * FROM pg_temp.err($$UPDATE herald.reports SET status = 'failed' WHERE id = '00000000-0000-0000-0000-00000000e001'$$);
SELECT * FROM pg_temp.err($$INSERT INTO herald.reports (id, owner, status) VALUES ('00000000-0000-0000-0000-00000000e002', '00000000-0000-0000-0000-00000000e0aa', 'queued')$$);
SELECT herald.transition('00000000-0000-0000-0000-00000000e001', 'queued') IS NOT NULL AS queued;
SELECT herald.transition('00000000-0000-0000-0000-00000000e001', 'processing') IS NOT NULL AS processing;
SELECT herald.transition('00000000-0000-0000-0000-00000000e001', 'completed') IS NOT NULL AS completed;
SELECT * FROM pg_temp.err($$SELECT herald.transition('00000000-0000-0000-0000-00000000e001', 'pending')$$);
-- HR002: unknown report
SELECT * FROM pg_temp.err($$SELECT herald.transition('00000000-0000-0000-0000-00000000e404', 'queued')$$);
SELECT * FROM pg_temp.err($$SELECT * FROM herald.report_history('00000000-0000-0000-0000-00000000e404')$$);
-- 22023: unknown status text, NULL status; 22P02 for a bad enum in plain SQL
SELECT * FROM pg_temp.err($$SELECT herald.transition('00000000-0000-0000-0000-00000000e001', 'done')$$);
SELECT * FROM pg_temp.err($$SELECT herald.transition('00000000-0000-0000-0000-00000000e001', NULL)$$);
SELECT * FROM pg_temp.err($$UPDATE herald.reports SET status = 'done' WHERE id = '00000000-0000-0000-0000-00000000e001'$$);
-- 22004: no owner
SELECT * FROM pg_temp.err($$SELECT herald.create_report(NULL)$$);
-- 0A000: id and owner never change
SELECT * FROM pg_temp.err($$UPDATE herald.reports SET owner = gen_random_uuid() WHERE id = '00000000-0000-0000-0000-00000000e001'$$);
-- streams: 22023 for a bad replay position or size; 23514 for a bad stream name or kind;
-- 23502 for NULL data (details, which hold the failing row, left out)
SELECT * FROM pg_temp.err($$SELECT * FROM herald.replay('err:s', -1)$$);
SELECT * FROM pg_temp.err($$SELECT * FROM herald.replay('err:s', 0, 0)$$);
SELECT code, message FROM pg_temp.err($$SELECT herald.send('', 'x')$$);
SELECT code, message FROM pg_temp.err($$SELECT herald.send(repeat('s', 1001), 'x')$$);
SELECT code, message FROM pg_temp.err($$SELECT herald.send('err:s', 'x', E'two\nlines')$$);
SELECT code, message FROM pg_temp.err($$SELECT herald.send('err:s', NULL::text)$$);
SELECT code, message FROM pg_temp.err($$SELECT herald.send(NULL, 'x')$$);
-- send_many: 22023 for arrays of different lengths, 23502 for a NULL element, 23514 for a bad
-- kind anywhere in the batch (the whole batch is refused)
SELECT code, message FROM pg_temp.err($$SELECT herald.send_many('err:s', ARRAY['a', 'b'], ARRAY['k'])$$);
SELECT code, message FROM pg_temp.err($$SELECT herald.send_many('err:s', ARRAY['a', NULL], ARRAY['k', 'k'])$$);
SELECT code, message FROM pg_temp.err($$SELECT herald.send_many('err:s', ARRAY['a', 'b'], ARRAY['k', NULL])$$);
SELECT code, message FROM pg_temp.err($$SELECT herald.send_many('err:s', ARRAY['a', 'b'], ARRAY['k', E'x\ry'])$$);
SELECT code, message FROM pg_temp.err($$SELECT herald.send_many(NULL, ARRAY['a'], ARRAY['k'])$$);
-- the failed sends took no seq
SELECT herald.stream_position('err:s') AS position, herald.send('err:s', 'ok') AS next_seq;
-- a batch takes the next seqs in order, each message with its own kind
SELECT herald.send_many('err:s', ARRAY['m1', 'm2', 'm3'], ARRAY['k1', 'k2', 'k3']) AS last_seq;
SELECT * FROM herald.replay('err:s', 1);
\x off
-- PREPARE TRANSACTION cannot carry a doorbell (0A000)
BEGIN;
SELECT herald.send('err:prepared', 'x') AS seq;
PREPARE TRANSACTION 'herald_sent';
SELECT herald.stream_position('err:prepared') AS position;
-- 42501: herald.send and herald.transition write without statements, but need the
-- privileges their statements would (INSERT on the outbox, SELECT and UPDATE on the reports,
-- and for the rows a transition records: INSERT on the history, SELECT and UPDATE on the
-- stream counters)
CREATE ROLE herald_regress_reader;
GRANT USAGE ON SCHEMA herald TO herald_regress_reader;
SET ROLE herald_regress_reader;
SELECT code, message FROM pg_temp.err($$SELECT herald.send('err:acl', 'x')$$);
SELECT code, message FROM pg_temp.err($$SELECT herald.transition('00000000-0000-0000-0000-00000000e001', 'queued')$$);
RESET ROLE;
SELECT herald.stream_position('err:acl') AS position;
-- privileges on the reports alone: each write the transition records is checked in turn, and
-- a refused one leaves the report as it was (by transition() or by a plain UPDATE alike)
SELECT (herald.create_report('00000000-0000-0000-0000-00000000a0c1')).id AS acl_report \gset
GRANT SELECT, UPDATE ON herald.reports TO herald_regress_reader;
SET ROLE herald_regress_reader;
SELECT code, message FROM pg_temp.err(format($$SELECT herald.transition(%L, 'queued')$$, :'acl_report'));
SELECT code, message FROM pg_temp.err(format($$UPDATE herald.reports SET status = 'queued' WHERE id = %L$$, :'acl_report'));
RESET ROLE;
GRANT INSERT ON herald.report_history TO herald_regress_reader;
SET ROLE herald_regress_reader;
SELECT code, message FROM pg_temp.err(format($$SELECT herald.transition(%L, 'queued')$$, :'acl_report'));
RESET ROLE;
GRANT INSERT ON herald.outbox TO herald_regress_reader;
SET ROLE herald_regress_reader;
SELECT code, message FROM pg_temp.err(format($$SELECT herald.transition(%L, 'queued')$$, :'acl_report'));
RESET ROLE;
GRANT SELECT, UPDATE ON herald.streams TO herald_regress_reader;
SET ROLE herald_regress_reader;
SELECT status, version FROM herald.transition(:'acl_report', 'queued');
RESET ROLE;
SELECT version, from_status, to_status FROM herald.report_history(:'acl_report');
REVOKE ALL ON herald.reports, herald.report_history, herald.streams, herald.outbox FROM herald_regress_reader;
REVOKE USAGE ON SCHEMA herald FROM herald_regress_reader;
DROP ROLE herald_regress_reader;
