/* normalize.h - record bytes in, one normalized JSON line out.
 *
 * mf_normalizer owns the loaded tables (tags, OCSF and ECS mappings); it is
 * immutable after mf_normalizer_new() and may be shared by threads, each with
 * its own struct mf_nctx (arena + scratch).
 */
#ifndef MF_NORMALIZE_H
#define MF_NORMALIZE_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"
#include "buf.h"
#include "json.h"
#include "record.h"
#include "status.h"
#include "tags.h"

enum mf_schema { MF_SCHEMA_OCSF = 0, MF_SCHEMA_ECS, MF_SCHEMA_RAW };

const char *mf_schema_name(enum mf_schema s);
int mf_schema_parse(const char *s, enum mf_schema *out);   /* 0 / -1 */

struct mf_normalizer;
struct mf_aggdb;
struct mf_geoip;
struct mf_ocsf_map;
struct mf_ecs_map;

struct mf_norm_opts {
    const char *tags_file;     /* NULL = built-in */
    const char *ocsf_file;     /* NULL = built-in */
    const char *ecs_file;      /* NULL = built-in */
    const char *aggregates_file;   /* NULL = built-in (aggregate.h) */
    const char *geoip_db;      /* MaxMind DB (geoip.h); NULL = none */
};

struct mf_normerr { char msg[256]; };

struct mf_normalizer *mf_normalizer_new(const struct mf_norm_opts *opts,
                                        struct mf_normerr *err);
void mf_normalizer_destroy(struct mf_normalizer *n);
const struct mf_tagdb *mf_normalizer_tags(const struct mf_normalizer *n);
/* "Authentication" for 3002 ...; "" for a class the OCSF table lacks. */
const char *mf_normalizer_class_name(const struct mf_normalizer *n, int class_uid);
/* The aggregate table (loaded and validated with the others) and the
 * geolocation database (NULL without geoip_db). */
const struct mf_aggdb *mf_normalizer_aggregates(const struct mf_normalizer *n);
const struct mf_geoip *mf_normalizer_geoip(const struct mf_normalizer *n);

/* Per-thread working state. */
struct mf_nctx {
    struct mf_arena arena;
    struct mf_buf scratch;
    /* the record normalized last, valid until the next call (rec.raw is
     * NULL when it was refused): for consumers that read more of it than
     * the result says (the aggregates) */
    struct mf_record rec;
};
void mf_nctx_init(struct mf_nctx *c);
void mf_nctx_fini(struct mf_nctx *c);

struct mf_norm_in {
    const char *data;          /* one record as JSON text */
    size_t len;
    unsigned first_line;       /* line of data[0] in its file (1 if unknown) */
    const char *content_type;  /* NULL = derive */
    enum mf_schema schema;
    bool keep_raw;             /* add raw_data / event.original */
};

/* What happened, for summaries and for outputs (routing, headers). */
struct mf_norm_result {
    struct mf_tag_hits tags;
    int class_uid;             /* OCSF class chosen (also for ecs/raw) */
    unsigned repairs;          /* MF_REPAIR_* */
    char id[128];              /* the record's Id ("" when absent or longer) */
    char tenant_id[64];        /* OrganizationId ("" when absent or longer) */
    const char *content_type;  /* given, or derived from RecordType/Workload */
    char error[200];           /* when MF_DROP: why */
};

/* Append one normalized JSON object (no newline) to out.
 * MF_OK: written. MF_DROP: the record cannot be normalized (not JSON, not an
 * object, above out's ceiling); res->error says why and with line:column.
 * Resets c->arena on entry. */
enum mf_status mf_normalize(const struct mf_normalizer *n, struct mf_nctx *c,
                            const struct mf_norm_in *in, struct mf_buf *out,
                            struct mf_norm_result *res);

/* ---- schema builders (ocsf.c, ecs.c, raw in normalize.c) -------------- */

struct mf_ocsf_map *mf_ocsf_map_load(const char *name, const char *text,
                                     size_t len, struct mf_normerr *err);
struct mf_ocsf_map *mf_ocsf_map_load_builtin(struct mf_normerr *err);
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
                                   size_t len, struct mf_normerr *err);
struct mf_ecs_map *mf_ecs_map_load_builtin(struct mf_normerr *err);
void mf_ecs_map_destroy(struct mf_ecs_map *m);
struct mf_jval *mf_ecs_build(const struct mf_ecs_map *m,
                             const struct mf_record *r,
                             const struct mf_tag_hits *tags, bool keep_raw);

#endif
