/* tags.c - risk-tag catalogue: load and validate tags.yaml, evaluate it.
 *
 * Each tag carries its match condition, severity expression and two
 * exclusions (system actors, failed outcome). Rules that pin their
 * operation are indexed by lower-cased operation name, so a record only
 * evaluates the rules of its own operation plus the few unpinned ones.
 */
#include "tags.h"

#include <ctype.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "builtin.h"
#include "mem.h"
#include "rules.h"
#include "yaml_tree.h"

struct rule {
    const struct mf_cond *match;
    const struct mf_sevexpr *sev;
    bool include_system;     /* system_actors: include */
    bool any_outcome;        /* outcome: any */
};

struct op_ent {
    const char *op;          /* lower-cased */
    size_t rule;
};

struct mf_tagdb {
    struct mf_rules *rs;
    struct mf_tag *tags;
    struct rule *rules;
    size_t n;
    struct mf_opindex *ops;  /* pinned rules by operation */
    size_t *unpinned;        /* rule numbers, ascending */
    size_t n_unpinned;
};

static void
set_err(struct mf_err *err, const char *name, const struct mf_jval *at,
        const char *fmt, ...)
{
    va_list ap;
    char msg[200];

    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mf_err_set(err, "%s:%u: %s", name,
             at ? (unsigned)at->line : 0u, msg);
}

bool
mf_tag_id_valid(const char *s)
{
    static const char *const prefixes[] = {
        "identity.", "data.", "collab.", "device.", "monitor.", "behavior.",
    };
    size_t i, pl = 0;
    const char *p;

    for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncmp(s, prefixes[i], strlen(prefixes[i])) == 0) {
            pl = strlen(prefixes[i]);
            break;
        }
    if (pl == 0 || !s[pl])
        return false;
    for (p = s + pl; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_'))
            return false;
    return true;
}

bool
mf_tag_attack_valid(const char *s)
{
    regex_t re;
    bool ok;

    if (regcomp(&re, "^T[0-9]{4}(\\.[0-9]{3})?$", REG_EXTENDED | REG_NOSUB) != 0)
        return false;
    ok = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static int
info_fail(const struct mf_jval **at, const struct mf_jval *where, char *msg,
          size_t msgsz, const char *fmt, ...)
{
    va_list ap;

    *at = where;
    va_start(ap, fmt);
    vsnprintf(msg, msgsz, fmt, ap);
    va_end(ap);
    return -1;
}

int
mf_tag_load_info(struct mf_rules *rs, struct mf_tag *tag,
                 const struct mf_jval *t, const struct mf_jval *const *vals,
                 const struct mf_jval **at, char *msg, size_t msgsz)
{
    const struct mf_jval *title = vals[MF_TAGKEY_TITLE], *area = vals[MF_TAGKEY_AREA],
                         *sev = vals[MF_TAGKEY_SEVERITY], *attack = vals[MF_TAGKEY_ATTACK];
    const char **list;
    int64_t base;
    size_t i;

    if (!mf_jis_str(title) || title->len == 0)
        return info_fail(at, title ? title : t, msg, msgsz, "%s: missing title", tag->id);
    tag->title = mf_rules_strdup(rs, title->u.s);
    if (!mf_jis_str(area) || mf_area_parse(area->u.s, &tag->area) != 0)
        return info_fail(at, area ? area : t, msg, msgsz, "%s: unknown area '%s'",
                         tag->id, mf_jis_str(area) ? area->u.s : "");
    if (!mf_jis(sev, MF_JNUM) || mf_jget_int(sev, &base) != 0 || base < 1 || base > 5)
        return info_fail(at, sev ? sev : t, msg, msgsz,
                         "%s: severity must be an integer 1..5", tag->id);
    tag->severity = (int)base;
    if (attack && !mf_jis_arr(attack))
        return info_fail(at, attack, msg, msgsz, "%s: attack must be a list", tag->id);
    list = mf_rules_alloc(rs, ((attack ? attack->len : 0) + 1) * sizeof(*list));
    for (i = 0; attack && i < attack->len; i++) {
        const struct mf_jval *a = attack->u.items[i];

        if (!mf_jis_str(a) || !mf_tag_attack_valid(a->u.s))
            return info_fail(at, a, msg, msgsz, "%s: bad ATT&CK technique id", tag->id);
        list[i] = mf_rules_strdup(rs, a->u.s);
    }
    tag->attack = (const char *const *)list;   /* NULL-terminated (zeroed) */
    tag->n_attack = attack ? attack->len : 0;
    return 0;
}

enum { TK_MATCH = MF_TAGKEY_COMMON, TK_FROM, TK_ADJUST, TK_SYS, TK_OUTCOME,
       TK_WHY, N_TAG_KEYS };
static const char *const tag_keys[N_TAG_KEYS] = {
    "id", "title", "area", "severity", "attack", "match", "severity_from",
    "adjust", "system_actors", "outcome", "why",
};

/* 1: v is the word yes, 0: the word no, -1: neither. */
static int
one_of_two(const struct mf_jval *v, const char *yes, const char *no)
{
    if (!mf_jis_str(v) || (strcmp(v->u.s, yes) != 0 && strcmp(v->u.s, no) != 0))
        return -1;
    return strcmp(v->u.s, yes) == 0;
}

/* The rule of tag number db->n: match, severity, exclusions, index. */
static int
load_rule(struct mf_tagdb *db, const char *name, const struct mf_jval *t,
          const struct mf_jval *const *v, struct mf_err *err)
{
    const struct mf_tag *tag = &db->tags[db->n];
    struct rule *rule = &db->rules[db->n];
    char cerr[256];
    int w;

    if (!v[TK_MATCH]) {
        set_err(err, name, t, "%s: missing match", tag->id);
        return -1;
    }
    rule->match = mf_rules_compile(db->rs, v[TK_MATCH], cerr, sizeof(cerr));
    if (!rule->match) {
        mf_err_set(err, "%s", cerr);
        return -1;
    }
    rule->sev = mf_rules_compile_severity(db->rs, tag->severity, v[TK_FROM],
                                          v[TK_ADJUST], cerr, sizeof(cerr));
    if (!rule->sev) {
        mf_err_set(err, "%s", cerr);
        return -1;
    }
    if (v[TK_SYS]) {
        if ((w = one_of_two(v[TK_SYS], "include", "exclude")) < 0) {
            set_err(err, name, v[TK_SYS], "%s: system_actors must be include or exclude",
                    tag->id);
            return -1;
        }
        rule->include_system = w;
    }
    if (v[TK_OUTCOME]) {
        if ((w = one_of_two(v[TK_OUTCOME], "any", "not_failure")) < 0) {
            set_err(err, name, v[TK_OUTCOME], "%s: outcome must be any or not_failure",
                    tag->id);
            return -1;
        }
        rule->any_outcome = w;
    }
    if (mf_cond_pinned(rule->match)) {
        mf_opindex_add(db->ops, rule->match, db->n);
    } else {
        db->unpinned[db->n_unpinned++] = db->n;
    }
    return 0;
}

static int
load_tag(struct mf_tagdb *db, const char *name, const struct mf_jval *t,
         struct mf_err *err)
{
    struct mf_tag *tag = &db->tags[db->n];
    const struct mf_jval *v[N_TAG_KEYS] = { NULL }, *id, *at = NULL;
    char msg[200];
    size_t i;
    long bad;

    if (!mf_jis_obj(t)) {
        set_err(err, name, t, "a tag must be a mapping");
        return -1;
    }
    if ((bad = mf_rules_pick(t, tag_keys, N_TAG_KEYS, v)) >= 0) {
        set_err(err, name, t->u.mem[bad].val, "unknown key '%s'", t->u.mem[bad].key);
        return -1;
    }
    id = v[MF_TAGKEY_ID];
    if (!mf_jis_str(id) || !mf_tag_id_valid(id->u.s)) {
        set_err(err, name, id ? id : t,
                "tag id must be <identity|data|collab|device|monitor|behavior>.<name>");
        return -1;
    }
    for (i = 0; i < db->n; i++)
        if (strcmp(db->tags[i].id, id->u.s) == 0) {
            set_err(err, name, id, "duplicate tag id '%s'", id->u.s);
            return -1;
        }
    tag->id = mf_rules_strdup(db->rs, id->u.s);
    if (mf_tag_load_info(db->rs, tag, t, v, &at, msg, sizeof(msg)) != 0) {
        set_err(err, name, at, "%s", msg);
        return -1;
    }
    if (load_rule(db, name, t, v, err) != 0)
        return -1;
    db->n++;
    return 0;
}

static const char *const top_keys[3] = { "version", "tags", "fields" };

struct mf_tagdb *
mf_tagdb_load(const char *name, const char *text, size_t len,
              struct mf_err *err)
{
    struct mf_arena ya;
    struct mf_err yerr;
    const struct mf_jval *root, *tags, *version, *fields, *at = NULL;
    const struct mf_jval *top[3] = { NULL, NULL, NULL };
    struct mf_tagdb *db = NULL;
    struct mf_err dummy;
    char msg[200];
    size_t i;
    long bad;

    if (!err)
        err = &dummy;
    mf_err_reset(err);
    if (!name)
        name = "tags.yaml";
    mf_arena_init(&ya, 65536);
    root = mf_yaml_load(&ya, name, text ? text : "", text ? len : 0, &yerr);
    if (!root) {
        mf_err_set(err, "%s", yerr.msg);
        goto fail;
    }
    if (!mf_jis_obj(root)) {
        set_err(err, name, root, "top level must be a mapping");
        goto fail;
    }
    if ((bad = mf_rules_pick(root, top_keys, 3, top)) >= 0) {
        set_err(err, name, root->u.mem[bad].val, "unknown key '%s'",
                root->u.mem[bad].key);
        goto fail;
    }
    version = top[0];
    tags = top[1];
    fields = top[2];
    if (!version || !mf_jis(version, MF_JNUM) || strcmp(version->u.s, "1") != 0) {
        set_err(err, name, version ? version : root, "version must be 1");
        goto fail;
    }
    if (!mf_jis_arr(tags) || tags->len == 0) {
        set_err(err, name, tags ? tags : root, "'tags' must be a non-empty list");
        goto fail;
    }
    db = mf_xcalloc(1, sizeof(*db));
    db->rs = mf_rules_new(name);
    db->ops = mf_opindex_new();
    if (fields && mf_rules_load_fields(db->rs, fields, &at, msg, sizeof(msg)) != 0) {
        set_err(err, name, at, "%s", msg);
        goto fail;
    }
    db->tags = mf_xcalloc(tags->len, sizeof(*db->tags));
    db->rules = mf_xcalloc(tags->len, sizeof(*db->rules));
    db->unpinned = mf_xcalloc(tags->len, sizeof(*db->unpinned));
    for (i = 0; i < tags->len; i++)
        if (load_tag(db, name, tags->u.items[i], err) != 0)
            goto fail;
    mf_opindex_finish(db->ops);
    mf_arena_fini(&ya);
    return db;
fail:
    mf_tagdb_destroy(db);
    mf_arena_fini(&ya);
    return NULL;
}

struct mf_tagdb *
mf_tagdb_load_builtin(struct mf_err *err)
{
    return mf_tagdb_load("tags.yaml", mf_builtin_tags, mf_builtin_tags_len, err);
}

void
mf_tagdb_destroy(struct mf_tagdb *db)
{
    if (!db)
        return;
    free(db->tags);
    free(db->rules);
    mf_opindex_destroy(db->ops);
    free(db->unpinned);
    mf_rules_destroy(db->rs);
    free(db);
}

size_t
mf_tagdb_count(const struct mf_tagdb *db)
{
    return db ? db->n : 0;
}

const struct mf_tag *
mf_tagdb_at(const struct mf_tagdb *db, size_t i)
{
    return db && i < db->n ? &db->tags[i] : NULL;
}

const struct mf_tag *
mf_tagdb_find(const struct mf_tagdb *db, const char *id)
{
    size_t i;

    if (!db || !id)
        return NULL;
    for (i = 0; i < db->n; i++)
        if (strcmp(db->tags[i].id, id) == 0)
            return &db->tags[i];
    return NULL;
}

static void
eval_rule(const struct mf_tagdb *db, size_t ri, const struct mf_record *rec,
          struct mf_tag_hits *out)
{
    const struct rule *rule = &db->rules[ri];
    int sev;

    if (!rule->include_system && rec->is_system_actor)
        return;
    if (!rule->any_outcome && rec->outcome == MF_OUTCOME_FAILURE)
        return;
    if (!mf_cond_eval(rule->match, rec))
        return;
    if (out->n >= MF_TAGS_MAX_HITS)
        return;
    sev = mf_sevexpr_eval(rule->sev, rec);
    out->hit[out->n].tag = &db->tags[ri];
    out->hit[out->n].severity = sev;
    out->n++;
    if (sev > out->max_severity) {
        out->max_severity = sev;
        out->top = &db->tags[ri];
    }
}

void
mf_tags_eval(const struct mf_tagdb *db, const struct mf_record *rec,
             struct mf_tag_hits *out)
{
    const size_t *pins;
    size_t n_pins, k = 0, u = 0;

    out->n = 0;
    out->max_severity = 0;
    out->top = NULL;
    if (!db || !rec)
        return;
    pins = mf_opindex_find(db->ops, rec->operation ? rec->operation : "", &n_pins);
    /* merge the operation's pinned rules with the unpinned ones, both in
     * catalogue order */
    for (;;) {
        size_t next_pin = k < n_pins ? pins[k] : (size_t)-1;
        size_t next_un = u < db->n_unpinned ? db->unpinned[u] : (size_t)-1;

        if (next_pin == (size_t)-1 && next_un == (size_t)-1)
            break;
        if (next_pin < next_un) {
            eval_rule(db, next_pin, rec, out);
            k++;
        } else {
            eval_rule(db, next_un, rec, out);
            u++;
        }
    }
}
