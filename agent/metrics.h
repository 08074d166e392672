/* metrics.h - metrics registry and the /metrics, /healthz, /readyz listener.
 *
 * A registry (struct mf_metrics) holds counter and gauge families, each with
 * fixed label names; a series is found or created by its label values at
 * update time. One mutex guards the registry: the collector thread updates
 * it, libmicrohttpd's own thread renders it. Updates are a hash lookup under
 * that mutex. Every update and status function accepts m == NULL and does
 * nothing, so callers need no "metrics enabled?" test.
 *
 * Bounds: at most mf_metrics_set_series_limit() series per family (default
 * MF_METRICS_SERIES_MAX); an update that would create one more is dropped
 * and counted in m365fwd_metrics_series_dropped_total{family}. Label values
 * are cut to MF_METRICS_LABEL_MAX bytes and invalid UTF-8 is replaced with
 * U+FFFD, so any string is safe to pass. Never pass a secret or a config
 * value as a label value or a status reason: whatever is passed is served.
 *
 * Wiring (collector / cmd_run):
 *   start-up   m = mf_metrics_new(MF_VERSION);
 *              if (cfg->metrics.enabled)
 *                  srv = mf_metrics_server_start(m, cfg->metrics.listen,
 *                                                err, sizeof(err));
 *              (NULL srv when enabled = start-up error, err says why)
 *   each loop  mf_metrics_heartbeat(m);
 *   each poll  mf_metrics_status_set(m, MF_METRICS_TENANT, name, ok, reason,
 *                                    valid_ms)
 *   outputs    mf_metrics_status_set(m, MF_METRICS_OUTPUT, name, ...)
 *   counters   mf_metrics_records_received() ... (below)
 *   reload     mf_metrics_status_remove() for removed tenants/outputs; when
 *              metrics.listen changed: stop the old server, start a new
 *              one on the same registry (series survive).
 *   SIGTERM    mf_metrics_set_draining(m, true); at exit
 *              mf_metrics_server_stop(srv); mf_metrics_destroy(m);
 */
#ifndef MF_METRICS_H
#define MF_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "option.h"

#define MF_METRICS_SERIES_MAX 10000   /* per family, default */
#define MF_METRICS_LABEL_MAX 128      /* bytes of one label value */
#define MF_METRICS_LABELS_MAX 8       /* label names per family */

struct mf_metrics;
struct mf_metrics_server;

enum mf_metric_type { MF_METRIC_COUNTER = 0, MF_METRIC_GAUGE };

/* Families every registry has (ids for mf_metrics_add/set). Names and
 * labels are in the table in metrics.c; the helpers below are typed. */
enum mf_metric_id {
    MF_M_RECORDS_RECEIVED = 0,  /* m365fwd_records_received_total
                                   {tenant,content_type} */
    MF_M_RECORDS_DELIVERED,     /* m365fwd_records_delivered_total
                                   {output,tenant,content_type} */
    MF_M_RECORDS_REJECTED,      /* m365fwd_records_rejected_total
                                   {tenant,content_type}: not normalized */
    MF_M_DUPLICATES_DROPPED,    /* m365fwd_duplicates_dropped_total
                                   {tenant,content_type} */
    MF_M_API_REQUESTS,          /* m365fwd_api_requests_total
                                   {tenant,endpoint,status} */
    MF_M_API_THROTTLED,         /* m365fwd_api_throttled_total{tenant} */
    MF_M_RETRIES,               /* m365fwd_retries_total{tenant,reason} */
    MF_M_CHECKPOINT_LAG,        /* m365fwd_checkpoint_lag_seconds
                                   {tenant,content_type} (gauge) */
    MF_M_GAP_SECONDS,           /* m365fwd_collection_gap_seconds_total
                                   {tenant,content_type} */
    MF_M_QUEUE_DEPTH,           /* m365fwd_output_queue_depth{output}
                                   (gauge) */
    MF_M_DELIVERY_FAILURES,     /* m365fwd_delivery_failures_total{output} */
    MF_M_CLOCK_SKEW,            /* m365fwd_clock_skew_seconds{tenant} (gauge):
                                   local clock minus the API's Date */
    MF_M_STD_COUNT
};

/* version goes into m365fwd_build_info{version} 1; the registry also
 * serves process_start_time_seconds and
 * m365fwd_metrics_series_dropped_total{family}. */
struct mf_metrics *mf_metrics_new(const char *version);
void mf_metrics_destroy(struct mf_metrics *m);

/* Register another family (outputs may add their own). labels: n names.
 * Names follow the Prometheus rules; a counter name must end in _total;
 * a name must be unique. Returns the family id (>= MF_M_STD_COUNT) or -1
 * with err filled. */
int mf_metrics_register(struct mf_metrics *m, enum mf_metric_type type,
                        const char *name, const char *help,
                        const char *const *labels, size_t n,
                        char *err, size_t errsz);

/* values: one per label name of the family (NULL counts as ""). add: a
 * counter only grows (v < 0 or NaN is ignored); a gauge moves by v. set:
 * gauges only (ignored on a counter). An unknown id is ignored. */
void mf_metrics_add(struct mf_metrics *m, int id, const char *const *values,
                    double v);
void mf_metrics_set(struct mf_metrics *m, int id, const char *const *values,
                    double v);
/* Value of a series, or NAN when it does not exist (tests, status). */
double mf_metrics_get(struct mf_metrics *m, int id,
                      const char *const *values);
/* Drop every series of family id whose label `label` equals value (a
 * tenant or output removed by reload). Returns how many were dropped. */
size_t mf_metrics_forget(struct mf_metrics *m, int id, const char *label,
                         const char *value);
/* Per-family series bound (tests lower it). */
void mf_metrics_set_series_limit(struct mf_metrics *m, size_t n);

/* Typed helpers for the standard families. */
void mf_metrics_records_received(struct mf_metrics *m, const char *tenant,
                                 const char *content_type, uint64_t n);
void mf_metrics_records_delivered(struct mf_metrics *m, const char *output,
                                  const char *tenant,
                                  const char *content_type, uint64_t n);
void mf_metrics_records_rejected(struct mf_metrics *m, const char *tenant,
                                 const char *content_type, uint64_t n);
void mf_metrics_duplicates_dropped(struct mf_metrics *m, const char *tenant,
                                   const char *content_type, uint64_t n);
/* endpoint: a short fixed name ("token", "subscriptions", "content",
 * "blob"), never a URL; status: HTTP status, 0 = transport error. */
void mf_metrics_api_request(struct mf_metrics *m, const char *tenant,
                            const char *endpoint, long status);
void mf_metrics_api_throttled(struct mf_metrics *m, const char *tenant);
/* reason: a short fixed word ("throttled", "server_error", "timeout"...). */
void mf_metrics_retry(struct mf_metrics *m, const char *tenant,
                      const char *reason);
void mf_metrics_checkpoint_lag(struct mf_metrics *m, const char *tenant,
                               const char *content_type, double seconds);
void mf_metrics_gap_seconds(struct mf_metrics *m, const char *tenant,
                            const char *content_type, double seconds);
void mf_metrics_queue_depth(struct mf_metrics *m, const char *output,
                            double depth);
void mf_metrics_delivery_failure(struct mf_metrics *m, const char *output);
void mf_metrics_clock_skew(struct mf_metrics *m, const char *tenant, double seconds);

/* Prometheus text format 0.0.4 of the whole registry: malloc'd, NUL-
 * terminated, *len (may be NULL) set. Families in registration order,
 * series in creation order. */
char *mf_metrics_render(struct mf_metrics *m, size_t *len);

/* ---- health ------------------------------------------------------------ */

#define MF_METRICS_HEARTBEAT_TIMEOUT_MS 60000

/* The run loop turned (call it every iteration; cheap). */
void mf_metrics_heartbeat(struct mf_metrics *m);
/* /healthz fails when the last heartbeat (or creation) is older than ms. */
void mf_metrics_set_heartbeat_timeout(struct mf_metrics *m, int64_t ms);
/* /healthz: 200 with "ok", or 503 with the reason, written to reason. */
int mf_metrics_healthz(struct mf_metrics *m, char *reason, size_t n);

enum mf_metrics_kind { MF_METRICS_TENANT = 0, MF_METRICS_OUTPUT };

/* Create or replace the status entry of a tenant or output. reason: why it
 * is not ok (NULL when ok; kept short). valid_ms > 0: an ok entry that is
 * not set again within valid_ms turns not ok ("no successful update for N
 * s"): set it after each successful poll with a few poll intervals. 0:
 * valid until changed. */
void mf_metrics_status_set(struct mf_metrics *m, enum mf_metrics_kind kind,
                           const char *name, bool ok, const char *reason,
                           int64_t valid_ms);
void mf_metrics_status_remove(struct mf_metrics *m, enum mf_metrics_kind kind,
                              const char *name);
/* Register an entry (ok, no expiry) when it does not exist yet, so /readyz
 * lists every configured output from the start, not from its first flush. */
void mf_metrics_status_add(struct mf_metrics *m, enum mf_metrics_kind kind,
                           const char *name);
/* Draining (SIGTERM): /readyz answers 503 "draining". */
void mf_metrics_set_draining(struct mf_metrics *m, bool draining);
/* /readyz: 200 when not draining, at least one tenant is registered and
 * every entry is ok; else 503. Body (malloc'd, *len may be NULL):
 * {"ready":bool,["reason":"..",]"tenants":[{"name","ok","reason"}],
 *  "outputs":[...]} with reason null when ok. */
char *mf_metrics_readyz(struct mf_metrics *m, int *status, size_t *len);

/* Tests: replace the monotonic clock (ms) used by heartbeat and status. */
void mf_metrics_set_clock(struct mf_metrics *m, int64_t (*now_ms)(void *ud),
                          void *ud);

/* ---- listener ---------------------------------------------------------- */

/* Serve GET/HEAD /metrics, /healthz, /readyz on listen ("host:port",
 * "[v6]:port"; port 0 picks a free port) with libmicrohttpd's own thread.
 * Listening when it returns. NULL with err filled when the address cannot
 * be resolved or bound (port in use). m must outlive the server. */
struct mf_metrics_server *mf_metrics_server_start(struct mf_metrics *m,
                                                  const char *listen,
                                                  char *err, size_t errsz);
/* Bound port (the ephemeral one when listen said 0). */
int mf_metrics_server_port(const struct mf_metrics_server *s);
/* Stop and free (NULL is fine). Returns after the thread is gone. */
void mf_metrics_server_stop(struct mf_metrics_server *s);

/* The `metrics` section (table mf_metrics_sec beside the code). */
struct mf_metrics_conf {
    bool enabled;
    const char *listen;              /* host:port */
};
extern const struct mf_optsec mf_metrics_sec;

#endif
