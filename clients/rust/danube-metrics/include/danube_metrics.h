/* C ABI of the danube-metrics Rust emitter (libdanube_metrics.a / libdanube_metrics.so).
 *
 * Record counters, gauges and histograms from C, C++ or Go (cgo) into the same lock-free per-thread cells as the
 * Rust macros; a background thread delivers them to danube-metrics-agent. Register a series once, keep its
 * handle (a small struct, copy it freely), and update it on the hot path: no lock, no syscall, no allocation.
 *
 *   const char *labels[] = {"topic", "/default/orders"};
 *   dm_counter_t messages;
 *   dm_counter("danube_topic_messages_in_total", labels, 1, &messages);
 *   const char *global[] = {"broker", "7"};
 *   dm_install("danube-broker", NULL, global, 1);
 *   dm_counter_increment(messages, 1);
 *   dm_shutdown(2000, NULL);
 *
 * Link with -ldanube_metrics -lpthread -ldl -lm (static) or against the shared library.
 */
#ifndef DANUBE_METRICS_H
#define DANUBE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DM_OK 0
#define DM_EINVAL 1    /* an argument is NULL or not UTF-8, or more than 16 labels */
#define DM_ECONFIG 2   /* the configuration is invalid (logged on stderr) */
#define DM_ESTATE 3    /* already installed, or dm_shutdown without dm_install */
#define DM_EINTERNAL 4 /* an internal failure was caught */

typedef struct { uint32_t cell; const void *floor; } dm_counter_t;
typedef struct { const void *word; } dm_gauge_t;
/* Filled by dm_histogram; pass it back as it is (classic and native point at the family's bucket finders; native is NULL without native buckets). */
typedef struct { uint32_t first_cell; uint32_t sum_cell; const void *classic; const void *native; } dm_histogram_t;

typedef struct {
    int connected;
    uint64_t connects;
    uint64_t frames_sent;
    uint64_t frames_acknowledged;
    uint64_t undelivered_series; /* non-zero after dm_shutdown: what did not reach the agent */
    uint64_t refused_series;
    uint64_t registered_series;
} dm_stats_t;

/* Starts delivery. source_name and socket may be NULL (process name; $DANUBE_METRICS_SOCKET or the default path).
 * global_labels holds 2 * global_label_count strings: name, value, name, value, ... */
int dm_install(const char *source_name, const char *socket, const char *const *global_labels, size_t global_label_count);

/* Final flush, waiting up to timeout_ms for the agent's acknowledgement; fills *stats when not NULL. */
int dm_shutdown(uint32_t timeout_ms, dm_stats_t *stats);

/* Help text of every series named name. */
int dm_describe(const char *name, const char *help);

/* Register (or find) a series; labels holds 2 * label_count strings. A name or labels the agent would refuse give
 * a handle that records nowhere (logged once). Histograms use the Danube catalog's buckets for catalogued names. */
int dm_counter(const char *name, const char *const *labels, size_t label_count, dm_counter_t *out);
int dm_gauge(const char *name, const char *const *labels, size_t label_count, dm_gauge_t *out);
int dm_histogram(const char *name, const char *const *labels, size_t label_count, dm_histogram_t *out);

void dm_counter_increment(dm_counter_t counter, uint64_t value);
void dm_counter_absolute(dm_counter_t counter, uint64_t value);
void dm_gauge_set(dm_gauge_t gauge, double value);
void dm_gauge_add(dm_gauge_t gauge, double delta);
void dm_histogram_record(dm_histogram_t histogram, double value);

/* As above, and the trace becomes the latest exemplar of the counter or of the value's bucket (OpenMetrics, protocol
 * version 2). span_id may be NULL. DM_EINVAL (nothing recorded) when the ids are not UTF-8 or exceed OpenMetrics'
 * 128 code points. These take a lock: use them for sampled requests. */
int dm_counter_increment_with_exemplar(dm_counter_t counter, uint64_t value, const char *trace_id, const char *span_id);
int dm_histogram_record_with_exemplar(dm_histogram_t histogram, double value, const char *trace_id, const char *span_id);

#ifdef __cplusplus
}
#endif

#endif
