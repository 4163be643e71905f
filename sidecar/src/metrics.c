/* metrics.c — see metrics.h. */
#include "metrics.h"

#include <pthread.h>

hs_metrics_t hs_metrics;

#define HS_MAX_WRITERS 16
static hs_metrics_writer_cb writers[HS_MAX_WRITERS];
static int num_writers;
static pthread_mutex_t writers_lock = PTHREAD_MUTEX_INITIALIZER;

void hs_metrics_register_writer(hs_metrics_writer_cb cb)
{
    pthread_mutex_lock(&writers_lock);
    if (num_writers < HS_MAX_WRITERS)
        writers[num_writers++] = cb;
    pthread_mutex_unlock(&writers_lock);
}

void hs_metrics_render(hs_strbuf_t *out)
{
#define HS_METRIC_RENDER(name, type, help)                                                                             \
    hs_strbuf_printf(out, "# HELP herald_" #name " " help "\n# TYPE herald_" #name " " #type "\nherald_" #name " %lld\n",  \
                     (long long)HS_METRIC_GET(name));
    HS_METRICS(HS_METRIC_RENDER)
#undef HS_METRIC_RENDER
    pthread_mutex_lock(&writers_lock);
    for (int i = 0; i < num_writers; i++)
        writers[i](out);
    pthread_mutex_unlock(&writers_lock);
}
