/*-------------------------------------------------------------------------
 *
 * announce.c
 *	  The doorbell: one NOTIFY on channel "herald" per stream per transaction.
 *	  (Skeleton; the outbox issue fills it in.)
 *
 *-------------------------------------------------------------------------
 */
#include "herald.h"

void
herald_announce_register_callbacks(void)
{
}
