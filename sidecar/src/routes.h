/* routes.h — registration of every HTTP path (routes.c). */
#ifndef HS_ROUTES_H
#define HS_ROUTES_H

#include <h2o.h>

void hs_routes_register(h2o_hostconf_t *host);

#endif
