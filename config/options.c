/* options.c - the generic option-table engine (see options.h). */
#include "options.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "yaml_tree.h"

#define PATH_LEN 256
#define SHOW_LEN 64

/* ---- errors --------------------------------------------------------- */

void
mf_cfgerr_reset(struct mf_cfgerr *e)
{
    e->msg[0] = '\0';
    e->all[0] = '\0';
    e->n = 0;
}

void
mf_cfgerr_add(struct mf_cfgerr *e, const char *file, uint32_t line,
              const char *fmt, ...)
{
    char text[512];
    size_t used, k;
    int n;
    va_list ap;

    if (!e)
        return;
    if (!file)
        n = 0;
    else if (line)
        n = snprintf(text, sizeof(text), "%s:%" PRIu32 ": ", file, line);
    else
        n = snprintf(text, sizeof(text), "%s: ", file);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(text))
        n = (int)sizeof(text) - 1;
    va_start(ap, fmt);
    vsnprintf(text + n, sizeof(text) - (size_t)n, fmt, ap);
    va_end(ap);
    k = strlen(text);
    if (e->n == 0) {
        size_t m = k < sizeof(e->msg) - 1 ? k : sizeof(e->msg) - 1;

        memcpy(e->msg, text, m);
        e->msg[m] = '\0';
    }
    e->n++;
    used = strlen(e->all);
    if (used + k + 2 < sizeof(e->all) - 4) {
        memcpy(e->all + used, text, k);
        e->all[used + k] = '\n';
        e->all[used + k + 1] = '\0';
    } else if (used + 4 < sizeof(e->all) &&
               (used < 4 || strcmp(e->all + used - 4, "...\n") != 0)) {
        memcpy(e->all + used, "...\n", 5);
    }
}

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

bool
mf_opt_applies(const struct mf_option *o, int disc)
{
    if (o->only == 0)
        return true;
    if (disc < 0 || disc >= 32)
        return false;
    return (o->only & (1u << disc)) != 0;
}

/* ---- value parsers -------------------------------------------------- */

static const struct {
    const char *unit;
    int64_t ms;
} dur_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
    {NULL, 0},
};

int
mf_opt_parse_duration(const char *s, int64_t *ms)
{
    int64_t total = 0;
    const char *p = s;

    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    if (!*p)
        return -1;
    while (*p) {
        int64_t num = 0, mul = 0;
        size_t ulen = 0;
        int i;

        if (!isdigit((unsigned char)*p))
            return -1;
        while (isdigit((unsigned char)*p)) {
            if (num > (INT64_MAX - 9) / 10)
                return -1;
            num = num * 10 + (*p++ - '0');
        }
        while (isalpha((unsigned char)p[ulen]))
            ulen++;
        for (i = 0; dur_units[i].unit; i++)
            if (strlen(dur_units[i].unit) == ulen &&
                strncmp(dur_units[i].unit, p, ulen) == 0)
                mul = dur_units[i].ms;
        if (mul == 0 || num > (INT64_MAX - total) / mul)
            return -1;
        total += num * mul;
        p += ulen;
    }
    *ms = total;
    return 0;
}

static const struct {
    const char *unit;
    int64_t mul;
} size_units[] = {
    {"", 1}, {"b", 1},
    {"k", 1024}, {"kb", 1000}, {"kib", 1024},
    {"m", 1048576}, {"mb", 1000000}, {"mib", 1048576},
    {"g", 1073741824}, {"gb", 1000000000}, {"gib", 1073741824},
    {NULL, 0},
};

int
mf_opt_parse_size(const char *s, int64_t *bytes)
{
    int64_t num = 0;
    const char *p = s;
    int i;

    if (!isdigit((unsigned char)*p))
        return -1;
    while (isdigit((unsigned char)*p)) {
        if (num > (INT64_MAX - 9) / 10)
            return -1;
        num = num * 10 + (*p++ - '0');
    }
    for (i = 0; size_units[i].unit; i++)
        if (strcasecmp(size_units[i].unit, p) == 0) {
            if (num > INT64_MAX / size_units[i].mul)
                return -1;
            *bytes = num * size_units[i].mul;
            return 0;
        }
    return -1;
}

void
mf_opt_format_duration(int64_t ms, char *out, size_t n)
{
    int i;

    if (ms == 0) {
        snprintf(out, n, "0s");
        return;
    }
    for (i = 4; i > 0; i--)
        if (ms % dur_units[i].ms == 0)
            break;
    snprintf(out, n, "%" PRId64 "%s", ms / dur_units[i].ms, dur_units[i].unit);
}

void
mf_opt_format_size(int64_t bytes, char *out, size_t n)
{
    static const char *const u[] = {"GiB", "MiB", "KiB"};
    static const int64_t m[] = {1073741824, 1048576, 1024};
    int i;

    for (i = 0; i < 3; i++)
        if (bytes != 0 && bytes % m[i] == 0) {
            snprintf(out, n, "%" PRId64 "%s", bytes / m[i], u[i]);
            return;
        }
    snprintf(out, n, "%" PRId64, bytes);
}

static void
format_num(const struct mf_option *o, int64_t v, char *out, size_t n)
{
    if (o->type == MF_OPT_DURATION)
        mf_opt_format_duration(v, out, n);
    else if (o->type == MF_OPT_SIZE)
        mf_opt_format_size(v, out, n);
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
        mf_cfgerr_add(c->err, c->file, line, "%s: must not be empty", kp);
        return -1;
    }
    if (o->choices && mf_enum_parse(o->choices, s, &v) != 0) {
        char ch[512];

        choices_text(o->choices, ch, sizeof(ch));
        mf_cfgerr_add(c->err, c->file, line,
                      "%s: unknown value '%s' (expected %s)", kp,
                      show(s, sh, sizeof(sh)), ch);
        return -1;
    }
    if (o->check) {
        why[0] = '\0';
        if (o->check(s, why, sizeof(why)) != 0) {
            if (o->flags & (MF_OPT_SECRET | MF_OPT_NOECHO))
                mf_cfgerr_add(c->err, c->file, line, "%s: %s", kp, why);
            else
                mf_cfgerr_add(c->err, c->file, line, "%s: '%s' %s", kp,
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
            mf_cfgerr_add(c->err, c->file, line,
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
        mf_cfgerr_add(c->err, c->file, v->line,
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
            mf_cfgerr_add(c->err, c->file, e->line,
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

            mf_cfgerr_add(c->err, c->file, e->line, "%s: '%s' is listed twice",
                          kp, show(s, sh, sizeof(sh)));
            bad = 1;
            continue;
        }
        items[sl.n++] = mf_arena_strdup(c->a, s);
    }
    if (bad)
        return -1;
    if (sl.n == 0 && (o->flags & MF_OPT_NONEMPTY)) {
        mf_cfgerr_add(c->err, c->file, v->line, "%s: must not be empty", kp);
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
        mf_cfgerr_add(c->err, c->file, v->line, "%s: empty property name", kp);
        return -1;
    }
    if (v->type == MF_JTRUE || v->type == MF_JFALSE)
        s = v->type == MF_JTRUE ? "true" : "false";
    else
        s = str_of(v);
    if (!s) {
        mf_cfgerr_add(c->err, c->file, v->line,
                      "%s.%s: expected a scalar value, got %s", kp, key,
                      jtype_name(v));
        return -1;
    }
    for (i = 0; i < kl.n; i++)
        if (strcmp(kl.v[i].key, key) == 0) {
            mf_cfgerr_add(c->err, c->file, v->line,
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

/* Parse v into the field of o. Returns 0 or -1 (error added). */
static int
set_value(const struct mf_optctx *c, const struct mf_option *o,
          const struct mf_jval *v, void *base, const char *kp)
{
    void *field = at(base, o->offset);
    char sh[SHOW_LEN + 4];
    const char *s;
    int64_t n;

    switch (o->type) {
    case MF_OPT_STR:
        if (!(s = str_of(v))) {
            mf_cfgerr_add(c->err, c->file, v->line,
                          "%s: expected a string, got %s", kp, jtype_name(v));
            return -1;
        }
        if (check_string(c, o, s, v->line, kp) != 0)
            return -1;
        s = path_of(c, o, s);
        memcpy(field, &s, sizeof(s));
        return 0;
    case MF_OPT_INT:
        if (v->type != MF_JNUM || mf_jget_int(v, &n) != 0) {
            if (v->type == MF_JNUM)
                mf_cfgerr_add(c->err, c->file, v->line,
                              "%s: expected an integer, got '%s'", kp, v->u.s);
            else
                mf_cfgerr_add(c->err, c->file, v->line,
                              "%s: expected an integer, got %s", kp,
                              jtype_name(v));
            return -1;
        }
        if (range_check(c, o, n, v->line, kp) != 0)
            return -1;
        memcpy(field, &n, sizeof(n));
        return 0;
    case MF_OPT_BOOL: {
        bool b;

        if (v->type != MF_JTRUE && v->type != MF_JFALSE) {
            mf_cfgerr_add(c->err, c->file, v->line,
                          "%s: expected true or false, got %s", kp,
                          jtype_name(v));
            return -1;
        }
        b = v->type == MF_JTRUE;
        memcpy(field, &b, sizeof(b));
        return 0;
    }
    case MF_OPT_DURATION:
    case MF_OPT_SIZE:
        s = str_of(v);
        if (!s) {
            mf_cfgerr_add(c->err, c->file, v->line, "%s: expected a %s, got %s",
                          kp, o->type == MF_OPT_SIZE ? "size" : "duration",
                          jtype_name(v));
            return -1;
        }
        if (o->type == MF_OPT_DURATION) {
            if (mf_opt_parse_duration(s, &n) != 0) {
                mf_cfgerr_add(c->err, c->file, v->line,
                              "%s: invalid duration '%s' (use a number with a "
                              "unit: 500ms, 60s, 15m, 24h, 7d)",
                              kp, show(s, sh, sizeof(sh)));
                return -1;
            }
        } else if (mf_opt_parse_size(s, &n) != 0) {
            mf_cfgerr_add(c->err, c->file, v->line,
                          "%s: invalid size '%s' (use bytes or a unit: 512, "
                          "64KiB, 1MiB, 10MB)",
                          kp, show(s, sh, sizeof(sh)));
            return -1;
        }
        if (range_check(c, o, n, v->line, kp) != 0)
            return -1;
        memcpy(field, &n, sizeof(n));
        return 0;
    case MF_OPT_ENUM: {
        int e = 0;

        if (!(s = str_of(v))) {
            mf_cfgerr_add(c->err, c->file, v->line,
                          "%s: expected a string, got %s", kp, jtype_name(v));
            return -1;
        }
        if (check_string(c, o, s, v->line, kp) != 0)
            return -1;
        mf_enum_parse(o->choices, s, &e);
        memcpy(field, &e, sizeof(e));
        return 0;
    }
    case MF_OPT_STRLIST:
        return set_strlist(c, o, v, field, kp);
    case MF_OPT_PREFIX: {
        size_t i;
        int rc = 0;

        if (v->type != MF_JOBJ) {
            mf_cfgerr_add(c->err, c->file, v->line,
                          "%s: expected a mapping, got %s", kp, jtype_name(v));
            return -1;
        }
        for (i = 0; i < v->len; i++)
            if (kv_add(c, o, field, v->u.mem[i].key, v->u.mem[i].val, kp) != 0)
                rc = -1;
        return rc;
    }
    case MF_OPT_SECTION:
        if (v->type != MF_JOBJ) {
            mf_cfgerr_add(c->err, c->file, v->line,
                          "%s: expected a mapping, got %s", kp, jtype_name(v));
            return -1;
        }
        return apply(c, o->sub, v, v->line, field, kp) ? -1 : 0;
    case MF_OPT_LIST: {
        struct mf_anylist l;
        char *elems;
        size_t i, errs = 0;

        if (v->type != MF_JARR) {
            mf_cfgerr_add(c->err, c->file, v->line,
                          "%s: expected a list, got %s", kp, jtype_name(v));
            return -1;
        }
        if (v->len == 0 && (o->flags & MF_OPT_NONEMPTY)) {
            mf_cfgerr_add(c->err, c->file, v->line, "%s: must not be empty",
                          kp);
            return -1;
        }
        elems = mf_arena_calloc(c->a, (v->len ? v->len : 1) * o->sub->size);
        for (i = 0; i < v->len; i++) {
            const struct mf_jval *e = v->u.items[i];
            char ep[PATH_LEN];

            snprintf(ep, sizeof(ep), "%s[%zu]", kp, i);
            if (e->type != MF_JOBJ) {
                mf_cfgerr_add(c->err, c->file, e->line,
                              "%s: expected a mapping, got %s", ep,
                              jtype_name(e));
                errs++;
                continue;
            }
            errs += apply(c, o->sub, e, e->line, elems + i * o->sub->size, ep);
        }
        l.v = elems;
        l.n = v->len;
        memcpy(field, &l, sizeof(l));
        return errs ? -1 : 0;
    }
    }
    return -1;
}

static int
set_default(const struct mf_optctx *c, const struct mf_option *o, void *base,
            uint32_t line, const char *kp)
{
    struct mf_yerror yerr;
    struct mf_jval *v;

    v = mf_yaml_load(c->a, "<default>", o->def, strlen(o->def), &yerr);
    if (!v) {
        mf_cfgerr_add(c->err, c->file, line, "%s: internal: bad default (%s)",
                      kp, yerr.msg);
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

static void
unknown_key(const struct mf_optctx *c, const struct mf_optsec *sec,
            const char *key, uint32_t line, const char *path)
{
    const struct mf_option *o, *best = NULL;
    unsigned bd = 3;
    char f1[PATH_LEN], f2[PATH_LEN], sh[SHOW_LEN + 4];
    const char *where = path[0] ? path : "top level";

    show(key, sh, sizeof(sh));
    snprintf(f1, sizeof(f1), "%s_file", key);
    snprintf(f2, sizeof(f2), "%s_env", key);
    if (mf_opt_find(sec, f1) && mf_opt_find(sec, f2)) {
        mf_cfgerr_add(c->err, c->file, line,
                      "%s: unknown key '%s' (secrets are never written in the "
                      "configuration: use %s or %s)",
                      where, sh, f1, f2);
        return;
    }
    for (o = sec->opts; o->name; o++) {
        unsigned d = edit_distance(key, o->name);

        if (d < bd) {
            bd = d;
            best = o;
        }
    }
    if (best)
        mf_cfgerr_add(c->err, c->file, line,
                      "%s: unknown key '%s' (did you mean '%s'?)", where, sh,
                      best->name);
    else
        mf_cfgerr_add(c->err, c->file, line, "%s: unknown key '%s'", where, sh);
}

static void
only_text(const struct mf_optsec *sec, const struct mf_option *o, char *out,
          size_t n)
{
    const struct mf_enum *e;
    size_t used = 0;

    out[0] = '\0';
    for (e = sec->disc_choices; e && e->name; e++)
        if (mf_opt_applies(o, e->value)) {
            int k = snprintf(out + used, n - used, "%s%s", used ? ", " : "",
                             e->name);

            if (k < 0 || (size_t)k >= n - used)
                break;
            used += (size_t)k;
        }
}

static size_t
apply(const struct mf_optctx *c, const struct mf_optsec *sec,
      const struct mf_jval *obj, uint32_t parent_line, void *base,
      const char *path)
{
    size_t before = c->err ? c->err->n : 0, nopt = 0, i, k;
    const struct mf_option *o;
    uint32_t line = obj ? obj->line : parent_line;
    bool seen[128];
    uint32_t null_line[128];
    int disc = -1;
    bool disc_bad = false;
    char kp[PATH_LEN];

    for (o = sec->opts; o->name; o++)
        nopt++;
    if (nopt > 128)
        abort();   /* tables are ours: a programming error */
    memset(seen, 0, sizeof(seen));
    memset(null_line, 0, sizeof(null_line));
    if (obj && obj->type != MF_JOBJ) {
        mf_cfgerr_add(c->err, c->file, obj->line,
                      "%s: expected a mapping, got %s",
                      path[0] ? path : "top level", jtype_name(obj));
        return 1;
    }
    /* the discriminator first: it decides which keys are valid */
    if (sec->disc) {
        const struct mf_jval *dv = mf_jobj_get(obj, sec->disc);

        o = mf_opt_find(sec, sec->disc);
        join_path(kp, path, o->name);
        if (dv && dv->type != MF_JNULL) {
            if (set_value(c, o, dv, base, kp) == 0)
                disc = mf_opt_disc(sec, base);
            else
                disc_bad = true;
        } else if (o->def) {
            if (set_default(c, o, base, line, kp) == 0)
                disc = mf_opt_disc(sec, base);
        } else {
            mf_cfgerr_add(c->err, c->file, dv ? dv->line : line,
                          "%s: missing required key '%s'",
                          path[0] ? path : "top level", o->name);
            disc_bad = true;
        }
        seen[o - sec->opts] = true;
    }
    for (k = 0; obj && k < obj->len; k++) {
        const char *key = obj->u.mem[k].key;
        const struct mf_jval *v = obj->u.mem[k].val;
        uint32_t kline = v->line;

        if (sec->disc && strcmp(key, sec->disc) == 0)
            continue;
        o = mf_opt_find(sec, key);
        if (!o) {
            const struct mf_option *p;

            for (p = sec->opts; p->name; p++) {
                size_t pl = strlen(p->name);

                if (p->type == MF_OPT_PREFIX &&
                    strncmp(key, p->name, pl) == 0 && key[pl] == '.')
                    break;
            }
            if (p->name) {
                if (disc_bad || !mf_opt_applies(p, disc < 0 ? 0 : disc)) {
                    if (!disc_bad) {
                        char ot[128];

                        only_text(sec, p, ot, sizeof(ot));
                        join_path(kp, path, key);
                        mf_cfgerr_add(c->err, c->file, kline,
                                      "%s: not valid for %s '%s' (only for %s)",
                                      kp, sec->disc, mf_enum_name(
                                          sec->disc_choices, disc), ot);
                    }
                    continue;
                }
                join_path(kp, path, p->name);
                kv_add(c, p, at(base, p->offset), key + strlen(p->name) + 1, v,
                       kp);
                seen[p - sec->opts] = true;
                continue;
            }
            unknown_key(c, sec, key, kline, path);
            continue;
        }
        join_path(kp, path, key);
        if (o->only && sec->disc) {
            if (disc_bad)
                continue;   /* the type is already reported */
            if (!mf_opt_applies(o, disc)) {
                char ot[128];

                only_text(sec, o, ot, sizeof(ot));
                mf_cfgerr_add(c->err, c->file, kline,
                              "%s: not valid for %s '%s' (only for %s)", kp,
                              sec->disc, mf_enum_name(sec->disc_choices, disc),
                              ot);
                continue;
            }
        }
        i = (size_t)(o - sec->opts);
        if (v->type == MF_JNULL) {
            null_line[i] = kline;
            continue;   /* "key:" with no value: as if absent */
        }
        seen[i] = true;
        set_value(c, o, v, base, kp);
    }
    /* defaults, required keys, sections never mentioned */
    for (i = 0; i < nopt; i++) {
        o = &sec->opts[i];
        if (seen[i])
            continue;
        if (o->only && sec->disc && (disc_bad || !mf_opt_applies(o, disc)))
            continue;
        join_path(kp, path, o->name);
        if (o->type == MF_OPT_SECTION) {
            apply(c, o->sub, NULL, null_line[i] ? null_line[i] : line,
                  at(base, o->offset), kp);
        } else if (o->flags & MF_OPT_REQUIRED) {
            mf_cfgerr_add(c->err, c->file, null_line[i] ? null_line[i] : line,
                          "%s: missing required key '%s'",
                          path[0] ? path : "top level", o->name);
        } else if (o->def) {
            set_default(c, o, base, line, kp);
        }
    }
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

static void
doc_table(struct mf_buf *b, const struct mf_optsec *sec, const char *tpath,
          int level)
{
    const struct mf_option *o;

    mf_buf_appends(b, "| Key | Type | Default | Description |\n");
    mf_buf_appends(b, "|---|---|---|---|\n");
    for (o = sec->opts; o->name; o++) {
        if (o->type == MF_OPT_PREFIX)
            mf_buf_printf(b, "| `%s`, `%s.*` | ", o->name, o->name);
        else
            mf_buf_printf(b, "| `%s` | ", o->name);
        doc_type(b, o);
        mf_buf_appends(b, " | ");
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
        mf_buf_appends(b, " | ");
        if (o->only && sec->disc) {
            char ot[128];

            only_text(sec, o, ot, sizeof(ot));
            mf_buf_printf(b, "*(%s %s)* ", sec->disc, ot);
        }
        if (o->flags & MF_OPT_SECRET)
            mf_buf_appends(b, "*(secret source)* ");
        md_text(b, o->desc);
        if ((o->flags & MF_OPT_NONEMPTY) && !(o->flags & MF_OPT_REQUIRED))
            mf_buf_appends(b, " Must not be empty when given.");
        mf_buf_appends(b, " |\n");
    }
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
    int i;

    for (i = 0; i < level; i++)
        mf_buf_appendc(b, '#');
    if (title_path && title_path[0])
        mf_buf_printf(b, " `%s`\n\n", title_path);
    else
        mf_buf_appends(b, " Top level\n\n");
    if (sec->desc && sec->desc[0]) {
        mf_buf_appends(b, sec->desc);
        mf_buf_appends(b, "\n\n");
    }
    doc_table(b, sec, title_path ? title_path : "", level);
}

/* ---- dump ----------------------------------------------------------- */

static void
pad(struct mf_buf *b, int n)
{
    while (n-- > 0)
        mf_buf_appendc(b, ' ');
}

static void
yq(struct mf_buf *b, const char *s)
{
    mf_json_write_str(b, s, strlen(s));
}

static void dump_members(struct mf_buf *b, const struct mf_optsec *sec,
                         const void *base, int indent, bool first_dash);

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

static void
dump_members(struct mf_buf *b, const struct mf_optsec *sec, const void *base,
             int indent, bool first_dash)
{
    const struct mf_option *o;
    int disc = mf_opt_disc(sec, base);
    char tmp[64];
    size_t i;

    for (o = sec->opts; o->name; o++) {
        const void *f = cat(base, o->offset);

        if (o->only && sec->disc && !mf_opt_applies(o, disc))
            continue;
        switch (o->type) {
        case MF_OPT_STR: {
            const char *s;

            memcpy(&s, f, sizeof(s));
            if (!s)
                continue;
            dump_key(b, o->name, indent, &first_dash);
            mf_buf_appendc(b, ' ');
            yq(b, s);
            break;
        }
        case MF_OPT_INT:
        case MF_OPT_DURATION:
        case MF_OPT_SIZE: {
            int64_t v;

            memcpy(&v, f, sizeof(v));
            if (v == 0 && !o->def)
                continue;   /* unset */
            format_num(o, v, tmp, sizeof(tmp));
            dump_key(b, o->name, indent, &first_dash);
            mf_buf_printf(b, " %s", tmp);
            break;
        }
        case MF_OPT_BOOL: {
            bool v;

            memcpy(&v, f, sizeof(v));
            dump_key(b, o->name, indent, &first_dash);
            mf_buf_appends(b, v ? " true" : " false");
            break;
        }
        case MF_OPT_ENUM: {
            int v;

            memcpy(&v, f, sizeof(v));
            dump_key(b, o->name, indent, &first_dash);
            mf_buf_appendc(b, ' ');
            yq(b, mf_enum_name(o->choices, v));
            break;
        }
        case MF_OPT_STRLIST: {
            struct mf_strlist sl;

            memcpy(&sl, f, sizeof(sl));
            if (sl.n == 0 && !o->def)
                continue;
            dump_key(b, o->name, indent, &first_dash);
            mf_buf_appends(b, " [");
            for (i = 0; i < sl.n; i++) {
                if (i)
                    mf_buf_appends(b, ", ");
                yq(b, sl.v[i]);
            }
            mf_buf_appendc(b, ']');
            break;
        }
        case MF_OPT_PREFIX: {
            struct mf_kvlist kl;

            memcpy(&kl, f, sizeof(kl));
            if (kl.n == 0)
                continue;
            dump_key(b, o->name, indent, &first_dash);
            for (i = 0; i < kl.n; i++) {
                mf_buf_appendc(b, '\n');
                pad(b, indent + 2);
                yq(b, kl.v[i].key);
                mf_buf_appends(b, ": ");
                yq(b, kl.v[i].value);
            }
            break;
        }
        case MF_OPT_SECTION:
            dump_key(b, o->name, indent, &first_dash);
            mf_buf_appendc(b, '\n');
            dump_members(b, o->sub, f, indent + 2, false);
            continue;
        case MF_OPT_LIST: {
            struct mf_anylist l;

            memcpy(&l, f, sizeof(l));
            dump_key(b, o->name, indent, &first_dash);
            if (l.n == 0) {
                mf_buf_appends(b, " []\n");
                continue;
            }
            mf_buf_appendc(b, '\n');
            for (i = 0; i < l.n; i++)
                dump_members(b, o->sub,
                             (const char *)l.v + i * o->sub->size, indent + 4,
                             true);
            continue;
        }
        }
        mf_buf_appendc(b, '\n');
    }
}

void
mf_opt_dump(struct mf_buf *b, const struct mf_optsec *sec, const void *base,
            int indent)
{
    dump_members(b, sec, base, indent, false);
}

/* ---- equality ------------------------------------------------------- */

static bool
str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

bool
mf_opt_equal(const struct mf_optsec *sec, const void *x, const void *y)
{
    const struct mf_option *o;
    int disc = mf_opt_disc(sec, x);
    size_t i;

    if (disc != mf_opt_disc(sec, y))
        return false;
    for (o = sec->opts; o->name; o++) {
        const void *fx = cat(x, o->offset), *fy = cat(y, o->offset);

        if (o->only && sec->disc && !mf_opt_applies(o, disc))
            continue;
        switch (o->type) {
        case MF_OPT_STR: {
            const char *a, *b;

            memcpy(&a, fx, sizeof(a));
            memcpy(&b, fy, sizeof(b));
            if (!str_eq(a, b))
                return false;
            break;
        }
        case MF_OPT_INT:
        case MF_OPT_DURATION:
        case MF_OPT_SIZE:
            if (memcmp(fx, fy, sizeof(int64_t)) != 0)
                return false;
            break;
        case MF_OPT_BOOL:
            if (*(const bool *)fx != *(const bool *)fy)
                return false;
            break;
        case MF_OPT_ENUM:
            if (memcmp(fx, fy, sizeof(int)) != 0)
                return false;
            break;
        case MF_OPT_STRLIST: {
            struct mf_strlist a, b;

            memcpy(&a, fx, sizeof(a));
            memcpy(&b, fy, sizeof(b));
            if (a.n != b.n)
                return false;
            for (i = 0; i < a.n; i++)
                if (strcmp(a.v[i], b.v[i]) != 0)
                    return false;
            break;
        }
        case MF_OPT_PREFIX: {
            struct mf_kvlist a, b;

            memcpy(&a, fx, sizeof(a));
            memcpy(&b, fy, sizeof(b));
            if (a.n != b.n)
                return false;
            for (i = 0; i < a.n; i++)
                if (strcmp(a.v[i].key, b.v[i].key) != 0 ||
                    strcmp(a.v[i].value, b.v[i].value) != 0)
                    return false;
            break;
        }
        case MF_OPT_SECTION:
            if (!mf_opt_equal(o->sub, fx, fy))
                return false;
            break;
        case MF_OPT_LIST: {
            struct mf_anylist a, b;

            memcpy(&a, fx, sizeof(a));
            memcpy(&b, fy, sizeof(b));
            if (a.n != b.n)
                return false;
            for (i = 0; i < a.n; i++)
                if (!mf_opt_equal(o->sub, (const char *)a.v + i * o->sub->size,
                                  (const char *)b.v + i * o->sub->size))
                    return false;
            break;
        }
        }
    }
    return true;
}
