/*-------------------------------------------------------------------------
 *
 * tablewrite.c
 *	  Writing herald's own tables from C without the executor.
 *
 * The state machine writes four rows per transition (the report, a history
 * row, the stream's counter and an outbox row). Planning-free SPI still
 * builds and tears down an executor tree per statement, evaluates CHECK
 * constraints it has to parse again each time, queues and fires row
 * triggers, and runs the foreign-key check as one more query: most of a
 * transition's cost. These functions do what the executor would do for a
 * single row of a herald table, and nothing more: find a row and replace it
 * the way UPDATE does (waiting for a concurrent writer, then deciding again on
 * the version it committed), write the heap tuple (TOASTing it when large),
 * and maintain every index of the table (uniqueness included).
 *
 * What they deliberately do not do is up to the caller, which knows it is
 * not needed: CHECK constraints of columns the caller does not set from
 * user input, row triggers (the caller does their work itself, e.g. it rings
 * the doorbell with herald_announce_message) and row-level security
 * (herald's tables have none). Permissions are checked when a table is
 * opened, for the privileges the equivalent statement would need.
 *
 *-------------------------------------------------------------------------
 */
#include "herald.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "executor/executor.h"
#include "storage/lmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/*
 * The OIDs of the tables herald_table_open opened before, by name, so that
 * the next opens skip the two catalog look-ups. A remembered OID is only a
 * guess: the relation found under it must still be herald.<name> (after
 * DROP EXTENSION, a rename, ...), or the names are looked up again.
 */
#define HERALD_TABLE_OIDS 8

static struct
{
	char		relname[NAMEDATALEN];	/* "" for a free slot */
	Oid			relid;
}			table_oids[HERALD_TABLE_OIDS];
static Oid	herald_nsp = InvalidOid;

/*
 * herald_table_relation opens herald.<relname> with lock, by its remembered
 * OID when it is still that table, else by name.
 */
static Relation
herald_table_relation(const char *relname, LOCKMODE lock)
{
	Relation	rel;
	Oid			relid;
	int			i;

	for (i = 0; i < HERALD_TABLE_OIDS && table_oids[i].relname[0] != '\0'; i++)
	{
		if (strcmp(table_oids[i].relname, relname) != 0)
			continue;
		rel = try_table_open(table_oids[i].relid, lock);
		if (rel != NULL)
		{
			if (RelationGetNamespace(rel) == herald_nsp &&
				strcmp(RelationGetRelationName(rel), relname) == 0)
				return rel;
			table_close(rel, lock);
		}
		break;
	}

	herald_nsp = get_namespace_oid("herald", false);
	relid = get_relname_relid(relname, herald_nsp);
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"herald.%s\" does not exist", relname)));
	rel = table_open(relid, lock);
	if (i < HERALD_TABLE_OIDS)
	{
		strlcpy(table_oids[i].relname, relname, NAMEDATALEN);
		table_oids[i].relid = relid;
	}
	return rel;
}

/*
 * herald_table_open opens the table herald.<relname> for writing, with the
 * lock an INSERT or UPDATE takes (kept until the end of the transaction),
 * after checking that the current user holds every privilege of mode on it
 * (42501 otherwise), as the INSERT or UPDATE would. Its indexes are opened
 * when a write needs them (herald_table_indexes).
 */
void
herald_table_open(HeraldTable *t, const char *relname, AclMode mode)
{
	AclResult	aclresult;

	t->rel = herald_table_relation(relname, RowExclusiveLock);
	aclresult = pg_class_aclcheck(RelationGetRelid(t->rel), GetUserId(), mode);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_TABLE, relname);
	t->estate = NULL;
	t->rri = NULL;
	t->slot = table_slot_create(t->rel, NULL);
	t->newslot = table_slot_create(t->rel, NULL);
}

/*
 * herald_table_indexes opens the table's indexes, once, for index
 * maintenance: an insert, or an update that cannot be HOT. A HOT update, the
 * usual case for the stream counters and the reports, needs none.
 */
static void
herald_table_indexes(HeraldTable *t)
{
	if (t->rri != NULL)
		return;
	t->estate = CreateExecutorState();
	t->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(t->rri, t->rel, 0, NULL, 0);
	ExecOpenIndices(t->rri, false);
}

/*
 * herald_table_close closes what herald_table_open opened; the table's lock
 * stays until the end of the transaction.
 */
void
herald_table_close(HeraldTable *t)
{
	ExecDropSingleTupleTableSlot(t->slot);
	ExecDropSingleTupleTableSlot(t->newslot);
	if (t->rri != NULL)
	{
		ExecCloseIndices(t->rri);
		FreeExecutorState(t->estate);
	}
	table_close(t->rel, NoLock);
}

/*
 * herald_attnum returns the attribute number of column name of rel.
 */
int
herald_attnum(Relation rel, const char *name)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int			i;

	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return i + 1;
	}
	elog(ERROR, "column \"%s\" of \"herald.%s\" not found", name,
		 RelationGetRelationName(rel));
	return 0;					/* keep the compiler quiet */
}

/*
 * herald_table_fetch_row finds the row whose one-column primary key equals
 * key, as an UPDATE would see it: the latest committed version (READ
 * COMMITTED) or the one of the transaction's snapshot (REPEATABLE READ,
 * SERIALIZABLE), and this transaction's own changes. Returns false if there
 * is no such row; otherwise t->slot holds it, for herald_table_update.
 *
 * The caller must make the current transaction's earlier writes visible
 * (CommandCounterIncrement) before fetching a row it may have written.
 */
bool
herald_table_fetch_row(HeraldTable *t, Datum key)
{
	Oid			pkey = RelationGetPrimaryKeyIndex(t->rel);
	Relation	idx;
	ScanKeyData skey;
	Oid			op;
	Snapshot	snapshot;
	IndexScanDesc scan;
	bool		found;

	if (!OidIsValid(pkey))
		elog(ERROR, "\"herald.%s\" has no primary key", RelationGetRelationName(t->rel));
	idx = index_open(pkey, RowExclusiveLock);
	if (IndexRelationGetNumberOfKeyAttributes(idx) != 1)
		elog(ERROR, "the primary key of \"herald.%s\" is not one column",
			 RelationGetRelationName(t->rel));
	op = get_opfamily_member(idx->rd_opfamily[0], idx->rd_opcintype[0],
							 idx->rd_opcintype[0], BTEqualStrategyNumber);
	if (!OidIsValid(op))
		elog(ERROR, "no equality operator for the primary key of \"herald.%s\"",
			 RelationGetRelationName(t->rel));
	ScanKeyInit(&skey, 1, BTEqualStrategyNumber, get_opcode(op), key);
	skey.sk_collation = idx->rd_indcollation[0];

	snapshot = RegisterSnapshot(IsolationUsesXactSnapshot() ?
								GetTransactionSnapshot() : GetLatestSnapshot());
	scan = index_beginscan(t->rel, idx, snapshot, 1, 0);
	index_rescan(scan, &skey, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, t->slot);
	index_endscan(scan);
	UnregisterSnapshot(snapshot);
	index_close(idx, NoLock);
	return found;
}

/*
 * herald_table_update replaces the row fetched by herald_table_fetch_row
 * with newtuple (adding index entries when the update cannot be HOT), as
 * UPDATE does: it waits for a transaction writing the row and, if that one
 * changed it, returns false in READ COMMITTED (fetch it again, decide again,
 * retry) and fails with a serialization error otherwise. On success the row
 * stays locked until the end of the transaction.
 */
bool
herald_table_update(HeraldTable *t, HeapTuple newtuple)
{
	TM_FailureData tmfd;
	LockTupleMode lockmode;
	TM_Result	res;
	bool		update_indexes;

	ExecForceStoreHeapTuple(newtuple, t->newslot, false);
	res = table_tuple_update(t->rel, &t->slot->tts_tid, t->newslot,
							 GetCurrentCommandId(true), GetActiveSnapshot(),
							 InvalidSnapshot, true, &tmfd, &lockmode,
							 &update_indexes);
	if (res == TM_Ok)
	{
		if (update_indexes)
		{
			herald_table_indexes(t);
			if (t->rri->ri_NumIndices > 0)
				ExecInsertIndexTuples(t->rri, t->newslot, t->estate, false, false,
									  NULL, NIL);
			ResetPerTupleExprContext(t->estate);
		}
	}
	else if (res == TM_Updated || res == TM_Deleted)
	{
		if (IsolationUsesXactSnapshot())
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to concurrent update")));
	}
	else
		elog(ERROR, "unexpected result %d updating a row of \"herald.%s\"",
			 (int) res, RelationGetRelationName(t->rel));
	ExecClearTuple(t->newslot);
	return res == TM_Ok;
}

/*
 * herald_table_settle makes sure the row fetched by herald_table_fetch_row
 * is the one to decide on: it waits for a transaction writing the row and
 * returns true with the row share-locked (nobody can change it now) or, if
 * that transaction changed it, false in READ COMMITTED (fetch it again) and a
 * serialization error otherwise. For decisions that do not write the row,
 * e.g. refusing a transition: a refusal must be based on committed state.
 */
bool
herald_table_settle(HeraldTable *t)
{
	TM_FailureData tmfd;
	TM_Result	res;

	res = table_tuple_lock(t->rel, &t->slot->tts_tid, GetActiveSnapshot(), t->slot,
						   GetCurrentCommandId(false), LockTupleShare,
						   LockWaitBlock, 0, &tmfd);
	if (res == TM_Ok)
		return true;
	if (res == TM_Updated || res == TM_Deleted)
	{
		if (IsolationUsesXactSnapshot())
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to concurrent update")));
		return false;
	}
	elog(ERROR, "unexpected result %d locking a row of \"herald.%s\"",
		 (int) res, RelationGetRelationName(t->rel));
	return false;				/* keep the compiler quiet */
}

/*
 * herald_table_new_row returns a row of t with every column null, for
 * herald_table_set and herald_table_insert (values and nulls in column order).
 */
void
herald_table_new_row(HeraldTable *t, Datum **values, bool **nulls)
{
	int			natts = RelationGetDescr(t->rel)->natts;

	*values = palloc0(sizeof(Datum) * natts);
	*nulls = palloc(sizeof(bool) * natts);
	memset(*nulls, true, sizeof(bool) * natts);
}

/* herald_table_set sets column name of a row made by herald_table_new_row. */
void
herald_table_set(HeraldTable *t, Datum *values, bool *nulls, const char *name,
				 Datum value)
{
	int			att = herald_attnum(t->rel, name) - 1;

	values[att] = value;
	nulls[att] = false;
}

/*
 * herald_table_insert inserts a row (values and nulls in column order) and
 * its index entries; a duplicate key raises unique_violation as usual.
 */
void
herald_table_insert(HeraldTable *t, const Datum *values, const bool *nulls)
{
	TupleTableSlot *slot = t->newslot;
	int			natts = RelationGetDescr(t->rel)->natts;

	ExecClearTuple(slot);
	memcpy(slot->tts_values, values, sizeof(Datum) * natts);
	memcpy(slot->tts_isnull, nulls, sizeof(bool) * natts);
	ExecStoreVirtualTuple(slot);
	herald_table_indexes(t);
	simple_table_tuple_insert(t->rel, slot);
	if (t->rri->ri_NumIndices > 0)
		ExecInsertIndexTuples(t->rri, slot, t->estate, false, false, NULL, NIL);
	ExecClearTuple(slot);
	ResetPerTupleExprContext(t->estate);
}
