/* check_metrics.c - metrics registry, health state and the HTTP listener. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <jansson.h>

#include "log.h"
#include "metrics.h"
#include "test_common.h"

/* ---- helpers ------------------------------------------------------------ */

static int64_t fake_now;

static int64_t
fake_clock(void *ud)
{
    (void)ud;
    return fake_now;
}

static struct mf_metrics *
new_fake(void)
{
    struct mf_metrics *m = mf_metrics_new("9.9.9");

    fake_now = 1000000;
    mf_metrics_set_clock(m, fake_clock, NULL);
    return m;
}

/* The body contains this exact line. */
static void
assert_line(const char *body, const char *line)
{
    size_t n = strlen(line);
    const char *p = body;

    while ((p = strstr(p, line)) != NULL) {
        if ((p == body || p[-1] == '\n') && p[n] == '\n')
            return;
        p++;
    }
    ck_abort_msg("line not found: [%s] in:\n%s", line, body);
}

static bool
has_line_prefix(const char *body, const char *prefix)
{
    size_t n = strlen(prefix);
    const char *p = body;

    while ((p = strstr(p, prefix)) != NULL) {
        if (p == body || p[-1] == '\n')
            return true;
        p += n;
    }
    return false;
}

static const char *
checker_path(void)
{
    static char path[1024];
    const char *root = getenv("MF_SOURCE_ROOT");

    snprintf(path, sizeof(path), "%s/tests/metrics/promtext_check.py",
             root ? root : "..");
    return path;
}

/* Run promtext_check.py on body; returns its exit code, message in out. */
static int
promtext_check(const char *body, size_t len, char *out, size_t outsz)
{
    char tmpl[] = "/tmp/mf-prom-XXXXXX";
    char cmd[1400];
    FILE *p;
    size_t n;
    int fd = mkstemp(tmpl), st;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, body, len), (ssize_t)len);
    close(fd);
    snprintf(cmd, sizeof(cmd), "python3 '%s' '%s' 2>&1", checker_path(), tmpl);
    p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    n = fread(out, 1, outsz - 1, p);
    out[n] = '\0';
    st = pclose(p);
    unlink(tmpl);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

struct http_resp {
    int status;
    char *raw;          /* whole response, malloc'd */
    const char *body;   /* into raw */
};

static void
http_free(struct http_resp *r)
{
    free(r->raw);
}

/* One HTTP/1.0 request over a plain socket; reads until the server closes. */
static struct http_resp
http_do(int family, int port, const char *method, const char *path)
{
    struct http_resp r = {0, NULL, NULL};
    struct sockaddr_storage ss;
    socklen_t sl;
    size_t len = 0, cap = 65536;
    char req[256];
    const char *sep;
    ssize_t k;
    int fd;

    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_addr = in6addr_loopback;
        sl = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;

        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sl = sizeof(*a);
    }
    fd = socket(family, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_msg(connect(fd, (struct sockaddr *)&ss, sl) == 0,
                  "connect: %s", strerror(errno));
    snprintf(req, sizeof(req),
             "%s %s HTTP/1.0\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n",
             method, path);
    ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    r.raw = malloc(cap);
    ck_assert_ptr_nonnull(r.raw);
    while ((k = read(fd, r.raw + len, cap - len - 1)) > 0) {
        len += (size_t)k;
        if (cap - len < 1024) {
            cap *= 2;
            r.raw = realloc(r.raw, cap);
            ck_assert_ptr_nonnull(r.raw);
        }
    }
    close(fd);
    r.raw[len] = '\0';
    ck_assert_msg(sscanf(r.raw, "HTTP/1.%*d %d", &r.status) == 1,
                  "bad response: %s", r.raw);
    sep = strstr(r.raw, "\r\n\r\n");
    ck_assert_ptr_nonnull(sep);
    r.body = sep + 4;
    return r;
}

static struct mf_metrics_server *
start_ok(struct mf_metrics *m, const char *listen)
{
    char err[256] = "";
    struct mf_metrics_server *s = mf_metrics_server_start(m, listen, err,
                                                          sizeof(err));

    ck_assert_msg(s != NULL, "%s", err);
    ck_assert_int_gt(mf_metrics_server_port(s), 0);
    return s;
}

/* ---- mf_metrics_add / mf_metrics_get ------------------------------------ */

START_TEST(madd_counter_accumulates_per_series)
{
    struct mf_metrics *m = mf_metrics_new("1");
    const char *a[] = {"contoso", "Audit.Exchange"};
    const char *b[] = {"contoso", "Audit.General"};

    mf_metrics_add(m, MF_M_RECORDS_RECEIVED, a, 3);
    mf_metrics_add(m, MF_M_RECORDS_RECEIVED, a, 2);
    mf_metrics_add(m, MF_M_RECORDS_RECEIVED, b, 7);
    ck_assert_double_eq(mf_metrics_get(m, MF_M_RECORDS_RECEIVED, a), 5);
    ck_assert_double_eq(mf_metrics_get(m, MF_M_RECORDS_RECEIVED, b), 7);
    mf_metrics_destroy(m);
}
END_TEST

START_TEST(madd_counter_ignores_negative_and_nan)
{
    struct mf_metrics *m = mf_metrics_new("1");
    const char *v[] = {"out1"};

    mf_metrics_add(m, MF_M_DELIVERY_FAILURES, v, 1);
    mf_metrics_add(m, MF_M_DELIVERY_FAILURES, v, -5);
    mf_metrics_add(m, MF_M_DELIVERY_FAILURES, v, NAN);
    ck_assert_double_eq(mf_metrics_get(m, MF_M_DELIVERY_FAILURES, v), 1);
    mf_metrics_destroy(m);
}
END_TEST

START_TEST(madd_gauge_moves_both_ways)
{
    struct mf_metrics *m = mf_metrics_new("1");
    const char *v[] = {"kafka"};

    mf_metrics_add(m, MF_M_QUEUE_DEPTH, v, 10);
    mf_metrics_add(m, MF_M_QUEUE_DEPTH, v, -4);
    ck_assert_double_eq(mf_metrics_get(m, MF_M_QUEUE_DEPTH, v), 6);
    mf_metrics_destroy(m);
}
END_TEST

START_TEST(madd_unknown_id_and_null_registry_ignored)
{
    struct mf_metrics *m = mf_metrics_new("1");
    const char *v[] = {"x"};

    mf_metrics_add(m, 9999, v, 1);
    mf_metrics_add(m, -1, v, 1);
    mf_metrics_add(NULL, MF_M_DELIVERY_FAILURES, v, 1);
    mf_metrics_records_received(NULL, "t", "c", 1);
    ck_assert(isnan(mf_metrics_get(m, 9999, v)));
    ck_assert(isnan(mf_metrics_get(NULL, 0, v)));
    ck_assert(isnan(mf_metrics_get(m, MF_M_DELIVERY_FAILURES, v)));
    mf_metrics_destroy(m);
}
END_TEST

START_TEST(madd_null_value_is_empty_label)
{
    struct mf_metrics *m = mf_metrics_new("1");
    const char *n[] = {NULL};
    const char *e[] = {""};
    char *body;

    mf_metrics_add(m, MF_M_API_THROTTLED, n, 1);
    mf_metrics_add(m, MF_M_API_THROTTLED, e, 1);
    ck_assert_double_eq(mf_metrics_get(m, MF_M_API_THROTTLED, e), 2);
    body = mf_metrics_render(m, NULL);
    assert_line(body, "m365fwd_api_throttled_total{tenant=\"\"} 2");
    free(body);
    mf_metrics_destroy(m);
}
END_TEST

/* ---- mf_metrics_set ------------------------------------------------------ */

START_TEST(mset_gauge_replaces)
{
    struct mf_metrics *m = mf_metrics_new("1");
    const char *v[] = {"t", "Audit.SharePoint"};

    mf_metrics_set(m, MF_M_CHECKPOINT_LAG, v, 120);
    mf_metrics_set(m, MF_M_CHECKPOINT_LAG, v, 30.5);
    ck_assert_double_eq(mf_metrics_get(m, MF_M_CHECKPOINT_LAG, v), 30.5);
    mf_metrics_destroy(m);
}
END_TEST

START_TEST(mset_counter_refused)
{
    struct mf_metrics *m = mf_metrics_new("1");
    const char *v[] = {"out"};

    mf_metrics_add(m, MF_M_DELIVERY_FAILURES, v, 4);
    mf_metrics_set(m, MF_M_DELIVERY_FAILURES, v, 1);
    ck_assert_double_eq(mf_metrics_get(m, MF_M_DELIVERY_FAILURES, v), 4);
    mf_metrics_destroy(m);
}
END_TEST

/* ---- mf_metrics_register ------------------------------------------------- */

START_TEST(mreg_valid_family_is_usable)
{
    struct mf_metrics *m = mf_metrics_new("1");
    const char *labels[] = {"output", "partition"};
    const char *v[] = {"k1", "3"};
    char err[160] = "", *body;
    int id;

    id = mf_metrics_register(m, MF_METRIC_COUNTER, "m365fwd_kafka_errors_total",
                             "Kafka errors.", labels, 2, err, sizeof(err));
    ck_assert_msg(id >= MF_M_STD_COUNT, "%s", err);
    mf_metrics_add(m, id, v, 2);
    body = mf_metrics_render(m, NULL);
    assert_line(body, "# TYPE m365fwd_kafka_errors_total counter");
    assert_line(body, "m365fwd_kafka_errors_total{output=\"k1\","
                      "partition=\"3\"} 2");
    free(body);
    mf_metrics_destroy(m);
}
END_TEST

START_TEST(mreg_bad_definitions_refused)
{
    static const struct {
        enum mf_metric_type type;
        const char *name;
        const char *labels[3];
        size_t n;
        const char *why;
    } bad[] = {
        {MF_METRIC_GAUGE, "9lives", {NULL}, 0, "invalid metric name"},
        {MF_METRIC_GAUGE, "bad-name", {NULL}, 0, "invalid metric name"},
        {MF_METRIC_GAUGE, "", {NULL}, 0, "invalid metric name"},
        {MF_METRIC_COUNTER, "m365fwd_things", {NULL}, 0, "_total"},
        {MF_METRIC_GAUGE, "m365fwd_output_queue_depth", {"output"}, 1, "twice"},
        {MF_METRIC_GAUGE, "g1", {"__name"}, 1, "invalid label name"},
        {MF_METRIC_GAUGE, "g2", {"a-b"}, 1, "invalid label name"},
        {MF_METRIC_GAUGE, "g3", {"a", "a"}, 2, "label 'a' twice"},
    };
    struct mf_metrics *m = mf_metrics_new("1");
    const char *many[MF_METRICS_LABELS_MAX + 1];
    char err[160];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        ck_assert_int_eq(mf_metrics_register(m, bad[i].type, bad[i].name, "h",
                                             bad[i].labels, bad[i].n, err,
                                             sizeof(err)), -1);
        ck_assert_msg(strstr(err, bad[i].why) != NULL, "%s: %s", bad[i].name,
                      err);
    }
    for (i = 0; i < MF_METRICS_LABELS_MAX + 1; i++)
        many[i] = "l";
    ck_assert_int_eq(mf_metrics_register(m, MF_METRIC_GAUGE, "g4", "h", many,
                                         MF_METRICS_LABELS_MAX + 1, err,
                                         sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "labels"));
    mf_metrics_destroy(m);
}
END_TEST

/* ---- mf_metrics_render --------------------------------------------------- */

START_TEST(mren_standard_families_and_values)
{
    struct mf_metrics *m = mf_metrics_new("1.2.3");
    char *body, out[4096];
    size_t len;

    mf_metrics_records_received(m, "contoso", "Audit.Exchange", 5);
    mf_metrics_records_delivered(m, "file", "contoso", "Audit.Exchange", 4);
    mf_metrics_api_request(m, "contoso", "content", 200);
    mf_metrics_api_request(m, "contoso", "content", 200);
    mf_metrics_api_request(m, "contoso", "token", 0);
    mf_metrics_checkpoint_lag(m, "contoso", "Audit.Exchange", 0.25);
    body = mf_metrics_render(m, &len);
    ck_assert_uint_eq(len, strlen(body));
    assert_line(body, "# TYPE m365fwd_records_received_total counter");
    assert_line(body, "m365fwd_records_received_total{tenant=\"contoso\","
                      "content_type=\"Audit.Exchange\"} 5");
    assert_line(body, "m365fwd_records_delivered_total{output=\"file\","
                      "tenant=\"contoso\",content_type=\"Audit.Exchange\"} 4");
    assert_line(body, "m365fwd_api_requests_total{tenant=\"contoso\","
                      "endpoint=\"content\",status=\"200\"} 2");
    assert_line(body, "m365fwd_api_requests_total{tenant=\"contoso\","
                      "endpoint=\"token\",status=\"0\"} 1");
    assert_line(body, "# TYPE m365fwd_checkpoint_lag_seconds gauge");
    assert_line(body, "m365fwd_checkpoint_lag_seconds{tenant=\"contoso\","
                      "content_type=\"Audit.Exchange\"} 0.25");
    assert_line(body, "m365fwd_build_info{version=\"1.2.3\"} 1");
    ck_assert(has_line_prefix(body, "process_start_time_seconds 1"));
    ck_assert_msg(promtext_check(body, len, out, sizeof(out)) == 0, "%s\n%s",
                  out, body);
    free(body);
    mf_metrics_destroy(m);
}
END_TEST

START_TEST(mren_label_value_escaping)
{
    struct mf_metrics *m = mf_metrics_new("1");
    const char *v[] = {"a\"b\\c\nd"};
    char *body, out[4096];
    size_t len;

    mf_metrics_add(m, MF_M_DELIVERY_FAILURES, v, 1);
    body = mf_metrics_render(m, &len);
    assert_line(body, "m365fwd_delivery_failures_total"
                      "{output=\"a\\\"b\\\\c\\nd\"} 1");
    ck_assert_msg(promtext_check(body, len, out, sizeof(out)) == 0, "%s", out);
    /* the raw value reads back as the same series */
    ck_assert_double_eq(mf_metrics_get(m, MF_M_DELIVERY_FAILURES, v), 1);
    free(body);
    mf_metrics_destroy(m);
}
END_TEST

START_TEST(mren_help_escaping)
{
    struct mf_metrics *m = mf_metrics_new("1");
    char *body, err[160];
    int id;

    id = mf_metrics_register(m, MF_METRIC_GAUGE, "m365fwd_x", "a\\b\nc", NULL,
                             0, err, sizeof(err));
    ck_assert_int_ge(id, 0);
    mf_metrics_set(m, id, NULL, 1);
    body = mf_metrics_render(m, NULL);
    assert_line(body, "# HELP m365fwd_x a\\\\b\\nc");
    assert_line(body, "m365fwd_x 1");
    free(body);
    mf_metrics_destroy(m);
}
END_TEST

START_TEST(mren_value_formats)
{
    static const struct {
        double v;
        const char *want;
    } cases[] = {
        {0, "0"}, {42, "42"}, {0.1, "0.1"}, {-2.5, "-2.5"}, {1e20, "1e+20"},
        {1.0 / 3.0, "0.33333333333333331"}, {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"}, {NAN, "NaN"},
    };
    struct mf_metrics *m = mf_metrics_new("1");
    char line[128], *body;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *v[] = {"o"};

        mf_metrics_set(m, MF_M_QUEUE_DEPTH, v, cases[i].v);
        body = mf_metrics_render(m, NULL);
        snprintf(line, sizeof(line),
                 "m365fwd_output_queue_depth{output=\"o\"} %s", cases[i].want);
        assert_line(body, line);
        free(body);
    }
    mf_metrics_destroy(m);
}
END_TEST

START_TEST(mren_invalid_utf8_and_long_values_repaired)
{
    struct mf_metrics *m = mf_metrics_new("1");
    char longv[400], *body, out[4096], want[256];
    const char *bad[] = {"x\xff" "y\xc3"};
    const char *lv[1];
    size_t len;

    memset(longv, 'a', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    lv[0] = longv;
    mf_metrics_add(m, MF_M_DELIVERY_FAILURES, bad, 1);
    mf_metrics_add(m, MF_M_DELIVERY_FAILURES, bad, 1);
    mf_metrics_add(m, MF_M_DELIVERY_FAILURES, lv, 1);
    body = mf_metrics_render(m, &len);
    assert_line(body, "m365fwd_delivery_failures_total{output=\"x\xef\xbf\xbdy"
                      "\xef\xbf\xbd\"} 2");
    memset(want, 'a', MF_METRICS_LABEL_MAX);
    want[MF_METRICS_LABEL_MAX] = '\0';
    ck_assert_ptr_nonnull(strstr(body, want));
    ck_assert_ptr_null(strstr(body, longv));
    ck_assert_msg(promtext_check(body, len, out, sizeof(out)) == 0, "%s", out);
    free(body);
    mf_metrics_destroy(m);
}
END_TEST

/* ---- promtext_check.py (the checker must be able to fail) ---------------- */

START_TEST(pcheck_self_test_and_rejects)
{
    static const char dup[] = "# HELP g G.\n# TYPE g gauge\ng{a=\"1\"} 1\n"
                              "g{a=\"1\"} 2\n";
    static const char esc[] = "# HELP g G.\n# TYPE g gauge\ng{a=\"x\ny\"} 1\n";
    char cmd[1200], out[4096];

    snprintf(cmd, sizeof(cmd), "python3 '%s' --self-test >/dev/null",
             checker_path());
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(promtext_check(dup, strlen(dup), out, sizeof(out)), 1);
    ck_assert_ptr_nonnull(strstr(out, "duplicate series"));
    ck_assert_int_eq(promtext_check(esc, strlen(esc), out, sizeof(out)), 1);
}
END_TEST

/* ---- mf_metrics_set_series_limit ----------------------------------------- */

START_TEST(mlim_bound_counts_overflow)
{
    struct mf_metrics *m = mf_metrics_new("1");
    char name[32], *body, out[8192];
    const char *v[1] = {name};
    size_t len;
    int i;

    mf_metrics_set_series_limit(m, 3);
    for (i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "out%d", i);
        mf_metrics_add(m, MF_M_DELIVERY_FAILURES, v, 1);
    }
    /* existing series still update */
    snprintf(name, sizeof(name), "out0");
    mf_metrics_add(m, MF_M_DELIVERY_FAILURES, v, 1);
    ck_assert_double_eq(mf_metrics_get(m, MF_M_DELIVERY_FAILURES, v), 2);
    snprintf(name, sizeof(name), "out3");
    ck_assert(isnan(mf_metrics_get(m, MF_M_DELIVERY_FAILURES, v)));
    body = mf_metrics_render(m, &len);
    assert_line(body, "m365fwd_metrics_series_dropped_total"
                      "{family=\"m365fwd_delivery_failures_total\"} 2");
    ck_assert_msg(promtext_check(body, len, out, sizeof(out)) == 0, "%s", out);
    free(body);
    mf_metrics_destroy(m);
}
END_TEST

START_TEST(mlim_default_bound_many_series)
{
    struct mf_metrics *m = mf_metrics_new("1");
    char name[32];
    const char *v[2] = {name, "Audit.General"};
    const char *f[1] = {"m365fwd_records_received_total"};
    int i;

    for (i = 0; i < MF_METRICS_SERIES_MAX + 10; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        mf_metrics_add(m, MF_M_RECORDS_RECEIVED, v, 1);
    }
    snprintf(name, sizeof(name), "t%d", MF_METRICS_SERIES_MAX - 1);
    ck_assert_double_eq(mf_metrics_get(m, MF_M_RECORDS_RECEIVED, v), 1);
    snprintf(name, sizeof(name), "t%d", 7);
    mf_metrics_add(m, MF_M_RECORDS_RECEIVED, v, 1);
    ck_assert_double_eq(mf_metrics_get(m, MF_M_RECORDS_RECEIVED, v), 2);
    ck_assert_double_eq(mf_metrics_get(m, MF_M_STD_COUNT + 2, f), 10);
    mf_metrics_destroy(m);
}
END_TEST

/* ---- mf_metrics_forget --------------------------------------------------- */

START_TEST(mfor_drops_one_tenant)
{
    struct mf_metrics *m = mf_metrics_new("1");
    const char *a[] = {"t1", "Audit.Exchange"}, *b[] = {"t2", "Audit.Exchange"};
    const char *c[] = {"t1", "Audit.General"};

    mf_metrics_records_received(m, "t1", "Audit.Exchange", 1);
    mf_metrics_records_received(m, "t2", "Audit.Exchange", 2);
    mf_metrics_records_received(m, "t1", "Audit.General", 3);
    ck_assert_uint_eq(mf_metrics_forget(m, MF_M_RECORDS_RECEIVED, "tenant",
                                        "t1"), 2);
    ck_assert(isnan(mf_metrics_get(m, MF_M_RECORDS_RECEIVED, a)));
    ck_assert(isnan(mf_metrics_get(m, MF_M_RECORDS_RECEIVED, c)));
    ck_assert_double_eq(mf_metrics_get(m, MF_M_RECORDS_RECEIVED, b), 2);
    /* unknown label or value: nothing */
    ck_assert_uint_eq(mf_metrics_forget(m, MF_M_RECORDS_RECEIVED, "output",
                                        "t2"), 0);
    /* the hash still finds and creates series after the rebuild */
    mf_metrics_records_received(m, "t2", "Audit.Exchange", 1);
    mf_metrics_records_received(m, "t1", "Audit.Exchange", 1);
    ck_assert_double_eq(mf_metrics_get(m, MF_M_RECORDS_RECEIVED, b), 3);
    ck_assert_double_eq(mf_metrics_get(m, MF_M_RECORDS_RECEIVED, a), 1);
    mf_metrics_destroy(m);
}
END_TEST

/* ---- typed helpers ------------------------------------------------------- */

START_TEST(mhelp_each_helper_hits_its_family)
{
    struct mf_metrics *m = mf_metrics_new("1");
    char *body, out[8192];
    size_t len;

    mf_metrics_records_rejected(m, "t", "Audit.General", 2);
    mf_metrics_duplicates_dropped(m, "t", "Audit.General", 3);
    mf_metrics_api_throttled(m, "t");
    mf_metrics_retry(m, "t", "throttled");
    mf_metrics_gap_seconds(m, "t", "Audit.General", 3600);
    mf_metrics_gap_seconds(m, "t", "Audit.General", 0.5);
    mf_metrics_queue_depth(m, "k", 17);
    mf_metrics_delivery_failure(m, "k");
    mf_metrics_delivery_failure(m, "k");
    mf_metrics_clock_skew(m, "t", -7200);
    body = mf_metrics_render(m, &len);
    assert_line(body, "m365fwd_clock_skew_seconds{tenant=\"t\"} -7200");
    assert_line(body, "m365fwd_records_rejected_total{tenant=\"t\","
                      "content_type=\"Audit.General\"} 2");
    assert_line(body, "m365fwd_duplicates_dropped_total{tenant=\"t\","
                      "content_type=\"Audit.General\"} 3");
    assert_line(body, "m365fwd_api_throttled_total{tenant=\"t\"} 1");
    assert_line(body, "m365fwd_retries_total{tenant=\"t\","
                      "reason=\"throttled\"} 1");
    assert_line(body, "m365fwd_collection_gap_seconds_total{tenant=\"t\","
                      "content_type=\"Audit.General\"} 3600.5");
    assert_line(body, "m365fwd_output_queue_depth{output=\"k\"} 17");
    assert_line(body, "m365fwd_delivery_failures_total{output=\"k\"} 2");
    ck_assert_msg(promtext_check(body, len, out, sizeof(out)) == 0, "%s", out);
    free(body);
    mf_metrics_destroy(m);
}
END_TEST

/* ---- mf_metrics_healthz -------------------------------------------------- */

START_TEST(mhz_heartbeat_staleness)
{
    struct mf_metrics *m = new_fake();
    char reason[160];

    mf_metrics_set_heartbeat_timeout(m, 30000);
    ck_assert_int_eq(mf_metrics_healthz(m, reason, sizeof(reason)), 200);
    ck_assert_str_eq(reason, "ok");
    fake_now += 30000;
    ck_assert_int_eq(mf_metrics_healthz(m, reason, sizeof(reason)), 200);
    fake_now += 1;
    ck_assert_int_eq(mf_metrics_healthz(m, reason, sizeof(reason)), 503);
    ck_assert_ptr_nonnull(strstr(reason, "no heartbeat for 30 s"));
    mf_metrics_heartbeat(m);
    ck_assert_int_eq(mf_metrics_healthz(m, reason, sizeof(reason)), 200);
    ck_assert_int_eq(mf_metrics_healthz(NULL, reason, sizeof(reason)), 503);
    mf_metrics_destroy(m);
}
END_TEST

/* ---- mf_metrics_readyz --------------------------------------------------- */

static json_t *
readyz_json(struct mf_metrics *m, int *status)
{
    json_error_t je;
    size_t len;
    char *body = mf_metrics_readyz(m, status, &len);
    json_t *j = json_loadb(body, len, 0, &je);

    ck_assert_msg(j != NULL, "%s: %s", je.text, body);
    ck_assert(json_is_boolean(json_object_get(j, "ready")));
    ck_assert(json_is_array(json_object_get(j, "tenants")));
    ck_assert(json_is_array(json_object_get(j, "outputs")));
    ck_assert_int_eq(json_is_true(json_object_get(j, "ready")), *status == 200);
    free(body);
    return j;
}

static const char *
entry_reason(json_t *j, const char *list, size_t i)
{
    json_t *e = json_array_get(json_object_get(j, list), i);

    ck_assert_ptr_nonnull(e);
    return json_string_value(json_object_get(e, "reason"));
}

START_TEST(mrz_states)
{
    struct mf_metrics *m = new_fake();
    json_t *j, *e;
    int st;

    /* nothing registered yet */
    j = readyz_json(m, &st);
    ck_assert_int_eq(st, 503);
    ck_assert_str_eq(json_string_value(json_object_get(j, "reason")),
                     "no tenant is collecting yet");
    json_decref(j);

    mf_metrics_status_set(m, MF_METRICS_TENANT, "contoso", true, NULL, 0);
    mf_metrics_status_set(m, MF_METRICS_OUTPUT, "file", true, NULL, 0);
    j = readyz_json(m, &st);
    ck_assert_int_eq(st, 200);
    e = json_array_get(json_object_get(j, "tenants"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(e, "name")), "contoso");
    ck_assert(json_is_true(json_object_get(e, "ok")));
    ck_assert(json_is_null(json_object_get(e, "reason")));
    ck_assert_ptr_null(json_object_get(j, "reason"));
    json_decref(j);

    /* an output stops delivering */
    mf_metrics_status_set(m, MF_METRICS_OUTPUT, "file", false,
                          "write failed: \"disk\" full", 0);
    j = readyz_json(m, &st);
    ck_assert_int_eq(st, 503);
    ck_assert_str_eq(entry_reason(j, "outputs", 0),
                     "write failed: \"disk\" full");
    ck_assert_uint_eq(json_array_size(json_object_get(j, "outputs")), 1);
    json_decref(j);

    /* removed by reload: ready again */
    mf_metrics_status_remove(m, MF_METRICS_OUTPUT, "file");
    j = readyz_json(m, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "outputs")), 0);
    json_decref(j);

    /* a stopped stream */
    mf_metrics_status_set(m, MF_METRICS_TENANT, "fabrikam", false, NULL, 0);
    j = readyz_json(m, &st);
    ck_assert_int_eq(st, 503);
    ck_assert_str_eq(entry_reason(j, "tenants", 1), "not ok");
    json_decref(j);
    mf_metrics_status_set(m, MF_METRICS_TENANT, "fabrikam", true, NULL, 0);

    /* draining */
    mf_metrics_set_draining(m, true);
    j = readyz_json(m, &st);
    ck_assert_int_eq(st, 503);
    ck_assert_str_eq(json_string_value(json_object_get(j, "reason")),
                     "draining");
    json_decref(j);
    mf_metrics_set_draining(m, false);
    j = readyz_json(m, &st);
    ck_assert_int_eq(st, 200);
    json_decref(j);
    mf_metrics_destroy(m);
}
END_TEST

START_TEST(mrz_ok_entry_goes_stale)
{
    struct mf_metrics *m = new_fake();
    json_t *j;
    int st;

    mf_metrics_status_set(m, MF_METRICS_TENANT, "t", true, NULL, 60000);
    fake_now += 60000;
    j = readyz_json(m, &st);
    ck_assert_int_eq(st, 200);
    json_decref(j);
    fake_now += 61000;
    j = readyz_json(m, &st);
    ck_assert_int_eq(st, 503);
    ck_assert_str_eq(entry_reason(j, "tenants", 0),
                     "no successful update for 121 s");
    json_decref(j);
    /* a new successful poll */
    mf_metrics_status_set(m, MF_METRICS_TENANT, "t", true, NULL, 60000);
    j = readyz_json(m, &st);
    ck_assert_int_eq(st, 200);
    json_decref(j);
    mf_metrics_destroy(m);
}
END_TEST

START_TEST(mrz_add_lists_without_overwriting)
{
    struct mf_metrics *m = new_fake();
    json_t *j;
    int st;

    mf_metrics_status_set(m, MF_METRICS_TENANT, "contoso", true, NULL, 0);
    /* registered before its first flush: listed, ok */
    mf_metrics_status_add(m, MF_METRICS_OUTPUT, "kafka");
    j = readyz_json(m, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "outputs")), 1);
    json_decref(j);
    /* a failing entry stays failing when added again (reload) */
    mf_metrics_status_set(m, MF_METRICS_OUTPUT, "kafka", false, "down", 0);
    mf_metrics_status_add(m, MF_METRICS_OUTPUT, "kafka");
    j = readyz_json(m, &st);
    ck_assert_int_eq(st, 503);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "outputs")), 1);
    json_decref(j);
    mf_metrics_destroy(m);
}
END_TEST

START_TEST(mrz_null_registry)
{
    json_t *j;
    int st;

    j = readyz_json(NULL, &st);
    ck_assert_int_eq(st, 503);
    json_decref(j);
}
END_TEST

/* ---- mf_metrics_server_start --------------------------------------------- */

START_TEST(msrv_scrape_metrics_over_http)
{
    struct mf_metrics *m = mf_metrics_new("0.1.0");
    struct mf_metrics_server *s;
    struct http_resp r;
    char out[8192];

    s = start_ok(m, "127.0.0.1:0");
    mf_metrics_records_received(m, "contoso", "Audit.AzureActiveDirectory", 12);
    mf_metrics_retry(m, "contoso", "server \"5xx\"\n");
    r = http_do(AF_INET, mf_metrics_server_port(s), "GET", "/metrics");
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.raw, "text/plain; version=0.0.4"));
    assert_line(r.body, "m365fwd_records_received_total{tenant=\"contoso\","
                        "content_type=\"Audit.AzureActiveDirectory\"} 12");
    assert_line(r.body, "m365fwd_retries_total{tenant=\"contoso\","
                        "reason=\"server \\\"5xx\\\"\\n\"} 1");
    ck_assert_msg(promtext_check(r.body, strlen(r.body), out, sizeof(out)) == 0,
                  "%s\n%s", out, r.body);
    http_free(&r);
    /* a later update shows in the next scrape */
    mf_metrics_records_received(m, "contoso", "Audit.AzureActiveDirectory", 1);
    r = http_do(AF_INET, mf_metrics_server_port(s), "GET", "/metrics");
    assert_line(r.body, "m365fwd_records_received_total{tenant=\"contoso\","
                        "content_type=\"Audit.AzureActiveDirectory\"} 13");
    http_free(&r);
    mf_metrics_server_stop(s);
    mf_metrics_destroy(m);
}
END_TEST

START_TEST(msrv_health_endpoints_follow_state)
{
    struct mf_metrics *m = new_fake();
    struct mf_metrics_server *s = start_ok(m, "127.0.0.1:0");
    int port = mf_metrics_server_port(s);
    struct http_resp r;

    r = http_do(AF_INET, port, "GET", "/healthz");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "ok\n");
    http_free(&r);
    r = http_do(AF_INET, port, "GET", "/readyz");
    ck_assert_int_eq(r.status, 503);
    ck_assert_ptr_nonnull(strstr(r.raw, "application/json"));
    http_free(&r);

    mf_metrics_status_set(m, MF_METRICS_TENANT, "contoso", true, NULL, 0);
    mf_metrics_status_set(m, MF_METRICS_OUTPUT, "kafka", true, NULL, 0);
    r = http_do(AF_INET, port, "GET", "/readyz");
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"ready\":true"));
    http_free(&r);
    mf_metrics_status_set(m, MF_METRICS_OUTPUT, "kafka", false,
                          "broker unreachable", 0);
    r = http_do(AF_INET, port, "GET", "/readyz");
    ck_assert_int_eq(r.status, 503);
    ck_assert_ptr_nonnull(strstr(r.body, "broker unreachable"));
    http_free(&r);

    fake_now += MF_METRICS_HEARTBEAT_TIMEOUT_MS + 1000;
    r = http_do(AF_INET, port, "GET", "/healthz");
    ck_assert_int_eq(r.status, 503);
    ck_assert_ptr_nonnull(strstr(r.body, "no heartbeat"));
    http_free(&r);
    mf_metrics_heartbeat(m);
    r = http_do(AF_INET, port, "HEAD", "/healthz");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "");
    http_free(&r);
    mf_metrics_server_stop(s);
    mf_metrics_destroy(m);
}
END_TEST

/* Idle connections (more than the former per-address limit of 16 and
 * total of 32) never keep /healthz from answering. */
START_TEST(msrv_idle_connections_healthz_answers)
{
    struct mf_metrics *m = mf_metrics_new("1");
    struct mf_metrics_server *s = start_ok(m, "127.0.0.1:0");
    struct sockaddr_in a;
    struct http_resp r;
    int idle[48];

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)mf_metrics_server_port(s));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (size_t i = 0; i < sizeof(idle) / sizeof(idle[0]); i++) {
        idle[i] = socket(AF_INET, SOCK_STREAM, 0);
        ck_assert_int_ge(idle[i], 0);
        ck_assert_int_eq(connect(idle[i], (struct sockaddr *)&a, sizeof(a)), 0);
    }
    r = http_do(AF_INET, mf_metrics_server_port(s), "GET", "/healthz");
    ck_assert_int_eq(r.status, 200);
    http_free(&r);
    for (size_t i = 0; i < sizeof(idle) / sizeof(idle[0]); i++)
        close(idle[i]);
    mf_metrics_server_stop(s);
    mf_metrics_destroy(m);
}
END_TEST

START_TEST(msrv_unknown_path_and_method)
{
    struct mf_metrics *m = mf_metrics_new("1");
    struct mf_metrics_server *s = start_ok(m, "127.0.0.1:0");
    struct http_resp r;

    r = http_do(AF_INET, mf_metrics_server_port(s), "GET", "/");
    ck_assert_int_eq(r.status, 404);
    http_free(&r);
    r = http_do(AF_INET, mf_metrics_server_port(s), "GET", "/metrics/../x");
    ck_assert_int_eq(r.status, 404);
    http_free(&r);
    r = http_do(AF_INET, mf_metrics_server_port(s), "POST", "/metrics");
    ck_assert_int_eq(r.status, 405);
    ck_assert_ptr_nonnull(strstr(r.raw, "Allow: GET, HEAD"));
    http_free(&r);
    mf_metrics_server_stop(s);
    mf_metrics_destroy(m);
}
END_TEST

START_TEST(msrv_port_in_use_refused)
{
    struct mf_metrics *m = mf_metrics_new("1");
    struct mf_metrics_server *s = start_ok(m, "127.0.0.1:0");
    char listen[64], err[256] = "";

    snprintf(listen, sizeof(listen), "127.0.0.1:%d", mf_metrics_server_port(s));
    ck_assert_ptr_null(mf_metrics_server_start(m, listen, err, sizeof(err)));
    ck_assert_msg(strstr(err, "cannot listen on") && strstr(err, listen) &&
                  strstr(err, "in use"), "%s", err);
    /* the first listener still answers */
    {
        struct http_resp r = http_do(AF_INET, mf_metrics_server_port(s), "GET",
                                     "/healthz");

        ck_assert_int_eq(r.status, 200);
        http_free(&r);
    }
    mf_metrics_server_stop(s);
    /* stopped: the port is free again */
    s = start_ok(m, listen);
    mf_metrics_server_stop(s);
    mf_metrics_server_stop(NULL);
    mf_metrics_destroy(m);
}
END_TEST

START_TEST(msrv_bad_listen_refused)
{
    static const char *const bad[] = {
        "", "9465", "localhost", "::1:9465", "[::1]9465", "host:", "host:99999",
        "host:12a", "[::1]:",
    };
    struct mf_metrics *m = mf_metrics_new("1");
    char err[256];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        ck_assert_ptr_null(mf_metrics_server_start(m, bad[i], err,
                                                   sizeof(err)));
        ck_assert_msg(strstr(err, "is not host:port") != NULL, "%s: %s", bad[i],
                      err);
    }
    ck_assert_ptr_null(mf_metrics_server_start(m, NULL, err, sizeof(err)));
    ck_assert_ptr_null(mf_metrics_server_start(m, "no-such-host.invalid:1", err,
                                               sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "cannot resolve"));
    mf_metrics_destroy(m);
}
END_TEST

START_TEST(msrv_ipv6_loopback)
{
    struct mf_metrics *m = mf_metrics_new("1");
    struct mf_metrics_server *s;
    struct http_resp r;
    char err[256] = "";
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a;

    /* skip quietly where the host has no IPv6 loopback */
    memset(&a, 0, sizeof(a));
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (fd >= 0)
            close(fd);
        mf_metrics_destroy(m);
        return;
    }
    close(fd);
    s = mf_metrics_server_start(m, "[::1]:0", err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    r = http_do(AF_INET6, mf_metrics_server_port(s), "GET", "/healthz");
    ck_assert_int_eq(r.status, 200);
    http_free(&r);
    mf_metrics_server_stop(s);
    mf_metrics_destroy(m);
}
END_TEST

START_TEST(msrv_caller_signal_mask_kept)
{
    struct mf_metrics *m = mf_metrics_new("1");
    struct mf_metrics_server *s;
    sigset_t before, after;

    ck_assert_int_eq(pthread_sigmask(SIG_SETMASK, NULL, &before), 0);
    ck_assert(!sigismember(&before, SIGTERM));
    s = start_ok(m, "127.0.0.1:0");
    ck_assert_int_eq(pthread_sigmask(SIG_SETMASK, NULL, &after), 0);
    ck_assert(!sigismember(&after, SIGTERM));
    ck_assert(!sigismember(&after, SIGHUP));
    mf_metrics_server_stop(s);
    mf_metrics_destroy(m);
}
END_TEST

struct hammer {
    struct mf_metrics *m;
    int n;
};

static void *
hammer_run(void *p)
{
    struct hammer *h = p;
    int i;

    for (i = 0; i < h->n; i++) {
        mf_metrics_records_received(h->m, "t", "Audit.Exchange", 1);
        mf_metrics_queue_depth(h->m, "k", i);
    }
    return NULL;
}

START_TEST(msrv_scrape_while_updating)
{
    struct mf_metrics *m = mf_metrics_new("1");
    struct mf_metrics_server *s = start_ok(m, "127.0.0.1:0");
    struct hammer h = {m, 200000};
    const char *v[] = {"t", "Audit.Exchange"};
    pthread_t th;
    int i;

    ck_assert_int_eq(pthread_create(&th, NULL, hammer_run, &h), 0);
    for (i = 0; i < 20; i++) {
        struct http_resp r = http_do(AF_INET, mf_metrics_server_port(s), "GET",
                                     "/metrics");

        ck_assert_int_eq(r.status, 200);
        ck_assert_ptr_nonnull(strstr(r.body, "# TYPE "
                                     "m365fwd_records_received_total"));
        http_free(&r);
    }
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_double_eq(mf_metrics_get(m, MF_M_RECORDS_RECEIVED, v), 200000);
    mf_metrics_server_stop(s);
    mf_metrics_destroy(m);
}
END_TEST

/* Generous: the Python checker runs under a loaded CI machine. */
static TCase *
tcase(const char *name)
{
    TCase *tc = tcase_create(name);

    tcase_set_timeout(tc, 120);
    return tc;
}

static Suite *
metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc;

    tc = tcase("mf_metrics_add()");
    tcase_add_test(tc, madd_counter_accumulates_per_series);
    tcase_add_test(tc, madd_counter_ignores_negative_and_nan);
    tcase_add_test(tc, madd_gauge_moves_both_ways);
    tcase_add_test(tc, madd_unknown_id_and_null_registry_ignored);
    tcase_add_test(tc, madd_null_value_is_empty_label);
    suite_add_tcase(s, tc);

    tc = tcase("mf_metrics_set()");
    tcase_add_test(tc, mset_gauge_replaces);
    tcase_add_test(tc, mset_counter_refused);
    suite_add_tcase(s, tc);

    tc = tcase("mf_metrics_register()");
    tcase_add_test(tc, mreg_valid_family_is_usable);
    tcase_add_test(tc, mreg_bad_definitions_refused);
    suite_add_tcase(s, tc);

    tc = tcase("mf_metrics_render()");
    tcase_add_test(tc, mren_standard_families_and_values);
    tcase_add_test(tc, mren_label_value_escaping);
    tcase_add_test(tc, mren_help_escaping);
    tcase_add_test(tc, mren_value_formats);
    tcase_add_test(tc, mren_invalid_utf8_and_long_values_repaired);
    suite_add_tcase(s, tc);

    tc = tcase("promtext_check.py");
    tcase_add_test(tc, pcheck_self_test_and_rejects);
    suite_add_tcase(s, tc);

    tc = tcase("mf_metrics_set_series_limit()");
    tcase_add_test(tc, mlim_bound_counts_overflow);
    tcase_add_test(tc, mlim_default_bound_many_series);
    suite_add_tcase(s, tc);

    tc = tcase("mf_metrics_forget()");
    tcase_add_test(tc, mfor_drops_one_tenant);
    suite_add_tcase(s, tc);

    tc = tcase("mf_metrics_<family helpers>()");
    tcase_add_test(tc, mhelp_each_helper_hits_its_family);
    suite_add_tcase(s, tc);

    tc = tcase("mf_metrics_healthz()");
    tcase_add_test(tc, mhz_heartbeat_staleness);
    suite_add_tcase(s, tc);

    tc = tcase("mf_metrics_readyz()");
    tcase_add_test(tc, mrz_states);
    tcase_add_test(tc, mrz_ok_entry_goes_stale);
    tcase_add_test(tc, mrz_add_lists_without_overwriting);
    tcase_add_test(tc, mrz_null_registry);
    suite_add_tcase(s, tc);

    tc = tcase("mf_metrics_server_start()");
    tcase_add_test(tc, msrv_scrape_metrics_over_http);
    tcase_add_test(tc, msrv_health_endpoints_follow_state);
    tcase_add_test(tc, msrv_unknown_path_and_method);
    tcase_add_test(tc, msrv_idle_connections_healthz_answers);
    tcase_add_test(tc, msrv_port_in_use_refused);
    tcase_add_test(tc, msrv_bad_listen_refused);
    tcase_add_test(tc, msrv_ipv6_loopback);
    tcase_add_test(tc, msrv_scrape_while_updating);
    tcase_add_test(tc, msrv_caller_signal_mask_kept);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    mf_log_set_level(MF_LOG_WARN);
    return mf_test_run(metrics_suite());
}
