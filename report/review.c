/* review.c - the review of a period, computed from the aggregate, as the
 * JSON document every renderer reads (schema m365fwd.report/1, described
 * in docs/report.md).
 *
 * Score of an area (docs/report.md "Score"):
 *   points = sum over the area's tag hits of w(severity),
 *            w = 0 (info), 1 (low), 4 (medium), 16 (high), 64 (critical)
 *   score  = min(100, round(25 * log10(1 + points)))
 * monitor.collection_gap counts under Coverage, not in a score.
 */
#include "agg_int.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "mem.h"

#define TOP_SHOWN      10     /* actors, objects, events, findings per area */
#define COVERAGE_TAG   "monitor.collection_gap"
#define MAX_WEEKS      60

static const char *const score_formula =
    "score = min(100, round(25 * log10(1 + points))); points = sum over the area's tag "
    "hits of w(severity), w = 0 info, 1 low, 4 medium, 16 high, 64 critical";

/* ---- JSON helpers ------------------------------------------------------- */

struct bld {
    struct mf_arena *a;
    const struct mf_agg *agg;
    const struct mf_report_tables *t;
    const struct mf_report_catalog *cat;
    const struct mf_review_opts *o;
    bool *sel;                 /* selected tenants (by index) */
};

static void
put_str(struct bld *b, struct mf_jval *obj, const char *k, const char *v)
{
    mf_jobj_add_ref(b->a, obj, k, strlen(k), v ? mf_jstr(b->a, v) : mf_jnull(b->a));
}

static void
put_int(struct bld *b, struct mf_jval *obj, const char *k, int64_t v)
{
    mf_jobj_add_ref(b->a, obj, k, strlen(k), mf_jint(b->a, v));
}

static void
put(struct bld *b, struct mf_jval *obj, const char *k, struct mf_jval *v)
{
    mf_jobj_add_ref(b->a, obj, k, strlen(k), v);
}

static const char *
day_str(struct bld *b, int64_t day)
{
    char buf[16];

    mf_report_fmt_day(day, buf, sizeof(buf));
    return mf_arena_strdup(b->a, buf);
}

static const char *
time_str(struct bld *b, int64_t ms)
{
    char buf[40];

    mf_clock_fmt_iso(ms, MF_UTC_Z, buf, sizeof(buf));
    return mf_arena_strdup(b->a, buf);
}

/* ---- days ---------------------------------------------------------------- */

int
mf_report_parse_day(const char *s, int64_t *day)
{
    int64_t ms;

    /* a date alone, written in full (the parser refuses days that do not
     * exist) */
    if (!s || strlen(s) != 10 || mf_time_parse(s, &ms) != 0 || ms < 0)
        return -1;
    *day = ms / 86400000;
    return 0;
}

void
mf_report_fmt_day(int64_t day, char *buf, size_t n)
{
    char t[40];

    mf_clock_fmt_utc(day * 86400000, t, sizeof(t));
    snprintf(buf, n, "%.10s", t);
}

/* ---- sums over the period --------------------------------------------- */

struct sums {
    uint64_t records, tagged;
    uint64_t ct[AGG_N_CT];
    uint64_t facts[MF_FACT_COUNT];
    uint64_t (*tags)[5];       /* by tag index */
    uint64_t area_hits[MF_RAREA_COUNT];
    uint64_t area_points[MF_RAREA_COUNT];
    uint64_t *agg_hits;        /* instances over the threshold, by aggregate */
};

static bool
in_period(const struct bld *b, int64_t day)
{
    return day >= b->o->day_from && day <= b->o->day_to;
}

static void
sums_init(struct bld *b, struct sums *s)
{
    memset(s, 0, sizeof(*s));
    s->tags = mf_arena_calloc(b->a, (b->agg->n_tag_ids + 1) * sizeof(*s->tags));
    s->agg_hits = mf_arena_calloc(b->a, (b->t->n_aggs + 1) * sizeof(*s->agg_hits));
}

static bool
burst_hit(const struct rt_aggdef *g, const struct agg_burst_ent *e)
{
    return (g->min_count && e->n >= g->min_count) ||
           (g->min_distinct && e->nd >= g->min_distinct);
}

static void
sums_day(struct bld *b, struct sums *s, const struct agg_day *d, int64_t from, int64_t to)
{
    const struct mf_agg *a = b->agg;

    if (d->day < from || d->day > to)
        return;
    for (int c = 0; c < AGG_N_CT; c++) {
        s->records += d->ct_records[c];
        s->tagged += d->ct_tagged[c];
        s->ct[c] += d->ct_records[c];
    }
    for (int f = 0; f < MF_FACT_COUNT; f++)
        s->facts[f] += d->facts[f];
    for (size_t i = 0; i < d->n_tags; i++)
        for (int v = 0; v < 5; v++) {
            uint64_t n = d->tags[i].n[v];

            if (!n)
                continue;
            s->tags[i][v] += n;
            if (strcmp(a->tag_ids[i], COVERAGE_TAG) == 0)
                continue;
            s->area_hits[a->tag_area[i]] += n;
            s->area_points[a->tag_area[i]] += n * mf_agg_weight[v + 1];
        }
    for (size_t g = 0; g < b->t->n_aggs; g++)
        for (size_t i = 0; i < d->bursts[g].n; i++)
            if (burst_hit(&b->t->aggs[g], &d->bursts[g].e[i]))
                s->agg_hits[g]++;
}

/* Sums over [from, to] of the selected tenants (tenant >= 0: that one). */
static void
sums_range(struct bld *b, struct sums *s, int64_t from, int64_t to, int tenant)
{
    sums_init(b, s);
    for (size_t i = 0; i < b->agg->n_tenants; i++) {
        const struct agg_tenant *t = &b->agg->tenants[i];

        if (!b->sel[i] || (tenant >= 0 && (size_t)tenant != i))
            continue;
        for (size_t j = 0; j < t->n_days; j++)
            sums_day(b, s, t->days[j], from, to);
    }
}

static int
score_of(uint64_t points)
{
    double v = floor(25.0 * log10(1.0 + (double)points) + 0.5);

    return v > 100 ? 100 : (int)v;
}

static const char *
level_of(int score)
{
    return score == 0 ? "none" : score < 30 ? "low" : score < 60 ? "elevated"
           : score < 80 ? "high" : "critical";
}

/* ---- expression values -------------------------------------------------- */

static double
sum_value(void *ud, int op, int idx, const char *tag)
{
    struct sums *s = ((void **)ud)[0];
    const struct mf_agg *a = ((void **)ud)[1];
    uint64_t v = 0;

    switch (op) {
    case RX_RECORDS:
        return (double)s->records;
    case RX_FACT:
        return (double)s->facts[idx];
    case RX_AGG:
        return (double)s->agg_hits[idx];
    case RX_AREA:
        return (double)s->area_hits[idx];
    case RX_CT:
        return (double)s->ct[idx];
    case RX_TAG:
        for (size_t i = 0; i < a->n_tag_ids; i++)
            if (strcmp(a->tag_ids[i], tag) == 0)
                for (int k = 0; k < 5; k++)
                    v += s->tags[i][k];
        return (double)v;
    default:
        return 0;
    }
}

/* Texts: {evidence} and {quantity} (checks), {key} {count} {distinct}
 * {day} (aggregates). */
struct tvars {
    double evidence;
    const char *key, *day;
    uint64_t count, distinct;
};

static const char *
render_text(struct bld *b, const char *tmpl, struct sums *s, const struct tvars *v)
{
    struct mf_buf out;
    const char *res;
    void *ud[2] = {s, (void *)b->agg};

    mf_buf_init(&out, 0);
    for (const char *p = tmpl; *p;) {
        const char *o = strchr(p, '{'), *e;
        struct rx_node ref;
        size_t n;

        if (!o || !(e = strchr(o, '}'))) {
            mf_buf_appends(&out, p);
            break;
        }
        mf_buf_append(&out, p, (size_t)(o - p));
        n = (size_t)(e - o - 1);
        if (n == 8 && strncmp(o + 1, "evidence", 8) == 0)
            mf_buf_printf(&out, "%.0f", v->evidence);
        else if (n == 3 && strncmp(o + 1, "key", 3) == 0)
            mf_buf_appends(&out, v->key ? v->key : "");
        else if (n == 3 && strncmp(o + 1, "day", 3) == 0)
            mf_buf_appends(&out, v->day ? v->day : "");
        else if (n == 5 && strncmp(o + 1, "count", 5) == 0)
            mf_buf_printf(&out, "%llu", (unsigned long long)v->count);
        else if (n == 8 && strncmp(o + 1, "distinct", 8) == 0)
            mf_buf_printf(&out, "%llu", (unsigned long long)v->distinct);
        else if (s && mf_rx_ref(b->t, o + 1, n, &ref) == 0) {
            char tag[160];

            if (ref.op == RX_TAG) {
                snprintf(tag, sizeof(tag), "%.*s", (int)n - 4, o + 5);
                ref.tag = tag;
            }
            mf_buf_printf(&out, "%.0f", sum_value(ud, ref.op, ref.idx, ref.tag));
        } else {
            mf_buf_append(&out, o, n + 2);
        }
        p = e + 1;
    }
    res = mf_arena_strdup(b->a, out.data ? out.data : "");
    mf_buf_fini(&out);
    return res;
}

/* ---- events --------------------------------------------------------------- */

static int
cmp_event_ptr(const void *x, const void *y)
{
    return mf_agg_event_cmp(*(const struct agg_event *const *)x,
                            *(const struct agg_event *const *)y);
}

static struct mf_jval *
event_json(struct bld *b, const struct agg_event *e)
{
    struct mf_jval *o = mf_jobj(b->a), *tags = mf_jarr(b->a);

    put_str(b, o, "time", time_str(b, e->time_ms));
    put_int(b, o, "severity", e->sev);
    put_str(b, o, "tenant", e->tenant);
    put_str(b, o, "actor", e->actor);
    put_str(b, o, "operation", e->operation);
    put_str(b, o, "object", e->object);
    put_str(b, o, "client_ip", e->client_ip);
    put_str(b, o, "user_agent", e->user_agent);
    put_str(b, o, "workload", e->workload);
    put_str(b, o, "content_type", e->content_type);
    put_str(b, o, "record_id", e->record_id);
    for (const char *p = e->tags; p && *p;) {
        const char *sp = strchr(p, ' '), *colon;
        size_t n = sp ? (size_t)(sp - p) : strlen(p);
        struct mf_jval *t = mf_jobj(b->a);
        char id[160];
        int sev = 0;

        colon = memchr(p, ':', n);
        snprintf(id, sizeof(id), "%.*s", (int)(colon ? colon - p : (ptrdiff_t)n), p);
        if (colon)
            sev = atoi(colon + 1);
        put_str(b, t, "id", id);
        put_int(b, t, "severity", sev);
        mf_jarr_push(b->a, tags, t);
        p += n;
        while (*p == ' ')
            p++;
    }
    put(b, o, "tags", tags);
    return o;
}

/* The most severe, newest events of lists picked by fn over the period. */
typedef const struct agg_events *(*pick_fn)(const struct agg_day *d, void *ud);

static struct mf_jval *
events_json(struct bld *b, pick_fn fn, void *ud, size_t max)
{
    const struct agg_event **all = NULL;
    size_t n = 0, cap = 0;
    struct mf_jval *arr = mf_jarr(b->a);

    for (size_t i = 0; i < b->agg->n_tenants; i++) {
        const struct agg_tenant *t = &b->agg->tenants[i];

        for (size_t j = 0; b->sel[i] && j < t->n_days; j++) {
            const struct agg_events *l;

            if (!in_period(b, t->days[j]->day) || !(l = fn(t->days[j], ud)))
                continue;
            for (size_t k = 0; k < l->n; k++) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 64;
                    all = mf_xrealloc(all, cap * sizeof(*all));
                }
                all[n++] = &l->e[k];
            }
        }
    }
    if (n)
        qsort(all, n, sizeof(*all), cmp_event_ptr);
    for (size_t i = 0, shown = 0; i < n && shown < max; i++) {
        /* the same record may be kept in several lists */
        if (i && all[i - 1]->record_id && all[i]->record_id &&
            strcmp(all[i - 1]->record_id, all[i]->record_id) == 0 &&
            all[i - 1]->time_ms == all[i]->time_ms)
            continue;
        mf_jarr_push(b->a, arr, event_json(b, all[i]));
        shown++;
    }
    free(all);
    return arr;
}

static const struct agg_events *
pick_area(const struct agg_day *d, void *ud)
{
    return &d->events[*(int *)ud];
}

/* ---- top lists ---------------------------------------------------------- */

struct topx {
    const char *key;
    uint64_t n, risk;
    int max_sev;
};

static int
cmp_topx_key(const void *x, const void *y)
{
    return strcmp(((const struct topx *)x)->key, ((const struct topx *)y)->key);
}

static int
cmp_topx_risk(const void *x, const void *y)
{
    const struct topx *a = x, *b = y;

    if (a->risk != b->risk)
        return a->risk > b->risk ? -1 : 1;
    if (a->n != b->n)
        return a->n > b->n ? -1 : 1;
    return strcmp(a->key, b->key);
}

static struct mf_jval *
top_json(struct bld *b, int kind, int area)
{
    struct topx *all = NULL;
    size_t n = 0, cap = 0, m = 0;
    struct mf_jval *arr = mf_jarr(b->a);

    for (size_t i = 0; i < b->agg->n_tenants; i++) {
        const struct agg_tenant *t = &b->agg->tenants[i];

        for (size_t j = 0; b->sel[i] && j < t->n_days; j++) {
            const struct agg_top *tp = &t->days[j]->tops[kind][area];

            if (!in_period(b, t->days[j]->day))
                continue;
            for (size_t k = 0; k < tp->n; k++) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 64;
                    all = mf_xrealloc(all, cap * sizeof(*all));
                }
                all[n++] = (struct topx){tp->e[k].key, tp->e[k].n, tp->e[k].risk,
                                         tp->e[k].max_sev};
            }
        }
    }
    if (n) {
        qsort(all, n, sizeof(*all), cmp_topx_key);
        for (size_t i = 0; i < n; i++) {
            if (m && strcmp(all[m - 1].key, all[i].key) == 0) {
                all[m - 1].n += all[i].n;
                all[m - 1].risk += all[i].risk;
                if (all[i].max_sev > all[m - 1].max_sev)
                    all[m - 1].max_sev = all[i].max_sev;
            } else {
                all[m++] = all[i];
            }
        }
        qsort(all, m, sizeof(*all), cmp_topx_risk);
    }
    for (size_t i = 0, shown = 0; i < m && shown < TOP_SHOWN; i++) {
        struct mf_jval *o;

        if (!all[i].risk)
            break;   /* informational hits only: not a risk */
        o = mf_jobj(b->a);
        shown++;

        put_str(b, o, "name", all[i].key);
        put_int(b, o, "records", (int64_t)all[i].n);
        put_int(b, o, "risk", (int64_t)all[i].risk);
        put_int(b, o, "max_severity", all[i].max_sev);
        mf_jarr_push(b->a, arr, o);
    }
    free(all);
    return arr;
}

/* ---- aggregate findings ------------------------------------------------- */

struct inst {
    int agg;
    const struct agg_tenant *tenant;
    int64_t day;
    const struct agg_burst_ent *e;
};

static int
cmp_inst(const void *x, const void *y)
{
    const struct inst *a = x, *b = y;

    if (a->e->nd != b->e->nd)
        return a->e->nd > b->e->nd ? -1 : 1;
    if (a->e->n != b->e->n)
        return a->e->n > b->e->n ? -1 : 1;
    if (a->day != b->day)
        return a->day > b->day ? -1 : 1;
    if (a->agg != b->agg)
        return a->agg - b->agg;
    if (strcmp(a->e->key, b->e->key))
        return strcmp(a->e->key, b->e->key);
    return strcmp(a->tenant->id, b->tenant->id);
}

static struct mf_jval *
findings_json(struct bld *b, int area, size_t max, uint64_t *total)
{
    struct inst *all = NULL;
    size_t n = 0, cap = 0;
    struct mf_jval *arr = mf_jarr(b->a);

    for (size_t i = 0; i < b->agg->n_tenants; i++) {
        const struct agg_tenant *t = &b->agg->tenants[i];

        for (size_t j = 0; b->sel[i] && j < t->n_days; j++) {
            const struct agg_day *d = t->days[j];

            if (!in_period(b, d->day))
                continue;
            for (size_t g = 0; g < b->t->n_aggs; g++) {
                if (b->t->aggs[g].area != area)
                    continue;
                for (size_t k = 0; k < d->bursts[g].n; k++) {
                    if (!burst_hit(&b->t->aggs[g], &d->bursts[g].e[k]))
                        continue;
                    if (n == cap) {
                        cap = cap ? cap * 2 : 16;
                        all = mf_xrealloc(all, cap * sizeof(*all));
                    }
                    all[n++] = (struct inst){(int)g, t, d->day, &d->bursts[g].e[k]};
                }
            }
        }
    }
    *total = n;
    if (n)
        qsort(all, n, sizeof(*all), cmp_inst);
    for (size_t i = 0; i < n && i < max; i++) {
        const struct rt_aggdef *g = &b->t->aggs[all[i].agg];
        struct mf_jval *o = mf_jobj(b->a);
        struct tvars v = {.key = all[i].e->key, .day = day_str(b, all[i].day),
                          .count = all[i].e->n, .distinct = all[i].e->nd};

        put_str(b, o, "id", g->id);
        put_str(b, o, "title", g->title);
        put_int(b, o, "severity", g->severity);
        put_str(b, o, "tenant", all[i].tenant->name);
        put_str(b, o, "day", v.day);
        put_str(b, o, "key", all[i].e->key);
        put_int(b, o, "count", (int64_t)all[i].e->n);
        put_int(b, o, "distinct", (int64_t)all[i].e->nd);
        put_str(b, o, "text", render_text(b, g->text, NULL, &v));
        mf_jarr_push(b->a, arr, o);
    }
    free(all);
    return arr;
}

/* ---- sections ----------------------------------------------------------- */

struct tagrow {
    int idx;
    uint64_t count;
    int max_sev;
    const char *id;
};

static int
cmp_tagrow(const void *x, const void *y)
{
    const struct tagrow *a = x, *b = y;

    if (a->max_sev != b->max_sev)
        return a->max_sev > b->max_sev ? -1 : 1;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    return strcmp(a->id, b->id);
}

static struct mf_jval *
tags_json(struct bld *b, const struct sums *s, int area)
{
    struct mf_jval *arr = mf_jarr(b->a);
    struct tagrow *rows = mf_xcalloc(b->agg->n_tag_ids + 1, sizeof(*rows));
    size_t n = 0;

    for (size_t i = 0; i < b->agg->n_tag_ids; i++) {
        struct tagrow r = {(int)i, 0, 0, b->agg->tag_ids[i]};

        if (b->agg->tag_area[i] != area)
            continue;
        for (int v = 0; v < 5; v++)
            if (s->tags[i][v]) {
                r.count += s->tags[i][v];
                r.max_sev = v + 1;
            }
        if (r.count)
            rows[n++] = r;
    }
    qsort(rows, n, sizeof(*rows), cmp_tagrow);
    for (size_t i = 0; i < n; i++) {
        const char *id = b->agg->tag_ids[rows[i].idx];
        const struct mf_report_tagdef *def = mf_report_catalog_find(b->cat, id);
        struct mf_jval *o = mf_jobj(b->a), *bys = mf_jarr(b->a);

        put_str(b, o, "id", id);
        put_str(b, o, "title", def ? def->title : id);
        put_int(b, o, "count", (int64_t)rows[i].count);
        put_int(b, o, "max_severity", rows[i].max_sev);
        for (int v = 0; v < 5; v++)
            mf_jarr_push(b->a, bys, mf_jint(b->a, (int64_t)s->tags[rows[i].idx][v]));
        put(b, o, "by_severity", bys);
        mf_jarr_push(b->a, arr, o);
    }
    free(rows);
    return arr;
}

/* The weeks of the period, newest last, each 7 days ending on day_to - 7k
 * (the oldest may be shorter). */
struct weeks {
    int64_t n;
    int64_t from[MAX_WEEKS], to[MAX_WEEKS];
    struct sums s[MAX_WEEKS];
};

static void
weeks_init(struct bld *b, struct weeks *w)
{
    int64_t days = b->o->day_to - b->o->day_from + 1;

    w->n = (days + 6) / 7;
    if (w->n > MAX_WEEKS)
        w->n = MAX_WEEKS;
    for (int64_t i = 0; i < w->n; i++) {
        int64_t k = w->n - 1 - i;

        w->to[i] = b->o->day_to - 7 * k;
        w->from[i] = w->to[i] - 6 < b->o->day_from ? b->o->day_from : w->to[i] - 6;
        sums_range(b, &w->s[i], w->from[i], w->to[i], -1);
    }
}

static struct mf_jval *
trend_json(struct bld *b, const struct weeks *w, int area)
{
    struct mf_jval *arr = mf_jarr(b->a);

    for (int64_t i = 0; i < w->n; i++) {
        struct mf_jval *o = mf_jobj(b->a);

        put_str(b, o, "from", day_str(b, w->from[i]));
        put_str(b, o, "to", day_str(b, w->to[i]));
        put_int(b, o, "hits", (int64_t)w->s[i].area_hits[area]);
        put_int(b, o, "points", (int64_t)w->s[i].area_points[area]);
        put_int(b, o, "score", score_of(w->s[i].area_points[area]));
        mf_jarr_push(b->a, arr, o);
    }
    return arr;
}

static struct mf_jval *
exposure_json(struct bld *b, struct sums *s, uint64_t *agg_findings)
{
    struct mf_jval *ex = mf_jobj(b->a), *areas = mf_jarr(b->a);
    struct weeks *w = mf_xcalloc(1, sizeof(*w));

    weeks_init(b, w);
    put_str(b, ex, "formula", score_formula);
    for (int ar = 0; ar < MF_RAREA_COUNT; ar++) {
        struct mf_jval *o = mf_jobj(b->a);
        int score = score_of(s->area_points[ar]);
        uint64_t nf;

        put_str(b, o, "area", mf_report_area_name(ar));
        put_str(b, o, "title", mf_report_area_title(ar));
        put_int(b, o, "score", score);
        put_str(b, o, "level", level_of(score));
        put_int(b, o, "points", (int64_t)s->area_points[ar]);
        put_int(b, o, "hits", (int64_t)s->area_hits[ar]);
        put(b, o, "trend", trend_json(b, w, ar));
        put(b, o, "tags", tags_json(b, s, ar));
        put(b, o, "actors", top_json(b, 0, ar));
        put(b, o, "objects", top_json(b, 1, ar));
        put(b, o, "events", events_json(b, pick_area, &ar, TOP_SHOWN));
        put(b, o, "findings", findings_json(b, ar, TOP_SHOWN, &nf));
        put_int(b, o, "findings_total", (int64_t)nf);
        *agg_findings += nf;
        mf_jarr_push(b->a, areas, o);
    }
    put(b, ex, "areas", areas);
    free(w);
    return ex;
}

/* examples of a check: the lists of its evidence keys */
struct expick {
    const struct rt_check *c;
    const struct mf_report_tables *t;
    size_t k;                  /* which list: tags, then facts, then aggs */
};

static const struct agg_events *
pick_example(const struct agg_day *d, void *ud)
{
    struct expick *x = ud;

    if (x->k < x->c->n_ex_tags)
        return &d->ex_tags[x->c->ex_tags[x->k]];
    if (x->k < x->c->n_ex_tags + MF_FACT_COUNT) {
        int f = (int)(x->k - x->c->n_ex_tags);

        return (x->c->ex_facts & (1u << f)) ? &d->ex_facts[f] : NULL;
    }
    return &d->ex_aggs[x->c->ex_aggs[x->k - x->c->n_ex_tags - MF_FACT_COUNT]];
}

static struct mf_jval *
examples_json(struct bld *b, const struct rt_check *c)
{
    struct expick x = {c, b->t, 0};
    struct mf_jval *all = mf_jarr(b->a), *out = mf_jarr(b->a);
    size_t lists = c->n_ex_tags + MF_FACT_COUNT + c->n_ex_aggs;
    size_t max = b->agg->lim.examples_per_key;

    /* the examples of each key, then the most severe and newest of them */
    for (x.k = 0; x.k < lists; x.k++) {
        struct mf_jval *one = events_json(b, pick_example, &x, max);

        for (size_t i = 0; i < one->len; i++)
            mf_jarr_push(b->a, all, one->u.items[i]);
    }
    for (size_t i = 0; i < all->len && out->len < max; i++) {
        const char *rid = mf_jstrv(mf_jobj_get(all->u.items[i], "record_id"));
        bool dup = false;

        for (size_t j = 0; rid && j < out->len; j++)
            if (mf_jstrv(mf_jobj_get(out->u.items[j], "record_id")) &&
                strcmp(mf_jstrv(mf_jobj_get(out->u.items[j], "record_id")), rid) == 0)
                dup = true;
        if (!dup)
            mf_jarr_push(b->a, out, all->u.items[i]);
    }
    return out;
}

struct check_res {
    int status;                /* 0 no evidence, 1 ok, 2 finding */
    double evidence;
    const char *text;
};

static struct mf_jval *
checks_json(struct bld *b, struct sums *s, struct check_res *res)
{
    struct mf_jval *arr = mf_jarr(b->a);
    void *ud[2] = {s, (void *)b->agg};
    static const char *const status_names[] = {"no_evidence", "ok", "finding"};

    for (size_t i = 0; i < b->t->n_checks; i++) {
        const struct rt_check *c = &b->t->checks[i];
        struct mf_jval *o = mf_jobj(b->a);
        struct check_res *r = &res[i];
        struct tvars v = {0};

        r->evidence = mf_rx_eval(&c->evidence, sum_value, ud);
        if (r->evidence < 0)
            r->evidence = 0;
        v.evidence = r->evidence;
        if (c->applies.root >= 0 && mf_rx_eval(&c->applies, sum_value, ud) == 0)
            r->status = 0;
        else
            r->status = mf_rx_eval(&c->when, sum_value, ud) != 0 ? 2 : 1;
        r->text = render_text(b, r->status == 2 ? c->finding : r->status == 1 ? c->ok
                                                                           : c->no_evidence,
                              s, &v);
        put_str(b, o, "id", c->id);
        put_str(b, o, "title", c->title);
        put_str(b, o, "area", mf_report_area_name(c->area));
        put_int(b, o, "severity", c->severity);
        put_str(b, o, "status", status_names[r->status]);
        put_int(b, o, "evidence", r->status == 2 ? (int64_t)r->evidence : 0);
        put_str(b, o, "text", r->text);
        put(b, o, "examples", r->status == 2 ? examples_json(b, c) : mf_jarr(b->a));
        mf_jarr_push(b->a, arr, o);
    }
    return arr;
}

struct act_ref {
    const struct rt_action *a;
    const struct rt_check *c;
    double evidence;
};

static int
cmp_act(const void *x, const void *y)
{
    const struct act_ref *a = x, *b = y;

    if (a->c->severity != b->c->severity)
        return a->c->severity > b->c->severity ? -1 : 1;
    if (a->evidence != b->evidence)
        return a->evidence > b->evidence ? -1 : 1;
    return strcmp(a->c->id, b->c->id);
}

static struct mf_jval *
plan_json(struct bld *b, const struct check_res *res, size_t *n_actions)
{
    static const int horizons[] = {30, 60, 90};
    struct mf_jval *plan = mf_jobj(b->a), *hz = mf_jarr(b->a), *areas = mf_jarr(b->a);
    struct act_ref *acts = mf_xcalloc(b->t->n_actions + 1, sizeof(*acts));
    bool area_has[MF_RAREA_COUNT] = {false};

    *n_actions = 0;
    for (int h = 0; h < 3; h++) {
        struct mf_jval *ho = mf_jobj(b->a), *list = mf_jarr(b->a);
        size_t n = 0;

        for (size_t i = 0; i < b->t->n_actions; i++) {
            const struct rt_action *a = &b->t->actions[i];

            if (a->horizon != horizons[h] || res[a->check].status != 2)
                continue;
            acts[n++] = (struct act_ref){a, &b->t->checks[a->check], res[a->check].evidence};
        }
        qsort(acts, n, sizeof(*acts), cmp_act);
        for (size_t i = 0; i < n; i++) {
            struct mf_jval *o = mf_jobj(b->a);

            put_int(b, o, "priority", (int64_t)(*n_actions + 1));
            put_str(b, o, "action", acts[i].a->action);
            put_str(b, o, "area", mf_report_area_name(acts[i].a->area));
            put_str(b, o, "owner", acts[i].a->owner);
            put_str(b, o, "effort", acts[i].a->effort);
            put_str(b, o, "check", acts[i].c->id);
            put_str(b, o, "finding", acts[i].c->title);
            put_int(b, o, "severity", acts[i].c->severity);
            put_int(b, o, "evidence", (int64_t)acts[i].evidence);
            put_str(b, o, "why", res[acts[i].a->check].text);
            mf_jarr_push(b->a, list, o);
            area_has[acts[i].a->area] = true;
            (*n_actions)++;
        }
        put_int(b, ho, "days", horizons[h]);
        put(b, ho, "actions", list);
        mf_jarr_push(b->a, hz, ho);
    }
    free(acts);
    for (int ar = 0; ar < MF_RAREA_COUNT; ar++) {
        struct mf_jval *o = mf_jobj(b->a);
        size_t ok = 0, none = 0, all = 0;
        struct mf_buf txt;

        mf_buf_init(&txt, 0);
        for (size_t i = 0; i < b->t->n_checks; i++) {
            if (b->t->checks[i].area != ar)
                continue;
            all++;
            ok += res[i].status == 1;
            none += res[i].status == 0;
        }
        put_str(b, o, "area", mf_report_area_name(ar));
        put_str(b, o, "title", mf_report_area_title(ar));
        if (area_has[ar]) {
            put_str(b, o, "status", "actions");
            mf_buf_printf(&txt, "Actions above are backed by the evidence of the period.");
        } else if (ok) {
            put_str(b, o, "status", "in_order");
            mf_buf_printf(&txt, "The records of the period show no gap here: %zu of %zu "
                          "checks found the protections in use%s.", ok, all,
                          none ? " (the others had no evidence)" : "");
        } else {
            put_str(b, o, "status", "no_evidence");
            mf_buf_printf(&txt, "No evidence for this area in the period; nothing is "
                          "planned from guesswork.");
            for (size_t i = 0; i < b->t->n_checks; i++)
                if (b->t->checks[i].area == ar && res[i].status == 0)
                    mf_buf_printf(&txt, " %s", res[i].text);
        }
        put_str(b, o, "text", txt.data ? txt.data : "");
        mf_buf_fini(&txt);
        mf_jarr_push(b->a, areas, o);
    }
    put(b, plan, "horizons", hz);
    put(b, plan, "areas", areas);
    return plan;
}

/* First and last day with records, and days with records, of one content
 * type over the period (first/last -1: none). */
struct ct_span {
    int64_t first, last, days;
};

/* Walk the period's days over the selected tenants: per_day[i] gets the
 * records of day_from + i, ct[] each content type's span. Returns the
 * number of days with records. */
static int64_t
count_days(const struct bld *b, uint64_t *per_day, struct ct_span ct[AGG_N_CT])
{
    int64_t with = 0;

    for (int c = 0; c < AGG_N_CT; c++)
        ct[c].first = ct[c].last = -1, ct[c].days = 0;
    for (int64_t day = b->o->day_from; day <= b->o->day_to; day++) {
        uint64_t n = 0;
        bool seen[AGG_N_CT] = {false};

        for (size_t i = 0; i < b->agg->n_tenants; i++) {
            const struct agg_day *d = mf_agg_find_day(&b->agg->tenants[i], day);

            if (!b->sel[i] || !d)
                continue;
            for (int c = 0; c < AGG_N_CT; c++) {
                n += d->ct_records[c];
                seen[c] |= d->ct_records[c] != 0;
            }
        }
        for (int c = 0; c < AGG_N_CT; c++)
            if (seen[c]) {
                if (ct[c].first < 0)
                    ct[c].first = day;
                ct[c].last = day;
                ct[c].days++;
            }
        per_day[day - b->o->day_from] = n;
        with += n != 0;
    }
    return with;
}

/* The content types' rows (the last one only when it has records); a note
 * for each type without records when others have some. */
static struct mf_jval *
content_types_json(struct bld *b, const struct sums *s, const struct ct_span ct[AGG_N_CT],
                   struct mf_jval *notes)
{
    struct mf_jval *cts = mf_jarr(b->a);
    char buf[400];

    for (int c = 0; c < AGG_N_CT; c++) {
        struct mf_jval *o = mf_jobj(b->a);

        if (c == AGG_N_CT - 1 && !s->ct[c])
            continue;
        put_str(b, o, "content_type", mf_agg_ct_names[c]);
        put_int(b, o, "records", (int64_t)s->ct[c]);
        put_int(b, o, "days", ct[c].days);
        put_str(b, o, "first_day", ct[c].first >= 0 ? day_str(b, ct[c].first) : NULL);
        put_str(b, o, "last_day", ct[c].last >= 0 ? day_str(b, ct[c].last) : NULL);
        mf_jarr_push(b->a, cts, o);
        if (!s->ct[c] && s->records) {
            snprintf(buf, sizeof(buf), "No %s records in the period: what that content type "
                     "would show is unknown, not absent.", mf_agg_ct_names[c]);
            mf_jarr_push(b->a, notes, mf_jstr(b->a, buf));
        }
    }
    return cts;
}

/* One {day, records} row of the period's days. */
static void
day_row(struct bld *b, struct mf_jval *days, int64_t day, uint64_t records)
{
    struct mf_jval *o = mf_jobj(b->a);

    put_str(b, o, "day", day_str(b, day));
    put_int(b, o, "records", (int64_t)records);
    mf_jarr_push(b->a, days, o);
}

/* A row per day of the period into days, and each run of days without
 * records as one {from, to, days} range into empty. */
static void
days_json(struct bld *b, const uint64_t *per_day, int64_t nd, struct mf_jval *days,
          struct mf_jval *empty)
{
    for (int64_t i = 0; i < nd; i++) {
        day_row(b, days, b->o->day_from + i, per_day[i]);
        if (!per_day[i]) {
            int64_t j = i;
            struct mf_jval *r = mf_jobj(b->a);

            while (j + 1 < nd && !per_day[j + 1])
                j++;
            put_str(b, r, "from", day_str(b, b->o->day_from + i));
            put_str(b, r, "to", day_str(b, b->o->day_from + j));
            put_int(b, r, "days", j - i + 1);
            mf_jarr_push(b->a, empty, r);
            for (int64_t k = i + 1; k <= j; k++)
                day_row(b, days, b->o->day_from + k, 0);
            i = j;
        }
    }
}

/* The collection gaps of the selected tenants that overlap the period
 * (tenants named as configured). */
static struct mf_jval *
gaps_json(struct bld *b)
{
    struct mf_jval *gaps = mf_jarr(b->a);

    for (size_t i = 0; i < b->agg->n_gaps; i++) {
        const struct agg_gap *g = &b->agg->gaps[i];
        const char *tname = g->tenant;
        bool selected = false;
        struct mf_jval *o;

        for (size_t k = 0; k < b->agg->n_tenants; k++)
            if (strcmp(b->agg->tenants[k].id, g->tenant) == 0) {
                selected = b->sel[k];
                tname = b->agg->tenants[k].name;
            }
        if (!selected || g->end_ms < b->o->day_from * 86400000 ||
            g->start_ms >= (b->o->day_to + 1) * 86400000)
            continue;
        o = mf_jobj(b->a);
        put_str(b, o, "tenant", tname);
        put_str(b, o, "content_type", g->content_type);
        put_str(b, o, "start", time_str(b, g->start_ms));
        put_str(b, o, "end", time_str(b, g->end_ms));
        put_str(b, o, "reason", g->reason);
        mf_jarr_push(b->a, gaps, o);
    }
    return gaps;
}

/* The notes on what the review does not see: gaps, records rejected or
 * outside the period, no record at all. */
static void
coverage_notes(struct bld *b, const struct sums *s, size_t n_gaps, uint64_t outside,
               struct mf_jval *notes)
{
    char buf[400];

    if (n_gaps) {
        snprintf(buf, sizeof(buf), "%zu collection gaps: the activity in those ranges is "
                 "unknown; silence there is not safety.", n_gaps);
        mf_jarr_push(b->a, notes, mf_jstr(b->a, buf));
    }
    if (b->o->records_rejected) {
        snprintf(buf, sizeof(buf), "%llu records could not be read and are not counted.",
                 (unsigned long long)b->o->records_rejected);
        mf_jarr_push(b->a, notes, mf_jstr(b->a, buf));
    }
    if (outside) {
        snprintf(buf, sizeof(buf), "%llu records fall outside the period and are not "
                 "counted.", (unsigned long long)outside);
        mf_jarr_push(b->a, notes, mf_jstr(b->a, buf));
    }
    if (!s->records)
        mf_jarr_push(b->a, notes, mf_jstr(b->a, "No record in the period: the review has "
                                                "nothing to rest on."));
}

static struct mf_jval *
coverage_json(struct bld *b, const struct sums *s, uint64_t outside)
{
    struct mf_jval *cov = mf_jobj(b->a), *days = mf_jarr(b->a), *empty = mf_jarr(b->a);
    struct mf_jval *notes = mf_jarr(b->a), *cts, *gaps;
    int64_t nd = b->o->day_to - b->o->day_from + 1, with;
    uint64_t *per_day = mf_xcalloc((size_t)nd, sizeof(*per_day));
    struct ct_span ct[AGG_N_CT];

    with = count_days(b, per_day, ct);
    cts = content_types_json(b, s, ct, notes);
    days_json(b, per_day, nd, days, empty);
    gaps = gaps_json(b);
    coverage_notes(b, s, gaps->len, outside, notes);
    put(b, cov, "content_types", cts);
    put_int(b, cov, "days_in_period", nd);
    put_int(b, cov, "days_with_records", with);
    put(b, cov, "days", days);
    put(b, cov, "days_without_records", empty);
    put(b, cov, "gaps", gaps);
    put(b, cov, "notes", notes);
    free(per_day);
    return cov;
}

static struct mf_jval *
tenants_json(struct bld *b)
{
    struct mf_jval *arr = mf_jarr(b->a);

    for (size_t i = 0; i < b->agg->n_tenants; i++) {
        struct mf_jval *o, *sc;
        struct sums s;

        if (!b->sel[i])
            continue;
        sums_range(b, &s, b->o->day_from, b->o->day_to, (int)i);
        o = mf_jobj(b->a);
        sc = mf_jobj(b->a);
        put_str(b, o, "id", b->agg->tenants[i].id);
        put_str(b, o, "name", b->agg->tenants[i].name);
        put_int(b, o, "records", (int64_t)s.records);
        put_int(b, o, "tagged", (int64_t)s.tagged);
        for (int ar = 0; ar < MF_RAREA_COUNT; ar++)
            put_int(b, sc, mf_report_area_name(ar), score_of(s.area_points[ar]));
        put(b, o, "scores", sc);
        mf_jarr_push(b->a, arr, o);
    }
    return arr;
}

struct mf_jval *
mf_review_build(struct mf_arena *arena, const struct mf_agg *agg,
                const struct mf_report_tables *t, const struct mf_report_catalog *cat,
                const struct mf_review_opts *o)
{
    struct bld b = {.a = arena, .agg = agg, .t = t, .cat = cat, .o = o};
    struct mf_jval *doc = mf_jobj(arena), *src = mf_jobj(arena), *per = mf_jobj(arena);
    struct mf_jval *inputs = mf_jarr(arena), *sum = mf_jobj(arena), *cks = mf_jobj(arena);
    struct check_res *res = mf_xcalloc(t->n_checks + 1, sizeof(*res));
    uint64_t agg_findings = 0, outside;
    size_t n_actions = 0, counts[3] = {0};
    int top_area = 0, top_score = -1;
    struct mf_jval *exposure, *checks, *plan, *coverage, *tenants;
    struct sums s;

    b.sel = mf_arena_calloc(arena, agg->n_tenants + 1);
    for (size_t i = 0; i < agg->n_tenants; i++)
        b.sel[i] = !o->tenant || strcmp(o->tenant, agg->tenants[i].id) == 0 ||
                   strcmp(o->tenant, agg->tenants[i].name) == 0;
    sums_range(&b, &s, o->day_from, o->day_to, -1);
    {
        struct sums all;

        /* records of the aggregate outside the period (an export's older
         * days with --days) are named, not silently left out */
        sums_range(&b, &all, INT64_MIN, INT64_MAX, -1);
        outside = o->records_outside + (all.records - s.records);
    }
    tenants = tenants_json(&b);
    exposure = exposure_json(&b, &s, &agg_findings);
    checks = checks_json(&b, &s, res);
    plan = plan_json(&b, res, &n_actions);
    coverage = coverage_json(&b, &s, outside);

    put_str(&b, doc, "schema", "m365fwd.report/1");
    put_str(&b, doc, "generator", o->generator ? o->generator : "m365fwd");
    put_str(&b, doc, "generated_at", time_str(&b, o->now_ms));
    put_str(&b, src, "kind", o->source_kind ? o->source_kind : "export");
    for (size_t i = 0; i < o->n_inputs; i++)
        mf_jarr_push(arena, inputs, mf_jstr(arena, o->inputs[i]));
    put(&b, src, "inputs", inputs);
    put_int(&b, src, "records_read", (int64_t)o->records_read);
    put_int(&b, src, "records_rejected", (int64_t)o->records_rejected);
    put_int(&b, src, "records_outside_period", (int64_t)outside);
    put(&b, doc, "source", src);
    put_str(&b, per, "from", day_str(&b, o->day_from));
    put_str(&b, per, "to", day_str(&b, o->day_to));
    put_int(&b, per, "days", o->day_to - o->day_from + 1);
    put(&b, doc, "period", per);
    put_str(&b, doc, "tenant_filter", o->tenant);
    put(&b, doc, "tenants", tenants);

    for (size_t i = 0; i < t->n_checks; i++)
        counts[res[i].status]++;
    for (int ar = 0; ar < MF_RAREA_COUNT; ar++)
        if (score_of(s.area_points[ar]) > top_score) {
            top_score = score_of(s.area_points[ar]);
            top_area = ar;
        }
    put_int(&b, sum, "records", (int64_t)s.records);
    put_int(&b, sum, "tagged", (int64_t)s.tagged);
    put_int(&b, sum, "aggregate_findings", (int64_t)agg_findings);
    put_int(&b, cks, "finding", (int64_t)counts[2]);
    put_int(&b, cks, "ok", (int64_t)counts[1]);
    put_int(&b, cks, "no_evidence", (int64_t)counts[0]);
    put(&b, sum, "checks", cks);
    put_int(&b, sum, "actions", (int64_t)n_actions);
    put_str(&b, sum, "most_exposed_area", top_score > 0 ? mf_report_area_name(top_area) : NULL);
    put_int(&b, sum, "highest_score", top_score);
    put(&b, doc, "summary", sum);
    put(&b, doc, "exposure", exposure);
    put(&b, doc, "checks", checks);
    put(&b, doc, "plan", plan);
    put(&b, doc, "coverage", coverage);
    free(res);
    return doc;
}
