/* deliver.c - the delivery stage of `run`: lanes, group commit, gap
 * events. See deliver.h. */
#include "deliver.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aggregate.h"
#include "bloom.h"
#include "clock.h"
#include "agent_conf.h"
#include "fanout.h"
#include "input.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "normalize.h"
#include "output.h"
#include "report_feed.h"
#include "state.h"

#define MAX_LANES    8      /* with lanes = 0 (one per CPU) */
#define COMMIT_MAX   16     /* blobs per group commit while more are queued */
#define COMMIT_MAX_TXN 64   /* cluster mode: a transaction's fixed cost (its
                               round trips, the lanes held at the barrier)
                               spread over more blobs */
#define TXN_AGE_MS   5000   /* cluster mode: the oldest blob sent waits at most
                               this for its commit */
#define AGG_SAVE_MS  30000  /* the aggregate windows saved at most this often */
#define AGG_NFAM     7      /* aggregate metric families */

/* A thread's own normalizer context, record buffers and SQLite connection.
 * The collector's thread has one too (d->self) for gap events. */
struct lane {
    struct mf_deliver *d;
    pthread_t th;
    bool started;
    struct mf_nctx nctx;
    struct mf_fanout fo;
    struct mf_state *state;
    bool own_state;
    struct mf_findings findings;   /* a record's aggregate findings */
    struct mf_arena farena;        /* their forms */
    struct mf_finding_ctx fctx;
};

/* Ids of records sent and not yet committed (all lanes): the same Id in
 * two blobs at once goes out once. Chained hash set, keys borrowed from
 * the blobs' id lists. */
struct rid {
    struct rid *next;
    uint64_t hash;
    const char *tenant;
    const char *id;
};

struct mf_deliver {
    struct mf_deliver_opts o;
    struct lane *lanes;
    int n_lanes;
    struct lane self;

    pthread_mutex_t mu;          /* queues, counters, the Id set */
    pthread_cond_t cv;           /* lanes: work, commit finished, quit */
    pthread_cond_t cv_done;      /* the collector: results */
    struct mf_dl_blob *todo, **todo_tail;
    struct mf_dl_blob *sent;     /* completely sent, awaiting the commit */
    size_t n_sent;
    struct mf_dl_blob *done, **done_tail;
    size_t pending;              /* submitted, not reaped */
    bool committing;
    bool quit;

    struct rid **rids;
    size_t n_rid_buckets, n_rids;
    bool dedupe;                 /* collect.dedupe_horizon > 0 */
    struct mf_bloom seen;        /* every Id in the state: most records are
                                    new, and need no SQLite lookup */
    uint64_t commits;            /* group commits ended so far */

    struct mf_aggregates *agg;   /* the aggregate windows (thread-safe) */
    char agg_path[4096];         /* state_dir/aggregates.state */
    int64_t agg_saved_ms;        /* under mu */
    int agg_fam[AGG_NFAM];       /* metric families (agg_metric_fams) */
    struct mf_aggregates_stats agg_prev;   /* counters last exported, under mu */
    struct mf_report_feed *report;   /* state_dir/report.db (report_feed.h) */

    pthread_mutex_t flush_mu;    /* one flush at a time (before gen_mu) */
    pthread_mutex_t gen_mu;      /* fail_gen, out_gen, out_down */
    uint64_t fail_gen;           /* failed flushes so far */

    /* cluster mode (o.txn): the commit barrier, under mu */
    size_t sending;              /* lanes in the middle of a blob */
    bool force_commit;           /* commit even without blobs */
    int64_t sent_since_ms;       /* when the oldest of `sent` was sent */
    bool poisoned;               /* a blob failed after sending records */
    uint64_t *out_gen;           /* per output: its failed flushes so far */
    bool *out_down;              /* per output: a send timed out since its
                                    last good flush (sends do not wait) */
};

/* ---------------------------------------------------------------------- */
/* Reserved Ids                                                           */
/* ---------------------------------------------------------------------- */

/* An Id's place in the set: the first half of its key in the state. */
static uint64_t
rid_hash(const char *tenant, const char *id)
{
    uint64_t key[2];

    mf_state_id_hash(tenant, id, key);
    return key[0];
}

/* Reserve (tenant, id) for the caller; false when somebody holds it.
 * Under d->mu. */
static bool
rid_reserve(struct mf_deliver *d, uint64_t h, const char *tenant, const char *id)
{
    struct rid *r;

    if (d->n_rids >= d->n_rid_buckets) {
        size_t nb = d->n_rid_buckets ? d->n_rid_buckets * 2 : 4096;
        struct rid **nbk = mf_xcalloc(nb, sizeof(*nbk));

        for (size_t i = 0; i < d->n_rid_buckets; i++)
            while ((r = d->rids[i]) != NULL) {
                d->rids[i] = r->next;
                r->next = nbk[r->hash & (nb - 1)];
                nbk[r->hash & (nb - 1)] = r;
            }
        free(d->rids);
        d->rids = nbk;
        d->n_rid_buckets = nb;
    }
    for (r = d->rids[h & (d->n_rid_buckets - 1)]; r; r = r->next)
        if (r->hash == h && !strcmp(r->id, id) && !strcmp(r->tenant, tenant))
            return false;
    r = mf_xmalloc(sizeof(*r));
    r->hash = h;
    r->tenant = tenant;
    r->id = id;
    r->next = d->rids[h & (d->n_rid_buckets - 1)];
    d->rids[h & (d->n_rid_buckets - 1)] = r;
    d->n_rids++;
    return true;
}

/* Release the reservations of b (its own id strings). Under d->mu. */
static void
rid_release(struct mf_deliver *d, struct mf_dl_blob *b)
{
    for (size_t i = 0; d->dedupe && i < b->n_ids && d->n_rid_buckets; i++) {
        struct rid **pp = &d->rids[b->id_keys[i] & (d->n_rid_buckets - 1)];

        for (; *pp; pp = &(*pp)->next)
            if ((*pp)->id == b->ids[i]) {
                struct rid *r = *pp;

                *pp = r->next;
                free(r);
                d->n_rids--;
                break;
            }
    }
}

static void
ids_free(struct mf_dl_blob *b)
{
    free(b->out_sent);
    free(b->out_skip);
    free(b->out_failed);
    free(b->out_gen);
    b->out_sent = NULL;
    b->out_skip = b->out_failed = NULL;
    b->out_gen = NULL;
    for (size_t i = 0; i < b->n_ids; i++)
        free(b->ids[i]);
    free(b->ids);
    free(b->id_keys);
    b->ids = NULL;
    b->id_keys = NULL;
    b->n_ids = b->cap_ids = 0;
}

static int
seen_add(const uint64_t h[2], void *ud)
{
    mf_bloom_add(ud, h[0]);
    return 0;
}

/* (Re)build the filter of remembered Ids from the state, with room to
 * grow. Under d->mu (or before the lanes start). */
static int
seen_load(struct mf_deliver *d, struct mf_state *st)
{
    size_t cap = d->seen.n > 32768 ? d->seen.n * 2 : 65536;

    for (;;) {
        int n;

        mf_bloom_fini(&d->seen);
        mf_bloom_init(&d->seen, cap);
        n = mf_state_foreach_id(st, seen_add, &d->seen);
        if (n < 0)
            return -1;
        if (!mf_bloom_full(&d->seen) && (size_t)n * 2 <= d->seen.cap)
            return 0;
        cap = (size_t)n * 2 + 65536;
    }
}

/* ---------------------------------------------------------------------- */
/* Records                                                                */
/* ---------------------------------------------------------------------- */

static void
out_queued(struct mf_output *o, void *ud)
{
    struct mf_output_stats os = {0};

    if (o->ops->stats)
        o->ops->stats(o, &os);
    *(double *)ud = (double)os.queued;
}

static uint64_t
gen_now(struct mf_deliver *d)
{
    uint64_t g;

    pthread_mutex_lock(&d->gen_mu);
    g = d->fail_gen;
    pthread_mutex_unlock(&d->gen_mu);
    return g;
}

/* The acknowledgement barrier: every record sent to every output before
 * the call is acknowledged. Outputs that split their flush are waited for
 * without their lock, so the lanes go on sending meanwhile. 0 / -1 (then
 * fail_gen moved, and the out_gen of each output that failed: no blob
 * that was being sent to it can count on this flush). With each, every
 * output's own result. */
static int
flush_each(struct mf_deliver *d, int *each)
{
    struct mf_fanout *fo = d->o.fo;
    int rc = 0, *orc = mf_xcalloc(fo->n ? fo->n : 1, sizeof(*orc));

    pthread_mutex_lock(&d->flush_mu);
    mf_fanout_flush_all(fo, NULL, orc);
    for (size_t i = 0; i < fo->n; i++) {
        struct mf_output *o = fo->outs[i];
        double queued = 0;
        bool ok;

        ok = orc[i] == 0;
        if (!ok) {
            rc = -1;
            mf_metrics_delivery_failure(d->o.m, o->conf->name);
        }
        mf_metrics_status_set(d->o.m, MF_METRICS_OUTPUT, o->conf->name, ok,
                              ok ? NULL : "records not acknowledged", 0);
        mf_fanout_locked(fo, i, out_queued, &queued);
        mf_metrics_queue_depth(d->o.m, o->conf->name, queued);
    }
    pthread_mutex_lock(&d->gen_mu);
    for (size_t i = 0; i < fo->n; i++) {
        if (orc[i] != 0)
            d->out_gen[i]++;
        else
            d->out_down[i] = false;
    }
    if (rc != 0)
        d->fail_gen++;
    pthread_mutex_unlock(&d->gen_mu);
    pthread_mutex_unlock(&d->flush_mu);
    if (each)
        memcpy(each, orc, fo->n * sizeof(*orc));
    free(orc);
    return rc;
}

static int
flush_outputs(struct mf_deliver *d)
{
    return flush_each(d, NULL);
}

/* Acknowledged records, per output (counts indexed like the outputs). */
static void
count_delivered(struct mf_deliver *d, const char *tenant, const char *ct,
                const uint64_t *sent)
{
    for (size_t i = 0; i < d->o.fo->n; i++)
        if (sent[i])
            mf_metrics_records_delivered(d->o.m, d->o.fo->outs[i]->conf->name, tenant, ct,
                                         sent[i]);
}

/* The lane's event to every output whose filter wants it and that b (when
 * given) still goes to; sent[i] counts what output i took. An output that
 * stays full fails b for itself only (b is fetched again for it); without
 * b it fails the record: -2. Else 1. */
static int
send_outputs(struct lane *L, struct mf_dl_blob *b, uint64_t *sent)
{
    struct mf_deliver *d = L->d;

    for (size_t i = 0; i < L->fo.n; i++) {
        struct mf_output *o = L->fo.outs[i];
        bool down;

        if (!L->fo.want[i] || (b && (b->out_skip[i] || b->out_failed[i])))
            continue;
        pthread_mutex_lock(&d->gen_mu);
        down = d->out_down[i];
        pthread_mutex_unlock(&d->gen_mu);
        /* backpressure: a full output holds this lane right here (not
         * again once it stayed full for its flush_timeout) */
        if (mf_fanout_send(&L->fo, i, down ? 0 : (int)o->conf->flush_timeout_ms) ==
                MF_RETRY) {
            if (!down)
                mf_log(MF_LOG_ERROR, "output=%s cannot take records (full for %" PRId64
                       " ms): %s", o->conf->name, o->conf->flush_timeout_ms,
                       b ? "the blob will be delivered to it again" : "not delivered");
            pthread_mutex_lock(&d->gen_mu);
            d->out_down[i] = true;
            pthread_mutex_unlock(&d->gen_mu);
            if (!b)
                return -2;
            b->out_failed[i] = true;     /* the other outputs go on */
            continue;
        }
        /* MF_DROP: the output counted and logged it; its flush fails */
        sent[i]++;
    }
    return 1;
}

/* The aggregate findings of the record L normalized last, each sent after
 * it like a record of b (same tenant and content type, the same outputs),
 * so that b's commit covers them too. An output that does not take one
 * fails b for itself: b is fetched again for it, and the record that fired
 * the finding yields the same finding again (docs/aggregates.md). */
static void
send_findings(struct lane *L, struct mf_dl_blob *b, const char *tenant_id,
              const char *tenant_name, const char *ct, uint64_t *sent)
{
    struct mf_deliver *d = L->d;
    struct mf_event *ev = &L->fo.ev;

    mf_findings_reset(&L->findings);
    /* a blob begun before (b->again: an attempt failed or was interrupted)
     * may have fired windows whose findings some output did not take */
    if ((b->again ? mf_aggregates_feed_replay : mf_aggregates_feed)(
            d->agg, &L->nctx.rec, &L->nctx.hits, &L->findings) == 0)
        return;
    for (size_t k = 0; k < L->findings.n; k++) {
        mf_arena_reset(&L->farena);
        mf_finding_event(ev, &L->findings.v[k], ct, &L->fctx, &L->farena);
        ev->tenant_id = tenant_id;
        ev->tenant = tenant_name;
        if (mf_fanout_route(&L->fo) < 0) {
            mf_log(MF_LOG_ERROR, "tenant=%s finding %s: %s", tenant_name, ev->id, ev->error);
            continue;
        }
        mf_log(MF_LOG_INFO, "tenant=%s finding=%s rule=%s severity=%d", tenant_name,
               ev->id, ev->operation, ev->severity);
        send_outputs(L, b, sent);
    }
}

/* The aggregate windows in the metrics: a field of the stats per family
 * (counters move by what grew since the last export). */
static const struct {
    enum mf_metric_type type;
    const char *name, *help;
    size_t off;
} agg_metric_fams[AGG_NFAM] = {
    {MF_METRIC_COUNTER, "m365fwd_aggregate_findings_total",
     "Aggregate findings emitted (Detection Findings).",
     offsetof(struct mf_aggregates_stats, findings)},
    {MF_METRIC_COUNTER, "m365fwd_aggregate_reemitted_total",
     "The same findings again: the record that fired one came again (its blob fetched again).",
     offsetof(struct mf_aggregates_stats, reemitted)},
    {MF_METRIC_COUNTER, "m365fwd_aggregate_late_total",
     "Records not counted in a window: their time lies in a stretch the stream passed.",
     offsetof(struct mf_aggregates_stats, late)},
    {MF_METRIC_COUNTER, "m365fwd_aggregate_evicted_total",
     "Windows dropped to stay under the caps on tracked keys and memory.",
     offsetof(struct mf_aggregates_stats, evicted)},
    {MF_METRIC_GAUGE, "m365fwd_aggregate_windows", "Aggregate windows tracked now.",
     offsetof(struct mf_aggregates_stats, keys)},
    {MF_METRIC_GAUGE, "m365fwd_aggregate_state_bytes",
     "Memory of the aggregate windows now.", offsetof(struct mf_aggregates_stats, bytes)},
    {MF_METRIC_GAUGE, "m365fwd_aggregate_rules_off",
     "Aggregate rules off (distant-address rules without normalizer.geoip_db).",
     offsetof(struct mf_aggregates_stats, rules_off)},
};

static void
agg_metrics_register(struct mf_deliver *d)
{
    for (size_t i = 0; i < AGG_NFAM; i++) {
        d->agg_fam[i] = mf_metrics_family(d->o.m, agg_metric_fams[i].name);
        if (d->agg_fam[i] < 0)
            d->agg_fam[i] = mf_metrics_register(d->o.m, agg_metric_fams[i].type,
                                                agg_metric_fams[i].name,
                                                agg_metric_fams[i].help, NULL, 0, NULL, 0);
        if (agg_metric_fams[i].type == MF_METRIC_COUNTER)
            mf_metrics_add(d->o.m, d->agg_fam[i], NULL, 0);   /* the series from the start */
    }
}

static void
agg_metrics(struct mf_deliver *d)
{
    struct mf_aggregates_stats st, prev;

    if (!d->agg || !d->o.m)
        return;
    pthread_mutex_lock(&d->mu);   /* lanes commit in turn: the stats too */
    mf_aggregates_stats(d->agg, &st);
    prev = d->agg_prev;
    d->agg_prev = st;
    pthread_mutex_unlock(&d->mu);
    for (size_t i = 0; i < AGG_NFAM; i++) {
        uint64_t v, was;

        memcpy(&v, (const char *)&st + agg_metric_fams[i].off, sizeof(v));
        memcpy(&was, (const char *)&prev + agg_metric_fams[i].off, sizeof(was));
        if (agg_metric_fams[i].type == MF_METRIC_GAUGE)
            mf_metrics_set(d->o.m, d->agg_fam[i], NULL, (double)v);
        else if (v > was)
            mf_metrics_add(d->o.m, d->agg_fam[i], NULL, (double)(v - was));
    }
}

/* Write the aggregate windows to state_dir (at most every AGG_SAVE_MS
 * unless force), after a commit and at the end. */
static void
agg_save(struct mf_deliver *d, bool force)
{
    int64_t now = mf_clock_mono_ms();
    struct mf_err err;

    if (!d->agg)
        return;
    pthread_mutex_lock(&d->mu);
    if (!force && now - d->agg_saved_ms < AGG_SAVE_MS) {
        pthread_mutex_unlock(&d->mu);
        return;
    }
    d->agg_saved_ms = now;
    pthread_mutex_unlock(&d->mu);
    if (mf_aggregates_save(d->agg, d->agg_path, &err) != 0)
        mf_log(MF_LOG_ERROR, "aggregate windows not saved: %s", err.msg);
}

/* Normalize one record in every form in use and send it to every output
 * whose filter wants it; sent[i] counts what output i took. With b: drop
 * the Ids delivered before or held by another blob, and keep the Id in b
 * for the commit (idx: the record's index in the blob, for errors).
 * 1 sent, 0 duplicate, -1 rejected by the normalizer (logged), -2 an output
 * cannot take it. */
static int
send_record(struct lane *L, const char *tenant_id, const char *tenant_name, const char *ct,
            const char *data, size_t len, struct mf_dl_blob *b, size_t idx, uint64_t *sent)
{
    struct mf_deliver *d = L->d;
    struct mf_norm_in in = {.data = data, .len = len, .content_type = ct, .first_line = 1,
                            .domains = b ? b->domains : NULL,
                            .n_domains = b ? b->n_domains : 0};
    struct mf_event *ev = &L->fo.ev;
    int rc = 1;

    if (mf_fanout_normalize(&L->fo, d->o.norm, &L->nctx, &in) == MF_OK) {
        ev->tenant_id = tenant_id;
        ev->tenant = tenant_name;
        if (mf_fanout_route(&L->fo) < 0)
            rc = -1;
    } else {
        rc = -1;
    }
    if (rc < 0) {
        if (b)
            mf_log(MF_LOG_ERROR, "tenant=%s content_type=%s blob %s (index %zu): record "
                   "rejected: %s", tenant_name, ct, b->content_id, idx, ev->error);
        else
            mf_log(MF_LOG_ERROR, "tenant=%s content_type=%s gap event: record rejected: %s",
                   tenant_name, ct, ev->error);
        return -1;
    }
    if (b && ev->id[0]) {
        uint64_t h = 0;
        char *id;

        if (d->dedupe) {
            bool fresh;

            h = rid_hash(tenant_id, ev->id);
            id = mf_xstrdup(ev->id);
            /* "not in the filter" and the reservation in one step; after a
             * "maybe" and a miss in SQLite, reserve only when no commit
             * ended in between (else look again): an Id is never seen
             * neither committed nor reserved */
            for (;;) {
                uint64_t gen;

                pthread_mutex_lock(&d->mu);
                if (!mf_bloom_test(&d->seen, h)) {
                    fresh = rid_reserve(d, h, b->tenant_id, id);
                    pthread_mutex_unlock(&d->mu);
                    break;
                }
                gen = d->commits;
                pthread_mutex_unlock(&d->mu);
                if (mf_state_id_seen(L->state, tenant_id, id) == 1) {
                    fresh = false;
                    break;
                }
                pthread_mutex_lock(&d->mu);
                if (d->commits == gen) {
                    fresh = rid_reserve(d, h, b->tenant_id, id);
                    pthread_mutex_unlock(&d->mu);
                    break;
                }
                pthread_mutex_unlock(&d->mu);
            }
            if (!fresh) {
                free(id);
                return 0;
            }
        } else {
            id = mf_xstrdup(ev->id);
        }
        if (b->n_ids == b->cap_ids) {
            b->cap_ids = b->cap_ids ? b->cap_ids * 2 : 1024;
            b->ids = mf_xrealloc(b->ids, b->cap_ids * sizeof(*b->ids));
            b->id_keys = mf_xrealloc(b->id_keys, b->cap_ids * sizeof(*b->id_keys));
        }
        b->id_keys[b->n_ids] = h;
        b->ids[b->n_ids++] = id;
    }
    rc = send_outputs(L, b, sent);
    if (rc == 1)   /* counted with its blob, kept when the blob commits */
        mf_report_feed_record(d->report, b, &L->nctx, ev);
    if (rc == 1 && b && d->agg)   /* after: a finding takes the lane's event */
        send_findings(L, b, tenant_id, tenant_name, ct, sent);
    return rc;
}

static int commit_now(struct mf_deliver *d);

/* The gap record through every output, flushed, and the gap in the state
 * (on L's connection). In cluster mode the record goes into the open
 * transaction and is committed: at once from the collector's thread; by
 * the next commit when the committing lane itself emits it (in_commit). */
static int
emit_gap(struct lane *L, const char *tenant_id, const char *tenant_name, const char *ct,
         int64_t start_ms, int64_t end_ms, const char *reason, bool in_commit)
{
    struct mf_deliver *d = L->d;
    char s0[32], s1[32], now_s[32], rec[2048], idbuf[256];
    struct mf_buf esc;
    uint64_t *sent;
    int n, rc;

    mf_state_add_gap(L->state, tenant_id, ct, start_ms, end_ms, mf_clock_wall_ms());
    mf_metrics_gap_seconds(d->o.m, tenant_name, ct, (double)(end_ms - start_ms) / 1000);
    mf_clock_fmt_utc(start_ms, s0, sizeof(s0));
    mf_clock_fmt_utc(end_ms, s1, sizeof(s1));
    mf_clock_fmt_utc(mf_clock_wall_ms(), now_s, sizeof(now_s));
    snprintf(idbuf, sizeof(idbuf), "m365fwd-gap-%s-%s-%" PRId64, tenant_id, ct, start_ms);
    mf_buf_init(&esc, 0);
    mf_json_write_str(&esc, reason, strlen(reason));
    n = snprintf(rec, sizeof(rec),
                 "{\"Id\":\"%s\",\"CreationTime\":\"%s\",\"Operation\":\"CollectionGap\","
                 "\"Workload\":\"m365fwd\",\"RecordType\":-1,\"UserType\":4,"
                 "\"UserId\":\"m365fwd\",\"OrganizationId\":\"%s\",\"ResultStatus\":\"Failed\","
                 "\"ContentType\":\"%s\",\"GapStart\":\"%s\",\"GapEnd\":\"%s\","
                 "\"Reason\":%s}",
                 idbuf, now_s, tenant_id, ct, s0, s1, esc.data);
    mf_buf_fini(&esc);
    if (n < 0 || (size_t)n >= sizeof(rec))
        n = (int)strlen(rec);
    mf_log(MF_LOG_ERROR,
           "tenant=%s content_type=%s collection gap %s .. %s: %s (emitted as a "
           "monitor.collection_gap event)", tenant_name, ct, s0, s1, reason);
    sent = mf_xcalloc(d->o.fo->n ? d->o.fo->n : 1, sizeof(*sent));
    if (!d->o.txn) {
        rc = send_record(L, tenant_id, tenant_name, ct, rec, (size_t)n, NULL, 0, sent);
        if (flush_outputs(d) != 0)
            rc = -1;
    } else if (in_commit) {
        rc = send_record(L, tenant_id, tenant_name, ct, rec, (size_t)n, NULL, 0, sent);
        pthread_mutex_lock(&d->mu);
        d->force_commit = true;
        if (rc < 0)
            d->poisoned = true;
        pthread_mutex_unlock(&d->mu);
    } else {
        /* like a lane with a blob: not while a commit runs */
        pthread_mutex_lock(&d->mu);
        while (d->committing)
            pthread_cond_wait(&d->cv, &d->mu);
        d->sending++;
        pthread_mutex_unlock(&d->mu);
        rc = send_record(L, tenant_id, tenant_name, ct, rec, (size_t)n, NULL, 0, sent);
        pthread_mutex_lock(&d->mu);
        if (--d->sending == 0)
            pthread_cond_broadcast(&d->cv);
        if (rc < 0)
            d->poisoned = true;
        pthread_mutex_unlock(&d->mu);
        if (commit_now(d) != 0)
            rc = -1;
    }
    if (rc >= 0)
        count_delivered(d, tenant_name, ct, sent);
    free(sent);
    if (rc < 0)
        return -1;
    mf_state_gap_emitted(L->state, tenant_id, ct, start_ms);
    return 0;
}

/* Copy a blob that keeps failing to state_dir/quarantine/ for people to
 * look at. path gets where it went ("" on failure). */
static void
quarantine(struct mf_deliver *d, const struct mf_dl_blob *b, char *path, size_t n)
{
    char dir[1100], buf[65536];
    ssize_t r;
    int out;

    path[0] = '\0';
    snprintf(dir, sizeof(dir), "%s/quarantine", d->o.cfg->state_dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return;
    snprintf(path, n, "%s/", dir);
    for (const char *p = b->content_id; *p && strlen(path) + 6 < n; p++) {
        size_t l = strlen(path);

        path[l] = (isalnum((unsigned char)*p) || *p == '-' || *p == '_') ? *p : '_';
        path[l + 1] = '\0';
    }
    strncat(path, ".json", n - strlen(path) - 1);
    out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0 || lseek(b->fd, 0, SEEK_SET) != 0) {
        if (out >= 0)
            close(out);
        path[0] = '\0';
        return;
    }
    while ((r = read(b->fd, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)r) != r)
            break;
    if (fsync(out) != 0 || close(out) != 0)
        path[0] = '\0';
}

/* ---------------------------------------------------------------------- */
/* A blob                                                                 */
/* ---------------------------------------------------------------------- */

struct ack_names {
    const struct mf_fanout *fo;
    bool *skip;
};

static void
ack_found(const char *output, void *ud)
{
    struct ack_names *a = ud;

    for (size_t i = 0; i < a->fo->n; i++)
        if (strcmp(a->fo->outs[i]->conf->name, output) == 0)
            a->skip[i] = true;
}

/* b's per-output bookkeeping for this attempt; the outputs that
 * acknowledged it in an earlier one are skipped. */
static void
blob_outputs_init(struct lane *L, struct mf_dl_blob *b)
{
    size_t n = L->fo.n ? L->fo.n : 1;
    struct ack_names a = {.fo = &L->fo};

    ids_free(b);
    b->out_sent = mf_xcalloc(n, sizeof(*b->out_sent));
    b->out_skip = mf_xcalloc(n, sizeof(*b->out_skip));
    b->out_failed = mf_xcalloc(n, sizeof(*b->out_failed));
    b->out_gen = mf_xcalloc(n, sizeof(*b->out_gen));
    a.skip = b->out_skip;
    if (mf_state_blob_acks(L->state, b->tenant_id, b->content_type, b->content_id,
                           ack_found, &a) < 0)
        mf_log(MF_LOG_WARN, "%s (the blob goes to every output)", mf_state_errmsg(L->state));
    for (size_t i = 0; i < L->fo.n; i++)
        if (b->out_skip[i])
            mf_log(MF_LOG_INFO, "tenant=%s content_type=%s blob %s: output=%s acknowledged "
                   "it before: not sent to it again", b->tenant_name, b->content_type,
                   b->content_id, L->fo.outs[i]->conf->name);
}

/* Send every record of b. 0 when all went out (b waits for the commit),
 * -1 when it must be fetched again. */
static int
send_blob(struct lane *L, struct mf_dl_blob *b)
{
    struct mf_deliver *d = L->d;
    struct mf_input_opts io = {.format = MF_INPUT_JSON,
                               .max_record = (size_t)d->o.cfg->collect.max_record_size};
    struct mf_input *in;
    struct mf_input_rec rec;
    struct mf_input_err ierr;
    enum mf_input_ev ev;
    size_t idx = 0;
    int rc = 0, again;

    b->n_dups = b->n_bad = 0;
    b->n_unreadable = 0;
    blob_outputs_init(L, b);
    /* a body cut short (a reset or a proxy) shows as unreadable records:
     * check the whole blob before the first record reaches an output, so a
     * retry does not deliver its first records twice */
    if (!b->last_attempt) {
        size_t broken = 0;

        if (lseek(b->fd, 0, SEEK_SET) != 0)
            return -1;
        in = mf_input_new_fd(b->fd, b->content_id, &io);
        while ((ev = mf_input_next(in, &rec, &ierr)) != MF_INPUT_EOF)
            broken += ev == MF_INPUT_ERROR;
        mf_input_destroy(in);
        if (broken) {
            mf_log(MF_LOG_WARN, "tenant=%s content_type=%s blob %s: %zu unreadable "
                   "records (%s); fetching the blob again (attempt %d of %d)",
                   b->tenant_name, b->content_type, b->content_id, broken, ierr.msg,
                   b->attempt + 1, b->max_attempts);
            return -1;
        }
    }
    if (lseek(b->fd, 0, SEEK_SET) != 0)
        return -1;
    again = mf_state_blob_begin(L->state, b->tenant_id, b->content_type, b->content_id,
                                mf_clock_wall_ms());
    if (again < 0) {
        mf_log(MF_LOG_ERROR, "%s", mf_state_errmsg(L->state));
        return -1;
    }
    b->again = again > 0 ? (size_t)again : 0;
    b->gen = gen_now(d);
    pthread_mutex_lock(&d->gen_mu);
    memcpy(b->out_gen, d->out_gen, d->o.fo->n * sizeof(*b->out_gen));
    pthread_mutex_unlock(&d->gen_mu);
    in = mf_input_new_fd(b->fd, b->content_id, &io);
    while ((ev = mf_input_next(in, &rec, &ierr)) != MF_INPUT_EOF) {
        if (ev == MF_INPUT_ERROR) {
            b->n_bad++;
            mf_log(MF_LOG_ERROR, "tenant=%s content_type=%s blob %s: %s", b->tenant_name,
                   b->content_type, b->content_id, ierr.msg);
            continue;
        }
        rc = send_record(L, b->tenant_id, b->tenant_name, b->content_type, rec.data,
                         rec.len, b, idx++, b->out_sent);
        if (rc == 0)
            b->n_dups++;
        else if (rc == -1)
            b->n_bad++;
        else if (rc == -2)
            break;
    }
    mf_input_destroy(in);
    if (rc == -2)
        return -1;
    b->n_unreadable = b->n_bad;
    if (b->n_bad && !b->last_attempt) {
        /* damaged: fetch it again rather than lose a record; what reached
         * the outputs is redelivered (and counted as such) */
        mf_log(MF_LOG_WARN, "tenant=%s content_type=%s blob %s: %zu records unreadable; "
               "fetching the blob again (attempt %d of %d)", b->tenant_name,
               b->content_type, b->content_id, b->n_bad, b->attempt + 1, b->max_attempts);
        return -1;
    }
    return 0;
}

/* After the commit: counters and logs of a committed blob; a blob with
 * records that stayed unreadable is quarantined and announced as a gap. */
static void
blob_committed(struct lane *L, struct mf_dl_blob *b)
{
    struct mf_deliver *d = L->d;

    if (b->n_bad) {
        char path[1300], reason[1600];

        quarantine(d, b, path, sizeof(path));
        snprintf(reason, sizeof(reason), "%zu unreadable records in blob %.200s after %d "
                 "attempts; the blob is kept in %s", b->n_bad, b->content_id,
                 b->max_attempts, path[0] ? path : "(could not be saved)");
        emit_gap(L, b->tenant_id, b->tenant_name, b->content_type, b->created_ms,
                 b->created_ms, reason, true);
        mf_log(MF_LOG_WARN, "tenant=%s content_type=%s blob %s: %zu records could not "
               "be read (logged above)", b->tenant_name, b->content_type, b->content_id,
               b->n_bad);
    }
    count_delivered(d, b->tenant_name, b->content_type, b->out_sent);
    mf_metrics_records_received(d->o.m, b->tenant_name, b->content_type,
                                b->n_ids + b->n_dups + b->n_bad);
    mf_metrics_duplicates_dropped(d->o.m, b->tenant_name, b->content_type, b->n_dups);
    mf_metrics_records_rejected(d->o.m, b->tenant_name, b->content_type, b->n_bad);
    if (b->n_dups)
        mf_log(MF_LOG_INFO, "tenant=%s content_type=%s blob %s: %zu duplicate records "
               "dropped", b->tenant_name, b->content_type, b->content_id, b->n_dups);
    if (b->again)
        mf_log(MF_LOG_WARN, "tenant=%s content_type=%s blob %s: delivered again after an "
               "interrupted attempt: up to %zu records may be duplicates downstream",
               b->tenant_name, b->content_type, b->content_id, b->n_ids);
    mf_log(MF_LOG_DEBUG, "tenant=%s content_type=%s blob %s delivered: %zu records",
           b->tenant_name, b->content_type, b->content_id, b->n_ids);
}

/* Cluster mode: the blobs' state and records commit in one transaction
 * of the strategy's (the barrier holds: nothing else is being sent),
 * unless an output failed (orc: each output's flush) or a blob was
 * poisoned. An aborted transaction took none of its records: the outputs
 * in it (covers) are marked failed in orc, so every blob of it comes
 * again for them, and for the outputs that failed, but not for the others
 * that acknowledged. 0 when committed and every output acknowledged. */
static int
txn_commit(struct lane *L, struct mf_dl_blob *list, int *orc)
{
    struct mf_deliver *d = L->d;
    const struct mf_dl_txn *t = d->o.txn;
    struct mf_fanout *fo = d->o.fo;
    bool poisoned, outputs_ok = true;
    int rc;

    for (size_t i = 0; i < fo->n; i++)
        outputs_ok = outputs_ok && orc[i] == 0;
    pthread_mutex_lock(&d->mu);
    poisoned = d->poisoned;
    d->poisoned = false;
    pthread_mutex_unlock(&d->mu);
    rc = t->commit(t->ud, list, outputs_ok && !poisoned);
    if (rc != 0) {
        pthread_mutex_lock(&d->gen_mu);
        for (size_t i = 0; i < fo->n; i++) {
            if (t->covers && !t->covers(t->ud, fo->outs[i]))
                continue;
            if (orc[i] == 0)
                d->out_gen[i]++;
            orc[i] = -1;
        }
        d->fail_gen++;
        pthread_mutex_unlock(&d->gen_mu);
    }
    return rc != 0 || !outputs_ok ? -1 : 0;
}

/* Which outputs acknowledged b with this flush (orc: each output's result,
 * gens: the outputs' generations after it): every output that b went to
 * must have flushed without a failure since b began, and taken all of its
 * records. acked[i] is set for the outputs that acknowledged it now (not
 * those that had before). True when no output misses b any more. */
static bool
blob_acked_by(const struct mf_deliver *d, const struct mf_dl_blob *b, const int *orc,
              const uint64_t *gens, bool *acked)
{
    bool all = true;

    for (size_t i = 0; i < d->o.fo->n; i++) {
        bool ok = orc[i] == 0 && b->out_gen[i] == gens[i] && !b->out_failed[i];

        acked[i] = !b->out_skip[i] && ok;
        all = all && (b->out_skip[i] || ok);
    }
    return all;
}

/* Some outputs acknowledged b, others not: remember those that did, so the
 * next attempt goes to the others only. */
static void
blob_partly_acked(struct lane *L, struct mf_dl_blob *b, const bool *acked, int64_t now)
{
    struct mf_fanout *fo = L->d->o.fo;
    char names[512] = "", missing[512] = "";

    for (size_t i = 0; i < fo->n; i++) {
        const char *name = fo->outs[i]->conf->name;
        char *list = acked[i] || b->out_skip[i] ? names : missing;

        if (acked[i] && mf_state_blob_acked(L->state, b->tenant_id, b->content_type,
                                            b->content_id, name, now) != 0)
            mf_log(MF_LOG_WARN, "%s", mf_state_errmsg(L->state));
        snprintf(list + strlen(list), sizeof(names) - strlen(list), "%s%s",
                 list[0] ? "," : "", name);
    }
    mf_log(MF_LOG_WARN, "tenant=%s content_type=%s blob %s: acknowledged by %s, not by %s; "
           "fetching it again for %s only", b->tenant_name, b->content_type,
           b->content_id, names[0] ? names : "no output", missing, missing);
}

/* One flush for every blob of list (in cluster mode, then the strategy's
 * commit), then one transaction recording those whose records every
 * output acknowledged; for the others, which outputs did. 0 when every
 * output acknowledged (and the transaction committed). */
static int
group_commit(struct lane *L, struct mf_dl_blob *list)
{
    struct mf_deliver *d = L->d;
    int64_t now = mf_clock_wall_ms();
    size_t n_out = d->o.fo->n ? d->o.fo->n : 1;
    int *orc = mf_xcalloc(n_out, sizeof(*orc));
    uint64_t *gens = mf_xcalloc(n_out, sizeof(*gens));
    bool *acked = mf_xcalloc(n_out, sizeof(*acked));
    bool txn = false;
    int ok, frc;

    frc = flush_each(d, orc);
    if (d->o.txn)
        frc = txn_commit(L, list, orc);
    pthread_mutex_lock(&d->gen_mu);
    memcpy(gens, d->out_gen, d->o.fo->n * sizeof(*gens));
    pthread_mutex_unlock(&d->gen_mu);
    ok = 0;
    for (struct mf_dl_blob *b = list; b; b = b->next) {
        b->rc = blob_acked_by(d, b, orc, gens, acked) ? 0 : -1;
        if (b->rc != 0)
            blob_partly_acked(L, b, acked, now);
        else
            ok = 1;
    }
    if (ok && mf_state_txn_begin(L->state) != 0) {
        mf_log(MF_LOG_ERROR, "%s", mf_state_errmsg(L->state));
        ok = 0;
    }
    txn = ok;
    for (struct mf_dl_blob *b = list; ok && b; b = b->next) {
        if (b->rc != 0)
            continue;
        if (mf_state_commit_blob(L->state, b->tenant_id, b->content_type, b->content_id,
                                 b->created_ms, (const char *const *)b->ids, b->n_ids,
                                 b->n_dups, b->n_ids * b->again, now) != 0) {
            mf_log(MF_LOG_ERROR, "%s", mf_state_errmsg(L->state));
            ok = 0;
        }
    }
    if (txn && mf_state_txn_end(L->state, ok) != 0) {
        mf_log(MF_LOG_ERROR, "%s", mf_state_errmsg(L->state));
        ok = 0;
    }
    for (struct mf_dl_blob *b = list; b; b = b->next) {
        if (!ok && b->rc == 0) {
            /* every output has it, the state could not record it: it comes
             * again to every output (duplicates, never a loss) */
            mf_log(MF_LOG_ERROR, "tenant=%s content_type=%s blob %s: delivered but not "
                   "recorded in the state: it will be delivered again", b->tenant_name,
                   b->content_type, b->content_id);
            b->rc = -1;
        }
        if (b->rc == 0 &&
            mf_state_blob_end(L->state, b->tenant_id, b->content_type, b->content_id) != 0)
            mf_log(MF_LOG_WARN, "%s", mf_state_errmsg(L->state));
    }
    /* the committed Ids are in SQLite now: into the filter, and end the
     * reservations (together, so no lane finds an Id in neither) */
    pthread_mutex_lock(&d->mu);
    d->commits++;
    for (struct mf_dl_blob *b = list; b; b = b->next) {
        for (size_t i = 0; d->dedupe && b->rc == 0 && i < b->n_ids; i++)
            mf_bloom_add(&d->seen, b->id_keys[i]);
        rid_release(d, b);
    }
    if (d->dedupe && mf_bloom_full(&d->seen) && seen_load(d, L->state) != 0)
        mf_log(MF_LOG_ERROR, "%s", mf_state_errmsg(L->state));
    pthread_mutex_unlock(&d->mu);
    mf_report_feed_blobs(d->report, list);
    for (struct mf_dl_blob *b = list; b; b = b->next)
        if (b->rc == 0)
            blob_committed(L, b);
    free(acked);
    free(gens);
    free(orc);
    /* after the commit: what the windows counted is delivered; a crash
     * before the next save re-counts nothing twice (Ids are remembered) */
    agg_save(d, false);
    agg_metrics(d);
    return frc;
}

/* ---------------------------------------------------------------------- */
/* Lanes                                                                  */
/* ---------------------------------------------------------------------- */

static void
wake(struct mf_deliver *d)
{
    if (d->o.wake)
        d->o.wake(d->o.ud);
}

/* Under d->mu: hand b to the collector. */
static void
post_done(struct mf_deliver *d, struct mf_dl_blob *b)
{
    b->next = NULL;
    *d->done_tail = b;
    d->done_tail = &b->next;
    pthread_cond_signal(&d->cv_done);
}

/* While blobs are queued, lanes send them and commit only once enough
 * wait (one flush and one transaction for many); with nothing queued they
 * commit at once. */
static bool
commit_due(const struct mf_deliver *d)
{
    /* a transaction also commits once it is TXN_AGE_MS old: slow outputs
     * must not let it run into the coordinator's transaction.timeout.ms */
    if (!d->o.txn)
        return d->n_sent >= COMMIT_MAX;
    return d->n_sent >= COMMIT_MAX_TXN ||
           (d->n_sent && mf_clock_mono_ms() - d->sent_since_ms >= TXN_AGE_MS);
}

/* Any record of b reached an output. */
static bool
blob_sent_any(const struct mf_deliver *d, const struct mf_dl_blob *b)
{
    for (size_t i = 0; b->out_sent && i < d->o.fo->n; i++)
        if (b->out_sent[i])
            return true;
    return false;
}

/* Under d->mu: a lane may start a blob now. In cluster mode none starts
 * while a commit runs or waits to run (the barrier). */
static bool
may_start_blob(const struct mf_deliver *d)
{
    if (!d->todo || (commit_due(d) && !d->committing))
        return false;
    return !d->o.txn || !(d->committing || d->force_commit);
}

/* Under d->mu (released meanwhile): commit what was sent, on L. In cluster
 * mode, first wait until no lane is in the middle of a blob. Returns the
 * group commit's result (0 also when there was nothing to commit). */
static int
run_commit(struct lane *L)
{
    struct mf_deliver *d = L->d;
    struct mf_dl_blob *list, *next;
    int rc;

    d->committing = true;
    while (d->o.txn && d->sending)
        pthread_cond_wait(&d->cv, &d->mu);
    list = d->sent;
    d->sent = NULL;
    d->n_sent = 0;
    d->force_commit = false;
    pthread_mutex_unlock(&d->mu);
    rc = list || d->o.txn ? group_commit(L, list) : 0;
    pthread_mutex_lock(&d->mu);
    d->committing = false;
    for (struct mf_dl_blob *b = list; b; b = next) {
        next = b->next;
        post_done(d, b);
    }
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    wake(d);
    pthread_mutex_lock(&d->mu);
    return rc;
}

static void *
lane_main(void *arg)
{
    struct lane *L = arg;
    struct mf_deliver *d = L->d;

    pthread_mutex_lock(&d->mu);
    while (!d->quit) {
        if (may_start_blob(d)) {
            struct mf_dl_blob *b = d->todo;
            int rc;

            d->todo = b->next;
            if (!d->todo)
                d->todo_tail = &d->todo;
            d->sending++;
            pthread_mutex_unlock(&d->mu);
            rc = send_blob(L, b);
            /* its state joins its records in the transaction (in parallel,
             * not at the commit) */
            if (rc == 0 && d->o.txn && d->o.txn->blob_sent &&
                d->o.txn->blob_sent(d->o.txn->ud, b) != 0)
                rc = -1;
            pthread_mutex_lock(&d->mu);
            if (--d->sending == 0)
                pthread_cond_broadcast(&d->cv);
            if (rc != 0) {
                /* its records that went out are in the open transaction:
                 * that one must not commit */
                if (d->o.txn && blob_sent_any(d, b))
                    d->poisoned = true;
                b->rc = -1;
                mf_report_feed_discard(d->report, b);
                rid_release(d, b);
                post_done(d, b);
                pthread_mutex_unlock(&d->mu);
                wake(d);
                pthread_mutex_lock(&d->mu);
            } else {
                if (!d->sent)
                    d->sent_since_ms = mf_clock_mono_ms();
                b->next = d->sent;
                d->sent = b;
                d->n_sent++;
            }
            continue;
        }
        if ((d->sent || (d->o.txn && d->force_commit)) && !d->committing) {
            run_commit(L);
            continue;
        }
        pthread_cond_wait(&d->cv, &d->mu);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

static int
lane_init(struct mf_deliver *d, struct lane *L, struct mf_state *state, char *err,
          size_t errsz)
{
    L->d = d;
    mf_nctx_init(&L->nctx);
    mf_fanout_share(&L->fo, d->o.fo);
    mf_findings_init(&L->findings);
    mf_arena_init(&L->farena, 65536);
    if (state) {
        L->state = state;
        return 0;
    }
    {
        struct mf_err se;

        L->state = mf_state_open(d->o.cfg->state_dir, &se);
        if (!L->state) {
            snprintf(err, errsz, "%s", se.msg);
            return -1;
        }
        L->own_state = true;
    }
    return 0;
}

static void
lane_fini(struct lane *L)
{
    if (!L->d)
        return;
    mf_nctx_fini(&L->nctx);
    mf_fanout_close(&L->fo);
    mf_findings_fini(&L->findings);
    mf_arena_fini(&L->farena);
    if (L->own_state)
        mf_state_close(L->state);
}

/* ---------------------------------------------------------------------- */
/* API                                                                    */
/* ---------------------------------------------------------------------- */

static int
online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (n < 1)
        return 1;
    return n > MAX_LANES ? MAX_LANES : (int)n;
}

struct mf_deliver *
mf_deliver_new(const struct mf_deliver_opts *o, char *err, size_t errsz)
{
    struct mf_deliver *d = mf_xcalloc(1, sizeof(*d));
    pthread_condattr_t ca;

    d->o = *o;
    d->out_gen = mf_xcalloc(o->fo->n ? o->fo->n : 1, sizeof(*d->out_gen));
    d->out_down = mf_xcalloc(o->fo->n ? o->fo->n : 1, sizeof(*d->out_down));
    d->report = mf_report_feed_open(o->cfg, o->norm);
    d->n_lanes = o->lanes > 0 ? o->lanes : online_cpus();
    pthread_mutex_init(&d->mu, NULL);
    pthread_mutex_init(&d->gen_mu, NULL);
    pthread_mutex_init(&d->flush_mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv_done, &ca);
    pthread_condattr_destroy(&ca);
    d->todo_tail = &d->todo;
    d->done_tail = &d->done;
    lane_init(d, &d->self, o->state, err, errsz);
    {
        /* the windows as the last run left them */
        struct mf_aggregates_opts ao = {.geo = mf_normalizer_geoip(o->norm)};
        struct mf_err ae;

        d->agg = mf_aggregates_new(mf_normalizer_aggregates(o->norm), &ao);
        snprintf(d->agg_path, sizeof(d->agg_path), "%s/aggregates.state",
                 o->cfg->state_dir);
        if (mf_aggregates_load(d->agg, d->agg_path, &ae) != 0)
            mf_log(MF_LOG_WARN, "%s", ae.msg);
        d->agg_saved_ms = mf_clock_mono_ms();
        if (o->m)
            agg_metrics_register(d);
        agg_metrics(d);
    }
    d->dedupe = o->cfg->collect.dedupe_horizon_ms > 0;
    if (d->dedupe && seen_load(d, o->state) != 0) {
        snprintf(err, errsz, "%s", mf_state_errmsg(o->state));
        goto fail;
    }
    d->lanes = mf_xcalloc((size_t)d->n_lanes, sizeof(*d->lanes));
    for (int i = 0; i < d->n_lanes; i++) {
        struct lane *L = &d->lanes[i];
        int e;

        if (lane_init(d, L, NULL, err, errsz) != 0)
            goto fail;
        if ((e = pthread_create(&L->th, NULL, lane_main, L)) != 0) {
            snprintf(err, errsz, "cannot start a delivery thread: %s", strerror(e));
            goto fail;
        }
        L->started = true;
    }
    return d;
fail:
    mf_deliver_destroy(d);
    return NULL;
}

int
mf_deliver_lanes(const struct mf_deliver *d)
{
    return d->n_lanes;
}

void
mf_deliver_submit(struct mf_deliver *d, struct mf_dl_blob *b)
{
    b->next = NULL;
    b->rc = -1;
    b->n_ids = 0;
    pthread_mutex_lock(&d->mu);
    *d->todo_tail = b;
    d->todo_tail = &b->next;
    d->pending++;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

size_t
mf_deliver_pending(const struct mf_deliver *d)
{
    return d->pending;    /* written by this thread only */
}

size_t
mf_deliver_reap(struct mf_deliver *d)
{
    struct mf_dl_blob *list, *next;
    size_t n = 0;

    pthread_mutex_lock(&d->mu);
    list = d->done;
    d->done = NULL;
    d->done_tail = &d->done;
    pthread_mutex_unlock(&d->mu);
    for (struct mf_dl_blob *b = list; b; b = next) {
        next = b->next;
        ids_free(b);
        d->pending--;
        n++;
        d->o.done(b, d->o.ud);
    }
    return n;
}

int
mf_deliver_drain(struct mf_deliver *d, int64_t deadline_ms)
{
    for (;;) {
        int64_t left;
        struct timespec ts;

        mf_deliver_reap(d);
        if (d->pending == 0)
            return 0;
        left = deadline_ms - mf_clock_wall_ms();
        if (left <= 0)
            return -1;
        if (left > 200)
            left = 200;
        mf_clock_mono_deadline(left, &ts);
        pthread_mutex_lock(&d->mu);
        if (!d->done)
            pthread_cond_timedwait(&d->cv_done, &d->mu, &ts);
        pthread_mutex_unlock(&d->mu);
    }
}

int
mf_deliver_gap(struct mf_deliver *d, const char *tenant_id, const char *tenant_name,
               const char *content_type, int64_t start_ms, int64_t end_ms,
               const char *reason)
{
    return emit_gap(&d->self, tenant_id, tenant_name, content_type, start_ms, end_ms,
                    reason, false);
}

/* A commit on the collector's thread (its own connection), in turn with
 * the lanes'. */
static int
commit_now(struct mf_deliver *d)
{
    int rc;

    pthread_mutex_lock(&d->mu);
    while (d->committing)
        pthread_cond_wait(&d->cv, &d->mu);
    rc = run_commit(&d->self);
    pthread_mutex_unlock(&d->mu);
    return rc;
}

int
mf_deliver_flush(struct mf_deliver *d)
{
    return d->o.txn ? commit_now(d) : flush_outputs(d);
}

int
mf_deliver_commit(struct mf_deliver *d)
{
    return mf_deliver_flush(d);
}

void
mf_deliver_commit_soon(struct mf_deliver *d)
{
    pthread_mutex_lock(&d->mu);
    d->force_commit = true;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

void
mf_deliver_seen_add(struct mf_deliver *d, const uint64_t *h1, size_t n)
{
    if (!d->dedupe)
        return;
    pthread_mutex_lock(&d->mu);
    for (size_t i = 0; i < n; i++)
        mf_bloom_add(&d->seen, h1[i]);
    if (mf_bloom_full(&d->seen) && seen_load(d, d->o.state) != 0)
        mf_log(MF_LOG_ERROR, "%s", mf_state_errmsg(d->o.state));
    pthread_mutex_unlock(&d->mu);
}

void
mf_deliver_destroy(struct mf_deliver *d)
{
    struct mf_dl_blob *b, *next;

    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->quit = true;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    for (int i = 0; d->lanes && i < d->n_lanes; i++) {
        if (d->lanes[i].started)
            pthread_join(d->lanes[i].th, NULL);
        lane_fini(&d->lanes[i]);
    }
    agg_save(d, true);
    mf_aggregates_destroy(d->agg);
    mf_report_feed_close(d->report);
    /* what was not committed is fetched again on the next run */
    for (b = d->todo; b; b = next) {
        next = b->next;
        ids_free(b);
    }
    for (b = d->sent; b; b = next) {
        next = b->next;
        ids_free(b);
    }
    for (b = d->done; b; b = next) {
        next = b->next;
        ids_free(b);
    }
    for (size_t i = 0; i < d->n_rid_buckets; i++)
        while (d->rids[i]) {
            struct rid *r = d->rids[i];

            d->rids[i] = r->next;
            free(r);
        }
    free(d->rids);
    mf_bloom_fini(&d->seen);
    lane_fini(&d->self);
    free(d->lanes);
    free(d->out_gen);
    free(d->out_down);
    pthread_mutex_destroy(&d->mu);
    pthread_mutex_destroy(&d->gen_mu);
    pthread_mutex_destroy(&d->flush_mu);
    pthread_cond_destroy(&d->cv);
    pthread_cond_destroy(&d->cv_done);
    free(d);
}
