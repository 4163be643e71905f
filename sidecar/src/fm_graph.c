/*
 * fm_graph.c — id map and index sets for the follower maze; see fm_graph.h.
 * Linear probing, Fibonacci hashing, load factor at most 1/2 (tombstones included).
 */
#include "fm_graph.h"

#include <stdlib.h>
#include <string.h>

static inline size_t hash64(uint64_t v, size_t cap)
{
    return (size_t)((v * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL)
        abort();
    return p;
}

/* ---- id map ---- */

static void idmap_alloc(hs_fm_idmap_t *m, size_t cap)
{
    m->keys = xmalloc(cap * sizeof(*m->keys));
    m->vals = xmalloc(cap * sizeof(*m->vals));
    memset(m->vals, 0xff, cap * sizeof(*m->vals));
    m->cap = cap;
}

void hs_fm_idmap_init(hs_fm_idmap_t *m)
{
    m->count = 0;
    idmap_alloc(m, 1024);
}

void hs_fm_idmap_dispose(hs_fm_idmap_t *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->count = 0;
}

uint32_t hs_fm_idmap_get(const hs_fm_idmap_t *m, uint64_t id)
{
    for (size_t i = hash64(id, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->vals[i] == UINT32_MAX)
            return UINT32_MAX;
        if (m->keys[i] == id)
            return m->vals[i];
    }
}

uint32_t hs_fm_idmap_intern(hs_fm_idmap_t *m, uint64_t id, int *added)
{
    size_t i;
    for (i = hash64(id, m->cap); m->vals[i] != UINT32_MAX; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == id) {
            *added = 0;
            return m->vals[i];
        }
    }
    if ((m->count + 1) * 2 > m->cap) {
        uint64_t *keys = m->keys;
        uint32_t *vals = m->vals;
        size_t cap = m->cap;
        idmap_alloc(m, cap * 2);
        for (size_t j = 0; j < cap; j++) {
            if (vals[j] == UINT32_MAX)
                continue;
            size_t k = hash64(keys[j], m->cap);
            while (m->vals[k] != UINT32_MAX)
                k = (k + 1) & (m->cap - 1);
            m->keys[k] = keys[j];
            m->vals[k] = vals[j];
        }
        free(keys);
        free(vals);
        for (i = hash64(id, m->cap); m->vals[i] != UINT32_MAX; i = (i + 1) & (m->cap - 1))
            ;
    }
    m->keys[i] = id;
    m->vals[i] = (uint32_t)m->count++;
    *added = 1;
    return m->vals[i];
}

/* ---- index sets ---- */

static void set_rehash(hs_fm_set_t *s, uint32_t cap)
{
    uint32_t *old = s->slots, old_cap = s->cap;
    s->slots = xmalloc((size_t)cap * sizeof(*s->slots));
    memset(s->slots, 0xff, (size_t)cap * sizeof(*s->slots));
    s->cap = cap;
    s->used = s->count;
    for (uint32_t j = 0; j < old_cap; j++) {
        if (old[j] >= HS_FM_SET_TOMB)
            continue;
        size_t k = hash64(old[j], cap);
        while (s->slots[k] != HS_FM_SET_EMPTY)
            k = (k + 1) & (cap - 1);
        s->slots[k] = old[j];
    }
    free(old);
}

int hs_fm_set_add(hs_fm_set_t *s, uint32_t v)
{
    if (hs_fm_set_contains(s, v))
        return 0;
    if ((s->used + 1) * 2 > s->cap) {
        /* Rehash to a size where the live values fill at most 1/4 (tombstones are dropped, so a
         * set churned by follow/unfollow keeps its size instead of growing). */
        uint32_t cap = 8;
        while ((s->count + 1) * 4 > cap)
            cap *= 2;
        set_rehash(s, cap);
    }
    size_t i = hash64(v, s->cap);
    while (s->slots[i] < HS_FM_SET_TOMB)
        i = (i + 1) & (s->cap - 1);
    if (s->slots[i] == HS_FM_SET_EMPTY)
        s->used++;
    s->slots[i] = v;
    s->count++;
    return 1;
}

int hs_fm_set_contains(const hs_fm_set_t *s, uint32_t v)
{
    if (s->cap == 0)
        return 0;
    for (size_t i = hash64(v, s->cap);; i = (i + 1) & (s->cap - 1)) {
        if (s->slots[i] == HS_FM_SET_EMPTY)
            return 0;
        if (s->slots[i] == v)
            return 1;
    }
}

int hs_fm_set_remove(hs_fm_set_t *s, uint32_t v)
{
    if (s->cap == 0)
        return 0;
    for (size_t i = hash64(v, s->cap);; i = (i + 1) & (s->cap - 1)) {
        if (s->slots[i] == HS_FM_SET_EMPTY)
            return 0;
        if (s->slots[i] == v) {
            s->slots[i] = HS_FM_SET_TOMB;
            s->count--;
            return 1;
        }
    }
}

void hs_fm_set_clear(hs_fm_set_t *s)
{
    if (s->cap > 64) {
        hs_fm_set_dispose(s);
        return;
    }
    if (s->cap != 0)
        memset(s->slots, 0xff, (size_t)s->cap * sizeof(*s->slots));
    s->count = s->used = 0;
}

void hs_fm_set_dispose(hs_fm_set_t *s)
{
    free(s->slots);
    s->slots = NULL;
    s->cap = s->count = s->used = 0;
}
