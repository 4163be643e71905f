/*
 * fm_parser.h — the follower-maze line grammar (seed 004), as pure functions.
 *
 * An event line is `seq|T[|from[|to]]` followed by LF or CRLF: F, U and P carry two user
 * ids, S one, B none. Numbers are 1 to 19 ASCII digits (leading zeros allowed, no sign, no
 * space), so every value fits in a uint64_t; seq 0 is refused. Anything else is an error
 * with a reason; the caller logs it, counts it and goes on with the next line.
 * A user client's first line is its user id: the same digits, LF or CRLF.
 * The parser never copies: the sequencer forwards the line's bytes exactly as read.
 */
#ifndef HS_FM_PARSER_H
#define HS_FM_PARSER_H

#include <stddef.h>
#include <stdint.h>

/* HS_FM_MAX_LINE: longest accepted line, terminator included; longer ones are overlong. */
#define HS_FM_MAX_LINE 1024

typedef enum en_hs_fm_parse_result_t {
    HS_FM_PARSE_OK = 0,
    HS_FM_PARSE_EMPTY,      /* nothing before the terminator */
    HS_FM_PARSE_BAD_SEQ,    /* sequence number missing, not numeric, too long or 0 */
    HS_FM_PARSE_BAD_TYPE,   /* type missing or not one of F U B P S */
    HS_FM_PARSE_BAD_FIELDS, /* wrong number of fields for the type */
    HS_FM_PARSE_BAD_ID,     /* a user id missing, not numeric or too long */
} hs_fm_parse_result_t;

typedef struct st_hs_fm_event_t {
    uint64_t seq;
    uint64_t from; /* F U P S */
    uint64_t to;   /* F U P */
    char type;     /* 'F', 'U', 'B', 'P' or 'S' */
} hs_fm_event_t;

/* hs_fm_line_body_len returns the length of a line without its terminator: line[0..len) ends
 * with '\n', optionally preceded by '\r'. */
static inline size_t hs_fm_line_body_len(const char *line, size_t len)
{
    if (len > 0 && line[len - 1] == '\n')
        len--;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    return len;
}

/* hs_fm_parse_event parses one event line body (without its terminator) into *ev. */
hs_fm_parse_result_t hs_fm_parse_event(const char *body, size_t len, hs_fm_event_t *ev);

/* hs_fm_parse_user_id parses a client's id line body (without its terminator). */
hs_fm_parse_result_t hs_fm_parse_user_id(const char *body, size_t len, uint64_t *id);

/* hs_fm_parse_strerror names a result for log lines ("bad sequence number", ...). */
const char *hs_fm_parse_strerror(hs_fm_parse_result_t rc);

#endif
