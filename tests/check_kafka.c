/* check_kafka.c - the Kafka output against librdkafka's in-process mock
 * cluster (rdkafka_mock.h, librdkafka 2.0.2).
 *
 * Every test starts its own mock cluster and checks what arrived with a
 * consumer that reads the topics back from the beginning (each test stays
 * far below the mock's ~5 MiB per partition retention) and compares the
 * count with the high watermarks. The mock removes duplicates only for
 * transactional producers, so each test states its duplicate bound:
 *   0  when the fault is an error returned before the append (injected
 *      produce errors, leader change);
 *   W  the records possibly in flight when the fault hit (broker down,
 *      RTT spike past socket.timeout.ms): the retried request may be
 *      appended twice. The observed count is printed as a TAP comment.
 * Fault schedules (broker back up, RTT back to normal) run on a timer
 * thread that waits for an absolute deadline; the test itself never
 * sleeps: it waits in flush() / poll() with deadlines.
 */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kafka.h"
#include "kafka.h"
#include "log.h"
#include "output.h"
#include "test_common.h"

#define APIKEY_PRODUCE 0            /* RD_KAFKAP_Produce (not installed) */

/* ---------------------------------------------------------------------- */
/* Helpers                                                                */
/* ---------------------------------------------------------------------- */

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Log capture. */
static char logbuf[1 << 16];
static size_t loglen;

static void
log_sink(enum mf_log_level lvl, const char *msg, void *ud)
{
    size_t n = strlen(msg);

    (void)ud;
    if (lvl > MF_LOG_WARN)
        return;
    if (loglen + n + 2 < sizeof(logbuf)) {
        memcpy(logbuf + loglen, msg, n);
        loglen += n;
        logbuf[loglen++] = '\n';
        logbuf[loglen] = '\0';
    }
}

static void
log_reset(void)
{
    loglen = 0;
    logbuf[0] = '\0';
    mf_log_set_sink(log_sink, NULL);
}

/* The mock cluster. */
struct cluster {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    const char *boot;
};

static void
cluster_new(struct cluster *c, int brokers)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256];

    rd_kafka_conf_set(conf, "log_level", "2", err, sizeof(err));
    c->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    ck_assert_msg(c->rk != NULL, "%s", err);
    c->mc = rd_kafka_mock_cluster_new(c->rk, brokers);
    ck_assert_ptr_nonnull(c->mc);
    c->boot = rd_kafka_mock_cluster_bootstraps(c->mc);
}

static void
cluster_free(struct cluster *c)
{
    rd_kafka_mock_cluster_destroy(c->mc);
    rd_kafka_destroy(c->rk);
}

/* The kafka conf of an output conf made by conf_init(). */
#define KC(oc) ((struct mf_kafka_conf *)(uintptr_t)(oc).plugin)

/* Output configuration with test defaults (its kafka conf from a pool
 * large enough for the outputs one test opens). */
static void
conf_init(struct mf_output_conf *oc, const struct cluster *c, const char *topic)
{
    static struct mf_kafka_conf pool[16];
    static unsigned next;
    struct mf_kafka_conf *kc = &pool[next++ % 16];

    memset(oc, 0, sizeof(*oc));
    memset(kc, 0, sizeof(*kc));
    oc->plugin = kc;
    oc->name = "kt";
    oc->type = MF_OUTPUT_KAFKA;
    oc->schema = MF_CONF_SCHEMA_OCSF;
    oc->enabled = true;
    kc->brokers = c ? c->boot : "127.0.0.1:9";
    kc->topic = topic;
    kc->key = "{id}";
    kc->compression = MF_KAFKA_COMPRESS_LZ4;
    oc->flush_timeout_ms = 10000;
    oc->max_in_flight = 10000;
}

static struct mf_output *
open_ok(const struct mf_output_conf *oc)
{
    struct mf_err err;
    struct mf_output *o = mf_output_kafka_ops.open(oc, &err);

    ck_assert_msg(o != NULL, "open: %s", err.msg);
    /* what mf_output_open() does */
    o->ops = &mf_output_kafka_ops;
    o->conf = oc;
    return o;
}

/* open() with its error as text (for the message checks). */
static struct mf_output *
kopen(const struct mf_output_conf *oc, char *err, size_t n)
{
    struct mf_err e;
    struct mf_output *o = mf_output_kafka_ops.open(oc, &e);

    snprintf(err, n, "%s", o ? "" : e.msg);
    return o;
}

/* A record as the collector hands it over. */
static const char *const ident_attack[] = {"T1556", NULL};
static const struct mf_event_tag tag_ident = {
    .id = "identity.mfa_disabled", .title = "MFA disabled",
    .area = MF_AREA_IDENTITY_ACCESS, .severity = 4, .attack = ident_attack,
    .n_attack = 1};
static const struct mf_event_tag tag_share = {
    .id = "sharing.anonymous_link", .title = "Anonymous link",
    .area = MF_AREA_COLLABORATION_SHARING, .severity = 3};

struct rec {
    char data[2048];
    char id[32];
    struct mf_event ev;          /* its OCSF form is data */
};

static void
rec_make(struct rec *r, int i, const char *tenant, int ntags, size_t pad)
{
    struct mf_event *ev = &r->ev;
    int n;

    memset(ev, 0, sizeof(*ev));
    snprintf(r->id, sizeof(r->id), "id-%06d", i);
    ev->id = r->id;
    ev->class_uid = 3002;
    ev->severity = 1;
    if (ntags >= 1) {
        ev->tags[0] = tag_ident;
        ev->top = &ev->tags[0];
        ev->severity = 4;
        ev->areas |= 1u << tag_ident.area;
        ev->n_tags = 1;
    }
    if (ntags >= 2) {
        ev->tags[1] = tag_share;
        ev->areas |= 1u << tag_share.area;
        ev->n_tags = 2;
    }
    if (pad > sizeof(r->data) - 100)
        pad = sizeof(r->data) - 100;
    n = snprintf(r->data, sizeof(r->data),
                 "{\"metadata\":{\"uid\":\"id-%06d\"},\"seq\":%d,\"pad\":\"%*s\"}",
                 i, i, (int)pad, "");
    ev->form[MF_SCHEMA_OCSF * 2].made = true;
    ev->form[MF_SCHEMA_OCSF * 2].text = (struct mf_buf){.data = r->data, .len = (size_t)n};
    ev->tenant = tenant;
    ev->tenant_id = "00000000-0000-0000-0000-000000000001";
    ev->content_type = "Audit.AzureActiveDirectory";
}

static void
send_range(struct mf_output *o, int from, int to, const char *tenant)
{
    struct rec r;

    for (int i = from; i < to; i++) {
        rec_make(&r, i, tenant, i % 3, 100);
        ck_assert_msg(mf_output_send_wait(o, &r.ev, NULL, 10000) == MF_OK, "%s", logbuf);
    }
}

/* What a consumer reads back. */
struct seen {
    int n;                      /* ids id-000000 .. n-1 */
    unsigned char *cnt;
    size_t total, distinct, dups, foreign;
    size_t bad_key, bad_hdr;
    int64_t watermark;          /* sum of high - low watermarks */
};

static bool
hdr_is(rd_kafka_headers_t *h, const char *name, const char *want)
{
    const void *v;
    size_t len;

    if (rd_kafka_header_get_last(h, name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    if (!want)
        return true;
    return len == strlen(want) && (len == 0 || memcmp(v, want, len) == 0);
}

static void
seen_msg(struct seen *s, const rd_kafka_message_t *m, const char *tenant)
{
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t len;
    char id[32];
    int idx;

    s->total++;
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(h, MF_KAFKA_HDR_ID, &v, &len) !=
            RD_KAFKA_RESP_ERR_NO_ERROR || len >= sizeof(id)) {
        s->bad_hdr++;
        return;
    }
    memcpy(id, v, len);
    id[len] = '\0';
    if (sscanf(id, "id-%d", &idx) != 1 || idx < 0 || idx >= s->n) {
        s->foreign++;
        return;
    }
    if (m->key_len != len || memcmp(m->key, id, len) != 0)
        s->bad_key++;
    /* headers: values as rec_make() / send_range() built them */
    if (!hdr_is(h, MF_KAFKA_HDR_TENANT, tenant) ||
        !hdr_is(h, MF_KAFKA_HDR_CONTENT_TYPE, "Audit.AzureActiveDirectory") ||
        !hdr_is(h, MF_KAFKA_HDR_SCHEMA, "ocsf") ||
        !hdr_is(h, MF_KAFKA_HDR_SEVERITY, idx % 3 ? "4" : "1") ||
        !hdr_is(h, MF_KAFKA_HDR_TAGS,
                idx % 3 == 0   ? ""
                : idx % 3 == 1 ? "identity.mfa_disabled"
                               : "identity.mfa_disabled,sharing.anonymous_link"))
        s->bad_hdr++;
    if (s->cnt[idx]++)
        s->dups++;
    else
        s->distinct++;
}

/* Read every partition of topic from the beginning up to the high
 * watermarks. tenant: expected m365fwd-tenant header (NULL: any). */
static void
consume(const struct cluster *c, const char *topic, int nparts, int n,
        const char *tenant, struct seen *s)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *parts;
    rd_kafka_t *rk;
    char err[256];
    int64_t deadline;

    memset(s, 0, sizeof(*s));
    s->n = n;
    s->cnt = calloc((size_t)n, 1);
    ck_assert_ptr_nonnull(s->cnt);
    rd_kafka_conf_set(conf, "bootstrap.servers", c->boot, err, sizeof(err));
    rd_kafka_conf_set(conf, "group.id", "mf-check", err, sizeof(err));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err));
    rd_kafka_conf_set(conf, "log_level", "2", err, sizeof(err));
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    ck_assert_msg(rk != NULL, "%s", err);
    rd_kafka_poll_set_consumer(rk);
    parts = rd_kafka_topic_partition_list_new(nparts);
    for (int p = 0; p < nparts; p++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000);

        ck_assert_msg(e == RD_KAFKA_RESP_ERR_NO_ERROR, "watermarks %s/%d: %s",
                      topic, p, rd_kafka_err2str(e));
        ck_assert_int_eq(lo, 0);    /* nothing lost to the mock's retention */
        s->watermark += hi - lo;
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    }
    ck_assert_int_eq(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);
    deadline = now_ms() + 30000;
    while ((int64_t)s->total < s->watermark && now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);

        if (!m)
            continue;
        if (!m->err)
            seen_msg(s, m, tenant);
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    ck_assert_msg((int64_t)s->total == s->watermark,
                  "%s: consumed %zu of %lld", topic, s->total,
                  (long long)s->watermark);
}

static void
seen_free(struct seen *s)
{
    free(s->cnt);
    s->cnt = NULL;
}

/* Every id 0..n-1 exactly once or more, at most max_dups duplicates,
 * keys and headers right. */
static void
assert_all_arrived(const struct seen *s, int n, size_t max_dups, const char *what)
{
    printf("# %s: %d records, %zu appended, %zu duplicates (bound %zu)\n", what,
           n, s->total, s->dups, max_dups);
    fflush(stdout);
    ck_assert_msg(s->distinct == (size_t)n, "%s: %zu of %d ids arrived", what,
                  s->distinct, n);
    ck_assert_msg(s->dups <= max_dups, "%s: %zu duplicates > bound %zu", what,
                  s->dups, max_dups);
    ck_assert_uint_eq(s->foreign, 0);
    ck_assert_uint_eq(s->bad_key, 0);
    ck_assert_uint_eq(s->bad_hdr, 0);
}

/* A fault schedule: fn(ud) runs once delay_ms after timer_start, unless
 * timer_stop comes first. */
struct timer {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    struct timespec at;
    void (*fn)(void *);
    void *ud;
};

static void *
timer_main(void *arg)
{
    struct timer *t = arg;
    int rc = 0;

    pthread_mutex_lock(&t->mu);
    while (!t->stop && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&t->cv, &t->mu, &t->at);
    pthread_mutex_unlock(&t->mu);
    if (rc == ETIMEDOUT)
        t->fn(t->ud);
    return NULL;
}

static void
timer_start(struct timer *t, int delay_ms, void (*fn)(void *), void *ud)
{
    pthread_condattr_t ca;

    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    clock_gettime(CLOCK_MONOTONIC, &t->at);
    t->at.tv_sec += delay_ms / 1000;
    t->at.tv_nsec += (long)(delay_ms % 1000) * 1000000L;
    if (t->at.tv_nsec >= 1000000000L) {
        t->at.tv_sec++;
        t->at.tv_nsec -= 1000000000L;
    }
    t->fn = fn;
    t->ud = ud;
    ck_assert_int_eq(pthread_create(&t->th, NULL, timer_main, t), 0);
}

static void
timer_stop(struct timer *t)
{
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->th, NULL);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
}

static void
broker1_up(void *ud)
{
    rd_kafka_mock_broker_set_up(((struct cluster *)ud)->mc, 1);
}

static void
broker1_rtt_normal(void *ud)
{
    rd_kafka_mock_broker_set_rtt(((struct cluster *)ud)->mc, 1, 0);
}

static void
stats(struct mf_output *o, struct mf_output_stats *st)
{
    mf_output_kafka_ops.stats(o, st);
}

/* ---------------------------------------------------------------------- */
/* mf_kafka_prop_sensitive / mf_kafka_err_permanent                        */
/* ---------------------------------------------------------------------- */

START_TEST(kps_names)
{
    static const struct {
        const char *prop;
        bool sensitive;
    } cases[] = {
        {"sasl.password", true},
        {"ssl.key.password", true},
        {"ssl.key.pem", true},
        {"ssl.keystore.location", true},
        {"sasl.oauthbearer.client.secret", true},
        {"sasl.oauthbearer.config", true},
        {"sasl.username", true},
        {"security.protocol", false},
        {"linger.ms", false},
        {"acks", false},
        {"ssl.ca.location", false},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(mf_kafka_prop_sensitive(cases[i].prop) == cases[i].sensitive,
                      "%s", cases[i].prop);
    ck_assert(!mf_kafka_prop_sensitive(NULL));
}
END_TEST

START_TEST(kep_classes)
{
    ck_assert(mf_kafka_err_permanent(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE));
    ck_assert(mf_kafka_err_permanent(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED));
    ck_assert(mf_kafka_err_permanent(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART));
    /* retried or resent from the cursor, not permanent */
    ck_assert(!mf_kafka_err_permanent(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT));
    ck_assert(!mf_kafka_err_permanent(RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT));
    ck_assert(!mf_kafka_err_permanent(RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION));
    ck_assert(!mf_kafka_err_permanent(RD_KAFKA_RESP_ERR__TRANSPORT));
    ck_assert(!mf_kafka_err_permanent(RD_KAFKA_RESP_ERR__PURGE_QUEUE));
    ck_assert(!mf_kafka_err_permanent(RD_KAFKA_RESP_ERR_NO_ERROR));
}
END_TEST

/* ---------------------------------------------------------------------- */
/* open                                                                   */
/* ---------------------------------------------------------------------- */

static void
expect_conf(struct mf_output *o, const char *prop, const char *want)
{
    char v[256];

    ck_assert_msg(mf_kafka_conf_get(o, prop, v, sizeof(v)) == 0, "%s", prop);
    ck_assert_msg(strcmp(v, want) == 0, "%s = %s, want %s", prop, v, want);
}

START_TEST(ko_defaults)
{
    struct mf_output_conf oc;
    struct mf_output *o;

    conf_init(&oc, NULL, "t");
    oc.max_in_flight = 1234;
    o = open_ok(&oc);
    expect_conf(o, "enable.idempotence", "true");
    expect_conf(o, "acks", "-1");                   /* all */
    expect_conf(o, "compression.codec", "lz4");
    expect_conf(o, "queue.buffering.max.messages", "1234");
    expect_conf(o, "bootstrap.servers", "127.0.0.1:9");
    ck_assert_int_eq(mf_kafka_conf_get(o, "no.such.thing", (char[8]){0}, 8), -1);
    mf_output_kafka_ops.close(o);
}
END_TEST

START_TEST(ko_compression_and_overrides)
{
    static const char *const names[] = {"none", "gzip", "snappy", "lz4", "zstd"};
    static const struct mf_kv kv[] = {{"linger.ms", "50", 3},
                                      {"queue.buffering.max.messages", "77", 4}};
    struct mf_output_conf oc;

    for (int c = MF_KAFKA_COMPRESS_NONE; c <= MF_KAFKA_COMPRESS_ZSTD; c++) {
        struct mf_output *o;

        conf_init(&oc, NULL, "t");
        KC(oc)->compression = c;
        KC(oc)->rdkafka.v = kv;
        KC(oc)->rdkafka.n = 2;
        o = open_ok(&oc);
        expect_conf(o, "compression.codec", names[c]);
        expect_conf(o, "linger.ms", "50");
        /* rdkafka: wins over max_in_flight */
        expect_conf(o, "queue.buffering.max.messages", "77");
        mf_output_kafka_ops.close(o);
    }
}
END_TEST

START_TEST(ko_refused_property)
{
    static const struct mf_kv unknown[] = {{"no.such.property", "1", 7}};
    static const struct mf_kv badval[] = {{"acks", "banana", 7}};
    struct mf_output_conf oc;
    char err[512];

    conf_init(&oc, NULL, "t");
    KC(oc)->rdkafka.v = unknown;
    KC(oc)->rdkafka.n = 1;
    ck_assert_ptr_null(kopen(&oc, err, sizeof(err)));
    ck_assert_msg(strstr(err, "'kt'") && strstr(err, "no.such.property"), "%s", err);
    KC(oc)->rdkafka.v = badval;
    ck_assert_ptr_null(kopen(&oc, err, sizeof(err)));
    ck_assert_msg(strstr(err, "'kt'") && strstr(err, "acks") &&
                  strstr(err, "banana"), "%s", err);
}
END_TEST

START_TEST(ko_refused_secret_redacted)
{
    /* a secret whose value librdkafka echoes in its error text */
    static const struct mf_kv env[] = {{"acks", "MF_TEST_KAFKA_SECRET", 9}};
    static const struct mf_kv inline_sensitive[] = {
        {"ssl.key.password.bogus", "hunter2-inline", 9}};
    struct mf_output_conf oc;
    char err[512];

    conf_init(&oc, NULL, "t");
    setenv("MF_TEST_KAFKA_SECRET", "s3cr3t-value", 1);
    KC(oc)->rdkafka_secret_env.v = env;
    KC(oc)->rdkafka_secret_env.n = 1;
    ck_assert_ptr_null(kopen(&oc, err, sizeof(err)));
    ck_assert_msg(strstr(err, "'kt'") && strstr(err, "acks") &&
                  strstr(err, "<redacted>"), "%s", err);
    ck_assert_msg(!strstr(err, "s3cr3t"), "secret echoed: %s", err);

    conf_init(&oc, NULL, "t");
    KC(oc)->rdkafka.v = inline_sensitive;
    KC(oc)->rdkafka.n = 1;
    ck_assert_ptr_null(kopen(&oc, err, sizeof(err)));
    ck_assert_msg(strstr(err, "ssl.key.password.bogus"), "%s", err);
    ck_assert_msg(!strstr(err, "hunter2"), "secret echoed: %s", err);

    /* missing environment variable: named, start-up error */
    unsetenv("MF_TEST_KAFKA_SECRET");
    conf_init(&oc, NULL, "t");
    KC(oc)->rdkafka_secret_env.v = env;
    KC(oc)->rdkafka_secret_env.n = 1;
    ck_assert_ptr_null(kopen(&oc, err, sizeof(err)));
    ck_assert_msg(strstr(err, "MF_TEST_KAFKA_SECRET") && strstr(err, "acks"),
                  "%s", err);
}
END_TEST

START_TEST(ko_secret_file)
{
    char path[] = "/tmp/mf-kafka-secretXXXXXX";
    struct mf_kv files[] = {{"sasl.password", path, 5}};
    struct mf_output_conf oc;
    struct mf_output *o;
    char v[64];
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "pw-from-file\n", 13), 13);
    close(fd);
    chmod(path, 0600);
    conf_init(&oc, NULL, "t");
    KC(oc)->rdkafka_secret_files.v = files;
    KC(oc)->rdkafka_secret_files.n = 1;
    o = open_ok(&oc);
    /* loaded and trimmed (librdkafka returns the value it holds) */
    ck_assert_int_eq(mf_kafka_conf_get(o, "sasl.password", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "pw-from-file");
    mf_output_kafka_ops.close(o);
    /* a file readable by others is refused at open */
    chmod(path, 0644);
    {
        char err[512];

        ck_assert_ptr_null(kopen(&oc, err, sizeof(err)));
        ck_assert_msg(strstr(err, "sasl.password"), "%s", err);
        ck_assert_msg(!strstr(err, "pw-from-file"), "%s", err);
    }
    unlink(path);
}
END_TEST

START_TEST(ko_inconsistent_config)
{
    /* refused by rd_kafka_new(), not by rd_kafka_conf_set() */
    static const struct mf_kv kv[] = {{"acks", "1", 3}};
    struct mf_output_conf oc;
    char err[512];

    conf_init(&oc, NULL, "t");
    KC(oc)->rdkafka.v = kv;
    KC(oc)->rdkafka.n = 1;
    ck_assert_ptr_null(kopen(&oc, err, sizeof(err)));
    ck_assert_msg(strstr(err, "'kt'") && strstr(err, "acks"), "%s", err);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* send                                                                   */
/* ---------------------------------------------------------------------- */

START_TEST(ks_every_id)
{
    struct cluster c;
    struct mf_output_conf oc;
    struct mf_output *o;
    struct mf_output_stats st;
    struct seen s;
    const int n = 3000;

    cluster_new(&c, 1);
    rd_kafka_mock_topic_create(c.mc, "m365.all", 3, 1);
    conf_init(&oc, &c, "m365.all");
    o = open_ok(&oc);
    send_range(o, 0, n, "contoso");
    ck_assert_int_eq(mf_output_flush(o, 20000), 0);
    stats(o, &st);
    ck_assert_uint_eq(st.sent, (uint64_t)n);
    ck_assert_uint_eq(st.acked, (uint64_t)n);
    ck_assert_uint_eq(st.queued, 0);
    ck_assert_uint_eq(st.failed + st.dropped, 0);
    /* an empty epoch acknowledges at once */
    ck_assert_int_eq(mf_output_flush(o, 0), 0);
    mf_output_close(o);
    consume(&c, "m365.all", 3, n, "contoso", &s);
    assert_all_arrived(&s, n, 0, "baseline");
    seen_free(&s);
    cluster_free(&c);
}
END_TEST

START_TEST(ks_topic_template)
{
    struct cluster c;
    struct mf_output_conf oc;
    struct mf_output *o;
    struct rec r;
    struct seen s;
    int64_t want_ident = 0, want_none = 0;

    cluster_new(&c, 1);
    rd_kafka_mock_topic_create(c.mc, "m365.contoso.identity_access.3002", 1, 1);
    rd_kafka_mock_topic_create(c.mc, "m365.fab_rikam.none.3002", 1, 1);
    conf_init(&oc, &c, "m365.{tenant}.{area}.{class_uid}");
    KC(oc)->key = "{tenant}/{id}";
    o = open_ok(&oc);
    for (int i = 0; i < 200; i++) {
        /* untagged records of "fab rikam" (space: not a topic character) */
        bool contoso = i % 2 == 0;

        rec_make(&r, i, contoso ? "contoso" : "fab rikam", contoso ? 1 : 0, 50);
        ck_assert_int_eq(mf_output_send(o, &r.ev, NULL), MF_OK);
        if (contoso)
            want_ident++;
        else
            want_none++;
    }
    ck_assert_int_eq(mf_output_flush(o, 20000), 0);
    mf_output_close(o);
    /* the key template is not {id}: read the key back as is */
    {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(2);
        rd_kafka_t *rk;
        char err[256];
        int got = 0, keys_ok = 0;
        int64_t deadline = now_ms() + 20000;

        rd_kafka_conf_set(conf, "bootstrap.servers", c.boot, err, sizeof(err));
        rd_kafka_conf_set(conf, "group.id", "mf-check", err, sizeof(err));
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
        ck_assert_ptr_nonnull(rk);
        rd_kafka_poll_set_consumer(rk);
        rd_kafka_topic_partition_list_add(parts, "m365.contoso.identity_access.3002", 0)
            ->offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_topic_partition_list_add(parts, "m365.fab_rikam.none.3002", 0)
            ->offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        while (got < 200 && now_ms() < deadline) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
            char key[64];
            int idx;

            if (!m)
                continue;
            if (!m->err) {
                got++;
                snprintf(key, sizeof(key), "%.*s", (int)m->key_len,
                         (const char *)m->key);
                /* {tenant} in a key keeps the value as it is */
                if (sscanf(strchr(key, '/') ? strchr(key, '/') + 1 : "", "id-%d",
                           &idx) == 1 &&
                    strncmp(key, idx % 2 ? "fab rikam/" : "contoso/",
                            idx % 2 ? 10 : 8) == 0 &&
                    strstr(rd_kafka_topic_name(m->rkt), idx % 2 ? "fab_rikam" : "contoso"))
                    keys_ok++;
            }
            rd_kafka_message_destroy(m);
        }
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        ck_assert_int_eq(got, 200);
        ck_assert_int_eq(keys_ok, 200);
    }
    consume(&c, "m365.contoso.identity_access.3002", 1, 200, NULL, &s);
    ck_assert_int_eq(s.watermark, want_ident);
    seen_free(&s);
    consume(&c, "m365.fab_rikam.none.3002", 1, 200, NULL, &s);
    ck_assert_int_eq(s.watermark, want_none);
    seen_free(&s);
    cluster_free(&c);
}
END_TEST

START_TEST(ks_too_large_refused)
{
    static const struct mf_kv kv[] = {{"message.max.bytes", "2000", 3}};
    struct cluster c;
    struct mf_output_conf oc;
    struct mf_output *o;
    struct mf_output_stats st;
    struct rec r;
    struct seen s;

    log_reset();
    cluster_new(&c, 1);
    rd_kafka_mock_topic_create(c.mc, "t", 1, 1);
    conf_init(&oc, &c, "t");
    KC(oc)->rdkafka.v = kv;
    KC(oc)->rdkafka.n = 1;
    o = open_ok(&oc);
    send_range(o, 0, 5, "contoso");
    rec_make(&r, 5, "contoso", 1, 1990);        /* > message.max.bytes */
    ck_assert_int_eq(mf_output_send(o, &r.ev, NULL), MF_DROP);
    send_range(o, 6, 10, "contoso");
    /* the checkpoint must hold */
    ck_assert_int_eq(mf_output_flush(o, 20000), -1);
    stats(o, &st);
    ck_assert_uint_eq(st.dropped, 1);
    ck_assert_uint_eq(st.sent, 9);
    ck_assert_uint_eq(st.acked, 9);
    ck_assert_msg(strstr(logbuf, "id-000005") && strstr(logbuf, "output=kt"),
                  "log: %s", logbuf);
    /* the next epoch is clean again */
    send_range(o, 10, 20, "contoso");
    ck_assert_int_eq(mf_output_flush(o, 20000), 0);
    mf_output_close(o);
    consume(&c, "t", 1, 20, "contoso", &s);
    ck_assert_uint_eq(s.distinct, 19);
    ck_assert_uint_eq(s.cnt[5], 0);
    seen_free(&s);
    cluster_free(&c);
    mf_log_set_sink(NULL, NULL);
}
END_TEST

START_TEST(ks_queue_full_backpressure)
{
    static const struct mf_kv kv[] = {{"linger.ms", "300", 3}};
    struct cluster c;
    struct mf_output_conf oc;
    struct mf_output *o;
    struct mf_output_stats st;
    struct rec r;
    struct seen s;
    int i;

    cluster_new(&c, 1);
    rd_kafka_mock_topic_create(c.mc, "t", 1, 1);
    conf_init(&oc, &c, "t");
    oc.max_in_flight = 5;              /* queue.buffering.max.messages */
    KC(oc)->rdkafka.v = kv;
    KC(oc)->rdkafka.n = 1;
    o = open_ok(&oc);
    for (i = 0; i < 5; i++) {
        rec_make(&r, i, "contoso", 1, 10);
        ck_assert_int_eq(mf_output_send(o, &r.ev, NULL), MF_OK);
    }
    /* the batch lingers 300 ms: the sixth record finds the queue full */
    rec_make(&r, 5, "contoso", 1, 10);
    ck_assert_int_eq(mf_output_send(o, &r.ev, NULL), MF_RETRY);
    stats(o, &st);
    ck_assert_uint_ge(st.retries, 1);
    ck_assert_uint_eq(st.queued, 5);
    /* the caller's wait loop serves delivery reports until there is room */
    ck_assert_int_eq(mf_output_send_wait(o, &r.ev, NULL, 10000), MF_OK);
    for (i = 6; i < 40; i++) {
        rec_make(&r, i, "contoso", 1, 10);
        ck_assert_int_eq(mf_output_send_wait(o, &r.ev, NULL, 10000), MF_OK);
    }
    ck_assert_int_eq(mf_output_flush(o, 10000), 0);
    stats(o, &st);
    ck_assert_uint_eq(st.acked, 40);
    mf_output_close(o);
    consume(&c, "t", 1, 40, "contoso", &s);
    ck_assert_uint_eq(s.distinct, 40);
    ck_assert_uint_eq(s.dups, 0);
    seen_free(&s);
    cluster_free(&c);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* flush under faults                                                     */
/* ---------------------------------------------------------------------- */

/* ~12 s: broker down mid-stream for 12 s, flush() waits for it. */
START_TEST(kf_broker_down_mid_stream)
{
    static const struct mf_kv kv[] = {{"reconnect.backoff.max.ms", "500", 3}};
    struct cluster c;
    struct mf_output_conf oc;
    struct mf_output *o;
    struct mf_output_stats st;
    struct timer t;
    struct seen s;
    int64_t t_down, waited;
    const int n = 2000;

    cluster_new(&c, 1);
    rd_kafka_mock_topic_create(c.mc, "t", 1, 1);
    conf_init(&oc, &c, "t");
    KC(oc)->rdkafka.v = kv;
    KC(oc)->rdkafka.n = 1;
    o = open_ok(&oc);
    send_range(o, 0, n / 2, "contoso");
    /* no flush: some batches are in flight when the broker goes away */
    ck_assert_int_eq(rd_kafka_mock_broker_set_down(c.mc, 1), 0);
    t_down = now_ms();
    send_range(o, n / 2, n, "contoso");
    timer_start(&t, 12000, broker1_up, &c);
    ck_assert_int_eq(mf_output_flush(o, 60000), 0);
    waited = now_ms() - t_down;
    timer_stop(&t);
    printf("# broker down: flush returned %lld ms after the outage began\n",
           (long long)waited);
    fflush(stdout);
    /* the second half could not be acknowledged before the broker came back */
    ck_assert_int_ge(waited, 11500);
    stats(o, &st);
    ck_assert_uint_eq(st.acked, (uint64_t)n);
    ck_assert_uint_eq(st.failed + st.dropped, 0);
    mf_output_close(o);
    consume(&c, "t", 1, n, "contoso", &s);
    /* W = the first half, possibly in flight at the disconnect */
    assert_all_arrived(&s, n, (size_t)n / 2, "broker down 12 s");
    seen_free(&s);
    cluster_free(&c);
}
END_TEST

START_TEST(kf_timeout_then_next_epoch)
{
    static const struct mf_kv kv[] = {{"reconnect.backoff.max.ms", "200", 3}};
    struct cluster c;
    struct mf_output_conf oc;
    struct mf_output *o;
    struct mf_output_stats st;
    struct seen s;
    int64_t t0, deadline;

    cluster_new(&c, 1);
    rd_kafka_mock_topic_create(c.mc, "t", 1, 1);
    conf_init(&oc, &c, "t");
    KC(oc)->rdkafka.v = kv;
    KC(oc)->rdkafka.n = 1;
    o = open_ok(&oc);
    rd_kafka_mock_broker_set_down(c.mc, 1);
    send_range(o, 0, 50, "contoso");
    t0 = now_ms();
    ck_assert_int_eq(mf_output_flush(o, 700), -1);     /* nothing acked */
    ck_assert_int_ge(now_ms() - t0, 650);
    stats(o, &st);
    ck_assert_uint_eq(st.acked, 0);
    ck_assert_uint_eq(st.queued, 50);
    /* the broker returns; the caller sends the epoch again. The timed-out
     * flush purged what never left the queue, so the first copies do not
     * arrive late: each record once */
    rd_kafka_mock_broker_set_up(c.mc, 1);
    send_range(o, 0, 50, "contoso");
    ck_assert_int_eq(mf_output_flush(o, 20000), 0);
    deadline = now_ms() + 20000;
    do {
        mf_output_poll(o, 100);
        stats(o, &st);
    } while (st.queued > 0 && now_ms() < deadline);
    ck_assert_uint_eq(st.acked, 50);
    ck_assert_uint_eq(st.failed, 50);
    ck_assert_uint_eq(st.queued, 0);
    mf_output_close(o);
    consume(&c, "t", 1, 50, "contoso", &s);
    assert_all_arrived(&s, 50, 0, "flush timeout (queue purged) + resend");
    seen_free(&s);
    cluster_free(&c);
}
END_TEST

START_TEST(kf_leader_change)
{
    struct cluster c;
    struct mf_output_conf oc;
    struct mf_output *o;
    struct seen s;
    const int n = 3000;

    cluster_new(&c, 3);
    rd_kafka_mock_topic_create(c.mc, "t", 1, 3);
    rd_kafka_mock_partition_set_leader(c.mc, "t", 0, 1);
    conf_init(&oc, &c, "t");
    o = open_ok(&oc);
    send_range(o, 0, n / 3, "contoso");
    rd_kafka_mock_partition_set_leader(c.mc, "t", 0, 2);
    send_range(o, n / 3, 2 * n / 3, "contoso");
    rd_kafka_mock_partition_set_leader(c.mc, "t", 0, 3);
    send_range(o, 2 * n / 3, n, "contoso");
    ck_assert_int_eq(mf_output_flush(o, 30000), 0);
    mf_output_close(o);
    consume(&c, "t", 1, n, "contoso", &s);
    /* NOT_LEADER is answered before the append: bound 0 */
    assert_all_arrived(&s, n, 0, "leader change");
    seen_free(&s);
    cluster_free(&c);
}
END_TEST

START_TEST(kf_injected_retriable)
{
    struct cluster c;
    struct mf_output_conf oc;
    struct mf_output *o;
    struct mf_output_stats st;
    struct seen s;
    const int n = 500;

    cluster_new(&c, 1);
    rd_kafka_mock_topic_create(c.mc, "t", 1, 1);
    rd_kafka_mock_push_request_errors(
        c.mc, APIKEY_PRODUCE, 6, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, RD_KAFKA_RESP_ERR__TRANSPORT);
    conf_init(&oc, &c, "t");
    o = open_ok(&oc);
    send_range(o, 0, n, "contoso");
    ck_assert_int_eq(mf_output_flush(o, 30000), 0);
    stats(o, &st);
    ck_assert_uint_eq(st.acked, (uint64_t)n);
    mf_output_close(o);
    consume(&c, "t", 1, n, "contoso", &s);
    /* errors returned before the append: bound 0 */
    assert_all_arrived(&s, n, 0, "injected retriable errors");
    seen_free(&s);
    cluster_free(&c);
}
END_TEST

START_TEST(kf_injected_permanent)
{
    static const rd_kafka_resp_err_t errs[] = {
        RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
        RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
    };
    static const struct mf_kv kv[] = {
        {"topic.metadata.refresh.interval.ms", "500", 3}};

    for (size_t e = 0; e < sizeof(errs) / sizeof(errs[0]); e++) {
        struct cluster c;
        struct mf_output_conf oc;
        struct mf_output *o;
        struct mf_output_stats st;
        struct rec r;
        struct seen s;

        log_reset();
        cluster_new(&c, 1);
        rd_kafka_mock_topic_create(c.mc, "t", 1, 1);
        conf_init(&oc, &c, "t");
        KC(oc)->rdkafka.v = kv;
        KC(oc)->rdkafka.n = 1;
        o = open_ok(&oc);
        /* one record alone in the failing request */
        rd_kafka_mock_push_request_errors(c.mc, APIKEY_PRODUCE, 1, errs[e]);
        rec_make(&r, 0, "contoso", 1, 10);
        ck_assert_int_eq(mf_output_send(o, &r.ev, NULL), MF_OK);
        ck_assert_int_eq(mf_output_flush(o, 20000), -1);
        stats(o, &st);
        ck_assert_uint_eq(st.dropped, 1);
        ck_assert_uint_eq(st.acked, 0);
        ck_assert_msg(strstr(logbuf, "id=id-000000") &&
                      strstr(logbuf, rd_kafka_err2name(errs[e])),
                      "log: %s", logbuf);
        if (errs[e] == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
            /* librdkafka remembers the topic error: send() refuses at once
             * (MF_DROP, logged with the Id) until a metadata refresh shows
             * the topic usable again */
            int64_t deadline = now_ms() + 15000;
            enum mf_status v;

            rec_make(&r, 1, "contoso", 1, 10);
            while ((v = mf_output_send(o, &r.ev, NULL)) == MF_DROP &&
                   now_ms() < deadline)
                mf_output_poll(o, 100);
            ck_assert_int_eq(v, MF_OK);
            ck_assert_msg(strstr(logbuf, "id=id-000001"), "log: %s", logbuf);
            ck_assert_int_eq(mf_output_flush(o, 20000), -1);
            send_range(o, 2, 30, "contoso");
            ck_assert_int_eq(mf_output_flush(o, 20000), 0);
            stats(o, &st);
            ck_assert_uint_eq(st.acked, 29);
        } else {
            /* the producer goes on: the following records are delivered */
            send_range(o, 1, 30, "contoso");
            ck_assert_int_eq(mf_output_flush(o, 20000), 0);
            stats(o, &st);
            ck_assert_uint_eq(st.acked, 29);
        }
        mf_output_close(o);
        consume(&c, "t", 1, 30, "contoso", &s);
        ck_assert_uint_eq(s.cnt[0], 0);       /* refused before the append */
        ck_assert_uint_eq(s.distinct, 29);
        ck_assert_uint_eq(s.dups, 0);
        seen_free(&s);
        cluster_free(&c);
    }
    mf_log_set_sink(NULL, NULL);
}
END_TEST

START_TEST(kf_fatal_recreates_producer)
{
    struct cluster c;
    struct mf_output_conf oc;
    struct mf_output *o;
    struct mf_output_stats st;
    struct rec r;
    struct seen s;
    void *rk_before;

    log_reset();
    cluster_new(&c, 1);
    rd_kafka_mock_topic_create(c.mc, "t", 1, 1);
    conf_init(&oc, &c, "t");
    o = open_ok(&oc);
    send_range(o, 0, 10, "contoso");
    ck_assert_int_eq(mf_output_flush(o, 20000), 0);
    rk_before = mf_kafka_handle(o);
    ck_assert_int_eq(rd_kafka_test_fatal_error(
                         rk_before, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                         "injected by check_kafka"),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    rec_make(&r, 10, "contoso", 1, 10);
    ck_assert_int_eq(mf_output_send(o, &r.ev, NULL), MF_FATAL);
    ck_assert_int_eq(mf_output_flush(o, 20000), -1);
    ck_assert_msg(strstr(logbuf, "fatal"), "log: %s", logbuf);
    /* a fresh producer takes the records sent again */
    ck_assert_ptr_nonnull(mf_kafka_handle(o));
    ck_assert_msg(strstr(logbuf, "re-created"), "log: %s", logbuf);
    send_range(o, 10, 30, "contoso");
    ck_assert_int_eq(mf_output_flush(o, 20000), 0);
    stats(o, &st);
    ck_assert_uint_eq(st.acked, 30);
    mf_output_close(o);
    consume(&c, "t", 1, 30, "contoso", &s);
    assert_all_arrived(&s, 30, 0, "fatal error, producer re-created");
    seen_free(&s);
    cluster_free(&c);
    mf_log_set_sink(NULL, NULL);
}
END_TEST

/* ~4 s: RTT 1.5 s against socket.timeout.ms 1 s for 3 s. */
START_TEST(kf_rtt_spike)
{
    static const struct mf_kv kv[] = {{"socket.timeout.ms", "1000", 3},
                                      {"reconnect.backoff.max.ms", "200", 4}};
    struct cluster c;
    struct mf_output_conf oc;
    struct mf_output *o;
    struct timer t;
    struct seen s;
    const int n = 1000;

    cluster_new(&c, 1);
    rd_kafka_mock_topic_create(c.mc, "t", 1, 1);
    conf_init(&oc, &c, "t");
    KC(oc)->rdkafka.v = kv;
    KC(oc)->rdkafka.n = 2;
    o = open_ok(&oc);
    send_range(o, 0, n / 2, "contoso");
    ck_assert_int_eq(mf_output_flush(o, 20000), 0);
    rd_kafka_mock_broker_set_rtt(c.mc, 1, 1500);
    send_range(o, n / 2, n, "contoso");
    timer_start(&t, 3000, broker1_rtt_normal, &c);
    ck_assert_int_eq(mf_output_flush(o, 60000), 0);
    timer_stop(&t);
    mf_output_close(o);
    consume(&c, "t", 1, n, "contoso", &s);
    /* a timed-out request may have been appended: W = the records sent
     * during the spike, per timed-out request; the 3 s spike leaves room
     * for at most two (the reconnect's ApiVersion also times out while the
     * RTT is high): bound 2W */
    assert_all_arrived(&s, n, (size_t)n, "RTT spike");
    seen_free(&s);
    cluster_free(&c);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* close                                                                  */
/* ---------------------------------------------------------------------- */

START_TEST(kc_flushes_then_destroys)
{
    struct cluster c;
    struct mf_output_conf oc;
    struct mf_output *o;
    struct seen s;

    cluster_new(&c, 1);
    rd_kafka_mock_topic_create(c.mc, "t", 1, 1);
    conf_init(&oc, &c, "t");
    o = open_ok(&oc);
    send_range(o, 0, 300, "contoso");
    mf_output_close(o);                 /* no flush() before */
    consume(&c, "t", 1, 300, "contoso", &s);
    assert_all_arrived(&s, 300, 0, "close");
    seen_free(&s);
    cluster_free(&c);
}
END_TEST

START_TEST(kc_bounded_when_down)
{
    struct cluster c;
    struct mf_output_conf oc;
    struct mf_output *o;
    int64_t t0, took;

    log_reset();
    cluster_new(&c, 1);
    rd_kafka_mock_topic_create(c.mc, "t", 1, 1);
    rd_kafka_mock_broker_set_down(c.mc, 1);
    conf_init(&oc, &c, "t");
    oc.flush_timeout_ms = 800;
    o = open_ok(&oc);
    send_range(o, 0, 20, "contoso");
    t0 = now_ms();
    mf_output_close(o);
    took = now_ms() - t0;
    ck_assert_int_ge(took, 700);
    ck_assert_int_lt(took, 5000);
    ck_assert_msg(strstr(logbuf, "not acknowledged"), "log: %s", logbuf);
    cluster_free(&c);
    mf_log_set_sink(NULL, NULL);
}
END_TEST

/* ---------------------------------------------------------------------- */

static Suite *
kafka_suite(void)
{
    Suite *s = suite_create("kafka");
    TCase *tc;

    tc = tcase_create("mf_kafka_prop_sensitive");
    tcase_add_test(tc, kps_names);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_kafka_err_permanent");
    tcase_add_test(tc, kep_classes);
    suite_add_tcase(s, tc);

    tc = tcase_create("kafka_open");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, ko_defaults);
    tcase_add_test(tc, ko_compression_and_overrides);
    tcase_add_test(tc, ko_refused_property);
    tcase_add_test(tc, ko_refused_secret_redacted);
    tcase_add_test(tc, ko_secret_file);
    tcase_add_test(tc, ko_inconsistent_config);
    suite_add_tcase(s, tc);

    tc = tcase_create("kafka_send");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, ks_every_id);
    tcase_add_test(tc, ks_topic_template);
    tcase_add_test(tc, ks_too_large_refused);
    tcase_add_test(tc, ks_queue_full_backpressure);
    suite_add_tcase(s, tc);

    tc = tcase_create("kafka_flush");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, kf_broker_down_mid_stream);
    tcase_add_test(tc, kf_timeout_then_next_epoch);
    tcase_add_test(tc, kf_leader_change);
    tcase_add_test(tc, kf_injected_retriable);
    tcase_add_test(tc, kf_injected_permanent);
    tcase_add_test(tc, kf_fatal_recreates_producer);
    tcase_add_test(tc, kf_rtt_spike);
    suite_add_tcase(s, tc);

    tc = tcase_create("kafka_close");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, kc_flushes_then_destroys);
    tcase_add_test(tc, kc_bounded_when_down);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return mf_test_run(kafka_suite());
}
