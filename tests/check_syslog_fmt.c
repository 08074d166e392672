/* check_syslog_fmt.c - the pure syslog formatters (outputs/syslog_fmt.h).
 * Expected strings are written by hand from RFC 5424/3164, the CEF and
 * LEEF 2.0 rules in ../shared/docs/reliability.md §3.4, not copied from
 * the implementation's output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syslog_fmt.h"
#include "syslog_fmt.h"
#include "test_common.h"

static const char *const tag_attack[] = {"T1098.002", NULL};
static const struct mf_event_tag tag_full = {
    .id = "identity.mailbox_full_access_granted",
    .title = "Mailbox full access granted",
    .area = MF_AREA_IDENTITY_ACCESS,
    .severity = 4,
    .attack = tag_attack,
    .n_attack = 1,
};

static struct mf_arena arena;
static struct mf_buf out;
/* The event the messages are made of; its form comes from the test's JSON
 * (parsed here as the normalizer's rendering would be). */
static struct mf_event ev0;

static void
setup(void)
{
    mf_arena_init(&arena, 4096);
    mf_buf_init(&out, 1 << 20);
    memset(&ev0, 0, sizeof(ev0));
    ev0.id = "X1";
    ev0.class_uid = 3005;
    ev0.n_tags = 1;
    ev0.tags[0] = tag_full;
    ev0.severity = 4;
    ev0.areas = 1u << tag_full.area;
    ev0.top = &ev0.tags[0];
}

static void
teardown(void)
{
    mf_arena_fini(&arena);
    mf_buf_fini(&out);
}

static struct mf_syslog_fmt
fmt(int format, int payload)
{
    return (struct mf_syslog_fmt){.format = format, .payload = payload,
                                  .facility = 16, .hostname = "host1",
                                  .app_name = "m365fwd", .procid = "42",
                                  .version = "1.2.3", .max_size = 65536,
                                  .now_ms = 0};
}

struct tmsg {
    const char *data;            /* the rendered form as text */
    enum mf_schema schema;
    const char *tenant, *tenant_id, *content_type;
};

static struct tmsg
msg(const char *data, enum mf_schema schema)
{
    return (struct tmsg){.data = data, .schema = schema, .tenant = "contoso",
                         .tenant_id = "8d41", .content_type = "Audit.Exchange"};
}

/* mf_syslog_format() on ev0 with m's names and form. */
static struct mf_event_form form;

static enum mf_status
format(const struct mf_syslog_fmt *f, const struct tmsg *m, struct mf_syslog_info *info)
{
    form = (struct mf_event_form){.made = true};
    mf_arena_reset(&arena);
    form.tree = mf_json_parse(&arena, m->data, strlen(m->data), NULL, NULL, NULL);
    form.text = (struct mf_buf){.data = (char *)m->data, .len = strlen(m->data)};
    ev0.tenant = m->tenant;
    ev0.tenant_id = m->tenant_id;
    ev0.content_type = m->content_type;
    return mf_syslog_format(f, &ev0, m->schema, &form, &out, info);
}

static const char *
escaped(int (*fn)(struct mf_buf *, const char *, size_t), const char *s, size_t n)
{
    mf_buf_reset(&out);
    ck_assert_int_eq(fn(&out, s, n), 0);
    return out.data ? out.data : "";
}

static const char ocsf_ev[] =
    "{\"time\":1690115573000,\"metadata\":{\"event_code\":\"Add-MailboxPermission\","
    "\"uid\":\"X1\"},\"actor\":{\"user\":{\"name\":\"stinger@contoso.com\"}},"
    "\"src_endpoint\":{\"ip\":\"10.0.0.1\"},\"status\":\"Success\","
    "\"unmapped\":{\"ObjectId\":\"o\"}}";

static const char sd_full[] =
    "[m365fwd@32473 tenant=\"contoso\" tenant_id=\"8d41\" "
    "content_type=\"Audit.Exchange\" id=\"X1\" class_uid=\"3005\" severity=\"4\" "
    "tags=\"identity.mailbox_full_access_granted\" areas=\"identity_access\"]";

/* ---- severity / PRI --------------------------------------------------- */

START_TEST(pri_table)
{
    /* OCSF 1..5 -> info, notice, warning, error, critical */
    ck_assert_int_eq(mf_syslog_severity(1), 6);
    ck_assert_int_eq(mf_syslog_severity(2), 5);
    ck_assert_int_eq(mf_syslog_severity(3), 4);
    ck_assert_int_eq(mf_syslog_severity(4), 3);
    ck_assert_int_eq(mf_syslog_severity(5), 2);
    ck_assert_int_eq(mf_syslog_severity(0), 6);
    ck_assert_int_eq(mf_syslog_severity(99), 6);
    ck_assert_int_eq(mf_syslog_pri(16, 3), 131);    /* local0.err */
    ck_assert_int_eq(mf_syslog_pri(0, 0), 0);
    ck_assert_int_eq(mf_syslog_pri(23, 7), 191);
    ck_assert_int_eq(mf_syslog_pri(24, 0), -1);
    ck_assert_int_eq(mf_syslog_pri(-1, 0), -1);
    ck_assert_int_eq(mf_syslog_pri(4, 8), -1);
    ck_assert_int_eq(mf_cef_severity(1), 1);
    ck_assert_int_eq(mf_cef_severity(5), 10);
}
END_TEST

/* ---- escapers --------------------------------------------------------- */

START_TEST(sde_specials)
{
    ck_assert_str_eq(escaped(mf_syslog_sd_escape, "a\"b\\c]d", 7),
                     "a\\\"b\\\\c\\]d");
    ck_assert_str_eq(escaped(mf_syslog_sd_escape, "[x=y] \xc3\xa9", 9),
                     "[x=y\\] \xc3\xa9");
    ck_assert_str_eq(escaped(mf_syslog_sd_escape, "", 0), "");
}
END_TEST

START_TEST(ceh_pipe_backslash)
{
    ck_assert_str_eq(escaped(mf_cef_escape_header, "a|b\\c=d", 7),
                     "a\\|b\\\\c=d");
    /* newline has no place in a header: a space */
    ck_assert_str_eq(escaped(mf_cef_escape_header, "a\nb", 3), "a b");
}
END_TEST

START_TEST(cee_equals_newline_nonascii)
{
    ck_assert_str_eq(escaped(mf_cef_escape_ext, "a=b\\c\nd\re|f", 11),
                     "a\\=b\\\\c\\nd\\re|f");
    ck_assert_str_eq(escaped(mf_cef_escape_ext, "J\xc3\xbcrgen \xe6\x97\xa5", 11),
                     "J\xc3\xbcrgen \xe6\x97\xa5");
    /* NUL and other controls become a space, nothing is cut */
    ck_assert_str_eq(escaped(mf_cef_escape_ext, "a\0b\x01" "c", 5), "a b c");
}
END_TEST

START_TEST(leh_pipe_backslash)
{
    ck_assert_str_eq(escaped(mf_leef_escape_header, "Set|Op\\x", 8),
                     "Set\\|Op\\\\x");
}
END_TEST

START_TEST(lev_delim_tab_newline)
{
    ck_assert_str_eq(escaped(mf_leef_escape_value, "a^b=c\\d\te\n|", 11),
                     "a\\^b=c\\\\d\\te\\n|");
    ck_assert_str_eq(escaped(mf_leef_escape_value, "\xc3\xa9t\xc3\xa9", 5),
                     "\xc3\xa9t\xc3\xa9");
}
END_TEST

/* ---- time --------------------------------------------------------------- */

START_TEST(ts_formats)
{
    char b[40];

    ck_assert_uint_eq(mf_syslog_ts5424(1690115573123, b, sizeof(b)), 24);
    ck_assert_str_eq(b, "2023-07-23T12:32:53.123Z");
    mf_syslog_ts5424(0, b, sizeof(b));
    ck_assert_str_eq(b, "1970-01-01T00:00:00.000Z");
    mf_syslog_ts3164(1690115573123, b, sizeof(b));
    ck_assert_str_eq(b, "Jul 23 12:32:53");
    mf_syslog_ts3164(1704164645000, b, sizeof(b));   /* 2024-01-02T03:04:05Z */
    ck_assert_str_eq(b, "Jan  2 03:04:05");
}
END_TEST

/* ---- framing ------------------------------------------------------------ */

START_TEST(frm_octet_and_lf)
{
    mf_buf_reset(&out);
    ck_assert_int_eq(mf_syslog_frame(MF_SYSLOG_OCTET_COUNTING, "hello", 5, &out), 0);
    ck_assert_str_eq(out.data, "5 hello");
    /* the count is octets, not characters: é is two */
    mf_buf_reset(&out);
    ck_assert_int_eq(mf_syslog_frame(MF_SYSLOG_OCTET_COUNTING, "\xc3\xa9\n", 3, &out), 0);
    ck_assert_uint_eq(out.len, 5);
    ck_assert_int_eq(memcmp(out.data, "3 \xc3\xa9\n", 5), 0);
    mf_buf_reset(&out);
    ck_assert_int_eq(mf_syslog_frame(MF_SYSLOG_LF, "a\nb\n", 4, &out), 0);
    ck_assert_str_eq(out.data, "a\\nb\\n\n");
    mf_buf_reset(&out);
    ck_assert_int_eq(mf_syslog_frame(MF_SYSLOG_LF, "", 0, &out), 0);
    ck_assert_str_eq(out.data, "\n");
}
END_TEST

/* ---- whole messages ------------------------------------------------------ */

START_TEST(fmt_rfc5424_json)
{
    struct mf_syslog_fmt f = fmt(MF_SYSLOG_RFC5424, MF_SYSLOG_JSON);
    struct tmsg m = msg(ocsf_ev, MF_SCHEMA_OCSF);
    struct mf_syslog_info info;
    char want[2048];

    ck_assert_int_eq(format(&f, &m, &info), MF_OK);
    snprintf(want, sizeof(want),
             "<131>1 2023-07-23T12:32:53.000Z host1 m365fwd 42 Add-MailboxPermission "
             "%s %s", sd_full, ocsf_ev);
    ck_assert_str_eq(out.data, want);
    ck_assert(!info.truncated);
    ck_assert_int_eq(info.severity, 3);
}
END_TEST

START_TEST(fmt_rfc5424_nil_and_escapes)
{
    struct mf_syslog_fmt f = fmt(MF_SYSLOG_RFC5424, MF_SYSLOG_JSON);
    struct tmsg m = msg("{\"a\":1}", MF_SCHEMA_OCSF);
    struct mf_syslog_info info;
    char want[1024];

    memset(&ev0, 0, sizeof(ev0));
    m.tenant = "ten\"a]nt\\";
    m.tenant_id = NULL;
    m.content_type = NULL;
    f.hostname = NULL;
    f.app_name = "my app";
    f.procid = NULL;
    f.facility = 4;    /* auth */
    ck_assert_int_eq(format(&f, &m, &info), MF_OK);
    snprintf(want, sizeof(want),
             "<38>1 - - my_app - - [m365fwd@32473 tenant=\"ten\\\"a\\]nt\\\\\" "
             "severity=\"1\"] {\"a\":1}");
    ck_assert_str_eq(out.data, want);
}
END_TEST

START_TEST(fmt_rfc3164_json)
{
    struct mf_syslog_fmt f = fmt(MF_SYSLOG_RFC3164, MF_SYSLOG_JSON);
    struct tmsg m = msg(ocsf_ev, MF_SCHEMA_OCSF);
    struct mf_syslog_info info;
    char want[2048];

    ck_assert_int_eq(format(&f, &m, &info), MF_OK);
    snprintf(want, sizeof(want), "<131>Jul 23 12:32:53 host1 m365fwd[42]: %s", ocsf_ev);
    ck_assert_str_eq(out.data, want);
    /* no event time: the clock given by the caller */
    m = msg("{\"a\":1}", MF_SCHEMA_OCSF);
    f.now_ms = 1704164645000;
    ck_assert_int_eq(format(&f, &m, &info), MF_OK);
    ck_assert_str_eq(out.data, "<131>Jan  2 03:04:05 host1 m365fwd[42]: {\"a\":1}");
}
END_TEST

START_TEST(fmt_cef_fields)
{
    struct mf_syslog_fmt f = fmt(MF_SYSLOG_RFC5424, MF_SYSLOG_CEF);
    struct tmsg m = msg(ocsf_ev, MF_SCHEMA_OCSF);
    struct mf_syslog_info info;
    char want[2048];

    ck_assert_int_eq(format(&f, &m, &info), MF_OK);
    snprintf(want, sizeof(want),
             "<131>1 2023-07-23T12:32:53.000Z host1 m365fwd 42 Add-MailboxPermission %s "
             "CEF:0|Microsoft|Microsoft 365|1.2.3|Add-MailboxPermission|"
             "Mailbox full access granted|8|rt=1690115573000 externalId=X1 "
             "act=Add-MailboxPermission suser=stinger@contoso.com src=10.0.0.1 "
             "outcome=Success cat=Audit.Exchange cs1Label=tenant cs1=contoso "
             "cs2Label=tags cs2=identity.mailbox_full_access_granted "
             "cs3Label=areas cs3=identity_access cs4Label=attack cs4=T1098.002 "
             "cs5Label=tenantId cs5=8d41 cn1Label=ocsfClassUid cn1=3005", sd_full);
    ck_assert_str_eq(out.data, want);
}
END_TEST

static const char hostile_ev[] =
    "{\"time\":0,\"metadata\":{\"event_code\":\"Set|Op\"},"
    "\"actor\":{\"user\":{\"name\":\"a=b\\\\c\\nd|\\u00e9^\"}}}";

START_TEST(fmt_cef_hostile)
{
    struct mf_syslog_fmt f = fmt(MF_SYSLOG_RFC3164, MF_SYSLOG_CEF);
    struct tmsg m = msg(hostile_ev, MF_SCHEMA_OCSF);
    struct mf_syslog_info info;

    ev0.n_tags = 0;
    ev0.top = NULL;
    ev0.areas = 0;
    ev0.severity = 0;
    m.tenant = "x|y=z";
    ck_assert_int_eq(format(&f, &m, &info), MF_OK);
    ck_assert_str_eq(out.data,
                     "<134>Jan  1 00:00:00 host1 m365fwd[42]: "
                     "CEF:0|Microsoft|Microsoft 365|1.2.3|Set\\|Op|Set\\|Op|1|"
                     "rt=0 externalId=X1 act=Set|Op suser=a\\=b\\\\c\\nd|\xc3\xa9^ "
                     "cat=Audit.Exchange cs1Label=tenant cs1=x|y\\=z "
                     "cs5Label=tenantId cs5=8d41 cn1Label=ocsfClassUid cn1=3005");
    ck_assert_ptr_null(strchr(out.data, '\n'));
}
END_TEST

START_TEST(fmt_leef_hostile)
{
    struct mf_syslog_fmt f = fmt(MF_SYSLOG_RFC3164, MF_SYSLOG_LEEF);
    struct tmsg m = msg(hostile_ev, MF_SCHEMA_OCSF);
    struct mf_syslog_info info;

    ck_assert_int_eq(format(&f, &m, &info), MF_OK);
    ck_assert_str_eq(out.data,
                     "<131>Jan  1 00:00:00 host1 m365fwd[42]: "
                     "LEEF:2.0|Microsoft|Microsoft 365|1.2.3|Set\\|Op|^|"
                     "devTime=1970-01-01T00:00:00.000Z^"
                     "devTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSX^sev=8^"
                     "cat=Audit.Exchange^usrName=a=b\\\\c\\nd|\xc3\xa9\\^^"
                     "externalId=X1^tenant=contoso^tenantId=8d41^classUid=3005^"
                     "tags=identity.mailbox_full_access_granted^areas=identity_access^"
                     "attack=T1098.002");
}
END_TEST

START_TEST(fmt_ecs_and_raw_facts)
{
    struct mf_syslog_fmt f = fmt(MF_SYSLOG_RFC5424, MF_SYSLOG_CEF);
    struct tmsg m = msg("{\"@timestamp\":\"2023-07-23T12:32:53.250Z\","
                              "\"event\":{\"action\":\"UserLoggedIn\",\"outcome\":\"success\","
                              "\"provider\":\"AzureActiveDirectory\"},"
                              "\"user\":{\"id\":\"u@x\"},\"source\":{\"ip\":\"::1\"}}",
                              MF_SCHEMA_ECS);
    struct mf_syslog_info info;

    ck_assert_int_eq(format(&f, &m, &info), MF_OK);
    ck_assert_ptr_nonnull(strstr(out.data, " UserLoggedIn [m365fwd@32473 "));
    ck_assert_ptr_nonnull(strstr(out.data, "|UserLoggedIn|Mailbox full access granted|8|"
                                           "rt=1690115573250 externalId=X1 act=UserLoggedIn "
                                           "suser=u@x src=::1 outcome=success "));
    ck_assert_ptr_nonnull(strstr(out.data, "cs6Label=workload cs6=AzureActiveDirectory"));
    m = msg("{\"CreationTime\":\"2023-07-23T12:32:53\",\"Operation\":\"FileAccessed\","
            "\"UserId\":\"u@x\",\"ClientIP\":\"1.2.3.4:5\",\"ResultStatus\":\"Succeeded\"}",
            MF_SCHEMA_RAW);
    ck_assert_int_eq(format(&f, &m, &info), MF_OK);
    ck_assert_ptr_nonnull(strstr(out.data, "2023-07-23T12:32:53.000Z host1 m365fwd 42 "
                                           "FileAccessed "));
    ck_assert_ptr_nonnull(strstr(out.data, "act=FileAccessed suser=u@x outcome=Succeeded "));
    ck_assert_ptr_null(strstr(out.data, "src="));
}
END_TEST

START_TEST(fmt_not_json_dropped)
{
    struct mf_syslog_fmt f = fmt(MF_SYSLOG_RFC5424, MF_SYSLOG_JSON);
    struct tmsg m = msg("[1,2", MF_SCHEMA_OCSF);
    struct mf_syslog_info info;

    ck_assert_int_eq(format(&f, &m, &info), MF_DROP);
    ck_assert_ptr_nonnull(strstr(info.reason, "not a JSON object"));
}
END_TEST

/* ---- oversize policy ------------------------------------------------------ */

static char *
big_event(const char *fmt_, size_t pad)
{
    char *p = malloc(pad + 1), *ev;
    size_t n;

    memset(p, 'x', pad);
    p[pad] = '\0';
    n = strlen(fmt_) + 2 * pad + 1;
    ev = malloc(n);
    snprintf(ev, n, fmt_, p, p);
    free(p);
    return ev;
}

START_TEST(ovs_ocsf_json_reduced)
{
    struct mf_syslog_fmt f = fmt(MF_SYSLOG_RFC5424, MF_SYSLOG_JSON);
    char *ev = big_event("{\"time\":1690115573000,\"metadata\":{\"event_code\":\"Op\"},"
                         "\"unmapped\":{\"Big\":\"%s\"},\"raw_data\":\"%s\","
                         "\"user\":{\"name\":\"\xc3\xa9\"}}", 3000);
    struct tmsg m = msg(ev, MF_SCHEMA_OCSF);
    struct mf_syslog_info info;
    const char *body;

    f.max_size = 700;
    ck_assert_int_eq(format(&f, &m, &info), MF_OK);
    ck_assert(info.truncated);
    ck_assert_uint_le(out.len, 700);
    ck_assert_ptr_null(strstr(out.data, "xxx"));
    ck_assert_ptr_nonnull(strstr(out.data, " truncated=\"raw_data unmapped\"]"));
    body = strstr(out.data, "] {");
    ck_assert_ptr_nonnull(body);
    ck_assert_str_eq(body + 2,
                     "{\"time\":1690115573000,\"metadata\":{\"event_code\":\"Op\"},"
                     "\"user\":{\"name\":\"\xc3\xa9\"},\"unmapped\":{\"m365fwd\":"
                     "{\"truncated\":[\"raw_data\",\"unmapped\"]}}}");
    /* under the limit: unchanged */
    f.max_size = 20000;
    ck_assert_int_eq(format(&f, &m, &info), MF_OK);
    ck_assert(!info.truncated);
    ck_assert_ptr_nonnull(strstr(out.data, ev));
    free(ev);
}
END_TEST

START_TEST(ovs_ecs_json_reduced)
{
    struct mf_syslog_fmt f = fmt(MF_SYSLOG_RFC3164, MF_SYSLOG_JSON);
    char *ev = big_event("{\"event\":{\"action\":\"Op\",\"original\":\"%s\"},"
                         "\"o365\":{\"audit\":{\"Big\":\"%s\"}},"
                         "\"m365fwd\":{\"risk\":{\"severity\":4}}}", 3000);
    struct tmsg m = msg(ev, MF_SCHEMA_ECS);
    struct mf_syslog_info info;
    const char *body;

    f.max_size = 600;
    ck_assert_int_eq(format(&f, &m, &info), MF_OK);
    ck_assert(info.truncated);
    body = strstr(out.data, ": {");
    ck_assert_ptr_nonnull(body);
    ck_assert_str_eq(body + 2,
                     "{\"event\":{\"action\":\"Op\"},\"m365fwd\":{\"risk\":{\"severity\":4},"
                     "\"truncated\":[\"event.original\",\"o365.audit\"]}}");
    /* the event's own rendering (shared with the other outputs) is intact */
    {
        struct mf_buf again;

        mf_buf_init(&again, 0);
        ck_assert_int_eq(mf_json_write(&again, form.tree), 0);
        ck_assert_str_eq(again.data, ev);
        mf_buf_fini(&again);
    }
    free(ev);
}
END_TEST

START_TEST(ovs_refused)
{
    struct mf_syslog_fmt f = fmt(MF_SYSLOG_RFC5424, MF_SYSLOG_JSON);
    char *ev = big_event("{\"CreationTime\":\"2023-07-23T12:32:53\",\"A\":\"%s\","
                         "\"B\":\"%s\"}", 2000);
    struct tmsg m = msg(ev, MF_SCHEMA_RAW);
    struct mf_syslog_info info;

    /* raw: nothing may be removed */
    f.max_size = 1000;
    ck_assert_int_eq(format(&f, &m, &info), MF_DROP);
    ck_assert_ptr_nonnull(strstr(info.reason, "max_message_size 1000"));
    ck_assert_uint_eq(out.len, 0);
    /* cef: refused, never cut */
    f.payload = MF_SYSLOG_CEF;
    m.schema = MF_SCHEMA_OCSF;
    free(ev);
    ev = big_event("{\"actor\":{\"user\":{\"name\":\"%s%s\"}}}", 1000);
    m.data = ev;
    ck_assert_int_eq(format(&f, &m, &info), MF_DROP);
    /* ocsf json whose core alone is too big: refused after the reduction */
    f.payload = MF_SYSLOG_JSON;
    ck_assert_int_eq(format(&f, &m, &info), MF_DROP);
    ck_assert_ptr_nonnull(strstr(info.reason, "nothing to remove"));
    free(ev);
    ev = big_event("{\"unmapped\":{\"a\":\"%s\"},\"actor\":\"%s\"}", 1000);
    m.data = ev;
    ck_assert_int_eq(format(&f, &m, &info), MF_DROP);
    ck_assert_ptr_nonnull(strstr(info.reason, "even without unmapped"));
    free(ev);
}
END_TEST

static Suite *
syslog_fmt_suite(void)
{
    Suite *s = suite_create("syslog_fmt");
    struct {
        const char *name;
        const TTest *tests[8];
    } cases[] = {
        {"mf_syslog_pri", {pri_table}},
        {"mf_syslog_sd_escape", {sde_specials}},
        {"mf_cef_escape_header", {ceh_pipe_backslash}},
        {"mf_cef_escape_ext", {cee_equals_newline_nonascii}},
        {"mf_leef_escape_header", {leh_pipe_backslash}},
        {"mf_leef_escape_value", {lev_delim_tab_newline}},
        {"mf_syslog_ts", {ts_formats}},
        {"mf_syslog_frame", {frm_octet_and_lf}},
        {"mf_syslog_format", {fmt_rfc5424_json, fmt_rfc5424_nil_and_escapes,
                              fmt_rfc3164_json, fmt_cef_fields, fmt_cef_hostile,
                              fmt_leef_hostile, fmt_ecs_and_raw_facts,
                              fmt_not_json_dropped}},
        {"mf_syslog_format_oversize", {ovs_ocsf_json_reduced, ovs_ecs_json_reduced,
                                       ovs_refused}},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);

        tcase_add_checked_fixture(tc, setup, teardown);
        for (size_t k = 0; k < 8 && cases[i].tests[k]; k++)
            tcase_add_test(tc, cases[i].tests[k]);
        suite_add_tcase(s, tc);
    }
    return s;
}

int
main(void)
{
    return mf_test_run(syslog_fmt_suite());
}
