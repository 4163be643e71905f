-- report_transitions: the report state machine of seed 000 v4 (transitions.c, 10_reports.sql).
-- All 36 (from, to) pairs: exactly the eight of the table succeed, the 28 others fail with
-- HR001; completed is terminal; versions and history are exact; a plain UPDATE or INSERT
-- cannot bypass the machine; each change lands in the owner's stream.

-- reach_status creates a report of owner and moves it to status along allowed transitions.
CREATE FUNCTION pg_temp.reach_status(owner uuid, status text) RETURNS uuid
	LANGUAGE plpgsql AS $$
DECLARE
	id uuid := (herald.create_report(owner)).id;
	path text[] := CASE status
		WHEN 'pending' THEN '{}'
		WHEN 'queued' THEN '{queued}'
		WHEN 'processing' THEN '{queued,processing}'
		WHEN 'completed' THEN '{queued,processing,completed}'
		WHEN 'failed' THEN '{queued,processing,failed}'
		WHEN 'canceled' THEN '{canceled}' END;
	s text;
BEGIN
	FOREACH s IN ARRAY path LOOP
		PERFORM herald.transition(id, s);
	END LOOP;
	RETURN id;
END
$$;

-- try_transition returns 'ok' or the SQLSTATE of the refusal.
CREATE FUNCTION pg_temp.try_transition(report uuid, status text) RETURNS text
	LANGUAGE plpgsql AS $$
BEGIN
	PERFORM herald.transition(report, status);
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END
$$;

-- All 36 pairs, through herald.transition and through a plain UPDATE.
WITH s(status, n) AS (
	SELECT e::text, row_number() OVER () FROM unnest(enum_range(NULL::herald.report_status)) e
), pairs AS (
	SELECT f.status AS from_status, t.status AS to_status, f.n AS fn, t.n AS tn,
		   pg_temp.reach_status('00000000-0000-0000-0000-0000000000a1', f.status) AS report
	  FROM s f CROSS JOIN s t
)
SELECT from_status, to_status, pg_temp.try_transition(report, to_status) AS result
  FROM pairs ORDER BY fn, tn;

CREATE FUNCTION pg_temp.try_update(report uuid, status text) RETURNS text
	LANGUAGE plpgsql AS $$
BEGIN
	UPDATE herald.reports SET status = try_update.status::herald.report_status WHERE id = report;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END
$$;

WITH s(status, n) AS (
	SELECT e::text, row_number() OVER () FROM unnest(enum_range(NULL::herald.report_status)) e
), pairs AS (
	SELECT f.status AS from_status, t.status AS to_status, f.n AS fn, t.n AS tn,
		   pg_temp.reach_status('00000000-0000-0000-0000-0000000000a2', f.status) AS report
	  FROM s f CROSS JOIN s t
), results AS (
	SELECT from_status, to_status, fn, tn, pg_temp.try_update(report, to_status) AS result FROM pairs
)
SELECT result, count(*), string_agg(from_status || '→' || to_status, ', ' ORDER BY fn, tn) AS pairs
  FROM results GROUP BY result ORDER BY result;

-- Versions and history are exact: a full walk with detours.
\set walk '00000000-0000-0000-0000-00000000f001'
INSERT INTO herald.reports (id, owner) VALUES (:'walk', '00000000-0000-0000-0000-0000000000b1')
RETURNING status, version, created_at = updated_at AS same_times;
SELECT status, version FROM herald.transition(:'walk', 'canceled');
SELECT status, version FROM herald.transition(:'walk', 'pending');
SELECT status, version FROM herald.transition(:'walk', 'queued');
SELECT pg_temp.try_transition(:'walk', 'completed') AS queued_to_completed;
SELECT status, version FROM herald.transition(:'walk', 'processing');
SELECT status, version FROM herald.transition(:'walk', 'failed');
SELECT status, version FROM herald.transition(:'walk', 'pending');
SELECT status, version FROM herald.transition(:'walk', 'queued');
SELECT status, version FROM herald.transition(:'walk', 'processing');
SELECT status, version, created_at <= updated_at AS ordered FROM herald.transition(:'walk', 'completed');
-- completed is terminal
SELECT s AS target, pg_temp.try_transition(:'walk', s) AS result
  FROM unnest(enum_range(NULL::herald.report_status)::text[]) s;
SELECT version, from_status, to_status FROM herald.report_history(:'walk');
SELECT count(*) = max(version) AND min(version) = 1 AS history_has_no_holes
  FROM herald.report_history(:'walk');
-- the owner's stream got one message per change, in order, with the report's data
SELECT seq, kind, data::jsonb ->> 'status' AS status, (data::jsonb ->> 'id')::uuid = :'walk' AS same_report
  FROM herald.replay('user:00000000-0000-0000-0000-0000000000b1', 0);
SELECT data FROM herald.replay('user:00000000-0000-0000-0000-0000000000b1', 0) WHERE seq = 1 \gset
SELECT :'data' = '{"id":"' || :'walk' || '","status":"pending"}' AS compact_json;

-- Refused changes leave no trace: no version, no history, no message.
\set r2 '00000000-0000-0000-0000-00000000f002'
INSERT INTO herald.reports (id, owner) VALUES (:'r2', '00000000-0000-0000-0000-0000000000b2');
SELECT pg_temp.try_transition(:'r2', 'processing') AS pending_to_processing;
SELECT status, version FROM herald.reports WHERE id = :'r2';
SELECT count(*) AS history_rows FROM herald.report_history(:'r2');
SELECT herald.stream_position('user:00000000-0000-0000-0000-0000000000b2') AS messages;

-- A plain UPDATE is validated like herald.transition, and bumps the version the same way.
UPDATE herald.reports SET status = 'queued' WHERE id = :'r2';
SELECT status, version FROM herald.reports WHERE id = :'r2';
SELECT version, from_status, to_status FROM herald.report_history(:'r2');
-- version, created_at and updated_at are the machine's, not the client's
UPDATE herald.reports SET status = 'processing', version = 42, created_at = '2000-01-01',
	   updated_at = '2000-01-01' WHERE id = :'r2';
SELECT status, version, created_at > '2000-01-01' AS created_kept, updated_at > '2000-01-01' AS updated_set
  FROM herald.reports WHERE id = :'r2';
-- an UPDATE that keeps the status is a refused self-transition, even of another column
\set VERBOSITY terse
UPDATE herald.reports SET version = 1 WHERE id = :'r2';
UPDATE herald.reports SET owner = '00000000-0000-0000-0000-0000000000b3', status = 'completed' WHERE id = :'r2';
UPDATE herald.reports SET id = gen_random_uuid(), status = 'completed' WHERE id = :'r2';
-- a multi-row UPDATE is all or nothing: the pending report is not queued either
INSERT INTO herald.reports (id, owner) VALUES ('00000000-0000-0000-0000-00000000f003', '00000000-0000-0000-0000-0000000000b2');
UPDATE herald.reports SET status = 'queued' WHERE id IN ('00000000-0000-0000-0000-00000000f003', :'walk');
SELECT status, version FROM herald.reports WHERE id = '00000000-0000-0000-0000-00000000f003';
\set VERBOSITY default

-- An INSERT must start pending; the version is 1 whatever the client says.
INSERT INTO herald.reports (id, owner, status)
VALUES ('00000000-0000-0000-0000-00000000f004', '00000000-0000-0000-0000-0000000000b4', 'completed');
INSERT INTO herald.reports (id, owner, status, version)
VALUES ('00000000-0000-0000-0000-0000000000c4', '00000000-0000-0000-0000-0000000000b4', 'pending', 9)
RETURNING status, version;
SELECT version, from_status, to_status FROM herald.report_history('00000000-0000-0000-0000-0000000000c4');
SELECT kind, data FROM herald.replay('user:00000000-0000-0000-0000-0000000000b4', 0);

-- Transitions inside a rolled-back savepoint are undone with their history and message.
BEGIN;
SELECT status, version FROM herald.transition('00000000-0000-0000-0000-0000000000c4', 'queued');
SAVEPOINT s;
SELECT status, version FROM herald.transition('00000000-0000-0000-0000-0000000000c4', 'processing');
ROLLBACK TO SAVEPOINT s;
SELECT status, version FROM herald.transition('00000000-0000-0000-0000-0000000000c4', 'canceled');
COMMIT;
SELECT version, from_status, to_status FROM herald.report_history('00000000-0000-0000-0000-0000000000c4');
SELECT seq, data::jsonb ->> 'status' AS status FROM herald.replay('user:00000000-0000-0000-0000-0000000000b4', 0);

-- herald.transition and herald.send write without the executor and open a table's indexes only
-- when a write needs them: a HOT update needs none, an update that leaves the page does. Within
-- one transaction nothing can be pruned, so 600 transitions of one report (and 600 messages to
-- its owner's stream) fill their pages and the updates stop being HOT: the report and the stream
-- are still found by their keys at every step, and every row version has its index entries
-- (amcheck's heapallindexed check).
SELECT id AS hot_report FROM herald.create_report('00000000-0000-0000-0000-0000000000b5') \gset
SET enable_seqscan = off;
BEGIN;
SELECT (ctid::text::point)[0] AS report_block FROM herald.reports WHERE id = :'hot_report' \gset
SELECT (ctid::text::point)[0] AS stream_block FROM herald.streams WHERE stream = 'user:00000000-0000-0000-0000-0000000000b5' \gset
SELECT count(herald.transition(:'hot_report', (ARRAY['queued', 'canceled', 'pending'])[i % 3 + 1])) AS transitions
  FROM generate_series(0, 599) i;
SELECT (ctid::text::point)[0] <> :report_block AS left_the_page, version, status
  FROM herald.reports WHERE id = :'hot_report';
SELECT (ctid::text::point)[0] <> :stream_block AS left_the_page, last_seq
  FROM herald.streams WHERE stream = 'user:00000000-0000-0000-0000-0000000000b5';
COMMIT;
RESET enable_seqscan;
CREATE EXTENSION amcheck;
SELECT bt_index_check('herald.reports_pkey', true) AS reports_pkey,
	   bt_index_check('herald.reports_owner_idx', true) AS reports_owner,
	   bt_index_check('herald.streams_pkey', true) AS streams_pkey,
	   bt_index_check('herald.streams_id_key', true) AS streams_id,
	   bt_index_check('herald.report_history_pkey', true) AS history_pkey,
	   bt_index_check('herald.outbox_pkey', true) AS outbox_pkey;
DROP EXTENSION amcheck;
