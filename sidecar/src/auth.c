/* auth.c — see auth.h. (Skeleton: the Broker issue implements it.) */
#include "auth.h"

#include "config.h"
#include "http_util.h"

int hs_auth_init(void) { return 0; }
int hs_auth_issue(const char *sub, char *out, size_t out_size) { return -1; }
int hs_auth_verify(const char *token, char *sub, size_t sub_size, const char **why)
{
    *why = "not implemented";
    return -1;
}
const char *hs_auth_bearer(h2o_req_t *req) { return NULL; }
int hs_auth_require_user(h2o_req_t *req, const char *user)
{
    if (!hs_config_auth_required())
        return 0;
    hs_http_send_error(req, 401, "authentication required");
    return -1;
}
