/* config.c - read a configuration file against an option table, check
 * the files it names, compare two configurations, read secrets (see
 * config.h). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"
#include "secret.h"
#include "yaml_tree.h"
#include "units.h"

#define PATH_LEN 256

static const void *
cat(const void *base, size_t off)
{
    return (const char *)base + off;
}

static void
join(char *out, const char *path, const char *key)
{
    snprintf(out, PATH_LEN, "%s%s%s", path, path[0] ? "." : "", key);
}

/* ---- start-up file checks (MF_CONFIG_CHECK_FILES) --------------------- */

static void
check_secret(const struct mf_optctx *c, const char *file, const char *env,
             bool trim, const char *what, uint32_t line)
{
    struct mf_secret s;
    char e[400];

    if (mf_secret_load(file, env, trim, what, &s, e, sizeof(e)) != 0)
        mf_err_add(c->err, c->file, line, "%s", e);
    else
        mf_secret_clear(&s);
}

/* One value of an option with file flags. */
static void
check_value(const struct mf_optctx *c, const struct mf_option *o,
            const char *v, const char *what, uint32_t line)
{
    if ((o->flags & MF_OPT_SECRET) && (o->flags & MF_OPT_PATH))
        check_secret(c, v, NULL, !(o->flags & MF_OPT_RAW), what, line);
    else if (o->flags & MF_OPT_SECRET)
        check_secret(c, NULL, v, true, what, line);
    else if ((o->flags & MF_OPT_READABLE) && access(v, R_OK) != 0)
        mf_err_add(c->err, c->file, line, "%s: %s: %s", what, v,
                   strerror(errno));
}

static void check_files(const struct mf_optctx *c, const struct mf_optsec *sec,
                        const void *base, const struct mf_jval *node,
                        const char *path);

static void
check_option(const struct mf_optctx *c, const struct mf_option *o,
             const void *base, const struct mf_jval *node, const char *path)
{
    const struct mf_jval *sub = node ? mf_jobj_get(node, o->name) : NULL;
    char kp[PATH_LEN], ep[PATH_LEN + 16];
    const void *f = cat(base, o->offset);

    join(kp, path, o->name);
    if (o->type == MF_OPT_SECTION) {
        check_files(c, o->sub, f, sub, kp);
    } else if (o->type == MF_OPT_LIST) {
        struct mf_anylist l;

        memcpy(&l, f, sizeof(l));
        for (size_t i = 0; i < l.n; i++) {
            snprintf(ep, sizeof(ep), "%s[%zu]", kp, i);
            check_files(c, o->sub, (const char *)l.v + i * o->sub->size,
                        mf_jis_arr(sub) && i < sub->len ? sub->u.items[i]
                                                         : NULL, ep);
        }
    } else if (o->type == MF_OPT_PREFIX) {
        struct mf_kvlist kl;

        memcpy(&kl, f, sizeof(kl));
        for (size_t i = 0; i < kl.n; i++) {
            snprintf(ep, sizeof(ep), "%s.%s", kp, kl.v[i].key);
            check_value(c, o, kl.v[i].value, ep, kl.v[i].line);
        }
    } else if (o->type == MF_OPT_STR) {
        const char *s;

        memcpy(&s, f, sizeof(s));
        if (s)
            check_value(c, o, s, kp, mf_opt_key_line(node, o->name));
    }
}

/* Walk a section (and its kind) with its YAML node, for the lines. */
static void
check_files(const struct mf_optctx *c, const struct mf_optsec *sec,
            const void *base, const struct mf_jval *node, const char *path)
{
    const struct mf_option *en = mf_opt_find(sec, "enabled");
    const struct mf_optsec *kind = mf_opt_kind_sec(sec, base);
    const struct mf_option *o;

    if (en && en->type == MF_OPT_BOOL && !*(const bool *)cat(base, en->offset))
        return;
    for (o = sec->opts; o->name; o++)
        check_option(c, o, base, node, path);
    for (o = kind ? kind->opts : NULL; o && o->name; o++)
        check_option(c, o, mf_opt_kind(sec, base), node, path);
}

/* ---- load -------------------------------------------------------------- */

int
mf_config_read(const struct mf_optsec *top, void *out, struct mf_arena *a,
               const char *name, const char *text, size_t len,
               const char *base_dir, unsigned flags, struct mf_err *err)
{
    struct mf_err scratch, yerr;   /* scratch: when the caller passes NULL */
    struct mf_arena tmp;
    struct mf_jval *root;
    struct mf_optctx c = {.a = a, .file = name ? name : "<config>",
                          .err = err ? err : &scratch, .base_dir = base_dir,
                          .flags = flags, .top = out};

    mf_err_reset(c.err);
    mf_arena_init(&tmp, 16384);
    root = mf_yaml_load(&tmp, c.file, text, len, &yerr);
    if (!root) {
        mf_err_add(c.err, NULL, 0, "%s", yerr.msg);
    } else if (root->type != MF_JOBJ) {
        mf_err_add(c.err, c.file, root->line,
                   "top level: expected a mapping of settings, got %s",
                   root->type == MF_JARR ? "a list" : "a scalar");
    } else {
        c.root = root;
        mf_opt_apply(&c, top, root, 1, out, "");
        if (c.err->n == 0 && (flags & MF_CONFIG_CHECK_FILES))
            check_files(&c, top, out, root, "");
    }
    mf_arena_fini(&tmp);
    return c.err->n ? -1 : 0;
}

int
mf_config_read_file(const struct mf_optsec *top, void *out, struct mf_arena *a,
                    const char *path, unsigned flags, struct mf_err *err)
{
    struct mf_buf b;
    char *abs;
    int rc;

    mf_err_reset(err);
    mf_buf_init(&b, 16 * MF_MIB);
    if (mf_buf_read_file(&b, path) != 0) {
        if (errno == EFBIG)
            mf_err_add(err, path, 0, "larger than 16 MiB");
        else
            mf_err_add(err, path, 0, "cannot open: %s", strerror(errno));
        mf_buf_fini(&b);
        return -1;
    }
    /* relative paths in the file are relative to its directory */
    abs = realpath(path, NULL);
    if (abs) {
        char *slash = strrchr(abs, '/');

        if (slash == abs)
            slash[1] = '\0';
        else if (slash)
            *slash = '\0';
    }
    rc = mf_config_read(top, out, a, mf_arena_strdup(a, path),
                        b.data ? b.data : "", b.len, abs, flags, err);
    free(abs);
    mf_buf_fini(&b);
    return rc;
}

/* ---- diff -------------------------------------------------------------- */

struct differ {
    mf_config_diff_fn cb;
    void *ud;
    size_t n;
    struct mf_buf x, y;
};

static void
report(struct differ *d, const char *path, enum mf_change_kind kind,
       enum mf_reload reload, const char *xv, const char *yv)
{
    struct mf_change ch = {.path = path, .kind = kind, .reload = reload,
                           .old_value = xv, .new_value = yv};

    d->n++;
    if (d->cb)
        d->cb(&ch, d->ud);
}

static void diff_sec(struct differ *d, const struct mf_optsec *sec,
                     const void *x, const void *y, const char *path);

/* The identity of a list element: its key's value, else its index. */
static const char *
elem_id(const struct mf_optsec *sec, const void *el, size_t i, char *buf,
        size_t n)
{
    const struct mf_option *k = sec->key ? mf_opt_find(sec, sec->key) : NULL;
    const char *s = NULL;

    if (k && k->type == MF_OPT_STR)
        memcpy(&s, cat(el, k->offset), sizeof(s));
    if (!s) {
        snprintf(buf, n, "%zu", i);
        s = buf;
    }
    return s;
}

/* Index of the element of l whose identity is id, or l.n. */
static size_t
elem_find(const struct mf_optsec *sec, struct mf_anylist l, const char *id)
{
    char buf[24];

    for (size_t i = 0; i < l.n; i++)
        if (strcasecmp(elem_id(sec, (const char *)l.v + i * sec->size, i, buf,
                               sizeof(buf)), id) == 0)
            return i;
    return l.n;
}

static void
diff_list(struct differ *d, const struct mf_option *o, const void *x,
          const void *y, const char *kp)
{
    const struct mf_optsec *sub = o->sub;
    struct mf_anylist lx, ly;
    char ep[PATH_LEN + 80], buf[24];

    memcpy(&lx, x, sizeof(lx));
    memcpy(&ly, y, sizeof(ly));
    for (size_t i = 0; i < lx.n; i++) {
        const char *ex = (const char *)lx.v + i * sub->size;
        const char *id = elem_id(sub, ex, i, buf, sizeof(buf));
        size_t j = elem_find(sub, ly, id);

        snprintf(ep, sizeof(ep), "%s[%s]", kp, id);
        if (j == ly.n)
            report(d, ep, MF_CHANGE_REMOVED, o->reload, NULL, NULL);
        else
            diff_sec(d, sub, ex, (const char *)ly.v + j * sub->size, ep);
    }
    for (size_t j = 0; j < ly.n; j++) {
        const char *ey = (const char *)ly.v + j * sub->size;
        const char *id = elem_id(sub, ey, j, buf, sizeof(buf));

        snprintf(ep, sizeof(ep), "%s[%s]", kp, id);
        if (elem_find(sub, lx, id) == lx.n)
            report(d, ep, MF_CHANGE_ADDED, o->reload, NULL, NULL);
    }
}

static void
diff_option(struct differ *d, const struct mf_option *o, const void *x,
            const void *y, const char *path)
{
    char kp[PATH_LEN];
    bool hide = (o->flags & (MF_OPT_SECRET | MF_OPT_NOECHO)) != 0;

    join(kp, path, o->name);
    if (o->type == MF_OPT_SECTION) {
        diff_sec(d, o->sub, cat(x, o->offset), cat(y, o->offset), kp);
        return;
    }
    if (o->type == MF_OPT_LIST) {
        diff_list(d, o, cat(x, o->offset), cat(y, o->offset), kp);
        return;
    }
    mf_buf_reset(&d->x);
    mf_buf_reset(&d->y);
    mf_opt_value_text(&d->x, o, x);
    mf_opt_value_text(&d->y, o, y);
    if (d->x.len != d->y.len || memcmp(d->x.data, d->y.data, d->x.len) != 0)
        report(d, kp, MF_CHANGE_CHANGED, o->reload, hide ? NULL : d->x.data,
               hide ? NULL : d->y.data);
}

static void
diff_sec(struct differ *d, const struct mf_optsec *sec, const void *x,
         const void *y, const char *path)
{
    const struct mf_optsec *kx = mf_opt_kind_sec(sec, x);
    const struct mf_option *o;

    for (o = sec->opts; o->name; o++)
        diff_option(d, o, x, y, path);
    if (kx && kx == mf_opt_kind_sec(sec, y))
        for (o = kx->opts; o->name; o++)
            diff_option(d, o, mf_opt_kind(sec, x), mf_opt_kind(sec, y), path);
}

size_t
mf_config_diff(const struct mf_optsec *top, const void *old, const void *new_,
               mf_config_diff_fn cb, void *ud)
{
    struct differ d = {.cb = cb, .ud = ud};

    mf_buf_init(&d.x, 0);
    mf_buf_init(&d.y, 0);
    diff_sec(&d, top, old, new_, "");
    mf_buf_fini(&d.x);
    mf_buf_fini(&d.y);
    return d.n;
}
