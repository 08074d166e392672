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

static const char *const schema_names[] = {"ocsf", "ecs", "raw"};

const char *
mf_schema_name(enum mf_schema s)
{
    return (unsigned)s < 3 ? schema_names[s] : "?";
}

int
mf_schema_parse(const char *s, enum mf_schema *out)
{
    for (unsigned i = 0; i < 3; i++) {
        if (strcasecmp(s, schema_names[i]) == 0) {
            *out = (enum mf_schema)i;
            return 0;
        }
    }
    return -1;
}

/* Read a whole table file (tables are small). */
static char *
slurp(const char *path, size_t *len, struct mf_normerr *err)
{
    struct mf_buf b;

    mf_buf_init(&b, 16u << 20);
    if (mf_buf_read_file(&b, path) != 0) {
        snprintf(err->msg, sizeof(err->msg), "%s: cannot open: %m", path);
        mf_buf_fini(&b);
        return NULL;
    }
    *len = b.len;
    return b.data ? b.data : mf_xcalloc(1, 1);
}

struct mf_normalizer *
mf_normalizer_new(const struct mf_norm_opts *opts, struct mf_normerr *err)
{
    struct mf_normalizer *n = mf_xcalloc(1, sizeof(*n));
    struct mf_tagerr terr = {{0}};
    char *text;
    size_t len;

    err->msg[0] = '\0';
    if (opts && opts->tags_file) {
        if (!(text = slurp(opts->tags_file, &len, err)))
            goto fail;
        n->tags = mf_tagdb_load(opts->tags_file, text, len, &terr);
        free(text);
    } else {
        n->tags = mf_tagdb_load_builtin(&terr);
    }
    if (!n->tags) {
        snprintf(err->msg, sizeof(err->msg), "%s", terr.msg);
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
        n->aggs = mf_aggdb_load(opts->aggregates_file, text, len, n->tags, err->msg,
                                sizeof(err->msg));
        free(text);
    } else {
        n->aggs = mf_aggdb_load_builtin(n->tags, err->msg, sizeof(err->msg));
    }
    if (!n->aggs)
        goto fail;
    if (opts && opts->geoip_db &&
        !(n->geo = mf_geoip_open(opts->geoip_db, err->msg, sizeof(err->msg))))
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
    mf_arena_init(&c->arena, 256 * 1024);
    mf_buf_init(&c->scratch, 0);
}

void
mf_nctx_fini(struct mf_nctx *c)
{
    mf_arena_fini(&c->arena);
    mf_buf_fini(&c->scratch);
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

enum mf_status
mf_normalize(const struct mf_normalizer *n, struct mf_nctx *c,
             const struct mf_norm_in *in, struct mf_buf *out,
             struct mf_norm_result *res)
{
    struct mf_jparse_opts popts = {.first_line = in->first_line ? in->first_line : 1};
    struct mf_jparse_info pinfo;
    struct mf_jerror perr;
    struct mf_jval *root, *ev;
    struct mf_record *rec = &c->rec;
    size_t out_mark = out->len;

    memset(res, 0, sizeof(*res));
    memset(rec, 0, sizeof(*rec));
    mf_arena_reset(&c->arena);
    root = mf_json_parse(&c->arena, in->data, in->len, &popts, &pinfo, &perr);
    if (!root) {
        snprintf(res->error, sizeof(res->error), "invalid JSON at line %u column %u: %s",
                 perr.line, perr.column, perr.msg);
        return MF_DROP;
    }
    root = unwrap_export(&c->arena, root);
    if (root->type != MF_JOBJ) {
        snprintf(res->error, sizeof(res->error),
                 "a record must be a JSON object, got %s", jtype_name(root));
        return MF_DROP;
    }
    mf_record_init(rec, &c->arena, root, in->data, in->len, in->content_type,
                   pinfo.repaired_strings ? MF_REPAIR_UTF8 : 0);
    mf_tags_eval(n->tags, rec, &res->tags);
    res->class_uid = mf_ocsf_class_of(n->ocsf, rec);
    res->repairs = rec->repairs;
    if (rec->id && strlen(rec->id) < sizeof(res->id))
        memcpy(res->id, rec->id, strlen(rec->id) + 1);
    if (rec->tenant && strlen(rec->tenant) < sizeof(res->tenant_id))
        memcpy(res->tenant_id, rec->tenant, strlen(rec->tenant) + 1);
    res->content_type = rec->content_type;

    switch (in->schema) {
    case MF_SCHEMA_OCSF:
        ev = mf_ocsf_build(n->ocsf, rec, &res->tags, in->keep_raw);
        break;
    case MF_SCHEMA_ECS:
        ev = mf_ecs_build(n->ecs, rec, &res->tags, in->keep_raw);
        break;
    default:
        ev = build_raw(rec, &res->tags);
        break;
    }
    if (ev)
        add_geo(n, rec, in->schema, ev);
    if (!ev) {
        snprintf(res->error, sizeof(res->error), "cannot build the %s event",
                 mf_schema_name(in->schema));
        return MF_DROP;
    }
    if (mf_json_write(out, ev) != 0) {
        out->len = out_mark;
        if (out->data)
            out->data[out->len] = '\0';
        snprintf(res->error, sizeof(res->error),
                 "normalized event larger than the output limit (%zu bytes)", out->max);
        return MF_DROP;
    }
    return MF_OK;
}
