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
 * stream message (as herald.send would: its seq, outbox row and doorbell).
 *
 * herald.transition() (herald_transition) does the same without the
 * executor: it locks the report's row as UPDATE would, checks the transition
 * with the same table, writes the new version and records it, all with the
 * one-row writers of tablewrite.c. That is the fast path; the triggers keep
 * every other path (plain UPDATE, INSERT, COPY) under the same rules.
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
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
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

static ReportStatus report_status_of(Oid enumoid);
static Oid	report_status_oid(Oid enumtype, ReportStatus status);
static void report_check_transition(Datum id, ReportStatus from, ReportStatus to);
static void report_record(Datum id, Datum owner, int32 version, Oid enumtype,
						  int from, ReportStatus to, TimestampTz at);
static char *report_allowed_targets(ReportStatus from);

PG_FUNCTION_INFO_V1(herald_report_guard);
PG_FUNCTION_INFO_V1(herald_report_record);
PG_FUNCTION_INFO_V1(herald_transition);

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
	att_id = herald_attnum(trigdata->tg_relation, "id");
	att_owner = herald_attnum(trigdata->tg_relation, "owner");
	att_status = herald_attnum(trigdata->tg_relation, "status");
	att_version = herald_attnum(trigdata->tg_relation, "version");
	att_created = herald_attnum(trigdata->tg_relation, "created_at");
	att_updated = herald_attnum(trigdata->tg_relation, "updated_at");

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

		report_check_transition(old_id, from, to);

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
 * report_status_oid returns the pg_enum OID of a status of the enum type
 * enumtype (herald.report_status).
 */
static Oid
report_status_oid(Oid enumtype, ReportStatus status)
{
	Oid			oid = GetSysCacheOid2(ENUMTYPOIDNAME, Anum_pg_enum_oid,
									  ObjectIdGetDatum(enumtype),
									  CStringGetDatum(report_status_names[status]));

	if (!OidIsValid(oid))
		elog(ERROR, "report status \"%s\" missing from enum %u",
			 report_status_names[status], enumtype);
	return oid;
}

/*
 * report_check_transition raises HR001 unless from -> to is one of the
 * eight transitions of the table.
 */
static void
report_check_transition(Datum id, ReportStatus from, ReportStatus to)
{
	char	   *targets;

	if (report_allowed[from][to])
		return;
	targets = report_allowed_targets(from);
	ereport(ERROR,
			(errcode(ERRCODE_HERALD_INVALID_TRANSITION),
			 errmsg("invalid transition for report %s from \"%s\" to \"%s\"",
					DatumGetCString(DirectFunctionCall1(uuid_out, id)),
					report_status_names[from], report_status_names[to]),
			 targets[0] != '\0' ?
			 errhint("A \"%s\" report can move to %s.",
					 report_status_names[from], targets) :
			 errhint("\"%s\" is a terminal status.",
					 report_status_names[from])));
}

/*
 * report_record records an accepted change of report id (owner's): the
 * history row (version, from, to, at; from < 0 for a creation) and the
 * message {"id":"<report>","status":"<to>"} of kind report_status_update in
 * the owner's stream user:<owner>, in the current transaction.
 *
 * The history row is written directly (tablewrite.c). Its foreign key's
 * check is not needed: the report it names is the row this transaction has
 * just inserted or updated, locked until commit.
 */
static void
report_record(Datum id, Datum owner, int32 version, Oid enumtype, int from,
			  ReportStatus to, TimestampTz at)
{
	HeraldTable history;
	Datum	   *values;
	bool	   *nulls;
	char	   *id_text = DatumGetCString(DirectFunctionCall1(uuid_out, id));
	char	   *owner_text = DatumGetCString(DirectFunctionCall1(uuid_out, owner));
	StringInfoData buf;

	herald_table_open(&history, "report_history", ACL_INSERT);
	herald_table_new_row(&history, &values, &nulls);
	herald_table_set(&history, values, nulls, "report", id);
	herald_table_set(&history, values, nulls, "version", Int32GetDatum(version));
	if (from >= 0)
		herald_table_set(&history, values, nulls, "from_status",
						 ObjectIdGetDatum(report_status_oid(enumtype, (ReportStatus) from)));
	herald_table_set(&history, values, nulls, "to_status",
					 ObjectIdGetDatum(report_status_oid(enumtype, to)));
	herald_table_set(&history, values, nulls, "at", TimestampTzGetDatum(at));
	herald_table_insert(&history, values, nulls);
	herald_table_close(&history);

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"id\":\"%s\",\"status\":\"%s\"}", id_text,
					 report_status_names[to]);
	herald_stream_append(psprintf("user:%s", owner_text), "report_status_update",
						 CStringGetTextDatum(buf.data));
}

/*
 * herald_report_record is the AFTER INSERT OR UPDATE row trigger of
 * herald.reports: it records an accepted change (herald_report_guard has
 * checked it) with report_record.
 */
Datum
herald_report_record(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	tupdesc;
	HeapTuple	newtuple;
	Datum		d;
	bool		isnull;
	int			from = -1;
	int			att_status;

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
	att_status = herald_attnum(trigdata->tg_relation, "status");
	newtuple = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ?
		trigdata->tg_trigtuple : trigdata->tg_newtuple;
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		d = heap_getattr(trigdata->tg_trigtuple, att_status, tupdesc, &isnull);
		from = (int) report_status_of(DatumGetObjectId(d));
	}
	d = heap_getattr(newtuple, att_status, tupdesc, &isnull);
	report_record(heap_getattr(newtuple, herald_attnum(trigdata->tg_relation, "id"), tupdesc, &isnull),
				  heap_getattr(newtuple, herald_attnum(trigdata->tg_relation, "owner"), tupdesc, &isnull),
				  DatumGetInt32(heap_getattr(newtuple, herald_attnum(trigdata->tg_relation, "version"),
											 tupdesc, &isnull)),
				  TupleDescAttr(tupdesc, att_status - 1)->atttypid,
				  from,
				  report_status_of(DatumGetObjectId(d)),
				  DatumGetTimestampTz(heap_getattr(newtuple, herald_attnum(trigdata->tg_relation, "updated_at"),
												   tupdesc, &isnull)));

	PG_RETURN_POINTER(NULL);
}

/*
 * herald_transition implements herald.transition(report uuid, new_status
 * text) RETURNS herald.reports: it moves the report to new_status and
 * returns it with its new version. Errors: a status outside the enum, 22023;
 * an unknown report, HR002; a transition outside the table, HR001.
 *
 * It does what "UPDATE herald.reports SET status = ..." does with the
 * guard and the recorder, without the executor (tablewrite.c): read the
 * row, check the transition, write the next version (waiting for a
 * concurrent transition; if that one committed, check again against the
 * state it left), record it.
 * The triggers of herald.reports do not fire for it; their work is done
 * here, by the same code.
 */
Datum
herald_transition(PG_FUNCTION_ARGS)
{
	char	   *status = NULL;
	ReportStatus from;
	ReportStatus to;
	HeraldTable reports;
	TupleDesc	tupdesc;
	HeapTuple	oldtuple;
	HeapTuple	newtuple;
	Datum		id;
	Datum		d;
	bool		isnull;
	int			cols[3];
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	int			att_status;
	int			att_version;
	int32		version;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	Datum		result;
	int			i;

	if (!PG_ARGISNULL(1))
		status = text_to_cstring(PG_GETARG_TEXT_PP(1));
	for (i = 0; status != NULL && i < REPORT_NSTATUS; i++)
	{
		if (strcmp(status, report_status_names[i]) == 0)
			break;
	}
	if (status == NULL || i == REPORT_NSTATUS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid report status: %s",
						status == NULL ? "NULL" :
						quote_literal_cstr(pnstrdup(status, pg_mbcharcliplen(status, strlen(status), 100)))),
				 errhint("A report status is one of pending, queued, processing, completed, failed, canceled.")));
	to = (ReportStatus) i;
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_HERALD_REPORT_NOT_FOUND),
				 errmsg("report NULL not found")));
	id = PG_GETARG_DATUM(0);

	herald_table_open(&reports, "reports", ACL_SELECT | ACL_UPDATE);
	tupdesc = RelationGetDescr(reports.rel);

	/* see this transaction's earlier changes, e.g. of this report */
	CommandCounterIncrement();
	att_status = herald_attnum(reports.rel, "status");
	att_version = herald_attnum(reports.rel, "version");
	cols[0] = att_status;
	cols[1] = att_version;
	cols[2] = herald_attnum(reports.rel, "updated_at");
	for (;;)
	{
		if (!herald_table_fetch_row(&reports, id))
			ereport(ERROR,
					(errcode(ERRCODE_HERALD_REPORT_NOT_FOUND),
					 errmsg("report %s not found",
							DatumGetCString(DirectFunctionCall1(uuid_out, id)))));
		oldtuple = ExecFetchSlotHeapTuple(reports.slot, false, NULL);
		d = heap_getattr(oldtuple, att_status, tupdesc, &isnull);
		if (isnull)
			elog(ERROR, "report without a status");
		from = report_status_of(DatumGetObjectId(d));
		if (!report_allowed[from][to])
		{
			/* refuse only on committed state: wait for a transition in flight */
			if (!herald_table_settle(&reports))
				continue;
			report_check_transition(id, from, to);
		}

		d = heap_getattr(oldtuple, att_version, tupdesc, &isnull);
		version = (isnull ? 0 : DatumGetInt32(d)) + 1;
		values[0] = ObjectIdGetDatum(report_status_oid(TupleDescAttr(tupdesc, att_status - 1)->atttypid, to));
		values[1] = Int32GetDatum(version);
		values[2] = TimestampTzGetDatum(now);
		newtuple = heap_modify_tuple_by_cols(oldtuple, tupdesc, 3, cols, values, nulls);
		if (herald_table_update(&reports, newtuple))
			break;
		/* a concurrent transition committed first: check against its result */
	}

	report_record(id, heap_getattr(newtuple, herald_attnum(reports.rel, "owner"), tupdesc, &isnull),
				  version, TupleDescAttr(tupdesc, att_status - 1)->atttypid,
				  (int) from, to, now);

	result = heap_copy_tuple_as_datum(newtuple, tupdesc);
	herald_table_close(&reports);
	PG_RETURN_DATUM(result);
}
