/* check_output.c - output registry, filters, templates, the file output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file.h"
#include "output.h"
#include "test_common.h"

static struct mf_normalizer *N;
static struct mf_nctx C;

static void
setup(void)
{
    struct mf_err err;

    N = mf_normalizer_new(NULL, &err);
    ck_assert_msg(N != NULL, "%s", err.msg);
    mf_nctx_init(&C);
}

static void
teardown(void)
{
    mf_nctx_fini(&C);
    mf_normalizer_destroy(N);
}

/* Normalize one record, returning its result (tags etc.). */
static void
norm(const char *rec, struct mf_norm_result *res, struct mf_buf *out)
{
    struct mf_norm_in in = {.data = rec, .len = strlen(rec), .schema = MF_SCHEMA_RAW};

    mf_buf_reset(out);
    ck_assert_int_eq(mf_normalize(N, &C, &in, out, res), MF_OK);
}

static const char *const FORWARD_RULE =
    "{\"Id\":\"8e4f2a1c-7b3d-4e9f-a1c2-08dc3f9e7a10\",\"CreationTime\":\"2026-03-02T09:15:22\","
    "\"Operation\":\"New-InboxRule\",\"OrganizationId\":\"0b1c2d3e\",\"RecordType\":1,"
    "\"ResultStatus\":\"True\",\"UserType\":0,\"Workload\":\"Exchange\","
    "\"UserId\":\"alice@contoso.com\",\"Parameters\":[{\"Name\":\"ForwardTo\","
    "\"Value\":\"drop@fabrikam.example\"},{\"Name\":\"Name\",\"Value\":\"x\"}]}";
static const char *const PLAIN_LOGIN =
    "{\"Id\":\"5f6e1a2b\",\"CreationTime\":\"2026-03-02T08:14:51\",\"Operation\":\"UserLoggedIn\","
    "\"OrganizationId\":\"0b1c2d3e\",\"RecordType\":15,\"UserType\":0,\"ErrorNumber\":\"0\","
    "\"Workload\":\"AzureActiveDirectory\",\"UserId\":\"alice@contoso.com\","
    "\"DeviceProperties\":[{\"Name\":\"Id\",\"Value\":\"d1\"},{\"Name\":\"IsCompliantAndManaged\","
    "\"Value\":\"True\"}]}";

/* |  mf_output_wants()  | */

START_TEST(mow_filters)
{
    struct mf_norm_result hot, cold;
    struct mf_buf b;
    struct mf_output_conf oc;
    const char *areas[] = {"data_protection"};
    const char *tags[] = {"identity.login_failed"};
    const char *cts[] = {"Audit.Exchange"};
    const char *tenants[] = {"contoso"};

    mf_buf_init(&b, 0);
    norm(FORWARD_RULE, &hot, &b);
    norm(PLAIN_LOGIN, &cold, &b);
    ck_assert_int_ge(hot.tags.max_severity, 4);

    memset(&oc, 0, sizeof(oc));
    ck_assert(mf_output_wants(&oc, &cold, "contoso", "0b1c2d3e", "Audit.General"));
    oc.filter.min_severity = 3;
    ck_assert(mf_output_wants(&oc, &hot, "contoso", "0b1c2d3e", "Audit.Exchange"));
    ck_assert(!mf_output_wants(&oc, &cold, "contoso", "0b1c2d3e", "Audit.General"));
    oc.filter.min_severity = 0;
    oc.filter.areas.v = areas;
    oc.filter.areas.n = 1;
    ck_assert(mf_output_wants(&oc, &hot, "contoso", "0b1c2d3e", "Audit.Exchange"));
    ck_assert(!mf_output_wants(&oc, &cold, "contoso", "0b1c2d3e", "Audit.General"));
    oc.filter.areas.n = 0;
    oc.filter.tags.v = tags;
    oc.filter.tags.n = 1;
    ck_assert(!mf_output_wants(&oc, &hot, "contoso", "0b1c2d3e", "Audit.Exchange"));
    oc.filter.tags.n = 0;
    oc.filter.content_types.v = cts;
    oc.filter.content_types.n = 1;
    ck_assert(mf_output_wants(&oc, &hot, "contoso", "0b1c2d3e", "audit.exchange"));
    ck_assert(!mf_output_wants(&oc, &hot, "contoso", "0b1c2d3e", "DLP.All"));
    oc.filter.content_types.n = 0;
    oc.filter.tenants.v = tenants;
    oc.filter.tenants.n = 1;
    ck_assert(mf_output_wants(&oc, &hot, "contoso", "0b1c2d3e", "Audit.Exchange"));
    ck_assert(!mf_output_wants(&oc, &hot, "fabrikam", "99", "Audit.Exchange"));
    mf_buf_fini(&b);
}
END_TEST

/* |  mf_output_expand()  | */

START_TEST(moe_templates)
{
    struct mf_norm_result hot, cold;
    struct mf_buf b;
    char out[128];
    struct mf_out_msg m = {.tenant = "Contoso Ltd", .tenant_id = "0b1c2d3e",
                           .content_type = "Audit.Exchange", .schema = MF_SCHEMA_OCSF};

    mf_buf_init(&b, 0);
    norm(FORWARD_RULE, &hot, &b);
    norm(PLAIN_LOGIN, &cold, &b);
    m.res = &hot;
    mf_output_expand("m365.{tenant}.{area}", &m, true, out, sizeof(out));
    ck_assert_str_eq(out, "m365.Contoso_Ltd.data_protection");
    mf_output_expand("{tenant_id}/{content_type}/{class_uid}/{schema}/{id}/{unknown}", &m,
                     false, out, sizeof(out));
    ck_assert_str_eq(out, "0b1c2d3e/Audit.Exchange/3004/ocsf/"
                          "8e4f2a1c-7b3d-4e9f-a1c2-08dc3f9e7a10/{unknown}");
    m.res = &cold;
    mf_output_expand("x.{area}", &m, true, out, sizeof(out));
    ck_assert_str_eq(out, "x.none");
    /* truncation keeps the NUL */
    ck_assert_uint_eq(mf_output_expand("{tenant}", &m, false, out, 5), 4);
    ck_assert_str_eq(out, "Cont");
    mf_buf_fini(&b);
}
END_TEST

/* |  file output  | */

START_TEST(mof_file_flush_and_failure)
{
    char path[] = "/tmp/mf-out-XXXXXX";
    int fd = mkstemp(path);
    struct mf_output_conf oc;
    struct mf_output *o;
    struct mf_output_stats st;
    struct mf_norm_result res;
    struct mf_out_msg m;
    struct mf_err err;
    struct mf_file_conf fc = {0};
    char *text;
    size_t len;
    struct mf_buf b;

    ck_assert_int_ge(fd, 0);
    close(fd);
    memset(&oc, 0, sizeof(oc));
    oc.name = "f";
    oc.type = MF_OUTPUT_FILE;
    oc.plugin = &fc;
    fc.path = path;
    oc.flush_timeout_ms = 1000;
    o = mf_output_open(&oc, &err);
    ck_assert_msg(o != NULL, "%s", err.msg);
    mf_buf_init(&b, 0);
    norm(PLAIN_LOGIN, &res, &b);
    m = (struct mf_out_msg){.data = b.data, .len = b.len, .res = &res};
    ck_assert_int_eq(mf_output_send_wait(o, &m, 100), MF_OK);
    ck_assert_int_eq(mf_output_send(o, &m), MF_OK);
    o->ops->stats(o, &st);
    ck_assert_uint_eq(st.queued, 2);
    ck_assert_int_eq(mf_output_flush(o, 1000), 0);
    o->ops->stats(o, &st);
    ck_assert_uint_eq(st.acked, 2);
    ck_assert_uint_eq(st.queued, 0);
    mf_output_close(o);
    text = mf_test_slurp(path, &len);
    ck_assert_uint_eq(len, 2 * (b.len + 1));
    free(text);
    unlink(path);

    /* a device that is always full: the barrier must fail, never ack */
    fc.path = "/dev/full";
    o = mf_output_open(&oc, &err);
    ck_assert_msg(o != NULL, "%s", err.msg);
    for (int i = 0; i < 3000; i++)
        mf_output_send(o, &m);
    ck_assert_int_eq(mf_output_flush(o, 1000), -1);
    o->ops->stats(o, &st);
    ck_assert_uint_eq(st.acked, 0);
    mf_output_close(o);

    /* an output that cannot open is an error with its name */
    fc.path = "/nonexistent/dir/out.ndjson";
    ck_assert_ptr_null(mf_output_open(&oc, &err));
    ck_assert(strstr(err.msg, "outputs 'f'") != NULL);
    mf_buf_fini(&b);
}
END_TEST

static Suite *
output_suite(void)
{
    Suite *s = suite_create("output");
    TCase *tc;

    tc = tcase_create("mf_output_wants()");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, mow_filters);
    suite_add_tcase(s, tc);
    tc = tcase_create("mf_output_expand()");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, moe_templates);
    suite_add_tcase(s, tc);
    tc = tcase_create("file output");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, mof_file_flush_and_failure);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return mf_test_run(output_suite());
}
