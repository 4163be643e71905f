-- users: Broker users (50_users.sql, extension/src/password.c). Hashes never
-- appear in this output; only facts about them are printed.

SELECT herald.create_user('u_alice', 'correct horse', '{"team": "blue"}') AS alice \gset
SELECT herald.create_user('u_bob', 'correct horse', NULL) AS bob \gset
SELECT :'alice'::uuid IS NOT NULL AS has_id, :'alice' <> :'bob' AS distinct_ids;

-- Stored: argon2id with libsodium's interactive limits, salted (same password,
-- different hashes), never the clear text.
SELECT username, info,
	   password_hash LIKE '$argon2id$v=19$m=65536,t=2,p=1$%' AS argon2id,
	   strpos(password_hash, 'correct horse') = 0 AS no_clear_text
  FROM herald.users WHERE username IN ('u_alice', 'u_bob') ORDER BY username;
SELECT count(DISTINCT password_hash) AS distinct_hashes
  FROM herald.users WHERE username IN ('u_alice', 'u_bob');

-- Errors.
SELECT regress_err($$SELECT herald.create_user('u_alice', 'other', '{}')$$);
SELECT regress_err($$SELECT herald.create_user('', 'pw', '{}')$$);
SELECT regress_err($$SELECT herald.create_user('u_carol', '', '{}')$$);
SELECT regress_err($$SELECT herald.create_user(NULL, 'pw', '{}')$$);
SELECT regress_err($$SELECT herald.create_user('u_carol', NULL, '{}')$$);
SELECT count(*) AS carols FROM herald.users WHERE username = 'u_carol';

-- Login: the id on a match, NULL otherwise.
SELECT herald.login('u_alice', 'correct horse') = :'alice' AS alice_logs_in;
SELECT herald.login('u_bob', 'correct horse') = :'bob' AS bob_logs_in;
SELECT herald.login('u_alice', 'wrong') IS NULL AS wrong_password;
SELECT herald.login('u_alice', '') IS NULL AS empty_password;
SELECT herald.login('u_nobody', 'correct horse') IS NULL AS unknown_user;
SELECT herald.login(NULL, 'x') IS NULL AS null_user, herald.login('u_alice', NULL) IS NULL AS null_password;

-- An unknown username costs one argon2id verification, like a wrong password:
-- compare the fastest of five tries of each (bound generous, the box is shared;
-- skipping the verification would make the unknown case ~1000 times faster).
CREATE FUNCTION pg_temp.login_ms(u text, p text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
	best float8 := 'Infinity';
	t0 timestamptz;
BEGIN
	FOR i IN 1..5 LOOP
		t0 := clock_timestamp();
		PERFORM herald.login(u, p);
		best := least(best, extract(epoch FROM clock_timestamp() - t0) * 1000);
	END LOOP;
	RETURN best;
END
$$;
SELECT pg_temp.login_ms('u_nobody', 'x') AS unknown_ms, pg_temp.login_ms('u_alice', 'x') AS wrong_ms \gset
SELECT :unknown_ms / :wrong_ms BETWEEN 0.33 AND 3 AS same_time;

-- user_exists.
SELECT herald.user_exists(:'alice') AS alice_exists,
	   herald.user_exists('00000000-0000-0000-0000-000000000000') AS zero_exists;
