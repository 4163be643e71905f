/*
 * auth.h — JWT HS256 (libsodium HMAC-SHA-256, base64url without padding), claims sub and exp.
 */
#ifndef HS_AUTH_H
#define HS_AUTH_H

#include <h2o.h>
#include <stddef.h>

/* hs_auth_init sets the key: SECRET, or a random per-start key on a loopback bind (logged).
 * Returns non-zero (after printing why) when SECRET is missing on a non-loopback bind. */
int hs_auth_init(void);
/* hs_auth_issue writes a token for sub, valid EXPIRY seconds, into out. Returns 0 or -1. */
int hs_auth_issue(const char *sub, char *out, size_t out_size);
/* hs_auth_issue_named: the same with a "name" claim (the username), so that streams named by
 * username (v2/v3) can be authorised as well as those named by user id. */
int hs_auth_issue_named(const char *sub, const char *name, char *out, size_t out_size);
/* hs_auth_verify checks a token (signature in constant time, alg HS256 only, exp). On success
 * returns 0 and copies sub; on failure returns -1 and sets *why to a message for the client. */
int hs_auth_verify(const char *token, char *sub, size_t sub_size, const char **why);
/* hs_auth_verify_named: hs_auth_verify, also copying the "name" claim ("" when absent). */
int hs_auth_verify_named(const char *token, char *sub, size_t sub_size, char *name, size_t name_size, const char **why);
/* hs_auth_bearer returns the token of "Authorization: Bearer <jwt>" or of the access_token
 * query parameter (EventSource cannot set headers), or NULL. */
const char *hs_auth_bearer(h2o_req_t *req);
/* hs_auth_require_user: for per-user streams. When auth is required (config.h:
 * hs_config_auth_required), the request must carry a valid token whose sub (user id) or name
 * (username) claim is user; otherwise
 * a 401 JSON error is sent and -1 returned. Returns 0 when the request may proceed. */
int hs_auth_require_user(h2o_req_t *req, const char *user);

#endif
