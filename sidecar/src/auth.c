/*
 * auth.c — JSON Web Tokens for the Broker API and the per-user streams (see auth.h).
 *
 * A token is base64url(header) "." base64url(claims) "." base64url(HMAC-SHA-256), every part
 * base64url without padding (RFC 7515/7519). Herald only makes and accepts one kind:
 *   header  {"alg":"HS256","typ":"JWT"}   — any other alg ("none", "HS512", ...) is refused;
 *   claims  {"sub":"<subject>","iat":<now>,"exp":<now + EXPIRY>} (+ "name": the username, from /login).
 * The HMAC key is the bytes of SECRET as given (the streaming libsodium API takes keys of any
 * length, like every other JWT library, so tokens interoperate), or 32 random bytes drawn at
 * start when SECRET is empty and the server listens on loopback only (tokens then die with
 * the process). Verification checks, in this order: shape and base64url, the header, the
 * signature (constant time), then the claims — claims are never parsed before the signature
 * has been checked.
 *
 * Everything here is pure computation on the loop thread (a few microseconds per token); the
 * only I/O-ish thing, "does the user still exist", is the SQL wrappers' job (broker_api.c).
 */
#include "auth.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config.h"
#include "http_util.h"
#include "log.h"
#include "metrics.h"

#define MODULE "auth"
/* auth_max_token bounds what we are willing to decode (a Herald token is ~200 bytes). */
#define AUTH_MAX_TOKEN 4096
#define B64_VARIANT sodium_base64_VARIANT_URLSAFE_NO_PADDING

static unsigned char *auth_key;
static size_t auth_key_len;

/* hs_auth_init sets the HMAC key from SECRET, or draws a random one on loopback. */
int hs_auth_init(void)
{
    const char *secret = hs_config.secret != NULL ? hs_config.secret : "";
    if (hs_config.expiry <= 0) {
        fprintf(stderr, "herald-sidecar: EXPIRY must be at least 1 second (got %d)\n", hs_config.expiry);
        return 1;
    }
    if (auth_key != NULL) {
        sodium_memzero(auth_key, auth_key_len);
        free(auth_key);
        auth_key = NULL;
        auth_key_len = 0;
    }
    if (secret[0] != '\0') {
        auth_key_len = strlen(secret);
        auth_key = malloc(auth_key_len);
        if (auth_key == NULL)
            return 1;
        memcpy(auth_key, secret, auth_key_len);
        if (auth_key_len < 32)
            hs_warn(MODULE, "SECRET is only %zu bytes long: use at least 32 random bytes", auth_key_len);
        return 0;
    }
    if (!hs_config_is_loopback()) {
        fprintf(stderr,
                "herald-sidecar: SECRET is not set and the server binds to %s (not loopback): refusing to start.\n"
                "  Set SECRET to a long random string (e.g. SECRET=$(openssl rand -hex 32)) so that tokens\n"
                "  cannot be forged, or bind to 127.0.0.1 for a random per-start key.\n",
                hs_config.host);
        return 1;
    }
    auth_key_len = crypto_auth_hmacsha256_KEYBYTES;
    auth_key = malloc(auth_key_len);
    if (auth_key == NULL)
        return 1;
    randombytes_buf(auth_key, auth_key_len);
    hs_warn(MODULE, "SECRET is not set: signing tokens with a random per-start key (loopback bind only; "
                    "tokens are invalid after a restart)");
    return 0;
}

/* sign computes the HMAC-SHA-256 of msg with the configured key. */
static void sign(const char *msg, size_t len, unsigned char mac[crypto_auth_hmacsha256_BYTES])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, auth_key, auth_key_len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof(st));
}

/* b64_append encodes bin as base64url without padding at out + *pos; -1 if it does not fit. */
static int b64_append(char *out, size_t out_size, size_t *pos, const void *bin, size_t len)
{
    size_t need = sodium_base64_ENCODED_LEN(len, B64_VARIANT); /* includes the NUL */
    if (*pos + need > out_size)
        return -1;
    sodium_bin2base64(out + *pos, need, bin, len, B64_VARIANT);
    *pos += strlen(out + *pos);
    return 0;
}

/* hs_auth_issue writes header.claims.signature for sub into out. */
int hs_auth_issue(const char *sub, char *out, size_t out_size)
{
    return hs_auth_issue_named(sub, NULL, out, out_size);
}

/* hs_auth_issue_named: the same, with a "name" claim (the username) when name is not NULL. */
int hs_auth_issue_named(const char *sub, const char *name, char *out, size_t out_size)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    if (auth_key == NULL || sub == NULL || out == NULL || out_size == 0)
        return -1;
    time_t now = time(NULL);
    json_t *claims = json_pack("{s:s, s:I, s:I}", "sub", sub, "iat", (json_int_t)now, "exp", (json_int_t)now + hs_config.expiry);
    if (claims == NULL)
        return -1;
    if (name != NULL && json_object_set_new(claims, "name", json_string(name)) != 0) {
        json_decref(claims);
        return -1;
    }
    char *cj = json_dumps(claims, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(claims);
    if (cj == NULL)
        return -1;
    size_t pos = 0;
    int rc = b64_append(out, out_size, &pos, header, sizeof(header) - 1);
    if (rc == 0 && pos + 1 < out_size) {
        out[pos++] = '.';
        rc = b64_append(out, out_size, &pos, cj, strlen(cj));
    } else {
        rc = -1;
    }
    free(cj);
    if (rc == 0) {
        unsigned char mac[crypto_auth_hmacsha256_BYTES];
        sign(out, pos, mac);
        if (pos + 1 < out_size) {
            out[pos++] = '.';
            rc = b64_append(out, out_size, &pos, mac, sizeof(mac));
        } else {
            rc = -1;
        }
    }
    if (rc != 0) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

/* b64_decode decodes one base64url part (no padding, no other characters) into a malloc'd
 * NUL-terminated buffer. Returns NULL when it is not valid base64url. */
static unsigned char *b64_decode(const char *s, size_t len, size_t *out_len)
{
    if (len == 0)
        return NULL;
    size_t cap = len * 3 / 4 + 1;
    unsigned char *bin = malloc(cap + 1);
    const char *end = NULL;
    if (bin == NULL)
        return NULL;
    if (sodium_base642bin(bin, cap, s, len, NULL, out_len, &end, B64_VARIANT) != 0 || end != s + len) {
        free(bin);
        return NULL;
    }
    bin[*out_len] = '\0';
    return bin;
}

/* decode_json_part decodes a base64url part holding a JSON object. */
static json_t *decode_json_part(const char *s, size_t len)
{
    size_t n;
    unsigned char *bin = b64_decode(s, len, &n);
    if (bin == NULL)
        return NULL;
    json_t *j = json_loadb((const char *)bin, n, JSON_REJECT_DUPLICATES, NULL);
    free(bin);
    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* hs_auth_verify: see auth.h. The messages in *why go to clients as is. */
int hs_auth_verify(const char *token, char *sub, size_t sub_size, const char **why)
{
    return hs_auth_verify_named(token, sub, sub_size, NULL, 0, why);
}

/* hs_auth_verify_named: hs_auth_verify, also copying the optional "name" claim ("" when absent). */
int hs_auth_verify_named(const char *token, char *sub, size_t sub_size, char *name, size_t name_size, const char **why)
{
    if (name != NULL && name_size > 0)
        name[0] = '\0';
    json_t *header = NULL, *claims = NULL;
    unsigned char *sig = NULL;
    int ok = 0;

    if (auth_key == NULL) {
        *why = "authentication is not initialised";
        return -1;
    }
    if (token == NULL || token[0] == '\0') {
        *why = "missing token: send Authorization: Bearer <jwt> (the jwt comes from POST /login)";
        return -1;
    }
    size_t len = strlen(token);
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (len > AUTH_MAX_TOKEN || dot1 == NULL || dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL) {
        *why = "malformed token: expected header.claims.signature in base64url";
        return -1;
    }
    if ((header = decode_json_part(token, (size_t)(dot1 - token))) == NULL) {
        *why = "malformed token: the header is not base64url-encoded JSON";
        goto Exit;
    }
    json_t *alg = json_object_get(header, "alg");
    if (!json_is_string(alg) || strcmp(json_string_value(alg), "HS256") != 0) {
        *why = "token algorithm must be HS256";
        goto Exit;
    }
    json_t *typ = json_object_get(header, "typ");
    if (typ != NULL && !(json_is_string(typ) && strcasecmp(json_string_value(typ), "JWT") == 0)) {
        *why = "malformed token: typ must be JWT";
        goto Exit;
    }
    if (json_object_get(header, "crit") != NULL) {
        *why = "malformed token: unsupported critical header parameters";
        goto Exit;
    }

    size_t sig_len = 0;
    const char *sig_b64 = dot2 + 1;
    if ((sig = b64_decode(sig_b64, len - (size_t)(sig_b64 - token), &sig_len)) == NULL) {
        *why = "malformed token: the signature is not base64url";
        goto Exit;
    }
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    sign(token, (size_t)(dot2 - token), mac);
    if (sig_len != sizeof(mac) || sodium_memcmp(mac, sig, sizeof(mac)) != 0) {
        *why = "invalid token signature";
        goto Exit;
    }

    if ((claims = decode_json_part(dot1 + 1, (size_t)(dot2 - dot1 - 1))) == NULL) {
        *why = "malformed token: the claims are not base64url-encoded JSON";
        goto Exit;
    }
    json_t *exp = json_object_get(claims, "exp");
    if (!json_is_number(exp)) {
        *why = "malformed token: the exp claim is missing or not a number";
        goto Exit;
    }
    double now = (double)time(NULL);
    if (json_number_value(exp) <= now) {
        *why = "token expired: log in again (POST /login)";
        goto Exit;
    }
    json_t *nbf = json_object_get(claims, "nbf");
    if (nbf != NULL && (!json_is_number(nbf) || json_number_value(nbf) > now)) {
        *why = "token not valid yet (nbf)";
        goto Exit;
    }
    json_t *s = json_object_get(claims, "sub");
    if (!json_is_string(s) || json_string_length(s) == 0) {
        *why = "malformed token: the sub claim is missing or not a string";
        goto Exit;
    }
    if (json_string_length(s) >= sub_size || strlen(json_string_value(s)) != json_string_length(s)) {
        *why = "malformed token: the sub claim is too long";
        goto Exit;
    }
    memcpy(sub, json_string_value(s), json_string_length(s) + 1);
    json_t *n = json_object_get(claims, "name");
    if (name != NULL && json_is_string(n) && json_string_length(n) < name_size && strlen(json_string_value(n)) == json_string_length(n))
        memcpy(name, json_string_value(n), json_string_length(n) + 1);
    ok = 1;

Exit:
    json_decref(header);
    json_decref(claims);
    free(sig);
    return ok ? 0 : -1;
}

/* hs_auth_bearer finds the token of a request (header first, then ?access_token=). */
const char *hs_auth_bearer(h2o_req_t *req)
{
    const char *h = hs_http_header(req, "authorization");
    if (h != NULL) {
        while (*h == ' ' || *h == '\t')
            h++;
        if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
            return NULL;
        h += 6;
        while (*h == ' ' || *h == '\t')
            h++;
        size_t n = strlen(h);
        while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
            n--;
        return n > 0 ? h2o_strdup(&req->pool, h, n).base : NULL;
    }
    const char *q = hs_http_query_param(req, "access_token");
    return q != NULL && q[0] != '\0' ? q : NULL;
}

/* hs_auth_require_user: 0 when auth is off or the token's sub is user; else 401 sent, -1. */
int hs_auth_require_user(h2o_req_t *req, const char *user)
{
    if (!hs_config_auth_required())
        return 0;
    char sub[256], name[256];
    const char *why = NULL;
    const char *token = hs_auth_bearer(req);
    if (hs_auth_verify_named(token, sub, sizeof(sub), name, sizeof(name), &why) != 0) {
        HS_METRIC_INC(auth_refused_total);
        hs_http_send_error(req, 401, "%s", why);
        return -1;
    }
    /* per-user streams are named by user id (v4) or by username (v2/v3: the "name" claim) */
    if (user == NULL || (strcmp(sub, user) != 0 && (name[0] == '\0' || strcmp(name, user) != 0))) {
        HS_METRIC_INC(auth_refused_total);
        hs_http_send_error(req, 401, "this token belongs to another user");
        return -1;
    }
    return 0;
}
