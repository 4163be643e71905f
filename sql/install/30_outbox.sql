-- 30_outbox.sql: streams and the outbox.
--
-- A stream is a named, totally ordered sequence of messages. herald.streams holds each
-- stream's counter: a send takes the next seq by updating the stream's row (created by its
-- first message, with INSERT ... ON CONFLICT), whose lock is held until commit; so, per
-- stream, seq order is commit order and has no holes, and writers of different streams never
-- wait on each other. Messages are kept in herald.outbox for replay; herald.prune_outbox()
-- (called by the background worker every herald.prune_interval) deletes those older than
-- herald.outbox_retention, always a prefix of each stream, and records it in
-- streams.pruned_through. So the outbox holds exactly the messages (pruned_through, last_seq]
-- of each stream.
--
-- The outbox names a stream by its number (streams.id), not by its name: its primary key is
-- two bigints instead of a name of up to 1 000 bytes and a bigint, which makes the index
-- several times smaller and each insert cheaper (a transition writes one outbox row into a
-- random place of that index). herald.messages shows the outbox with the streams' names.
--
-- Every row inserted into the outbox rings the doorbell at commit (40_announce.sql).

-- Stream names are keys, never sorted for people: they use the "C" collation (bytewise), so the
-- primary key compares them with memcmp instead of the database's locale. Every send updates
-- its stream's row (a HOT update: no indexed column changes): the pages are kept four-fifths
-- empty (fillfactor 20), so that the new versions fit beside the old ones for long between two
-- prunes of the page, and concurrent senders to different streams share pages less.
CREATE TABLE herald.streams (
	stream text COLLATE "C" PRIMARY KEY CHECK (stream <> '' AND octet_length(stream) <= 1000),
	id bigint GENERATED ALWAYS AS IDENTITY UNIQUE, -- the outbox's name for the stream
	last_seq bigint NOT NULL,				-- seq of the stream's last message
	pruned_through bigint NOT NULL DEFAULT 0 -- messages up to this seq are pruned
) WITH (fillfactor = 20);

CREATE TABLE herald.outbox (
	stream_id bigint NOT NULL REFERENCES herald.streams (id) ON DELETE CASCADE,
	seq bigint NOT NULL,
	kind text NOT NULL DEFAULT 'message'
		CHECK (kind <> '' AND strpos(kind, E'\n') = 0 AND strpos(kind, E'\r') = 0),
	data text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (stream_id, seq)
);
-- Rows arrive in created_at order (nearly): a BRIN index finds the old ones cheaply.
CREATE INDEX outbox_created_at_idx ON herald.outbox USING brin (created_at);

-- messages is the outbox with each stream's name: what to query by hand.
CREATE VIEW herald.messages AS
	SELECT s.stream, o.seq, o.kind, o.data, o.created_at
	  FROM herald.outbox o JOIN herald.streams s ON s.id = o.stream_id;

-- send appends a message to stream and returns its seq. kind is the SSE event name
-- ("message" by default; no line breaks; "reset" is what replay uses for its own rows).
-- Written in C (outbox.c: herald_stream_append): the stream's counter, then the outbox row,
-- written without the executor, and the doorbell.
CREATE FUNCTION herald.send(stream text, data text, kind text DEFAULT 'message') RETURNS bigint
	LANGUAGE c VOLATILE
	AS 'MODULE_PATHNAME', 'herald_send';

-- send(stream, jsonb, kind) sends the JSON document's text.
CREATE FUNCTION herald.send(stream text, data jsonb, kind text DEFAULT 'message') RETURNS bigint
	LANGUAGE sql
	AS $$ SELECT herald.send(stream, data::text, kind) $$;

-- send_many appends every element of data, in order, data[i] with kind kinds[i] (arrays of
-- equal length, 22023 otherwise), and returns the last seq (the stream's position if data is
-- empty). One counter update, one doorbell. Used by the event publisher
-- (extension/src/publish.c: one call per batch of due events, whose names differ). In C
-- (outbox.c: herald_send_many), as send.
CREATE FUNCTION herald.send_many(stream text, data text[], kinds text[]) RETURNS bigint
	LANGUAGE c VOLATILE
	AS 'MODULE_PATHNAME', 'herald_send_many';

-- send_batch is send_many with one kind for every message.
CREATE FUNCTION herald.send_batch(stream text, data text[], kind text DEFAULT 'message') RETURNS bigint
	LANGUAGE sql
	AS $$ SELECT herald.send_many(stream, data, array_fill(kind, ARRAY[coalesce(cardinality(data), 0)])) $$;

-- stream_position returns the seq of stream's last committed message, 0 if none.
CREATE FUNCTION herald.stream_position(stream text) RETURNS bigint
	LANGUAGE sql STABLE
	AS $$ SELECT coalesce((SELECT s.last_seq FROM herald.streams s WHERE s.stream = $1), 0) $$;

-- replay returns stream's messages after after_seq, ascending, at most max_rows of them.
-- When the messages right after after_seq are gone (pruned), or after_seq is beyond the
-- stream's end (e.g. a client of an older database), the first row is a reset:
--   (seq = position to resume after, kind = 'reset',
--    data = {"reason":"pruned"|"beyond_end","requested":after_seq,"resume_after":seq})
-- followed, for "pruned", by the messages after that position.
-- STABLE: the stream's row and the messages are read from one snapshot.
CREATE FUNCTION herald.replay(stream text, after_seq bigint, max_rows integer DEFAULT 1000)
	RETURNS TABLE(seq bigint, kind text, data text)
	LANGUAGE plpgsql STABLE
	AS $$
DECLARE
	sid bigint;
	last bigint := 0;
	pruned bigint := 0;
	resume bigint;
	reason text;
BEGIN
	IF after_seq IS NULL OR after_seq < 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('invalid position to replay after: %s', coalesce(after_seq::text, 'NULL')),
			HINT = 'Positions are 0 (the start of the stream) or a seq.';
	END IF;
	IF max_rows IS NULL OR max_rows < 1 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('max_rows must be positive, not %s', coalesce(max_rows::text, 'NULL'));
	END IF;
	SELECT s.id, s.last_seq, s.pruned_through INTO sid, last, pruned
	  FROM herald.streams s WHERE s.stream = replay.stream;
	IF NOT FOUND THEN
		last := 0;
		pruned := 0;
	END IF;
	resume := after_seq;
	IF after_seq > last THEN
		resume := last;
		reason := 'beyond_end';
	ELSIF after_seq < pruned THEN
		resume := pruned;
		reason := 'pruned';
	END IF;
	IF reason IS NOT NULL THEN
		seq := resume;
		kind := 'reset';
		data := format('{"reason":"%s","requested":%s,"resume_after":%s}', reason, after_seq, resume);
		RETURN NEXT;
	END IF;
	RETURN QUERY
		SELECT o.seq, o.kind, o.data
		  FROM herald.outbox o
		 WHERE o.stream_id = sid AND o.seq > resume
		 ORDER BY o.seq
		 LIMIT max_rows;
END
$$;

-- outbox_retention returns the setting herald.outbox_retention as an interval.
CREATE FUNCTION herald.outbox_retention() RETURNS interval
	LANGUAGE c STABLE
	AS 'MODULE_PATHNAME', 'herald_outbox_retention_interval';

-- prune_outbox deletes the messages older than herald.outbox_retention and returns how many
-- it deleted. Per stream it deletes a prefix: everything up to the newest seq older than the
-- cut-off (a message a little younger may go with it, never one in the middle), and moves
-- pruned_through there. Streams being written at this moment (row locked) are skipped and
-- pruned next time, so pruning never waits for, nor deadlocks with, a sender.
CREATE FUNCTION herald.prune_outbox() RETURNS bigint
	LANGUAGE plpgsql
	AS $$
DECLARE
	deleted bigint;
BEGIN
	WITH cut AS (
		SELECT o.stream_id, max(o.seq) AS through
		  FROM herald.outbox o
		 WHERE o.created_at < now() - herald.outbox_retention()
		 GROUP BY o.stream_id
	), locked AS (
		SELECT s.id, cut.through
		  FROM herald.streams s JOIN cut ON cut.stream_id = s.id
		 WHERE cut.through > s.pruned_through
		   FOR UPDATE OF s SKIP LOCKED
	), moved AS (
		UPDATE herald.streams s SET pruned_through = locked.through
		  FROM locked
		 WHERE s.id = locked.id
		RETURNING s.id, s.pruned_through
	), gone AS (
		DELETE FROM herald.outbox o
		 USING moved
		 WHERE o.stream_id = moved.id AND o.seq <= moved.pruned_through
		RETURNING 1
	)
	SELECT count(*) INTO deleted FROM gone;
	RETURN deleted;
END
$$;
