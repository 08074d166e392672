/* ocsf.c - audit record -> OCSF 1.8.0 event (normalization.md §1b).
 *
 * Which class and activity an Operation maps to is data (ocsf.yaml): this
 * file loads and validates that table, selects the class for a record, and
 * builds the event. The per-class field extraction is code, one small
 * function per class shape (k_shapes[]); everything the builders do not
 * consume stays under "unmapped".
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "builtin.h"
#include "mem.h"
#include "normalize.h"
#include "yaml_tree.h"

#define OCSF_VERSION "1.8.0"
#define PRODUCT_NAME "Microsoft 365 Unified Audit Log"
#define VENDOR_NAME "Microsoft"
#define MAX_ACTIVITY 98           /* named activities are 1..98 */
#define MAX_WEB_RESOURCES 1000    /* items listed per event; all stay in data */

struct bctx;
typedef void (*shape_fn)(struct bctx *b);

/* What the builder knows about each class it can produce. */
#define SH_ACTOR      0x01   /* class has actor */
#define SH_SRC        0x02   /* class has src_endpoint */
#define SH_HTTP       0x04   /* class has http_request */
#define SH_NEED_ACTOR 0x08   /* actor is required */
#define SH_NEED_SRC   0x10   /* src_endpoint is required */
#define SH_FINDING    0x20   /* status_id is a finding status, not an outcome */

struct shape {
    int uid;
    unsigned flags;
    shape_fn fn;
};

struct ocsf_class {
    int uid;
    const char *name;
    int category_uid;
    const char *category_name;
    const char *act_name[MAX_ACTIVITY + 1];
    const struct shape *shape;
};

struct ocsf_rule {
    const char *op;            /* as written in the table */
    const struct ocsf_class *cls;
    int activity;
    const char *entity_type;   /* Entity Management only */
    bool folder;               /* File Hosting only */
    unsigned line;
};

struct ocsf_verb {
    const char *verb;
    int activity;
};

/* A RecordType whose operations are free text (alert names) or too many to
 * list: its class when the Operation is not in the table. */
struct ocsf_rtrule {
    int record_type;
    const struct ocsf_class *cls;
    int activity;
};

struct mf_ocsf_map {
    struct mf_arena arena;     /* YAML tree and every string below */
    struct ocsf_class *classes;
    size_t n_classes;
    struct ocsf_rule *rules;   /* sorted by op, case-insensitive */
    size_t n_rules;
    struct ocsf_verb *verbs;
    size_t n_verbs;
    struct ocsf_rtrule *rtrules;
    size_t n_rtrules;
    const struct ocsf_class *cmdlet_cls;
    const struct ocsf_class *fallback_cls;
    int fallback_activity;
};

/* Result of class selection. */
struct selection {
    const struct ocsf_class *cls;
    int activity;
    const char *entity_type;
    bool folder;
};

struct bctx {
    const struct mf_ocsf_map *m;
    const struct mf_record *r;
    struct mf_arena *a;
    struct mf_jval *ev;
    struct selection sel;
    int severity;              /* may be raised by finding builders */
    bool host_profile;         /* device was set: "host" profile applies */
};

/* ---- small helpers ----------------------------------------------------- */

static const char *const k_severity_names[] = {
    "Unknown", "Informational", "Low", "Medium", "High", "Critical", "Fatal",
};

static const char *
severity_name(int id)
{
    if (id >= 0 && id <= 6)
        return k_severity_names[id];
    return "Other";
}

/* UAL UserType -> OCSF user.type_id / type (normalization.md §1b). */
static const struct {
    int type_id;
    const char *type;
} k_user_types[] = {
    [0] = {1, "User"},          [1] = {99, "Reserved"},
    [2] = {2, "Admin"},         [3] = {3, "System"},
    [4] = {3, "System"},        [5] = {4, "Service"},
    [6] = {4, "Service"},       [7] = {99, "CustomPolicy"},
    [8] = {99, "SystemPolicy"}, [9] = {99, "PartnerTechnician"},
    [10] = {99, "Guest"},
};

/* Finding severities as UAL writes them. */
static const struct {
    const char *name;
    int id;
} k_finding_sev[] = {
    {"informational", 1}, {"info", 1}, {"low", 2}, {"medium", 3},
    {"high", 4}, {"critical", 5},
};

/* Alert Status -> finding status_id (OCSF finding: 1 New, 2 In Progress,
 * 3 Suppressed, 4 Resolved). */
static const struct {
    const char *name;
    int id;
    bool closes;               /* AlertUpdated becomes activity 3 Close */
} k_alert_status[] = {
    {"active", 1, false},     {"new", 1, false},
    {"investigating", 2, false}, {"inprogress", 2, false},
    {"dismissed", 3, true},   {"suppressed", 3, true},
    {"resolved", 4, true},
};

/* device OS name prefix -> os.type_id */
static const struct {
    const char *prefix;
    int type_id;
} k_os_types[] = {
    {"windows phone", 101}, {"windows", 100}, {"android", 201},
    {"ios", 301}, {"ipados", 302}, {"macos", 300}, {"mac os", 300},
    {"linux", 200}, {"ubuntu", 200},
};

/* Email Directionality (TIMailData) -> direction_id */
static const struct {
    const char *name;
    int id;
} k_directions[] = {
    {"inbound", 1}, {"outbound", 2}, {"intraorg", 3}, {"intra-org", 3},
};

static struct mf_jval *
sref(struct mf_arena *a, const char *s)
{
    return mf_jstr_ref(a, s, strlen(s));
}

/* Top-level member of the view (case-insensitive), or NULL. */
static struct mf_jval *
vget(const struct bctx *b, const char *key)
{
    return mf_jobj_geti(b->r->view, key);
}

static void
mark(struct mf_jval *v)
{
    if (v)
        v->flags |= MF_JF_USED;
}

/* A usable string member of the view (non-null, non-empty). */
static struct mf_jval *
vstr(const struct bctx *b, const char *key)
{
    struct mf_jval *v = vget(b, key);
    if (!mf_jis_str(v) || mf_jis_nullish(v))
        return NULL;
    return v;
}

/* Same, marked consumed. */
static struct mf_jval *
take_str(const struct bctx *b, const char *key)
{
    struct mf_jval *v = vstr(b, key);
    mark(v);
    return v;
}

/* Nested string (dotted path), not consumed (its parent stays unmapped). */
static const char *
pstr(const struct bctx *b, const char *path)
{
    const char *s = mf_record_str(b->r, path);
    if (!s || !*s)
        return NULL;
    return s;
}

/* Scalar (string or number) as a string node; NULL otherwise. */
static struct mf_jval *
scalar_str(struct mf_arena *a, const struct mf_jval *v)
{
    size_t n;
    const char *s;
    if (!v || mf_jis_nullish(v))
        return NULL;
    if (v->type == MF_JSTR)
        return (struct mf_jval *)v;
    if (v->type != MF_JNUM)
        return NULL;
    s = mf_jscalar_text(v, &n);
    return s ? mf_jstr_ref(a, s, n) : NULL;
}

/* email_t of OCSF 1.8.0:
 * ^[a-zA-Z0-9!#$%&'*+-/=?^_`{|}~.]+@[a-zA-Z0-9-]+\.[a-zA-Z0-9-.]+$ */
static bool
is_email(const char *s)
{
    const char *at, *p;
    bool dot = false;
    if (!s || !*s)
        return false;
    at = strchr(s, '@');
    if (!at || at == s)
        return false;
    for (p = s; p < at; p++) {
        unsigned char c = (unsigned char)*p;
        if (!isalnum(c) && !strchr("!#$%&'*+,-./=?^_`{|}~", c))
            return false;
    }
    p = at + 1;
    if (*p == '.' || *p == '\0')
        return false;
    for (; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '.' && !dot) {
            if (p[1] == '\0')
                return false;
            dot = true;
            continue;
        }
        if (!isalnum(c) && c != '-' && !(c == '.' && dot))
            return false;
    }
    return dot;
}

static bool
is_ip(const char *s)
{
    unsigned char buf[16];
    return s && (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1);
}

/* ---- class selection ----------------------------------------------------- */

static int
rule_cmp(const void *x, const void *y)
{
    const struct ocsf_rule *a = x, *b = y;
    return strcasecmp(a->op, b->op);
}

static const struct ocsf_rule *
find_rule(const struct mf_ocsf_map *m, const char *op)
{
    struct ocsf_rule key = {.op = op};
    return bsearch(&key, m->rules, m->n_rules, sizeof *m->rules, rule_cmp);
}

/* "Set-Mailbox" -> true, verb length in *vlen. */
static bool
is_cmdlet(const char *op, size_t *vlen)
{
    size_t i = 0;
    while (isalpha((unsigned char)op[i]))
        i++;
    if (i == 0 || op[i] != '-' || !isalpha((unsigned char)op[i + 1]))
        return false;
    for (const char *p = op + i + 1; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-')
            return false;
    *vlen = i;
    return true;
}

static void
select_class(const struct mf_ocsf_map *m, const struct mf_record *r,
             struct selection *sel)
{
    const char *op = r->operation ? r->operation : "";
    const struct ocsf_rule *rule = *op ? find_rule(m, op) : NULL;
    size_t vlen;

    memset(sel, 0, sizeof *sel);
    if (rule) {
        sel->cls = rule->cls;
        sel->activity = rule->activity;
        sel->entity_type = rule->entity_type;
        sel->folder = rule->folder;
        return;
    }
    for (size_t i = 0; i < m->n_rtrules; i++) {
        if (m->rtrules[i].record_type == r->record_type) {
            sel->cls = m->rtrules[i].cls;
            sel->activity = m->rtrules[i].activity;
            return;
        }
    }
    if (m->cmdlet_cls && is_cmdlet(op, &vlen)) {
        sel->cls = m->cmdlet_cls;
        sel->activity = 99;
        for (size_t i = 0; i < m->n_verbs; i++) {
            if (strlen(m->verbs[i].verb) == vlen &&
                strncasecmp(m->verbs[i].verb, op, vlen) == 0) {
                sel->activity = m->verbs[i].activity;
                break;
            }
        }
        return;
    }
    sel->cls = m->fallback_cls;
    sel->activity = m->fallback_activity;
}

const char *
mf_ocsf_class_name(const struct mf_ocsf_map *m, int class_uid)
{
    for (size_t i = 0; i < m->n_classes; i++)
        if (m->classes[i].uid == class_uid)
            return m->classes[i].name;
    return "";
}

int
mf_ocsf_class_of(const struct mf_ocsf_map *m, const struct mf_record *r)
{
    struct selection sel;
    select_class(m, r, &sel);
    return sel.cls->uid;
}

/* ---- common objects ------------------------------------------------------- */

/* actor.user / user from UserId, UserKey, UserType. NULL when the record
 * names nobody. Marks what it uses when consume is set. */
static struct mf_jval *
build_actor_user(struct bctx *b, bool consume)
{
    struct mf_arena *a = b->a;
    struct mf_jval *uid = vstr(b, "UserId");
    struct mf_jval *ukey = vstr(b, "UserKey");
    struct mf_jval *ut = vget(b, "UserType");
    struct mf_jval *u;
    int t = b->r->user_type;

    if (!uid && !ukey)
        return NULL;
    u = mf_jobj(a);
    if (uid) {
        mf_jobj_set_ref(a, u, "name", 4, uid);
        if (is_email(uid->u.s))
            mf_jobj_set_ref(a, u, "email_addr", 10, uid);
    }
    if (ukey)
        mf_jobj_set_ref(a, u, "uid", 3, ukey);
    if (t >= 0 && (size_t)t < sizeof k_user_types / sizeof k_user_types[0]) {
        mf_jobj_set_ref(a, u, "type_id", 7, mf_jint(a, k_user_types[t].type_id));
        mf_jobj_set_ref(a, u, "type", 4, sref(a, k_user_types[t].type));
        if (consume)
            mark(ut);
    } else if (t >= 0) {
        mf_jobj_set_ref(a, u, "type_id", 7, mf_jint(a, 99));
        mf_jobj_set_ref(a, u, "type", 4, mf_jstr(a, mf_arena_printf(a, "UserType %d", t)));
        if (consume)
            mark(ut);
    }
    if (consume) {
        mark(uid);
        mark(ukey);
    }
    return u;
}

/* The view member(s) the client address came from: mark those whose parse
 * gives the same address. */
static void
mark_client_ip(struct bctx *b)
{
    static const char *const keys[] = {"ClientIP", "ClientIPAddress", "ActorIpAddress"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        struct mf_jval *v = vstr(b, keys[i]);
        char ip[64];
        int port = 0;
        if (!v || mf_parse_client_ip(v->u.s, ip, sizeof ip, &port) != 0)
            continue;
        if (strcmp(ip, b->r->client_ip) == 0 &&
            (port == 0 || port == b->r->client_port))
            mark(v);
    }
}

static struct mf_jval *
build_src_endpoint(struct bctx *b)
{
    struct mf_arena *a = b->a;
    struct mf_jval *ep;
    if (!b->r->client_ip[0] || !is_ip(b->r->client_ip))
        return NULL;
    ep = mf_jobj(a);
    mf_jobj_set_ref(a, ep, "ip", 2, mf_jstr(a, b->r->client_ip));
    if (b->r->client_port > 0 && b->r->client_port <= 65535)
        mf_jobj_set_ref(a, ep, "port", 4, mf_jint(a, b->r->client_port));
    mark_client_ip(b);
    return ep;
}

static void
set_user_agent(struct bctx *b)
{
    struct mf_jval *ua = take_str(b, "UserAgent");
    struct mf_jval *h = mf_jobj(b->a);
    if (ua)
        mf_jobj_set_ref(b->a, h, "user_agent", 10, ua);
    else if (b->r->user_agent && *b->r->user_agent)
        mf_jobj_set_ref(b->a, h, "user_agent", 10, sref(b->a, b->r->user_agent));
    else
        return;
    mf_jobj_set_ref(b->a, b->ev, "http_request", 12, h);
}

static void
set_outcome_status(struct bctx *b)
{
    struct mf_arena *a = b->a;
    struct mf_jval *rs = take_str(b, "ResultStatus");
    static const char *const names[] = {"Unknown", "Success", "Failure"};
    int id = (int)b->r->outcome;

    if (id < 0 || id > 2)
        id = 0;
    mf_jobj_set_ref(a, b->ev, "status_id", 9, mf_jint(a, id));
    /* status is the caption of status_id; the service's own word (True,
     * Succeeded, PartiallySucceeded, ...) is the detail */
    mf_jobj_set_ref(a, b->ev, "status", 6, sref(a, names[id]));
    if (rs)
        mf_jobj_set_ref(a, b->ev, "status_detail", 13, rs);
}

/* A Target[]/Actor[] entry of the given IdentityType: its ID. */
static const char *
identity_id(const struct bctx *b, const char *list, int type)
{
    const struct mf_jval *arr = vget(b, list);
    if (!mf_jis_arr(arr))
        return NULL;
    for (size_t i = 0; i < arr->len; i++) {
        const struct mf_jval *e = arr->u.items[i];
        int64_t t;
        const char *id = mf_jstrv(mf_jobj_geti(e, "ID"));
        if (id && *id && mf_jget_int(mf_jobj_geti(e, "Type"), &t) == 0 && t == type)
            return id;
    }
    return NULL;
}

/* "User_<guid>" -> "<guid>" */
static const char *
strip_kind(const char *id)
{
    const char *us = id ? strchr(id, '_') : NULL;
    return us && us[1] ? us + 1 : id;
}

/* user object for a target person named by s. */
static struct mf_jval *
user_named(struct mf_arena *a, const char *s, const char *uid)
{
    struct mf_jval *u = mf_jobj(a);
    if (s) {
        mf_jobj_set_ref(a, u, "name", 4, sref(a, s));
        if (is_email(s))
            mf_jobj_set_ref(a, u, "email_addr", 10, sref(a, s));
    }
    if (uid)
        mf_jobj_set_ref(a, u, "uid", 3, sref(a, uid));
    if (!s && !uid)
        mf_jobj_set_ref(a, u, "name", 4, sref(a, "Unknown"));
    return u;
}

/* The user an admin operation is about: cmdlet parameters first, then
 * SharePoint target, then the directory ObjectId / Target list. */
static struct mf_jval *
target_user(struct bctx *b)
{
    static const char *const params[] = {
        "Parameters.User", "Parameters.Trustee", "Parameters.Member",
        "Parameters.Identity", "TargetUserOrGroupName",
    };
    const char *name = NULL;
    const char *uid = identity_id(b, "Target", 2);
    struct mf_jval *oid;

    for (size_t i = 0; i < sizeof params / sizeof params[0] && !name; i++)
        name = pstr(b, params[i]);
    if (!name && (oid = vstr(b, "ObjectId"))) {
        name = oid->u.s;
        mark(oid);
    }
    if (!name)
        name = identity_id(b, "Target", 5);
    return user_named(b->a, name, uid ? strip_kind(uid) : NULL);
}

static struct mf_jval *
str_array1(struct mf_arena *a, const char *s)
{
    struct mf_jval *arr = mf_jarr(a);
    mf_jarr_push(a, arr, sref(a, s));
    return arr;
}

/* resources: [{name, type?}] - the one object an operation acted on */
static void
set_resource(struct bctx *b, struct mf_jval *name, const char *type)
{
    struct mf_arena *a = b->a;
    struct mf_jval *res = mf_jarr(a), *o = mf_jobj(a);

    mf_jobj_set_ref(a, o, "name", 4, name);
    if (type)
        mf_jobj_set_ref(a, o, "type", 4, sref(a, type));
    mf_jarr_push(a, res, o);
    mf_jobj_set_ref(a, b->ev, "resources", 9, res);
}

/* ---- class shapes --------------------------------------------------------- */

/* Outcome of a logon comes from Operation and ErrorNumber, not
 * ResultStatus: record.c already decided it (r->outcome). */
static void
auth_status(struct bctx *b)
{
    struct mf_arena *a = b->a;
    struct mf_jval *errn = vget(b, "ErrorNumber");
    struct mf_jval *lerr = take_str(b, "LogonError");
    int64_t en = 0;
    bool have_en = errn && mf_jget_int(errn, &en) == 0;
    int status = (int)b->r->outcome;

    mf_jobj_set_ref(a, b->ev, "status_id", 9, mf_jint(a, status));
    mf_jobj_set_ref(a, b->ev, "status", 6,
                    sref(a, status == 1 ? "Success" : status == 2 ? "Failure" : "Unknown"));
    if (have_en || mf_jis_str(errn)) {
        struct mf_jval *code = scalar_str(a, errn);
        if (code) {
            mf_jobj_set_ref(a, b->ev, "status_code", 11, code);
            mark(errn);
        }
    }
    if (lerr)
        mf_jobj_set_ref(a, b->ev, "status_detail", 13, lerr);
}

/* service, then auth_protocol from ExtendedProperties.RequestType */
static void
auth_service(struct bctx *b)
{
    struct mf_arena *a = b->a;
    struct mf_jval *app = take_str(b, "ApplicationId");
    struct mf_jval *wl = vstr(b, "Workload");
    struct mf_jval *svc = mf_jobj(a);
    const char *rt = pstr(b, "ExtendedProperties.RequestType");

    if (wl)
        mf_jobj_set_ref(a, svc, "name", 4, wl);
    if (app)
        mf_jobj_set_ref(a, svc, "uid", 3, app);
    if (!wl && !app)
        mf_jobj_set_ref(a, svc, "name", 4, sref(a, "Microsoft 365"));
    mf_jobj_set_ref(a, b->ev, "service", 7, svc);

    if (rt) {
        if (strncasecmp(rt, "OAuth2", 6) == 0) {
            mf_jobj_set_ref(a, b->ev, "auth_protocol_id", 16, mf_jint(a, 6));
            mf_jobj_set_ref(a, b->ev, "auth_protocol", 13, sref(a, "OAUTH 2.0"));
        } else if (strncasecmp(rt, "Saml", 4) == 0) {
            mf_jobj_set_ref(a, b->ev, "auth_protocol_id", 16, mf_jint(a, 5));
            mf_jobj_set_ref(a, b->ev, "auth_protocol", 13, sref(a, "SAML"));
        } else {
            mf_jobj_set_ref(a, b->ev, "auth_protocol_id", 16, mf_jint(a, 99));
            mf_jobj_set_ref(a, b->ev, "auth_protocol", 13, sref(a, rt));
        }
    }
}

/* session: DeviceProperties.SessionId (Entra) or SessionId (Exchange) */
static void
auth_session(struct bctx *b)
{
    struct mf_arena *a = b->a;
    const char *sid = pstr(b, "DeviceProperties.SessionId");
    struct mf_jval *xs = sid ? NULL : take_str(b, "SessionId");

    if (sid || xs) {
        struct mf_jval *s = mf_jobj(a);
        mf_jobj_set_ref(a, s, "uid", 3, xs ? xs : sref(a, sid));
        mf_jobj_set_ref(a, b->ev, "session", 7, s);
    }
}

static struct mf_jval *
device_os(struct mf_arena *a, const char *os)
{
    struct mf_jval *o = mf_jobj(a);
    int tid = 99;

    for (size_t i = 0; i < sizeof k_os_types / sizeof k_os_types[0]; i++)
        if (strncasecmp(os, k_os_types[i].prefix, strlen(k_os_types[i].prefix)) == 0) {
            tid = k_os_types[i].type_id;
            break;
        }
    mf_jobj_set_ref(a, o, "name", 4, sref(a, os));
    mf_jobj_set_ref(a, o, "type_id", 7, mf_jint(a, tid));
    return o;
}

/* device from DeviceProperties (host profile). device needs type_id and
 * one of uid/name/ip. */
static void
auth_device(struct bctx *b)
{
    struct mf_arena *a = b->a;
    const struct mf_jval *dp = vget(b, "DeviceProperties");
    const char *did = pstr(b, "DeviceProperties.Id");
    const char *dname = pstr(b, "DeviceProperties.DisplayName");
    const char *os = pstr(b, "DeviceProperties.OS");
    const char *comp = pstr(b, "DeviceProperties.IsCompliant");
    const char *man = pstr(b, "DeviceProperties.IsCompliantAndManaged");
    struct mf_jval *d;

    if (!mf_jis_obj(dp) || !(did || dname || is_ip(b->r->client_ip)))
        return;
    d = mf_jobj(a);
    mf_jobj_set_ref(a, d, "type_id", 7, mf_jint(a, 0));
    mf_jobj_set_ref(a, d, "type", 4, sref(a, "Unknown"));
    if (did)
        mf_jobj_set_ref(a, d, "uid", 3, sref(a, did));
    if (dname)
        mf_jobj_set_ref(a, d, "name", 4, sref(a, dname));
    if (!did && !dname)
        mf_jobj_set_ref(a, d, "ip", 2, mf_jstr(a, b->r->client_ip));
    if (os)
        mf_jobj_set_ref(a, d, "os", 2, device_os(a, os));
    if (comp && (strcasecmp(comp, "true") == 0 || strcasecmp(comp, "false") == 0))
        mf_jobj_set_ref(a, d, "is_compliant", 12,
                        mf_jbool(a, strcasecmp(comp, "true") == 0));
    if (man && (strcasecmp(man, "true") == 0 || strcasecmp(man, "false") == 0))
        mf_jobj_set_ref(a, d, "is_managed", 10,
                        mf_jbool(a, strcasecmp(man, "true") == 0));
    mf_jobj_set_ref(a, b->ev, "device", 6, d);
    b->host_profile = true;
}

static void
shape_authentication(struct bctx *b)
{
    struct mf_jval *user = build_actor_user(b, true);

    mf_jobj_set_ref(b->a, b->ev, "user", 4, user ? user : user_named(b->a, NULL, NULL));
    auth_status(b);
    auth_service(b);
    auth_session(b);
    auth_device(b);
}

/* "Update user." that changes StrongAuthentication* is an MFA change
 * (normalization.md §1b): emptied -> 11 MFA Factor Disable, else 10. */
static void
mfa_update_activity(struct bctx *b)
{
    static const char *const props[] = {
        "ModifiedProperties.StrongAuthenticationRequirement.NewValue",
        "ModifiedProperties.StrongAuthenticationMethod.NewValue",
    };
    if (b->sel.activity != 99 || strcasecmp(b->r->operation, "Update user.") != 0)
        return;
    for (size_t i = 0; i < sizeof props / sizeof props[0]; i++) {
        const struct mf_jval *v = mf_record_get(b->r, props[i]);
        const char *s;
        if (!v)
            continue;
        s = mf_jstrv(v);
        if ((s && (strcmp(s, "") == 0 || strcmp(s, "[]") == 0)) ||
            (mf_jis_arr(v) && v->len == 0) || v->type == MF_JNULL)
            b->sel.activity = 11;
        else
            b->sel.activity = 10;
        return;
    }
}

static void
shape_account_change(struct bctx *b)
{
    mf_jobj_set_ref(b->a, b->ev, "user", 4, target_user(b));
    mfa_update_activity(b);
}

static void
shape_user_access(struct bctx *b)
{
    struct mf_arena *a = b->a;
    struct mf_jval *privs = mf_jarr(a);
    const char *p;
    const char *ident;

    mf_jobj_set_ref(a, b->ev, "user", 4, target_user(b));
    if ((p = pstr(b, "ModifiedProperties.Role.DisplayName.NewValue")) ||
        (p = pstr(b, "ModifiedProperties.Role.DisplayName.OldValue")) ||
        (p = pstr(b, "Parameters.AccessRights")) ||
        (p = pstr(b, "Parameters.Role")) ||
        (p = pstr(b, "EventData")))
        mf_jarr_push(a, privs, sref(a, p));
    else
        mf_jarr_push(a, privs, sref(a, b->r->operation[0] ? b->r->operation : "Unknown"));
    mf_jobj_set_ref(a, b->ev, "privileges", 10, privs);

    /* the mailbox / site the access is granted on */
    if ((ident = pstr(b, "Parameters.Identity")) && pstr(b, "Parameters.User"))
        set_resource(b, sref(a, ident), NULL);
    else if ((ident = pstr(b, "SiteUrl")))
        set_resource(b, sref(a, ident), "Site");
}

static void
shape_group(struct bctx *b)
{
    struct mf_arena *a = b->a;
    struct mf_jval *g = mf_jobj(a);
    struct mf_jval *tn = take_str(b, "TeamName");
    struct mf_jval *tg = take_str(b, "TeamGuid");
    const char *gname = pstr(b, "ModifiedProperties.Group.DisplayName.NewValue");
    const char *guid = pstr(b, "ModifiedProperties.Group.ObjectID.NewValue");
    const char *tgt = identity_id(b, "Target", 2);
    const struct mf_jval *members = vget(b, "Members");
    const char *member = NULL;

    if (!gname)
        gname = pstr(b, "ModifiedProperties.Group.DisplayName.OldValue");
    if (!guid && tgt && strncasecmp(tgt, "Group_", 6) == 0)
        guid = tgt + 6;
    /* Yammer groups, Teams chats */
    if (!tn && !(tn = take_str(b, "GroupName")))
        tn = take_str(b, "ChatThreadName");
    if (!tg && !(tg = take_str(b, "GroupId")))
        tg = take_str(b, "ChatThreadId");
    if (tn)
        mf_jobj_set_ref(a, g, "name", 4, tn);
    else if (gname)
        mf_jobj_set_ref(a, g, "name", 4, sref(a, gname));
    if (tg)
        mf_jobj_set_ref(a, g, "uid", 3, tg);
    else if (guid)
        mf_jobj_set_ref(a, g, "uid", 3, sref(a, guid));
    if (!tn && !gname && !tg && !guid) {
        struct mf_jval *oid = take_str(b, "ObjectId");
        mf_jobj_set_ref(a, g, "name", 4, oid ? oid : sref(a, "Unknown"));
    }
    mf_jobj_set_ref(a, b->ev, "group", 5, g);

    /* the member added/removed (Add User / Remove User only) */
    if (b->sel.activity != 3 && b->sel.activity != 4)
        return;
    if (mf_jis_arr(members) && members->len > 0)
        member = mf_jstrv(mf_jobj_geti(members->u.items[0], "UPN"));
    if (member) {
        mf_jobj_set_ref(a, b->ev, "user", 4, user_named(a, member, NULL));
    } else if (!tn && (gname || guid)) {
        struct mf_jval *oid = take_str(b, "ObjectId");
        if (oid)
            mf_jobj_set_ref(a, b->ev, "user", 4, user_named(a, oid->u.s, NULL));
    }
}

static void
shape_entity(struct bctx *b)
{
    struct mf_arena *a = b->a;
    struct mf_jval *e = mf_jobj(a);
    struct mf_jval *params = vget(b, "Parameters");
    struct mf_jval *mods = vget(b, "ModifiedProperties");
    const char *name = pstr(b, "Parameters.Name");
    const char *uid = NULL;
    struct mf_jval *oid = vstr(b, "ObjectId");

    if (!name)
        name = pstr(b, "Parameters.Identity");
    if (!name)
        name = pstr(b, "ObjectDisplayName");   /* Power BI / Fabric items */
    if (!name)
        name = pstr(b, "ArtifactName");
    if (!name && oid) {
        name = oid->u.s;
        mark(oid);
    }
    if (!name)
        name = identity_id(b, "Target", 1);
    uid = identity_id(b, "Target", 2);
    if (name)
        mf_jobj_set_ref(a, e, "name", 4, sref(a, name));
    if (uid)
        mf_jobj_set_ref(a, e, "uid", 3, sref(a, strip_kind(uid)));
    if (!name && !uid)
        mf_jobj_set_ref(a, e, "name", 4, sref(a, "Unknown"));
    if (b->sel.entity_type)
        mf_jobj_set_ref(a, e, "type", 4, sref(a, b->sel.entity_type));
    if (mf_jis_obj(params) && params->len > 0) {
        mf_jobj_set_ref(a, e, "data", 4, params);
        mark(params);
    } else if (mf_jis_obj(mods) && mods->len > 0) {
        mf_jobj_set_ref(a, e, "data", 4, mods);
        mark(mods);
    }
    mf_jobj_set_ref(a, b->ev, "entity", 6, e);
}

static void
shape_api(struct bctx *b)
{
    struct mf_arena *a = b->a;
    struct mf_jval *api = mf_jobj(a), *req = mf_jobj(a);
    struct mf_jval *wl = vstr(b, "Workload");
    struct mf_jval *params = vget(b, "Parameters");
    struct mf_jval *oid = take_str(b, "ObjectId");
    const char *op = b->r->operation;

    mf_jobj_set_ref(a, api, "operation", 9, sref(a, op && *op ? op : "Unknown"));
    if (wl) {
        struct mf_jval *svc = mf_jobj(a);
        mf_jobj_set_ref(a, svc, "name", 4, wl);
        mf_jobj_set_ref(a, api, "service", 7, svc);
    }
    mf_jobj_set_ref(a, req, "uid", 3,
                    b->r->id ? sref(a, b->r->id) : sref(a, "unknown"));
    if (mf_jis_obj(params) && params->len > 0) {
        mf_jobj_set_ref(a, req, "data", 4, params);
        mark(params);
    }
    mf_jobj_set_ref(a, api, "request", 7, req);
    mf_jobj_set_ref(a, b->ev, "api", 3, api);
    if (oid)
        set_resource(b, oid, NULL);
}

static void
shape_file_hosting(struct bctx *b)
{
    struct mf_arena *a = b->a;
    struct mf_jval *f = mf_jobj(a);
    struct mf_jval *fname = take_str(b, "SourceFileName");
    struct mf_jval *ext = take_str(b, "SourceFileExtension");
    struct mf_jval *luid = take_str(b, "ListItemUniqueId");
    struct mf_jval *oid = vstr(b, "ObjectId");
    const char *itype = pstr(b, "ItemType");
    bool folder = b->sel.folder || (itype && strcasecmp(itype, "Folder") == 0);

    if (fname) {
        mf_jobj_set_ref(a, f, "name", 4, fname);
    } else if (oid) {
        const char *s = oid->u.s, *slash = strrchr(s, '/');
        if (slash && slash[1])
            s = slash + 1;
        mf_jobj_set_ref(a, f, "name", 4, sref(a, s));
    } else {
        mf_jobj_set_ref(a, f, "name", 4, sref(a, "Unknown"));
    }
    mf_jobj_set_ref(a, f, "type_id", 7, mf_jint(a, folder ? 2 : 1));
    mf_jobj_set_ref(a, f, "type", 4, sref(a, folder ? "Folder" : "Regular File"));
    if (oid) {
        mf_jobj_set_ref(a, f, "path", 4, oid);
        mark(oid);
    }
    if (ext)
        mf_jobj_set_ref(a, f, "ext", 3, ext);
    if (luid)
        mf_jobj_set_ref(a, f, "uid", 3, luid);
    mf_jobj_set_ref(a, b->ev, "file", 4, f);
}

/* One web resource per mailbox item; the item itself is kept as data. */
static struct mf_jval *
mailbox_item(struct mf_arena *a, struct mf_jval *it, const char *type)
{
    struct mf_jval *o = mf_jobj(a);
    const char *subj = mf_jstrv(mf_jobj_geti(it, "Subject"));
    const char *imid = mf_jstrv(mf_jobj_geti(it, "InternetMessageId"));
    const char *id = mf_jstrv(mf_jobj_geti(it, "Id"));
    const char *path = mf_jstrv(mf_jobj_geti(it, "Path"));

    mf_jobj_set_ref(a, o, "type", 4, sref(a, type));
    if (subj)
        mf_jobj_set_ref(a, o, "name", 4, sref(a, subj));
    else if (path)
        mf_jobj_set_ref(a, o, "name", 4, sref(a, path));
    if (imid && *imid)
        mf_jobj_set_ref(a, o, "uid", 3, sref(a, imid));
    else if (id && *id)
        mf_jobj_set_ref(a, o, "uid", 3, sref(a, id));
    if (!subj && !path && !(imid && *imid) && !(id && *id))
        mf_jobj_set_ref(a, o, "name", 4, sref(a, type));
    mf_jobj_set_ref(a, o, "data", 4, it);
    return o;
}

static void
shape_web_resources(struct bctx *b)
{
    struct mf_arena *a = b->a;
    struct mf_jval *list = mf_jarr(a);
    static const struct {
        const char *key;
        const char *type;
    } sources[] = {
        {"AffectedItems", "MailboxItem"}, {"Item", "MailboxItem"},
        {"Folders", "MailboxFolder"},
    };

    for (size_t s = 0; s < sizeof sources / sizeof sources[0]; s++) {
        struct mf_jval *v = vget(b, sources[s].key);
        if (mf_jis_obj(v)) {
            mf_jarr_push(a, list, mailbox_item(a, v, sources[s].type));
            mark(v);
        } else if (mf_jis_arr(v) && v->len > 0 && v->len <= MAX_WEB_RESOURCES) {
            bool all = true;
            for (size_t i = 0; i < v->len; i++)
                all = all && mf_jis_obj(v->u.items[i]);
            if (!all)
                continue;
            for (size_t i = 0; i < v->len; i++)
                mf_jarr_push(a, list, mailbox_item(a, v->u.items[i], sources[s].type));
            mark(v);
        }
    }
    /* links posted in a Teams message */
    {
        struct mf_jval *urls = vget(b, "MessageURLs");

        for (size_t i = 0; mf_jis_arr(urls) && i < urls->len && list->len < MAX_WEB_RESOURCES;
             i++) {
            struct mf_jval *u = urls->u.items[i], *o;

            if (!mf_jis_str(u) || mf_jis_nullish(u))
                continue;
            o = mf_jobj(a);
            mf_jobj_set_ref(a, o, "type", 4, sref(a, "Url"));
            mf_jobj_set_ref(a, o, "name", 4, u);
            mf_jobj_set_ref(a, o, "url_string", 10, u);
            mf_jarr_push(a, list, o);
            mark(urls);
        }
    }
    if (list->len == 0) {
        /* the mailbox, site, message or search the operation was about */
        static const struct {
            const char *key, *type;
            bool uid;
        } about[] = {
            {"MailboxOwnerUPN", "Mailbox", false}, {"ObjectId", NULL, false},
            {"NetworkMessageId", "Email", true}, {"MessageId", "Message", true},
        };
        struct mf_jval *o = mf_jobj(a);

        for (size_t i = 0; i < sizeof about / sizeof about[0]; i++) {
            struct mf_jval *v = vstr(b, about[i].key);

            if (!v)
                continue;
            if (about[i].type)
                mf_jobj_set_ref(a, o, "type", 4, sref(a, about[i].type));
            mf_jobj_set_ref(a, o, about[i].uid ? "uid" : "name", about[i].uid ? 3 : 4, v);
            if (i > 0)
                mark(v);   /* the mailbox owner also stays unmapped */
            break;
        }
        if (o->len == 0)
            mf_jobj_set_ref(a, o, "name", 4, sref(a, b->r->workload ? b->r->workload : "Unknown"));
        mf_jarr_push(a, list, o);
    }
    mf_jobj_set_ref(a, b->ev, "web_resources", 13, list);
}

static void
set_email_addr_list(struct bctx *b, struct mf_jval *email, const char *key,
                    const struct mf_jval *src)
{
    struct mf_arena *a = b->a;
    struct mf_jval *arr = mf_jarr(a);
    if (mf_jis_str(src) && is_email(src->u.s)) {
        mf_jarr_push(a, arr, (struct mf_jval *)src);
    } else if (mf_jis_arr(src)) {
        for (size_t i = 0; i < src->len; i++)
            if (mf_jis_str(src->u.items[i]) && is_email(src->u.items[i]->u.s))
                mf_jarr_push(a, arr, src->u.items[i]);
    }
    if (arr->len > 0)
        mf_jobj_set(a, email, key, arr);
}

static void
shape_email(struct bctx *b)
{
    struct mf_arena *a = b->a;
    struct mf_jval *em = mf_jobj(a);
    static const char *const from_keys[] = {
        "SendAsUserSmtp", "SendOnBehalfOfUserSmtp", "P2Sender", "P1Sender",
        "SenderAddress", "MailboxOwnerUPN", "UserId",
    };
    const char *subj = pstr(b, "Item.Subject");
    const char *imid = pstr(b, "Item.InternetMessageId");
    const char *dir = pstr(b, "Directionality");
    int dir_id = 0;

    for (size_t i = 0; i < sizeof from_keys / sizeof from_keys[0]; i++) {
        struct mf_jval *v = vstr(b, from_keys[i]);
        if (v && is_email(v->u.s)) {
            mf_jobj_set_ref(a, em, "from", 4, v);
            if (strcmp(from_keys[i], "UserId") != 0 &&
                strcmp(from_keys[i], "MailboxOwnerUPN") != 0)
                mark(v);
            break;
        }
    }
    set_email_addr_list(b, em, "to", vget(b, "Recipients"));
    if (!subj)
        subj = pstr(b, "Subject");
    if (!imid)
        imid = pstr(b, "InternetMessageId");
    if (subj)
        mf_jobj_set_ref(a, em, "subject", 7, sref(a, subj));
    if (imid)
        mf_jobj_set_ref(a, em, "message_uid", 11, sref(a, imid));
    {
        const char *nmid = pstr(b, "NetworkMessageId");
        if (nmid)
            mf_jobj_set_ref(a, em, "uid", 3, sref(a, nmid));
    }
    mf_jobj_set_ref(a, b->ev, "email", 5, em);

    if (dir)
        for (size_t i = 0; i < sizeof k_directions / sizeof k_directions[0]; i++)
            if (strcasecmp(dir, k_directions[i].name) == 0)
                dir_id = k_directions[i].id;
    mf_jobj_set_ref(a, b->ev, "direction_id", 12, mf_jint(a, dir_id));
    mf_jobj_set_ref(a, b->ev, "direction", 9,
                    sref(a, dir_id == 1 ? "Inbound" : dir_id == 2 ? "Outbound"
                            : dir_id == 3 ? "Lateral" : "Unknown"));
}

static void
shape_email_url(struct bctx *b)
{
    struct mf_arena *a = b->a;
    struct mf_jval *url = mf_jobj(a);
    struct mf_jval *u = take_str(b, "Url");
    const char *uid = pstr(b, "NetworkMessageId");

    if (!uid)
        uid = pstr(b, "MessageId");
    if (!uid)
        uid = b->r->id;
    mf_jobj_set_ref(a, b->ev, "email_uid", 9, sref(a, uid ? uid : "unknown"));
    mf_jobj_set_ref(a, url, "url_string", 10, u ? u : sref(a, ""));
    mf_jobj_set_ref(a, b->ev, "url", 3, url);
}

static int
finding_severity(const char *s)
{
    for (size_t i = 0; s && i < sizeof k_finding_sev / sizeof k_finding_sev[0]; i++)
        if (strcasecmp(s, k_finding_sev[i].name) == 0)
            return k_finding_sev[i].id;
    return 0;
}

static void
shape_detection(struct bctx *b)
{
    struct mf_arena *a = b->a;
    struct mf_jval *fi = mf_jobj(a);
    struct mf_jval *aid = take_str(b, "AlertId");
    struct mf_jval *name = take_str(b, "Name");
    /* automated investigations and mail submissions carry their own ids */
    if (!aid && !(aid = take_str(b, "InvestigationId")))
        aid = take_str(b, "SubmissionId");
    if (!name)
        name = take_str(b, "InvestigationName");
    struct mf_jval *cat = take_str(b, "Category");
    struct mf_jval *sev = take_str(b, "Severity");
    struct mf_jval *st = take_str(b, "Status");
    struct mf_jval *pol = take_str(b, "PolicyId");
    const char *title = name ? name->u.s : pstr(b, "DetectionType");
    int sid;

    if (aid)
        mf_jobj_set_ref(a, fi, "uid", 3, aid);
    else
        mf_jobj_set_ref(a, fi, "uid", 3, sref(a, b->r->id ? b->r->id : "unknown"));
    mf_jobj_set_ref(a, fi, "title", 5, sref(a, title ? title : b->r->operation));
    if (cat)
        mf_jobj_set_ref(a, fi, "types", 5, str_array1(a, cat->u.s));
    if (name || pol) {
        /* the alert policy that fired */
        struct mf_jval *an = mf_jobj(a);
        if (name)
            mf_jobj_set_ref(a, an, "name", 4, name);
        if (pol)
            mf_jobj_set_ref(a, an, "uid", 3, pol);
        mf_jobj_set_ref(a, an, "type_id", 7, mf_jint(a, 1));
        mf_jobj_set_ref(a, an, "type", 4, sref(a, "Rule"));
        mf_jobj_set_ref(a, fi, "analytic", 8, an);
    }
    mf_jobj_set_ref(a, b->ev, "finding_info", 12, fi);
    mf_jobj_set_ref(a, b->ev, "is_alert", 8, mf_jbool(a, true));

    if ((sid = finding_severity(sev ? sev->u.s : NULL)) > b->severity)
        b->severity = sid;
    if (st) {
        mf_jobj_set_ref(a, b->ev, "status", 6, st);
        for (size_t i = 0; i < sizeof k_alert_status / sizeof k_alert_status[0]; i++)
            if (strcasecmp(st->u.s, k_alert_status[i].name) == 0) {
                mf_jobj_set_ref(a, b->ev, "status_id", 9, mf_jint(a, k_alert_status[i].id));
                if (k_alert_status[i].closes && strcasecmp(b->r->operation, "AlertUpdated") == 0)
                    b->sel.activity = 3;
                break;
            }
        if (!mf_jobj_get(b->ev, "status_id"))
            mf_jobj_set_ref(a, b->ev, "status_id", 9, mf_jint(a, 99));
    }
}

static void
shape_data_security(struct bctx *b)
{
    struct mf_arena *a = b->a;
    struct mf_jval *fi = mf_jobj(a);
    const struct mf_jval *pd = vget(b, "PolicyDetails");
    const char *rule_name = NULL, *rule_id = NULL, *policy = NULL;
    struct mf_jval *inc = vstr(b, "IncidentId");
    int maxsev = 0;

    /* first rule names the finding; the highest rule severity rates it */
    for (size_t i = 0; mf_jis_arr(pd) && i < pd->len; i++) {
        const struct mf_jval *p = pd->u.items[i];
        const struct mf_jval *rules = mf_jobj_geti(p, "Rules");
        if (!policy)
            policy = mf_jstrv(mf_jobj_geti(p, "PolicyName"));
        for (size_t j = 0; mf_jis_arr(rules) && j < rules->len; j++) {
            const struct mf_jval *ru = rules->u.items[j];
            int s = finding_severity(mf_jstrv(mf_jobj_geti(ru, "Severity")));
            if (!rule_name) {
                rule_name = mf_jstrv(mf_jobj_geti(ru, "RuleName"));
                rule_id = mf_jstrv(mf_jobj_geti(ru, "RuleId"));
            }
            if (s > maxsev)
                maxsev = s;
        }
    }
    if (inc) {
        mf_jobj_set_ref(a, fi, "uid", 3, inc);
        mark(inc);
    } else {
        mf_jobj_set_ref(a, fi, "uid", 3, sref(a, b->r->id ? b->r->id : "unknown"));
    }
    mf_jobj_set_ref(a, fi, "title", 5,
                    sref(a, rule_name ? rule_name : policy ? policy : b->r->operation));
    mf_jobj_set_ref(a, fi, "types", 5, str_array1(a, "Data Loss Prevention"));
    if (rule_name || rule_id) {
        struct mf_jval *an = mf_jobj(a);
        if (rule_name)
            mf_jobj_set_ref(a, an, "name", 4, sref(a, rule_name));
        if (rule_id)
            mf_jobj_set_ref(a, an, "uid", 3, sref(a, rule_id));
        mf_jobj_set_ref(a, an, "type_id", 7, mf_jint(a, 1));
        mf_jobj_set_ref(a, an, "type", 4, sref(a, "Rule"));
        mf_jobj_set_ref(a, fi, "analytic", 8, an);
    }
    mf_jobj_set_ref(a, b->ev, "finding_info", 12, fi);
    mf_jobj_set_ref(a, b->ev, "is_alert", 8, mf_jbool(a, true));
    if (maxsev > b->severity)
        b->severity = maxsev;
}

/* Classes the builder can produce; ocsf.yaml may only name these. */
static const struct shape k_shapes[] = {
    {2004, SH_FINDING, shape_detection},
    {2006, SH_FINDING | SH_ACTOR | SH_SRC, shape_data_security},
    {3001, SH_ACTOR | SH_SRC | SH_HTTP, shape_account_change},
    {3002, SH_ACTOR | SH_SRC | SH_HTTP, shape_authentication},
    {3004, SH_ACTOR | SH_SRC | SH_HTTP, shape_entity},
    {3005, SH_ACTOR | SH_SRC | SH_HTTP, shape_user_access},
    {3006, SH_ACTOR | SH_SRC | SH_HTTP, shape_group},
    {4009, SH_SRC, shape_email},
    {4012, 0, shape_email_url},
    {6001, SH_SRC | SH_HTTP, shape_web_resources},
    {6003, SH_ACTOR | SH_SRC | SH_HTTP | SH_NEED_ACTOR | SH_NEED_SRC, shape_api},
    {6006, SH_ACTOR | SH_SRC | SH_HTTP | SH_NEED_ACTOR | SH_NEED_SRC, shape_file_hosting},
};

static const struct shape *
shape_of(int uid)
{
    for (size_t i = 0; i < sizeof k_shapes / sizeof k_shapes[0]; i++)
        if (k_shapes[i].uid == uid)
            return &k_shapes[i];
    return NULL;
}

/* ---- event ------------------------------------------------------------------ */

static struct mf_jval *
build_enrichments(struct mf_arena *a, const struct mf_tag_hits *tags,
                  struct mf_jval **labels)
{
    struct mf_jval *en = mf_jarr(a);
    *labels = mf_jarr(a);
    for (size_t i = 0; tags && i < tags->n; i++) {
        const struct mf_tag *t = tags->hit[i].tag;
        struct mf_jval *o = mf_jobj(a), *d = mf_jobj(a), *att = mf_jarr(a);
        mf_jarr_push(a, *labels, sref(a, t->id));
        mf_jobj_set_ref(a, o, "name", 4, sref(a, "risk_tag"));
        mf_jobj_set_ref(a, o, "value", 5, sref(a, t->id));
        mf_jobj_set_ref(a, o, "type", 4, sref(a, "m365fwd.risk"));
        mf_jobj_set_ref(a, d, "area", 4, sref(a, mf_area_name(t->area)));
        mf_jobj_set_ref(a, d, "severity_id", 11, mf_jint(a, tags->hit[i].severity));
        for (size_t k = 0; k < t->n_attack && t->attack[k]; k++)
            mf_jarr_push(a, att, sref(a, t->attack[k]));
        mf_jobj_set_ref(a, d, "attack", 6, att);
        mf_jobj_set_ref(a, o, "data", 4, d);
        mf_jarr_push(a, en, o);
    }
    return en;
}

static struct mf_jval *
build_metadata(struct bctx *b, const struct mf_tag_hits *tags,
               struct mf_jval *labels)
{
    struct mf_arena *a = b->a;
    struct mf_jval *md = mf_jobj(a), *prod = mf_jobj(a), *profiles = mf_jarr(a);
    struct mf_jval *id = vget(b, "Id");
    struct mf_jval *ct = vstr(b, "CreationTime");
    struct mf_jval *org = vstr(b, "OrganizationId");
    struct mf_jval *wl = take_str(b, "Workload");
    struct mf_jval *op = vstr(b, "Operation");
    struct mf_jval *idv = scalar_str(a, id);
    unsigned rep = b->r->repairs;

    mf_jobj_set_ref(a, md, "version", 7, sref(a, OCSF_VERSION));
    mf_jobj_set_ref(a, prod, "name", 4, sref(a, PRODUCT_NAME));
    mf_jobj_set_ref(a, prod, "vendor_name", 11, sref(a, VENDOR_NAME));
    if (wl) {
        struct mf_jval *feat = mf_jobj(a);
        mf_jobj_set_ref(a, feat, "name", 4, wl);
        mf_jobj_set_ref(a, prod, "feature", 7, feat);
    }
    mf_jobj_set_ref(a, md, "product", 7, prod);
    if (idv) {
        mf_jobj_set_ref(a, md, "uid", 3, idv);
        mark(id);
    }
    if (org) {
        mf_jobj_set_ref(a, md, "tenant_uid", 10, org);
        mark(org);
    }
    if (op) {
        mf_jobj_set_ref(a, md, "event_code", 10, op);
        mark(op);
    }
    if (ct) {
        mf_jobj_set_ref(a, md, "original_time", 13, ct);
        mark(ct);
    }
    if (b->r->content_type && *b->r->content_type)
        mf_jobj_set_ref(a, md, "log_name", 8, sref(a, b->r->content_type));
    if (labels->len > 0)
        mf_jobj_set_ref(a, md, "labels", 6, labels);
    (void)tags;
    if (rep) {
        struct mf_jval *kv = mf_jarr(a);
        for (unsigned i = 0; i < MF_REPAIR_COUNT; i++) {
            if (rep & (1u << i)) {
                struct mf_jval *t = mf_jobj(a);
                mf_jobj_set_ref(a, t, "name", 4, sref(a, "m365fwd.repair"));
                mf_jobj_set_ref(a, t, "value", 5, sref(a, mf_repair_name(1u << i)));
                mf_jarr_push(a, kv, t);
            }
        }
        mf_jobj_set_ref(a, md, "tags", 4, kv);
    }
    mf_jarr_push(a, profiles, sref(a, "cloud"));
    if (b->host_profile)
        mf_jarr_push(a, profiles, sref(a, "host"));
    mf_jobj_set_ref(a, md, "profiles", 8, profiles);
    return md;
}

/* class, activity, type, time and severity members */
static void
add_class_members(struct bctx *b, const struct ocsf_class *cls, int act)
{
    struct mf_arena *a = b->a;
    struct mf_jval *ev = b->ev;
    const char *aname = act == 99 ? "Other" : act == 0 ? "Unknown"
                      : cls->act_name[act] ? cls->act_name[act] : "Other";

    mf_jobj_add_ref(a, ev, "class_uid", 9, mf_jint(a, cls->uid));
    mf_jobj_add_ref(a, ev, "class_name", 10, sref(a, cls->name));
    mf_jobj_add_ref(a, ev, "category_uid", 12, mf_jint(a, cls->category_uid));
    mf_jobj_add_ref(a, ev, "category_name", 13, sref(a, cls->category_name));
    mf_jobj_add_ref(a, ev, "activity_id", 11, mf_jint(a, act));
    mf_jobj_add_ref(a, ev, "activity_name", 13, sref(a, aname));
    mf_jobj_add_ref(a, ev, "type_uid", 8, mf_jint(a, (int64_t)cls->uid * 100 + act));
    mf_jobj_add_ref(a, ev, "type_name", 9,
                    mf_jstr(a, mf_arena_printf(a, "%s: %s", cls->name, aname)));
    mf_jobj_add_ref(a, ev, "time", 4, mf_jint(a, b->r->time_ms));
    mf_jobj_add_ref(a, ev, "severity_id", 11, mf_jint(a, b->severity));
    mf_jobj_add_ref(a, ev, "severity", 8, sref(a, severity_name(b->severity)));
}

/* actor, src_endpoint and user agent, as the class shape asks */
static void
add_actor_members(struct bctx *b, const struct shape *sh)
{
    struct mf_arena *a = b->a;

    if (sh->flags & SH_ACTOR) {
        struct mf_jval *u = build_actor_user(b, true);
        if (u || (sh->flags & SH_NEED_ACTOR)) {
            struct mf_jval *actor = mf_jobj(a);
            if (u)
                mf_jobj_set_ref(a, actor, "user", 4, u);
            else
                mf_jobj_set_ref(a, actor, "app_name", 8,
                                sref(a, b->r->workload ? b->r->workload : "Microsoft 365"));
            mf_jobj_add_ref(a, b->ev, "actor", 5, actor);
        }
    }
    if (sh->flags & SH_SRC) {
        struct mf_jval *src = build_src_endpoint(b);
        if (!src && (sh->flags & SH_NEED_SRC)) {
            src = mf_jobj(a);
            mf_jobj_set_ref(a, src, "name", 4, sref(a, "unknown"));
        }
        if (src)
            mf_jobj_add_ref(a, b->ev, "src_endpoint", 12, src);
    }
    if (sh->flags & SH_HTTP)
        set_user_agent(b);
}

/* cloud (profile "cloud") */
static struct mf_jval *
build_cloud(struct mf_arena *a, const struct mf_record *r)
{
    struct mf_jval *cloud = mf_jobj(a);

    mf_jobj_set_ref(a, cloud, "provider", 8, sref(a, VENDOR_NAME));
    if (r->tenant && *r->tenant) {
        struct mf_jval *acct = mf_jobj(a);
        mf_jobj_set_ref(a, acct, "uid", 3, sref(a, r->tenant));
        mf_jobj_set_ref(a, cloud, "account", 7, acct);
    }
    return cloud;
}

/* everything not consumed */
static struct mf_jval *
build_unmapped(struct mf_arena *a, const struct mf_record *r)
{
    struct mf_jval *um = mf_jobj(a);

    if (mf_jis_obj(r->view)) {
        for (size_t i = 0; i < r->view->len; i++) {
            struct mf_jmem *mm = &r->view->u.mem[i];
            if (!(mm->val->flags & MF_JF_USED))
                mf_jobj_add_ref(a, um, mm->key, mm->klen, mm->val);
        }
    }
    return um;
}

struct mf_jval *
mf_ocsf_build(const struct mf_ocsf_map *m, const struct mf_record *r,
              const struct mf_tag_hits *tags, bool keep_raw)
{
    struct bctx bc = {.m = m, .r = r, .a = r->arena};
    struct bctx *b = &bc;
    struct mf_arena *a = r->arena;
    struct mf_jval *ev = mf_jobj(a);
    struct mf_jval *body = mf_jobj(a);   /* class-specific members */
    struct mf_jval *labels, *enr, *um;
    const struct ocsf_class *cls;
    const struct shape *sh;

    select_class(m, r, &bc.sel);
    cls = bc.sel.cls;
    sh = cls->shape;
    bc.severity = tags && tags->max_severity > 0 ? tags->max_severity : 1;

    /* class-specific part first: it may change activity/severity/profiles */
    bc.ev = body;
    sh->fn(b);

    bc.ev = ev;
    add_class_members(b, cls, bc.sel.activity);
    if (!(sh->flags & SH_FINDING) && !mf_jobj_get(body, "status_id"))
        set_outcome_status(b);
    add_actor_members(b, sh);

    /* class body */
    for (size_t i = 0; i < body->len; i++) {
        struct mf_jmem *mm = &body->u.mem[i];
        mf_jobj_set_ref(a, ev, mm->key, mm->klen, mm->val);
    }
    mf_jobj_add_ref(a, ev, "cloud", 5, build_cloud(a, r));

    enr = build_enrichments(a, tags, &labels);
    mf_jobj_add_ref(a, ev, "metadata", 8, build_metadata(b, tags, labels));
    if (enr->len > 0)
        mf_jobj_add_ref(a, ev, "enrichments", 11, enr);
    um = build_unmapped(a, r);
    if (um->len > 0)
        mf_jobj_add_ref(a, ev, "unmapped", 8, um);
    if (keep_raw && r->src)
        mf_jobj_add_ref(a, ev, "raw_data", 8, mf_jstrn(a, r->src, r->src_len));
    return ev;
}

/* ---- table loading ----------------------------------------------------------- */

struct loader {
    const char *name;
    struct mf_err *err;
    struct mf_ocsf_map *m;
};

__attribute__((format(printf, 3, 4)))
static int
lerr(struct loader *L, const struct mf_jval *at, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    mf_err_set(L->err, "%s:%u: %s", L->name,
             at ? (unsigned)at->line : 0u, msg);
    return -1;
}

/* keys of obj must all be in allowed (NULL-terminated) */
static int
check_keys(struct loader *L, const struct mf_jval *obj, const char *what,
           const char *const *allowed)
{
    for (size_t i = 0; i < obj->len; i++) {
        const struct mf_jmem *mm = &obj->u.mem[i];
        bool ok = false;
        for (const char *const *k = allowed; *k; k++)
            if (strcmp(*k, mm->key) == 0)
                ok = true;
        if (!ok)
            return lerr(L, mm->val, "unknown key '%s' in %s", mm->key, what);
    }
    return 0;
}

static int
get_int(struct loader *L, const struct mf_jval *v, const char *what, int lo,
        int hi, int *out)
{
    int64_t x;
    if (!v || v->type != MF_JNUM || mf_jget_int(v, &x) != 0 || x < lo || x > hi)
        return lerr(L, v, "%s must be an integer %d..%d", what, lo, hi);
    *out = (int)x;
    return 0;
}

static int
key_int(const char *key, int *out)
{
    char *end;
    long x = strtol(key, &end, 10);
    if (!*key || *end)
        return -1;
    *out = (int)x;
    return 0;
}

static const struct ocsf_class *
find_class(const struct mf_ocsf_map *m, int uid)
{
    for (size_t i = 0; i < m->n_classes; i++)
        if (m->classes[i].uid == uid)
            return &m->classes[i];
    return NULL;
}

/* class: and activity: of a rule-like object */
static int
get_class_activity(struct loader *L, const struct mf_jval *o,
                   const struct ocsf_class **cls, int *act)
{
    const struct mf_jval *cv = mf_jobj_get(o, "class");
    const struct mf_jval *av = mf_jobj_get(o, "activity");
    int uid;

    if (!cv)
        return lerr(L, o, "missing 'class'");
    if (get_int(L, cv, "class", 0, 999999, &uid) != 0)
        return -1;
    if (!(*cls = find_class(L->m, uid)))
        return lerr(L, cv, "unknown class %d (not in classes:)", uid);
    if (!av)
        return lerr(L, o, "missing 'activity'");
    if (get_int(L, av, "activity", 0, 99, act) != 0)
        return -1;
    if (*act != 0 && *act != 99 && (*act > MAX_ACTIVITY || !(*cls)->act_name[*act]))
        return lerr(L, av, "class %d (%s) has no activity %d", uid,
                    (*cls)->name, *act);
    return 0;
}

static int
load_classes(struct loader *L, const struct mf_jval *cats, const struct mf_jval *cl)
{
    static const char *const keys[] = {"uid", "name", "activities", NULL};
    struct mf_ocsf_map *m = L->m;

    if (!mf_jis_obj(cats))
        return lerr(L, cats, "'categories' must be a mapping");
    if (!mf_jis_arr(cl) || cl->len == 0)
        return lerr(L, cl, "'classes' must be a non-empty list");
    m->classes = mf_arena_calloc(&m->arena, cl->len * sizeof *m->classes);
    for (size_t i = 0; i < cl->len; i++) {
        const struct mf_jval *c = cl->u.items[i];
        struct ocsf_class *k = &m->classes[m->n_classes];
        const struct mf_jval *acts, *cat;
        char cbuf[16];

        if (!mf_jis_obj(c))
            return lerr(L, c, "a class must be a mapping");
        if (check_keys(L, c, "class", keys) != 0)
            return -1;
        if (get_int(L, mf_jobj_get(c, "uid"), "uid", 1, 999999, &k->uid) != 0)
            return -1;
        if (!(k->shape = shape_of(k->uid)))
            return lerr(L, mf_jobj_get(c, "uid"), "unknown class %d (no builder for it)",
                        k->uid);
        if (find_class(m, k->uid))
            return lerr(L, c, "class %d listed twice", k->uid);
        if (!(k->name = mf_jstrv(mf_jobj_get(c, "name"))) || !*k->name)
            return lerr(L, c, "class %d: 'name' must be a string", k->uid);
        k->category_uid = k->uid / 1000;
        snprintf(cbuf, sizeof cbuf, "%d", k->category_uid);
        cat = mf_jobj_get(cats, cbuf);
        if (!(k->category_name = mf_jstrv(cat)))
            return lerr(L, c, "class %d: category %d not in categories:", k->uid,
                        k->category_uid);
        acts = mf_jobj_get(c, "activities");
        if (!mf_jis_obj(acts) || acts->len == 0)
            return lerr(L, acts ? acts : c, "class %d: 'activities' must be a mapping",
                        k->uid);
        for (size_t j = 0; j < acts->len; j++) {
            const struct mf_jmem *mm = &acts->u.mem[j];
            int id;
            if (key_int(mm->key, &id) != 0 || id < 1 || id > MAX_ACTIVITY)
                return lerr(L, mm->val, "class %d: bad activity id '%s' (1..%d)",
                            k->uid, mm->key, MAX_ACTIVITY);
            if (!mf_jis_str(mm->val))
                return lerr(L, mm->val, "class %d: activity %d needs a name", k->uid, id);
            k->act_name[id] = mm->val->u.s;
        }
        m->n_classes++;
    }
    return 0;
}

static int
load_operations(struct loader *L, const struct mf_jval *ops)
{
    static const char *const keys[] = {"class", "activity", "ops", "entity_type",
                                       "folder", NULL};
    struct mf_ocsf_map *m = L->m;
    size_t n = 0;

    if (!mf_jis_arr(ops))
        return lerr(L, ops, "'operations' must be a list");
    for (size_t i = 0; i < ops->len; i++) {
        const struct mf_jval *l = mf_jobj_get(ops->u.items[i], "ops");
        n += mf_jis_arr(l) ? l->len : 0;
    }
    m->rules = mf_arena_calloc(&m->arena, (n ? n : 1) * sizeof *m->rules);
    for (size_t i = 0; i < ops->len; i++) {
        const struct mf_jval *o = ops->u.items[i], *l, *et, *fo;
        const struct ocsf_class *cls;
        int act;
        bool folder = false;

        if (!mf_jis_obj(o))
            return lerr(L, o, "an operations entry must be a mapping");
        if (check_keys(L, o, "operations entry", keys) != 0 ||
            get_class_activity(L, o, &cls, &act) != 0)
            return -1;
        et = mf_jobj_get(o, "entity_type");
        if (et && (!mf_jis_str(et) || cls->uid != 3004))
            return lerr(L, et, "entity_type is a string and only for class 3004");
        fo = mf_jobj_get(o, "folder");
        if (fo) {
            if (cls->uid != 6006 || (fo->type != MF_JTRUE && fo->type != MF_JFALSE))
                return lerr(L, fo, "folder is true/false and only for class 6006");
            folder = fo->type == MF_JTRUE;
        }
        l = mf_jobj_get(o, "ops");
        if (!mf_jis_arr(l) || l->len == 0)
            return lerr(L, l ? l : o, "'ops' must be a non-empty list");
        for (size_t j = 0; j < l->len; j++) {
            struct ocsf_rule *ru = &m->rules[m->n_rules++];
            if (!mf_jis_str(l->u.items[j]) || l->u.items[j]->len == 0)
                return lerr(L, l->u.items[j], "an operation must be a non-empty string");
            ru->op = l->u.items[j]->u.s;
            ru->cls = cls;
            ru->activity = act;
            ru->entity_type = mf_jstrv(et);
            ru->folder = folder;
            ru->line = l->u.items[j]->line;
        }
    }
    qsort(m->rules, m->n_rules, sizeof *m->rules, rule_cmp);
    for (size_t i = 1; i < m->n_rules; i++) {
        if (strcasecmp(m->rules[i - 1].op, m->rules[i].op) == 0) {
            mf_err_set(L->err, "%s:%u: operation '%s' already mapped at line %u", L->name,
                     m->rules[i].line > m->rules[i - 1].line ? m->rules[i].line
                                                             : m->rules[i - 1].line,
                     m->rules[i].op,
                     m->rules[i].line > m->rules[i - 1].line ? m->rules[i - 1].line
                                                             : m->rules[i].line);
            return -1;
        }
    }
    return 0;
}

static int
load_cmdlets(struct loader *L, const struct mf_jval *c)
{
    static const char *const keys[] = {"class", "verbs", NULL};
    struct mf_ocsf_map *m = L->m;
    const struct mf_jval *cv, *verbs;
    int uid;

    if (!c)
        return 0;
    if (!mf_jis_obj(c))
        return lerr(L, c, "'cmdlets' must be a mapping");
    if (check_keys(L, c, "cmdlets", keys) != 0)
        return -1;
    cv = mf_jobj_get(c, "class");
    if (!cv)
        return lerr(L, c, "cmdlets: missing 'class'");
    if (get_int(L, cv, "class", 0, 999999, &uid) != 0)
        return -1;
    if (!(m->cmdlet_cls = find_class(m, uid)))
        return lerr(L, cv, "unknown class %d (not in classes:)", uid);
    verbs = mf_jobj_get(c, "verbs");
    if (!mf_jis_obj(verbs))
        return lerr(L, verbs ? verbs : c, "cmdlets: 'verbs' must be a mapping");
    m->verbs = mf_arena_calloc(&m->arena, (verbs->len ? verbs->len : 1) * sizeof *m->verbs);
    for (size_t i = 0; i < verbs->len; i++) {
        const struct mf_jmem *mm = &verbs->u.mem[i];
        int act;
        if (get_int(L, mm->val, "activity", 0, 99, &act) != 0)
            return -1;
        if (act != 0 && act != 99 && (act > MAX_ACTIVITY || !m->cmdlet_cls->act_name[act]))
            return lerr(L, mm->val, "class %d (%s) has no activity %d",
                        uid, m->cmdlet_cls->name, act);
        m->verbs[m->n_verbs].verb = mm->key;
        m->verbs[m->n_verbs].activity = act;
        m->n_verbs++;
    }
    return 0;
}

/* record_types: [{record_types: [..], class, activity}] */
static int
load_rtrules(struct loader *L, const struct mf_jval *v)
{
    static const char *const keys[] = {"record_types", "class", "activity", NULL};
    struct mf_ocsf_map *m = L->m;
    size_t n = 0;

    if (!v)
        return 0;
    if (!mf_jis_arr(v))
        return lerr(L, v, "'record_types' must be a list");
    for (size_t i = 0; i < v->len; i++) {
        const struct mf_jval *l = mf_jobj_get(v->u.items[i], "record_types");
        n += mf_jis_arr(l) ? l->len : 0;
    }
    m->rtrules = mf_arena_calloc(&m->arena, (n ? n : 1) * sizeof *m->rtrules);
    for (size_t i = 0; i < v->len; i++) {
        const struct mf_jval *o = v->u.items[i], *l;
        const struct ocsf_class *cls;
        int act;

        if (!mf_jis_obj(o))
            return lerr(L, o, "a record_types entry must be a mapping");
        if (check_keys(L, o, "record_types entry", keys) != 0 ||
            get_class_activity(L, o, &cls, &act) != 0)
            return -1;
        l = mf_jobj_get(o, "record_types");
        if (!mf_jis_arr(l) || l->len == 0)
            return lerr(L, l ? l : o, "'record_types' must be a non-empty list of numbers");
        for (size_t j = 0; j < l->len; j++) {
            struct ocsf_rtrule *ru = &m->rtrules[m->n_rtrules];
            int rt;

            if (get_int(L, l->u.items[j], "a RecordType", 0, 100000, &rt) != 0)
                return -1;
            for (size_t k = 0; k < m->n_rtrules; k++)
                if (m->rtrules[k].record_type == rt)
                    return lerr(L, l->u.items[j], "RecordType %d listed twice", rt);
            ru->record_type = rt;
            ru->cls = cls;
            ru->activity = act;
            m->n_rtrules++;
        }
    }
    return 0;
}

struct mf_ocsf_map *
mf_ocsf_map_load(const char *name, const char *text, size_t len,
                 struct mf_err *err)
{
    static const char *const top_keys[] = {"version", "categories", "classes",
                                           "operations", "record_types", "cmdlets",
                                           "fallback", NULL};
    static const char *const fb_keys[] = {"class", "activity", NULL};
    struct mf_ocsf_map *m = mf_xcalloc(1, sizeof *m);
    struct loader L = {.name = name ? name : "ocsf.yaml", .err = err, .m = m};
    struct mf_err yerr;
    struct mf_jval *root, *fb;
    int ver;

    mf_arena_init(&m->arena, 64 * 1024);
    root = mf_yaml_load(&m->arena, L.name, text, len, &yerr);
    if (!root) {
        mf_err_set(err, "%s", yerr.msg);
        goto fail;
    }
    if (!mf_jis_obj(root)) {
        lerr(&L, root, "the table must be a mapping");
        goto fail;
    }
    if (check_keys(&L, root, "the table", top_keys) != 0)
        goto fail;
    if (get_int(&L, mf_jobj_get(root, "version"), "version", 1, 1, &ver) != 0)
        goto fail;
    if (load_classes(&L, mf_jobj_get(root, "categories"), mf_jobj_get(root, "classes")) != 0 ||
        load_operations(&L, mf_jobj_get(root, "operations")) != 0 ||
        load_rtrules(&L, mf_jobj_get(root, "record_types")) != 0 ||
        load_cmdlets(&L, mf_jobj_get(root, "cmdlets")) != 0)
        goto fail;
    fb = mf_jobj_get(root, "fallback");
    if (!mf_jis_obj(fb)) {
        lerr(&L, fb ? fb : root, "'fallback' must be a mapping {class, activity}");
        goto fail;
    }
    if (check_keys(&L, fb, "fallback", fb_keys) != 0 ||
        get_class_activity(&L, fb, &m->fallback_cls, &m->fallback_activity) != 0)
        goto fail;
    return m;
fail:
    mf_ocsf_map_destroy(m);
    return NULL;
}

struct mf_ocsf_map *
mf_ocsf_map_load_builtin(struct mf_err *err)
{
    return mf_ocsf_map_load("ocsf.yaml (built-in)", mf_builtin_ocsf,
                            mf_builtin_ocsf_len, err);
}

void
mf_ocsf_map_destroy(struct mf_ocsf_map *m)
{
    if (!m)
        return;
    mf_arena_fini(&m->arena);
    free(m);
}
