/* agg.c - counts per tenant and day, bounded by distinct keys.
 *
 * One (tenant, day) holds: records and tagged records per content type,
 * tag hits per severity, fact counts, the riskiest actors and objects per
 * area (space-saving top lists), the most severe events per area, a few
 * examples per evidence key the checks name, and the keys of each
 * aggregate finding (space-saving, with up to AGG_DISTINCT_MAX distinct
 * values per key). Nothing grows with the number of records.
 */
#include "agg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

const char *const mf_agg_ct_names[AGG_N_CT] = {
    "Audit.AzureActiveDirectory", "Audit.Exchange", "Audit.SharePoint", "Audit.General",
    "DLP.All", "other",
};

const uint64_t mf_agg_weight[6] = {0, 0, 1, 4, 16, 64};

/* longest text kept of a key (actor, object, aggregate key) */
#define EV_MAX_TEXT  256
#define EV_MAX_LONG  512

int
mf_agg_ct_index(const char *ct)
{
    for (int i = 0; ct && i < AGG_N_CT - 1; i++)
        if (strcmp(ct, mf_agg_ct_names[i]) == 0)
            return i;
    return AGG_N_CT - 1;
}

uint64_t
mf_agg_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static void
str_free(struct mf_agg *a, char *p)
{
    if (p) {
        a->mem -= strlen(p) + 1;
        free(p);
    }
}

static void
event_free(struct mf_agg *a, struct agg_event *e)
{
    if (a)
        a->mem -= e->blk_len;
    free(e->blk);
    e->blk = NULL;
    e->blk_len = 0;
}

/* Length kept of s (at most max bytes, cut on a character boundary);
 * *cut when it was cut (an ellipsis follows). */
static size_t
cap_len(const char *s, size_t max, bool *cut)
{
    size_t n;

    *cut = false;
    if (!s || !*s)
        return 0;
    n = strnlen(s, max + 1);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
        *cut = true;
    }
    return n;
}

/* "id:sev id:sev ..." of r's tags into buf. */
static void
tags_text(const struct mf_report_rec *r, char *tags, size_t tsz)
{
    size_t off = 0;

    tags[0] = '\0';
    for (size_t i = 0; i < r->n_tags && r->tags[i].id; i++) {
        int n = snprintf(tags + off, tsz - off, "%s%s:%d", off ? " " : "", r->tags[i].id,
                         r->tags[i].severity);

        if (n < 0 || (size_t)n >= tsz - off) {
            tags[off] = '\0';
            break;
        }
        off += (size_t)n;
    }
}

/* The texts of ev copied into one block for dst. */
static void
event_copy(struct mf_agg *a, struct agg_event *dst, const struct agg_event *ev)
{
    char tags[1024];
    const char *src[10] = {ev->tenant, ev->actor, ev->operation, ev->object, ev->client_ip,
                           ev->user_agent, ev->record_id, ev->workload, ev->content_type,
                           ev->tags};
    static const size_t max[10] = {128, 256, 128, 512, 64, 256, 128, 64, 64, 1024};
    char **out[10] = {&dst->tenant, &dst->actor, &dst->operation, &dst->object,
                      &dst->client_ip, &dst->user_agent, &dst->record_id, &dst->workload,
                      &dst->content_type, &dst->tags};
    size_t len[10], total = 0;
    bool cut[10];
    char *p;

    if (!ev->tags && ev->src) {
        tags_text(ev->src, tags, sizeof(tags));
        src[9] = tags;
    }

    for (int i = 0; i < 10; i++) {
        len[i] = cap_len(src[i], max[i], &cut[i]);
        if (len[i])
            total += len[i] + 1 + (cut[i] ? 3 : 0);
    }
    dst->time_ms = ev->time_ms;
    dst->sev = ev->sev;
    dst->src = NULL;
    dst->blk = p = total ? mf_xmalloc(total) : NULL;
    dst->blk_len = total;
    a->mem += total;
    for (int i = 0; i < 10; i++) {
        if (!len[i]) {
            *out[i] = NULL;
            continue;
        }
        *out[i] = p;
        memcpy(p, src[i], len[i]);
        p += len[i];
        if (cut[i]) {
            memcpy(p, "\xE2\x80\xA6", 3);    /* U+2026 */
            p += 3;
        }
        *p++ = '\0';
    }
}

/* A copy of s cut to max bytes (and marked with an ellipsis when cut). */
static char *
dup_cap(struct mf_agg *a, const char *s, size_t max)
{
    bool cut;
    size_t n = cap_len(s, max, &cut);
    char *p;

    if (!n)
        return NULL;
    p = mf_xmalloc(n + (cut ? 4 : 1));
    memcpy(p, s, n);
    if (cut)
        memcpy(p + n, "\xE2\x80\xA6", 3);    /* U+2026 */
    p[n + (cut ? 3 : 0)] = '\0';
    a->mem += n + (cut ? 4 : 1);
    return p;
}

struct mf_agg *
mf_agg_new(const struct mf_report_tables *t, const struct mf_agg_limits *lim)
{
    struct mf_agg *a = mf_xcalloc(1, sizeof(*a));

    a->t = t;
    if (lim)
        a->lim = *lim;
    if (!a->lim.top_per_area)
        a->lim.top_per_area = 16;
    if (!a->lim.events_per_area)
        a->lim.events_per_area = 6;
    if (!a->lim.examples_per_key)
        a->lim.examples_per_key = 2;
    if (!a->lim.keys_per_aggregate)
        a->lim.keys_per_aggregate = 32;
    a->mem = sizeof(*a);
    return a;
}

static void
events_free(struct agg_events *l)
{
    for (size_t i = 0; i < l->n; i++)
        event_free(NULL, &l->e[i]);
    free(l->e);
}

static void
day_free(const struct mf_agg *a, struct agg_day *d)
{
    for (int k = 0; k < 2; k++)
        for (int ar = 0; ar < MF_RAREA_COUNT; ar++) {
            for (size_t i = 0; i < d->tops[k][ar].n; i++)
                free(d->tops[k][ar].e[i].key);
            free(d->tops[k][ar].e);
        }
    for (int ar = 0; ar < MF_RAREA_COUNT; ar++)
        events_free(&d->events[ar]);
    for (size_t i = 0; d->bursts && i < a->t->n_aggs; i++) {
        for (size_t j = 0; j < d->bursts[i].n; j++) {
            free(d->bursts[i].e[j].key);
            free(d->bursts[i].e[j].dh);
        }
        free(d->bursts[i].e);
    }
    free(d->bursts);
    for (size_t i = 0; d->ex_tags && i < a->t->n_ex_tags; i++)
        events_free(&d->ex_tags[i]);
    free(d->ex_tags);
    for (size_t i = 0; d->ex_aggs && i < a->t->n_aggs; i++)
        events_free(&d->ex_aggs[i]);
    free(d->ex_aggs);
    for (int f = 0; f < MF_FACT_COUNT; f++)
        events_free(&d->ex_facts[f]);
    free(d->tags);
    free(d);
}

void
mf_agg_destroy(struct mf_agg *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n_tenants; i++) {
        struct agg_tenant *t = &a->tenants[i];

        for (size_t j = 0; j < t->n_days; j++)
            day_free(a, t->days[j]);
        free(t->days);
        free(t->id);
        free(t->name);
    }
    free(a->tenants);
    for (size_t i = 0; i < a->n_gaps; i++) {
        free(a->gaps[i].tenant);
        free(a->gaps[i].content_type);
        free(a->gaps[i].reason);
    }
    free(a->gaps);
    for (size_t i = 0; i < a->n_tag_ids; i++)
        free(a->tag_ids[i]);
    free(a);
}

bool
mf_agg_empty(const struct mf_agg *a)
{
    return a->n_tenants == 0 && a->n_gaps == 0;
}

int64_t
mf_agg_first_day(const struct mf_agg *a)
{
    int64_t d = -1;

    for (size_t i = 0; i < a->n_tenants; i++)
        if (a->tenants[i].n_days && (d < 0 || a->tenants[i].days[0]->day < d))
            d = a->tenants[i].days[0]->day;
    return d;
}

int64_t
mf_agg_last_day(const struct mf_agg *a)
{
    int64_t d = -1;

    for (size_t i = 0; i < a->n_tenants; i++) {
        const struct agg_tenant *t = &a->tenants[i];

        if (t->n_days && t->days[t->n_days - 1]->day > d)
            d = t->days[t->n_days - 1]->day;
    }
    return d;
}

size_t
mf_agg_memory(const struct mf_agg *a)
{
    return a->mem;
}

struct agg_tenant *
mf_agg_tenant(struct mf_agg *a, const char *id, const char *name)
{
    struct agg_tenant *t;

    if (!id || !*id)
        id = "(unknown)";
    if (a->last_tenant && strcmp(a->last_tenant->id, id) == 0)
        return a->last_tenant;
    for (size_t i = 0; i < a->n_tenants; i++)
        if (strcmp(a->tenants[i].id, id) == 0)
            return a->last_tenant = &a->tenants[i];
    if (a->n_tenants >= AGG_MAX_TENANTS)
        return NULL;
    if ((a->n_tenants & (a->n_tenants - 1)) == 0) {
        size_t cap = a->n_tenants ? a->n_tenants * 2 : 4;

        a->tenants = mf_xrealloc(a->tenants, cap * sizeof(*a->tenants));
    }
    t = &a->tenants[a->n_tenants++];
    memset(t, 0, sizeof(*t));
    t->id = mf_xstrdup(id);
    t->name = mf_xstrdup(name && *name ? name : id);
    a->mem += sizeof(*t) + strlen(t->id) + strlen(t->name) + 2;
    /* the array moved: last pointers are stale */
    a->last_tenant = t;
    return t;
}

/* Index of the first day of t not before day. */
static size_t
day_index(const struct agg_tenant *t, int64_t day)
{
    size_t lo = 0, hi = t->n_days;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;

        if (t->days[mid]->day < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const struct agg_day *
mf_agg_find_day(const struct agg_tenant *t, int64_t day)
{
    size_t i = day_index(t, day);

    return i < t->n_days && t->days[i]->day == day ? t->days[i] : NULL;
}

struct agg_day *
mf_agg_day(struct mf_agg *a, struct agg_tenant *t, int64_t day)
{
    size_t lo;
    struct agg_day *d;

    if (t->last && t->last->day == day)
        return t->last;
    lo = day_index(t, day);
    if (lo < t->n_days && t->days[lo]->day == day)
        return t->last = t->days[lo];
    if (t->n_days == t->cap_days) {
        t->cap_days = t->cap_days ? t->cap_days * 2 : 8;
        t->days = mf_xrealloc(t->days, t->cap_days * sizeof(*t->days));
    }
    memmove(&t->days[lo + 1], &t->days[lo], (t->n_days - lo) * sizeof(*t->days));
    d = mf_xcalloc(1, sizeof(*d));
    d->day = day;
    if (a->t->n_aggs) {
        d->bursts = mf_xcalloc(a->t->n_aggs, sizeof(*d->bursts));
        d->ex_aggs = mf_xcalloc(a->t->n_aggs, sizeof(*d->ex_aggs));
    }
    if (a->t->n_ex_tags)
        d->ex_tags = mf_xcalloc(a->t->n_ex_tags, sizeof(*d->ex_tags));
    a->mem += sizeof(*d) + a->t->n_aggs * (sizeof(*d->bursts) + sizeof(*d->ex_aggs)) +
              a->t->n_ex_tags * sizeof(*d->ex_tags) + sizeof(*t->days);
    t->days[lo] = d;
    t->n_days++;
    return t->last = d;
}

int
mf_agg_tag(struct mf_agg *a, const char *id, int area)
{
    uint64_t h = mf_agg_hash(id);
    size_t mask = AGG_TAG_SLOTS * 2 - 1, i = h & mask;
    int idx;

    for (;; i = (i + 1) & mask) {
        idx = a->tag_hash[i] - 1;
        if (idx < 0)
            break;
        if (strcmp(a->tag_ids[idx], id) == 0)
            return idx;
    }
    if (a->n_tag_ids >= AGG_TAG_SLOTS)
        return -1;
    idx = (int)a->n_tag_ids++;
    a->tag_ids[idx] = mf_xstrdup(id);
    a->tag_area[idx] = area;
    a->tag_ex[idx] = -1;
    for (size_t k = 0; k < a->t->n_ex_tags; k++)
        if (strcmp(a->t->ex_tags[k], id) == 0)
            a->tag_ex[idx] = (int)k;
    a->tag_hash[i] = idx + 1;
    a->mem += strlen(id) + 1;
    return idx;
}

void
mf_agg_day_tag_add(struct mf_agg *a, struct agg_day *d, int idx, int sev, uint64_t n)
{
    if ((size_t)idx >= d->n_tags) {
        size_t nn = a->n_tag_ids;

        d->tags = mf_xrealloc(d->tags, nn * sizeof(*d->tags));
        memset(&d->tags[d->n_tags], 0, (nn - d->n_tags) * sizeof(*d->tags));
        a->mem += (nn - d->n_tags) * sizeof(*d->tags);
        d->n_tags = nn;
    }
    if (sev < 1)
        sev = 1;
    if (sev > 5)
        sev = 5;
    d->tags[idx].n[sev - 1] += n;
}

void
mf_agg_top_add(struct mf_agg *a, struct agg_top *t, const char *key, uint64_t n,
               uint64_t risk, int max_sev)
{
    uint64_t h = mf_agg_hash(key);
    struct agg_top_ent *e = NULL;
    size_t cap = a->lim.top_per_area;

    for (size_t i = 0; i < t->n; i++)
        if (t->e[i].h == h && strcmp(t->e[i].key, key) == 0) {
            e = &t->e[i];
            break;
        }
    if (!e && t->n < cap) {
        if (t->n == t->cap) {
            t->cap = t->cap ? t->cap * 2 : 4;
            if (t->cap > cap)
                t->cap = cap;
            t->e = mf_xrealloc(t->e, t->cap * sizeof(*t->e));
            a->mem += sizeof(*t->e) * (t->cap - t->n);
        }
        e = &t->e[t->n++];
        memset(e, 0, sizeof(*e));
        e->h = h;
        e->key = dup_cap(a, key, EV_MAX_LONG);
    } else if (!e) {
        /* full: the least risky entry makes room, and the newcomer starts
         * from its counts (space-saving: counts are upper bounds) */
        size_t m = 0;

        for (size_t i = 1; i < t->n; i++)
            if (t->e[i].risk < t->e[m].risk ||
                (t->e[i].risk == t->e[m].risk && t->e[i].n < t->e[m].n))
                m = i;
        e = &t->e[m];
        str_free(a, e->key);
        e->h = h;
        e->key = dup_cap(a, key, EV_MAX_LONG);
    }
    e->n += n;
    e->risk += risk;
    if (max_sev > e->max_sev)
        e->max_sev = max_sev;
}

int
mf_agg_event_cmp(const struct agg_event *x, const struct agg_event *y)
{
    if (x->sev != y->sev)
        return x->sev > y->sev ? -1 : 1;
    if (x->time_ms != y->time_ms)
        return x->time_ms > y->time_ms ? -1 : 1;
    return strcmp(x->record_id ? x->record_id : "", y->record_id ? y->record_id : "");
}

void
mf_agg_events_offer(struct mf_agg *a, struct agg_events *l, size_t cap,
                    const struct agg_event *ev)
{
    struct agg_event *slot;

    if (cap == 0)
        return;
    for (size_t i = 0; ev->record_id && i < l->n; i++)
        if (l->e[i].time_ms == ev->time_ms && l->e[i].record_id &&
            strcmp(l->e[i].record_id, ev->record_id) == 0)
            return;   /* the same record again (an export that repeats it) */
    if (l->n < cap) {
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 2;
            if (l->cap > cap)
                l->cap = cap;
            l->e = mf_xrealloc(l->e, l->cap * sizeof(*l->e));
            a->mem += sizeof(*l->e) * (l->cap - l->n);
        }
        slot = &l->e[l->n++];
    } else {
        size_t w = 0;

        for (size_t i = 1; i < l->n; i++)
            if (mf_agg_event_cmp(&l->e[i], &l->e[w]) > 0)
                w = i;
        if (mf_agg_event_cmp(ev, &l->e[w]) >= 0)
            return;
        slot = &l->e[w];
        event_free(a, slot);
    }
    event_copy(a, slot, ev);
}

void
mf_agg_burst_add(struct mf_agg *a, struct agg_burst *b, const char *key, uint64_t n,
                 const uint32_t *dh, unsigned nd)
{
    uint64_t h = mf_agg_hash(key);
    struct agg_burst_ent *e = NULL;
    size_t cap = a->lim.keys_per_aggregate;

    for (size_t i = 0; i < b->n; i++)
        if (b->e[i].h == h && strcmp(b->e[i].key, key) == 0) {
            e = &b->e[i];
            break;
        }
    if (!e && b->n < cap) {
        if (b->n == b->cap) {
            b->cap = b->cap ? b->cap * 2 : 4;
            if (b->cap > cap)
                b->cap = cap;
            b->e = mf_xrealloc(b->e, b->cap * sizeof(*b->e));
            a->mem += sizeof(*b->e) * (b->cap - b->n);
        }
        e = &b->e[b->n++];
        memset(e, 0, sizeof(*e));
        e->h = h;
        e->key = dup_cap(a, key, EV_MAX_TEXT);
    } else if (!e) {
        size_t m = 0;

        for (size_t i = 1; i < b->n; i++)
            if (b->e[i].n < b->e[m].n)
                m = i;
        e = &b->e[m];
        str_free(a, e->key);
        e->h = h;
        e->key = dup_cap(a, key, EV_MAX_TEXT);
        e->nd = 0;   /* distinct values belonged to the key that left */
    }
    e->n += n;
    if (nd && !e->dh) {
        e->dh = mf_xmalloc(AGG_DISTINCT_MAX * sizeof(*e->dh));
        a->mem += AGG_DISTINCT_MAX * sizeof(*e->dh);
    }
    for (unsigned i = 0; i < nd && e->nd < AGG_DISTINCT_MAX; i++) {
        unsigned j;

        for (j = 0; j < e->nd; j++)
            if (e->dh[j] == dh[i])
                break;
        if (j == e->nd)
            e->dh[e->nd++] = dh[i];
    }
}

void
mf_agg_add_gap(struct mf_agg *a, const char *tenant, const char *ct, int64_t start_ms,
               int64_t end_ms, const char *reason)
{
    struct agg_gap *g;

    for (size_t i = 0; i < a->n_gaps; i++) {
        g = &a->gaps[i];
        if (g->start_ms == start_ms && strcmp(g->tenant, tenant ? tenant : "") == 0 &&
            strcmp(g->content_type, ct ? ct : "") == 0) {
            if (end_ms > g->end_ms)
                g->end_ms = end_ms;
            return;
        }
    }
    if (a->n_gaps >= AGG_MAX_GAPS)
        return;
    if ((a->n_gaps & (a->n_gaps - 1)) == 0)
        a->gaps = mf_xrealloc(a->gaps, (a->n_gaps ? a->n_gaps * 2 : 4) * sizeof(*a->gaps));
    g = &a->gaps[a->n_gaps++];
    g->tenant = mf_xstrdup(tenant ? tenant : "");
    g->content_type = mf_xstrdup(ct ? ct : "");
    g->reason = mf_xstrdup(reason ? reason : "");
    g->start_ms = start_ms;
    g->end_ms = end_ms;
    a->mem += sizeof(*g) + strlen(g->tenant) + strlen(g->content_type) + strlen(g->reason);
}

/* ---- adding one record -------------------------------------------------- */

static const char *
by_value(const struct mf_report_rec *r, int by)
{
    switch (by) {
    case AGG_BY_ACTOR:
        return r->actor;
    case AGG_BY_CLIENT_IP:
        return r->client_ip;
    default:
        return r->object;
    }
}

/* The event of r as offered to the lists (its tags are written only if a
 * list keeps it). */
static void
fill_event(const struct mf_report_rec *r, struct agg_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->time_ms = r->time_ms;
    ev->sev = r->severity;
    ev->tenant = (char *)r->tenant;
    ev->actor = (char *)r->actor;
    ev->operation = (char *)r->operation;
    ev->object = (char *)r->object;
    ev->client_ip = (char *)r->client_ip;
    ev->user_agent = (char *)r->user_agent;
    ev->record_id = (char *)r->record_id;
    ev->workload = (char *)r->workload;
    ev->content_type = (char *)r->content_type;
    ev->src = r;
}

void
mf_agg_add(struct mf_agg *a, const struct mf_report_rec *r)
{
    struct agg_tenant *t;
    struct agg_day *d;
    struct agg_event ev;
    int ct, area_sev[MF_RAREA_COUNT] = {0};
    bool is_gap;
    int64_t day;
    size_t evcap = a->lim.events_per_area, excap = a->lim.examples_per_key;

    t = mf_agg_tenant(a, r->tenant_id, r->tenant);
    if (!t)
        return;
    day = r->time_ms >= 0 ? r->time_ms / 86400000 : (r->time_ms - 86399999) / 86400000;
    d = mf_agg_day(a, t, day);
    is_gap = r->gap_start_ms || r->gap_end_ms;
    ct = mf_agg_ct_index(r->content_type);
    if (!is_gap) {
        /* the collector's gap record is not an audit record: it counts
         * under coverage (and its tag), not as activity */
        d->ct_records[ct]++;
        if (r->n_tags)
            d->ct_tagged[ct]++;
    }
    for (int f = 0; f < MF_FACT_COUNT; f++)
        if (r->facts & (1u << f))
            d->facts[f]++;
    fill_event(r, &ev);
    for (size_t i = 0; i < r->n_tags; i++) {
        const struct mf_report_tag *tg = &r->tags[i];
        int idx;

        if (!tg->id || tg->area < 0 || tg->area >= MF_RAREA_COUNT)
            continue;
        idx = mf_agg_tag(a, tg->id, tg->area);
        if (idx < 0)
            continue;
        mf_agg_day_tag_add(a, d, idx, tg->severity, 1);
        if (tg->severity > area_sev[tg->area])
            area_sev[tg->area] = tg->severity;
        if (a->tag_ex[idx] >= 0)
            mf_agg_events_offer(a, &d->ex_tags[a->tag_ex[idx]], excap, &ev);
    }
    for (int ar = 0; ar < MF_RAREA_COUNT; ar++) {
        int s = area_sev[ar];

        if (!s)
            continue;
        if (r->actor && *r->actor)
            mf_agg_top_add(a, &d->tops[0][ar], r->actor, 1, mf_agg_weight[s], s);
        if (r->object && *r->object)
            mf_agg_top_add(a, &d->tops[1][ar], r->object, 1, mf_agg_weight[s], s);
        ev.sev = s;
        mf_agg_events_offer(a, &d->events[ar], evcap, &ev);
    }
    ev.sev = r->severity;
    for (int f = 0; f < MF_FACT_COUNT; f++)
        if ((r->facts & (1u << f)) && (a->t->ex_facts & (1u << f)))
            mf_agg_events_offer(a, &d->ex_facts[f], excap, &ev);
    for (size_t i = 0; i < a->t->n_aggs; i++) {
        const struct rt_aggdef *g = &a->t->aggs[i];
        const char *key, *dv;
        uint32_t dh;

        if (!(r->facts & (1u << g->fact)))
            continue;
        key = by_value(r, g->by);
        if (!key || !*key)
            continue;
        dv = g->distinct >= 0 ? by_value(r, g->distinct) : NULL;
        dh = dv && *dv ? (uint32_t)(mf_agg_hash(dv) | 1) : 0;
        mf_agg_burst_add(a, &d->bursts[i], key, 1, &dh, dh ? 1 : 0);
        mf_agg_events_offer(a, &d->ex_aggs[i], excap, &ev);
    }
    if (is_gap)
        mf_agg_add_gap(a, r->tenant_id, r->gap_content_type ? r->gap_content_type
                                                            : r->content_type,
                       r->gap_start_ms, r->gap_end_ms, r->gap_reason);
}

/* ---- merging ------------------------------------------------------------ */

static void
merge_events(struct mf_agg *a, struct agg_events *dst, const struct agg_events *src, size_t cap)
{
    for (size_t i = 0; i < src->n; i++)
        mf_agg_events_offer(a, dst, cap, &src->e[i]);
}

void
mf_agg_merge_day(struct mf_agg *a, const struct mf_agg *sa, struct agg_day *d,
                 const struct agg_day *s)
{
    for (int c = 0; c < AGG_N_CT; c++) {
        d->ct_records[c] += s->ct_records[c];
        d->ct_tagged[c] += s->ct_tagged[c];
    }
    for (size_t i = 0; i < s->n_tags; i++) {
        int idx = -1;

        for (int v = 0; v < 5; v++) {
            if (!s->tags[i].n[v])
                continue;
            if (idx < 0)
                idx = mf_agg_tag(a, sa->tag_ids[i], sa->tag_area[i]);
            if (idx >= 0)
                mf_agg_day_tag_add(a, d, idx, v + 1, s->tags[i].n[v]);
        }
    }
    for (int f = 0; f < MF_FACT_COUNT; f++) {
        d->facts[f] += s->facts[f];
        merge_events(a, &d->ex_facts[f], &s->ex_facts[f], a->lim.examples_per_key);
    }
    for (int k = 0; k < 2; k++)
        for (int ar = 0; ar < MF_RAREA_COUNT; ar++)
            for (size_t i = 0; i < s->tops[k][ar].n; i++) {
                const struct agg_top_ent *e = &s->tops[k][ar].e[i];

                mf_agg_top_add(a, &d->tops[k][ar], e->key, e->n, e->risk, e->max_sev);
            }
    for (int ar = 0; ar < MF_RAREA_COUNT; ar++)
        merge_events(a, &d->events[ar], &s->events[ar], a->lim.events_per_area);
    for (size_t g = 0; g < a->t->n_aggs; g++) {
        for (size_t i = 0; i < s->bursts[g].n; i++) {
            const struct agg_burst_ent *e = &s->bursts[g].e[i];

            mf_agg_burst_add(a, &d->bursts[g], e->key, e->n, e->dh, e->nd);
        }
        merge_events(a, &d->ex_aggs[g], &s->ex_aggs[g], a->lim.examples_per_key);
    }
    for (size_t i = 0; i < a->t->n_ex_tags; i++)
        merge_events(a, &d->ex_tags[i], &s->ex_tags[i], a->lim.examples_per_key);
}

void
mf_agg_merge(struct mf_agg *dst, const struct mf_agg *src)
{
    for (size_t i = 0; i < src->n_tenants; i++) {
        const struct agg_tenant *st = &src->tenants[i];
        struct agg_tenant *dt = mf_agg_tenant(dst, st->id, st->name);

        if (!dt)
            continue;
        for (size_t j = 0; j < st->n_days; j++)
            mf_agg_merge_day(dst, src, mf_agg_day(dst, dt, st->days[j]->day), st->days[j]);
    }
    for (size_t i = 0; i < src->n_gaps; i++) {
        const struct agg_gap *g = &src->gaps[i];

        mf_agg_add_gap(dst, g->tenant, g->content_type, g->start_ms, g->end_ms, g->reason);
    }
}
