/* reports_api.c — seed 000 v4 routes. (Skeleton.) */
#include "modules.h"

void hs_reports_routes(h2o_hostconf_t *host) {}
