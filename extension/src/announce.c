/*-------------------------------------------------------------------------
 *
 * announce.c
 *	  The doorbell: one NOTIFY on channel "herald" per stream per transaction.
 *
 * Every row inserted into herald.outbox fires herald_outbox_announce (an
 * AFTER INSERT row trigger, sql/install/40_announce.sql), which records the
 * message in a per-transaction list kept in TopTransactionContext. Nothing is
 * sent then: at XACT_EVENT_PRE_COMMIT, which CommitTransaction runs after the
 * deferred triggers and before PreCommit_Notify, the list is folded into one
 * payload per stream and handed to the background worker through the
 * doorbell ring (doorbell.c), which rings them once the transaction has
 * committed; or, when the worker cannot take them, to Async_Notify, and
 * PostgreSQL delivers them if, and only if, the transaction commits.
 *
 * The list is a sequence of "runs": consecutive messages of one stream sent
 * by one subtransaction share a run (a thousand-row INSERT is one run, one
 * notification). Each run remembers the subtransaction that created it.
 * SubTransactionIds grow with time, so when a subtransaction aborts, the runs
 * it and its children created are exactly the tail of the list whose subid is
 * at least the aborted one: dropping that tail forgets rolled-back messages.
 *
 * Payload (compact JSON), the contract with the sidecar:
 *	 {"stream":"user:demo","seq":7,"kind":"message","data":"..."}
 *		when the transaction added exactly one message to the stream and the
 *		whole payload is shorter than HERALD_INLINE_MAX bytes;
 *	 {"stream":"user:demo","seq":9,"count":3}
 *		otherwise; seq is the highest of the transaction, and the listener
 *		reads the messages from the outbox.
 *
 *-------------------------------------------------------------------------
 */
#include "herald.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/detoast.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "catalog/pg_type.h"

/* NOTIFY payloads must stay below 8000 bytes; keep a margin. */
#define HERALD_INLINE_MAX 7900

/*
 * AnnounceRun is a group of consecutive messages of one stream, inserted by
 * one subtransaction.
 */
typedef struct AnnounceRun
{
	char	   *stream;			/* stream name */
	int64		max_seq;		/* highest seq of the run */
	int64		count;			/* messages in the run */
	char	   *kind;			/* kind of the only message, when count = 1 */
	char	   *data;			/* data of the only message, when count = 1
								 * and it is small enough to inline; else
								 * NULL */
	SubTransactionId subid;		/* subtransaction that inserted the run */
} AnnounceRun;

/* The current transaction's runs, in TopTransactionContext; NULL when none. */
static AnnounceRun *announce_runs = NULL;
static int	announce_nruns = 0;
static int	announce_maxruns = 0;

static void herald_announce_xact_callback(XactEvent event, void *arg);
static void herald_announce_subxact_callback(SubXactEvent event,
											 SubTransactionId mySubid,
											 SubTransactionId parentSubid,
											 void *arg);
static void herald_announce_flush(void);
static char *announce_stream_name(int64 stream_id);
static void herald_announce_reset(void);
static int	herald_announce_run_cmp(const void *a, const void *b);

PG_FUNCTION_INFO_V1(herald_outbox_announce);

/*
 * herald_announce_register_callbacks installs the transaction callbacks of
 * this backend; _PG_init calls it once per backend.
 */
void
herald_announce_register_callbacks(void)
{
	RegisterXactCallback(herald_announce_xact_callback, NULL);
	RegisterSubXactCallback(herald_announce_subxact_callback, NULL);
}

/*
 * herald_outbox_announce is the AFTER INSERT row trigger of herald.outbox:
 * it records the new message for the commit-time doorbell.
 */
Datum
herald_outbox_announce(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	tupdesc;
	HeapTuple	tuple;
	int			att_stream_id,
				att_seq,
				att_kind,
				att_data;
	bool		isnull;
	Datum		stream_id,
				seq,
				kind,
				data;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("herald_outbox_announce must be called as a trigger")));
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("herald_outbox_announce must be fired AFTER INSERT FOR EACH ROW")));

	tupdesc = trigdata->tg_relation->rd_att;
	tuple = trigdata->tg_trigtuple;
	att_stream_id = SPI_fnumber(tupdesc, "stream_id");
	att_seq = SPI_fnumber(tupdesc, "seq");
	att_kind = SPI_fnumber(tupdesc, "kind");
	att_data = SPI_fnumber(tupdesc, "data");
	if (att_stream_id <= 0 || att_seq <= 0 || att_kind <= 0 || att_data <= 0)
		elog(ERROR, "herald_outbox_announce: table \"%s\" lacks a column of the outbox",
			 RelationGetRelationName(trigdata->tg_relation));

	stream_id = heap_getattr(tuple, att_stream_id, tupdesc, &isnull);
	if (isnull)
		PG_RETURN_POINTER(NULL);
	seq = heap_getattr(tuple, att_seq, tupdesc, &isnull);
	if (isnull)
		PG_RETURN_POINTER(NULL);
	kind = heap_getattr(tuple, att_kind, tupdesc, &isnull);
	if (isnull)
		PG_RETURN_POINTER(NULL);
	data = heap_getattr(tuple, att_data, tupdesc, &isnull);
	if (isnull)
		data = PointerGetDatum(NULL);

	herald_announce_message(announce_stream_name(DatumGetInt64(stream_id)),
							DatumGetInt64(seq), TextDatumGetCString(kind), data);

	PG_RETURN_POINTER(NULL);
}

/*
 * announce_stream_name returns the name of the stream numbered stream_id
 * (the outbox names streams by number): for rows inserted into the outbox by
 * a statement, whose foreign key check, an earlier AFTER trigger, has found
 * the stream. herald.send and send_many ring their doorbells themselves.
 */
static char *
announce_stream_name(int64 stream_id)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(stream_id)};
	char	   *value;
	char	   *name;
	int			rc;

	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	rc = SPI_execute_with_args("SELECT stream FROM herald.streams WHERE id = $1", 1,
							   argtypes, values, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the stream of an outbox row failed: %s",
			 SPI_result_code_string(rc));
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("outbox row of stream " INT64_FORMAT ", which does not exist",
						stream_id)));
	value = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	name = SPI_palloc(strlen(value) + 1);	/* in the caller's context */
	strcpy(name, value);
	SPI_finish();
	return name;
}

/*
 * herald_announce_message adds one message to the transaction's runs (the
 * outbox trigger calls it for every row; C code that writes the outbox
 * without the executor, herald_stream_append, calls it itself). The
 * data is copied only when it may be inlined; a large (possibly toasted)
 * value is never detoasted here.
 */
void
herald_announce_message(const char *stream, int64 seq, const char *kind,
						Datum data)
{
	SubTransactionId subid = GetCurrentSubTransactionId();
	MemoryContext oldcxt;
	AnnounceRun *run;

	if (announce_nruns > 0)
	{
		run = &announce_runs[announce_nruns - 1];
		if (run->subid == subid && strcmp(run->stream, stream) == 0)
		{
			run->count++;
			if (seq > run->max_seq)
				run->max_seq = seq;
			if (run->data)
				pfree(run->data);
			run->data = NULL;
			return;
		}
	}

	oldcxt = MemoryContextSwitchTo(TopTransactionContext);
	if (announce_nruns == announce_maxruns)
	{
		announce_maxruns = announce_maxruns ? announce_maxruns * 2 : 8;
		if (announce_runs)
			announce_runs = repalloc(announce_runs,
									 sizeof(AnnounceRun) * announce_maxruns);
		else
			announce_runs = palloc(sizeof(AnnounceRun) * announce_maxruns);
	}
	run = &announce_runs[announce_nruns++];
	run->stream = pstrdup(stream);
	run->max_seq = seq;
	run->count = 1;
	run->kind = pstrdup(kind);
	run->data = NULL;
	run->subid = subid;
	if (DatumGetPointer(data) != NULL &&
		toast_raw_datum_size(data) < HERALD_INLINE_MAX)
		run->data = TextDatumGetCString(data);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * herald_announce_run_cmp orders runs by stream, so that the runs of one
 * stream are adjacent.
 */
static int
herald_announce_run_cmp(const void *a, const void *b)
{
	const AnnounceRun *ra = (const AnnounceRun *) a;
	const AnnounceRun *rb = (const AnnounceRun *) b;

	return strcmp(ra->stream, rb->stream);
}

/*
 * herald_announce_flush folds the runs into one payload per stream and
 * hands them to the worker through the doorbell ring (doorbell.c), or, when
 * that is not possible, queues each with Async_Notify. Called at pre-commit,
 * while the transaction can still fail (a full notification queue makes the
 * commit fail, as it would for a NOTIFY command) and still holds its streams'
 * row locks (so that the ring receives one stream's doorbells in seq order).
 */
static void
herald_announce_flush(void)
{
	StringInfoData buf;
	StringInfoData all;			/* the payloads, each NUL-terminated */
	int			npayloads = 0;
	int			i;

	if (announce_nruns > 1)
		qsort(announce_runs, announce_nruns, sizeof(AnnounceRun),
			  herald_announce_run_cmp);

	initStringInfo(&buf);
	initStringInfo(&all);
	i = 0;
	while (i < announce_nruns)
	{
		AnnounceRun *first = &announce_runs[i];
		int64		max_seq = first->max_seq;
		int64		count = first->count;
		int			j = i + 1;

		while (j < announce_nruns &&
			   strcmp(announce_runs[j].stream, first->stream) == 0)
		{
			if (announce_runs[j].max_seq > max_seq)
				max_seq = announce_runs[j].max_seq;
			count += announce_runs[j].count;
			j++;
		}

		resetStringInfo(&buf);
		if (count == 1 && first->data != NULL)
		{
			appendStringInfoString(&buf, "{\"stream\":");
			escape_json(&buf, first->stream);
			appendStringInfo(&buf, ",\"seq\":" INT64_FORMAT ",\"kind\":", max_seq);
			escape_json(&buf, first->kind);
			appendStringInfoString(&buf, ",\"data\":");
			escape_json(&buf, first->data);
			appendStringInfoChar(&buf, '}');
		}
		if (buf.len == 0 || buf.len >= HERALD_INLINE_MAX)
		{
			resetStringInfo(&buf);
			appendStringInfoString(&buf, "{\"stream\":");
			escape_json(&buf, first->stream);
			appendStringInfo(&buf, ",\"seq\":" INT64_FORMAT ",\"count\":" INT64_FORMAT "}",
							 max_seq, count);
		}
		appendBinaryStringInfo(&all, buf.data, buf.len + 1);	/* with its NUL */
		npayloads++;
		i = j;
	}
	pfree(buf.data);

	if (!herald_doorbell_reserve(all.data, all.len, npayloads))
	{
		const char *p = all.data;

		for (i = 0; i < npayloads; i++)
		{
			Async_Notify(HERALD_CHANNEL, p);
			p += strlen(p) + 1;
		}
	}
	pfree(all.data);
}

/*
 * herald_announce_reset forgets the runs; their memory belongs to
 * TopTransactionContext and goes with it.
 */
static void
herald_announce_reset(void)
{
	announce_runs = NULL;
	announce_nruns = 0;
	announce_maxruns = 0;
}

/*
 * herald_announce_xact_callback rings the doorbells just before commit and
 * forgets them at the end of every transaction.
 */
static void
herald_announce_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (announce_nruns > 0)
				herald_announce_flush();
			herald_announce_reset();
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (announce_nruns > 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that has sent herald messages"),
						 errdetail("Herald announces messages when their transaction commits.")));
			break;
		case XACT_EVENT_COMMIT:
			herald_doorbell_commit();
			herald_announce_reset();
			break;
		case XACT_EVENT_ABORT:
			herald_doorbell_abort();
			herald_announce_reset();
			break;
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			herald_announce_reset();
			break;
		default:
			break;
	}
}

/*
 * herald_announce_subxact_callback forgets the messages of an aborted
 * subtransaction (and of its children): the tail of runs whose subid is at
 * least the aborted one's.
 */
static void
herald_announce_subxact_callback(SubXactEvent event,
								 SubTransactionId mySubid,
								 SubTransactionId parentSubid,
								 void *arg)
{
	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	while (announce_nruns > 0 &&
		   announce_runs[announce_nruns - 1].subid >= mySubid)
		announce_nruns--;
}
