/* timer.c — see timer.h. */
#include "timer.h"

#include <stdlib.h>
#include <time.h>

#define HS_TIMER_MAX_DURATIONS 256

struct hs_duration {
    uint64_t millis;
    h2o_timeout_t timeout;
};

static __thread struct hs_duration *durations[HS_TIMER_MAX_DURATIONS];
static __thread size_t num_durations;

static void on_entry_fired(h2o_timeout_entry_t *entry)
{
    hs_timer_t *timer = (hs_timer_t *)entry;
    timer->cb(timer);
}

static h2o_timeout_t *timeout_for(h2o_loop_t *loop, uint64_t millis)
{
    /* Keep the number of distinct durations small: above 10 s, round up to whole seconds. */
    if (millis > 10000)
        millis = (millis + 999) / 1000 * 1000;
    for (size_t i = 0; i < num_durations; i++)
        if (durations[i]->millis == millis)
            return &durations[i]->timeout;
    if (num_durations == HS_TIMER_MAX_DURATIONS) {
        /* Degrade gracefully: use the closest longer duration we have. */
        struct hs_duration *best = NULL;
        for (size_t i = 0; i < num_durations; i++)
            if (durations[i]->millis >= millis && (best == NULL || durations[i]->millis < best->millis))
                best = durations[i];
        return best ? &best->timeout : &durations[num_durations - 1]->timeout;
    }
    struct hs_duration *d = calloc(1, sizeof(*d));
    if (d == NULL)
        abort();
    d->millis = millis;
    h2o_timeout_init(loop, &d->timeout, millis);
    durations[num_durations++] = d;
    return &d->timeout;
}

void hs_timer_start(h2o_loop_t *loop, hs_timer_t *timer, uint64_t millis, hs_timer_cb cb)
{
    hs_timer_stop(timer);
    timer->cb = cb;
    timer->_entry.cb = on_entry_fired;
    h2o_timeout_link(loop, timeout_for(loop, millis), &timer->_entry);
}

void hs_timer_stop(hs_timer_t *timer)
{
    if (h2o_timeout_is_linked(&timer->_entry))
        h2o_timeout_unlink(&timer->_entry);
}

int hs_timer_is_active(hs_timer_t *timer)
{
    return h2o_timeout_is_linked(&timer->_entry);
}

void hs_timer_dispose_all(h2o_loop_t *loop)
{
    for (size_t i = 0; i < num_durations; i++) {
        while (!h2o_linklist_is_empty(&durations[i]->timeout._entries)) {
            h2o_timeout_entry_t *e = H2O_STRUCT_FROM_MEMBER(h2o_timeout_entry_t, _link, durations[i]->timeout._entries.next);
            h2o_timeout_unlink(e);
        }
        h2o_timeout_dispose(loop, &durations[i]->timeout);
        free(durations[i]);
    }
    num_durations = 0;
}

uint64_t hs_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
