/*-------------------------------------------------------------------------
 *
 * wakeup.c
 *	  Commit-time wake-up of the worker: a statement that schedules an event
 *	  arms a per-transaction deadline; the worker's latch is set once, only if
 *	  the transaction commits.
 *
 *-------------------------------------------------------------------------
 */
#include "herald.h"

#include "access/xact.h"
#include "fmgr.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(herald_wake_worker_at);

static TimestampTz wakeup_due = DT_NOEND;	/* earliest due time armed in this
											 * transaction */

static void herald_wakeup_xact_callback(XactEvent event, void *arg);

void
herald_wakeup_register_callbacks(void)
{
	RegisterXactCallback(herald_wakeup_xact_callback, NULL);
}

/*
 * herald_wakeup_at_commit arms a wake-up for "due"; the earliest armed time
 * of the transaction wins. (A rolled-back subtransaction may leave an armed
 * time behind: the worker then wakes, finds nothing due, and sleeps again.)
 */
void
herald_wakeup_at_commit(TimestampTz due)
{
	if (due < wakeup_due)
		wakeup_due = due;
}

static void
herald_wakeup_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wakeup_due != DT_NOEND)
				herald_wake_worker(wakeup_due);
			wakeup_due = DT_NOEND;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			wakeup_due = DT_NOEND;
			break;
		default:
			break;
	}
}

/*
 * herald_wake_worker_at implements herald._wake_worker_at(due): SQL's way to
 * call herald_wakeup_at_commit (herald.insert_event calls it for a future
 * version).
 */
Datum
herald_wake_worker_at(PG_FUNCTION_ARGS)
{
	TimestampTz due = PG_GETARG_TIMESTAMPTZ(0);

	if (!TIMESTAMP_NOT_FINITE(due))
		herald_wakeup_at_commit(due);
	PG_RETURN_VOID();
}
