/*-------------------------------------------------------------------------
 *
 * outbox.c
 *	  What the outbox's SQL (sql/install/30_outbox.sql) needs from C (the
 *	  retention setting as an interval), and appending a message from C.
 *
 * The outbox keeps every message of every stream for replay during
 * herald.outbox_retention; herald.prune_outbox() deletes older ones. The
 * setting lives in this library, so reading it through a function also
 * works in a session that has not loaded the library yet.
 *
 *-------------------------------------------------------------------------
 */
#include "herald.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/reltrigger.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(herald_outbox_retention_interval);
PG_FUNCTION_INFO_V1(herald_send);
PG_FUNCTION_INFO_V1(herald_send_many);

/*
 * herald_outbox_retention_interval returns herald.outbox_retention as an
 * interval.
 */
Datum
herald_outbox_retention_interval(PG_FUNCTION_ARGS)
{
	Interval   *result = palloc0(sizeof(Interval));

	result->time = (int64) herald_outbox_retention * USECS_PER_SEC;
	PG_RETURN_INTERVAL_P(result);
}

/*
 * STREAM_FIRST_SQL takes the next n seqs of a stream that may not have a row
 * in herald.streams yet: two first messages of one stream may race, and ON
 * CONFLICT settles it. It returns the last seq taken and the stream's id.
 */
#define STREAM_FIRST_SQL \
	"INSERT INTO herald.streams AS s (stream, last_seq) VALUES ($1, $2)" \
	" ON CONFLICT ON CONSTRAINT streams_pkey DO UPDATE SET last_seq = s.last_seq + $2" \
	" RETURNING s.last_seq, s.id"

static SPIPlanPtr stream_first_plan = NULL;

static int64 stream_first_seqs(Datum stream, int64 n, int64 *stream_id);
static bool outbox_announce_enabled(Relation outbox);
static void outbox_check_kind(const char *kind);
static int64 stream_position(Datum stream);

/*
 * outbox_check_kind is the outbox's CHECK on kind (its rows are written
 * without the executor).
 */
static void
outbox_check_kind(const char *kind)
{
	if (kind[0] == '\0' || strpbrk(kind, "\r\n") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("new row for relation \"%s\" violates check constraint \"%s\"",
						"outbox", "outbox_kind_check"),
				 errhint("A message kind is not empty and has no line breaks.")));
}

/*
 * herald_stream_append_many appends n messages to stream, in order (message
 * i: kinds[i], datas[i], a text Datum), exactly as herald.send_many does, and
 * returns the last one's seq: the next n seqs under the lock of the stream's
 * row in herald.streams (held until commit, so seq order is commit order,
 * without holes), the outbox rows, and the doorbell. It writes the tables
 * directly (tablewrite.c), which makes a message several times cheaper than
 * a statement; the outbox's triggers do not fire, so the doorbell is rung
 * here (when the outbox_announce trigger is enabled), and the foreign key to
 * the stream's row is not checked: that row is the one this transaction has
 * just locked. The caller needs the privileges the statements would need
 * (42501 otherwise).
 */
int64
herald_stream_append_many(const char *stream, int n, const char *const *kinds,
						  const Datum *datas)
{
	Datum		stream_datum = CStringGetTextDatum(stream);
	HeraldTable streams;
	HeraldTable outbox;
	Datum	   *values;
	bool	   *nulls;
	int64		seq;
	int64		stream_id;
	int			att_last;
	int			att_id;
	bool		announce;
	int			i;

	Assert(n > 0);
	for (i = 0; i < n; i++)
		outbox_check_kind(kinds[i]);

	herald_table_open(&outbox, "outbox", ACL_INSERT);

	/* see the rows this transaction wrote so far, e.g. this stream's row */
	CommandCounterIncrement();

	herald_table_open(&streams, "streams", ACL_SELECT | ACL_UPDATE);
	att_last = herald_attnum(streams.rel, "last_seq");
	att_id = herald_attnum(streams.rel, "id");
	for (;;)
	{
		HeapTuple	old;
		Datum		value;
		bool		isnull;
		bool		notnull = false;

		if (!herald_table_fetch_row(&streams, stream_datum))
		{
			seq = stream_first_seqs(stream_datum, n, &stream_id);
			break;
		}
		old = ExecFetchSlotHeapTuple(streams.slot, false, NULL);
		stream_id = DatumGetInt64(heap_getattr(old, att_id, RelationGetDescr(streams.rel), &isnull));
		value = heap_getattr(old, att_last, RelationGetDescr(streams.rel), &isnull);
		seq = (isnull ? 0 : DatumGetInt64(value)) + n;
		value = Int64GetDatum(seq);
		if (herald_table_update(&streams,
								heap_modify_tuple_by_cols(old, RelationGetDescr(streams.rel),
														  1, &att_last, &value, &notnull)))
			break;
		/* another transaction took a seq meanwhile: take the next ones */
	}
	herald_table_close(&streams);

	announce = outbox_announce_enabled(outbox.rel);
	herald_table_new_row(&outbox, &values, &nulls);
	herald_table_set(&outbox, values, nulls, "stream_id", Int64GetDatum(stream_id));
	herald_table_set(&outbox, values, nulls, "created_at",
					 TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()));
	for (i = 0; i < n; i++)
	{
		int64		row_seq = seq - n + 1 + i;

		herald_table_set(&outbox, values, nulls, "seq", Int64GetDatum(row_seq));
		herald_table_set(&outbox, values, nulls, "kind", CStringGetTextDatum(kinds[i]));
		herald_table_set(&outbox, values, nulls, "data", datas[i]);
		herald_table_insert(&outbox, values, nulls);
		if (announce)
			herald_announce_message(stream, row_seq, kinds[i], datas[i]);
	}
	herald_table_close(&outbox);
	return seq;
}

/* herald_stream_append appends one message: herald_stream_append_many. */
int64
herald_stream_append(const char *stream, const char *kind, Datum data)
{
	return herald_stream_append_many(stream, 1, &kind, &data);
}

/*
 * outbox_announce_enabled tells whether the outbox's doorbell trigger
 * (outbox_announce) would fire for a row inserted now: disabling it
 * (ALTER TABLE herald.outbox DISABLE TRIGGER outbox_announce) silences the
 * doorbell of herald_stream_append's messages too.
 */
static bool
outbox_announce_enabled(Relation outbox)
{
	TriggerDesc *trigdesc = outbox->trigdesc;
	int			i;

	for (i = 0; trigdesc != NULL && i < trigdesc->numtriggers; i++)
	{
		Trigger    *trigger = &trigdesc->triggers[i];

		if (strcmp(trigger->tgname, "outbox_announce") != 0)
			continue;
		if (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA)
			return trigger->tgenabled == TRIGGER_FIRES_ON_REPLICA ||
				trigger->tgenabled == TRIGGER_FIRES_ALWAYS;
		return trigger->tgenabled == TRIGGER_FIRES_ON_ORIGIN ||
			trigger->tgenabled == TRIGGER_FIRES_ALWAYS;
	}
	return false;
}

/*
 * stream_first_seqs takes the next n seqs of a stream that had no row when
 * we looked (its first messages, or a race with another first message),
 * returns the last one and sets *stream_id.
 */
static int64
stream_first_seqs(Datum stream, int64 n, int64 *stream_id)
{
	Datum		values[2] = {stream, Int64GetDatum(n)};
	bool		isnull;
	int64		seq;
	int			rc;

	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	if (stream_first_plan == NULL)
	{
		Oid			argtypes[2] = {TEXTOID, INT8OID};
		SPIPlanPtr	plan = SPI_prepare(STREAM_FIRST_SQL, 2, argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		stream_first_plan = plan;
	}
	rc = SPI_execute_plan(stream_first_plan, values, NULL, false, 1);
	if (rc != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "herald_stream_append: SPI_execute_plan returned %s",
			 SPI_result_code_string(rc));
	seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
									  1, &isnull));
	*stream_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
											 2, &isnull));
	SPI_finish();
	return seq;
}

/*
 * herald_send implements herald.send(stream text, data text, kind text)
 * RETURNS bigint: herald_stream_append with SQL's errors for missing
 * arguments.
 */
Datum
herald_send(PG_FUNCTION_ARGS)
{
	/* as the NOT NULL constraints of the streams and outbox rows would say */
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("null value in column \"%s\" of relation \"%s\" violates not-null constraint",
						PG_ARGISNULL(0) ? "stream" : PG_ARGISNULL(1) ? "data" : "kind",
						PG_ARGISNULL(0) ? "streams" : "outbox")));
	PG_RETURN_INT64(herald_stream_append(text_to_cstring(PG_GETARG_TEXT_PP(0)),
										 text_to_cstring(PG_GETARG_TEXT_PP(2)),
										 PointerGetDatum(PG_GETARG_TEXT_P(1))));
}

/*
 * herald_send_many implements herald.send_many(stream text, data text[],
 * kinds text[]) RETURNS bigint: herald_stream_append_many of every element,
 * in order, data[i] with kind kinds[i]; the stream's position when data is
 * empty. SQL's errors for missing values.
 */
Datum
herald_send_many(PG_FUNCTION_ARGS)
{
	Datum	   *datas = NULL;
	Datum	   *kind_datums = NULL;
	bool	   *data_nulls = NULL;
	bool	   *kind_nulls = NULL;
	int			n = 0;
	int			nkinds = 0;
	const char **kinds;
	char	   *stream;
	int			i;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("null value in column \"%s\" of relation \"%s\" violates not-null constraint",
						"stream", "streams")));
	stream = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (!PG_ARGISNULL(1))
		deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), TEXTOID, -1, false, TYPALIGN_INT,
						  &datas, &data_nulls, &n);
	if (!PG_ARGISNULL(2))
		deconstruct_array(PG_GETARG_ARRAYTYPE_P(2), TEXTOID, -1, false, TYPALIGN_INT,
						  &kind_datums, &kind_nulls, &nkinds);
	if (n != nkinds)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("data and kinds must have the same length")));
	if (n == 0)
		PG_RETURN_INT64(stream_position(PG_GETARG_DATUM(0)));

	kinds = palloc(sizeof(char *) * n);
	for (i = 0; i < n; i++)
	{
		if (data_nulls[i] || kind_nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("null value in column \"%s\" of relation \"%s\" violates not-null constraint",
							data_nulls[i] ? "data" : "kind", "outbox")));
		kinds[i] = TextDatumGetCString(kind_datums[i]);
	}
	PG_RETURN_INT64(herald_stream_append_many(stream, n, kinds, datas));
}

/*
 * stream_position is herald.stream_position(stream): the seq of the
 * stream's last committed message, 0 if none.
 */
static int64
stream_position(Datum stream)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1] = {stream};
	bool		isnull;
	int64		seq;
	int			rc;

	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	rc = SPI_execute_with_args("SELECT herald.stream_position($1)", 1, argtypes, values,
							   NULL, true, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "herald.stream_position failed: %s", SPI_result_code_string(rc));
	seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return seq;
}
