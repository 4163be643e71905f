/*-------------------------------------------------------------------------
 *
 * scheduler.c
 *	  The background worker ("herald scheduler"): publishes due events at
 *	  their time and prunes the outbox. It sleeps on its latch until the next
 *	  deadline; backends wake it through shared memory (shmem.c, wakeup.c).
 *
 *-------------------------------------------------------------------------
 */
#include "herald.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/timestamp.h"

static void herald_scheduler_detach(int code, Datum arg);

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
}

void
herald_scheduler_main(Datum main_arg)
{
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

	ereport(LOG, (errmsg("herald scheduler started for database \"%s\"", herald_database)));

	for (;;)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 60 * 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
}
