/* cmd_import.c - `m365fwd import`: exported records through the configured
 * outputs, with the same acknowledgements as `run`. For history older than
 * the API's 7 days, and for benchmarks fed a recorded corpus. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "agent_conf.h"
#include "input.h"
#include "log.h"
#include "aggregate.h"
#include "mem.h"
#include "normalize.h"
#include "fanout.h"
#include "report_feed.h"

#define IMPORT_BATCH  5000          /* records between acknowledgement barriers */
#define CHUNK_RECORDS 256           /* records a lane takes at once */
#define CHUNK_BYTES   ((size_t)1 << 20)
#define MAX_LANES     8
#define RETRY_MIN_MS  100           /* backoff of a barrier's retries */
#define RETRY_MAX_MS  5000
#define NAMED_MAX     20            /* Ids named in the log per output */

const char mf_cmd_import_usage[] =
    "Usage: m365fwd import -c FILE [--tenant NAME] [--input FORMAT] [--threads N]\n"
    "                      [--output NAME]... [INPUT...]\n"
    "\n"
    "Send exported audit records through the outputs of the configuration,\n"
    "with the same acknowledgements as `run`, then exit. INPUT is anything\n"
    "`normalize` reads (Purview CSV, PowerShell JSON, NDJSON, content blobs);\n"
    "'-' or no INPUT reads standard input. This is how history older than\n"
    "the API's 7 days is backfilled.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE     configuration (outputs; tenants optional)\n"
    "  --tenant NAME         tenant the records belong to (a configured name\n"
    "                        or id); default: each record's OrganizationId,\n"
    "                        named after the configured tenant with that id\n"
    "  --input auto|json|ndjson|csv   input format (default auto)\n"
    "  --threads N           records are normalized and sent by N threads\n"
    "                        (default: collect.delivery_threads; 1 keeps\n"
    "                        the input order in every output)\n"
    "  --output NAME         send to this output only (repeatable; default:\n"
    "                        every enabled output) - to replay what one\n"
    "                        output did not take\n"
    "  --no-aggregates       no aggregate findings (by default a record that\n"
    "                        takes a window over its threshold is followed by\n"
    "                        its finding, routed like a record: docs/aggregates.md)\n"
    "  --aggregate-state F   load the aggregate windows from F first and save\n"
    "                        them there at the end (a backfill in several\n"
    "                        imports fires each window once)\n"
    "  -h, --help            show this help\n"
    "\n"
    "An output that does not acknowledge records is retried with backoff\n"
    "for up to its flush_timeout; what it still did not take is counted,\n"
    "named by Id in the log and kept, as the records read, in\n"
    "STATE_DIR/undelivered/import-TIME-PID-OUTPUT.ndjson; replay it with\n"
    "  m365fwd import -c FILE --output OUTPUT [--tenant NAME] THAT_FILE\n"
    "\n"
    "Exit status: 0 every record delivered, 1 some record rejected or not\n"
    "acknowledged by an output, 2 usage or configuration error.\n";

/* Records read and handed to a lane together, copied back to back. */
struct rec_ref {
    size_t off, len;
    unsigned line;
    int64_t index;
};

/* What output i did with record k of a chunk (chunk.ost[k * nout + i]). */
enum rec_out {
    RO_NONE = 0,                      /* not routed to it (filter, rejected) */
    RO_SENT,                          /* accepted by send() */
    RO_REFUSED,                       /* not accepted (full, down) */
    RO_DROPPED,                       /* refused for good (too large...) */
    RO_ACKED                          /* acknowledged by a barrier */
};

struct chunk {
    struct chunk *next;
    const char *name;                 /* the input's name (argv or "<stdin>") */
    struct mf_buf data;
    struct rec_ref *recs;
    size_t n, cap;
    unsigned char *ost;               /* enum rec_out per record and output */
    size_t cap_ost;
    struct mf_buf ids;                /* each record's Id, NUL-terminated */
    size_t *id_off;                   /* per record: offset in ids, or SIZE_MAX */
    /* results, written by the lane */
    unsigned long long normalized;    /* records that went through */
    unsigned long long rejected;      /* refused by the normalizer */
    unsigned long long refused;       /* not accepted by an output */
    unsigned long long findings;      /* aggregate findings sent */
    unsigned long long findings_refused;
};

struct lane {
    struct import_run *r;
    pthread_t th;
    bool started;
    struct mf_nctx nctx;
    struct mf_fanout fo;
    struct mf_findings findings;      /* the record's aggregate findings */
    struct mf_arena farena;           /* their forms */
    struct mf_finding_ctx fctx;
};

/* The reader (main thread) fills chunks; lanes normalize and send them;
 * the reader's acknowledgement barrier counts the chunks completed before
 * it as delivered once every output acknowledged them. */
struct import_run {
    const struct mf_config *cfg;
    const char *config_path;
    const char *tenant_arg;                /* --tenant, for the replay command */
    const struct mf_normalizer *norm;
    struct mf_fanout fo;                   /* the outputs (lanes share them) */
    bool *use;                             /* per output: sent to (--output) */
    struct lane self;                      /* the reader's own, for retries */
    unsigned long long *undelivered;       /* per output: records kept aside */
    char **kept;                           /* per output: the file they went to */
    const struct mf_tenant_conf *tenant;   /* --tenant */
    struct mf_report_feed *report;         /* state_dir/report.db, or NULL */
    struct lane *lanes;
    int n_lanes;
    pthread_mutex_t mu;
    pthread_cond_t cv_work;                /* lanes: a chunk, or quit */
    pthread_cond_t cv_room;                /* reader: queue room, a lane idle */
    struct chunk *todo, **todo_tail, *done, *spare;
    size_t n_todo, busy;
    bool quit;
    struct chunk *cur;                     /* being filled by the reader */
    struct mf_aggregates *agg;             /* NULL with --no-aggregates */
    unsigned long long read, delivered, rejected, unacked, since_barrier, findings;
    unsigned long long findings_unacked;   /* findings some output missed */
    bool unconfirmed;                      /* a final drain failed */
};

static volatile sig_atomic_t import_stop;

static void
on_signal(int sig)
{
    (void)sig;
    import_stop = 1;
}

/* ---- a lane ------------------------------------------------------------- */

/* normalize's question: the accepted domains of the record's tenant. */
static size_t
tenant_domains(const char *tenant_id, const char *const **out, void *ud)
{
    const struct mf_tenant_conf *t = mf_config_tenant(ud, tenant_id);

    *out = t ? t->domains.v : NULL;
    return t ? t->domains.n : 0;
}

/* Send the lane's event (a finding) to every output that wants it; false
 * when one did not take it. */
static bool
send_event(struct lane *L, const struct mf_input_loc *loc)
{
    struct mf_event *ev = &L->fo.ev;
    char where[300];
    bool taken = true;

    for (size_t i = 0; i < L->fo.n; i++) {
        struct mf_output *o = L->fo.outs[i];
        enum mf_status st;

        if (!L->fo.want[i] || !L->r->use[i])
            continue;
        st = mf_fanout_send(&L->fo, i, (int)o->conf->flush_timeout_ms);
        if (st == MF_OK)
            continue;
        taken = false;
        if (st == MF_RETRY)
            mf_log(MF_LOG_ERROR, "output=%s %s id=%s: not accepted within %"
                   PRId64 " ms", o->conf->name,
                   mf_input_loc_str(loc, where, sizeof(where)),
                   ev->id[0] ? ev->id : "(none)", o->conf->flush_timeout_ms);
    }
    return taken;
}

/* The aggregate findings of the record the lane normalized last, each sent
 * right after it like a record of the same tenant and content type. */
static void
send_findings(struct lane *L, struct chunk *c, const struct mf_input_loc *loc)
{
    struct mf_event *ev = &L->fo.ev;
    /* the record's tenant and content type (config or record memory,
     * which outlive the findings' events) */
    const char *tenant_id = ev->tenant_id, *tenant = ev->tenant;
    const char *content_type = ev->content_type;

    mf_findings_reset(&L->findings);
    if (mf_aggregates_feed(L->r->agg, &L->nctx.rec, &L->nctx.hits, &L->findings) == 0)
        return;
    for (size_t k = 0; k < L->findings.n; k++) {
        mf_arena_reset(&L->farena);
        mf_finding_event(ev, &L->findings.v[k], content_type, &L->fctx, &L->farena);
        ev->tenant_id = tenant_id;
        ev->tenant = tenant;
        if (mf_fanout_route(&L->fo) < 0 || !send_event(L, loc))
            c->findings_refused++;
        else
            c->findings++;
    }
}

/* Normalize record rr of c into L's event, name its tenant and route it.
 * 0, or -1 with ev->error set. */
static int
normalize_routed(struct lane *L, const struct chunk *c, const struct rec_ref *rr)
{
    struct import_run *r = L->r;
    /* the tenant's accepted domains: --tenant's, else those of the tenant
     * the record names */
    struct mf_norm_in in = {.data = c->data.data + rr->off, .len = rr->len,
                            .first_line = rr->line,
                            .domains = r->tenant ? r->tenant->domains.v : NULL,
                            .n_domains = r->tenant ? r->tenant->domains.n : 0,
                            .domains_for = tenant_domains,
                            .domains_ud = (void *)r->cfg};
    struct mf_event *ev = &L->fo.ev;
    const struct mf_tenant_conf *tc = r->tenant;

    if (mf_fanout_normalize(&L->fo, r->norm, &L->nctx, &in) != MF_OK)
        return -1;
    if (!tc && ev->tenant_id[0])
        tc = mf_config_tenant(r->cfg, ev->tenant_id);
    if (tc)
        ev->tenant_id = tc->id;
    ev->tenant = tc ? tc->name : ev->tenant_id;
    return mf_fanout_route(&L->fo) >= 0 ? 0 : -1;
}

/* Send L's event to output i, waiting up to its flush_timeout while it is
 * full. The record's new state for that output. */
static unsigned char
send_one(struct lane *L, size_t i, const struct chunk *c, const struct rec_ref *rr)
{
    struct mf_output *o = L->fo.outs[i];
    struct mf_input_loc loc = {.name = c->name, .line = rr->line, .index = rr->index};
    enum mf_status st = mf_fanout_send(&L->fo, i, (int)o->conf->flush_timeout_ms);
    char where[300];

    if (st == MF_OK)
        return RO_SENT;
    if (st == MF_DROP)
        return RO_DROPPED;            /* the output logged it with its Id */
    if (st == MF_RETRY)
        mf_log(MF_LOG_ERROR, "output=%s %s id=%s: not accepted within %" PRId64 " ms",
               o->conf->name, mf_input_loc_str(&loc, where, sizeof(where)),
               L->fo.ev.id[0] ? L->fo.ev.id : "(none)", o->conf->flush_timeout_ms);
    return RO_REFUSED;
}

static void
import_record(struct lane *L, struct chunk *c, const struct rec_ref *rr)
{
    struct import_run *r = L->r;
    struct mf_input_loc loc = {.name = c->name, .line = rr->line, .index = rr->index};
    struct mf_event *ev = &L->fo.ev;
    size_t k = (size_t)(rr - c->recs);
    unsigned char *ost = c->ost + k * L->fo.n;
    char where[300];
    bool refused = false;

    if (normalize_routed(L, c, rr) != 0) {
        fprintf(stderr, "%s: %s\n", mf_input_loc_str(&loc, where, sizeof(where)),
                ev->error);
        c->rejected++;
        return;
    }
    c->id_off[k] = c->ids.len;
    mf_buf_append(&c->ids, ev->id, strlen(ev->id) + 1);
    for (size_t i = 0; i < L->fo.n; i++) {
        if (!L->fo.want[i] || !r->use[i])
            continue;
        ost[i] = send_one(L, i, c, rr);
        refused |= ost[i] == RO_REFUSED || ost[i] == RO_DROPPED;
    }
    c->normalized++;
    c->refused += refused;
    /* counted with its chunk, kept when the chunk is acknowledged */
    if (!refused)
        mf_report_feed_record(r->report, c, &L->nctx, ev);
    if (r->agg)   /* after: a finding takes the lane's event */
        send_findings(L, c, &loc);
}

static void *
lane_main(void *arg)
{
    struct lane *L = arg;
    struct import_run *r = L->r;

    pthread_mutex_lock(&r->mu);
    for (;;) {
        struct chunk *c = r->todo;

        if (!c) {
            if (r->quit)
                break;
            pthread_cond_wait(&r->cv_work, &r->mu);
            continue;
        }
        r->todo = c->next;
        if (!r->todo)
            r->todo_tail = &r->todo;
        r->n_todo--;
        r->busy++;
        pthread_cond_signal(&r->cv_room);
        pthread_mutex_unlock(&r->mu);
        for (size_t i = 0; i < c->n; i++)
            import_record(L, c, &c->recs[i]);
        pthread_mutex_lock(&r->mu);
        r->busy--;
        c->next = r->done;
        r->done = c;
        pthread_cond_signal(&r->cv_room);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* ---- the reader's side --------------------------------------------------- */

static struct chunk *
chunk_get(struct import_run *r)
{
    struct chunk *c;

    pthread_mutex_lock(&r->mu);
    c = r->spare;
    if (c)
        r->spare = c->next;
    pthread_mutex_unlock(&r->mu);
    if (!c) {
        c = mf_xcalloc(1, sizeof(*c));
        mf_buf_init(&c->data, 0);
        mf_buf_init(&c->ids, 0);
    }
    mf_buf_reset(&c->data);
    mf_buf_reset(&c->ids);
    c->n = 0;
    c->next = NULL;
    c->normalized = c->rejected = c->refused = 0;
    c->findings = c->findings_refused = 0;
    return c;
}

static void
chunk_free(struct chunk *c)
{
    mf_buf_fini(&c->data);
    mf_buf_fini(&c->ids);
    free(c->recs);
    free(c->ost);
    free(c->id_off);
    free(c);
}

/* Hand the chunk being filled to the lanes (waiting for room: the queue
 * holds two chunks per lane). */
static void
submit(struct import_run *r)
{
    struct chunk *c = r->cur;

    r->cur = NULL;
    if (!c || c->n == 0) {
        if (c) {
            pthread_mutex_lock(&r->mu);
            c->next = r->spare;
            r->spare = c;
            pthread_mutex_unlock(&r->mu);
        }
        return;
    }
    pthread_mutex_lock(&r->mu);
    while (r->n_todo >= (size_t)r->n_lanes * 2)
        pthread_cond_wait(&r->cv_room, &r->mu);
    *r->todo_tail = c;
    r->todo_tail = &c->next;
    r->n_todo++;
    pthread_cond_signal(&r->cv_work);
    pthread_mutex_unlock(&r->mu);
}

/* The report rollup's batches are the chunks: kept when acknowledged. */
static void
report_settle(struct import_run *r, struct chunk *list, bool ok)
{
    const void **keys;
    size_t n = 0;

    if (!r->report)
        return;
    for (struct chunk *c = list; c; c = c->next)
        n++;
    keys = mf_xcalloc(n + 1, sizeof(*keys));
    n = 0;
    for (struct chunk *c = list; c; c = c->next) {
        if (ok)
            keys[n++] = c;
        else
            mf_report_feed_discard(r->report, c);
    }
    mf_report_feed_commit(r->report, keys, n);
    free(keys);
}

/* Output i's acknowledgement barrier (at the end: its drain). */
static int
out_barrier(struct import_run *r, size_t i, bool final)
{
    return final ? mf_fanout_drain(&r->fo, i) : mf_fanout_flush(&r->fo, i);
}

/* Records of the batch in state st for output i. */
static unsigned long long
count_state(const struct import_run *r, const struct chunk *list, size_t i, unsigned char st)
{
    unsigned long long n = 0;

    for (const struct chunk *c = list; c; c = c->next)
        for (size_t k = 0; k < c->n; k++)
            n += c->ost[k * r->fo.n + i] == st;
    return n;
}

static void
set_state(struct import_run *r, struct chunk *list, size_t i, unsigned char from,
          unsigned char to)
{
    for (struct chunk *c = list; c; c = c->next)
        for (size_t k = 0; k < c->n; k++)
            if (c->ost[k * r->fo.n + i] == from)
                c->ost[k * r->fo.n + i] = to;
}

/* Send to output i again what it refused, and with all what it was sent
 * too (its barrier failed: it may have none of them). On the reader's
 * thread, with its own lane. */
static void
resend(struct import_run *r, struct chunk *list, size_t i, bool all)
{
    struct lane *L = &r->self;

    for (struct chunk *c = list; c && !import_stop; c = c->next)
        for (size_t k = 0; k < c->n && !import_stop; k++) {
            unsigned char *st = &c->ost[k * r->fo.n + i];

            if (!(*st == RO_REFUSED || (all && *st == RO_SENT)))
                continue;
            *st = normalize_routed(L, c, &c->recs[k]) == 0 ? send_one(L, i, c, &c->recs[k])
                                                           : RO_REFUSED;
        }
}

/* Output i acknowledges what the batch sent it, retried with backoff until
 * its flush_timeout after the barrier began (t0); first: the result of its
 * first flush when it ran already (with the others'), else NULL. What it
 * took becomes RO_ACKED; false when some record stays RO_SENT /
 * RO_REFUSED / RO_DROPPED. */
static bool
settle_output(struct import_run *r, struct chunk *list, size_t i, bool final, int64_t t0,
              const int *first)
{
    struct mf_output *o = r->fo.outs[i];
    int64_t deadline = t0 + o->conf->flush_timeout_ms;
    int wait = RETRY_MIN_MS, frc = first ? *first : out_barrier(r, i, final);
    unsigned long long refused = count_state(r, list, i, RO_REFUSED);
    /* a record refused for good fails the output's barrier too (output.h):
     * then the barrier cannot tell about the others, and they are not sent
     * again (that would double those it did take); they are kept */
    bool dropped = count_state(r, list, i, RO_DROPPED) > 0;

    while ((frc != 0 || refused) && !dropped && !import_stop &&
           mf_clock_mono_ms() + wait <= deadline) {
        struct timespec ts = {.tv_sec = wait / 1000, .tv_nsec = (long)(wait % 1000) * 1000000L};

        mf_log(MF_LOG_WARN, "output=%s did not take %llu records; sending them again in "
               "%d ms", o->conf->name, frc ? refused + count_state(r, list, i, RO_SENT)
                                           : refused, wait);
        nanosleep(&ts, NULL);       /* backoff (a signal ends it early) */
        wait = wait * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : wait * 2;
        resend(r, list, i, frc != 0);
        frc = out_barrier(r, i, final);
        refused = count_state(r, list, i, RO_REFUSED);
    }
    if (frc == 0)
        set_state(r, list, i, RO_SENT, RO_ACKED);
    return frc == 0 && refused == 0 && !dropped;
}

/* A record output i did not take, kept for a replay in
 * state_dir/undelivered/ (the file is opened at the first one). */
static void
keep_undelivered(struct import_run *r, size_t i, const struct chunk *c, size_t k)
{
    const struct mf_output_conf *oc = r->fo.outs[i]->conf;
    const struct rec_ref *rr = &c->recs[k];
    const char *id = c->id_off[k] != SIZE_MAX ? c->ids.data + c->id_off[k] : "(none)";
    struct mf_input_loc loc = {.name = c->name, .line = rr->line, .index = rr->index};
    char where[300];
    FILE *f;

    if (!r->kept[i]) {
        char dir[1100], stamp[32], path[1400];
        time_t now = time(NULL);
        struct tm tm;

        gmtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
        snprintf(dir, sizeof(dir), "%s/undelivered", r->cfg->state_dir);
        mkdir(r->cfg->state_dir, 0700);
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            mf_log(MF_LOG_ERROR, "cannot create %s: %s", dir, strerror(errno));
        snprintf(path, sizeof(path), "%s/import-%s-%ld-%s.ndjson", dir, stamp,
                 (long)getpid(), oc->name);
        r->kept[i] = mf_xstrdup(path);
    }
    if (r->undelivered[i]++ < NAMED_MAX)
        mf_log(MF_LOG_ERROR, "output=%s id=%s (%s): not delivered; kept in %s",
               oc->name, id, mf_input_loc_str(&loc, where, sizeof(where)), r->kept[i]);
    f = fopen(r->kept[i], "a");
    if (!f || fwrite(c->data.data + rr->off, 1, rr->len, f) != rr->len ||
        fputc('\n', f) == EOF) {
        if (r->undelivered[i] == 1 || !f)
            mf_log(MF_LOG_ERROR, "output=%s id=%s: cannot keep the record in %s: %s",
                   oc->name, id, r->kept[i], strerror(errno));
    }
    if (f && fclose(f) != 0 && r->undelivered[i] == 1)
        mf_log(MF_LOG_ERROR, "cannot write %s: %s", r->kept[i], strerror(errno));
}

/* The acknowledgement barrier: every chunk the lanes completed before it is
 * delivered once every output acknowledged everything it was sent (an
 * output that did not is retried, alone, with backoff). What an output
 * still did not take is counted, named and kept for a replay to that
 * output. The last barrier (final) drains the outputs: the receivers
 * confirm the end of the stream (mf_output_drain). */
static void
barrier(struct import_run *r, bool final)
{
    struct chunk *list, *next;
    unsigned long long n = 0, unacked = 0, f_unacked = 0;
    int64_t t0 = mf_clock_mono_ms();
    int *first;
    bool ok = true;

    pthread_mutex_lock(&r->mu);
    list = r->done;
    r->done = NULL;
    pthread_mutex_unlock(&r->mu);
    if (!list && !final)
        return;
    /* the outputs flush at once (the slowest sets the time); the drain at
     * the end, one after the other */
    first = mf_xcalloc(r->fo.n ? r->fo.n : 1, sizeof(*first));
    if (!final)
        mf_fanout_flush_all(&r->fo, r->use, first);
    for (size_t i = 0; i < r->fo.n; i++)
        if (r->use[i] && !settle_output(r, list, i, final, t0, final ? NULL : &first[i]))
            ok = false;
    free(first);
    for (struct chunk *c = list; c; c = c->next) {
        for (size_t k = 0; k < c->n; k++) {
            const unsigned char *st = &c->ost[k * r->fo.n];
            bool all = true;

            if (c->id_off[k] == SIZE_MAX)
                continue;       /* rejected by the normalizer (counted) */
            for (size_t i = 0; i < r->fo.n; i++)
                if (st[i] == RO_SENT || st[i] == RO_REFUSED || st[i] == RO_DROPPED) {
                    keep_undelivered(r, i, c, k);
                    all = false;
                }
            if (all)
                n++;
            else
                unacked++;
        }
        /* findings are not kept aside (replaying the records makes them
         * again): counted as not acknowledged when an output missed them */
        f_unacked += c->findings_refused + (ok ? 0 : c->findings);
        r->rejected += c->rejected;
        r->findings += c->findings;
    }
    if (!ok && !list)
        r->unconfirmed = true;   /* the end of the stream was not confirmed */
    mf_log(MF_LOG_DEBUG, "barrier: %llu records acknowledged, %llu not, in %lld ms", n,
           unacked, (long long)(mf_clock_mono_ms() - t0));
    r->unacked += unacked;
    r->findings_unacked += f_unacked;
    r->delivered += n;
    report_settle(r, list, unacked == 0);
    pthread_mutex_lock(&r->mu);
    for (struct chunk *c = list; c; c = next) {
        next = c->next;
        c->next = r->spare;
        r->spare = c;
    }
    pthread_mutex_unlock(&r->mu);
}

/* Wait until the lanes have completed every chunk handed to them. */
static void
drain(struct import_run *r)
{
    submit(r);
    pthread_mutex_lock(&r->mu);
    while (r->todo || r->busy)
        pthread_cond_wait(&r->cv_room, &r->mu);
    pthread_mutex_unlock(&r->mu);
}

static void
add_record(struct import_run *r, const struct mf_input_rec *rec)
{
    struct chunk *c = r->cur ? r->cur : (r->cur = chunk_get(r));

    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : CHUNK_RECORDS;
        c->recs = mf_xrealloc(c->recs, c->cap * sizeof(*c->recs));
        c->id_off = mf_xrealloc(c->id_off, c->cap * sizeof(*c->id_off));
    }
    if ((c->n + 1) * r->fo.n > c->cap_ost) {
        c->cap_ost = c->cap * (r->fo.n ? r->fo.n : 1);
        c->ost = mf_xrealloc(c->ost, c->cap_ost);
    }
    memset(c->ost + c->n * r->fo.n, RO_NONE, r->fo.n);
    c->id_off[c->n] = SIZE_MAX;
    c->name = rec->loc.name;
    c->recs[c->n++] = (struct rec_ref){.off = c->data.len, .len = rec->len,
                                       .line = rec->loc.line, .index = rec->loc.index};
    mf_buf_append(&c->data, rec->data, rec->len);   /* no ceiling: bounded by
                                                       the record size */
    r->read++;
    if (c->n >= CHUNK_RECORDS || c->data.len >= CHUNK_BYTES)
        submit(r);
    if (++r->since_barrier >= IMPORT_BATCH) {
        /* the lanes finish what they were given first: a barrier covers
         * whole chunks, and nothing sent after it began */
        r->since_barrier = 0;
        drain(r);
        barrier(r, false);
    }
}

static int
import_input(struct import_run *r, const char *path, const struct mf_input_opts *io)
{
    struct mf_input *in;
    struct mf_input_rec rec;
    struct mf_input_err ierr;
    enum mf_input_ev ev;
    char where[300];
    int fd = 0;

    if (strcmp(path, "-") != 0) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "%s: cannot open: %s\n", path, strerror(errno));
            return -1;
        }
    }
    in = mf_input_new_fd(fd, strcmp(path, "-") ? path : "<stdin>", io);
    while (!import_stop && (ev = mf_input_next(in, &rec, &ierr)) != MF_INPUT_EOF) {
        if (ev == MF_INPUT_ERROR) {
            fprintf(stderr, "%s: %s\n", mf_input_loc_str(&ierr.loc, where, sizeof(where)),
                    ierr.msg);
            r->read++;
            r->rejected++;
            continue;
        }
        add_record(r, &rec);
    }
    mf_input_destroy(in);
    if (fd > 0)
        close(fd);
    return 0;
}

static int
lanes_start(struct import_run *r, int n, char *err, size_t errsz)
{
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv_work, NULL);
    pthread_cond_init(&r->cv_room, NULL);
    r->todo_tail = &r->todo;
    r->n_lanes = n;
    r->lanes = mf_xcalloc((size_t)n, sizeof(*r->lanes));
    for (int i = 0; i < n; i++) {
        struct lane *L = &r->lanes[i];
        int e;

        L->r = r;
        mf_nctx_init(&L->nctx);
        mf_fanout_share(&L->fo, &r->fo);
        mf_findings_init(&L->findings);
        mf_arena_init(&L->farena, 65536);
        if ((e = pthread_create(&L->th, NULL, lane_main, L)) != 0) {
            snprintf(err, errsz, "cannot start a thread: %s", strerror(e));
            return -1;
        }
        L->started = true;
    }
    return 0;
}

static void
lanes_stop(struct import_run *r)
{
    struct chunk *c, *next;

    if (!r->lanes)
        return;
    pthread_mutex_lock(&r->mu);
    r->quit = true;
    pthread_cond_broadcast(&r->cv_work);
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < r->n_lanes; i++) {
        struct lane *L = &r->lanes[i];

        if (L->started)
            pthread_join(L->th, NULL);
        mf_fanout_close(&L->fo);
        mf_nctx_fini(&L->nctx);
        mf_findings_fini(&L->findings);
        mf_arena_fini(&L->farena);
    }
    {
        struct chunk *lists[] = {r->spare, r->todo, r->done};

        for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
            for (c = lists[i]; c; c = next) {
                next = c->next;
                chunk_free(c);
            }
    }
    if (r->cur)
        chunk_free(r->cur);
    free(r->lanes);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv_work);
    pthread_cond_destroy(&r->cv_room);
}

/* --output: the outputs sent to (all when none is named), and the
 * per-output bookkeeping. 0, or -1 with err (an unknown name). */
static int
outputs_chosen(struct import_run *r, const char *const *only, size_t n_only, char *err,
               size_t errsz)
{
    size_t n = r->fo.n ? r->fo.n : 1;

    r->use = mf_xcalloc(n, sizeof(*r->use));
    r->undelivered = mf_xcalloc(n, sizeof(*r->undelivered));
    r->kept = mf_xcalloc(n, sizeof(*r->kept));
    for (size_t i = 0; i < r->fo.n; i++)
        r->use[i] = n_only == 0;
    for (size_t k = 0; k < n_only; k++) {
        size_t i;

        for (i = 0; i < r->fo.n; i++)
            if (strcmp(r->fo.outs[i]->conf->name, only[k]) == 0)
                break;
        if (i == r->fo.n) {
            snprintf(err, errsz, "--output %s: no enabled output of that name in %s",
                     only[k], r->config_path);
            return -1;
        }
        r->use[i] = true;
    }
    r->self.r = r;
    mf_nctx_init(&r->self.nctx);
    mf_fanout_share(&r->self.fo, &r->fo);
    return 0;
}

static void
outputs_free(struct import_run *r)
{
    if (r->self.r) {
        mf_fanout_close(&r->self.fo);
        mf_nctx_fini(&r->self.nctx);
    }
    for (size_t i = 0; r->kept && i < r->fo.n; i++)
        free(r->kept[i]);
    free(r->kept);
    free(r->undelivered);
    free(r->use);
}

/* What each output did not take, where it is and how to replay it. */
static void
report_undelivered(const struct import_run *r)
{
    for (size_t i = 0; i < r->fo.n; i++) {
        if (!r->undelivered[i])
            continue;
        fprintf(stderr, "m365fwd import: output %s: %llu records not delivered (%s named "
                "in the log), kept in %s; replay them with:\n"
                "  m365fwd import -c %s --output %s%s%s %s\n",
                r->fo.outs[i]->conf->name, r->undelivered[i],
                r->undelivered[i] > NAMED_MAX ? "the first 20" : "each",
                r->kept[i], r->config_path, r->fo.outs[i]->conf->name,
                r->tenant_arg ? " --tenant " : "", r->tenant_arg ? r->tenant_arg : "",
                r->kept[i]);
    }
    if (r->unconfirmed)
        fprintf(stderr, "m365fwd import: an output could not confirm the end of the "
                "stream (see the log): records sent before may be missing there\n");
}

static int
default_lanes(const struct mf_config *cfg)
{
    long n = cfg->collect.delivery_threads;

    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_LANES ? MAX_LANES : (int)n;
}

/* The command line of import. */
struct import_args {
    const char *config, *tenant, *agg_state;
    bool no_aggregates;
    int threads;                           /* --threads, 0: default_lanes */
    const char *only[32];                  /* --output */
    size_t n_only;
    struct mf_input_opts io;
};

/* -1 to go on (the files from optind), or the exit code. */
static int
parse_args(int argc, char **argv, struct import_args *a)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"tenant", required_argument, NULL, 'T'},
        {"input", required_argument, NULL, 'I'},
        {"threads", required_argument, NULL, 'j'},
        {"no-aggregates", no_argument, NULL, 'A'},
        {"aggregate-state", required_argument, NULL, 'S'},
        {"output", required_argument, NULL, 'O'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct mf_cmd *self = mf_cli_find("import");
    struct mf_cli_opts o = {.cmd = self, .shortopts = "+c:h", .longopts = longopts,
                            .flags = MF_CLI_NEED_CONFIG};
    int ch;

    while ((ch = mf_cli_getopt(&o, argc, argv)) > 0) {
        switch (ch) {
        case 'T':
            a->tenant = optarg;
            break;
        case 'I':
            if (mf_input_format_parse(optarg, &a->io.format) != 0)
                return mf_cli_usage_error(self, "unknown input format '%s'", optarg);
            break;
        case 'j': {
            char *end;
            long v = strtol(optarg, &end, 10);

            if (*end || v < 1 || v > MAX_LANES)
                return mf_cli_usage_error(self, "--threads needs a number from 1 to %d, "
                                          "not '%s'", MAX_LANES, optarg);
            a->threads = (int)v;
            break;
        }
        case 'A':
            a->no_aggregates = true;
            break;
        case 'S':
            a->agg_state = optarg;
            break;
        case 'O':
            if (a->n_only == sizeof(a->only) / sizeof(a->only[0]))
                return mf_cli_usage_error(self, "too many --output options");
            a->only[a->n_only++] = optarg;
            break;
        }
    }
    a->config = o.config;
    return ch < 0 ? o.rc : -1;
}

/* The run of cfg: its tenant, aggregates, report feed, outputs and lanes.
 * MF_EXIT_OK, or the exit code (the error printed). */
static int
import_start(struct import_run *r, const struct import_args *a, const struct mf_config *cfg,
             const struct mf_normalizer *norm)
{
    struct mf_err aerr;
    char err[512];

    r->cfg = cfg;
    r->config_path = a->config;
    r->tenant_arg = a->tenant;
    r->norm = norm;
    if (a->tenant && !(r->tenant = mf_config_tenant(cfg, a->tenant))) {
        fprintf(stderr, "m365fwd: --tenant %s: no such tenant in %s\n", a->tenant, a->config);
        return MF_EXIT_USAGE;
    }
    if (!a->no_aggregates) {
        struct mf_aggregates_opts ao = {.geo = mf_normalizer_geoip(norm)};

        r->agg = mf_aggregates_new(mf_normalizer_aggregates(norm), &ao);
        if (a->agg_state && mf_aggregates_load(r->agg, a->agg_state, &aerr) != 0)
            mf_log(MF_LOG_WARN, "%s", aerr.msg);
    }
    r->report = mf_report_feed_open(cfg, norm);
    if (mf_fanout_open(&r->fo, cfg, err, sizeof(err)) != 0 ||
        outputs_chosen(r, a->only, a->n_only, err, sizeof(err)) != 0 ||
        lanes_start(r, a->threads ? a->threads : default_lanes(cfg), err, sizeof(err)) != 0) {
        fprintf(stderr, "m365fwd: %s\n", err);
        return MF_EXIT_USAGE;
    }
    return MF_EXIT_OK;
}

/* The files (stdin without any) through the lanes until all is
 * acknowledged or a signal stops it; the totals on stderr. */
static int
import_files(struct import_run *r, const struct import_args *a, int argc, char **argv)
{
    struct sigaction sa;
    struct mf_err aerr;
    int rc = MF_EXIT_OK, files_failed = 0;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (optind >= argc) {
        import_input(r, "-", &a->io);
    } else {
        for (int i = optind; i < argc && !import_stop; i++)
            if (import_input(r, argv[i], &a->io) != 0)
                files_failed++;
    }
    drain(r);
    barrier(r, true);
    fprintf(stderr, "m365fwd import: %llu records read, %llu delivered, %llu rejected, "
            "%llu not acknowledged; %llu aggregate findings", r->read, r->delivered,
            r->rejected, r->unacked, r->findings);
    if (r->findings_unacked)
        fprintf(stderr, ", %llu not acknowledged (see \"import\" in docs/aggregates.md)",
                r->findings_unacked);
    fputc('\n', stderr);
    report_undelivered(r);
    if (r->agg && a->agg_state && mf_aggregates_save(r->agg, a->agg_state, &aerr) != 0) {
        mf_log(MF_LOG_ERROR, "saving the aggregate state: %s", aerr.msg);
        rc = MF_EXIT_REJECTED;
    }
    if (r->rejected || r->unacked || r->findings_unacked || r->unconfirmed || files_failed ||
        import_stop)
        rc = MF_EXIT_REJECTED;
    return rc;
}

int
mf_cmd_import(int argc, char **argv)
{
    struct import_args a = {.io = {.format = MF_INPUT_AUTO}};
    struct import_run r = {0};
    struct mf_normalizer *norm;
    struct mf_config *cfg;
    int rc = parse_args(argc, argv, &a);

    if (rc >= 0)
        return rc;
    /* tenant credentials are not needed to import: no CHECK_FILES */
    cfg = mf_cli_load_config(a.config, 0, &norm);
    if (!cfg)
        return MF_EXIT_USAGE;
    mf_log_set_level((enum mf_log_level)cfg->log_level);
    mf_log_set_format(cfg->log_format == MF_LOG_FORMAT_JSON ? MF_LOG_JSON : MF_LOG_KV);
    a.io.max_record = (size_t)cfg->collect.max_record_size;
    rc = import_start(&r, &a, cfg, norm);
    if (rc == MF_EXIT_OK)
        rc = import_files(&r, &a, argc, argv);
    lanes_stop(&r);
    outputs_free(&r);
    mf_aggregates_destroy(r.agg);
    mf_report_feed_close(r.report);
    mf_fanout_close(&r.fo);
    mf_config_destroy(cfg);
    mf_normalizer_destroy(norm);
    return rc;
}
