-- reports_api: the JSON functions behind the sidecar's /v4 routes (15_reports_api.sql).
-- Report ids are random: the output shows facts about them, never the ids themselves.
\set alice '''a11ce000-0000-4000-8000-000000000001'''
\set bob '''b0b00000-0000-4000-8000-000000000002'''

-- No reports yet: an empty array, and a snapshot holding only the position.
SELECT herald.reports_json(:alice);
SELECT * FROM herald.reports_snapshot(:alice);

-- POST /v4/new/report: exactly userId, reportId, reportStatus.
SELECT herald.api_create_report(:alice) AS created \gset
SELECT (:'created'::json ->> 'userId') = :alice AS owner_ok,
	   :'created'::json ->> 'reportStatus' AS status,
	   (SELECT array_agg(k ORDER BY k) FROM json_object_keys(:'created'::json) k) AS keys;
SELECT :'created'::json ->> 'reportId' AS r1 \gset
SELECT herald.api_create_report(:alice) ->> 'reportId' AS r2 \gset

-- GET /v4/reports: oldest first, with version and times.
SELECT e ->> 'reportId' = :'r1' AS first_is_r1, e ->> 'reportStatus' AS status, e ->> 'version' AS version,
	   (e ->> 'createdAt')::timestamptz <= (e ->> 'updatedAt')::timestamptz AS times_ok
  FROM json_array_elements(herald.reports_json(:alice)) WITH ORDINALITY AS a(e, n) ORDER BY n;
SELECT herald.reports_json(:bob);

-- PUT /v4/report: the body is parsed here; the answer is the report after the change.
SELECT j ->> 'reportStatus' AS status, j ->> 'version' AS version, j ->> 'reportId' = :'r1' AS same_report
  FROM herald.api_transition(:alice, json_build_object('id', :'r1', 'status', 'queued')::text) j;
SELECT regress_err(format($$SELECT herald.api_transition(%L, %L)$$, :alice,
	   json_build_object('id', :'r1', 'status', 'completed')));		-- HR001: not in the table
SELECT regress_err(format($$SELECT herald.api_transition(%L, %L)$$, :bob,
	   json_build_object('id', :'r1', 'status', 'processing')));	-- HR002: someone else's
SELECT regress_err(format($$SELECT herald.api_transition(%L, %L)$$, :alice,
	   json_build_object('id', 'c0ffee00-0000-4000-8000-000000000000', 'status', 'queued')));	-- HR002: unknown
SELECT regress_err(format($$SELECT herald.api_transition(%L, %L)$$, :alice, b))
  FROM unnest(ARRAY['not json', '[1]', '"x"', '{}', '{"id": 1, "status": "queued"}', '{"id": "abc", "status": "queued"}',
					'{"status": "queued"}', format('{"id": "%s"}', :'r2'), format('{"id": "%s", "status": null}', :'r2'),
					format('{"id": "%s", "status": "bogus"}', :'r2')]) AS b;
SELECT status, version FROM herald.reports WHERE id IN (:'r1', :'r2') ORDER BY created_at, id::text = :'r2';

-- GET /v4/report/history: versions with times, only for the owner.
SELECT herald.api_transition(:alice, json_build_object('id', :'r1', 'status', 'processing')::text) IS NOT NULL AS moved;
SELECT e ->> 'version' AS version, e ->> 'status' AS status, e ->> 'previousStatus' AS previous, (e ->> 'at') IS NOT NULL AS has_time
  FROM json_array_elements(herald.report_history_json(:alice, :'r1')) WITH ORDINALITY AS a(e, n) ORDER BY n;
SELECT regress_err(format($$SELECT herald.report_history_json(%L, %L)$$, :bob, :'r1'));

-- The /v4/sse snapshot: one row per report, oldest first, all at the stream's position
-- (2 creations + 2 transitions), data as the live messages carry it.
SELECT position, kind, data::json ->> 'status' AS status, data::json ->> 'id' = :'r1' AS is_r1
  FROM herald.reports_snapshot(:alice);
SELECT herald.stream_position('user:' || :alice) AS stream_position;
SELECT (SELECT data FROM herald.replay('user:' || :alice, 3) ORDER BY seq DESC LIMIT 1)
	   = (SELECT data FROM herald.reports_snapshot(:alice) WHERE data::json ->> 'id' = :'r1') AS same_shape_as_live;
