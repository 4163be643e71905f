/* static_files.c — the web page. (Skeleton.) */
#include "modules.h"

int hs_static_serve(h2o_req_t *req) { return -1; }
