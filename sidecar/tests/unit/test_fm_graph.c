/*
 * test_fm_graph.c — unit test of fm_graph.c: the user id map (dense indexes in order of first
 * sight, growth, any uint64 id) and the follower sets under heavy follow/unfollow churn,
 * checked against a bitmap model (membership, count, iteration, bounded size).
 * Exit status: 0 when every check passed; each failure is printed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fm_graph.h"

#include "unit.h"

static void test_idmap(void)
{
    hs_fm_idmap_t m;
    hs_fm_idmap_init(&m);
    int added, ok = 1;
    CHECK(hs_fm_idmap_get(&m, 42) == UINT32_MAX, "absent id");
    for (uint64_t i = 0; i < 100000; i++) {
        uint64_t id = i * 7919 + (i % 3 == 0 ? UINT64_MAX / 2 : 0);
        uint32_t idx = hs_fm_idmap_intern(&m, id, &added);
        if (idx != i || !added)
            ok = 0;
    }
    CHECK(ok, "new ids get 0, 1, 2, ...");
    CHECK(m.count == 100000, "count %zu", m.count);
    ok = 1;
    for (uint64_t i = 0; i < 100000; i++) {
        uint64_t id = i * 7919 + (i % 3 == 0 ? UINT64_MAX / 2 : 0);
        if (hs_fm_idmap_get(&m, id) != i || hs_fm_idmap_intern(&m, id, &added) != i || added)
            ok = 0;
    }
    CHECK(ok, "known ids keep their index after growth");
    CHECK(hs_fm_idmap_get(&m, 1) == UINT32_MAX, "still absent");
    CHECK(hs_fm_idmap_intern(&m, 0, &added) == 100000 && added, "id 0 is an ordinary id");
    CHECK(hs_fm_idmap_intern(&m, UINT64_MAX, &added) == 100001 && added, "so is the largest");
    CHECK(hs_fm_idmap_get(&m, UINT64_MAX) == 100001, "and can be found");
    hs_fm_idmap_dispose(&m);
}

static void test_set(void)
{
    enum { N = 5000 };
    hs_fm_set_t s = {0};
    unsigned char model[N] = {0};
    uint64_t rng = 7;
    size_t count = 0;
    int ok = 1;
    CHECK(!hs_fm_set_contains(&s, 3) && !hs_fm_set_remove(&s, 3), "empty set");
    for (int round = 0; round < 400000; round++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t v = (uint32_t)((rng >> 33) % N);
        if ((rng >> 20) % 3 != 0) {
            int r = hs_fm_set_add(&s, v);
            if (r != !model[v])
                ok = 0;
            count += !model[v];
            model[v] = 1;
        } else {
            int r = hs_fm_set_remove(&s, v);
            if (r != model[v])
                ok = 0;
            count -= model[v];
            model[v] = 0;
        }
        if (round % 1000 == 0) {
            for (uint32_t k = 0; k < N; k++)
                if (hs_fm_set_contains(&s, k) != model[k])
                    ok = 0;
        }
    }
    CHECK(ok, "add/remove/contains agree with the model");
    CHECK(s.count == count, "count %u vs %zu", s.count, count);
    size_t seen = 0;
    ok = 1;
    for (uint32_t i = 0; i < s.cap; i++) {
        if (s.slots[i] < HS_FM_SET_TOMB) {
            seen++;
            if (!model[s.slots[i]])
                ok = 0;
        }
    }
    CHECK(ok && seen == count, "iteration yields exactly the members (%zu of %zu)", seen, count);
    CHECK(s.cap <= 8 * 8192, "churn does not grow the table without bound (cap %u)", s.cap);
    hs_fm_set_clear(&s);
    CHECK(s.count == 0 && !hs_fm_set_contains(&s, 1), "cleared");
    CHECK(hs_fm_set_add(&s, 1) == 1 && hs_fm_set_contains(&s, 1), "usable after clear");
    hs_fm_set_dispose(&s);

    /* a small set that is followed and unfollowed forever stays small */
    hs_fm_set_t t = {0};
    for (int i = 0; i < 100000; i++) {
        hs_fm_set_add(&t, (uint32_t)i);
        hs_fm_set_remove(&t, (uint32_t)i);
    }
    CHECK(t.count == 0 && t.cap <= 16, "churned single value: cap %u", t.cap);
    hs_fm_set_dispose(&t);
}

int main(void)
{
    test_idmap();
    test_set();
    printf("test_fm_graph: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}
