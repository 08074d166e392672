/* finding.c - findings of the aggregate rules as OCSF Detection Findings,
 * ECS alerts and raw objects (docs/aggregates.md, "Findings"). */
#include "finding.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "mem.h"
#include "mf_config.h"

#define OCSF_VERSION "1.8.0"
#define ECS_VERSION "9.4.0"
#define PRODUCT "m365fwd"

void
mf_findings_init(struct mf_findings *l)
{
    memset(l, 0, sizeof(*l));
    mf_arena_init(&l->arena, 16384);
}

void
mf_findings_fini(struct mf_findings *l)
{
    free(l->v);
    mf_arena_fini(&l->arena);
    memset(l, 0, sizeof(*l));
}

void
mf_findings_reset(struct mf_findings *l)
{
    l->n = 0;
    mf_arena_reset(&l->arena);
}

struct mf_finding *
mf_findings_add(struct mf_findings *l)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->v = mf_xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    memset(&l->v[l->n], 0, sizeof(l->v[0]));
    return &l->v[l->n++];
}

/* ---- helpers ------------------------------------------------------------ */

static struct mf_jval *
s(struct mf_arena *a, const char *v)
{
    return mf_jstr(a, v ? v : "");
}

static void
set(struct mf_arena *a, struct mf_jval *o, const char *k, struct mf_jval *v)
{
    mf_jobj_set(a, o, k, v);
}

static struct mf_jval *
iso(struct mf_arena *a, int64_t ms)
{
    char buf[40];

    mf_clock_fmt_utc(ms, buf, sizeof(buf) - 1);
    strcat(buf, "Z");
    return mf_jstr(a, buf);
}

static struct mf_jval *
str_list(struct mf_arena *a, const char *const *v, size_t n)
{
    struct mf_jval *arr = mf_jarr(a);
    size_t i;

    for (i = 0; i < n; i++)
        mf_jarr_push(a, arr, s(a, v[i]));
    return arr;
}

static const char *const sev_names[] = {
    "Unknown", "Informational", "Low", "Medium", "High", "Critical",
};

static int
sev_of(const struct mf_finding *f)
{
    return f->severity >= 1 && f->severity <= 5 ? f->severity : 1;
}

/* The details every form carries the same way (raw: all of it; OCSF:
 * unmapped.m365fwd; ECS: m365fwd.finding). */
static struct mf_jval *
details(struct mf_arena *a, const struct mf_finding *f, bool full)
{
    struct mf_jval *o = mf_jobj(a), *w = mf_jobj(a), *d = mf_jobj(a);
    size_t i;

    set(a, o, "uid", s(a, f->uid));
    set(a, o, "rule", s(a, f->rule));
    if (full) {
        set(a, o, "tag", s(a, f->tag->id));
        set(a, o, "title", s(a, f->tag->title));
        set(a, o, "description", s(a, f->description));
        set(a, o, "area", s(a, mf_area_name(f->tag->area)));
        set(a, o, "severity", mf_jint(a, sev_of(f)));
        set(a, o, "tenant", s(a, f->tenant));
        set(a, o, "first", iso(a, f->first_ms));
        set(a, o, "last", iso(a, f->last_ms));
    }
    set(a, o, "key", s(a, f->key));
    set(a, w, "start", iso(a, f->window_start_ms));
    set(a, w, "end", iso(a, f->window_end_ms));
    set(a, o, "window", w);
    set(a, o, "count", mf_jint(a, (int64_t)f->count));
    for (i = 0; i < f->n_distinct; i++)
        set(a, d, f->distinct[i].field, mf_jint(a, f->distinct[i].n));
    if (f->n_distinct)
        set(a, o, "distinct", d);
    if (full) {
        set(a, o, "actors", str_list(a, f->actors, f->n_actors));
        set(a, o, "ips", str_list(a, f->ips, f->n_ips));
        set(a, o, "objects", str_list(a, f->objects, f->n_objects));
        set(a, o, "related_events", str_list(a, f->ids, f->n_ids));
    }
    if (f->after_uid)
        set(a, o, "after_uid", s(a, f->after_uid));
    if (f->distance_km > 0)
        set(a, o, "distance_km", mf_jint(a, (int64_t)(f->distance_km + 0.5)));
    return o;
}

static const char *
message(struct mf_arena *a, const struct mf_finding *f)
{
    return mf_arena_printf(a, "%s: %s (%llu record%s%s%s)", f->tag->title,
                           f->description, (unsigned long long)f->count,
                           f->count == 1 ? "" : "s", f->key[0] ? ", " : "", f->key);
}

/* ---- OCSF ---------------------------------------------------------------- */

static struct mf_jval *
ocsf_attacks(struct mf_arena *a, const struct mf_tag *t)
{
    struct mf_jval *arr = mf_jarr(a);
    size_t i;

    for (i = 0; i < t->n_attack && t->attack[i]; i++) {
        const char *id = t->attack[i];
        struct mf_jval *at = mf_jobj(a), *tech = mf_jobj(a);
        const char *dot = strchr(id, '.');

        set(a, tech, "uid", mf_jstrn(a, id, dot ? (size_t)(dot - id) : strlen(id)));
        set(a, at, "technique", tech);
        if (dot) {
            struct mf_jval *sub = mf_jobj(a);

            set(a, sub, "uid", s(a, id));
            set(a, at, "sub_technique", sub);
        }
        mf_jarr_push(a, arr, at);
    }
    return arr;
}

/* The class, activity, times and status of a Detection Finding. */
static void
ocsf_head(struct mf_arena *a, struct mf_jval *ev, const struct mf_finding *f, int sev)
{
    set(a, ev, "class_uid", mf_jint(a, 2004));
    set(a, ev, "class_name", s(a, "Detection Finding"));
    set(a, ev, "category_uid", mf_jint(a, 2));
    set(a, ev, "category_name", s(a, "Findings"));
    set(a, ev, "activity_id", mf_jint(a, 1));
    set(a, ev, "activity_name", s(a, "Create"));
    set(a, ev, "type_uid", mf_jint(a, 200401));
    set(a, ev, "type_name", s(a, "Detection Finding: Create"));
    set(a, ev, "time", mf_jint(a, f->last_ms));
    set(a, ev, "start_time", mf_jint(a, f->first_ms));
    set(a, ev, "end_time", mf_jint(a, f->last_ms));
    set(a, ev, "count", mf_jint(a, (int64_t)f->count));
    set(a, ev, "severity_id", mf_jint(a, sev));
    set(a, ev, "severity", s(a, sev_names[sev]));
    set(a, ev, "status_id", mf_jint(a, 1));
    set(a, ev, "status", s(a, "New"));
    set(a, ev, "is_alert", mf_jbool(a, true));
    set(a, ev, "message", s(a, message(a, f)));
}

static struct mf_jval *
ocsf_finding_info(struct mf_arena *a, const struct mf_finding *f)
{
    struct mf_jval *fi = mf_jobj(a), *an = mf_jobj(a), *rel = mf_jarr(a),
                   *ds = mf_jarr(a), *att;
    size_t i;

    set(a, fi, "uid", s(a, f->uid));
    set(a, fi, "title", s(a, f->tag->title));
    set(a, fi, "desc", s(a, f->description));
    set(a, an, "uid", s(a, f->rule));
    set(a, an, "name", s(a, f->rule));
    set(a, an, "type_id", mf_jint(a, 1));
    set(a, an, "type", s(a, "Rule"));
    set(a, fi, "analytic", an);
    set(a, fi, "first_seen_time", mf_jint(a, f->first_ms));
    set(a, fi, "last_seen_time", mf_jint(a, f->last_ms));
    mf_jarr_push(a, ds, s(a, "Microsoft 365 Unified Audit Log"));
    set(a, fi, "data_sources", ds);
    att = ocsf_attacks(a, f->tag);
    if (att->len)
        set(a, fi, "attacks", att);
    for (i = 0; i < f->n_ids; i++) {
        struct mf_jval *r = mf_jobj(a);

        set(a, r, "uid", s(a, f->ids[i]));
        mf_jarr_push(a, rel, r);
    }
    if (f->after_uid) {
        struct mf_jval *r = mf_jobj(a);

        set(a, r, "uid", s(a, f->after_uid));
        set(a, r, "type_uid", mf_jint(a, 200401));
        set(a, r, "type_name", s(a, "Detection Finding: Create"));
        set(a, r, "title", s(a, "the window this finding follows"));
        mf_jarr_push(a, rel, r);
    }
    if (rel->len)
        set(a, fi, "related_events", rel);
    set(a, fi, "related_events_count", mf_jint(a, (int64_t)f->count));
    return fi;
}

/* who and from where: one evidence per actor and per address; the objects */
static void
ocsf_evidences(struct mf_arena *a, struct mf_jval *ev, const struct mf_finding *f)
{
    struct mf_jval *ev_list = mf_jarr(a), *res = mf_jarr(a);
    size_t i;

    for (i = 0; i < f->n_actors; i++) {
        struct mf_jval *e = mf_jobj(a), *u = mf_jobj(a);

        set(a, u, "name", s(a, f->actors[i]));
        if (strchr(f->actors[i], '@'))
            set(a, u, "email_addr", s(a, f->actors[i]));
        set(a, e, "user", u);
        mf_jarr_push(a, ev_list, e);
    }
    for (i = 0; i < f->n_ips; i++) {
        struct mf_jval *e = mf_jobj(a), *ep = mf_jobj(a);

        set(a, ep, "ip", s(a, f->ips[i]));
        set(a, e, "src_endpoint", ep);
        mf_jarr_push(a, ev_list, e);
    }
    if (ev_list->len)
        set(a, ev, "evidences", ev_list);
    for (i = 0; i < f->n_objects; i++) {
        struct mf_jval *r = mf_jobj(a);

        set(a, r, "name", s(a, f->objects[i]));
        mf_jarr_push(a, res, r);
    }
    if (res->len)
        set(a, ev, "resources", res);
}

static struct mf_jval *
ocsf_cloud(struct mf_arena *a, const struct mf_finding *f)
{
    struct mf_jval *cloud = mf_jobj(a);

    set(a, cloud, "provider", s(a, "Microsoft"));
    if (f->tenant[0]) {
        struct mf_jval *acct = mf_jobj(a);

        set(a, acct, "uid", s(a, f->tenant));
        set(a, cloud, "account", acct);
    }
    return cloud;
}

static struct mf_jval *
ocsf_metadata(struct mf_arena *a, const struct mf_finding *f)
{
    struct mf_jval *md = mf_jobj(a), *prod = mf_jobj(a), *feat = mf_jobj(a),
                   *labels = mf_jarr(a), *profiles = mf_jarr(a);

    set(a, md, "version", s(a, OCSF_VERSION));
    set(a, prod, "name", s(a, PRODUCT));
    set(a, prod, "vendor_name", s(a, PRODUCT));
    set(a, prod, "version", s(a, MF_VERSION));
    set(a, feat, "name", s(a, "aggregates"));
    set(a, prod, "feature", feat);
    set(a, md, "product", prod);
    set(a, md, "uid", s(a, f->uid));
    if (f->tenant[0])
        set(a, md, "tenant_uid", s(a, f->tenant));
    set(a, md, "event_code", s(a, f->rule));
    set(a, md, "log_name", s(a, "m365fwd.findings"));
    mf_jarr_push(a, labels, s(a, f->tag->id));
    set(a, md, "labels", labels);
    mf_jarr_push(a, profiles, s(a, "cloud"));
    set(a, md, "profiles", profiles);
    return md;
}

/* the risk tag as on per-event records */
static struct mf_jval *
ocsf_enrichments(struct mf_arena *a, const struct mf_finding *f, int sev)
{
    struct mf_jval *enr = mf_jarr(a), *en = mf_jobj(a), *end = mf_jobj(a),
                   *ids = mf_jarr(a);
    size_t i;

    set(a, en, "name", s(a, "risk_tag"));
    set(a, en, "value", s(a, f->tag->id));
    set(a, en, "type", s(a, "m365fwd.risk"));
    set(a, end, "area", s(a, mf_area_name(f->tag->area)));
    set(a, end, "severity_id", mf_jint(a, sev));
    for (i = 0; i < f->tag->n_attack && f->tag->attack[i]; i++)
        mf_jarr_push(a, ids, s(a, f->tag->attack[i]));
    set(a, end, "attack", ids);
    set(a, en, "data", end);
    mf_jarr_push(a, enr, en);
    return enr;
}

static struct mf_jval *
ocsf_build(struct mf_arena *a, const struct mf_finding *f)
{
    struct mf_jval *ev = mf_jobj(a), *um = mf_jobj(a);
    int sev = sev_of(f);

    ocsf_head(a, ev, f, sev);
    set(a, ev, "finding_info", ocsf_finding_info(a, f));
    ocsf_evidences(a, ev, f);
    set(a, ev, "cloud", ocsf_cloud(a, f));
    set(a, ev, "metadata", ocsf_metadata(a, f));
    set(a, ev, "enrichments", ocsf_enrichments(a, f, sev));
    set(a, um, "m365fwd", details(a, f, false));
    set(a, ev, "unmapped", um);
    return ev;
}

/* ---- ECS ----------------------------------------------------------------- */

static const char *
ecs_category(enum mf_area area)
{
    switch (area) {
    case MF_AREA_IDENTITY_ACCESS:
        return "authentication";
    case MF_AREA_DATA_PROTECTION:
    case MF_AREA_COLLABORATION_SHARING:
        return "file";
    case MF_AREA_DEVICE_POSTURE:
        return "host";
    default:
        return "configuration";
    }
}

static struct mf_jval *
ecs_event(struct mf_arena *a, const struct mf_finding *f, int sev)
{
    struct mf_jval *e = mf_jobj(a), *cat = mf_jarr(a), *typ = mf_jarr(a);

    set(a, e, "kind", s(a, "alert"));
    mf_jarr_push(a, cat, s(a, ecs_category(f->tag->area)));
    set(a, e, "category", cat);
    mf_jarr_push(a, typ, s(a, "info"));
    set(a, e, "type", typ);
    set(a, e, "id", s(a, f->uid));
    set(a, e, "code", s(a, f->rule));
    set(a, e, "action", s(a, f->tag->id));
    set(a, e, "module", s(a, PRODUCT));
    set(a, e, "dataset", s(a, "m365fwd.finding"));
    set(a, e, "provider", s(a, PRODUCT));
    set(a, e, "start", iso(a, f->first_ms));
    set(a, e, "end", iso(a, f->last_ms));
    set(a, e, "duration", mf_jint(a, (f->last_ms - f->first_ms) * 1000000));
    set(a, e, "severity", mf_jint(a, sev));
    set(a, e, "risk_score", mf_jreal(a, 20.0 * sev));
    set(a, e, "reason", s(a, f->description));
    return e;
}

static struct mf_jval *
ecs_threat(struct mf_arena *a, const struct mf_tag *tag)
{
    struct mf_jval *th = mf_jobj(a), *tech = mf_jobj(a), *sub = mf_jobj(a),
                   *tids = mf_jarr(a), *sids = mf_jarr(a);
    size_t i;

    set(a, th, "framework", s(a, "MITRE ATT&CK"));
    for (i = 0; i < tag->n_attack && tag->attack[i]; i++) {
        const char *id = tag->attack[i], *dot = strchr(id, '.');

        mf_jarr_push(a, tids, mf_jstrn(a, id, dot ? (size_t)(dot - id) : strlen(id)));
        if (dot)
            mf_jarr_push(a, sids, s(a, id));
    }
    set(a, tech, "id", tids);
    if (sids->len) {
        set(a, sub, "id", sids);
        set(a, tech, "subtechnique", sub);
    }
    set(a, th, "technique", tech);
    return th;
}

/* user, source, related, organization */
static void
ecs_entities(struct mf_arena *a, struct mf_jval *ev, const struct mf_finding *f)
{
    struct mf_jval *rel = mf_jobj(a);

    if (f->n_actors == 1) {
        struct mf_jval *u = mf_jobj(a);

        set(a, u, "id", s(a, f->actors[0]));
        if (strchr(f->actors[0], '@'))
            set(a, u, "email", s(a, f->actors[0]));
        set(a, ev, "user", u);
    }
    if (f->n_ips == 1) {
        struct mf_jval *src = mf_jobj(a);

        set(a, src, "ip", s(a, f->ips[0]));
        set(a, ev, "source", src);
    }
    if (f->n_actors)
        set(a, rel, "user", str_list(a, f->actors, f->n_actors));
    if (f->n_ips)
        set(a, rel, "ip", str_list(a, f->ips, f->n_ips));
    if (rel->len)
        set(a, ev, "related", rel);
    if (f->tenant[0]) {
        struct mf_jval *org = mf_jobj(a);

        set(a, org, "id", s(a, f->tenant));
        set(a, ev, "organization", org);
    }
}

static struct mf_jval *
ecs_m365fwd(struct mf_arena *a, const struct mf_finding *f, int sev)
{
    struct mf_jval *m = mf_jobj(a), *risk = mf_jobj(a), *areas = mf_jarr(a),
                   *d = NULL;

    mf_jarr_push(a, areas, s(a, mf_area_name(f->tag->area)));
    set(a, risk, "areas", areas);
    set(a, risk, "severity", mf_jint(a, sev));
    set(a, m, "risk", risk);
    d = details(a, f, false);
    set(a, d, "actors", str_list(a, f->actors, f->n_actors));
    set(a, d, "objects", str_list(a, f->objects, f->n_objects));
    set(a, d, "related_events", str_list(a, f->ids, f->n_ids));
    set(a, d, "related_events_count", mf_jint(a, (int64_t)f->count));
    set(a, m, "finding", d);
    return m;
}

static struct mf_jval *
ecs_build(struct mf_arena *a, const struct mf_finding *f)
{
    struct mf_jval *ev = mf_jobj(a), *rule = mf_jobj(a), *tags = mf_jarr(a),
                   *ecs = mf_jobj(a);
    int sev = sev_of(f);

    set(a, ev, "@timestamp", iso(a, f->last_ms));
    set(a, ecs, "version", s(a, ECS_VERSION));
    set(a, ev, "ecs", ecs);
    set(a, ev, "event", ecs_event(a, f, sev));
    set(a, rule, "id", s(a, f->rule));
    set(a, rule, "name", s(a, f->tag->title));
    set(a, rule, "description", s(a, f->description));
    set(a, rule, "category", s(a, mf_area_name(f->tag->area)));
    set(a, rule, "ruleset", s(a, "m365fwd aggregates"));
    set(a, ev, "rule", rule);
    set(a, ev, "message", s(a, message(a, f)));
    if (f->tag->n_attack)
        set(a, ev, "threat", ecs_threat(a, f->tag));
    ecs_entities(a, ev, f);
    mf_jarr_push(a, tags, s(a, f->tag->id));
    set(a, ev, "tags", tags);
    set(a, ev, "m365fwd", ecs_m365fwd(a, f, sev));
    return ev;
}

/* ---- raw ----------------------------------------------------------------- */

static struct mf_jval *
raw_build(struct mf_arena *a, const struct mf_finding *f)
{
    struct mf_jval *ev = mf_jobj(a), *m = mf_jobj(a), *tags = mf_jarr(a),
                   *areas = mf_jarr(a), *d = details(a, f, true);

    set(a, d, "related_events_count", mf_jint(a, (int64_t)f->count));
    mf_jarr_push(a, tags, s(a, f->tag->id));
    mf_jarr_push(a, areas, s(a, mf_area_name(f->tag->area)));
    set(a, m, "tags", tags);
    set(a, m, "areas", areas);
    set(a, m, "severity", mf_jint(a, sev_of(f)));
    set(a, m, "finding", d);
    set(a, ev, "m365fwd", m);
    return ev;
}

struct mf_jval *
mf_finding_build(struct mf_arena *a, const struct mf_finding *f, enum mf_schema schema)
{
    switch (schema) {
    case MF_SCHEMA_OCSF:
        return ocsf_build(a, f);
    case MF_SCHEMA_ECS:
        return ecs_build(a, f);
    default:
        return raw_build(a, f);
    }
}

int
mf_finding_write(struct mf_arena *a, const struct mf_finding *f,
                 enum mf_schema schema, struct mf_buf *out)
{
    return mf_json_write(out, mf_finding_build(a, f, schema));
}

/* ---- as an event ----------------------------------------------------------- */

/* mf_event_render_fn of a finding */
static int
render_finding(struct mf_event *ev, enum mf_schema schema, bool keep_raw,
               struct mf_event_form *form)
{
    struct mf_finding_ctx *c = ev->render_ud;
    struct mf_jval *tree = mf_finding_build(c->a, c->f, schema);

    (void)keep_raw;
    if (mf_json_write(&form->text, tree) != 0) {
        mf_buf_reset(&form->text);
        snprintf(ev->error, sizeof(ev->error),
                 "finding larger than the output limit (%zu bytes)", form->text.max);
        return -1;
    }
    form->tree = tree;
    return 0;
}

void
mf_finding_event(struct mf_event *ev, const struct mf_finding *f,
                 const char *content_type, struct mf_finding_ctx *ctx,
                 struct mf_arena *a)
{
    const struct mf_tag *t = f->tag;

    mf_event_reset(ev);
    ctx->f = f;
    ctx->a = a;
    ev->id = f->uid;
    ev->tenant_id = f->tenant;
    ev->content_type = content_type ? content_type : "";
    ev->time_ms = f->last_ms;
    ev->operation = f->rule;
    ev->user = f->n_actors == 1 ? f->actors[0] : NULL;
    ev->client_ip = f->n_ips == 1 ? f->ips[0] : "";
    ev->record_type = -1;
    ev->outcome = MF_OUTCOME_UNKNOWN;
    ev->class_uid = 2004;
    ev->tags[0] = (struct mf_event_tag){.id = t->id, .title = t->title, .area = t->area,
                                        .severity = sev_of(f), .attack = t->attack,
                                        .n_attack = t->n_attack};
    ev->n_tags = 1;
    ev->severity = sev_of(f);
    ev->areas = 1u << t->area;
    ev->top = &ev->tags[0];
    ev->render = render_finding;
    ev->render_ud = ctx;
}
