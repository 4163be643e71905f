/*
 * unit.h — the few lines every unit test shares: count checks and failures, print each
 * failure with its place. A test's main() ends with `return unit_report("name");`.
 */
#ifndef HS_UNIT_H
#define HS_UNIT_H

#include <stdio.h>

static int failures, checks;

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        checks++;                                                                                                      \
        if (!(cond)) {                                                                                                 \
            failures++;                                                                                                \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                                \
            printf(__VA_ARGS__);                                                                                       \
            printf("\n");                                                                                              \
        }                                                                                                              \
    } while (0)

#endif
