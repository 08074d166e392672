/* options.c - the generic option-table engine (see options.h). */
#include "options.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "units.h"
#include "yaml_tree.h"

#define PATH_LEN 256
#define SHOW_LEN 64

/* ---- small helpers -------------------------------------------------- */

static const char *
jtype_name(const struct mf_jval *v)
{
    switch (v->type) {
    case MF_JNULL: return "null";
    case MF_JFALSE:
    case MF_JTRUE: return "a boolean";
    case MF_JNUM: return "a number";
    case MF_JSTR: return "a string";
    case MF_JARR: return "a list";
    default: return "a mapping";
    }
}

/* Printable excerpt of a user value for messages: control bytes become
 * '?', long values are cut with "...", the user:password@ of a URL becomes
 * "***@". Never called for secret entries. */
static const char *
show(const char *s, char *out, size_t n)
{
    size_t i, j = 0, lim = n < SHOW_LEN ? n : SHOW_LEN;
    const char *sep = strstr(s, "://"), *at = NULL;

    if (sep) {
        size_t host = strcspn(sep + 3, "/?#");

        at = memchr(sep + 3, '@', host);
    }
    for (i = 0; s[i] && j + 4 < lim; i++) {
        if (at && s + i == sep + 3) {
            if (j + 8 >= lim)
                break;          /* cut before the credentials */
            memcpy(out + j, "***", 3);
            j += 3;
            i = (size_t)(at - s);
        }
        out[j++] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    }
    if (s[i]) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    out[j] = '\0';
    return out;
}

static void
join_path(char *out, const char *path, const char *key)
{
    if (path[0])
        snprintf(out, PATH_LEN, "%s.%s", path, key);
    else
        snprintf(out, PATH_LEN, "%s", key);
}

static void *
at(void *base, size_t off)
{
    return (char *)base + off;
}

static const void *
cat(const void *base, size_t off)
{
    return (const char *)base + off;
}

const char *
mf_enum_name(const struct mf_enum *choices, int value)
{
    for (; choices && choices->name; choices++)
        if (choices->value == value)
            return choices->name;
    return "?";
}

int
mf_enum_parse(const struct mf_enum *choices, const char *s, int *out)
{
    for (; choices && choices->name; choices++)
        if (strcmp(choices->name, s) == 0) {
            *out = choices->value;
            return 0;
        }
    return -1;
}

static void
choices_text(const struct mf_enum *c, char *out, size_t n)
{
    size_t used = 0;

    out[0] = '\0';
    for (; c && c->name; c++) {
        int k = snprintf(out + used, n - used, "%s%s", used ? ", " : "",
                         c->name);

        if (k < 0 || (size_t)k >= n - used)
            break;
        used += (size_t)k;
    }
}

const struct mf_option *
mf_opt_find(const struct mf_optsec *sec, const char *name)
{
    const struct mf_option *o;

    for (o = sec->opts; o->name; o++)
        if (strcmp(o->name, name) == 0)
            return o;
    return NULL;
}

int
mf_opt_disc(const struct mf_optsec *sec, const void *base)
{
    const struct mf_option *o;
    int v;

    if (!sec->disc || !(o = mf_opt_find(sec, sec->disc)))
        return -1;
    memcpy(&v, cat(base, o->offset), sizeof(v));
    return v;
}

const struct mf_optsec *
mf_opt_kind_sec(const struct mf_optsec *sec, const void *base)
{
    int v = mf_opt_disc(sec, base);

    if (!sec->kinds || v < 0 || (size_t)v >= sec->nkinds ||
        !mf_opt_kind(sec, base))
        return NULL;
    return sec->kinds[v];
}

static void
format_num(const struct mf_option *o, int64_t v, char *out, size_t n)
{
    if (o->type == MF_OPT_DURATION)
        mf_fmt_duration(v, out, n);
    else if (o->type == MF_OPT_SIZE)
        mf_fmt_size(v, out, n);
    else
        snprintf(out, n, "%" PRId64, v);
}

/* ---- apply ---------------------------------------------------------- */

static size_t apply(const struct mf_optctx *c, const struct mf_optsec *sec,
                    const struct mf_jval *obj, uint32_t parent_line,
                    void *base, const char *path);

/* Scalar text usable as a string (strings and numbers). */
static const char *
str_of(const struct mf_jval *v)
{
    if (v->type == MF_JSTR || v->type == MF_JNUM)
        return v->u.s;
    return NULL;
}

static int
check_string(const struct mf_optctx *c, const struct mf_option *o,
             const char *s, uint32_t line, const char *kp)
{
    char why[160], sh[SHOW_LEN + 4];
    int v;

    if (!*s) {
        mf_err_add(c->err, c->file, line, "%s: must not be empty", kp);
        return -1;
    }
    if (o->choices && mf_enum_parse(o->choices, s, &v) != 0) {
        char ch[512];

        choices_text(o->choices, ch, sizeof(ch));
        mf_err_add(c->err, c->file, line,
                      "%s: unknown value '%s' (expected %s)", kp,
                      show(s, sh, sizeof(sh)), ch);
        return -1;
    }
    if (o->check) {
        why[0] = '\0';
        if (o->check(s, why, sizeof(why)) != 0) {
            if (o->flags & (MF_OPT_SECRET | MF_OPT_NOECHO))
                mf_err_add(c->err, c->file, line, "%s: %s", kp, why);
            else
                mf_err_add(c->err, c->file, line, "%s: '%s' %s", kp,
                              show(s, sh, sizeof(sh)), why);
            return -1;
        }
    }
    return 0;
}

static int
range_check(const struct mf_optctx *c, const struct mf_option *o, int64_t v,
            uint32_t line, const char *kp)
{
    char lo[32], hi[32];

    if (o->min == 0 && o->max == 0)
        return 0;
    if (v < o->min || v > o->max) {
        format_num(o, o->min, lo, sizeof(lo));
        format_num(o, o->max, hi, sizeof(hi));
        {
            char val[32];

            format_num(o, v, val, sizeof(val));
            mf_err_add(c->err, c->file, line,
                          "%s: %s is out of range (%s to %s)", kp, val, lo, hi);
        }
        return -1;
    }
    return 0;
}

static int
set_strlist(const struct mf_optctx *c, const struct mf_option *o,
            const struct mf_jval *v, void *field, const char *kp)
{
    struct mf_strlist sl = {NULL, 0};
    const char **items;
    size_t i, j, n;
    int bad = 0;

    if (v->type == MF_JSTR) {
        n = 1;
    } else if (v->type == MF_JARR) {
        n = v->len;
    } else {
        mf_err_add(c->err, c->file, v->line,
                      "%s: expected a list of strings, got %s", kp,
                      jtype_name(v));
        return -1;
    }
    items = mf_arena_calloc(c->a, (n ? n : 1) * sizeof(*items));
    for (i = 0; i < n; i++) {
        const struct mf_jval *e = v->type == MF_JARR ? v->u.items[i] : v;
        const char *s = str_of(e);
        char ep[PATH_LEN + 16];

        snprintf(ep, sizeof(ep), "%s[%zu]", kp, i);
        if (!s) {
            mf_err_add(c->err, c->file, e->line,
                          "%s: expected a string, got %s", ep, jtype_name(e));
            bad = 1;
            continue;
        }
        if (check_string(c, o, s, e->line, ep) != 0) {
            bad = 1;
            continue;
        }
        for (j = 0; j < sl.n; j++)
            if (strcmp(items[j], s) == 0)
                break;
        if (j < sl.n) {
            char sh[SHOW_LEN + 4];

            mf_err_add(c->err, c->file, e->line, "%s: '%s' is listed twice",
                          kp, show(s, sh, sizeof(sh)));
            bad = 1;
            continue;
        }
        items[sl.n++] = mf_arena_strdup(c->a, s);
    }
    if (bad)
        return -1;
    if (sl.n == 0 && (o->flags & MF_OPT_NONEMPTY)) {
        mf_err_add(c->err, c->file, v->line, "%s: must not be empty", kp);
        return -1;
    }
    sl.v = items;
    memcpy(field, &sl, sizeof(sl));
    return 0;
}

/* Arena copy of a string value; MF_OPT_PATH values made absolute. */
static const char *
path_of(const struct mf_optctx *c, const struct mf_option *o, const char *s)
{
    if ((o->flags & MF_OPT_PATH) && c->base_dir && s[0] != '/' && s[0] &&
        strcmp(s, "-") != 0)
        return mf_arena_printf(c->a, "%s/%s", c->base_dir, s);
    return mf_arena_strdup(c->a, s);
}

/* Append one pair to a PREFIX list (duplicates refused). */
static int
kv_add(const struct mf_optctx *c, const struct mf_option *o, void *field,
       const char *key, const struct mf_jval *v, const char *kp)
{
    struct mf_kvlist kl;
    struct mf_kv *nv;
    const char *s;
    size_t i;

    memcpy(&kl, field, sizeof(kl));
    if (!*key) {
        mf_err_add(c->err, c->file, v->line, "%s: empty property name", kp);
        return -1;
    }
    if (v->type == MF_JTRUE || v->type == MF_JFALSE)
        s = v->type == MF_JTRUE ? "true" : "false";
    else
        s = str_of(v);
    if (!s) {
        mf_err_add(c->err, c->file, v->line,
                      "%s.%s: expected a scalar value, got %s", kp, key,
                      jtype_name(v));
        return -1;
    }
    for (i = 0; i < kl.n; i++)
        if (strcmp(kl.v[i].key, key) == 0) {
            mf_err_add(c->err, c->file, v->line,
                          "%s: property '%s' is set twice", kp, key);
            return -1;
        }
    nv = mf_arena_alloc(c->a, (kl.n + 1) * sizeof(*nv));
    if (kl.n)
        memcpy(nv, kl.v, kl.n * sizeof(*nv));
    nv[kl.n].key = mf_arena_strdup(c->a, key);
    nv[kl.n].value = path_of(c, o, s);
    nv[kl.n].line = v->line;
    kl.v = nv;
    kl.n++;
    memcpy(field, &kl, sizeof(kl));
    return 0;
}

/* Number-like values: INT, DURATION, SIZE. */
static int
set_number(const struct mf_optctx *c, const struct mf_option *o,
           const struct mf_jval *v, void *field, const char *kp)
{
    char sh[SHOW_LEN + 4];
    const char *s;
    int64_t n;

    if (o->type == MF_OPT_INT) {
        if (v->type != MF_JNUM || mf_jget_int(v, &n) != 0) {
            if (v->type == MF_JNUM)
                mf_err_add(c->err, c->file, v->line,
                           "%s: expected an integer, got '%s'", kp, v->u.s);
            else
                mf_err_add(c->err, c->file, v->line,
                           "%s: expected an integer, got %s", kp, jtype_name(v));
            return -1;
        }
    } else if (!(s = str_of(v))) {
        mf_err_add(c->err, c->file, v->line, "%s: expected a %s, got %s", kp,
                   o->type == MF_OPT_SIZE ? "size" : "duration", jtype_name(v));
        return -1;
    } else if (o->type == MF_OPT_DURATION && mf_parse_duration(s, &n) != 0) {
        mf_err_add(c->err, c->file, v->line,
                   "%s: invalid duration '%s' (use a number with a unit: 500ms, "
                   "60s, 15m, 24h, 7d)", kp, show(s, sh, sizeof(sh)));
        return -1;
    } else if (o->type == MF_OPT_SIZE && mf_parse_size(s, &n) != 0) {
        mf_err_add(c->err, c->file, v->line,
                   "%s: invalid size '%s' (use bytes or a unit: 512, 64KiB, "
                   "1MiB, 10MB)", kp, show(s, sh, sizeof(sh)));
        return -1;
    }
    if (range_check(c, o, n, v->line, kp) != 0)
        return -1;
    memcpy(field, &n, sizeof(n));
    return 0;
}

static int
set_list(const struct mf_optctx *c, const struct mf_option *o,
         const struct mf_jval *v, void *field, const char *kp);

/* Parse v into the field of o. Returns 0 or -1 (error added). */
static int
set_value(const struct mf_optctx *c, const struct mf_option *o,
          const struct mf_jval *v, void *base, const char *kp)
{
    void *field = at(base, o->offset);
    const char *s;
    bool b;
    int e = 0;

    switch (o->type) {
    case MF_OPT_STR:
    case MF_OPT_ENUM:
        if (!(s = str_of(v))) {
            mf_err_add(c->err, c->file, v->line,
                       "%s: expected a string, got %s", kp, jtype_name(v));
            return -1;
        }
        if (check_string(c, o, s, v->line, kp) != 0)
            return -1;
        if (o->type == MF_OPT_ENUM) {
            mf_enum_parse(o->choices, s, &e);
            memcpy(field, &e, sizeof(e));
            return 0;
        }
        s = path_of(c, o, s);
        memcpy(field, &s, sizeof(s));
        return 0;
    case MF_OPT_INT:
    case MF_OPT_DURATION:
    case MF_OPT_SIZE:
        return set_number(c, o, v, field, kp);
    case MF_OPT_BOOL:
        if (v->type != MF_JTRUE && v->type != MF_JFALSE) {
            mf_err_add(c->err, c->file, v->line,
                       "%s: expected true or false, got %s", kp, jtype_name(v));
            return -1;
        }
        b = v->type == MF_JTRUE;
        memcpy(field, &b, sizeof(b));
        return 0;
    case MF_OPT_STRLIST:
        return set_strlist(c, o, v, field, kp);
    case MF_OPT_PREFIX:
    case MF_OPT_SECTION:
        if (v->type != MF_JOBJ) {
            mf_err_add(c->err, c->file, v->line,
                       "%s: expected a mapping, got %s", kp, jtype_name(v));
            return -1;
        }
        if (o->type == MF_OPT_SECTION)
            return apply(c, o->sub, v, v->line, field, kp) ? -1 : 0;
        for (size_t i = 0; i < v->len; i++)
            if (kv_add(c, o, field, v->u.mem[i].key, v->u.mem[i].val, kp) != 0)
                e = -1;
        return e;
    case MF_OPT_LIST:
        return set_list(c, o, v, field, kp);
    }
    return -1;
}

/* String value of key k of a list element (its own table or its kind's),
 * or NULL. */
static const char *
elem_str(const struct mf_optsec *sec, const void *el, const char *k,
         int disc)
{
    const struct mf_option *o = mf_opt_find(sec, k);
    const char *s = NULL;

    if (!o && sec->kinds && disc >= 0 && (size_t)disc < sec->nkinds &&
        sec->kinds[disc] && mf_opt_kind(sec, el)) {
        o = mf_opt_find(sec->kinds[disc], k);
        el = mf_opt_kind(sec, el);
    }
    if (o && o->type == MF_OPT_STR)
        memcpy(&s, cat(el, o->offset), sizeof(s));
    return s;
}

/* The identity key and MF_OPT_UNIQUE values of a list: no two elements
 * (of the same kind) share one. */
static void
check_unique(const struct mf_optctx *c, const struct mf_optsec *sec,
             const struct mf_jval *v, const char *elems, const char *kp)
{
    const struct mf_optsec *tabs[2] = {sec, NULL};

    for (size_t i = 1; i < v->len; i++) {
        const char *ei = elems + i * sec->size;
        int di = mf_opt_disc(sec, ei);

        tabs[1] = mf_opt_kind_sec(sec, ei);
        for (size_t j = 0; j < i; j++) {
            const char *ej = elems + j * sec->size;
            const char *a, *b;

            if (sec->key && (a = elem_str(sec, ei, sec->key, di)) &&
                (b = elem_str(sec, ej, sec->key, mf_opt_disc(sec, ej))) &&
                strcasecmp(a, b) == 0)
                mf_err_add(c->err, c->file,
                           mf_opt_key_line(v->u.items[i], sec->key),
                           "%s[%zu].%s: duplicate %s %s '%s' (also %s[%zu], "
                           "line %u)", kp, i, sec->key, sec->noun, sec->key, a,
                           kp, j, (unsigned)v->u.items[j]->line);
            for (int t = 0; t < 2; t++)
                for (const struct mf_option *o = tabs[t] ? tabs[t]->opts : NULL;
                     o && o->name; o++)
                    if ((o->flags & MF_OPT_UNIQUE) &&
                        (t == 0 || mf_opt_disc(sec, ej) == di) &&
                        (a = elem_str(sec, ei, o->name, di)) &&
                        (b = elem_str(sec, ej, o->name, di)) &&
                        strcmp(a, b) == 0)
                        mf_err_add(c->err, c->file,
                                   mf_opt_key_line(v->u.items[i], o->name),
                                   "%s[%zu].%s: '%s' is also the %s of %s[%zu]",
                                   kp, i, o->name, a, o->name, kp, j);
        }
    }
}

static int
set_list(const struct mf_optctx *c, const struct mf_option *o,
         const struct mf_jval *v, void *field, const char *kp)
{
    struct mf_anylist l;
    char *elems;
    size_t i, errs = 0;

    if (v->type != MF_JARR) {
        mf_err_add(c->err, c->file, v->line, "%s: expected a list, got %s", kp,
                   jtype_name(v));
        return -1;
    }
    if (v->len == 0 && (o->flags & MF_OPT_NONEMPTY)) {
        mf_err_add(c->err, c->file, v->line, "%s: must not be empty", kp);
        return -1;
    }
    elems = mf_arena_calloc(c->a, (v->len ? v->len : 1) * o->sub->size);
    for (i = 0; i < v->len; i++) {
        const struct mf_jval *e = v->u.items[i];
        char ep[PATH_LEN];

        snprintf(ep, sizeof(ep), "%s[%zu]", kp, i);
        if (e->type != MF_JOBJ) {
            mf_err_add(c->err, c->file, e->line,
                       "%s: expected a mapping, got %s", ep, jtype_name(e));
            errs++;
            continue;
        }
        errs += apply(c, o->sub, e, e->line, elems + i * o->sub->size, ep);
    }
    check_unique(c, o->sub, v, elems, kp);
    l.v = elems;
    l.n = v->len;
    memcpy(field, &l, sizeof(l));
    return errs ? -1 : 0;
}

static int
set_default(const struct mf_optctx *c, const struct mf_option *o, void *base,
            uint32_t line, const char *kp)
{
    struct mf_err yerr;
    struct mf_jval *v;

    v = mf_yaml_load(c->a, "<default>", o->def, strlen(o->def), &yerr);
    if (!v) {
        mf_err_add(c->err, c->file, line, "%s: internal: bad default (%s)", kp,
                   yerr.msg);
        return -1;
    }
    v->line = line;
    return set_value(c, o, v, base, kp);
}

static unsigned
edit_distance(const char *a, const char *b)
{
    unsigned d[64], prev, tmp;
    size_t i, j, la = strlen(a), lb = strlen(b);

    if (la >= 63 || lb >= 63)
        return 99;
    for (j = 0; j <= lb; j++)
        d[j] = (unsigned)j;
    for (i = 1; i <= la; i++) {
        prev = d[0];
        d[0] = (unsigned)i;
        for (j = 1; j <= lb; j++) {
            unsigned best = prev + (a[i - 1] != b[j - 1]);

            if (d[j] + 1 < best)
                best = d[j] + 1;
            if (d[j - 1] + 1 < best)
                best = d[j - 1] + 1;
            tmp = d[j];
            d[j] = best;
            prev = tmp;
        }
    }
    return d[lb];
}

/* An unknown key: a pointer to the secret keys, or the nearest known key
 * of the section and of the element's kind (kind may be NULL). */
static void
unknown_key(const struct mf_optctx *c, const struct mf_optsec *sec,
            const struct mf_optsec *kind, const char *key, uint32_t line,
            const char *path)
{
    const struct mf_option *o, *best = NULL;
    unsigned bd = 3;
    char f1[PATH_LEN], f2[PATH_LEN], sh[SHOW_LEN + 4];
    const char *where = path[0] ? path : "top level";

    show(key, sh, sizeof(sh));
    snprintf(f1, sizeof(f1), "%s_file", key);
    snprintf(f2, sizeof(f2), "%s_env", key);
    if (mf_opt_find(sec, f1) && mf_opt_find(sec, f2)) {
        mf_err_add(c->err, c->file, line,
                   "%s: unknown key '%s' (secrets are never written in the "
                   "configuration: use %s or %s)", where, sh, f1, f2);
        return;
    }
    for (int t = 0; t < 2; t++)
        for (o = t ? (kind ? kind->opts : NULL) : sec->opts; o && o->name;
             o++) {
            unsigned d = edit_distance(key, o->name);

            if (d < bd) {
                bd = d;
                best = o;
            }
        }
    if (best)
        mf_err_add(c->err, c->file, line,
                   "%s: unknown key '%s' (did you mean '%s'?)", where, sh,
                   best->name);
    else
        mf_err_add(c->err, c->file, line, "%s: unknown key '%s'", where, sh);
}

/* The option of key in sec: by name, or a PREFIX option "name.rest". */
static const struct mf_option *
find_key(const struct mf_optsec *sec, const char *key, bool *prefixed)
{
    const struct mf_option *o;

    *prefixed = false;
    if (!sec)
        return NULL;
    if ((o = mf_opt_find(sec, key)))
        return o;
    for (o = sec->opts; o->name; o++) {
        size_t pl = strlen(o->name);

        if (o->type == MF_OPT_PREFIX && strncmp(key, o->name, pl) == 0 &&
            key[pl] == '.') {
            *prefixed = true;
            return o;
        }
    }
    return NULL;
}

/* The kinds (disc values) whose table knows key: "kafka, syslog". */
static bool
other_kinds(const struct mf_optsec *sec, const char *key, char *out, size_t n)
{
    const struct mf_option *d = mf_opt_find(sec, sec->disc);
    size_t used = 0;
    bool pre;

    out[0] = '\0';
    for (size_t v = 0; sec->kinds && v < sec->nkinds; v++)
        if (find_key(sec->kinds[v], key, &pre)) {
            int k = snprintf(out + used, n - used, "%s%s", used ? ", " : "",
                             mf_enum_name(d->choices, (int)v));

            if (k > 0 && (size_t)k < n - used)
                used += (size_t)k;
        }
    return used > 0;
}

/* One apply: the section's table, and the table of its kind. */
struct applying {
    const struct mf_optsec *sec;
    void *base;
    bool seen[128];
    uint32_t null_line[128];
};

/* The discriminator first: it decides which keys are valid. Returns its
 * value, -1 when absent or invalid (*bad: already reported). */
static int
apply_disc(const struct mf_optctx *c, const struct mf_optsec *sec,
           const struct mf_jval *obj, uint32_t line, void *base,
           const char *path, bool *bad)
{
    const struct mf_option *o = mf_opt_find(sec, sec->disc);
    const struct mf_jval *dv = mf_jobj_get(obj, sec->disc);
    char kp[PATH_LEN];

    join_path(kp, path, o->name);
    *bad = true;
    if (dv && dv->type != MF_JNULL) {
        if (set_value(c, o, dv, base, kp) != 0)
            return -1;
    } else if (o->def) {
        if (set_default(c, o, base, line, kp) != 0)
            return -1;
    } else {
        mf_err_add(c->err, c->file, dv ? dv->line : line,
                   "%s: missing required key '%s'",
                   path[0] ? path : "top level", o->name);
        return -1;
    }
    *bad = false;
    return mf_opt_disc(sec, base);
}

/* One key of the mapping: into the section, its kind, or an error. */
static void
apply_key(const struct mf_optctx *c, struct applying *ap, const char *key,
          const struct mf_jval *v, const char *path, int disc, bool disc_bad)
{
    const struct mf_optsec *sec = ap[0].sec;
    const struct mf_option *o;
    struct applying *t = &ap[0];
    char kp[PATH_LEN], ot[128];
    bool pre;
    size_t i;

    if (!(o = find_key(sec, key, &pre)) &&
        (o = find_key(ap[1].sec, key, &pre)))
        t = &ap[1];
    if (!o) {
        if (sec->kinds && other_kinds(sec, key, ot, sizeof(ot))) {
            join_path(kp, path, key);
            if (!disc_bad)   /* else the type is already reported */
                mf_err_add(c->err, c->file, v->line,
                           "%s: not valid for %s '%s' (only for %s)", kp,
                           sec->disc,
                           mf_enum_name(mf_opt_find(sec, sec->disc)->choices,
                                        disc), ot);
            return;
        }
        unknown_key(c, sec, ap[1].sec, key, v->line, path);
        return;
    }
    i = (size_t)(o - t->sec->opts);
    join_path(kp, path, o->name);
    if (pre) {
        kv_add(c, o, at(t->base, o->offset), key + strlen(o->name) + 1, v, kp);
    } else if (v->type == MF_JNULL) {
        t->null_line[i] = v->line;   /* "key:" with no value: as if absent */
        return;
    } else {
        set_value(c, o, v, t->base, kp);
    }
    t->seen[i] = true;
}

/* Defaults, required keys, sections never mentioned. */
static void
apply_rest(const struct mf_optctx *c, struct applying *t, uint32_t line,
           const char *path)
{
    char kp[PATH_LEN];
    size_t i = 0;

    for (const struct mf_option *o = t->sec->opts; o->name; o++, i++) {
        uint32_t l = t->null_line[i] ? t->null_line[i] : line;

        if (t->seen[i])
            continue;
        join_path(kp, path, o->name);
        if (o->type == MF_OPT_SECTION)
            apply(c, o->sub, NULL, l, at(t->base, o->offset), kp);
        else if (o->flags & MF_OPT_REQUIRED)
            mf_err_add(c->err, c->file, l, "%s: missing required key '%s'",
                       path[0] ? path : "top level", o->name);
        else if (o->def)
            set_default(c, o, t->base, line, kp);
    }
}

static size_t
apply(const struct mf_optctx *c, const struct mf_optsec *sec,
      const struct mf_jval *obj, uint32_t parent_line, void *base,
      const char *path)
{
    size_t before = c->err ? c->err->n : 0;
    uint32_t line = obj ? obj->line : parent_line;
    struct applying ap[2];
    bool disc_bad = false;
    int disc = -1;

    memset(ap, 0, sizeof(ap));
    ap[0].sec = sec;
    ap[0].base = base;
    if (obj && obj->type != MF_JOBJ) {
        mf_err_add(c->err, c->file, obj->line, "%s: expected a mapping, got %s",
                   path[0] ? path : "top level", jtype_name(obj));
        return 1;
    }
    if (sec->disc) {
        disc = apply_disc(c, sec, obj, line, base, path, &disc_bad);
        ap[0].seen[mf_opt_find(sec, sec->disc) - sec->opts] = true;
    }
    if (sec->kinds && disc >= 0 && (size_t)disc < sec->nkinds &&
        sec->kinds[disc]) {
        ap[1].sec = sec->kinds[disc];
        ap[1].base = mf_arena_calloc(c->a, ap[1].sec->size);
        memcpy(at(base, sec->kind_offset), &ap[1].base, sizeof(void *));
    }
    for (size_t k = 0; obj && k < obj->len; k++)
        if (!sec->disc || strcmp(obj->u.mem[k].key, sec->disc) != 0)
            apply_key(c, ap, obj->u.mem[k].key, obj->u.mem[k].val, path, disc,
                      disc_bad);
    for (int t = 0; t < 2; t++)
        if (ap[t].sec)
            apply_rest(c, &ap[t], line, path);
    for (int t = 0; t < 2; t++)
        if (ap[t].sec && ap[t].sec->check)
            ap[t].sec->check(c, ap[t].base, obj, path);
    return (c->err ? c->err->n : 0) - before;
}

size_t
mf_opt_apply(const struct mf_optctx *c, const struct mf_optsec *sec,
             const struct mf_jval *obj, uint32_t parent_line, void *base,
             const char *path)
{
    return apply(c, sec, obj, parent_line, base, path ? path : "");
}

/* ---- documentation -------------------------------------------------- */

static void
md_text(struct mf_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            mf_buf_appends(b, "\\|");
        else if (*s == '\n')
            mf_buf_appendc(b, ' ');
        else
            mf_buf_appendc(b, *s);
    }
}

static void
doc_type(struct mf_buf *b, const struct mf_option *o)
{
    char lo[32], hi[32];
    const struct mf_enum *e;

    switch (o->type) {
    case MF_OPT_STR:
        mf_buf_appends(b, (o->flags & MF_OPT_PATH) ? "path" : "string");
        break;
    case MF_OPT_INT: mf_buf_appends(b, "integer"); break;
    case MF_OPT_BOOL: mf_buf_appends(b, "boolean"); break;
    case MF_OPT_DURATION: mf_buf_appends(b, "duration"); break;
    case MF_OPT_SIZE: mf_buf_appends(b, "size"); break;
    case MF_OPT_ENUM: mf_buf_appends(b, "one of"); break;
    case MF_OPT_STRLIST:
        mf_buf_appends(b, o->choices ? "list of" : "list of strings");
        break;
    case MF_OPT_PREFIX:
        mf_buf_appends(b, (o->flags & MF_OPT_PATH) ? "mapping of paths"
                                                   : "mapping of strings");
        break;
    case MF_OPT_SECTION: mf_buf_appends(b, "mapping"); break;
    case MF_OPT_LIST: mf_buf_appends(b, "list of mappings"); break;
    }
    if (o->choices) {
        for (e = o->choices; e->name; e++)
            mf_buf_printf(b, "%s `%s`", e == o->choices ? "" : ",", e->name);
    }
    if ((o->type == MF_OPT_INT || o->type == MF_OPT_DURATION ||
         o->type == MF_OPT_SIZE) && (o->min || o->max)) {
        format_num(o, o->min, lo, sizeof(lo));
        format_num(o, o->max, hi, sizeof(hi));
        mf_buf_printf(b, ", %s to %s", lo, hi);
    }
}

static const char *const reload_names[] = {
    [MF_RELOAD_RESTART] = "restart",
    [MF_RELOAD_LIVE] = "live",
    [MF_RELOAD_NEVER] = "never",
};

static void
doc_default(struct mf_buf *b, const struct mf_option *o)
{
    if (o->flags & MF_OPT_REQUIRED)
        mf_buf_appends(b, "**required**");
    else if (o->defdoc)
        md_text(b, o->defdoc);
    else if (o->def)
        mf_buf_printf(b, "`%s`", o->def);
    else if (o->type == MF_OPT_SECTION)
        mf_buf_appends(b, "see below");
    else
        mf_buf_appends(b, "not set");
}

static void
doc_row(struct mf_buf *b, const struct mf_option *o)
{
    if (o->type == MF_OPT_PREFIX)
        mf_buf_printf(b, "| `%s`, `%s.*` | ", o->name, o->name);
    else
        mf_buf_printf(b, "| `%s` | ", o->name);
    doc_type(b, o);
    mf_buf_appends(b, " | ");
    doc_default(b, o);
    if (o->type == MF_OPT_SECTION)
        mf_buf_appends(b, " | see below | ");
    else
        mf_buf_printf(b, " | %s | ", reload_names[o->reload]);
    if (o->flags & MF_OPT_SECRET)
        mf_buf_appends(b, "*(secret source)* ");
    md_text(b, o->desc);
    if ((o->flags & MF_OPT_NONEMPTY) && !(o->flags & MF_OPT_REQUIRED))
        mf_buf_appends(b, " Must not be empty when given.");
    mf_buf_appends(b, " |\n");
}

static void
doc_heading(struct mf_buf *b, int level, const char *title_path,
            const char *disc, const char *kind)
{
    for (int i = 0; i < level; i++)
        mf_buf_appendc(b, '#');
    if (kind)
        mf_buf_printf(b, " `%s` with `%s: %s`\n\n", title_path, disc, kind);
    else if (title_path && title_path[0])
        mf_buf_printf(b, " `%s`\n\n", title_path);
    else
        mf_buf_appends(b, " Top level\n\n");
}

/* Description, table of sec, then its sub-sections. */
static void
doc_body(struct mf_buf *b, const struct mf_optsec *sec, const char *tpath,
         int level)
{
    const struct mf_option *o;

    if (sec->desc && sec->desc[0]) {
        mf_buf_appends(b, sec->desc);
        mf_buf_appends(b, "\n\n");
    }
    mf_buf_appends(b, "| Key | Type | Default | Reload | Description |\n");
    mf_buf_appends(b, "|---|---|---|---|---|\n");
    for (o = sec->opts; o->name; o++)
        doc_row(b, o);
    mf_buf_appends(b, "\n");
    for (o = sec->opts; o->name; o++)
        if (o->type == MF_OPT_SECTION || o->type == MF_OPT_LIST) {
            char sub[PATH_LEN];

            snprintf(sub, sizeof(sub), "%s%s%s%s", tpath, tpath[0] ? "." : "",
                     o->name, o->type == MF_OPT_LIST ? "[]" : "");
            mf_opt_doc(b, o->sub, sub, level + 1);
        }
}

void
mf_opt_doc(struct mf_buf *b, const struct mf_optsec *sec,
           const char *title_path, int level)
{
    const char *tpath = title_path ? title_path : "";
    const struct mf_option *d = sec->disc ? mf_opt_find(sec, sec->disc) : NULL;

    doc_heading(b, level, tpath, NULL, NULL);
    doc_body(b, sec, tpath, level);
    for (size_t v = 0; sec->kinds && v < sec->nkinds; v++)
        if (sec->kinds[v]) {
            doc_heading(b, level + 1, tpath, sec->disc,
                        mf_enum_name(d->choices, (int)v));
            doc_body(b, sec->kinds[v], tpath, level + 1);
        }
}

/* ---- values as text, dump ------------------------------------------- */

static void
yq(struct mf_buf *b, const char *s)
{
    mf_json_write_str(b, s, strlen(s));
}

bool
mf_opt_is_set(const struct mf_option *o, const void *base)
{
    const void *f = cat(base, o->offset);
    const char *s;
    int64_t v;
    size_t n;

    switch (o->type) {
    case MF_OPT_STR:
        memcpy(&s, f, sizeof(s));
        return s != NULL;
    case MF_OPT_INT:
    case MF_OPT_DURATION:
    case MF_OPT_SIZE:
        memcpy(&v, f, sizeof(v));
        return v != 0 || o->def;
    case MF_OPT_STRLIST:
    case MF_OPT_PREFIX:
        /* both start with the pointer, then the count */
        memcpy(&n, (const char *)f + sizeof(void *), sizeof(n));
        return n > 0 || (o->type == MF_OPT_STRLIST && o->def);
    default:
        return true;
    }
}

void
mf_opt_value_text(struct mf_buf *b, const struct mf_option *o,
                  const void *base)
{
    const void *f = cat(base, o->offset);
    char tmp[64];
    size_t i;

    if (!mf_opt_is_set(o, base) && o->type != MF_OPT_STRLIST) {
        mf_buf_appends(b, "(not set)");
        return;
    }
    switch (o->type) {
    case MF_OPT_STR: {
        const char *s;

        memcpy(&s, f, sizeof(s));
        yq(b, s);
        return;
    }
    case MF_OPT_INT:
    case MF_OPT_DURATION:
    case MF_OPT_SIZE: {
        int64_t v;

        memcpy(&v, f, sizeof(v));
        format_num(o, v, tmp, sizeof(tmp));
        mf_buf_appends(b, tmp);
        return;
    }
    case MF_OPT_BOOL:
        mf_buf_appends(b, *(const bool *)f ? "true" : "false");
        return;
    case MF_OPT_ENUM: {
        int v;

        memcpy(&v, f, sizeof(v));
        yq(b, mf_enum_name(o->choices, v));
        return;
    }
    case MF_OPT_STRLIST: {
        struct mf_strlist sl;

        memcpy(&sl, f, sizeof(sl));
        mf_buf_appendc(b, '[');
        for (i = 0; i < sl.n; i++) {
            if (i)
                mf_buf_appends(b, ", ");
            yq(b, sl.v[i]);
        }
        mf_buf_appendc(b, ']');
        return;
    }
    case MF_OPT_PREFIX: {
        struct mf_kvlist kl;

        memcpy(&kl, f, sizeof(kl));
        mf_buf_appendc(b, '{');
        for (i = 0; i < kl.n; i++) {
            mf_buf_appends(b, i ? ", " : "");
            yq(b, kl.v[i].key);
            mf_buf_appends(b, ": ");
            yq(b, kl.v[i].value);
        }
        mf_buf_appendc(b, '}');
        return;
    }
    default:
        mf_buf_appends(b, "...");
    }
}

static void
pad(struct mf_buf *b, int n)
{
    while (n-- > 0)
        mf_buf_appendc(b, ' ');
}

static void
dump_key(struct mf_buf *b, const char *name, int indent, bool *first_dash)
{
    if (*first_dash) {
        pad(b, indent - 2);
        mf_buf_appends(b, "- ");
        *first_dash = false;
    } else {
        pad(b, indent);
    }
    mf_buf_printf(b, "%s:", name);
}

static void dump_members(struct mf_buf *b, const struct mf_optsec *sec,
                         const void *base, int indent, bool *first_dash);

static void
dump_one(struct mf_buf *b, const struct mf_option *o, const void *base,
         int indent, bool *first_dash)
{
    const void *f = cat(base, o->offset);
    struct mf_anylist l;

    switch (o->type) {
    case MF_OPT_SECTION:
        dump_key(b, o->name, indent, first_dash);
        mf_buf_appendc(b, '\n');
        dump_members(b, o->sub, f, indent + 2, &(bool){false});
        return;
    case MF_OPT_LIST:
        memcpy(&l, f, sizeof(l));
        dump_key(b, o->name, indent, first_dash);
        mf_buf_appends(b, l.n ? "\n" : " []\n");
        for (size_t i = 0; i < l.n; i++)
            dump_members(b, o->sub, (const char *)l.v + i * o->sub->size,
                         indent + 4, &(bool){true});
        return;
    default:
        if (!mf_opt_is_set(o, base))
            return;
        dump_key(b, o->name, indent, first_dash);
        mf_buf_appendc(b, ' ');
        mf_opt_value_text(b, o, base);
        mf_buf_appendc(b, '\n');
    }
}

static void
dump_members(struct mf_buf *b, const struct mf_optsec *sec, const void *base,
             int indent, bool *first_dash)
{
    const struct mf_optsec *kind = mf_opt_kind_sec(sec, base);
    const struct mf_option *o;

    for (o = sec->opts; o->name; o++)
        dump_one(b, o, base, indent, first_dash);
    for (o = kind ? kind->opts : NULL; o && o->name; o++)
        dump_one(b, o, mf_opt_kind(sec, base), indent, first_dash);
}

void
mf_opt_dump(struct mf_buf *b, const struct mf_optsec *sec, const void *base,
            int indent)
{
    dump_members(b, sec, base, indent, &(bool){false});
}
