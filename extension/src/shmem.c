/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  The shared state through which backends find and wake the worker.
 *
 *-------------------------------------------------------------------------
 */
#include "herald.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

HeraldSharedState *herald_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void herald_shmem_request(void);
static void herald_shmem_startup(void);

void
herald_shmem_install_hooks(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = herald_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = herald_shmem_startup;
}

static void
herald_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(HeraldSharedState)));
	RequestAddinShmemSpace(herald_doorbell_shmem_size());
}

static void
herald_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	herald_shared = ShmemInitStruct("herald", sizeof(HeraldSharedState), &found);
	if (!found)
	{
		SpinLockInit(&herald_shared->mutex);
		herald_shared->worker_latch = NULL;
		herald_shared->worker_pid = 0;
		herald_shared->next_due = DT_NOEND;
		herald_shared->event_wake = false;
	}
	herald_doorbell_shmem_init();
	LWLockRelease(AddinShmemInitLock);
}

/*
 * herald_wake_worker sets the worker's latch when "due" is earlier than the
 * time it will wake by itself. Without shared memory (library not preloaded)
 * there is no worker and nothing to do.
 */
void
herald_wake_worker(TimestampTz due)
{
	Latch	   *latch = NULL;

	if (herald_shared == NULL)
		return;
	SpinLockAcquire(&herald_shared->mutex);
	if (herald_shared->worker_latch != NULL && due < herald_shared->next_due)
	{
		latch = herald_shared->worker_latch;
		herald_shared->next_due = due;
		herald_shared->event_wake = true;
	}
	SpinLockRelease(&herald_shared->mutex);
	if (latch)
		SetLatch(latch);
}
