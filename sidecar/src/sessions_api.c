/* sessions_api.c — seed 002 routes. (Skeleton.) */
#include "modules.h"

void hs_sessions_routes(h2o_hostconf_t *host) {}
