/* ecs.c - audit record -> Elastic Common Schema event (normalization.md §1a).
 *
 * What goes where is data (normalizers/ecs.yaml): RecordType names, outcome
 * and severity words, per-RecordType and per-Operation event.kind/category/
 * type/action, and field copies from the record view to ECS fields. This
 * file only knows the ECS fields it may write (ecs_targets below, which is
 * also the output order), the ECS allowed values of event.category and
 * event.type, and the few computations that are not copies: client address
 * facts from the record, the DLP rule roll-up, the alert category, e-mail
 * splitting, the risk fields and the o365.audit passthrough.
 *
 * Everything is built in the record's arena; input nodes are borrowed.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "builtin.h"
#include "clock.h"
#include "mem.h"
#include "normalize.h"
#include "yaml_tree.h"

/* ---- the ECS fields this builder writes ----------------------------- */

enum ecs_kind {
    K_STR,    /* one string; a later value replaces it */
    K_LIST,   /* strings, deduplicated; written as a scalar when only one */
    K_ARR,    /* strings, deduplicated; always written as an array */
    K_NODE,   /* any value, set by code only */
};

/* Output order. Targets of kind STR/LIST/ARR may be named in ecs.yaml. */
#define ECS_TARGETS(X) \
    X(T_TIMESTAMP, "@timestamp", K_NODE) \
    X(T_ECS_VERSION, "ecs.version", K_STR) \
    X(T_DS_TYPE, "data_stream.type", K_STR) \
    X(T_DS_DATASET, "data_stream.dataset", K_STR) \
    X(T_DS_NAMESPACE, "data_stream.namespace", K_STR) \
    X(T_EV_KIND, "event.kind", K_STR) \
    X(T_EV_CATEGORY, "event.category", K_ARR) \
    X(T_EV_TYPE, "event.type", K_ARR) \
    X(T_EV_ACTION, "event.action", K_STR) \
    X(T_EV_CODE, "event.code", K_STR) \
    X(T_EV_ID, "event.id", K_STR) \
    X(T_EV_PROVIDER, "event.provider", K_STR) \
    X(T_EV_MODULE, "event.module", K_STR) \
    X(T_EV_DATASET, "event.dataset", K_STR) \
    X(T_EV_OUTCOME, "event.outcome", K_STR) \
    X(T_EV_SEVERITY, "event.severity", K_NODE) \
    X(T_EV_RISK, "event.risk_score", K_NODE) \
    X(T_EV_ORIGINAL, "event.original", K_NODE) \
    X(T_MESSAGE, "message", K_STR) \
    X(T_USER_ID, "user.id", K_STR) \
    X(T_USER_NAME, "user.name", K_STR) \
    X(T_USER_EMAIL, "user.email", K_STR) \
    X(T_USER_DOMAIN, "user.domain", K_STR) \
    X(T_USER_FULL_NAME, "user.full_name", K_STR) \
    X(T_UT_ID, "user.target.id", K_STR) \
    X(T_UT_NAME, "user.target.name", K_STR) \
    X(T_UT_EMAIL, "user.target.email", K_STR) \
    X(T_UT_DOMAIN, "user.target.domain", K_STR) \
    X(T_CLIENT_ADDRESS, "client.address", K_STR) \
    X(T_CLIENT_IP, "client.ip", K_STR) \
    X(T_CLIENT_PORT, "client.port", K_NODE) \
    X(T_SOURCE_IP, "source.ip", K_STR) \
    X(T_SOURCE_PORT, "source.port", K_NODE) \
    X(T_SU_ID, "source.user.id", K_STR) \
    X(T_SU_NAME, "source.user.name", K_STR) \
    X(T_SU_EMAIL, "source.user.email", K_STR) \
    X(T_SU_DOMAIN, "source.user.domain", K_STR) \
    X(T_SERVER_ADDRESS, "server.address", K_STR) \
    X(T_SERVER_DOMAIN, "server.domain", K_STR) \
    X(T_SERVER_IP, "server.ip", K_STR) \
    X(T_DEST_IP, "destination.ip", K_STR) \
    X(T_DU_ID, "destination.user.id", K_STR) \
    X(T_DU_NAME, "destination.user.name", K_STR) \
    X(T_DU_EMAIL, "destination.user.email", K_LIST) \
    X(T_DU_DOMAIN, "destination.user.domain", K_STR) \
    X(T_NETWORK_TYPE, "network.type", K_STR) \
    X(T_ORG_ID, "organization.id", K_STR) \
    X(T_ORG_NAME, "organization.name", K_STR) \
    X(T_HOST_ID, "host.id", K_STR) \
    X(T_HOST_NAME, "host.name", K_STR) \
    X(T_UA_ORIGINAL, "user_agent.original", K_STR) \
    X(T_PROCESS_NAME, "process.name", K_STR) \
    X(T_URL_ORIGINAL, "url.original", K_LIST) \
    X(T_FILE_DIRECTORY, "file.directory", K_STR) \
    X(T_FILE_NAME, "file.name", K_STR) \
    X(T_FILE_PATH, "file.path", K_STR) \
    X(T_FILE_EXTENSION, "file.extension", K_STR) \
    X(T_FILE_SIZE, "file.size", K_STR) \
    X(T_FILE_SHA256, "file.hash.sha256", K_LIST) \
    X(T_FILE_INODE, "file.inode", K_STR) \
    X(T_FILE_OWNER, "file.owner", K_STR) \
    X(T_FILE_MTIME, "file.mtime", K_STR) \
    X(T_GROUP_NAME, "group.name", K_STR) \
    X(T_EMAIL_DIRECTION, "email.direction", K_STR) \
    X(T_EMAIL_FROM, "email.from.address", K_LIST) \
    X(T_EMAIL_SENDER, "email.sender.address", K_LIST) \
    X(T_EMAIL_TO, "email.to.address", K_LIST) \
    X(T_EMAIL_SUBJECT, "email.subject", K_LIST) \
    X(T_EMAIL_MESSAGE_ID, "email.message_id", K_LIST) \
    X(T_EMAIL_LOCAL_ID, "email.local_id", K_LIST) \
    X(T_EMAIL_ATTACHMENTS, "email.attachments", K_NODE) \
    X(T_RULE_ID, "rule.id", K_LIST) \
    X(T_RULE_NAME, "rule.name", K_LIST) \
    X(T_RULE_RULESET, "rule.ruleset", K_LIST) \
    X(T_RULE_CATEGORY, "rule.category", K_STR) \
    X(T_RULE_DESCRIPTION, "rule.description", K_STR) \
    X(T_RULE_REFERENCE, "rule.reference", K_LIST) \
    X(T_RELATED_IP, "related.ip", K_ARR) \
    X(T_RELATED_USER, "related.user", K_ARR) \
    X(T_TAGS, "tags", K_ARR) \
    X(T_THREAT_FRAMEWORK, "threat.framework", K_STR) \
    X(T_THREAT_TECHNIQUE, "threat.technique.id", K_ARR) \
    X(T_O365_AUDIT, "o365.audit", K_NODE) \
    X(T_RISK_AREAS, "m365fwd.risk.areas", K_ARR) \
    X(T_RISK_SEVERITY, "m365fwd.risk.severity", K_NODE) \
    X(T_REPAIRS, "m365fwd.repairs", K_ARR)

enum ecs_tid {
#define ECS_ENUM(e, n, k) e,
    ECS_TARGETS(ECS_ENUM)
#undef ECS_ENUM
    T_COUNT
};

static const struct {
    const char *name;
    enum ecs_kind kind;
} ecs_targets[T_COUNT] = {
#define ECS_ROW(e, n, k) { n, k },
    ECS_TARGETS(ECS_ROW)
#undef ECS_ROW
};

/* ECS 9.x allowed values (ecs_flat.yml allowed_values). */
static const char *const ecs_categories[] = {
    "api", "authentication", "configuration", "database", "driver", "email",
    "file", "host", "iam", "intrusion_detection", "library", "malware",
    "network", "package", "process", "registry", "session", "threat",
    "vulnerability", "web", NULL
};
static const char *const ecs_types[] = {
    "access", "admin", "allowed", "change", "connection", "creation",
    "deletion", "denied", "end", "error", "group", "indicator", "info",
    "installation", "protocol", "start", "user", NULL
};
static const char *const ecs_kinds[] = {
    "alert", "asset", "enrichment", "event", "metric", "state",
    "pipeline_error", "signal", NULL
};
static const char *const ecs_outcomes[] = { "success", "failure", "unknown", NULL };

/* user-like prefixes whose .id is split into email/name/domain */
static const struct {
    enum ecs_tid id, name, email, domain;
} ecs_user_sets[] = {
    { T_USER_ID, T_USER_NAME, T_USER_EMAIL, T_USER_DOMAIN },
    { T_UT_ID, T_UT_NAME, T_UT_EMAIL, T_UT_DOMAIN },
    { T_SU_ID, T_SU_NAME, T_SU_EMAIL, T_SU_DOMAIN },
    { T_DU_ID, T_DU_NAME, T_DU_EMAIL, T_DU_DOMAIN },
};

/* ---- loaded tables --------------------------------------------------- */

enum ecs_special { SP_NONE = 0, SP_DLP, SP_ALERT };

/* as: of a field rule */
enum ecs_conv {
    CONV_NONE = 0,
    CONV_DATE,          /* timestamp -> ISO 8601 UTC */
    CONV_NUMBER,        /* number or numeric text -> number */
    CONV_ATTACHMENTS,   /* "a.png (8192b); b.doc (10b)" or [{FileName, ..}]
                           -> [{file: {name, extension, size, hash}}] */
};

/* o365.audit value renames: Member -> {raw value text -> name} */
struct ecs_valmap {
    const char *member;
    struct ecs_kv *kv;
    size_t n;
};

struct ecs_words {
    const char **v;
    size_t n;
};

struct ecs_ints {
    int *v;
    size_t n;
};

struct ecs_kv {
    const char *key;
    const char *val;
    int num;
};

struct ecs_rtrule {
    int rt;
    const char *kind;
    struct ecs_words cat, type;
    bool outcome_record;
    enum ecs_special special;
};

struct ecs_oprule {
    struct ecs_words ops;
    struct ecs_ints rts;
    const char *action;
    struct ecs_words cat, type;
};

struct ecs_fieldrule {
    const char *from;
    bool fanout;
    enum ecs_tid to;
    struct ecs_ints rts;
    struct ecs_words ops;
    const char *when_path;
    struct ecs_words when_vals;
    const char *differs_from;   /* only when != this record path's value */
    bool if_absent;
    bool require_email;
    bool require_ip;
    enum ecs_conv conv;
};

struct mf_ecs_map {
    struct mf_arena arena;
    struct ecs_kv *consts;            /* num = target id */
    size_t n_consts;
    struct ecs_kv *outcome;
    size_t n_outcome;
    struct ecs_kv *severity;          /* num = severity */
    size_t n_severity;
    struct ecs_rtrule *rtrules;
    size_t n_rtrules;
    struct ecs_kv *alert_cat;
    size_t n_alert_cat;
    const char *alert_cat_default;
    const char *dlp_block;
    struct ecs_words dlp_undo, dlp_info;
    struct ecs_oprule *oprules;
    size_t n_oprules;
    struct ecs_fieldrule *fields;
    size_t n_fields;
    const char **rt_names;            /* index = RecordType */
    size_t n_rt_names;
    const char *outcome_missing;      /* no / unknown ResultStatus */
    struct ecs_words audit_maps;      /* Name/Value lists made objects */
    struct ecs_valmap *audit_values;
    size_t n_audit_values;
    struct ecs_kv *audit_objects;     /* member holding an object -> name */
    size_t n_audit_objects;
};

/* ---- loading ---------------------------------------------------------- */

struct ecs_load {
    struct mf_ecs_map *m;
    const char *name;
    struct mf_err *err;
};

static int
lfail(struct ecs_load *l, const struct mf_jval *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
lfail(struct ecs_load *l, const struct mf_jval *at, const char *fmt, ...)
{
    char msg[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (l->err)
        mf_err_set(l->err, "%s:%u: %s", l->name,
                 at ? (unsigned)at->line : 0u, msg);
    return -1;
}

static bool
in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

static int
target_find(const char *name)
{
    for (int i = 0; i < T_COUNT; i++)
        if (strcmp(ecs_targets[i].name, name) == 0)
            return i;
    return -1;
}

/* Check that obj has only the listed keys. */
static int
check_keys(struct ecs_load *l, const struct mf_jval *obj, const char *what,
           const char *const *keys)
{
    for (size_t i = 0; i < obj->len; i++) {
        const struct mf_jmem *mm = &obj->u.mem[i];
        if (!in_list(keys, mm->key))
            return lfail(l, mm->val, "unknown key '%s' in %s", mm->key, what);
    }
    return 0;
}

static int
get_str(struct ecs_load *l, const struct mf_jval *v, const char *what,
        const char **out)
{
    if (mf_jis_str(v) && v->len > 0) {
        *out = v->u.s;
        return 0;
    }
    /* plain YAML scalars such as 9.4.0 or true come as strings/numbers */
    if (v && (v->type == MF_JNUM || v->type == MF_JTRUE || v->type == MF_JFALSE)) {
        *out = mf_jscalar_text(v, NULL);
        return 0;
    }
    return lfail(l, v, "%s must be a non-empty string", what);
}

/* A string or a list of strings; allowed == NULL accepts any word. */
static int
get_words(struct ecs_load *l, const struct mf_jval *v, const char *what,
          const char *const *allowed, struct ecs_words *out)
{
    size_t n = mf_jis_arr(v) ? v->len : 1;

    out->v = mf_arena_alloc(&l->m->arena, (n ? n : 1) * sizeof *out->v);
    out->n = 0;
    for (size_t i = 0; i < n; i++) {
        const struct mf_jval *it = mf_jis_arr(v) ? v->u.items[i] : v;
        const char *s = NULL;
        if (get_str(l, it, what, &s) < 0)
            return -1;
        if (allowed && !in_list(allowed, s))
            return lfail(l, it, "'%s' is not an ECS %s value", s, what);
        out->v[out->n++] = s;
    }
    if (out->n == 0)
        return lfail(l, v, "%s must not be empty", what);
    return 0;
}

static int
get_int(struct ecs_load *l, const struct mf_jval *v, const char *what,
        int lo, int hi, int *out)
{
    int64_t x;

    if (!v || mf_jget_int(v, &x) < 0 || x < lo || x > hi)
        return lfail(l, v, "%s must be an integer in %d..%d", what, lo, hi);
    *out = (int)x;
    return 0;
}

/* RecordType key of a mapping ("15"). */
static int
key_int(struct ecs_load *l, const struct mf_jmem *mm, int *out)
{
    char *end;
    long x = strtol(mm->key, &end, 10);

    if (mm->klen == 0 || *end != '\0' || x < -1 || x > 100000)
        return lfail(l, mm->val, "'%s' is not a RecordType number", mm->key);
    *out = (int)x;
    return 0;
}

static int
get_ints(struct ecs_load *l, const struct mf_jval *v, const char *what,
         struct ecs_ints *out)
{
    if (!mf_jis_arr(v) || v->len == 0)
        return lfail(l, v, "%s must be a non-empty list of numbers", what);
    out->v = mf_arena_alloc(&l->m->arena, v->len * sizeof *out->v);
    out->n = v->len;
    for (size_t i = 0; i < v->len; i++)
        if (get_int(l, v->u.items[i], what, -1, 100000, &out->v[i]) < 0)
            return -1;
    return 0;
}

static int
load_constants(struct ecs_load *l, const struct mf_jval *v)
{
    struct mf_ecs_map *m = l->m;

    if (!mf_jis_obj(v))
        return lfail(l, v, "constants must be a mapping");
    m->consts = mf_arena_calloc(&m->arena, (v->len + 1) * sizeof *m->consts);
    for (size_t i = 0; i < v->len; i++) {
        const struct mf_jmem *mm = &v->u.mem[i];
        int t = target_find(mm->key);
        if (t < 0 || ecs_targets[t].kind != K_STR)
            return lfail(l, mm->val, "unknown ECS target field '%s'", mm->key);
        struct ecs_kv *kv = &m->consts[m->n_consts++];
        kv->key = mm->key;
        kv->num = t;
        if (get_str(l, mm->val, mm->key, &kv->val) < 0)
            return -1;
    }
    return 0;
}

/* mapping word -> word (allowed values) or word -> int */
static int
load_kv(struct ecs_load *l, const struct mf_jval *v, const char *what,
        const char *const *allowed, bool numeric, struct ecs_kv **out,
        size_t *n)
{
    if (!mf_jis_obj(v))
        return lfail(l, v, "%s must be a mapping", what);
    *out = mf_arena_calloc(&l->m->arena, (v->len + 1) * sizeof **out);
    *n = 0;
    for (size_t i = 0; i < v->len; i++) {
        const struct mf_jmem *mm = &v->u.mem[i];
        struct ecs_kv *kv = &(*out)[(*n)++];
        kv->key = mm->key;
        if (numeric) {
            if (get_int(l, mm->val, what, 0, 1000, &kv->num) < 0)
                return -1;
        } else {
            if (get_str(l, mm->val, what, &kv->val) < 0)
                return -1;
            if (allowed && !in_list(allowed, kv->val))
                return lfail(l, mm->val, "'%s' is not an allowed %s value",
                             kv->val, what);
        }
    }
    return 0;
}

static int
load_rtrules(struct ecs_load *l, const struct mf_jval *v)
{
    static const char *const keys[] = { "kind", "category", "type", "outcome",
                                        "special", NULL };
    struct mf_ecs_map *m = l->m;

    if (!mf_jis_obj(v))
        return lfail(l, v, "record_type_rules must be a mapping");
    m->rtrules = mf_arena_calloc(&m->arena, (v->len + 1) * sizeof *m->rtrules);
    for (size_t i = 0; i < v->len; i++) {
        const struct mf_jmem *mm = &v->u.mem[i];
        struct ecs_rtrule *r = &m->rtrules[m->n_rtrules++];
        const struct mf_jval *x;
        const char *s = NULL;

        if (key_int(l, mm, &r->rt) < 0)
            return -1;
        if (!mf_jis_obj(mm->val))
            return lfail(l, mm->val, "record_type_rules.%s must be a mapping", mm->key);
        if (check_keys(l, mm->val, "record_type_rules", keys) < 0)
            return -1;
        if ((x = mf_jobj_get(mm->val, "kind"))) {
            if (get_str(l, x, "event.kind", &r->kind) < 0)
                return -1;
            if (!in_list(ecs_kinds, r->kind))
                return lfail(l, x, "'%s' is not an ECS event.kind value", r->kind);
        }
        if ((x = mf_jobj_get(mm->val, "category"))
            && get_words(l, x, "event.category", ecs_categories, &r->cat) < 0)
            return -1;
        if ((x = mf_jobj_get(mm->val, "type"))
            && get_words(l, x, "event.type", ecs_types, &r->type) < 0)
            return -1;
        if ((x = mf_jobj_get(mm->val, "outcome"))) {
            if (get_str(l, x, "outcome", &s) < 0)
                return -1;
            if (strcmp(s, "record") != 0)
                return lfail(l, x, "outcome must be 'record'");
            r->outcome_record = true;
        }
        if ((x = mf_jobj_get(mm->val, "special"))) {
            if (get_str(l, x, "special", &s) < 0)
                return -1;
            if (strcmp(s, "dlp") == 0)
                r->special = SP_DLP;
            else if (strcmp(s, "alert") == 0)
                r->special = SP_ALERT;
            else
                return lfail(l, x, "special must be 'dlp' or 'alert'");
        }
    }
    return 0;
}

static int
load_alert_category(struct ecs_load *l, const struct mf_jval *v)
{
    static const char *const keys[] = { "default", "map", NULL };
    struct mf_ecs_map *m = l->m;
    const struct mf_jval *x;

    if (!mf_jis_obj(v))
        return lfail(l, v, "alert_category must be a mapping");
    if (check_keys(l, v, "alert_category", keys) < 0)
        return -1;
    if ((x = mf_jobj_get(v, "default"))) {
        if (get_str(l, x, "event.category", &m->alert_cat_default) < 0)
            return -1;
        if (!in_list(ecs_categories, m->alert_cat_default))
            return lfail(l, x, "'%s' is not an ECS event.category value",
                         m->alert_cat_default);
    }
    if ((x = mf_jobj_get(v, "map")))
        return load_kv(l, x, "event.category", ecs_categories, false,
                       &m->alert_cat, &m->n_alert_cat);
    return 0;
}

static int
load_dlp(struct ecs_load *l, const struct mf_jval *v)
{
    static const char *const keys[] = { "block_action", "undo_operations",
                                        "info_operations", NULL };
    struct mf_ecs_map *m = l->m;
    const struct mf_jval *x;

    if (!mf_jis_obj(v))
        return lfail(l, v, "dlp must be a mapping");
    if (check_keys(l, v, "dlp", keys) < 0)
        return -1;
    if ((x = mf_jobj_get(v, "block_action"))
        && get_str(l, x, "block_action", &m->dlp_block) < 0)
        return -1;
    if ((x = mf_jobj_get(v, "undo_operations"))
        && get_words(l, x, "undo_operations", NULL, &m->dlp_undo) < 0)
        return -1;
    if ((x = mf_jobj_get(v, "info_operations"))
        && get_words(l, x, "info_operations", NULL, &m->dlp_info) < 0)
        return -1;
    return 0;
}

static int
load_oprules(struct ecs_load *l, const struct mf_jval *v)
{
    static const char *const keys[] = { "ops", "record_types", "action",
                                        "category", "type", NULL };
    struct mf_ecs_map *m = l->m;

    if (!mf_jis_arr(v))
        return lfail(l, v, "operations must be a list");
    m->oprules = mf_arena_calloc(&m->arena, (v->len + 1) * sizeof *m->oprules);
    for (size_t i = 0; i < v->len; i++) {
        const struct mf_jval *it = v->u.items[i];
        struct ecs_oprule *r = &m->oprules[m->n_oprules++];
        const struct mf_jval *x;

        if (!mf_jis_obj(it))
            return lfail(l, it, "an operations entry must be a mapping");
        if (check_keys(l, it, "operations entry", keys) < 0)
            return -1;
        if (get_words(l, mf_jobj_get(it, "ops"), "ops", NULL, &r->ops) < 0)
            return -1;
        if ((x = mf_jobj_get(it, "record_types"))
            && get_ints(l, x, "record_types", &r->rts) < 0)
            return -1;
        if ((x = mf_jobj_get(it, "action"))
            && get_str(l, x, "action", &r->action) < 0)
            return -1;
        if ((x = mf_jobj_get(it, "category"))
            && get_words(l, x, "event.category", ecs_categories, &r->cat) < 0)
            return -1;
        if ((x = mf_jobj_get(it, "type"))
            && get_words(l, x, "event.type", ecs_types, &r->type) < 0)
            return -1;
        if (!r->action && !r->cat.n && !r->type.n)
            return lfail(l, it, "operations entry sets nothing "
                         "(action, category or type)");
    }
    return 0;
}

/* "A.B[].C": non-empty segments, "[]" only at a segment's end. */
static int
check_path(struct ecs_load *l, const struct mf_jval *at, const char *p,
           bool *fanout)
{
    size_t seg = 0;

    *fanout = false;
    for (const char *c = p;; c++) {
        if (*c == '.' || *c == '\0') {
            if (seg == 0)
                return lfail(l, at, "bad path '%s' (empty segment)", p);
            seg = 0;
            if (*c == '\0')
                return 0;
            continue;
        }
        if (*c == '[') {
            if (c[1] != ']' || (c[2] != '.' && c[2] != '\0'))
                return lfail(l, at, "bad path '%s' ('[]' must end a segment)", p);
            *fanout = true;
            c++;
        }
        seg++;
    }
}

static int
load_fields(struct ecs_load *l, const struct mf_jval *v)
{
    static const char *const keys[] = { "from", "to", "record_types",
                                        "operations", "when", "if_absent",
                                        "differs_from", "require", "as", NULL };
    struct mf_ecs_map *m = l->m;

    if (!mf_jis_arr(v))
        return lfail(l, v, "fields must be a list");
    m->fields = mf_arena_calloc(&m->arena, (v->len + 1) * sizeof *m->fields);
    for (size_t i = 0; i < v->len; i++) {
        const struct mf_jval *it = v->u.items[i];
        struct ecs_fieldrule *f = &m->fields[m->n_fields++];
        const struct mf_jval *x;
        const char *s;
        bool fan = false;
        int t;

        if (!mf_jis_obj(it))
            return lfail(l, it, "a fields entry must be a mapping");
        if (check_keys(l, it, "fields entry", keys) < 0)
            return -1;
        x = mf_jobj_get(it, "from");
        if (get_str(l, x, "from", &f->from) < 0
            || check_path(l, x, f->from, &f->fanout) < 0)
            return -1;
        x = mf_jobj_get(it, "to");
        if (get_str(l, x, "to", &s) < 0)
            return -1;
        t = target_find(s);
        if (t < 0 || (ecs_targets[t].kind == K_NODE && t != T_EMAIL_ATTACHMENTS))
            return lfail(l, x, "unknown ECS target field '%s'", s);
        f->to = (enum ecs_tid)t;
        if ((x = mf_jobj_get(it, "record_types"))
            && get_ints(l, x, "record_types", &f->rts) < 0)
            return -1;
        if ((x = mf_jobj_get(it, "operations"))
            && get_words(l, x, "operations", NULL, &f->ops) < 0)
            return -1;
        if ((x = mf_jobj_get(it, "when"))) {
            if (!mf_jis_obj(x) || x->len != 1)
                return lfail(l, x, "when must be a mapping with one path");
            f->when_path = x->u.mem[0].key;
            if (get_words(l, x->u.mem[0].val, "when", NULL, &f->when_vals) < 0)
                return -1;
        }
        if ((x = mf_jobj_get(it, "if_absent"))) {
            if (x->type != MF_JTRUE && x->type != MF_JFALSE)
                return lfail(l, x, "if_absent must be true or false");
            f->if_absent = x->type == MF_JTRUE;
        }
        if ((x = mf_jobj_get(it, "differs_from"))
            && (get_str(l, x, "differs_from", &f->differs_from) < 0
                || check_path(l, x, f->differs_from, &fan) < 0))
            return -1;
        if (fan)
            return lfail(l, x, "differs_from must not fan out ('[]')");
        if ((x = mf_jobj_get(it, "require"))) {
            if (get_str(l, x, "require", &s) < 0)
                return -1;
            if (strcmp(s, "email") == 0)
                f->require_email = true;
            else if (strcmp(s, "ip") == 0)
                f->require_ip = true;
            else
                return lfail(l, x, "require must be 'email' or 'ip'");
        }
        if ((x = mf_jobj_get(it, "as"))) {
            if (get_str(l, x, "as", &s) < 0)
                return -1;
            if (strcmp(s, "date") == 0)
                f->conv = CONV_DATE;
            else if (strcmp(s, "number") == 0)
                f->conv = CONV_NUMBER;
            else if (strcmp(s, "attachments") == 0)
                f->conv = CONV_ATTACHMENTS;
            else
                return lfail(l, x, "as must be 'date', 'number' or 'attachments'");
        }
        /* email.attachments is built, never copied; it is built only there */
        if ((f->conv == CONV_ATTACHMENTS) != (f->to == T_EMAIL_ATTACHMENTS))
            return lfail(l, it, "'as: attachments' goes with 'to: email.attachments'");
    }
    return 0;
}

/* audit: {maps: [..], values: {Member: {raw: name}}, objects: {Member: name}} */
static int
load_audit(struct ecs_load *l, const struct mf_jval *v)
{
    static const char *const keys[] = { "maps", "values", "objects", NULL };
    struct mf_ecs_map *m = l->m;
    const struct mf_jval *x;

    if (!mf_jis_obj(v))
        return lfail(l, v, "audit must be a mapping");
    if (check_keys(l, v, "audit", keys) < 0)
        return -1;
    if ((x = mf_jobj_get(v, "maps"))
        && get_words(l, x, "audit.maps", NULL, &m->audit_maps) < 0)
        return -1;
    if ((x = mf_jobj_get(v, "values"))) {
        if (!mf_jis_obj(x))
            return lfail(l, x, "audit.values must be a mapping");
        m->audit_values = mf_arena_calloc(&m->arena, (x->len + 1) * sizeof *m->audit_values);
        for (size_t i = 0; i < x->len; i++) {
            struct ecs_valmap *vm = &m->audit_values[m->n_audit_values++];

            vm->member = x->u.mem[i].key;
            if (load_kv(l, x->u.mem[i].val, "audit.values", NULL, false, &vm->kv,
                        &vm->n) < 0)
                return -1;
        }
    }
    if ((x = mf_jobj_get(v, "objects"))
        && load_kv(l, x, "audit.objects", NULL, false, &m->audit_objects,
                   &m->n_audit_objects) < 0)
        return -1;
    return 0;
}

static int
load_rt_names(struct ecs_load *l, const struct mf_jval *v)
{
    struct mf_ecs_map *m = l->m;
    int max = 0;

    if (!mf_jis_obj(v))
        return lfail(l, v, "record_types must be a mapping");
    for (size_t i = 0; i < v->len; i++) {
        int rt;
        if (key_int(l, &v->u.mem[i], &rt) < 0)
            return -1;
        if (rt < 0)
            return lfail(l, v->u.mem[i].val, "RecordType must not be negative");
        if (rt > max)
            max = rt;
    }
    m->n_rt_names = (size_t)max + 1;
    m->rt_names = mf_arena_calloc(&m->arena, m->n_rt_names * sizeof *m->rt_names);
    for (size_t i = 0; i < v->len; i++) {
        const struct mf_jmem *mm = &v->u.mem[i];
        int rt = atoi(mm->key);
        if (m->rt_names[rt])
            return lfail(l, mm->val, "RecordType %d named twice", rt);
        if (get_str(l, mm->val, "a RecordType name", &m->rt_names[rt]) < 0)
            return -1;
    }
    return 0;
}

static int
load_root(struct ecs_load *l, const struct mf_jval *root)
{
    static const char *const keys[] = { "version", "constants", "outcome",
                                        "outcome_missing", "severity",
                                        "record_type_rules", "alert_category",
                                        "dlp", "operations", "fields",
                                        "record_types", "audit", NULL };
    struct mf_ecs_map *m = l->m;
    const struct mf_jval *x;
    int version;

    if (!mf_jis_obj(root))
        return lfail(l, root, "the table must be a mapping");
    if (check_keys(l, root, "the table", keys) < 0)
        return -1;
    if (get_int(l, mf_jobj_get(root, "version"), "version", 1, 1, &version) < 0)
        return -1;
    if ((x = mf_jobj_get(root, "constants")) && load_constants(l, x) < 0)
        return -1;
    if ((x = mf_jobj_get(root, "outcome"))
        && load_kv(l, x, "event.outcome", ecs_outcomes, false, &m->outcome,
                   &m->n_outcome) < 0)
        return -1;
    if ((x = mf_jobj_get(root, "outcome_missing"))) {
        if (get_str(l, x, "outcome_missing", &m->outcome_missing) < 0)
            return -1;
        if (!in_list(ecs_outcomes, m->outcome_missing))
            return lfail(l, x, "'%s' is not an ECS event.outcome value",
                         m->outcome_missing);
    }
    if ((x = mf_jobj_get(root, "severity"))
        && load_kv(l, x, "severity", NULL, true, &m->severity,
                   &m->n_severity) < 0)
        return -1;
    if ((x = mf_jobj_get(root, "record_type_rules")) && load_rtrules(l, x) < 0)
        return -1;
    if ((x = mf_jobj_get(root, "alert_category")) && load_alert_category(l, x) < 0)
        return -1;
    if ((x = mf_jobj_get(root, "dlp")) && load_dlp(l, x) < 0)
        return -1;
    if ((x = mf_jobj_get(root, "operations")) && load_oprules(l, x) < 0)
        return -1;
    if ((x = mf_jobj_get(root, "fields")) && load_fields(l, x) < 0)
        return -1;
    if ((x = mf_jobj_get(root, "record_types")) && load_rt_names(l, x) < 0)
        return -1;
    if ((x = mf_jobj_get(root, "audit")) && load_audit(l, x) < 0)
        return -1;
    return 0;
}

struct mf_ecs_map *
mf_ecs_map_load(const char *name, const char *text, size_t len,
                struct mf_err *err)
{
    struct mf_ecs_map *m = mf_xcalloc(1, sizeof *m);
    struct ecs_load l = { m, name ? name : "ecs.yaml", err };
    struct mf_err yerr;
    struct mf_jval *root;

    mf_arena_init(&m->arena, 64 * 1024);
    root = mf_yaml_load(&m->arena, l.name, text ? text : "", text ? len : 0, &yerr);
    if (!root) {
        if (err)
            mf_err_set(err, "%s", yerr.msg);
        mf_ecs_map_destroy(m);
        return NULL;
    }
    if (load_root(&l, root) < 0) {
        mf_ecs_map_destroy(m);
        return NULL;
    }
    return m;
}

struct mf_ecs_map *
mf_ecs_map_load_builtin(struct mf_err *err)
{
    return mf_ecs_map_load("ecs.yaml (built-in)", mf_builtin_ecs,
                           mf_builtin_ecs_len, err);
}

void
mf_ecs_map_destroy(struct mf_ecs_map *m)
{
    if (!m)
        return;
    mf_arena_fini(&m->arena);
    free(m);
}

/* ---- building ----------------------------------------------------------- */

/* Cap on the values of one list field (deduplication is quadratic). */
#define ECS_MAX_LIST 1024

struct ecs_slot {
    struct mf_jval *node;     /* K_STR / K_NODE */
    struct mf_jval **v;       /* K_LIST / K_ARR */
    size_t n, cap;
};

struct ecs_ctx {
    const struct mf_ecs_map *m;
    const struct mf_record *r;
    struct mf_arena *a;
    struct ecs_slot slot[T_COUNT];
};

static bool
tolower_ascii_eq(char a, char b)
{
    if (a >= 'A' && a <= 'Z')
        a = (char)(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z')
        b = (char)(b - 'A' + 'a');
    return a == b;
}

/* ASCII case-insensitive glob, '*' matches any run. */
static bool
glob_match(const char *p, const char *s)
{
    const char *star = NULL, *resume = NULL;

    while (*s) {
        if (*p == '*') {
            star = ++p;
            resume = s;
        } else if (*p && tolower_ascii_eq(*p, *s)) {
            p++;
            s++;
        } else if (star) {
            p = star;
            s = ++resume;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

static bool
ints_has(const struct ecs_ints *x, int v)
{
    for (size_t i = 0; i < x->n; i++)
        if (x->v[i] == v)
            return true;
    return false;
}

static bool
words_match(const struct ecs_words *w, const char *s)
{
    for (size_t i = 0; i < w->n; i++)
        if (glob_match(w->v[i], s))
            return true;
    return false;
}

static const struct ecs_kv *
kv_find(const struct ecs_kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(kv[i].key, key) == 0)
            return &kv[i];
    return NULL;
}

static bool
nullish_text(const char *s)
{
    return !s || !*s || strcmp(s, "null") == 0 || strcmp(s, "<null>") == 0
           || strcmp(s, "NULL") == 0;
}

static bool
is_ip(const char *s)
{
    unsigned char b[16];

    return s && (inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1);
}

static struct mf_jval *
str_node(struct ecs_ctx *c, const char *s)
{
    return mf_jstr(c->a, s);
}

/* A scalar as a string node (the node itself when it is one); NULL for
 * containers and null-ish values. */
static struct mf_jval *
as_string(struct ecs_ctx *c, struct mf_jval *v)
{
    const char *s;
    size_t n;

    if (!v || v->type == MF_JNULL || v->type == MF_JARR || v->type == MF_JOBJ)
        return NULL;
    if (v->type == MF_JSTR)
        return mf_jis_nullish(v) ? NULL : v;
    s = mf_jscalar_text(v, &n);
    return s ? mf_jstrn(c->a, s, n) : NULL;
}

static const char *
slot_str(const struct ecs_ctx *c, enum ecs_tid t)
{
    const struct ecs_slot *sl = &c->slot[t];

    if (ecs_targets[t].kind == K_STR || ecs_targets[t].kind == K_NODE)
        return mf_jstrv(sl->node);
    return sl->n ? mf_jstrv(sl->v[0]) : NULL;
}

static bool
slot_set_p(const struct ecs_ctx *c, enum ecs_tid t)
{
    return c->slot[t].node || c->slot[t].n;
}

static void
slot_clear(struct ecs_ctx *c, enum ecs_tid t)
{
    c->slot[t].node = NULL;
    c->slot[t].n = 0;
}

/* Put a string node in a slot (replace or append, deduplicated). */
static void
slot_put(struct ecs_ctx *c, enum ecs_tid t, struct mf_jval *v)
{
    struct ecs_slot *sl = &c->slot[t];

    if (!v)
        return;
    if (ecs_targets[t].kind == K_STR || ecs_targets[t].kind == K_NODE) {
        sl->node = v;
        return;
    }
    if (sl->n >= ECS_MAX_LIST)
        return;    /* the full list stays under o365.audit */
    for (size_t i = 0; i < sl->n; i++)
        if (mf_json_equal(sl->v[i], v))
            return;
    if (sl->n == sl->cap) {
        size_t cap = sl->cap ? sl->cap * 2 : 4;
        struct mf_jval **nv = mf_arena_alloc(c->a, cap * sizeof *nv);
        if (sl->n)
            memcpy(nv, sl->v, sl->n * sizeof *nv);
        sl->v = nv;
        sl->cap = cap;
    }
    sl->v[sl->n++] = v;
}

static void
slot_puts(struct ecs_ctx *c, enum ecs_tid t, const char *s)
{
    if (s && *s)
        slot_put(c, t, str_node(c, s));
}

static void
slot_putn(struct ecs_ctx *c, enum ecs_tid t, const char *s, size_t n)
{
    if (s && n)
        slot_put(c, t, mf_jstrn(c->a, s, n));
}

static void
slot_words(struct ecs_ctx *c, enum ecs_tid t, const struct ecs_words *w)
{
    for (size_t i = 0; i < w->n; i++)
        slot_put(c, t, mf_jstr_ref(c->a, w->v[i], strlen(w->v[i])));
}

/* epoch ms -> "YYYY-MM-DDTHH:MM:SS[.mmm]Z" (milliseconds when not 0) */
static void
format_time(char *out, size_t n, int64_t ms)
{
    mf_clock_fmt_iso(ms, MF_UTC_Z | (ms % 1000 ? MF_UTC_MS : 0), out, n);
}

/* ---- field rules ---- */

/* {file: {name, extension, size, hash: {sha256}}}; NULL for a blank name. */
static struct mf_jval *
attachment(struct ecs_ctx *c, const char *name, size_t n, int64_t size,
           const char *sha256)
{
    struct mf_arena *a = c->a;
    struct mf_jval *file, *att;
    const char *dot;

    while (n && (*name == ' ' || *name == '\t')) {
        name++;
        n--;
    }
    while (n && (name[n - 1] == ' ' || name[n - 1] == '\t'))
        n--;
    if (n == 0)
        return NULL;
    file = mf_jobj(a);
    mf_jobj_add_ref(a, file, "name", 4, mf_jstrn(a, name, n));
    for (dot = name + n; dot > name && dot[-1] != '.'; dot--)
        if (dot[-1] == ' ' || dot[-1] == '/' || name + n - dot >= 16)
            break;
    if (dot > name + 1 && dot[-1] == '.' && dot < name + n)
        mf_jobj_add_ref(a, file, "extension", 9,
                        mf_jstrn(a, dot, (size_t)(name + n - dot)));
    if (size >= 0)
        mf_jobj_add_ref(a, file, "size", 4, mf_jint(a, size));
    if (sha256 && *sha256) {
        struct mf_jval *h = mf_jobj(a);

        mf_jobj_add_ref(a, h, "sha256", 6, mf_jstr(a, sha256));
        mf_jobj_add_ref(a, file, "hash", 4, h);
    }
    att = mf_jobj(a);
    mf_jobj_add_ref(a, att, "file", 4, file);
    return att;
}

/* email.attachments from Exchange's "a.png (8192b); b (1).docx (10b)" or
 * Defender's [{FileName, SHA256, FileSize, ..}]. */
static void
set_attachments(struct ecs_ctx *c, const struct mf_jval *v)
{
    struct mf_jval *list = mf_jarr(c->a), *att;

    if (mf_jis_str(v) && v->u.s) {
        const char *p = v->u.s, *end = v->u.s + v->len;

        while (p < end && list->len < ECS_MAX_LIST) {
            const char *q = p, *sep = NULL, *open;
            int64_t size = -1;
            size_t n;

            for (; q + 1 < end; q++)
                if (q[0] == ';' && q[1] == ' ') {
                    sep = q;
                    break;
                }
            if (!sep)
                sep = (end > p && end[-1] == ';') ? end - 1 : end;
            n = (size_t)(sep - p);
            /* trailing " (NNNb)" is the size */
            if (n > 4 && p[n - 1] == ')' && p[n - 2] == 'b' &&
                (open = memrchr(p, '(', n)) != NULL && open > p && open[-1] == ' ') {
                char *e;
                long long x = strtoll(open + 1, &e, 10);

                if (e == p + n - 2 && e > open + 1 && x >= 0) {
                    size = x;
                    n = (size_t)(open - 1 - p);
                }
            }
            if ((att = attachment(c, p, n, size, NULL)))
                mf_jarr_push(c->a, list, att);
            p = sep < end ? sep + (*sep == ';' && sep + 1 < end ? 2 : 1) : end;
        }
    } else if (mf_jis_arr(v)) {
        for (size_t i = 0; i < v->len && list->len < ECS_MAX_LIST; i++) {
            const struct mf_jval *it = v->u.items[i];
            const char *name = mf_jstrv(mf_jobj_geti(it, "FileName"));
            int64_t size = -1;

            if (!name)
                continue;
            if (mf_jget_int(mf_jobj_geti(it, "FileSize"), &size) != 0)
                size = -1;
            if ((att = attachment(c, name, strlen(name), size,
                                  mf_jstrv(mf_jobj_geti(it, "SHA256")))))
                mf_jarr_push(c->a, list, att);
        }
    }
    if (list->len)
        slot_put(c, T_EMAIL_ATTACHMENTS, list);
}

static void
apply_value(struct ecs_ctx *c, const struct ecs_fieldrule *f, struct mf_jval *v)
{
    struct mf_jval *s;

    if (f->conv == CONV_ATTACHMENTS) {
        set_attachments(c, v);
        return;
    }
    if (mf_jis_arr(v)) {
        for (size_t i = 0; i < v->len; i++) {
            apply_value(c, f, v->u.items[i]);
            if (ecs_targets[f->to].kind == K_STR && slot_set_p(c, f->to))
                return;    /* one value: the first usable one */
        }
        return;
    }
    if (!(s = as_string(c, v)))
        return;
    if (f->require_email && !memchr(s->u.s, '@', s->len))
        return;
    if (f->require_ip && !is_ip(s->u.s))
        return;
    if (f->differs_from) {
        const char *o = mf_jscalar_text(mf_record_get(c->r, f->differs_from), NULL);
        if (o && strcasecmp(o, s->u.s) == 0)
            return;
    }
    if (f->conv == CONV_NUMBER) {
        int64_t x;

        if (v->type != MF_JNUM && (mf_jget_int(v, &x) != 0 || !(v = mf_jint(c->a, x))))
            return;
        slot_put(c, f->to, v);
        return;
    }
    if (f->conv == CONV_DATE) {
        int64_t ms;
        char buf[48];
        if (mf_time_parse(s->u.s, &ms) < 0)
            return;
        format_time(buf, sizeof buf, ms);
        s = str_node(c, buf);
    }
    slot_put(c, f->to, s);
}

/* Walk "A.B[].C" from node, case-insensitively, fanning out at "[]". */
static void
walk_path(struct ecs_ctx *c, const struct ecs_fieldrule *f,
          struct mf_jval *node, const char *p)
{
    const char *dot = strchr(p, '.');
    size_t seg = dot ? (size_t)(dot - p) : strlen(p);
    bool fan = seg >= 2 && p[seg - 2] == '[' && p[seg - 1] == ']';
    char key[256];
    struct mf_jval *v;

    if (!mf_jis_obj(node))
        return;
    if (fan)
        seg -= 2;
    if (seg >= sizeof key)
        return;
    memcpy(key, p, seg);
    key[seg] = '\0';
    if (!(v = mf_jobj_geti(node, key)))
        return;
    if (!dot) {
        apply_value(c, f, v);
        return;
    }
    if (fan && mf_jis_arr(v)) {
        for (size_t i = 0; i < v->len; i++)
            walk_path(c, f, v->u.items[i], dot + 1);
        return;
    }
    walk_path(c, f, v, dot + 1);
}

static bool
when_ok(const struct ecs_ctx *c, const struct ecs_fieldrule *f)
{
    const struct mf_jval *v;
    const char *s;

    if (!f->when_path)
        return true;
    v = mf_record_get(c->r, f->when_path);
    if (!v || !(s = mf_jscalar_text(v, NULL)))
        return false;
    for (size_t i = 0; i < f->when_vals.n; i++)
        if (strcasecmp(f->when_vals.v[i], s) == 0)
            return true;
    return false;
}

static void
apply_fields(struct ecs_ctx *c)
{
    const struct mf_ecs_map *m = c->m;
    const struct mf_record *r = c->r;

    for (size_t i = 0; i < m->n_fields; i++) {
        const struct ecs_fieldrule *f = &m->fields[i];

        if (f->rts.n && !ints_has(&f->rts, r->record_type))
            continue;
        if (f->ops.n && !words_match(&f->ops, r->operation ? r->operation : ""))
            continue;
        if (f->if_absent && slot_set_p(c, f->to))
            continue;
        if (!when_ok(c, f))
            continue;
        if (f->fanout)
            walk_path(c, f, r->view, f->from);
        else
            apply_value(c, f, (struct mf_jval *)mf_record_get(r, f->from));
    }
}

/* ---- computed parts ---- */

static const struct ecs_rtrule *
find_rtrule(const struct mf_ecs_map *m, int rt)
{
    for (size_t i = 0; i < m->n_rtrules; i++)
        if (m->rtrules[i].rt == rt)
            return &m->rtrules[i];
    return NULL;
}

static const struct ecs_oprule *
find_oprule(const struct mf_ecs_map *m, const struct mf_record *r)
{
    const char *op = r->operation ? r->operation : "";

    if (!*op)
        return NULL;
    for (size_t i = 0; i < m->n_oprules; i++) {
        const struct ecs_oprule *o = &m->oprules[i];
        if (o->rts.n && !ints_has(&o->rts, r->record_type))
            continue;
        if (words_match(&o->ops, op))
            return o;
    }
    return NULL;
}

static int
severity_of(const struct mf_ecs_map *m, const struct mf_jval *v)
{
    const char *s = mf_jstrv(v);
    const struct ecs_kv *kv = s ? kv_find(m->severity, m->n_severity, s) : NULL;

    return kv ? kv->num : -1;
}

static const char *
outcome_word(enum mf_outcome o)
{
    switch (o) {
    case MF_OUTCOME_SUCCESS:
        return "success";
    case MF_OUTCOME_FAILURE:
        return "failure";
    default:
        return "unknown";
    }
}

static void
set_event(struct ecs_ctx *c, const struct ecs_rtrule *rr,
          const struct ecs_oprule *orr)
{
    const struct mf_ecs_map *m = c->m;
    const struct mf_record *r = c->r;
    const struct mf_jval *v;
    const char *outcome = m->outcome_missing ? m->outcome_missing : "unknown";
    char tbuf[48];
    int sev;

    format_time(tbuf, sizeof tbuf, r->time_ms);
    slot_put(c, T_TIMESTAMP, str_node(c, tbuf));

    slot_puts(c, T_EV_KIND, rr && rr->kind ? rr->kind : "event");
    slot_puts(c, T_EV_CATEGORY, "web");
    slot_puts(c, T_EV_TYPE, "info");
    if (rr) {
        slot_words(c, T_EV_CATEGORY, &rr->cat);
        slot_words(c, T_EV_TYPE, &rr->type);
    }
    if (orr) {
        slot_words(c, T_EV_CATEGORY, &orr->cat);
        slot_words(c, T_EV_TYPE, &orr->type);
    }

    if (orr && orr->action)
        slot_puts(c, T_EV_ACTION, orr->action);
    else
        slot_puts(c, T_EV_ACTION, r->operation);

    if (r->record_type >= 0 && (size_t)r->record_type < m->n_rt_names
        && m->rt_names[r->record_type])
        slot_puts(c, T_EV_CODE, m->rt_names[r->record_type]);
    else
        slot_put(c, T_EV_CODE, as_string(c, (struct mf_jval *)mf_record_get(r, "RecordType")));

    slot_puts(c, T_EV_ID, r->id);
    slot_puts(c, T_EV_PROVIDER, r->workload);

    v = mf_record_get(r, "ResultStatus");
    if (v && !mf_jis_nullish(v)) {
        const char *s = mf_jscalar_text(v, NULL);
        const struct ecs_kv *kv = s ? kv_find(m->outcome, m->n_outcome, s) : NULL;
        if (kv)
            outcome = kv->val;
    }
    if (rr && rr->outcome_record && r->outcome != MF_OUTCOME_UNKNOWN)
        outcome = outcome_word(r->outcome);
    slot_puts(c, T_EV_OUTCOME, outcome);

    if ((sev = severity_of(m, mf_record_get(r, "Severity"))) >= 0)
        slot_put(c, T_EV_SEVERITY, mf_jint(c->a, sev));
}

static void
set_client(struct ecs_ctx *c)
{
    const struct mf_record *r = c->r;

    /* client.address: the address itself when there is one (Elastic's
     * pipeline), else the text as it came (a host name, ...) */
    if (r->client_ip[0])
        slot_puts(c, T_CLIENT_ADDRESS, r->client_ip);
    else if (!nullish_text(r->client_ip_raw))
        slot_puts(c, T_CLIENT_ADDRESS, r->client_ip_raw);
    if (r->client_ip[0]) {
        slot_puts(c, T_CLIENT_IP, r->client_ip);
        slot_puts(c, T_SOURCE_IP, r->client_ip);
        slot_puts(c, T_NETWORK_TYPE, strchr(r->client_ip, ':') ? "ipv6" : "ipv4");
        slot_puts(c, T_RELATED_IP, r->client_ip);
    }
    if (r->client_port > 0 && r->client_port < 65536 && r->client_ip[0]) {
        slot_put(c, T_CLIENT_PORT, mf_jint(c->a, r->client_port));
        slot_put(c, T_SOURCE_PORT, mf_jint(c->a, r->client_port));
    }
}

/* OriginatingServer "HOST (192.0.2.20)", "HOST (15.20.7452.025)" (a build
 * number) or an address. Elastic's pipeline: HOST is server.domain; the
 * address in parentheses, when it is one, is server.address and server.ip;
 * otherwise server.address stays the text as it came (ECS: the raw
 * address). */
static void
set_server(struct ecs_ctx *c)
{
    const char *s = slot_str(c, T_SERVER_ADDRESS);
    const char *paren, *in, *end;
    char host[256], ip[64];
    size_t n;

    if (!s)
        return;
    n = strcspn(s, "\r\n");
    if (s[n]) {
        slot_putn(c, T_SERVER_ADDRESS, s, n);   /* a trailing newline */
        s = slot_str(c, T_SERVER_ADDRESS);
    }
    paren = strstr(s, " (");
    n = paren ? (size_t)(paren - s) : strlen(s);
    while (n && (s[n - 1] == ' '))
        n--;
    if (n == 0 || n >= sizeof host)
        return;
    memcpy(host, s, n);
    host[n] = '\0';
    if (!paren) {
        slot_puts(c, is_ip(host) ? T_SERVER_IP : T_SERVER_DOMAIN, host);
    } else {
        slot_puts(c, T_SERVER_DOMAIN, host);
        in = paren + 2;
        end = strchr(in, ')');
        if (end && (size_t)(end - in) < sizeof ip) {
            memcpy(ip, in, (size_t)(end - in));
            ip[end - in] = '\0';
            if (is_ip(ip)) {
                slot_puts(c, T_SERVER_IP, ip);
                slot_put(c, T_SERVER_ADDRESS, c->slot[T_SERVER_IP].node);
            }
        }
    }
    if (slot_set_p(c, T_SERVER_IP)) {
        slot_put(c, T_DEST_IP, c->slot[T_SERVER_IP].node);
        slot_put(c, T_RELATED_IP, c->slot[T_SERVER_IP].node);
    }
}

static void
set_dlp(struct ecs_ctx *c)
{
    const struct mf_ecs_map *m = c->m;
    const struct mf_record *r = c->r;
    const struct mf_jval *pd = mf_record_get(r, "PolicyDetails");
    const char *op = r->operation ? r->operation : "";
    bool blocked = false, overridden;
    int maxsev = -1;
    const struct mf_jval *ex;

    if (!mf_jis_arr(pd))
        return;
    for (size_t i = 0; i < pd->len; i++) {
        const struct mf_jval *rules = mf_jobj_geti(pd->u.items[i], "Rules");
        if (!mf_jis_arr(rules))
            continue;
        for (size_t j = 0; j < rules->len; j++) {
            const struct mf_jval *rule = rules->u.items[j];
            const struct mf_jval *acts = mf_jobj_geti(rule, "Actions");
            int sev = severity_of(m, mf_jobj_geti(rule, "Severity"));
            if (sev > maxsev)
                maxsev = sev;
            if (!m->dlp_block || !mf_jis_arr(acts))
                continue;
            for (size_t k = 0; k < acts->len; k++) {
                const char *a = mf_jstrv(acts->u.items[k]);
                if (a && strcasecmp(a, m->dlp_block) == 0)
                    blocked = true;
            }
        }
    }
    if (maxsev >= 0)
        slot_put(c, T_EV_SEVERITY, mf_jint(c->a, maxsev));
    if (words_match(&m->dlp_undo, op))
        overridden = true;
    else if (words_match(&m->dlp_info, op))
        overridden = false;
    else {
        ex = mf_record_get(r, "ExceptionInfo");
        overridden = ex && !mf_jis_nullish(ex)
                     && !(mf_jis_obj(ex) && ex->len == 0);
    }
    slot_puts(c, T_EV_OUTCOME, (!blocked || overridden) ? "success" : "failure");
}

static void
set_alert(struct ecs_ctx *c)
{
    const struct mf_ecs_map *m = c->m;
    const char *cat = mf_record_str(c->r, "Category");
    const struct ecs_kv *kv = cat ? kv_find(m->alert_cat, m->n_alert_cat, cat) : NULL;

    if (kv)
        slot_puts(c, T_EV_CATEGORY, kv->val);
    else if (m->alert_cat_default)
        slot_puts(c, T_EV_CATEGORY, m->alert_cat_default);
}

/* SharePoint writes people who signed in with a one-time code (no
 * directory account) as "urn:spo:guest#<address>". */
#define SPO_GUEST "urn:spo:guest#"

/* user.id "a@b" -> email a@b, name a, domain b (Elastic's splitEmailUserID;
 * a SharePoint guest's address without its urn:spo:guest# prefix); without
 * an address id, name/domain come from an email when there is one. */
static void
split_users(struct ecs_ctx *c)
{
    for (size_t i = 0; i < sizeof ecs_user_sets / sizeof ecs_user_sets[0]; i++) {
        const char *id = slot_str(c, ecs_user_sets[i].id);
        const char *at = id ? strchr(id, '@') : NULL;
        const char *src = id;

        if (at) {
            slot_clear(c, ecs_user_sets[i].email);
            if (strncasecmp(id, SPO_GUEST, sizeof SPO_GUEST - 1) == 0) {
                src = id + sizeof SPO_GUEST - 1;
                slot_puts(c, ecs_user_sets[i].email, src);
            } else {
                slot_put(c, ecs_user_sets[i].email, c->slot[ecs_user_sets[i].id].node);
            }
        } else {
            if (c->slot[ecs_user_sets[i].email].n > 1)
                continue;    /* several recipients: no single name */
            src = slot_str(c, ecs_user_sets[i].email);
            at = src ? strchr(src, '@') : NULL;
            if (!at || slot_set_p(c, ecs_user_sets[i].name))
                continue;
        }
        slot_clear(c, ecs_user_sets[i].name);
        slot_clear(c, ecs_user_sets[i].domain);
        slot_putn(c, ecs_user_sets[i].name, src, (size_t)(at - src));
        slot_puts(c, ecs_user_sets[i].domain, at + 1);
    }
}

static void
set_related_users(struct ecs_ctx *c)
{
    struct ecs_slot saved = c->slot[T_RELATED_USER];

    slot_clear(c, T_RELATED_USER);
    c->slot[T_RELATED_USER].v = NULL;
    c->slot[T_RELATED_USER].cap = 0;
    slot_put(c, T_RELATED_USER, c->slot[T_USER_NAME].node);
    slot_put(c, T_RELATED_USER, c->slot[T_USER_ID].node);
    slot_put(c, T_RELATED_USER, c->slot[T_USER_EMAIL].node);
    slot_put(c, T_RELATED_USER, c->slot[T_UT_NAME].node);
    slot_put(c, T_RELATED_USER, c->slot[T_FILE_OWNER].node);
    for (size_t i = 0; i < saved.n; i++)
        slot_put(c, T_RELATED_USER, saved.v[i]);
}

static void
set_org_host(struct ecs_ctx *c)
{
    const char *t = c->r->tenant;

    if (t && *t) {
        char *low = mf_arena_strdup(c->a, t);
        for (char *p = low; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        slot_puts(c, T_ORG_ID, low);
        slot_puts(c, T_HOST_ID, low);
    }
}

static void
set_host_name(struct ecs_ctx *c)
{
    if (slot_set_p(c, T_ORG_NAME))
        slot_put(c, T_HOST_NAME, c->slot[T_ORG_NAME].node);
    else if (slot_set_p(c, T_USER_DOMAIN))
        slot_put(c, T_HOST_NAME, c->slot[T_USER_DOMAIN].node);
}

static void
set_risk(struct ecs_ctx *c, const struct mf_tag_hits *tags)
{
    if (!tags || tags->n == 0)
        return;
    for (size_t i = 0; i < tags->n; i++) {
        const struct mf_tag *t = tags->hit[i].tag;
        if (!t)
            continue;
        slot_puts(c, T_TAGS, t->id);
        slot_puts(c, T_RISK_AREAS, mf_area_name(t->area));
        for (size_t k = 0; k < t->n_attack && t->attack; k++)
            slot_puts(c, T_THREAT_TECHNIQUE, t->attack[k]);
    }
    if (slot_set_p(c, T_THREAT_TECHNIQUE))
        slot_puts(c, T_THREAT_FRAMEWORK, "MITRE ATT&CK");
    slot_put(c, T_EV_RISK, mf_jreal(c->a, 20.0 * tags->max_severity));
    slot_put(c, T_RISK_SEVERITY, mf_jint(c->a, tags->max_severity));
}

static void
set_repairs(struct ecs_ctx *c)
{
    for (unsigned i = 0; i < MF_REPAIR_COUNT; i++)
        if (c->r->repairs & (1u << i))
            slot_puts(c, T_REPAIRS, mf_repair_name(1u << i));
}

/* Key as Elastic's validFieldName: '.' and ' ' -> '_' (empty -> "_"). */
static const char *
clean_key(struct ecs_ctx *c, const char *k, size_t n, size_t *outn)
{
    char *s;

    if (n > 0 && !memchr(k, '.', n) && !memchr(k, ' ', n)) {
        *outn = n;
        return k;
    }
    if (n == 0) {
        *outn = 1;
        return "_";
    }
    s = mf_arena_strndup(c->a, k, n);
    for (size_t i = 0; i < n; i++)
        if (s[i] == '.' || s[i] == ' ')
            s[i] = '_';
    *outn = n;
    return s;
}

/* Keys Elasticsearch refuses: empty, blank, leading/trailing '.', "..". */
static bool
key_refused(const char *k, size_t n)
{
    size_t i;

    if (n == 0 || k[0] == '.' || k[n - 1] == '.')
        return true;
    for (i = 0; i < n && (k[i] == ' ' || k[i] == '\t'); i++)
        ;
    if (i == n)
        return true;
    for (i = 0; i + 1 < n; i++)
        if (k[i] == '.' && k[i + 1] == '.')
            return true;
    return false;
}

/* v, or a copy of v with refused keys cleaned (copy on write, depth-bounded
 * by the parser's nesting limit). */
static struct mf_jval *
audit_clean(struct ecs_ctx *c, struct mf_jval *v)
{
    struct mf_jval *out = NULL;

    if (mf_jis_arr(v)) {
        for (size_t i = 0; i < v->len; i++) {
            struct mf_jval *it = audit_clean(c, v->u.items[i]);
            if (it != v->u.items[i] && !out) {
                out = mf_jarr(c->a);
                for (size_t j = 0; j < i; j++)
                    mf_jarr_push(c->a, out, v->u.items[j]);
            }
            if (out)
                mf_jarr_push(c->a, out, it);
        }
        return out ? out : v;
    }
    if (!mf_jis_obj(v))
        return v;
    for (size_t i = 0; i < v->len; i++) {
        const struct mf_jmem *mm = &v->u.mem[i];
        struct mf_jval *it = audit_clean(c, mm->val);
        const char *k = mm->key;
        size_t kn = mm->klen;

        if (key_refused(k, kn))
            k = clean_key(c, k, kn, &kn);
        if ((it != mm->val || k != mm->key) && !out) {
            out = mf_jobj(c->a);
            for (size_t j = 0; j < i; j++)
                mf_jobj_add_ref(c->a, out, v->u.mem[j].key, v->u.mem[j].klen,
                                v->u.mem[j].val);
        }
        if (out)
            mf_jobj_add_ref(c->a, out, k, kn, it);
    }
    return out ? out : v;
}

/* A member the view rewrote that Elastic keeps as the record has it: a
 * Name/Value list stays a [{Name, Value}] list (OperationProperties,
 * DeviceProperties: Elastic's rules query their .Name / .Value), parsed when
 * it came as JSON text. */
static struct mf_jval *
audit_as_list(struct ecs_ctx *c, struct mf_jval *rawv, struct mf_jval *viewv)
{
    const char *t;
    size_t n;

    if (mf_jis_arr(rawv))
        return rawv;
    if (!mf_jis_str(rawv) || !mf_jis_obj(viewv))
        return viewv;
    for (t = rawv->u.s, n = rawv->len; n && strchr(" \t\r\n", *t); t++, n--)
        ;
    if (n && *t == '[') {
        struct mf_jval *p = mf_json_parse(c->a, t, n, NULL, NULL, NULL);

        if (mf_jis_arr(p))
            return p;
    }
    return viewv;
}

/* An enum member written by name (Elastic: Platform 1 -> "Windows"). */
static struct mf_jval *
audit_value(struct ecs_ctx *c, const char *key, struct mf_jval *v)
{
    const struct mf_ecs_map *m = c->m;
    const char *txt;

    for (size_t i = 0; i < m->n_audit_values; i++) {
        const struct ecs_valmap *vm = &m->audit_values[i];
        const struct ecs_kv *kv;

        if (strcasecmp(vm->member, key) != 0)
            continue;
        if ((txt = mf_jscalar_text(v, NULL)) && (kv = kv_find(vm->kv, vm->n, txt)))
            return mf_jstr_ref(c->a, kv->val, strlen(kv->val));
        break;
    }
    return v;
}

/* o365.audit: the record as the view holds it, except that only the
 * Name/Value lists named in audit.maps become objects (keys cleaned as
 * Elastic does), the others stay lists; enum values named, objects whose
 * name Elastic keeps for text renamed, keys Elasticsearch would refuse
 * repaired. */
static struct mf_jval *
audit_passthrough(struct ecs_ctx *c)
{
    const struct mf_ecs_map *m = c->m;
    const struct mf_jval *view = c->r->view, *raw = c->r->raw;
    struct mf_jval *out;

    if (!mf_jis_obj(view))
        return NULL;
    out = mf_jobj(c->a);
    for (size_t i = 0; i < view->len; i++) {
        const struct mf_jmem *mm = &view->u.mem[i];
        struct mf_jval *v = mm->val;
        const char *k = mm->key;
        size_t kn = mm->klen;
        bool as_map = words_match(&m->audit_maps, k);
        const struct ecs_kv *ren;

        /* view members are the raw ones, in order; rewritten ones differ */
        if (!as_map && i < raw->len && raw->u.mem[i].val != v)
            v = audit_as_list(c, raw->u.mem[i].val, v);
        v = audit_clean(c, v);
        if (as_map && mf_jis_obj(v)) {
            struct mf_jval *o = mf_jobj(c->a);
            for (size_t j = 0; j < v->len; j++) {
                size_t n2;
                const char *k2 = clean_key(c, v->u.mem[j].key, v->u.mem[j].klen, &n2);
                mf_jobj_add_ref(c->a, o, k2, n2, v->u.mem[j].val);
            }
            v = o;
        } else if (m->n_audit_values && !mf_jis_obj(v) && !mf_jis_arr(v)) {
            v = audit_value(c, k, v);
        }
        if (mf_jis_obj(v) && (ren = kv_find(m->audit_objects, m->n_audit_objects, k))) {
            k = ren->val;
            kn = strlen(k);
        }
        if (key_refused(k, kn))
            k = clean_key(c, k, kn, &kn);
        mf_jobj_add_ref(c->a, out, k, kn, v);
    }
    return out;
}

static struct mf_jval *
emit(struct ecs_ctx *c)
{
    struct mf_jval *out = mf_jobj(c->a);

    for (int t = 0; t < T_COUNT; t++) {
        struct ecs_slot *sl = &c->slot[t];
        struct mf_jval *v = NULL;

        switch (ecs_targets[t].kind) {
        case K_STR:
        case K_NODE:
            v = sl->node;
            break;
        case K_LIST:
            if (sl->n == 1) {
                v = sl->v[0];
                break;
            }
            /* fall through */
        case K_ARR:
            if (sl->n == 0)
                break;
            v = mf_jarr(c->a);
            for (size_t i = 0; i < sl->n; i++)
                mf_jarr_push(c->a, v, sl->v[i]);
            break;
        }
        if (v)
            mf_jobj_set_path(c->a, out, ecs_targets[t].name, v);
    }
    return out;
}

struct mf_jval *
mf_ecs_build(const struct mf_ecs_map *m, const struct mf_record *r,
             const struct mf_tag_hits *tags, bool keep_raw)
{
    struct ecs_ctx c;
    const struct ecs_rtrule *rr;
    const struct ecs_oprule *orr;

    memset(&c, 0, sizeof c);
    c.m = m;
    c.r = r;
    c.a = r->arena;

    for (size_t i = 0; i < m->n_consts; i++)
        slot_puts(&c, (enum ecs_tid)m->consts[i].num, m->consts[i].val);

    rr = find_rtrule(m, r->record_type);
    orr = find_oprule(m, r);
    set_event(&c, rr, orr);

    slot_puts(&c, T_USER_ID, r->user_id);
    split_users(&c);
    set_client(&c);
    set_org_host(&c);
    slot_puts(&c, T_UA_ORIGINAL, r->user_agent);

    apply_fields(&c);
    if (rr && rr->special == SP_DLP)
        set_dlp(&c);
    if (rr && rr->special == SP_ALERT)
        set_alert(&c);
    set_server(&c);
    split_users(&c);
    set_host_name(&c);
    set_related_users(&c);
    set_risk(&c, tags);
    if (keep_raw && r->src && r->src_len)
        slot_put(&c, T_EV_ORIGINAL, mf_jstrn(c.a, r->src, r->src_len));
    slot_put(&c, T_O365_AUDIT, audit_passthrough(&c));
    set_repairs(&c);
    return emit(&c);
}
