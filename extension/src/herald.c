/*-------------------------------------------------------------------------
 *
 * herald.c
 *	  Module entry point: settings, callbacks and the background worker.
 *	  No logic lives here; see herald.h for the glossary.
 *
 *-------------------------------------------------------------------------
 */
#include "herald.h"

#include <limits.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

char	   *herald_database = NULL;
int			herald_worker_batch_size = 1000;
int			herald_outbox_retention = 7 * 24 * 3600;
int			herald_prune_interval = 60;

void		_PG_init(void);

PG_FUNCTION_INFO_V1(herald_version);

/*
 * _PG_init defines the settings, installs the per-backend transaction
 * callbacks and, when loaded through shared_preload_libraries, the shared
 * memory and the background worker. Everything but the worker works when the
 * library is loaded on demand.
 */
void
_PG_init(void)
{
	if (IsBinaryUpgrade)
		return;

	DefineCustomIntVariable("herald.outbox_retention",
							"How long a stream message stays replayable.",
							"Older messages are pruned by the background worker; a replay "
							"from a pruned position is answered with a reset.",
							&herald_outbox_retention, 7 * 24 * 3600, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("herald.prune_interval",
							"Time between two prunes of the outbox by the background worker.",
							NULL, &herald_prune_interval, 60, 1, 24 * 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("herald.worker_batch_size",
							"Events the background worker publishes per transaction.",
							NULL, &herald_worker_batch_size, 1000, 1, 1000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomBoolVariable("herald.doorbell_via_worker",
							 "Hand the doorbells of committing transactions to the background worker.",
							 "When on, and the worker serves this database, a committing transaction "
							 "leaves its doorbells in shared memory and the worker sends the NOTIFYs; "
							 "when off, or without the worker, the transaction sends them itself.",
							 &herald_doorbell_via_worker, true,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("herald.session_fk_per_batch",
							 "Store uploaded session events with their foreign keys enforced per batch.",
							 "When on, the fast path of herald.ingest_session_batch(es) writes the events "
							 "like COPY and enforces their foreign keys with row locks taken once per "
							 "batch; when off, with PostgreSQL's per-row checks (slower, same guarantee).",
							 &herald_session_fk_per_batch, true,
							 PGC_USERSET, 0, NULL, NULL, NULL);

	herald_announce_register_callbacks();
	herald_wakeup_register_callbacks();

	if (!process_shared_preload_libraries_in_progress)
		return;

	DefineCustomStringVariable("herald.database",
							   "Database whose events the background worker publishes.",
							   NULL, &herald_database, "herald",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("herald.doorbell_ring_size",
							"Shared memory for doorbells waiting for the background worker.",
							"When it is full, committing transactions wait up to a second, "
							"then send their doorbells themselves.",
							&herald_doorbell_ring_size, 4096, 64, 1024 * 1024,
							PGC_POSTMASTER, GUC_UNIT_KB, NULL, NULL, NULL);
	MarkGUCPrefixReserved("herald");

	herald_shmem_install_hooks();
	herald_scheduler_register();
}

/*
 * herald_version returns the version of the loaded library.
 */
Datum
herald_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(HERALD_VERSION));
}
