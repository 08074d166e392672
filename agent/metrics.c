/* metrics.c - metrics registry, health state and the libmicrohttpd listener.
 *
 * Families live in a growable array (index = id); each family keeps its
 * series in creation order plus an open-addressing hash of them keyed by
 * the label values. One mutex guards everything: the collector updates,
 * the MHD thread renders. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "buf.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "optcheck.h"

#define REASON_MAX 256          /* bytes of a status reason */
#define STATUS_NAME_MAX 128           /* bytes of a status name */

struct series {
    const char **vals;          /* nlabels pointers into the same block */
    uint64_t hash;
    double value;
};

struct family {
    char *name;
    char *help;
    enum mf_metric_type type;
    size_t nlabels;
    char *labels[MF_METRICS_LABELS_MAX];
    bool unbounded;             /* internal families: no series limit */
    struct series *series;
    size_t n, cap;
    uint32_t *slots;            /* series index + 1; 0 = empty */
    size_t nslots;              /* power of two, or 0 */
};

struct status {
    char *name;
    char *reason;
    bool ok;
    int64_t set_ms;
    int64_t valid_ms;
};

struct status_list {
    struct status *v;
    size_t n, cap;
};

struct mf_metrics {
    pthread_mutex_t mu;
    struct family *fam;
    size_t nfam, capfam;
    size_t series_limit;
    int dropped_id;             /* m365fwd_metrics_series_dropped_total */
    int64_t (*now_fn)(void *ud);
    void *now_ud;
    int64_t heartbeat_ms;
    int64_t heartbeat_timeout_ms;
    bool draining;
    struct status_list st[2];   /* enum mf_metrics_kind */
};

/* ---- standard families (tables over code) ----------------------------- */

struct std_family {
    enum mf_metric_type type;
    const char *name;
    const char *help;
    const char *labels[MF_METRICS_LABELS_MAX];
};

static const struct std_family std_families[MF_M_STD_COUNT] = {
    [MF_M_RECORDS_RECEIVED] = {MF_METRIC_COUNTER,
        "m365fwd_records_received_total",
        "Audit records read from content blobs.",
        {"tenant", "content_type"}},
    [MF_M_RECORDS_DELIVERED] = {MF_METRIC_COUNTER,
        "m365fwd_records_delivered_total",
        "Records acknowledged by an output.",
        {"output", "tenant", "content_type"}},
    [MF_M_RECORDS_REJECTED] = {MF_METRIC_COUNTER,
        "m365fwd_records_rejected_total",
        "Records that could not be normalized.",
        {"tenant", "content_type"}},
    [MF_M_DUPLICATES_DROPPED] = {MF_METRIC_COUNTER,
        "m365fwd_duplicates_dropped_total",
        "Records dropped because their Id was already delivered.",
        {"tenant", "content_type"}},
    [MF_M_API_REQUESTS] = {MF_METRIC_COUNTER,
        "m365fwd_api_requests_total",
        "Requests to the token endpoint and the Management Activity API by "
        "HTTP status (0: no response).",
        {"tenant", "endpoint", "status"}},
    [MF_M_API_THROTTLED] = {MF_METRIC_COUNTER,
        "m365fwd_api_throttled_total",
        "Requests answered 429 or AF429 (throttled).",
        {"tenant"}},
    [MF_M_RETRIES] = {MF_METRIC_COUNTER,
        "m365fwd_retries_total",
        "Requests retried, by reason.",
        {"tenant", "reason"}},
    [MF_M_CHECKPOINT_LAG] = {MF_METRIC_GAUGE,
        "m365fwd_checkpoint_lag_seconds",
        "Seconds between now and the stream's checkpoint.",
        {"tenant", "content_type"}},
    [MF_M_GAP_SECONDS] = {MF_METRIC_COUNTER,
        "m365fwd_collection_gap_seconds_total",
        "Seconds of audit time that could not be collected (outside the "
        "API's retention).",
        {"tenant", "content_type"}},
    [MF_M_QUEUE_DEPTH] = {MF_METRIC_GAUGE,
        "m365fwd_output_queue_depth",
        "Records handed to an output and not yet acknowledged.",
        {"output"}},
    [MF_M_DELIVERY_FAILURES] = {MF_METRIC_COUNTER,
        "m365fwd_delivery_failures_total",
        "Deliveries an output reported as failed.",
        {"output"}},
    [MF_M_CLOCK_SKEW] = {MF_METRIC_GAUGE,
        "m365fwd_clock_skew_seconds",
        "Local clock minus the API's (from its Date header); listing windows "
        "follow the API's clock, beyond 300 s either way the agent warns.",
        {"tenant"}},
};

/* ---- small helpers ----------------------------------------------------- */

static int64_t
mono_ms(void *ud)
{
    struct timespec ts;

    (void)ud;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
now_ms(const struct mf_metrics *m)
{
    return m->now_fn(m->now_ud);
}

static void
lock(struct mf_metrics *m)
{
    pthread_mutex_lock(&m->mu);
}

static void
unlock(struct mf_metrics *m)
{
    pthread_mutex_unlock(&m->mu);
}

/* Length of the valid UTF-8 sequence at s (NUL-terminated), 0 if invalid. */
static size_t
utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t n, i;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else
        return 0;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

/* Copy in to out (size max + 1): valid UTF-8, invalid bytes replaced by
 * U+FFFD, cut at a character boundary to at most max bytes. */
static size_t
sanitize(const char *in, char *out, size_t max)
{
    static const char repl[] = "\xEF\xBF\xBD";
    const unsigned char *s = (const unsigned char *)(in ? in : "");
    size_t o = 0;

    while (*s) {
        size_t n = utf8_len(s);
        const char *src = (const char *)s;
        size_t step = n;

        if (n == 0) {
            src = repl;
            n = 3;
            step = 1;
        }
        if (o + n > max)
            break;
        memcpy(out + o, src, n);
        o += n;
        s += step;
    }
    out[o] = '\0';
    return o;
}

static char *
sanitize_dup(const char *in, size_t max)
{
    char *tmp = mf_xmalloc(max + 1);

    sanitize(in, tmp, max);
    return tmp;
}

static uint64_t
hash_vals(char vals[][MF_METRICS_LABEL_MAX + 1], size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    size_t i;

    for (i = 0; i < n; i++) {
        const unsigned char *p = (const unsigned char *)vals[i];

        do {
            h ^= *p;
            h *= 1099511628211ULL;
        } while (*p++);
    }
    return h;
}

static bool
valid_metric_name(const char *s)
{
    size_t i;

    if (!s || !*s)
        return false;
    for (i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];

        if (!(isalpha(c) || c == '_' || c == ':' || (i > 0 && isdigit(c))) ||
            c > 0x7f)
            return false;
    }
    return true;
}

static bool
valid_label_name(const char *s)
{
    size_t i;

    if (!s || !*s || (s[0] == '_' && s[1] == '_'))
        return false;
    for (i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];

        if (!(isalpha(c) || c == '_' || (i > 0 && isdigit(c))) || c > 0x7f)
            return false;
    }
    return true;
}

static bool
ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);

    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ---- families and series ----------------------------------------------- */

static int
add_family(struct mf_metrics *m, enum mf_metric_type type, const char *name,
           const char *help, const char *const *labels, size_t n,
           bool unbounded, char *err, size_t errsz)
{
    struct family *f;
    size_t i, j;

    if (type != MF_METRIC_COUNTER && type != MF_METRIC_GAUGE) {
        snprintf(err, errsz, "metric %s: unknown type", name ? name : "?");
        return -1;
    }
    if (!valid_metric_name(name)) {
        snprintf(err, errsz, "invalid metric name '%s'", name ? name : "");
        return -1;
    }
    if (type == MF_METRIC_COUNTER && !ends_with(name, "_total")) {
        snprintf(err, errsz, "counter %s: name must end in _total", name);
        return -1;
    }
    if (n > MF_METRICS_LABELS_MAX) {
        snprintf(err, errsz, "metric %s: more than %d labels", name,
                 MF_METRICS_LABELS_MAX);
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (!valid_label_name(labels[i])) {
            snprintf(err, errsz, "metric %s: invalid label name '%s'", name,
                     labels[i] ? labels[i] : "");
            return -1;
        }
        for (j = 0; j < i; j++)
            if (strcmp(labels[i], labels[j]) == 0) {
                snprintf(err, errsz, "metric %s: label '%s' twice", name,
                         labels[i]);
                return -1;
            }
    }
    for (i = 0; i < m->nfam; i++)
        if (strcmp(m->fam[i].name, name) == 0) {
            snprintf(err, errsz, "metric %s registered twice", name);
            return -1;
        }
    if (m->nfam == m->capfam) {
        m->capfam = m->capfam ? m->capfam * 2 : 32;
        m->fam = mf_xrealloc(m->fam, m->capfam * sizeof(*m->fam));
    }
    f = &m->fam[m->nfam];
    memset(f, 0, sizeof(*f));
    f->name = mf_xstrdup(name);
    f->help = mf_xstrdup(help ? help : "");
    f->type = type;
    f->nlabels = n;
    f->unbounded = unbounded;
    for (i = 0; i < n; i++)
        f->labels[i] = mf_xstrdup(labels[i]);
    return (int)m->nfam++;
}

static void
family_rehash(struct family *f, size_t nslots)
{
    size_t i;

    free(f->slots);
    f->slots = mf_xcalloc(nslots, sizeof(*f->slots));
    f->nslots = nslots;
    for (i = 0; i < f->n; i++) {
        size_t k = (size_t)f->series[i].hash & (nslots - 1);

        while (f->slots[k])
            k = (k + 1) & (nslots - 1);
        f->slots[k] = (uint32_t)(i + 1);
    }
}

static bool
series_match(const struct family *f, const struct series *s, uint64_t h,
             char vals[][MF_METRICS_LABEL_MAX + 1])
{
    size_t i;

    if (s->hash != h)
        return false;
    for (i = 0; i < f->nlabels; i++)
        if (strcmp(s->vals[i], vals[i]) != 0)
            return false;
    return true;
}

static struct series *
series_find(const struct family *f, uint64_t h,
            char vals[][MF_METRICS_LABEL_MAX + 1])
{
    size_t k;

    if (!f->nslots)
        return NULL;
    for (k = (size_t)h & (f->nslots - 1); f->slots[k];
         k = (k + 1) & (f->nslots - 1)) {
        struct series *s = &f->series[f->slots[k] - 1];

        if (series_match(f, s, h, vals))
            return s;
    }
    return NULL;
}

static struct series *
series_new(struct family *f, uint64_t h, char vals[][MF_METRICS_LABEL_MAX + 1])
{
    struct series *s;
    size_t i, total = f->nlabels * sizeof(char *), off;
    char *block;

    for (i = 0; i < f->nlabels; i++)
        total += strlen(vals[i]) + 1;
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 8;
        f->series = mf_xrealloc(f->series, f->cap * sizeof(*f->series));
    }
    s = &f->series[f->n++];
    block = mf_xmalloc(total ? total : 1);
    s->vals = (const char **)(void *)block;
    off = f->nlabels * sizeof(char *);
    for (i = 0; i < f->nlabels; i++) {
        size_t l = strlen(vals[i]) + 1;

        memcpy(block + off, vals[i], l);
        s->vals[i] = block + off;
        off += l;
    }
    s->hash = h;
    s->value = 0;
    if (f->n * 2 > f->nslots)
        family_rehash(f, f->nslots ? f->nslots * 2 : 16);
    else {
        size_t k = (size_t)h & (f->nslots - 1);

        while (f->slots[k])
            k = (k + 1) & (f->nslots - 1);
        f->slots[k] = (uint32_t)f->n;
    }
    return s;
}

static void count_dropped(struct mf_metrics *m, const struct family *f);

/* Under the lock. NULL when the series bound stops a new one (counted). */
static struct series *
series_get(struct mf_metrics *m, int id, const char *const *values,
           bool create)
{
    char vals[MF_METRICS_LABELS_MAX][MF_METRICS_LABEL_MAX + 1];
    struct family *f;
    struct series *s;
    uint64_t h;
    size_t i;

    if (id < 0 || (size_t)id >= m->nfam)
        return NULL;
    f = &m->fam[id];
    for (i = 0; i < f->nlabels; i++)
        sanitize(values ? values[i] : NULL, vals[i], MF_METRICS_LABEL_MAX);
    h = hash_vals(vals, f->nlabels);
    s = series_find(f, h, vals);
    if (s || !create)
        return s;
    if (!f->unbounded && f->n >= m->series_limit) {
        count_dropped(m, f);
        return NULL;
    }
    if (f->n >= UINT32_MAX - 1)
        return NULL;
    return series_new(f, h, vals);
}

static void
count_dropped(struct mf_metrics *m, const struct family *f)
{
    const char *v[1] = {f->name};
    struct series *s = series_get(m, m->dropped_id, v, true);

    if (s)
        s->value += 1;
}

static void
family_free(struct family *f)
{
    size_t i;

    for (i = 0; i < f->n; i++)
        free((void *)f->series[i].vals);
    free(f->series);
    free(f->slots);
    for (i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->name);
    free(f->help);
}

/* ---- public: registry -------------------------------------------------- */

struct mf_metrics *
mf_metrics_new(const char *version)
{
    struct mf_metrics *m = mf_xcalloc(1, sizeof(*m));
    static const char *const family_label[] = {"family"};
    static const char *const version_label[] = {"version"};
    char err[160];
    struct timespec ts;
    int build, start;
    size_t i, n;

    pthread_mutex_init(&m->mu, NULL);
    m->series_limit = MF_METRICS_SERIES_MAX;
    m->now_fn = mono_ms;
    m->heartbeat_timeout_ms = MF_METRICS_HEARTBEAT_TIMEOUT_MS;
    m->heartbeat_ms = now_ms(m);
    for (i = 0; i < MF_M_STD_COUNT; i++) {
        const struct std_family *sf = &std_families[i];

        for (n = 0; n < MF_METRICS_LABELS_MAX && sf->labels[n]; n++)
            ;
        if (add_family(m, sf->type, sf->name, sf->help, sf->labels, n, false,
                       err, sizeof(err)) != (int)i) {
            /* a broken table is a programming error */
            fprintf(stderr, "metrics table: %s\n", err);
            abort();
        }
    }
    build = add_family(m, MF_METRIC_GAUGE, "m365fwd_build_info",
                       "Version of this m365fwd (always 1).", version_label, 1,
                       true, err, sizeof(err));
    start = add_family(m, MF_METRIC_GAUGE, "process_start_time_seconds",
                       "Start time of the process since the Unix epoch in "
                       "seconds.", NULL, 0, true, err, sizeof(err));
    m->dropped_id = add_family(m, MF_METRIC_COUNTER,
                               "m365fwd_metrics_series_dropped_total",
                               "Updates dropped because the family reached "
                               "its series limit.", family_label, 1, true,
                               err, sizeof(err));
    if (build < 0 || start < 0 || m->dropped_id < 0) {
        fprintf(stderr, "metrics table: %s\n", err);
        abort();
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    {
        const char *v[1] = {version ? version : "unknown"};

        mf_metrics_set(m, build, v, 1);
        mf_metrics_set(m, start, NULL, (double)ts.tv_sec +
                       (double)(ts.tv_nsec / 1000000) / 1e3);
    }
    return m;
}

void
mf_metrics_destroy(struct mf_metrics *m)
{
    size_t i, k;

    if (!m)
        return;
    for (i = 0; i < m->nfam; i++)
        family_free(&m->fam[i]);
    free(m->fam);
    for (k = 0; k < 2; k++) {
        for (i = 0; i < m->st[k].n; i++) {
            free(m->st[k].v[i].name);
            free(m->st[k].v[i].reason);
        }
        free(m->st[k].v);
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

int
mf_metrics_register(struct mf_metrics *m, enum mf_metric_type type,
                    const char *name, const char *help,
                    const char *const *labels, size_t n, char *err,
                    size_t errsz)
{
    char dummy[2];
    int id;

    if (!err) {
        err = dummy;
        errsz = sizeof(dummy);
    }
    if (!m) {
        snprintf(err, errsz, "no metrics registry");
        return -1;
    }
    lock(m);
    id = add_family(m, type, name, help, labels, n, false, err, errsz);
    unlock(m);
    return id;
}

void
mf_metrics_add(struct mf_metrics *m, int id, const char *const *values,
               double v)
{
    struct series *s;

    if (!m || isnan(v))
        return;
    lock(m);
    if (id >= 0 && (size_t)id < m->nfam &&
        !(m->fam[id].type == MF_METRIC_COUNTER && v < 0) &&
        (s = series_get(m, id, values, true)) != NULL)
        s->value += v;
    unlock(m);
}

void
mf_metrics_set(struct mf_metrics *m, int id, const char *const *values,
               double v)
{
    struct series *s;

    if (!m)
        return;
    lock(m);
    if (id >= 0 && (size_t)id < m->nfam &&
        m->fam[id].type == MF_METRIC_GAUGE &&
        (s = series_get(m, id, values, true)) != NULL)
        s->value = v;
    unlock(m);
}

double
mf_metrics_get(struct mf_metrics *m, int id, const char *const *values)
{
    struct series *s;
    double v = NAN;

    if (!m)
        return NAN;
    lock(m);
    if ((s = series_get(m, id, values, false)) != NULL)
        v = s->value;
    unlock(m);
    return v;
}

size_t
mf_metrics_forget(struct mf_metrics *m, int id, const char *label,
                  const char *value)
{
    char want[MF_METRICS_LABEL_MAX + 1];
    struct family *f;
    size_t li, i, o = 0, dropped = 0;

    if (!m || !label)
        return 0;
    sanitize(value, want, MF_METRICS_LABEL_MAX);
    lock(m);
    if (id < 0 || (size_t)id >= m->nfam)
        goto out;
    f = &m->fam[id];
    for (li = 0; li < f->nlabels; li++)
        if (strcmp(f->labels[li], label) == 0)
            break;
    if (li == f->nlabels)
        goto out;
    for (i = 0; i < f->n; i++) {
        if (strcmp(f->series[i].vals[li], want) == 0) {
            free((void *)f->series[i].vals);
            dropped++;
        } else {
            f->series[o++] = f->series[i];
        }
    }
    f->n = o;
    if (dropped && f->nslots)
        family_rehash(f, f->nslots);
out:
    unlock(m);
    return dropped;
}

void
mf_metrics_set_series_limit(struct mf_metrics *m, size_t n)
{
    if (!m)
        return;
    lock(m);
    m->series_limit = n;
    unlock(m);
}

/* ---- typed helpers ------------------------------------------------------ */

void
mf_metrics_records_received(struct mf_metrics *m, const char *tenant,
                            const char *content_type, uint64_t n)
{
    const char *v[] = {tenant, content_type};

    mf_metrics_add(m, MF_M_RECORDS_RECEIVED, v, (double)n);
}

void
mf_metrics_records_delivered(struct mf_metrics *m, const char *output,
                             const char *tenant, const char *content_type,
                             uint64_t n)
{
    const char *v[] = {output, tenant, content_type};

    mf_metrics_add(m, MF_M_RECORDS_DELIVERED, v, (double)n);
}

void
mf_metrics_records_rejected(struct mf_metrics *m, const char *tenant,
                            const char *content_type, uint64_t n)
{
    const char *v[] = {tenant, content_type};

    mf_metrics_add(m, MF_M_RECORDS_REJECTED, v, (double)n);
}

void
mf_metrics_duplicates_dropped(struct mf_metrics *m, const char *tenant,
                              const char *content_type, uint64_t n)
{
    const char *v[] = {tenant, content_type};

    mf_metrics_add(m, MF_M_DUPLICATES_DROPPED, v, (double)n);
}

void
mf_metrics_api_request(struct mf_metrics *m, const char *tenant,
                       const char *endpoint, long status)
{
    char st[24];
    const char *v[] = {tenant, endpoint, st};

    if (status < 0)
        status = 0;
    snprintf(st, sizeof(st), "%ld", status);
    mf_metrics_add(m, MF_M_API_REQUESTS, v, 1);
}

void
mf_metrics_api_throttled(struct mf_metrics *m, const char *tenant)
{
    const char *v[] = {tenant};

    mf_metrics_add(m, MF_M_API_THROTTLED, v, 1);
}

void
mf_metrics_retry(struct mf_metrics *m, const char *tenant, const char *reason)
{
    const char *v[] = {tenant, reason};

    mf_metrics_add(m, MF_M_RETRIES, v, 1);
}

void
mf_metrics_checkpoint_lag(struct mf_metrics *m, const char *tenant,
                          const char *content_type, double seconds)
{
    const char *v[] = {tenant, content_type};

    mf_metrics_set(m, MF_M_CHECKPOINT_LAG, v, seconds);
}

void
mf_metrics_gap_seconds(struct mf_metrics *m, const char *tenant,
                       const char *content_type, double seconds)
{
    const char *v[] = {tenant, content_type};

    mf_metrics_add(m, MF_M_GAP_SECONDS, v, seconds);
}

void
mf_metrics_queue_depth(struct mf_metrics *m, const char *output, double depth)
{
    const char *v[] = {output};

    mf_metrics_set(m, MF_M_QUEUE_DEPTH, v, depth);
}

void
mf_metrics_delivery_failure(struct mf_metrics *m, const char *output)
{
    const char *v[] = {output};

    mf_metrics_add(m, MF_M_DELIVERY_FAILURES, v, 1);
}

void
mf_metrics_clock_skew(struct mf_metrics *m, const char *tenant, double seconds)
{
    const char *v[] = {tenant};

    mf_metrics_set(m, MF_M_CLOCK_SKEW, v, seconds);
}

/* ---- rendering ---------------------------------------------------------- */

/* esc_nl_bs: HELP escaping; with quote also '"' (label values). */
static void
put_escaped(struct mf_buf *b, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            mf_buf_append(b, "\\\\", 2);
        else if (*s == '\n')
            mf_buf_append(b, "\\n", 2);
        else if (quote && *s == '"')
            mf_buf_append(b, "\\\"", 2);
        else
            mf_buf_appendc(b, *s);
    }
}

static void
put_value(struct mf_buf *b, double v)
{
    char tmp[40];

    if (isnan(v)) {
        mf_buf_appends(b, "NaN");
    } else if (isinf(v)) {
        mf_buf_appends(b, v > 0 ? "+Inf" : "-Inf");
    } else if (v == floor(v) && fabs(v) < 1e15) {
        mf_buf_printf(b, "%.0f", v);
    } else {
        /* shortest form that reads back as the same double */
        snprintf(tmp, sizeof(tmp), "%.15g", v);
        if (strtod(tmp, NULL) != v)
            snprintf(tmp, sizeof(tmp), "%.17g", v);
        mf_buf_appends(b, tmp);
    }
}

static void
render_family(struct mf_buf *b, const struct family *f)
{
    size_t i, j;

    mf_buf_printf(b, "# HELP %s ", f->name);
    put_escaped(b, f->help, false);
    mf_buf_printf(b, "\n# TYPE %s %s\n", f->name,
                  f->type == MF_METRIC_COUNTER ? "counter" : "gauge");
    for (i = 0; i < f->n; i++) {
        const struct series *s = &f->series[i];

        mf_buf_appends(b, f->name);
        if (f->nlabels) {
            mf_buf_appendc(b, '{');
            for (j = 0; j < f->nlabels; j++) {
                mf_buf_printf(b, "%s%s=\"", j ? "," : "", f->labels[j]);
                put_escaped(b, s->vals[j], true);
                mf_buf_appendc(b, '"');
            }
            mf_buf_appendc(b, '}');
        }
        mf_buf_appendc(b, ' ');
        put_value(b, s->value);
        mf_buf_appendc(b, '\n');
    }
}

char *
mf_metrics_render(struct mf_metrics *m, size_t *len)
{
    struct mf_buf b;
    size_t i;

    mf_buf_init(&b, 0);
    mf_buf_reserve(&b, 4096);
    if (m) {
        lock(m);
        for (i = 0; i < m->nfam; i++)
            render_family(&b, &m->fam[i]);
        unlock(m);
    }
    if (len)
        *len = b.len;
    return b.data;
}

/* ---- health ------------------------------------------------------------- */

void
mf_metrics_heartbeat(struct mf_metrics *m)
{
    if (!m)
        return;
    lock(m);
    m->heartbeat_ms = now_ms(m);
    unlock(m);
}

void
mf_metrics_set_heartbeat_timeout(struct mf_metrics *m, int64_t ms)
{
    if (!m)
        return;
    lock(m);
    m->heartbeat_timeout_ms = ms > 0 ? ms : MF_METRICS_HEARTBEAT_TIMEOUT_MS;
    unlock(m);
}

int
mf_metrics_healthz(struct mf_metrics *m, char *reason, size_t n)
{
    int64_t age;
    int code = 200;

    if (!m) {
        snprintf(reason, n, "no metrics registry");
        return 503;
    }
    lock(m);
    age = now_ms(m) - m->heartbeat_ms;
    if (age > m->heartbeat_timeout_ms) {
        snprintf(reason, n, "run loop stalled: no heartbeat for %lld s",
                 (long long)(age / 1000));
        code = 503;
    } else {
        snprintf(reason, n, "ok");
    }
    unlock(m);
    return code;
}

void
mf_metrics_set_clock(struct mf_metrics *m, int64_t (*fn)(void *ud), void *ud)
{
    if (!m)
        return;
    lock(m);
    m->now_fn = fn ? fn : mono_ms;
    m->now_ud = fn ? ud : NULL;
    m->heartbeat_ms = now_ms(m);
    unlock(m);
}

static struct status *
status_find(struct status_list *l, const char *name)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        if (strcmp(l->v[i].name, name) == 0)
            return &l->v[i];
    return NULL;
}

/* Set an entry; with only_new, leave an existing one as it is. */
static void
status_put(struct mf_metrics *m, enum mf_metrics_kind kind, const char *name,
           bool ok, const char *reason, int64_t valid_ms, bool only_new)
{
    struct status_list *l;
    struct status *e;
    char *nm;

    if (!m || (kind != MF_METRICS_TENANT && kind != MF_METRICS_OUTPUT))
        return;
    nm = sanitize_dup(name, STATUS_NAME_MAX);
    lock(m);
    l = &m->st[kind];
    if ((e = status_find(l, nm)) != NULL) {
        free(nm);
        if (only_new) {
            unlock(m);
            return;
        }
        free(e->reason);
    } else {
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 8;
            l->v = mf_xrealloc(l->v, l->cap * sizeof(*l->v));
        }
        e = &l->v[l->n++];
        e->name = nm;
    }
    e->ok = ok;
    e->reason = reason && *reason ? sanitize_dup(reason, REASON_MAX) : NULL;
    e->set_ms = now_ms(m);
    e->valid_ms = valid_ms > 0 ? valid_ms : 0;
    unlock(m);
}

void
mf_metrics_status_set(struct mf_metrics *m, enum mf_metrics_kind kind,
                      const char *name, bool ok, const char *reason,
                      int64_t valid_ms)
{
    status_put(m, kind, name, ok, reason, valid_ms, false);
}

void
mf_metrics_status_add(struct mf_metrics *m, enum mf_metrics_kind kind,
                      const char *name)
{
    status_put(m, kind, name, true, NULL, 0, true);
}

void
mf_metrics_status_remove(struct mf_metrics *m, enum mf_metrics_kind kind,
                         const char *name)
{
    char nm[STATUS_NAME_MAX + 1];
    struct status_list *l;
    struct status *e;

    if (!m || (kind != MF_METRICS_TENANT && kind != MF_METRICS_OUTPUT))
        return;
    sanitize(name, nm, STATUS_NAME_MAX);
    lock(m);
    l = &m->st[kind];
    if ((e = status_find(l, nm)) != NULL) {
        size_t i = (size_t)(e - l->v);

        free(e->name);
        free(e->reason);
        memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
        l->n--;
    }
    unlock(m);
}

void
mf_metrics_set_draining(struct mf_metrics *m, bool draining)
{
    if (!m)
        return;
    lock(m);
    m->draining = draining;
    unlock(m);
}

/* Under the lock: append the entries of one kind; false if any is not ok. */
static bool
put_status_list(struct mf_buf *b, const struct status_list *l, int64_t now)
{
    bool all = true;
    size_t i;

    mf_buf_appendc(b, '[');
    for (i = 0; i < l->n; i++) {
        const struct status *e = &l->v[i];
        bool ok = e->ok;
        char stale[96];
        const char *reason = e->reason;

        if (ok && e->valid_ms > 0 && now - e->set_ms > e->valid_ms) {
            ok = false;
            snprintf(stale, sizeof(stale), "no successful update for %lld s",
                     (long long)((now - e->set_ms) / 1000));
            reason = stale;
        } else if (!ok && !reason) {
            reason = "not ok";
        }
        all = all && ok;
        mf_buf_appends(b, i ? ",{\"name\":" : "{\"name\":");
        mf_json_write_str(b, e->name, strlen(e->name));
        mf_buf_appends(b, ok ? ",\"ok\":true,\"reason\":"
                             : ",\"ok\":false,\"reason\":");
        if (reason)
            mf_json_write_str(b, reason, strlen(reason));
        else
            mf_buf_appends(b, "null");
        mf_buf_appendc(b, '}');
    }
    mf_buf_appendc(b, ']');
    return all;
}

char *
mf_metrics_readyz(struct mf_metrics *m, int *status, size_t *len)
{
    struct mf_buf body, b;
    const char *why = NULL;
    bool tenants_ok, outputs_ok;
    int64_t now;
    int dummy;

    if (!status)
        status = &dummy;
    mf_buf_init(&body, 0);
    mf_buf_init(&b, 0);
    if (!m) {
        mf_buf_appends(&b, "{\"ready\":false,"
                           "\"reason\":\"no metrics registry\","
                           "\"tenants\":[],\"outputs\":[]}");
        *status = 503;
        goto done;
    }
    lock(m);
    now = now_ms(m);
    mf_buf_appends(&body, ",\"tenants\":");
    tenants_ok = put_status_list(&body, &m->st[MF_METRICS_TENANT], now);
    mf_buf_appends(&body, ",\"outputs\":");
    outputs_ok = put_status_list(&body, &m->st[MF_METRICS_OUTPUT], now);
    if (m->draining)
        why = "draining";
    else if (m->st[MF_METRICS_TENANT].n == 0)
        why = "no tenant is collecting yet";
    else if (!tenants_ok)
        why = "a tenant is not collecting";
    else if (!outputs_ok)
        why = "an output is not delivering";
    unlock(m);
    mf_buf_appends(&b, why ? "{\"ready\":false,\"reason\":"
                           : "{\"ready\":true");
    if (why)
        mf_json_write_str(&b, why, strlen(why));
    mf_buf_append(&b, body.data, body.len);
    mf_buf_appendc(&b, '}');
    *status = why ? 503 : 200;
done:
    mf_buf_fini(&body);
    if (len)
        *len = b.len;
    return b.data;
}

/* ---- listener ------------------------------------------------------------ */

struct mf_metrics_server {
    struct mf_metrics *m;
    struct MHD_Daemon *d;
    int port;
    char last_error[256];       /* MHD messages during start-up */
    atomic_bool started;        /* read by the MHD thread */
};

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct mf_metrics_server *s = cls;
    char msg[256];
    size_t n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '.'))
        msg[--n] = '\0';
    if (!atomic_load(&s->started))
        snprintf(s->last_error, sizeof(s->last_error), "%s", msg);
    else
        mf_log(MF_LOG_DEBUG, "metrics listener: %s", msg);
}

static enum MHD_Result
reply(struct MHD_Connection *c, unsigned code, const char *ctype, char *body,
      size_t len)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static char *
text_body(const char *s, size_t *len)
{
    size_t n = strlen(s);
    char *p = mf_xmalloc(n + 2);

    memcpy(p, s, n);
    p[n] = '\n';
    p[n + 1] = '\0';
    *len = n + 1;
    return p;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url,
       const char *method, const char *version, const char *upload_data,
       size_t *upload_data_size, void **con_cls)
{
    static const char text[] = "text/plain; charset=utf-8";
    struct mf_metrics_server *s = cls;
    char reason[160];
    size_t len;
    char *body;
    int code;

    (void)version;
    (void)upload_data;
    (void)con_cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
        strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        *upload_data_size = 0;
        body = text_body("method not allowed", &len);
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, text, body, len);
    }
    if (strcmp(url, "/metrics") == 0) {
        body = mf_metrics_render(s->m, &len);
        return reply(c, MHD_HTTP_OK,
                     "text/plain; version=0.0.4; charset=utf-8", body, len);
    }
    if (strcmp(url, "/healthz") == 0) {
        code = mf_metrics_healthz(s->m, reason, sizeof(reason));
        body = text_body(reason, &len);
        return reply(c, (unsigned)code, text, body, len);
    }
    if (strcmp(url, "/readyz") == 0) {
        body = mf_metrics_readyz(s->m, &code, &len);
        return reply(c, (unsigned)code, "application/json", body, len);
    }
    body = text_body("not found (try /metrics, /healthz, /readyz)", &len);
    return reply(c, MHD_HTTP_NOT_FOUND, text, body, len);
}

/* "host:port" or "[v6]:port" into host and port text; -1 when malformed. */
static int
split_listen(const char *listen, char *host, size_t hn, char *port, size_t pn)
{
    const char *colon, *h = listen;
    size_t hl;
    const char *p;

    if (!listen || !*listen)
        return -1;
    if (listen[0] == '[') {
        const char *end = strchr(listen, ']');

        if (!end || end[1] != ':')
            return -1;
        h = listen + 1;
        hl = (size_t)(end - h);
        colon = end + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || memchr(listen, ':', (size_t)(colon - listen)))
            return -1;
        hl = (size_t)(colon - listen);
    }
    if (hl == 0 || hl >= hn || !colon[1] || strlen(colon + 1) >= pn ||
        strlen(colon + 1) > 5)
        return -1;
    for (p = colon + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    if (atoi(colon + 1) > 65535)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    strcpy(port, colon + 1);
    return 0;
}

/* Idle connections (a prober that leaks keep-alives, a scanner) are
 * dropped after LISTEN_IDLE_S, and up to LISTEN_MAX_CONNS are served by
 * one polling thread (epoll), with no per-address limit: /healthz from
 * the same host as the idle ones still answers. */
#define LISTEN_MAX_CONNS 512
#define LISTEN_IDLE_S    5

static bool
addr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

        return IN6_IS_ADDR_LOOPBACK(a) ||
               (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

struct mf_metrics_server *
mf_metrics_server_start(struct mf_metrics *m, const char *listen, char *err,
                        size_t errsz)
{
    struct mf_metrics_server *s;
    struct addrinfo hints, *res = NULL, *ai;
    char host[256], port[8], dummy[2];
    const union MHD_DaemonInfo *info;
    sigset_t all, old;
    bool loopback = false;
    int rc;

    if (!err) {
        err = dummy;
        errsz = sizeof(dummy);
    }
    if (!m) {
        snprintf(err, errsz, "metrics listener: no registry");
        return NULL;
    }
    if (split_listen(listen, host, sizeof(host), port, sizeof(port)) != 0) {
        snprintf(err, errsz, "metrics listener: '%s' is not host:port "
                 "([IPv6]:port for IPv6)", listen ? listen : "");
        return NULL;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc == EAI_NONAME || rc == EAI_ADDRFAMILY) {
        /* AI_ADDRCONFIG hides loopback-only families on some hosts */
        hints.ai_flags = AI_NUMERICSERV;
        rc = getaddrinfo(host, port, &hints, &res);
    }
    if (rc != 0) {
        snprintf(err, errsz, "metrics listener: cannot resolve '%s': %s",
                 host, gai_strerror(rc));
        return NULL;
    }
    s = mf_xcalloc(1, sizeof(*s));
    s->m = m;
    /* MHD's thread inherits this mask: signals (SIGTERM, SIGHUP) always go
     * to the collector's thread, whose poll they interrupt. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (ai = res; ai && !s->d; ai = ai->ai_next) {
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
                         MHD_USE_ERROR_LOG;

        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        if (ai->ai_family == AF_INET6)
            flags |= MHD_USE_IPv6;
        loopback = addr_is_loopback(ai->ai_addr);
        s->last_error[0] = '\0';
        s->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, s,
                   MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                   MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                   MHD_OPTION_CONNECTION_LIMIT, (unsigned)LISTEN_MAX_CONNS,
                   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)LISTEN_IDLE_S,
                   MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768,
                   MHD_OPTION_END);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    freeaddrinfo(res);
    if (!s->d) {
        snprintf(err, errsz, "metrics listener: cannot listen on %s: %s",
                 listen, s->last_error[0] ? s->last_error
                                          : "address in use or not available");
        free(s);
        return NULL;
    }
    atomic_store(&s->started, true);
    info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? (int)info->port : atoi(port);
    mf_log(MF_LOG_INFO, "metrics: serving /metrics, /healthz, /readyz on "
           "%s%s%s:%d", strchr(host, ':') ? "[" : "", host,
           strchr(host, ':') ? "]" : "", s->port);
    if (!loopback)
        mf_log(MF_LOG_WARN, "metrics: the listener on %s is reachable beyond loopback "
               "and has no authentication: keep it on a private network or behind a "
               "firewall (metrics.listen)", listen);
    return s;
}

int
mf_metrics_server_port(const struct mf_metrics_server *s)
{
    return s ? s->port : -1;
}

void
mf_metrics_server_stop(struct mf_metrics_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->d);
    free(s);
}

/* ---- configuration: the `metrics` section --------------------------- */

#define MET(f) offsetof(struct mf_metrics_conf, f)
static const struct mf_option metrics_opts[] = {
    {.name = "enabled", .type = MF_OPT_BOOL, .def = "false",
     .offset = MET(enabled), .reload = MF_RELOAD_LIVE,
     .desc = "Serve `/metrics` (Prometheus text format), `/healthz` and "
             "`/readyz` over HTTP."},
    {.name = "listen", .type = MF_OPT_STR, .def = "127.0.0.1:9465",
     .offset = MET(listen), .check = mf_check_hostport,
     .reload = MF_RELOAD_LIVE,
     .desc = "Address and port of the listener (`[::1]:9465` for IPv6). It "
             "has no authentication: keep it on loopback or a private "
             "network."},
    {.name = NULL},
};

const struct mf_optsec mf_metrics_sec = {
    .name = "metrics",
    .desc = "Metrics and health endpoints. A reload applies a change at "
            "once: the listener moves, starts or stops.",
    .opts = metrics_opts,
    .size = sizeof(struct mf_metrics_conf),
};
