/* syslog_fmt.c - RFC 5424 / RFC 3164 messages with json, CEF or LEEF
 * payloads; see syslog_fmt.h for the layouts and the oversize policy. */
#include "syslog_fmt.h"
#include "clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "json.h"

/* OCSF severity_id -> syslog severity, CEF severity (index 0..6). */
static const int sev_syslog[7] = {6, 6, 5, 4, 3, 2, 1};
static const int sev_cef[7] = {0, 1, 3, 5, 8, 10, 10};

/* Facts every payload needs, by schema (index enum mf_schema). */
enum ev_field { EV_TIME, EV_OP, EV_USER, EV_SRC, EV_OUTCOME, EV_WORKLOAD,
                EV_COUNT };

static const char *const ev_paths[3][EV_COUNT] = {
    [MF_SCHEMA_OCSF] = {"time", "metadata.event_code", "actor.user.name",
                        "src_endpoint.ip", "status",
                        "metadata.product.feature.name"},
    [MF_SCHEMA_ECS] = {"@timestamp", "event.action", "user.id", "source.ip",
                       "event.outcome", "event.provider"},
    /* raw ClientIP is the unparsed text (ip:port, [v6]:port): no src */
    [MF_SCHEMA_RAW] = {"CreationTime", "Operation", "UserId", NULL,
                       "ResultStatus", "Workload"},
};

/* Parts the oversize policy may remove from a json payload: dotted path of
 * the member, in the order they are removed. */
static const char *const trunc_paths[3][3] = {
    [MF_SCHEMA_OCSF] = {"raw_data", "unmapped", NULL},
    [MF_SCHEMA_ECS] = {"event.original", "o365.audit", NULL},
    [MF_SCHEMA_RAW] = {NULL},
};

static const char *const month_abbr[12] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun",
    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

struct ev_facts {
    const char *f[EV_COUNT];   /* NUL-terminated text or NULL */
    size_t flen[EV_COUNT];
    int64_t time_ms;           /* -1 unknown */
    int ocsf_sev;              /* 1..5 */
    char tags[1024];           /* comma separated */
    char areas[256];
    char attack[512];
};

int
mf_syslog_severity(int ocsf_severity)
{
    if (ocsf_severity < 0 || ocsf_severity > 6)
        return 6;
    return sev_syslog[ocsf_severity];
}

int
mf_cef_severity(int ocsf_severity)
{
    if (ocsf_severity < 0 || ocsf_severity > 6)
        return 0;
    return sev_cef[ocsf_severity];
}

int
mf_syslog_pri(int facility, int severity)
{
    if (facility < 0 || facility > 23 || severity < 0 || severity > 7)
        return -1;
    return facility * 8 + severity;
}

/* ---- time ------------------------------------------------------------ */

size_t
mf_syslog_ts5424(int64_t ms, char *buf, size_t n)
{
    return mf_clock_fmt_iso(ms, MF_UTC_MS | MF_UTC_Z, buf, n);
}

size_t
mf_syslog_ts3164(int64_t ms, char *buf, size_t n)
{
    struct tm tm;
    int msec, w;

    mf_clock_tm(ms, &tm, &msec);
    w = snprintf(buf, n, "%s %2d %02d:%02d:%02d", month_abbr[tm.tm_mon],
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return w < 0 ? 0 : ((size_t)w < n ? (size_t)w : n - 1);
}

/* ---- escaping -------------------------------------------------------- */

int
mf_syslog_sd_escape(struct mf_buf *b, const char *s, size_t n)
{
    size_t start = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] != '"' && s[i] != '\\' && s[i] != ']')
            continue;
        if (mf_buf_append(b, s + start, i - start) < 0 ||
            mf_buf_appendc(b, '\\') < 0)
            return -1;
        start = i;
    }
    return mf_buf_append(b, s + start, n - start);
}

/* Backslash-escape the bytes of `special`; CR, LF, TAB as \r \n \t when
 * `named` has them; every other control byte becomes a space. */
static int
escape_set(struct mf_buf *b, const char *s, size_t n, const char *special,
           const char *named)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int rc;

        if (c && strchr(special, c)) {
            char e[2] = {'\\', (char)c};

            rc = mf_buf_append(b, e, 2);
        } else if (c == '\n' || c == '\r' || c == '\t') {
            char e[2] = {'\\', c == '\n' ? 'n' : c == '\r' ? 'r' : 't'};

            if (strchr(named, c))
                rc = mf_buf_append(b, e, 2);
            else
                rc = mf_buf_appendc(b, ' ');
        } else if (c < 0x20 || c == 0x7f) {
            rc = mf_buf_appendc(b, ' ');
        } else {
            rc = mf_buf_appendc(b, (char)c);
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

int
mf_cef_escape_header(struct mf_buf *b, const char *s, size_t n)
{
    return escape_set(b, s, n, "|\\", "");
}

int
mf_cef_escape_ext(struct mf_buf *b, const char *s, size_t n)
{
    return escape_set(b, s, n, "=\\", "\n\r");
}

int
mf_leef_escape_header(struct mf_buf *b, const char *s, size_t n)
{
    return escape_set(b, s, n, "|\\", "");
}

int
mf_leef_escape_value(struct mf_buf *b, const char *s, size_t n)
{
    static const char special[] = {'\\', MF_LEEF_DELIM, '\0'};

    return escape_set(b, s, n, special, "\n\r\t");
}

/* ---- framing --------------------------------------------------------- */

int
mf_syslog_frame(int framing, const char *msg, size_t len, struct mf_buf *b)
{
    if (framing == MF_SYSLOG_OCTET_COUNTING) {
        if (mf_buf_printf(b, "%zu ", len) < 0)
            return -1;
        return mf_buf_append(b, msg, len);
    }
    for (size_t i = 0, start = 0; i <= len; i++) {
        if (i < len && msg[i] != '\n')
            continue;
        if (mf_buf_append(b, msg + start, i - start) < 0)
            return -1;
        if (i < len && mf_buf_append(b, "\\n", 2) < 0)
            return -1;
        start = i + 1;
    }
    return mf_buf_appendc(b, '\n');
}

/* ---- header pieces --------------------------------------------------- */

/* A header token: printable ASCII 33..126 (others become '_'), at most max
 * bytes; "-" when empty. alnum: only letters and digits (RFC 3164 TAG). */
static int
put_token(struct mf_buf *b, const char *s, size_t max, bool alnum)
{
    size_t n = 0;

    for (; s && s[n] && n < max; n++) {
        unsigned char c = (unsigned char)s[n];
        bool ok = alnum ? ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                           (c >= 'A' && c <= 'Z') || c == '-' || c == '_' ||
                           c == '.')
                        : (c >= 33 && c <= 126);

        if (mf_buf_appendc(b, ok ? (char)c : '_') < 0)
            return -1;
    }
    return n ? 0 : mf_buf_appendc(b, '-');
}

static void
join_hits(const struct mf_event *ev, struct ev_facts *e)
{
    size_t la = 0, lk = 0;

    mf_event_join_tags(ev, ',', e->tags, sizeof(e->tags));
    e->areas[0] = e->attack[0] = '\0';
    for (int a = 0; a < MF_AREA_COUNT; a++) {
        int w;

        if (!(ev->areas & (1u << a)))
            continue;
        w = snprintf(e->areas + la, sizeof(e->areas) - la, "%s%s", la ? "," : "",
                     mf_area_name((enum mf_area)a));
        if (w > 0 && la + (size_t)w < sizeof(e->areas))
            la += (size_t)w;
    }
    for (size_t i = 0; i < ev->n_tags; i++) {
        const struct mf_event_tag *tag = &ev->tags[i];

        for (size_t k = 0; k < tag->n_attack; k++) {
            const char *id = tag->attack[k];
            size_t idl = strlen(id);
            const char *p = e->attack;
            bool dup = false;
            int w;

            while (!dup && (p = strstr(p, id)) != NULL) {
                dup = (p == e->attack || p[-1] == ',') &&
                      (p[idl] == ',' || p[idl] == '\0');
                p += idl;
            }
            if (dup)
                continue;
            w = snprintf(e->attack + lk, sizeof(e->attack) - lk, "%s%s",
                         lk ? "," : "", id);
            if (w > 0 && lk + (size_t)w < sizeof(e->attack))
                lk += (size_t)w;
        }
    }
}

/* The facts of the payload, from the rendered tree of the output's form
 * (no JSON is parsed again). */
static void
get_facts(const struct mf_jval *root, const struct mf_event *ev, int schema,
          struct ev_facts *e)
{
    const struct mf_jval *v;

    memset(e, 0, sizeof(*e));
    for (int i = 0; i < EV_COUNT; i++) {
        if (!ev_paths[schema][i])
            continue;
        v = mf_jget_path(root, ev_paths[schema][i]);
        if (v && (v->type == MF_JSTR || v->type == MF_JNUM) && v->len) {
            e->f[i] = v->u.s;
            e->flen[i] = v->len;
        }
    }
    e->time_ms = -1;
    if (e->f[EV_TIME]) {
        int64_t t;

        v = mf_jget_path(root, ev_paths[schema][EV_TIME]);
        if (v->type == MF_JNUM && mf_jget_int(v, &t) == 0)
            e->time_ms = t;
        else if (v->type == MF_JSTR && mf_time_parse(v->u.s, &t) == 0)
            e->time_ms = t;
    }
    e->ocsf_sev = ev->severity > 0 ? ev->severity : 1;
    join_hits(ev, e);
}

static int
sd_param(struct mf_buf *b, const char *name, const char *v, size_t n)
{
    if (!v || !n)
        return 0;
    if (mf_buf_printf(b, " %s=\"", name) < 0 || mf_syslog_sd_escape(b, v, n) < 0)
        return -1;
    return mf_buf_appendc(b, '"');
}

static size_t
slen(const char *s)
{
    return s ? strlen(s) : 0;
}

static int
put_sd(struct mf_buf *b, const struct mf_event *ev, const struct ev_facts *e,
       const char *truncated)
{
    char num[32];
    int rc = 0;

    rc |= mf_buf_appends(b, "[" MF_SYSLOG_SD_ID);
    rc |= sd_param(b, "tenant", ev->tenant, slen(ev->tenant));
    rc |= sd_param(b, "tenant_id", ev->tenant_id, slen(ev->tenant_id));
    rc |= sd_param(b, "content_type", ev->content_type, slen(ev->content_type));
    rc |= sd_param(b, "id", ev->id, slen(ev->id));
    if (ev->class_uid > 0) {
        snprintf(num, sizeof(num), "%d", ev->class_uid);
        rc |= sd_param(b, "class_uid", num, strlen(num));
    }
    snprintf(num, sizeof(num), "%d", e->ocsf_sev);
    rc |= sd_param(b, "severity", num, strlen(num));
    rc |= sd_param(b, "tags", e->tags, strlen(e->tags));
    rc |= sd_param(b, "areas", e->areas, strlen(e->areas));
    rc |= sd_param(b, "truncated", truncated, slen(truncated));
    rc |= mf_buf_appendc(b, ']');
    return rc ? -1 : 0;
}

/* <PRI>1 TS HOST APP PROCID MSGID SD SP  or  <PRI>Mmm dd hh:mm:ss HOST TAG[PID]: */
static int
put_header(struct mf_buf *b, const struct mf_syslog_fmt *f,
           const struct mf_event *ev, const struct ev_facts *e,
           int pri, const char *truncated)
{
    char ts[40];
    const char *app = f->app_name && *f->app_name ? f->app_name : "m365fwd";
    int rc = 0;

    if (f->format == MF_SYSLOG_RFC3164) {
        mf_syslog_ts3164(e->time_ms >= 0 ? e->time_ms : f->now_ms, ts, sizeof(ts));
        rc |= mf_buf_printf(b, "<%d>%s ", pri, ts);
        rc |= put_token(b, f->hostname, 255, false);
        rc |= mf_buf_appendc(b, ' ');
        rc |= put_token(b, app, 32, true);
        if (f->procid && *f->procid) {
            rc |= mf_buf_appendc(b, '[');
            rc |= put_token(b, f->procid, 128, false);
            rc |= mf_buf_appendc(b, ']');
        }
        rc |= mf_buf_appends(b, ": ");
        return rc ? -1 : 0;
    }
    if (e->time_ms >= 0)
        mf_syslog_ts5424(e->time_ms, ts, sizeof(ts));
    else
        strcpy(ts, "-");
    rc |= mf_buf_printf(b, "<%d>1 %s ", pri, ts);
    rc |= put_token(b, f->hostname, 255, false);
    rc |= mf_buf_appendc(b, ' ');
    rc |= put_token(b, app, 48, false);
    rc |= mf_buf_appendc(b, ' ');
    rc |= put_token(b, f->procid, 128, false);
    rc |= mf_buf_appendc(b, ' ');
    rc |= put_token(b, e->f[EV_OP], 32, false);
    rc |= mf_buf_appendc(b, ' ');
    rc |= put_sd(b, ev, e, truncated);
    rc |= mf_buf_appendc(b, ' ');
    return rc ? -1 : 0;
}

/* ---- CEF / LEEF ------------------------------------------------------ */

struct kv {
    const char *key;
    const char *val;
    size_t len;
};

static size_t
collect_kv(struct kv *kv, const struct mf_event *ev, const struct ev_facts *e,
           bool leef, char *tbuf, size_t tbufsz, char *cls, size_t clssz,
           char *sev, size_t sevsz)
{
    size_t n = 0;

#define KV(k, v, l)                                                          \
    do {                                                                     \
        if ((v) && (l)) {                                                    \
            kv[n].key = (k);                                                 \
            kv[n].val = (v);                                                 \
            kv[n].len = (l);                                                 \
            n++;                                                             \
        }                                                                    \
    } while (0)

    tbuf[0] = cls[0] = sev[0] = '\0';
    if (e->time_ms >= 0) {
        if (leef)
            mf_syslog_ts5424(e->time_ms, tbuf, tbufsz);
        else
            snprintf(tbuf, tbufsz, "%lld", (long long)e->time_ms);
    }
    if (ev->class_uid > 0)
        snprintf(cls, clssz, "%d", ev->class_uid);
    snprintf(sev, sevsz, "%d", mf_cef_severity(e->ocsf_sev));
    if (leef) {
        KV("devTime", tbuf, strlen(tbuf));
        if (tbuf[0])
            KV("devTimeFormat", "yyyy-MM-dd'T'HH:mm:ss.SSSX", 26);
        KV("sev", sev, strlen(sev));
        KV("cat", ev->content_type, slen(ev->content_type));
        KV("usrName", e->f[EV_USER], e->flen[EV_USER]);
        KV("src", e->f[EV_SRC], e->flen[EV_SRC]);
        KV("externalId", ev->id, slen(ev->id));
        KV("outcome", e->f[EV_OUTCOME], e->flen[EV_OUTCOME]);
        KV("workload", e->f[EV_WORKLOAD], e->flen[EV_WORKLOAD]);
        KV("tenant", ev->tenant, slen(ev->tenant));
        KV("tenantId", ev->tenant_id, slen(ev->tenant_id));
        KV("classUid", cls, strlen(cls));
        KV("tags", e->tags, strlen(e->tags));
        KV("areas", e->areas, strlen(e->areas));
        KV("attack", e->attack, strlen(e->attack));
        return n;
    }
    KV("rt", tbuf, strlen(tbuf));
    KV("externalId", ev->id, slen(ev->id));
    KV("act", e->f[EV_OP], e->flen[EV_OP]);
    KV("suser", e->f[EV_USER], e->flen[EV_USER]);
    KV("src", e->f[EV_SRC], e->flen[EV_SRC]);
    KV("outcome", e->f[EV_OUTCOME], e->flen[EV_OUTCOME]);
    KV("cat", ev->content_type, slen(ev->content_type));
    if (ev->tenant && *ev->tenant) {
        KV("cs1Label", "tenant", 6);
        KV("cs1", ev->tenant, strlen(ev->tenant));
    }
    if (e->tags[0]) {
        KV("cs2Label", "tags", 4);
        KV("cs2", e->tags, strlen(e->tags));
    }
    if (e->areas[0]) {
        KV("cs3Label", "areas", 5);
        KV("cs3", e->areas, strlen(e->areas));
    }
    if (e->attack[0]) {
        KV("cs4Label", "attack", 6);
        KV("cs4", e->attack, strlen(e->attack));
    }
    if (ev->tenant_id && *ev->tenant_id) {
        KV("cs5Label", "tenantId", 8);
        KV("cs5", ev->tenant_id, strlen(ev->tenant_id));
    }
    if (e->f[EV_WORKLOAD]) {
        KV("cs6Label", "workload", 8);
        KV("cs6", e->f[EV_WORKLOAD], e->flen[EV_WORKLOAD]);
    }
    if (cls[0]) {
        KV("cn1Label", "ocsfClassUid", 12);
        KV("cn1", cls, strlen(cls));
    }
#undef KV
    return n;
}

static int
put_cef_leef(struct mf_buf *b, const struct mf_syslog_fmt *f,
             const struct mf_event *ev, const struct ev_facts *e, bool leef)
{
    int (*hdr)(struct mf_buf *, const char *, size_t) =
        leef ? mf_leef_escape_header : mf_cef_escape_header;
    const char *ver = f->version && *f->version ? f->version : "0";
    const char *op = e->f[EV_OP] ? e->f[EV_OP] : "unknown";
    size_t oplen = e->f[EV_OP] ? e->flen[EV_OP] : 7;
    struct kv kv[40];
    char tbuf[40], cls[16], sev[8];
    size_t n;
    int rc = 0;

    rc |= mf_buf_appends(b, leef ? "LEEF:2.0|Microsoft|Microsoft 365|"
                                 : "CEF:0|Microsoft|Microsoft 365|");
    rc |= hdr(b, ver, strlen(ver));
    rc |= mf_buf_appendc(b, '|');
    rc |= hdr(b, op, oplen);
    rc |= mf_buf_appendc(b, '|');
    n = collect_kv(kv, ev, e, leef, tbuf, sizeof(tbuf), cls, sizeof(cls), sev,
                   sizeof(sev));
    if (leef) {
        rc |= mf_buf_appendc(b, MF_LEEF_DELIM);
        rc |= mf_buf_appendc(b, '|');
    } else {
        const struct mf_event_tag *top = ev->top;

        if (top && top->title)
            rc |= hdr(b, top->title, strlen(top->title));
        else
            rc |= hdr(b, op, oplen);
        rc |= mf_buf_printf(b, "|%d|", mf_cef_severity(e->ocsf_sev));
    }
    for (size_t i = 0; i < n; i++) {
        if (i)
            rc |= mf_buf_appendc(b, leef ? MF_LEEF_DELIM : ' ');
        rc |= mf_buf_appends(b, kv[i].key);
        rc |= mf_buf_appendc(b, '=');
        rc |= leef ? mf_leef_escape_value(b, kv[i].val, kv[i].len)
                   : mf_cef_escape_ext(b, kv[i].val, kv[i].len);
    }
    return rc ? -1 : 0;
}

/* ---- oversize policy, step 1 ----------------------------------------- */

/* A copy of object o with its own member array (values shared), so members
 * can be removed without touching the event's tree. */
static struct mf_jval *
shallow_copy(struct mf_arena *a, const struct mf_jval *o)
{
    struct mf_jval *c = mf_jobj(a);

    for (size_t i = 0; i < o->len; i++)
        mf_jobj_add_ref(a, c, o->u.mem[i].key, o->u.mem[i].klen, o->u.mem[i].val);
    return c;
}

/* parent[key] as an object of its own (a copy of the one there, if any). */
static struct mf_jval *
child_copy(struct mf_arena *a, struct mf_jval *parent, const char *key)
{
    struct mf_jval *c = mf_jobj_get(parent, key);

    c = mf_jis_obj(c) ? shallow_copy(a, c) : mf_jobj(a);
    mf_jobj_set(a, parent, key, c);
    return c;
}

/* The event without the parts of trunc_paths it has, marked; the list of
 * what was removed (space separated) goes into list. NULL when nothing
 * could be removed. The event's own tree is left as it is. */
static struct mf_jval *
reduce_event(struct mf_arena *a, const struct mf_jval *event, int schema,
             char *list, size_t listsz)
{
    struct mf_jval *root = shallow_copy(a, event);
    struct mf_jval *removed = mf_jarr(a);
    size_t n = 0, ll = 0;

    list[0] = '\0';
    for (int i = 0; trunc_paths[schema][i]; i++) {
        const char *path = trunc_paths[schema][i];
        const char *dot = strchr(path, '.');
        int w;

        if (dot) {
            char head[64];
            struct mf_jval *parent;

            snprintf(head, sizeof(head), "%.*s", (int)(dot - path), path);
            parent = mf_jobj_get(root, head);
            if (!mf_jis_obj(parent) || !mf_jobj_get(parent, dot + 1))
                continue;
            parent = shallow_copy(a, parent);
            mf_jobj_del(parent, dot + 1);
            if (parent->len == 0)
                mf_jobj_del(root, head);
            else
                mf_jobj_set(a, root, head, parent);
        } else if (!mf_jobj_del(root, path)) {
            continue;
        }
        mf_jarr_push(a, removed, mf_jstr(a, path));
        w = snprintf(list + ll, listsz - ll, "%s%s", ll ? " " : "", path);
        if (w > 0 && ll + (size_t)w < listsz)
            ll += (size_t)w;
        n++;
    }
    if (!n)
        return NULL;
    /* ocsf: unmapped.m365fwd.truncated; ecs: m365fwd.truncated */
    mf_jobj_set(a, child_copy(a, schema == MF_SCHEMA_OCSF ? child_copy(a, root, "unmapped")
                                                          : root, "m365fwd"),
                "truncated", removed);
    return root;
}

/* ---- the message ----------------------------------------------------- */

static int
build(struct mf_buf *out, const struct mf_syslog_fmt *f,
      const struct mf_event *ev, const struct ev_facts *e, int pri,
      const char *body, size_t bodylen, const char *truncated)
{
    mf_buf_reset(out);
    if (put_header(out, f, ev, e, pri, truncated) < 0)
        return -1;
    if (f->payload == MF_SYSLOG_JSON)
        return mf_buf_append(out, body, bodylen);
    return put_cef_leef(out, f, ev, e, f->payload == MF_SYSLOG_LEEF);
}

/* Step 1 of the oversize policy: the json payload without its bulky
 * parts. MF_OK with info->truncated, or MF_DROP with info->reason. */
static enum mf_status
format_reduced(const struct mf_syslog_fmt *f, const struct mf_event *ev, int schema,
               const struct mf_jval *tree, const struct ev_facts *e, int pri,
               struct mf_buf *out, struct mf_syslog_info *info)
{
    struct mf_arena a;
    struct mf_jval *root;
    struct mf_buf body;
    char list[128];
    enum mf_status st = MF_OK;
    size_t was = out->len;

    mf_arena_init(&a, 4096);
    root = reduce_event(&a, tree, schema, list, sizeof(list));
    if (!root) {
        snprintf(info->reason, sizeof(info->reason),
                 "message of %zu bytes is larger than max_message_size %zu "
                 "and has nothing to remove", was, f->max_size);
        mf_buf_reset(out);
        mf_arena_fini(&a);
        return MF_DROP;
    }
    mf_buf_init(&body, out->max);
    if (mf_json_write(&body, root) < 0 ||
        build(out, f, ev, e, pri, body.data, body.len,
              f->format == MF_SYSLOG_RFC5424 ? list : NULL) < 0 ||
        out->len > f->max_size) {
        snprintf(info->reason, sizeof(info->reason),
                 "message larger than max_message_size %zu even without %s",
                 f->max_size, list);
        mf_buf_reset(out);
        st = MF_DROP;
    } else {
        info->truncated = true;
    }
    mf_buf_fini(&body);
    mf_arena_fini(&a);
    return st;
}

enum mf_status
mf_syslog_format(const struct mf_syslog_fmt *f, const struct mf_event *ev,
                 enum mf_schema schema_, const struct mf_event_form *form,
                 struct mf_buf *out, struct mf_syslog_info *info)
{
    int schema = (unsigned)schema_ < MF_SCHEMA_COUNT ? (int)schema_ : MF_SCHEMA_OCSF;
    struct ev_facts e;
    int pri, rc;

    memset(info, 0, sizeof(*info));
    if (!form || !mf_jis_obj(form->tree)) {
        snprintf(info->reason, sizeof(info->reason), "event is not a JSON object");
        return MF_DROP;
    }
    get_facts(form->tree, ev, schema, &e);
    info->severity = mf_syslog_severity(e.ocsf_sev);
    pri = mf_syslog_pri(f->facility, info->severity);
    if (pri < 0)
        pri = mf_syslog_pri(16, info->severity);   /* local0 */
    rc = build(out, f, ev, &e, pri, form->text.data, form->text.len, NULL);
    if (rc == 0 && (!f->max_size || out->len <= f->max_size))
        return MF_OK;
    if (f->payload != MF_SYSLOG_JSON || !trunc_paths[schema][0]) {
        snprintf(info->reason, sizeof(info->reason),
                 "message of %zu bytes is larger than max_message_size %zu "
                 "(%s payload cannot be reduced)", out->len, f->max_size,
                 f->payload == MF_SYSLOG_JSON ? mf_schema_name((enum mf_schema)schema)
                 : f->payload == MF_SYSLOG_CEF ? "cef" : "leef");
        mf_buf_reset(out);
        return MF_DROP;
    }
    return format_reduced(f, ev, schema, form->tree, &e, pri, out, info);
}
