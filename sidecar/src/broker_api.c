/* broker_api.c — seed 001 routes. (Skeleton.) */
#include "modules.h"

int hs_broker_init(void) { return 0; }
void hs_broker_routes(h2o_hostconf_t *host) {}
