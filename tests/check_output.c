/* check_output.c - output registry, filters, templates, the file output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file.h"
#include "normalize.h"
#include "output.h"
#include "test_common.h"

static struct mf_normalizer *N;
/* two records at once: each event lives in its own context */
static struct mf_nctx C[2];
static struct mf_event HOT, COLD;

static void
setup(void)
{
    struct mf_err err;

    N = mf_normalizer_new(NULL, &err);
    ck_assert_msg(N != NULL, "%s", err.msg);
    mf_nctx_init(&C[0]);
    mf_nctx_init(&C[1]);
    mf_event_init(&HOT, 0);
    mf_event_init(&COLD, 0);
}

static void
teardown(void)
{
    mf_event_fini(&HOT);
    mf_event_fini(&COLD);
    mf_nctx_fini(&C[0]);
    mf_nctx_fini(&C[1]);
    mf_normalizer_destroy(N);
}

/* Normalize one record into ev (context k). */
static void
norm(const char *rec, struct mf_event *ev, int k)
{
    struct mf_norm_in in = {.data = rec, .len = strlen(rec)};

    ck_assert_int_eq(mf_normalize_event(N, &C[k], &in, ev), MF_OK);
}

/* The event with tenant and content type as a filter sees them. */
static const struct mf_event *
as(struct mf_event *ev, const char *tenant, const char *tenant_id, const char *ct)
{
    ev->tenant = tenant;
    ev->tenant_id = tenant_id;
    ev->content_type = ct;
    return ev;
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
    struct mf_output_conf oc;
    const char *areas[] = {"data_protection"};
    const char *tags[] = {"identity.login_failed"};
    const char *cts[] = {"Audit.Exchange"};
    const char *tenants[] = {"contoso"};

    norm(FORWARD_RULE, &HOT, 0);
    norm(PLAIN_LOGIN, &COLD, 1);
    ck_assert_int_ge(HOT.severity, 4);

    memset(&oc, 0, sizeof(oc));
    ck_assert(mf_output_wants(&oc, as(&COLD, "contoso", "0b1c2d3e", "Audit.General")));
    oc.filter.min_severity = 3;
    ck_assert(mf_output_wants(&oc, as(&HOT, "contoso", "0b1c2d3e", "Audit.Exchange")));
    ck_assert(!mf_output_wants(&oc, as(&COLD, "contoso", "0b1c2d3e", "Audit.General")));
    oc.filter.min_severity = 0;
    oc.filter.areas.v = areas;
    oc.filter.areas.n = 1;
    ck_assert(mf_output_wants(&oc, as(&HOT, "contoso", "0b1c2d3e", "Audit.Exchange")));
    ck_assert(!mf_output_wants(&oc, as(&COLD, "contoso", "0b1c2d3e", "Audit.General")));
    oc.filter.areas.n = 0;
    oc.filter.tags.v = tags;
    oc.filter.tags.n = 1;
    ck_assert(!mf_output_wants(&oc, as(&HOT, "contoso", "0b1c2d3e", "Audit.Exchange")));
    oc.filter.tags.n = 0;
    oc.filter.content_types.v = cts;
    oc.filter.content_types.n = 1;
    ck_assert(mf_output_wants(&oc, as(&HOT, "contoso", "0b1c2d3e", "audit.exchange")));
    ck_assert(!mf_output_wants(&oc, as(&HOT, "contoso", "0b1c2d3e", "DLP.All")));
    oc.filter.content_types.n = 0;
    oc.filter.tenants.v = tenants;
    oc.filter.tenants.n = 1;
    ck_assert(mf_output_wants(&oc, as(&HOT, "contoso", "0b1c2d3e", "Audit.Exchange")));
    ck_assert(!mf_output_wants(&oc, as(&HOT, "fabrikam", "99", "Audit.Exchange")));
}
END_TEST

/* |  mf_output_expand()  | */

START_TEST(moe_templates)
{
    char out[128];

    norm(FORWARD_RULE, &HOT, 0);
    norm(PLAIN_LOGIN, &COLD, 1);
    as(&HOT, "Contoso Ltd", "0b1c2d3e", "Audit.Exchange");
    as(&COLD, "Contoso Ltd", "0b1c2d3e", "Audit.Exchange");
    mf_output_expand("m365.{tenant}.{area}", &HOT, MF_SCHEMA_OCSF, true, out, sizeof(out));
    ck_assert_str_eq(out, "m365.Contoso_Ltd.data_protection");
    mf_output_expand("{tenant_id}/{content_type}/{class_uid}/{schema}/{id}/{unknown}", &HOT,
                     MF_SCHEMA_OCSF, false, out, sizeof(out));
    ck_assert_str_eq(out, "0b1c2d3e/Audit.Exchange/3004/ocsf/"
                          "8e4f2a1c-7b3d-4e9f-a1c2-08dc3f9e7a10/{unknown}");
    mf_output_expand("x.{area}", &COLD, MF_SCHEMA_OCSF, true, out, sizeof(out));
    ck_assert_str_eq(out, "x.none");
    /* truncation keeps the NUL */
    ck_assert_uint_eq(mf_output_expand("{tenant}", &COLD, MF_SCHEMA_OCSF, false, out, 5), 4);
    ck_assert_str_eq(out, "Cont");
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
    const struct mf_event_form *form;
    struct mf_buf scratch;
    struct mf_err err;
    struct mf_file_conf fc = {0};
    char *text;
    size_t len;

    ck_assert_int_ge(fd, 0);
    close(fd);
    memset(&oc, 0, sizeof(oc));
    oc.name = "f";
    oc.type = MF_OUTPUT_FILE;
    oc.plugin = &fc;
    fc.path = path;
    oc.flush_timeout_ms = 1000;
    oc.schema = MF_SCHEMA_RAW;
    o = mf_output_open(&oc, &err);
    ck_assert_msg(o != NULL, "%s", err.msg);
    mf_buf_init(&scratch, 0);
    norm(PLAIN_LOGIN, &COLD, 1);
    form = mf_event_form(&COLD, MF_SCHEMA_RAW, false);
    ck_assert_ptr_nonnull(form);
    ck_assert_int_eq(mf_output_send_wait(o, &COLD, &scratch, 100), MF_OK);
    ck_assert_int_eq(mf_output_send(o, &COLD, &scratch), MF_OK);
    o->ops->stats(o, &st);
    ck_assert_uint_eq(st.queued, 2);
    ck_assert_int_eq(mf_output_flush(o, 1000), 0);
    o->ops->stats(o, &st);
    ck_assert_uint_eq(st.acked, 2);
    ck_assert_uint_eq(st.queued, 0);
    mf_output_close(o);
    text = mf_test_slurp(path, &len);
    ck_assert_uint_eq(len, 2 * (form->text.len + 1));
    free(text);
    unlink(path);

    /* a device that is always full: the barrier must fail, never ack */
    fc.path = "/dev/full";
    o = mf_output_open(&oc, &err);
    ck_assert_msg(o != NULL, "%s", err.msg);
    for (int i = 0; i < 3000; i++)
        mf_output_send(o, &COLD, &scratch);
    ck_assert_int_eq(mf_output_flush(o, 1000), -1);
    o->ops->stats(o, &st);
    ck_assert_uint_eq(st.acked, 0);
    mf_output_close(o);

    /* an output that cannot open is an error with its name */
    fc.path = "/nonexistent/dir/out.ndjson";
    ck_assert_ptr_null(mf_output_open(&oc, &err));
    ck_assert(strstr(err.msg, "outputs 'f'") != NULL);
    mf_buf_fini(&scratch);
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
