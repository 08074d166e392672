/* yaml_tree.c - libyaml event stream -> mf_jval tree with line numbers. */
#include "yaml_tree.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "mem.h"

#define YAML_MAX_DEPTH 64

struct ystate {
    struct mf_arena *a;
    const char *name;
    yaml_parser_t parser;
    struct mf_err *err;
};

static void
yerr(struct ystate *st, size_t line, const char *fmt, ...)
{
    va_list ap;
    char msg[200];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (st->err)
        mf_err_set(st->err, "%s:%zu: %s", st->name,
                 line, msg);
}

static bool
is_int(const char *s, size_t n)
{
    size_t i = 0;

    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    if (i == n)
        return false;
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* Plain scalar typing (YAML 1.2 core schema, the parts tables use). */
static struct mf_jval *
plain_scalar(struct mf_arena *a, const char *s, size_t n)
{
    if (n == 0 || (n == 1 && s[0] == '~') ||
        (n == 4 && (!strncmp(s, "null", 4) || !strncmp(s, "Null", 4) ||
                    !strncmp(s, "NULL", 4))))
        return mf_jnull(a);
    if ((n == 4 && (!strncmp(s, "true", 4) || !strncmp(s, "True", 4) ||
                    !strncmp(s, "TRUE", 4))))
        return mf_jbool(a, true);
    if ((n == 5 && (!strncmp(s, "false", 5) || !strncmp(s, "False", 5) ||
                    !strncmp(s, "FALSE", 5))))
        return mf_jbool(a, false);
    if (is_int(s, n)) {
        /* JSON numbers have no '+' and no leading zeros */
        const char *t = s;
        size_t m = n;

        if (*t == '+') {
            t++;
            m--;
        }
        if (mf_json_is_number(t, m))
            return mf_jnum_text(a, t, m);
    }
    if (mf_json_is_number(s, n))
        return mf_jnum_text(a, s, n);
    return mf_jstrn(a, s, n);
}

static struct mf_jval *parse_node(struct ystate *st, yaml_event_t *ev, int depth);

static int
next_event(struct ystate *st, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&st->parser, ev)) {
        yerr(st, st->parser.problem_mark.line + 1, "YAML syntax error: %s%s%s",
             st->parser.problem ? st->parser.problem : "unknown",
             st->parser.context ? " " : "",
             st->parser.context ? st->parser.context : "");
        return -1;
    }
    return 0;
}

static struct mf_jval *
parse_mapping(struct ystate *st, size_t line, int depth)
{
    struct mf_jval *obj = mf_jobj(st->a);

    obj->line = (uint32_t)line;
    for (;;) {
        yaml_event_t kev, vev;
        struct mf_jval *val;
        char *key;
        size_t klen, kline;

        if (next_event(st, &kev) != 0)
            return NULL;
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            return obj;
        }
        if (kev.type != YAML_SCALAR_EVENT) {
            yerr(st, kev.start_mark.line + 1, "mapping keys must be plain scalars");
            yaml_event_delete(&kev);
            return NULL;
        }
        klen = kev.data.scalar.length;
        kline = kev.start_mark.line + 1;
        key = mf_arena_strndup(st->a, (const char *)kev.data.scalar.value, klen);
        yaml_event_delete(&kev);
        if (mf_jobj_getn(obj, key, klen)) {
            yerr(st, kline, "duplicate key '%s'", key);
            return NULL;
        }
        if (next_event(st, &vev) != 0)
            return NULL;
        val = parse_node(st, &vev, depth + 1);
        if (!val)
            return NULL;
        mf_jobj_add_ref(st->a, obj, key, klen, val);
    }
}

static struct mf_jval *
parse_sequence(struct ystate *st, size_t line, int depth)
{
    struct mf_jval *arr = mf_jarr(st->a);

    arr->line = (uint32_t)line;
    for (;;) {
        yaml_event_t ev;
        struct mf_jval *val;

        if (next_event(st, &ev) != 0)
            return NULL;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return arr;
        }
        val = parse_node(st, &ev, depth + 1);
        if (!val)
            return NULL;
        mf_jarr_push(st->a, arr, val);
    }
}

/* Consumes ev. */
static struct mf_jval *
parse_node(struct ystate *st, yaml_event_t *ev, int depth)
{
    size_t line = ev->start_mark.line + 1;
    struct mf_jval *v = NULL;

    if (depth > YAML_MAX_DEPTH) {
        yerr(st, line, "nesting deeper than %d levels", YAML_MAX_DEPTH);
        yaml_event_delete(ev);
        return NULL;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        const char *s = (const char *)ev->data.scalar.value;
        size_t n = ev->data.scalar.length;

        if (ev->data.scalar.anchor) {
            yerr(st, line, "anchors are not supported");
            break;
        }
        if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
            v = plain_scalar(st->a, s, n);
        else
            v = mf_jstrn(st->a, s, n);
        if (v->flags & MF_JF_REPAIRED) {
            yerr(st, line, "invalid UTF-8 in scalar");
            v = NULL;
            break;
        }
        v->line = (uint32_t)line;
        break;
    }
    case YAML_MAPPING_START_EVENT:
        if (ev->data.mapping_start.anchor) {
            yerr(st, line, "anchors are not supported");
            break;
        }
        yaml_event_delete(ev);
        return parse_mapping(st, line, depth);
    case YAML_SEQUENCE_START_EVENT:
        if (ev->data.sequence_start.anchor) {
            yerr(st, line, "anchors are not supported");
            break;
        }
        yaml_event_delete(ev);
        return parse_sequence(st, line, depth);
    case YAML_ALIAS_EVENT:
        yerr(st, line, "aliases are not supported");
        break;
    default:
        yerr(st, line, "unexpected YAML event");
        break;
    }
    yaml_event_delete(ev);
    return v;
}

struct mf_jval *
mf_yaml_load(struct mf_arena *a, const char *name, const char *text, size_t len,
             struct mf_err *err)
{
    struct ystate st = {.a = a, .name = name ? name : "<yaml>", .err = err};
    struct mf_jval *root = NULL;
    yaml_event_t ev;
    int stage = 0;   /* 0 stream start, 1 document start, 2 node, 3 doc end */

    if (err)
        mf_err_reset(err);
    if (!yaml_parser_initialize(&st.parser)) {
        yerr(&st, 0, "cannot initialise the YAML parser");
        return NULL;
    }
    yaml_parser_set_input_string(&st.parser, (const unsigned char *)text, len);
    for (;;) {
        if (next_event(&st, &ev) != 0) {
            root = NULL;
            break;
        }
        if (ev.type == YAML_STREAM_START_EVENT || ev.type == YAML_DOCUMENT_START_EVENT) {
            yaml_event_delete(&ev);
            continue;
        }
        if (ev.type == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (ev.type == YAML_DOCUMENT_END_EVENT) {
            yaml_event_delete(&ev);
            stage = 3;
            continue;
        }
        if (stage >= 2) {
            yerr(&st, ev.start_mark.line + 1, "only one YAML document is allowed");
            yaml_event_delete(&ev);
            root = NULL;
            break;
        }
        root = parse_node(&st, &ev, 0);
        if (!root)
            break;
        stage = 2;
    }
    yaml_parser_delete(&st.parser);
    if (root == NULL && err && err->msg[0] == '\0')
        mf_err_set(err, "%s:1: empty document", st.name);
    return root;
}

struct mf_jval *
mf_yaml_load_file(struct mf_arena *a, const char *path, struct mf_err *err)
{
    struct mf_buf b;
    struct mf_jval *root;

    mf_buf_init(&b, 64u << 20);
    if (mf_buf_read_file(&b, path) != 0) {
        if (err)
            mf_err_set(err, "%s: cannot open: %m", path);
        mf_buf_fini(&b);
        return NULL;
    }
    root = mf_yaml_load(a, path, b.data ? b.data : "", b.len, err);
    mf_buf_fini(&b);
    return root;
}
