/*
 * modules.h — what each feature module exposes to main.c and routes.c.
 * One module, one file pair; the routes of a module are registered by its *_routes function.
 */
#ifndef HS_MODULES_H
#define HS_MODULES_H

#include <h2o.h>

/* gateway.c — seed 000 v1-v3 SSE routes and the LISTEN connection feeding every SSE stream */
void hs_gateway_routes(h2o_hostconf_t *host);
void hs_gateway_start(h2o_loop_t *loop);
void hs_gateway_stop(void);

/* reports_api.c — seed 000 v4: /v4/... */
void hs_reports_routes(h2o_hostconf_t *host);

/* broker_api.c — seed 001: /users /login /events /insert; hs_broker_init returns non-zero
 * (after printing why) when the process must not start (e.g. no SECRET on a public bind). */
int hs_broker_init(void);
void hs_broker_routes(h2o_hostconf_t *host);

/* sessions_api.c — seed 002: /ws /session/<id> /database_events */
void hs_sessions_routes(h2o_hostconf_t *host);

/* static_files.c — the web page; hs_static_serve returns 0 when it answered, -1 otherwise */
int hs_static_serve(h2o_req_t *req);

/* followermaze.c — seed 004, on its own thread and loop */
int hs_followermaze_start(void);
void hs_followermaze_stop(void);

/* relay.c — seed 003, on its own thread and loop, with supervised worker processes */
int hs_relay_start(void);
void hs_relay_stop(void);

#endif
