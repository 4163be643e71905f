/*-------------------------------------------------------------------------
 *
 * transitions.c
 *	  The report state machine, enforced on every path that writes
 *	  herald.reports.
 *
 * herald_report_guard is the BEFORE INSERT OR UPDATE row trigger of
 * herald.reports (sql/install/10_reports.sql). A report is born "pending" at
 * version 1; afterwards each UPDATE of a report is a transition and must be
 * one of the eight of the table below, whatever the client: herald.transition()
 * and a plain "UPDATE herald.reports SET status = ..." are checked alike. An
 * accepted transition gets the next version and the current time; the AFTER
 * trigger herald_report_record then writes the history row and the owner's
 * stream message (as herald.send would: its seq, outbox row and doorbell),
 * with one saved plan.
 *
 * Since every UPDATE of a row is a transition, an UPDATE that keeps the
 * status is refused too (the six "x -> x" pairs are not in the table), and
 * the id and the owner of a report never change.
 *
 * Concurrency: an UPDATE locks the row; in READ COMMITTED a second writer
 * waits, then this trigger sees the version the first one committed, so each
 * transition is validated against the latest state.
 *
 *-------------------------------------------------------------------------
 */
#include "herald.h"

#include "access/htup_details.h"
#include "catalog/pg_enum.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "herald_errcodes.h"

/* ReportStatus numbers the values of the enum herald.report_status. */
typedef enum ReportStatus
{
	REPORT_PENDING,
	REPORT_QUEUED,
	REPORT_PROCESSING,
	REPORT_COMPLETED,
	REPORT_FAILED,
	REPORT_CANCELED,
	REPORT_NSTATUS
} ReportStatus;

static const char *const report_status_names[REPORT_NSTATUS] = {
	"pending", "queued", "processing", "completed", "failed", "canceled"
};

/*
 * report_allowed[from][to] is the transition table of seed 000, and nothing
 * else: "completed" is terminal.
 */
static const bool report_allowed[REPORT_NSTATUS][REPORT_NSTATUS] = {
	/* from pending: queued, canceled */
	[REPORT_PENDING] = {[REPORT_QUEUED] = true,[REPORT_CANCELED] = true},
	/* from queued: processing, canceled */
	[REPORT_QUEUED] = {[REPORT_PROCESSING] = true,[REPORT_CANCELED] = true},
	/* from processing: completed, failed */
	[REPORT_PROCESSING] = {[REPORT_COMPLETED] = true,[REPORT_FAILED] = true},
	/* from failed and canceled: back to pending */
	[REPORT_FAILED] = {[REPORT_PENDING] = true},
	[REPORT_CANCELED] = {[REPORT_PENDING] = true},
};

/*
 * record_plan is herald_report_record's statement, prepared once per
 * backend. (A saved plan is re-analyzed by the plan cache when the objects
 * it uses change, e.g. after DROP and CREATE EXTENSION.)
 */
static SPIPlanPtr record_plan = NULL;

/*
 * RECORD_SQL is one statement: the history row, then the message, appended
 * exactly as herald.send does it (sql/install/30_outbox.sql: the next seq
 * under the stream row's lock, then the outbox row, whose trigger rings the
 * doorbell). Inlined rather than calling herald.send: one executor run per
 * transition instead of three. The outer query returns the new seq.
 */
#define RECORD_SQL \
	"WITH history AS (" \
	"  INSERT INTO herald.report_history (report, version, from_status, to_status, at)" \
	"  VALUES ($1, $2, $3::herald.report_status, $4::herald.report_status, $5))," \
	" next AS (" \
	"  INSERT INTO herald.streams AS s (stream, last_seq) VALUES ($6, 1)" \
	"  ON CONFLICT ON CONSTRAINT streams_pkey DO UPDATE SET last_seq = s.last_seq + 1" \
	"  RETURNING s.last_seq)" \
	" INSERT INTO herald.outbox (stream, seq, kind, data)" \
	" SELECT $6, next.last_seq, 'report_status_update', $7 FROM next"

static ReportStatus report_status_of(Oid enumoid);
static char *report_allowed_targets(ReportStatus from);
static int	report_attnum(TupleDesc tupdesc, const char *name);

PG_FUNCTION_INFO_V1(herald_report_guard);
PG_FUNCTION_INFO_V1(herald_report_record);

/*
 * report_status_of maps a value of the enum herald.report_status (its
 * pg_enum OID) to a ReportStatus.
 */
static ReportStatus
report_status_of(Oid enumoid)
{
	HeapTuple	tup;
	Form_pg_enum en;
	int			i;

	tup = SearchSysCache1(ENUMOID, ObjectIdGetDatum(enumoid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for enum value %u", enumoid);
	en = (Form_pg_enum) GETSTRUCT(tup);
	for (i = 0; i < REPORT_NSTATUS; i++)
	{
		if (strcmp(NameStr(en->enumlabel), report_status_names[i]) == 0)
			break;
	}
	ReleaseSysCache(tup);
	if (i == REPORT_NSTATUS)
		elog(ERROR, "unknown report status (enum value %u)", enumoid);
	return (ReportStatus) i;
}

/*
 * report_allowed_targets lists, for a hint, the statuses a report in status
 * "from" may move to.
 */
static char *
report_allowed_targets(ReportStatus from)
{
	StringInfoData buf;
	int			to;

	initStringInfo(&buf);
	for (to = 0; to < REPORT_NSTATUS; to++)
	{
		if (!report_allowed[from][to])
			continue;
		if (buf.len > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfo(&buf, "\"%s\"", report_status_names[to]);
	}
	return buf.data;
}

/*
 * report_attnum returns the attribute number of a column of herald.reports.
 */
static int
report_attnum(TupleDesc tupdesc, const char *name)
{
	int			attnum = SPI_fnumber(tupdesc, name);

	if (attnum <= 0)
		elog(ERROR, "herald_report_guard: column \"%s\" not found", name);
	return attnum;
}

/*
 * herald_report_guard enforces the state machine on herald.reports (BEFORE
 * INSERT OR UPDATE FOR EACH ROW): it refuses a new report whose status is
 * not "pending" and every UPDATE that is not an allowed transition, with
 * SQLSTATE HR001; it sets version and updated_at of the accepted row.
 */
Datum
herald_report_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	tupdesc;
	HeapTuple	newtuple;
	int			att_id,
				att_owner,
				att_status,
				att_version,
				att_created,
				att_updated;
	int			cols[3];
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	Datum		d;
	bool		isnull;
	ReportStatus to;
	TimestampTz now = GetCurrentTransactionStartTimestamp();

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("herald_report_guard must be called as a trigger")));
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("herald_report_guard must be fired BEFORE INSERT OR UPDATE FOR EACH ROW")));

	tupdesc = trigdata->tg_relation->rd_att;
	att_id = report_attnum(tupdesc, "id");
	att_owner = report_attnum(tupdesc, "owner");
	att_status = report_attnum(tupdesc, "status");
	att_version = report_attnum(tupdesc, "version");
	att_created = report_attnum(tupdesc, "created_at");
	att_updated = report_attnum(tupdesc, "updated_at");

	newtuple = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ?
		trigdata->tg_trigtuple : trigdata->tg_newtuple;

	d = heap_getattr(newtuple, att_status, tupdesc, &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("report status cannot be null")));
	to = report_status_of(DatumGetObjectId(d));

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		if (to != REPORT_PENDING)
		{
			Datum		id = heap_getattr(newtuple, att_id, tupdesc, &isnull);

			ereport(ERROR,
					(errcode(ERRCODE_HERALD_INVALID_TRANSITION),
					 errmsg("report %s cannot be created with status \"%s\"",
							isnull ? "(null)" : DatumGetCString(DirectFunctionCall1(uuid_out, id)),
							report_status_names[to]),
					 errhint("A new report starts as \"pending\".")));
		}
		cols[0] = att_version;
		values[0] = Int32GetDatum(1);
		cols[1] = att_created;
		values[1] = TimestampTzGetDatum(now);
		cols[2] = att_updated;
		values[2] = TimestampTzGetDatum(now);
		newtuple = heap_modify_tuple_by_cols(newtuple, tupdesc, 3, cols,
											 values, nulls);
	}
	else
	{
		HeapTuple	oldtuple = trigdata->tg_trigtuple;
		Datum		old_id,
					new_id;
		bool		old_null,
					new_null;
		ReportStatus from;
		int32		version;

		old_id = heap_getattr(oldtuple, att_id, tupdesc, &old_null);
		new_id = heap_getattr(newtuple, att_id, tupdesc, &new_null);
		if (old_null || new_null ||
			DatumGetBool(DirectFunctionCall2(uuid_ne, old_id, new_id)))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("the id of a report cannot change")));
		d = heap_getattr(newtuple, att_owner, tupdesc, &new_null);
		if (new_null ||
			DatumGetBool(DirectFunctionCall2(uuid_ne,
											 heap_getattr(oldtuple, att_owner, tupdesc, &old_null),
											 d)))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("the owner of report %s cannot change",
							DatumGetCString(DirectFunctionCall1(uuid_out, old_id)))));

		d = heap_getattr(oldtuple, att_status, tupdesc, &isnull);
		if (isnull)
			elog(ERROR, "report without a status");
		from = report_status_of(DatumGetObjectId(d));

		if (!report_allowed[from][to])
		{
			char	   *targets = report_allowed_targets(from);

			ereport(ERROR,
					(errcode(ERRCODE_HERALD_INVALID_TRANSITION),
					 errmsg("invalid transition for report %s from \"%s\" to \"%s\"",
							DatumGetCString(DirectFunctionCall1(uuid_out, old_id)),
							report_status_names[from], report_status_names[to]),
					 targets[0] != '\0' ?
					 errhint("A \"%s\" report can move to %s.",
							 report_status_names[from], targets) :
					 errhint("\"%s\" is a terminal status.",
							 report_status_names[from])));
		}

		d = heap_getattr(oldtuple, att_version, tupdesc, &isnull);
		version = isnull ? 0 : DatumGetInt32(d);
		cols[0] = att_version;
		values[0] = Int32GetDatum(version + 1);
		cols[1] = att_created;
		values[1] = heap_getattr(oldtuple, att_created, tupdesc, &nulls[1]);
		cols[2] = att_updated;
		values[2] = TimestampTzGetDatum(now);
		newtuple = heap_modify_tuple_by_cols(newtuple, tupdesc, 3, cols,
											 values, nulls);
	}

	return PointerGetDatum(newtuple);
}

/*
 * herald_report_record is the AFTER INSERT OR UPDATE row trigger of
 * herald.reports: it records an accepted change (herald_report_guard has
 * checked it) as a history row and as a report_status_update message
 * {"id":"<report>","status":"<status>"} in the owner's stream
 * user:<owner>, in the same transaction.
 */
Datum
herald_report_record(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	tupdesc;
	HeapTuple	newtuple;
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	Datum		d;
	bool		isnull;
	char	   *id;
	char	   *owner;
	const char *to;
	StringInfoData buf;
	int			rc;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("herald_report_record must be called as a trigger")));
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("herald_report_record must be fired AFTER INSERT OR UPDATE FOR EACH ROW")));

	tupdesc = trigdata->tg_relation->rd_att;
	newtuple = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ?
		trigdata->tg_trigtuple : trigdata->tg_newtuple;

	/* $1 report, $2 version, $3 from, $4 to, $5 at, $6 stream, $7 data */
	values[0] = heap_getattr(newtuple, report_attnum(tupdesc, "id"), tupdesc, &isnull);
	id = DatumGetCString(DirectFunctionCall1(uuid_out, values[0]));
	values[1] = heap_getattr(newtuple, report_attnum(tupdesc, "version"), tupdesc, &isnull);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		d = heap_getattr(trigdata->tg_trigtuple, report_attnum(tupdesc, "status"),
						 tupdesc, &isnull);
		values[2] = CStringGetTextDatum(report_status_names[report_status_of(DatumGetObjectId(d))]);
	}
	else
	{
		values[2] = (Datum) 0;
		nulls[2] = 'n';
	}
	d = heap_getattr(newtuple, report_attnum(tupdesc, "status"), tupdesc, &isnull);
	to = report_status_names[report_status_of(DatumGetObjectId(d))];
	values[3] = CStringGetTextDatum(to);
	values[4] = heap_getattr(newtuple, report_attnum(tupdesc, "updated_at"), tupdesc, &isnull);
	d = heap_getattr(newtuple, report_attnum(tupdesc, "owner"), tupdesc, &isnull);
	owner = DatumGetCString(DirectFunctionCall1(uuid_out, d));
	values[5] = CStringGetTextDatum(psprintf("user:%s", owner));
	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"id\":\"%s\",\"status\":\"%s\"}", id, to);
	values[6] = CStringGetTextDatum(buf.data);

	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	if (record_plan == NULL)
	{
		Oid			argtypes[7] = {UUIDOID, INT4OID, TEXTOID, TEXTOID,
		TIMESTAMPTZOID, TEXTOID, TEXTOID};
		SPIPlanPtr	plan = SPI_prepare(RECORD_SQL, 7, argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		record_plan = plan;
	}
	rc = SPI_execute_plan(record_plan, values, nulls, false, 0);
	if (rc != SPI_OK_INSERT || SPI_processed != 1)
		elog(ERROR, "herald_report_record: SPI_execute_plan returned %s",
			 SPI_result_code_string(rc));
	SPI_finish();

	PG_RETURN_POINTER(NULL);
}
