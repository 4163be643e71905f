-- 00_setup: helpers shared by the other pg_regress files (they run after this one, in
-- name order, in the same database).
-- regress_err runs a statement and returns 'no error', or the SQLSTATE and message of the
-- error it raised, with UUIDs (random in most tests) shown as <uuid>.
CREATE FUNCTION public.regress_err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'g');
END
$$;
SELECT regress_err('SELECT 1') AS ok, regress_err('SELECT 1/0') AS division;
