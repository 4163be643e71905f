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
#include "utils/builtins.h"
#include "utils/reltrigger.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(herald_outbox_retention_interval);
PG_FUNCTION_INFO_V1(herald_send);

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
 * STREAM_FIRST_SQL takes the next seq of a stream that may not have a row in
 * herald.streams yet, as herald.send does (sql/install/30_outbox.sql): two
 * first messages of one stream may race, and ON CONFLICT settles it.
 */
#define STREAM_FIRST_SQL \
	"INSERT INTO herald.streams AS s (stream, last_seq) VALUES ($1, 1)" \
	" ON CONFLICT ON CONSTRAINT streams_pkey DO UPDATE SET last_seq = s.last_seq + 1" \
	" RETURNING s.last_seq"

static SPIPlanPtr stream_first_plan = NULL;

static int64 stream_first_seq(Datum stream);
static bool outbox_announce_enabled(Relation outbox);

/*
 * herald_stream_append appends a message (data: a text Datum) of kind to
 * stream, exactly as herald.send does, and returns its seq: the next seq
 * under the lock of the stream's row in herald.streams (held until commit,
 * so seq order is commit order, without holes), the outbox row, and the
 * doorbell. It writes the tables directly (tablewrite.c), which makes a
 * message several times cheaper than a statement; the outbox trigger does
 * not fire, so the doorbell is rung here (when that trigger is enabled). The
 * caller needs the privilege the outbox INSERT would need (42501 otherwise).
 */
int64
herald_stream_append(const char *stream, const char *kind, Datum data)
{
	Datum		stream_datum = CStringGetTextDatum(stream);
	HeraldTable streams;
	HeraldTable outbox;
	Datum	   *values;
	bool	   *nulls;
	int64		seq;
	int			att_last;

	/* the outbox's CHECK on kind (its row is written without the executor) */
	if (kind[0] == '\0' || strpbrk(kind, "\r\n") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("new row for relation \"%s\" violates check constraint \"%s\"",
						"outbox", "outbox_kind_check"),
				 errhint("A message kind is not empty and has no line breaks.")));

	herald_table_open(&outbox, "outbox", ACL_INSERT);

	/* see the rows this transaction wrote so far, e.g. this stream's row */
	CommandCounterIncrement();

	herald_table_open(&streams, "streams", ACL_SELECT | ACL_UPDATE);
	att_last = herald_attnum(streams.rel, "last_seq");
	for (;;)
	{
		HeapTuple	old;
		Datum		value;
		bool		isnull;
		bool		notnull = false;

		if (!herald_table_fetch_row(&streams, stream_datum))
		{
			seq = stream_first_seq(stream_datum);
			break;
		}
		old = ExecFetchSlotHeapTuple(streams.slot, false, NULL);
		value = heap_getattr(old, att_last, RelationGetDescr(streams.rel), &isnull);
		seq = (isnull ? 0 : DatumGetInt64(value)) + 1;
		value = Int64GetDatum(seq);
		if (herald_table_update(&streams,
								heap_modify_tuple_by_cols(old, RelationGetDescr(streams.rel),
														  1, &att_last, &value, &notnull)))
			break;
		/* another transaction took a seq meanwhile: take the next one */
	}
	herald_table_close(&streams);

	herald_table_new_row(&outbox, &values, &nulls);
	herald_table_set(&outbox, values, nulls, "stream", stream_datum);
	herald_table_set(&outbox, values, nulls, "seq", Int64GetDatum(seq));
	herald_table_set(&outbox, values, nulls, "kind", CStringGetTextDatum(kind));
	herald_table_set(&outbox, values, nulls, "data", data);
	herald_table_set(&outbox, values, nulls, "created_at",
					 TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()));
	herald_table_insert(&outbox, values, nulls);
	if (outbox_announce_enabled(outbox.rel))
		herald_announce_message(stream, seq, kind, data);
	herald_table_close(&outbox);
	return seq;
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
 * stream_first_seq takes the next seq of a stream that had no row when we
 * looked (its first message, or a race with another first message).
 */
static int64
stream_first_seq(Datum stream)
{
	Datum		values[1] = {stream};
	bool		isnull;
	int64		seq;
	int			rc;

	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	if (stream_first_plan == NULL)
	{
		Oid			argtypes[1] = {TEXTOID};
		SPIPlanPtr	plan = SPI_prepare(STREAM_FIRST_SQL, 1, argtypes);

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
