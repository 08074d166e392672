/* collector.h - `m365fwd run`: pull the Management Activity API for every
 * configured tenant and content type, normalize, deliver, checkpoint.
 *
 * One thread, one libcurl multi handle, a state machine per stream (tenant x
 * content type); see docs/collector-design.md. The checkpoint of a stream
 * moves only after every output acknowledged every record of every blob
 * listed before it.
 */
#ifndef MF_COLLECTOR_H
#define MF_COLLECTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "agent_conf.h"
#include "metrics.h"
#include "normalize.h"

struct mf_collector;

struct mf_collector_opts {
    bool once;                 /* collect what is available now, then exit */
    int64_t once_timeout_ms;   /* --once gives up after this (0 = 15 min) */
    const char *only_tenant;   /* name or id, or NULL for all */
    /* Called once per loop turn; returning true stops the run as a signal
     * would (drain, then return). Used for SIGHUP reloads. May be NULL. */
    bool (*tick)(void *ud);
    void *tick_ud;
    struct mf_metrics *metrics;  /* counters and health, or NULL */
};

struct mf_collector *mf_collector_new(const struct mf_config *cfg,
                                      const struct mf_normalizer *norm,
                                      const struct mf_collector_opts *opts,
                                      char *err, size_t errsz);
/* Run until stopped (or, with once, until caught up). Returns the process
 * exit code: 0 everything delivered, 1 something could not be delivered or
 * a stream stopped with an error. */
int mf_collector_run(struct mf_collector *c);
/* Ask the run loop to drain and return (async-signal-safe). */
void mf_collector_stop(struct mf_collector *c);
void mf_collector_destroy(struct mf_collector *c);

#endif
