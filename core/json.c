/* json.c - arena JSON tree, repairing parser and compact writer. */
#include "json.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mem.h"

/* ===================================================================== */
/* UTF-8                                                                 */
/* ===================================================================== */

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 when
 * the bytes there are not a valid sequence (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). */
static size_t
utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        if (n >= 2 && (s[1] & 0xC0) == 0x80)
            return 2;
        return 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && s[1] < 0xA0)
            return 0;               /* overlong */
        if (c == 0xED && s[1] >= 0xA0)
            return 0;               /* surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 ||
            (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90)
            return 0;               /* overlong */
        if (c == 0xF4 && s[1] >= 0x90)
            return 0;               /* above U+10FFFF */
        return 4;
    }
    return 0;
}

static const char REPLACEMENT[3] = {(char)0xEF, (char)0xBF, (char)0xBD};

static size_t
utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* U+FFFD into d (room for 3 bytes), flagged as a repair. Returns 3. */
static inline size_t
put_replacement(char *d, uint8_t *flags)
{
    memcpy(d, REPLACEMENT, 3);
    *flags |= MF_JF_REPAIRED;
    return 3;
}

/* Copy the UTF-8 sequence at *pp (before end) into d (room for 4 bytes,
 * or 3 per byte left), or U+FFFD for a byte that starts no valid sequence
 * (flagged), and advance *pp past what was used. Returns the bytes
 * written. */
static inline size_t
copy_utf8_seq(const char **pp, const char *end, char *d, uint8_t *flags)
{
    const char *p = *pp;
    size_t l = utf8_seq_len((const unsigned char *)p, (size_t)(end - p));

    if (l == 0) {
        (*pp)++;
        return put_replacement(d, flags);
    }
    memcpy(d, p, l);
    *pp = p + l;
    return l;
}

/* Copy s into the arena, replacing invalid UTF-8; *repaired set when any
 * byte was replaced. */
static char *
utf8_repair_dup(struct mf_arena *a, const char *s, size_t n, size_t *outlen,
                int *repaired)
{
    const unsigned char *u = (const unsigned char *)s;
    const char *p, *end = s + n;
    size_t i = 0, o = 0;
    uint8_t flags = 0;
    char *d;

    *repaired = 0;
    for (i = 0; i < n; i++)
        if (u[i] >= 0x80)
            break;
    if (i == n) {
        *outlen = n;
        return mf_arena_strndup(a, s, n);
    }
    d = mf_arena_alloc(a, n * 3 + 1);
    memcpy(d, s, i);
    o = i;
    for (p = s + i; p < end;)
        o += copy_utf8_seq(&p, end, d + o, &flags);
    *repaired = flags != 0;
    d[o] = '\0';
    *outlen = o;
    return d;
}

/* ===================================================================== */
/* Construction                                                          */
/* ===================================================================== */

static struct mf_jval *
jnew(struct mf_arena *a, enum mf_jtype t)
{
    struct mf_jval *v = mf_arena_alloc(a, sizeof(*v));

    v->type = (uint8_t)t;
    v->flags = 0;
    v->line = 0;
    v->len = 0;
    v->cap = 0;
    v->u.s = NULL;
    return v;
}

struct mf_jval *
mf_jnull(struct mf_arena *a)
{
    return jnew(a, MF_JNULL);
}

struct mf_jval *
mf_jbool(struct mf_arena *a, bool v)
{
    return jnew(a, v ? MF_JTRUE : MF_JFALSE);
}

struct mf_jval *
mf_jint(struct mf_arena *a, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%" PRId64, v);

    return mf_jnum_text(a, tmp, (size_t)n);
}

struct mf_jval *
mf_jreal(struct mf_arena *a, double v)
{
    char tmp[40];
    int n;

    if (!isfinite(v))
        return mf_jnull(a);
    n = snprintf(tmp, sizeof(tmp), "%.17g", v);
    /* make it read back as a real and keep it short when exact */
    for (int prec = 1; prec < 17; prec++) {
        char t2[40];
        int n2 = snprintf(t2, sizeof(t2), "%.*g", prec, v);

        if (strtod(t2, NULL) == v) {
            memcpy(tmp, t2, (size_t)n2 + 1);
            n = n2;
            break;
        }
    }
    if (!strpbrk(tmp, ".eE") && n + 2 < (int)sizeof(tmp)) {
        tmp[n++] = '.';
        tmp[n++] = '0';
        tmp[n] = '\0';
    }
    return mf_jnum_text(a, tmp, (size_t)n);
}

struct mf_jval *
mf_jnum_text(struct mf_arena *a, const char *s, size_t n)
{
    struct mf_jval *v = jnew(a, MF_JNUM);

    v->u.s = mf_arena_strndup(a, s, n);
    v->len = n;
    return v;
}

struct mf_jval *
mf_jstrn(struct mf_arena *a, const char *s, size_t n)
{
    struct mf_jval *v = jnew(a, MF_JSTR);
    int repaired;

    v->u.s = utf8_repair_dup(a, s, n, &v->len, &repaired);
    if (repaired)
        v->flags |= MF_JF_REPAIRED;
    return v;
}

struct mf_jval *
mf_jstr(struct mf_arena *a, const char *s)
{
    return mf_jstrn(a, s, strlen(s));
}

struct mf_jval *
mf_jstr_ref(struct mf_arena *a, const char *s, size_t n)
{
    struct mf_jval *v = jnew(a, MF_JSTR);

    v->u.s = s;
    v->len = n;
    return v;
}

struct mf_jval *
mf_jarr(struct mf_arena *a)
{
    return jnew(a, MF_JARR);
}

struct mf_jval *
mf_jobj(struct mf_arena *a)
{
    return jnew(a, MF_JOBJ);
}

void
mf_jarr_push(struct mf_arena *a, struct mf_jval *arr, struct mf_jval *v)
{
    if (arr->len == arr->cap) {
        size_t ncap = arr->cap ? arr->cap * 2 : 4;
        struct mf_jval **n = mf_arena_alloc(a, ncap * sizeof(*n));

        if (arr->len)
            memcpy(n, arr->u.items, arr->len * sizeof(*n));
        arr->u.items = n;
        arr->cap = ncap;
    }
    arr->u.items[arr->len++] = v;
}

void
mf_jobj_add_ref(struct mf_arena *a, struct mf_jval *obj, const char *key,
                size_t klen, struct mf_jval *v)
{
    if (obj->len == obj->cap) {
        size_t ncap = obj->cap ? obj->cap * 2 : 8;
        struct mf_jmem *n = mf_arena_alloc(a, ncap * sizeof(*n));

        if (obj->len)
            memcpy(n, obj->u.mem, obj->len * sizeof(*n));
        obj->u.mem = n;
        obj->cap = ncap;
    }
    obj->u.mem[obj->len].key = key;
    obj->u.mem[obj->len].klen = klen;
    obj->u.mem[obj->len].val = v;
    obj->len++;
}

/* The member of object obj named key (klen bytes, exact), or NULL. */
static inline struct mf_jmem *
find_mem(const struct mf_jval *obj, const char *key, size_t klen)
{
    for (size_t i = 0; i < obj->len; i++) {
        struct mf_jmem *m = &obj->u.mem[i];

        if (m->klen == klen && memcmp(m->key, key, klen) == 0)
            return m;
    }
    return NULL;
}

void
mf_jobj_set_ref(struct mf_arena *a, struct mf_jval *obj, const char *key,
                size_t klen, struct mf_jval *v)
{
    struct mf_jmem *m = find_mem(obj, key, klen);

    if (m)
        m->val = v;
    else
        mf_jobj_add_ref(a, obj, key, klen, v);
}

void
mf_jobj_set(struct mf_arena *a, struct mf_jval *obj, const char *key,
            struct mf_jval *v)
{
    size_t klen = strlen(key);
    struct mf_jmem *m = find_mem(obj, key, klen);

    if (m)
        m->val = v;
    else
        mf_jobj_add_ref(a, obj, mf_arena_strndup(a, key, klen), klen, v);
}

struct mf_jval *
mf_jobj_child(struct mf_arena *a, struct mf_jval *obj, const char *key)
{
    struct mf_jval *c = mf_jobj_get(obj, key);

    if (c && c->type == MF_JOBJ)
        return c;
    c = mf_jobj(a);
    mf_jobj_set(a, obj, key, c);
    return c;
}

void
mf_jobj_set_path(struct mf_arena *a, struct mf_jval *obj, const char *path,
                 struct mf_jval *v)
{
    const char *dot;
    char seg[256];

    while ((dot = strchr(path, '.')) != NULL) {
        size_t n = (size_t)(dot - path);
        struct mf_jval *c;

        if (n >= sizeof(seg))
            n = sizeof(seg) - 1;
        memcpy(seg, path, n);
        seg[n] = '\0';
        c = mf_jobj_getn(obj, seg, n);
        if (!c || c->type != MF_JOBJ) {
            c = mf_jobj(a);
            mf_jobj_set(a, obj, seg, c);
        }
        obj = c;
        path = dot + 1;
    }
    mf_jobj_set(a, obj, path, v);
}

struct mf_jval *
mf_jobj_del(struct mf_jval *obj, const char *key)
{
    size_t klen = strlen(key);
    struct mf_jmem *m;
    struct mf_jval *v;

    if (!mf_jis_obj(obj) || !(m = find_mem(obj, key, klen)))
        return NULL;
    v = m->val;
    memmove(m, m + 1, (size_t)(obj->u.mem + obj->len - m - 1) * sizeof(*m));
    obj->len--;
    return v;
}

/* ===================================================================== */
/* Access                                                                */
/* ===================================================================== */

struct mf_jval *
mf_jobj_getn(const struct mf_jval *obj, const char *key, size_t klen)
{
    const struct mf_jmem *m;

    if (!obj || obj->type != MF_JOBJ || !(m = find_mem(obj, key, klen)))
        return NULL;
    return m->val;
}

struct mf_jval *
mf_jobj_get(const struct mf_jval *obj, const char *key)
{
    return mf_jobj_getn(obj, key, strlen(key));
}

struct mf_jmem *
mf_jobj_member(const struct mf_jval *obj, const char *key)
{
    size_t klen = strlen(key);

    if (!obj || obj->type != MF_JOBJ)
        return NULL;
    return find_mem(obj, key, klen);
}

struct mf_jval *
mf_jobj_geti(const struct mf_jval *obj, const char *key)
{
    size_t klen = strlen(key);
    const struct mf_jmem *m;

    if (!obj || obj->type != MF_JOBJ)
        return NULL;
    /* exact match first: the common case and cheaper */
    if ((m = find_mem(obj, key, klen)) != NULL)
        return m->val;
    for (size_t i = 0; i < obj->len; i++) {
        m = &obj->u.mem[i];

        if (m->klen == klen && strncasecmp(m->key, key, klen) == 0)
            return m->val;
    }
    return NULL;
}

struct mf_jval *
mf_jget_path(const struct mf_jval *root, const char *path)
{
    const struct mf_jval *cur = root;

    while (cur && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);

        cur = mf_jobj_getn(cur, path, n);
        path += n;
        if (*path == '.')
            path++;
    }
    return (struct mf_jval *)cur;
}

bool
mf_jis_nullish(const struct mf_jval *v)
{
    if (!v || v->type == MF_JNULL)
        return true;
    if (v->type != MF_JSTR)
        return false;
    if (v->len == 0)
        return true;
    return (v->len == 4 && strcasecmp(v->u.s, "null") == 0) ||
           (v->len == 6 && strcasecmp(v->u.s, "<null>") == 0);
}

int
mf_jget_int(const struct mf_jval *v, int64_t *out)
{
    const char *s;
    char *end;
    long long x;

    if (!v)
        return -1;
    if (v->type == MF_JNUM)
        s = v->u.s;
    else if (v->type == MF_JSTR)
        s = v->u.s;
    else
        return -1;
    while (*s == ' ' || *s == '\t')
        s++;
    if (!*s)
        return -1;
    errno = 0;
    x = strtoll(s, &end, 10);
    if (errno || end == s)
        return -1;
    while (*end == ' ' || *end == '\t')
        end++;
    if (*end)
        return -1;
    *out = x;
    return 0;
}

int
mf_jget_bool(const struct mf_jval *v, bool *out)
{
    if (!v)
        return -1;
    if (v->type == MF_JTRUE || v->type == MF_JFALSE) {
        *out = v->type == MF_JTRUE;
        return 0;
    }
    if (v->type == MF_JSTR || v->type == MF_JNUM) {
        const char *s = v->u.s;

        if (!strcasecmp(s, "true") || !strcmp(s, "1") || !strcasecmp(s, "$true")) {
            *out = true;
            return 0;
        }
        if (!strcasecmp(s, "false") || !strcmp(s, "0") || !strcasecmp(s, "$false")) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

const char *
mf_jscalar_text(const struct mf_jval *v, size_t *len)
{
    const char *s;

    if (!v)
        return NULL;
    switch (v->type) {
    case MF_JSTR:
    case MF_JNUM:
        if (len)
            *len = v->len;
        return v->u.s;
    case MF_JTRUE:
        s = "true";
        break;
    case MF_JFALSE:
        s = "false";
        break;
    case MF_JNULL:
        s = "null";
        break;
    default:
        return NULL;
    }
    if (len)
        *len = strlen(s);
    return s;
}

bool
mf_json_is_number(const char *s, size_t n)
{
    size_t i = 0;

    if (i < n && s[i] == '-')
        i++;
    if (i >= n)
        return false;
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    } else {
        return false;
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || s[i] < '0' || s[i] > '9')
            return false;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || s[i] < '0' || s[i] > '9')
            return false;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    return i == n;
}

bool
mf_json_equal(const struct mf_jval *a, const struct mf_jval *b)
{
    if (a == b)
        return true;
    if (!a || !b || a->type != b->type)
        return false;
    switch (a->type) {
    case MF_JNULL:
    case MF_JTRUE:
    case MF_JFALSE:
        return true;
    case MF_JNUM:
        if (a->len == b->len && memcmp(a->u.s, b->u.s, a->len) == 0)
            return true;
        return strtod(a->u.s, NULL) == strtod(b->u.s, NULL);
    case MF_JSTR:
        return a->len == b->len && memcmp(a->u.s, b->u.s, a->len) == 0;
    case MF_JARR:
        if (a->len != b->len)
            return false;
        for (size_t i = 0; i < a->len; i++)
            if (!mf_json_equal(a->u.items[i], b->u.items[i]))
                return false;
        return true;
    case MF_JOBJ:
        if (a->len != b->len)
            return false;
        for (size_t i = 0; i < a->len; i++) {
            const struct mf_jmem *m = &a->u.mem[i];

            if (!mf_json_equal(m->val, mf_jobj_getn(b, m->key, m->klen)))
                return false;
        }
        return true;
    }
    return false;
}

/* ===================================================================== */
/* Parser                                                                */
/* ===================================================================== */

#define LOCAL_STACK 512

struct pctx {
    struct mf_arena *a;
    const char *start;
    const char *p;
    const char *end;
    const char *line_start;
    uint32_t line;
    int depth;
    int max_depth;
    size_t repaired;
    /* children under construction (shared by all open containers) */
    struct mf_jmem *stk;
    size_t sp, scap;
    struct mf_jmem local[LOCAL_STACK];
    /* scratch for strings that need decoding */
    char *sbuf;
    size_t scap_s;
    struct mf_jerror *err;
    int failed;
};

static void
perr(struct pctx *c, const char *fmt, ...)
{
    va_list ap;

    if (c->failed)
        return;
    c->failed = 1;
    if (!c->err)
        return;
    va_start(ap, fmt);
    vsnprintf(c->err->msg, sizeof(c->err->msg), fmt, ap);
    va_end(ap);
    c->err->line = c->line;
    c->err->column = (uint32_t)(c->p - c->line_start) + 1;
    c->err->offset = (size_t)(c->p - c->start);
}

static void
push(struct pctx *c, const char *key, size_t klen, struct mf_jval *v)
{
    if (c->sp == c->scap) {
        size_t ncap = c->scap * 2;

        if (c->stk == c->local) {
            c->stk = mf_xmalloc(ncap * sizeof(*c->stk));
            memcpy(c->stk, c->local, c->sp * sizeof(*c->stk));
        } else {
            c->stk = mf_xrealloc(c->stk, ncap * sizeof(*c->stk));
        }
        c->scap = ncap;
    }
    c->stk[c->sp].key = key;
    c->stk[c->sp].klen = klen;
    c->stk[c->sp].val = v;
    c->sp++;
}

static inline void
skip_ws(struct pctx *c)
{
    const char *p = c->p, *end = c->end;

    while (p < end) {
        char ch = *p;

        if (ch == ' ' || ch == '\t' || ch == '\r') {
            p++;
        } else if (ch == '\n') {
            p++;
            c->line++;
            c->line_start = p;
        } else {
            break;
        }
    }
    c->p = p;
}

static int
hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static int
read_hex4(const char *p, const char *end, uint32_t *out)
{
    uint32_t v = 0;

    if (end - p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        int h = hexval((unsigned char)p[i]);

        if (h < 0)
            return -1;
        v = (v << 4) | (uint32_t)h;
    }
    *out = v;
    return 0;
}

/* Byte classes for the string fast path: 1 = stop (quote, backslash,
 * control, non-ASCII). */
static const unsigned char str_stop[256] = {
    [0 ... 31] = 1, ['"'] = 1, ['\\'] = 1, [128 ... 255] = 1,
};

/* The byte each one-letter escape stands for (0: not a one-letter escape;
 * \u is decode_u_escape's). */
static const char str_unescape[256] = {
    ['"'] = '"', ['\\'] = '\\', ['/'] = '/', ['b'] = '\b',
    ['f'] = '\f', ['n'] = '\n', ['r'] = '\r', ['t'] = '\t',
};

/* Decode the \u escape whose 4 hex digits start at *pp into d (room for 4
 * bytes); a valid surrogate pair takes the following \uXXXX too. Bad hex
 * leaves *pp where it was and writes U+FFFD; a lone surrogate becomes
 * U+FFFD; both flag the repair. Returns the bytes written. */
static size_t
decode_u_escape(const char **pp, const char *end, char *d, uint8_t *flags)
{
    const char *p = *pp;
    uint32_t cp, lo;

    if (read_hex4(p, end, &cp) != 0)
        return put_replacement(d, flags);   /* bad escape: kept visible */
    p += 4;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (end - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
            read_hex4(p + 2, end, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
        } else {
            cp = 0xFFFD;
            *flags |= MF_JF_REPAIRED;
        }
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        cp = 0xFFFD;
        *flags |= MF_JF_REPAIRED;
    }
    *pp = p;
    return utf8_encode(cp, d);
}

/* Decode the escape whose letter is at *pp (after the backslash; the
 * caller checked it is there) into d (room for 4 bytes) and advance *pp
 * past it. An unknown escape becomes U+FFFD, flagged. Returns the bytes
 * written. */
static inline size_t
decode_escape(const char **pp, const char *end, char *d, uint8_t *flags)
{
    unsigned char e = (unsigned char)*(*pp)++;

    if (e == 'u')
        return decode_u_escape(pp, end, d, flags);
    if (str_unescape[e]) {
        *d = str_unescape[e];
        return 1;
    }
    return put_replacement(d, flags);
}

/* Room for need more bytes after the o bytes decoded in the scratch
 * buffer (grown by doubling, never shrunk). Returns the buffer. */
static char *
scratch_reserve(struct pctx *c, size_t o, size_t need)
{
    if (o + need > c->scap_s) {
        size_t cap = c->scap_s;

        while (o + need > cap)
            cap = cap ? cap * 2 : 1024;
        c->sbuf = mf_xrealloc(c->sbuf, cap);
        c->scap_s = cap;
    }
    return c->sbuf;
}

/* parse_string's slow path, from p (the string's first byte): decode
 * escapes, keep raw control characters (counting lines), repair bad
 * UTF-8, in the scratch buffer, then copy into the arena. Same contract as
 * parse_string. */
static int
parse_string_slow(struct pctx *c, const char *p, const char **out,
                  size_t *outlen, uint8_t *flags)
{
    const char *end = c->end;
    char *d = c->sbuf;
    size_t o = 0;

    for (;;) {
        const char *run = p;
        size_t n;
        unsigned char ch;

        while (p < end && !str_stop[(unsigned char)*p])
            p++;
        n = (size_t)(p - run);
        /* the run plus the longest decoded item (4 bytes) */
        d = scratch_reserve(c, o, n + 8);
        memcpy(d + o, run, n);
        o += n;
        if (p >= end)
            goto unterminated;
        ch = (unsigned char)*p;
        if (ch == '"') {
            p++;
            break;
        }
        if (ch == '\\') {
            if (p + 1 >= end) {
                p = end;
                goto unterminated;
            }
            p++;
            o += decode_escape(&p, end, d + o, flags);
        } else if (ch < 0x20) {
            /* raw control character: tolerated and kept */
            if (ch == '\n') {
                c->line++;
                c->line_start = p + 1;
            }
            d[o++] = (char)ch;
            p++;
        } else {
            o += copy_utf8_seq(&p, end, d + o, flags);
        }
    }
    *outlen = o;
    *out = mf_arena_strndup(c->a, d, o);
    if (*flags & MF_JF_REPAIRED)
        c->repaired++;
    c->p = p;
    return 0;
unterminated:
    c->p = p;
    perr(c, "unterminated string");
    return -1;
}

/* Parse a string starting after the opening quote; sets out and outlen.
 * Returns 0, or -1 on an unterminated string. *flags gets MF_JF_*. */
static int
parse_string(struct pctx *c, const char **out, size_t *outlen, uint8_t *flags)
{
    const char *p = c->p, *end = c->end, *s0 = p;

    *flags = 0;
    while (p < end && !str_stop[(unsigned char)*p])
        p++;
    if (p < end && *p == '"') {
        /* plain ASCII: one copy */
        *outlen = (size_t)(p - s0);
        *out = mf_arena_strndup(c->a, s0, *outlen);
        *flags = MF_JF_ASCII;
        c->p = p + 1;
        return 0;
    }
    /* slow path: decode into the scratch buffer, then copy */
    return parse_string_slow(c, s0, out, outlen, flags);
}

static struct mf_jval *parse_value(struct pctx *c);

static struct mf_jval *
parse_number(struct pctx *c)
{
    const char *p = c->p, *end = c->end, *s = p;
    struct mf_jval *v;

    if (p < end && *p == '-')
        p++;
    if (p < end && *p == '0') {
        p++;
    } else if (p < end && *p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    } else {
        perr(c, "invalid number");
        return NULL;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9') {
            c->p = p;
            perr(c, "invalid number: digit expected after '.'");
            return NULL;
        }
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || *p < '0' || *p > '9') {
            c->p = p;
            perr(c, "invalid number: digit expected in exponent");
            return NULL;
        }
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    v = jnew(c->a, MF_JNUM);
    v->u.s = mf_arena_strndup(c->a, s, (size_t)(p - s));
    v->len = (size_t)(p - s);
    c->p = p;
    return v;
}

static struct mf_jval *
parse_literal(struct pctx *c, const char *word, size_t n, enum mf_jtype t)
{
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, word, n) == 0) {
        c->p += n;
        return jnew(c->a, t);
    }
    perr(c, "invalid literal (expected %s)", word);
    return NULL;
}

static struct mf_jval *
close_container(struct pctx *c, struct mf_jval *v, size_t base)
{
    size_t n = c->sp - base;

    v->len = n;
    v->cap = n;
    if (v->type == MF_JOBJ) {
        if (n) {
            v->u.mem = mf_arena_alloc(c->a, n * sizeof(struct mf_jmem));
            memcpy(v->u.mem, c->stk + base, n * sizeof(struct mf_jmem));
        }
    } else if (n) {
        v->u.items = mf_arena_alloc(c->a, n * sizeof(struct mf_jval *));
        for (size_t i = 0; i < n; i++)
            v->u.items[i] = c->stk[base + i].val;
    }
    c->sp = base;
    return v;
}

/* After an array element or object member: ',' means another one (1),
 * the closing bracket ends the container (0, consumed), anything else is
 * an error (-1, reported). */
static int
next_item(struct pctx *c, char close, const char *truncated, const char *bad)
{
    skip_ws(c);
    if (c->p >= c->end) {
        perr(c, truncated);
        return -1;
    }
    if (*c->p == ',' || *c->p == close) {
        return *c->p++ == ',';
    }
    perr(c, bad);
    return -1;
}

/* An object member's key and its ':' (at the member, white space
 * skipped); 0, or -1 with the error reported. */
static int
parse_member_key(struct pctx *c, const char **key, size_t *klen)
{
    uint8_t kflags;

    if (c->p >= c->end) {
        perr(c, "truncated input: object member expected");
        return -1;
    }
    if (*c->p != '"') {
        perr(c, "string key expected in object");
        return -1;
    }
    c->p++;
    if (parse_string(c, key, klen, &kflags) != 0)
        return -1;
    skip_ws(c);
    if (c->p >= c->end || *c->p != ':') {
        perr(c, c->p >= c->end ? "truncated input: ':' expected"
                               : "':' expected after object key");
        return -1;
    }
    c->p++;
    skip_ws(c);
    return 0;
}

/* An array or an object, at its opening bracket: its children are pushed
 * on the stack from base, then moved into the node. */
static struct mf_jval *
parse_container(struct pctx *c)
{
    bool obj = *c->p == '{';
    char close = obj ? '}' : ']';
    struct mf_jval *v = jnew(c->a, obj ? MF_JOBJ : MF_JARR);
    size_t base = c->sp;

    v->line = c->line;
    c->p++;     /* '[' or '{' */
    skip_ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return close_container(c, v, base);
    }
    for (;;) {
        const char *key = NULL;
        size_t klen = 0;
        struct mf_jval *item;

        skip_ws(c);
        if (obj && parse_member_key(c, &key, &klen) != 0)
            return NULL;
        item = parse_value(c);
        if (!item)
            return NULL;
        push(c, key, klen, item);
        switch (next_item(c, close,
                          obj ? "truncated input: '}' expected"
                              : "truncated input: ']' expected",
                          obj ? "',' or '}' expected after object member"
                              : "',' or ']' expected after array element")) {
        case 1:
            continue;
        case 0:
            return close_container(c, v, base);
        default:
            return NULL;
        }
    }
}

static struct mf_jval *
parse_value(struct pctx *c)
{
    struct mf_jval *v;
    uint32_t line = c->line;

    if (c->p >= c->end) {
        perr(c, "truncated input: value expected");
        return NULL;
    }
    switch (*c->p) {
    case '{':
    case '[':
        if (++c->depth > c->max_depth) {
            perr(c, "nesting deeper than %d levels", c->max_depth);
            return NULL;
        }
        v = parse_container(c);
        c->depth--;
        return v;
    case '"': {
        uint8_t fl;

        v = jnew(c->a, MF_JSTR);
        c->p++;
        if (parse_string(c, &v->u.s, &v->len, &fl) != 0)
            return NULL;
        v->flags = fl;
        break;
    }
    case 't':
        v = parse_literal(c, "true", 4, MF_JTRUE);
        break;
    case 'f':
        v = parse_literal(c, "false", 5, MF_JFALSE);
        break;
    case 'n':
        v = parse_literal(c, "null", 4, MF_JNULL);
        break;
    default:
        if (*c->p == '-' || (*c->p >= '0' && *c->p <= '9')) {
            v = parse_number(c);
        } else {
            unsigned char ch = (unsigned char)*c->p;

            if (ch >= 0x20 && ch < 0x7f)
                perr(c, "unexpected character '%c'", ch);
            else
                perr(c, "unexpected byte 0x%02x", ch);
            return NULL;
        }
        break;
    }
    if (v)
        v->line = line;
    return v;
}

struct mf_jval *
mf_json_parse(struct mf_arena *a, const char *buf, size_t len,
              const struct mf_jparse_opts *opts, struct mf_jparse_info *info,
              struct mf_jerror *err)
{
    struct pctx c;
    struct mf_jval *root = NULL;

    c.a = a;
    c.start = buf;
    c.p = buf;
    c.end = buf + len;
    c.line_start = buf;
    c.line = (opts && opts->first_line) ? opts->first_line : 1;
    c.depth = 0;
    c.max_depth = (opts && opts->max_depth > 0) ? opts->max_depth : MF_JSON_MAX_DEPTH;
    c.repaired = 0;
    c.stk = c.local;
    c.sp = 0;
    c.scap = LOCAL_STACK;
    c.sbuf = NULL;
    c.scap_s = 0;
    c.err = err;
    c.failed = 0;
    if (err) {
        err->msg[0] = '\0';
        err->line = err->column = 0;
        err->offset = 0;
    }

    /* UTF-8 byte order mark */
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        c.p += 3;
    skip_ws(&c);
    if (c.p >= c.end) {
        perr(&c, "empty input: no JSON value");
    } else {
        root = parse_value(&c);
        if (root) {
            skip_ws(&c);
            if (c.p < c.end) {
                perr(&c, "unexpected data after the JSON value");
                root = NULL;
            }
        }
    }
    if (c.stk != c.local)
        free(c.stk);
    free(c.sbuf);
    if (info)
        info->repaired_strings = c.repaired;
    return c.failed ? NULL : root;
}

/* ===================================================================== */
/* Writer                                                                */
/* ===================================================================== */

/* 0: copy as is; otherwise the escape character, or 'u' for \u00XX */
static const char esc_tab[256] = {
    ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't',
    [0x00] = 'u', [0x01] = 'u', [0x02] = 'u', [0x03] = 'u', [0x04] = 'u',
    [0x05] = 'u', [0x06] = 'u', [0x07] = 'u', [0x0b] = 'u', [0x0e] = 'u',
    [0x0f] = 'u', [0x10] = 'u', [0x11] = 'u', [0x12] = 'u', [0x13] = 'u',
    [0x14] = 'u', [0x15] = 'u', [0x16] = 'u', [0x17] = 'u', [0x18] = 'u',
    [0x19] = 'u', [0x1a] = 'u', [0x1b] = 'u', [0x1c] = 'u', [0x1d] = 'u',
    [0x1e] = 'u', [0x1f] = 'u', ['"'] = '"', ['\\'] = '\\',
};

int
mf_json_write_str(struct mf_buf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    /* room for the plain case; escapes reserve more as they come */
    if (mf_buf_reserve(b, n + 2) != 0)
        return -1;
    b->data[b->len++] = '"';
    while (i < n) {
        size_t run = i;

        while (i < n && !esc_tab[u[i]])
            i++;
        if (i > run) {
            if (mf_buf_reserve(b, i - run + 1) != 0)
                return -1;
            memcpy(b->data + b->len, s + run, i - run);
            b->len += i - run;
        }
        if (i < n) {
            char e = esc_tab[u[i]];

            if (mf_buf_reserve(b, 7) != 0)
                return -1;
            b->data[b->len++] = '\\';
            if (e == 'u') {
                static const char hex[] = "0123456789abcdef";

                b->data[b->len++] = 'u';
                b->data[b->len++] = '0';
                b->data[b->len++] = '0';
                b->data[b->len++] = hex[u[i] >> 4];
                b->data[b->len++] = hex[u[i] & 15];
            } else {
                b->data[b->len++] = e;
            }
            i++;
        }
    }
    if (mf_buf_reserve(b, 1) != 0)
        return -1;
    b->data[b->len++] = '"';
    b->data[b->len] = '\0';
    return 0;
}

int
mf_json_write(struct mf_buf *b, const struct mf_jval *v)
{
    if (!v)
        return mf_buf_append(b, "null", 4);
    switch (v->type) {
    case MF_JNULL:
        return mf_buf_append(b, "null", 4);
    case MF_JTRUE:
        return mf_buf_append(b, "true", 4);
    case MF_JFALSE:
        return mf_buf_append(b, "false", 5);
    case MF_JNUM:
        return mf_buf_append(b, v->u.s, v->len);
    case MF_JSTR:
        return mf_json_write_str(b, v->u.s, v->len);
    case MF_JARR:
        if (mf_buf_appendc(b, '[') != 0)
            return -1;
        for (size_t i = 0; i < v->len; i++) {
            if (i && mf_buf_appendc(b, ',') != 0)
                return -1;
            if (mf_json_write(b, v->u.items[i]) != 0)
                return -1;
        }
        return mf_buf_appendc(b, ']');
    case MF_JOBJ:
        if (mf_buf_appendc(b, '{') != 0)
            return -1;
        for (size_t i = 0; i < v->len; i++) {
            const struct mf_jmem *m = &v->u.mem[i];

            if (i && mf_buf_appendc(b, ',') != 0)
                return -1;
            if (mf_json_write_str(b, m->key, m->klen) != 0 ||
                mf_buf_appendc(b, ':') != 0 || mf_json_write(b, m->val) != 0)
                return -1;
        }
        return mf_buf_appendc(b, '}');
    }
    return -1;
}

struct mf_jval *
mf_json_clone(struct mf_arena *a, const struct mf_jval *v)
{
    struct mf_jval *c;

    if (!v)
        return NULL;
    c = jnew(a, (enum mf_jtype)v->type);
    c->flags = v->flags;
    c->line = v->line;
    switch (v->type) {
    case MF_JNUM:
    case MF_JSTR:
        c->u.s = mf_arena_strndup(a, v->u.s, v->len);
        c->len = v->len;
        break;
    case MF_JARR:
        for (size_t i = 0; i < v->len; i++)
            mf_jarr_push(a, c, mf_json_clone(a, v->u.items[i]));
        break;
    case MF_JOBJ:
        for (size_t i = 0; i < v->len; i++) {
            const struct mf_jmem *m = &v->u.mem[i];

            mf_jobj_add_ref(a, c, mf_arena_strndup(a, m->key, m->klen), m->klen,
                            mf_json_clone(a, m->val));
        }
        break;
    default:
        break;
    }
    return c;
}
