/*-------------------------------------------------------------------------
 *
 * scheduler.c
 *	  The background worker ("herald scheduler"): publishes due events at
 *	  their time and prunes the outbox. It sleeps on its latch until the next
 *	  deadline; backends wake it through shared memory (shmem.c, wakeup.c).
 *
 * The loop: a round when one is due by the clock or a commit that schedules
 * an event woke the worker (herald_wake_worker sets event_wake with the
 * latch); then, on every wake-up, the doorbells committed transactions left
 * in the doorbell ring (doorbell.c) are rung, at most HERALD_DOORBELL_BATCH
 * per turn so that a flood of them never delays a round by much, after which
 * the worker pauses HERALD_DOORBELL_LINGER_MS so that the next ones gather
 * into one transaction. A failed batch (e.g. a full notification queue) stays
 * in the ring and is retried after a backoff. A round:
 *	 1. ResetLatch, then advertise next_due = DT_NOEND ("awake"): from now on
 *		every committing insert sets the latch, so an event committed while
 *		the round runs is never missed (the wait below returns at once).
 *	 2. Publish due versions in batches of herald.worker_batch_size, one
 *		transaction per batch, until a batch is not full; the last batch's
 *		transaction also reads the earliest pending publish time. At start
 *		this is the catch-up of whatever fell due while the server was down,
 *		in (publish_at, version) order.
 *	 3. Every herald.prune_interval seconds, herald.prune_outbox() if the
 *		outbox provides it.
 *	 4. WaitLatch until the next due time (milliseconds rounded up, so the
 *		worker never wakes just before and spins), or the next prune, capped
 *		by a 60 s safety timeout; first advertise that wake-up time, so that
 *		any commit of a version due earlier sets the latch.
 * There is no polling: a new version due earlier than next_due wakes the
 * worker at its inserting transaction's commit. Two cases wait on a clock
 * instead: the extension not installed yet in herald.database (checked every
 * few seconds, logged once), and due rows locked by a concurrent
 * herald.cancel_event (retried with a backoff from 1 ms to 1 s, since a
 * rolled-back cancel wakes nobody, but never past the due time of the next
 * version that is not locked).
 *
 * Errors inside a round are reported, the transaction is rolled back, and
 * the round is retried after a backoff; SIGTERM exits with code 1 (FATAL),
 * so the postmaster restarts the worker; SIGHUP reloads the settings.
 *
 *-------------------------------------------------------------------------
 */
#include "herald.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* Longest sleep without a deadline: a safety net, not a poll. */
#define HERALD_SAFETY_TIMEOUT_MS	(60 * 1000L)
/* How often to look again for an extension that is not installed yet. */
#define HERALD_NOT_READY_RETRY_MS	(5 * 1000L)
/* Longest backoff after an error, and for rows locked by a canceller. */
#define HERALD_ERROR_BACKOFF_MAX_MS (30 * 1000L)
#define HERALD_LOCKED_BACKOFF_MAX_MS 1000L
/* Doorbells rung per transaction and turn of the loop. */
#define HERALD_DOORBELL_BATCH		4096
/* Pause after a batch of doorbells, so that the next batch is not a single one. */
#define HERALD_DOORBELL_LINGER_MS	1

/* State carried from one round to the next. */
typedef struct SchedulerState
{
	bool		ready;			/* extension usable in the last round */
	bool		said_not_ready; /* "waiting for the extension" logged */
	bool		first_round;	/* the start-up catch-up is not done yet */
	TimestampTz next_prune;		/* when to prune the outbox next */
	int			locked_spins;	/* rounds in a row that found due rows but
								 * could publish none (locked) */
	int			errors;			/* rounds in a row that failed */
	TimestampTz wake_at;		/* when the next round is due by the clock */
	bool		draining;		/* ringing doorbells (for the error path) */
	int			drain_errors;	/* doorbell batches in a row that failed */
	TimestampTz drain_after;	/* no doorbells before, after a failure */
} SchedulerState;

static MemoryContext SchedulerLoopContext = NULL;

static void herald_scheduler_detach(int code, Datum arg);
static void herald_scheduler_advertise(TimestampTz next_due);
static void herald_scheduler_begin(const char *activity);
static void herald_scheduler_commit(void);
static long herald_scheduler_round(SchedulerState *state);
static long herald_scheduler_publish(SchedulerState *state);
static long herald_backoff_ms(int attempts, long max_ms);

/*
 * herald_scheduler_register registers the worker with the postmaster. It is
 * restarted 5 s after a crash or after SIGTERM (exit code 1).
 */
void
herald_scheduler_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "herald");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "herald_scheduler_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "herald scheduler");
	snprintf(worker.bgw_type, BGW_MAXLEN, "herald scheduler");
	RegisterBackgroundWorker(&worker);
}

/*
 * herald_scheduler_detach clears the advertised latch when the worker exits.
 */
static void
herald_scheduler_detach(int code, Datum arg)
{
	SpinLockAcquire(&herald_shared->mutex);
	herald_shared->worker_latch = NULL;
	herald_shared->worker_pid = 0;
	herald_shared->next_due = DT_NOEND;
	SpinLockRelease(&herald_shared->mutex);
	herald_doorbell_detach();
}

/*
 * herald_scheduler_advertise publishes the time at which the worker will wake
 * by itself; backends wake it for anything due earlier (shmem.c). DT_NOEND
 * while a round runs makes every committing insert set the latch.
 */
static void
herald_scheduler_advertise(TimestampTz next_due)
{
	SpinLockAcquire(&herald_shared->mutex);
	herald_shared->next_due = next_due;
	SpinLockRelease(&herald_shared->mutex);
}

/*
 * herald_scheduler_begin starts a transaction with a snapshot, as every
 * background worker that runs SQL must.
 */
static void
herald_scheduler_begin(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

/*
 * herald_scheduler_commit commits and flushes the statistics, so that
 * autovacuum sees the rows the worker updates.
 */
static void
herald_scheduler_commit(void)
{
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * herald_backoff_ms doubles from 1 ms per attempt, up to max_ms.
 */
static long
herald_backoff_ms(int attempts, long max_ms)
{
	long		ms = 1L << Min(attempts, 20);

	return Min(ms, max_ms);
}

/*
 * herald_scheduler_publish publishes everything that is due, batch after
 * batch, and returns how long the worker may sleep before the next due time
 * (0: go round again at once; -1: nothing pending).
 */
static long
herald_scheduler_publish(SchedulerState *state)
{
	uint64		total = 0;
	TimestampTz next = DT_NOEND;	/* earliest pending version */
	TimestampTz future = DT_NOEND;	/* earliest pending one not due yet */
	TimestampTz now;

	for (;;)
	{
		uint64		n;
		int			batch = herald_worker_batch_size;
		bool		full;

		herald_scheduler_begin("herald: publish due events");
		/* Once found, the extension is assumed to stay; if it is dropped,
		 * the round fails and the error path asks again. */
		if (!state->ready)
			state->ready = herald_events_ready();
		if (!state->ready)
		{
			herald_scheduler_commit();
			return -1;
		}
		now = GetCurrentTimestamp();
		n = herald_publish_batch(batch, now);
		total += n;
		full = (n >= (uint64) batch);
		if (!full)
		{
			next = herald_next_due(DT_NOBEGIN);
			future = next;
			/* Due rows left that this round could not take are locked: look
			 * past them for the next time the worker must be up anyway. */
			if (next <= now && total == 0)
				future = herald_next_due(now);
		}
		herald_scheduler_commit();
		if (!full)
			break;
		CHECK_FOR_INTERRUPTS();
	}

	if (state->first_round && total > 0)
		ereport(LOG,
				(errmsg("herald scheduler published " UINT64_FORMAT " overdue events at start",
						total)));

	if (next == DT_NOEND)
	{
		state->locked_spins = 0;
		return -1;
	}
	now = GetCurrentTimestamp();
	if (next > now)
	{
		state->locked_spins = 0;
		return TimestampDifferenceMilliseconds(now, next);
	}
	/* Something is due already: go round again, unless this round published
	 * nothing, i.e. the due rows are locked by an undecided canceller (whose
	 * rollback wakes nobody). Then back off, but never past a later due time. */
	if (total > 0)
	{
		state->locked_spins = 0;
		return 0;
	}
	{
		long		backoff = herald_backoff_ms(state->locked_spins++, HERALD_LOCKED_BACKOFF_MAX_MS);

		if (future != DT_NOEND)
			backoff = Min(backoff, Max(TimestampDifferenceMilliseconds(now, future), 1));
		return backoff;
	}
}

/*
 * herald_scheduler_round does one round of work (publish, maybe prune) and
 * returns the time to sleep in milliseconds, -1 for "until woken".
 */
static long
herald_scheduler_round(SchedulerState *state)
{
	long		timeout;
	TimestampTz now;

	timeout = herald_scheduler_publish(state);
	state->first_round = false;

	if (!state->ready)
	{
		if (!state->said_not_ready)
			ereport(LOG,
					(errmsg("herald scheduler is waiting for extension \"herald\" in database \"%s\"",
							herald_database)));
		state->said_not_ready = true;
		state->first_round = true;
		return HERALD_NOT_READY_RETRY_MS;
	}
	if (state->said_not_ready)
		ereport(LOG,
				(errmsg("herald scheduler found extension \"herald\" in database \"%s\"",
						herald_database)));
	state->said_not_ready = false;

	now = GetCurrentTimestamp();
	if (now >= state->next_prune)
	{
		herald_scheduler_begin("herald: prune the outbox");
		(void) herald_prune_outbox();
		herald_scheduler_commit();
		now = GetCurrentTimestamp();
		state->next_prune = TimestampTzPlusMilliseconds(now, herald_prune_interval * 1000L);
	}
	{
		long		to_prune = TimestampDifferenceMilliseconds(now, state->next_prune);

		if (timeout < 0 || to_prune < timeout)
			timeout = to_prune;
	}
	return timeout;
}

void
herald_scheduler_main(Datum main_arg)
{
	SchedulerState state = {0};

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(herald_database, NULL, 0);
	pgstat_report_appname("herald scheduler");

	before_shmem_exit(herald_scheduler_detach, (Datum) 0);
	SpinLockAcquire(&herald_shared->mutex);
	herald_shared->worker_latch = &MyProc->procLatch;
	herald_shared->worker_pid = MyProcPid;
	herald_shared->next_due = DT_NOEND;
	SpinLockRelease(&herald_shared->mutex);

	SchedulerLoopContext = AllocSetContextCreate(TopMemoryContext,
												 "herald scheduler loop",
												 ALLOCSET_DEFAULT_SIZES);
	state.first_round = true;
	state.next_prune = GetCurrentTimestamp();

	ereport(LOG, (errmsg("herald scheduler started for database \"%s\"", herald_database)));
	herald_doorbell_attach();

	for (;;)
	{
		long		timeout = 0;
		volatile bool round;
		volatile bool more = false;
		volatile uint64 rang = 0;
		TimestampTz now;

		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/* A round is due at the advertised time, or when a commit that
		 * schedules an event woke us (doorbells wake us too, for less). */
		now = GetCurrentTimestamp();
		SpinLockAcquire(&herald_shared->mutex);
		round = herald_shared->event_wake || now >= state.wake_at;
		if (round)
		{
			/* Awake: every commit that schedules an event sets the latch. */
			herald_shared->event_wake = false;
			herald_shared->next_due = DT_NOEND;
		}
		SpinLockRelease(&herald_shared->mutex);

		MemoryContextSwitchTo(SchedulerLoopContext);
		PG_TRY();
		{
			if (round)
			{
				timeout = herald_scheduler_round(&state);
				state.errors = 0;
				if (timeout < 0 || timeout > HERALD_SAFETY_TIMEOUT_MS)
					timeout = HERALD_SAFETY_TIMEOUT_MS;
				state.wake_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout);
			}
			/* Ring committed doorbells, a bounded batch per turn, so that a
			 * flood of them never delays a due publication by much. */
			if (now >= state.drain_after)
			{
				bool		left = false;

				state.draining = true;
				rang = herald_doorbell_drain(HERALD_DOORBELL_BATCH, &left);
				state.draining = false;
				state.drain_errors = 0;
				more = left;
			}
		}
		PG_CATCH();
		{
			HOLD_INTERRUPTS();
			MemoryContextSwitchTo(SchedulerLoopContext);
			EmitErrorReport();
			AbortOutOfAnyTransaction();
			FlushErrorState();
			pgstat_report_activity(STATE_IDLE, NULL);
			RESUME_INTERRUPTS();
			more = false;
			if (state.draining)
			{
				/* e.g. a full notification queue: the doorbells stay in the
				 * ring; try again later, whoever sets the latch. */
				state.draining = false;
				timeout = herald_backoff_ms(10 + state.drain_errors++, HERALD_ERROR_BACKOFF_MAX_MS);
				state.drain_after = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout);
			}
			else
			{
				timeout = herald_backoff_ms(10 + state.errors++, HERALD_ERROR_BACKOFF_MAX_MS);
				state.wake_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout);
				state.ready = false;
			}
		}
		PG_END_TRY();
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(SchedulerLoopContext);

		now = GetCurrentTimestamp();
		if (more || now >= state.wake_at)
			continue;
		/* After ringing doorbells, let the next ones gather for a moment (one
		 * transaction rings them all) rather than waking for each commit;
		 * a latch set meanwhile stays set. */
		if (rang > 0 && !round)
		{
			(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 HERALD_DOORBELL_LINGER_MS, PG_WAIT_EXTENSION);
			continue;
		}
		timeout = TimestampDifferenceMilliseconds(now, state.wake_at);
		if (state.drain_errors > 0)
			timeout = Min(timeout, TimestampDifferenceMilliseconds(now, state.drain_after));
		if (timeout < 1)
			timeout = 1;
		/* Anything due before we wake by ourselves wakes us. */
		if (round)
			herald_scheduler_advertise(state.wake_at);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
	}
}
