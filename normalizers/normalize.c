/* normalize.c - parse, view, tag, map, write: one record at a time. */
#include "normalize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aggregate.h"
#include "geoip.h"
#include "mem.h"
#include "yaml_tree.h"

struct mf_normalizer {
    struct mf_tagdb *tags;
    struct mf_ocsf_map *ocsf;
    struct mf_ecs_map *ecs;
    struct mf_aggdb *aggs;
    struct mf_geoip *geo;
};

/* Read a whole table file (tables are small). */
static char *
slurp(const char *path, size_t *len, struct mf_err *err)
{
    struct mf_buf b;

    mf_buf_init(&b, 16u << 20);
    if (mf_buf_read_file(&b, path) != 0) {
        mf_err_set(err, "%s: cannot open: %m", path);
        mf_buf_fini(&b);
        return NULL;
    }
    *len = b.len;
    return b.data ? b.data : mf_xcalloc(1, 1);
}

struct mf_normalizer *
mf_normalizer_new(const struct mf_norm_opts *opts, struct mf_err *err)
{
    struct mf_normalizer *n = mf_xcalloc(1, sizeof(*n));
    struct mf_err terr = {0};
    char *text;
    size_t len;

    mf_err_reset(err);
    if (opts && opts->tags_file) {
        if (!(text = slurp(opts->tags_file, &len, err)))
            goto fail;
        n->tags = mf_tagdb_load(opts->tags_file, text, len, &terr);
        free(text);
    } else {
        n->tags = mf_tagdb_load_builtin(&terr);
    }
    if (!n->tags) {
        mf_err_set(err, "%s", terr.msg);
        goto fail;
    }
    if (opts && opts->ocsf_file) {
        if (!(text = slurp(opts->ocsf_file, &len, err)))
            goto fail;
        n->ocsf = mf_ocsf_map_load(opts->ocsf_file, text, len, err);
        free(text);
    } else {
        n->ocsf = mf_ocsf_map_load_builtin(err);
    }
    if (!n->ocsf)
        goto fail;
    if (opts && opts->ecs_file) {
        if (!(text = slurp(opts->ecs_file, &len, err)))
            goto fail;
        n->ecs = mf_ecs_map_load(opts->ecs_file, text, len, err);
        free(text);
    } else {
        n->ecs = mf_ecs_map_load_builtin(err);
    }
    if (!n->ecs)
        goto fail;
    if (opts && opts->aggregates_file) {
        if (!(text = slurp(opts->aggregates_file, &len, err)))
            goto fail;
        n->aggs = mf_aggdb_load(opts->aggregates_file, text, len, n->tags, err);
        free(text);
    } else {
        n->aggs = mf_aggdb_load_builtin(n->tags, err);
    }
    if (!n->aggs)
        goto fail;
    if (opts && opts->geoip_db && !(n->geo = mf_geoip_open(opts->geoip_db, err)))
        goto fail;
    return n;
fail:
    mf_normalizer_destroy(n);
    return NULL;
}

void
mf_normalizer_destroy(struct mf_normalizer *n)
{
    if (!n)
        return;
    if (n->tags)
        mf_tagdb_destroy(n->tags);
    if (n->ocsf)
        mf_ocsf_map_destroy(n->ocsf);
    if (n->ecs)
        mf_ecs_map_destroy(n->ecs);
    mf_aggdb_destroy(n->aggs);
    mf_geoip_close(n->geo);
    free(n);
}

const struct mf_tagdb *
mf_normalizer_tags(const struct mf_normalizer *n)
{
    return n->tags;
}

const char *
mf_normalizer_class_name(const struct mf_normalizer *n, int class_uid)
{
    return mf_ocsf_class_name(n->ocsf, class_uid);
}

const struct mf_aggdb *
mf_normalizer_aggregates(const struct mf_normalizer *n)
{
    return n->aggs;
}

const struct mf_geoip *
mf_normalizer_geoip(const struct mf_normalizer *n)
{
    return n->geo;
}

/* src_endpoint.location (OCSF) / source.geo (ECS) of the client address. */
static void
add_geo(const struct mf_normalizer *n, const struct mf_record *r,
        enum mf_schema schema, struct mf_jval *ev)
{
    struct mf_geo geo;
    struct mf_jval *ep, *loc;

    if (!n->geo || !r->client_ip[0] || schema == MF_SCHEMA_RAW ||
        !(ep = mf_jobj_get(ev, schema == MF_SCHEMA_OCSF ? "src_endpoint" : "source")) ||
        !mf_jis_obj(ep) || mf_geoip_lookup(n->geo, r->client_ip, &geo) != 1)
        return;
    loc = schema == MF_SCHEMA_OCSF ? mf_geo_ocsf_location(r->arena, &geo)
                                   : mf_geo_ecs_geo(r->arena, &geo);
    if (loc)
        mf_jobj_set(r->arena, ep, schema == MF_SCHEMA_OCSF ? "location" : "geo", loc);
}

void
mf_nctx_init(struct mf_nctx *c)
{
    memset(c, 0, sizeof(*c));
    mf_arena_init(&c->arena, 256 * 1024);
}

void
mf_nctx_fini(struct mf_nctx *c)
{
    mf_arena_fini(&c->arena);
}

/* Raw schema: the record as it came plus an "m365fwd" object. */
static struct mf_jval *
build_raw(const struct mf_record *r, const struct mf_tag_hits *hits)
{
    struct mf_arena *a = r->arena;
    struct mf_jval *out = mf_jobj(a);
    struct mf_jval *meta = mf_jobj(a);
    struct mf_jval *ids = mf_jarr(a), *areas = mf_jarr(a);
    unsigned seen_areas = 0;

    for (size_t i = 0; i < r->raw->len; i++) {
        const struct mf_jmem *m = &r->raw->u.mem[i];

        if (m->klen == 7 && memcmp(m->key, "m365fwd", 7) == 0)
            continue;   /* ours below; an input field of that name is unlikely */
        mf_jobj_add_ref(a, out, m->key, m->klen, m->val);
    }
    for (size_t i = 0; i < hits->n; i++) {
        const struct mf_tag *t = hits->hit[i].tag;

        mf_jarr_push(a, ids, mf_jstr_ref(a, t->id, strlen(t->id)));
        if (!(seen_areas & (1u << t->area))) {
            const char *an = mf_area_name(t->area);

            seen_areas |= 1u << t->area;
            mf_jarr_push(a, areas, mf_jstr_ref(a, an, strlen(an)));
        }
    }
    mf_jobj_add_ref(a, meta, "tags", 4, ids);
    mf_jobj_add_ref(a, meta, "areas", 5, areas);
    mf_jobj_add_ref(a, meta, "severity", 8,
                    mf_jint(a, hits->max_severity ? hits->max_severity : 1));
    if (r->repairs) {
        struct mf_jval *rep = mf_jarr(a);

        for (unsigned b = 0; b < MF_REPAIR_COUNT; b++) {
            const char *rn = mf_repair_name(1u << b);

            if (r->repairs & (1u << b))
                mf_jarr_push(a, rep, mf_jstr_ref(a, rn, strlen(rn)));
        }
        mf_jobj_add_ref(a, meta, "repairs", 7, rep);
    }
    mf_jobj_add_ref(a, out, "m365fwd", 7, meta);
    return out;
}

static const char *
jtype_name(const struct mf_jval *v)
{
    static const char *const names[] = {"null", "false", "true", "number",
                                        "string", "array", "object"};

    return v->type <= MF_JOBJ ? names[v->type] : "?";
}

/* Search-UnifiedAuditLog / Purview exports saved as JSON wrap each record:
 * {"RecordType":"ExchangeAdmin","CreationDate":..,"UserIds":..,
 *  "Operations":..,"AuditData":{...} or "{...}"}. The audit record is
 * AuditData; the wrapper only repeats it in another shape. */
static struct mf_jval *
unwrap_export(struct mf_arena *a, struct mf_jval *root)
{
    struct mf_jval *ad;

    if (root->type != MF_JOBJ || mf_jobj_get(root, "Operation") ||
        !(ad = mf_jobj_get(root, "AuditData")))
        return root;
    if (ad->type == MF_JOBJ)
        return ad;
    if (ad->type == MF_JSTR) {
        struct mf_jval *inner = mf_json_parse(a, ad->u.s, ad->len, NULL, NULL, NULL);

        if (inner && inner->type == MF_JOBJ)
            return inner;
    }
    return root;
}

/* The event's view of the tag hits: plain data, no catalogue types. */
static void
event_tags(struct mf_event *ev, const struct mf_tag_hits *h)
{
    ev->n_tags = h->n;
    ev->severity = h->max_severity ? h->max_severity : 1;
    for (size_t i = 0; i < h->n; i++) {
        const struct mf_tag *t = h->hit[i].tag;

        ev->tags[i] = (struct mf_event_tag){.id = t->id, .title = t->title,
                                            .area = t->area,
                                            .severity = h->hit[i].severity,
                                            .attack = t->attack,
                                            .n_attack = t->n_attack};
        ev->areas |= 1u << t->area;
        if (t == h->top)
            ev->top = &ev->tags[i];
    }
}

/* mf_event_render_fn: one form of the record held by the nctx. */
static int
render(struct mf_event *ev, enum mf_schema schema, bool keep_raw,
       struct mf_event_form *form)
{
    struct mf_nctx *c = ev->render_ud;
    const struct mf_normalizer *n = c->n;
    struct mf_jval *tree;

    switch (schema) {
    case MF_SCHEMA_OCSF:
        tree = mf_ocsf_build(n->ocsf, &c->rec, &c->hits, keep_raw);
        break;
    case MF_SCHEMA_ECS:
        tree = mf_ecs_build(n->ecs, &c->rec, &c->hits, keep_raw);
        break;
    default:
        tree = build_raw(&c->rec, &c->hits);
        break;
    }
    if (!tree) {
        snprintf(ev->error, sizeof(ev->error), "cannot build the %s event",
                 mf_schema_name(schema));
        return -1;
    }
    add_geo(n, &c->rec, schema, tree);
    if (mf_json_write(&form->text, tree) != 0) {
        mf_buf_reset(&form->text);
        snprintf(ev->error, sizeof(ev->error),
                 "normalized event larger than the output limit (%zu bytes)",
                 form->text.max);
        return -1;
    }
    form->tree = tree;
    return 0;
}

enum mf_status
mf_normalize_event(const struct mf_normalizer *n, struct mf_nctx *c,
                   const struct mf_norm_in *in, struct mf_event *ev)
{
    struct mf_jparse_opts popts = {.first_line = in->first_line ? in->first_line : 1};
    struct mf_jparse_info pinfo;
    struct mf_jerror perr;
    struct mf_jval *root;
    struct mf_record *rec = &c->rec;

    mf_event_reset(ev);
    mf_arena_reset(&c->arena);
    c->n = n;
    root = mf_json_parse(&c->arena, in->data, in->len, &popts, &pinfo, &perr);
    if (!root) {
        snprintf(ev->error, sizeof(ev->error), "invalid JSON at line %u column %u: %s",
                 perr.line, perr.column, perr.msg);
        return MF_DROP;
    }
    root = unwrap_export(&c->arena, root);
    if (root->type != MF_JOBJ) {
        snprintf(ev->error, sizeof(ev->error),
                 "a record must be a JSON object, got %s", jtype_name(root));
        return MF_DROP;
    }
    mf_record_init(rec, &c->arena, root, in->data, in->len, in->content_type,
                   pinfo.repaired_strings ? MF_REPAIR_UTF8 : 0);
    rec->domains = in->domains;
    rec->n_domains = in->domains ? in->n_domains : 0;
    if (!rec->domains && in->domains_for && rec->tenant)
        rec->n_domains = in->domains_for(rec->tenant, &rec->domains, in->domains_ud);
    mf_tags_eval(n->tags, rec, &c->hits);
    event_tags(ev, &c->hits);
    ev->class_uid = mf_ocsf_class_of(n->ocsf, rec);
    ev->id = rec->id ? rec->id : "";
    ev->tenant_id = rec->tenant ? rec->tenant : "";
    ev->content_type = rec->content_type;
    ev->time_ms = rec->time_ms;
    ev->operation = rec->operation;
    ev->workload = rec->workload;
    ev->user = rec->user_id;
    ev->client_ip = rec->client_ip;
    ev->user_agent = rec->user_agent;
    ev->object = mf_record_str(rec, "ObjectId");
    ev->result_status = mf_record_str(rec, "ResultStatus");
    ev->record_type = rec->record_type;
    ev->outcome = rec->outcome;
    ev->system_actor = rec->is_system_actor;
    ev->repairs = rec->repairs;
    ev->render = render;
    ev->render_ud = c;
    return MF_OK;
}

enum mf_status
mf_normalize(const struct mf_normalizer *n, struct mf_nctx *c,
             const struct mf_norm_in *in, struct mf_buf *out, struct mf_event *ev)
{
    const struct mf_event_form *f;

    if (mf_normalize_event(n, c, in, ev) != MF_OK)
        return MF_DROP;
    f = mf_event_form(ev, in->schema, in->keep_raw);
    if (!f)
        return MF_DROP;
    if (mf_buf_append(out, f->text.data, f->text.len) != 0) {
        snprintf(ev->error, sizeof(ev->error),
                 "normalized event larger than the output limit (%zu bytes)", out->max);
        return MF_DROP;
    }
    return MF_OK;
}
