/*
 * test_jwt.c — unit test of auth.c: tokens made by hs_auth_issue verify, tokens made by other
 * JWT libraries verify (fixed vectors computed with node's crypto), and every kind of bad
 * token is refused with its own reason: malformed, bad base64url, alg none / HS512, wrong
 * signature, tampered claims, expired, not yet valid, missing claims. Also the start-up rule:
 * no SECRET on a non-loopback bind refuses to start.
 * Exit status: 0 when every check passed; each failure is printed.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "config.h"

#include "unit.h"

static void set_config(const char *host, const char *secret, int expiry)
{
    hs_config.host = (char *)host;
    hs_config.secret = (char *)secret;
    hs_config.expiry = expiry;
    hs_config.auth = (char *)"auto";
}

static void b64(const void *bin, size_t len, char *out, size_t out_size)
{
    sodium_bin2base64(out, out_size, bin, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* forge builds header.claims.signature from raw JSON texts with an independent HMAC. */
static void forge(const char *header, const char *claims, const char *key, char *out, size_t out_size)
{
    char h[1024], c[1024], s[128];
    b64(header, strlen(header), h, sizeof(h));
    b64(claims, strlen(claims), c, sizeof(c));
    snprintf(out, out_size, "%s.%s", h, c);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, strlen(key));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)out, strlen(out));
    crypto_auth_hmacsha256_final(&st, mac);
    b64(mac, sizeof(mac), s, sizeof(s));
    strncat(out, ".", out_size - strlen(out) - 1);
    strncat(out, s, out_size - strlen(out) - 1);
}

/* refused checks that token is refused with a reason containing want. */
static void refused(const char *name, const char *token, const char *want)
{
    char sub[128] = "untouched";
    const char *why = NULL;
    int rc = hs_auth_verify(token, sub, sizeof(sub), &why);
    CHECK(rc == -1, "%s: expected refusal, got acceptance (sub=%s)", name, sub);
    CHECK(rc != -1 || (why != NULL && strstr(why, want) != NULL), "%s: reason \"%s\" does not contain \"%s\"", name,
          why ? why : "(null)", want);
}

static void accepted(const char *name, const char *token, const char *want_sub)
{
    char sub[128] = "";
    const char *why = NULL;
    int rc = hs_auth_verify(token, sub, sizeof(sub), &why);
    CHECK(rc == 0, "%s: refused: %s", name, why ? why : "(null)");
    CHECK(rc != 0 || strcmp(sub, want_sub) == 0, "%s: sub \"%s\" != \"%s\"", name, sub, want_sub);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (sodium_init() < 0) {
        printf("FAIL sodium_init\n");
        return 1;
    }
    const char *good_header = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char tok[2048], tok2[2048], claims[512];
    time_t now = time(NULL);

    /* start-up rule */
    set_config("0.0.0.0", "", 3600);
    CHECK(hs_auth_init() != 0, "no SECRET on 0.0.0.0 must refuse to start");
    set_config("10.1.2.3", "", 3600);
    CHECK(hs_auth_init() != 0, "no SECRET on 10.1.2.3 must refuse to start");
    set_config("127.0.0.1", "s3cret-s3cret-s3cret-s3cret-s3cret", 0);
    CHECK(hs_auth_init() != 0, "EXPIRY=0 must refuse to start");

    /* random per-start key on loopback: issue/verify round trip, and a new key kills old tokens */
    set_config("127.0.0.1", "", 3600);
    CHECK(hs_auth_init() == 0, "no SECRET on loopback must start");
    CHECK(hs_auth_issue("alice", tok, sizeof(tok)) == 0, "issue with a random key");
    accepted("random key round trip", tok, "alice");
    CHECK(hs_auth_init() == 0, "second init on loopback");
    refused("token of a previous random key", tok, "signature");

    /* fixed SECRET: interop with tokens made elsewhere (node crypto.createHmac) */
    set_config("0.0.0.0", "your-256-bit-secret", 3600);
    CHECK(hs_auth_init() == 0, "SECRET set on 0.0.0.0 must start");
    accepted("node-made token",
             "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI5YjJmM2MxZS0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwMDEiLCJleHAiOjQxMDI0NDQ4MDB9."
             "SkVmZfKOBktQKr_bIxIcxCNTSUH8T-7USc9vEYBEgGs",
             "9b2f3c1e-0000-4000-8000-000000000001");
    char longkey[101];
    memset(longkey, 'k', 100);
    longkey[100] = '\0';
    set_config("127.0.0.1", longkey, 3600);
    CHECK(hs_auth_init() == 0, "100-byte SECRET");
    accepted("node-made token, key longer than a block",
             "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1IiwiZXhwIjo0MTAyNDQ0ODAwfQ.NDMaWw6yiDs_bLD3bbJb9xGlWWFXx65Dwvjdb3Bd26A", "u");

    const char *key = "unit-test-secret-unit-test-secret";
    set_config("127.0.0.1", key, 60);
    CHECK(hs_auth_init() == 0, "init with a SECRET");

    /* issued tokens: shape, claims, round trip, JSON escaping of sub */
    CHECK(hs_auth_issue("d0c5a3e2-1111-4222-8333-444455556666", tok, sizeof(tok)) == 0, "issue");
    accepted("issued token", tok, "d0c5a3e2-1111-4222-8333-444455556666");
    CHECK(strchr(tok, '=') == NULL && strchr(tok, '+') == NULL && strchr(tok, '/') == NULL, "issued token is not base64url without padding: %s", tok);
    {
        const char *d1 = strchr(tok, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
        CHECK(d1 != NULL && d2 != NULL, "issued token has three parts");
        if (d1 != NULL && d2 != NULL) {
            unsigned char bin[512];
            size_t n = 0;
            CHECK(sodium_base642bin(bin, sizeof(bin) - 1, d1 + 1, (size_t)(d2 - d1 - 1), NULL, &n, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0, "claims decode");
            bin[n] = '\0';
            json_t *j = json_loads((char *)bin, 0, NULL);
            json_int_t exp = j ? json_integer_value(json_object_get(j, "exp")) : 0;
            CHECK(j != NULL && exp >= now + 60 && exp <= now + 62, "exp is now + EXPIRY: %s", (char *)bin);
            json_decref(j);
            /* an independent HMAC over the same input gives the same signature */
            char again[2048];
            size_t hlen = (size_t)(d1 - tok);
            char header[256];
            CHECK(sodium_base642bin((unsigned char *)header, sizeof(header) - 1, tok, hlen, NULL, &n, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0, "header decode");
            header[n] = '\0';
            CHECK(strcmp(header, good_header) == 0, "header is %s", header);
            forge(header, (char *)bin, key, again, sizeof(again));
            CHECK(strcmp(again, tok) == 0, "independent signature differs:\n  %s\n  %s", again, tok);
        }
    }
    CHECK(hs_auth_issue("we\"ird\\sub", tok, sizeof(tok)) == 0, "issue with quotes");
    accepted("sub with quotes", tok, "we\"ird\\sub");
    CHECK(hs_auth_issue("alice", tok, 20) == -1, "issue into a too-small buffer must fail");

    /* forged by us with the right key: accepted; wrong key: refused */
    snprintf(claims, sizeof(claims), "{\"sub\":\"bob\",\"exp\":%lld}", (long long)now + 100);
    forge(good_header, claims, key, tok, sizeof(tok));
    accepted("forged with the right key", tok, "bob");
    forge(good_header, claims, "another-secret", tok, sizeof(tok));
    refused("wrong key", tok, "invalid token signature");

    /* tampered claims, signature kept */
    forge(good_header, claims, key, tok, sizeof(tok));
    snprintf(claims, sizeof(claims), "{\"sub\":\"mallory\",\"exp\":%lld}", (long long)now + 100);
    forge(good_header, claims, key, tok2, sizeof(tok2));
    {
        char mixed[4096];
        const char *sig1 = strrchr(tok, '.');
        size_t head2 = (size_t)(strrchr(tok2, '.') - tok2);
        snprintf(mixed, sizeof(mixed), "%.*s%s", (int)head2, tok2, sig1);
        refused("claims swapped under an old signature", mixed, "invalid token signature");
        /* one flipped character of the signature */
        strcpy(mixed, tok);
        char *last = mixed + strlen(mixed) - 2;
        *last = *last == 'A' ? 'B' : 'A';
        refused("flipped signature character", mixed, "signature");
        /* signature cut short */
        strcpy(mixed, tok);
        mixed[strlen(mixed) - 4] = '\0';
        refused("truncated signature", mixed, "signature");
        /* empty signature */
        strcpy(mixed, tok);
        *(strrchr(mixed, '.') + 1) = '\0';
        refused("empty signature", mixed, "signature");
    }

    /* algorithms */
    snprintf(claims, sizeof(claims), "{\"sub\":\"bob\",\"exp\":%lld}", (long long)now + 100);
    forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", claims, key, tok, sizeof(tok));
    refused("alg none (signed)", tok, "HS256");
    {
        char h[256], c[512];
        b64("{\"alg\":\"none\"}", 14, h, sizeof(h));
        b64(claims, strlen(claims), c, sizeof(c));
        snprintf(tok, sizeof(tok), "%s.%s.", h, c);
        refused("alg none, no signature", tok, "HS256");
    }
    forge("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", claims, key, tok, sizeof(tok));
    refused("alg HS512", tok, "HS256");
    forge("{\"alg\":\"hs256\"}", claims, key, tok, sizeof(tok));
    refused("alg hs256 (case)", tok, "HS256");
    forge("{\"typ\":\"JWT\"}", claims, key, tok, sizeof(tok));
    refused("alg missing", tok, "HS256");
    forge("{\"alg\":256}", claims, key, tok, sizeof(tok));
    refused("alg not a string", tok, "HS256");
    forge("{\"alg\":\"HS256\"}", claims, key, tok, sizeof(tok));
    accepted("alg HS256 without typ", tok, "bob");
    forge("{\"alg\":\"HS256\",\"alg\":\"none\"}", claims, key, tok, sizeof(tok));
    refused("duplicate alg", tok, "malformed");
    forge("{\"alg\":\"HS256\",\"crit\":[\"b64\"]}", claims, key, tok, sizeof(tok));
    refused("crit header", tok, "malformed");

    /* expiry and claims */
    snprintf(claims, sizeof(claims), "{\"sub\":\"bob\",\"exp\":%lld}", (long long)now - 1);
    forge(good_header, claims, key, tok, sizeof(tok));
    refused("expired a second ago", tok, "expired");
    forge(good_header, "{\"sub\":\"bob\",\"exp\":1000000000}", key, tok, sizeof(tok));
    refused("expired in 2001", tok, "expired");
    forge(good_header, "{\"sub\":\"bob\"}", key, tok, sizeof(tok));
    refused("no exp", tok, "exp");
    forge(good_header, "{\"sub\":\"bob\",\"exp\":\"4102444800\"}", key, tok, sizeof(tok));
    refused("exp as a string", tok, "exp");
    snprintf(claims, sizeof(claims), "{\"exp\":%lld}", (long long)now + 100);
    forge(good_header, claims, key, tok, sizeof(tok));
    refused("no sub", tok, "sub");
    snprintf(claims, sizeof(claims), "{\"sub\":42,\"exp\":%lld}", (long long)now + 100);
    forge(good_header, claims, key, tok, sizeof(tok));
    refused("sub not a string", tok, "sub");
    snprintf(claims, sizeof(claims), "{\"sub\":\"\",\"exp\":%lld}", (long long)now + 100);
    forge(good_header, claims, key, tok, sizeof(tok));
    refused("empty sub", tok, "sub");
    snprintf(claims, sizeof(claims), "{\"sub\":\"bo\\u0000b\",\"exp\":%lld}", (long long)now + 100);
    forge(good_header, claims, key, tok, sizeof(tok));
    refused("sub with NUL (jansson refuses \\u0000)", tok, "malformed");
    snprintf(claims, sizeof(claims), "{\"sub\":\"%0200d\",\"exp\":%lld}", 7, (long long)now + 100);
    forge(good_header, claims, key, tok, sizeof(tok));
    refused("sub longer than the buffer", tok, "sub");
    snprintf(claims, sizeof(claims), "{\"sub\":\"bob\",\"exp\":%lld,\"nbf\":%lld}", (long long)now + 100, (long long)now + 50);
    forge(good_header, claims, key, tok, sizeof(tok));
    refused("not before in the future", tok, "nbf");
    forge(good_header, "[1,2]", key, tok, sizeof(tok));
    refused("claims not an object", tok, "malformed");
    forge(good_header, "{\"sub\":", key, tok, sizeof(tok));
    refused("claims not JSON", tok, "malformed");

    /* shapes */
    refused("NULL", NULL, "missing");
    refused("empty", "", "missing");
    refused("one part", "abc", "malformed");
    refused("two parts", "abc.def", "malformed");
    refused("four parts", "a.b.c.d", "malformed");
    refused("dots only", "..", "malformed");
    refused("header not base64url", "e$J.e30.AAAA", "malformed");
    snprintf(claims, sizeof(claims), "{\"sub\":\"bob\",\"exp\":%lld}", (long long)now + 100);
    forge(good_header, claims, key, tok, sizeof(tok));
    {
        /* padded base64 (standard JWTs never pad) */
        char padded[4096];
        const char *d1 = strchr(tok, '.');
        snprintf(padded, sizeof(padded), "%.*s==%s", (int)(d1 - tok), tok, d1);
        refused("padded header", padded, "malformed");
        /* standard alphabet instead of URL-safe */
        strcpy(padded, tok);
        for (char *p = padded; *p; p++)
            if (*p == '-')
                *p = '+';
        if (strchr(tok, '-') != NULL)
            refused("standard base64 alphabet", padded, "");
        /* an enormous token */
        char *huge = malloc(100000);
        memset(huge, 'A', 99999);
        huge[99999] = '\0';
        huge[10] = '.';
        huge[20] = '.';
        refused("100 kB token", huge, "malformed");
        free(huge);
    }
    b64("not json", 8, claims, sizeof(claims));
    snprintf(tok, sizeof(tok), "%s.e30.AAAA", claims);
    refused("header not JSON", tok, "malformed");

    printf("%d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
