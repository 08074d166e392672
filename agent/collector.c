/* collector.c - the `run` engine: streams, windows, blobs, delivery. */
#include "collector.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "clock.h"
#include "cluster.h"
#include "deliver.h"
#include "http.h"
#include "input.h"
#include "json.h"
#include "log.h"
#include "fanout.h"
#include "output.h"
#include "mem.h"
#include "mf_config.h"
#include "state.h"

#define DAY_MS            (24LL * 3600 * 1000)
#define RETENTION_MS      (7 * DAY_MS)
#define RETENTION_MARGIN  (30LL * 60 * 1000)      /* stay clear of AF20055 */
#define START_THROTTLE_MS (15LL * 60 * 1000)      /* subscriptions/start */
#define BACKOFF_BASE_MS   1000
#define DROP_ATTEMPTS     8      /* a blob refused this often becomes a gap */
#define SKEW_WARN_MS      (5LL * 60 * 1000)
#define SKEW_STEP_MS      2000   /* the Date header has 1 s resolution: the
                                    skew applied moves only by more */
#define NF_ATTEMPTS       5      /* a blob answering 404 this often, over at
                                    least a poll interval, becomes a gap */
#define DRAIN_MS          30000
#define LIST_MAX_BODY     ((size_t)32 << 20)
#define GLOBAL_MAX_XFERS  16     /* transfers in flight, all tenants: bounds
                                    TLS sessions and buffers with 1000s of
                                    tenants starting at once (each TLS
                                    context with an extra CA holds ~1 MB) */

#define DELIVER_MAX_PENDING 32 /* downloaded blobs waiting for delivery
                                    (spool files): no download starts
                                    beyond this */
#define DELIVER_MAX_PENDING_TXN 96 /* cluster mode: sent blobs wait for a
                                    transaction of up to 64 (deliver.c):
                                    downloads go on meanwhile */

/* ---------------------------------------------------------------------- */

enum phase {
    P_SUBSCRIBE,   /* waiting for the tenant's subscription list / a start */
    P_LIST,        /* listing the current window (page by page) */
    P_FETCH,       /* downloading and delivering the window's blobs */
    P_IDLE,        /* caught up; next poll at wake_ms */
    P_STOPPED,     /* loud error; nothing more for this stream */
};

enum blob_state { B_PENDING, B_ACTIVE, B_DELIVERING, B_DONE };

struct stream;

struct blob {
    struct stream *st;
    char *content_id;
    char *uri;
    int64_t created_ms;
    enum blob_state state;
    int attempts;
    int64_t retry_at_ms;
    int fd;
    bool retried_401;
    bool orphan;                 /* its tenant was given up while the
                                    delivery stage had it: freed when it
                                    comes back */
    int not_found;               /* 404 answers in a row */
    int64_t first_nf_ms;
    struct mf_http_req *req;     /* while a download is in flight */
    struct mf_dl_blob job;       /* while the delivery stage has it */
};

struct tenant;

struct stream {
    struct tenant *t;
    const char *ct;
    enum phase phase;
    int64_t checkpoint_ms;
    int64_t win_start, win_end;
    bool window_open;            /* win_* valid, listing started */
    char *next_url;              /* next page of the listing, or NULL */
    bool list_done;              /* all pages of the window listed */
    bool req_busy;               /* list_req or start_req in flight */
    bool retried_401;
    struct mf_http_req *req;     /* list or start request in flight */
    bool need_start;
    int64_t start_after_ms;      /* start throttle */
    struct blob **blobs;
    size_t n_blobs, cap_blobs;
    size_t n_done;
    int64_t wake_ms;
    int fails;
    bool caught_up;              /* --once: reached the run's start time */
    bool delivery_failed;        /* some record could not be delivered */
    uint64_t *pages;             /* NextPageUris seen in this window (hash) */
    size_t n_pages, cap_pages;
    size_t quarantined;          /* records kept in state_dir/quarantine */
    size_t oversize;             /* blobs over collect.max_blob_size */
    char error[256];
};

struct tenant {
    struct mf_collector *c;
    const struct mf_tenant_conf *conf;
    struct mf_auth *auth;
    struct stream *streams;
    size_t n_streams;
    char feed_root[1200];        /* {api}/api/v1.0/{tenant}/activity/feed */
    char api_prefix[1024];       /* {api} - blob and page URLs must start so */
    double bucket;               /* request tokens */
    double burst;
    double per_ms;
    int64_t bucket_ms;
    int in_flight;
    int64_t pause_until_ms;      /* throttled: no request before this */
    int throttles;               /* throttled answers in a row (backoff) */
    bool subs_listed;
    struct mf_http_req *subs_req; /* in flight */
    bool skew_warned;
    int64_t skew_ms;             /* local - API clock, last measured */
    int64_t api_offset_ms;       /* the skew the windows follow */
    bool auth_pending;           /* a token request whose outcome is not
                                    handled yet */
    int auth_fails;              /* token failures in a row */
    bool stopped;
    bool active;                 /* collected by this agent (cluster mode:
                                    its shard is ours) */
};

struct mf_collector {
    const struct mf_config *cfg;
    const struct mf_normalizer *norm;
    struct mf_collector_opts opts;
    struct mf_http *http;
    struct mf_state *state;
    struct tenant *tenants;
    size_t n_tenants;
    struct mf_fanout fo;         /* the outputs */
    struct mf_deliver *dl;       /* normalizes, sends and commits blobs */
    struct mf_cluster *cl;       /* cluster mode, else NULL */
    size_t n_orphans;            /* blobs of given-up tenants in delivery */
    char user_agent[300];        /* cluster mode: names the agent */
    size_t turn;                 /* loop turns: the first tenant stepped */
    struct mf_metrics *m;        /* may be NULL: every call is then a no-op */
    char spool_dir[1024];
    struct mf_secret proxy_auth;     /* "user:password" when proxy_auth_file */
    int64_t run_start_ms;
    int64_t next_prune_ms;
    int64_t next_lag_ms;
    volatile sig_atomic_t stop;
    unsigned rng;
    int exit_code;
};

/* ---------------------------------------------------------------------- */
/* Pacing                                                                 */
/* ---------------------------------------------------------------------- */

static unsigned
rnd(struct mf_collector *c)
{
    c->rng = c->rng * 1103515245u + 12345u;
    return c->rng >> 8;
}

/* Full-jitter exponential backoff: uniform in [base, min(cap, base*2^n)]. */
static int64_t
backoff_ms(struct mf_collector *c, int n)
{
    int64_t cap = c->cfg->collect.max_backoff_ms > 0 ? c->cfg->collect.max_backoff_ms
                                                     : 300000;
    int64_t hi = BACKOFF_BASE_MS;

    for (int i = 0; i < n && hi < cap; i++)
        hi *= 2;
    if (hi > cap)
        hi = cap;
    return BACKOFF_BASE_MS + (int64_t)(rnd(c) % (unsigned)(hi - BACKOFF_BASE_MS + 1));
}

/* Take one request token of the tenant's bucket; false when empty (then
 * *wake is when one will be there). */
static bool
take_token(struct tenant *t, int64_t now, int64_t *wake)
{
    if (now < t->pause_until_ms) {
        *wake = t->pause_until_ms;
        return false;
    }
    t->bucket += (double)(now - t->bucket_ms) * t->per_ms;
    if (t->bucket > t->burst)
        t->bucket = t->burst;
    t->bucket_ms = now;
    if (t->bucket >= 1.0) {
        t->bucket -= 1.0;
        return true;
    }
    *wake = now + (int64_t)((1.0 - t->bucket) / t->per_ms) + 1;
    return false;
}

static void
stream_error(struct stream *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
stream_error(struct stream *st, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(st->error, sizeof(st->error), fmt, ap);
    va_end(ap);
    mf_log(MF_LOG_WARN, "tenant=%s content_type=%s %s", st->t->conf->name, st->ct,
           st->error);
    mf_state_poll_done(st->t->c->state, st->t->conf->id, st->ct, mf_clock_wall_ms(), st->error);
}

/* Retry-After of r in ms, at most collect.max_retry_after; -1 when none. */
static int64_t
retry_after_ms(struct tenant *t, const struct mf_http_req *r)
{
    int64_t ms, cap = t->c->cfg->collect.max_retry_after_ms;

    if (r->retry_after_s < 0)
        return -1;
    ms = (int64_t)r->retry_after_s * 1000;
    if (cap > 0 && ms > cap) {
        mf_log(MF_LOG_WARN, "tenant=%s Retry-After of %ld s cut to collect.max_retry_after "
               "(%" PRId64 " s)", t->conf->name, r->retry_after_s, cap / 1000);
        ms = cap;
    }
    return ms;
}

static void
stream_retry(struct stream *st, int64_t now, int64_t retry_ms)
{
    struct mf_collector *c = st->t->c;
    int64_t d = retry_ms >= 0 ? retry_ms : backoff_ms(c, st->fails);

    st->fails++;
    st->wake_ms = now + d;
}

/* A configuration error (permission, tenant, credentials), already logged
 * by stream_error: --once stops the stream (exit 1); a service retries at
 * the slow cadence (collect.max_backoff), so a fixed secret or consent
 * needs no restart. */
static void
stream_config_error(struct stream *st, int64_t now)
{
    struct mf_collector *c = st->t->c;

    mf_metrics_status_set(c->m, MF_METRICS_TENANT, st->t->conf->name, false, st->error, 0);
    if (c->opts.once)
        st->phase = P_STOPPED;
    else
        st->wake_ms = now + c->cfg->collect.max_backoff_ms;
}

/* The API's clock, as far as this tenant's Date headers tell. */
static int64_t
api_now(const struct tenant *t, int64_t now)
{
    return now - t->api_offset_ms;
}

/* The skew against the API's Date header: listing windows follow the
 * API's clock (a local clock hours off neither skips blobs nor moves the
 * checkpoint into the future); beyond 5 minutes it is a warning, in the
 * log, the metric and `status`. */
static void
check_skew(struct tenant *t, const struct mf_http_req *r)
{
    int64_t now = mf_clock_wall_ms(), skew, d;
    bool far;

    if (!r->date_ms)
        return;
    skew = now - r->date_ms;
    t->skew_ms = skew;
    d = skew - t->api_offset_ms;
    if (d <= SKEW_STEP_MS && d >= -SKEW_STEP_MS)
        return;
    t->api_offset_ms = skew;
    mf_auth_set_skew(t->auth, skew);
    mf_metrics_clock_skew(t->c->m, t->conf->name, (double)skew / 1000);
    {
        char key[200], v[64];

        snprintf(key, sizeof(key), "clock_skew:%s", t->conf->id);
        snprintf(v, sizeof(v), "%" PRId64 " %" PRId64, skew, now);
        mf_state_meta_set(t->c->state, key, v);
    }
    far = skew > SKEW_WARN_MS || skew < -SKEW_WARN_MS;
    if (far)
        mf_log(MF_LOG_WARN,
               "tenant=%s the local clock is %" PRId64 " s %s the API's (Date header): "
               "listing windows follow the API's clock; fix the local clock (NTP)",
               t->conf->name, (skew < 0 ? -skew : skew) / 1000,
               skew > 0 ? "ahead of" : "behind");
    else if (t->skew_warned)
        mf_log(MF_LOG_INFO, "tenant=%s the local clock is within %" PRId64 " s of the "
               "API's again", t->conf->name, (skew < 0 ? -skew : skew) / 1000 + 1);
    t->skew_warned = far;
}

/* ---------------------------------------------------------------------- */
/* Delivery                                                               */
/* ---------------------------------------------------------------------- */

/* Move a stream's checkpoint (the local state; in cluster mode also the
 * state topic, with the next commit). <0 on a state error. */
static int
set_checkpoint(struct stream *st, int64_t ms)
{
    struct mf_collector *c = st->t->c;
    int rc = mf_state_checkpoint(c->state, st->t->conf->id, st->ct, ms);

    if (c->cl && rc >= 0)
        mf_cluster_checkpoint(c->cl, st->t->conf->id, st->ct, ms);
    return rc;
}

/* A range that can no longer be fetched: recorded, and announced through
 * the outputs as a record of its own, never skipped silently. */
static int
emit_gap(struct stream *st, int64_t start_ms, int64_t end_ms, const char *reason)
{
    const struct mf_tenant_conf *tc = st->t->conf;

    return mf_deliver_gap(st->t->c->dl, tc->id, tc->name, st->ct, start_ms, end_ms,
                          reason);
}

/* A blob back from the delivery stage (this thread). */
static void
blob_delivered(struct mf_dl_blob *j, void *ud)
{
    struct blob *b = j->ud;
    struct stream *st = b->st;

    (void)ud;
    if (b->fd >= 0) {
        close(b->fd);
        b->fd = -1;
    }
    if (b->orphan) {
        b->st->t->c->n_orphans--;
        free(b->content_id);
        free(b->uri);
        free(b);
        return;
    }
    if (j->rc == 0) {
        b->state = B_DONE;
        st->n_done++;
        st->fails = 0;
        st->quarantined += j->n_unreadable;   /* kept aside */
    } else {
        /* retried; what never gets through keeps the window open, so
         * --once ends non-zero at its deadline */
        b->state = B_PENDING;
        b->retry_at_ms = mf_clock_wall_ms() + backoff_ms(st->t->c, b->attempts++);
    }
}

static void
wake_collector(void *ud)
{
    mf_http_wakeup(ud);
}

/* ---------------------------------------------------------------------- */
/* Requests                                                               */
/* ---------------------------------------------------------------------- */

static bool
url_trusted(const struct tenant *t, const char *url)
{
    return strncasecmp(url, t->api_prefix, strlen(t->api_prefix)) == 0 &&
           (url[strlen(t->api_prefix)] == '/' || url[strlen(t->api_prefix)] == '\0');
}

static void
add_publisher(const struct tenant *t, char *url, size_t n)
{
    const char *q = strchr(url, '?');

    if (q && strcasestr(q, "publisheridentifier="))
        return;
    snprintf(url + strlen(url), n - strlen(url), "%sPublisherIdentifier=%s", q ? "&" : "?",
             t->conf->publisher_id ? t->conf->publisher_id : t->conf->id);
}

/* Requests live on the heap only while in flight, so a thousand idle
 * tenants cost a few hundred bytes each, not a request buffer per stream.
 * The wrapper calls the handler, then frees the request. */
struct creq {
    struct mf_http_req r;      /* first: a creq is its request */
    mf_http_done_fn fn;
    void *ud;
};

static void
creq_done(struct mf_http_req *r, void *ud)
{
    struct creq *q = ud;

    q->fn(r, q->ud);
    mf_http_req_fini(&q->r);
    free(q);
}

static struct mf_http_req *
new_req(struct tenant *t, const char *method, mf_http_done_fn done, void *ud)
{
    struct creq *q = mf_xmalloc(sizeof(*q));
    struct mf_http_req *r = &q->r;

    mf_http_req_init(r);
    q->fn = done;
    q->ud = ud;
    r->method = method;
    r->bearer = mf_auth_token(t->auth, mf_clock_wall_ms());
    r->ca_file = t->conf->ca_file;
    r->proxy = t->c->cfg->proxy;
    r->proxy_userpwd = t->c->proxy_auth.data;
    /* request_timeout: no progress this long (connection, answer, body);
     * transfer_timeout: the whole transfer */
    r->connect_timeout_ms = (long)t->c->cfg->collect.request_timeout_ms;
    r->stall_seconds = (long)((t->c->cfg->collect.request_timeout_ms + 999) / 1000);
    r->timeout_ms = (long)t->c->cfg->collect.transfer_timeout_ms;
    r->user_agent = t->c->user_agent[0] ? t->c->user_agent : NULL;
    r->done = creq_done;
    r->ud = q;
    return r;
}

/* For requests that never completed (shutdown). */
static void
free_req(struct mf_http_req *r)
{
    if (!r)
        return;
    mf_http_req_fini(r);
    free(r);
}

/* Common handling of a finished API request. Returns the verdict; handles
 * 401 (token invalidated), throttling pauses and clock skew. */
static enum mf_status
finish_common(struct tenant *t, struct mf_http_req *r, char *why, size_t whysz)
{
    enum mf_status v = mf_http_classify(r, why, whysz);
    const char *ep = strstr(r->url, "/activity/feed/audit/") ? "blob"
                     : strstr(r->url, "/subscriptions/content") ? "content"
                                                                : "subscriptions";

    t->in_flight--;
    check_skew(t, r);
    mf_metrics_api_request(t->c->m, t->conf->name, ep, r->status);
    if (r->status == 429 || !strcmp(r->af_code, "AF429"))
        mf_metrics_api_throttled(t->c->m, t->conf->name);
    if (v == MF_RETRY)
        mf_metrics_retry(t->c->m, t->conf->name,
                         r->status == 0 ? "transport" : r->status == 401 ? "token"
                         : (r->status == 429 || !strcmp(r->af_code, "AF429")) ? "throttled"
                                                                              : "server_error");
    if (r->status == 401)
        mf_auth_invalidate(t->auth);
    if ((r->status == 429 || !strcmp(r->af_code, "AF429")) && r->retry_after_s > 0)
        t->pause_until_ms = mf_clock_wall_ms() + retry_after_ms(t, r);
    else if (r->status == 429 || !strcmp(r->af_code, "AF429"))
        t->pause_until_ms = mf_clock_wall_ms() + backoff_ms(t->c, t->throttles++);
    else if (v == MF_OK)
        t->throttles = 0;
    return v;
}

static bool
fatal_code(const char *code)
{
    /* no permission, wrong tenant, malformed tenant, tenant unknown or
     * audit logging off: retrying cannot help; status and preflight say why */
    static const char *const codes[] = {"AF10001", "AF20010", "AF20013",
                                        MF_HTTP_TENANT_NOT_EXIST, NULL};

    for (size_t i = 0; codes[i]; i++)
        if (!strcmp(code, codes[i]))
            return true;
    return false;
}

static void
subs_done(struct mf_http_req *r, void *ud)
{
    struct tenant *t = ud;
    char why[256];
    enum mf_status v = finish_common(t, r, why, sizeof(why));
    struct mf_arena a;
    struct mf_jval *list;

    t->subs_req = NULL;
    if (v != MF_OK) {
        int64_t now = mf_clock_wall_ms();
        bool cfg_err = fatal_code(r->af_code);

        for (size_t i = 0; i < t->n_streams; i++) {
            struct stream *st = &t->streams[i];

            if (cfg_err) {
                stream_error(st, "cannot list subscriptions: %s (configuration error%s)",
                             why, t->c->opts.once ? "" : "; retrying slowly");
                stream_config_error(st, now);
            } else {
                stream_error(st, "cannot list subscriptions: %s (retrying)", why);
                stream_retry(st, now, retry_after_ms(t, r));
            }
        }
        /* the list is per tenant: its retry waits as the streams do */
        t->pause_until_ms = t->streams[0].wake_ms;
        return;
    }
    mf_arena_init(&a, 16384);
    list = mf_json_parse(&a, r->resp.data ? r->resp.data : "", r->resp.len, NULL, NULL,
                         NULL);
    for (size_t i = 0; i < t->n_streams; i++) {
        struct stream *st = &t->streams[i];
        bool enabled = false;

        for (size_t k = 0; mf_jis_arr(list) && k < list->len; k++) {
            const char *ct = mf_jstrv(mf_jobj_get(list->u.items[k], "contentType"));
            const char *s = mf_jstrv(mf_jobj_get(list->u.items[k], "status"));

            if (ct && !strcasecmp(ct, st->ct) && (!s || !strcasecmp(s, "enabled")))
                enabled = true;
        }
        st->need_start = !enabled;
        st->phase = enabled ? P_LIST : P_SUBSCRIBE;
    }
    t->subs_listed = true;
    mf_arena_fini(&a);
}

static void
start_done(struct mf_http_req *r, void *ud)
{
    struct stream *st = ud;
    struct tenant *t = st->t;
    char why[256];
    enum mf_status v = finish_common(t, r, why, sizeof(why));

    st->req_busy = false;
    st->req = NULL;
    st->start_after_ms = mf_clock_wall_ms() + START_THROTTLE_MS;
    if (v == MF_OK || !strcmp(r->af_code, "AF20024")) {
        mf_log(MF_LOG_INFO, "tenant=%s content_type=%s subscription enabled",
               t->conf->name, st->ct);
        st->need_start = false;
        st->phase = P_LIST;
        st->fails = 0;
        return;
    }
    if (fatal_code(r->af_code)) {
        stream_error(st, "cannot start the subscription: %s (configuration error%s)", why,
                     t->c->opts.once ? "" : "; retrying slowly");
        stream_config_error(st, mf_clock_wall_ms());
        return;
    }
    stream_error(st, "cannot start the subscription: %s (retrying)", why);
    if (r->status == 401 && !st->retried_401) {
        st->retried_401 = true;
        return;
    }
    stream_retry(st, mf_clock_wall_ms(), retry_after_ms(t, r));
}

static int64_t
parse_content_time(const char *s)
{
    int64_t ms;

    return s && mf_time_parse(s, &ms) == 0 ? ms : 0;
}

static void
add_blob(struct stream *st, const char *id, const char *uri, int64_t created)
{
    struct blob *b;

    for (size_t i = 0; i < st->n_blobs; i++)
        if (!strcmp(st->blobs[i]->content_id, id))
            return;     /* listed twice (pages overlap) */
    if (st->n_blobs == st->cap_blobs) {
        st->cap_blobs = st->cap_blobs ? st->cap_blobs * 2 : 64;
        st->blobs = mf_xrealloc(st->blobs, st->cap_blobs * sizeof(*st->blobs));
    }
    b = mf_xcalloc(1, sizeof(*b));
    b->st = st;
    b->content_id = mf_xstrdup(id);
    b->uri = mf_xstrdup(uri);
    b->created_ms = created;
    b->fd = -1;
    st->blobs[st->n_blobs++] = b;
}

static void
free_blobs(struct stream *st)
{
    for (size_t i = 0; i < st->n_blobs; i++) {
        struct blob *b = st->blobs[i];

        if (b->state == B_DELIVERING) {
            b->orphan = true;   /* the delivery stage still has it */
            st->t->c->n_orphans++;
            continue;
        }
        if (b->fd >= 0)
            close(b->fd);
        free_req(b->req);
        free(b->content_id);
        free(b->uri);
        free(b);
    }
    st->n_blobs = st->n_done = 0;
}

/* Has this NextPageUri been seen in the current window? Remembers it. */
static bool
page_seen(struct stream *st, const char *uri)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (const char *p = uri; *p; p++)
        h = (h ^ (unsigned char)tolower((unsigned char)*p)) * 0x100000001b3ULL;
    for (size_t i = 0; i < st->n_pages; i++)
        if (st->pages[i] == h)
            return true;
    if (st->n_pages == st->cap_pages) {
        st->cap_pages = st->cap_pages ? st->cap_pages * 2 : 16;
        st->pages = mf_xrealloc(st->pages, st->cap_pages * sizeof(*st->pages));
    }
    st->pages[st->n_pages++] = h;
    return false;
}

/* A listing that failed: subscribe again, skip what the retention lost,
 * retry with a new token, wait for the configuration, or retry. */
static void
list_failed(struct stream *st, const struct mf_http_req *r, const char *why, int64_t now)
{
    struct tenant *t = st->t;
    struct mf_collector *c = t->c;

    if (!strcmp(r->af_code, "AF20022") || !strcmp(r->af_code, "AF20023")) {
        st->need_start = true;
        st->phase = P_SUBSCRIBE;
        return;
    }
    if (!strcmp(r->af_code, "AF20055") || !strcmp(r->af_code, "AF20030")) {
        /* the window start is too old for the API: what is older than
         * the retention can no longer be fetched */
        int64_t floor_ms = api_now(t, now) - RETENTION_MS + 2 * RETENTION_MARGIN;

        if (emit_gap(st, st->win_start, floor_ms,
                     "older than the API's 7-day retention (AF20055)") == 0) {
            set_checkpoint(st, floor_ms);
            st->checkpoint_ms = floor_ms > st->checkpoint_ms ? floor_ms
                                                               : st->checkpoint_ms;
        }
        st->window_open = false;
        return;
    }
    if (r->status == 401 && !st->retried_401) {
        st->retried_401 = true;
        return;
    }
    if (fatal_code(r->af_code)) {
        stream_error(st, "content listing refused: %s (configuration error%s)", why,
                     c->opts.once ? "" : "; retrying slowly");
        stream_config_error(st, now);
        return;
    }
    stream_error(st, "content listing failed: %s (retrying)", why);
    stream_retry(st, now, retry_after_ms(t, r));
}

/* The blobs of a listing page not delivered yet, queued (how many in
 * *fresh): 0, or -1 when the page is not a JSON array (retried). */
static int
list_blobs(struct stream *st, const struct mf_http_req *r, int64_t now, size_t *fresh)
{
    struct tenant *t = st->t;
    struct mf_collector *c = t->c;
    struct mf_arena a;
    struct mf_jval *list;

    mf_arena_init(&a, 65536);
    list = mf_json_parse(&a, r->resp.data ? r->resp.data : "", r->resp.len, NULL, NULL,
                         NULL);
    if (!mf_jis_arr(list)) {
        stream_error(st, "content listing: the response is not a JSON array (retrying)");
        stream_retry(st, now, -1);
        mf_arena_fini(&a);
        return -1;
    }
    for (size_t i = 0; i < list->len; i++) {
        const struct mf_jval *e = list->u.items[i];
        const char *id = mf_jstrv(mf_jobj_get(e, "contentId"));
        const char *uri = mf_jstrv(mf_jobj_get(e, "contentUri"));

        if (!id || !uri) {
            mf_log(MF_LOG_WARN, "tenant=%s content_type=%s listing entry %zu without "
                   "contentId/contentUri ignored", t->conf->name, st->ct, i);
            continue;
        }
        if (!url_trusted(t, uri)) {
            char shown[300];

            mf_http_url_redact(uri, shown, sizeof(shown));
            mf_log(MF_LOG_ERROR, "tenant=%s content_type=%s contentUri outside the API "
                   "endpoint refused (the token is never sent there): %s",
                   t->conf->name, st->ct, shown);
            st->delivery_failed = true;
            continue;
        }
        if (mf_state_blob_delivered(c->state, t->conf->id, st->ct, id) == 1)
            continue;
        add_blob(st, id, uri, parse_content_time(mf_jstrv(mf_jobj_get(e, "contentCreated"))));
        (*fresh)++;
    }
    mf_arena_fini(&a);
    return 0;
}

/* The page's NextPageUri, when it may be followed, in st->next_url:
 * false when the window is to be listed again (retried). */
static bool
list_next_page(struct stream *st, const struct mf_http_req *r, int64_t now)
{
    if (r->next_page_too_long) {
        /* never taken for the last page: that would close the window over
         * blobs not listed */
        stream_error(st, "content listing: a NextPageUri of %d bytes or more cannot be "
                     "followed; the window is listed again from its first page later",
                     MF_HTTP_URL_MAX);
        stream_retry(st, now, -1);
        return false;
    }
    if (r->next_page_uri) {
        char shown[300];

        mf_http_url_redact(r->next_page_uri, shown, sizeof(shown));
        if (!url_trusted(st->t, r->next_page_uri)) {
            stream_error(st, "NextPageUri outside the API endpoint refused: %s", shown);
            stream_retry(st, now, -1);
            return false;
        }
        if (page_seen(st, r->next_page_uri)) {
            stream_error(st, "content listing: the NextPageUri repeats a page already "
                         "listed in this window (%s); the window is listed again from "
                         "its first page later", shown);
            stream_retry(st, now, -1);
            return false;
        }
        st->next_url = mf_xstrdup(r->next_page_uri);
    }
    return true;
}

/* A listing page answered: its blobs queued, its next page noted. */
static void
list_ok(struct stream *st, const struct mf_http_req *r, int64_t now)
{
    struct tenant *t = st->t;
    struct mf_collector *c = t->c;
    size_t fresh = 0;

    st->retried_401 = false;
    st->fails = 0;
    st->error[0] = '\0';
    mf_metrics_status_set(c->m, MF_METRICS_TENANT, t->conf->name, true, NULL,
                          3 * c->cfg->collect.poll_interval_ms + 300000);
    if (list_blobs(st, r, now, &fresh) != 0)
        return;
    free(st->next_url);
    st->next_url = NULL;
    st->list_done = false;
    st->phase = P_FETCH;         /* the blobs listed so far, in any case */
    if (!list_next_page(st, r, now))
        return;
    st->list_done = st->next_url == NULL;
    mf_log(MF_LOG_DEBUG, "tenant=%s content_type=%s listed %zu new blobs%s", t->conf->name,
           st->ct, fresh, st->list_done ? "" : " (more pages)");
}

static void
list_done(struct mf_http_req *r, void *ud)
{
    struct stream *st = ud;
    char why[256];
    enum mf_status v = finish_common(st->t, r, why, sizeof(why));
    int64_t now = mf_clock_wall_ms();

    st->req_busy = false;
    st->req = NULL;
    mf_state_poll_done(st->t->c->state, st->t->conf->id, st->ct, now, NULL);
    if (v != MF_OK)
        list_failed(st, r, why, now);
    else
        list_ok(st, r, now);
}

/* A blob that will not be delivered: a gap event of its own, then done. */
static void
blob_gap(struct blob *b, const char *reason, int64_t now)
{
    struct stream *st = b->st;

    if (emit_gap(st, b->created_ms, b->created_ms, reason) == 0) {
        b->state = B_DONE;
        st->n_done++;
    } else {
        b->retry_at_ms = now + backoff_ms(st->t->c, b->attempts++);
    }
}

/* Another 404 for b: true when it has now been missing often enough, and
 * for at least a poll interval (a listing later), to be a gap. */
static bool
blob_gone(struct blob *b, int64_t now)
{
    const struct mf_collector *c = b->st->t->c;

    if (b->not_found++ == 0)
        b->first_nf_ms = now;
    return b->not_found >= NF_ATTEMPTS &&
           now - b->first_nf_ms >= c->cfg->collect.poll_interval_ms;
}

static void
blob_done(struct mf_http_req *r, void *ud)
{
    struct blob *b = ud;
    struct stream *st = b->st;
    struct tenant *t = st->t;
    char why[256];
    enum mf_status v = finish_common(t, r, why, sizeof(why));
    int64_t now = mf_clock_wall_ms();

    b->state = B_PENDING;
    b->req = NULL;
    if (v == MF_OK) {
        /* the delivery stage takes it from here (fd included) */
        b->job = (struct mf_dl_blob){.tenant_id = t->conf->id, .tenant_name = t->conf->name,
                                     .content_type = st->ct, .content_id = b->content_id,
                                     .domains = t->conf->domains.v,
                                     .n_domains = t->conf->domains.n,
                                     .created_ms = b->created_ms, .fd = b->fd,
                                     .attempt = b->attempts + 1,
                                     .max_attempts = DROP_ATTEMPTS,
                                     .last_attempt = b->attempts + 1 >= DROP_ATTEMPTS,
                                     .ud = b};
        b->state = B_DELIVERING;
        mf_deliver_submit(t->c->dl, &b->job);
        return;
    } else if (r->body_truncated && r->status < 400) {
        /* a blob over collect.max_blob_size (after decompression): not
         * delivered, announced as a gap naming it; the rest goes on */
        char reason[400];

        snprintf(reason, sizeof(reason), "blob %.150s is larger than collect.max_blob_size "
                 "(%" PRId64 " bytes once decompressed): not collected", b->content_id,
                 t->c->cfg->collect.max_blob_size);
        mf_log(MF_LOG_ERROR, "tenant=%s content_type=%s %s", t->conf->name, st->ct, reason);
        blob_gap(b, reason, now);
        if (b->state == B_DONE)
            st->oversize++;
    } else if ((r->status == 404 || !strcmp(r->af_code, "AF20050")) &&
               !blob_gone(b, now)) {
        /* listed but not fetchable (yet): tried again across listings */
        b->retry_at_ms = now + backoff_ms(t->c, b->not_found - 1);
        mf_log(MF_LOG_WARN, "tenant=%s content_type=%s blob %s: %s; retrying (%d of at "
               "least %d attempts)", t->conf->name, st->ct, b->content_id, why,
               b->not_found, NF_ATTEMPTS);
    } else if (!strcmp(r->af_code, "AF20051") || !strcmp(r->af_code, "AF20050") ||
               r->status == 404 || (v == MF_DROP && b->attempts + 1 >= DROP_ATTEMPTS)) {
        char reason[400];

        snprintf(reason, sizeof(reason), "blob %.150s could not be fetched: %.200s",
                 b->content_id, why);
        blob_gap(b, reason, now);
    } else {
        if (r->status == 401 && !b->retried_401) {
            b->retried_401 = true;
        } else {
            int64_t ra = retry_after_ms(t, r);

            b->retry_at_ms = now + (ra >= 0 ? ra : backoff_ms(t->c, b->attempts));
            b->attempts++;
        }
        if (strstr(why, strerror(ENOSPC)) || strstr(why, strerror(EDQUOT)))
            mf_log(MF_LOG_ERROR, "tenant=%s content_type=%s blob %s: state_dir %s is full: "
                   "%s; the blob is fetched again once there is room (the checkpoint "
                   "holds)", t->conf->name, st->ct, b->content_id, t->c->cfg->state_dir, why);
        else
            mf_log(MF_LOG_WARN, "tenant=%s content_type=%s blob %s: %s (retrying)",
                   t->conf->name, st->ct, b->content_id, why);
    }
    if (b->fd >= 0) {
        close(b->fd);
        b->fd = -1;
    }
}

static int
spool_fd(struct mf_collector *c)
{
    char path[1100];
    int fd;

    snprintf(path, sizeof(path), "%s/blob-XXXXXX", c->spool_dir);
    fd = mkstemp(path);
    if (fd >= 0)
        unlink(path);
    return fd;
}

/* ---------------------------------------------------------------------- */
/* Stream stepping                                                        */
/* ---------------------------------------------------------------------- */

static void
open_window(struct stream *st, int64_t local_now)
{
    struct mf_collector *c = st->t->c;
    int64_t now = api_now(st->t, local_now);     /* the API's clock */
    int64_t floor_ms = now - RETENTION_MS + RETENTION_MARGIN;
    int64_t start;

    if (st->checkpoint_ms < floor_ms) {
        if (emit_gap(st, st->checkpoint_ms, floor_ms,
                     "older than the API's 7-day retention (downtime or lookback "
                     "longer than the API keeps content)") != 0) {
            st->wake_ms = now + backoff_ms(c, st->fails++);
            return;
        }
        set_checkpoint(st, floor_ms);
        st->checkpoint_ms = floor_ms;
    }
    start = st->checkpoint_ms;
    if (start > now - 1000) {
        /* a checkpoint ahead of the API's clock (written by a clock that
         * was ahead): list up to now again rather than wait for it */
        if (start > now + SKEW_WARN_MS)
            mf_log(MF_LOG_WARN, "tenant=%s content_type=%s the checkpoint is %" PRId64 " s "
                   "ahead of the API's clock; listing from now", st->t->conf->name, st->ct,
                   (start - now) / 1000);
        start = now - 1000;
    }
    start -= c->cfg->collect.overlap_ms;
    if (start < floor_ms)
        start = floor_ms;
    st->win_start = start;
    st->win_end = start + DAY_MS < now ? start + DAY_MS : now;
    st->window_open = true;
    st->list_done = false;
    st->n_pages = 0;
    free(st->next_url);
    st->next_url = NULL;
}

static void
close_window(struct stream *st, int64_t now)
{
    struct mf_collector *c = st->t->c;
    int64_t target = api_now(st->t, c->opts.once ? c->run_start_ms : now - 1000);

    if (set_checkpoint(st, st->win_end) < 0)
        mf_log(MF_LOG_ERROR, "%s", mf_state_errmsg(c->state));
    if (st->win_end > st->checkpoint_ms)
        st->checkpoint_ms = st->win_end;
    free_blobs(st);
    st->window_open = false;
    if (st->win_end >= target) {
        st->caught_up = true;
        st->phase = P_IDLE;
        st->wake_ms = now + c->cfg->collect.poll_interval_ms;
    } else {
        st->phase = P_LIST;
    }
}

/* Start *rp; when it cannot start, free it, clear *rp and *busy. */
static int
submit(struct tenant *t, struct mf_http_req **rp, bool *busy)
{
    if (mf_http_submit(t->c->http, *rp) != 0) {
        mf_log(MF_LOG_ERROR, "tenant=%s cannot start a request: %s", t->conf->name,
               (*rp)->error);
        free_req(*rp);
        *rp = NULL;
        if (busy)
            *busy = false;
        return -1;
    }
    t->in_flight++;
    return 0;
}

static void stream_step(struct stream *st, int64_t now, int64_t *wake);

/* P_SUBSCRIBE: start the subscription when the tenant's were listed and
 * this one is missing. True when throttled (*w: when a token is there). */
static bool
step_subscribe(struct stream *st, int64_t now, int64_t *w)
{
    struct tenant *t = st->t;

    if (!t->subs_listed || st->req_busy || !st->need_start)
        return false;
    if (now < st->start_after_ms) {
        st->wake_ms = st->start_after_ms;
        return false;
    }
    if (!take_token(t, now, w))
        return true;
    st->req = new_req(t, "POST", start_done, st);
    snprintf(st->req->url, sizeof(st->req->url),
             "%s/subscriptions/start?contentType=%s", t->feed_root, st->ct);
    add_publisher(t, st->req->url, sizeof(st->req->url));
    st->req->body = "";
    st->req->body_len = 0;
    st->req->content_type = "application/json";
    st->req_busy = true;
    submit(t, &st->req, &st->req_busy);
    return false;
}

/* P_LIST: list the window's next page (opening the window first). True
 * when throttled (*w: when a token is there). */
static bool
step_list(struct stream *st, int64_t now, int64_t *w)
{
    struct tenant *t = st->t;

    if (st->req_busy)
        return false;
    if (!st->window_open) {
        open_window(st, now);
        if (!st->window_open)
            return false;
    }
    if (!take_token(t, now, w))
        return true;
    st->req = new_req(t, "GET", list_done, st);
    st->req->max_body = LIST_MAX_BODY;
    if (!st->next_url)
        st->n_pages = 0;     /* the first page: no page seen yet */
    if (st->next_url) {
        snprintf(st->req->url, sizeof(st->req->url), "%s", st->next_url);
    } else {
        char s0[32], s1[32];

        mf_clock_fmt_utc(st->win_start, s0, sizeof(s0));
        mf_clock_fmt_utc(st->win_end, s1, sizeof(s1));
        snprintf(st->req->url, sizeof(st->req->url),
                 "%s/subscriptions/content?contentType=%s&startTime=%s&endTime=%s",
                 t->feed_root, st->ct, s0, s1);
    }
    add_publisher(t, st->req->url, sizeof(st->req->url));
    st->req_busy = true;
    submit(t, &st->req, &st->req_busy);
    return false;
}

/* P_FETCH: download the window's pending blobs as far as the limits let;
 * once all are done, the next page or the window's end. True when
 * throttled (*w: when a token is there). */
static bool
step_fetch(struct stream *st, int64_t now, int64_t *wake, int64_t *w)
{
    struct tenant *t = st->t;
    struct mf_collector *c = t->c;

    /* blobs never tried first: one that keeps failing (an output down)
     * does not starve the others */
    for (size_t k = 0; k < 2 * st->n_blobs; k++) {
        struct blob *b = st->blobs[k % st->n_blobs];

        if (b->state != B_PENDING || (k < st->n_blobs) != (b->attempts == 0))
            continue;
        if (now < b->retry_at_ms) {
            if (b->retry_at_ms < *wake)
                *wake = b->retry_at_ms;
            continue;
        }
        if (t->in_flight >= c->cfg->collect.max_concurrency ||
            mf_http_running(c->http) >= GLOBAL_MAX_XFERS ||
            mf_deliver_pending(c->dl) >= (c->cl ? DELIVER_MAX_PENDING_TXN
                                                : DELIVER_MAX_PENDING))
            return false;     /* a finished transfer or delivery wakes the loop */
        if (!take_token(t, now, w))
            return true;
        b->fd = spool_fd(c);
        if (b->fd < 0) {
            mf_log(MF_LOG_ERROR, "spool %s: %s", c->spool_dir, strerror(errno));
            b->retry_at_ms = now + backoff_ms(c, b->attempts++);
            continue;
        }
        b->req = new_req(t, "GET", blob_done, b);
        b->req->body_fd = b->fd;
        b->req->max_body = (size_t)c->cfg->collect.max_blob_size;
        snprintf(b->req->url, sizeof(b->req->url), "%s", b->uri);
        add_publisher(t, b->req->url, sizeof(b->req->url));
        b->state = B_ACTIVE;
        if (submit(t, &b->req, NULL) != 0) {
            b->state = B_PENDING;
            close(b->fd);
            b->fd = -1;
            b->retry_at_ms = now + backoff_ms(c, b->attempts++);
        }
    }
    if (st->n_done == st->n_blobs) {
        if (!st->list_done) {
            st->phase = P_LIST;      /* next page */
            stream_step(st, now, wake);
        } else {
            close_window(st, now);
            if (st->phase == P_LIST)
                stream_step(st, now, wake);
            else if (st->wake_ms < *wake)
                *wake = st->wake_ms;
        }
    }
    return false;
}

/* Start whatever this stream may start now. Updates *wake. */
static void
stream_step(struct stream *st, int64_t now, int64_t *wake)
{
    struct mf_collector *c = st->t->c;
    int64_t w = 0;
    bool throttled;

    if (st->phase == P_STOPPED || c->stop)
        return;
    if (now < st->wake_ms) {
        if (st->wake_ms < *wake)
            *wake = st->wake_ms;
        return;
    }
    switch (st->phase) {
    case P_SUBSCRIBE:
        throttled = step_subscribe(st, now, &w);
        break;
    case P_IDLE:
        st->phase = P_LIST;
        /* fall through */
    case P_LIST:
        throttled = step_list(st, now, &w);
        break;
    case P_FETCH:
        throttled = step_fetch(st, now, wake, &w);
        break;
    default:
        return;
    }
    if (throttled && w && w < *wake)
        *wake = w;
}

/* The outcome of a token request that failed (returns false when it did
 * not): transient errors are retried with backoff like any API error;
 * configuration errors are reported as such, stop the streams under
 * --once, and are retried at the slow cadence by a service. */
static bool
auth_failed(struct tenant *t, int64_t now)
{
    struct mf_collector *c = t->c;
    const char *e = mf_auth_last_error(t->auth);
    bool cfg_err = mf_auth_last_status(t->auth) == MF_FATAL;

    if (!e[0] || mf_auth_last_status(t->auth) == MF_OK)
        return false;
    t->auth_fails++;
    mf_metrics_retry(c->m, t->conf->name, cfg_err ? "token_config" : "token");
    for (size_t i = 0; i < t->n_streams; i++) {
        struct stream *st = &t->streams[i];

        if (cfg_err) {
            stream_error(st, "no token, configuration error (check client_id, the secret "
                         "or certificate, the tenant id, admin consent%s): %s",
                         c->opts.once ? "" : "; retried at collect.max_backoff", e);
            stream_config_error(st, now);
        } else {
            stream_error(st, "no token: %s", e);
        }
    }
    if (cfg_err && c->opts.once) {
        t->stopped = true;
        return true;
    }
    t->pause_until_ms = now + (cfg_err ? c->cfg->collect.max_backoff_ms
                                       : backoff_ms(c, t->auth_fails - 1));
    return false;
}

static void
tenant_step(struct tenant *t, int64_t now, int64_t *wake)
{
    struct mf_collector *c = t->c;
    const char *tok;
    int64_t w = 0;

    if (t->stopped || c->stop || !t->active ||
        (c->cl && !mf_cluster_owns(c->cl, t->conf->id)))
        return;
    if (mf_http_running(c->http) >= GLOBAL_MAX_XFERS)
        return;     /* mf_http_run() returns as soon as one finishes */
    tok = mf_auth_token(t->auth, now);
    if (!tok) {
        if (mf_auth_busy(t->auth))
            return;
        if (t->auth_pending) {
            t->auth_pending = false;
            if (auth_failed(t, now))
                return;
        }
        if (now < t->pause_until_ms) {
            if (t->pause_until_ms < *wake)
                *wake = t->pause_until_ms;
            return;
        }
        t->auth_pending = true;
        mf_auth_refresh(t->auth, c->http, now);
        return;
    }
    if (t->auth_fails) {
        mf_log(MF_LOG_INFO, "tenant=%s token obtained after %d failed attempt(s)",
               t->conf->name, t->auth_fails);
        t->auth_fails = 0;
    }
    if (!t->subs_listed) {
        if (t->subs_req || !take_token(t, now, &w)) {
            if (w && w < *wake)
                *wake = w;
            return;
        }
        t->subs_req = new_req(t, "GET", subs_done, t);
        snprintf(t->subs_req->url, sizeof(t->subs_req->url), "%s/subscriptions/list",
                 t->feed_root);
        add_publisher(t, t->subs_req->url, sizeof(t->subs_req->url));
        submit(t, &t->subs_req, NULL);
        return;
    }
    for (size_t i = 0; i < t->n_streams; i++)
        stream_step(&t->streams[i], now, wake);
}

/* ---------------------------------------------------------------------- */
/* Cluster mode: tenants come and go with their shards                    */
/* ---------------------------------------------------------------------- */

/* A request of t's in flight, dropped. */
static void
cancel_req(struct tenant *t, struct mf_http_req **rp)
{
    if (!*rp)
        return;
    mf_http_cancel(t->c->http, *rp);
    free_req(*rp);
    *rp = NULL;
    t->in_flight--;
}

/* Start collecting t: its shard is ours and its state in the cache. */
static void
tenant_activate(struct tenant *t, int64_t now)
{
    struct mf_collector *c = t->c;

    for (size_t k = 0; k < t->n_streams; k++) {
        struct stream *st = &t->streams[k];
        struct mf_stream_state ss;

        if (mf_state_stream_get(c->state, t->conf->id, st->ct,
                                now - c->cfg->collect.initial_lookback_ms, &ss) != 0)
            mf_log(MF_LOG_ERROR, "%s", mf_state_errmsg(c->state));
        else
            st->checkpoint_ms = ss.checkpoint_ms;
        st->phase = P_SUBSCRIBE;
        st->wake_ms = 0;
        st->fails = 0;
        st->need_start = false;
        st->retried_401 = false;
        st->caught_up = false;
        st->window_open = false;
        st->error[0] = '\0';
    }
    t->subs_listed = false;
    t->stopped = false;
    t->pause_until_ms = 0;
    t->throttles = 0;
    t->active = true;
}

/* Stop collecting t at once: requests in flight are dropped, so are the
 * blobs not in delivery (the next owner lists them again from the
 * checkpoint); blobs in delivery finish there. */
static void
tenant_deactivate(struct tenant *t)
{
    for (size_t k = 0; k < t->n_streams; k++) {
        struct stream *st = &t->streams[k];

        cancel_req(t, &st->req);
        st->req_busy = false;
        for (size_t i = 0; i < st->n_blobs; i++) {
            struct blob *b = st->blobs[i];

            if (b->req) {
                cancel_req(t, &b->req);
                b->state = B_PENDING;
            }
        }
        free_blobs(st);
        free(st->next_url);
        st->next_url = NULL;
        st->window_open = false;
        st->phase = P_SUBSCRIBE;
    }
    cancel_req(t, &t->subs_req);
    t->active = false;
}

static uint32_t
tenant_shard(const struct tenant *t)
{
    return mf_cluster_shard(t->conf->id, (uint32_t)t->c->cfg->cluster.shards);
}

static void
cl_assigned(void *ud, const bool *shards)
{
    struct mf_collector *c = ud;
    int64_t now = mf_clock_wall_ms();
    size_t n = 0, all = 0;

    for (size_t i = 0; i < c->n_tenants; i++) {
        struct tenant *t = &c->tenants[i];

        if (!t->active && shards[tenant_shard(t)]) {
            tenant_activate(t, now);
            n++;
        }
        all += t->active;
    }
    mf_log(MF_LOG_INFO, "cluster: collecting %zu more tenant(s), %zu in all", n, all);
}

/* Blobs of t still downloading or in delivery. */
static size_t
tenant_busy(const struct tenant *t)
{
    size_t n = 0;

    for (size_t k = 0; k < t->n_streams; k++)
        for (size_t i = 0; i < t->streams[k].n_blobs; i++)
            n += t->streams[k].blobs[i]->state == B_ACTIVE ||
                 t->streams[k].blobs[i]->state == B_DELIVERING;
    return n;
}

static void
cl_revoking(void *ud, const bool *shards, bool lost, int64_t deadline_ms)
{
    struct mf_collector *c = ud;
    bool *going = mf_xcalloc(c->n_tenants ? c->n_tenants : 1, sizeof(*going));
    size_t n = 0, busy;

    /* no new request for them; listings in flight are dropped */
    for (size_t i = 0; i < c->n_tenants; i++) {
        struct tenant *t = &c->tenants[i];

        if (!t->active || !shards[tenant_shard(t)])
            continue;
        going[i] = true;
        n++;
        t->active = false;
        for (size_t k = 0; k < t->n_streams; k++) {
            cancel_req(t, &t->streams[k].req);
            t->streams[k].req_busy = false;
        }
        cancel_req(t, &t->subs_req);
        if (lost)
            tenant_deactivate(t);
    }
    /* downloads in flight finish and are delivered, deliveries committed,
     * while the shards are still ours - so the next owner does not fetch
     * them again (when lost, another agent owns them already: drop all) */
    for (;;) {
        int64_t now = mf_clock_wall_ms(), until = now + 50;

        busy = 0;
        for (size_t i = 0; i < c->n_tenants; i++)
            if (going[i])
                busy += lost ? 0 : tenant_busy(&c->tenants[i]);
        if ((!busy && !c->n_orphans) || now >= deadline_ms)
            break;
        if (busy) {
            mf_http_run(c->http, 50);
            mf_deliver_reap(c->dl);
        }
        mf_deliver_commit_soon(c->dl);
        mf_deliver_drain(c->dl, until < deadline_ms ? until : deadline_ms);
    }
    for (size_t i = 0; i < c->n_tenants; i++)
        if (going[i] && !lost)
            tenant_deactivate(&c->tenants[i]);
    mf_log(busy || c->n_orphans ? MF_LOG_WARN : MF_LOG_INFO, "cluster: stopped %zu "
           "tenant(s)%s; %zu blob(s) still in delivery", n, lost ? " (lost)" : "",
           c->n_orphans);
    free(going);
}

/* ---------------------------------------------------------------------- */
/* Life cycle                                                             */
/* ---------------------------------------------------------------------- */

/* An event of the state recorded in meta (when_key = its time in ms,
 * why_key = what happened): logged once by a run, also when another
 * command (status) opened the state first. */
static void
log_state_event(const struct mf_collector *c, const char *when_key, const char *why_key,
                const char *what)
{
    char when[32], why[256], key[64], done[32];

    if (mf_state_meta_get(c->state, when_key, when, sizeof(when)) != 1 ||
        mf_state_meta_get(c->state, why_key, why, sizeof(why)) != 1)
        return;
    snprintf(key, sizeof(key), "%s_logged", when_key);
    if (mf_state_meta_get(c->state, key, done, sizeof(done)) == 1 && !strcmp(done, when))
        return;
    mf_log(MF_LOG_WARN, "state_dir %s: %s: %s", c->cfg->state_dir, what, why);
    mf_state_meta_set(c->state, key, when);
}

/* A new, reset or repaired state is never silent (also in `status`). */
static void
log_origin(const struct mf_collector *c)
{
    struct mf_state_origin o;

    if (mf_state_origin(c->state, &o) != 0)
        return;
    if (o.created_now && !o.reset)
        mf_log(MF_LOG_INFO, "state_dir %s: new state: each content type starts %" PRId64
               " s back (collect.initial_lookback)", c->cfg->state_dir,
               c->cfg->collect.initial_lookback_ms / 1000);
    log_state_event(c, "reset_ms", "reset_reason", "the state was reset (records of the "
                    "lookback may be delivered again)");
    log_state_event(c, "inflight_reset_ms", "inflight_reset_reason", "in-flight marks "
                    "lost (they only count possible duplicates of interrupted blobs; no "
                    "record is lost)");
}

/* The state, its first events logged, and the spool directory: 0 / -1
 * with err. */
static int
open_state(struct mf_collector *c, char *err, size_t errsz)
{
    struct mf_err serr;

    c->state = mf_state_open(c->cfg->state_dir, &serr);
    if (!c->state) {
        snprintf(err, errsz, "%s", serr.msg);
        return -1;
    }
    log_origin(c);
    snprintf(c->spool_dir, sizeof(c->spool_dir), "%s/spool", c->cfg->state_dir);
    if (mkdir(c->spool_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errsz, "%s: cannot create: %s", c->spool_dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* The cluster (when on), the outputs, the proxy's password, the HTTP
 * client and the delivery lanes: 0 / -1 with err. */
static int
open_delivery(struct mf_collector *c, char *err, size_t errsz)
{
    const struct mf_config *cfg = c->cfg;

    if (mf_cluster_enabled(&cfg->cluster)) {
        char id[128];

        if (!(c->cl = mf_cluster_new(cfg, c->state, c->m, err, errsz)))
            return -1;
        mf_cluster_agent_id(cfg, id, sizeof(id));
        snprintf(c->user_agent, sizeof(c->user_agent), "m365fwd/%s (agent %s)",
                 MF_VERSION, id);
    }
    if (mf_fanout_open(&c->fo, cfg, err, errsz) != 0)
        return -1;
    if (c->cl && mf_cluster_attach(c->cl, &c->fo, err, errsz) != 0)
        return -1;
    for (size_t i = 0; i < cfg->outputs.n; i++)
        if (cfg->outputs.v[i].enabled && cfg->outputs.v[i].name)
            mf_metrics_status_add(c->m, MF_METRICS_OUTPUT, cfg->outputs.v[i].name);
    if (cfg->proxy_auth_file) {
        char e[256];

        if (mf_secret_load(cfg->proxy_auth_file, NULL, true, "proxy_auth_file",
                                  &c->proxy_auth, e, sizeof(e)) != 0) {
            snprintf(err, errsz, "%s", e);
            return -1;
        }
    }
    c->http = mf_http_new();
    if (c->cl)
        mf_http_set_stall_guard(c->http, MF_CLUSTER_STALL_MS);
    {
        struct mf_deliver_opts dop = {.cfg = cfg, .norm = c->norm, .fo = &c->fo, .m = c->m,
                                      .state = c->state,
                                      .txn = c->cl ? mf_cluster_txn(c->cl) : NULL,
                                      .lanes = (int)cfg->collect.delivery_threads,
                                      .done = blob_delivered, .wake = wake_collector,
                                      .ud = c->http};

        if (!(c->dl = mf_deliver_new(&dop, err, errsz)))
            return -1;
    }
    return 0;
}

/* Tenant t of configuration tc: its credentials, request bucket and
 * streams from their checkpoints. 0 / -1 with err. */
static int
tenant_init(struct mf_collector *c, struct tenant *t, const struct mf_tenant_conf *tc,
            int64_t now, char *err, size_t errsz)
{
    const struct mf_config *cfg = c->cfg;
    struct mf_auth_opts ao = {.proxy = cfg->proxy,
                              .proxy_userpwd = c->proxy_auth.data,
                              .request_timeout_ms = cfg->collect.request_timeout_ms,
                              .transfer_timeout_ms = cfg->collect.transfer_timeout_ms};

    t->c = c;
    t->conf = tc;
    t->active = !c->cl;     /* cluster mode: when its shard is ours */
    t->auth = mf_auth_new(tc, &ao);
    snprintf(t->api_prefix, sizeof(t->api_prefix), "%s", tc->api_endpoint);
    snprintf(t->feed_root, sizeof(t->feed_root), "%s/api/v1.0/%s/activity/feed",
             tc->api_endpoint, tc->id);
    t->per_ms = (double)cfg->collect.requests_per_minute / 60000.0;
    t->burst = (double)cfg->collect.requests_per_minute / 60.0;
    if (t->burst < 1.0)
        t->burst = 1.0;
    t->bucket = t->burst;
    t->bucket_ms = now;
    t->n_streams = tc->content_types.n;
    t->streams = mf_xcalloc(t->n_streams ? t->n_streams : 1, sizeof(*t->streams));
    for (size_t k = 0; k < t->n_streams; k++) {
        struct stream *st = &t->streams[k];
        struct mf_stream_state ss;

        st->t = t;
        st->ct = tc->content_types.v[k];
        st->phase = P_SUBSCRIBE;
        if (mf_state_stream_get(c->state, tc->id, st->ct,
                                now - cfg->collect.initial_lookback_ms, &ss) != 0) {
            snprintf(err, errsz, "%s", mf_state_errmsg(c->state));
            return -1;
        }
        st->checkpoint_ms = ss.checkpoint_ms;
    }
    return 0;
}

/* The enabled tenants (only --tenant's with it): 0 / -1 with err (none). */
static int
add_tenants(struct mf_collector *c, char *err, size_t errsz)
{
    const struct mf_config *cfg = c->cfg;
    size_t nt = 0;

    c->tenants = mf_xcalloc(cfg->tenants.n ? cfg->tenants.n : 1, sizeof(*c->tenants));
    for (size_t i = 0; i < cfg->tenants.n; i++) {
        const struct mf_tenant_conf *tc = &cfg->tenants.v[i];
        int64_t now = mf_clock_wall_ms();

        if (!tc->enabled)
            continue;
        if (c->opts.only_tenant && strcasecmp(c->opts.only_tenant, tc->name) &&
            strcasecmp(c->opts.only_tenant, tc->id))
            continue;
        if (tenant_init(c, &c->tenants[nt++], tc, now, err, errsz) != 0) {
            c->n_tenants = nt;
            return -1;
        }
    }
    c->n_tenants = nt;
    if (nt == 0) {
        snprintf(err, errsz, "no enabled tenant%s%s", c->opts.only_tenant ? " named " : "",
                 c->opts.only_tenant ? c->opts.only_tenant : "");
        return -1;
    }
    return 0;
}

struct mf_collector *
mf_collector_new(const struct mf_config *cfg, const struct mf_normalizer *norm,
                 const struct mf_collector_opts *opts, char *err, size_t errsz)
{
    struct mf_collector *c = mf_xcalloc(1, sizeof(*c));

    c->cfg = cfg;
    c->norm = norm;
    if (opts)
        c->opts = *opts;
    c->m = c->opts.metrics;
    mf_metrics_set_draining(c->m, false);
    if (c->opts.once_timeout_ms <= 0)
        c->opts.once_timeout_ms = 15 * 60 * 1000;
    c->rng = (unsigned)mf_clock_wall_ms() ^ (unsigned)getpid();
    if (open_state(c, err, errsz) != 0 || open_delivery(c, err, errsz) != 0 ||
        add_tenants(c, err, errsz) != 0)
        goto fail;
    if (c->cl) {
        struct mf_cluster_hooks h = {.assigned = cl_assigned, .revoking = cl_revoking,
                                     .ud = c};

        if (mf_cluster_start(c->cl, c->dl, &h, err, errsz) != 0)
            goto fail;
    }
    return c;
fail:
    mf_collector_destroy(c);
    return NULL;
}

void
mf_collector_stop(struct mf_collector *c)
{
    c->stop = 1;
}

static bool
all_caught_up(const struct mf_collector *c)
{
    if (c->cl && !mf_cluster_assigned_once(c->cl))
        return false;
    for (size_t i = 0; i < c->n_tenants; i++)
        for (size_t k = 0; c->tenants[i].active && k < c->tenants[i].n_streams; k++) {
            const struct stream *st = &c->tenants[i].streams[k];

            if (st->phase != P_STOPPED && !st->caught_up)
                return false;
        }
    return true;
}

/* Each stream's checkpoint lag, and stopped streams' tenants down. */
static void
report_lag(struct mf_collector *c, int64_t now)
{
    for (size_t i = 0; i < c->n_tenants; i++) {
        struct tenant *t = &c->tenants[i];

        for (size_t k = 0; k < t->n_streams; k++) {
            struct stream *st = &t->streams[k];

            mf_metrics_checkpoint_lag(c->m, t->conf->name, st->ct,
                                      (double)(api_now(t, now) - st->checkpoint_ms)
                                      / 1000);
            if (st->phase == P_STOPPED)
                mf_metrics_status_set(c->m, MF_METRICS_TENANT, t->conf->name,
                                      false, st->error, 0);
        }
    }
}

/* Stopping: the transfers in flight finish and are delivered, within
 * DRAIN_MS. */
static void
drain_on_stop(struct mf_collector *c)
{
    int64_t until = mf_clock_wall_ms() + DRAIN_MS;

    mf_log(MF_LOG_INFO, "stopping: draining %d transfer(s) and %zu blob(s) in "
           "delivery", mf_http_running(c->http), mf_deliver_pending(c->dl));
    mf_metrics_set_draining(c->m, true);
    while (mf_http_running(c->http) > 0 && mf_clock_wall_ms() < until) {
        mf_http_run(c->http, 200);
        mf_deliver_reap(c->dl);
    }
    if (mf_deliver_drain(c->dl, until) != 0)
        mf_log(MF_LOG_WARN, "stopping: %zu blob(s) not delivered in time: they are "
               "fetched again on the next start", mf_deliver_pending(c->dl));
}

/* The run's exit status after the drain: --once reports what it could
 * not do; a service stopped by a signal exits 0 after a clean drain
 * (stream errors are in `status`). */
static int
run_result(struct mf_collector *c, int rc)
{
    for (size_t i = 0; c->opts.once && i < c->n_tenants; i++)
        for (size_t k = 0; k < c->tenants[i].n_streams; k++) {
            const struct stream *st = &c->tenants[i].streams[k];

            if (st->phase == P_STOPPED || st->delivery_failed)
                rc = 1;
            if (st->quarantined) {
                mf_log(MF_LOG_ERROR, "tenant=%s content_type=%s %zu unreadable record(s) "
                       "quarantined in %s/quarantine (see docs/reliability.md to replay "
                       "them)", c->tenants[i].conf->name, st->ct, st->quarantined,
                       c->cfg->state_dir);
                rc = 1;
            }
            if (st->oversize) {
                mf_log(MF_LOG_ERROR, "tenant=%s content_type=%s %zu blob(s) over "
                       "collect.max_blob_size not collected (reported as gaps)",
                       c->tenants[i].conf->name, st->ct, st->oversize);
                rc = 1;
            }
        }
    if (mf_deliver_pending(c->dl) != 0) {
        rc = 1;
    } else if (mf_deliver_flush(c->dl) != 0) {
        /* cluster mode, stopped by a signal: an aborted last transaction
         * (the group rebalancing as agents stop) loses nothing - its blobs
         * are the next owner's to collect */
        if (c->cl && c->stop && !c->opts.once)
            mf_log(MF_LOG_WARN, "stopping: the last transaction was aborted; its blobs "
                   "are collected by the next owner of their shards");
        else
            rc = 1;
    }
    return rc;
}

int
mf_collector_run(struct mf_collector *c)
{
    int64_t deadline;
    int rc = 0;

    c->run_start_ms = mf_clock_wall_ms();
    deadline = c->run_start_ms + c->opts.once_timeout_ms;
    mf_log(MF_LOG_INFO, "collecting from %zu tenant(s)%s", c->n_tenants,
           c->opts.once ? " (once)" : "");
    while (!c->stop) {
        int64_t now = mf_clock_wall_ms(), wake = now + 1000;
        int timeout;

        mf_metrics_heartbeat(c->m);
        if (c->cl)
            mf_cluster_poll(c->cl);
        mf_deliver_reap(c->dl);
        if (now >= c->next_lag_ms) {
            report_lag(c, now);
            c->next_lag_ms = now + 5000;
        }
        if (now >= c->next_prune_ms) {
            /* blobs expire from the API after 7 days; Ids are kept for the
             * dedupe horizon */
            if (mf_state_prune(c->state, now - RETENTION_MS - DAY_MS,
                               now - c->cfg->collect.dedupe_horizon_ms) != 0)
                mf_log(MF_LOG_WARN, "%s", mf_state_errmsg(c->state));
            c->next_prune_ms = now + 3600 * 1000;
        }
        /* from a different tenant each turn: when transfers are scarce
         * (GLOBAL_MAX_XFERS), no tenant waits behind the others for long
         * (tenants just taken over in cluster mode among them) */
        for (size_t i = 0; i < c->n_tenants; i++)
            tenant_step(&c->tenants[(i + c->turn) % c->n_tenants], now, &wake);
        c->turn++;
        if (c->opts.tick && c->opts.tick(c->opts.tick_ud)) {
            c->stop = 1;
            break;
        }
        if (c->opts.once && all_caught_up(c) && mf_http_running(c->http) == 0 &&
            mf_deliver_pending(c->dl) == 0)
            break;
        if (c->opts.once && now > deadline) {
            mf_log(MF_LOG_ERROR, "--once: not caught up after %" PRId64 " s; giving up "
                   "(the checkpoint stays where delivery stopped)",
                   c->opts.once_timeout_ms / 1000);
            rc = 1;
            break;
        }
        timeout = (int)(wake - now);
        if (timeout < 0)
            timeout = 0;
        if (timeout > 1000)
            timeout = 1000;
        mf_http_run(c->http, timeout);
    }
    /* drain: let transfers in flight finish and deliver them */
    if (c->stop)
        drain_on_stop(c);
    else
        mf_deliver_drain(c->dl, mf_clock_wall_ms() + DRAIN_MS);
    rc = run_result(c, rc);
    /* the shards go to the other agents now, not after a session timeout */
    mf_cluster_leave(c->cl);
    return rc;
}

void
mf_collector_destroy(struct mf_collector *c)
{
    if (!c)
        return;
    mf_deliver_destroy(c->dl);        /* its threads wake c->http */
    if (c->http)
        mf_http_destroy(c->http);     /* aborts transfers: before freeing reqs */
    for (size_t i = 0; i < c->n_tenants; i++) {
        struct tenant *t = &c->tenants[i];

        for (size_t k = 0; k < t->n_streams; k++) {
            free_blobs(&t->streams[k]);
            free(t->streams[k].blobs);
            free(t->streams[k].next_url);
            free(t->streams[k].pages);
            free_req(t->streams[k].req);
        }
        free_req(t->subs_req);
        free(t->streams);
        mf_auth_destroy(t->auth);
    }
    free(c->tenants);
    mf_fanout_close(&c->fo);
    mf_cluster_destroy(c->cl);      /* after the outputs sending through it */
    if (c->state)
        mf_state_close(c->state);
    mf_secret_clear(&c->proxy_auth);
    free(c);
}
