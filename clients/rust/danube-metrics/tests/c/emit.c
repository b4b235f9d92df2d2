/* Exercises the C ABI against a running agent: two threads record through handles, the process installs,
 * shuts down and exits 0 only if the agent acknowledged everything. The interop test then reads /metrics.
 *   emit SOCKET */
#include "danube_metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define PER_THREAD 100000

static dm_counter_t messages;
static dm_histogram_t latency;

static void *worker(void *arg) {
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        dm_counter_increment(messages, 1);
        dm_histogram_record(latency, (double)(i % 100) / 10.0); /* 0.0 .. 9.9 ms */
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: emit SOCKET\n");
        return 2;
    }
    const char *labels[] = {"topic", "/c/orders"};
    const char *global[] = {"broker", "c"};
    dm_gauge_t owned;
    dm_counter_t bad;
    if (dm_counter("danube_topic_messages_in_total", labels, 1, &messages) != DM_OK ||
        dm_histogram("danube_producer_send_latency_ms", labels, 1, &latency) != DM_OK ||
        dm_gauge("danube_broker_topics_owned", NULL, 0, &owned) != DM_OK) {
        fprintf(stderr, "emit: registration failed\n");
        return 1;
    }
    if (dm_counter(NULL, NULL, 0, &bad) != DM_EINVAL || dm_shutdown(10, NULL) != DM_ESTATE) {
        fprintf(stderr, "emit: bad arguments were accepted\n");
        return 1;
    }
    dm_describe("danube_topic_messages_in_total", "Messages published from C.");
    if (dm_install("c-emitter", argv[1], global, 1) != DM_OK || dm_install("again", argv[1], NULL, 0) != DM_ESTATE) {
        fprintf(stderr, "emit: install failed or a second install was accepted\n");
        return 1;
    }
    dm_gauge_set(owned, 3);
    dm_gauge_add(owned, 2);
    pthread_t threads[2];
    for (int t = 0; t < 2; t++) pthread_create(&threads[t], NULL, worker, NULL);
    for (int t = 0; t < 2; t++) pthread_join(threads[t], NULL);
    /* One traced request: its increment and observation carry the trace as exemplars. */
    const char *trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    char too_long[200];
    memset(too_long, 'a', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = 0;
    if (dm_counter_increment_with_exemplar(messages, 1, trace, NULL) != DM_OK ||
        dm_histogram_record_with_exemplar(latency, 0.55, trace, "00f067aa0ba902b7") != DM_OK ||
        dm_histogram_record_with_exemplar(latency, 0.55, too_long, NULL) != DM_EINVAL) {
        fprintf(stderr, "emit: exemplars were refused, or a 199-character trace id was accepted\n");
        return 1;
    }
    dm_stats_t stats;
    memset(&stats, 0, sizeof stats);
    if (dm_shutdown(10000, &stats) != DM_OK || stats.undelivered_series != 0 || stats.connects == 0) {
        fprintf(stderr, "emit: %llu series undelivered after %llu connects\n",
                (unsigned long long)stats.undelivered_series, (unsigned long long)stats.connects);
        return 1;
    }
    return 0;
}
