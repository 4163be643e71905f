-- 40_announce.sql: the doorbell. Every row inserted into herald.outbox is recorded by a C
-- trigger (announce.c); when the transaction commits, each stream it wrote gets ONE
-- notification on channel "herald" (nothing if it rolls back, nothing for a rolled-back
-- savepoint). Payload, compact JSON:
--   {"stream":"user:demo","seq":7,"kind":"message","data":"..."}
--       the transaction added exactly one message to the stream and the payload is shorter
--       than 7900 bytes;
--   {"stream":"user:demo","seq":9,"count":3}
--       otherwise (seq = the highest of the transaction): read the outbox.
-- A transaction that sent messages cannot be PREPAREd (NOTIFY cannot either).

CREATE FUNCTION herald.outbox_announce() RETURNS trigger
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'herald_outbox_announce';

CREATE TRIGGER outbox_announce
	AFTER INSERT ON herald.outbox
	FOR EACH ROW EXECUTE FUNCTION herald.outbox_announce();

-- doorbell_stats describes the doorbell ring (extension/src/doorbell.c) through which
-- committing transactions hand their doorbells to the background worker (setting
-- herald.doorbell_via_worker): {"preloaded","worker_drains","this_database","via_worker",
-- "ring_bytes","used_bytes","rung","direct_fallbacks"}. For tests and monitoring.
CREATE FUNCTION herald.doorbell_stats() RETURNS jsonb
	LANGUAGE c VOLATILE
	AS 'MODULE_PATHNAME', 'herald_doorbell_stats';
