-- 10_reports.sql: reports of seed 000 v4 and their state machine.
--
-- A report moves through pending, queued, processing, completed, failed, canceled by these
-- eight transitions only (completed is terminal):
--   pending→queued, pending→canceled, queued→processing, queued→canceled,
--   processing→completed, processing→failed, failed→pending, canceled→pending.
-- The rule is enforced in C (transitions.c, trigger reports_guard) on every path: a new
-- report starts pending at version 1, and every UPDATE of a report is a transition, checked
-- alike whether it comes from herald.transition() or a plain UPDATE. A refused transition
-- raises SQLSTATE HR001; an unknown report, HR002. Each accepted change (creation included)
-- adds a row to herald.report_history and a message of kind report_status_update, data
-- {"id":"<report>","status":"<status>"}, to the owner's stream user:<owner uuid>, in the
-- same transaction.

CREATE TYPE herald.report_status AS ENUM
	('pending', 'queued', 'processing', 'completed', 'failed', 'canceled');

CREATE TABLE herald.reports (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	owner uuid NOT NULL,
	status herald.report_status NOT NULL DEFAULT 'pending',
	version integer NOT NULL DEFAULT 1,		-- set by the guard: 1, then +1 per transition
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reports_owner_idx ON herald.reports (owner, created_at);

-- One row per accepted change: version 1 is the creation (from_status NULL).
CREATE TABLE herald.report_history (
	report uuid NOT NULL REFERENCES herald.reports (id) ON DELETE CASCADE,
	version integer NOT NULL,
	from_status herald.report_status,
	to_status herald.report_status NOT NULL,
	at timestamptz NOT NULL,
	PRIMARY KEY (report, version)
);

-- report_guard (C) validates the change and sets version, created_at and updated_at.
CREATE FUNCTION herald.report_guard() RETURNS trigger
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'herald_report_guard';

CREATE TRIGGER reports_guard
	BEFORE INSERT OR UPDATE ON herald.reports
	FOR EACH ROW EXECUTE FUNCTION herald.report_guard();

-- report_record (C) writes the history row and the owner's stream message (herald.send) of
-- an accepted change.
CREATE FUNCTION herald.report_record() RETURNS trigger
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'herald_report_record';

CREATE TRIGGER reports_record
	AFTER INSERT OR UPDATE ON herald.reports
	FOR EACH ROW EXECUTE FUNCTION herald.report_record();

-- create_report creates a pending report of owner and returns it.
CREATE FUNCTION herald.create_report(owner uuid) RETURNS herald.reports
	LANGUAGE plpgsql
	AS $$
DECLARE
	r herald.reports;
BEGIN
	IF owner IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'report owner cannot be null';
	END IF;
	INSERT INTO herald.reports (owner) VALUES (create_report.owner) RETURNING * INTO r;
	RETURN r;
END
$$;

-- transition moves report to new_status and returns the report with its new version.
-- Errors: unknown status → 22023; unknown report → HR002; a transition outside the table
-- → HR001; a missing privilege that the equivalent statements would need (SELECT and UPDATE on
-- herald.reports, INSERT on report_history and outbox, SELECT and UPDATE on streams) → 42501,
-- naming the table. It locks the row as UPDATE does, so
-- concurrent transitions of one report serialize and each is checked against the state the
-- previous one committed. Written in C (transitions.c: herald_transition) without the
-- executor: it does the guard's and the recorder's work itself with the same code, and row
-- triggers of herald.reports do not fire for it (react to transitions through the owner's
-- stream instead).
CREATE FUNCTION herald.transition(report uuid, new_status text) RETURNS herald.reports
	LANGUAGE c VOLATILE
	AS 'MODULE_PATHNAME', 'herald_transition';

-- report_history lists report's accepted changes, oldest first: version 1 is the creation.
-- An unknown report raises HR002.
CREATE FUNCTION herald.report_history(report uuid)
	RETURNS TABLE(version integer, from_status text, to_status text, at timestamptz)
	LANGUAGE plpgsql STABLE
	AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM herald.reports r WHERE r.id = report_history.report) THEN
		RAISE EXCEPTION USING ERRCODE = 'HR002',
			MESSAGE = format('report %s not found', coalesce(report::text, 'NULL'));
	END IF;
	RETURN QUERY
		SELECT h.version, h.from_status::text, h.to_status::text, h.at
		  FROM herald.report_history h
		 WHERE h.report = report_history.report
		 ORDER BY h.version;
END
$$;
