/*-------------------------------------------------------------------------
 *
 * herald_errcodes.h
 *	  Every SQLSTATE that Herald raises itself, in one place.
 *
 * Herald's own codes use class "HR" (not defined by the SQL standard or by
 * PostgreSQL). They are documented in README.md, "SQLSTATEs".
 *
 *-------------------------------------------------------------------------
 */
#ifndef HERALD_ERRCODES_H
#define HERALD_ERRCODES_H

#include "utils/elog.h"

/* reports (transitions.c) */
#define ERRCODE_HERALD_INVALID_TRANSITION	MAKE_SQLSTATE('H','R','0','0','1')
#define ERRCODE_HERALD_REPORT_NOT_FOUND		MAKE_SQLSTATE('H','R','0','0','2')

/* users (password.c, sql/install/50_users.sql) */
#define ERRCODE_HERALD_USERNAME_TAKEN		MAKE_SQLSTATE('H','R','0','1','0')

/* broker events (sql/install/20_events.sql) */
#define ERRCODE_HERALD_EVENT_NOT_FOUND		MAKE_SQLSTATE('H','R','0','2','0')
#define ERRCODE_HERALD_EVENT_PUBLISHED		MAKE_SQLSTATE('H','R','0','2','1')
#define ERRCODE_HERALD_EVENT_NOT_OWNED		MAKE_SQLSTATE('H','R','0','2','2')
#define ERRCODE_HERALD_EVENT_CANCELLED		MAKE_SQLSTATE('H','R','0','2','3')

/* session uploads (sql/install/60_sessions.sql) */
#define ERRCODE_HERALD_INVALID_BATCH		MAKE_SQLSTATE('H','R','0','3','0')
#define ERRCODE_HERALD_SESSION_NOT_FOUND	MAKE_SQLSTATE('H','R','0','3','1')

#endif							/* HERALD_ERRCODES_H */
