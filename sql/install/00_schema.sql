-- 00_schema.sql: the herald schema's basics. (The schema itself is created by
-- CREATE EXTENSION from herald.control: schema = herald.)
\echo Use "CREATE EXTENSION herald" to load this file. \quit

-- version returns the version of the loaded library.
CREATE FUNCTION herald.version() RETURNS text
	LANGUAGE c STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'herald_version';
