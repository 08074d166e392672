/* check_ocsf.c - OCSF mapping table loader, class selection and builder. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "normalize.h"
#include "test_common.h"

/* A small valid table; tests patch one line of it at a time. */
static const char k_table[] =
    "version: 1\n"                                              /* 1 */
    "categories:\n"                                             /* 2 */
    "  3: Identity & Access Management\n"                       /* 3 */
    "  6: Application Activity\n"                               /* 4 */
    "classes:\n"                                                /* 5 */
    "  - uid: 6003\n"                                           /* 6 */
    "    name: API Activity\n"                                  /* 7 */
    "    activities: {1: Create, 2: Read, 3: Update, 4: Delete}\n" /* 8 */
    "  - uid: 3005\n"                                           /* 9 */
    "    name: User Access Management\n"                        /* 10 */
    "    activities: {1: Assign Privileges, 2: Revoke Privileges}\n" /* 11 */
    "operations:\n"                                             /* 12 */
    "  - {class: 3005, activity: 1, ops: [Add member to role.]}\n" /* 13 */
    "  - {class: 3005, activity: 2, ops: [Remove member from role.]}\n" /* 14 */
    "cmdlets:\n"                                                /* 15 */
    "  class: 6003\n"                                           /* 16 */
    "  verbs: {set: 3, new: 1, remove: 4}\n"                    /* 17 */
    "fallback: {class: 6003, activity: 99}\n";                  /* 18 */

/* k_table with line `line` (1-based) replaced by repl (NULL = deleted). */
static char *
patched(int line, const char *repl)
{
    size_t cap = sizeof k_table + (repl ? strlen(repl) : 0) + 2;
    char *out = calloc(1, cap);
    const char *p = k_table;
    int n = 1;

    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);
        if (n == line) {
            if (repl) {
                strcat(out, repl);
                strcat(out, "\n");
            }
        } else {
            strncat(out, p, len);
        }
        p += len;
        n++;
    }
    return out;
}

static struct mf_ocsf_map *
load_text(const char *text, struct mf_err *err)
{
    memset(err, 0, sizeof *err);
    return mf_ocsf_map_load("t.yaml", text, strlen(text), err);
}

/* Expect a load error mentioning both fragments. */
static void
expect_error(const char *text, const char *where, const char *what)
{
    struct mf_err err;
    struct mf_ocsf_map *m = load_text(text, &err);
    ck_assert_msg(m == NULL, "table loaded but should not:\n%s", text);
    ck_assert_msg(strstr(err.msg, where) != NULL, "error '%s' lacks '%s'", err.msg, where);
    ck_assert_msg(strstr(err.msg, what) != NULL, "error '%s' lacks '%s'", err.msg, what);
}

/* ---- mf_ocsf_map_load ----------------------------------------------------- */

START_TEST(load_valid_table)
{
    struct mf_err err;
    struct mf_ocsf_map *m = load_text(k_table, &err);
    ck_assert_msg(m != NULL, "%s", err.msg);
    mf_ocsf_map_destroy(m);
}
END_TEST

START_TEST(load_unknown_class)
{
    char *t = patched(13, "  - {class: 3009, activity: 1, ops: [Add member to role.]}");
    expect_error(t, "t.yaml:13:", "unknown class 3009");
    free(t);
}
END_TEST

START_TEST(load_class_without_builder)
{
    char *t = patched(9, "  - uid: 1001");
    expect_error(t, "t.yaml:9:", "unknown class 1001");
    free(t);
}
END_TEST

START_TEST(load_unknown_key)
{
    char *t = patched(14, "  - {class: 3005, activty: 2, ops: [Remove member from role.]}");
    expect_error(t, "t.yaml:14:", "unknown key 'activty'");
    free(t);
}
END_TEST

START_TEST(load_unknown_top_key)
{
    char *t = patched(18, "fallbak: {class: 6003, activity: 99}");
    expect_error(t, "t.yaml:18:", "unknown key 'fallbak'");
    free(t);
}
END_TEST

START_TEST(load_bad_activity)
{
    /* 1.8.0 User Access Management has no activity 3 (Assign Role) */
    char *t = patched(13, "  - {class: 3005, activity: 3, ops: [Add member to role.]}");
    expect_error(t, "t.yaml:13:", "has no activity 3");
    free(t);
}
END_TEST

START_TEST(load_bad_verb_activity)
{
    char *t = patched(17, "  verbs: {set: 3, new: 7}");
    expect_error(t, "t.yaml:17:", "has no activity 7");
    free(t);
}
END_TEST

START_TEST(load_duplicate_operation)
{
    char *t = patched(14, "  - {class: 3005, activity: 2, ops: [ADD MEMBER TO ROLE.]}");
    expect_error(t, "t.yaml:14:", "already mapped at line 13");
    free(t);
}
END_TEST

START_TEST(load_missing_fallback)
{
    char *t = patched(18, NULL);
    expect_error(t, "t.yaml:", "fallback");
    free(t);
}
END_TEST

START_TEST(load_entity_type_wrong_class)
{
    char *t = patched(13, "  - {class: 3005, activity: 1, entity_type: X, ops: [Add member to role.]}");
    expect_error(t, "t.yaml:13:", "entity_type");
    free(t);
}
END_TEST

START_TEST(load_bad_yaml)
{
    struct mf_err err;
    ck_assert_ptr_null(load_text("version: [1\n", &err));
    ck_assert_msg(err.msg[0] != '\0', "no message");
}
END_TEST

/* ---- mf_ocsf_map_load_builtin ----------------------------------------------- */

START_TEST(builtin_loads)
{
    struct mf_err err = {0};
    struct mf_ocsf_map *m = mf_ocsf_map_load_builtin(&err);
    ck_assert_msg(m != NULL, "built-in ocsf.yaml: %s", err.msg);
    mf_ocsf_map_destroy(m);
}
END_TEST

/* ---- records ------------------------------------------------------------------ */

struct rec {
    struct mf_arena a;
    struct mf_record r;
    char *text;
};

static void
rec_init(struct rec *x, const char *json)
{
    struct mf_jerror jerr;
    struct mf_jparse_info info = {0};
    struct mf_jval *root;

    mf_arena_init(&x->a, 64 * 1024);
    x->text = strdup(json);
    root = mf_json_parse(&x->a, x->text, strlen(x->text), NULL, &info, &jerr);
    ck_assert_msg(root != NULL, "test record: %s", jerr.msg);
    mf_record_init(&x->r, &x->a, root, x->text, strlen(x->text), NULL,
                   info.repaired_strings ? MF_REPAIR_UTF8 : 0);
}

static void
rec_fini(struct rec *x)
{
    mf_arena_fini(&x->a);
    free(x->text);
}

static int
class_of_op(const struct mf_ocsf_map *m, const char *op)
{
    char json[512];
    struct rec x;
    int c;
    snprintf(json, sizeof json,
             "{\"CreationTime\":\"2026-01-01T00:00:00\",\"Id\":\"x\",\"Operation\":\"%s\","
             "\"RecordType\":1,\"Workload\":\"Exchange\"}", op);
    rec_init(&x, json);
    c = mf_ocsf_class_of(m, &x.r);
    rec_fini(&x);
    return c;
}

static struct mf_ocsf_map *g_map;

static void
map_setup(void)
{
    struct mf_err err = {0};
    g_map = mf_ocsf_map_load_builtin(&err);
    ck_assert_msg(g_map != NULL, "%s", err.msg);
}

static void
map_teardown(void)
{
    mf_ocsf_map_destroy(g_map);
    g_map = NULL;
}

/* ---- mf_ocsf_class_of ---------------------------------------------------------- */

START_TEST(classof_table)
{
    static const struct {
        const char *op;
        int cls;
    } cases[] = {
        {"UserLoggedIn", 3002},        {"UserLoginFailed", 3002},
        {"MailboxLogin", 3002},        {"Add user.", 3001},
        {"Disable Strong Authentication.", 3001},
        {"Add member to role.", 3005}, {"Add-MailboxPermission", 3005},
        {"Add member to group.", 3006}, {"TeamCreated", 3006},
        {"Add service principal.", 3004}, {"New-InboxRule", 3004},
        {"Consent to application.", 3004},
        {"Send", 4009},                {"TIUrlClickData", 4012},
        {"MailItemsAccessed", 6001},   {"HardDelete", 6001},
        {"FileDownloaded", 6006},      {"AnonymousLinkCreated", 6006},
        {"AlertTriggered", 2004},      {"DlpRuleMatch", 2006},
        {"Set-Mailbox", 6003},         {"SearchCreated", 6003},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(class_of_op(g_map, cases[i].op) == cases[i].cls,
                      "%s: got %d, want %d", cases[i].op,
                      class_of_op(g_map, cases[i].op), cases[i].cls);
}
END_TEST

START_TEST(classof_case_insensitive)
{
    ck_assert_int_eq(class_of_op(g_map, "userloggedin"), 3002);
    ck_assert_int_eq(class_of_op(g_map, "ADD MEMBER TO ROLE."), 3005);
}
END_TEST

START_TEST(classof_trailing_period_matters)
{
    /* "Add member to role" without the period is not the Entra operation */
    ck_assert_int_eq(class_of_op(g_map, "Add member to role"), 6003);
}
END_TEST

START_TEST(classof_unknown_is_api_activity)
{
    ck_assert_int_eq(class_of_op(g_map, "SomethingNobodyKnows"), 6003);
    ck_assert_int_eq(class_of_op(g_map, ""), 6003);
}
END_TEST

static int
class_of_rt(const struct mf_ocsf_map *m, const char *op, int rt)
{
    char json[512];
    struct rec x;
    int c;
    snprintf(json, sizeof json,
             "{\"CreationTime\":\"2026-01-01T00:00:00\",\"Id\":\"x\",\"Operation\":\"%s\","
             "\"RecordType\":%d}", op, rt);
    rec_init(&x, json);
    c = mf_ocsf_class_of(m, &x.r);
    rec_fini(&x);
    return c;
}

START_TEST(classof_record_type_rules)
{
    /* alerts named by their Operation: the RecordType decides */
    ck_assert_int_eq(class_of_rt(g_map, "Impossible travel activity", 98), 2004);
    ck_assert_int_eq(class_of_rt(g_map, "Some new AIR thing", 64), 2004);
    /* a listed Operation still wins over its RecordType */
    ck_assert_int_eq(class_of_rt(g_map, "UserLoggedIn", 98), 3002);
    /* former fallbacks with a class now (issue 12) */
    ck_assert_int_eq(class_of_rt(g_map, "Add OAuth2PermissionGrant.", 8), 3004);
    ck_assert_int_eq(class_of_rt(g_map, "Remove app role assignment from service principal.", 8), 3004);
    ck_assert_int_eq(class_of_rt(g_map, "SharingInheritanceBroken", 14), 3004);
    ck_assert_int_eq(class_of_rt(g_map, "ChatCreated", 25), 3006);
    ck_assert_int_eq(class_of_rt(g_map, "GroupCreation", 22), 3006);
    ck_assert_int_eq(class_of_rt(g_map, "PageViewed", 4), 6006);
    ck_assert_int_eq(class_of_rt(g_map, "CreateArtifact", 20), 3004);
    ck_assert_int_eq(class_of_rt(g_map, "AIInteractionCreatedNotification", 25), 6001);
    ck_assert_int_eq(class_of_rt(g_map, "AirInvestigationData", 64), 2004);
    ck_assert_int_eq(class_of_rt(g_map, "SearchDataInsightsSubscription", 52), 6003);
    /* no table entry, no record-type entry: the fallback */
    ck_assert_int_eq(class_of_rt(g_map, "SomethingNobodyKnows", 22), 6003);
}
END_TEST

START_TEST(load_record_types_checked)
{
    char *t = patched(15, "record_types:\n  - {record_types: [98], class: 3005, activity: 1}\n"
                          "  - {record_types: [98], class: 6003, activity: 1}\ncmdlets:");
    expect_error(t, "t.yaml:", "RecordType 98 listed twice");
    free(t);
    t = patched(15, "record_types:\n  - {record_types: [98], class: 3009, activity: 1}\ncmdlets:");
    expect_error(t, "t.yaml:", "unknown class 3009");
    free(t);
    t = patched(15, "record_types:\n  - {record_types: [], class: 6003, activity: 1}\ncmdlets:");
    expect_error(t, "t.yaml:", "non-empty list");
    free(t);
}
END_TEST

/* ---- mf_ocsf_build ----------------------------------------------------------- */

static json_t *
build_json(const struct mf_ocsf_map *m, const char *json,
           const struct mf_tag_hits *tags, bool keep_raw)
{
    struct rec x;
    struct mf_buf b;
    json_error_t jerr;
    json_t *j;
    struct mf_jval *ev;

    rec_init(&x, json);
    ev = mf_ocsf_build(m, &x.r, tags, keep_raw);
    ck_assert_ptr_nonnull(ev);
    mf_buf_init(&b, 0);
    ck_assert_int_eq(mf_json_write(&b, ev), 0);
    j = json_loadb(b.data, b.len, 0, &jerr);
    ck_assert_msg(j != NULL, "output not JSON: %s", jerr.text);
    mf_buf_fini(&b);
    rec_fini(&x);
    return j;
}

static long long
jint_at(json_t *j, const char *key)
{
    return json_integer_value(json_object_get(j, key));
}

START_TEST(build_cmdlet_activity_from_verb)
{
    static const struct {
        const char *op;
        int activity;
    } cases[] = {
        {"New-Foo", 1}, {"Get-Foo", 2}, {"Set-Foo", 3}, {"Remove-Foo", 4},
        {"Frob-Foo", 99},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char rec[256];
        json_t *j;
        snprintf(rec, sizeof rec, "{\"Operation\":\"%s\",\"RecordType\":1,"
                 "\"CreationTime\":\"2026-01-01T00:00:00\"}", cases[i].op);
        j = build_json(g_map, rec, NULL, false);
        ck_assert_int_eq(jint_at(j, "class_uid"), 6003);
        ck_assert_msg(jint_at(j, "activity_id") == cases[i].activity, "%s: activity %lld",
                      cases[i].op, jint_at(j, "activity_id"));
        ck_assert_int_eq(jint_at(j, "type_uid"), 600300 + cases[i].activity);
        json_decref(j);
    }
}
END_TEST

START_TEST(build_common_fields)
{
    json_t *j = build_json(g_map,
        "{\"CreationTime\":\"2020-02-07T20:49:49\",\"Id\":\"id-1\","
        "\"Operation\":\"Delete user.\",\"OrganizationId\":\"org-1\",\"RecordType\":8,"
        "\"UserId\":\"a@example.org\",\"UserKey\":\"k1\",\"UserType\":2,"
        "\"Workload\":\"AzureActiveDirectory\",\"ObjectId\":\"b@example.org\","
        "\"ClientIP\":\"192.0.2.1:4431\",\"Odd\":{\"x\":1}}", NULL, false);
    json_t *md = json_object_get(j, "metadata");

    ck_assert_int_eq(jint_at(j, "class_uid"), 3001);
    ck_assert_int_eq(jint_at(j, "activity_id"), 6);
    ck_assert_int_eq(jint_at(j, "category_uid"), 3);
    ck_assert_int_eq(jint_at(j, "type_uid"), 300106);
    ck_assert_int_eq(jint_at(j, "time"), 1581108589000LL);   /* UTC */
    ck_assert_int_eq(jint_at(j, "severity_id"), 1);
    ck_assert_str_eq(json_string_value(json_object_get(md, "version")), "1.8.0");
    ck_assert_str_eq(json_string_value(json_object_get(md, "uid")), "id-1");
    ck_assert_str_eq(json_string_value(json_object_get(md, "tenant_uid")), "org-1");
    ck_assert_str_eq(json_string_value(json_object_get(md, "event_code")), "Delete user.");
    ck_assert_str_eq(json_string_value(json_object_get(md, "original_time")),
                     "2020-02-07T20:49:49");
    {
        json_t *au = json_object_get(json_object_get(j, "actor"), "user");
        json_t *src = json_object_get(j, "src_endpoint");
        json_t *um = json_object_get(j, "unmapped");
        ck_assert_str_eq(json_string_value(json_object_get(au, "name")), "a@example.org");
        ck_assert_str_eq(json_string_value(json_object_get(au, "uid")), "k1");
        ck_assert_int_eq(jint_at(au, "type_id"), 2);
        ck_assert_str_eq(json_string_value(json_object_get(src, "ip")), "192.0.2.1");
        ck_assert_int_eq(jint_at(src, "port"), 4431);
        ck_assert_str_eq(json_string_value(json_object_get(
            json_object_get(j, "user"), "name")), "b@example.org");
        ck_assert_str_eq(json_string_value(json_object_get(json_object_get(
            json_object_get(j, "cloud"), "account"), "uid")), "org-1");
        /* unmapped: what no attribute took, and nothing that was mapped */
        ck_assert_ptr_nonnull(json_object_get(um, "Odd"));
        ck_assert_ptr_nonnull(json_object_get(um, "RecordType"));
        ck_assert_ptr_null(json_object_get(um, "Id"));
        ck_assert_ptr_null(json_object_get(um, "UserId"));
        ck_assert_ptr_null(json_object_get(um, "ClientIP"));
        ck_assert_ptr_null(json_object_get(j, "raw_data"));
        ck_assert_ptr_null(json_object_get(j, "enrichments"));
    }
    json_decref(j);
}
END_TEST

START_TEST(build_every_member_kept)
{
    /* every top-level member of the record is mapped or under unmapped:
     * a record of unknown members keeps them all */
    json_t *j = build_json(g_map,
        "{\"A\":1,\"B\":[1,2],\"C\":{\"D\":null},\"E\":\"x\"}", NULL, false);
    json_t *um = json_object_get(j, "unmapped");
    ck_assert_int_eq(json_object_size(um), 4);
    ck_assert_int_eq(jint_at(j, "class_uid"), 6003);
    ck_assert_int_eq(jint_at(j, "activity_id"), 99);
    json_decref(j);
}
END_TEST

START_TEST(build_keep_raw)
{
    const char *rec = "{\"Operation\":\"Set-Mailbox\",  \"Id\":\"r1\"}";
    json_t *j = build_json(g_map, rec, NULL, true);
    ck_assert_str_eq(json_string_value(json_object_get(j, "raw_data")), rec);
    json_decref(j);
}
END_TEST

START_TEST(build_tags_enrichments_severity)
{
    static const char *const attack[] = {"T1098", NULL};
    struct mf_tag t1 = {.id = "identity.test_one", .title = "t", .area = MF_AREA_IDENTITY_ACCESS,
                        .severity = 2, .attack = attack, .n_attack = 1};
    struct mf_tag t2 = {.id = "data.test_two", .title = "t", .area = MF_AREA_DATA_PROTECTION,
                        .severity = 4, .attack = NULL, .n_attack = 0};
    struct mf_tag_hits hits = {.n = 2, .max_severity = 4, .top = &t2};
    json_t *j, *en, *e0, *labels;

    hits.hit[0].tag = &t1;
    hits.hit[0].severity = 2;
    hits.hit[1].tag = &t2;
    hits.hit[1].severity = 4;
    j = build_json(g_map, "{\"Operation\":\"Set-Mailbox\"}", &hits, false);
    ck_assert_int_eq(jint_at(j, "severity_id"), 4);
    ck_assert_str_eq(json_string_value(json_object_get(j, "severity")), "High");
    labels = json_object_get(json_object_get(j, "metadata"), "labels");
    ck_assert_int_eq(json_array_size(labels), 2);
    ck_assert_str_eq(json_string_value(json_array_get(labels, 0)), "identity.test_one");
    en = json_object_get(j, "enrichments");
    ck_assert_int_eq(json_array_size(en), 2);
    e0 = json_array_get(en, 0);
    ck_assert_str_eq(json_string_value(json_object_get(e0, "name")), "risk_tag");
    ck_assert_str_eq(json_string_value(json_object_get(e0, "value")), "identity.test_one");
    ck_assert_str_eq(json_string_value(json_object_get(e0, "type")), "m365fwd.risk");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(e0, "data"), "area")),
                     "identity_access");
    ck_assert_int_eq(jint_at(json_object_get(e0, "data"), "severity_id"), 2);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(
        json_object_get(e0, "data"), "attack"), 0)), "T1098");
    ck_assert_int_eq(json_array_size(json_object_get(json_object_get(
        json_array_get(en, 1), "data"), "attack")), 0);
    json_decref(j);
}
END_TEST

START_TEST(build_logon_status_from_error_number)
{
    /* ResultStatus says Succeeded, ErrorNumber says the logon failed */
    json_t *j = build_json(g_map,
        "{\"Operation\":\"UserLoggedIn\",\"ResultStatus\":\"Succeeded\","
        "\"ErrorNumber\":\"50053\",\"UserId\":\"a@example.org\"}", NULL, false);
    ck_assert_int_eq(jint_at(j, "class_uid"), 3002);
    ck_assert_int_eq(jint_at(j, "status_id"), 2);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status_code")), "50053");
    json_decref(j);
}
END_TEST

START_TEST(build_user_access_has_privileges)
{
    json_t *j = build_json(g_map,
        "{\"Operation\":\"Add member to role.\",\"ObjectId\":\"b@example.org\","
        "\"ModifiedProperties\":[{\"Name\":\"Role.DisplayName\","
        "\"NewValue\":\"Exchange Administrator\",\"OldValue\":\"\"}]}", NULL, false);
    json_t *p = json_object_get(j, "privileges");
    ck_assert_int_eq(jint_at(j, "class_uid"), 3005);
    ck_assert_int_eq(jint_at(j, "activity_id"), 1);
    ck_assert_int_eq(json_array_size(p), 1);
    ck_assert_str_eq(json_string_value(json_array_get(p, 0)), "Exchange Administrator");
    json_decref(j);
}
END_TEST

START_TEST(build_required_fallbacks)
{
    /* API Activity requires actor and src_endpoint even when the record
     * names neither */
    json_t *j = build_json(g_map, "{\"Operation\":\"Set-Mailbox\",\"ClientIP\":\"<null>\"}",
                           NULL, false);
    ck_assert_ptr_nonnull(json_object_get(j, "actor"));
    ck_assert_ptr_nonnull(json_object_get(j, "src_endpoint"));
    ck_assert_ptr_null(json_object_get(json_object_get(j, "src_endpoint"), "ip"));
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "unmapped"),
                                                       "ClientIP")), "<null>");
    json_decref(j);
}
END_TEST

START_TEST(build_update_user_mfa)
{
    static const struct {
        const char *mods;
        int activity;
    } cases[] = {
        {"[{\"Name\":\"StrongAuthenticationRequirement\",\"NewValue\":\"[]\","
         "\"OldValue\":\"[{\\\"State\\\":1}]\"}]", 11},
        {"[{\"Name\":\"StrongAuthenticationMethod\",\"NewValue\":\"[{\\\"MethodType\\\":6}]\","
         "\"OldValue\":\"[]\"}]", 10},
        {"[{\"Name\":\"DisplayName\",\"NewValue\":\"x\",\"OldValue\":\"y\"}]", 99},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char rec[512];
        json_t *j;
        snprintf(rec, sizeof rec, "{\"Operation\":\"Update user.\",\"ObjectId\":\"u@example.org\","
                 "\"ModifiedProperties\":%s}", cases[i].mods);
        j = build_json(g_map, rec, NULL, false);
        ck_assert_int_eq(jint_at(j, "class_uid"), 3001);
        ck_assert_msg(jint_at(j, "activity_id") == cases[i].activity, "case %zu: activity %lld",
                      i, jint_at(j, "activity_id"));
        json_decref(j);
    }
}
END_TEST

START_TEST(build_folder_type)
{
    json_t *j = build_json(g_map, "{\"Operation\":\"FolderCreated\","
                           "\"ObjectId\":\"https://x.example/sites/a/Docs/new\"}",
                           NULL, false);
    json_t *f = json_object_get(j, "file");
    ck_assert_int_eq(jint_at(j, "class_uid"), 6006);
    ck_assert_int_eq(jint_at(f, "type_id"), 2);
    ck_assert_str_eq(json_string_value(json_object_get(f, "name")), "new");
    json_decref(j);
}
END_TEST

static Suite *
ocsf_suite(void)
{
    Suite *s = suite_create("ocsf");
    TCase *tl = tcase_create("mf_ocsf_map_load");
    TCase *tb = tcase_create("mf_ocsf_map_load_builtin");
    TCase *tc = tcase_create("mf_ocsf_class_of");
    TCase *tbld = tcase_create("mf_ocsf_build");

    tcase_add_test(tl, load_valid_table);
    tcase_add_test(tl, load_unknown_class);
    tcase_add_test(tl, load_class_without_builder);
    tcase_add_test(tl, load_unknown_key);
    tcase_add_test(tl, load_unknown_top_key);
    tcase_add_test(tl, load_bad_activity);
    tcase_add_test(tl, load_bad_verb_activity);
    tcase_add_test(tl, load_duplicate_operation);
    tcase_add_test(tl, load_missing_fallback);
    tcase_add_test(tl, load_entity_type_wrong_class);
    tcase_add_test(tl, load_bad_yaml);
    tcase_add_test(tl, load_record_types_checked);
    suite_add_tcase(s, tl);

    tcase_add_test(tb, builtin_loads);
    suite_add_tcase(s, tb);

    tcase_add_checked_fixture(tc, map_setup, map_teardown);
    tcase_add_test(tc, classof_table);
    tcase_add_test(tc, classof_case_insensitive);
    tcase_add_test(tc, classof_trailing_period_matters);
    tcase_add_test(tc, classof_unknown_is_api_activity);
    tcase_add_test(tc, classof_record_type_rules);
    suite_add_tcase(s, tc);

    tcase_add_checked_fixture(tbld, map_setup, map_teardown);
    tcase_add_test(tbld, build_cmdlet_activity_from_verb);
    tcase_add_test(tbld, build_common_fields);
    tcase_add_test(tbld, build_every_member_kept);
    tcase_add_test(tbld, build_keep_raw);
    tcase_add_test(tbld, build_tags_enrichments_severity);
    tcase_add_test(tbld, build_logon_status_from_error_number);
    tcase_add_test(tbld, build_user_access_has_privileges);
    tcase_add_test(tbld, build_required_fallbacks);
    tcase_add_test(tbld, build_folder_type);
    tcase_add_test(tbld, build_update_user_mfa);
    suite_add_tcase(s, tbld);
    return s;
}

int
main(void)
{
    return mf_test_run(ocsf_suite());
}
