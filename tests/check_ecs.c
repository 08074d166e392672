/* check_ecs.c - ECS table loading and the key mapping decisions of
 * mf_ecs_build(). Events are built from small records written here,
 * serialized with our writer and read back with jansson (the reference
 * parser) so the assertions see exactly what goes out. */
#include <check.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "normalize.h"
#include "test_common.h"

static struct mf_ecs_map *map;
static struct mf_arena arena;

static void
setup(void)
{
    struct mf_err err = {0};

    map = mf_ecs_map_load_builtin(&err);
    ck_assert_msg(map != NULL, "built-in ecs.yaml: %s", err.msg);
    mf_arena_init(&arena, 64 * 1024);
}

static void
teardown(void)
{
    mf_ecs_map_destroy(map);
    map = NULL;
    mf_arena_fini(&arena);
}

/* Normalize one record to ECS and return it as a jansson object. */
static json_t *
ecs_of_tags(const char *rec, const struct mf_tag_hits *tags, bool keep_raw)
{
    struct mf_jerror jerr;
    struct mf_jparse_info info = { 0 };
    struct mf_record r;
    struct mf_jval *raw, *ev;
    struct mf_buf out;
    json_error_t e;
    json_t *j;

    mf_arena_reset(&arena);
    raw = mf_json_parse(&arena, rec, strlen(rec), NULL, &info, &jerr);
    ck_assert_msg(raw != NULL, "test record is not JSON: %s", jerr.msg);
    ck_assert_int_eq(mf_record_init(&r, &arena, raw, rec, strlen(rec), NULL,
                                    info.repaired_strings ? MF_REPAIR_UTF8 : 0), 0);
    ev = mf_ecs_build(map, &r, tags, keep_raw);
    ck_assert_ptr_nonnull(ev);
    mf_buf_init(&out, 0);
    ck_assert_int_eq(mf_json_write(&out, ev), 0);
    j = json_loadb(out.data, out.len, 0, &e);
    ck_assert_msg(j != NULL, "output is not JSON: %s", e.text);
    mf_buf_fini(&out);
    return j;
}

static json_t *
ecs_of(const char *rec)
{
    return ecs_of_tags(rec, NULL, false);
}

/* Dotted path into nested objects. */
static json_t *
jp(json_t *root, const char *path)
{
    char buf[256], *save = NULL, *tok;
    json_t *v = root;

    snprintf(buf, sizeof buf, "%s", path);
    for (tok = strtok_r(buf, ".", &save); tok && v; tok = strtok_r(NULL, ".", &save))
        v = json_object_get(v, tok);
    return v;
}

static const char *
js(json_t *root, const char *path)
{
    return json_string_value(jp(root, path));
}

/* Does array (or scalar) at path contain string s? */
static bool
jhas(json_t *root, const char *path, const char *s)
{
    json_t *v = jp(root, path), *it;
    size_t i;

    if (json_is_string(v))
        return strcmp(json_string_value(v), s) == 0;
    json_array_foreach(v, i, it)
        if (json_is_string(it) && strcmp(json_string_value(it), s) == 0)
            return true;
    return false;
}

#define REC(extra) "{\"Id\":\"id-1\",\"CreationTime\":\"2026-03-02T09:15:22\"," \
    "\"OrganizationId\":\"0B1C2D3E-4F50\",\"UserType\":0," extra "}"

/* ---- mf_ecs_map_load --------------------------------------------------- */

static void
expect_load_error(const char *yaml, const char *needle)
{
    struct mf_err err = {0};
    struct mf_ecs_map *m = mf_ecs_map_load("t.yaml", yaml, strlen(yaml), &err);

    ck_assert_msg(m == NULL, "loaded although it should fail (%s)", needle);
    ck_assert_msg(strstr(err.msg, needle) != NULL, "error '%s' lacks '%s'",
                  err.msg, needle);
}

START_TEST(ml_minimal_ok)
{
    struct mf_err err = {0};
    const char *y = "version: 1\n";
    struct mf_ecs_map *m = mf_ecs_map_load("t.yaml", y, strlen(y), &err);

    ck_assert_msg(m != NULL, "%s", err.msg);
    mf_ecs_map_destroy(m);
}
END_TEST

START_TEST(ml_unknown_top_key_line)
{
    expect_load_error("version: 1\noutcome:\n  ok: success\nfeilds: []\n",
                      "t.yaml:4: unknown key 'feilds'");
}
END_TEST

START_TEST(ml_bad_category_line)
{
    expect_load_error("version: 1\noperations:\n"
                      "  - {ops: [A], category: [iam]}\n"
                      "  - {ops: [B], category: [identity]}\n",
                      "t.yaml:4: 'identity' is not an ECS event.category");
}
END_TEST

START_TEST(ml_bad_type_line)
{
    expect_load_error("version: 1\nrecord_type_rules:\n"
                      "  15:\n    type: [begin]\n",
                      "t.yaml:4: 'begin' is not an ECS event.type");
}
END_TEST

START_TEST(ml_unknown_target_line)
{
    expect_load_error("version: 1\nfields:\n"
                      "  - {from: A, to: user.id}\n"
                      "  - {from: B, to: user.nickname}\n",
                      "t.yaml:4: unknown ECS target field 'user.nickname'");
}
END_TEST

START_TEST(ml_code_only_target_refused)
{
    /* event.severity is computed, not copied */
    expect_load_error("version: 1\nfields:\n  - {from: A, to: event.severity}\n",
                      "t.yaml:3: unknown ECS target field 'event.severity'");
}
END_TEST

START_TEST(ml_unknown_rule_key_line)
{
    expect_load_error("version: 1\nfields:\n"
                      "  - from: A\n    to: user.id\n    if_absnet: true\n",
                      "t.yaml:5: unknown key 'if_absnet'");
}
END_TEST

START_TEST(ml_bad_record_type_key)
{
    expect_load_error("version: 1\nrecord_types:\n  1: ExchangeAdmin\n  x2: Foo\n",
                      "t.yaml:4: 'x2' is not a RecordType number");
}
END_TEST

START_TEST(ml_bad_outcome_value)
{
    expect_load_error("version: 1\noutcome:\n  ok: success\n  meh: maybe\n",
                      "t.yaml:4: 'maybe' is not an allowed event.outcome");
}
END_TEST

START_TEST(ml_bad_version)
{
    expect_load_error("version: 2\n", "t.yaml:1: version must be");
}
END_TEST

START_TEST(ml_missing_version)
{
    expect_load_error("outcome: {}\n", "version must be");
}
END_TEST

START_TEST(ml_bad_path)
{
    expect_load_error("version: 1\nfields:\n  - {from: \"A..B\", to: user.id}\n",
                      "t.yaml:3: bad path");
}
END_TEST

START_TEST(ml_empty_op_rule)
{
    expect_load_error("version: 1\noperations:\n  - {ops: [A]}\n",
                      "t.yaml:3: operations entry sets nothing");
}
END_TEST

START_TEST(ml_differs_from_fanout)
{
    expect_load_error("version: 1\nfields:\n"
                      "  - {from: A, to: user.id, differs_from: \"B[].C\"}\n",
                      "t.yaml:3: differs_from must not fan out");
}
END_TEST

START_TEST(ml_new_keys_checked)
{
    expect_load_error("version: 1\noutcome_missing: maybe\n", "not an ECS event.outcome");
    expect_load_error("version: 1\naudit: {maps: [Parameters], colors: {}}\n",
                      "unknown key 'colors'");
    expect_load_error("version: 1\nfields:\n  - {from: X, to: file.name, require: url}\n",
                      "require must be");
    expect_load_error("version: 1\nfields:\n  - {from: X, to: file.name, as: attachments}\n",
                      "'as: attachments' goes with");
    expect_load_error("version: 1\nfields:\n  - {from: X, to: email.attachments}\n",
                      "'as: attachments' goes with");
}
END_TEST

START_TEST(ml_bad_yaml)
{
    struct mf_err err = {0};
    const char *y = "version: 1\nfields: [\n";

    ck_assert_ptr_null(mf_ecs_map_load("t.yaml", y, strlen(y), &err));
    ck_assert_msg(strstr(err.msg, "t.yaml") != NULL, "%s", err.msg);
}
END_TEST

/* ---- mf_ecs_map_load_builtin / destroy --------------------------------- */

START_TEST(mlb_loads)
{
    struct mf_err err = {0};
    struct mf_ecs_map *m = mf_ecs_map_load_builtin(&err);

    ck_assert_msg(m != NULL, "%s", err.msg);
    mf_ecs_map_destroy(m);
}
END_TEST

START_TEST(md_null_is_noop)
{
    mf_ecs_map_destroy(NULL);
}
END_TEST

/* ---- mf_ecs_build: ClientIP forms ------------------------------------- */

START_TEST(eb_clientip_v4_port)
{
    json_t *j = ecs_of(REC("\"RecordType\":1,\"Operation\":\"Set-Mailbox\","
                           "\"ClientIP\":\"203.0.113.77:50412\""));

    ck_assert_str_eq(js(j, "client.ip"), "203.0.113.77");
    ck_assert_int_eq(json_integer_value(jp(j, "client.port")), 50412);
    ck_assert_str_eq(js(j, "source.ip"), "203.0.113.77");
    ck_assert_int_eq(json_integer_value(jp(j, "source.port")), 50412);
    /* Elastic's pipeline: the address itself, without the port */
    ck_assert_str_eq(js(j, "client.address"), "203.0.113.77");
    ck_assert_str_eq(js(j, "network.type"), "ipv4");
    ck_assert(jhas(j, "related.ip", "203.0.113.77"));
    json_decref(j);
}
END_TEST

START_TEST(eb_clientip_v6_bracket_port)
{
    json_t *j = ecs_of(REC("\"RecordType\":1,\"Operation\":\"Set-Mailbox\","
                           "\"ClientIP\":\"[2001:db8::abcd]:12345\""));

    ck_assert_str_eq(js(j, "client.ip"), "2001:db8::abcd");
    ck_assert_int_eq(json_integer_value(jp(j, "client.port")), 12345);
    ck_assert_str_eq(js(j, "network.type"), "ipv6");
    json_decref(j);
}
END_TEST

START_TEST(eb_clientip_bare_v6)
{
    json_t *j = ecs_of(REC("\"RecordType\":15,\"Operation\":\"UserLoggedIn\","
                           "\"ClientIP\":\"2001:db8::1\""));

    ck_assert_str_eq(js(j, "client.ip"), "2001:db8::1");
    ck_assert_ptr_null(jp(j, "client.port"));
    json_decref(j);
}
END_TEST

START_TEST(eb_clientip_mapped_v4)
{
    json_t *j = ecs_of(REC("\"RecordType\":2,\"Operation\":\"Send\","
                           "\"ClientIP\":\"::ffff:10.11.12.13\""));

    ck_assert_str_eq(js(j, "client.ip"), "10.11.12.13");
    ck_assert_str_eq(js(j, "network.type"), "ipv4");
    json_decref(j);
}
END_TEST

START_TEST(eb_clientip_null_forms)
{
    static const char *const forms[] = { "null", "\"\"", "\"<null>\"", "\"null\"" };

    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char rec[512];
        json_t *j;
        snprintf(rec, sizeof rec, REC("\"RecordType\":8,\"Operation\":\"Update user.\","
                                      "\"ClientIP\":%s"), forms[i]);
        j = ecs_of(rec);
        ck_assert_msg(jp(j, "client") == NULL, "client set for %s", forms[i]);
        ck_assert_ptr_null(jp(j, "source"));
        ck_assert_ptr_null(jp(j, "network"));
        ck_assert_ptr_null(jp(j, "related.ip"));
        json_decref(j);
    }
}
END_TEST

START_TEST(eb_clientip_fallback_clientipaddress)
{
    json_t *j = ecs_of(REC("\"RecordType\":50,\"Operation\":\"MailItemsAccessed\","
                           "\"ClientIPAddress\":\"198.51.100.9\""));

    ck_assert_str_eq(js(j, "client.ip"), "198.51.100.9");
    json_decref(j);
}
END_TEST

/* ---- user.* ----------------------------------------------------------- */

START_TEST(eb_user_split)
{
    json_t *j = ecs_of(REC("\"RecordType\":15,\"Operation\":\"UserLoggedIn\","
                           "\"UserId\":\"alice@contoso.com\""));

    ck_assert_str_eq(js(j, "user.id"), "alice@contoso.com");
    ck_assert_str_eq(js(j, "user.email"), "alice@contoso.com");
    ck_assert_str_eq(js(j, "user.name"), "alice");
    ck_assert_str_eq(js(j, "user.domain"), "contoso.com");
    ck_assert(jhas(j, "related.user", "alice"));
    /* no OrganizationName: host.name falls back to the user's domain */
    ck_assert_str_eq(js(j, "host.name"), "contoso.com");
    json_decref(j);
}
END_TEST

START_TEST(eb_user_not_address)
{
    json_t *j = ecs_of(REC("\"RecordType\":1,\"Operation\":\"Set-Mailbox\","
                           "\"UserId\":\"NT AUTHORITY\\\\SYSTEM (Microsoft.Exchange.ServiceHost)\""));

    ck_assert_str_eq(js(j, "user.id"),
                     "NT AUTHORITY\\SYSTEM (Microsoft.Exchange.ServiceHost)");
    ck_assert_ptr_null(jp(j, "user.email"));
    ck_assert_ptr_null(jp(j, "user.name"));
    json_decref(j);
}
END_TEST

START_TEST(eb_user_target_role)
{
    json_t *j = ecs_of(REC("\"RecordType\":8,\"Operation\":\"Add member to role.\","
                           "\"ResultStatus\":\"Success\",\"UserId\":\"admin@contoso.com\","
                           "\"ObjectId\":\"mallory@contoso.com\""));

    ck_assert_str_eq(js(j, "user.target.id"), "mallory@contoso.com");
    ck_assert_str_eq(js(j, "user.target.name"), "mallory");
    ck_assert(jhas(j, "event.category", "iam"));
    ck_assert(jhas(j, "event.type", "user"));
    ck_assert(jhas(j, "event.type", "change"));
    ck_assert(jhas(j, "related.user", "mallory"));
    json_decref(j);
}
END_TEST

START_TEST(eb_mailbox_owner)
{
    json_t *j = ecs_of(REC("\"RecordType\":2,\"Operation\":\"SendAs\","
                           "\"UserId\":\"mallory@contoso.com\","
                           "\"MailboxOwnerUPN\":\"ceo@contoso.com\""));

    /* the actor stays the actor; the mailbox owner is the target */
    ck_assert_str_eq(js(j, "user.email"), "mallory@contoso.com");
    ck_assert_str_eq(js(j, "user.target.email"), "ceo@contoso.com");
    json_decref(j);
}
END_TEST

START_TEST(eb_own_mailbox_no_target)
{
    json_t *j = ecs_of(REC("\"RecordType\":50,\"Operation\":\"MailItemsAccessed\","
                           "\"UserId\":\"Dana@contoso.com\","
                           "\"MailboxOwnerUPN\":\"dana@contoso.com\""));

    ck_assert_ptr_null(jp(j, "user.target"));
    ck_assert_str_eq(js(j, "user.email"), "Dana@contoso.com");
    json_decref(j);
}
END_TEST

START_TEST(eb_sid_actor_owner_email)
{
    /* no address in UserId: Elastic's user.email <- MailboxOwnerUPN */
    json_t *j = ecs_of(REC("\"RecordType\":2,\"Operation\":\"Send\","
                           "\"UserId\":\"S-1-5-21-1-2-3-4\","
                           "\"MailboxOwnerUPN\":\"ceo@contoso.com\""));

    ck_assert_str_eq(js(j, "user.id"), "S-1-5-21-1-2-3-4");
    ck_assert_str_eq(js(j, "user.email"), "ceo@contoso.com");
    json_decref(j);
}
END_TEST

/* ---- outcome ---------------------------------------------------------- */

START_TEST(eb_outcome_missing_is_success)
{
    /* Elastic's convention: SharePoint/OneDrive/Teams log what happened */
    json_t *j = ecs_of(REC("\"RecordType\":6,\"Operation\":\"FileDownloaded\""));

    ck_assert_str_eq(js(j, "event.outcome"), "success");
    json_decref(j);
    /* ... but a logon without ResultStatus still follows ErrorNumber */
    j = ecs_of(REC("\"RecordType\":15,\"Operation\":\"UserLoggedIn\","
                   "\"ErrorNumber\":\"50126\""));
    ck_assert_str_eq(js(j, "event.outcome"), "failure");
    json_decref(j);
}
END_TEST

START_TEST(eb_outcome_words)
{
    static const struct { const char *rs, *want; } cases[] = {
        { "\"True\"", "success" }, { "\"Succeeded\"", "success" },
        { "\"PartiallySucceeded\"", "success" }, { "\"Success\"", "success" },
        { "\"False\"", "failure" }, { "\"Failed\"", "failure" },
        { "\"InProgress\"", "success" }, { "true", "success" },
        { "\"Failure\"", "failure" },
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char rec[512];
        json_t *j;
        snprintf(rec, sizeof rec, REC("\"RecordType\":1,\"Operation\":\"Set-Mailbox\","
                                      "\"ResultStatus\":%s"), cases[i].rs);
        j = ecs_of(rec);
        ck_assert_msg(strcmp(js(j, "event.outcome"), cases[i].want) == 0,
                      "%s -> %s, want %s", cases[i].rs, js(j, "event.outcome"),
                      cases[i].want);
        json_decref(j);
    }
}
END_TEST

START_TEST(eb_outcome_sts_error_number)
{
    /* ResultStatus says the HTTP call worked; the logon failed */
    json_t *j = ecs_of(REC("\"RecordType\":15,\"Operation\":\"UserLoginFailed\","
                           "\"ResultStatus\":\"Success\",\"ErrorNumber\":\"50126\","
                           "\"LogonError\":\"InvalidUserNameOrPassword\""));

    ck_assert_str_eq(js(j, "event.outcome"), "failure");
    ck_assert(jhas(j, "event.category", "authentication"));
    ck_assert(jhas(j, "event.category", "web"));
    ck_assert(jhas(j, "event.type", "start"));
    ck_assert_str_eq(js(j, "event.code"), "AzureActiveDirectoryStsLogon");
    json_decref(j);
}
END_TEST

/* ---- flattening under o365.audit -------------------------------------- */

START_TEST(eb_flatten_parameters)
{
    json_t *j = ecs_of(REC("\"RecordType\":1,\"Operation\":\"New-InboxRule\","
                           "\"ResultStatus\":\"True\",\"Parameters\":["
                           "{\"Name\":\"ForwardTo\",\"Value\":\"x@fabrikam.example\"},"
                           "{\"Name\":\"Mark As.Read\",\"Value\":\"True\"}]"));

    ck_assert_str_eq(js(j, "o365.audit.Parameters.ForwardTo"), "x@fabrikam.example");
    ck_assert_str_eq(json_string_value(json_object_get(jp(j, "o365.audit.Parameters"),
                                                       "Mark_As_Read")), "True");
    ck_assert_str_eq(js(j, "o365.audit.Operation"), "New-InboxRule");
    ck_assert(jhas(j, "event.category", "configuration"));
    ck_assert(jhas(j, "event.category", "email"));
    ck_assert(jhas(j, "event.type", "creation"));
    ck_assert_str_eq(js(j, "event.action"), "New-InboxRule");
    ck_assert_str_eq(js(j, "event.code"), "ExchangeAdmin");
    json_decref(j);
}
END_TEST

START_TEST(eb_flatten_modified_properties)
{
    json_t *j = ecs_of(REC("\"RecordType\":8,\"Operation\":\"Add member to role.\","
                           "\"ModifiedProperties\":[{\"Name\":\"Role.DisplayName\","
                           "\"OldValue\":\"\",\"NewValue\":\"Global Administrator\"}]"));
    json_t *mp = jp(j, "o365.audit.ModifiedProperties");

    ck_assert_ptr_nonnull(mp);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(mp,
                     "Role_DisplayName"), "NewValue")), "Global Administrator");
    ck_assert_ptr_null(json_object_get(mp, "Role.DisplayName"));
    json_decref(j);
}
END_TEST

START_TEST(eb_flatten_stringified_data)
{
    json_t *j = ecs_of(REC("\"RecordType\":40,\"Operation\":\"AlertTriggered\","
                           "\"UserId\":\"SecurityComplianceAlerts\",\"Severity\":\"High\","
                           "\"Category\":\"ThreatManagement\",\"Name\":\"Forwarding\","
                           "\"Comments\":\"New alert\","
                           "\"Data\":\"{\\\"f3u\\\":\\\"alice@contoso.com\\\"}\""));

    ck_assert_str_eq(js(j, "o365.audit.Data.f3u"), "alice@contoso.com");
    ck_assert(jhas(j, "related.user", "alice@contoso.com"));
    ck_assert_str_eq(js(j, "event.kind"), "alert");
    ck_assert(jhas(j, "event.category", "malware"));
    ck_assert_int_eq(json_integer_value(jp(j, "event.severity")), 4);
    ck_assert_str_eq(js(j, "rule.name"), "Forwarding");
    ck_assert_str_eq(js(j, "message"), "Forwarding");   /* the alert name */
    ck_assert_str_eq(js(j, "o365.audit.Comments"), "New alert");
    /* the user the alert is about; user.id stays the service */
    ck_assert_str_eq(js(j, "user.id"), "SecurityComplianceAlerts");
    ck_assert_str_eq(js(j, "user.email"), "alice@contoso.com");
    ck_assert_str_eq(js(j, "user.name"), "alice");
    json_decref(j);
}
END_TEST

/* ---- risk fields ------------------------------------------------------- */

START_TEST(eb_risk_fields)
{
    static const char *const att1[] = { "T1556.006", NULL };
    static const char *const att2[] = { "T1556.006", "T1098", NULL };
    static const struct mf_tag t1 = { "identity.mfa_disabled", "MFA disabled",
                                      MF_AREA_IDENTITY_ACCESS, 4, att1, 1 };
    static const struct mf_tag t2 = { "monitor.x", "x",
                                      MF_AREA_MONITORING_RESPONSE, 2, att2, 2 };
    struct mf_tag_hits h;
    json_t *j, *tech;

    memset(&h, 0, sizeof h);
    h.hit[0].tag = &t1;
    h.hit[0].severity = 4;
    h.hit[1].tag = &t2;
    h.hit[1].severity = 2;
    h.n = 2;
    h.max_severity = 4;
    h.top = &t1;
    j = ecs_of_tags(REC("\"RecordType\":8,\"Operation\":\"Disable Strong Authentication.\""),
                    &h, false);
    ck_assert(jhas(j, "tags", "identity.mfa_disabled"));
    ck_assert(jhas(j, "tags", "monitor.x"));
    ck_assert(json_is_number(jp(j, "event.risk_score")));
    ck_assert(json_number_value(jp(j, "event.risk_score")) == 80.0);
    tech = jp(j, "threat.technique.id");
    ck_assert_int_eq(json_array_size(tech), 2);    /* union, no duplicate */
    ck_assert(jhas(j, "threat.technique.id", "T1098"));
    ck_assert_int_eq(json_integer_value(jp(j, "m365fwd.risk.severity")), 4);
    ck_assert_int_eq(json_array_size(jp(j, "m365fwd.risk.areas")), 2);
    ck_assert(jhas(j, "m365fwd.risk.areas", mf_area_name(MF_AREA_IDENTITY_ACCESS)));
    json_decref(j);
}
END_TEST

START_TEST(eb_no_tags_no_risk)
{
    json_t *j = ecs_of(REC("\"RecordType\":6,\"Operation\":\"FileAccessed\""));

    ck_assert_ptr_null(jp(j, "tags"));
    ck_assert_ptr_null(jp(j, "event.risk_score"));
    ck_assert_ptr_null(jp(j, "threat"));
    json_decref(j);
}
END_TEST

/* ---- other decisions --------------------------------------------------- */

START_TEST(eb_common_fields)
{
    json_t *j = ecs_of(REC("\"RecordType\":1,\"Operation\":\"Set-Mailbox\","
                           "\"Workload\":\"Exchange\",\"OrganizationName\":\"contoso.onmicrosoft.com\","
                           "\"OriginatingServer\":\"DM6PR11MB4012 (15.20.7452.025)\""));

    ck_assert_str_eq(js(j, "@timestamp"), "2026-03-02T09:15:22Z");
    ck_assert_str_eq(js(j, "event.id"), "id-1");
    ck_assert_str_eq(js(j, "event.kind"), "event");
    ck_assert_str_eq(js(j, "event.provider"), "Exchange");
    ck_assert_str_eq(js(j, "event.dataset"), "o365.audit");
    ck_assert_str_eq(js(j, "organization.id"), "0b1c2d3e-4f50");
    ck_assert_str_eq(js(j, "host.id"), "0b1c2d3e-4f50");
    ck_assert_str_eq(js(j, "organization.name"), "contoso.onmicrosoft.com");
    ck_assert_str_eq(js(j, "host.name"), "contoso.onmicrosoft.com");
    /* a build number in parentheses is not an address: the raw text */
    ck_assert_str_eq(js(j, "server.address"), "DM6PR11MB4012 (15.20.7452.025)");
    ck_assert_str_eq(js(j, "server.domain"), "DM6PR11MB4012");
    ck_assert_ptr_null(jp(j, "server.ip"));
    ck_assert_ptr_null(jp(j, "event.original"));
    ck_assert_str_eq(js(j, "data_stream.dataset"), "o365.audit");
    ck_assert_str_eq(js(j, "data_stream.type"), "logs");
    ck_assert_str_eq(js(j, "data_stream.namespace"), "default");
    json_decref(j);
    /* "HOST (ip)": the address is the ip (Elastic's pipeline) */
    j = ecs_of(REC("\"RecordType\":2,\"Operation\":\"Update\","
                   "\"OriginatingServer\":\"EXCH01 (192.0.2.20)\\n\""));
    ck_assert_str_eq(js(j, "server.address"), "192.0.2.20");
    ck_assert_str_eq(js(j, "server.domain"), "EXCH01");
    ck_assert_str_eq(js(j, "server.ip"), "192.0.2.20");
    ck_assert_str_eq(js(j, "destination.ip"), "192.0.2.20");
    ck_assert(jhas(j, "related.ip", "192.0.2.20"));
    json_decref(j);
}
END_TEST

/* ---- o365.audit Name/Value lists: only three become maps --------------- */

START_TEST(eb_audit_lists_kept)
{
    json_t *j = ecs_of(REC("\"RecordType\":50,\"Operation\":\"MailItemsAccessed\","
                           "\"OperationProperties\":[{\"Name\":\"IsThrottled\","
                           "\"Value\":\"True\"}],\"ExtendedProperties\":["
                           "{\"Name\":\"UserAgent\",\"Value\":\"ua\"}],"
                           "\"DeviceProperties\":\"[{\\\"Name\\\":\\\"IsCompliant\\\","
                           "\\\"Value\\\":\\\"False\\\"}]\","
                           "\"Platform\":1,\"Message\":{\"Id\":\"m1\"}"));
    json_t *op = jp(j, "o365.audit.OperationProperties");
    json_t *dp = jp(j, "o365.audit.DeviceProperties");

    /* Elastic's rules query OperationProperties.Name/.Value: a list */
    ck_assert(json_is_array(op));
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(op, 0), "Name")),
                     "IsThrottled");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(op, 0), "Value")),
                     "True");
    /* a list given as JSON text is parsed, still a list */
    ck_assert(json_is_array(dp));
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(dp, 0), "Value")),
                     "False");
    /* ExtendedProperties is one of the three maps */
    ck_assert_str_eq(js(j, "o365.audit.ExtendedProperties.UserAgent"), "ua");
    ck_assert_str_eq(js(j, "o365.audit.Platform"), "Windows");
    ck_assert_str_eq(js(j, "o365.audit.MessageObject.Id"), "m1");
    ck_assert_ptr_null(jp(j, "o365.audit.Message"));
    ck_assert(jhas(j, "event.category", "email"));
    json_decref(j);
}
END_TEST

/* ---- mail, Defender and Teams content ----------------------------------- */

START_TEST(eb_email_fields)
{
    json_t *j = ecs_of(REC("\"RecordType\":2,\"Operation\":\"Create\","
                           "\"UserId\":\"S-1-5-18\",\"MailboxOwnerUPN\":\"alice@contoso.example\","
                           "\"Item\":{\"Subject\":\"Q2\",\"InternetMessageId\":\"<m@x>\","
                           "\"Attachments\":\"logo.png (8192b); Plan (v2).docx (73728b); notes\"}"));
    json_t *att = jp(j, "email.attachments");

    ck_assert_str_eq(js(j, "email.subject"), "Q2");
    ck_assert_str_eq(js(j, "email.message_id"), "<m@x>");
    ck_assert_int_eq(json_array_size(att), 3);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(
                     json_array_get(att, 1), "file"), "name")), "Plan (v2).docx");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(
                     json_array_get(att, 1), "file"), "extension")), "docx");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(
                     json_array_get(att, 0), "file"), "size")), 8192);
    ck_assert_ptr_null(json_object_get(json_object_get(json_array_get(att, 2), "file"),
                                       "size"));
    /* related.user: user.id and user.email as Elastic writes them */
    ck_assert(jhas(j, "related.user", "S-1-5-18"));
    ck_assert(jhas(j, "related.user", "alice@contoso.example"));
    json_decref(j);
}
END_TEST

START_TEST(eb_defender_teams_content)
{
    json_t *j = ecs_of(REC("\"RecordType\":28,\"Operation\":\"TIMailData\","
                           "\"P1Sender\":\"bounce@evil.example\",\"P2Sender\":\"ceo@evil.example\","
                           "\"Recipients\":[\"alice@contoso.com\"],\"SenderIp\":\"203.0.113.9\","
                           "\"AttachmentData\":[{\"FileName\":\"inv.docm\",\"SHA256\":\"ab12\"}]"));

    ck_assert(jhas(j, "related.ip", "203.0.113.9"));
    ck_assert_str_eq(js(j, "email.from.address"), "ceo@evil.example");
    ck_assert_str_eq(js(j, "email.sender.address"), "bounce@evil.example");
    ck_assert_str_eq(js(j, "email.to.address"), "alice@contoso.com");
    ck_assert_str_eq(js(j, "file.name"), "inv.docm");
    ck_assert_str_eq(js(j, "file.hash.sha256"), "ab12");
    ck_assert_str_eq(json_string_value(jp(json_array_get(jp(j, "email.attachments"), 0),
                                          "file.hash.sha256")), "ab12");
    json_decref(j);
    j = ecs_of(REC("\"RecordType\":47,\"Operation\":\"AtpDetection\","
                   "\"FileData\":{\"FileName\":\"x.exe\",\"FilePath\":\"https://s/x.exe\","
                   "\"SHA256\":\"cd34\",\"FileSize\":\"1024\"}"));
    ck_assert_str_eq(js(j, "file.name"), "x.exe");
    ck_assert_str_eq(js(j, "file.path"), "https://s/x.exe");
    ck_assert_str_eq(js(j, "file.hash.sha256"), "cd34");
    ck_assert_int_eq(json_integer_value(jp(j, "file.size")), 1024);
    json_decref(j);
    j = ecs_of(REC("\"RecordType\":25,\"Operation\":\"MessageCreatedHasLink\","
                   "\"MessageURLs\":[\"https://a.example/1\",\"https://b.example/2\"]"));
    ck_assert(jhas(j, "url.original", "https://a.example/1"));
    ck_assert(jhas(j, "url.original", "https://b.example/2"));
    json_decref(j);
    /* Yammer: user.id is UserId, the Yammer number only without one */
    j = ecs_of(REC("\"RecordType\":22,\"Operation\":\"GroupCreation\","
                   "\"UserId\":\"alice@contoso.com\",\"ActorYammerUserId\":36787265537"));
    ck_assert_str_eq(js(j, "user.id"), "alice@contoso.com");
    json_decref(j);
}
END_TEST

START_TEST(eb_spo_guest)
{
    /* SharePoint one-time-code guest: the address without the prefix */
    json_t *j = ecs_of(REC("\"RecordType\":6,\"Operation\":\"FileAccessed\","
                           "\"UserId\":\"urn:spo:guest#jdoe@fabrikam.example\""));

    ck_assert_str_eq(js(j, "user.id"), "urn:spo:guest#jdoe@fabrikam.example");
    ck_assert_str_eq(js(j, "user.email"), "jdoe@fabrikam.example");
    ck_assert_str_eq(js(j, "user.name"), "jdoe");
    ck_assert_str_eq(js(j, "user.domain"), "fabrikam.example");
    json_decref(j);
}
END_TEST

START_TEST(eb_unknown_record_type)
{
    json_t *j = ecs_of(REC("\"RecordType\":9999,\"Operation\":\"Whatever\""));

    ck_assert_str_eq(js(j, "event.code"), "9999");
    ck_assert_str_eq(js(j, "event.action"), "Whatever");
    ck_assert_int_eq(json_array_size(jp(j, "event.category")), 1);
    ck_assert(jhas(j, "event.category", "web"));
    json_decref(j);
}
END_TEST

START_TEST(eb_entra_rename)
{
    json_t *j = ecs_of(REC("\"RecordType\":8,\"Operation\":\"Add user.\","
                           "\"ObjectId\":\"bob@contoso.com\""));

    ck_assert_str_eq(js(j, "event.action"), "added-user-account");
    ck_assert_str_eq(js(j, "user.target.email"), "bob@contoso.com");
    ck_assert(jhas(j, "event.type", "creation"));
    json_decref(j);
}
END_TEST

START_TEST(eb_sharing)
{
    json_t *j = ecs_of(REC("\"RecordType\":14,\"Operation\":\"AnonymousLinkCreated\","
                           "\"ObjectId\":\"https://c.sharepoint.com/a/b.csv\","
                           "\"SourceFileName\":\"b.csv\",\"SourceFileExtension\":\"csv\","
                           "\"SourceRelativeUrl\":\"a\""));

    ck_assert(jhas(j, "event.category", "file"));
    ck_assert(jhas(j, "event.type", "change"));
    ck_assert_str_eq(js(j, "url.original"), "https://c.sharepoint.com/a/b.csv");
    ck_assert_str_eq(js(j, "file.name"), "b.csv");
    ck_assert_str_eq(js(j, "file.extension"), "csv");
    ck_assert_str_eq(js(j, "file.directory"), "a");
    ck_assert_str_eq(js(j, "event.code"), "SharePointSharingOperation");
    json_decref(j);
}
END_TEST

START_TEST(eb_dlp_block)
{
    json_t *j = ecs_of(REC("\"RecordType\":13,\"Operation\":\"DlpRuleMatch\","
                           "\"UserId\":\"mallory@contoso.com\","
                           "\"ExchangeMetaData\":{\"From\":\"mallory@contoso.com\","
                           "\"To\":[\"a@x.example\",\"b@x.example\"],\"CC\":[],"
                           "\"Subject\":\"customer list\"},"
                           "\"PolicyDetails\":[{\"PolicyName\":\"PCI\",\"Rules\":["
                           "{\"RuleId\":\"r1\",\"RuleName\":\"n1\",\"Severity\":\"Low\","
                           "\"Actions\":[\"NotifyUser\"]},"
                           "{\"RuleId\":\"r2\",\"RuleName\":\"n2\",\"Severity\":\"High\","
                           "\"Actions\":[\"BlockAccess\"]}]}]"));

    ck_assert_str_eq(js(j, "event.kind"), "alert");
    ck_assert_str_eq(js(j, "event.outcome"), "failure");
    ck_assert_int_eq(json_integer_value(jp(j, "event.severity")), 4);
    ck_assert_int_eq(json_array_size(jp(j, "rule.id")), 2);
    ck_assert(jhas(j, "rule.name", "n2"));
    ck_assert_str_eq(js(j, "rule.ruleset"), "PCI");
    ck_assert_str_eq(js(j, "source.user.email"), "mallory@contoso.com");
    ck_assert_int_eq(json_array_size(jp(j, "destination.user.email")), 2);
    ck_assert_ptr_null(jp(j, "destination.user.name"));   /* two recipients */
    ck_assert_str_eq(js(j, "message"), "customer list");
    json_decref(j);
}
END_TEST

START_TEST(eb_dlp_undo_success)
{
    json_t *j = ecs_of(REC("\"RecordType\":11,\"Operation\":\"DlpRuleUndo\","
                           "\"PolicyDetails\":[{\"Rules\":[{\"Severity\":\"Medium\","
                           "\"Actions\":[\"BlockAccess\"]}]}]"));

    ck_assert_str_eq(js(j, "event.outcome"), "success");
    ck_assert_int_eq(json_integer_value(jp(j, "event.severity")), 3);
    json_decref(j);
}
END_TEST

START_TEST(eb_keep_raw)
{
    const char *rec = REC("\"RecordType\":6,\"Operation\":\"FileAccessed\"");
    json_t *j = ecs_of_tags(rec, NULL, true);

    ck_assert_str_eq(js(j, "event.original"), rec);
    json_decref(j);
}
END_TEST

START_TEST(eb_missing_everything)
{
    /* no Id, no time, no operation, no type: still an event, never a crash */
    json_t *j = ecs_of("{\"Foo\":1}");

    ck_assert_ptr_nonnull(jp(j, "@timestamp"));
    ck_assert_str_eq(js(j, "event.kind"), "event");
    ck_assert_ptr_null(jp(j, "event.id"));
    ck_assert_int_eq(json_integer_value(jp(j, "o365.audit.Foo")), 1);
    ck_assert(json_array_size(jp(j, "m365fwd.repairs")) >= 1);
    json_decref(j);
}
END_TEST

START_TEST(eb_refused_keys)
{
    /* keys Elasticsearch would refuse are repaired, the rest borrowed */
    json_t *j = ecs_of(REC("\"RecordType\":25,\"Operation\":\"X\",\"\":1,"
                           "\"a..b\":{\"x.\":[{\".y\":2}]},\"ok.key\":3"));
    json_t *au = jp(j, "o365.audit");

    ck_assert_int_eq(json_integer_value(json_object_get(au, "_")), 1);
    ck_assert_ptr_null(json_object_get(au, ""));
    ck_assert_ptr_nonnull(json_object_get(au, "a__b"));
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(
        json_object_get(json_object_get(au, "a__b"), "x_"), 0), "_y")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(au, "ok.key")), 3);
    json_decref(j);
}
END_TEST

START_TEST(eb_numbers_as_strings)
{
    json_t *j = ecs_of(REC("\"RecordType\":\"15\",\"Operation\":\"UserLoggedIn\","
                           "\"ResultStatus\":\"Success\",\"ErrorNumber\":\"0\""));

    ck_assert_str_eq(js(j, "event.code"), "AzureActiveDirectoryStsLogon");
    ck_assert_str_eq(js(j, "event.outcome"), "success");
    json_decref(j);
}
END_TEST

static Suite *
ecs_suite(void)
{
    Suite *s = suite_create("ecs");
    TCase *tc;

    tc = tcase_create("mf_ecs_map_load");
    tcase_add_test(tc, ml_minimal_ok);
    tcase_add_test(tc, ml_unknown_top_key_line);
    tcase_add_test(tc, ml_bad_category_line);
    tcase_add_test(tc, ml_bad_type_line);
    tcase_add_test(tc, ml_unknown_target_line);
    tcase_add_test(tc, ml_code_only_target_refused);
    tcase_add_test(tc, ml_unknown_rule_key_line);
    tcase_add_test(tc, ml_bad_record_type_key);
    tcase_add_test(tc, ml_bad_outcome_value);
    tcase_add_test(tc, ml_bad_version);
    tcase_add_test(tc, ml_missing_version);
    tcase_add_test(tc, ml_bad_path);
    tcase_add_test(tc, ml_empty_op_rule);
    tcase_add_test(tc, ml_differs_from_fanout);
    tcase_add_test(tc, ml_bad_yaml);
    tcase_add_test(tc, ml_new_keys_checked);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_ecs_map_load_builtin");
    tcase_add_test(tc, mlb_loads);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_ecs_map_destroy");
    tcase_add_test(tc, md_null_is_noop);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_ecs_build");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, eb_clientip_v4_port);
    tcase_add_test(tc, eb_clientip_v6_bracket_port);
    tcase_add_test(tc, eb_clientip_bare_v6);
    tcase_add_test(tc, eb_clientip_mapped_v4);
    tcase_add_test(tc, eb_clientip_null_forms);
    tcase_add_test(tc, eb_clientip_fallback_clientipaddress);
    tcase_add_test(tc, eb_user_split);
    tcase_add_test(tc, eb_user_not_address);
    tcase_add_test(tc, eb_user_target_role);
    tcase_add_test(tc, eb_mailbox_owner);
    tcase_add_test(tc, eb_own_mailbox_no_target);
    tcase_add_test(tc, eb_sid_actor_owner_email);
    tcase_add_test(tc, eb_outcome_missing_is_success);
    tcase_add_test(tc, eb_outcome_words);
    tcase_add_test(tc, eb_outcome_sts_error_number);
    tcase_add_test(tc, eb_flatten_parameters);
    tcase_add_test(tc, eb_flatten_modified_properties);
    tcase_add_test(tc, eb_flatten_stringified_data);
    tcase_add_test(tc, eb_risk_fields);
    tcase_add_test(tc, eb_no_tags_no_risk);
    tcase_add_test(tc, eb_common_fields);
    tcase_add_test(tc, eb_unknown_record_type);
    tcase_add_test(tc, eb_spo_guest);
    tcase_add_test(tc, eb_audit_lists_kept);
    tcase_add_test(tc, eb_email_fields);
    tcase_add_test(tc, eb_defender_teams_content);
    tcase_add_test(tc, eb_entra_rename);
    tcase_add_test(tc, eb_sharing);
    tcase_add_test(tc, eb_dlp_block);
    tcase_add_test(tc, eb_dlp_undo_success);
    tcase_add_test(tc, eb_keep_raw);
    tcase_add_test(tc, eb_missing_everything);
    tcase_add_test(tc, eb_refused_keys);
    tcase_add_test(tc, eb_numbers_as_strings);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return mf_test_run(ecs_suite());
}
