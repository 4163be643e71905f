/*-------------------------------------------------------------------------
 *
 * sessions.c
 *	  Session uploads (seed 002): herald.ingest_session_batch and
 *	  herald.ingest_session_batches, the functions behind GET /ws.
 *
 * The rules of a batch, and the reference implementation that enforces them,
 * are the plpgsql function herald.store_session_batch
 * (sql/install/60_sessions.sql). This file is its fast path, for the batches
 * that are well formed, which are nearly all of them: it reads the JSON text
 * with PostgreSQL's JSON parser (common/jsonapi.h, the parser behind jsonb's
 * input, with semantic actions of its own: no jsonb document is built), checks
 * the rules in one pass over the entries, and writes the session row with one
 * statement and the events the way COPY does, with their foreign keys
 * enforced per batch (see insert_events_direct); event ids, timestamps and the
 * database_events rows are made here.
 *
 * The fast path accepts only a subset of what the reference accepts, and
 * stores exactly what the reference would store. Whenever a batch is outside
 * that subset (any rule broken; JSON the parser refuses; JSON that is not
 * plain: a timestamp with a sign, a fraction or an exponent, keys other than
 * type, timestamp, session_id and name, a key given twice, a value that is
 * not a string or a number where those are due; an event name not yet known;
 * an empty batch), it is handed to herald.store_session_batch in the same
 * (sub)transaction, before anything was written: that either stores the batch
 * or raises the error the client sees. So answers and errors are the
 * reference's by construction. Strings and keys may have escapes: the parser
 * de-escapes them as jsonb's input does.
 *
 * ingest_session_batches stores several batches in one transaction, each in a
 * subtransaction (whole or not at all, independently), and sends the stored
 * entries of all of them to stream database_events with one herald.send_batch
 * call (one notification): see the comment of the SQL declaration.
 *
 *-------------------------------------------------------------------------
 */
#include "herald.h"
#include "herald_errcodes.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "catalog/pg_constraint.h"
#include "commands/sequence.h"
#include "common/jsonapi.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/array.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

/* setting herald.session_fk_per_batch (defined in herald.c) */
bool		herald_session_fk_per_batch = true;

PG_FUNCTION_INFO_V1(herald_ingest_session_batch);
PG_FUNCTION_INFO_V1(herald_ingest_session_batches);

/* the largest timestamp accepted: 9999-12-31 23:59:59.999 UTC, in Unix ms */
#define SESSION_MAX_MS INT64CONST(253402300799999)
/* Unix ms of PostgreSQL's epoch, 2000-01-01 */
#define PG_EPOCH_UNIX_MS INT64CONST(946684800000)

typedef enum EntryType
{
	ENTRY_START,
	ENTRY_EVENT,
	ENTRY_END
} EntryType;

typedef struct SessionEntry
{
	EntryType	type;
	int64		ms;				/* timestamp, Unix ms */
	const char *name;			/* EVENT: the name, de-escaped (read_batch) */
	int			name_len;
	int			name_slot;		/* EVENT: its slot in the name table */
} SessionEntry;

/* A distinct event name of a batch (open addressing, keyed by the bytes). */
typedef struct NameSlot
{
	const char *name;			/* NULL: free */
	int			len;
	int16		id;				/* event_name_id, once looked up */
} NameSlot;

/* What storing one batch produced. */
typedef struct BatchResult
{
	char	   *answer;			/* {"message":...,"stored":...} */
	bool		ended;
	int			stored;
	Datum	   *rows;			/* database_events rows (text), entry order */
	int			nrows;
} BatchResult;

/* Statements, prepared once per backend (SPI_keepplan). */
static SPIPlanPtr lock_session_plan;
static SPIPlanPtr insert_session_plan;
static SPIPlanPtr end_session_plan;
static SPIPlanPtr lookup_names_plan;
static SPIPlanPtr lock_names_plan;
static SPIPlanPtr insert_events_plan;
static SPIPlanPtr reference_plan;
static SPIPlanPtr send_batch_plan;

static SPIPlanPtr
prepare_kept(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return plan;
}

static void
prepare_plans(void)
{
	Oid			uuid_arg[1] = {UUIDOID};
	Oid			session_args[3] = {UUIDOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Oid			end_args[2] = {UUIDOID, TIMESTAMPTZOID};
	Oid			names_arg[1] = {TEXTARRAYOID};
	Oid			events_args[4] = {INT8ARRAYOID, TIMESTAMPTZARRAYOID, INT2ARRAYOID, UUIDOID};
	Oid			reference_args[2] = {UUIDOID, TEXTOID};
	Oid			send_args[1] = {TEXTARRAYOID};

	if (send_batch_plan != NULL)
		return;
	lock_session_plan = prepare_kept(
		"SELECT s.session_start, s.session_end IS NOT NULL FROM herald.sessions s"
		" WHERE s.session_id = $1 FOR UPDATE", 1, uuid_arg);
	insert_session_plan = prepare_kept(
		"INSERT INTO herald.sessions AS s (session_id, session_start, session_end) VALUES ($1, $2, $3)"
		" ON CONFLICT ON CONSTRAINT sessions_pkey DO NOTHING", 3, session_args);
	end_session_plan = prepare_kept(
		"UPDATE herald.sessions s SET session_end = $2 WHERE s.session_id = $1", 2, end_args);
#define NAMES_SQL \
	"SELECT n.event_name::text, n.event_name_id FROM herald.session_event_names n" \
	" WHERE n.event_name = ANY ($1)"
	lookup_names_plan = prepare_kept(NAMES_SQL, 1, names_arg);
	lock_names_plan = prepare_kept(NAMES_SQL " FOR KEY SHARE OF n", 1, names_arg);
#undef NAMES_SQL
	insert_events_plan = prepare_kept(
		"INSERT INTO herald.session_events (event_id, event_timestamp, event_name_id, session_id)"
		" SELECT u.id, u.ts, u.name_id, $4 FROM unnest($1, $2, $3) AS u(id, ts, name_id)", 4, events_args);
	reference_plan = prepare_kept(
		"SELECT r.answer::text, r.stream_rows, r.answer ->> 'message' = 'bye', (r.answer ->> 'stored')::integer"
		" FROM herald.store_session_batch($1, $2) r", 2, reference_args);
	send_batch_plan = prepare_kept(
		"SELECT herald.send_batch('database_events', $1)", 1, send_args);
}

/* ---------------- reading the batch ---------------- */

#define KEY_TYPE		0x1
#define KEY_TIMESTAMP	0x2
#define KEY_SESSION_ID	0x4
#define KEY_NAME		0x8

/*
 * BatchRead is the state of the semantic actions that read a batch, given to
 * PostgreSQL's JSON parser (common/jsonapi.h) as its semstate. The parser
 * checks the JSON and de-escapes strings and keys; the actions check that the
 * document is within the fast path's subset: an array of objects whose keys
 * are type, timestamp, session_id and name, each at most once, with string
 * values but for timestamp, a whole number in range. Past the first thing
 * outside the subset, plain is false and the actions do nothing more.
 */
typedef struct BatchRead
{
	const char *sid;			/* the session's canonical text */
	SessionEntry *entries;
	int			n;				/* complete entries */
	int			max;
	int			depth;			/* 0: outside, 1: in the array, 2: in an entry */
	int			seen;			/* KEY_* of the current entry */
	int			key;			/* KEY_* of the current field */
	bool		plain;
} BatchRead;

static void
read_array_start(void *state)
{
	BatchRead  *b = state;

	if (b->depth != 0)
		b->plain = false;		/* an array in an entry, or a second batch */
	else
		b->depth = 1;
}

static void
read_object_start(void *state)
{
	BatchRead  *b = state;

	if (!b->plain)
		return;
	if (b->depth != 1)
	{
		b->plain = false;		/* an object as the batch, or in an entry */
		return;
	}
	b->depth = 2;
	b->seen = 0;
	if (b->n == b->max)
	{
		b->max *= 2;
		b->entries = repalloc(b->entries, sizeof(SessionEntry) * b->max);
	}
	memset(&b->entries[b->n], 0, sizeof(SessionEntry));
}

static void
read_field_start(void *state, char *fname, bool isnull)
{
	BatchRead  *b = state;
	int			bit;

	if (!b->plain)
		return;
	if (strcmp(fname, "type") == 0)
		bit = KEY_TYPE;
	else if (strcmp(fname, "timestamp") == 0)
		bit = KEY_TIMESTAMP;
	else if (strcmp(fname, "session_id") == 0)
		bit = KEY_SESSION_ID;
	else if (strcmp(fname, "name") == 0)
		bit = KEY_NAME;
	else
		bit = 0;
	pfree(fname);
	/* another key, or a key given twice (jsonb keeps the last): the reference's */
	if (bit == 0 || (b->seen & bit))
	{
		b->plain = false;
		return;
	}
	b->seen |= bit;
	b->key = bit;
}

/*
 * read_ms reads a timestamp, the text of a JSON number token: digits only (no
 * sign, fraction or exponent; the parser has refused leading zeros), in range.
 */
static bool
read_ms(const char *token, int64 *ms)
{
	int64		v = 0;
	int			digits = 0;

	for (const char *p = token; *p != '\0'; p++)
	{
		if (*p < '0' || *p > '9' || ++digits > 15)
			return false;
		v = v * 10 + (*p - '0');
	}
	if (digits == 0 || v > SESSION_MAX_MS)
		return false;
	*ms = v;
	return true;
}

static void
read_scalar(void *state, char *token, JsonTokenType type)
{
	BatchRead  *b = state;
	SessionEntry *e;
	bool		ok;

	if (!b->plain)
		return;
	if (b->depth != 2)
	{
		b->plain = false;		/* a scalar as the batch, or as an entry */
		return;
	}
	e = &b->entries[b->n];
	if (b->key == KEY_TIMESTAMP)
		ok = type == JSON_TOKEN_NUMBER && read_ms(token, &e->ms);
	else if (type != JSON_TOKEN_STRING)
		ok = false;
	else if (b->key == KEY_NAME)
	{
		/* kept: e->name points into it */
		e->name = token;
		e->name_len = strlen(token);
		return;
	}
	else if (b->key == KEY_TYPE)
	{
		ok = true;
		if (strcmp(token, "SESSION_START") == 0)
			e->type = ENTRY_START;
		else if (strcmp(token, "EVENT") == 0)
			e->type = ENTRY_EVENT;
		else if (strcmp(token, "SESSION_END") == 0)
			e->type = ENTRY_END;
		else
			ok = false;
	}
	else
	{
		/* session_id: lower(session_id) = sid, for ASCII text */
		ok = strlen(token) == UUID_LEN * 2 + 4;
		for (int i = 0; ok && token[i] != '\0'; i++)
		{
			char		c = token[i];

			if (c >= 'A' && c <= 'Z')
				c += 'a' - 'A';
			ok = c == b->sid[i];
		}
	}
	pfree(token);
	if (!ok)
		b->plain = false;
}

static void
read_object_end(void *state)
{
	BatchRead  *b = state;
	SessionEntry *e;

	if (!b->plain)
		return;
	e = &b->entries[b->n];
	b->depth = 1;
	if ((b->seen & (KEY_TYPE | KEY_TIMESTAMP)) != (KEY_TYPE | KEY_TIMESTAMP))
		b->plain = false;
	else if (e->type == ENTRY_EVENT &&
			 (!(b->seen & KEY_NAME) || e->name_len == 0 ||
			  (e->name_len > 255 && pg_mbstrlen_with_len(e->name, e->name_len) > 255)))
		b->plain = false;
	else
		b->n++;
}

/*
 * read_batch reads the batch text into entries (palloc'd; names are
 * de-escaped copies) with PostgreSQL's JSON parser. False: not valid JSON,
 * outside the subset, or empty; the reference decides.
 */
static bool
read_batch(text *batch, const char *sid, SessionEntry **entries, int *nentries)
{
	BatchRead	b = {0};
	JsonSemAction sem = {0};
	JsonLexContext *lex;

	b.sid = sid;
	b.max = 128;
	b.entries = palloc(sizeof(SessionEntry) * b.max);
	b.plain = true;
	sem.semstate = &b;
	sem.array_start = read_array_start;
	sem.object_start = read_object_start;
	sem.object_end = read_object_end;
	sem.object_field_start = read_field_start;
	sem.scalar = read_scalar;
	lex = makeJsonLexContextCstringLen(VARDATA_ANY(batch), VARSIZE_ANY_EXHDR(batch),
									   GetDatabaseEncoding(), true);
	if (pg_parse_json(lex, &sem) != JSON_SUCCESS || !b.plain || b.n == 0)
		return false;
	*entries = b.entries;
	*nentries = b.n;
	return true;
}

/* ---------------- storing ---------------- */

static inline Datum
ms_to_timestamptz(int64 ms)
{
	return TimestampTzGetDatum((ms - PG_EPOCH_UNIX_MS) * 1000);
}

/* unix_ms of a timestamptz, like herald.unix_ms (floor to the millisecond) */
static inline int64
timestamptz_to_ms(TimestampTz ts)
{
	int64		us = ts + PG_EPOCH_UNIX_MS * 1000;

	return us >= 0 ? us / 1000 : -((-us + 999) / 1000);
}

/*
 * name_slot returns the slot of name s in the table slots (nslots, a power of
 * two): the one holding it, or the free one where it belongs.
 */
static int
name_slot(NameSlot *slots, int nslots, const char *s, int len)
{
	int			h = hash_bytes((const unsigned char *) s, len) & (nslots - 1);

	while (slots[h].name != NULL &&
		   !(slots[h].len == len && memcmp(slots[h].name, s, len) == 0))
		h = (h + 1) & (nslots - 1);
	return h;
}

/*
 * The events of a batch are written the way COPY writes them (one multi-row
 * heap insert, then the index entries), and their two foreign keys are
 * enforced per batch instead of per row. PostgreSQL checks a foreign key with
 * one query per inserted row (an AFTER ROW trigger running SELECT ... FOR KEY
 * SHARE on the referenced row), which was 40% of the time of an upload. Here
 * the same guarantee comes from locks the batch already holds: the session's
 * row is locked FOR UPDATE (or was inserted) by this (sub)transaction, and the
 * name rows are looked up FOR KEY SHARE by it, so every referenced row exists
 * and cannot be deleted, nor its key changed, before this transaction ends.
 * This holds only while those foreign keys are all the table asks for: the
 * direct path is taken only when the table's triggers are exactly the two
 * foreign keys' check triggers, nothing else (no other trigger, no row level
 * security, no partitioning, no generated column, no deferred unique index),
 * the user may INSERT into the table and lock the names (UPDATE on
 * session_event_names), and the isolation level is READ COMMITTED (the level
 * at which a trigger's check and these locks see the same rows). Otherwise
 * the events go through an ordinary INSERT (and always with setting
 * herald.session_fk_per_batch off).
 */
static bool
events_direct_ok(Relation rel)
{
	TriggerDesc *td = rel->trigdesc;
	Oid			relid = RelationGetRelid(rel);
	Oid			fk_session,
				fk_name;

	if (!herald_session_fk_per_batch ||
		IsolationUsesXactSnapshot() ||
		rel->rd_rel->relkind != RELKIND_RELATION ||
		rel->rd_rel->relrowsecurity ||
		(rel->rd_att->constr && rel->rd_att->constr->has_generated_stored) ||
		pg_class_aclcheck(relid, GetUserId(), ACL_INSERT) != ACLCHECK_OK ||
		pg_class_aclcheck(RangeVarGetRelid(makeRangeVar("herald", "session_event_names", -1), NoLock, false),
						  GetUserId(), ACL_UPDATE) != ACLCHECK_OK ||	/* FOR KEY SHARE */
		td == NULL ||
		td->trig_insert_before_row || td->trig_insert_instead_row ||
		td->trig_insert_before_statement || td->trig_insert_after_statement ||
		td->trig_insert_new_table)
		return false;
	fk_session = get_relation_constraint_oid(relid, "fk_session_id", true);
	fk_name = get_relation_constraint_oid(relid, "fk_event_name_id", true);
	if (!OidIsValid(fk_session) || !OidIsValid(fk_name))
		return false;
	for (int i = 0; i < td->numtriggers; i++)
	{
		Trigger    *t = &td->triggers[i];

		if (t->tgconstraint != fk_session && t->tgconstraint != fk_name)
			return false;
		if (t->tgfoid != F_RI_FKEY_CHECK_INS && t->tgfoid != F_RI_FKEY_CHECK_UPD)
			return false;
	}
	return true;
}

/*
 * insert_events_direct inserts n events of session sid into the table relid
 * (see above; the caller checked events_direct_ok and holds the locks: the
 * table's lock too, taken by events_direct).
 */
static void
insert_events_direct(Oid relid, int n, Datum *ids, Datum *tss, Datum *name_ids, Datum sid)
{
	EState	   *estate = CreateExecutorState();
	RangeTblEntry *rte = makeNode(RangeTblEntry);
	ResultRelInfo *rri = makeNode(ResultRelInfo);
	TupleTableSlot **slots = palloc(sizeof(TupleTableSlot *) * n);
	CommandId	cid = GetCurrentCommandId(true);
	Relation	rel;
	TupleDesc	desc;

	rte->rtekind = RTE_RELATION;
	rte->relid = relid;
	rte->relkind = RELKIND_RELATION;	/* events_direct_ok checked it */
	rte->rellockmode = RowExclusiveLock;
	rte->requiredPerms = ACL_INSERT;
	ExecInitRangeTable(estate, list_make1(rte));
	ExecInitResultRelation(estate, rri, 1);	/* opens the table */
	rel = rri->ri_RelationDesc;
	desc = RelationGetDescr(rel);
	if (desc->natts != 4)
		elog(ERROR, "herald.session_events has %d columns, expected 4", desc->natts);
	ExecOpenIndices(rri, false);
	for (int k = 0; k < rri->ri_NumIndices; k++)
		if (!rri->ri_IndexRelationDescs[k]->rd_index->indimmediate)
			elog(ERROR, "herald.session_events has a deferred unique index");

	for (int i = 0; i < n; i++)
	{
		TupleTableSlot *slot = ExecInitExtraTupleSlot(estate, desc, table_slot_callbacks(rel));

		ExecClearTuple(slot);
		slot->tts_values[0] = ids[i];
		slot->tts_values[1] = tss[i];
		slot->tts_values[2] = name_ids[i];
		slot->tts_values[3] = sid;
		memset(slot->tts_isnull, 0, sizeof(bool) * 4);
		ExecStoreVirtualTuple(slot);
		if (rel->rd_att->constr)
			ExecConstraints(rri, slot, estate);
		slots[i] = slot;
	}
	table_multi_insert(rel, slots, n, cid, 0, NULL);
	for (int i = 0; i < n; i++)
	{
		List	   *recheck;

		ResetPerTupleExprContext(estate);
		recheck = ExecInsertIndexTuples(rri, slots[i], estate, false, false, NULL, NIL);
		if (recheck != NIL)
			elog(ERROR, "herald.session_events: unexpected deferred index check");
	}
	table_finish_bulk_insert(rel, 0);
	ExecResetTupleTable(estate->es_tupleTable, false);
	ExecCloseResultRelations(estate);
	ExecCloseRangeTableRelations(estate);
	FreeExecutorState(estate);
}

/*
 * store_reference stores the batch with herald.store_session_batch (which
 * raises the batch's error, if any).
 */
static void
store_reference(Datum sid, text *batch, bool sid_null, BatchResult *r)
{
	Datum		values[2] = {sid, PointerGetDatum(batch)};
	char		nulls[2] = {sid_null ? 'n' : ' ', batch == NULL ? 'n' : ' '};
	bool		isnull;
	Datum		d;
	int			rc;

	rc = SPI_execute_plan(reference_plan, values, nulls, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "herald.store_session_batch failed: %s", SPI_result_code_string(rc));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	r->answer = isnull ? pstrdup("null") : TextDatumGetCString(d);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
	r->ended = !isnull && DatumGetBool(d);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull);
	r->stored = isnull ? 0 : DatumGetInt32(d);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	r->nrows = 0;
	r->rows = NULL;
	if (!isnull)
	{
		ArrayType  *arr = DatumGetArrayTypePCopy(d);
		bool	   *rnulls;

		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &r->rows, &rnulls, &r->nrows);
	}
}

/*
 * store_batch stores one batch of session sid, whole or not at all (the
 * caller's (sub)transaction is what makes it so), or raises its error. Runs
 * inside SPI; allocates the result in the current memory context.
 */
static void
store_batch(Datum sid, bool sid_null, text *batch, Oid seq_oid, Oid events_oid, bool direct, BatchResult *r)
{
	char	   *sid_text;
	SessionEntry *entries;
	int			n;
	bool		known;
	bool		ended_before = false;
	bool		start_null = true;
	int64		start_ms = 0;
	int			nevents = 0;
	int			nslots;
	NameSlot   *slots;
	int			ndistinct = 0;
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	int			rc;
	StringInfoData buf;
	bool		has_start,
				has_end;

	if (sid_null || batch == NULL)
	{
		store_reference(sid, batch, sid_null, r);
		return;
	}
	sid_text = DatumGetCString(DirectFunctionCall1(uuid_out, sid));
	if (!read_batch(batch, sid_text, &entries, &n))
	{
		store_reference(sid, batch, false, r);
		return;
	}

	/* the session, locked: batches of one session are serialised */
	rc = SPI_execute_plan(lock_session_plan, &sid, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "locking the session failed: %s", SPI_result_code_string(rc));
	known = SPI_processed > 0;
	if (known)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &start_null);

		if (!start_null)
			start_ms = timestamptz_to_ms(DatumGetTimestampTz(d));
		ended_before = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	}
	else if (entries[0].type == ENTRY_START)
	{
		start_null = false;
		start_ms = entries[0].ms;
	}

	/* the rules, in one pass; the reference names the first broken one */
	if (ended_before || (!known && entries[0].type != ENTRY_START))
	{
		store_reference(sid, batch, false, r);
		return;
	}
	for (int i = 0; i < n; i++)
	{
		SessionEntry *e = &entries[i];

		if ((e->type == ENTRY_START && (known || i > 0)) ||
			(e->type == ENTRY_END && (i != n - 1 || (!start_null && e->ms < start_ms))))
		{
			store_reference(sid, batch, false, r);
			return;
		}
		if (e->type == ENTRY_EVENT)
			nevents++;
	}
	has_start = entries[0].type == ENTRY_START;
	has_end = entries[n - 1].type == ENTRY_END;

	/* the distinct names, and their ids; a new name goes to the reference */
	nslots = 8;
	while (nslots < nevents * 2)
		nslots *= 2;
	slots = palloc0(sizeof(NameSlot) * nslots);
	if (nevents > 0)
	{
		Datum	   *names = palloc(sizeof(Datum) * nevents);
		ArrayType  *arr;

		for (int i = 0; i < n; i++)
		{
			SessionEntry *e = &entries[i];
			int			h;

			if (e->type != ENTRY_EVENT)
				continue;
			h = name_slot(slots, nslots, e->name, e->name_len);
			if (slots[h].name == NULL)
			{
				slots[h].name = e->name;
				slots[h].len = e->name_len;
				names[ndistinct++] = PointerGetDatum(cstring_to_text_with_len(e->name, e->name_len));
			}
			e->name_slot = h;
		}
		arr = construct_array(names, ndistinct, TEXTOID, -1, false, TYPALIGN_INT);
		values[0] = PointerGetDatum(arr);
		rc = SPI_execute_plan(direct ? lock_names_plan : lookup_names_plan, values, NULL, false, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "looking up event names failed: %s", SPI_result_code_string(rc));
		if (SPI_processed != (uint64) ndistinct)
		{
			store_reference(sid, batch, false, r);
			return;
		}
		for (uint64 k = 0; k < SPI_processed; k++)
		{
			bool		isnull;
			text	   *t = DatumGetTextPP(SPI_getbinval(SPI_tuptable->vals[k], SPI_tuptable->tupdesc, 1, &isnull));
			int16		id = DatumGetInt16(SPI_getbinval(SPI_tuptable->vals[k], SPI_tuptable->tupdesc, 2, &isnull));
			int			h = name_slot(slots, nslots, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));

			if (slots[h].name == NULL)
				elog(ERROR, "event name lookup returned a name that was not asked for");
			slots[h].id = id;
		}
	}

	/* the session row */
	if (has_start)
	{
		values[0] = sid;
		values[1] = ms_to_timestamptz(entries[0].ms);
		values[2] = has_end ? ms_to_timestamptz(entries[n - 1].ms) : (Datum) 0;
		nulls[2] = has_end ? ' ' : 'n';
		rc = SPI_execute_plan(insert_session_plan, values, nulls, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "storing the session failed: %s", SPI_result_code_string(rc));
		if (SPI_processed == 0) /* a concurrent batch started it after our check */
			ereport(ERROR,
					(errcode(ERRCODE_HERALD_INVALID_BATCH),
					 errmsg("session already started"),
					 errdetail("At entry 0 (counting from 0).")));
		nulls[2] = ' ';
	}
	else if (has_end)
	{
		values[0] = sid;
		values[1] = ms_to_timestamptz(entries[n - 1].ms);
		rc = SPI_execute_plan(end_session_plan, values, NULL, false, 0);
		if (rc != SPI_OK_UPDATE)
			elog(ERROR, "ending the session failed: %s", SPI_result_code_string(rc));
	}

	/* the events, ids drawn in entry order; and the stream rows */
	r->rows = palloc(sizeof(Datum) * n);
	r->nrows = 0;
	initStringInfo(&buf);
	if (has_start)
	{
		appendStringInfo(&buf, "{\"type\":\"SESSION_START\",\"session_id\":\"%s\",\"timestamp\":" INT64_FORMAT "}",
						 sid_text, entries[0].ms);
		r->rows[r->nrows++] = PointerGetDatum(cstring_to_text_with_len(buf.data, buf.len));
	}
	if (nevents > 0)
	{
		Datum	   *ids = palloc(sizeof(Datum) * nevents);
		Datum	   *tss = palloc(sizeof(Datum) * nevents);
		Datum	   *name_ids = palloc(sizeof(Datum) * nevents);
		int			k = 0;

		for (int i = 0; i < n; i++)
		{
			SessionEntry *e = &entries[i];
			int64		id;

			if (e->type != ENTRY_EVENT)
				continue;
			id = nextval_internal(seq_oid, true);
			ids[k] = Int64GetDatum(id);
			tss[k] = ms_to_timestamptz(e->ms);
			name_ids[k] = Int16GetDatum(slots[e->name_slot].id);
			k++;
			resetStringInfo(&buf);
			appendStringInfo(&buf, "{\"type\":\"EVENT\",\"session_id\":\"%s\",\"event_id\":" INT64_FORMAT
							 ",\"timestamp\":" INT64_FORMAT ",\"name\":", sid_text, id, e->ms);
			escape_json(&buf, e->name); /* as to_json(name) */
			appendStringInfoChar(&buf, '}');
			r->rows[r->nrows++] = PointerGetDatum(cstring_to_text_with_len(buf.data, buf.len));
		}
		if (direct)
			insert_events_direct(events_oid, nevents, ids, tss, name_ids, sid);
		else
		{
			values[0] = PointerGetDatum(construct_array(ids, nevents, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
			values[1] = PointerGetDatum(construct_array(tss, nevents, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
			values[2] = PointerGetDatum(construct_array(name_ids, nevents, INT2OID, 2, true, TYPALIGN_SHORT));
			values[3] = sid;
			rc = SPI_execute_plan(insert_events_plan, values, NULL, false, 0);
			if (rc != SPI_OK_INSERT || SPI_processed != (uint64) nevents)
				elog(ERROR, "storing the events failed: %s", SPI_result_code_string(rc));
		}
	}
	if (has_end)
	{
		resetStringInfo(&buf);
		appendStringInfo(&buf, "{\"type\":\"SESSION_END\",\"session_id\":\"%s\",\"timestamp\":" INT64_FORMAT "}",
						 sid_text, entries[n - 1].ms);
		r->rows[r->nrows++] = PointerGetDatum(cstring_to_text_with_len(buf.data, buf.len));
	}
	r->ended = has_end;
	r->stored = n;
	r->answer = psprintf("{\"message\":\"%s\",\"stored\":%d}", has_end ? "bye" : "ack", n);
	pfree(buf.data);
}

/* event_id_sequence returns the OID of session_events.event_id's sequence. */
static Oid
event_id_sequence(void)
{
	return RangeVarGetRelid(makeRangeVar("herald", "session_events_event_id_seq", -1), NoLock, false);
}

/* events_table returns the OID of herald.session_events. */
static Oid
events_table(void)
{
	return RangeVarGetRelid(makeRangeVar("herald", "session_events", -1), NoLock, false);
}

/*
 * events_direct decides, once per call and at the top transaction level,
 * whether the events may take the direct path: the table's lock, kept until
 * commit, keeps any DDL from changing the answer meanwhile.
 */
static bool
events_direct(Oid events_oid)
{
	Relation	rel = table_open(events_oid, RowExclusiveLock);
	bool		ok = events_direct_ok(rel);

	table_close(rel, NoLock);
	return ok;
}

/* send_rows appends rows to stream database_events (one send_batch call). */
static void
send_rows(Datum *rows, int nrows)
{
	Datum		value;
	int			rc;

	if (nrows == 0)
		return;
	value = PointerGetDatum(construct_array(rows, nrows, TEXTOID, -1, false, TYPALIGN_INT));
	rc = SPI_execute_plan(send_batch_plan, &value, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "sending to database_events failed: %s", SPI_result_code_string(rc));
}

/* RowList collects the database_events rows of several batches. */
typedef struct RowList
{
	Datum	   *rows;
	int			n;
	int			max;
} RowList;

static void
rows_append(RowList *l, Datum *rows, int n)
{
	if (n == 0)
		return;
	if (l->n + n > l->max)
	{
		l->max = Max(l->max * 2, l->n + n + 256);
		l->rows = l->rows ? repalloc(l->rows, sizeof(Datum) * l->max) : palloc(sizeof(Datum) * l->max);
	}
	memcpy(l->rows + l->n, rows, sizeof(Datum) * n);
	l->n += n;
}

/*
 * herald.ingest_session_batch(session_id uuid, batch text) RETURNS json:
 * stores one batch (or raises its error) and sends its entries.
 */
Datum
herald_ingest_session_batch(PG_FUNCTION_ARGS)
{
	BatchResult r;
	MemoryContext cxt = CurrentMemoryContext;
	text	   *answer;
	Oid			events_oid = InvalidOid;
	bool		direct = false;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	prepare_plans();
	if (!PG_ARGISNULL(0) && !PG_ARGISNULL(1))
	{
		events_oid = events_table();
		direct = events_direct(events_oid);
	}
	store_batch(PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0), PG_ARGISNULL(0),
				PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1),
				PG_ARGISNULL(0) || PG_ARGISNULL(1) ? InvalidOid : event_id_sequence(),
				events_oid, direct, &r);
	send_rows(r.rows, r.nrows);
	MemoryContextSwitchTo(cxt);
	answer = cstring_to_text(r.answer);
	SPI_finish();
	PG_RETURN_TEXT_P(answer);
}

/*
 * herald.ingest_session_batches(session_ids uuid[], batches text[])
 * RETURNS TABLE (answer json, ended boolean, stored integer, error_state text,
 *				  error_message text, error_detail text):
 * each batch in a subtransaction; one row per batch, in order.
 */
Datum
herald_ingest_session_batches(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum	   *sids = NULL,
			   *batches = NULL;
	bool	   *sid_nulls = NULL,
			   *batch_nulls = NULL;
	int			nsids = 0,
				nbatches = 0;
	RowList		all = {NULL, 0, 0};
	Oid			seq_oid,
				events_oid;
	bool		direct;
	MemoryContext cxt;
	ResourceOwner owner = CurrentResourceOwner;

	InitMaterializedSRF(fcinfo, 0);
	if (!PG_ARGISNULL(0))
		deconstruct_array(PG_GETARG_ARRAYTYPE_P(0), UUIDOID, UUID_LEN, false, TYPALIGN_CHAR,
						  &sids, &sid_nulls, &nsids);
	if (!PG_ARGISNULL(1))
		deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), TEXTOID, -1, false, TYPALIGN_INT,
						  &batches, &batch_nulls, &nbatches);
	if (PG_ARGISNULL(0) != PG_ARGISNULL(1) || nsids != nbatches)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("session_ids and batches must have the same length")));
	if (nbatches == 0)
		return (Datum) 0;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	prepare_plans();
	seq_oid = event_id_sequence();
	events_oid = events_table();
	direct = events_direct(events_oid);
	cxt = CurrentMemoryContext;
	for (int i = 0; i < nbatches; i++)
	{
		Datum		out[6];
		bool		out_nulls[6] = {false, false, false, true, true, true};
		BatchResult r;
		volatile bool ok = false;

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		PG_TRY();
		{
			store_batch(sids[i], sid_nulls[i], batch_nulls[i] ? NULL : DatumGetTextPP(batches[i]), seq_oid, events_oid, direct, &r);
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
			ok = true;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
			/* like plpgsql's WHEN OTHERS: a cancel is not the batch's answer */
			if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED || edata->sqlerrcode == ERRCODE_ASSERT_FAILURE)
				ReThrowError(edata);
			out_nulls[0] = true;
			out[1] = BoolGetDatum(false);
			out[2] = Int32GetDatum(0);
			out[3] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
			out_nulls[3] = false;
			out[4] = CStringGetTextDatum(edata->message ? edata->message : "");
			out_nulls[4] = false;
			if (edata->detail != NULL && edata->detail[0] != '\0')
			{
				out[5] = CStringGetTextDatum(edata->detail);
				out_nulls[5] = false;
			}
			FreeErrorData(edata);
		}
		PG_END_TRY();
		if (ok)
		{
			out[0] = CStringGetTextDatum(r.answer);
			out[1] = BoolGetDatum(r.ended);
			out[2] = Int32GetDatum(r.stored);
			rows_append(&all, r.rows, r.nrows);
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, out_nulls);
	}
	send_rows(all.rows, all.n);
	SPI_finish();
	return (Datum) 0;
}
