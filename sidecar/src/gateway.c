/* gateway.c — seed 000 v1-v3 SSE routes and the LISTEN connection. (Skeleton.) */
#include "modules.h"

void hs_gateway_routes(h2o_hostconf_t *host) {}
void hs_gateway_start(h2o_loop_t *loop) {}
void hs_gateway_stop(void) {}
