-- 55_broker_api.sql: the JSON face of the Broker (seed 001) for the sidecar's routes
-- (sidecar/src/broker_api.c). Each route is one call of one api_* function, which takes the
-- raw request body as text: PostgreSQL parses and validates the business JSON, the sidecar
-- only passes it along and returns the answer.
--
-- Errors: a body that is not JSON raises 22P02, a missing or mistyped field 22023 with a
-- message naming the field (the sidecar answers 400 with that message). A token whose user
-- no longer exists raises 28000 (invalid_authorization_specification; the sidecar answers
-- 401). Everything else comes from the functions of 20_events.sql and 50_users.sql.
--
-- Every function here is PL/pgSQL, so this file depends on 20_events.sql and 50_users.sql
-- only at run time.

-- api_body parses a request body into a JSON object.
CREATE FUNCTION herald.api_body(body text) RETURNS jsonb
	LANGUAGE plpgsql IMMUTABLE
	AS $$
DECLARE
	j jsonb;
	why text;
BEGIN
	IF body IS NULL OR btrim(body) = '' THEN
		RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'request body is empty: expected a JSON object';
	END IF;
	BEGIN
		j := body::jsonb;
	EXCEPTION WHEN invalid_text_representation OR untranslatable_character OR character_not_in_repertoire THEN
		GET STACKED DIAGNOSTICS why = PG_EXCEPTION_DETAIL;
		RAISE EXCEPTION USING ERRCODE = '22P02',
			MESSAGE = 'request body is not valid JSON' || coalesce(': ' || nullif(why, ''), ''),
			DETAIL = SQLERRM;
	END;
	IF jsonb_typeof(j) <> 'object' THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('request body must be a JSON object, not %s', jsonb_typeof(j));
	END IF;
	RETURN j;
END
$$;

-- api_text_field returns field name of j, which must be a non-empty string.
CREATE FUNCTION herald.api_text_field(j jsonb, name text) RETURNS text
	LANGUAGE plpgsql IMMUTABLE
	AS $$
BEGIN
	IF NOT j ? name THEN
		RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('field "%s" is required', name);
	END IF;
	IF jsonb_typeof(j -> name) <> 'string' THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('field "%s" must be a string, not %s', name, jsonb_typeof(j -> name));
	END IF;
	IF j ->> name = '' THEN
		RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('field "%s" must not be empty', name);
	END IF;
	RETURN j ->> name;
END
$$;

-- api_require_user raises 28000 when the token's user (owner) no longer exists.
CREATE FUNCTION herald.api_require_user(owner uuid) RETURNS void
	LANGUAGE plpgsql STABLE
	AS $$
BEGIN
	IF owner IS NULL OR NOT herald.user_exists(owner) THEN
		RAISE EXCEPTION USING ERRCODE = '28000', MESSAGE = 'the user of this token no longer exists';
	END IF;
END
$$;

-- api_create_user: POST /users {"username","password","info"} -> {"id"}. info is any JSON
-- value (optional, default {}); a taken username raises HR010 "username already taken".
CREATE FUNCTION herald.api_create_user(body text) RETURNS json
	LANGUAGE plpgsql
	AS $$
DECLARE
	j jsonb := herald.api_body(body);
	id uuid;
BEGIN
	id := herald.create_user(herald.api_text_field(j, 'username'), herald.api_text_field(j, 'password'),
							 coalesce(j -> 'info', '{}'::jsonb));
	RETURN jsonb_build_object('id', id)::json;
END
$$;

-- api_login: POST /login {"username","password"} -> the user's id, or NULL for wrong
-- credentials (the sidecar answers 401 and signs the token itself).
CREATE FUNCTION herald.api_login(body text) RETURNS uuid
	LANGUAGE plpgsql
	AS $$
DECLARE
	j jsonb := herald.api_body(body);
BEGIN
	RETURN herald.login(herald.api_text_field(j, 'username'), herald.api_text_field(j, 'password'));
END
$$;

-- api_insert_event: POST /insert {"event","timestamp","data"} -> {"id"}. timestamp is the
-- Unix time in seconds (an integer) at which the event becomes current; data is any JSON.
-- The event name becomes an SSE "event:" field, so it may hold no control character, and
-- "internal_status" (the liveness frame) and "reset" (the stream's own reset frame) are
-- reserved.
CREATE FUNCTION herald.api_insert_event(owner uuid, body text) RETURNS json
	LANGUAGE plpgsql
	AS $$
DECLARE
	j jsonb;
	event text;
	ts jsonb;
	id uuid;
BEGIN
	PERFORM herald.api_require_user(owner);
	j := herald.api_body(body);
	event := herald.api_text_field(j, 'event');
	IF event ~ '[[:cntrl:]]' THEN
		RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'field "event" must not contain control characters';
	END IF;
	IF event IN ('internal_status', 'reset') THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('field "event" must not be "%s" (reserved by the /events stream)', event);
	END IF;
	IF length(event) > 200 THEN
		RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'field "event" must be at most 200 characters';
	END IF;
	IF NOT j ? 'timestamp' THEN
		RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'field "timestamp" is required';
	END IF;
	ts := j -> 'timestamp';
	IF jsonb_typeof(ts) <> 'number' OR ts::text::numeric <> trunc(ts::text::numeric)
	   OR ts::text::numeric NOT BETWEEN 0 AND 253402300799 THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = 'field "timestamp" must be an integer Unix time in seconds',
			DETAIL = format('Got %s.', ts);
	END IF;
	IF NOT j ? 'data' THEN
		RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'field "data" is required';
	END IF;
	id := herald.insert_event(owner, event, to_timestamp(ts::text::numeric::double precision), j -> 'data');
	RETURN jsonb_build_object('id', id)::json;
END
$$;

-- api_event_log: GET /events/{event} -> every version of the event, oldest first.
CREATE FUNCTION herald.api_event_log(owner uuid, event text) RETURNS json
	LANGUAGE plpgsql STABLE
	AS $$
BEGIN
	PERFORM herald.api_require_user(owner);
	RETURN coalesce(herald.event_log_json(event), '[]'::json);
END
$$;

-- api_cancel_event: GET /events/{id}/cancel -> {"id","cancelled":true}. Unknown or another
-- user's event: HR020/HR022 (404); published: HR021 (409); already cancelled: HR023 (409).
CREATE FUNCTION herald.api_cancel_event(owner uuid, id uuid) RETURNS json
	LANGUAGE plpgsql
	AS $$
BEGIN
	PERFORM herald.api_require_user(owner);
	PERFORM herald.cancel_event(owner, id);
	RETURN jsonb_build_object('id', id, 'cancelled', true)::json;
END
$$;
