/* check_record.c - record view and derived facts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "test_common.h"

static struct mf_arena A;

static void
setup(void)
{
    mf_arena_init(&A, 4096);
}

static void
teardown(void)
{
    mf_arena_fini(&A);
}

static struct mf_record R;

static struct mf_record *
rec(const char *json)
{
    struct mf_jparse_info info;
    struct mf_jval *v = mf_json_parse(&A, json, strlen(json), NULL, &info, NULL);

    ck_assert_msg(v != NULL, "bad test JSON: %s", json);
    mf_record_init(&R, &A, v, json, strlen(json), NULL,
                   info.repaired_strings ? MF_REPAIR_UTF8 : 0);
    return &R;
}

/* |  mf_parse_client_ip()  | */

static const struct {
    const char *in;
    const char *ip;
    int port;
    int rc;
} ip_cases[] = {
    {"198.51.100.23", "198.51.100.23", 0, 0},
    {"203.0.113.77:50412", "203.0.113.77", 50412, 0},
    {"[10.11.12.13]:12345", "10.11.12.13", 12345, 0},
    {"[2001:db8::abcd]:443", "2001:db8::abcd", 443, 0},
    {"2001:db8::abcd", "2001:db8::abcd", 0, 0},
    {"::ffff:10.11.12.13", "10.11.12.13", 0, 0},
    {"[::ffff:10.1.2.3]:8080", "10.1.2.3", 8080, 0},
    {" 192.0.2.1 ", "192.0.2.1", 0, 0},
    {"fe80::1%eth0", "fe80::1", 0, 0},
    {"", "", 0, -1},
    {"null", "", 0, -1},
    {"<null>", "", 0, -1},
    {"not-an-ip", "", 0, -1},
    {"999.1.1.1", "", 0, -1},
    {"[2001:db8::1", "", 0, -1},
    {"10.0.0.1:99999", "10.0.0.1", 0, 0},
};

START_TEST(mpci_forms)
{
    char ip[64];
    int port;
    int rc = mf_parse_client_ip(ip_cases[_i].in, ip, sizeof(ip), &port);

    ck_assert_msg(rc == ip_cases[_i].rc, "case %d (%s): rc %d", _i, ip_cases[_i].in, rc);
    ck_assert_str_eq(ip, ip_cases[_i].ip);
    ck_assert_int_eq(port, ip_cases[_i].port);
}
END_TEST

/* |  mf_record_init()  | */

START_TEST(mri_view_flattens_name_value)
{
    struct mf_record *r = rec(
        "{\"Operation\":\"New-InboxRule\",\"RecordType\":1,\"UserType\":0,"
        "\"CreationTime\":\"2026-03-02T09:15:22\",\"ResultStatus\":\"True\","
        "\"Parameters\":[{\"Name\":\"ForwardTo\",\"Value\":\"x@fabrikam.example\"},"
        "{\"Name\":\"MarkAsRead\",\"Value\":\"True\"},{\"Name\":\"ForwardTo\",\"Value\":\"y@f.example\"}],"
        "\"ModifiedProperties\":[{\"Name\":\"Role.DisplayName\",\"NewValue\":\"Global Administrator\",\"OldValue\":\"\"}],"
        "\"ExtendedProperties\":\"[{\\\"Name\\\":\\\"UserAgent\\\",\\\"Value\\\":\\\"curl/8\\\"}]\"}");
    const struct mf_jval *fw = mf_record_get(r, "parameters.forwardto");

    ck_assert_ptr_nonnull(fw);
    ck_assert_int_eq(fw->type, MF_JARR);      /* repeated name keeps both */
    ck_assert_uint_eq(fw->len, 2);
    ck_assert_str_eq(mf_record_str(r, "Parameters.MarkAsRead"), "True");
    ck_assert_str_eq(mf_record_str(r, "ModifiedProperties.Role.DisplayName.NewValue"),
                     "Global Administrator");
    ck_assert_str_eq(r->user_agent, "curl/8");
    ck_assert(r->repairs & MF_REPAIR_STRJSON);
    ck_assert_int_eq(r->outcome, MF_OUTCOME_SUCCESS);
    ck_assert_str_eq(r->content_type, "Audit.Exchange");
    ck_assert_int_eq(r->time_ms, 1772442922000LL);
    /* the raw record is untouched */
    ck_assert_int_eq(mf_jobj_get(r->raw, "Parameters")->type, MF_JARR);
}
END_TEST

START_TEST(mri_stringly_json_and_ps_params)
{
    struct mf_record *r = rec(
        "{\"Operation\":\"AlertTriggered\",\"RecordType\":\"40\",\"UserType\":\"4\","
        "\"UserId\":\"SecurityComplianceAlerts\",\"CreationTime\":\"2026-03-02T09:30:00\","
        "\"Data\":\"{\\\"f3u\\\":\\\"alice@contoso.com\\\",\\\"sev\\\":\\\"High\\\"}\","
        "\"Parameters\":\"-Identity \\\"ceo\\\" -Force \\\"True\\\" -Confirm\","
        "\"OperationProperties\":\"{not json\","
        "\"ClientIP\":\"[2001:db8::1]:443\"}");

    ck_assert_str_eq(mf_record_str(r, "Data.f3u"), "alice@contoso.com");
    ck_assert_str_eq(mf_record_str(r, "Parameters.Identity"), "ceo");
    ck_assert_str_eq(mf_record_str(r, "Parameters.Force"), "True");
    ck_assert_str_eq(mf_record_str(r, "Parameters.Confirm"), "True");
    /* not JSON after all: kept as a string, flagged */
    ck_assert_str_eq(mf_record_str(r, "OperationProperties"), "{not json");
    ck_assert(r->repairs & MF_REPAIR_BADSTRJSON);
    ck_assert(r->repairs & MF_REPAIR_NUMSTR);
    ck_assert_int_eq(r->record_type, 40);
    ck_assert(r->is_system_actor);
    ck_assert_str_eq(r->client_ip, "2001:db8::1");
    ck_assert_int_eq(r->client_port, 443);
    ck_assert_str_eq(r->content_type, "Audit.General");
}
END_TEST

START_TEST(mri_sts_outcome_from_error_number)
{
    struct mf_record *r;

    r = rec("{\"Operation\":\"UserLoggedIn\",\"RecordType\":15,\"ResultStatus\":\"Success\","
            "\"ErrorNumber\":\"50126\"}");
    ck_assert_int_eq(r->outcome, MF_OUTCOME_FAILURE);
    r = rec("{\"Operation\":\"UserLoginFailed\",\"RecordType\":15,\"ResultStatus\":\"Success\"}");
    ck_assert_int_eq(r->outcome, MF_OUTCOME_FAILURE);
    r = rec("{\"Operation\":\"UserLoggedIn\",\"RecordType\":15,\"ErrorNumber\":\"0\"}");
    ck_assert_int_eq(r->outcome, MF_OUTCOME_SUCCESS);
    r = rec("{\"Operation\":\"Set-Mailbox\",\"ResultStatus\":\"False\"}");
    ck_assert_int_eq(r->outcome, MF_OUTCOME_FAILURE);
    r = rec("{\"Operation\":\"FileAccessed\"}");
    ck_assert_int_eq(r->outcome, MF_OUTCOME_UNKNOWN);
    r = rec("{\"Operation\":\"X\",\"ResultStatus\":\"PartiallySucceeded\"}");
    ck_assert_int_eq(r->outcome, MF_OUTCOME_SUCCESS);
}
END_TEST

START_TEST(mri_missing_fields_and_bad_bytes)
{
    struct mf_record *r = rec("{\"UserId\":\"NT AUTHORITY\\\\SYSTEM (Microsoft.Exchange.ServiceHost)\","
                              "\"Workload\":\"SharePoint\",\"Bad\":\"a\xff\",\"ClientIP\":null,"
                              "\"ClientIPAddress\":\"10.1.1.1\"}");

    ck_assert_ptr_null(r->id);
    ck_assert_str_eq(r->operation, "");
    ck_assert(r->repairs & MF_REPAIR_NO_ID);
    ck_assert(r->repairs & MF_REPAIR_NO_OP);
    ck_assert(r->repairs & MF_REPAIR_TIME);
    ck_assert(r->repairs & MF_REPAIR_UTF8);
    ck_assert_int_eq(r->record_type, -1);
    ck_assert(r->is_system_actor);
    ck_assert_str_eq(r->client_ip, "10.1.1.1");
    ck_assert_str_eq(r->content_type, "Audit.SharePoint");
    ck_assert_uint_gt(r->time_ms, 1700000000000LL);
}
END_TEST

START_TEST(mri_many_names_hashed)
{
    /* more names than the linear-search limit: duplicates still merge */
    char *json = malloc(200000);
    size_t n = 0;
    struct mf_record *r;
    const struct mf_jval *v;

    n += (size_t)sprintf(json + n, "{\"Operation\":\"Set-X\",\"Parameters\":[");
    for (int i = 0; i < 2000; i++)
        n += (size_t)sprintf(json + n, "{\"Name\":\"P%d\",\"Value\":\"%d\"},", i, i);
    n += (size_t)sprintf(json + n, "{\"Name\":\"P7\",\"Value\":\"again\"}]}");
    r = rec(json);
    ck_assert_uint_eq(mf_record_get(r, "Parameters")->len, 2000);
    ck_assert_str_eq(mf_record_str(r, "Parameters.P1999"), "1999");
    v = mf_record_get(r, "Parameters.P7");
    ck_assert_int_eq(v->type, MF_JARR);
    ck_assert_str_eq(v->u.items[1]->u.s, "again");
    free(json);
}
END_TEST

START_TEST(mri_path_longest_key_first)
{
    struct mf_record *r = rec("{\"A\":{\"b.c\":{\"d\":1},\"b\":{\"c\":{\"d\":2}}},"
                              "\"x.y\":\"dotted\",\"x\":{\"z\":\"nested\"}}");

    ck_assert_str_eq(mf_record_get(r, "a.b.c.d")->u.s, "1");
    ck_assert_str_eq(mf_record_str(r, "x.y"), "dotted");
    ck_assert_str_eq(mf_record_str(r, "X.Z"), "nested");
    ck_assert_ptr_null(mf_record_get(r, "x.q"));
    ck_assert_ptr_null(mf_record_get(r, "a.b.c.e"));
    ck_assert_str_eq(mf_record_type_name(15), "AzureActiveDirectoryStsLogon");
    ck_assert_ptr_null(mf_record_type_name(-1));
    ck_assert_str_eq(mf_content_type_guess(13, "Exchange"), "DLP.All");
    ck_assert_str_eq(mf_content_type_guess(9999, "OneDrive"), "Audit.SharePoint");
}
END_TEST

START_TEST(mri_repair_names)
{
    ck_assert_str_eq(mf_repair_name(MF_REPAIR_UTF8), "invalid_utf8");
    ck_assert_str_eq(mf_repair_name(MF_REPAIR_NO_OP), "operation_missing");
    for (unsigned i = 0; i < MF_REPAIR_COUNT; i++)
        ck_assert_ptr_nonnull(mf_repair_name(1u << i));
    ck_assert_ptr_null(mf_repair_name(1u << MF_REPAIR_COUNT));
    ck_assert_ptr_null(mf_repair_name(3));
}
END_TEST

static Suite *
record_suite(void)
{
    Suite *s = suite_create("record");
    TCase *tc;

    tc = tcase_create("mf_parse_client_ip()");
    tcase_add_loop_test(tc, mpci_forms, 0, (int)(sizeof(ip_cases) / sizeof(ip_cases[0])));
    suite_add_tcase(s, tc);
    tc = tcase_create("mf_record_init()");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, mri_view_flattens_name_value);
    tcase_add_test(tc, mri_stringly_json_and_ps_params);
    tcase_add_test(tc, mri_sts_outcome_from_error_number);
    tcase_add_test(tc, mri_missing_fields_and_bad_bytes);
    tcase_add_test(tc, mri_many_names_hashed);
    tcase_add_test(tc, mri_path_longest_key_first);
    tcase_add_test(tc, mri_repair_names);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return mf_test_run(record_suite());
}
