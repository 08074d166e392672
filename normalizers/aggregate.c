/* aggregate.c - aggregate risk tags: the table (aggregates.yaml) and the
 * windowed state (docs/aggregates.md).
 *
 * State layout, sized for many keys: a window of (rule, tenant, key) is an
 * `entry` of 48 bytes in a pool, found through an open-addressing index of
 * entry numbers; what it must remember to decide and to report (hashes of
 * the distinct values and record Ids, a few sample strings) is a `detail`
 * block of items, allocated with the first record and freed when the
 * window fires. Entries sit on three LRU lists: "waiting" (no record
 * counted, only a follower's record waiting for the window to fire),
 * "probation" (one record) and "protected" (more, or fired); eviction
 * takes them in that order.
 * A window closes when its tenant's stream (the range of event times of
 * its last records) is more than `lateness` past it; a record in a stretch
 * the stream has passed is "late" and not counted (tenant_take). An
 * incremental sweep (two entries per record) frees closed windows.
 */
#include "aggregate.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "bloom.h"
#include "builtin.h"
#include "mem.h"
#include "rules.h"
#include "units.h"
#include "yaml_tree.h"

#define MAX_RULES     256
#define RULE_WORDS    (MAX_RULES / 64)   /* a bit per rule */
#define MAX_KEY_PARTS 4
#define MAX_ALTS      4
#define MAX_DIMS      MF_FINDING_MAX_DISTINCT
#define MAX_HIT_RULES 16      /* rules one record may count for */
#define MAX_VALUES    64      /* distinct values one record adds per field */
#define MAX_PENDING   4       /* follower records kept on a window */
#define MAX_GEO       16      /* located addresses kept on a window */
#define SAMPLE_MAX    200     /* bytes of one sample string */
#define RING          31      /* records per tenant for its stream position */
#define DETAIL_MAX    60000   /* bytes of one window's detail */
#define MALLOC_OVERHEAD 16    /* counted per detail block: what malloc adds */

/* ====================================================================== */
/* table                                                                  */
/* ====================================================================== */

struct keypart {
    const char *field[MAX_ALTS];   /* as written, for the key text */
    const char *path[MAX_ALTS];    /* compiled path, or "$..." */
    size_t n;
};

struct dim {
    const char *field;
    const char *path;
    unsigned min;
    char split;                    /* 0: whole values */
    regex_t *exclude;              /* NULL: none */
};

struct arule {
    char *id;                      /* "tag/name" */
    const struct mf_tag *tag;
    const char *description;
    uint64_t sig;                  /* what saved windows must agree on */
    int64_t window_s;
    const struct mf_cond *match;   /* NULL: `tagged` only; shared by rules
                                      whose match is the same */
    const struct mf_jval *match_src;   /* while loading only */
    const struct mf_tag *tagged;   /* per-event tag required, or NULL */
    struct keypart key[MAX_KEY_PARTS];
    size_t n_key;
    unsigned count_min;
    struct dim dim[MAX_DIMS];
    size_t n_dim;
    const char *object_path;       /* default ObjectId */
    const struct mf_sevexpr *sev;
    int base_sev;                  /* severity without adjust */
    bool has_adjust;
    bool include_system;
    bool geo;
    double geo_min_km, geo_min_kmh;
    bool op_only;                  /* match is only `operation:` (the index decides) */
    bool key_user, key_ip;         /* the key holds UserId / the client address */
    int after;                     /* rule followed, or -1 */
    int follower;                  /* the rule that says `after:` this one, or -1 */
};


struct mf_aggdb {
    struct mf_rules *rs;
    struct mf_tag *tags;           /* tags defined here */
    size_t n_tags;
    struct arule *rules;
    size_t n_rules;
    int64_t lateness_s;
    size_t max_keys;
    size_t max_memory;
    unsigned related, samples;
    struct mf_opindex *ops;        /* pinned rules by operation */
    size_t *unpinned;              /* rules evaluated for every record */
    size_t n_unpinned;
    size_t *tagged_only;           /* rules without match (per-event tag only) */
    size_t n_tagged_only;
    uint64_t every[RULE_WORDS];    /* bits: unpinned and tagged_only rules */
    const char **paths;            /* compiled paths, each once */
    size_t n_paths;
};

static void
set_err(char *err, size_t errsz, const char *name, const struct mf_jval *at,
        const char *fmt, ...)
{
    va_list ap;
    char msg[220];

    if (!err || errsz == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(err, errsz, "%s:%u: %s", name, at ? (unsigned)at->line : 0u, msg);
}

/* ASCII upper-case letters of a little-endian word of 8 bytes to lower
 * case, all lanes at once (bytes >= 0x80 unchanged). */
static inline uint64_t
lower8(uint64_t w)
{
    uint64_t low7 = w & 0x7f7f7f7f7f7f7f7fULL;
    uint64_t ge_a = low7 + 0x3f3f3f3f3f3f3f3fULL;   /* bit 7: byte >= 'A' */
    uint64_t gt_z = low7 + 0x2525252525252525ULL;   /* bit 7: byte > 'Z' */
    uint64_t upper = ~w & (ge_a ^ gt_z) & 0x8080808080808080ULL;

    return w | (upper >> 2);
}

/* 8 bytes as a little-endian word (the same hash on every machine). */
static inline uint64_t
word8(const char *s)
{
    uint64_t w;

    memcpy(&w, s, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

/* The last n (1..7) bytes of s[0..len) in the low bytes of a word, the
 * rest zero: one load overlapping the previous word when len >= 8. */
static inline uint64_t
tail8(const char *s, size_t len, size_t n)
{
    uint64_t w = 0;

    if (len >= 8)
        return word8(s + len - 8) >> ((8 - n) * 8);
    memcpy(&w, s + len - n, n);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

/* Hash of ASCII-lower-cased bytes, continuing h (0 to start): one
 * multiply per 8 bytes (the last word zero-padded), the length folded in;
 * mix with mf_mix64 before using the bits. Stable across runs and
 * machines (finding uids). */
static uint64_t
hash_lc(uint64_t h, const char *s, size_t n)
{
    const uint64_t k = 0x9e3779b97f4a7c15ULL;
    size_t i, full = n & ~(size_t)7;

    h ^= (uint64_t)n * 0xff51afd7ed558ccdULL;
    for (i = 0; i < full; i += 8) {
        h = (h ^ lower8(word8(s + i))) * k;
        h ^= h >> 29;
    }
    if (n > full) {
        h = (h ^ lower8(tail8(s, n, n - full))) * k;
        h ^= h >> 29;
    }
    return h;
}

static uint64_t
hash_str(uint64_t h, const char *s)
{
    return hash_lc(h, s ? s : "", s ? strlen(s) : 0);   /* the length separates */
}

/* A duration ("30s", "5m", "1h", "1d": core/units.h) in whole seconds;
 * -1 when not one. */
static int64_t
parse_window(const struct mf_jval *v)
{
    int64_t ms;

    if (!mf_jis_str(v) || mf_parse_duration(v->u.s, &ms) != 0 || ms % 1000)
        return -1;
    return ms / 1000;
}

static bool
get_uint(const struct mf_jval *v, int64_t lo, int64_t hi, int64_t *out)
{
    return v && v->type == MF_JNUM && mf_jget_int(v, out) == 0 && *out >= lo &&
           *out <= hi;
}

static const char *const derived_names[] = {
    "$client_ip", "$user", "$user_agent", "$operation",
};
/* how findings name them */
static const char *const derived_shown[] = {
    "ClientIP", "UserId", "UserAgent", "Operation",
};

/* The name a finding shows for a field as written in the table. */
static const char *
shown_name(struct mf_aggdb *db, const char *written)
{
    size_t i;

    for (i = 0; i < sizeof(derived_names) / sizeof(derived_names[0]); i++)
        if (strcmp(written, derived_names[i]) == 0)
            return derived_shown[i];
    return mf_rules_strdup(db->rs, written);
}

static const char *
compile_field(struct mf_aggdb *db, const char *name, const struct mf_jval *v,
              char *err, size_t errsz)
{
    size_t i;

    if (mf_jis_str(v) && strcasecmp(v->u.s, "UserId") == 0)
        return derived_names[1];      /* the record's fact: no path walk */
    if (mf_jis_str(v) && strcasecmp(v->u.s, "Operation") == 0)
        return derived_names[3];
    if (mf_jis_str(v) && v->u.s[0] == '$') {
        for (i = 0; i < sizeof(derived_names) / sizeof(derived_names[0]); i++)
            if (strcmp(v->u.s, derived_names[i]) == 0)
                return derived_names[i];
        set_err(err, errsz, name, v, "unknown derived field '%s' ($client_ip, "
                "$user, $user_agent, $operation)", v->u.s);
        return NULL;
    }
    {
        const char *path = mf_rules_compile_path(db->rs, v, err, errsz);

        if (!path)
            return NULL;
        /* one pointer per distinct path: a record's values are looked up
         * once per path however many rules name it (feed's memo) */
        for (i = 0; i < db->n_paths; i++)
            if (strcasecmp(db->paths[i], path) == 0)
                return db->paths[i];
        db->paths = mf_xrealloc(db->paths, (db->n_paths + 1) * sizeof(*db->paths));
        db->paths[db->n_paths++] = path;
        return path;
    }
}

static int
load_key(struct mf_aggdb *db, const char *name, struct arule *r,
         const struct mf_jval *v, char *err, size_t errsz)
{
    size_t i, j;

    if (!mf_jis_arr(v) || v->len > MAX_KEY_PARTS) {
        set_err(err, errsz, name, v, "%s: key must be a list of at most %d fields "
                "(a field may be a list of alternatives)", r->id, MAX_KEY_PARTS);
        return -1;
    }
    for (i = 0; i < v->len; i++) {
        const struct mf_jval *p = v->u.items[i];
        struct keypart *k = &r->key[i];

        if (mf_jis_arr(p)) {
            if (p->len == 0 || p->len > MAX_ALTS) {
                set_err(err, errsz, name, p, "%s: 1 to %d alternatives per key field",
                        r->id, MAX_ALTS);
                return -1;
            }
            for (j = 0; j < p->len; j++) {
                if (!(k->path[j] = compile_field(db, name, p->u.items[j], err, errsz)))
                    return -1;
                k->field[j] = shown_name(db, p->u.items[j]->u.s);
            }
            k->n = p->len;
        } else {
            if (!(k->path[0] = compile_field(db, name, p, err, errsz)))
                return -1;
            k->field[0] = shown_name(db, p->u.s);
            k->n = 1;
        }
    }
    r->n_key = v->len;
    return 0;
}

static int
load_dims(struct mf_aggdb *db, const char *name, struct arule *r,
          const struct mf_jval *v, char *err, size_t errsz)
{
    size_t i, j;
    int64_t n;

    if (!mf_jis_obj(v) || v->len == 0 || v->len > MAX_DIMS) {
        set_err(err, errsz, name, v, "%s: distinct must map 1 to %d fields to a "
                "number of distinct values", r->id, MAX_DIMS);
        return -1;
    }
    for (i = 0; i < v->len; i++) {
        const struct mf_jmem *m = &v->u.mem[i];
        struct dim *d = &r->dim[i];
        struct mf_jval key = {.type = MF_JSTR, .line = m->val->line,
                              .len = m->klen, .u.s = m->key};
        const struct mf_jval *minv = m->val;

        if (!(d->path = compile_field(db, name, &key, err, errsz)))
            return -1;
        d->field = shown_name(db, m->key);
        if (mf_jis_obj(m->val)) {
            minv = NULL;
            for (j = 0; j < m->val->len; j++) {
                const struct mf_jmem *o = &m->val->u.mem[j];

                if (strcmp(o->key, "min") == 0) {
                    minv = o->val;
                } else if (strcmp(o->key, "split") == 0) {
                    if (!mf_jis_str(o->val) || o->val->len != 1) {
                        set_err(err, errsz, name, o->val, "%s: split must be one character",
                                r->id);
                        return -1;
                    }
                    d->split = o->val->u.s[0];
                } else if (strcmp(o->key, "exclude") == 0) {
                    if (!(d->exclude = mf_rules_compile_regex(db->rs, o->val, err, errsz)))
                        return -1;
                } else {
                    set_err(err, errsz, name, o->val, "%s: unknown key '%s' in distinct "
                            "(min, split, exclude)", r->id, o->key);
                    return -1;
                }
            }
        }
        if (!get_uint(minv, 1, 1000, &n)) {
            set_err(err, errsz, name, minv ? minv : m->val,
                    "%s: distinct %s needs a number 1..1000", r->id, d->field);
            return -1;
        }
        d->min = (unsigned)n;
    }
    r->n_dim = v->len;
    return 0;
}

static int
load_geo(const char *name, struct arule *r, const struct mf_jval *v, char *err,
         size_t errsz)
{
    size_t i;
    int64_t n;

    if (!mf_jis_obj(v)) {
        set_err(err, errsz, name, v, "%s: geo must be {min_km: N, min_kmh: N}", r->id);
        return -1;
    }
    r->geo = true;
    r->geo_min_km = 500;
    r->geo_min_kmh = 900;
    for (i = 0; i < v->len; i++) {
        const struct mf_jmem *m = &v->u.mem[i];

        if (!get_uint(m->val, 1, 40000, &n) ||
            (strcmp(m->key, "min_km") != 0 && strcmp(m->key, "min_kmh") != 0)) {
            set_err(err, errsz, name, m->val, "%s: geo takes min_km and min_kmh "
                    "(1..40000)", r->id);
            return -1;
        }
        if (strcmp(m->key, "min_km") == 0)
            r->geo_min_km = (double)n;
        else
            r->geo_min_kmh = (double)n;
    }
    return 0;
}

#define N_RULE_KEYS 15
static const char *const rule_keys[N_RULE_KEYS] = {
    "name", "description", "why", "window", "key", "match", "tagged", "count",
    "distinct", "object", "severity", "adjust", "system_actors", "geo", "after",
};

struct rule_src {
    const struct mf_jval *name, *desc, *window, *key, *match, *tagged, *count,
                         *distinct, *object, *sev, *adjust, *sys, *geo, *after;
};

static int
rule_fields(const char *name, const struct mf_jval *t, struct rule_src *s,
            char *err, size_t errsz)
{
    const struct mf_jval *v[N_RULE_KEYS] = { NULL };
    long bad;

    memset(s, 0, sizeof(*s));
    if (!mf_jis_obj(t)) {
        set_err(err, errsz, name, t, "a rule must be a mapping");
        return -1;
    }
    if ((bad = mf_rules_pick(t, rule_keys, N_RULE_KEYS, v)) >= 0) {
        set_err(err, errsz, name, t->u.mem[bad].val, "unknown rule key '%s'",
                t->u.mem[bad].key);
        return -1;
    }
    s->name = v[0];
    s->desc = v[1];
    s->window = v[3];
    s->key = v[4];
    s->match = v[5];
    s->tagged = v[6];
    s->count = v[7];
    s->distinct = v[8];
    s->object = v[9];
    s->sev = v[10];
    s->adjust = v[11];
    s->sys = v[12];
    s->geo = v[13];
    s->after = v[14];
    return 0;
}

static bool
valid_rule_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_'))
            return false;
    return true;
}

static uint64_t
rule_sig(const struct arule *r)
{
    uint64_t h = hash_str(0, r->id);
    char w[32];
    size_t i, j;

    snprintf(w, sizeof(w), "%lld", (long long)r->window_s);
    h = hash_str(h, w);
    for (i = 0; i < r->n_key; i++)
        for (j = 0; j < r->key[i].n; j++)
            h = hash_str(h, r->key[i].path[j]);
    h = hash_str(h, "|");
    for (i = 0; i < r->n_dim; i++)
        h = hash_str(h, r->dim[i].path);
    h = hash_str(h, r->geo ? "geo" : "");
    return mf_mix64(h);
}

/* The rule `after` names: inherits its key and window. */
static int
link_after(struct mf_aggdb *db, const char *name, struct arule *r,
           const struct rule_src *s, size_t first_of_tag, char *err, size_t errsz)
{
    size_t i;

    if (!mf_jis_str(s->after)) {
        set_err(err, errsz, name, s->after, "%s: after names a rule of the same tag",
                r->id);
        return -1;
    }
    if (s->window || s->key || s->count || s->distinct || s->geo) {
        set_err(err, errsz, name, s->after, "%s: a rule with after takes the window "
                "and key of the rule it follows (no window, key, count, distinct, geo)",
                r->id);
        return -1;
    }
    for (i = first_of_tag; i < db->n_rules; i++) {
        const char *slash = strchr(db->rules[i].id, '/');

        if (slash && strcmp(slash + 1, s->after->u.s) == 0)
            break;
    }
    if (i == db->n_rules || db->rules[i].after >= 0 || db->rules[i].follower >= 0) {
        set_err(err, errsz, name, s->after, "%s: after '%s' is not an earlier rule of "
                "the same tag (without after, not followed yet)", r->id, s->after->u.s);
        return -1;
    }
    r->after = (int)i;
    db->rules[i].follower = (int)db->n_rules;
    r->window_s = db->rules[i].window_s;
    r->n_key = db->rules[i].n_key;
    memcpy(r->key, db->rules[i].key, sizeof(r->key));
    return 0;
}

/* The rule's id ("tag/name"), unique, and its description. */
static int
rule_identity(struct mf_aggdb *db, const char *name, const struct mf_tag *tag,
              const struct mf_jval *t, const struct rule_src *s, struct arule *r,
              char *err, size_t errsz)
{
    char buf[256];
    size_t i;

    if (!mf_jis_str(s->name) || !valid_rule_name(s->name->u.s)) {
        set_err(err, errsz, name, s->name ? s->name : t,
                "%s: rule name must be lower-case letters, digits, _", tag->id);
        return -1;
    }
    snprintf(buf, sizeof(buf), "%s/%s", tag->id, s->name->u.s);
    for (i = 0; i < db->n_rules; i++)
        if (strcmp(db->rules[i].id, buf) == 0) {
            set_err(err, errsz, name, s->name, "duplicate rule '%s'", buf);
            return -1;
        }
    r->id = mf_rules_strdup(db->rs, buf);
    r->tag = tag;
    r->after = -1;
    r->follower = -1;
    if (!mf_jis_str(s->desc) || s->desc->len == 0) {
        set_err(err, errsz, name, s->desc ? s->desc : t, "%s: missing description",
                r->id);
        return -1;
    }
    r->description = mf_rules_strdup(db->rs, s->desc->u.s);
    return 0;
}

/* What the rule counts (match, tagged), its severity and exclusions. */
static int
rule_selection(struct mf_aggdb *db, const char *name, const struct mf_tagdb *tags,
               const struct mf_jval *t, const struct rule_src *s, struct arule *r,
               char *err, size_t errsz)
{
    int64_t base = r->tag->severity;
    size_t i;

    if (s->sev) {
        if (!get_uint(s->sev, 1, 5, &base)) {
            set_err(err, errsz, name, s->sev, "%s: severity must be an integer 1..5", r->id);
            return -1;
        }
    }
    if (!s->match && !s->tagged) {
        set_err(err, errsz, name, t, "%s: needs match or tagged (or both)", r->id);
        return -1;
    }
    for (i = 0; s->match && i < db->n_rules && !r->match; i++)
        if (db->rules[i].match_src && mf_json_equal(db->rules[i].match_src, s->match))
            r->match = db->rules[i].match;   /* evaluated once per record */
    if (s->match && !r->match &&
        !(r->match = mf_rules_compile(db->rs, s->match, err, errsz)))
        return -1;
    r->match_src = s->match;
    r->op_only = mf_jis_obj(s->match) && s->match->len == 1 &&
                 strcmp(s->match->u.mem[0].key, "operation") == 0;
    if (s->tagged) {
        if (!mf_jis_str(s->tagged) || !(r->tagged = mf_tagdb_find(tags, s->tagged->u.s))) {
            set_err(err, errsz, name, s->tagged, "%s: tagged '%s' is not a tag of the "
                    "per-event catalogue", r->id,
                    mf_jis_str(s->tagged) ? s->tagged->u.s : "");
            return -1;
        }
    }
    if (!(r->sev = mf_rules_compile_severity(db->rs, (int)base, NULL, s->adjust,
                                             err, errsz)))
        return -1;
    r->base_sev = (int)base;
    r->has_adjust = s->adjust != NULL;
    if (s->sys) {
        if (!mf_jis_str(s->sys) || (strcmp(s->sys->u.s, "include") != 0 &&
                                    strcmp(s->sys->u.s, "exclude") != 0)) {
            set_err(err, errsz, name, s->sys, "%s: system_actors must be include or "
                    "exclude", r->id);
            return -1;
        }
        r->include_system = strcmp(s->sys->u.s, "include") == 0;
    }
    return 0;
}

/* The window, key and threshold of a rule without `after`. */
static int
rule_window(struct mf_aggdb *db, const char *name, const struct mf_jval *t,
            const struct rule_src *s, struct arule *r, char *err, size_t errsz)
{
    int64_t n;

    if ((r->window_s = parse_window(s->window)) < 60 || r->window_s > 7 * 86400) {
        set_err(err, errsz, name, s->window ? s->window : t,
                "%s: window must be a duration from 1m to 7d (30m, 1h, 1d)", r->id);
        return -1;
    }
    if (!s->key) {
        set_err(err, errsz, name, t, "%s: missing key (a list; [] counts per tenant)",
                r->id);
        return -1;
    }
    if (load_key(db, name, r, s->key, err, errsz) != 0)
        return -1;
    if (s->count) {
        if (!get_uint(s->count, 1, 1000, &n)) {
            set_err(err, errsz, name, s->count, "%s: count must be 1..1000", r->id);
            return -1;
        }
        r->count_min = (unsigned)n;
    }
    if (s->distinct && load_dims(db, name, r, s->distinct, err, errsz) != 0)
        return -1;
    if (s->geo && load_geo(name, r, s->geo, err, errsz) != 0)
        return -1;
    if (!s->count && !s->distinct && !s->geo) {
        set_err(err, errsz, name, t, "%s: needs a threshold (count, distinct or geo)",
                r->id);
        return -1;
    }
    if (r->count_min == 0)
        r->count_min = 1;
    return 0;
}

/* The loaded rule r (number db->n_rules) joins the table. */
static void
rule_index(struct mf_aggdb *db, struct arule *r)
{
    size_t i;

    r->sig = rule_sig(r);
    for (i = 0; i < r->n_key; i++) {
        r->key_user = r->key_user || (r->key[i].n == 1 && r->key[i].path[0] == derived_names[1]);
        r->key_ip = r->key_ip || (r->key[i].n == 1 && r->key[i].path[0] == derived_names[0]);
    }
    if (r->match && mf_cond_pinned(r->match))
        mf_opindex_add(db->ops, r->match, db->n_rules);
    else if (r->match)
        db->unpinned[db->n_unpinned++] = db->n_rules;
    else
        db->tagged_only[db->n_tagged_only++] = db->n_rules;
    if (!(r->match && mf_cond_pinned(r->match)))
        db->every[db->n_rules / 64] |= 1ULL << (db->n_rules % 64);
    db->n_rules++;
}

static int
load_rule(struct mf_aggdb *db, const char *name, const struct mf_tag *tag,
          const struct mf_tagdb *tags, const struct mf_jval *t,
          size_t first_of_tag, char *err, size_t errsz)
{
    struct arule *r = &db->rules[db->n_rules];
    struct rule_src s;

    if (rule_fields(name, t, &s, err, errsz) != 0 ||
        rule_identity(db, name, tag, t, &s, r, err, errsz) != 0 ||
        rule_selection(db, name, tags, t, &s, r, err, errsz) != 0)
        return -1;
    if (s.object) {
        if (!(r->object_path = compile_field(db, name, s.object, err, errsz)))
            return -1;
    }
    if (s.after) {
        if (link_after(db, name, r, &s, first_of_tag, err, errsz) != 0)
            return -1;
    } else if (rule_window(db, name, t, &s, r, err, errsz) != 0) {
        return -1;
    }
    rule_index(db, r);
    return 0;
}

enum { AK_RULES = MF_TAGKEY_COMMON, AK_WHY, N_TAG_KEYS };
static const char *const tag_keys[N_TAG_KEYS] = {
    "id", "title", "area", "severity", "attack", "rules", "why",
};

/* A tag defined here (not a per-event one): the next of db->tags. */
static const struct mf_tag *
define_tag(struct mf_aggdb *db, const char *name, const struct mf_jval *t,
           const struct mf_jval *const *v, char *err, size_t errsz)
{
    struct mf_tag *nt = &db->tags[db->n_tags];
    const struct mf_jval *id = v[MF_TAGKEY_ID], *at = NULL;
    char msg[220];
    size_t i;

    if (!mf_tag_id_valid(id->u.s)) {
        set_err(err, errsz, name, id, "tag id must be <identity|data|collab|"
                "device|monitor|behavior>.<name>");
        return NULL;
    }
    nt->id = mf_rules_strdup(db->rs, id->u.s);
    if (mf_tag_load_info(db->rs, nt, t, v, &at, msg, sizeof(msg)) != 0) {
        set_err(err, errsz, name, at, "%s", msg);
        return NULL;
    }
    for (i = 0; i < db->n_tags; i++)
        if (strcmp(db->tags[i].id, nt->id) == 0) {
            set_err(err, errsz, name, id, "duplicate tag id '%s'", nt->id);
            return NULL;
        }
    db->n_tags++;
    return nt;
}

static int
load_tag(struct mf_aggdb *db, const char *name, const struct mf_tagdb *tags,
         const struct mf_jval *t, char *err, size_t errsz)
{
    const struct mf_jval *v[N_TAG_KEYS] = { NULL }, *id, *rules;
    const struct mf_jval *title, *area, *sev, *attack;
    const struct mf_tag *tag;
    size_t i, first = db->n_rules;
    long bad;

    if (!mf_jis_obj(t)) {
        set_err(err, errsz, name, t, "a tag must be a mapping");
        return -1;
    }
    if ((bad = mf_rules_pick(t, tag_keys, N_TAG_KEYS, v)) >= 0) {
        set_err(err, errsz, name, t->u.mem[bad].val, "unknown key '%s'",
                t->u.mem[bad].key);
        return -1;
    }
    id = v[MF_TAGKEY_ID];
    title = v[MF_TAGKEY_TITLE];
    area = v[MF_TAGKEY_AREA];
    sev = v[MF_TAGKEY_SEVERITY];
    attack = v[MF_TAGKEY_ATTACK];
    rules = v[AK_RULES];
    if (!mf_jis_str(id)) {
        set_err(err, errsz, name, id ? id : t, "a tag needs an id");
        return -1;
    }
    for (i = 0; i < db->n_rules; i++)
        if (strncmp(db->rules[i].id, id->u.s, id->len) == 0 &&
            db->rules[i].id[id->len] == '/') {
            set_err(err, errsz, name, id, "tag '%s' listed twice", id->u.s);
            return -1;
        }
    if ((tag = mf_tagdb_find(tags, id->u.s)) != NULL) {
        /* a raise of a per-event tag: what it is comes from tags.yaml */
        if (title || area || sev || attack) {
            set_err(err, errsz, name, title ? title : area ? area : sev ? sev : attack,
                    "%s is a per-event tag (tags.yaml): title, area, severity and attack "
                    "come from there; give each rule its severity", id->u.s);
            return -1;
        }
    } else if (!(tag = define_tag(db, name, t, v, err, errsz))) {
        return -1;
    }
    if (!mf_jis_arr(rules) || rules->len == 0) {
        set_err(err, errsz, name, rules ? rules : t, "%s: rules must be a non-empty list",
                id->u.s);
        return -1;
    }
    for (i = 0; i < rules->len; i++) {
        if (db->n_rules == MAX_RULES) {
            set_err(err, errsz, name, rules->u.items[i], "more than %d rules", MAX_RULES);
            return -1;
        }
        if (load_rule(db, name, tag, tags, rules->u.items[i], first, err, errsz) != 0)
            return -1;
    }
    return 0;
}

static const char *const top_keys[] = {
    "version", "lateness", "max_keys", "max_memory", "related_events", "samples",
    "fields", "tags",
};

static int
load_settings(struct mf_aggdb *db, const char *name, const struct mf_jval *root,
              const struct mf_jval **fields, const struct mf_jval **tags,
              char *err, size_t errsz)
{
    size_t i, j;
    int64_t n;

    db->lateness_s = 6 * 3600;
    db->max_keys = 200000;
    db->max_memory = (size_t)48 << 20;
    db->related = 20;
    db->samples = 10;
    for (i = 0; i < root->len; i++) {
        const char *k = root->u.mem[i].key;
        const struct mf_jval *v = root->u.mem[i].val;
        bool known = false;

        for (j = 0; j < sizeof(top_keys) / sizeof(top_keys[0]); j++)
            if (strcmp(k, top_keys[j]) == 0)
                known = true;
        if (!known) {
            set_err(err, errsz, name, v, "unknown key '%s'", k);
            return -1;
        }
        if (strcmp(k, "version") == 0) {
            if (!mf_jis(v, MF_JNUM) || strcmp(v->u.s, "1") != 0) {
                set_err(err, errsz, name, v, "version must be 1");
                return -1;
            }
        } else if (strcmp(k, "lateness") == 0) {
            if ((db->lateness_s = parse_window(v)) < 0 || db->lateness_s > 7 * 86400) {
                set_err(err, errsz, name, v, "lateness must be a duration up to 7d");
                return -1;
            }
        } else if (strcmp(k, "max_keys") == 0) {
            if (!get_uint(v, 100, 100000000, &n)) {
                set_err(err, errsz, name, v, "max_keys must be 100..100000000");
                return -1;
            }
            db->max_keys = (size_t)n;
        } else if (strcmp(k, "max_memory") == 0) {
            if (!mf_jis_str(v) || mf_parse_size(v->u.s, &n) != 0 ||
                n < ((int64_t)1 << 20) || n > ((int64_t)1 << 40)) {
                set_err(err, errsz, name, v, "max_memory must be a size from 1MiB "
                        "to 1TiB (48MiB)");
                return -1;
            }
            db->max_memory = (size_t)n;
        } else if (strcmp(k, "related_events") == 0) {
            if (!get_uint(v, 1, 200, &n)) {
                set_err(err, errsz, name, v, "related_events must be 1..200");
                return -1;
            }
            db->related = (unsigned)n;
        } else if (strcmp(k, "samples") == 0) {
            if (!get_uint(v, 1, 100, &n)) {
                set_err(err, errsz, name, v, "samples must be 1..100");
                return -1;
            }
            db->samples = (unsigned)n;
        } else if (strcmp(k, "fields") == 0) {
            *fields = v;
        } else {
            *tags = v;
        }
    }
    return 0;
}

struct mf_aggdb *
mf_aggdb_load(const char *name, const char *text, size_t len,
              const struct mf_tagdb *tags, struct mf_err *e)
{
    struct mf_arena ya;
    struct mf_err yerr;
    const struct mf_jval *root, *list = NULL, *fields = NULL, *at = NULL;
    struct mf_aggdb *db = NULL;
    size_t i, n_rules_max = 0;
    char err[256] = "", msg[220];
    const size_t errsz = sizeof(err);

    mf_err_reset(e);
    if (!name)
        name = "aggregates.yaml";
    mf_arena_init(&ya, 65536);
    root = mf_yaml_load(&ya, name, text ? text : "", text ? len : 0, &yerr);
    if (!root) {
        snprintf(err, errsz, "%s", yerr.msg);
        goto fail;
    }
    if (!mf_jis_obj(root)) {
        set_err(err, errsz, name, root, "top level must be a mapping");
        goto fail;
    }
    db = mf_xcalloc(1, sizeof(*db));
    db->rs = mf_rules_new(name);
    db->ops = mf_opindex_new();
    if (load_settings(db, name, root, &fields, &list, err, errsz) != 0)
        goto fail;
    if (!mf_jobj_get(root, "version")) {
        set_err(err, errsz, name, root, "version must be 1");
        goto fail;
    }
    if (!mf_jis_arr(list) || list->len == 0) {
        set_err(err, errsz, name, list ? list : root, "'tags' must be a non-empty list");
        goto fail;
    }
    if (fields && mf_rules_load_fields(db->rs, fields, &at, msg, sizeof(msg)) != 0) {
        set_err(err, errsz, name, at, "%s", msg);
        goto fail;
    }
    for (i = 0; i < list->len; i++) {
        const struct mf_jval *r = mf_jobj_get(list->u.items[i], "rules");

        n_rules_max += mf_jis_arr(r) ? r->len : 0;
    }
    db->tags = mf_xcalloc(list->len, sizeof(*db->tags));
    db->rules = mf_xcalloc(n_rules_max + 1, sizeof(*db->rules));
    db->unpinned = mf_xcalloc(n_rules_max + 1, sizeof(*db->unpinned));
    db->tagged_only = mf_xcalloc(n_rules_max + 1, sizeof(*db->tagged_only));
    for (i = 0; i < list->len; i++)
        if (load_tag(db, name, tags, list->u.items[i], err, errsz) != 0)
            goto fail;
    mf_opindex_finish(db->ops);
    for (i = 0; i < db->n_rules; i++)
        db->rules[i].match_src = NULL;   /* the YAML goes now */
    mf_arena_fini(&ya);
    return db;
fail:
    mf_err_set(e, "%s", err);
    mf_aggdb_destroy(db);
    mf_arena_fini(&ya);
    return NULL;
}

struct mf_aggdb *
mf_aggdb_load_builtin(const struct mf_tagdb *tags, struct mf_err *err)
{
    return mf_aggdb_load("aggregates.yaml", mf_builtin_aggregates,
                         mf_builtin_aggregates_len, tags, err);
}

void
mf_aggdb_destroy(struct mf_aggdb *db)
{
    if (!db)
        return;
    free(db->paths);
    free(db->tags);
    free(db->rules);
    mf_opindex_destroy(db->ops);
    free(db->unpinned);
    free(db->tagged_only);
    mf_rules_destroy(db->rs);
    free(db);
}

size_t
mf_aggdb_tag_count(const struct mf_aggdb *db)
{
    return db ? db->n_tags : 0;
}

const struct mf_tag *
mf_aggdb_tag_at(const struct mf_aggdb *db, size_t i)
{
    return db && i < db->n_tags ? &db->tags[i] : NULL;
}

size_t
mf_aggdb_rule_count(const struct mf_aggdb *db)
{
    return db ? db->n_rules : 0;
}

const char *
mf_aggdb_rule_id(const struct mf_aggdb *db, size_t i, bool *geo)
{
    if (!db || i >= db->n_rules)
        return NULL;
    if (geo)
        *geo = db->rules[i].geo;
    return db->rules[i].id;
}

/* ====================================================================== */
/* state                                                                  */
/* ====================================================================== */

/* E_FOLLOW_AT_FIRE: the follower's finding came with the window's own
 * (records of it waited); E_KEEP: the flags a saved window keeps. */
enum { E_FIRED = 1, E_FOLLOWED = 2, E_FOLLOW_AT_FIRE = 4, E_USED = 8 };
#define E_KEEP (E_FIRED | E_FOLLOWED | E_FOLLOW_AT_FIRE)
/* LRU lists, evicted in this order: windows only waited on by a follower
 * (no record counted yet), windows of one record, the rest (two records or
 * more, or fired). The list is kept in flags bits 4-5. */
enum { L_WAITING = 0, L_PROBATION = 1, L_PROTECTED = 2, N_LISTS = 3 };
#define E_LIST(e) (((e)->flags >> 4) & 3)

/* A detail holds 32-bit hashes first, one array per kind in this order
 * (scanned as arrays), then tagged items [kind][length][payload]. */
enum {
    I_FIREH = 0,      /* u32: hash of the Id of the record that fired the window
                         (one, after it fired; first: found at once) */
    I_ID,             /* u32: hash of a record Id (duplicates are not counted) */
    I_DIM0,           /* u32: hash of a distinct value (I_DIM0 + dimension) */
    I_DIM1,
    I_DIM2,
    I_SH,             /* u32: hash of a sample string (kind and text) */
    N_FIXED,
    I_GEO = N_FIXED,  /* 16: address hash u32, lat f32, lon f32, time u32 */
    I_KEY,            /* the key as text */
    I_ACTOR,          /* samples for the finding */
    I_IP,
    I_OBJECT,
    I_RID,
    I_PEND,           /* a follower's record: rule u16, sev u8, time u32, "user\0id\0ip" */
    I_FIRE,           /* the finding as it fired (struct fire) */
    I_FFIRE,          /* u32: hash of the Id of the follower's record that
                         yielded the follower's finding (follow) */
    N_ITEM_KINDS
};

/* What a window's finding said when it fired: the record that fired it
 * coming again (its blob fetched again because an output did not take
 * it, or replayed after a crash) yields the same finding again, same uid
 * and same content, so no output misses it. The detail of a fired window
 * is kept until the window closes for this. */
struct fire {                /* (the firing record's Id hash: I_FIREH) */
    uint32_t count, first_s, last_s;
    float dist;
};

/* The hashes of the fixed arrays are 32 bits: a 1 in 2^32 chance per value
 * and window that a new record Id or value is taken for one seen (one
 * record less counted), for arrays half the size that the compiler
 * compares four at a time. */
#define FIXED_SIZE 4

struct detail {
    uint16_t len, cap;
    uint16_t n[N_ITEM_KINDS];
    unsigned char data[];
};

struct entry {
    uint64_t key;            /* tenant, rule signature and key values */
    uint32_t win;            /* window start, s since the epoch */
    uint32_t first_s, last_s;
    uint32_t count;          /* records counted */
    uint32_t prev, next;     /* LRU (free list: next) */
    uint32_t tenant;
    uint16_t rule;
    uint8_t flags;
    uint8_t sev;             /* highest per-record severity */
    struct detail *d;
};

struct tenant {
    uint64_t h;
    char *name;
    int64_t ring[RING];      /* event times (s) of the last records taken */
    uint32_t n;              /* records taken */
    int64_t lo, hi;          /* oldest and newest time in the ring */
    int64_t amin, amax;      /* oldest and newest time ever taken */
};

#define MAX_TENANTS 16384

struct mf_aggregates {
    const struct mf_aggdb *db;
    const struct mf_geoip *geo;
    pthread_mutex_t mu;
    size_t max_keys, max_memory;
    struct entry *e;         /* e[0] unused */
    uint32_t n_e, cap_e, free_head, n_used;
    uint32_t *slot;
    size_t mask;
    uint32_t head[N_LISTS], tail[N_LISTS];   /* LRU lists (L_*) */
    uint32_t n_list[N_LISTS];
    struct tenant *t;        /* t[0]: tenants past MAX_TENANTS */
    uint32_t n_t, cap_t;
    uint32_t *tslot;
    size_t tmask;
    uint32_t last_tenant;    /* the tenant of the last record, 0 none */
    size_t detail_bytes, name_bytes;
    uint32_t sweep;
    bool replay;             /* under mu: the record fed is a replay (feed) */
    bool rule_on[MAX_RULES];
    uint64_t on[RULE_WORDS];  /* rule_on as bits */
    struct mf_aggregates_stats st;
};

static size_t
home(const struct mf_aggregates *g, uint64_t key, uint32_t win)
{
    return (size_t)mf_mix64(key ^ ((uint64_t)win * 0x9E3779B97F4A7C15ULL)) & g->mask;
}

static uint32_t
entry_find(const struct mf_aggregates *g, size_t rule, uint64_t key, uint32_t win)
{
    size_t i = home(g, key, win);

    for (;;) {
        uint32_t ei = g->slot[i];
        const struct entry *e;

        if (!ei)
            return 0;
        e = &g->e[ei];
        if (e->key == key && e->win == win && e->rule == rule)
            return ei;
        i = (i + 1) & g->mask;
    }
}

static void
index_put(struct mf_aggregates *g, uint32_t ei)
{
    size_t i = home(g, g->e[ei].key, g->e[ei].win);

    while (g->slot[i])
        i = (i + 1) & g->mask;
    g->slot[i] = ei;
}

/* Linear probing deletion by backward shift (no tombstones). */
static void
index_del(struct mf_aggregates *g, uint32_t ei)
{
    size_t i = home(g, g->e[ei].key, g->e[ei].win), j;

    while (g->slot[i] != ei)
        i = (i + 1) & g->mask;
    j = i;
    for (;;) {
        uint32_t ej;
        size_t h;

        j = (j + 1) & g->mask;
        if (!(ej = g->slot[j]))
            break;
        h = home(g, g->e[ej].key, g->e[ej].win);
        /* ej may move to i unless its home lies cyclically in (i, j] */
        if (i <= j ? (h <= i || h > j) : (h <= i && h > j)) {
            g->slot[i] = ej;
            i = j;
        }
    }
    g->slot[i] = 0;
}

static void
lru_unlink(struct mf_aggregates *g, uint32_t ei)
{
    struct entry *e = &g->e[ei];
    int l = E_LIST(e);

    if (e->prev)
        g->e[e->prev].next = e->next;
    else
        g->head[l] = e->next;
    if (e->next)
        g->e[e->next].prev = e->prev;
    else
        g->tail[l] = e->prev;
    e->prev = e->next = 0;
    g->n_list[l]--;
}

static void
lru_push(struct mf_aggregates *g, uint32_t ei)
{
    struct entry *e = &g->e[ei];
    int l = e->count == 0 && !(e->flags & E_FIRED) ? L_WAITING
          : e->count == 1 && !(e->flags & E_FIRED) ? L_PROBATION : L_PROTECTED;

    e->flags = (uint8_t)((e->flags & 0x0f) | (l << 4));
    g->n_list[l]++;
    e->prev = 0;
    e->next = g->head[l];
    if (g->head[l])
        g->e[g->head[l]].prev = ei;
    else
        g->tail[l] = ei;
    g->head[l] = ei;
}

/* Most recently used now (and on the list its count says). */
static void
lru_touch(struct mf_aggregates *g, uint32_t ei)
{
    lru_unlink(g, ei);
    lru_push(g, ei);
}

static void
detail_free(struct mf_aggregates *g, struct entry *e)
{
    if (e->d) {
        g->detail_bytes -= sizeof(*e->d) + e->d->cap + MALLOC_OVERHEAD;
        free(e->d);
        e->d = NULL;
    }
}

static void
entry_free(struct mf_aggregates *g, uint32_t ei)
{
    struct entry *e = &g->e[ei];

    index_del(g, ei);
    lru_unlink(g, ei);
    detail_free(g, e);
    e->flags = 0;
    e->next = g->free_head;
    g->free_head = ei;
    g->n_used--;
}

static size_t
mem_used(const struct mf_aggregates *g)
{
    return (size_t)g->cap_e * sizeof(struct entry) + (g->mask + 1) * sizeof(uint32_t) +
           g->detail_bytes + (size_t)g->cap_t * sizeof(struct tenant) +
           (g->tmask + 1) * sizeof(uint32_t) + g->name_bytes;
}

/* Drop the least recently used window, sparing keep: from the waiting
 * list, else probation, else protected; but from protected first once it
 * holds more than three quarters of the windows, so that windows of many
 * records (a slow trickle of one account's failures, or fired windows
 * waiting to close) cannot starve new windows of their second record. */
static bool
evict_one(struct mf_aggregates *g, uint32_t keep)
{
    int order[N_LISTS] = {L_WAITING, L_PROBATION, L_PROTECTED}, k;

    if (g->n_list[L_PROTECTED] > g->n_used / 4 * 3) {
        order[0] = L_PROTECTED;
        order[1] = L_WAITING;
        order[2] = L_PROBATION;
    }
    for (k = 0; k < N_LISTS; k++) {
        uint32_t ei = g->tail[order[k]];

        if (ei == keep && ei)
            ei = g->e[ei].prev;
        if (ei) {
            entry_free(g, ei);
            g->st.evicted++;
            return true;
        }
    }
    return false;
}

static void
enforce_caps(struct mf_aggregates *g, uint32_t keep)
{
    while ((g->n_used > g->max_keys || mem_used(g) > g->max_memory) &&
           evict_one(g, keep))
        ;
}

/* Keep the index at most half full: double it and place every window
 * again. */
static void
index_grow(struct mf_aggregates *g)
{
    size_t n = (g->mask + 1) * 2;
    uint32_t i;

    free(g->slot);
    g->slot = mf_xcalloc(n, sizeof(*g->slot));
    g->mask = n - 1;
    for (i = 1; i < g->n_e; i++)
        if (g->e[i].flags & E_USED)
            index_put(g, i);
}

static uint32_t
entry_alloc(struct mf_aggregates *g)
{
    uint32_t ei;

    while ((g->n_used >= g->max_keys || mem_used(g) > g->max_memory) &&
           evict_one(g, 0))
        ;
    if ((size_t)(g->n_used + 1) * 2 > g->mask + 1)
        index_grow(g);
    if (g->free_head) {
        ei = g->free_head;
        g->free_head = g->e[ei].next;
    } else {
        if (g->n_e == g->cap_e) {
            uint32_t nc = g->cap_e * 2;

            if (nc > g->max_keys + 1)
                nc = (uint32_t)g->max_keys + 1;
            g->e = mf_xrealloc(g->e, (size_t)nc * sizeof(*g->e));
            g->cap_e = nc;
        }
        ei = g->n_e++;
    }
    memset(&g->e[ei], 0, sizeof(g->e[ei]));
    g->e[ei].flags = E_USED;
    g->n_used++;
    return ei;
}

/* ---- detail items ------------------------------------------------------ */

/* Offset of the fixed array of kind k (k = N_FIXED: of the tagged items). */
static size_t
fixed_off(const struct detail *d, int k)
{
    size_t o = 0;
    int i;

    for (i = 0; i < k; i++)
        o += (size_t)d->n[i] * FIXED_SIZE;
    return o;
}

#define FOR_ITEMS(d, o) \
    for (size_t o = (d) ? fixed_off((d), N_FIXED) : 0; (d) && o < (d)->len; \
         o += 2u + (d)->data[o + 1])

/* Room for n more bytes of detail; false past DETAIL_MAX. */
static bool
detail_room(struct mf_aggregates *g, struct entry *e, size_t n)
{
    struct detail *d = e->d;
    size_t len = d ? d->len : 0, cap = d ? d->cap : 0, nc;

    if (len + n > DETAIL_MAX)
        return false;
    if (len + n <= cap)
        return true;
    nc = cap ? cap + cap / 2 : 48;
    while (nc < len + n)
        nc += nc / 2;
    if (nc > DETAIL_MAX)
        nc = DETAIL_MAX;
    d = mf_xrealloc(d, sizeof(*d) + nc);
    if (!e->d) {
        memset(d, 0, sizeof(*d));
        g->detail_bytes += sizeof(*d) + MALLOC_OVERHEAD;
    }
    g->detail_bytes += nc - cap;
    d->cap = (uint16_t)nc;
    e->d = d;
    return true;
}

/* Whether the fixed array of kind k holds v. The whole array is compared
 * without an early exit, which the compiler turns into vector compares
 * (an array holds up to a few hundred values). */
static bool
fixed_has(const struct detail *d, int k, uint32_t v)
{
    const unsigned char *a;
    size_t i, n;
    unsigned found = 0;

    if (!d || !(n = d->n[k]))
        return false;
    a = d->data + fixed_off(d, k);
    for (i = 0; i < n; i++) {
        uint32_t x;

        memcpy(&x, a + i * FIXED_SIZE, FIXED_SIZE);
        found |= x == v;
    }
    return found != 0;
}

/* Insert into the fixed array of kind k (the arrays after it move up). */
static bool
fixed_add(struct mf_aggregates *g, struct entry *e, int k, uint32_t v)
{
    size_t sz = FIXED_SIZE, end;
    struct detail *d;

    if (!detail_room(g, e, sz))
        return false;
    d = e->d;
    end = fixed_off(d, k) + (size_t)d->n[k] * sz;
    memmove(d->data + end + sz, d->data + end, d->len - end);
    memcpy(d->data + end, &v, sz);
    d->len = (uint16_t)(d->len + sz);
    d->n[k]++;
    return true;
}

static bool
fixed_add_unique(struct mf_aggregates *g, struct entry *e, int k, uint32_t v)
{
    return !fixed_has(e->d, k, v) && fixed_add(g, e, k, v);
}

/* Append a tagged item. */
static bool
item_add(struct mf_aggregates *g, struct entry *e, int kind, const void *p, size_t n)
{
    struct detail *d;

    if (n > 255)
        n = 255;
    if (!detail_room(g, e, n + 2))
        return false;
    d = e->d;
    d->data[d->len] = (unsigned char)kind;
    d->data[d->len + 1] = (unsigned char)n;
    memcpy(&d->data[d->len + 2], p, n);
    d->len = (uint16_t)(d->len + n + 2);
    d->n[kind]++;
    return true;
}

static bool
item_has(const struct detail *d, int kind, const void *p, size_t n)
{
    if (n > 255)
        n = 255;
    FOR_ITEMS(d, o)
        if (d->data[o] == kind && d->data[o + 1] == n &&
            memcmp(&d->data[o + 2], p, n) == 0)
            return true;
    return false;
}

/* Add p unless there; false when it was there or did not fit. */
static bool
item_add_unique(struct mf_aggregates *g, struct entry *e, int kind, const void *p, size_t n)
{
    if (item_has(e->d, kind, p, n))
        return false;
    return item_add(g, e, kind, p, n);
}

/* ---- tenants ----------------------------------------------------------- */

static struct tenant *
tenant_get(struct mf_aggregates *g, const char *name, uint32_t *idx)
{
    uint64_t h;
    size_t i;
    struct tenant *t;

    if (g->last_tenant && strcmp(g->t[g->last_tenant].name, name) == 0) {
        *idx = g->last_tenant;   /* records come in runs of one tenant */
        return &g->t[*idx];
    }
    h = mf_mix64(hash_str(0, name));
    i = (size_t)h & g->tmask;

    for (;;) {
        uint32_t ti = g->tslot[i];

        if (!ti)
            break;
        if (g->t[ti].h == h && strcmp(g->t[ti].name, name) == 0) {
            *idx = g->last_tenant = ti;
            return &g->t[ti];
        }
        i = (i + 1) & g->tmask;
    }
    if (g->n_t > MAX_TENANTS) {
        *idx = 0;
        return &g->t[0];
    }
    if (g->n_t == g->cap_t) {
        g->cap_t *= 2;
        g->t = mf_xrealloc(g->t, (size_t)g->cap_t * sizeof(*g->t));
    }
    *idx = g->n_t++;
    t = &g->t[*idx];
    memset(t, 0, sizeof(*t));
    t->h = h;
    t->name = mf_xstrdup(name);
    g->name_bytes += strlen(name) + 1;
    g->tslot[i] = *idx;
    g->last_tenant = *idx;
    return t;
}

/* Where the tenant's stream is: the range [lo, hi] of event times of its
 * last RING records. A record is taken when it lies within `lateness` of
 * that range, or outside everything seen so far (a stream read oldest
 * first moves up, an export read newest first moves down, a jump after an
 * outage is new ground); otherwise it falls in a stretch the stream has
 * passed, whose windows may be gone: it is late. */
static bool
tenant_take(const struct mf_aggregates *g, struct tenant *t, int64_t s)
{
    int64_t l = g->db->lateness_s, old;
    uint32_t i, n;

    if (t->n && s >= t->amin && s <= t->amax && (s < t->lo - l || s > t->hi + l))
        return false;
    old = t->ring[t->n % RING];
    t->ring[t->n % RING] = s;
    t->n++;
    if (t->n == 1) {
        t->lo = t->hi = s;
    } else if (t->n <= RING || (old != t->lo && old != t->hi)) {
        if (s < t->lo)
            t->lo = s;
        if (s > t->hi)
            t->hi = s;
    } else {
        n = t->n < RING ? t->n : RING;   /* an extreme left the ring */
        t->lo = t->hi = s;
        for (i = 0; i < n; i++) {
            if (t->ring[i] < t->lo)
                t->lo = t->ring[i];
            if (t->ring[i] > t->hi)
                t->hi = t->ring[i];
        }
    }
    if (t->n == 1 || s < t->amin)
        t->amin = s;
    if (t->n == 1 || s > t->amax)
        t->amax = s;
    return true;
}

/* A window is closed once the stream is more than `lateness` past it. */
static bool
window_closed(const struct mf_aggregates *g, const struct tenant *t, int64_t ws,
              int64_t w)
{
    int64_t l = g->db->lateness_s;

    return t->n && (ws + w + l < t->lo || ws - l > t->hi);
}

static void
sweep(struct mf_aggregates *g, int n)
{
    while (n-- > 0 && g->n_e > 1) {
        struct entry *e;

        g->sweep = g->sweep % (g->n_e - 1) + 1;
        e = &g->e[g->sweep];
        if ((e->flags & E_USED) &&
            window_closed(g, &g->t[e->tenant], e->win,
                          g->db->rules[e->rule].window_s)) {
            entry_free(g, g->sweep);
            g->st.expired++;
        }
    }
}

/* ---- life cycle -------------------------------------------------------- */

struct mf_aggregates *
mf_aggregates_new(const struct mf_aggdb *db, const struct mf_aggregates_opts *opts)
{
    struct mf_aggregates *g = mf_xcalloc(1, sizeof(*g));
    size_t i;

    g->db = db;
    g->geo = opts ? opts->geo : NULL;
    g->max_keys = opts && opts->max_keys ? opts->max_keys : db->max_keys;
    g->max_memory = opts && opts->max_memory ? opts->max_memory : db->max_memory;
    if (g->max_keys > 0x7fffffffu)
        g->max_keys = 0x7fffffffu;
    pthread_mutex_init(&g->mu, NULL);
    g->slot = mf_xcalloc(1024, sizeof(*g->slot));
    g->mask = 1023;
    g->cap_e = 1024;
    g->e = mf_xcalloc(g->cap_e, sizeof(*g->e));
    g->n_e = 1;
    g->cap_t = 16;
    g->t = mf_xcalloc(g->cap_t, sizeof(*g->t));
    g->t[0].name = mf_xstrdup("");
    g->n_t = 1;
    g->tslot = mf_xcalloc(4 * MAX_TENANTS, sizeof(*g->tslot));
    g->tmask = 4 * MAX_TENANTS - 1;
    for (i = 0; i < db->n_rules; i++) {
        g->rule_on[i] = !db->rules[i].geo || g->geo;
        if (db->rules[i].after >= 0 && db->rules[db->rules[i].after].geo && !g->geo)
            g->rule_on[i] = false;
        if (!g->rule_on[i])
            g->st.rules_off++;
        else
            g->on[i / 64] |= 1ULL << (i % 64);
    }
    return g;
}

static void
state_clear(struct mf_aggregates *g)
{
    uint32_t i;

    for (i = 1; i < g->n_e; i++)
        if (g->e[i].flags & E_USED)
            detail_free(g, &g->e[i]);
    memset(g->slot, 0, (g->mask + 1) * sizeof(*g->slot));
    g->n_e = 1;
    g->free_head = 0;
    g->n_used = 0;
    memset(g->head, 0, sizeof(g->head));
    memset(g->tail, 0, sizeof(g->tail));
    memset(g->n_list, 0, sizeof(g->n_list));
    for (i = 1; i < g->n_t; i++)
        free(g->t[i].name);
    memset(g->tslot, 0, (g->tmask + 1) * sizeof(*g->tslot));
    g->n_t = 1;
    g->last_tenant = 0;
    g->name_bytes = 0;
    g->sweep = 0;
}

void
mf_aggregates_destroy(struct mf_aggregates *g)
{
    if (!g)
        return;
    state_clear(g);
    free(g->t[0].name);
    free(g->t);
    free(g->tslot);
    free(g->e);
    free(g->slot);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

void
mf_aggregates_stats(struct mf_aggregates *g, struct mf_aggregates_stats *st)
{
    pthread_mutex_lock(&g->mu);
    g->st.keys = g->n_used;
    g->st.bytes = mem_used(g);
    *st = g->st;
    pthread_mutex_unlock(&g->mu);
}

/* ====================================================================== */
/* reading a record                                                       */
/* ====================================================================== */

/* What one record brings to one rule, read before taking the lock. */
struct contrib {
    size_t rule;             /* the rule whose windows are touched */
    int follower;            /* -1, or the `after` rule this record is for */
    uint64_t key;
    uint32_t win;
    int sev;
    const char *kv[MAX_KEY_PARTS];   /* the key's values (in the record) */
    size_t kvlen[MAX_KEY_PARTS];
    uint8_t kalt[MAX_KEY_PARTS];     /* which alternative gave each */
    uint32_t dimh[MAX_DIMS][MAX_VALUES];
    uint8_t n_dimh[MAX_DIMS];
    bool located;            /* lat/lon of the client address */
    float lat, lon;
};

/* name is one of derived_names (compile_field returns those pointers). */
static const char *
derived(const struct mf_record *r, const char *name)
{
    if (name == derived_names[0])
        return r->client_ip;
    if (name == derived_names[1])
        return r->user_id;
    if (name == derived_names[2])
        return r->user_agent;
    return r->operation;
}

/* Trim blanks; drop an Exchange "smtp:" prefix. */
static const char *
norm_value(const char *t, size_t len, size_t *olen)
{
    while (len > 0 && isspace((unsigned char)*t)) {
        t++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)t[len - 1]))
        len--;
    if (len > 5 && strncasecmp(t, "smtp:", 5) == 0) {
        t += 5;
        len -= 5;
    }
    *olen = len;
    return t;
}

static const char *
scalar_value(const struct mf_jval *v, size_t *len)
{
    const char *t;

    if (!v || v->type == MF_JNULL || v->type == MF_JARR || v->type == MF_JOBJ ||
        mf_jis_nullish(v))
        return NULL;
    t = mf_jscalar_text(v, len);
    if (!t)
        return NULL;
    t = norm_value(t, *len, len);
    return *len ? t : NULL;
}

struct first_ctx {
    const char *t;
    size_t len;
};

static bool
visit_first(void *ud, const struct mf_jval *v)
{
    struct first_ctx *c = ud;

    c->t = scalar_value(v, &c->len);
    return c->t != NULL;
}

/* First non-empty scalar at path (or the derived value). */
static const char *
first_value(const struct mf_record *r, const char *path, size_t *len)
{
    struct first_ctx c = {NULL, 0};

    if (path[0] == '$') {
        const char *v = derived(r, path);

        return v ? norm_value(v, strlen(v), len) : NULL;
    }
    mf_rules_each_value(r, path, visit_first, &c);
    *len = c.len;
    return c.t;
}

/* Values of record paths already looked up for this record (paths are
 * interned by the table, so a pointer names a path). */
#define MEMO_MAX 16
struct memo {
    const char *path[MEMO_MAX];
    const char *v[MEMO_MAX];
    size_t len[MEMO_MAX];
    size_t n;
};

static const char object_default[] = "ObjectId";

static const char *
memo_value(struct memo *m, const struct mf_record *r, const char *path, size_t *len)
{
    const char *v;
    size_t i;

    for (i = 0; i < m->n; i++)
        if (m->path[i] == path) {
            *len = m->len[i];
            return m->v[i];
        }
    *len = 0;
    v = first_value(r, path, len);
    if (!v)
        *len = 0;
    if (m->n < MEMO_MAX) {
        m->path[m->n] = path;
        m->v[m->n] = v;
        m->len[m->n++] = *len;
    }
    return v;
}

struct dim_ctx {
    const struct dim *d;
    uint32_t *out;
    uint8_t *n;
};

static void
dim_add(struct dim_ctx *c, const char *t, size_t len)
{
    uint32_t h;
    uint8_t i;
    char buf[256];

    t = norm_value(t, len, &len);
    if (len == 0 || *c->n >= MAX_VALUES)
        return;
    if (c->d->exclude) {
        size_t bl = len < sizeof(buf) - 1 ? len : sizeof(buf) - 1;

        memcpy(buf, t, bl);
        buf[bl] = '\0';
        if (regexec(c->d->exclude, buf, 0, NULL, 0) == 0)
            return;
    }
    h = (uint32_t)mf_mix64(hash_lc(0, t, len));
    for (i = 0; i < *c->n; i++)
        if (c->out[i] == h)
            return;
    c->out[(*c->n)++] = h;
}

static bool
visit_dim(void *ud, const struct mf_jval *v)
{
    struct dim_ctx *c = ud;
    size_t len;
    const char *t = scalar_value(v, &len), *end, *p;

    if (!t)
        return false;
    if (!c->d->split) {
        dim_add(c, t, len);
        return *c->n >= MAX_VALUES;
    }
    for (end = t + len, p = t; p < end;) {
        const char *q = memchr(p, c->d->split, (size_t)(end - p));

        if (!q)
            q = end;
        dim_add(c, p, (size_t)(q - p));
        p = q + 1;
    }
    return *c->n >= MAX_VALUES;
}

/* Append s[0..n) to buf at len (cut to fit, NUL-terminated); new length. */
static size_t
text_add(char *buf, size_t size, size_t len, const char *s, size_t n)
{
    if (len + n >= size)
        n = size - 1 - len;
    memcpy(buf + len, s, n);
    buf[len + n] = '\0';
    return len + n;
}

/* The key as text ("UserId=a@b.c, ClientIP=192.0.2.1") into buf. */
static const char *
key_text(const struct mf_aggdb *db, const struct contrib *c, char *buf, size_t n)
{
    const struct arule *r = &db->rules[c->rule];
    size_t i, kl = 0;

    buf[0] = '\0';
    for (i = 0; i < r->n_key; i++) {
        const char *f = r->key[i].field[c->kalt[i]];

        if (kl)
            kl = text_add(buf, n, kl, ", ", 2);
        kl = text_add(buf, n, kl, f, strlen(f));
        kl = text_add(buf, n, kl, "=", 1);
        kl = text_add(buf, n, kl, c->kv[i], c->kvlen[i]);
    }
    return buf;
}

#define KEYTEXT_SIZE 384

/* Fill c from the record for rule ri (a follower reads the key of the rule
 * it follows). false when the record has no value for a key field. */
static bool
read_contrib(const struct mf_aggregates *g, size_t ri, const struct mf_record *rec,
             uint64_t tenant_h, struct memo *memo, struct contrib *c)
{
    const struct mf_aggdb *db = g->db;
    const struct arule *r = &db->rules[ri];
    const struct arule *kr = r->after >= 0 ? &db->rules[r->after] : r;
    size_t i, j, len;
    uint64_t h;
    int64_t t_s = rec->time_ms / 1000;

    if (t_s < 0 || t_s > 0xffffffffLL)
        return false;
    memset(c->n_dimh, 0, sizeof(c->n_dimh));
    c->rule = r->after >= 0 ? (size_t)r->after : ri;
    c->follower = r->after >= 0 ? (int)ri : -1;
    c->win = (uint32_t)(t_s - t_s % kr->window_s);
    h = tenant_h ^ kr->sig;
    for (i = 0; i < kr->n_key; i++) {
        const char *v = NULL;

        for (j = 0; j < kr->key[i].n && !v; j++)
            v = memo_value(memo, rec, kr->key[i].path[j], &len);
        if (!v)
            return false;
        h = hash_lc(h, v, len);
        c->kv[i] = v;
        c->kvlen[i] = len;
        c->kalt[i] = (uint8_t)(j - 1);
    }
    c->key = mf_mix64(h) | 1;
    c->sev = r->has_adjust ? mf_sevexpr_eval(r->sev, rec) : r->base_sev;
    if (r->after >= 0)
        return true;
    for (i = 0; i < r->n_dim; i++) {
        struct dim_ctx dc = {&r->dim[i], c->dimh[i], &c->n_dimh[i]};

        if (r->dim[i].path[0] == '$') {
            const char *v = derived(rec, r->dim[i].path);

            if (v)
                dim_add(&dc, v, strlen(v));
        } else {
            mf_rules_each_value(rec, r->dim[i].path, visit_dim, &dc);
        }
    }
    if (r->n_dim && r->count_min <= 1) {
        bool any = false;

        for (i = 0; i < r->n_dim; i++)
            any = any || c->n_dimh[i] > 0;
        if (!any)
            return false;   /* no value to count: nothing this rule can use */
    }
    c->located = false;
    if (r->geo && g->geo && rec->client_ip[0]) {
        struct mf_geo loc;

        if (mf_geoip_lookup(g->geo, rec->client_ip, &loc) == 1 && loc.has_coords) {
            c->located = true;
            c->lat = (float)loc.lat;
            c->lon = (float)loc.lon;
        }
    }
    return !r->geo || c->located;
}

/* ====================================================================== */
/* counting and firing                                                    */
/* ====================================================================== */

/* A stable finding uid (UUID version 8 layout) from rule, key and window:
 * the same window of the same key yields the same uid in every run. */
static void
make_uid(char out[40], const char *rule_id, uint64_t key, uint32_t win)
{
    uint64_t a = mf_mix64(hash_str(0, rule_id) ^ key);
    uint64_t b = mf_mix64(a ^ ((uint64_t)win * 0xff51afd7ed558ccdULL) ^ 0x5bd1e995ULL);

    a = (a & ~0xF000ULL) | 0x8000ULL;
    b = (b & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;
    snprintf(out, 40, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(a >> 32),
             (unsigned)((a >> 16) & 0xffff), (unsigned)(a & 0xffff),
             (unsigned)(b >> 48), (unsigned long long)(b & 0xffffffffffffULL));
}

static const char **
collect(struct mf_findings *out, const struct detail *d, int kind, size_t *n)
{
    size_t cnt = d ? d->n[kind] : 0, i = 0;
    const char **v = mf_arena_alloc(&out->arena, (cnt + 1) * sizeof(*v));

    FOR_ITEMS(d, o)
        if (d->data[o] == kind && i < cnt)
            v[i++] = mf_arena_strndup(&out->arena, (const char *)&d->data[o + 2],
                                      d->data[o + 1]);
    *n = i;
    return v;
}

static const char *
entry_keytext(struct mf_findings *out, const struct entry *e)
{
    FOR_ITEMS(e->d, o)
        if (e->d->data[o] == I_KEY)
            return mf_arena_strndup(&out->arena, (const char *)&e->d->data[o + 2],
                                    e->d->data[o + 1]);
    return "";
}

/* fired_id: the record that fired, listed last when the cap left it out;
 * fs: the window's figures when it fired. */
static void
emit_entry(struct mf_aggregates *g, const struct entry *e, const struct fire *fs,
           const char *fired_id, struct mf_findings *out)
{
    const struct arule *r = &g->db->rules[e->rule];
    struct mf_finding *f = mf_findings_add(out);
    size_t i;

    make_uid(f->uid, r->id, e->key, e->win);
    f->tag = r->tag;
    f->rule = r->id;
    f->description = r->description;
    f->severity = e->sev ? e->sev : r->tag->severity;
    f->tenant = mf_arena_strdup(&out->arena, g->t[e->tenant].name);
    f->key = entry_keytext(out, e);
    f->window_start_ms = (int64_t)e->win * 1000;
    f->window_end_ms = ((int64_t)e->win + r->window_s) * 1000;
    f->first_ms = (int64_t)fs->first_s * 1000;
    f->last_ms = (int64_t)fs->last_s * 1000;
    f->count = fs->count;
    for (i = 0; i < r->n_dim; i++) {
        f->distinct[i].field = r->dim[i].field;
        f->distinct[i].n = e->d ? e->d->n[I_DIM0 + i] : 0;
    }
    f->n_distinct = r->n_dim;
    if (r->geo) {
        f->distinct[f->n_distinct].field = "ClientIP";
        f->distinct[f->n_distinct].n = e->d ? e->d->n[I_GEO] : 0;
        f->n_distinct++;
    }
    f->actors = collect(out, e->d, I_ACTOR, &f->n_actors);
    f->ips = collect(out, e->d, I_IP, &f->n_ips);
    f->objects = collect(out, e->d, I_OBJECT, &f->n_objects);
    f->ids = collect(out, e->d, I_RID, &f->n_ids);
    if (fired_id && fired_id[0] && !item_has(e->d, I_RID, fired_id, strlen(fired_id))) {
        const char **ids = mf_arena_alloc(&out->arena, (f->n_ids + 2) * sizeof(*ids));

        memcpy(ids, f->ids, f->n_ids * sizeof(*ids));
        ids[f->n_ids++] = mf_arena_strdup(&out->arena, fired_id);
        f->ids = ids;
    }
    f->distance_km = fs->dist;
}

struct pend {
    int sev;
    uint32_t t;
    const char *user, *id, *ip;
};

static void
emit_follow(struct mf_aggregates *g, const struct entry *e, const struct pend *p, size_t np,
            const char *keytext, struct mf_findings *out)
{
    const struct arule *a = &g->db->rules[e->rule];
    const struct arule *fr = &g->db->rules[a->follower];
    struct mf_finding *f = mf_findings_add(out);
    char *after = mf_arena_alloc(&out->arena, 40);
    size_t i;

    make_uid(f->uid, fr->id, e->key, e->win);
    make_uid(after, a->id, e->key, e->win);
    f->after_uid = after;
    f->tag = fr->tag;
    f->rule = fr->id;
    f->description = fr->description;
    f->tenant = mf_arena_strdup(&out->arena, g->t[e->tenant].name);
    f->key = mf_arena_strdup(&out->arena, keytext);
    f->window_start_ms = (int64_t)e->win * 1000;
    f->window_end_ms = ((int64_t)e->win + a->window_s) * 1000;
    f->actors = mf_arena_alloc(&out->arena, (np + 1) * sizeof(*f->actors));
    f->ips = mf_arena_alloc(&out->arena, (np + 1) * sizeof(*f->ips));
    f->ids = mf_arena_alloc(&out->arena, (np + 1) * sizeof(*f->ids));
    f->objects = mf_arena_alloc(&out->arena, sizeof(*f->objects));
    for (i = 0; i < np; i++) {
        size_t k;
        bool seen = false;

        if (p[i].sev > f->severity)
            f->severity = p[i].sev;
        if (i == 0 || (int64_t)p[i].t * 1000 < f->first_ms)
            f->first_ms = (int64_t)p[i].t * 1000;
        if ((int64_t)p[i].t * 1000 > f->last_ms)
            f->last_ms = (int64_t)p[i].t * 1000;
        for (k = 0; k < f->n_actors; k++)
            seen = seen || strcmp(f->actors[k], p[i].user) == 0;
        if (!seen && p[i].user[0])
            f->actors[f->n_actors++] = mf_arena_strdup(&out->arena, p[i].user);
        for (seen = false, k = 0; k < f->n_ips; k++)
            seen = seen || strcmp(f->ips[k], p[i].ip) == 0;
        if (!seen && p[i].ip[0])
            f->ips[f->n_ips++] = mf_arena_strdup(&out->arena, p[i].ip);
        if (p[i].id[0])
            f->ids[f->n_ids++] = mf_arena_strdup(&out->arena, p[i].id);
    }
    f->count = np;
}

/* I_PEND payload <-> struct pend (strings point into the payload). */
static size_t
pend_pack(unsigned char *buf, uint16_t rule, const struct pend *p)
{
    size_t n = 7, k;
    const char *s[3] = {p->user, p->id, p->ip};

    memcpy(buf, &rule, 2);
    buf[2] = (unsigned char)p->sev;
    memcpy(buf + 3, &p->t, 4);
    for (k = 0; k < 3; k++) {
        size_t l = strlen(s[k]);

        if (l > 80)
            l = 80;
        memcpy(buf + n, s[k], l);
        buf[n + l] = '\0';
        n += l + 1;
    }
    return n;
}

static void
pend_unpack(const unsigned char *p, size_t len, uint16_t *rule, struct pend *out)
{
    const char *s = (const char *)p + 7, *end = (const char *)p + len;

    memcpy(rule, p, 2);
    out->sev = p[2];
    memcpy(&out->t, p + 3, 4);
    out->user = s;
    s += strnlen(s, (size_t)(end - s)) + 1;
    out->id = s < end ? s : "";
    s += s < end ? strnlen(s, (size_t)(end - s)) + 1 : 0;
    out->ip = s < end ? s : "";
}

/* A window of rule `e->rule` fired: records of its follower noted on it or
 * on its neighbours yield the follower's finding now. 1 when one came. */
static int
check_pending(struct mf_aggregates *g, uint32_t ei, const char *keytext,
              struct mf_findings *out)
{
    const struct entry *e = &g->e[ei];
    const struct arule *a = &g->db->rules[e->rule];
    struct pend p[3 * MAX_PENDING];
    size_t np = 0;
    int k;

    for (k = -1; k <= 1; k++) {
        int64_t w = (int64_t)e->win + k * a->window_s;
        uint32_t ni;
        const struct detail *d;

        if (w < 0 || w > 0xffffffffLL ||
            !(ni = entry_find(g, e->rule, e->key, (uint32_t)w)))
            continue;
        d = g->e[ni].d;
        FOR_ITEMS(d, o) {
            uint16_t fr;

            if (d->data[o] != I_PEND || np == sizeof(p) / sizeof(p[0]))
                continue;
            pend_unpack(&d->data[o + 2], d->data[o + 1], &fr, &p[np]);
            if ((int)fr == a->follower)
                np++;
        }
    }
    if (np) {
        emit_follow(g, e, p, np, keytext, out);
        g->e[ei].flags |= E_FOLLOWED | E_FOLLOW_AT_FIRE;
    }
    return np ? 1 : 0;
}

/* The payload of the first item of kind (n bytes) into out; false when
 * the detail has none (I_FIRE, I_FFIRE). */
static bool
item_get(const struct detail *d, int kind, void *out, size_t n)
{
    FOR_ITEMS(d, o)
        if (d->data[o] == kind && d->data[o + 1] == n) {
            memcpy(out, &d->data[o + 2], n);
            return true;
        }
    return false;
}

static uint32_t
entry_new(struct mf_aggregates *g, size_t rule, uint64_t key, uint32_t win, uint32_t tidx,
          const char *keytext)
{
    uint32_t ei = entry_alloc(g);
    struct entry *e = &g->e[ei];

    e->key = key;
    e->win = win;
    e->rule = (uint16_t)rule;
    e->tenant = tidx;
    index_put(g, ei);
    lru_push(g, ei);
    item_add(g, e, I_KEY, keytext, strlen(keytext));
    return ei;
}

/* A record of an `after` rule: raise a window of the followed rule that
 * fired (this window, the one before or after), or wait on it. With no
 * window there yet, one is opened (count 0) to wait on: the records of a
 * spray may come after the success they explain. */
static void
follow(struct mf_aggregates *g, const struct contrib *c, const struct mf_record *rec,
       uint32_t idh, uint32_t tidx, struct mf_findings *out)
{
    const struct arule *a = &g->db->rules[c->rule];
    struct pend p = {c->sev, (uint32_t)(rec->time_ms / 1000),
                     rec->user_id ? rec->user_id : "", rec->id ? rec->id : "",
                     rec->client_ip};
    unsigned char buf[256];
    char kt[KEYTEXT_SIZE];
    size_t n = pend_pack(buf, (uint16_t)c->follower, &p);
    bool any = false;
    uint32_t fh;
    uint32_t ei;
    int k;

    for (k = -1; k <= 1; k++) {
        int64_t w = (int64_t)c->win + k * a->window_s;
        struct entry *e;

        if (w < 0 || w > 0xffffffffLL ||
            !(ei = entry_find(g, c->rule, c->key, (uint32_t)w)))
            continue;
        any = true;
        e = &g->e[ei];
        if (e->flags & E_FIRED) {
            if (!(e->flags & E_FOLLOWED)) {
                emit_follow(g, e, &p, 1, key_text(g->db, c, kt, sizeof(kt)), out);
                e->flags |= E_FOLLOWED;
                g->st.findings++;
                if (idh)
                    item_add(g, e, I_FFIRE, &idh, sizeof(idh));
            } else if (g->replay && idh && !(e->flags & E_FOLLOW_AT_FIRE) &&
                       item_get(e->d, I_FFIRE, &fh, sizeof(fh)) && fh == idh) {
                /* the record that raised it, again: the same finding */
                emit_follow(g, e, &p, 1, key_text(g->db, c, kt, sizeof(kt)), out);
                g->st.reemitted++;
            }
        } else if (!e->d || e->d->n[I_PEND] < MAX_PENDING) {
            item_add_unique(g, e, I_PEND, buf, n);
        }
    }
    if (!any) {
        ei = entry_new(g, c->rule, c->key, c->win, tidx, key_text(g->db, c, kt, sizeof(kt)));
        item_add(g, &g->e[ei], I_PEND, buf, n);
    }
}

/* 32 bits of the record's Id (of its text without one), never 0; 0 when
 * the record has neither. */
static uint32_t
record_id_hash(const struct mf_record *rec)
{
    uint64_t h;

    if (rec->id && rec->id[0])
        h = mf_mix64(hash_str(0, rec->id));
    else if (rec->src && rec->src_len)
        h = mf_mix64(hash_lc(0, rec->src, rec->src_len));
    else
        return 0;
    return (uint32_t)h ? (uint32_t)h : 1;
}

static void
sample(struct mf_aggregates *g, struct entry *e, int kind, const char *s, size_t n,
       unsigned cap)
{
    uint32_t h;

    if (!s || n == 0 || (e->d && e->d->n[kind] >= cap))
        return;
    if (n > SAMPLE_MAX)
        n = SAMPLE_MAX;
    h = (uint32_t)mf_mix64(hash_lc((uint64_t)kind, s, n));
    if (fixed_add_unique(g, e, I_SH, h))
        item_add(g, e, kind, s, n);
}

/* Largest qualifying distance between the record's place and the places
 * of the window's other addresses, 0 when none qualifies. */
static double
geo_check(struct mf_aggregates *g, struct entry *e, const struct arule *r,
          const struct contrib *c, const struct mf_record *rec, uint32_t t)
{
    uint32_t iph = (uint32_t)mf_mix64(hash_str(0, rec->client_ip));
    unsigned char buf[16];
    double best = 0;
    bool known = false;

    FOR_ITEMS(e->d, o) {
        uint32_t h, t2;
        float lat, lon;
        double d, hours, kmh;

        if (e->d->data[o] != I_GEO)
            continue;
        memcpy(&h, &e->d->data[o + 2], 4);
        memcpy(&lat, &e->d->data[o + 6], 4);
        memcpy(&lon, &e->d->data[o + 10], 4);
        memcpy(&t2, &e->d->data[o + 14], 4);
        if (h == iph) {
            known = true;
            continue;
        }
        d = mf_geo_distance_km(c->lat, c->lon, lat, lon);
        hours = (t > t2 ? t - t2 : t2 - t) / 3600.0;
        kmh = hours > 0 ? d / hours : 1e12;
        if (d >= r->geo_min_km && kmh >= r->geo_min_kmh && d > best)
            best = d;
    }
    if (!known && (!e->d || e->d->n[I_GEO] < MAX_GEO)) {
        memcpy(buf, &iph, 4);
        memcpy(buf + 4, &c->lat, 4);
        memcpy(buf + 8, &c->lon, 4);
        memcpy(buf + 12, &t, 4);
        item_add(g, e, I_GEO, buf, 16);
    }
    return best;
}

/* A record for a window that fired: in a replay, the record that fired it
 * (I_FIREH, one compare) yields the same finding again (and the
 * follower's, when it came with it); any other is only counted (so is a
 * duplicate of it in the same stream: one finding per window). */
static bool
fired_by(const struct entry *e, uint32_t idh)
{
    return idh && (e->flags & E_FIRED) && e->d && e->d->n[I_FIREH] &&
           fixed_has(e->d, I_FIREH, idh);
}

static void
refire(struct mf_aggregates *g, uint32_t ei, const struct contrib *c, uint32_t idh,
       const char *id, struct mf_findings *out)
{
    struct entry *e = &g->e[ei];
    struct fire fs;
    char kt[KEYTEXT_SIZE];

    if (!g->replay || !fired_by(e, idh)) {
        e->count++;
        return;
    }
    if (item_get(e->d, I_FIRE, &fs, sizeof(fs))) {
        emit_entry(g, e, &fs, id, out);
        g->st.reemitted++;
        if (e->flags & E_FOLLOW_AT_FIRE)
            g->st.reemitted += (uint64_t)check_pending(g, ei, key_text(g->db, c, kt,
                                                                      sizeof(kt)), out);
    }
}

static void
apply(struct mf_aggregates *g, const struct contrib *c, const struct mf_record *rec,
      uint32_t idh, uint32_t tidx, struct memo *memo, struct mf_findings *out)
{
    const struct mf_aggdb *db = g->db;
    const struct arule *r = &db->rules[c->rule];
    uint32_t t = (uint32_t)(rec->time_ms / 1000), ei;
    struct entry *e;
    double dist = 0;
    char kt[KEYTEXT_SIZE];
    bool fire;
    size_t i, k;

    g->st.counted++;
    if (c->follower >= 0) {
        follow(g, c, rec, idh, tidx, out);
        return;
    }
    if (!(ei = entry_find(g, c->rule, c->key, c->win)))
        ei = entry_new(g, c->rule, c->key, c->win, tidx, key_text(db, c, kt, sizeof(kt)));
    e = &g->e[ei];
    if (e->count == 0)
        e->first_s = e->last_s = t;   /* new, or only waited on by a follower */
    if (t < e->first_s)
        e->first_s = t;
    if (t > e->last_s)
        e->last_s = t;
    if (e->flags & E_FIRED) {
        refire(g, ei, c, idh, rec->id, out);
        lru_touch(g, ei);
        return;
    }
    if (idh != 0) {
        if (fixed_has(e->d, I_ID, idh))
            return;   /* the same record again: a replay or a duplicate */
        if (!e->d || e->d->n[I_ID] < (r->count_min > 64 ? r->count_min : 64))
            fixed_add(g, e, I_ID, idh);
    }
    e->count++;
    if (c->sev > e->sev)
        e->sev = (uint8_t)c->sev;
    for (i = 0; i < r->n_dim; i++)
        for (k = 0; k < c->n_dimh[i]; k++)
            if (!e->d || e->d->n[I_DIM0 + i] < r->dim[i].min)
                fixed_add_unique(g, e, I_DIM0 + (int)i, c->dimh[i][k]);
    /* a key of UserId (address) has one actor (address): kept once */
    if (!r->key_user || !e->d || !e->d->n[I_ACTOR])
        sample(g, e, I_ACTOR, rec->user_id, rec->user_id ? strlen(rec->user_id) : 0,
               db->samples);
    if (!r->key_ip || !e->d || !e->d->n[I_IP])
        sample(g, e, I_IP, rec->client_ip, strlen(rec->client_ip), db->samples);
    if (!e->d || e->d->n[I_OBJECT] < db->samples) {   /* looked up when it may be kept */
        size_t ol;
        const char *o = memo_value(memo, rec, r->object_path ? r->object_path
                                                             : object_default, &ol);

        sample(g, e, I_OBJECT, o, ol, db->samples);
    }
    /* the first related-1 Ids; the one that fires is added then */
    if (rec->id && rec->id[0] &&
        (!e->d || e->d->n[I_RID] < (db->related > 1 ? db->related - 1 : 1)))
        item_add(g, e, I_RID, rec->id, strlen(rec->id) < SAMPLE_MAX ? strlen(rec->id)
                                                                    : SAMPLE_MAX);
        /* a record counted here is new to the window (I_ID): no hash needed */
    if (r->geo && c->located)
        dist = geo_check(g, e, r, c, rec, t);
    fire = e->count >= r->count_min && (!r->geo || dist > 0);
    for (i = 0; i < r->n_dim && fire; i++)
        fire = e->d && e->d->n[I_DIM0 + i] >= r->dim[i].min;
    if (fire) {
        struct fire fs = {e->count, e->first_s, e->last_s, (float)dist};

        emit_entry(g, e, &fs, rec->id, out);
        g->st.findings++;
        e->flags |= E_FIRED;
        if (r->follower >= 0)
            g->st.findings += (uint64_t)check_pending(g, ei, key_text(db, c, kt, sizeof(kt)),
                                                      out);
        /* the detail stays (for refire) until the window closes */
        if (idh) {
            item_add(g, &g->e[ei], I_FIRE, &fs, sizeof(fs));
            fixed_add(g, &g->e[ei], I_FIREH, idh);
        }
    }
    lru_touch(g, ei);
}

/* Conditions already evaluated for this record (rules may share one). */
struct match_memo {
    const struct mf_cond *c[MAX_HIT_RULES];
    bool v[MAX_HIT_RULES];
    size_t n;
};

static bool
match_memo(struct match_memo *m, const struct mf_cond *c, const struct mf_record *rec)
{
    size_t i;
    bool v;

    for (i = 0; i < m->n; i++)
        if (m->c[i] == c)
            return m->v[i];
    v = mf_cond_eval(c, rec);
    if (m->n < MAX_HIT_RULES) {
        m->c[m->n] = c;
        m->v[m->n++] = v;
    }
    return v;
}

static size_t
feed(struct mf_aggregates *g, const struct mf_record *rec, const struct mf_tag_hits *hits,
     bool replay, struct mf_findings *out)
{
    const struct mf_aggdb *db = g->db;
    struct contrib cs[MAX_HIT_RULES];
    uint64_t cand[RULE_WORDS];
    const char *tenant;
    const size_t *pins;
    size_t i, k, w, nc = 0, n0 = out->n, n_pins;
    uint64_t tenant_h;
    uint32_t idh, tidx;
    struct memo memo;
    struct match_memo mm = {.n = 0};

    if (!rec || (rec->repairs & MF_REPAIR_TIME) || rec->time_ms < 0) {
        pthread_mutex_lock(&g->mu);
        g->st.records++;
        pthread_mutex_unlock(&g->mu);
        return 0;   /* no event time: nothing to place in a window */
    }
    tenant = rec->tenant ? rec->tenant : "";
    tenant_h = hash_str(0, tenant);
    memo.n = 0;
    memcpy(cand, db->every, sizeof(cand));
    pins = mf_opindex_find(db->ops, rec->operation ? rec->operation : "", &n_pins);
    for (i = 0; i < n_pins; i++)
        cand[pins[i] / 64] |= 1ULL << (pins[i] % 64);
    /* the candidates in table order: a bit per rule, lowest first */
    for (w = 0; nc < MAX_HIT_RULES; cand[w] &= cand[w] - 1) {
        const struct arule *r;

        while (w < RULE_WORDS && !(cand[w] & g->on[w]))
            w++;
        if (w == RULE_WORDS)
            break;
        cand[w] &= g->on[w];
        i = w * 64 + (size_t)__builtin_ctzll(cand[w]);
        r = &db->rules[i];
        if (!r->include_system && rec->is_system_actor)
            continue;
        if (r->tagged) {
            bool tagged = false;

            for (k = 0; hits && k < hits->n && !tagged; k++)
                tagged = hits->hit[k].tag == r->tagged;
            if (!tagged)
                continue;
        }
        if (r->match && !r->op_only && !match_memo(&mm, r->match, rec))
            continue;   /* an `operation:`-only match was decided by the index */
        if (read_contrib(g, i, rec, tenant_h, &memo, &cs[nc]))
            nc++;
    }
    idh = nc ? record_id_hash(rec) : 0;
    pthread_mutex_lock(&g->mu);
    g->replay = replay;
    g->st.records++;
    if (!tenant_take(g, tenant_get(g, tenant, &tidx), rec->time_ms / 1000)) {
        /* late: counted nowhere; a replay still finds the windows it fired */
        g->st.late++;
        for (i = 0; replay && i < nc; i++) {
            uint32_t ei = cs[i].follower < 0 ? entry_find(g, cs[i].rule, cs[i].key, cs[i].win)
                                             : 0;

            if (ei && fired_by(&g->e[ei], idh))
                refire(g, ei, &cs[i], idh, rec->id, out);
        }
        nc = 0;
    }
    for (i = 0; i < nc; i++) {   /* the windows' memory on its way while sweeping */
        uint32_t ei = entry_find(g, cs[i].rule, cs[i].key, cs[i].win);

        if (ei && g->e[ei].d)
            __builtin_prefetch(g->e[ei].d);
    }
    sweep(g, 2);
    for (i = 0; i < nc; i++)
        apply(g, &cs[i], rec, idh, tidx, &memo, out);
    enforce_caps(g, 0);
    pthread_mutex_unlock(&g->mu);
    return out->n - n0;
}

size_t
mf_aggregates_feed(struct mf_aggregates *g, const struct mf_record *rec,
                   const struct mf_tag_hits *hits, struct mf_findings *out)
{
    return feed(g, rec, hits, false, out);
}

size_t
mf_aggregates_feed_replay(struct mf_aggregates *g, const struct mf_record *rec,
                          const struct mf_tag_hits *hits, struct mf_findings *out)
{
    return feed(g, rec, hits, true, out);
}

/* ====================================================================== */
/* persistence                                                            */
/* ====================================================================== */

/* File: magic, then tenants, the table's rule signatures, the windows
 * (least recently used first; protected, probation, then waiting), and a
 * 64-bit FNV-1a of everything before it. Native byte order; a file from
 * another byte order fails the magic. */
static const char agg_magic[8] = {'M', 'F', 'A', 'G', 'G', 4, 0, 0};
#define AGG_ENDIAN 0x01020304u

struct wbuf {
    FILE *f;
    uint64_t h;
    bool bad;
};

static void
w_bytes(struct wbuf *w, const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t i;

    for (i = 0; i < n; i++) {
        w->h ^= b[i];
        w->h *= 0x100000001b3ULL;
    }
    if (n && fwrite(p, 1, n, w->f) != n)
        w->bad = true;
}

#define W(w, v) w_bytes((w), &(v), sizeof(v))

static void
w_entry(struct wbuf *w, const struct entry *e)
{
    uint16_t dlen = e->d ? e->d->len : 0;

    W(w, e->rule);
    W(w, e->key);
    W(w, e->win);
    W(w, e->first_s);
    W(w, e->last_s);
    W(w, e->count);
    W(w, e->tenant);
    W(w, e->flags);
    W(w, e->sev);
    W(w, dlen);
    if (dlen) {
        w_bytes(w, e->d->n, sizeof(e->d->n));
        w_bytes(w, e->d->data, dlen);
    }
}

static int
sync_dir_of(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    int fd, rc;

    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path + (slash == path)), path);
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

int
mf_aggregates_save(struct mf_aggregates *g, const char *path, struct mf_err *err)
{
    char tmp[4096];
    struct wbuf w = {NULL, 0xcbf29ce484222325ULL, false};
    uint32_t endian = AGG_ENDIAN, n, i;
    int l;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        mf_err_set(err, "%s: path too long", path);
        return -1;
    }
    if (!(w.f = fopen(tmp, "wbe"))) {
        mf_err_set(err, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    pthread_mutex_lock(&g->mu);
    w_bytes(&w, agg_magic, sizeof(agg_magic));
    W(&w, endian);
    n = g->n_t;
    W(&w, n);
    for (i = 0; i < g->n_t; i++) {
        const struct tenant *t = &g->t[i];
        uint16_t nl = (uint16_t)strlen(t->name);

        W(&w, nl);
        w_bytes(&w, t->name, nl);
        w_bytes(&w, t->ring, sizeof(t->ring));
        W(&w, t->n);
        W(&w, t->lo);
        W(&w, t->hi);
        W(&w, t->amin);
        W(&w, t->amax);
    }
    n = (uint32_t)g->db->n_rules;
    W(&w, n);
    for (i = 0; i < n; i++)
        W(&w, g->db->rules[i].sig);
    n = g->n_used;
    W(&w, n);
    for (l = N_LISTS - 1; l >= 0; l--) {
        uint32_t ei;

        for (ei = g->tail[l]; ei; ei = g->e[ei].prev)
            w_entry(&w, &g->e[ei]);
    }
    pthread_mutex_unlock(&g->mu);
    {
        uint64_t h = w.h;

        W(&w, h);
    }
    if (fflush(w.f) != 0 || fsync(fileno(w.f)) != 0)
        w.bad = true;
    if (fclose(w.f) != 0)
        w.bad = true;
    if (w.bad || rename(tmp, path) != 0) {
        mf_err_set(err, "%s: %s", w.bad ? tmp : path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    sync_dir_of(path);
    return 0;
}

struct rbuf {
    const unsigned char *p, *end;
    bool bad;
};

static void
r_bytes(struct rbuf *r, void *out, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        memset(out, 0, n);
        return;
    }
    memcpy(out, r->p, n);
    r->p += n;
}

#define R(r, v) r_bytes((r), &(v), sizeof(v))

/* Items of a loaded detail are well formed and their follower rule numbers
 * are remapped to this table's. */
static bool
detail_fix(struct detail *d, const int *map, uint32_t n_file_rules)
{
    uint16_t n[N_ITEM_KINDS] = {0};
    size_t o;

    memcpy(n, d->n, N_FIXED * sizeof(n[0]));
    if ((o = fixed_off(d, N_FIXED)) > d->len)
        return false;
    while (o < d->len) {
        size_t len;

        if (o + 2 > d->len || (len = d->data[o + 1], o + 2 + len > d->len) ||
            d->data[o] < N_FIXED || d->data[o] >= N_ITEM_KINDS)
            return false;
        if (d->data[o] == I_PEND) {
            uint16_t fr;

            if (len < 7)
                return false;
            memcpy(&fr, &d->data[o + 2], 2);
            /* a follower no longer in the table: kept, matching no rule */
            fr = (fr < n_file_rules && map[fr] >= 0) ? (uint16_t)map[fr] : 0xffff;
            memcpy(&d->data[o + 2], &fr, 2);
        }
        n[d->data[o]]++;
        o += 2 + len;
    }
    return memcmp(n, d->n, sizeof(n)) == 0;
}

static int
load_entries(struct mf_aggregates *g, struct rbuf *r, const int *map, uint32_t n_file_rules)
{
    uint32_t n, i;

    R(r, n);
    for (i = 0; i < n && !r->bad; i++) {
        struct entry e;
        uint16_t dlen;
        struct detail *d = NULL;
        uint32_t ei;

        memset(&e, 0, sizeof(e));
        R(r, e.rule);
        R(r, e.key);
        R(r, e.win);
        R(r, e.first_s);
        R(r, e.last_s);
        R(r, e.count);
        R(r, e.tenant);
        R(r, e.flags);
        R(r, e.sev);
        R(r, dlen);
        if (dlen) {
            if (dlen > DETAIL_MAX)
                return -1;
            d = mf_xcalloc(1, sizeof(*d) + dlen);
            r_bytes(r, d->n, sizeof(d->n));
            r_bytes(r, d->data, dlen);
            d->len = d->cap = dlen;
            if (r->bad || !detail_fix(d, map, n_file_rules)) {
                free(d);
                return -1;
            }
        }
        if (r->bad || e.tenant >= g->n_t || e.rule >= n_file_rules) {
            free(d);
            return -1;
        }
        if (map[e.rule] < 0 || g->n_used >= g->max_keys ||
            entry_find(g, (size_t)map[e.rule], e.key, e.win)) {
            free(d);
            g->st.load_dropped++;
            continue;
        }
        ei = entry_alloc(g);
        e.rule = (uint16_t)map[e.rule];
        e.flags = (uint8_t)((e.flags & E_KEEP) | E_USED);
        e.d = d;
        e.prev = e.next = 0;
        g->e[ei] = e;
        if (d)
            g->detail_bytes += sizeof(*d) + d->cap + MALLOC_OVERHEAD;
        index_put(g, ei);
        lru_push(g, ei);
    }
    return r->bad ? -1 : 0;
}

static int
load_state(struct mf_aggregates *g, const unsigned char *buf, size_t len)
{
    struct rbuf r = {buf, buf + len - 8, false};
    char magic[8];
    uint32_t endian, n, i, j;
    uint64_t h = 0xcbf29ce484222325ULL, stored;
    int *map = NULL, rc = -1;
    size_t k;

    if (len < sizeof(magic) + 8)
        return -1;
    for (k = 0; k < len - 8; k++) {
        h ^= buf[k];
        h *= 0x100000001b3ULL;
    }
    memcpy(&stored, buf + len - 8, 8);
    R(&r, magic);
    R(&r, endian);
    if (memcmp(magic, agg_magic, sizeof(magic)) != 0 || endian != AGG_ENDIAN ||
        stored != h)
        return -1;
    R(&r, n);
    for (i = 0; i < n && !r.bad; i++) {
        uint16_t nl;
        char name[1024];
        struct tenant tmp, *t;
        uint32_t ti;

        R(&r, nl);
        if (nl >= sizeof(name))
            return -1;
        r_bytes(&r, name, nl);
        name[nl] = '\0';
        r_bytes(&r, tmp.ring, sizeof(tmp.ring));
        R(&r, tmp.n);
        R(&r, tmp.lo);
        R(&r, tmp.hi);
        R(&r, tmp.amin);
        R(&r, tmp.amax);
        if (r.bad)
            return -1;
        t = i == 0 ? &g->t[0] : tenant_get(g, name, &ti);
        if (i != 0 && ti != i)
            return -1;   /* a duplicate tenant name */
        memcpy(t->ring, tmp.ring, sizeof(tmp.ring));
        t->n = tmp.n;
        t->lo = tmp.lo;
        t->hi = tmp.hi;
        t->amin = tmp.amin;
        t->amax = tmp.amax;
    }
    R(&r, n);
    if (r.bad || n > 65535)
        return -1;
    map = mf_xcalloc(n + 1, sizeof(*map));
    for (i = 0; i < n; i++) {
        uint64_t sig;

        R(&r, sig);
        map[i] = -1;
        for (j = 0; j < g->db->n_rules; j++)
            if (g->db->rules[j].sig == sig)
                map[i] = (int)j;
    }
    if (!r.bad)
        rc = load_entries(g, &r, map, n);
    if (rc == 0 && r.p != r.end)
        rc = -1;
    free(map);
    return rc;
}

int
mf_aggregates_load(struct mf_aggregates *g, const char *path, struct mf_err *err)
{
    struct mf_buf b;
    int rc = 0;

    mf_buf_init(&b, 0);
    if (mf_buf_read_file(&b, path) != 0) {
        mf_buf_fini(&b);
        if (errno == ENOENT)
            return 0;
        mf_err_set(err, "%s: %s", path, strerror(errno));
        return -1;
    }
    pthread_mutex_lock(&g->mu);
    state_clear(g);
    if (load_state(g, (const unsigned char *)b.data, b.len) != 0) {
        state_clear(g);
        mf_err_set(err, "%s: not a saved aggregate state of this version, or "
                   "damaged; starting empty", path);
        rc = -1;
    }
    pthread_mutex_unlock(&g->mu);
    mf_buf_fini(&b);
    return rc;
}
