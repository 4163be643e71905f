-- 30_outbox.sql: streams and the outbox.
--
-- A stream is a named, totally ordered sequence of messages. herald.streams holds each
-- stream's counter: send() takes the next seq with an INSERT ... ON CONFLICT DO UPDATE on the
-- stream's row, whose lock is held until commit; so, per stream, seq order is commit order
-- and has no holes, and writers of different streams never wait on each other. Messages are
-- kept in herald.outbox for replay; herald.prune_outbox() (called by the background worker
-- every herald.prune_interval) deletes those older than herald.outbox_retention, always a
-- prefix of each stream, and records it in streams.pruned_through. So the outbox holds exactly
-- the messages (pruned_through, last_seq] of each stream.
--
-- Every row inserted into the outbox rings the doorbell at commit (40_announce.sql).

-- Stream names are keys, never sorted for people: they use the "C" collation (bytewise), so the
-- primary keys of both tables compare them with memcmp instead of the database's locale.
CREATE TABLE herald.streams (
	stream text COLLATE "C" PRIMARY KEY CHECK (stream <> '' AND octet_length(stream) <= 1000),
	last_seq bigint NOT NULL,				-- seq of the stream's last message
	pruned_through bigint NOT NULL DEFAULT 0 -- messages up to this seq are pruned
);

CREATE TABLE herald.outbox (
	stream text COLLATE "C" NOT NULL,
	seq bigint NOT NULL,
	kind text NOT NULL DEFAULT 'message'
		CHECK (kind <> '' AND strpos(kind, E'\n') = 0 AND strpos(kind, E'\r') = 0),
	data text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (stream, seq)
);
-- Rows arrive in created_at order (nearly): a BRIN index finds the old ones cheaply.
CREATE INDEX outbox_created_at_idx ON herald.outbox USING brin (created_at);

-- send appends a message to stream and returns its seq. kind is the SSE event name
-- ("message" by default; no line breaks; "reset" is what replay uses for its own rows).
-- Written in C (outbox.c: herald_stream_append): the same two writes as send_many below
-- (the stream's counter, then the outbox row) without the executor, and the doorbell.
CREATE FUNCTION herald.send(stream text, data text, kind text DEFAULT 'message') RETURNS bigint
	LANGUAGE c VOLATILE
	AS 'MODULE_PATHNAME', 'herald_send';

-- send(stream, jsonb, kind) sends the JSON document's text.
CREATE FUNCTION herald.send(stream text, data jsonb, kind text DEFAULT 'message') RETURNS bigint
	LANGUAGE sql
	AS $$ SELECT herald.send(stream, data::text, kind) $$;

-- send_many appends every element of data, in order, data[i] with kind kinds[i] (arrays of
-- equal length), and returns the last seq (the stream's position if data is empty). One
-- transaction, one doorbell. Used by the event publisher (extension/src/publish.c: one call
-- per batch of due events, whose names differ).
CREATE FUNCTION herald.send_many(stream text, data text[], kinds text[]) RETURNS bigint
	LANGUAGE plpgsql
	AS $$
DECLARE
	n bigint := coalesce(cardinality(data), 0);
	new_seq bigint;
BEGIN
	IF coalesce(cardinality(kinds), 0) <> n THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'data and kinds must have the same length';
	END IF;
	IF n = 0 THEN
		RETURN herald.stream_position(stream);
	END IF;
	INSERT INTO herald.streams AS s (stream, last_seq) VALUES (send_many.stream, n)
		ON CONFLICT ON CONSTRAINT streams_pkey DO UPDATE SET last_seq = s.last_seq + n
	RETURNING s.last_seq INTO new_seq;
	INSERT INTO herald.outbox (stream, seq, kind, data)
	SELECT send_many.stream, new_seq - n + u.i, u.k, u.d
	  FROM unnest(send_many.data, send_many.kinds) WITH ORDINALITY AS u(d, k, i);
	RETURN new_seq;
END
$$;

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
	SELECT s.last_seq, s.pruned_through INTO last, pruned
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
		 WHERE o.stream = replay.stream AND o.seq > resume
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
		SELECT o.stream, max(o.seq) AS through
		  FROM herald.outbox o
		 WHERE o.created_at < now() - herald.outbox_retention()
		 GROUP BY o.stream
	), locked AS (
		SELECT s.stream, cut.through
		  FROM herald.streams s JOIN cut ON cut.stream = s.stream
		 WHERE cut.through > s.pruned_through
		   FOR UPDATE OF s SKIP LOCKED
	), moved AS (
		UPDATE herald.streams s SET pruned_through = locked.through
		  FROM locked
		 WHERE s.stream = locked.stream
		RETURNING s.stream, s.pruned_through
	), gone AS (
		DELETE FROM herald.outbox o
		 USING moved
		 WHERE o.stream = moved.stream AND o.seq <= moved.pruned_through
		RETURNING 1
	)
	SELECT count(*) INTO deleted FROM gone;
	RETURN deleted;
END
$$;
