/*-------------------------------------------------------------------------
 *
 * doorbell.c
 *	  The doorbell ring: committing transactions hand their doorbells to the
 *	  background worker, which rings them, so that NOTIFY stays off the hot
 *	  path.
 *
 * Why: PostgreSQL 15's PreCommit_Notify takes a cluster-wide heavyweight lock
 * that is held until the transaction ends, i.e. through the WAL flush of its
 * commit record, so transactions that NOTIFY cannot share a flush. A worker
 * transaction that only NOTIFYs commits asynchronously (nothing of it needs
 * to survive a crash: the notification queue does not either), so it holds
 * the lock briefly, and it rings many doorbells at once.
 *
 * The ring is herald.doorbell_ring_size bytes of shared memory holding
 * entries, one per committing transaction, each the transaction's payloads
 * (NUL-terminated JSON, one per stream, built by announce.c). Positions
 * (head, tail) grow forever; a position's byte is data[pos % size]. An entry
 * never wraps: when it does not fit before the end of the ring, the bytes up
 * to the end are skipped (a PAD entry, or nothing when fewer bytes than a
 * header remain). Life of an entry:
 *	 XACT_EVENT_PRE_COMMIT  the backend reserves the entry and copies its
 *		payloads in (state RESERVED). This happens while the transaction still
 *		holds its streams' row locks, so two transactions of one stream reserve
 *		in seq order: ring order is seq order per stream.
 *	 XACT_EVENT_COMMIT      (after the commit is visible) state READY and
 *		SetLatch of the worker: no allocation, nothing that can fail.
 *	 XACT_EVENT_ABORT       state VOID.
 * The worker (herald_doorbell_drain) rings the READY entries in ring order in
 * one transaction, skips VOID ones, stops at a RESERVED one (whose owner sets
 * the latch when it decides; an entry whose owner process is gone is voided),
 * then moves the tail past what it rang and wakes backends waiting for room.
 * (An entry stuck RESERVED for a second has its owner looked for: one whose
 * process has exited is voided; a live owner is waited for, as listeners wait
 * for an undecided NOTIFYing transaction.)
 * Only the worker moves the tail; only a reserving backend moves the head.
 *
 * A backend notifies directly (Async_Notify in its own transaction, the
 * behaviour without the worker) when herald.doorbell_via_worker is off, when
 * the library was not preloaded, when no worker drains the ring of its
 * database (the worker serves herald.database only, and NOTIFY is per
 * database), or when the ring stays full for a second. Direct doorbells may
 * overtake ring doorbells of the same stream that are still waiting for the
 * worker; listeners must anyway treat a doorbell as "read the outbox up to
 * seq" (the sidecar ignores a seq it already has).
 *
 *-------------------------------------------------------------------------
 */
#include "herald.h"

#include "access/xact.h"
#include "commands/async.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/condition_variable.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

bool		herald_doorbell_via_worker = true;
int			herald_doorbell_ring_size = 4096;	/* kB */

/* How long a committing backend waits for room in a full ring. */
#define DOORBELL_FULL_WAIT_MS 1000L

#define DOORBELL_RESERVED	1	/* being committed: stop here */
#define DOORBELL_READY		2	/* committed: ring it */
#define DOORBELL_VOID		3	/* rolled back: skip it */
#define DOORBELL_PAD		4	/* filler up to the end of the ring */

typedef struct DoorbellEntry
{
	uint32		len;			/* bytes of the entry, header included,
								 * MAXALIGNed */
	uint32		state;			/* DOORBELL_*; changed under the mutex */
	int32		npayloads;		/* NUL-terminated payloads after the header */
	int32		pid;			/* the reserving backend */
} DoorbellEntry;

#define DOORBELL_HDR MAXALIGN(sizeof(DoorbellEntry))

typedef struct DoorbellRing
{
	slock_t		mutex;			/* protects the fields below and the entries'
								 * state */
	bool		accepting;		/* a worker drains the ring */
	Oid			dboid;			/* ... of this database */
	Latch	   *worker_latch;	/* ... and this is its latch */
	uint64		head;			/* next position to reserve */
	uint64		tail;			/* first position not rung yet */
	uint64		size;			/* bytes of data[] */
	uint64		rung;			/* payloads rung by the worker, ever */
	uint64		direct;			/* transactions that notified directly
								 * because the ring was unavailable or full */
	ConditionVariable room;		/* broadcast when the tail moves */
	uint64		data[FLEXIBLE_ARRAY_MEMBER];	/* the bytes, MAXALIGNed */
} DoorbellRing;

#define RING_DATA ((char *) ring->data)

static DoorbellRing *ring = NULL;

/* This backend's reserved entry, from PRE_COMMIT to COMMIT/ABORT. */
static DoorbellEntry *pending_entry = NULL;

/* The worker: the RESERVED entry it last stopped at, and since when. */
static uint64 stuck_pos = PG_UINT64_MAX;
static TimestampTz stuck_since = 0;

/* A RESERVED entry is normally settled within a commit; only one stuck for
 * longer has its owner looked for. */
#define DOORBELL_STUCK_CHECK_MS 1000

/*
 * herald_doorbell_shmem_size is the shared memory the ring needs; 0 when
 * the library is not preloaded (the setting is then not even defined).
 */
Size
herald_doorbell_shmem_size(void)
{
	return add_size(offsetof(DoorbellRing, data),
					mul_size((Size) herald_doorbell_ring_size, 1024));
}

/*
 * herald_doorbell_shmem_init creates or attaches the ring; the caller holds
 * AddinShmemInitLock.
 */
void
herald_doorbell_shmem_init(void)
{
	bool		found;

	ring = ShmemInitStruct("herald doorbells", herald_doorbell_shmem_size(), &found);
	if (!found)
	{
		SpinLockInit(&ring->mutex);
		ring->accepting = false;
		ring->dboid = InvalidOid;
		ring->worker_latch = NULL;
		ring->head = 0;
		ring->tail = 0;
		ring->size = (uint64) herald_doorbell_ring_size * 1024;
		ring->rung = 0;
		ring->direct = 0;
		ConditionVariableInit(&ring->room);
	}
}

/*
 * herald_doorbell_try_reserve reserves an entry of "need" bytes (a multiple
 * of MAXALIGN) and writes its header; NULL when the ring is not accepting
 * this database's doorbells (*unavailable set) or has no room.
 */
static DoorbellEntry *
herald_doorbell_try_reserve(uint64 need, int npayloads, bool *unavailable)
{
	DoorbellEntry *entry = NULL;

	SpinLockAcquire(&ring->mutex);
	if (!ring->accepting || ring->dboid != MyDatabaseId)
		*unavailable = true;
	else
	{
		uint64		off = ring->head % ring->size;
		uint64		contig = ring->size - off;
		uint64		skip = (contig < need) ? contig : 0;

		if (ring->head - ring->tail + skip + need <= ring->size)
		{
			if (skip >= DOORBELL_HDR)
			{
				DoorbellEntry *pad = (DoorbellEntry *) (RING_DATA + off);

				pad->len = (uint32) skip;
				pad->state = DOORBELL_PAD;
				pad->npayloads = 0;
				pad->pid = 0;
			}
			entry = (DoorbellEntry *) (RING_DATA + (ring->head + skip) % ring->size);
			entry->len = (uint32) need;
			entry->state = DOORBELL_RESERVED;
			entry->npayloads = npayloads;
			entry->pid = MyProcPid;
			ring->head += skip + need;
		}
	}
	SpinLockRelease(&ring->mutex);
	return entry;
}

/*
 * herald_doorbell_reserve, at XACT_EVENT_PRE_COMMIT, hands the transaction's
 * doorbells ("len" bytes: "npayloads" NUL-terminated payloads) to the worker:
 * it copies them into a RESERVED entry of the ring, which
 * herald_doorbell_commit or herald_doorbell_abort settles. Returns false when
 * the caller must notify directly instead.
 */
bool
herald_doorbell_reserve(const char *payloads, Size len, int npayloads)
{
	uint64		need = MAXALIGN(DOORBELL_HDR + len);
	DoorbellEntry *entry = NULL;
	bool		unavailable = false;
	bool		self;
	TimestampTz start = 0;

	Assert(pending_entry == NULL);
	if (!herald_doorbell_via_worker || ring == NULL || npayloads <= 0)
		return false;
	/* an entry larger than half the ring could wait for room forever */
	if (need <= ring->size / 2 && need <= PG_UINT32_MAX)
		entry = herald_doorbell_try_reserve(need, npayloads, &unavailable);
	else
		unavailable = true;
	if (entry == NULL && !unavailable)
	{
		/* Full: wait (a little) for the worker to make room; never when we
		 * are the worker, which would be waiting for itself. */
		Latch	   *latch;

		SpinLockAcquire(&ring->mutex);
		latch = ring->worker_latch;
		SpinLockRelease(&ring->mutex);
		self = (latch == MyLatch);
		if (!self)
		{
			if (latch)
				SetLatch(latch);
			start = GetCurrentTimestamp();
			ConditionVariablePrepareToSleep(&ring->room);
			for (;;)
			{
				entry = herald_doorbell_try_reserve(need, npayloads, &unavailable);
				if (entry != NULL || unavailable ||
					TimestampDifferenceExceeds(start, GetCurrentTimestamp(),
											   DOORBELL_FULL_WAIT_MS))
					break;
				(void) ConditionVariableTimedSleep(&ring->room, 10, PG_WAIT_EXTENSION);
			}
			ConditionVariableCancelSleep();
		}
	}
	if (entry == NULL)
	{
		SpinLockAcquire(&ring->mutex);
		if (ring->accepting && ring->dboid == MyDatabaseId)
			ring->direct++;
		SpinLockRelease(&ring->mutex);
		return false;
	}
	memcpy((char *) entry + DOORBELL_HDR, payloads, len);
	pending_entry = entry;
	return true;
}

/*
 * herald_doorbell_settle marks this backend's entry READY or VOID and wakes
 * the worker. Runs after commit or during abort: it must not fail.
 */
static void
herald_doorbell_settle(uint32 state)
{
	Latch	   *latch;

	if (pending_entry == NULL)
		return;
	SpinLockAcquire(&ring->mutex);
	pending_entry->state = state;
	latch = ring->worker_latch;
	SpinLockRelease(&ring->mutex);
	pending_entry = NULL;
	if (latch)
		SetLatch(latch);
}

/* herald_doorbell_commit: at XACT_EVENT_COMMIT, the entry may be rung. */
void
herald_doorbell_commit(void)
{
	herald_doorbell_settle(DOORBELL_READY);
}

/* herald_doorbell_abort: at XACT_EVENT_ABORT, the entry is forgotten. */
void
herald_doorbell_abort(void)
{
	herald_doorbell_settle(DOORBELL_VOID);
}

/*
 * herald_doorbell_attach: the worker, connected to its database, starts
 * accepting that database's doorbells. What a previous worker left in the
 * ring is rung by this one.
 */
void
herald_doorbell_attach(void)
{
	if (ring == NULL)
		return;
	SpinLockAcquire(&ring->mutex);
	ring->dboid = MyDatabaseId;
	ring->worker_latch = MyLatch;
	ring->accepting = true;
	SpinLockRelease(&ring->mutex);
}

/*
 * herald_doorbell_detach: the worker exits; backends notify directly until a
 * worker attaches again.
 */
void
herald_doorbell_detach(void)
{
	if (ring == NULL)
		return;
	SpinLockAcquire(&ring->mutex);
	ring->accepting = false;
	ring->worker_latch = NULL;
	SpinLockRelease(&ring->mutex);
	ConditionVariableBroadcast(&ring->room);
}

/*
 * herald_doorbell_owner_gone voids a RESERVED entry whose backend has exited
 * (it can no longer settle it) and tells whether it did.
 */
static bool
herald_doorbell_owner_gone(DoorbellEntry *entry)
{
	bool		voided = false;

	if (BackendPidGetProc(entry->pid) != NULL)
		return false;
	SpinLockAcquire(&ring->mutex);
	if (entry->state == DOORBELL_RESERVED)
	{
		entry->state = DOORBELL_VOID;
		voided = true;
	}
	SpinLockRelease(&ring->mutex);
	if (voided)
		ereport(LOG,
				(errmsg("herald doorbell of exited process %d dropped", (int) entry->pid)));
	return true;
}

/*
 * herald_doorbell_drain rings up to about max_payloads committed doorbells,
 * in ring order, in one transaction (which it starts and commits; it must be
 * called outside a transaction), and returns how many it rang. *more is set
 * when committed doorbells are left (the caller should come back soon).
 * An error (e.g. a full notification queue) leaves the ring as it was.
 */
uint64
herald_doorbell_drain(int max_payloads, bool *more)
{
	uint64		pos,
				head,
				stop;
	uint64		n = 0;
	bool		started = false;

	*more = false;
	if (ring == NULL)
		return 0;
	SpinLockAcquire(&ring->mutex);
	pos = ring->tail;
	head = ring->head;
	SpinLockRelease(&ring->mutex);

	while (pos < head)
	{
		uint64		off = pos % ring->size;
		uint64		contig = ring->size - off;
		DoorbellEntry *entry;
		uint32		state;

		if (contig < DOORBELL_HDR)
		{
			pos += contig;
			continue;
		}
		entry = (DoorbellEntry *) (RING_DATA + off);
		state = ((volatile DoorbellEntry *) entry)->state;
		if (state == DOORBELL_RESERVED)
		{
			TimestampTz now = GetCurrentTimestamp();

			if (pos != stuck_pos)
			{
				stuck_pos = pos;
				stuck_since = now;
				break;			/* its owner sets our latch when it decides */
			}
			if (!TimestampDifferenceExceeds(stuck_since, now, DOORBELL_STUCK_CHECK_MS) ||
				!herald_doorbell_owner_gone(entry))
				break;
			continue;			/* settled or voided now: look again */
		}
		pg_read_barrier();
		if (state == DOORBELL_READY)
		{
			const char *p = (const char *) entry + DOORBELL_HDR;

			if (n > 0 && n + entry->npayloads > (uint64) max_payloads)
			{
				*more = true;
				break;
			}
			if (!started)
			{
				SetCurrentStatementStartTimestamp();
				StartTransactionCommand();
				pgstat_report_activity(STATE_RUNNING, "herald: ring doorbells");
				/* Nothing of this transaction has to survive a crash (the
				 * notification queue does not): do not wait for the flush
				 * of its commit record while holding NOTIFY's lock. */
				(void) set_config_option("synchronous_commit", "off",
										 PGC_SUSET, PGC_S_SESSION,
										 GUC_ACTION_LOCAL, true, 0, false);
				started = true;
			}
			for (int i = 0; i < entry->npayloads; i++)
			{
				Async_Notify(HERALD_CHANNEL, p);
				p += strlen(p) + 1;
			}
			n += entry->npayloads;
		}
		pos += entry->len;
	}
	stop = pos;

	if (started)
	{
		CommitTransactionCommand();
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	SpinLockAcquire(&ring->mutex);
	ring->tail = stop;
	ring->rung += n;
	SpinLockRelease(&ring->mutex);
	ConditionVariableBroadcast(&ring->room);
	return n;
}

/*
 * herald_doorbell_stats reports the ring's state (herald.doorbell_stats()):
 * whether a worker drains it, its size and use, payloads rung by the worker,
 * and transactions that notified directly because the ring was unavailable
 * or full.
 */
PG_FUNCTION_INFO_V1(herald_doorbell_stats);

Datum
herald_doorbell_stats(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	bool		accepting = false;
	bool		here = false;
	uint64		size = 0,
				used = 0,
				rung = 0,
				direct = 0;

	if (ring != NULL)
	{
		SpinLockAcquire(&ring->mutex);
		accepting = ring->accepting;
		here = accepting && ring->dboid == MyDatabaseId;
		size = ring->size;
		used = ring->head - ring->tail;
		rung = ring->rung;
		direct = ring->direct;
		SpinLockRelease(&ring->mutex);
	}
	initStringInfo(&buf);
	appendStringInfo(&buf,
					 "{\"preloaded\":%s,\"worker_drains\":%s,\"this_database\":%s,"
					 "\"via_worker\":%s,\"ring_bytes\":" UINT64_FORMAT ",\"used_bytes\":" UINT64_FORMAT
					 ",\"rung\":" UINT64_FORMAT ",\"direct_fallbacks\":" UINT64_FORMAT "}",
					 ring ? "true" : "false", accepting ? "true" : "false",
					 here ? "true" : "false", herald_doorbell_via_worker ? "true" : "false",
					 size, used, rung, direct);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}
