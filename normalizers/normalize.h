/* normalize.h - record bytes in, a normalized event out (core/event.h).
 *
 * mf_normalizer owns the loaded tables (tags, OCSF and ECS mappings); it is
 * immutable after mf_normalizer_new() and may be shared by threads, each with
 * its own struct mf_nctx (arena, the record being normalized, its tags).
 *
 * A record is parsed once and tagged once (mf_normalize_event()); each of
 * its forms (OCSF, ECS, raw; with or without the original record) is then
 * rendered at most once, when a consumer first asks for it
 * (mf_event_form()).
 */
#ifndef MF_NORMALIZE_H
#define MF_NORMALIZE_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"
#include "buf.h"
#include "err.h"
#include "event.h"
#include "json.h"
#include "option.h"
#include "record.h"
#include "status.h"
#include "tags.h"

struct mf_normalizer;
struct mf_aggdb;
struct mf_geoip;
struct mf_ocsf_map;
struct mf_ecs_map;

/* Also the `normalizer:` section of the configuration (table
 * mf_normalizer_sec, normalizers/norm_conf.c). */
struct mf_norm_opts {
    const char *tags_file;     /* NULL = built-in */
    const char *ocsf_file;     /* NULL = built-in */
    const char *ecs_file;      /* NULL = built-in */
    const char *aggregates_file;   /* NULL = built-in (aggregate.h) */
    const char *geoip_db;      /* MaxMind DB (geoip.h); NULL = none */
};
extern const struct mf_optsec mf_normalizer_sec;

struct mf_normalizer *mf_normalizer_new(const struct mf_norm_opts *opts,
                                        struct mf_err *err);
void mf_normalizer_destroy(struct mf_normalizer *n);
const struct mf_tagdb *mf_normalizer_tags(const struct mf_normalizer *n);
/* "Authentication" for 3002 ...; "" for a class the OCSF table lacks. */
const char *mf_normalizer_class_name(const struct mf_normalizer *n, int class_uid);
/* The aggregate table (loaded and validated with the others) and the
 * geolocation database (NULL without geoip_db). */
const struct mf_aggdb *mf_normalizer_aggregates(const struct mf_normalizer *n);
const struct mf_geoip *mf_normalizer_geoip(const struct mf_normalizer *n);

/* Per-thread working state: the record normalized last lives here until
 * the next one (the event's facts and forms point into it). */
struct mf_nctx {
    struct mf_arena arena;
    const struct mf_normalizer *n;
    struct mf_record rec;
    struct mf_tag_hits hits;
};
void mf_nctx_init(struct mf_nctx *c);
void mf_nctx_fini(struct mf_nctx *c);

struct mf_norm_in {
    const char *data;          /* one record as JSON text */
    size_t len;
    unsigned first_line;       /* line of data[0] in its file (1 if unknown) */
    const char *content_type;  /* NULL = derive */
    /* mf_normalize() only: the form written */
    enum mf_schema schema;
    bool keep_raw;             /* add raw_data / event.original */
    /* The tenant's accepted e-mail domains (tenants[].domains, normalize
     * --domains); NULL/0: derived from each record's UserId, mailbox owner
     * and OrganizationName. Borrowed. */
    const char *const *domains;
    size_t n_domains;
    /* Without a fixed list: asked for the accepted domains of the record's
     * tenant once its OrganizationId is known (import, where the tenant
     * comes from the record). Returns how many, *out borrowed; 0: derive. */
    size_t (*domains_for)(const char *tenant_id, const char *const **out, void *ud);
    void *domains_ud;
};

/* Parse, view and tag one record into ev (reset first): facts, tags,
 * areas, severity, class, and the renderer of its forms. MF_OK, or MF_DROP
 * when the record cannot be normalized (not JSON, not an object):
 * ev->error says why, with line:column. Resets c->arena. ev->tenant stays
 * "" (the caller names the tenant). */
enum mf_status mf_normalize_event(const struct mf_normalizer *n, struct mf_nctx *c,
                                  const struct mf_norm_in *in, struct mf_event *ev);

/* mf_normalize_event() and the form in->schema/in->keep_raw appended to
 * out (no newline). MF_DROP also when the form cannot be rendered (larger
 * than out's ceiling). */
enum mf_status mf_normalize(const struct mf_normalizer *n, struct mf_nctx *c,
                            const struct mf_norm_in *in, struct mf_buf *out,
                            struct mf_event *ev);

/* ---- schema builders (ocsf.c, ecs.c, raw in normalize.c) -------------- */

struct mf_ocsf_map *mf_ocsf_map_load(const char *name, const char *text,
                                     size_t len, struct mf_err *err);
struct mf_ocsf_map *mf_ocsf_map_load_builtin(struct mf_err *err);
void mf_ocsf_map_destroy(struct mf_ocsf_map *m);
const char *mf_ocsf_class_name(const struct mf_ocsf_map *m, int class_uid);
/* OCSF class_uid the record maps to (for routing and summaries). */
int mf_ocsf_class_of(const struct mf_ocsf_map *m, const struct mf_record *r);
/* Build the OCSF event. Members of r->view that are mapped get MF_JF_USED;
 * the rest go under "unmapped". */
struct mf_jval *mf_ocsf_build(const struct mf_ocsf_map *m,
                              const struct mf_record *r,
                              const struct mf_tag_hits *tags, bool keep_raw);

struct mf_ecs_map *mf_ecs_map_load(const char *name, const char *text,
                                   size_t len, struct mf_err *err);
struct mf_ecs_map *mf_ecs_map_load_builtin(struct mf_err *err);
void mf_ecs_map_destroy(struct mf_ecs_map *m);
struct mf_jval *mf_ecs_build(const struct mf_ecs_map *m,
                             const struct mf_record *r,
                             const struct mf_tag_hits *tags, bool keep_raw);

#endif
