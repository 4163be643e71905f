/*
 * test_fm_parser.c — unit test of fm_parser.c: the five event shapes with LF and CRLF, every
 * kind of malformed line (empty, bad or zero sequence number, unknown type, missing and
 * extra fields, non-numeric and overlong numbers, spaces, signs), the 19-digit limit, and
 * the user id line.
 * Exit status: 0 when every check passed; each failure is printed.
 */
#include <stdio.h>
#include <string.h>

#include "fm_parser.h"

#include "unit.h"

/* parse_line parses a whole line (terminator included), as the sequencer does. */
static hs_fm_parse_result_t parse_line(const char *line, hs_fm_event_t *ev)
{
    size_t len = strlen(line);
    return hs_fm_parse_event(line, hs_fm_line_body_len(line, len), ev);
}

static void good(const char *line, unsigned long long seq, char type, unsigned long long from, unsigned long long to)
{
    hs_fm_event_t ev;
    memset(&ev, 0xaa, sizeof(ev));
    hs_fm_parse_result_t rc = parse_line(line, &ev);
    CHECK(rc == HS_FM_PARSE_OK, "\"%s\": %s", line, hs_fm_parse_strerror(rc));
    if (rc != HS_FM_PARSE_OK)
        return;
    CHECK(ev.seq == seq && ev.type == type && ev.from == from && ev.to == to, "\"%s\": got %llu %c %llu %llu", line,
          (unsigned long long)ev.seq, ev.type, (unsigned long long)ev.from, (unsigned long long)ev.to);
}

static void bad(const char *line, hs_fm_parse_result_t want)
{
    hs_fm_event_t ev;
    hs_fm_parse_result_t rc = parse_line(line, &ev);
    CHECK(rc == want, "\"%s\": want \"%s\", got \"%s\"", line, hs_fm_parse_strerror(want), hs_fm_parse_strerror(rc));
}

int main(void)
{
    /* the seed's table, LF and CRLF */
    good("666|F|60|50\n", 666, 'F', 60, 50);
    good("1|U|12|9\n", 1, 'U', 12, 9);
    good("542532|B\n", 542532, 'B', 0, 0);
    good("43|P|32|56\r\n", 43, 'P', 32, 56);
    good("634|S|32\r\n", 634, 'S', 32, 0);
    good("7|B", 7, 'B', 0, 0); /* body without terminator (end of stream) */
    good("007|S|0\n", 7, 'S', 0, 0);
    good("9999999999999999999|P|1234567890123456789|0\n", 9999999999999999999ull, 'P', 1234567890123456789ull, 0);

    bad("\n", HS_FM_PARSE_EMPTY);
    bad("\r\n", HS_FM_PARSE_EMPTY);
    bad("garbage\n", HS_FM_PARSE_BAD_SEQ);
    bad("|B\n", HS_FM_PARSE_BAD_SEQ);
    bad("0|B\n", HS_FM_PARSE_BAD_SEQ);
    bad("-5|B\n", HS_FM_PARSE_BAD_SEQ);
    bad("+5|B\n", HS_FM_PARSE_BAD_SEQ);
    bad(" 5|B\n", HS_FM_PARSE_BAD_SEQ);
    bad("5 |B\n", HS_FM_PARSE_BAD_SEQ);
    bad("12a|B\n", HS_FM_PARSE_BAD_SEQ);
    bad("12\n", HS_FM_PARSE_BAD_SEQ);
    bad("10000000000000000000|B\n", HS_FM_PARSE_BAD_SEQ); /* 20 digits */
    bad("5|\n", HS_FM_PARSE_BAD_TYPE);
    bad("5|X|1|2\n", HS_FM_PARSE_BAD_TYPE);
    bad("5|f|1|2\n", HS_FM_PARSE_BAD_TYPE);
    bad("5|FF|1|2\n", HS_FM_PARSE_BAD_TYPE);
    bad("5|B2\n", HS_FM_PARSE_BAD_TYPE);
    bad("5|F|1\n", HS_FM_PARSE_BAD_FIELDS);
    bad("5|F\n", HS_FM_PARSE_BAD_FIELDS);
    bad("5|S\n", HS_FM_PARSE_BAD_FIELDS);
    bad("5|B|7\n", HS_FM_PARSE_BAD_FIELDS);
    bad("5|S|1|2\n", HS_FM_PARSE_BAD_FIELDS);
    bad("5|F|1|2|3\n", HS_FM_PARSE_BAD_FIELDS);
    bad("5|P|1|2|\n", HS_FM_PARSE_BAD_FIELDS);
    bad("5|F|abc|3\n", HS_FM_PARSE_BAD_ID);
    bad("5|F|1|\n", HS_FM_PARSE_BAD_ID);
    bad("5|F||2\n", HS_FM_PARSE_BAD_ID);
    bad("5|S|1x\n", HS_FM_PARSE_BAD_ID);
    bad("5|P|1| 2\n", HS_FM_PARSE_BAD_ID);
    bad("5|P|1|-2\n", HS_FM_PARSE_BAD_ID);
    bad("5|P|1|10000000000000000000\n", HS_FM_PARSE_BAD_ID);
    bad("5|B\r\r\n", HS_FM_PARSE_BAD_TYPE); /* a stray CR is part of the body */
    bad("5|S|1\r2\n", HS_FM_PARSE_BAD_ID);

    /* terminators */
    CHECK(hs_fm_line_body_len("1|B\r\n", 5) == 3, "CRLF stripped");
    CHECK(hs_fm_line_body_len("1|B\n", 4) == 3, "LF stripped");
    CHECK(hs_fm_line_body_len("1|B", 3) == 3, "no terminator");
    CHECK(hs_fm_line_body_len("\r\n", 2) == 0, "bare CRLF");

    /* id lines */
    uint64_t id = 0;
    CHECK(hs_fm_parse_user_id("2932", 4, &id) == HS_FM_PARSE_OK && id == 2932, "id 2932");
    CHECK(hs_fm_parse_user_id("0", 1, &id) == HS_FM_PARSE_OK && id == 0, "id 0");
    CHECK(hs_fm_parse_user_id("", 0, &id) == HS_FM_PARSE_EMPTY, "empty id");
    CHECK(hs_fm_parse_user_id("12a", 3, &id) == HS_FM_PARSE_BAD_ID, "12a");
    CHECK(hs_fm_parse_user_id("1|2", 3, &id) == HS_FM_PARSE_BAD_ID, "1|2");
    CHECK(hs_fm_parse_user_id("-1", 2, &id) == HS_FM_PARSE_BAD_ID, "-1");
    CHECK(hs_fm_parse_user_id("99999999999999999999", 20, &id) == HS_FM_PARSE_BAD_ID, "20 digits");

    for (int rc = HS_FM_PARSE_OK; rc <= HS_FM_PARSE_BAD_ID; rc++)
        CHECK(strcmp(hs_fm_parse_strerror((hs_fm_parse_result_t)rc), "unknown error") != 0, "strerror %d", rc);

    printf("test_fm_parser: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}
