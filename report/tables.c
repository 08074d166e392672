/* tables.c - checks.yaml and plan.yaml: load, validate, evaluate.
 *
 * Validation is complete at load: unknown keys, areas, facts, tags (against
 * the catalogue the agent hands over), aggregates, expressions, text
 * placeholders, plan rows naming unknown checks, checks without a plan row.
 * Every error names file:line.
 */
#include "agg_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "mem.h"
#include "report_builtin.h"
#include "yaml_tree.h"

static const char *const area_titles[MF_RAREA_COUNT] = {
    "Identity and access", "Data protection", "Collaboration and sharing",
    "Device posture", "Monitoring and response",
};

/* The areas are core's (event.h), in the same order. */
_Static_assert((int)MF_RAREA_COUNT == (int)MF_AREA_COUNT &&
               (int)MF_RAREA_MONITOR == (int)MF_AREA_MONITORING_RESPONSE,
               "report areas follow core's enum mf_area");
const char *
mf_report_area_name(int area)
{
    return mf_area_name((enum mf_area)area);
}

const char *
mf_report_area_title(int area)
{
    return area >= 0 && area < MF_RAREA_COUNT ? area_titles[area] : "Unknown";
}

int
mf_report_area_parse(const char *s)
{
    enum mf_area a;

    return s && mf_area_parse(s, &a) == 0 ? (int)a : -1;
}

static const char *const fact_names[MF_FACT_COUNT] = {
#define MF_RF_NAME(e, n, d) n,
    MF_REPORT_FACTS(MF_RF_NAME)
#undef MF_RF_NAME
};
static const char *const fact_descs[MF_FACT_COUNT] = {
#define MF_RF_DESC(e, n, d) d,
    MF_REPORT_FACTS(MF_RF_DESC)
#undef MF_RF_DESC
};

const char *
mf_report_fact_name(int fact)
{
    return fact >= 0 && fact < MF_FACT_COUNT ? fact_names[fact] : "unknown";
}

const char *
mf_report_fact_desc(int fact)
{
    return fact >= 0 && fact < MF_FACT_COUNT ? fact_descs[fact] : "";
}

int
mf_report_fact_parse(const char *s)
{
    for (int i = 0; s && i < MF_FACT_COUNT; i++)
        if (strcmp(s, fact_names[i]) == 0)
            return i;
    return -1;
}

const struct mf_report_tagdef *
mf_report_catalog_find(const struct mf_report_catalog *c, const char *id)
{
    for (size_t i = 0; c && id && i < c->n; i++)
        if (strcmp(c->tags[i].id, id) == 0)
            return &c->tags[i];
    return NULL;
}

/* ---- loading context ---------------------------------------------------- */

struct ld {
    struct mf_report_tables *t;
    const struct mf_report_catalog *cat;
    const char *name;          /* file name for messages */
    struct mf_report_err *err;
    bool failed;
};

static void
fail(struct ld *l, const struct mf_jval *at, const char *fmt, ...)
{
    va_list ap;
    char msg[256];

    if (l->failed)
        return;
    l->failed = true;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(l->err->msg, sizeof(l->err->msg), "%s:%u: %s", l->name,
             at ? (unsigned)at->line : 0u, msg);
}

static char *
adup(struct mf_report_tables *t, const char *s)
{
    size_t n = strlen(s);
    char *p = mf_arena_alloc(&t->arena, n + 1);

    memcpy(p, s, n + 1);
    return p;
}

/* Check the keys of a mapping against the allowed list. */
static bool
keys_ok(struct ld *l, const struct mf_jval *obj, const char *const *allowed, const char *what)
{
    for (size_t i = 0; i < obj->len; i++) {
        const char *k = obj->u.mem[i].key;
        bool ok = false;

        for (size_t j = 0; allowed[j]; j++)
            if (strcmp(k, allowed[j]) == 0)
                ok = true;
        if (!ok) {
            fail(l, obj->u.mem[i].val, "%s: unknown key '%s'", what, k);
            return false;
        }
    }
    return true;
}

static const char *
get_str(struct ld *l, const struct mf_jval *obj, const char *key, bool required,
        const char *what)
{
    const struct mf_jval *v = mf_jobj_get(obj, key);

    if (!v || v->type == MF_JNULL) {
        if (required)
            fail(l, obj, "%s: '%s' is required", what, key);
        return NULL;
    }
    if (v->type != MF_JSTR || v->len == 0) {
        fail(l, v, "%s: '%s' must be a non-empty string", what, key);
        return NULL;
    }
    return v->u.s;
}

static int
get_int(struct ld *l, const struct mf_jval *obj, const char *key, int64_t lo, int64_t hi,
        int64_t def, const char *what, int64_t *out)
{
    const struct mf_jval *v = mf_jobj_get(obj, key);

    *out = def;
    if (!v)
        return 0;
    if (v->type != MF_JNUM || mf_jget_int(v, out) != 0 || *out < lo || *out > hi) {
        fail(l, v, "%s: '%s' must be an integer from %lld to %lld", what, key,
             (long long)lo, (long long)hi);
        return -1;
    }
    return 0;
}

static int
get_area(struct ld *l, const struct mf_jval *obj, const char *what)
{
    const char *s = get_str(l, obj, "area", true, what);
    int a = s ? mf_report_area_parse(s) : -1;

    if (s && a < 0)
        fail(l, mf_jobj_get(obj, "area"), "%s: unknown area '%s' (identity_access, "
             "data_protection, collaboration_sharing, device_posture, "
             "monitoring_response)", what, s);
    return a;
}

static bool
valid_id(const char *s)
{
    if (!*s || !islower((unsigned char)*s))
        return false;
    for (; *s; s++)
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '_')
            return false;
    return true;
}

/* ---- expressions ------------------------------------------------------ */

int
mf_rx_ref(const struct mf_report_tables *t, const char *name, size_t len,
          struct rx_node *out)
{
    char buf[160];

    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, name, len);
    buf[len] = '\0';
    memset(out, 0, sizeof(*out));
    if (strcmp(buf, "records") == 0) {
        out->op = RX_RECORDS;
        return 0;
    }
    if (strncmp(buf, "tag.", 4) == 0 && buf[4]) {
        out->op = RX_TAG;
        out->tag = name + 4;   /* caller keeps the text */
        return 0;
    }
    if (strncmp(buf, "fact.", 5) == 0) {
        out->op = RX_FACT;
        out->idx = mf_report_fact_parse(buf + 5);
        return out->idx < 0 ? -1 : 0;
    }
    if (strncmp(buf, "area.", 5) == 0) {
        out->op = RX_AREA;
        out->idx = mf_report_area_parse(buf + 5);
        return out->idx < 0 ? -1 : 0;
    }
    if (strncmp(buf, "ct.", 3) == 0) {
        out->op = RX_CT;
        for (int i = 0; i < AGG_N_CT - 1; i++)
            if (strcmp(buf + 3, mf_agg_ct_names[i]) == 0) {
                out->idx = i;
                return 0;
            }
        return -1;
    }
    if (strncmp(buf, "agg.", 4) == 0) {
        out->op = RX_AGG;
        for (size_t i = 0; t && i < t->n_aggs; i++)
            if (strcmp(buf + 4, t->aggs[i].id) == 0) {
                out->idx = (int)i;
                return 0;
            }
        return -1;
    }
    return -1;
}

struct px {
    struct ld *l;
    const struct mf_jval *at;
    const char *s, *p;
    struct rx_node nodes[128];
    int n;
};

static void
px_space(struct px *x)
{
    while (*x->p == ' ' || *x->p == '\t')
        x->p++;
}

static int
px_node(struct px *x, int op, int a, int b)
{
    if (x->n >= (int)(sizeof(x->nodes) / sizeof(x->nodes[0]))) {
        fail(x->l, x->at, "expression too long: '%s'", x->s);
        return -1;
    }
    memset(&x->nodes[x->n], 0, sizeof(x->nodes[0]));
    x->nodes[x->n].op = op;
    x->nodes[x->n].a = a;
    x->nodes[x->n].b = b;
    return x->n++;
}

static bool
px_word(struct px *x, const char *w)
{
    size_t n = strlen(w);

    px_space(x);
    if (strncmp(x->p, w, n) == 0 && !isalnum((unsigned char)x->p[n]) && x->p[n] != '_') {
        x->p += n;
        return true;
    }
    return false;
}

static int px_or(struct px *x);

static int
px_factor(struct px *x)
{
    px_space(x);
    if (*x->p == '(') {
        int e;

        x->p++;
        e = px_or(x);
        px_space(x);
        if (e < 0)
            return -1;
        if (*x->p != ')') {
            fail(x->l, x->at, "missing ')' in '%s'", x->s);
            return -1;
        }
        x->p++;
        return e;
    }
    if (isdigit((unsigned char)*x->p)) {
        char *end;
        double v;
        int i;

        errno = 0;
        v = strtod(x->p, &end);
        if (errno || end == x->p) {
            fail(x->l, x->at, "bad number in '%s'", x->s);
            return -1;
        }
        x->p = end;
        if ((i = px_node(x, RX_NUM, -1, -1)) >= 0)
            x->nodes[i].num = v;
        return i;
    }
    if (isalpha((unsigned char)*x->p)) {
        const char *b = x->p;
        struct rx_node ref;
        int i;

        while (isalnum((unsigned char)*x->p) || *x->p == '_' || *x->p == '.')
            x->p++;
        if (mf_rx_ref(x->l->t, b, (size_t)(x->p - b), &ref) != 0) {
            fail(x->l, x->at, "unknown quantity '%.*s' in '%s' (tag.<id>, fact.<name>, "
                 "agg.<id>, area.<area>, ct.<content type>, records)", (int)(x->p - b), b,
                 x->s);
            return -1;
        }
        if (ref.op == RX_TAG) {
            char *id = mf_arena_alloc(&x->l->t->arena, (size_t)(x->p - b) - 3);

            memcpy(id, b + 4, (size_t)(x->p - b) - 4);
            id[x->p - b - 4] = '\0';
            if (x->l->cat && !mf_report_catalog_find(x->l->cat, id)) {
                fail(x->l, x->at, "unknown tag '%s' in '%s'", id, x->s);
                return -1;
            }
            ref.tag = id;
        }
        if ((i = px_node(x, ref.op, -1, -1)) >= 0) {
            x->nodes[i].idx = ref.idx;
            x->nodes[i].tag = ref.tag;
        }
        return i;
    }
    fail(x->l, x->at, "expected a number, a quantity or '(' at '%s' in '%s'",
         *x->p ? x->p : "(end)", x->s);
    return -1;
}

static int
px_term(struct px *x)
{
    int a = px_factor(x);

    px_space(x);
    while (a >= 0 && *x->p == '*') {
        int b;

        x->p++;
        b = px_factor(x);
        a = b < 0 ? -1 : px_node(x, RX_MUL, a, b);
        px_space(x);
    }
    return a;
}

static int
px_sum(struct px *x)
{
    int a = px_term(x);

    px_space(x);
    while (a >= 0 && (*x->p == '+' || *x->p == '-')) {
        int op = *x->p == '+' ? RX_ADD : RX_SUB, b;

        x->p++;
        b = px_term(x);
        a = b < 0 ? -1 : px_node(x, op, a, b);
        px_space(x);
    }
    return a;
}

static int
px_cmp(struct px *x)
{
    static const struct {
        const char *s;
        int op;
    } ops[] = {{">=", RX_GE}, {"<=", RX_LE}, {"==", RX_EQ}, {"!=", RX_NE},
               {">", RX_GT}, {"<", RX_LT}};
    int a = px_sum(x);

    if (a < 0)
        return -1;
    px_space(x);
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        size_t n = strlen(ops[i].s);

        if (strncmp(x->p, ops[i].s, n) == 0) {
            int b;

            x->p += n;
            b = px_sum(x);
            return b < 0 ? -1 : px_node(x, ops[i].op, a, b);
        }
    }
    return a;
}

static int
px_and(struct px *x)
{
    int a = px_cmp(x);

    while (a >= 0 && px_word(x, "and")) {
        int b = px_cmp(x);

        a = b < 0 ? -1 : px_node(x, RX_AND, a, b);
    }
    return a;
}

static int
px_or(struct px *x)
{
    int a = px_and(x);

    while (a >= 0 && px_word(x, "or")) {
        int b = px_and(x);

        a = b < 0 ? -1 : px_node(x, RX_OR, a, b);
    }
    return a;
}

/* Parse obj[key] into e (root -1 when absent and not required). */
static void
parse_expr(struct ld *l, const struct mf_jval *obj, const char *key, bool required,
           const char *what, struct rx_expr *e)
{
    const struct mf_jval *v = mf_jobj_get(obj, key);
    struct px x;

    e->root = -1;
    e->n = NULL;
    e->len = 0;
    if (!v) {
        if (required)
            fail(l, obj, "%s: '%s' is required", what, key);
        return;
    }
    if (v->type != MF_JSTR) {
        fail(l, v, "%s: '%s' must be an expression (a string)", what, key);
        return;
    }
    memset(&x, 0, sizeof(x));
    x.l = l;
    x.at = v;
    x.s = x.p = v->u.s;
    e->root = px_or(&x);
    px_space(&x);
    if (e->root >= 0 && *x.p) {
        fail(l, v, "%s: unexpected '%s' in '%s'", what, x.p, x.s);
        e->root = -1;
    }
    if (e->root < 0)
        return;
    e->len = x.n;
    e->n = mf_arena_alloc(&l->t->arena, sizeof(*e->n) * (size_t)x.n);
    memcpy(e->n, x.nodes, sizeof(*e->n) * (size_t)x.n);
}

static double
rx_node_eval(const struct rx_expr *e, int i, rx_value_fn fn, void *ud)
{
    const struct rx_node *n = &e->n[i];
    double a, b;

    switch (n->op) {
    case RX_NUM:
        return n->num;
    case RX_TAG: case RX_FACT: case RX_AGG: case RX_RECORDS: case RX_AREA: case RX_CT:
        return fn(ud, n->op, n->idx, n->tag);
    default:
        break;
    }
    a = rx_node_eval(e, n->a, fn, ud);
    if (n->op == RX_AND && a == 0)
        return 0;
    if (n->op == RX_OR && a != 0)
        return 1;
    b = rx_node_eval(e, n->b, fn, ud);
    switch (n->op) {
    case RX_ADD: return a + b;
    case RX_SUB: return a - b;
    case RX_MUL: return a * b;
    case RX_GT: return a > b;
    case RX_GE: return a >= b;
    case RX_LT: return a < b;
    case RX_LE: return a <= b;
    case RX_EQ: return a == b;
    case RX_NE: return a != b;
    case RX_AND: return b != 0;
    case RX_OR: return b != 0;
    default: return 0;
    }
}

double
mf_rx_eval(const struct rx_expr *e, rx_value_fn fn, void *ud)
{
    return e->root < 0 ? 0 : rx_node_eval(e, e->root, fn, ud);
}

/* ---- texts -------------------------------------------------------------- */

/* Every {name} of s must be in words[] or (with refs) a quantity. */
static void
check_text(struct ld *l, const struct mf_jval *at, const char *s, const char *const *words,
           bool refs, const char *what)
{
    for (const char *p = s; (p = strchr(p, '{')) != NULL; p++) {
        const char *e = strchr(p, '}');
        struct rx_node ref;
        bool ok = false;

        if (!e) {
            fail(l, at, "%s: '{' without '}' in \"%s\"", what, s);
            return;
        }
        for (size_t i = 0; words[i]; i++)
            if ((size_t)(e - p - 1) == strlen(words[i]) && !strncmp(p + 1, words[i], strlen(words[i])))
                ok = true;
        if (!ok && refs && mf_rx_ref(l->t, p + 1, (size_t)(e - p - 1), &ref) == 0) {
            ok = true;
            if (ref.op == RX_TAG && l->cat) {
                char id[160];

                snprintf(id, sizeof(id), "%.*s", (int)(e - p - 5), p + 5);
                if (!mf_report_catalog_find(l->cat, id)) {
                    fail(l, at, "%s: unknown tag '%s' in \"%s\"", what, id, s);
                    return;
                }
            }
        }
        if (!ok) {
            fail(l, at, "%s: unknown placeholder '%.*s' in \"%s\"", what, (int)(e - p + 1), p, s);
            return;
        }
    }
}

static char *
text_field(struct ld *l, const struct mf_jval *obj, const char *key, bool required,
           const char *const *words, bool refs, const char *what)
{
    const char *s = get_str(l, obj, key, required, what);

    if (!s)
        return NULL;
    check_text(l, mf_jobj_get(obj, key), s, words, refs, what);
    return adup(l->t, s);
}

/* ---- aggregates ---------------------------------------------------------- */

static int
parse_by(struct ld *l, const struct mf_jval *obj, const char *key, bool required,
         const char *what)
{
    static const char *const names[] = {"actor", "client_ip", "object"};
    const char *s = get_str(l, obj, key, required, what);

    if (!s)
        return -1;
    for (int i = 0; i < 3; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    fail(l, mf_jobj_get(obj, key), "%s: '%s' must be actor, client_ip or object", what, key);
    return -1;
}

static void
load_aggregates(struct ld *l, const struct mf_jval *list)
{
    static const char *const keys[] = {"id", "title", "area", "severity", "fact", "by",
                                       "distinct", "min_count", "min_distinct", "text",
                                       NULL};
    static const char *const words[] = {"key", "count", "distinct", "day", NULL};

    if (!list)
        return;
    if (list->type != MF_JARR) {
        fail(l, list, "aggregates must be a list");
        return;
    }
    l->t->aggs = mf_arena_alloc(&l->t->arena, sizeof(*l->t->aggs) * (list->len + 1));
    for (size_t i = 0; i < list->len && !l->failed; i++) {
        const struct mf_jval *o = list->u.items[i];
        struct rt_aggdef *g = &l->t->aggs[l->t->n_aggs];
        char what[96];
        const char *id, *fact;
        int64_t v;

        memset(g, 0, sizeof(*g));
        if (o->type != MF_JOBJ) {
            fail(l, o, "aggregates[%zu] must be a mapping", i);
            return;
        }
        snprintf(what, sizeof(what), "aggregates[%zu]", i);
        if (!(id = get_str(l, o, "id", true, what)))
            return;
        if (!valid_id(id)) {
            fail(l, mf_jobj_get(o, "id"), "%s: id '%s' must be lower_snake_case", what, id);
            return;
        }
        for (size_t j = 0; j < l->t->n_aggs; j++)
            if (strcmp(l->t->aggs[j].id, id) == 0) {
                fail(l, mf_jobj_get(o, "id"), "%s: duplicate id '%s'", what, id);
                return;
            }
        snprintf(what, sizeof(what), "aggregate %s", id);
        if (!keys_ok(l, o, keys, what))
            return;
        g->id = adup(l->t, id);
        g->title = text_field(l, o, "title", true, words + 4, false, what);
        g->text = text_field(l, o, "text", true, words, false, what);
        g->area = get_area(l, o, what);
        get_int(l, o, "severity", 1, 5, 3, what, &v);
        g->severity = (int)v;
        fact = get_str(l, o, "fact", true, what);
        if (fact && (g->fact = mf_report_fact_parse(fact)) < 0) {
            fail(l, mf_jobj_get(o, "fact"), "%s: unknown fact '%s'", what, fact);
            return;
        }
        g->by = parse_by(l, o, "by", true, what);
        g->distinct = mf_jobj_get(o, "distinct") ? parse_by(l, o, "distinct", true, what) : -1;
        get_int(l, o, "min_count", 1, 1000000000, 0, what, &v);
        g->min_count = (uint64_t)v;
        get_int(l, o, "min_distinct", 2, AGG_DISTINCT_MAX, 0, what, &v);
        g->min_distinct = (uint64_t)v;
        if (!l->failed && !g->min_count && !g->min_distinct)
            fail(l, o, "%s: min_count or min_distinct is required", what);
        if (!l->failed && g->min_distinct && g->distinct < 0)
            fail(l, o, "%s: min_distinct needs 'distinct'", what);
        if (!l->failed)
            l->t->n_aggs++;
    }
}

/* ---- checks ------------------------------------------------------------- */

static void
add_examples(struct ld *l, struct rt_check *c)
{
    const struct rx_expr *e = &c->evidence;

    c->ex_tags = mf_arena_alloc(&l->t->arena, sizeof(int) * (size_t)(e->len + 1));
    c->ex_aggs = mf_arena_alloc(&l->t->arena, sizeof(int) * (size_t)(e->len + 1));
    for (int i = 0; i < e->len; i++) {
        const struct rx_node *n = &e->n[i];

        if (n->op == RX_FACT) {
            c->ex_facts |= 1u << n->idx;
            l->t->ex_facts |= 1u << n->idx;
        } else if (n->op == RX_AGG) {
            c->ex_aggs[c->n_ex_aggs++] = n->idx;
        } else if (n->op == RX_TAG) {
            size_t k;

            for (k = 0; k < l->t->n_ex_tags; k++)
                if (strcmp(l->t->ex_tags[k], n->tag) == 0)
                    break;
            if (k == l->t->n_ex_tags) {
                l->t->ex_tags = mf_xrealloc(l->t->ex_tags,
                                            (k + 1) * sizeof(*l->t->ex_tags));
                l->t->ex_tags[l->t->n_ex_tags++] = adup(l->t, n->tag);
            }
            c->ex_tags[c->n_ex_tags++] = (int)k;
        }
    }
}

static void
load_checks(struct ld *l, const struct mf_jval *list)
{
    static const char *const keys[] = {"id", "title", "area", "severity", "applies", "when",
                                       "evidence", "finding", "ok", "no_evidence", NULL};
    static const char *const words[] = {"evidence", NULL};

    if (!list || list->type != MF_JARR || list->len == 0) {
        fail(l, list, "checks must be a non-empty list");
        return;
    }
    l->t->checks = mf_arena_alloc(&l->t->arena, sizeof(*l->t->checks) * list->len);
    for (size_t i = 0; i < list->len && !l->failed; i++) {
        const struct mf_jval *o = list->u.items[i];
        struct rt_check *c = &l->t->checks[l->t->n_checks];
        char what[96];
        const char *id;
        int64_t v;

        memset(c, 0, sizeof(*c));
        if (o->type != MF_JOBJ) {
            fail(l, o, "checks[%zu] must be a mapping", i);
            return;
        }
        snprintf(what, sizeof(what), "checks[%zu]", i);
        if (!(id = get_str(l, o, "id", true, what)))
            return;
        if (!valid_id(id)) {
            fail(l, mf_jobj_get(o, "id"), "%s: id '%s' must be lower_snake_case", what, id);
            return;
        }
        for (size_t j = 0; j < l->t->n_checks; j++)
            if (strcmp(l->t->checks[j].id, id) == 0) {
                fail(l, mf_jobj_get(o, "id"), "%s: duplicate id '%s'", what, id);
                return;
            }
        snprintf(what, sizeof(what), "check %s", id);
        if (!keys_ok(l, o, keys, what))
            return;
        c->id = adup(l->t, id);
        c->title = text_field(l, o, "title", true, words + 1, false, what);
        c->area = get_area(l, o, what);
        get_int(l, o, "severity", 1, 5, 3, what, &v);
        c->severity = (int)v;
        parse_expr(l, o, "applies", false, what, &c->applies);
        parse_expr(l, o, "when", true, what, &c->when);
        parse_expr(l, o, "evidence", true, what, &c->evidence);
        c->finding = text_field(l, o, "finding", true, words, true, what);
        c->ok = text_field(l, o, "ok", true, words, true, what);
        c->no_evidence = text_field(l, o, "no_evidence", c->applies.root >= 0, words, true,
                                    what);
        if (!l->failed && c->no_evidence && c->applies.root < 0)
            fail(l, mf_jobj_get(o, "no_evidence"), "%s: no_evidence without applies", what);
        if (l->failed)
            return;
        add_examples(l, c);
        l->t->n_checks++;
    }
}

/* ---- plan ------------------------------------------------------------- */

static void
load_plan(struct ld *l, const struct mf_jval *list)
{
    static const char *const keys[] = {"check", "area", "action", "owner", "effort",
                                       "horizon", NULL};
    static const char *const efforts[] = {"low", "medium", "high"};
    static const char *const none[] = {NULL};

    if (!list || list->type != MF_JARR || list->len == 0) {
        fail(l, list, "actions must be a non-empty list");
        return;
    }
    l->t->actions = mf_arena_alloc(&l->t->arena, sizeof(*l->t->actions) * list->len);
    for (size_t i = 0; i < list->len && !l->failed; i++) {
        const struct mf_jval *o = list->u.items[i];
        struct rt_action *a = &l->t->actions[l->t->n_actions];
        const char *check, *effort;
        char what[64];
        int64_t h;
        size_t k;

        if (o->type != MF_JOBJ) {
            fail(l, o, "actions[%zu] must be a mapping", i);
            return;
        }
        snprintf(what, sizeof(what), "actions[%zu]", i);
        if (!keys_ok(l, o, keys, what) || !(check = get_str(l, o, "check", true, what)))
            return;
        a->check = -1;
        for (size_t j = 0; j < l->t->n_checks; j++)
            if (strcmp(l->t->checks[j].id, check) == 0)
                a->check = (int)j;
        if (a->check < 0) {
            fail(l, mf_jobj_get(o, "check"), "%s: unknown check '%s'", what, check);
            return;
        }
        a->area = get_area(l, o, what);
        a->action = text_field(l, o, "action", true, none, false, what);
        a->owner = text_field(l, o, "owner", true, none, false, what);
        effort = get_str(l, o, "effort", true, what);
        for (k = 0; effort && k < 3; k++)
            if (strcmp(effort, efforts[k]) == 0)
                break;
        if (effort && k == 3)
            fail(l, mf_jobj_get(o, "effort"), "%s: effort must be low, medium or high", what);
        a->effort = effort ? adup(l->t, effort) : NULL;
        if (!mf_jobj_get(o, "horizon"))
            fail(l, o, "%s: 'horizon' is required", what);
        get_int(l, o, "horizon", 30, 90, 30, what, &h);
        if (!l->failed && h != 30 && h != 60 && h != 90)
            fail(l, mf_jobj_get(o, "horizon"), "%s: horizon must be 30, 60 or 90", what);
        a->horizon = (int)h;
        if (!l->failed)
            l->t->n_actions++;
    }
    for (size_t j = 0; !l->failed && j < l->t->n_checks; j++) {
        size_t k;

        for (k = 0; k < l->t->n_actions; k++)
            if (l->t->actions[k].check == (int)j)
                break;
        if (k == l->t->n_actions)
            fail(l, list, "check '%s' has no action in the plan", l->t->checks[j].id);
    }
}

/* ---- entry points -------------------------------------------------------- */

static const struct mf_jval *
load_doc(struct ld *l, struct mf_arena *a, const char *text, size_t len,
         const char *const *keys, const char *what)
{
    struct mf_err yerr;
    const struct mf_jval *root, *ver;
    int64_t v;

    root = mf_yaml_load(a, l->name, text, len, &yerr);
    if (!root) {
        snprintf(l->err->msg, sizeof(l->err->msg), "%s", yerr.msg);
        l->failed = true;
        return NULL;
    }
    if (root->type != MF_JOBJ) {
        fail(l, root, "%s must be a mapping", what);
        return NULL;
    }
    if (!keys_ok(l, root, keys, what))
        return NULL;
    ver = mf_jobj_get(root, "version");
    if (!ver || mf_jget_int(ver, &v) != 0 || v != 1) {
        fail(l, ver ? ver : root, "version: 1 is required");
        return NULL;
    }
    return root;
}

struct mf_report_tables *
mf_report_tables_load(const char *checks_name, const char *checks_text, size_t checks_len,
                      const char *plan_name, const char *plan_text, size_t plan_len,
                      const struct mf_report_catalog *cat, struct mf_report_err *err)
{
    static const char *const ckeys[] = {"version", "aggregates", "checks", NULL};
    static const char *const pkeys[] = {"version", "actions", NULL};
    struct mf_report_tables *t = mf_xcalloc(1, sizeof(*t));
    struct mf_arena ya;
    const struct mf_jval *root;
    struct ld l = {.t = t, .cat = cat, .err = err};

    if (!checks_text) {
        checks_name = "checks.yaml";
        checks_text = mf_builtin_checks;
        checks_len = mf_builtin_checks_len;
    }
    if (!plan_text) {
        plan_name = "plan.yaml";
        plan_text = mf_builtin_plan;
        plan_len = mf_builtin_plan_len;
    }
    err->msg[0] = '\0';
    mf_arena_init(&t->arena, 64 * 1024);
    mf_arena_init(&ya, 64 * 1024);
    l.name = checks_name;
    if ((root = load_doc(&l, &ya, checks_text, checks_len, ckeys, checks_name))) {
        load_aggregates(&l, mf_jobj_get(root, "aggregates"));
        if (!l.failed)
            load_checks(&l, mf_jobj_get(root, "checks"));
    }
    if (!l.failed) {
        l.name = plan_name;
        if ((root = load_doc(&l, &ya, plan_text, plan_len, pkeys, plan_name)))
            load_plan(&l, mf_jobj_get(root, "actions"));
    }
    mf_arena_fini(&ya);
    if (l.failed) {
        mf_report_tables_destroy(t);
        return NULL;
    }
    return t;
}

static char *
read_file(const char *path, size_t *len, struct mf_report_err *err)
{
    struct mf_buf b;

    mf_buf_init(&b, 4u << 20);
    if (mf_buf_read_file(&b, path) != 0) {
        snprintf(err->msg, sizeof(err->msg), "%s: cannot read: %s", path, strerror(errno));
        mf_buf_fini(&b);
        return NULL;
    }
    *len = b.len;
    return b.data ? b.data : mf_xcalloc(1, 1);
}

struct mf_report_tables *
mf_report_tables_load_files(const char *checks_file, const char *plan_file,
                            const struct mf_report_catalog *cat, struct mf_report_err *err)
{
    char *ct = NULL, *pt = NULL;
    size_t cl = 0, pl = 0;
    struct mf_report_tables *t = NULL;

    if (checks_file && !(ct = read_file(checks_file, &cl, err)))
        return NULL;
    if (plan_file && !(pt = read_file(plan_file, &pl, err)))
        goto out;
    t = mf_report_tables_load(checks_file, ct, cl, plan_file, pt, pl, cat, err);
out:
    free(ct);
    free(pt);
    return t;
}

void
mf_report_tables_destroy(struct mf_report_tables *t)
{
    if (!t)
        return;
    free(t->ex_tags);
    mf_arena_fini(&t->arena);
    free(t);
}
