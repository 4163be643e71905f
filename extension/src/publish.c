/*-------------------------------------------------------------------------
 *
 * publish.c
 *	  Publication of due event versions: the one place that turns a pending
 *	  row of herald.events into a message of stream "events".
 *
 * A batch is two SQL statements, run inside the caller's transaction:
 *	 1. lock up to N pending versions whose publish time has passed, in
 *		(publish_at, version) order, skipping rows locked by someone else
 *		(herald.cancel_event holds its row while it decides), and send them
 *		to stream "events" in that order, all at once through
 *		herald.send_many;
 *	 2. mark them published, with the clock time and their stream seqs.
 * Plans are generic and kept; each statement is shaped so that its one good
 * plan does not depend on the size of herald.events (which only grows).
 * Because the stream message and the "published" mark are written by the
 * same transaction, a version is published exactly once: either both are
 * committed or neither is, and a committed published row is never selected
 * again. herald.insert_event publishes a past-due version itself, in the
 * inserting transaction, so the worker never even sees it pending.
 *
 * Used by the background worker (scheduler.c) and by herald.publish_due().
 *
 *-------------------------------------------------------------------------
 */
#include "herald.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(herald_publish_due);

/*
 * Step 1, with herald.send_many: lock the due versions and send them in one
 * call; the n messages get seqs last_seq-n+1 .. last_seq, in the order of
 * "ids". No row when nothing is due.
 */
static const char *const send_many_sql =
"WITH due AS MATERIALIZED ("
"    SELECT e.id, e.event, e.data, e.publish_at, e.version"
"      FROM herald.events e"
"     WHERE e.published_at IS NULL AND e.cancelled_at IS NULL"
"       AND e.publish_at <= $2"
"     ORDER BY e.publish_at, e.version"
"     LIMIT $1"
"     FOR UPDATE SKIP LOCKED"
")"
" SELECT array_agg(d.id ORDER BY d.publish_at, d.version) AS ids,"
"        herald.send_many('events',"
"                         array_agg(d.data::text ORDER BY d.publish_at, d.version),"
"                         array_agg(d.event ORDER BY d.publish_at, d.version)) AS last_seq"
"   FROM due d"
" HAVING count(*) > 0";

/*
 * Step 2: mark them published. Driven by the id array, so that the plan is
 * a probe of the primary key per version whatever the size of the table.
 */
static const char *const mark_sql =
"UPDATE herald.events e"
"   SET published_at = clock_timestamp(), stream_seq = u.seq"
"  FROM unnest($1::uuid[], $2::bigint[]) AS u(id, seq)"
" WHERE e.id = u.id";

static const char *const next_due_sql =
"SELECT min(e.publish_at) FROM herald.events e"
" WHERE e.published_at IS NULL AND e.cancelled_at IS NULL"
"   AND e.publish_at > $1";

/* Plans kept for the life of the process; the plan cache re-plans them when
 * the objects they use change (e.g. DROP and CREATE EXTENSION). */
static SPIPlanPtr send_many_plan = NULL;
static SPIPlanPtr mark_plan = NULL;
static SPIPlanPtr next_due_plan = NULL;

static SPIPlanPtr herald_keep_plan(const char *sql, int nargs, Oid *argtypes);
static bool herald_function_exists(const char *name, int nargs, Oid *argtypes);

/*
 * herald_keep_plan prepares a statement and keeps its plan across
 * transactions. The plan is generic: the statements are cheap to run but
 * not to plan (a custom plan per round would cost more than the round), and
 * their one good plan does not depend on the parameters. Must run inside SPI.
 */
static SPIPlanPtr
herald_keep_plan(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return plan;
}

/*
 * herald_function_exists tells whether herald.<name>(argtypes) exists.
 */
static bool
herald_function_exists(const char *name, int nargs, Oid *argtypes)
{
	List	   *qualified = list_make2(makeString("herald"), makeString(pstrdup(name)));

	return OidIsValid(LookupFuncName(qualified, nargs, argtypes, true));
}

/*
 * herald_events_ready tells whether this database can publish events: the
 * extension is installed and its events table and herald.send_many exist. The worker waits quietly while it cannot. Needs a transaction.
 */
bool
herald_events_ready(void)
{
	Oid			nsp;
	Oid			send_args[3] = {TEXTOID, TEXTARRAYOID, TEXTARRAYOID};

	if (!OidIsValid(get_extension_oid("herald", true)))
		return false;
	nsp = get_namespace_oid("herald", true);
	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("events", nsp)))
		return false;
	return herald_function_exists("send_many", 3, send_args);
}

/*
 * herald_publish_batch publishes up to max_events versions due at or before
 * "now", in (publish_at, version) order, and returns how many it published.
 * Runs in the caller's transaction, which must commit for the publication to
 * happen.
 */
uint64
herald_publish_batch(int max_events, TimestampTz now)
{
	Oid			argtypes[2] = {INT4OID, TIMESTAMPTZOID};
	Oid			mark_types[2] = {UUIDARRAYOID, INT8ARRAYOID};
	Datum		values[2];
	Datum	   *ids;
	Datum	   *seqs;
	int			n;
	int			rc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	values[0] = Int32GetDatum(max_events);
	values[1] = TimestampTzGetDatum(now);

	{
		ArrayType  *id_array;
		int64		last_seq;
		bool		isnull;

		if (send_many_plan == NULL)
			send_many_plan = herald_keep_plan(send_many_sql, 2, argtypes);
		rc = SPI_execute_plan(send_many_plan, values, NULL, false, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "publishing due events failed: %s", SPI_result_code_string(rc));
		if (SPI_processed == 0)
		{
			SPI_finish();
			return 0;
		}
		id_array = DatumGetArrayTypeP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		last_seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		deconstruct_array(id_array, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR, &ids, NULL, &n);
		seqs = palloc(sizeof(Datum) * n);
		for (int i = 0; i < n; i++)
			seqs[i] = Int64GetDatum(last_seq - n + 1 + i);
	}

	if (mark_plan == NULL)
		mark_plan = herald_keep_plan(mark_sql, 2, mark_types);
	values[0] = PointerGetDatum(construct_array(ids, n, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
	values[1] = PointerGetDatum(construct_array(seqs, n, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	rc = SPI_execute_plan(mark_plan, values, NULL, false, 0);
	if (rc != SPI_OK_UPDATE || SPI_processed != (uint64) n)
		elog(ERROR, "marking %d published events failed: %s, " UINT64_FORMAT " rows",
			 n, SPI_result_code_string(rc), SPI_processed);
	SPI_finish();
	return (uint64) n;
}

/*
 * herald_next_due returns the publish time of the earliest pending version
 * due after "after" (DT_NOBEGIN: of all), or DT_NOEND when there is none.
 * It sees what committed before the call.
 */
TimestampTz
herald_next_due(TimestampTz after)
{
	TimestampTz next = DT_NOEND;
	Datum		value = TimestampTzGetDatum(after);
	bool		isnull;
	Datum		d;
	int			rc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (next_due_plan == NULL)
	{
		Oid			argtypes[1] = {TIMESTAMPTZOID};

		next_due_plan = herald_keep_plan(next_due_sql, 1, argtypes);
	}
	rc = SPI_execute_plan(next_due_plan, &value, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the next due event failed: %s", SPI_result_code_string(rc));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		next = DatumGetTimestampTz(d);
	SPI_finish();
	return next;
}

/*
 * herald_prune_outbox runs herald.prune_outbox() (same install script as the
 * events table, so herald_events_ready implies it exists); returns true.
 */
bool
herald_prune_outbox(void)
{
	int			rc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute("SELECT herald.prune_outbox()", false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "pruning the outbox failed: %s", SPI_result_code_string(rc));
	SPI_finish();
	return true;
}

/*
 * herald_publish_due implements herald.publish_due(max_events): publish what
 * is due now, in the calling transaction.
 */
Datum
herald_publish_due(PG_FUNCTION_ARGS)
{
	int32		max_events = PG_GETARG_INT32(0);

	if (max_events < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_events must be at least 1")));
	PG_RETURN_INT32((int32) herald_publish_batch(max_events, GetCurrentTimestamp()));
}
