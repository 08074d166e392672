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

static const char *const tag_keys[] = {
    "id", "title", "area", "severity", "attack", "match", "severity_from",
    "adjust", "system_actors", "outcome", "why",
};

static int
load_tag(struct mf_tagdb *db, const char *name, const struct mf_jval *t,
         struct mf_err *err)
{
    struct mf_tag *tag = &db->tags[db->n];
    struct rule *rule = &db->rules[db->n];
    const struct mf_jval *id = NULL, *title = NULL, *area = NULL, *sev = NULL,
                         *attack = NULL, *match = NULL, *from = NULL,
                         *adjust = NULL, *sys = NULL, *outc = NULL;
    char cerr[256];
    size_t i, j;
    int64_t base;

    if (!mf_jis_obj(t)) {
        set_err(err, name, t, "a tag must be a mapping");
        return -1;
    }
    for (i = 0; i < t->len; i++) {
        const char *k = t->u.mem[i].key;
        const struct mf_jval *v = t->u.mem[i].val;
        bool known = false;

        for (j = 0; j < sizeof(tag_keys) / sizeof(tag_keys[0]); j++)
            if (strcmp(k, tag_keys[j]) == 0)
                known = true;
        if (!known) {
            set_err(err, name, v, "unknown key '%s'", k);
            return -1;
        }
        if (strcmp(k, "id") == 0) id = v;
        else if (strcmp(k, "title") == 0) title = v;
        else if (strcmp(k, "area") == 0) area = v;
        else if (strcmp(k, "severity") == 0) sev = v;
        else if (strcmp(k, "attack") == 0) attack = v;
        else if (strcmp(k, "match") == 0) match = v;
        else if (strcmp(k, "severity_from") == 0) from = v;
        else if (strcmp(k, "adjust") == 0) adjust = v;
        else if (strcmp(k, "system_actors") == 0) sys = v;
        else if (strcmp(k, "outcome") == 0) outc = v;
    }
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
    if (!mf_jis_str(title) || title->len == 0) {
        set_err(err, name, title ? title : t, "%s: missing title", tag->id);
        return -1;
    }
    tag->title = mf_rules_strdup(db->rs, title->u.s);
    if (!mf_jis_str(area) || mf_area_parse(area->u.s, &tag->area) != 0) {
        set_err(err, name, area ? area : t, "%s: unknown area '%s'", tag->id,
                mf_jis_str(area) ? area->u.s : "");
        return -1;
    }
    if (!mf_jis(sev, MF_JNUM) || mf_jget_int(sev, &base) != 0 || base < 1 ||
        base > 5) {
        set_err(err, name, sev ? sev : t,
                "%s: severity must be an integer 1..5", tag->id);
        return -1;
    }
    tag->severity = (int)base;
    if (attack) {
        const char **list;

        if (!mf_jis_arr(attack)) {
            set_err(err, name, attack, "%s: attack must be a list", tag->id);
            return -1;
        }
        list = mf_rules_alloc(db->rs, (attack->len + 1) * sizeof(*list));
        for (i = 0; i < attack->len; i++) {
            const struct mf_jval *a = attack->u.items[i];

            if (!mf_jis_str(a) || !mf_tag_attack_valid(a->u.s)) {
                set_err(err, name, a, "%s: bad ATT&CK technique id", tag->id);
                return -1;
            }
            list[i] = mf_rules_strdup(db->rs, a->u.s);
        }
        list[attack->len] = NULL;
        tag->attack = (const char *const *)list;
        tag->n_attack = attack->len;
    } else {
        const char **list = mf_rules_alloc(db->rs, sizeof(*list));

        list[0] = NULL;
        tag->attack = (const char *const *)list;
        tag->n_attack = 0;
    }
    if (!match) {
        set_err(err, name, t, "%s: missing match", tag->id);
        return -1;
    }
    rule->match = mf_rules_compile(db->rs, match, cerr, sizeof(cerr));
    if (!rule->match) {
        mf_err_set(err, "%s", cerr);
        return -1;
    }
    rule->sev = mf_rules_compile_severity(db->rs, tag->severity, from, adjust,
                                          cerr, sizeof(cerr));
    if (!rule->sev) {
        mf_err_set(err, "%s", cerr);
        return -1;
    }
    if (sys) {
        if (!mf_jis_str(sys) || (strcmp(sys->u.s, "include") != 0 &&
                                 strcmp(sys->u.s, "exclude") != 0)) {
            set_err(err, name, sys, "%s: system_actors must be include or exclude",
                    tag->id);
            return -1;
        }
        rule->include_system = strcmp(sys->u.s, "include") == 0;
    }
    if (outc) {
        if (!mf_jis_str(outc) || (strcmp(outc->u.s, "any") != 0 &&
                                  strcmp(outc->u.s, "not_failure") != 0)) {
            set_err(err, name, outc, "%s: outcome must be any or not_failure",
                    tag->id);
            return -1;
        }
        rule->any_outcome = strcmp(outc->u.s, "any") == 0;
    }
    if (mf_cond_pinned(rule->match)) {
        mf_opindex_add(db->ops, rule->match, db->n);
    } else {
        db->unpinned[db->n_unpinned++] = db->n;
    }
    db->n++;
    return 0;
}

struct mf_tagdb *
mf_tagdb_load(const char *name, const char *text, size_t len,
              struct mf_err *err)
{
    struct mf_arena ya;
    struct mf_err yerr;
    const struct mf_jval *root, *tags = NULL, *version = NULL, *fields = NULL;
    struct mf_tagdb *db = NULL;
    struct mf_err dummy;
    size_t i;

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
    for (i = 0; i < root->len; i++) {
        const char *k = root->u.mem[i].key;

        if (strcmp(k, "version") == 0)
            version = root->u.mem[i].val;
        else if (strcmp(k, "tags") == 0)
            tags = root->u.mem[i].val;
        else if (strcmp(k, "fields") == 0)
            fields = root->u.mem[i].val;
        else {
            set_err(err, name, root->u.mem[i].val, "unknown key '%s'", k);
            goto fail;
        }
    }
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
    if (fields) {
        const char **list;

        if (!mf_jis_arr(fields) || fields->len == 0) {
            set_err(err, name, fields, "'fields' must be a non-empty list of record fields");
            goto fail;
        }
        list = mf_rules_alloc(db->rs, fields->len * sizeof(*list));
        for (i = 0; i < fields->len; i++) {
            const struct mf_jval *f = fields->u.items[i];

            if (!mf_jis_str(f) || f->len == 0 || strchr(f->u.s, '.')) {
                set_err(err, name, f, "'fields' entries are top-level record field names");
                goto fail;
            }
            list[i] = mf_rules_strdup(db->rs, f->u.s);
        }
        mf_rules_set_fields(db->rs, list, fields->len);
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
