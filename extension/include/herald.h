/*-------------------------------------------------------------------------
 *
 * herald.h
 *	  Declarations shared by the files of the herald extension.
 *
 * Glossary, used the same way in every file:
 *	 stream   a named, totally ordered sequence of messages ("user:<name>",
 *			  "events", "database_events", ...).
 *	 seq      a message's position in its stream: 1, 2, 3 ... in commit order,
 *			  without holes.
 *	 outbox   the table that keeps every message of every stream for replay.
 *	 doorbell the NOTIFY on channel "herald" that tells listeners a stream has
 *			  new messages; the outbox, not the doorbell, is the source of truth.
 *	 worker   the background worker ("herald scheduler") that publishes due
 *			  events and prunes the outbox.
 *
 *-------------------------------------------------------------------------
 */
#ifndef HERALD_H
#define HERALD_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/relcache.h"
#include "access/htup.h"
#include "nodes/parsenodes.h"

#define HERALD_VERSION "0.1.0"
#define HERALD_CHANNEL "herald"

/* GUCs (herald.c) */
extern char *herald_database;			/* database the worker serves */
extern int	herald_worker_batch_size;	/* events published per transaction */
extern int	herald_outbox_retention;	/* seconds a message stays replayable */
extern int	herald_prune_interval;		/* seconds between outbox prunes */
extern bool herald_doorbell_via_worker;	/* hand doorbells to the worker */
extern int	herald_doorbell_ring_size;	/* kB of the doorbell ring */
extern bool herald_session_fk_per_batch;	/* sessions.c: foreign keys per batch */

/*
 * HeraldSharedState lives in shared memory (shmem.c): how backends find and
 * wake the worker.
 */
typedef struct HeraldSharedState
{
	slock_t		mutex;			/* protects the fields below */
	Latch	   *worker_latch;	/* the worker's procLatch, NULL when not running */
	pid_t		worker_pid;		/* 0 when not running */
	TimestampTz next_due;		/* when the worker next wakes by itself;
								 * DT_NOEND when it sleeps with no deadline */
	bool		event_wake;		/* set with the latch by herald_wake_worker:
								 * the worker must run a publication round */
} HeraldSharedState;

extern HeraldSharedState *herald_shared;

/* shmem.c */
extern void herald_shmem_install_hooks(void);
extern void herald_wake_worker(TimestampTz due);

/* wakeup.c: wake the worker when the current transaction commits */
extern void herald_wakeup_register_callbacks(void);
extern void herald_wakeup_at_commit(TimestampTz due);

/* announce.c: one doorbell per stream per transaction */
extern void herald_announce_register_callbacks(void);
extern void herald_announce_message(const char *stream, int64 seq,
									const char *kind, Datum data);

/* outbox.c: appending to a stream from C */
extern int64 herald_stream_append(const char *stream, const char *kind,
								  Datum data);
extern int64 herald_stream_append_many(const char *stream, int n,
									   const char *const *kinds,
									   const Datum *datas);

/* doorbell.c: the ring through which the worker rings the doorbells */
extern Size herald_doorbell_shmem_size(void);
extern void herald_doorbell_shmem_init(void);
extern bool herald_doorbell_reserve(const char *payloads, Size len, int npayloads);
extern void herald_doorbell_commit(void);
extern void herald_doorbell_abort(void);
extern void herald_doorbell_attach(void);
extern void herald_doorbell_detach(void);
extern uint64 herald_doorbell_drain(int max_payloads, bool *more);

/* publish.c: publication of due event versions (inside a transaction) */
extern bool herald_events_ready(void);
extern uint64 herald_publish_batch(int max_events, TimestampTz now);
extern TimestampTz herald_next_due(TimestampTz after);
extern bool herald_prune_outbox(void);

/*
 * tablewrite.c: one-row writes to herald's own tables without the executor
 * (no triggers, no CHECK constraints: the caller does their work).
 */
typedef struct HeraldTable
{
	Relation	rel;
	struct EState *estate;			/* for index maintenance */
	struct ResultRelInfo *rri;		/* the table and its open indexes */
	struct TupleTableSlot *slot;	/* the row found by herald_table_fetch_row */
	struct TupleTableSlot *newslot; /* the row being written */
} HeraldTable;

extern void herald_table_open(HeraldTable *t, const char *relname, AclMode mode);
extern void herald_table_close(HeraldTable *t);
extern int	herald_attnum(Relation rel, const char *name);
extern bool herald_table_fetch_row(HeraldTable *t, Datum key);
extern bool herald_table_update(HeraldTable *t, HeapTuple newtuple);
extern bool herald_table_settle(HeraldTable *t);
extern void herald_table_new_row(HeraldTable *t, Datum **values, bool **nulls);
extern void herald_table_set(HeraldTable *t, Datum *values, bool *nulls,
							 const char *name, Datum value);
extern void herald_table_insert(HeraldTable *t, const Datum *values,
								const bool *nulls);

/* scheduler.c */
extern void herald_scheduler_register(void);
extern PGDLLEXPORT void herald_scheduler_main(Datum main_arg);

#endif							/* HERALD_H */
