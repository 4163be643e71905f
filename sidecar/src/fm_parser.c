/*
 * fm_parser.c — the follower-maze line grammar; see fm_parser.h.
 *
 * Strict on purpose: a line is either exactly one of the five event shapes or an error with
 * a reason. Being lenient ("12 | B", "+5|B") would mean forwarding bytes that a client's
 * parser may not accept, while the sequencer promises to forward lines exactly as read.
 */
#include "fm_parser.h"

/* parse_uint reads a field of 1 to 19 digits ending at '|' or at end; *pp moves past it. */
static int parse_uint(const char **pp, const char *end, uint64_t *out)
{
    const char *p = *pp;
    uint64_t v = 0;
    int n = 0;
    while (p < end && *p != '|') {
        unsigned d = (unsigned char)*p - '0';
        if (d > 9 || ++n > 19)
            return -1;
        v = v * 10 + d;
        p++;
    }
    if (n == 0)
        return -1;
    *pp = p;
    *out = v;
    return 0;
}

hs_fm_parse_result_t hs_fm_parse_event(const char *body, size_t len, hs_fm_event_t *ev)
{
    const char *p = body, *end = body + len;
    int ids;

    if (len == 0)
        return HS_FM_PARSE_EMPTY;
    if (parse_uint(&p, end, &ev->seq) != 0 || ev->seq == 0 || p == end)
        return HS_FM_PARSE_BAD_SEQ;
    p++; /* '|' */
    if (p == end)
        return HS_FM_PARSE_BAD_TYPE;
    ev->type = *p++;
    switch (ev->type) {
    case 'F':
    case 'U':
    case 'P':
        ids = 2;
        break;
    case 'S':
        ids = 1;
        break;
    case 'B':
        ids = 0;
        break;
    default:
        return HS_FM_PARSE_BAD_TYPE;
    }
    if (p != end && *p != '|')
        return HS_FM_PARSE_BAD_TYPE; /* "FX", "B2" */
    ev->from = ev->to = 0;
    for (int i = 0; i < ids; i++) {
        if (p == end)
            return HS_FM_PARSE_BAD_FIELDS;
        p++; /* '|' */
        if (parse_uint(&p, end, i == 0 ? &ev->from : &ev->to) != 0)
            return HS_FM_PARSE_BAD_ID;
    }
    if (p != end)
        return HS_FM_PARSE_BAD_FIELDS; /* an extra field */
    return HS_FM_PARSE_OK;
}

hs_fm_parse_result_t hs_fm_parse_user_id(const char *body, size_t len, uint64_t *id)
{
    const char *p = body, *end = body + len;
    if (len == 0)
        return HS_FM_PARSE_EMPTY;
    if (parse_uint(&p, end, id) != 0 || p != end)
        return HS_FM_PARSE_BAD_ID;
    return HS_FM_PARSE_OK;
}

const char *hs_fm_parse_strerror(hs_fm_parse_result_t rc)
{
    switch (rc) {
    case HS_FM_PARSE_OK:
        return "ok";
    case HS_FM_PARSE_EMPTY:
        return "empty line";
    case HS_FM_PARSE_BAD_SEQ:
        return "bad sequence number";
    case HS_FM_PARSE_BAD_TYPE:
        return "unknown event type";
    case HS_FM_PARSE_BAD_FIELDS:
        return "wrong number of fields";
    case HS_FM_PARSE_BAD_ID:
        return "bad user id";
    }
    return "unknown error";
}
