/*-------------------------------------------------------------------------
 *
 * outbox.c
 *	  What the outbox's SQL (sql/install/30_outbox.sql) needs from C: the
 *	  retention setting as an interval.
 *
 * The outbox keeps every message of every stream for replay during
 * herald.outbox_retention; herald.prune_outbox() deletes older ones. The
 * setting lives in this library, so reading it through a function also
 * works in a session that has not loaded the library yet.
 *
 *-------------------------------------------------------------------------
 */
#include "herald.h"

#include "fmgr.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(herald_outbox_retention_interval);

/*
 * herald_outbox_retention_interval returns herald.outbox_retention as an
 * interval.
 */
Datum
herald_outbox_retention_interval(PG_FUNCTION_ARGS)
{
	Interval   *result = palloc0(sizeof(Interval));

	result->time = (int64) herald_outbox_retention * USECS_PER_SEC;
	PG_RETURN_INTERVAL_P(result);
}
