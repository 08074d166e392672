/* record.c - the record view and the facts derived once per record. */
#include "record.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"

/* ---------------------------------------------------------------------- */
/* Tables                                                                 */
/* ---------------------------------------------------------------------- */

/* Fields that real records (or exports) sometimes carry as JSON-encoded
 * strings (m365-api.md §5.1). Only these are parsed: a ClientIP such as
 * "[2001:db8::1]:443" must stay a string. */
#define NAME(s) {s, sizeof(s) - 1}
static const struct {
    const char *s;
    size_t n;
} stringly_json_fields[] = {
    NAME("Data"), NAME("ExceptionInfo"), NAME("ExtendedProperties"),
    NAME("OperationProperties"), NAME("Parameters"), NAME("ModifiedProperties"),
    NAME("DeviceProperties"), NAME("AppAccessContext"), NAME("PolicyDetails"),
    NAME("SharePointMetaData"), NAME("ExchangeMetaData"), NAME("EndpointMetaData"),
    NAME("Members"), NAME("Folders"), NAME("AffectedItems"), NAME("Item"),
    NAME("ExtraProperties"), NAME("Actor"), NAME("Target"), NAME("ParticipantInfo"),
};
#undef NAME

/* Client address fields, in order of preference (normalization.md §1a):
 * on Exchange mailbox records ClientIPAddress is the client, ClientIP can be
 * a Microsoft front end. */
static const char *const client_ip_fields[] = {
    "ClientIPAddress", "ClientIP", "ActorIpAddress", "ClientIp", NULL,
};

/* System actors excluded from most tags (normalization.md §2e). A trailing
 * '*' means prefix. */
static const char *const system_user_ids[] = {
    "NT AUTHORITY\\SYSTEM*", "SecurityComplianceAlerts", "DlpAgent",
    "app@sharepoint", "S-1-5-18", "SHAREPOINT\\system", NULL,
};

static const struct {
    const char *word;
    enum mf_outcome outcome;
} result_words[] = {
    {"succeeded", MF_OUTCOME_SUCCESS},  {"success", MF_OUTCOME_SUCCESS},
    {"true", MF_OUTCOME_SUCCESS},       {"partiallysucceeded", MF_OUTCOME_SUCCESS},
    {"failed", MF_OUTCOME_FAILURE},     {"failure", MF_OUTCOME_FAILURE},
    {"false", MF_OUTCOME_FAILURE},      {NULL, MF_OUTCOME_UNKNOWN},
};

static const struct {
    int rt;
    const char *name;
} record_type_names[] = {
    {1, "ExchangeAdmin"}, {2, "ExchangeItem"}, {3, "ExchangeItemGroup"},
    {4, "SharePoint"}, {6, "SharePointFileOperation"}, {7, "OneDrive"},
    {8, "AzureActiveDirectory"}, {9, "AzureActiveDirectoryAccountLogon"},
    {10, "DataCenterSecurityCmdlet"}, {11, "ComplianceDLPSharePoint"},
    {13, "ComplianceDLPExchange"}, {14, "SharePointSharingOperation"},
    {15, "AzureActiveDirectoryStsLogon"}, {16, "SkypeForBusinessPSTNUsage"},
    {17, "SkypeForBusinessUsersBlocked"}, {18, "SecurityComplianceCenterEOPCmdlet"},
    {19, "ExchangeAggregatedOperation"}, {20, "PowerBIAudit"}, {21, "CRM"},
    {22, "Yammer"}, {23, "SkypeForBusinessCmdlets"}, {24, "Discovery"},
    {25, "MicrosoftTeams"}, {28, "ThreatIntelligence"}, {29, "MailSubmission"},
    {30, "MicrosoftFlow"}, {31, "AeD"}, {32, "MicrosoftStream"},
    {33, "ComplianceDLPSharePointClassification"}, {34, "ThreatFinder"},
    {35, "Project"}, {36, "SharePointListOperation"},
    {37, "SharePointCommentOperation"}, {38, "DataGovernance"}, {39, "Kaizala"},
    {40, "SecurityComplianceAlerts"}, {41, "ThreatIntelligenceUrl"},
    {42, "SecurityComplianceInsights"}, {43, "MIPLabel"}, {44, "WorkplaceAnalytics"},
    {45, "PowerAppsApp"}, {46, "PowerAppsPlan"}, {47, "ThreatIntelligenceAtpContent"},
    {48, "LabelContentExplorer"}, {49, "TeamsHealthcare"},
    {50, "ExchangeItemAggregated"}, {51, "HygieneEvent"},
    {52, "DataInsightsRestApiAudit"}, {53, "InformationBarrierPolicyApplication"},
    {54, "SharePointListItemOperation"}, {55, "SharePointContentTypeOperation"},
    {56, "SharePointFieldOperation"}, {57, "MicrosoftTeamsAdmin"}, {58, "HRSignal"},
    {59, "MicrosoftTeamsDevice"}, {60, "MicrosoftTeamsAnalytics"},
    {61, "InformationWorkerProtection"}, {62, "Campaign"}, {63, "DLPEndpoint"},
    {64, "AirInvestigation"}, {65, "Quarantine"}, {66, "MicrosoftForms"},
    {67, "ApplicationAudit"}, {68, "ComplianceSupervisionExchange"},
    {69, "CustomerKeyServiceEncryption"}, {70, "OfficeNative"},
    {71, "MipAutoLabelSharePointItem"}, {72, "MipAutoLabelSharePointPolicyLocation"},
    {73, "MicrosoftTeamsShifts"}, {75, "MipAutoLabelExchangeItem"},
    {76, "CortanaBriefing"}, {78, "WDATPAlerts"}, {82, "SensitivityLabelPolicyMatch"},
    {83, "SensitivityLabelAction"}, {84, "SensitivityLabeledFileAction"},
    {85, "AttackSim"}, {86, "AirManualInvestigation"}, {87, "SecurityComplianceRBAC"},
    {88, "UserTraining"}, {89, "AirAdminActionInvestigation"}, {90, "MSTIC"},
    {91, "PhysicalBadgingSignal"}, {93, "AipDiscover"},
    {94, "AipSensitivityLabelAction"}, {95, "AipProtectionAction"},
    {96, "AipFileDeleted"}, {97, "AipHeartBeat"}, {98, "MCASAlerts"},
    {99, "OnPremisesFileShareScannerDlp"}, {100, "OnPremisesSharePointScannerDlp"},
    {101, "ExchangeSearch"}, {102, "SharePointSearch"}, {103, "PrivacyInsights"},
    {105, "MyAnalyticsSettings"}, {106, "SecurityComplianceUserChange"},
    {107, "ComplianceDLPExchangeClassification"}, {109, "MipExactDataMatch"},
    {113, "MS365DCustomDetection"}, {147, "CoreReportingSettings"},
    {148, "ComplianceConnector"}, {154, "OMEPortal"}, {174, "DataShareOperation"},
    {181, "EduDataLakeDownloadOperation"}, {230, "TeamsUpdates"},
    {261, "CopilotInteraction"}, {275, "OWAAuth"}, {372, "CrossTenantAccessPolicy"},
    {0, NULL},
};

/* RecordType -> content type (m365-api.md §4). Anything else: by Workload,
 * then Audit.General. */
static const struct {
    int rt;
    const char *ct;
} record_type_content[] = {
    {8, "Audit.AzureActiveDirectory"}, {9, "Audit.AzureActiveDirectory"},
    {15, "Audit.AzureActiveDirectory"}, {1, "Audit.Exchange"},
    {2, "Audit.Exchange"}, {3, "Audit.Exchange"}, {19, "Audit.Exchange"},
    {50, "Audit.Exchange"}, {4, "Audit.SharePoint"}, {6, "Audit.SharePoint"},
    {7, "Audit.SharePoint"}, {14, "Audit.SharePoint"}, {36, "Audit.SharePoint"},
    {37, "Audit.SharePoint"}, {54, "Audit.SharePoint"}, {55, "Audit.SharePoint"},
    {56, "Audit.SharePoint"}, {11, "DLP.All"}, {13, "DLP.All"}, {33, "DLP.All"},
    {63, "DLP.All"}, {99, "DLP.All"}, {100, "DLP.All"}, {107, "DLP.All"},
    {0, NULL},
};

static const struct {
    const char *workload;
    const char *ct;
} workload_content[] = {
    {"AzureActiveDirectory", "Audit.AzureActiveDirectory"},
    {"Exchange", "Audit.Exchange"},
    {"SharePoint", "Audit.SharePoint"},
    {"OneDrive", "Audit.SharePoint"},
    {NULL, NULL},
};

/* In MF_REPAIR_* bit order. */
static const char *const repair_names[MF_REPAIR_COUNT] = {
    "invalid_utf8", "time_missing_or_invalid", "number_as_string",
    "json_string_parsed", "json_string_invalid", "id_missing",
    "operation_missing",
};

const char *
mf_repair_name(unsigned bit)
{
    for (unsigned i = 0; i < MF_REPAIR_COUNT; i++)
        if (bit == 1u << i)
            return repair_names[i];
    return NULL;
}

const char *
mf_record_type_name(int rt)
{
    for (size_t i = 0; record_type_names[i].name; i++)
        if (record_type_names[i].rt == rt)
            return record_type_names[i].name;
    return NULL;
}

const char *
mf_content_type_guess(int record_type, const char *workload)
{
    for (size_t i = 0; record_type_content[i].ct; i++)
        if (record_type_content[i].rt == record_type)
            return record_type_content[i].ct;
    if (workload)
        for (size_t i = 0; workload_content[i].ct; i++)
            if (strcasecmp(workload_content[i].workload, workload) == 0)
                return workload_content[i].ct;
    return "Audit.General";
}

/* ---------------------------------------------------------------------- */
/* Parsing helpers                                                        */
/* ---------------------------------------------------------------------- */

static bool
valid_ip(const char *s)
{
    unsigned char tmp[16];

    return inet_pton(AF_INET, s, tmp) == 1 || inet_pton(AF_INET6, s, tmp) == 1;
}

int
mf_parse_client_ip(const char *s, char *ip, size_t ipsz, int *port)
{
    char tmp[128];
    size_t n;
    char *p, *colon;

    ip[0] = '\0';
    *port = 0;
    if (!s)
        return -1;
    while (*s == ' ' || *s == '\t')
        s++;
    n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' ||
                 s[n - 1] == '\n'))
        n--;
    if (n == 0 || n >= sizeof(tmp))
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (!strcasecmp(tmp, "null") || !strcasecmp(tmp, "<null>") || !strcmp(tmp, "-"))
        return -1;
    p = tmp;
    if (*p == '[') {
        char *close = strchr(p, ']');

        if (!close)
            return -1;
        *close = '\0';
        if (close[1] == ':') {
            char *end;
            long v = strtol(close + 2, &end, 10);

            if (*end == '\0' && v > 0 && v < 65536)
                *port = (int)v;
        }
        p++;
    } else {
        colon = strchr(p, ':');
        if (colon && strchr(colon + 1, ':') == NULL) {
            /* exactly one colon: a.b.c.d:port */
            char *end;
            long v = strtol(colon + 1, &end, 10);

            *colon = '\0';
            if (*end == '\0' && v > 0 && v < 65536)
                *port = (int)v;
        }
    }
    /* zone id (fe80::1%eth0) is not part of the address */
    if ((colon = strchr(p, '%')) != NULL)
        *colon = '\0';
    if (strncasecmp(p, "::ffff:", 7) == 0 && strchr(p + 7, '.') && strchr(p + 7, ':') == NULL)
        p += 7;
    if (!valid_ip(p)) {
        *port = 0;
        return -1;
    }
    snprintf(ip, ipsz, "%s", p);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* View construction                                                      */
/* ---------------------------------------------------------------------- */

/* Called for every string field of every record: lengths compare first. */
static bool
stringly_json(const char *key, size_t klen)
{
    for (size_t i = 0; i < sizeof(stringly_json_fields) / sizeof(stringly_json_fields[0]);
         i++)
        if (stringly_json_fields[i].n == klen &&
            strncasecmp(stringly_json_fields[i].s, key, klen) == 0)
            return true;
    return false;
}

static bool
looks_json(const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) {
        s++;
        n--;
    }
    return n >= 2 && (*s == '{' || *s == '[');
}

/* {Name, Value} / {Key, Value} / {Name, NewValue, OldValue} lists. */
enum nv_kind { NV_NONE, NV_NAME_VALUE, NV_MODIFIED };

static enum nv_kind
nv_kind_of(const struct mf_jval *arr, const char **name_key)
{
    enum nv_kind kind = NV_NONE;

    if (!mf_jis_arr(arr) || arr->len == 0)
        return NV_NONE;
    for (size_t i = 0; i < arr->len; i++) {
        const struct mf_jval *e = arr->u.items[i];
        const char *nk = NULL;
        enum nv_kind k;

        if (!mf_jis_obj(e))
            return NV_NONE;
        if (mf_jis_str(mf_jobj_get(e, "Name")))
            nk = "Name";
        else if (mf_jis_str(mf_jobj_get(e, "Key")))
            nk = "Key";
        else
            return NV_NONE;
        if (mf_jobj_get(e, "NewValue") || mf_jobj_get(e, "OldValue"))
            k = NV_MODIFIED;
        else
            k = NV_NAME_VALUE;
        if (kind != NV_NONE && k != kind)
            return NV_NONE;
        kind = k;
        *name_key = nk;
    }
    return kind;
}

/* Name -> member index of the object being built. Linear search is fine for
 * the usual handful of names; above FLAT_HASH_MIN a hash keeps a record with
 * tens of thousands of parameters linear instead of quadratic. */
#define FLAT_HASH_MIN 16

struct name_index {
    uint32_t *slot;     /* member index + 1; 0 = empty */
    size_t mask;
};

static uint32_t
hash_name(const char *s, size_t n)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* Index of the member named (s, n), or -1; when absent and insert is set,
 * the slot is claimed for index `next`. */
static long
name_lookup(const struct mf_jval *obj, struct name_index *ix, const char *s,
            size_t n, bool insert, size_t next)
{
    if (!ix->slot) {
        for (size_t i = 0; i < obj->len; i++)
            if (obj->u.mem[i].klen == n && memcmp(obj->u.mem[i].key, s, n) == 0)
                return (long)i;
        return -1;
    }
    for (size_t h = hash_name(s, n) & ix->mask;; h = (h + 1) & ix->mask) {
        uint32_t e = ix->slot[h];

        if (e == 0) {
            if (insert)
                ix->slot[h] = (uint32_t)next + 1;
            return -1;
        }
        if (obj->u.mem[e - 1].klen == n && memcmp(obj->u.mem[e - 1].key, s, n) == 0)
            return (long)(e - 1);
    }
}

static struct mf_jval *
flatten_nv(struct mf_arena *a, const struct mf_jval *arr, enum nv_kind kind,
           const char *name_key)
{
    struct mf_jval *obj = mf_jobj(a);
    struct name_index ix = {NULL, 0};

    obj->line = arr->line;
    if (arr->len > FLAT_HASH_MIN) {
        size_t cap = 64;

        while (cap < arr->len * 2)
            cap *= 2;
        ix.slot = mf_arena_calloc(a, cap * sizeof(*ix.slot));
        ix.mask = cap - 1;
    }
    for (size_t i = 0; i < arr->len; i++) {
        struct mf_jval *e = arr->u.items[i];
        struct mf_jval *name = mf_jobj_get(e, name_key);
        struct mf_jval *val = kind == NV_MODIFIED ? e : mf_jobj_get(e, "Value");
        long at;

        if (!val)
            val = mf_jnull(a);
        at = name_lookup(obj, &ix, name->u.s, name->len, true, obj->len);
        if (at < 0) {
            mf_jobj_add_ref(a, obj, name->u.s, name->len, val);
        } else if (kind == NV_NAME_VALUE) {
            /* a repeated name keeps every value, in an array built here */
            struct mf_jval *prev = obj->u.mem[at].val;
            struct mf_jval *list;

            if (prev->type == MF_JARR && (prev->flags & MF_JF_USED)) {
                list = prev;
            } else {
                list = mf_jarr(a);
                list->flags |= MF_JF_USED;   /* marks "built by us" */
                mf_jarr_push(a, list, prev);
                obj->u.mem[at].val = list;
            }
            mf_jarr_push(a, list, val);
        }
    }
    /* the marker must not leak into consumers */
    for (size_t i = 0; i < obj->len; i++)
        if (obj->u.mem[i].val->type == MF_JARR)
            obj->u.mem[i].val->flags &= (uint8_t)~MF_JF_USED;
    return obj;
}

/* -Identity "x" -Force "True" -Name 'a b' -Switch  ->  object */
static struct mf_jval *
parse_ps_params(struct mf_arena *a, const char *s)
{
    struct mf_jval *obj = mf_jobj(a);
    const char *p = s;

    for (;;) {
        const char *name, *val;
        size_t nlen, vlen;

        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != '-')
            break;
        name = ++p;
        while (*p && !isspace((unsigned char)*p) && *p != ':')
            p++;
        nlen = (size_t)(p - name);
        if (*p == ':')
            p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '"' || *p == '\'') {
            char q = *p++;

            val = p;
            while (*p && *p != q)
                p++;
            vlen = (size_t)(p - val);
            if (*p)
                p++;
        } else if (*p && *p != '-') {
            val = p;
            while (*p && !isspace((unsigned char)*p))
                p++;
            vlen = (size_t)(p - val);
        } else {
            val = "True";
            vlen = 4;
        }
        if (nlen)
            mf_jobj_add_ref(a, obj, mf_arena_strndup(a, name, nlen), nlen,
                            mf_jstrn(a, val, vlen));
    }
    return obj->len ? obj : NULL;
}

static void
build_view(struct mf_record *r)
{
    struct mf_arena *a = r->arena;
    const struct mf_jval *raw = r->raw;
    struct mf_jval *view = mf_jobj(a);

    view->line = raw->line;
    view->u.mem = mf_arena_alloc(a, (raw->len ? raw->len : 1) * sizeof(struct mf_jmem));
    view->cap = raw->len ? raw->len : 1;
    for (size_t i = 0; i < raw->len; i++) {
        const struct mf_jmem *m = &raw->u.mem[i];
        struct mf_jval *v = m->val;
        const char *nk = NULL;
        enum nv_kind kind;

        if (v->type == MF_JSTR && stringly_json(m->key, m->klen)) {
            if (looks_json(v->u.s, v->len)) {
                struct mf_jval *parsed = mf_json_parse(a, v->u.s, v->len, NULL, NULL, NULL);

                if (parsed) {
                    v = parsed;
                    r->repairs |= MF_REPAIR_STRJSON;
                } else {
                    r->repairs |= MF_REPAIR_BADSTRJSON;
                }
            } else if (m->klen == 10 && strncasecmp(m->key, "Parameters", 10) == 0) {
                struct mf_jval *ps = parse_ps_params(a, v->u.s);

                if (ps)
                    v = ps;
            }
        }
        kind = nv_kind_of(v, &nk);
        if (kind != NV_NONE)
            v = flatten_nv(a, v, kind, nk);
        view->u.mem[view->len].key = m->key;
        view->u.mem[view->len].klen = m->klen;
        view->u.mem[view->len].val = v;
        view->len++;
    }
    r->view = view;
}

/* ---------------------------------------------------------------------- */
/* Derived facts                                                          */
/* ---------------------------------------------------------------------- */

static const char *
view_str(const struct mf_record *r, const char *key)
{
    const struct mf_jval *v = mf_jobj_geti(r->view, key);

    return mf_jis_str(v) ? v->u.s : NULL;
}

static int
view_int(struct mf_record *r, const char *key)
{
    const struct mf_jval *v = mf_jobj_geti(r->view, key);
    int64_t x;

    if (!v || mf_jget_int(v, &x) != 0 || x < -2147483647 || x > 2147483647)
        return -1;
    if (v->type == MF_JSTR)
        r->repairs |= MF_REPAIR_NUMSTR;
    return (int)x;
}

static bool
is_system_user_id(const char *uid)
{
    if (!uid)
        return false;
    for (size_t i = 0; system_user_ids[i]; i++) {
        const char *pat = system_user_ids[i];
        size_t n = strlen(pat);

        if (pat[n - 1] == '*') {
            if (strncasecmp(uid, pat, n - 1) == 0)
                return true;
        } else if (strcasecmp(uid, pat) == 0) {
            return true;
        }
    }
    return false;
}

static enum mf_outcome
outcome_of(const struct mf_record *r)
{
    const char *op = r->operation;
    const struct mf_jval *err = mf_jobj_geti(r->view, "ErrorNumber");
    const char *rs;

    if (!err)
        err = mf_jobj_geti(r->view, "ErrorCode");
    /* STS logon: ResultStatus only says the HTTP call worked (§5.4) */
    if (!strcasecmp(op, "UserLoginFailed"))
        return MF_OUTCOME_FAILURE;
    if (!strcasecmp(op, "UserLoggedIn") || r->record_type == 15 || r->record_type == 9) {
        int64_t code;

        if (err && mf_jget_int(err, &code) == 0)
            return code == 0 ? MF_OUTCOME_SUCCESS : MF_OUTCOME_FAILURE;
        if (!strcasecmp(op, "UserLoggedIn"))
            return MF_OUTCOME_SUCCESS;
    }
    rs = view_str(r, "ResultStatus");
    if (rs)
        for (size_t i = 0; result_words[i].word; i++)
            if (!strcasecmp(rs, result_words[i].word))
                return result_words[i].outcome;
    {
        const struct mf_jval *b = mf_jobj_geti(r->view, "ResultStatus");

        if (b && (b->type == MF_JTRUE || b->type == MF_JFALSE))
            return b->type == MF_JTRUE ? MF_OUTCOME_SUCCESS : MF_OUTCOME_FAILURE;
    }
    return MF_OUTCOME_UNKNOWN;
}

int
mf_record_init(struct mf_record *r, struct mf_arena *a, const struct mf_jval *raw,
               const char *src, size_t src_len, const char *content_type,
               unsigned parse_repairs)
{
    const struct mf_jval *v;

    memset(r, 0, sizeof(*r));
    r->arena = a;
    r->raw = raw;
    r->src = src;
    r->src_len = src_len;
    r->repairs = parse_repairs;
    build_view(r);

    r->id = view_str(r, "Id");
    if (!r->id)
        r->repairs |= MF_REPAIR_NO_ID;
    r->operation = view_str(r, "Operation");
    if (!r->operation) {
        r->operation = "";
        r->repairs |= MF_REPAIR_NO_OP;
    }
    r->workload = view_str(r, "Workload");
    r->tenant = view_str(r, "OrganizationId");
    r->user_id = view_str(r, "UserId");
    r->record_type = view_int(r, "RecordType");
    r->user_type = view_int(r, "UserType");

    r->creation_time = view_str(r, "CreationTime");
    if (!r->creation_time || mf_time_parse(r->creation_time, &r->time_ms) != 0) {
        r->time_ms = mf_clock_wall_ms();
        r->repairs |= MF_REPAIR_TIME;
    }

    r->outcome = outcome_of(r);
    r->is_system_actor = r->user_type == 3 || r->user_type == 4 ||
                         is_system_user_id(r->user_id);

    for (size_t i = 0; client_ip_fields[i]; i++) {
        const char *s = view_str(r, client_ip_fields[i]);

        if (!s)
            continue;
        if (!r->client_ip_raw)
            r->client_ip_raw = s;
        if (mf_parse_client_ip(s, r->client_ip, sizeof(r->client_ip),
                               &r->client_port) == 0) {
            r->client_ip_raw = s;
            break;
        }
    }

    r->user_agent = view_str(r, "UserAgent");
    if (!r->user_agent) {
        v = mf_jobj_geti(mf_jobj_geti(r->view, "ExtendedProperties"), "UserAgent");
        r->user_agent = mf_jstrv(v);
    }
    r->content_type = content_type ? content_type
                                   : mf_content_type_guess(r->record_type, r->workload);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Paths                                                                  */
/* ---------------------------------------------------------------------- */

static const struct mf_jval *
geti_n(const struct mf_jval *obj, const char *key, size_t klen)
{
    if (!mf_jis_obj(obj))
        return NULL;
    for (size_t i = 0; i < obj->len; i++) {
        const struct mf_jmem *m = &obj->u.mem[i];

        if (m->klen == klen && strncasecmp(m->key, key, klen) == 0)
            return m->val;
    }
    return NULL;
}

static const struct mf_jval *
resolve(const struct mf_jval *cur, const char *path)
{
    size_t n = strlen(path);

    if (n == 0)
        return cur;
    if (!mf_jis_obj(cur))
        return NULL;
    /* longest key first: the whole rest, then shorter prefixes at dots */
    for (size_t k = n;; ) {
        const struct mf_jval *v = geti_n(cur, path, k);

        if (v) {
            const struct mf_jval *r = k == n ? v : resolve(v, path + k + 1);

            if (r)
                return r;
        }
        while (k > 0 && path[k - 1] != '.')
            k--;
        if (k == 0)
            return NULL;
        k--;    /* the dot */
        if (k == 0)
            return NULL;
    }
}

const struct mf_jval *
mf_record_get(const struct mf_record *r, const char *path)
{
    return resolve(r->view, path);
}

const char *
mf_record_str(const struct mf_record *r, const char *path)
{
    return mf_jstrv(mf_record_get(r, path));
}
