/*
 * timer.h — one-shot timers of any duration on an h2o 2.2.5 evloop.
 *
 * h2o 2.2.5's h2o_timeout_t groups entries of one fixed duration; hs_timer keeps one
 * h2o_timeout_t per distinct duration per loop (created on first use, thread-local), so
 * callers can ask for 137 ms or a jittered backoff without managing them.
 * Embed hs_timer_t in your object; it must be stopped before the object is freed.
 */
#ifndef HS_TIMER_H
#define HS_TIMER_H

#include <stdint.h>
#include <h2o.h>

typedef struct st_hs_timer_t hs_timer_t;
typedef void (*hs_timer_cb)(hs_timer_t *timer);

struct st_hs_timer_t {
    h2o_timeout_entry_t _entry; /* first member: the entry's callback recovers the timer */
    hs_timer_cb cb;
};

/* hs_timer_start (re)arms the timer to fire once after millis (rounded to a few coarse buckets above 10 s). */
void hs_timer_start(h2o_loop_t *loop, hs_timer_t *timer, uint64_t millis, hs_timer_cb cb);
void hs_timer_stop(hs_timer_t *timer);
int hs_timer_is_active(hs_timer_t *timer);
/* hs_now_ms: milliseconds on CLOCK_MONOTONIC (for intervals; not the loop's cached time). */
uint64_t hs_now_ms(void);
/* hs_timer_dispose_all frees this thread's timeouts; call before h2o_evloop_destroy. */
void hs_timer_dispose_all(h2o_loop_t *loop);

#endif
