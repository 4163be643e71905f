-- session_ingest: seed 002's SQL side — herald.ingest_session_batch (validation, all or
-- nothing, the database_events stream) and herald.session_json.
\set SHOW_CONTEXT never

-- try_ingest shows either the ack or "SQLSTATE: message [detail]".
CREATE FUNCTION try_ingest(sid uuid, batch text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	d text;
BEGIN
	RETURN herald.ingest_session_batch(sid, batch)::text;
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
	RETURN format('%s: %s%s', SQLSTATE, SQLERRM, CASE WHEN d <> '' THEN ' [' || d || ']' ELSE '' END);
END $$;

-- counts shows what is stored for a session (row, events, stream messages).
CREATE FUNCTION counts(sid uuid) RETURNS text LANGUAGE sql AS $$
	SELECT format('sessions=%s events=%s streamed=%s',
		(SELECT count(*) FROM herald.sessions WHERE session_id = sid),
		(SELECT count(*) FROM herald.session_events WHERE session_id = sid),
		(SELECT count(*) FROM herald.messages WHERE stream = 'database_events' AND strpos(data, sid::text) > 0))
$$;

-- Unix ms <-> timestamptz is exact over the whole accepted range.
SELECT herald.from_unix_ms(1624422533298), herald.unix_ms('2021-06-23 04:28:53.298+00');
SELECT count(*) AS mismatches
FROM (SELECT g::bigint * 1234567891 + g % 1000 AS ms FROM generate_series(0, 200000) g
	UNION ALL VALUES (0), (1), (999), (253402300799999)) v
WHERE herald.unix_ms(herald.from_unix_ms(v.ms)) <> v.ms;
-- from_unix_ms is truly immutable, so the planner inlines it: no call is left in the plan
CREATE FUNCTION pg_temp.plan(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN RETURN QUERY EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q; END $$;
SELECT count(*) FILTER (WHERE p LIKE '%from_unix_ms%') AS calls_left,
       count(*) FILTER (WHERE p LIKE '%to_timestamp%') AS inlined
  FROM pg_temp.plan('SELECT herald.from_unix_ms(x) FROM (VALUES (1::bigint), (2)) v(x)') p;

-- The seed's example in two batches.
SELECT try_ingest('0d856b46-48cd-4fba-946b-53d15b7b43e0', $$[
	{"timestamp": 1624422533298, "type": "SESSION_START", "session_id": "0d856b46-48cd-4fba-946b-53d15b7b43e0"},
	{"timestamp": 1624422533300, "type": "EVENT", "name": "event2"},
	{"timestamp": 1624422533299, "type": "EVENT", "name": "test"}]$$);
SELECT herald.session_json('0d856b46-48cd-4fba-946b-53d15b7b43e0');
SELECT try_ingest('0d856b46-48cd-4fba-946b-53d15b7b43e0', $$[
	{"timestamp": 1624422533299, "type": "EVENT", "name": "event2"},
	{"timestamp": 1624422533400, "type": "SESSION_END", "session_id": "0D856B46-48CD-4FBA-946B-53D15B7B43E0"}]$$);
SELECT herald.session_json('0d856b46-48cd-4fba-946b-53d15b7b43e0');
SELECT counts('0d856b46-48cd-4fba-946b-53d15b7b43e0');
-- the stream got every stored entry, in entry order
SELECT seq, kind, data FROM herald.replay('database_events', 0) ORDER BY seq;
SELECT * FROM herald.session_event_names ORDER BY event_name_id;

-- Ended: nothing more, not even a second SESSION_END.
SELECT try_ingest('0d856b46-48cd-4fba-946b-53d15b7b43e0', '[{"timestamp": 1624422533500, "type": "SESSION_END"}]');
SELECT try_ingest('0d856b46-48cd-4fba-946b-53d15b7b43e0', '[{"timestamp": 1624422533500, "type": "EVENT", "name": "late"}]');
SELECT try_ingest('0d856b46-48cd-4fba-946b-53d15b7b43e0', '[]');
SELECT counts('0d856b46-48cd-4fba-946b-53d15b7b43e0');

-- Every refusal names its entry, and stores nothing.
SELECT b AS batch, try_ingest('11111111-1111-1111-1111-111111111111', b) AS answer
FROM unnest(ARRAY[
	'{"type": "SESSION_START", "timestamp": 1}',
	'[{"type": "SESSION_START", "timestamp": 1}',
	'"[]"',
	'[{"type": "SESSION_START", "timestamp": 1}, 7]',
	'[{"timestamp": 1}]',
	'[{"type": "SESSION_START", "timestamp": 1}, {"type": "PAUSE", "timestamp": 1}]',
	'[{"type": "SESSION_START", "timestamp": 1}, {"type": null, "timestamp": 1}]',
	'[{"type": "SESSION_START", "timestamp": 1.5}]',
	'[{"type": "SESSION_START", "timestamp": "1"}]',
	'[{"type": "SESSION_START"}]',
	'[{"type": "SESSION_START", "timestamp": -1}]',
	'[{"type": "SESSION_START", "timestamp": 253402300800000}]',
	'[{"type": "SESSION_START", "timestamp": 1, "session_id": "22222222-2222-2222-2222-222222222222"}]',
	'[{"type": "SESSION_START", "timestamp": 1, "session_id": 5}]',
	'[{"type": "EVENT", "timestamp": 1, "name": "a"}, {"type": "SESSION_START", "timestamp": 1}]',
	'[{"type": "SESSION_END", "timestamp": 1}]',
	'[{"type": "SESSION_START", "timestamp": 1}, {"type": "EVENT", "timestamp": 1}]',
	'[{"type": "SESSION_START", "timestamp": 1}, {"type": "EVENT", "timestamp": 1, "name": ""}]',
	'[{"type": "SESSION_START", "timestamp": 1}, {"type": "EVENT", "timestamp": 1, "name": 3}]',
	'[{"type": "SESSION_START", "timestamp": 1}, {"type": "EVENT", "timestamp": 1, "name": "' || repeat('x', 256) || '"}]',
	'[{"type": "SESSION_START", "timestamp": 1}, {"type": "SESSION_START", "timestamp": 2}]',
	'[{"type": "SESSION_START", "timestamp": 1}, {"type": "SESSION_END", "timestamp": 2}, {"type": "SESSION_END", "timestamp": 3}]',
	'[{"type": "SESSION_START", "timestamp": 1}, {"type": "SESSION_END", "timestamp": 2}, {"type": "EVENT", "timestamp": 3, "name": "a"}]',
	'[{"type": "SESSION_START", "timestamp": 5}, {"type": "SESSION_END", "timestamp": 4}]',
	'[{"type": "SESSION_START", "timestamp": 1}, {"type": "EVENT", "timestamp": 2, "name": "a"}, {"type": "EVENT", "timestamp": 2.25, "name": "b"}]',
	'[{"type": "SESSION_START", "timestamp": 01}]',
	'[{"type": "SESSION_START", "timestamp": 1, "session_id": "\u0000"}]',
	'[{"type": "SESSION_START", "timestamp": 1}] []'
]) AS b;
SELECT counts('11111111-1111-1111-1111-111111111111');
SELECT try_ingest(NULL, '[]');
SELECT count(*) AS stray_names FROM herald.session_event_names WHERE event_name IN ('a', 'b');

-- A name of exactly 255 characters, and names in any script, are stored.
SELECT try_ingest('33333333-3333-3333-3333-333333333333', '[{"type": "SESSION_START", "timestamp": 1},
	{"type": "EVENT", "timestamp": 2, "name": "' || repeat('y', 255) || '"},
	{"type": "EVENT", "timestamp": 3, "name": "événement \"quoted\" 🎉"}]');
SELECT herald.session_json('33333333-3333-3333-3333-333333333333')::jsonb -> 'children' -> 1;

-- A session without events reads back with no children; an unknown one is HR031.
SELECT try_ingest('44444444-4444-4444-4444-444444444444', '[{"type": "SESSION_START", "timestamp": 1624422533298}]');
SELECT herald.session_json('44444444-4444-4444-4444-444444444444');
DO $$
BEGIN
	PERFORM herald.session_json('55555555-5555-5555-5555-555555555555');
EXCEPTION WHEN OTHERS THEN
	RAISE NOTICE '%: %', SQLSTATE, SQLERRM;
END $$;
SELECT herald.session_json(NULL);

-- Known names do not consume identity values (smallint: 32767 names in all).
SELECT try_ingest('44444444-4444-4444-4444-444444444444',
	(SELECT json_agg(json_build_object('type', 'EVENT', 'timestamp', 1624422533298 + g, 'name', 'event2'))::text FROM generate_series(1, 500) g));
SELECT count(*) AS names, max(event_name_id) AS max_id FROM herald.session_event_names;
SELECT counts('44444444-4444-4444-4444-444444444444');

-- Several batches in one transaction (the sidecar's group commit): each stored whole or not
-- at all, answered in order; one send_batch for all of them.
SELECT herald.stream_position('database_events') AS before \gset
SELECT * FROM herald.ingest_session_batches(
	ARRAY['66666666-6666-6666-6666-666666666666', '77777777-7777-7777-7777-777777777777',
		'66666666-6666-6666-6666-666666666666', '88888888-8888-8888-8888-888888888888']::uuid[],
	ARRAY['[{"type": "SESSION_START", "timestamp": 10}, {"type": "EVENT", "timestamp": 11, "name": "g"}]',
		'[{"type": "EVENT", "timestamp": 11, "name": "never"}]',
		'[{"type": "EVENT", "timestamp": 12, "name": "g"}, {"type": "SESSION_END", "timestamp": 13}]',
		'not json']);
SELECT herald.stream_position('database_events') - :before AS streamed;
SELECT counts('66666666-6666-6666-6666-666666666666'), counts('77777777-7777-7777-7777-777777777777');
SELECT herald.session_json('66666666-6666-6666-6666-666666666666');
SELECT * FROM herald.ingest_session_batches('{}', '{}');
SELECT * FROM herald.ingest_session_batches(ARRAY['66666666-6666-6666-6666-666666666666']::uuid[], '{}');

-- The C fast path (extension/src/sessions.c) stores exactly what the reference,
-- herald.store_session_batch, stores. Each sequence of batches below goes to a session A
-- through ingest_session_batch, and to a session B through the reference: the answers, the
-- stored session and the stream rows (ids and session id aside) must be the same. The
-- result says, per batch, which path A took ("fast", or "ref" when the fast path handed the
-- batch to the reference: the function call counts of this transaction tell).
SET track_functions = 'pl';
CREATE FUNCTION same_as_reference(batches text[]) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	a uuid := gen_random_uuid();
	b uuid := gen_random_uuid();
	ra text;
	rb text;
	r record;
	pa bigint;
	pb bigint;
	calls bigint;
	rows_a text;
	rows_b text;
	paths text[] := '{}';
BEGIN
	FOREACH ra IN ARRAY batches LOOP
		pa := herald.stream_position('database_events');
		rb := replace(ra, '<sid>', b::text);
		ra := replace(ra, '<sid>', upper(a::text));
		calls := coalesce(pg_stat_get_xact_function_calls('herald.store_session_batch'::regproc), 0);
		ra := herald.ingest_session_batch(a, ra)::text;
		paths := paths || CASE WHEN coalesce(pg_stat_get_xact_function_calls('herald.store_session_batch'::regproc), 0) = calls
			THEN 'fast' ELSE 'ref' END;
		SELECT string_agg(regexp_replace(replace(o.data, a::text, 'S'), '"event_id":[0-9]+', '"event_id":N'), E'\n' ORDER BY o.seq)
			INTO rows_a FROM herald.messages o WHERE o.stream = 'database_events' AND o.seq > pa;
		pb := herald.stream_position('database_events');
		SELECT * INTO r FROM herald.store_session_batch(b, rb);
		PERFORM herald.send_batch('database_events', r.stream_rows);
		SELECT string_agg(regexp_replace(replace(o.data, b::text, 'S'), '"event_id":[0-9]+', '"event_id":N'), E'\n' ORDER BY o.seq)
			INTO rows_b FROM herald.messages o WHERE o.stream = 'database_events' AND o.seq > pb;
		IF ra IS DISTINCT FROM r.answer::text OR rows_a IS DISTINCT FROM rows_b THEN
			RETURN format('differs: %s / %s; rows %s / %s', ra, r.answer, rows_a, rows_b);
		END IF;
	END LOOP;
	IF herald.session_json(a)::text IS DISTINCT FROM herald.session_json(b)::text THEN
		RETURN format('sessions differ: %s / %s', herald.session_json(a), herald.session_json(b));
	END IF;
	RETURN format('same (%s events), paths %s', json_array_length(herald.session_json(a) -> 'children'), paths);
END $$;
-- known names
SELECT try_ingest(gen_random_uuid(), '[{"type":"SESSION_START","timestamp":1},{"type":"EVENT","timestamp":1,"name":"g"},
	{"type":"EVENT","timestamp":1,"name":"é🎉 A"},{"type":"EVENT","timestamp":1,"name":"' || repeat('é', 255) || '"}]');
SELECT same_as_reference(ARRAY[
	' [ {"type":"SESSION_START","timestamp":0,"session_id":"<sid>"} ,{"name":"g","timestamp":253402300799999,"type":"EVENT"},
	   {"type":"EVENT","timestamp":5,"name":"é🎉 A"}, {"timestamp":7,"name":"g","type":"EVENT","session_id":"<sid>"}]' || E'\n\t',
	'[{"type":"EVENT","timestamp":3,"name":"' || repeat('é', 255) || '"},{"type":"EVENT","timestamp":3,"name":"g"}]',
	'[{"type":"EVENT","timestamp":4,"name":"g"},{"type":"SESSION_END","timestamp":9,"name":"ignored"}]']);
SELECT same_as_reference(ARRAY[
	'[{"type":"SESSION_START","timestamp":1624422533298},{"type":"SESSION_END","timestamp":1624422533298}]']);
SELECT same_as_reference(ARRAY['[{"type":"SESSION_START","timestamp":10}]', '[{"type":"SESSION_END","timestamp":10}]']);
-- the same with the events' foreign keys checked per row (herald.session_fk_per_batch off)
SET herald.session_fk_per_batch = off;
SELECT same_as_reference(ARRAY['[{"type":"SESSION_START","timestamp":10},{"type":"EVENT","timestamp":11,"name":"g"}]',
	'[{"type":"EVENT","timestamp":12,"name":"g"},{"type":"SESSION_END","timestamp":13}]']);
RESET herald.session_fk_per_batch;
-- escapes, in keys and strings: the parser de-escapes them as jsonb's input does, so the
-- fast path takes them (but a key given twice, however spelled, goes to the reference)
SELECT try_ingest(gen_random_uuid(), '[{"type":"SESSION_START","timestamp":1},{"type":"EVENT","timestamp":1,"name":"t\tq\"b\\s\/\u00e9\ud83c\udf89"}]');
SELECT same_as_reference(ARRAY[
	'[{"\u0074ype":"SESSION_START","timestamp":1,"session_id":"<sid>"},{"type":"EV\u0045NT","timestamp":2,"name":"t\tq\"b\\s\/\u00e9\ud83c\udf89"},{"type":"EVENT","timestamp":3,"name":"\u0067"}]',
	'[{"type":"EVENT","timestamp":4,"name":"t\u0009q\u0022b\u005cs/é🎉"}]',
	'[{"type":"EVENT","timestamp":5,"name":"g","n\u0061me":"g"}]',
	'[{"type":"EVENT","timestamp":6,"name":"g"},{"type":"SESSION_END","timestamp":7,"session_id":"<sid>"}]']);
-- batches the fast path hands to the reference (not plain, a new name, empty)
SELECT same_as_reference(ARRAY['[{"type":"SESSION_START","timestamp":1.0e1,"extra":[1,{"a":null}]}]',
	'[{"type":"EVENT","timestamp":11,"name":"g","name":"h"}]', '[{"type":"EVENT","timestamp":12,"name":"\u0041"}]',
	'[{"type":"EVENT","timestamp":13,"name":"never seen before"}]', '[]']);
RESET track_functions;
-- The fast path writes events without PostgreSQL's per-row foreign key triggers only while
-- those are the table's only triggers (see sessions.c); with another trigger, it inserts
-- them the ordinary way, and that trigger sees every event.
CREATE TABLE seen_events (event_id bigint);
CREATE FUNCTION note_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO seen_events VALUES (NEW.event_id);
	RETURN NULL;
END $$;
CREATE TRIGGER note_event AFTER INSERT ON herald.session_events FOR EACH ROW EXECUTE FUNCTION note_event();
SELECT try_ingest('99999999-9999-9999-9999-999999999999', '[{"type":"SESSION_START","timestamp":1},
	{"type":"EVENT","timestamp":2,"name":"g"},{"type":"EVENT","timestamp":3,"name":"g"}]');
SELECT count(*) AS seen FROM seen_events e JOIN herald.session_events s USING (event_id)
WHERE s.session_id = '99999999-9999-9999-9999-999999999999';
DROP TRIGGER note_event ON herald.session_events;
DROP FUNCTION note_event();
DROP TABLE seen_events;
-- The direct path makes the events' index entries itself: every row of the table (most
-- stored by it above) must be in both indexes (amcheck's heapallindexed check).
CREATE EXTENSION amcheck;
SELECT bt_index_check('herald.session_events_pkey', true) AS pkey,
	bt_index_check('herald.session_events_session_time', true) AS session_time;
DROP EXTENSION amcheck;

DROP FUNCTION same_as_reference(text[]);
DROP FUNCTION try_ingest(uuid, text);
DROP FUNCTION counts(uuid);
