/* tags.h - risk-tag catalogue and rule engine (normalization.md §2e).
 *
 * The catalogue and its match rules are data (normalizers/tags.yaml,
 * compiled into the binary, overridable with a file). Loading validates
 * everything: unknown keys, areas, fields of the rule language, bad regular
 * expressions, duplicate tag ids are start-up errors with file:line.
 * Tag ids are a public, append-only contract.
 */
#ifndef MF_TAGS_H
#define MF_TAGS_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "event.h"
#include "record.h"

struct mf_tag {
    const char *id;            /* "identity.mfa_disabled" */
    const char *title;         /* one line for people */
    enum mf_area area;
    int severity;              /* base OCSF severity_id 1..5 */
    const char *const *attack; /* NULL-terminated technique ids, may be empty */
    size_t n_attack;
};

#define MF_TAGS_MAX_HITS 16

struct mf_tag_hit {
    const struct mf_tag *tag;
    int severity;              /* after severity rules, 1..5 */
};

struct mf_tag_hits {
    struct mf_tag_hit hit[MF_TAGS_MAX_HITS];
    size_t n;
    int max_severity;          /* 0 when no hit */
    const struct mf_tag *top;  /* the most severe hit (first on ties), or NULL */
};

struct mf_tagdb;

/* Load from YAML text (name used in messages). NULL with err on any
 * problem. */
struct mf_tagdb *mf_tagdb_load(const char *name, const char *text, size_t len,
                               struct mf_err *err);
/* The catalogue compiled into the binary. */
struct mf_tagdb *mf_tagdb_load_builtin(struct mf_err *err);
void mf_tagdb_destroy(struct mf_tagdb *db);

/* Tag ids: <identity|data|collab|device|monitor|behavior>.<[a-z0-9_]+>;
 * ATT&CK ids: T1234 or T1234.567. For other tables naming tags. */
bool mf_tag_id_valid(const char *s);
bool mf_tag_attack_valid(const char *s);

/* For tables defining tags (tags.yaml, aggregates.yaml): the keys every
 * tag has come first in their key list, in this order. */
enum { MF_TAGKEY_ID, MF_TAGKEY_TITLE, MF_TAGKEY_AREA, MF_TAGKEY_SEVERITY,
       MF_TAGKEY_ATTACK, MF_TAGKEY_COMMON };
struct mf_jval;
struct mf_rules;
/* tag->title, area, severity and attack from the values picked at those
 * indexes of tag mapping t (tag->id set already, strings copied into rs).
 * -1 with *at and msg ("ID: what", no "NAME:LINE: " prefix) on a problem. */
int mf_tag_load_info(struct mf_rules *rs, struct mf_tag *tag,
                     const struct mf_jval *t, const struct mf_jval *const *vals,
                     const struct mf_jval **at, char *msg, size_t msgsz);

size_t mf_tagdb_count(const struct mf_tagdb *db);
const struct mf_tag *mf_tagdb_at(const struct mf_tagdb *db, size_t i);
const struct mf_tag *mf_tagdb_find(const struct mf_tagdb *db, const char *id);

/* Evaluate every rule against the record. Hits come in catalogue order. */
void mf_tags_eval(const struct mf_tagdb *db, const struct mf_record *rec,
                  struct mf_tag_hits *out);

#endif
