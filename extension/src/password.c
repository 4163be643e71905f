/*-------------------------------------------------------------------------
 *
 * password.c
 *	  Broker users: argon2id password hashes made and checked inside the
 *	  server with libsodium (crypto_pwhash_str, crypto_pwhash_str_verify).
 *
 * Two promises are kept here:
 *	 - a password never leaves this file in clear: it is not stored, not
 *	   logged, not put in an error message, and the backend's copy is wiped
 *	   after use;
 *	 - herald.login takes the same time whether or not the username exists:
 *	   an unknown username is checked against a fixed dummy hash made with the
 *	   same parameters as real ones, so both paths run one argon2id
 *	   verification.
 *
 * The table herald.users is created by sql/install/50_users.sql; the
 * functions below reach it through SPI with parameters.
 *
 *-------------------------------------------------------------------------
 */
#include "herald.h"
#include "herald_errcodes.h"

#include <sodium.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(herald_create_user);
PG_FUNCTION_INFO_V1(herald_login);

/*
 * Hash parameters: libsodium's "interactive" argon2id limits (2 passes,
 * 64 MiB). The dummy hash below was made with exactly these, so that a login
 * for an unknown username costs what a real one costs.
 */
#define HERALD_PWHASH_OPSLIMIT	crypto_pwhash_OPSLIMIT_INTERACTIVE
#define HERALD_PWHASH_MEMLIMIT	crypto_pwhash_MEMLIMIT_INTERACTIVE

StaticAssertDecl(crypto_pwhash_OPSLIMIT_INTERACTIVE == 2 &&
				 crypto_pwhash_MEMLIMIT_INTERACTIVE == 67108864,
				 "the dummy hash must use the parameters of real hashes");

/* argon2id hash of 32 random bytes that nobody kept: matches no password */
static const char herald_dummy_hash[] =
"$argon2id$v=19$m=65536,t=2,p=1$ztuluLSIBBCOBrtSkTNL7A$P/TYsIiOMbbhS2p9jCk+WkN2D7NjQZgKxlWDyeK+ALw";

static void herald_sodium_init(void);
static char *herald_password_arg(FunctionCallInfo fcinfo, int argno);

/*
 * herald_sodium_init initialises libsodium once per process (the call is
 * idempotent and cheap after the first time).
 */
static void
herald_sodium_init(void)
{
	if (sodium_init() < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not initialise libsodium")));
}

/*
 * herald_password_arg returns a NUL-terminated copy of text argument argno;
 * the caller wipes it with sodium_memzero after use.
 */
static char *
herald_password_arg(FunctionCallInfo fcinfo, int argno)
{
	text	   *t = PG_GETARG_TEXT_PP(argno);

	return text_to_cstring(t);
}

/*
 * herald_create_user implements herald.create_user(username, password, info):
 * stores a new user with an argon2id hash of the password and returns its id.
 * A username already in use raises HR010 "username already taken".
 */
Datum
herald_create_user(PG_FUNCTION_ARGS)
{
	char	   *username;
	char	   *password;
	Jsonb	   *info;
	char		hash[crypto_pwhash_STRBYTES];
	pg_uuid_t  *result = palloc(sizeof(pg_uuid_t));
	Oid			types[3] = {TEXTOID, TEXTOID, JSONBOID};
	Datum		values[3];
	bool		isnull;
	int			rc;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("username and password must not be null")));
	username = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (username[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("username must not be empty")));
	if (VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(1)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("password must not be empty")));
	if (PG_ARGISNULL(2))
		info = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	else
		info = PG_GETARG_JSONB_P(2);

	herald_sodium_init();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* Refuse a taken name before paying for a hash. */
	values[0] = PointerGetDatum(cstring_to_text(username));
	rc = SPI_execute_with_args("SELECT 1 FROM herald.users WHERE username = $1",
							   1, types, values, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %d", rc);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_HERALD_USERNAME_TAKEN),
				 errmsg("username already taken")));

	password = herald_password_arg(fcinfo, 1);
	rc = crypto_pwhash_str(hash, password, strlen(password),
						   HERALD_PWHASH_OPSLIMIT, HERALD_PWHASH_MEMLIMIT);
	sodium_memzero(password, strlen(password));
	if (rc != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not hash the password")));

	/* A concurrent creation of the same name loses here, not in a unique
	 * violation whose detail would be less clear. */
	values[1] = PointerGetDatum(cstring_to_text(hash));
	values[2] = JsonbPGetDatum(info);
	rc = SPI_execute_with_args("INSERT INTO herald.users (username, password_hash, info) "
							   "VALUES ($1, $2, $3) "
							   "ON CONFLICT (username) DO NOTHING RETURNING id",
							   3, types, values, NULL, false, 1);
	sodium_memzero(hash, sizeof(hash));
	if (rc != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "SPI_execute_with_args failed: %d", rc);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_HERALD_USERNAME_TAKEN),
				 errmsg("username already taken")));
	memcpy(result,
		   DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)),
		   sizeof(pg_uuid_t));
	SPI_finish();

	PG_RETURN_UUID_P(result);
}

/*
 * herald_login implements herald.login(username, password): the user's id
 * when the password matches, NULL otherwise. Exactly one argon2id
 * verification runs in both cases (against the dummy hash when the username
 * is unknown), so the time taken does not tell whether the name exists.
 */
Datum
herald_login(PG_FUNCTION_ARGS)
{
	text	   *username = PG_GETARG_TEXT_PP(0);
	char	   *password;
	char		hash[crypto_pwhash_STRBYTES];
	pg_uuid_t  *result = palloc(sizeof(pg_uuid_t));
	bool		found = false;
	bool		ok;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	int			rc;

	herald_sodium_init();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	values[0] = PointerGetDatum(username);
	rc = SPI_execute_with_args("SELECT id, password_hash FROM herald.users WHERE username = $1",
							   1, types, values, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %d", rc);
	strlcpy(hash, herald_dummy_hash, sizeof(hash));
	if (SPI_processed > 0)
	{
		HeapTuple	tuple = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *stored;

		memcpy(result, DatumGetUUIDP(SPI_getbinval(tuple, desc, 1, &isnull)), sizeof(pg_uuid_t));
		stored = SPI_getvalue(tuple, desc, 2);
		if (stored != NULL && strlen(stored) < sizeof(hash))
		{
			strlcpy(hash, stored, sizeof(hash));
			found = true;
		}
	}
	SPI_finish();

	password = herald_password_arg(fcinfo, 1);
	ok = crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
	sodium_memzero(password, strlen(password));

	if (!found || !ok)
		PG_RETURN_NULL();
	PG_RETURN_UUID_P(result);
}
