/* check_tags.c - risk-tag catalogue, rule language and per-tag cases.
 *
 * Per-tag cases live in tests/data/tags/<area>.ndjson, one JSON object per
 * line: {"name":..., "record":{...}, "expect":{"tag.id":severity,...},
 * "absent":["tag.id",...]}. Every catalogue tag needs at least one case that
 * raises it and one near miss that must not (tc_every_tag_covered).
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "json.h"
#include "record.h"
#include "rules.h"
#include "tags.h"
#include "test_common.h"

/* ---- shared fixtures --------------------------------------------------- */

static const char *const case_files[] = {
    "tags/identity.ndjson", "tags/device.ndjson", "tags/data.ndjson",
    "tags/collab.ndjson", "tags/monitor.ndjson", "tags/behavior.ndjson",
};
#define N_CASE_FILES (sizeof(case_files) / sizeof(case_files[0]))

struct tcase_data {
    char where[160];      /* file:line name */
    char *record;         /* compact JSON */
    json_t *expect;       /* object tag -> severity */
    json_t *absent;       /* array of tag ids */
};

static struct tcase_data *cases;
static size_t n_cases;
static char load_problem[512];
static struct mf_tagdb *builtin_db;

static void
load_cases(void)
{
    size_t f;

    for (f = 0; f < N_CASE_FILES; f++) {
        size_t len;
        char *text = mf_test_slurp(mf_test_data(case_files[f]), &len);
        char *line, *save = NULL;
        unsigned lineno = 0;

        if (!text) {
            snprintf(load_problem, sizeof(load_problem), "cannot read %s",
                     case_files[f]);
            continue;
        }
        for (line = strtok_r(text, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
            json_error_t jerr;
            json_t *o, *rec, *name;
            struct tcase_data *c;

            lineno++;
            if (line[0] == '\0' || line[0] == '#')
                continue;
            o = json_loads(line, 0, &jerr);
            rec = o ? json_object_get(o, "record") : NULL;
            if (!o || !json_is_object(rec)) {
                snprintf(load_problem, sizeof(load_problem),
                         "%s: bad case near line %u: %s", case_files[f],
                         lineno, o ? "no record" : jerr.text);
                json_decref(o);
                continue;
            }
            cases = realloc(cases, (n_cases + 1) * sizeof(*cases));
            if (!cases)
                abort();
            c = &cases[n_cases++];
            name = json_object_get(o, "name");
            snprintf(c->where, sizeof(c->where), "%s #%u %s", case_files[f],
                     lineno, json_is_string(name) ? json_string_value(name) : "");
            c->record = json_dumps(rec, JSON_COMPACT);
            c->expect = json_incref(json_object_get(o, "expect"));
            c->absent = json_incref(json_object_get(o, "absent"));
            json_decref(o);
        }
        free(text);
    }
}

/* Evaluate the built-in catalogue on a JSON record. */
static void
eval_json(const struct mf_tagdb *db, struct mf_arena *a, const char *text,
          struct mf_tag_hits *hits)
{
    struct mf_jval *root;
    struct mf_record rec;
    struct mf_jerror jerr;

    root = mf_json_parse(a, text, strlen(text), NULL, NULL, &jerr);
    ck_assert_msg(root != NULL, "parse: %s", jerr.msg);
    ck_assert_int_eq(mf_record_init(&rec, a, root, text, strlen(text), NULL, 0), 0);
    mf_tags_eval(db, &rec, hits);
}

static int
hit_severity(const struct mf_tag_hits *h, const char *id)
{
    size_t i;

    for (i = 0; i < h->n; i++)
        if (strcmp(h->hit[i].tag->id, id) == 0)
            return h->hit[i].severity;
    return 0;
}

static void
hits_text(const struct mf_tag_hits *h, char *buf, size_t sz)
{
    size_t i, o = 0;

    buf[0] = '\0';
    for (i = 0; i < h->n && o < sz; i++)
        o += (size_t)snprintf(buf + o, sz - o, "%s%s=%d", i ? "," : "",
                              h->hit[i].tag->id, h->hit[i].severity);
}

/* ---- mf_tags_eval(): per-tag cases ------------------------------------- */

START_TEST(te_case)
{
    struct tcase_data *c = &cases[_i];
    struct mf_arena a;
    struct mf_tag_hits hits;
    const char *key;
    json_t *val;
    size_t i;
    char got[1024];

    ck_assert_ptr_nonnull(builtin_db);
    mf_arena_init(&a, 8192);
    eval_json(builtin_db, &a, c->record, &hits);
    hits_text(&hits, got, sizeof(got));
    json_object_foreach(c->expect, key, val) {
        ck_assert_msg(mf_tagdb_find(builtin_db, key) != NULL,
                      "%s: unknown tag %s in case", c->where, key);
        ck_assert_msg(hit_severity(&hits, key) == (int)json_integer_value(val),
                      "%s: expected %s=%d, got [%s]", c->where, key,
                      (int)json_integer_value(val), got);
    }
    for (i = 0; i < json_array_size(c->absent); i++) {
        const char *id = json_string_value(json_array_get(c->absent, i));

        ck_assert_msg(id && mf_tagdb_find(builtin_db, id) != NULL,
                      "%s: unknown tag in absent", c->where);
        ck_assert_msg(hit_severity(&hits, id) == 0,
                      "%s: %s must not be raised, got [%s]", c->where, id, got);
    }
    mf_arena_fini(&a);
}
END_TEST

START_TEST(te_cases_loaded)
{
    ck_assert_msg(load_problem[0] == '\0', "%s", load_problem);
    ck_assert_uint_gt(n_cases, 2 * 74 - 1);
}
END_TEST

START_TEST(te_every_tag_covered)
{
    size_t t, i;
    char missing[2048];
    size_t o = 0;

    ck_assert_ptr_nonnull(builtin_db);
    missing[0] = '\0';
    for (t = 0; t < mf_tagdb_count(builtin_db); t++) {
        const char *id = mf_tagdb_at(builtin_db, t)->id;
        bool raised = false, near = false;

        for (i = 0; i < n_cases; i++) {
            if (json_object_get(cases[i].expect, id))
                raised = true;
            for (size_t k = 0; k < json_array_size(cases[i].absent); k++)
                if (strcmp(json_string_value(json_array_get(cases[i].absent, k)),
                           id) == 0)
                    near = true;
        }
        if ((!raised || !near) && o < sizeof(missing))
            o += (size_t)snprintf(missing + o, sizeof(missing) - o, " %s(%s%s)",
                                  id, raised ? "" : "no raising case",
                                  near ? "" : " no near miss");
    }
    ck_assert_msg(o == 0, "tags without cases:%s", missing);
}
END_TEST

START_TEST(te_hits_order_and_top)
{
    /* New-InboxRule that forwards externally and deletes: two hits in
     * catalogue order; the top is the most severe */
    static const char rec[] =
        "{\"CreationTime\":\"2024-10-08T05:08:37\",\"Id\":\"x\",\"Operation\":\"New-InboxRule\","
        "\"RecordType\":1,\"ResultStatus\":\"True\",\"UserType\":2,\"Workload\":\"Exchange\","
        "\"UserId\":\"adam@contoso.onmicrosoft.com\",\"OrganizationName\":\"contoso.onmicrosoft.com\","
        "\"Parameters\":[{\"Name\":\"ForwardTo\",\"Value\":\"x@evil.example\"},"
        "{\"Name\":\"Name\",\"Value\":\"Rule 1\"},{\"Name\":\"DeleteMessage\",\"Value\":\"True\"}]}";
    struct mf_arena a;
    struct mf_tag_hits h;
    size_t i_fwd = 99, i_hide = 99, i, j;

    mf_arena_init(&a, 4096);
    eval_json(builtin_db, &a, rec, &h);
    ck_assert_uint_eq(h.n, 2);
    for (i = 0; i < h.n; i++) {
        if (strcmp(h.hit[i].tag->id, "behavior.inbox_rule_forwarding") == 0)
            i_fwd = i;
        if (strcmp(h.hit[i].tag->id, "behavior.inbox_rule_hiding") == 0)
            i_hide = i;
    }
    ck_assert_uint_lt(i_fwd, i_hide);   /* catalogue order */
    for (i = 0, j = 0; i < mf_tagdb_count(builtin_db); i++)
        if (mf_tagdb_at(builtin_db, i) == h.hit[0].tag)
            j = 1;
        else if (mf_tagdb_at(builtin_db, i) == h.hit[1].tag)
            ck_assert_uint_eq(j, 1);
    ck_assert_int_eq(h.max_severity, 5);
    ck_assert_str_eq(h.top->id, "behavior.inbox_rule_forwarding");
    mf_arena_fini(&a);
}
END_TEST

START_TEST(te_no_hits)
{
    static const char rec[] =
        "{\"CreationTime\":\"2024-10-08T05:08:37\",\"Id\":\"x\",\"Operation\":\"FileAccessed\","
        "\"RecordType\":6,\"UserType\":0,\"Workload\":\"SharePoint\",\"UserId\":\"a@b.com\"}";
    static const char noop[] = "{\"Id\":\"y\"}";
    struct mf_arena a;
    struct mf_tag_hits h;

    mf_arena_init(&a, 4096);
    eval_json(builtin_db, &a, rec, &h);
    ck_assert_uint_eq(h.n, 0);
    ck_assert_int_eq(h.max_severity, 0);
    ck_assert_ptr_null(h.top);
    eval_json(builtin_db, &a, noop, &h);
    ck_assert_uint_eq(h.n, 0);
    mf_tags_eval(NULL, NULL, &h);
    ck_assert_uint_eq(h.n, 0);
    mf_arena_fini(&a);
}
END_TEST

START_TEST(te_odd_shapes)
{
    /* fields the rules read, in every wrong shape: never a crash, and the
     * exclusions still apply */
    static const char *const ops[] = {
        "Set-Mailbox", "New-InboxRule", "UpdateInboxRules", "Update user.",
        "Add member to role.", "DlpRuleMatch", "UserLoggedIn", "AlertTriggered",
        "MailItemsAccessed", "New-TransportRule", "SharingPolicyChanged",
        "Consent to application.", "TIUrlClickData", "ChatCreated", "",
    };
    static const char *const bodies[] = {
        "\"Parameters\":\"-Identity \\\"x\\\" -ForwardingSmtpAddress \\\"a@evil.example\\\"\"",
        "\"Parameters\":[{\"Name\":null,\"Value\":[1,{\"a\":[]}]},{\"Value\":\"x\"},7]",
        "\"ModifiedProperties\":17,\"ExtendedProperties\":\"{not json\"",
        "\"ModifiedProperties\":[{\"Name\":\"StrongAuthenticationRequirement\",\"OldValue\":{\"State\":1},\"NewValue\":[[[]]]}]",
        "\"PolicyDetails\":[[[{\"Rules\":[null,{\"Severity\":[\"High\",{}]}]}]]],\"Severity\":{}",
        "\"OperationProperties\":[{\"Name\":\"RuleActions\",\"Value\":\"[{\\\"ActionType\\\":\\\"ForwardToRecipientsAction\\\",\\\"Recipients\\\":[\\\"@@@\\\",\\\"a@\\\",\\\"@b.c\\\"]}]\"}]",
        "\"UserId\":[\"a@b.c\"],\"OrganizationName\":7,\"MailboxOwnerUPN\":{\"x\":1},\"LogonType\":\"1\"",
        "\"DeviceProperties\":\"\",\"ErrorNumber\":[],\"ParticipantInfo\":\"{\\\"HasForeignTenantUsers\\\":true}\"",
    };
    struct mf_arena a;
    struct mf_tag_hits h;
    char rec[2048];
    size_t i, j, k;

    mf_arena_init(&a, 4096);
    for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        for (j = 0; j < sizeof(bodies) / sizeof(bodies[0]); j++) {
            snprintf(rec, sizeof(rec),
                     "{\"Operation\":\"%s\",\"UserType\":0,%s}", ops[i], bodies[j]);
            eval_json(builtin_db, &a, rec, &h);
            ck_assert_uint_le(h.n, MF_TAGS_MAX_HITS);
            for (k = 0; k < h.n; k++)
                ck_assert(h.hit[k].severity >= 1 && h.hit[k].severity <= 5);
            /* the same as a system actor: only tags that include them
             * (identity.mfa_disabled does: Entra logs MFA changes under
             * the MFA service) */
            snprintf(rec, sizeof(rec),
                     "{\"Operation\":\"%s\",\"UserType\":4,%s}", ops[i], bodies[j]);
            eval_json(builtin_db, &a, rec, &h);
            for (k = 0; k < h.n; k++)
                ck_assert_msg(strncmp(h.hit[k].tag->id, "identity.", 9) != 0 ||
                              strcmp(h.hit[k].tag->id, "identity.mfa_disabled") == 0,
                              "%s raised for a system actor", h.hit[k].tag->id);
            mf_arena_reset(&a);
        }
    mf_arena_fini(&a);
}
END_TEST

START_TEST(te_speed)
{
    /* not a benchmark: make sure a record costs microseconds, not more */
    static const char rec[] =
        "{\"CreationTime\":\"2023-07-23T09:17:45\",\"Id\":\"01d9\",\"Operation\":\"UserLoggedIn\","
        "\"RecordType\":15,\"ResultStatus\":\"Success\",\"UserType\":0,\"Workload\":\"AzureActiveDirectory\","
        "\"ClientIP\":\"2a09:bac1:820:8::1a:9c\",\"UserId\":\"Henrietta@contoso.onmicrosoft.com\","
        "\"ExtendedProperties\":[{\"Name\":\"ResultStatusDetail\",\"Value\":\"Success\"},"
        "{\"Name\":\"UserAgent\",\"Value\":\"Mozilla/5.0\"},{\"Name\":\"RequestType\",\"Value\":\"OAuth2:Token\"}],"
        "\"DeviceProperties\":[{\"Name\":\"OS\",\"Value\":\"Windows 10\"},"
        "{\"Name\":\"IsCompliantAndManaged\",\"Value\":\"False\"}],\"ErrorNumber\":\"0\"}";
    struct mf_arena a;
    struct mf_record r;
    struct mf_jval *root;
    struct mf_tag_hits h;
    struct timespec t0, t1;
    double us;
    int i;

    mf_arena_init(&a, 8192);
    root = mf_json_parse(&a, rec, strlen(rec), NULL, NULL, NULL);
    ck_assert_ptr_nonnull(root);
    mf_record_init(&r, &a, root, rec, strlen(rec), NULL, 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 0; i < 20000; i++)
        mf_tags_eval(builtin_db, &r, &h);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    us = ((double)(t1.tv_sec - t0.tv_sec) * 1e6 +
          (double)(t1.tv_nsec - t0.tv_nsec) / 1e3) / 20000.0;
    printf("# mf_tags_eval: %.2f us per sign-in record\n", us);
    ck_assert_uint_ge(h.n, 1);
    ck_assert_msg(us < 200.0, "%.1f us per record", us);
    mf_arena_fini(&a);
}
END_TEST

/* ---- mf_tagdb_load() --------------------------------------------------- */

static const char *const expected_ids[] = {
    "identity.mfa_disabled", "identity.mfa_method_changed",
    "identity.mfa_trusted_ips_changed", "identity.conditional_access_changed",
    "identity.privileged_role_assigned", "identity.role_assigned_to_service_principal",
    "identity.exchange_role_assigned", "identity.mailbox_full_access_granted",
    "identity.app_credential_added", "identity.service_principal_added",
    "identity.app_owner_added", "identity.app_multitenant_enabled",
    "identity.app_consent_granted", "identity.app_privileged_permission_granted",
    "identity.risky_app_consent_allowed", "identity.federation_changed",
    "identity.cross_tenant_access_changed", "identity.account_created",
    "identity.password_reset_by_admin", "identity.login_failed",
    "identity.legacy_or_ropc_auth", "identity.device_code_login",
    "device.unmanaged_signin", "device.unknown_device_signin",
    "device.unmanaged_sync_blocked", "device.access_policy_weakened",
    "device.registration_change", "device.noncompliant_reported",
    "data.dlp_match", "data.dlp_override", "data.dlp_policy_weakened",
    "data.label_removed", "data.label_downgraded", "data.label_mismatch",
    "data.scripted_file_access", "data.malware_in_file", "data.ediscovery_export",
    "data.admin_mail_access", "data.transport_rule_forwarding",
    "collab.anonymous_link_created", "collab.anonymous_link_used",
    "collab.external_share", "collab.company_link_created",
    "collab.sharing_policy_weakened", "collab.guest_user_added",
    "collab.site_admin_added", "collab.mailbox_folder_shared",
    "collab.teams_external_chat", "collab.teams_external_access_enabled",
    "monitor.ual_disabled", "monitor.mailbox_audit_bypass",
    "monitor.mailbox_audit_weakened", "monitor.advanced_audit_removed",
    "monitor.email_protection_weakened", "monitor.org_config_changed",
    "monitor.security_alert", "monitor.alert_updated",
    "monitor.admin_submission_malicious", "behavior.inbox_rule_forwarding",
    "behavior.mailbox_smtp_forwarding", "behavior.inbox_rule_hiding",
    "behavior.mailbox_accessed_by_other", "behavior.send_as_other",
    "behavior.phish_delivered", "behavior.phish_url_clicked",
    "behavior.user_reported_phish", "behavior.legacy_mail_protocol_enabled",
    "behavior.sending_restricted", "monitor.collection_gap",
    "data.ediscovery_case_changed", "data.quarantine_message_exported",
    "collab.permission_level_added", "collab.sharing_invitation_blocked",
    "monitor.quarantine_message_released",
};
#define N_EXPECTED (sizeof(expected_ids) / sizeof(expected_ids[0]))

START_TEST(tl_builtin_exact_ids)
{
    size_t i;

    ck_assert_ptr_nonnull(builtin_db);
    ck_assert_uint_eq(N_EXPECTED, 74);
    ck_assert_uint_eq(mf_tagdb_count(builtin_db), N_EXPECTED);
    for (i = 0; i < N_EXPECTED; i++)
        ck_assert_msg(mf_tagdb_find(builtin_db, expected_ids[i]) != NULL,
                      "missing %s", expected_ids[i]);
    ck_assert_ptr_null(mf_tagdb_find(builtin_db, "identity.password_spray"));
    ck_assert_ptr_null(mf_tagdb_at(builtin_db, N_EXPECTED));
}
END_TEST

START_TEST(tl_builtin_fields)
{
    const struct mf_tag *t;
    size_t i;

    t = mf_tagdb_find(builtin_db, "identity.mfa_disabled");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->area, MF_AREA_IDENTITY_ACCESS);
    ck_assert_int_eq(t->severity, 4);
    ck_assert_uint_eq(t->n_attack, 1);
    ck_assert_str_eq(t->attack[0], "T1556.006");
    ck_assert_ptr_null(t->attack[1]);
    t = mf_tagdb_find(builtin_db, "behavior.inbox_rule_hiding");
    ck_assert_int_eq(t->area, MF_AREA_MONITORING_RESPONSE);
    t = mf_tagdb_find(builtin_db, "behavior.inbox_rule_forwarding");
    ck_assert_int_eq(t->area, MF_AREA_DATA_PROTECTION);
    t = mf_tagdb_find(builtin_db, "behavior.send_as_other");
    ck_assert_int_eq(t->area, MF_AREA_IDENTITY_ACCESS);
    t = mf_tagdb_find(builtin_db, "monitor.collection_gap");
    ck_assert_int_eq(t->area, MF_AREA_MONITORING_RESPONSE);
    ck_assert_int_eq(t->severity, 4);
    t = mf_tagdb_find(builtin_db, "monitor.ual_disabled");
    ck_assert_int_eq(t->severity, 5);
    for (i = 0; i < mf_tagdb_count(builtin_db); i++) {
        t = mf_tagdb_at(builtin_db, i);
        ck_assert(t->severity >= 1 && t->severity <= 5);
        ck_assert(t->title && t->title[0]);
        ck_assert_ptr_nonnull(t->attack);
        ck_assert_ptr_null(t->attack[t->n_attack]);
    }
}
END_TEST

static const char tag_head[] =
    "version: 1\n"
    "tags:\n"
    "  - id: identity.ok\n"
    "    title: fine\n"
    "    area: identity_access\n"
    "    severity: 2\n"
    "    match:\n"
    "      operation: X\n";

struct bad_yaml {
    const char *name;
    const char *tail;      /* appended after tag_head */
    const char *want;      /* substring of the message */
};

static const struct bad_yaml bad_cases[] = {
    {"unknown key",
     "  - id: identity.b\n    title: t\n    area: identity_access\n"
     "    severity: 2\n    severty: 3\n    match: {operation: Y}\n",
     "t.yaml:13: unknown key 'severty'"},
    {"unknown area",
     "  - id: identity.b\n    title: t\n    area: identity\n"
     "    severity: 2\n    match: {operation: Y}\n",
     "t.yaml:11: identity.b: unknown area 'identity'"},
    {"severity range",
     "  - id: identity.b\n    title: t\n    area: identity_access\n"
     "    severity: 6\n    match: {operation: Y}\n",
     "t.yaml:12: identity.b: severity must be an integer 1..5"},
    {"severity zero",
     "  - id: identity.b\n    title: t\n    area: identity_access\n"
     "    severity: 0\n    match: {operation: Y}\n",
     "t.yaml:12:"},
    {"unknown primitive",
     "  - id: identity.b\n    title: t\n    area: identity_access\n"
     "    severity: 2\n    match:\n      operaton: Y\n",
     "t.yaml:14: unknown primitive 'operaton'"},
    {"unknown field operator",
     "  - id: identity.b\n    title: t\n    area: identity_access\n"
     "    severity: 2\n    match:\n      field: A\n      equal: Y\n",
     "t.yaml:15: unknown field operator 'equal'"},
    {"bad regex",
     "  - id: identity.b\n    title: t\n    area: identity_access\n"
     "    severity: 2\n    match:\n      operation_matches: '(ab'\n",
     "t.yaml:14: bad regular expression"},
    {"bad regex in field",
     "  - id: identity.b\n    title: t\n    area: identity_access\n"
     "    severity: 2\n    match:\n      field: A\n      matches: '[z-a]'\n",
     "t.yaml:15: bad regular expression"},
    {"duplicate id",
     "  - id: identity.ok\n    title: t\n    area: identity_access\n"
     "    severity: 2\n    match: {operation: Y}\n",
     "t.yaml:9: duplicate tag id 'identity.ok'"},
    {"empty match",
     "  - id: identity.b\n    title: t\n    area: identity_access\n"
     "    severity: 2\n    match: {}\n",
     "t.yaml:13: a condition must be a non-empty mapping"},
    {"missing match",
     "  - id: identity.b\n    title: t\n    area: identity_access\n"
     "    severity: 2\n",
     "identity.b: missing match"},
    {"empty any",
     "  - id: identity.b\n    title: t\n    area: identity_access\n"
     "    severity: 2\n    match:\n      any: []\n",
     "t.yaml:14: 'any' needs a non-empty list"},
    {"two primaries",
     "  - id: identity.b\n    title: t\n    area: identity_access\n"
     "    severity: 2\n    match:\n      operation: Y\n      workload: Z\n",
     "t.yaml:15: 'operation' and 'workload' in one condition"},
    {"bad id",
     "  - id: Identity.B\n    title: t\n    area: identity_access\n"
     "    severity: 2\n    match: {operation: Y}\n",
     "t.yaml:9: tag id must be"},
    {"bad technique",
     "  - id: identity.b\n    title: t\n    area: identity_access\n"
     "    severity: 2\n    attack: [TA0001]\n    match: {operation: Y}\n",
     "t.yaml:13: identity.b: bad ATT&CK technique id"},
    {"field without operator",
     "  - id: identity.b\n    title: t\n    area: identity_access\n"
     "    severity: 2\n    match:\n      field: A\n",
     "t.yaml:14: field 'A' has no operator"},
    {"bad outcome",
     "  - id: identity.b\n    title: t\n    area: identity_access\n"
     "    severity: 2\n    outcome: failed\n    match: {operation: Y}\n",
     "t.yaml:13: identity.b: outcome must be any or not_failure"},
    {"adjust without value",
     "  - id: identity.b\n    title: t\n    area: identity_access\n"
     "    severity: 2\n    match: {operation: Y}\n    adjust:\n"
     "      - when: {operation: Y}\n",
     "t.yaml:15: adjust entry needs"},
    {"adjust set out of range",
     "  - id: identity.b\n    title: t\n    area: identity_access\n"
     "    severity: 2\n    match: {operation: Y}\n    adjust:\n"
     "      - {when: {operation: Y}, set: 9}\n",
     "t.yaml:15: severity must be an integer 1..5"},
    {"severity_from bad map value",
     "  - id: identity.b\n    title: t\n    area: identity_access\n"
     "    severity: 2\n    match: {operation: Y}\n    severity_from:\n"
     "      field: Severity\n      map: {low: high}\n",
     "t.yaml:16: severity must be an integer 1..5"},
    {"record_type not a number",
     "  - id: identity.b\n    title: t\n    area: identity_access\n"
     "    severity: 2\n    match: {record_type: Exchange}\n",
     "t.yaml:13: expected an integer"},
    {"exists combined",
     "  - id: identity.b\n    title: t\n    area: identity_access\n"
     "    severity: 2\n    match: {field: A, exists: true, equals: x}\n",
     "t.yaml:13: 'exists' cannot be combined"},
};

START_TEST(tl_bad_yaml)
{
    const struct bad_yaml *b = &bad_cases[_i];
    char text[2048];
    struct mf_err err;
    struct mf_tagdb *db;

    snprintf(text, sizeof(text), "%s%s", tag_head, b->tail);
    db = mf_tagdb_load("t.yaml", text, strlen(text), &err);
    ck_assert_msg(db == NULL, "%s: loaded", b->name);
    ck_assert_msg(strstr(err.msg, b->want) != NULL, "%s: got '%s', want '%s'",
                  b->name, err.msg, b->want);
}
END_TEST

START_TEST(tl_good_minimal)
{
    struct mf_err err;
    struct mf_tagdb *db = mf_tagdb_load("t.yaml", tag_head, strlen(tag_head), &err);

    ck_assert_msg(db != NULL, "%s", err.msg);
    ck_assert_uint_eq(mf_tagdb_count(db), 1);
    ck_assert_uint_eq(mf_tagdb_at(db, 0)->n_attack, 0);
    ck_assert_ptr_null(mf_tagdb_at(db, 0)->attack[0]);
    mf_tagdb_destroy(db);
}
END_TEST

START_TEST(tl_top_level)
{
    static const char *const texts[] = {
        "version: 2\ntags: []\n",
        "version: 1\ntags: []\n",
        "version: 1\nrules: []\n",
        "- a\n- b\n",
        "version: 1\ntags:\n  - [unclosed\n",
        "",
    };
    struct mf_err err;
    size_t i;

    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        ck_assert_ptr_null(mf_tagdb_load("t.yaml", texts[i], strlen(texts[i]), &err));
        ck_assert_msg(strncmp(err.msg, "t.yaml:", 7) == 0, "%zu: '%s'", i, err.msg);
    }
    mf_tagdb_destroy(NULL);
}
END_TEST

/* ---- rule language (mf_cond_eval() through small catalogues) ----------- */

struct lang_case {
    const char *match;     /* YAML of the match block, indented 6 */
    const char *record;    /* JSON */
    bool want;
};

static const struct lang_case lang_cases[] = {
    /* case-insensitive operation, list */
    {"      operation: [add member to role., Other]\n",
     "{\"Operation\":\"Add member to ROLE.\"}", true},
    {"      operation: Add member to role.\n",
     "{\"Operation\":\"Add member to role\"}", false},
    {"      operation_matches: '^Set-.*Policy$'\n",
     "{\"Operation\":\"set-antiphishpolicy\"}", true},
    {"      record_type: [1, 18]\n", "{\"RecordType\":\"18\"}", true},
    {"      record_type: 1\n", "{\"RecordType\":2}", false},
    {"      workload: exchange\n", "{\"Workload\":\"Exchange\"}", true},
    {"      user_type: [3, 4]\n", "{\"UserType\":4}", true},
    {"      system_actor: true\n",
     "{\"UserId\":\"NT AUTHORITY\\\\SYSTEM (Microsoft.Exchange.ServiceHost)\"}", true},
    {"      system_actor: true\n", "{\"UserId\":\"bob@contoso.com\",\"UserType\":0}", false},
    {"      outcome: failure\n", "{\"Operation\":\"X\",\"ResultStatus\":\"Failed\"}", true},
    {"      outcome: [success]\n", "{\"Operation\":\"X\",\"ResultStatus\":\"True\"}", true},
    {"      outcome: unknown\n", "{\"Operation\":\"X\"}", true},
    /* Name/Value flattening and case-insensitive keys */
    {"      field: parameters.forwardto\n      nonempty: true\n",
     "{\"Parameters\":[{\"Name\":\"ForwardTo\",\"Value\":\"a@b.com\"}]}", true},
    {"      field: Parameters.ForwardTo\n      nonempty: true\n",
     "{\"Parameters\":[{\"Name\":\"ForwardTo\",\"Value\":\"\"}]}", false},
    {"      field: Parameters.ForwardTo\n      nonempty: true\n",
     "{\"Parameters\":[{\"Name\":\"ForwardTo\",\"Value\":\"$null\"}]}", false},
    {"      field: Parameters.ForwardTo\n      nonempty: false\n",
     "{\"Parameters\":[]}", true},
    /* dotted keys: ModifiedProperties Name "Role.DisplayName" */
    {"      field: ModifiedProperties.Role.DisplayName.NewValue\n      equals: Global Administrator\n",
     "{\"ModifiedProperties\":[{\"Name\":\"Role.DisplayName\",\"NewValue\":\"Global Administrator\",\"OldValue\":\"\"}]}",
     true},
    /* arrays fan out at every level */
    {"      field: PolicyDetails.Rules.Severity\n      equals: high\n",
     "{\"PolicyDetails\":[{\"Rules\":[{\"Severity\":\"Low\"}]},{\"Rules\":[{\"Severity\":\"Low\"},{\"Severity\":\"High\"}]}]}",
     true},
    {"      field: PolicyDetails.Rules.Severity\n      equals: medium\n",
     "{\"PolicyDetails\":[{\"Rules\":[{\"Severity\":\"Low\"}]}]}", false},
    /* star segment */
    {"      field: ModifiedProperties.*.NewValue\n      equals: AllowFullAccess\n",
     "{\"ModifiedProperties\":[{\"Name\":\"Whatever\",\"NewValue\":\"AllowFullAccess\",\"OldValue\":\"x\"}]}",
     true},
    /* containers are matched through their JSON text */
    {"      field: Target\n      contains: B2BManagementPolicy\n",
     "{\"Target\":[{\"ID\":\"B2BManagementPolicy_1\",\"Type\":2}]}", true},
    {"      field: ExtendedProperties.additionalDetails\n      matches: '\"UserType\":\"Guest\"'\n",
     "{\"ExtendedProperties\":[{\"Name\":\"additionalDetails\",\"Value\":\"{\\\"UserType\\\":\\\"Guest\\\"}\"}]}",
     true},
    /* numbers, strings holding numbers */
    {"      field: ErrorNumber\n      gt: 0\n", "{\"ErrorNumber\":\"50126\"}", true},
    {"      field: ErrorNumber\n      gt: 0\n", "{\"ErrorNumber\":\"0\"}", false},
    {"      field: ErrorNumber\n      le: 10\n", "{\"ErrorNumber\":\"abc\"}", false},
    {"      field: LabelEventType\n      equals: 3\n", "{\"LabelEventType\":3}", true},
    {"      field: LabelEventType\n      equals: 3\n", "{\"LabelEventType\":\"3\"}", true},
    {"      field: Name\n      max_len: 3\n", "{\"Name\":\"...\"}", true},
    {"      field: Name\n      max_len: 3\n", "{\"Name\":\"Accounts\"}", false},
    {"      field: Name\n      min_len: 2\n      max_len: 3\n", "{\"Name\":\"ab\"}", true},
    {"      field: Name\n      min_len: 2\n", "{\"Name\":\"\xc3\xa9\"}", false},
    /* exists */
    {"      field: A.B\n      exists: true\n", "{\"a\":{\"b\":null}}", true},
    {"      field: A.B\n      exists: false\n", "{\"a\":{\"c\":1}}", true},
    {"      field: A.B\n      exists: true\n", "{\"a\":\"b\"}", false},
    /* equals_field */
    {"      not:\n        field: UserId\n        equals_field: MailboxOwnerUPN\n",
     "{\"UserId\":\"Bob@contoso.com\",\"MailboxOwnerUPN\":\"bob@contoso.com\"}", false},
    {"      not:\n        field: UserId\n        equals_field: MailboxOwnerUPN\n",
     "{\"UserId\":\"eve@contoso.com\",\"MailboxOwnerUPN\":\"bob@contoso.com\"}", true},
    /* external */
    {"      field: Parameters.ForwardingSmtpAddress\n      external: true\n",
     "{\"UserId\":\"m@contoso.onmicrosoft.com\",\"Parameters\":[{\"Name\":\"ForwardingSmtpAddress\",\"Value\":\"smtp:bla@bla.com\"}]}",
     true},
    {"      field: Parameters.ForwardingSmtpAddress\n      external: true\n",
     "{\"UserId\":\"m@contoso.onmicrosoft.com\",\"Parameters\":[{\"Name\":\"ForwardingSmtpAddress\",\"Value\":\"smtp:boss@contoso.onmicrosoft.com\"}]}",
     false},
    /* any / all / not */
    {"      all:\n        - operation: X\n        - not: {workload: Exchange}\n",
     "{\"Operation\":\"X\",\"Workload\":\"SharePoint\"}", true},
    {"      all:\n        - operation: X\n        - not: {workload: Exchange}\n",
     "{\"Operation\":\"X\",\"Workload\":\"Exchange\"}", false},
    {"      any:\n        - operation: Y\n        - field: Z\n          equals: 1\n",
     "{\"Operation\":\"X\",\"Z\":1}", true},
    /* missing and odd values never crash and never match */
    {"      field: Parameters.ForwardTo\n      matches: '.'\n",
     "{\"Parameters\":\"not a list\"}", false},
    {"      field: A.B.C\n      equals: x\n", "{\"A\":[1,[2,[{\"B\":{\"C\":[\"y\",\"X\"]}}]]]}", true},
};

START_TEST(tc_lang)
{
    const struct lang_case *lc = &lang_cases[_i];
    char text[2048];
    struct mf_err err;
    struct mf_tagdb *db;
    struct mf_arena a;
    struct mf_tag_hits h;

    snprintf(text, sizeof(text),
             "version: 1\ntags:\n  - id: identity.t\n    title: t\n"
             "    area: identity_access\n    severity: 2\n"
             "    system_actors: include\n    outcome: any\n    match:\n%s",
             lc->match);
    db = mf_tagdb_load("t.yaml", text, strlen(text), &err);
    ck_assert_msg(db != NULL, "case %d: %s", _i, err.msg);
    mf_arena_init(&a, 4096);
    eval_json(db, &a, lc->record, &h);
    ck_assert_msg((h.n == 1) == lc->want, "case %d (%s) on %s: got %zu hits",
                  _i, lc->match, lc->record, h.n);
    mf_arena_fini(&a);
    mf_tagdb_destroy(db);
}
END_TEST

START_TEST(tc_pinning)
{
    /* an unpinned rule (regex) and pinned ones evaluate in catalogue order */
    static const char text[] =
        "version: 1\ntags:\n"
        "  - {id: identity.a, title: a, area: identity_access, severity: 1,"
        " match: {operation_matches: '^Op'}}\n"
        "  - {id: identity.b, title: b, area: identity_access, severity: 2,"
        " match: {all: [{operation: [OpB, OpC]}, {field: X, exists: true}]}}\n"
        "  - {id: identity.c, title: c, area: identity_access, severity: 3,"
        " match: {any: [{operation: OpB}, {operation: OpD}]}}\n"
        "  - {id: identity.d, title: d, area: identity_access, severity: 4,"
        " match: {any: [{operation: OpB}, {field: Y, exists: true}]}}\n";
    struct mf_err err;
    struct mf_tagdb *db = mf_tagdb_load("t.yaml", text, sizeof(text) - 1, &err);
    struct mf_arena a;
    struct mf_tag_hits h;

    ck_assert_msg(db != NULL, "%s", err.msg);
    mf_arena_init(&a, 4096);
    eval_json(db, &a, "{\"Operation\":\"opb\",\"X\":1}", &h);
    ck_assert_uint_eq(h.n, 4);
    ck_assert_str_eq(h.hit[0].tag->id, "identity.a");
    ck_assert_str_eq(h.hit[1].tag->id, "identity.b");
    ck_assert_str_eq(h.hit[2].tag->id, "identity.c");
    ck_assert_str_eq(h.hit[3].tag->id, "identity.d");
    ck_assert_ptr_eq(h.top, h.hit[3].tag);
    eval_json(db, &a, "{\"Operation\":\"OpD\"}", &h);
    ck_assert_uint_eq(h.n, 2);
    ck_assert_str_eq(h.hit[1].tag->id, "identity.c");
    eval_json(db, &a, "{\"Operation\":\"Zzz\",\"Y\":0}", &h);
    ck_assert_uint_eq(h.n, 1);
    ck_assert_str_eq(h.hit[0].tag->id, "identity.d");
    mf_arena_fini(&a);
    mf_tagdb_destroy(db);
}
END_TEST

START_TEST(tc_exclusions)
{
    static const char text[] =
        "version: 1\ntags:\n"
        "  - {id: identity.def, title: a, area: identity_access, severity: 1,"
        " match: {operation: Op}}\n"
        "  - {id: identity.sys, title: b, area: identity_access, severity: 2,"
        " system_actors: include, match: {operation: Op}}\n"
        "  - {id: identity.any, title: c, area: identity_access, severity: 3,"
        " outcome: any, match: {operation: Op}}\n";
    struct mf_err err;
    struct mf_tagdb *db = mf_tagdb_load("t.yaml", text, sizeof(text) - 1, &err);
    struct mf_arena a;
    struct mf_tag_hits h;

    ck_assert_msg(db != NULL, "%s", err.msg);
    mf_arena_init(&a, 4096);
    eval_json(db, &a, "{\"Operation\":\"Op\",\"UserType\":0,\"ResultStatus\":\"Succeeded\"}", &h);
    ck_assert_uint_eq(h.n, 3);
    eval_json(db, &a, "{\"Operation\":\"Op\",\"UserType\":0}", &h);
    ck_assert_uint_eq(h.n, 3);
    eval_json(db, &a, "{\"Operation\":\"Op\",\"UserType\":4}", &h);
    ck_assert_uint_eq(h.n, 1);
    ck_assert_str_eq(h.hit[0].tag->id, "identity.sys");
    eval_json(db, &a, "{\"Operation\":\"Op\",\"UserId\":\"DlpAgent\",\"ResultStatus\":\"Failed\"}", &h);
    ck_assert_uint_eq(h.n, 0);
    eval_json(db, &a, "{\"Operation\":\"Op\",\"ResultStatus\":\"False\"}", &h);
    ck_assert_uint_eq(h.n, 1);
    ck_assert_str_eq(h.hit[0].tag->id, "identity.any");
    mf_arena_fini(&a);
    mf_tagdb_destroy(db);
}
END_TEST

START_TEST(tc_severity)
{
    static const char text[] =
        "version: 1\ntags:\n"
        "  - id: data.s\n    title: s\n    area: data_protection\n    severity: 2\n"
        "    system_actors: include\n    outcome: any\n"
        "    match: {operation: M}\n"
        "    severity_from: {field: P.R.Severity, map: {low: 2, medium: 3, high: 4}}\n"
        "    adjust:\n"
        "      - {when: {field: P.R.Actions, equals: BlockAccess}, add: 1}\n"
        "      - {when: {field: Force, equals: 'true'}, set: 1}\n"
        "      - {when: {field: Boost, exists: true}, add: 4}\n";
    static const struct { const char *rec; int sev; } sc[] = {
        {"{\"Operation\":\"M\"}", 2},
        {"{\"Operation\":\"M\",\"P\":[{\"R\":[{\"Severity\":\"Low\"},{\"Severity\":\"Medium\"}]}]}", 3},
        {"{\"Operation\":\"M\",\"P\":[{\"R\":[{\"Severity\":\"High\",\"Actions\":[\"NotifyUser\",\"BlockAccess\"]}]}]}", 5},
        {"{\"Operation\":\"M\",\"P\":[{\"R\":[{\"Severity\":\"weird\"}]}]}", 2},
        {"{\"Operation\":\"M\",\"P\":[{\"R\":[{\"Severity\":\"High\"}]}],\"Force\":\"True\"}", 1},
        {"{\"Operation\":\"M\",\"P\":[{\"R\":[{\"Severity\":\"High\"}]}],\"Boost\":1}", 5},
    };
    struct mf_err err;
    struct mf_tagdb *db = mf_tagdb_load("t.yaml", text, sizeof(text) - 1, &err);
    struct mf_arena a;
    struct mf_tag_hits h;
    size_t i;

    ck_assert_msg(db != NULL, "%s", err.msg);
    mf_arena_init(&a, 4096);
    for (i = 0; i < sizeof(sc) / sizeof(sc[0]); i++) {
        eval_json(db, &a, sc[i].rec, &h);
        ck_assert_uint_eq(h.n, 1);
        ck_assert_msg(h.hit[0].severity == sc[i].sev, "%zu: got %d want %d", i,
                      h.hit[0].severity, sc[i].sev);
        ck_assert_int_eq(h.max_severity, sc[i].sev);
    }
    mf_arena_fini(&a);
    mf_tagdb_destroy(db);
}
END_TEST

/* ---- mf_rules_text_external() ------------------------------------------ */

struct xcase {
    const char *rec;
    const char *text;
    bool ext;
};

/* Each case's text judged for its record, with the accepted domains doms
 * (n_doms 0: none configured). */
static void
check_external(const struct xcase *xc, size_t n, const char *const *doms, size_t n_doms)
{
    struct mf_arena a;

    mf_arena_init(&a, 4096);
    for (size_t i = 0; i < n; i++) {
        struct mf_record r;
        struct mf_jval *root = mf_json_parse(&a, xc[i].rec, strlen(xc[i].rec),
                                             NULL, NULL, NULL);

        ck_assert_ptr_nonnull(root);
        mf_record_init(&r, &a, root, NULL, 0, NULL, 0);
        r.domains = doms;
        r.n_domains = n_doms;
        ck_assert_msg(mf_rules_text_external(&r, xc[i].text, strlen(xc[i].text)) == xc[i].ext,
                      "%zu: %s vs %s", i, xc[i].rec, xc[i].text);
    }
    mf_arena_fini(&a);
}

START_TEST(tx_domains)
{
    static const struct xcase xc[] = {
        {"{\"UserId\":\"adam@contoso.onmicrosoft.com\"}", "johndoe@gmail.com", true},
        {"{\"UserId\":\"adam@contoso.onmicrosoft.com\"}", "smtp:eve@contoso.onmicrosoft.com", false},
        {"{\"UserId\":\"adam@contoso.onmicrosoft.com\"}", "a@contoso.com", false},
        {"{\"UserId\":\"adam@contoso.com\"}", "a@mail.contoso.com", false},
        {"{\"UserId\":\"adam@contoso.com\"}", "a@notcontoso.com", true},
        {"{\"UserId\":\"adam@contoso.com\"}", "b@contoso.com; c@evil.example", true},
        {"{\"UserId\":\"adam@contoso.com\"}", "b@contoso.com, SMTP:c@Contoso.COM", false},
        {"{\"UserId\":\"adam@contoso.com\"}", "\"Boss\" [SMTP:x@fabrikam.example]", true},
        {"{\"UserId\":\"adam@contoso.com\"}", "Display Name Only", false},
        {"{\"UserId\":\"S-1-5-21\",\"OrganizationName\":\"contoso.onmicrosoft.com\"}", "x@gmail.com", true},
        {"{\"UserId\":\"S-1-5-21\"}", "x@gmail.com", false},
        {"{\"UserId\":\"a@contoso.com\"}", "@gmail.com", false},
        {"{\"UserId\":\"a@contoso.com\"}", "x@localhost", false},
    };

    check_external(xc, sizeof(xc) / sizeof(xc[0]), NULL, 0);
}
END_TEST

START_TEST(tx_accepted_domains)
{
    /* configured accepted domains (tenants[].domains) replace what the
     * record says: a partner admin's own domain is not internal, a second
     * accepted domain is */
    static const char *const doms[] = {"contoso.com", "contoso.onmicrosoft.com",
                                       "fabrikam-subsidiary.example"};
    static const struct xcase xc[] = {
        {"{\"UserId\":\"tech@partner.example\"}", "x@partner.example", true},
        {"{\"UserId\":\"tech@partner.example\"}", "x@fabrikam-subsidiary.example", false},
        {"{\"UserId\":\"adam@contoso.com\"}", "x@eu.contoso.com", false},
        {"{\"UserId\":\"adam@contoso.com\"}", "x@contoso.co", true},
        {"{\"UserId\":\"S-1-5-21\"}", "x@gmail.com", true},
        {"{\"UserId\":\"S-1-5-21\"}", "smtp:x@CONTOSO.COM", false},
    };

    check_external(xc, sizeof(xc) / sizeof(xc[0]), doms, sizeof(doms) / sizeof(doms[0]));
}
END_TEST

/* ---- mf_area_name() / mf_area_parse() ---------------------------------- */

START_TEST(ta_roundtrip)
{
    int i;
    enum mf_area a;

    for (i = 0; i < MF_AREA_COUNT; i++) {
        ck_assert_int_eq(mf_area_parse(mf_area_name((enum mf_area)i), &a), 0);
        ck_assert_int_eq(a, i);
    }
    ck_assert_str_eq(mf_area_name(MF_AREA_COLLABORATION_SHARING), "collaboration_sharing");
    ck_assert_int_eq(mf_area_parse("identity", &a), -1);
    ck_assert_int_eq(mf_area_parse(NULL, &a), -1);
    ck_assert_str_eq(mf_area_name(MF_AREA_COUNT), "unknown");
}
END_TEST

static Suite *
tags_suite(void)
{
    Suite *s = suite_create("tags");
    TCase *tc;

    tc = tcase_create("mf_tags_eval()");
    tcase_add_test(tc, te_cases_loaded);
    tcase_add_test(tc, te_every_tag_covered);
    tcase_add_loop_test(tc, te_case, 0, (int)n_cases);
    tcase_add_test(tc, te_hits_order_and_top);
    tcase_add_test(tc, te_no_hits);
    tcase_add_test(tc, te_odd_shapes);
    tcase_add_test(tc, te_speed);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_tagdb_load()");
    tcase_add_test(tc, tl_builtin_exact_ids);
    tcase_add_test(tc, tl_builtin_fields);
    tcase_add_loop_test(tc, tl_bad_yaml, 0,
                        (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
    tcase_add_test(tc, tl_good_minimal);
    tcase_add_test(tc, tl_top_level);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_cond_eval()");
    tcase_add_loop_test(tc, tc_lang, 0,
                        (int)(sizeof(lang_cases) / sizeof(lang_cases[0])));
    tcase_add_test(tc, tc_pinning);
    tcase_add_test(tc, tc_exclusions);
    tcase_add_test(tc, tc_severity);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_rules_text_external()");
    tcase_add_test(tc, tx_domains);
    tcase_add_test(tc, tx_accepted_domains);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_area_name()");
    tcase_add_test(tc, ta_roundtrip);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    struct mf_err err;
    int rc;
    size_t i;

    builtin_db = mf_tagdb_load_builtin(&err);
    if (!builtin_db)
        fprintf(stderr, "built-in catalogue: %s\n", err.msg);
    load_cases();
    rc = mf_test_run(tags_suite());
    for (i = 0; i < n_cases; i++) {
        free(cases[i].record);
        json_decref(cases[i].expect);
        json_decref(cases[i].absent);
    }
    free(cases);
    mf_tagdb_destroy(builtin_db);
    return rc;
}
