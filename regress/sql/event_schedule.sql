-- event_schedule: Broker events (20_events.sql, extension/src/publish.c).
-- The background worker runs in this database too, so scheduled times are
-- either far in the future (2999) or made due inside a transaction that also
-- publishes them (the worker skips rows locked by that transaction).

SELECT herald.create_user('es_owner', 'pw', '{}') AS owner \gset
SELECT herald.create_user('es_other', 'pw', '{}') AS other \gset
SELECT herald.stream_position('events') AS p0 \gset

-- A past time publishes at once, into stream "events", in the same transaction.
BEGIN;
SELECT herald.insert_event(:'owner', 'es_price', '2000-01-01 00:00:00+00', '{"v": 1}') AS past \gset
SELECT published_at >= publish_at AS on_time, stream_seq = :p0 + 1 AS next_seq
  FROM herald.events WHERE id = :'past';
COMMIT;
SELECT seq - :p0 AS seq, kind, data FROM herald.replay('events', :p0);

-- A future time stays pending; several versions of one name are kept.
SELECT herald.insert_event(:'owner', 'es_price', '2999-01-01 00:00:00.9+00', '{"v": 3}') AS future3 \gset
SELECT herald.insert_event(:'owner', 'es_price', '2998-01-01 00:00:00+00', '{"v": 2}') AS future2 \gset
SELECT "timestamp", published, cancelled, data, user_id = :'owner' AS mine
  FROM herald.event_log('es_price');
SELECT json_array_length(herald.event_log_json('es_price')) AS versions,
	   herald.event_log_json('es_price') -> 0 ->> 'id' = :'past' AS first_is_past,
	   (SELECT array_agg(k ORDER BY k) FROM json_object_keys(herald.event_log_json('es_price') -> 0) k) AS keys;
SELECT herald.event_log_json('es_no_such_event') AS none;
SELECT count(*) AS none FROM herald.event_log('es_no_such_event');

-- The current version is the published one, not the newer pending ones.
SELECT event, id = :'past' AS is_past, data FROM herald.latest_events() WHERE event LIKE 'es\_%';
SELECT position = herald.stream_position('events') AS at_position, kind, data
  FROM herald.events_snapshot() WHERE kind LIKE 'es\_%';
-- With no published event, the snapshot is one row with only the position.
BEGIN;
DELETE FROM herald.events;
SELECT position = herald.stream_position('events') AS at_position, kind, data FROM herald.events_snapshot();
ROLLBACK;

-- Publication order: (publish time, insert order), in batches; a cancelled
-- version is never published.
SELECT herald.insert_event(:'owner', 'es_a', '2999-06-01+00', '"a"') AS a,
	   herald.insert_event(:'owner', 'es_b', '2999-06-01+00', '"b"') AS b,
	   herald.insert_event(:'owner', 'es_c', '2999-06-01+00', '"c"') AS c,
	   herald.insert_event(:'owner', 'es_d', '2999-06-01+00', '"d"') AS d,
	   herald.insert_event(:'owner', 'es_e', '2999-06-01+00', '"e"') AS e \gset
SELECT herald.cancel_event(:'owner', :'d');
SELECT herald.stream_position('events') AS p1 \gset
BEGIN;
UPDATE herald.events SET publish_at = '2001-01-01 00:00:02+00' WHERE id IN (:'a', :'b');
UPDATE herald.events SET publish_at = '2001-01-01 00:00:01+00' WHERE id IN (:'c', :'d');
UPDATE herald.events SET publish_at = '2001-01-01 00:00:00+00' WHERE id = :'e';
SELECT herald.publish_due(2) AS first_batch;
SELECT herald.publish_due(2) AS second_batch;
SELECT herald.publish_due(2) AS third_batch;
COMMIT;
SELECT seq - :p1 AS seq, kind, data FROM herald.replay('events', :p1);
SELECT l.event, l.published, l.cancelled
  FROM unnest(ARRAY['es_a', 'es_b', 'es_c', 'es_d', 'es_e']) n, herald.event_log(n) l;

-- Cancel: only a pending version of one's own.
SELECT regress_err(format('SELECT herald.cancel_event(%L, %L)', :'owner', '00000000-0000-0000-0000-000000000000'));
SELECT regress_err(format('SELECT herald.cancel_event(%L, %L)', :'other', :'future2'));
SELECT regress_err(format('SELECT herald.cancel_event(%L, %L)', :'owner', :'past'));
SELECT regress_err(format('SELECT herald.cancel_event(%L, %L)', :'owner', :'future2'));
SELECT regress_err(format('SELECT herald.cancel_event(%L, %L)', :'owner', :'future2'));
SELECT "timestamp", published, cancelled FROM herald.event_log('es_price');

-- Bad input.
SELECT regress_err(format('SELECT herald.insert_event(%L, %L, %L, %L)', :'owner', '', '2999-01-01+00', '{}'));
SELECT regress_err(format('SELECT herald.insert_event(%L, %L, %L, %L)', :'owner', E'a\nb', '2999-01-01+00', '{}'));
SELECT regress_err(format('SELECT herald.insert_event(%L, %L, %L, %L)', :'owner', 'reset', '2999-01-01+00', '{}'));
SELECT regress_err(format('SELECT herald.insert_event(%L, %L, %L, %L)', :'owner', 'internal_status', '2999-01-01+00', '{}'));
SELECT regress_err(format('SELECT herald.insert_event(%L, %L, %L, %L)', :'owner', repeat('x', 201), '2999-01-01+00', '{}'));
SELECT regress_err(format('SELECT herald.insert_event(%L, %L, NULL, %L)', :'owner', 'es_x', '{}'));
SELECT regress_err(format('SELECT herald.insert_event(%L, %L, %L, %L)', :'owner', 'es_x', 'infinity', '{}'));
SELECT regress_err(format('SELECT herald.insert_event(%L, %L, %L, NULL)', :'owner', 'es_x', '2999-01-01+00'));
SELECT regress_err(format('SELECT herald.insert_event(%L, %L, %L, %L)', '00000000-0000-0000-0000-000000000000', 'es_x', '2999-01-01+00', '{}'));
SELECT regress_err('SELECT herald.publish_due(0)');
SELECT count(*) AS es_x FROM herald.events WHERE event = 'es_x';
