/*
 * fm_graph.h — the follower-maze user registry's building blocks: a map from user id to a
 * dense index, and a set of indexes (the followers of one user).
 *
 * Both are open-addressing hash tables of plain integers, grown by doubling: no allocation
 * per event, and their size depends on the users and follow edges in the stream, never on
 * its length. Single-threaded; owned by the sequencer's loop.
 */
#ifndef HS_FM_GRAPH_H
#define HS_FM_GRAPH_H

#include <stddef.h>
#include <stdint.h>

/* hs_fm_idmap_t: user id (any uint64) -> index 0, 1, 2, ... in order of first sight. */
typedef struct st_hs_fm_idmap_t {
    uint64_t *keys;
    uint32_t *vals; /* UINT32_MAX: empty */
    size_t cap;     /* power of two */
    size_t count;
} hs_fm_idmap_t;

void hs_fm_idmap_init(hs_fm_idmap_t *m);
void hs_fm_idmap_dispose(hs_fm_idmap_t *m);
/* hs_fm_idmap_get returns the index of id, or UINT32_MAX if it was never added. */
uint32_t hs_fm_idmap_get(const hs_fm_idmap_t *m, uint64_t id);
/* hs_fm_idmap_intern returns the index of id, giving it the next free index (== count before
 * the call, *added set to 1) if it is new. */
uint32_t hs_fm_idmap_intern(hs_fm_idmap_t *m, uint64_t id, int *added);

/* hs_fm_set_t: a set of uint32 values below HS_FM_SET_TOMB. Iterate with
 * for (i = 0; i < s->cap; i++) if (s->slots[i] < HS_FM_SET_TOMB) ... */
#define HS_FM_SET_EMPTY UINT32_MAX
#define HS_FM_SET_TOMB (UINT32_MAX - 1)

typedef struct st_hs_fm_set_t {
    uint32_t *slots; /* NULL while empty and never used */
    uint32_t cap;    /* 0 or a power of two */
    uint32_t count;  /* values */
    uint32_t used;   /* values + tombstones */
} hs_fm_set_t;

/* hs_fm_set_add returns 1 if v was added, 0 if it was already there. */
int hs_fm_set_add(hs_fm_set_t *s, uint32_t v);
/* hs_fm_set_remove returns 1 if v was removed, 0 if it was absent. */
int hs_fm_set_remove(hs_fm_set_t *s, uint32_t v);
int hs_fm_set_contains(const hs_fm_set_t *s, uint32_t v);
/* hs_fm_set_clear empties the set (keeping its memory if small). */
void hs_fm_set_clear(hs_fm_set_t *s);
void hs_fm_set_dispose(hs_fm_set_t *s);

#endif
