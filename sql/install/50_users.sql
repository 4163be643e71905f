-- 50_users.sql: Broker users (seed 001). Passwords are hashed with argon2id by
-- libsodium inside the extension (extension/src/password.c); the clear text is
-- never stored or logged.

-- users holds one row per Broker user; username is unique.
CREATE TABLE herald.users (
	id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	username      text NOT NULL UNIQUE CHECK (username <> ''),
	password_hash text NOT NULL,          -- crypto_pwhash_str output ($argon2id$...)
	info          jsonb NOT NULL DEFAULT '{}',
	created_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE herald.users IS 'Broker users; password_hash is an argon2id string made by libsodium.';

-- Events belong to users (20_events.sql is loaded first, so the link is made here).
ALTER TABLE herald.events
	ADD CONSTRAINT events_user_id_fkey FOREIGN KEY (user_id) REFERENCES herald.users (id);

-- create_user stores a user and returns its id; a taken username raises HR010
-- "username already taken"; an empty username or password raises 22023.
CREATE FUNCTION herald.create_user(username text, password text, info jsonb DEFAULT '{}')
	RETURNS uuid
	LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'herald_create_user';

-- login returns the user's id when the password matches, NULL otherwise. It takes
-- the same time whether or not the username exists (one argon2id verification).
CREATE FUNCTION herald.login(username text, password text)
	RETURNS uuid
	LANGUAGE c STRICT VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'herald_login';

-- user_exists tells whether a user with that id exists.
CREATE FUNCTION herald.user_exists(id uuid)
	RETURNS boolean
	LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	BEGIN ATOMIC
		SELECT EXISTS (SELECT 1 FROM herald.users u WHERE u.id = user_exists.id);
	END;

-- The hashes are nobody's business but the extension's: roles other than the owner use
-- the functions above (SECURITY DEFINER), not the table.
REVOKE ALL ON herald.users FROM PUBLIC;
