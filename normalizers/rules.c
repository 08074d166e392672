/* rules.c - compile and evaluate risk-tag conditions (docs/rules.md).
 *
 * A condition mapping has exactly one primary key:
 *   operation, operation_matches, record_type, workload, user_type, outcome,
 *   system_actor, field (+ operators), any, all, not.
 * Field operators: exists, nonempty, equals, contains, matches, gt, ge, lt,
 * le, min_len, max_len, external, equals_field. Several operators on one
 * field must hold for the same value.
 */
#include "rules.h"

#include <ctype.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "buf.h"
#include "mem.h"

enum cond_kind {
    C_OPERATION = 0,
    C_OPERATION_RE,
    C_RECORD_TYPE,
    C_WORKLOAD,
    C_USER_TYPE,
    C_OUTCOME,
    C_SYSTEM_ACTOR,
    C_FIELD,
    C_ANY,
    C_ALL,
    C_NOT,
};

enum fop_kind {
    F_NONEMPTY = 0,
    F_EQUALS,
    F_CONTAINS,
    F_MATCHES,
    F_GT,
    F_GE,
    F_LT,
    F_LE,
    F_MIN_LEN,
    F_MAX_LEN,
    F_EXTERNAL,
    F_EQUALS_FIELD,
};

struct fop {
    enum fop_kind kind;
    const char **strs;       /* EQUALS, CONTAINS */
    size_t n;
    regex_t *re;             /* MATCHES */
    double num;              /* GT..LE, MIN_LEN, MAX_LEN */
    const char *path;        /* EQUALS_FIELD */
};

struct mf_cond {
    enum cond_kind kind;
    bool negate;             /* FIELD: "exists: false" / "nonempty: false" */
    bool flag;               /* SYSTEM_ACTOR */
    const char **strs;       /* OPERATION (lower-cased), WORKLOAD */
    int *ints;               /* RECORD_TYPE, USER_TYPE, OUTCOME */
    size_t n;
    regex_t *re;             /* OPERATION_RE */
    const char *path;        /* FIELD */
    struct fop *ops;
    size_t n_ops;
    const struct mf_cond **kids;   /* ANY, ALL, NOT */
};

struct sev_adjust {
    const struct mf_cond *when;
    bool add;                /* false: set */
    int value;
};

struct sev_map_ent {
    const char *key;
    int value;
};

struct mf_sevexpr {
    int base;
    const char *from_path;   /* NULL: no severity_from */
    struct sev_map_ent *map;
    size_t n_map;
    struct sev_adjust *adj;
    size_t n_adj;
};

struct mf_rules {
    char *name;
    struct mf_arena arena;
    regex_t **res;
    size_t n_res, cap_res;
    const char *const *fields;   /* declared record fields, or NULL */
    size_t n_fields;
};

/* ---- storage ---------------------------------------------------------- */

struct mf_rules *
mf_rules_new(const char *name)
{
    struct mf_rules *rs = mf_xcalloc(1, sizeof(*rs));

    rs->name = mf_xstrdup(name ? name : "rules");
    mf_arena_init(&rs->arena, 16384);
    return rs;
}

void
mf_rules_set_fields(struct mf_rules *rs, const char *const *fields, size_t n)
{
    rs->fields = fields;
    rs->n_fields = n;
}

void
mf_rules_destroy(struct mf_rules *rs)
{
    size_t i;

    if (!rs)
        return;
    for (i = 0; i < rs->n_res; i++) {
        regfree(rs->res[i]);
        free(rs->res[i]);
    }
    free(rs->res);
    mf_arena_fini(&rs->arena);
    free(rs->name);
    free(rs);
}

void *
mf_rules_alloc(struct mf_rules *rs, size_t n)
{
    return mf_arena_calloc(&rs->arena, n ? n : 1);
}

char *
mf_rules_strdup(struct mf_rules *rs, const char *s)
{
    return mf_arena_strdup(&rs->arena, s ? s : "");
}

static void
set_err(const struct mf_rules *rs, const struct mf_jval *at, char *err,
        size_t errsz, const char *fmt, ...)
{
    va_list ap;
    char msg[200];

    if (!err || errsz == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(err, errsz, "%s:%u: %s", rs->name,
             at ? (unsigned)at->line : 0u, msg);
}

static regex_t *
compile_re(struct mf_rules *rs, const struct mf_jval *v, char *err,
           size_t errsz)
{
    regex_t *re;
    int rc;
    char ebuf[120];

    if (!mf_jis_str(v) || v->len == 0) {
        set_err(rs, v, err, errsz, "a regular expression must be a non-empty string");
        return NULL;
    }
    re = mf_xmalloc(sizeof(*re));
    rc = regcomp(re, v->u.s, REG_EXTENDED | REG_ICASE | REG_NOSUB);
    if (rc != 0) {
        regerror(rc, re, ebuf, sizeof(ebuf));
        free(re);
        set_err(rs, v, err, errsz, "bad regular expression '%s': %s",
                v->u.s, ebuf);
        return NULL;
    }
    if (rs->n_res == rs->cap_res) {
        rs->cap_res = rs->cap_res ? rs->cap_res * 2 : 32;
        rs->res = mf_xrealloc(rs->res, rs->cap_res * sizeof(*rs->res));
    }
    rs->res[rs->n_res++] = re;
    return re;
}

/* A scalar or a list: its items (*one holds the scalar). 0 with an error
 * for an empty list. */
static size_t
scalar_items(struct mf_rules *rs, const struct mf_jval *v,
             const struct mf_jval **one, const struct mf_jval *const **items,
             char *err, size_t errsz)
{
    if (mf_jis_arr(v)) {
        *items = (const struct mf_jval *const *)v->u.items;
        if (v->len == 0)
            set_err(rs, v, err, errsz, "empty list");
        return v->len;
    }
    *one = v;
    *items = one;
    return 1;
}

/* Scalar or list of scalars -> array of strings (lower-cased if asked). */
static const char **
compile_strs(struct mf_rules *rs, const struct mf_jval *v, size_t *n,
             bool lower, char *err, size_t errsz)
{
    const struct mf_jval *one;
    const struct mf_jval *const *items;
    const char **out;
    size_t cnt, i;

    if ((cnt = scalar_items(rs, v, &one, &items, err, errsz)) == 0)
        return NULL;
    out = mf_arena_alloc(&rs->arena, cnt * sizeof(*out));
    for (i = 0; i < cnt; i++) {
        size_t len;
        const char *t = mf_jscalar_text(items[i], &len);
        char *s;

        if (!t || items[i]->type == MF_JNULL) {
            set_err(rs, items[i], err, errsz, "expected a scalar value");
            return NULL;
        }
        s = mf_arena_strndup(&rs->arena, t, len);
        if (lower) {
            char *p;

            for (p = s; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        }
        out[i] = s;
    }
    *n = cnt;
    return out;
}

static int *
compile_ints(struct mf_rules *rs, const struct mf_jval *v, size_t *n,
             char *err, size_t errsz)
{
    const struct mf_jval *one;
    const struct mf_jval *const *items;
    int *out;
    size_t cnt, i;

    if ((cnt = scalar_items(rs, v, &one, &items, err, errsz)) == 0)
        return NULL;
    out = mf_arena_alloc(&rs->arena, cnt * sizeof(*out));
    for (i = 0; i < cnt; i++) {
        int64_t x;

        if (!mf_jis(items[i], MF_JNUM) || mf_jget_int(items[i], &x) != 0 ||
            x < -1000000 || x > 1000000) {
            set_err(rs, items[i], err, errsz, "expected an integer");
            return NULL;
        }
        out[i] = (int)x;
    }
    *n = cnt;
    return out;
}

static int
compile_number(struct mf_rules *rs, const struct mf_jval *v, double *out,
               char *err, size_t errsz)
{
    char *end;

    if (!mf_jis(v, MF_JNUM)) {
        set_err(rs, v, err, errsz, "expected a number");
        return -1;
    }
    *out = strtod(v->u.s, &end);
    return 0;
}

static int
compile_bool(struct mf_rules *rs, const struct mf_jval *v, bool *out,
             char *err, size_t errsz)
{
    if (mf_jis(v, MF_JTRUE)) {
        *out = true;
        return 0;
    }
    if (mf_jis(v, MF_JFALSE)) {
        *out = false;
        return 0;
    }
    set_err(rs, v, err, errsz, "expected true or false");
    return -1;
}

static const char *
compile_path(struct mf_rules *rs, const struct mf_jval *v, char *err,
             size_t errsz)
{
    char *p, *s;

    if (!mf_jis_str(v) || v->len == 0 || v->u.s[0] == '.' ||
        v->u.s[v->len - 1] == '.') {
        set_err(rs, v, err, errsz, "a field path must be a non-empty dotted name");
        return NULL;
    }
    s = mf_arena_strndup(&rs->arena, v->u.s, v->len);
    for (p = s; *p; p++)
        if (p[0] == '.' && p[1] == '.') {
            set_err(rs, v, err, errsz, "empty segment in field path '%s'", s);
            return NULL;
        }
    if (rs->fields) {
        size_t first = strcspn(s, ".");
        size_t i;

        for (i = 0; i < rs->n_fields; i++)
            if (strlen(rs->fields[i]) == first &&
                strncasecmp(rs->fields[i], s, first) == 0)
                break;
        if (i == rs->n_fields) {
            set_err(rs, v, err, errsz,
                    "unknown record field '%.*s' in path '%s' (declare it under "
                    "'fields')", (int)first, s, s);
            return NULL;
        }
    }
    return s;
}

/* ---- tables ----------------------------------------------------------- */

long
mf_rules_pick(const struct mf_jval *t, const char *const *keys, size_t n,
              const struct mf_jval **vals)
{
    size_t i, j;

    for (i = 0; i < t->len; i++) {
        for (j = 0; j < n; j++)
            if (strcmp(t->u.mem[i].key, keys[j]) == 0)
                break;
        if (j == n)
            return (long)i;
        vals[j] = t->u.mem[i].val;
    }
    return -1;
}

static int
table_fail(const struct mf_jval **at, const struct mf_jval *where, char *msg,
           size_t msgsz, const char *text)
{
    *at = where;
    snprintf(msg, msgsz, "%s", text);
    return -1;
}

int
mf_rules_load_fields(struct mf_rules *rs, const struct mf_jval *fields,
                     const struct mf_jval **at, char *msg, size_t msgsz)
{
    const char **list;
    size_t i;

    if (!mf_jis_arr(fields) || fields->len == 0)
        return table_fail(at, fields, msg, msgsz,
                          "'fields' must be a non-empty list of record fields");
    list = mf_rules_alloc(rs, fields->len * sizeof(*list));
    for (i = 0; i < fields->len; i++) {
        const struct mf_jval *f = fields->u.items[i];

        if (!mf_jis_str(f) || f->len == 0 || strchr(f->u.s, '.'))
            return table_fail(at, f, msg, msgsz,
                              "'fields' entries are top-level record field names");
        list[i] = mf_rules_strdup(rs, f->u.s);
    }
    mf_rules_set_fields(rs, list, fields->len);
    return 0;
}

/* ---- compile ---------------------------------------------------------- */

static const char *const primary_keys[] = {
    "operation", "operation_matches", "record_type", "workload", "user_type",
    "outcome", "system_actor", "field", "any", "all", "not",
};
#define N_PRIMARY (sizeof(primary_keys) / sizeof(primary_keys[0]))

static const char *const fop_keys[] = {
    "nonempty", "equals", "contains", "matches", "gt", "ge", "lt", "le",
    "min_len", "max_len", "external", "equals_field",
};
#define N_FOP (sizeof(fop_keys) / sizeof(fop_keys[0]))

static int
key_index(const char *const *keys, size_t n, const char *k)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(keys[i], k) == 0)
            return (int)i;
    return -1;
}

static const struct mf_cond *compile_cond(struct mf_rules *rs,
                                          const struct mf_jval *node,
                                          char *err, size_t errsz, int depth);

/* One operator of a field condition (op->kind set). */
static int
compile_fop(struct mf_rules *rs, struct mf_cond *c, struct fop *op,
            const struct mf_jval *v, char *err, size_t errsz)
{
    bool b;

    switch (op->kind) {
    case F_NONEMPTY:
        if (compile_bool(rs, v, &b, err, errsz) != 0)
            return -1;
        if (!b) {
            /* "nonempty: false" = no non-empty value */
            if (c->negate) {
                set_err(rs, v, err, errsz, "only one negated operator per field");
                return -1;
            }
            c->negate = true;
        }
        break;
    case F_MATCHES:
        op->re = compile_re(rs, v, err, errsz);
        return op->re ? 0 : -1;
    case F_EQUALS:
    case F_CONTAINS:
        op->strs = compile_strs(rs, v, &op->n, false, err, errsz);
        return op->strs ? 0 : -1;
    case F_GT:
    case F_GE:
    case F_LT:
    case F_LE:
    case F_MIN_LEN:
    case F_MAX_LEN:
        return compile_number(rs, v, &op->num, err, errsz);
    case F_EXTERNAL:
        if (compile_bool(rs, v, &b, err, errsz) != 0)
            return -1;
        if (!b) {
            set_err(rs, v, err, errsz, "'external' only takes true (use not)");
            return -1;
        }
        break;
    case F_EQUALS_FIELD:
        op->path = compile_path(rs, v, err, errsz);
        return op->path ? 0 : -1;
    }
    return 0;
}

/* The operators of a field condition agree with each other. */
static int
check_field(struct mf_rules *rs, struct mf_cond *c, const struct mf_jval *node,
            size_t n_ops, bool have_exists, bool exists_val, char *err,
            size_t errsz)
{
    if (!c->path) {
        set_err(rs, node, err, errsz, "field condition without 'field'");
        return -1;
    }
    if (have_exists) {
        if (n_ops > 0 || c->negate) {
            set_err(rs, node, err, errsz,
                    "'exists' cannot be combined with other operators");
            return -1;
        }
        c->negate = !exists_val;
    } else if (n_ops == 0) {
        set_err(rs, node, err, errsz, "field '%s' has no operator", c->path);
        return -1;
    }
    if (c->negate && n_ops > 1) {
        set_err(rs, node, err, errsz,
                "'nonempty: false' cannot be combined with other operators");
        return -1;
    }
    c->n_ops = n_ops;
    return 0;
}

static int
compile_field(struct mf_rules *rs, struct mf_cond *c,
              const struct mf_jval *node, char *err, size_t errsz)
{
    size_t i, n_ops = 0;
    bool have_exists = false, exists_val = true;

    c->ops = mf_arena_calloc(&rs->arena, node->len * sizeof(*c->ops));
    for (i = 0; i < node->len; i++) {
        const char *k = node->u.mem[i].key;
        const struct mf_jval *v = node->u.mem[i].val;
        int ki;

        if (strcmp(k, "field") == 0) {
            c->path = compile_path(rs, v, err, errsz);
            if (!c->path)
                return -1;
            continue;
        }
        if (strcmp(k, "exists") == 0) {
            if (compile_bool(rs, v, &exists_val, err, errsz) != 0)
                return -1;
            have_exists = true;
            continue;
        }
        ki = key_index(fop_keys, N_FOP, k);
        if (ki < 0) {
            set_err(rs, v, err, errsz, "unknown field operator '%s'", k);
            return -1;
        }
        c->ops[n_ops].kind = (enum fop_kind)ki;
        if (compile_fop(rs, c, &c->ops[n_ops], v, err, errsz) != 0)
            return -1;
        n_ops++;
    }
    return check_field(rs, c, node, n_ops, have_exists, exists_val, err, errsz);
}

/* The one primary key of a condition mapping: its index, *primary and *pv;
 * -1 with an error. */
static int
cond_primary(struct mf_rules *rs, const struct mf_jval *node, const char **primary,
             const struct mf_jval **pv, char *err, size_t errsz)
{
    size_t i;
    int pk = -1;

    for (i = 0; i < node->len; i++) {
        const char *k = node->u.mem[i].key;
        int ki = key_index(primary_keys, N_PRIMARY, k);

        if (ki < 0) {
            if (key_index(fop_keys, N_FOP, k) >= 0 || strcmp(k, "exists") == 0 ||
                mf_jobj_get(node, "field"))
                continue;   /* checked by compile_field */
            set_err(rs, node->u.mem[i].val, err, errsz,
                    "unknown primitive '%s'", k);
            return -1;
        }
        if (*primary) {
            set_err(rs, node->u.mem[i].val, err, errsz,
                    "'%s' and '%s' in one condition (use all:)", *primary, k);
            return -1;
        }
        *primary = k;
        pk = ki;
        *pv = node->u.mem[i].val;
    }
    if (!*primary) {
        set_err(rs, node, err, errsz, "field operator without 'field'");
        return -1;
    }
    return pk;
}

static int
compile_outcome(struct mf_rules *rs, struct mf_cond *c, const struct mf_jval *pv,
                char *err, size_t errsz)
{
    const char **names = compile_strs(rs, pv, &c->n, true, err, errsz);
    size_t i;

    if (!names)
        return -1;
    c->ints = mf_arena_alloc(&rs->arena, c->n * sizeof(int));
    for (i = 0; i < c->n; i++) {
        if (strcmp(names[i], "success") == 0)
            c->ints[i] = MF_OUTCOME_SUCCESS;
        else if (strcmp(names[i], "failure") == 0)
            c->ints[i] = MF_OUTCOME_FAILURE;
        else if (strcmp(names[i], "unknown") == 0)
            c->ints[i] = MF_OUTCOME_UNKNOWN;
        else {
            set_err(rs, pv, err, errsz,
                    "outcome must be success, failure or unknown");
            return -1;
        }
    }
    return 0;
}

/* any, all (a non-empty list of conditions), not (one). */
static int
compile_kids(struct mf_rules *rs, struct mf_cond *c, const char *primary,
             const struct mf_jval *pv, char *err, size_t errsz, int depth)
{
    size_t i;

    if (c->kind == C_NOT) {
        c->n = 1;
        c->kids = mf_arena_alloc(&rs->arena, sizeof(*c->kids));
        c->kids[0] = compile_cond(rs, pv, err, errsz, depth + 1);
        return c->kids[0] ? 0 : -1;
    }
    if (!mf_jis_arr(pv) || pv->len == 0) {
        set_err(rs, pv, err, errsz, "'%s' needs a non-empty list", primary);
        return -1;
    }
    c->n = pv->len;
    c->kids = mf_arena_alloc(&rs->arena, c->n * sizeof(*c->kids));
    for (i = 0; i < c->n; i++) {
        c->kids[i] = compile_cond(rs, pv->u.items[i], err, errsz, depth + 1);
        if (!c->kids[i])
            return -1;
    }
    return 0;
}

/* The value of the primary key pv, by kind. */
static int
compile_primary(struct mf_rules *rs, struct mf_cond *c, const char *primary,
                const struct mf_jval *pv, const struct mf_jval *node, char *err,
                size_t errsz, int depth)
{
    size_t i;

    switch (c->kind) {
    case C_OPERATION:
        c->strs = compile_strs(rs, pv, &c->n, true, err, errsz);
        if (!c->strs)
            return -1;
        for (i = 0; i < c->n; i++)
            if (strlen(c->strs[i]) >= MF_RULES_OP_MAX) {
                set_err(rs, pv, err, errsz, "operation name too long");
                return -1;
            }
        return 0;
    case C_WORKLOAD:
        c->strs = compile_strs(rs, pv, &c->n, false, err, errsz);
        return c->strs ? 0 : -1;
    case C_OPERATION_RE:
        c->re = compile_re(rs, pv, err, errsz);
        return c->re ? 0 : -1;
    case C_RECORD_TYPE:
    case C_USER_TYPE:
        c->ints = compile_ints(rs, pv, &c->n, err, errsz);
        return c->ints ? 0 : -1;
    case C_OUTCOME:
        return compile_outcome(rs, c, pv, err, errsz);
    case C_SYSTEM_ACTOR:
        return compile_bool(rs, pv, &c->flag, err, errsz);
    case C_FIELD:
        return compile_field(rs, c, node, err, errsz);
    case C_ANY:
    case C_ALL:
    case C_NOT:
        return compile_kids(rs, c, primary, pv, err, errsz, depth);
    }
    return 0;
}

static const struct mf_cond *
compile_cond(struct mf_rules *rs, const struct mf_jval *node, char *err,
             size_t errsz, int depth)
{
    struct mf_cond *c;
    const char *primary = NULL;
    const struct mf_jval *pv = NULL;
    int pk;

    if (depth > 32) {
        set_err(rs, node, err, errsz, "conditions nested too deeply");
        return NULL;
    }
    if (!mf_jis_obj(node) || node->len == 0) {
        set_err(rs, node, err, errsz, "a condition must be a non-empty mapping");
        return NULL;
    }
    if ((pk = cond_primary(rs, node, &primary, &pv, err, errsz)) < 0)
        return NULL;
    c = mf_arena_calloc(&rs->arena, sizeof(*c));
    c->kind = (enum cond_kind)pk;
    if (c->kind != C_FIELD && node->len != 1) {
        set_err(rs, node, err, errsz, "operators given to '%s'", primary);
        return NULL;
    }
    if (compile_primary(rs, c, primary, pv, node, err, errsz, depth) != 0)
        return NULL;
    return c;
}

const struct mf_cond *
mf_rules_compile(struct mf_rules *rs, const struct mf_jval *node, char *err,
                 size_t errsz)
{
    return compile_cond(rs, node, err, errsz, 0);
}

/* ---- pinning ---------------------------------------------------------- */

bool
mf_cond_pinned(const struct mf_cond *c)
{
    size_t i;

    switch (c->kind) {
    case C_OPERATION:
        return true;
    case C_ALL:
        for (i = 0; i < c->n; i++)
            if (mf_cond_pinned(c->kids[i]))
                return true;
        return false;
    case C_ANY:
        for (i = 0; i < c->n; i++)
            if (!mf_cond_pinned(c->kids[i]))
                return false;
        return true;
    default:
        return false;
    }
}

void
mf_cond_each_op(const struct mf_cond *c,
                void (*fn)(void *ud, const char *op_lc), void *ud)
{
    size_t i;

    switch (c->kind) {
    case C_OPERATION:
        for (i = 0; i < c->n; i++)
            fn(ud, c->strs[i]);
        break;
    case C_ALL:
        /* the first pinned child is enough: all must hold */
        for (i = 0; i < c->n; i++)
            if (mf_cond_pinned(c->kids[i])) {
                mf_cond_each_op(c->kids[i], fn, ud);
                return;
            }
        break;
    case C_ANY:
        for (i = 0; i < c->n; i++)
            mf_cond_each_op(c->kids[i], fn, ud);
        break;
    default:
        break;
    }
}

/* ---- evaluation: values ----------------------------------------------- */

/* Text used for string operators: scalars as they are, containers as their
 * compact JSON. *tmp receives memory to free (NULL for scalars). */
static const char *
value_text(const struct mf_jval *v, size_t *len, char **tmp)
{
    const char *t;
    struct mf_buf b;

    *tmp = NULL;
    t = mf_jscalar_text(v, len);
    if (t)
        return t;
    mf_buf_init(&b, 0);
    if (mf_json_write(&b, v) != 0 || !b.data) {
        mf_buf_fini(&b);
        *len = 0;
        return "";
    }
    *tmp = b.data;   /* the buffer's memory is plain malloc */
    *len = b.len;
    return b.data;
}

static bool
is_empty_value(const struct mf_jval *v)
{
    const char *s;
    size_t i;

    if (!v || v->type == MF_JNULL)
        return true;
    if (v->type == MF_JARR || v->type == MF_JOBJ)
        return v->len == 0;
    if (v->type != MF_JSTR)
        return false;
    if (mf_jis_nullish(v))
        return true;
    s = v->u.s;
    for (i = 0; i < v->len && isspace((unsigned char)s[i]); i++)
        ;
    if (i == v->len)
        return true;
    /* "[]", "{}", "$null" with optional blanks */
    if (s[i] == '[' || s[i] == '{') {
        char close = s[i] == '[' ? ']' : '}';
        size_t j = i + 1;

        while (j < v->len && isspace((unsigned char)s[j]))
            j++;
        if (j < v->len && s[j] == close) {
            j++;
            while (j < v->len && isspace((unsigned char)s[j]))
                j++;
            return j == v->len;
        }
        return false;
    }
    return strcasecmp(s + i, "$null") == 0;
}

static bool
parse_num(const struct mf_jval *v, double *out)
{
    size_t len;
    const char *t;
    char buf[64], *end;

    if (!v || (v->type != MF_JNUM && v->type != MF_JSTR))
        return false;
    t = mf_jscalar_text(v, &len);
    while (len > 0 && isspace((unsigned char)*t)) {
        t++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)t[len - 1]))
        len--;
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, t, len);
    buf[len] = '\0';
    *out = strtod(buf, &end);
    return *end == '\0';
}

static size_t
utf8_chars(const char *s, size_t len)
{
    size_t i, n = 0;

    for (i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

/* case-insensitive substring with explicit haystack length */
static bool
contains_ci(const char *h, size_t hlen, const char *n)
{
    size_t nlen = strlen(n), i;

    if (nlen == 0)
        return true;
    if (nlen > hlen)
        return false;
    for (i = 0; i + nlen <= hlen; i++)
        if (strncasecmp(h + i, n, nlen) == 0)
            return true;
    return false;
}

/* ---- external addresses ----------------------------------------------- */

static bool
dom_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '.' || ch == '-';
}

static bool
local_char(char ch)
{
    return isalnum((unsigned char)ch) || strchr("._%+-'!#$&*=?^`{|}~", ch);
}

/* domain after the last '@' of s, or NULL */
static const char *
domain_of(const char *s, size_t *len)
{
    const char *at, *e;

    if (!s)
        return NULL;
    at = strrchr(s, '@');
    if (!at || !at[1])
        return NULL;
    at++;
    for (e = at; *e && dom_char(*e); e++)
        ;
    while (e > at && e[-1] == '.')
        e--;
    if (e == at)
        return NULL;
    *len = (size_t)(e - at);
    return at;
}

static bool
dom_is_under(const char *d, size_t dlen, const char *org, size_t olen)
{
    if (dlen == olen)
        return strncasecmp(d, org, dlen) == 0;
    if (dlen > olen && d[dlen - olen - 1] == '.')
        return strncasecmp(d + dlen - olen, org, olen) == 0;
    return false;
}

struct orgdoms {
    const char *d[3];
    size_t len[3];
    size_t n;
    const char *tenant;      /* "contoso" of contoso.onmicrosoft.com */
    size_t tenant_len;
    /* the tenant's accepted domains when configured: then the only ones */
    const char *const *accepted;
    size_t n_accepted;
};

static void
orgdoms_add(struct orgdoms *o, const char *d, size_t len)
{
    static const char onms[] = ".onmicrosoft.com";
    size_t sl = sizeof(onms) - 1;

    if (!d || len == 0 || o->n >= 3)
        return;
    o->d[o->n] = d;
    o->len[o->n] = len;
    o->n++;
    if (!o->tenant && len > sl && strncasecmp(d + len - sl, onms, sl) == 0) {
        const char *dot = memchr(d, '.', len);

        o->tenant = d;
        o->tenant_len = (size_t)(dot - d);
    }
}

static void
orgdoms_init(struct orgdoms *o, const struct mf_record *r)
{
    size_t len = 0;
    const char *d, *org;

    memset(o, 0, sizeof(*o));
    if (r->n_domains > 0) {
        o->accepted = r->domains;
        o->n_accepted = r->n_domains;
        return;
    }
    d = domain_of(r->user_id, &len);
    if (d)
        orgdoms_add(o, d, len);
    d = domain_of(mf_record_str(r, "MailboxOwnerUPN"), &len);
    if (d)
        orgdoms_add(o, d, len);
    org = mf_record_str(r, "OrganizationName");
    if (org && *org && !strchr(org, '@')) {
        for (len = 0; org[len] && dom_char(org[len]); len++)
            ;
        if (len > 0 && memchr(org, '.', len))
            orgdoms_add(o, org, len);
    }
}

static bool
addr_external(const struct orgdoms *o, const char *d, size_t dlen)
{
    size_t i;
    const char *dot;

    if (o->n_accepted > 0) {
        for (i = 0; i < o->n_accepted; i++)
            if (o->accepted[i] &&
                dom_is_under(d, dlen, o->accepted[i], strlen(o->accepted[i])))
                return false;
        return true;
    }
    for (i = 0; i < o->n; i++)
        if (dom_is_under(d, dlen, o->d[i], o->len[i]))
            return false;
    /* vanity domain of the same tenant: contoso.com vs contoso.onmicrosoft.com */
    if (o->tenant) {
        dot = memchr(d, '.', dlen);
        if (dot && (size_t)(dot - d) == o->tenant_len &&
            strncasecmp(d, o->tenant, o->tenant_len) == 0)
            return false;
    }
    return true;
}

static bool
text_external(const struct orgdoms *o, const char *t, size_t len)
{
    size_t i;

    if (o->n == 0 && o->n_accepted == 0)
        return false;   /* the actor's organisation is unknown: cannot tell */
    for (i = 0; i < len; i++) {
        size_t s, e;

        if (t[i] != '@')
            continue;
        if (i == 0 || !local_char(t[i - 1]))
            continue;
        s = i + 1;
        for (e = s; e < len && dom_char(t[e]); e++)
            ;
        while (e > s && t[e - 1] == '.')
            e--;
        if (e == s || !memchr(t + s, '.', e - s))
            continue;
        if (addr_external(o, t + s, e - s))
            return true;
        i = e - 1;
    }
    return false;
}

bool
mf_rules_text_external(const struct mf_record *r, const char *text,
                       size_t len)
{
    struct orgdoms o;

    if (!text)
        return false;
    orgdoms_init(&o, r);
    return text_external(&o, text, len);
}

/* ---- evaluation: paths ------------------------------------------------ */

typedef bool (*visit_fn)(void *ud, const struct mf_jval *v);

/* Visit every value reached by rest from v (arrays fanned out); stops and
 * returns true as soon as fn returns true. */
static bool
walk(const struct mf_jval *v, const char *rest, size_t rlen, visit_fn fn,
     void *ud, int depth)
{
    size_t i;

    if (!v || depth > 600)
        return false;
    if (v->type == MF_JARR) {
        for (i = 0; i < v->len; i++)
            if (walk(v->u.items[i], rest, rlen, fn, ud, depth + 1))
                return true;
        return false;
    }
    if (rlen == 0)
        return fn(ud, v);
    if (v->type != MF_JOBJ)
        return false;
    if (rest[0] == '*' && (rlen == 1 || rest[1] == '.')) {
        const char *nr = rlen == 1 ? rest + 1 : rest + 2;
        size_t nl = rlen == 1 ? 0 : rlen - 2;

        for (i = 0; i < v->len; i++)
            if (walk(v->u.mem[i].val, nr, nl, fn, ud, depth + 1))
                return true;
        return false;
    }
    for (i = 0; i < v->len; i++) {
        const struct mf_jmem *m = &v->u.mem[i];
        size_t kl = m->klen;

        if (kl == 0 || kl > rlen || (kl < rlen && rest[kl] != '.') ||
            ((m->key[0] ^ rest[0]) & ~0x20) != 0 ||   /* cheap tests first */
            strncasecmp(m->key, rest, kl) != 0)
            continue;
        if (kl == rlen) {
            if (walk(m->val, rest + kl, 0, fn, ud, depth + 1))
                return true;
        } else if (rest[kl] == '.') {
            if (walk(m->val, rest + kl + 1, rlen - kl - 1, fn, ud, depth + 1))
                return true;
        }
    }
    return false;
}

struct field_ctx {
    const struct mf_cond *c;
    const struct mf_record *r;
    struct orgdoms od;
    bool od_ready;
};

static bool
visit_exists(void *ud, const struct mf_jval *v)
{
    (void)ud;
    (void)v;
    return true;
}

struct eqf_ctx {
    const char *t;
    size_t len;
};

static bool
visit_eqf(void *ud, const struct mf_jval *v)
{
    const struct eqf_ctx *e = ud;
    size_t len;
    const char *t = mf_jscalar_text(v, &len);

    return t && v->type != MF_JNULL && len == e->len &&
           strncasecmp(t, e->t, len) == 0;
}

static bool
op_holds(struct field_ctx *fc, const struct fop *op, const struct mf_jval *v,
         const char *t, size_t len, bool scalar)
{
    size_t i;
    double x;

    switch (op->kind) {
    case F_NONEMPTY:
        return !is_empty_value(v);
    case F_EQUALS:
        if (!scalar || v->type == MF_JNULL)
            return false;
        for (i = 0; i < op->n; i++)
            if (strlen(op->strs[i]) == len &&
                strncasecmp(op->strs[i], t, len) == 0)
                return true;
        return false;
    case F_CONTAINS:
        for (i = 0; i < op->n; i++)
            if (contains_ci(t, len, op->strs[i]))
                return true;
        return false;
    case F_MATCHES:
        return regexec(op->re, t, 0, NULL, 0) == 0;
    case F_GT:
        return parse_num(v, &x) && x > op->num;
    case F_GE:
        return parse_num(v, &x) && x >= op->num;
    case F_LT:
        return parse_num(v, &x) && x < op->num;
    case F_LE:
        return parse_num(v, &x) && x <= op->num;
    case F_MIN_LEN:
        return scalar && (double)utf8_chars(t, len) >= op->num;
    case F_MAX_LEN:
        return scalar && (double)utf8_chars(t, len) <= op->num;
    case F_EXTERNAL:
        if (!fc->od_ready) {
            orgdoms_init(&fc->od, fc->r);
            fc->od_ready = true;
        }
        return text_external(&fc->od, t, len);
    case F_EQUALS_FIELD: {
        struct eqf_ctx e;

        if (!scalar || v->type == MF_JNULL)
            return false;
        e.t = t;
        e.len = len;
        return walk(fc->r->view, op->path, strlen(op->path), visit_eqf, &e, 0);
    }
    }
    return false;
}

static bool
visit_field(void *ud, const struct mf_jval *v)
{
    struct field_ctx *fc = ud;
    const struct mf_cond *c = fc->c;
    size_t i, len = 0;
    char *tmp = NULL;
    const char *t;
    bool ok = true, scalar;

    scalar = v->type != MF_JOBJ && v->type != MF_JARR;
    t = value_text(v, &len, &tmp);
    for (i = 0; i < c->n_ops && ok; i++)
        ok = op_holds(fc, &c->ops[i], v, t, len, scalar);
    free(tmp);
    return ok;
}

static bool
eval_field(const struct mf_cond *c, const struct mf_record *r)
{
    struct field_ctx fc;
    bool found;

    if (!r->view)
        return c->negate;
    fc.c = c;
    fc.r = r;
    fc.od_ready = false;
    if (c->n_ops == 0)
        found = walk(r->view, c->path, strlen(c->path), visit_exists, NULL, 0);
    else
        found = walk(r->view, c->path, strlen(c->path), visit_field, &fc, 0);
    return c->negate ? !found : found;
}

bool
mf_cond_eval(const struct mf_cond *c, const struct mf_record *r)
{
    size_t i;

    switch (c->kind) {
    case C_OPERATION: {
        const char *op = r->operation ? r->operation : "";

        for (i = 0; i < c->n; i++)
            if (strcasecmp(op, c->strs[i]) == 0)
                return true;
        return false;
    }
    case C_OPERATION_RE:
        return regexec(c->re, r->operation ? r->operation : "", 0, NULL, 0) == 0;
    case C_RECORD_TYPE:
        for (i = 0; i < c->n; i++)
            if (r->record_type == c->ints[i])
                return true;
        return false;
    case C_USER_TYPE:
        for (i = 0; i < c->n; i++)
            if (r->user_type == c->ints[i])
                return true;
        return false;
    case C_OUTCOME:
        for (i = 0; i < c->n; i++)
            if ((int)r->outcome == c->ints[i])
                return true;
        return false;
    case C_WORKLOAD:
        if (!r->workload)
            return false;
        for (i = 0; i < c->n; i++)
            if (strcasecmp(r->workload, c->strs[i]) == 0)
                return true;
        return false;
    case C_SYSTEM_ACTOR:
        return r->is_system_actor == c->flag;
    case C_FIELD:
        return eval_field(c, r);
    case C_ANY:
        for (i = 0; i < c->n; i++)
            if (mf_cond_eval(c->kids[i], r))
                return true;
        return false;
    case C_ALL:
        for (i = 0; i < c->n; i++)
            if (!mf_cond_eval(c->kids[i], r))
                return false;
        return true;
    case C_NOT:
        return !mf_cond_eval(c->kids[0], r);
    }
    return false;
}

/* ---- severity --------------------------------------------------------- */

static int
severity_value(struct mf_rules *rs, const struct mf_jval *v, int lo, int hi,
               char *err, size_t errsz)
{
    int64_t x;

    if (!mf_jis(v, MF_JNUM) || mf_jget_int(v, &x) != 0 || x < lo || x > hi) {
        set_err(rs, v, err, errsz, "severity must be an integer %d..%d", lo, hi);
        return -100;
    }
    return (int)x;
}

const struct mf_sevexpr *
mf_rules_compile_severity(struct mf_rules *rs, int base,
                          const struct mf_jval *from,
                          const struct mf_jval *adjust, char *err,
                          size_t errsz)
{
    struct mf_sevexpr *s = mf_arena_calloc(&rs->arena, sizeof(*s));
    size_t i;

    s->base = base;
    if (from) {
        const struct mf_jval *map = NULL;

        if (!mf_jis_obj(from)) {
            set_err(rs, from, err, errsz, "severity_from must be a mapping");
            return NULL;
        }
        for (i = 0; i < from->len; i++) {
            const char *k = from->u.mem[i].key;
            const struct mf_jval *v = from->u.mem[i].val;

            if (strcmp(k, "field") == 0) {
                s->from_path = compile_path(rs, v, err, errsz);
                if (!s->from_path)
                    return NULL;
            } else if (strcmp(k, "map") == 0) {
                map = v;
            } else {
                set_err(rs, v, err, errsz, "unknown key '%s' in severity_from", k);
                return NULL;
            }
        }
        if (!s->from_path || !mf_jis_obj(map) || map->len == 0) {
            set_err(rs, from, err, errsz,
                    "severity_from needs 'field' and a non-empty 'map'");
            return NULL;
        }
        s->n_map = map->len;
        s->map = mf_arena_alloc(&rs->arena, map->len * sizeof(*s->map));
        for (i = 0; i < map->len; i++) {
            int sv = severity_value(rs, map->u.mem[i].val, 1, 5, err, errsz);

            if (sv < 0)
                return NULL;
            s->map[i].key = mf_arena_strdup(&rs->arena, map->u.mem[i].key);
            s->map[i].value = sv;
        }
    }
    if (adjust) {
        if (!mf_jis_arr(adjust) || adjust->len == 0) {
            set_err(rs, adjust, err, errsz, "adjust must be a non-empty list");
            return NULL;
        }
        s->n_adj = adjust->len;
        s->adj = mf_arena_calloc(&rs->arena, adjust->len * sizeof(*s->adj));
        for (i = 0; i < adjust->len; i++) {
            const struct mf_jval *it = adjust->u.items[i];
            struct sev_adjust *a = &s->adj[i];
            bool have_val = false;
            size_t j;

            if (!mf_jis_obj(it)) {
                set_err(rs, it, err, errsz, "adjust entries are mappings");
                return NULL;
            }
            for (j = 0; j < it->len; j++) {
                const char *k = it->u.mem[j].key;
                const struct mf_jval *v = it->u.mem[j].val;

                if (strcmp(k, "when") == 0) {
                    a->when = compile_cond(rs, v, err, errsz, 0);
                    if (!a->when)
                        return NULL;
                } else if (strcmp(k, "set") == 0 || strcmp(k, "add") == 0) {
                    bool add = k[0] == 'a';

                    if (have_val) {
                        set_err(rs, v, err, errsz, "one of 'set' or 'add' per entry");
                        return NULL;
                    }
                    a->add = add;
                    a->value = severity_value(rs, v, add ? -4 : 1, add ? 4 : 5,
                                              err, errsz);
                    if (a->value == -100)
                        return NULL;
                    have_val = true;
                } else {
                    set_err(rs, v, err, errsz, "unknown key '%s' in adjust", k);
                    return NULL;
                }
            }
            if (!a->when || !have_val) {
                set_err(rs, it, err, errsz, "adjust entry needs 'when' and 'set' or 'add'");
                return NULL;
            }
        }
    }
    return s;
}

struct sevmap_ctx {
    const struct mf_sevexpr *s;
    int best;
};

static bool
visit_sevmap(void *ud, const struct mf_jval *v)
{
    struct sevmap_ctx *m = ud;
    size_t i, len;
    const char *t = mf_jscalar_text(v, &len);

    if (!t || v->type == MF_JNULL)
        return false;
    for (i = 0; i < m->s->n_map; i++)
        if (strlen(m->s->map[i].key) == len &&
            strncasecmp(m->s->map[i].key, t, len) == 0 &&
            m->s->map[i].value > m->best)
            m->best = m->s->map[i].value;
    return false;   /* keep going: we want the maximum */
}

int
mf_sevexpr_eval(const struct mf_sevexpr *s, const struct mf_record *r)
{
    int sev = s->base;
    size_t i;

    if (s->from_path && r->view) {
        struct sevmap_ctx m = { s, 0 };

        walk(r->view, s->from_path, strlen(s->from_path), visit_sevmap, &m, 0);
        if (m.best > 0)
            sev = m.best;
    }
    for (i = 0; i < s->n_adj; i++) {
        if (!mf_cond_eval(s->adj[i].when, r))
            continue;
        sev = s->adj[i].add ? sev + s->adj[i].value : s->adj[i].value;
    }
    if (sev < 1)
        sev = 1;
    if (sev > 5)
        sev = 5;
    return sev;
}

/* ---- for other tables ------------------------------------------------- */

const char *
mf_rules_compile_path(struct mf_rules *rs, const struct mf_jval *v, char *err,
                      size_t errsz)
{
    return compile_path(rs, v, err, errsz);
}

bool
mf_rules_each_value(const struct mf_record *r, const char *path,
                    bool (*fn)(void *ud, const struct mf_jval *v), void *ud)
{
    if (!r || !r->view || !path)
        return false;
    return walk(r->view, path, strlen(path), fn, ud, 0);
}

regex_t *
mf_rules_compile_regex(struct mf_rules *rs, const struct mf_jval *v, char *err,
                       size_t errsz)
{
    return compile_re(rs, v, err, errsz);
}

/* ---- operation index ---------------------------------------------------- */

struct opi_ent {
    const char *op;          /* lower-cased (the condition's storage) */
    size_t rule;
};

struct opi_slot {
    uint64_t h;              /* 0: empty */
    uint32_t start, end;     /* its rules in rules[] */
};

struct mf_opindex {
    struct opi_ent *ent;
    size_t n, cap;
    size_t adding;           /* the rule mf_opindex_add is indexing */
    size_t *rules;           /* after finish: rule numbers grouped by op */
    struct opi_slot *slot;
    size_t mask;
};

/* FNV-1a of the ASCII-lower-cased text; never 0. */
static uint64_t
op_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        h ^= c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;   /* ASCII, as strcasecmp */
        h *= 0x100000001b3ULL;
    }
    return h | 1;
}

struct mf_opindex *
mf_opindex_new(void)
{
    return mf_xcalloc(1, sizeof(struct mf_opindex));
}

void
mf_opindex_destroy(struct mf_opindex *ix)
{
    if (!ix)
        return;
    free(ix->ent);
    free(ix->rules);
    free(ix->slot);
    free(ix);
}

static void
opi_add_one(void *ud, const char *op_lc)
{
    struct mf_opindex *ix = ud;
    size_t i;

    /* the same operation twice in one condition is indexed once */
    for (i = ix->n; i > 0 && ix->ent[i - 1].rule == ix->adding; i--)
        if (strcmp(ix->ent[i - 1].op, op_lc) == 0)
            return;
    if (ix->n == ix->cap) {
        ix->cap = ix->cap ? ix->cap * 2 : 256;
        ix->ent = mf_xrealloc(ix->ent, ix->cap * sizeof(*ix->ent));
    }
    ix->ent[ix->n].op = op_lc;
    ix->ent[ix->n].rule = ix->adding;
    ix->n++;
}

void
mf_opindex_add(struct mf_opindex *ix, const struct mf_cond *c, size_t rule)
{
    ix->adding = rule;
    mf_cond_each_op(c, opi_add_one, ix);
}

static int
cmp_opi(const void *a, const void *b)
{
    const struct opi_ent *x = a, *y = b;
    int c = strcmp(x->op, y->op);

    if (c)
        return c;
    return x->rule < y->rule ? -1 : x->rule > y->rule;
}

void
mf_opindex_finish(struct mf_opindex *ix)
{
    size_t n = 16, i = 0;

    if (ix->n > 1)
        qsort(ix->ent, ix->n, sizeof(*ix->ent), cmp_opi);
    while (n < ix->n * 2)
        n *= 2;
    ix->slot = mf_xcalloc(n, sizeof(*ix->slot));
    ix->mask = n - 1;
    ix->rules = mf_xcalloc(ix->n + 1, sizeof(*ix->rules));
    for (i = 0; i < ix->n; i++)
        ix->rules[i] = ix->ent[i].rule;
    i = 0;
    while (i < ix->n) {
        size_t j = i, k;
        uint64_t h = op_hash(ix->ent[i].op);

        while (j < ix->n && strcmp(ix->ent[j].op, ix->ent[i].op) == 0)
            j++;
        for (k = (size_t)h & ix->mask; ix->slot[k].h; k = (k + 1) & ix->mask)
            ;
        ix->slot[k] = (struct opi_slot){h, (uint32_t)i, (uint32_t)j};
        i = j;
    }
}

const size_t *
mf_opindex_find(const struct mf_opindex *ix, const char *op, size_t *n)
{
    uint64_t h;
    size_t k;

    *n = 0;
    if (!ix || !ix->slot || !op)
        return NULL;
    h = op_hash(op);
    for (k = (size_t)h & ix->mask; ix->slot[k].h; k = (k + 1) & ix->mask) {
        const struct opi_slot *s = &ix->slot[k];

        if (s->h == h && strcasecmp(ix->ent[s->start].op, op) == 0) {
            *n = s->end - s->start;
            return &ix->rules[s->start];
        }
    }
    return NULL;
}
