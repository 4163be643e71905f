-- 15_reports_api.sql: the JSON face of the report state machine (10_reports.sql) for the
-- sidecar's /v4 routes. Each route is one call of one of these functions, which takes the
-- owner (the route's user_id) and, for PUT, the raw request body: PostgreSQL parses and
-- validates the business JSON, the sidecar only passes it along and returns the answer.
--
-- A report of another owner is reported exactly like an unknown one (HR002), so a user id
-- cannot be used to probe other users' reports. Input errors use class 22 (→ HTTP 400).
--
-- Every function here is PL/pgSQL with uuid/text/json signatures, so that this file only
-- depends on 10_reports.sql and 30_outbox.sql at run time (load order, see the brief).

-- report_json is the JSON form of one report, as the /v4 routes answer it:
-- {"userId","reportId","reportStatus","version","createdAt","updatedAt"}.
CREATE FUNCTION herald.report_json(report uuid) RETURNS json
	LANGUAGE plpgsql STABLE STRICT
	AS $$
DECLARE
	result json;
BEGIN
	SELECT json_build_object('userId', r.owner, 'reportId', r.id, 'reportStatus', r.status::text,
							 'version', r.version, 'createdAt', r.created_at, 'updatedAt', r.updated_at)
	  INTO result
	  FROM herald.reports r
	 WHERE r.id = report;
	RETURN result;
END
$$;

-- api_create_report creates a pending report for owner and answers
-- {"userId","reportId","reportStatus":"pending"} (POST /v4/new/report).
CREATE FUNCTION herald.api_create_report(owner uuid) RETURNS json
	LANGUAGE plpgsql STRICT
	AS $$
DECLARE
	r record;
BEGIN
	SELECT * INTO r FROM herald.create_report(owner);
	RETURN json_build_object('userId', r.owner, 'reportId', r.id, 'reportStatus', r.status::text);
END
$$;

-- reports_json is the array of owner's reports, oldest first (GET /v4/reports).
CREATE FUNCTION herald.reports_json(owner uuid) RETURNS json
	LANGUAGE plpgsql STABLE STRICT
	AS $$
DECLARE
	result json;
BEGIN
	SELECT coalesce(json_agg(json_build_object('userId', r.owner, 'reportId', r.id, 'reportStatus', r.status::text,
											   'version', r.version, 'createdAt', r.created_at, 'updatedAt', r.updated_at)
							 ORDER BY r.created_at, r.id), '[]'::json)
	  INTO result
	  FROM herald.reports r
	 WHERE r.owner = reports_json.owner;
	RETURN result;
END
$$;

-- owned_report returns the report's id when it exists and belongs to owner; otherwise it
-- raises HR002, the same error for "unknown" and "someone else's".
CREATE FUNCTION herald.owned_report(owner uuid, report uuid) RETURNS uuid
	LANGUAGE plpgsql STABLE
	AS $$
BEGIN
	IF report IS NULL OR NOT EXISTS (SELECT 1 FROM herald.reports r
									  WHERE r.id = owned_report.report AND r.owner = owned_report.owner) THEN
		RAISE EXCEPTION USING ERRCODE = 'HR002',
			MESSAGE = format('report %s not found', coalesce(report::text, 'NULL')),
			DETAIL = format('No report %s belongs to user %s.', report, owner);
	END IF;
	RETURN report;
END
$$;

-- api_transition applies PUT /v4/report's body {"id": "<report>", "status": "<new>"} for
-- owner and returns the report after the transition. Errors: body not a JSON object, a
-- missing or ill-typed field → class 22 (400); unknown or foreign report → HR002 (404);
-- a transition outside the table → HR001 (409, raised by herald.transition).
CREATE FUNCTION herald.api_transition(owner uuid, body text) RETURNS json
	LANGUAGE plpgsql
	AS $$
DECLARE
	doc jsonb;
	report_text text;
	new_status text;
	report uuid;
	r record;
BEGIN
	BEGIN
		doc := body::jsonb;
	EXCEPTION WHEN invalid_text_representation THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_text_representation',
			MESSAGE = 'request body is not valid JSON',
			HINT = 'Send {"id": "<report id>", "status": "<new status>"}.';
	END;
	IF doc IS NULL OR jsonb_typeof(doc) <> 'object' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'request body must be a JSON object',
			HINT = 'Send {"id": "<report id>", "status": "<new status>"}.';
	END IF;
	IF jsonb_typeof(doc -> 'id') IS DISTINCT FROM 'string' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'field "id" must be a string holding the report''s UUID';
	END IF;
	IF jsonb_typeof(doc -> 'status') IS DISTINCT FROM 'string' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'field "status" must be a string';
	END IF;
	report_text := doc ->> 'id';
	new_status := doc ->> 'status';
	IF report_text !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('field "id" is not a UUID: %s', left(report_text, 100));
	END IF;
	report := herald.owned_report(owner, report_text::uuid);
	SELECT * INTO r FROM herald.transition(report, new_status);
	RETURN herald.report_json(r.id);
END
$$;

-- report_history_json is the history of one of owner's reports, oldest first
-- (GET /v4/report/history): [{"version","status","previousStatus","at"}, ...], version 1
-- being the creation (previousStatus null).
CREATE FUNCTION herald.report_history_json(owner uuid, report uuid) RETURNS json
	LANGUAGE plpgsql STABLE
	AS $$
DECLARE
	result json;
BEGIN
	PERFORM herald.owned_report(owner, report);
	SELECT coalesce(json_agg(json_build_object('version', h.version, 'status', h.to_status,
											   'previousStatus', h.from_status, 'at', h.at)
							 ORDER BY h.version), '[]'::json)
	  INTO result
	  FROM herald.report_history(report) h;
	RETURN result;
END
$$;

-- reports_snapshot is the snapshot of GET /v4/sse (contract in sidecar/src/sse.h): one
-- (position, 'report_status_update', {"id","status"}) row per report of owner, oldest first,
-- or a single (position, NULL, NULL) row when owner has none; position is the last seq of
-- stream user:<owner>.
--
-- No race: one statement reads the reports and the stream position, and a STABLE function
-- runs its statements on its caller's snapshot (herald.stream_position is STABLE too), so the
-- reports are exactly the state after message number "position": every later change will
-- be sent live, none before it is sent twice. (Each change writes the report and its
-- stream message in one transaction.)
CREATE FUNCTION herald.reports_snapshot(owner uuid)
	RETURNS TABLE("position" bigint, kind text, data text)
	LANGUAGE plpgsql STABLE STRICT
	AS $$
BEGIN
	RETURN QUERY
		SELECT p.pos,
			   CASE WHEN r.id IS NOT NULL THEN 'report_status_update' END,
			   CASE WHEN r.id IS NOT NULL THEN '{"id":"' || r.id::text || '","status":"' || r.status::text || '"}' END
		  FROM (SELECT herald.stream_position('user:' || reports_snapshot.owner::text) AS pos) p
		  LEFT JOIN herald.reports r ON r.owner = reports_snapshot.owner
		 ORDER BY r.created_at, r.id;
END
$$;
