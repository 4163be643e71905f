/*
 * test_ws_sessions.c — unit test of ws_sessions.c's contract with PostgreSQL: the entry index
 * of a refused batch is read from the HR030 DETAIL that sql/install/60_sessions.sql writes
 * ("At entry N (counting from 0)."), and nothing else is taken for an index.
 * Exit status: 0 when every check passed; each failure is printed.
 */
#include <stdio.h>

#include "ws_sessions.h"

static int failures, checks;

#define CHECK_INDEX(detail, want)                                                                                      \
    do {                                                                                                               \
        checks++;                                                                                                      \
        long got = hs_ws_error_index(detail);                                                                          \
        if (got != (want)) {                                                                                           \
            failures++;                                                                                                \
            printf("FAIL %s:%d: hs_ws_error_index(%s) = %ld, want %ld\n", __FILE__, __LINE__, #detail, got,            \
                   (long)(want));                                                                                      \
        }                                                                                                              \
    } while (0)

int main(void)
{
    CHECK_INDEX("At entry 0 (counting from 0).", 0);
    CHECK_INDEX("At entry 17 (counting from 0).", 17);
    CHECK_INDEX("At entry 1048575.", 1048575);
    CHECK_INDEX("At entry 3", 3);
    CHECK_INDEX(NULL, -1);
    CHECK_INDEX("", -1);
    CHECK_INDEX("The input string ended unexpectedly.", -1); /* a JSON parser detail */
    CHECK_INDEX("At entry -1 (counting from 0).", -1);
    CHECK_INDEX("At entry x.", -1);
    CHECK_INDEX("At entry 12abc", -1);
    CHECK_INDEX("at entry 2 (counting from 0).", -1);
    printf("test_ws_sessions: %d checks, %d failures\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
