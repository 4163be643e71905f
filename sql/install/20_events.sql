-- 20_events.sql: Broker events (seed 001), versioned and published on time.
--
-- Glossary: an *event* is a name ("price", "weather"); a *version* is one row of
-- herald.events, i.e. one insert for that name, kept forever. A version is
-- *pending* until its publish time, then *published* (it lands in stream
-- "events" and becomes the name's current version), unless it was *cancelled*
-- first. Publication happens in the same transaction that writes the stream
-- message: at once in herald.insert_event for a past or present time, otherwise
-- by the background worker (extension/src/scheduler.c, publish.c), which
-- publishes due versions in (publish_at, version) order.

-- events holds every version of every event name.
CREATE TABLE herald.events (
	id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	version      bigint GENERATED ALWAYS AS IDENTITY,	-- insert order (unique: an identity)
	user_id      uuid NOT NULL,				-- owner; references herald.users (50_users.sql)
	event        text NOT NULL,
	publish_at   timestamptz NOT NULL,		-- when it becomes current
	data         jsonb NOT NULL,
	created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
	published_at timestamptz,				-- clock time of publication (lateness = published_at - publish_at)
	stream_seq   bigint,					-- its message's seq in stream "events"
	cancelled_at timestamptz,
	-- The name is an SSE "event:" field: no control characters, and not one of
	-- the kinds the sidecar itself sends on the same stream.
	CONSTRAINT events_event_check CHECK (event <> '' AND length(event) <= 200
		AND event !~ '[[:cntrl:]]' AND event NOT IN ('reset', 'internal_status')),
	CONSTRAINT events_state_check CHECK (published_at IS NULL OR cancelled_at IS NULL),
	CONSTRAINT events_published_check CHECK ((published_at IS NULL) = (stream_seq IS NULL))
);
COMMENT ON TABLE herald.events IS 'Broker event versions; pending until publish_at, then published or cancelled.';

-- The worker's queue: pending versions in publication order.
CREATE INDEX events_pending_idx ON herald.events (publish_at, version)
	WHERE published_at IS NULL AND cancelled_at IS NULL;
-- event_log: every version of one name in order.
CREATE INDEX events_log_idx ON herald.events (event, publish_at, version);
-- latest_events / events_snapshot: the last published version of each name.
CREATE INDEX events_current_idx ON herald.events (event, stream_seq)
	WHERE stream_seq IS NOT NULL;

-- _wake_worker_at arms a wake-up of the background worker for time "due", sent
-- only if the calling transaction commits (extension/src/wakeup.c).
CREATE FUNCTION herald._wake_worker_at(due timestamptz) RETURNS void
	LANGUAGE c STRICT VOLATILE
	AS 'MODULE_PATHNAME', 'herald_wake_worker_at';

-- publish_due publishes up to max_events versions that are due now, in
-- (publish_at, version) order, and returns how many it published. The worker
-- calls the same code; calling it by hand is safe (locked rows are skipped, a
-- version is never published twice) and serves installations without the worker.
CREATE FUNCTION herald.publish_due(max_events integer DEFAULT 1000) RETURNS integer
	LANGUAGE c STRICT VOLATILE
	AS 'MODULE_PATHNAME', 'herald_publish_due';

-- insert_event adds a version of event "event" owned by "owner" and returns its
-- id. A publish time in the past or present publishes it at once, in this
-- transaction; a future one wakes the worker at commit if it is due earlier
-- than what the worker waits for.
CREATE FUNCTION herald.insert_event(owner uuid, event text, publish_at timestamptz, data jsonb)
	RETURNS uuid
	LANGUAGE plpgsql VOLATILE
	AS $$
DECLARE
	new_id uuid;
BEGIN
	IF publish_at IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'publish time must not be null';
	ELSIF NOT isfinite(publish_at) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'publish time must be finite';
	END IF;
	IF publish_at <= clock_timestamp() THEN
		INSERT INTO herald.events AS e (user_id, event, publish_at, data, published_at, stream_seq)
		VALUES (insert_event.owner, insert_event.event, insert_event.publish_at, insert_event.data,
				clock_timestamp(),
				herald.send('events', insert_event.data::text, insert_event.event))
		RETURNING e.id INTO new_id;
	ELSE
		INSERT INTO herald.events AS e (user_id, event, publish_at, data)
		VALUES (insert_event.owner, insert_event.event, insert_event.publish_at, insert_event.data)
		RETURNING e.id INTO new_id;
		PERFORM herald._wake_worker_at(insert_event.publish_at);
	END IF;
	RETURN new_id;
END;
$$;

-- cancel_event cancels a pending version of the owner's. Errors: unknown id
-- HR020, another user's version HR022, already cancelled HR023, already
-- published HR021. A version that is due but not yet published can still be
-- cancelled: publication, not the clock, is what cannot be undone.
CREATE FUNCTION herald.cancel_event(owner uuid, id uuid) RETURNS void
	LANGUAGE plpgsql VOLATILE STRICT
	AS $$
DECLARE
	v record;
BEGIN
	-- The worker skips locked rows, so it cannot publish this one meanwhile.
	SELECT e.user_id, e.published_at, e.cancelled_at INTO v
	  FROM herald.events e WHERE e.id = cancel_event.id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'HR020', MESSAGE = 'event not found',
			DETAIL = format('No event has id %s.', cancel_event.id);
	ELSIF v.user_id <> cancel_event.owner THEN
		RAISE EXCEPTION USING ERRCODE = 'HR022', MESSAGE = 'event belongs to another user',
			DETAIL = format('Event %s is not owned by user %s.', cancel_event.id, cancel_event.owner);
	ELSIF v.cancelled_at IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'HR023', MESSAGE = 'event already cancelled',
			DETAIL = format('Event %s was cancelled at %s.', cancel_event.id, v.cancelled_at);
	ELSIF v.published_at IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'HR021', MESSAGE = 'event already published',
			DETAIL = format('Event %s was published at %s.', cancel_event.id, v.published_at);
	END IF;
	UPDATE herald.events e SET cancelled_at = clock_timestamp() WHERE e.id = cancel_event.id;
END;
$$;

-- event_log returns every version of one event name (pending, published,
-- cancelled) by publish time, then insert order; "timestamp" is the publish
-- time in Unix epoch seconds. (The argument cannot be called "event": that is
-- an output column.)
CREATE FUNCTION herald.event_log(name text)
	RETURNS TABLE (id uuid, user_id uuid, event text, "timestamp" bigint,
				   published boolean, cancelled boolean, data jsonb)
	LANGUAGE sql STABLE STRICT
	BEGIN ATOMIC
		SELECT e.id, e.user_id, e.event, floor(extract(epoch FROM e.publish_at))::bigint,
			   e.published_at IS NOT NULL, e.cancelled_at IS NOT NULL, e.data
		  FROM herald.events e
		 WHERE e.event = event_log.name
		 ORDER BY e.publish_at, e.version;
	END;

-- event_log_json is event_log as a JSON array of records
-- {id, user_id, event, timestamp, published, cancelled, data}; [] when none.
CREATE FUNCTION herald.event_log_json(name text) RETURNS json
	LANGUAGE sql STABLE STRICT
	BEGIN ATOMIC
		SELECT coalesce(json_agg(json_build_object(
					'id', l.id, 'user_id', l.user_id, 'event', l.event,
					'timestamp', l."timestamp", 'published', l.published,
					'cancelled', l.cancelled, 'data', l.data) ORDER BY l.n), '[]'::json)
		  FROM herald.event_log(event_log_json.name)
			   WITH ORDINALITY AS l(id, user_id, event, "timestamp", published, cancelled, data, n);
	END;

-- latest_events returns the current version of each event name: the one
-- published last (the last one its stream carried), by name.
CREATE FUNCTION herald.latest_events()
	RETURNS TABLE (event text, id uuid, data jsonb, published_at timestamptz)
	LANGUAGE sql STABLE
	BEGIN ATOMIC
		SELECT DISTINCT ON (e.event) e.event, e.id, e.data, e.published_at
		  FROM herald.events e
		 WHERE e.stream_seq IS NOT NULL
		 ORDER BY e.event, e.stream_seq DESC;
	END;

-- events_snapshot is the snapshot for GET /events (contract in sidecar/src/sse.h):
-- the current version of each name in publication order, each row carrying the
-- position of stream "events" read in the same statement; one row with a NULL
-- kind when nothing was published yet. (A string body: herald.stream_position
-- is created by a later file.)
CREATE FUNCTION herald.events_snapshot()
	RETURNS TABLE ("position" bigint, kind text, data text)
	LANGUAGE sql STABLE
	AS $$
	WITH latest AS (
		SELECT DISTINCT ON (e.event) e.event, e.data, e.stream_seq
		  FROM herald.events e
		 WHERE e.stream_seq IS NOT NULL
		 ORDER BY e.event, e.stream_seq DESC
	)
	SELECT p.pos, l.event, l.data::text
	  FROM (SELECT herald.stream_position('events') AS pos) p
	  LEFT JOIN latest l ON true
	 ORDER BY l.stream_seq;
$$;
