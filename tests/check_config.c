/* check_config.c - m365fwd.yaml: option engine, validation, secrets,
 * reload identity, generated reference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_conf.h"
#include "file.h"
#include "kafka.h"
#include "syslog_fmt.h"
#include "log.h"
#include "normalize.h"
#include "tags.h"
#include "test_common.h"

#define CANARY "CANARY-5ecret-7f3a9"

static struct mf_config *
load(const char *text, unsigned flags, struct mf_err *err)
{
    return mf_config_load("m365fwd.yaml", text, strlen(text), flags, err);
}

/* A temporary directory for secret files, removed by rm_tmpdir(). */
static char tmpdir[64];

static void
mk_tmpdir(void)
{
    mf_test_mkdtemp(tmpdir, sizeof(tmpdir), "check_config");
}

static void
rm_tmpdir(void)
{
    mf_test_rmtree(tmpdir);
}

/* Write a file under tmpdir with a mode; returns its path (static). */
static const char *
write_file(const char *name, const char *content, mode_t mode)
{
    static char path[4][256];
    static int slot;
    char *p = path[slot++ % 4];
    FILE *f;

    snprintf(p, 256, "%s/%s", tmpdir, name);
    f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(content, f);
    fclose(f);
    ck_assert_int_eq(chmod(p, mode), 0);
    return p;
}

/* The own conf struct of an output's type. */
#define FILEC(o) ((const struct mf_file_conf *)(o)->plugin)
#define KAFKAC(o) ((const struct mf_kafka_conf *)(o)->plugin)
#define SYSLOGC(o) ((const struct mf_syslog_conf *)(o)->plugin)

/* ---- mf_config_load ---------------------------------------------------- */

START_TEST(mcl_defaults)
{
    struct mf_err err;
    char *text = mf_test_slurp(mf_test_data("config/minimal.yaml"), NULL);
    struct mf_config *c;
    const struct mf_tenant_conf *t;
    const struct mf_output_conf *o;

    ck_assert_ptr_nonnull(text);
    c = load(text, MF_CONFIG_REQUIRE_TENANTS, &err);
    ck_assert_msg(c != NULL, "%s", err.all);
    ck_assert_str_eq(c->state_dir, "/var/lib/m365fwd");
    ck_assert_ptr_null(c->proxy);
    ck_assert_int_eq(c->log_level, MF_LOG_INFO);
    ck_assert_int_eq(c->log_format, MF_LOG_FORMAT_KV);
    ck_assert_int_eq(c->collect.poll_interval_ms, 60000);
    ck_assert_int_eq(c->collect.initial_lookback_ms, 24 * 3600000LL);
    ck_assert_int_eq(c->collect.overlap_ms, 3600000);
    ck_assert_int_eq(c->collect.dedupe_horizon_ms, 24 * 3600000LL);
    ck_assert_int_eq(c->collect.max_concurrency, 8);
    ck_assert_int_eq(c->collect.requests_per_minute, 1800);
    ck_assert_int_eq(c->collect.max_record_size, 16 << 20);
    ck_assert_int_eq(c->collect.max_blob_size, 1LL << 30);
    ck_assert_int_eq(c->collect.max_retry_after_ms, 15 * 60 * 1000);
    ck_assert_int_eq(c->collect.transfer_timeout_ms, 30 * 60 * 1000);
    ck_assert(!c->metrics.enabled);
    ck_assert_str_eq(c->metrics.listen, "127.0.0.1:9465");
    ck_assert_uint_eq(c->tenants.n, 1);
    t = &c->tenants.v[0];
    ck_assert_str_eq(t->name, "contoso.onmicrosoft.com");
    ck_assert_str_eq(t->publisher_id, "contoso.onmicrosoft.com");
    ck_assert_int_eq(t->cloud, MF_CLOUD_COMMERCIAL);
    ck_assert_str_eq(t->login_endpoint, "https://login.microsoftonline.com");
    ck_assert_str_eq(t->api_endpoint, "https://manage.office.com");
    ck_assert_str_eq(t->resource, "https://manage.office.com");
    ck_assert_int_eq(t->auth, MF_AUTH_SECRET_ENV);
    ck_assert(t->enabled);
    ck_assert_uint_eq(t->content_types.n, 5);
    ck_assert_str_eq(t->content_types.v[0], "Audit.AzureActiveDirectory");
    ck_assert_str_eq(t->content_types.v[4], "DLP.All");
    ck_assert_uint_eq(t->line, 3);
    ck_assert_uint_eq(c->outputs.n, 1);
    o = &c->outputs.v[0];
    ck_assert_int_eq(o->type, MF_OUTPUT_FILE);
    ck_assert_int_eq(o->schema, MF_CONF_SCHEMA_OCSF);
    ck_assert_str_eq(FILEC(o)->path, "-");
    ck_assert(o->enabled);
    ck_assert(!o->keep_raw);
    ck_assert_int_eq(o->max_in_flight, 10000);
    ck_assert_uint_eq(o->filter.tags.n, 0);
    ck_assert_int_eq(o->filter.min_severity, 0);
    /* a file output has the file's own keys only */
    ck_assert_ptr_nonnull(o->plugin);
    ck_assert_int_eq(o->flush_timeout_ms, 10000);
    mf_config_destroy(c);
    free(text);
}
END_TEST

START_TEST(mcl_full_values)
{
    struct mf_err err;
    char *text = mf_test_slurp(mf_test_data("config/full.yaml"), NULL);
    struct mf_config *c;
    const struct mf_tenant_conf *t;
    const struct mf_output_conf *o;

    ck_assert_ptr_nonnull(text);
    c = load(text, MF_CONFIG_REQUIRE_TENANTS, &err);
    ck_assert_msg(c != NULL, "%s", err.all);
    ck_assert_str_eq(c->proxy, "http://proxy.example.net:3128");
    ck_assert_int_eq(c->log_level, MF_LOG_DEBUG);
    ck_assert_int_eq(c->log_format, MF_LOG_FORMAT_JSON);
    ck_assert_int_eq(c->collect.request_timeout_ms, 90000);
    ck_assert_int_eq(c->collect.initial_lookback_ms, 7 * 86400000LL);
    ck_assert_int_eq(c->collect.max_record_size, 32 << 20);
    ck_assert(c->metrics.enabled);
    ck_assert_str_eq(c->metrics.listen, "[::1]:9100");
    ck_assert_uint_eq(c->tenants.n, 3);

    t = mf_config_tenant(c, "fabrikam");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->cloud, MF_CLOUD_GCC_HIGH);
    ck_assert_str_eq(t->login_endpoint, "https://login.microsoftonline.us");
    ck_assert_str_eq(t->api_endpoint, "https://manage.office365.us");
    ck_assert_str_eq(t->publisher_id, "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d");
    ck_assert_int_eq(t->auth, MF_AUTH_SECRET_ENV);
    ck_assert_ptr_eq(mf_config_tenant(c, "FABRIKAM.onmicrosoft.com"), t);

    t = mf_config_tenant(c, "lab");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->auth, MF_AUTH_CERTIFICATE);
    ck_assert_str_eq(t->login_endpoint, "https://127.0.0.1:8443");
    ck_assert_str_eq(t->resource, "https://manage.office.com");
    ck_assert(!t->enabled);

    t = mf_config_tenant(c, "0B5E1F3C-8F5E-4C1E-9D1A-2C3B4D5E6F70");
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(t->name, "contoso");
    ck_assert_uint_eq(t->content_types.n, 2);
    ck_assert_uint_eq(t->domains.n, 2);
    ck_assert_str_eq(t->domains.v[1], "contoso.onmicrosoft.com");
    ck_assert_uint_eq(mf_config_tenant(c, "fabrikam")->domains.n, 0);

    o = mf_config_output(c, "lake");
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(o->type, MF_OUTPUT_KAFKA);
    ck_assert_int_eq(o->schema, MF_CONF_SCHEMA_ECS);
    ck_assert_str_eq(KAFKAC(o)->key, "{tenant_id}-{id}");
    ck_assert_int_eq(KAFKAC(o)->compression, MF_KAFKA_COMPRESS_ZSTD);
    ck_assert_int_eq(o->flush_timeout_ms, 30000);
    ck_assert_uint_eq(KAFKAC(o)->rdkafka.n, 5);
    ck_assert_str_eq(KAFKAC(o)->rdkafka.v[3].key, "linger.ms");
    ck_assert_str_eq(KAFKAC(o)->rdkafka.v[3].value, "50");
    ck_assert_str_eq(KAFKAC(o)->rdkafka.v[4].key, "enable.idempotence");
    ck_assert_str_eq(KAFKAC(o)->rdkafka.v[4].value, "true");
    ck_assert_uint_eq(KAFKAC(o)->rdkafka.v[4].line, 65);
    ck_assert_uint_eq(KAFKAC(o)->rdkafka_secret_files.n, 1);
    ck_assert_uint_eq(o->filter.tenants.n, 2);

    o = mf_config_output(c, "siem");
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(SYSLOGC(o)->transport, MF_SYSLOG_TLS);
    ck_assert_int_eq(SYSLOGC(o)->framing, MF_SYSLOG_LF);
    ck_assert_int_eq(SYSLOGC(o)->format, MF_SYSLOG_RFC3164);
    ck_assert_int_eq(SYSLOGC(o)->payload, MF_SYSLOG_CEF);
    ck_assert_int_eq(SYSLOGC(o)->facility, 4);
    ck_assert_int_eq(SYSLOGC(o)->max_message_size, 1 << 20);
    ck_assert_int_eq(o->filter.min_severity, 3);
    ck_assert_uint_eq(o->filter.areas.n, 2);
    ck_assert_uint_eq(o->filter.tags.n, 2);
    ck_assert_str_eq(o->filter.tags.v[1], "monitor.audit_disabled");
    ck_assert_uint_eq(o->filter.line, 85);
    ck_assert(!o->enabled);

    o = mf_config_output(c, "archive");
    ck_assert_int_eq(o->schema, MF_CONF_SCHEMA_RAW);
    ck_assert(o->keep_raw);
    ck_assert_int_eq(o->max_in_flight, 50000);
    ck_assert_ptr_null(mf_config_output(c, "nope"));
    mf_config_destroy(c);
    free(text);
}
END_TEST

START_TEST(mcl_cloud_hosts)
{
    static const struct {
        const char *cloud;
        const char *login;
        const char *api;
    } want[] = {
        {"commercial", "https://login.microsoftonline.com",
         "https://manage.office.com"},
        {"gcc", "https://login.microsoftonline.com",
         "https://manage-gcc.office.com"},
        {"gcc-high", "https://login.microsoftonline.us",
         "https://manage.office365.us"},
        {"dod", "https://login.microsoftonline.us",
         "https://manage.protection.apps.mil"},
    };
    char text[512];
    struct mf_err err;
    struct mf_config *c;

    snprintf(text, sizeof(text),
             "tenants:\n"
             "  - id: contoso.onmicrosoft.com\n"
             "    client_id: app\n"
             "    client_secret_env: S\n"
             "    cloud: %s\n"
             "outputs: [{name: o, type: file, path: x}]\n",
             want[_i].cloud);
    c = load(text, 0, &err);
    ck_assert_msg(c != NULL, "%s", err.all);
    ck_assert_str_eq(c->tenants.v[0].login_endpoint, want[_i].login);
    ck_assert_str_eq(c->tenants.v[0].api_endpoint, want[_i].api);
    ck_assert_str_eq(c->tenants.v[0].resource, want[_i].api);
    ck_assert_str_eq(mf_cloud_name(c->tenants.v[0].cloud), want[_i].cloud);
    ck_assert_str_eq(mf_cloud_login_endpoint(c->tenants.v[0].cloud),
                     want[_i].login);
    ck_assert_str_eq(mf_cloud_api_endpoint(c->tenants.v[0].cloud),
                     want[_i].api);
    mf_config_destroy(c);
}
END_TEST

/* One tenant + one file output, for cases that break something else. */
#define T0 "tenants:\n" \
           "  - id: contoso.onmicrosoft.com\n" \
           "    client_id: app\n" \
           "    client_secret_env: S\n"
#define O0 "outputs:\n" \
           "  - name: out\n" \
           "    type: file\n" \
           "    path: /tmp/out\n"

static const struct {
    const char *text;
    const char *msg;   /* exact first error */
} bad[] = {
    /* 0 */
    {"tenants:\n"
     "  - id: contoso.onmicrosoft.com\n"
     "    client_id: app\n"
     "    client_secret_env: S\n"
     "    cloud: azure\n" O0,
     "m365fwd.yaml:5: tenants[0].cloud: unknown value 'azure' (expected "
     "commercial, gcc, gcc-high, dod)"},
    {"stat_dir: /x\n" T0 O0,
     "m365fwd.yaml:1: top level: unknown key 'stat_dir' (did you mean "
     "'state_dir'?)"},
    {"collect:\n  max_concurrency: eight\n" T0 O0,
     "m365fwd.yaml:2: collect.max_concurrency: expected an integer, got a "
     "string"},
    {"collect:\n  max_concurrency: 2.5\n" T0 O0,
     "m365fwd.yaml:2: collect.max_concurrency: expected an integer, got "
     "'2.5'"},
    {"collect:\n  max_concurrency: 0\n" T0 O0,
     "m365fwd.yaml:2: collect.max_concurrency: 0 is out of range (1 to 256)"},
    /* 5 */
    {"collect:\n  poll_interval: 500ms\n" T0 O0,
     "m365fwd.yaml:2: collect.poll_interval: 500ms is out of range (1s to "
     "1d)"},
    {"collect:\n  initial_lookback: 8d\n" T0 O0,
     "m365fwd.yaml:2: collect.initial_lookback: 8d is out of range (0s to "
     "7d)"},
    {"collect:\n  poll_interval: 60\n" T0 O0,
     "m365fwd.yaml:2: collect.poll_interval: invalid duration '60' (use a "
     "number with a unit: 500ms, 60s, 15m, 24h, 7d)"},
    {"tenants:\n"
     "  - id: contoso.onmicrosoft.com\n"
     "    client_secret_env: S\n" O0,
     "m365fwd.yaml:2: tenants[0]: missing required key 'client_id'"},
    {"tenants:\n"
     "  - id: contoso.onmicrosoft.com\n"
     "    client_id: app\n"
     "    client_secret_file: /s\n"
     "    client_secret_env: S\n" O0,
     "m365fwd.yaml:5: tenants[0]: client_secret_file and client_secret_env "
     "are both set; use exactly one credential"},
    /* 10 */
    {"tenants:\n"
     "  - id: contoso.onmicrosoft.com\n"
     "    client_id: app\n"
     "    certificate_file: /c.pem\n" O0,
     "m365fwd.yaml:4: tenants[0].certificate_file: needs private_key_file"},
    {"tenants:\n"
     "  - id: contoso.onmicrosoft.com\n"
     "    client_id: app\n" O0,
     "m365fwd.yaml:2: tenants[0]: no credential: set client_secret_file, "
     "client_secret_env, or certificate_file + private_key_file"},
    {T0
     "  - id: CONTOSO.onmicrosoft.com\n"
     "    name: other\n"
     "    client_id: app\n"
     "    client_secret_env: S\n" O0,
     "m365fwd.yaml:5: tenants[1].id: duplicate tenant id "
     "'CONTOSO.onmicrosoft.com' (also tenants[0], line 2)"},
    {"tenants:\n"
     "  - id: a.example.com\n"
     "    name: x\n"
     "    client_id: app\n"
     "    client_secret_env: S\n"
     "  - id: b.example.com\n"
     "    name: x\n"
     "    client_id: app\n"
     "    client_secret_env: S\n" O0,
     "m365fwd.yaml:7: tenants[1].name: duplicate tenant name 'x' (also "
     "tenants[0], line 2)"},
    {T0 O0
     "  - name: out\n"
     "    type: file\n"
     "    path: /tmp/other\n",
     "m365fwd.yaml:9: outputs[1].name: duplicate output name 'out' (also "
     "outputs[0], line 6)"},
    /* 15 */
    {T0 O0 "    brokers: localhost:9092\n",
     "m365fwd.yaml:9: outputs[0].brokers: not valid for type 'file' (only "
     "for kafka)"},
    {T0
     "outputs:\n"
     "  - name: k\n"
     "    type: kafka\n"
     "    brokers: localhost:9092\n"
     "    topic: m365.{tenat}\n",
     "m365fwd.yaml:9: outputs[0].topic: 'm365.{tenat}' has an unknown "
     "placeholder '{tenat}' (expected {tenant} {tenant_id} {content_type} "
     "{area} {class_uid} {schema})"},
    {T0
     "outputs:\n"
     "  - name: k\n"
     "    type: kafka\n"
     "    brokers: localhost:9092\n"
     "    topic: m365.{id}\n",
     "m365fwd.yaml:9: outputs[0].topic: 'm365.{id}' has an unknown "
     "placeholder '{id}' (expected {tenant} {tenant_id} {content_type} "
     "{area} {class_uid} {schema})"},
    {T0
     "outputs:\n"
     "  - name: k\n"
     "    type: kafka\n"
     "    brokers: localhost:9092\n"
     "    topic: m365 audit\n",
     "m365fwd.yaml:9: outputs[0].topic: 'm365 audit' may contain only "
     "letters, digits, '.', '_', '-' and placeholders"},
    {T0
     "outputs:\n"
     "  - name: k\n"
     "    type: kafka\n"
     "    brokers: localhost:9092\n"
     "    topic: m365\n"
     "    rdkafka:\n"
     "      sasl.password: " CANARY "\n",
     "m365fwd.yaml:11: outputs[0].rdkafka.sasl.password: secrets are never "
     "written in the configuration: use rdkafka_secret_files or "
     "rdkafka_secret_env"},
    /* 20 */
    {T0
     "outputs:\n"
     "  - name: k\n"
     "    type: kafka\n"
     "    brokers: localhost:9092\n"
     "    topic: m365\n"
     "    rdkafka.bootstrap.servers: other:9092\n",
     "m365fwd.yaml:10: outputs[0].rdkafka.bootstrap.servers: set by "
     "'brokers'; remove it here"},
    {T0
     "outputs:\n"
     "  - name: s\n"
     "    type: syslog\n"
     "    address: siem:514\n"
     "    ca_file: /ca.pem\n",
     "m365fwd.yaml:9: outputs[0].ca_file: only used with transport: tls"},
    {T0
     "outputs:\n"
     "  - name: s\n"
     "    type: syslog\n"
     "    address: siem:514\n"
     "    transport: udp\n"
     "    max_message_size: 100KiB\n",
     "m365fwd.yaml:10: outputs[0].max_message_size: at most 65507 with "
     "transport: udp"},
    {T0
     "outputs:\n"
     "  - name: s\n"
     "    type: syslog\n"
     "    address: siem\n",
     "m365fwd.yaml:8: outputs[0].address: 'siem' is not host:port"},
    {T0
     "outputs:\n"
     "  - name: s\n"
     "    type: syslog\n"
     "    address: fe80::1:514\n",
     "m365fwd.yaml:8: outputs[0].address: 'fe80::1:514' has an IPv6 address "
     "without brackets (write [addr]:port)"},
    /* 25 */
    {T0 O0 "    filter:\n      tenants: [contoso, nobody]\n",
     "m365fwd.yaml:10: outputs[0].filter.tenants: unknown tenant 'contoso'"},
    {T0 O0 "    filter:\n      min_severity: 6\n",
     "m365fwd.yaml:10: outputs[0].filter.min_severity: 6 is out of range (1 "
     "to 5)"},
    {T0 O0 "    filter:\n      areas: [identity]\n",
     "m365fwd.yaml:10: outputs[0].filter.areas[0]: unknown value 'identity' "
     "(expected identity_access, data_protection, collaboration_sharing, "
     "device_posture, monitoring_response)"},
    {T0 O0 "    filter:\n      tags: [MFA]\n",
     "m365fwd.yaml:10: outputs[0].filter.tags[0]: 'MFA' is not a tag id "
     "(e.g. identity.mfa_disabled)"},
    {T0, "m365fwd.yaml:1: top level: missing required key 'outputs'"},
    /* 30 */
    {T0 "outputs: []\n", "m365fwd.yaml:5: outputs: must not be empty"},
    {T0 "    content_types: [Audit.Exchange, Audit.Exchange]\n" O0,
     "m365fwd.yaml:5: tenants[0].content_types: 'Audit.Exchange' is listed "
     "twice"},
    {T0 "    content_types: [Audit.Teams]\n" O0,
     "m365fwd.yaml:5: tenants[0].content_types[0]: unknown value "
     "'Audit.Teams' (expected Audit.AzureActiveDirectory, Audit.Exchange, "
     "Audit.SharePoint, Audit.General, DLP.All)"},
    {T0 "    enabled: yes\n" O0,
     "m365fwd.yaml:5: tenants[0].enabled: expected true or false, got a "
     "string"},
    {T0 "    login_endpoint: http://login.example.com\n" O0,
     "m365fwd.yaml:5: tenants[0].login_endpoint: 'http://login.example.com' "
     "must be an https:// URL (TLS is always used and verified)"},
    /* 35 */
    {T0 "    client_secret: " CANARY "\n" O0,
     "m365fwd.yaml:5: tenants[0]: unknown key 'client_secret' (secrets are "
     "never written in the configuration: use client_secret_file or "
     "client_secret_env)"},
    {"proxy: http://user:" CANARY "@proxy:3128\n" T0 O0,
     "m365fwd.yaml:1: proxy: must not contain credentials (put user:password "
     "in the file named by proxy_auth_file)"},
    {T0 "    api_endpoint: https://user:" CANARY "@api.example.com\n" O0,
     "m365fwd.yaml:5: tenants[0].api_endpoint: 'https://***@api.example.com' "
     "must not contain credentials"},
    {"tenants: {id: x}\n" O0,
     "m365fwd.yaml:1: tenants: expected a list, got a mapping"},
    {"tenants:\n  - id: [a\n" O0, "m365fwd.yaml:3: YAML syntax error: "},
    {"tenants:\n"
     "  - id: not a tenant\n"
     "    client_id: app\n"
     "    client_secret_env: S\n" O0,
     "m365fwd.yaml:2: tenants[0].id: 'not a tenant' is neither a GUID nor a "
     "domain name (e.g. contoso.onmicrosoft.com)"},
    /* 40 */
    {"collect:\n  overlap: 6h\n  dedupe_horizon: 1h\n" T0 O0,
     "m365fwd.yaml:3: collect.dedupe_horizon: must be at least "
     "collect.overlap (or 0s to disable)"},
    {"proxy_auth_file: /etc/p\n" T0 O0,
     "m365fwd.yaml:1: proxy_auth_file: needs proxy"},
    {T0
     "outputs:\n"
     "  - name: out\n"
     "    type: s3\n"
     "    bucket: b\n",
     "m365fwd.yaml:7: outputs[0].type: unknown value 's3' (expected file, "
     "kafka, syslog)"},
    {T0 "outputs:\n  - name: s\n    type: syslog\n    address: s:514\n"
        "    max_message_size: 64 KiB\n",
     "m365fwd.yaml:9: outputs[0].max_message_size: invalid size '64 KiB' (use "
     "bytes or a unit: 512, 64KiB, 1MiB, 10MB)"},
    {"metrics:\n  listen: localhost\n" T0 O0,
     "m365fwd.yaml:2: metrics.listen: 'localhost' is not host:port"},
    /* 45 */
    {"- a\n- b\n",
     "m365fwd.yaml:1: top level: expected a mapping of settings, got a list"},
    {T0 "outputs:\n  - name: k\n    type: kafka\n    topic: t\n",
     "m365fwd.yaml:6: outputs[0]: missing required key 'brokers'"},
    {T0 "    name: bad name\n" O0,
     "m365fwd.yaml:5: tenants[0].name: 'bad name' may contain only letters, "
     "digits, '.', '_' and '-'"},
    {T0 "    client_secret_env: S2\n" O0, "m365fwd.yaml:5: duplicate key"},
    {T0 O0 "    rdkafka: [a]\n",
     "m365fwd.yaml:9: outputs[0].rdkafka: not valid for type 'file' (only "
     "for kafka)"},
    /* 50 */
    {T0 "  - id: contoso\n    client_id: app\n    client_secret_env: S\n" O0,
     "m365fwd.yaml:5: tenants[1].id: 'contoso' is neither a GUID nor a "
     "domain name (e.g. contoso.onmicrosoft.com)"},
    {T0 O0 "    path: /x\n", "m365fwd.yaml:9: duplicate key 'path'"},
    {T0 "outputs:\n  - name: s\n    type: syslog\n    address: s:514\n"
        "    transport: tls\n    cert_file: /c\n",
     "m365fwd.yaml:10: outputs[0].cert_file: needs key_file"},
    {T0 "outputs:\n  - name: k\n    type: kafka\n    brokers: a:1,\n"
        "    topic: t\n",
     "m365fwd.yaml:8: outputs[0].brokers: 'a:1,' is not a comma-separated "
     "list of host:port"},
    {T0 "    resource: ftp://x\n" O0,
     "m365fwd.yaml:5: tenants[0].resource: 'ftp://x' must be an https:// "
     "URL (TLS is always used and verified)"},
    {T0 O0 "    enabled: false\n",
     "m365fwd.yaml:6: outputs: every output is disabled; records would be "
     "checkpointed without being delivered"},
    {T0 "    domains: [contoso.com, \"@contoso.com\"]\n" O0,
     "m365fwd.yaml:5: tenants[0].domains[1]: '@contoso.com' is not a domain "
     "name (e.g. contoso.com, no '@' or '*')"},
};

START_TEST(mcl_invalid)
{
    struct mf_err err;
    struct mf_config *c = load(bad[_i].text, 0, &err);

    ck_assert_msg(c == NULL, "case %d accepted", _i);
    ck_assert_msg(err.n >= 1, "case %d: no error counted", _i);
    ck_assert_msg(strncmp(err.msg, bad[_i].msg, strlen(bad[_i].msg)) == 0,
                  "case %d:\n got '%s'\nwant '%s'", _i, err.msg, bad[_i].msg);
    /* the whole-message cases must match exactly (prefix cases end in a
     * space or "key") */
    if (bad[_i].msg[strlen(bad[_i].msg) - 1] != ' ' &&
        strstr(bad[_i].msg, "duplicate key") == NULL)
        ck_assert_str_eq(err.msg, bad[_i].msg);
    ck_assert_msg(strstr(err.all, CANARY) == NULL, "case %d leaks", _i);
    ck_assert_ptr_eq(strstr(err.all, err.msg), err.all);
}
END_TEST

/* Files tests/data/config/bad-*.yaml carry their expected errors in
 * "# expect: " lines, in order. */
static const char *const bad_files[] = {"bad-many.yaml", "bad-kafka.yaml",
                                        "bad-syslog.yaml"};

START_TEST(mcl_invalid_files)
{
    char rel[128], want[4096] = "";
    struct mf_err err;
    struct mf_config *c;
    char *text, *p;
    size_t len, n = 0;

    snprintf(rel, sizeof(rel), "config/%s", bad_files[_i]);
    text = mf_test_slurp(mf_test_data(rel), &len);
    ck_assert_ptr_nonnull(text);
    for (p = text; (p = strstr(p, "# expect: ")) != NULL; n++) {
        char *eol = strchr(p, '\n');

        p += 10;
        strncat(want, p, (size_t)(eol - p) + 1);
    }
    ck_assert_uint_gt(n, 1);
    c = mf_config_load(bad_files[_i], text, len, 0, &err);
    ck_assert_ptr_null(c);
    ck_assert_str_eq(err.all, want);
    ck_assert_uint_eq(err.n, n);
    free(text);
}
END_TEST

START_TEST(mcl_require_tenants)
{
    struct mf_err err;
    struct mf_config *c = load(O0, 0, &err);

    ck_assert_msg(c != NULL, "%s", err.all);
    ck_assert_uint_eq(c->tenants.n, 0);
    mf_config_destroy(c);
    c = load(O0, MF_CONFIG_REQUIRE_TENANTS, &err);
    ck_assert_ptr_null(c);
    ck_assert_str_eq(err.msg,
                     "m365fwd.yaml:1: tenants: at least one tenant is needed");
}
END_TEST

START_TEST(mcl_null_is_default)
{
    struct mf_err err;
    struct mf_config *c = load("state_dir:\ncollect:\n  poll_interval: ~\n"
                               T0 "    ca_file:\n" O0, 0, &err);

    ck_assert_msg(c != NULL, "%s", err.all);
    ck_assert_str_eq(c->state_dir, "/var/lib/m365fwd");
    ck_assert_int_eq(c->collect.poll_interval_ms, 60000);
    ck_assert_ptr_null(c->tenants.v[0].ca_file);
    mf_config_destroy(c);
}
END_TEST

START_TEST(mcl_file_errors)
{
    struct mf_err err;

    ck_assert_ptr_null(mf_config_load_file("/nonexistent/m365fwd.yaml", 0,
                                           &err));
    ck_assert_str_eq(err.msg, "/nonexistent/m365fwd.yaml: cannot open: No "
                              "such file or directory");
    ck_assert_ptr_null(load("", 0, &err));
    ck_assert_str_eq(err.msg, "m365fwd.yaml:1: empty document");
    /* a NULL err is allowed */
    ck_assert_ptr_null(load("x: 1\n", 0, NULL));
}
END_TEST

START_TEST(mcl_relative_paths)
{
    char text[512], want[256];
    struct mf_err err;
    struct mf_config *c;
    const char *cfgpath;

    mk_tmpdir();
    write_file("app.secret", "x\n", 0600);
    snprintf(text, sizeof(text),
             "state_dir: state\n"
             "tenants:\n"
             "  - id: a.example.com\n"
             "    client_id: app\n"
             "    client_secret_file: app.secret\n"
             "outputs:\n"
             "  - {name: o, type: file, path: out/events.ndjson}\n"
             "  - {name: p, type: file, path: \"-\"}\n"
             "  - {name: q, type: file, path: /abs/x}\n");
    cfgpath = write_file("m365fwd.yaml", text, 0644);
    c = mf_config_load_file(cfgpath, MF_CONFIG_CHECK_FILES, &err);
    ck_assert_msg(c != NULL, "%s", err.all);
    snprintf(want, sizeof(want), "%s/state", tmpdir);
    ck_assert_str_eq(c->state_dir, want);
    snprintf(want, sizeof(want), "%s/app.secret", tmpdir);
    ck_assert_str_eq(c->tenants.v[0].client_secret_file, want);
    snprintf(want, sizeof(want), "%s/out/events.ndjson", tmpdir);
    ck_assert_str_eq(FILEC(&c->outputs.v[0])->path, want);
    ck_assert_str_eq(FILEC(&c->outputs.v[1])->path, "-");
    ck_assert_str_eq(FILEC(&c->outputs.v[2])->path, "/abs/x");
    mf_config_destroy(c);
    /* from text (no file), paths stay as written */
    c = load(text, 0, &err);
    ck_assert_msg(c != NULL, "%s", err.all);
    ck_assert_str_eq(c->state_dir, "state");
    mf_config_destroy(c);
    rm_tmpdir();
}
END_TEST

START_TEST(mcl_example_loads)
{
    const char *src = getenv("MF_SOURCE_ROOT");
    char path[1024];
    struct mf_err err;
    struct mf_config *c;

    ck_assert_msg(src != NULL, "MF_SOURCE_ROOT is not set");
    snprintf(path, sizeof(path), "%s/config/m365fwd.yaml.example", src);
    c = mf_config_load_file(path, MF_CONFIG_REQUIRE_TENANTS, &err);
    ck_assert_msg(c != NULL, "%s", err.all);
    ck_assert_uint_ge(c->tenants.n, 1);
    ck_assert_uint_ge(c->outputs.n, 1);
    mf_config_destroy(c);
}
END_TEST

/* The enum numbers the config stores must be the normalizer's. */
START_TEST(mcl_vocabularies_match)
{
    enum mf_schema s;
    enum mf_area a;
    size_t i;

    ck_assert_int_eq(mf_schema_parse("ocsf", &s), 0);
    ck_assert_int_eq((int)s, MF_CONF_SCHEMA_OCSF);
    ck_assert_int_eq(mf_schema_parse("ecs", &s), 0);
    ck_assert_int_eq((int)s, MF_CONF_SCHEMA_ECS);
    ck_assert_int_eq(mf_schema_parse("raw", &s), 0);
    ck_assert_int_eq((int)s, MF_CONF_SCHEMA_RAW);
    for (i = 0; mf_output_areas[i].name; i++) {
        ck_assert_int_eq(mf_area_parse(mf_output_areas[i].name, &a), 0);
        ck_assert_int_eq((int)a, mf_output_areas[i].value);
    }
    ck_assert_uint_eq(i, MF_AREA_COUNT);
}
END_TEST

/* ---- secrets ----------------------------------------------------------- */

START_TEST(mcls_file_ok)
{
    struct mf_secret s;
    char e[256];
    const char *p;

    mk_tmpdir();
    p = write_file("s1", "abc~def\r\n\n", 0600);
    ck_assert_int_eq(mf_secret_load(p, NULL, true, "x", &s, e,
                                           sizeof(e)), 0);
    ck_assert_str_eq(s.data, "abc~def");
    ck_assert_uint_eq(s.len, 7);
    mf_secret_clear(&s);
    ck_assert_ptr_null(s.data);
    /* group-readable is allowed; PEM keys keep their bytes */
    p = write_file("k1", "-----BEGIN-----\n", 0640);
    ck_assert_int_eq(mf_secret_load(p, NULL, false, "x", &s, e,
                                           sizeof(e)), 0);
    ck_assert_str_eq(s.data, "-----BEGIN-----\n");
    mf_secret_clear(&s);
    rm_tmpdir();
}
END_TEST

START_TEST(mcls_file_refused)
{
    struct mf_secret s;
    char e[512], want[512];
    const char *p;

    mk_tmpdir();
    p = write_file("open", CANARY "\n", 0644);
    ck_assert_int_eq(mf_secret_load(p, NULL, true, "t.secret", &s, e,
                                           sizeof(e)), -1);
    snprintf(want, sizeof(want), "t.secret: %s: accessible by other users "
             "(mode 0644); run 'chmod o-rwx %s'", p, p);
    ck_assert_str_eq(e, want);
    ck_assert_ptr_null(s.data);
    ck_assert_ptr_null(strstr(e, CANARY));

    p = write_file("empty", " \n", 0600);
    ck_assert_int_eq(mf_secret_load(p, NULL, true, "t.secret", &s, e,
                                           sizeof(e)), -1);
    snprintf(want, sizeof(want), "t.secret: %s: empty", p);
    ck_assert_str_eq(e, want);

    snprintf(want, sizeof(want), "%s/missing", tmpdir);
    ck_assert_int_eq(mf_secret_load(want, NULL, true, "t.secret", &s,
                                           e, sizeof(e)), -1);
    ck_assert_ptr_nonnull(strstr(e, "cannot open: No such file"));

    ck_assert_int_eq(mf_secret_load(tmpdir, NULL, true, "t.secret", &s,
                                           e, sizeof(e)), -1);
    ck_assert_ptr_nonnull(strstr(e, "not a regular file"));
    rm_tmpdir();
}
END_TEST

START_TEST(mcls_env)
{
    struct mf_secret s;
    char e[256];

    setenv("MF_TEST_SECRET_A", "s3cr3t \n", 1);
    ck_assert_int_eq(mf_secret_load(NULL, "MF_TEST_SECRET_A", true, "x",
                                           &s, e, sizeof(e)), 0);
    ck_assert_str_eq(s.data, "s3cr3t");
    mf_secret_clear(&s);
    unsetenv("MF_TEST_SECRET_B");
    ck_assert_int_eq(mf_secret_load(NULL, "MF_TEST_SECRET_B", true, "x",
                                           &s, e, sizeof(e)), -1);
    ck_assert_str_eq(e, "x: environment variable MF_TEST_SECRET_B is not set");
    setenv("MF_TEST_SECRET_B", "", 1);
    ck_assert_int_eq(mf_secret_load(NULL, "MF_TEST_SECRET_B", true, "x",
                                           &s, e, sizeof(e)), -1);
    ck_assert_str_eq(e, "x: environment variable MF_TEST_SECRET_B is empty");
    unsetenv("MF_TEST_SECRET_A");
    unsetenv("MF_TEST_SECRET_B");
}
END_TEST

START_TEST(mcls_tenant_helpers)
{
    char text[1024], e[256];
    struct mf_err err;
    struct mf_config *c;
    struct mf_secret s;
    const char *sec, *key;

    mk_tmpdir();
    sec = write_file("client.secret", "tenant-secret\n", 0600);
    key = write_file("client.key", "KEY\n", 0600);
    snprintf(text, sizeof(text),
             "tenants:\n"
             "  - id: a.example.com\n"
             "    client_id: app\n"
             "    client_secret_file: %s\n"
             "  - id: b.example.com\n"
             "    client_id: app\n"
             "    certificate_file: %s\n"
             "    private_key_file: %s\n" O0, sec, key, key);
    c = load(text, MF_CONFIG_CHECK_FILES, &err);
    ck_assert_msg(c != NULL, "%s", err.all);
    ck_assert_int_eq(mf_tenant_client_secret(&c->tenants.v[0], &s, e,
                                             sizeof(e)), 0);
    ck_assert_str_eq(s.data, "tenant-secret");
    mf_secret_clear(&s);
    ck_assert_int_eq(mf_tenant_private_key(&c->tenants.v[1], &s, e, sizeof(e)),
                     0);
    ck_assert_str_eq(s.data, "KEY\n");
    mf_secret_clear(&s);
    ck_assert_int_eq(mf_tenant_private_key(&c->tenants.v[0], &s, e, sizeof(e)),
                     -1);
    ck_assert_str_eq(e, "tenant a.example.com: no private key configured");
    ck_assert_int_eq(mf_tenant_client_secret(&c->tenants.v[1], &s, e,
                                             sizeof(e)), -1);
    mf_config_destroy(c);
    rm_tmpdir();
}
END_TEST

/* A recognizable secret never reaches an error message, whatever fails. */
START_TEST(mcls_never_in_errors)
{
    char text[2048];
    struct mf_err err;
    struct mf_buf b;
    struct mf_config *c;
    const char *good, *open_file;

    mk_tmpdir();
    good = write_file("good.secret", CANARY "\n", 0600);
    open_file = write_file("open.secret", CANARY "\n", 0604);
    setenv("MF_TEST_CANARY", CANARY, 1);
    /* errors elsewhere + secret files that are read (CHECK_FILES is skipped
     * once errors exist, so the second load has a clean config) */
    snprintf(text, sizeof(text),
             "collect:\n  poll_interval: 0s\n"
             "tenants:\n"
             "  - id: a.example.com\n"
             "    client_id: app\n"
             "    client_secret_file: %s\n"
             "    cloud: nowhere\n"
             "  - id: b.example.com\n"
             "    client_id: app\n"
             "    client_secret_env: MF_TEST_CANARY\n"
             "    client_secret_file: %s\n" O0, good, good);
    ck_assert_ptr_null(load(text, MF_CONFIG_CHECK_FILES, &err));
    ck_assert_uint_ge(err.n, 3);
    ck_assert_ptr_null(strstr(err.all, CANARY));
    /* valid structure, unsafe file: the file is opened and refused */
    snprintf(text, sizeof(text),
             "tenants:\n"
             "  - id: a.example.com\n"
             "    client_id: app\n"
             "    client_secret_file: %s\n"
             "  - id: b.example.com\n"
             "    client_id: app\n"
             "    client_secret_file: %s\n"
             "  - id: c.example.com\n"
             "    client_id: app\n"
             "    client_secret_env: MF_TEST_NOT_SET_EVER\n" O0,
             open_file, good);
    ck_assert_ptr_null(load(text, MF_CONFIG_CHECK_FILES, &err));
    ck_assert_uint_eq(err.n, 2);
    ck_assert_ptr_nonnull(strstr(err.all, "accessible by other users"));
    ck_assert_ptr_nonnull(strstr(err.all, "m365fwd.yaml:10: tenants[2]."
                                          "client_secret_env: environment "
                                          "variable MF_TEST_NOT_SET_EVER is "
                                          "not set"));
    ck_assert_ptr_null(strstr(err.all, CANARY));
    /* a loaded config: neither the dump nor the reference holds it */
    snprintf(text, sizeof(text),
             "tenants:\n"
             "  - id: a.example.com\n"
             "    client_id: app\n"
             "    client_secret_file: %s\n" O0, good);
    c = load(text, MF_CONFIG_CHECK_FILES, &err);
    ck_assert_msg(c != NULL, "%s", err.all);
    mf_buf_init(&b, 0);
    mf_config_dump_yaml(c, &b);
    mf_config_doc_markdown(&b);
    ck_assert_ptr_null(strstr(b.data, CANARY));
    mf_buf_fini(&b);
    mf_config_destroy(c);
    unsetenv("MF_TEST_CANARY");
    rm_tmpdir();
}
END_TEST

/* ---- mf_config_dump_yaml ----------------------------------------------- */

START_TEST(mcd_round_trip)
{
    char *text = mf_test_slurp(mf_test_data("config/full.yaml"), NULL);
    struct mf_err err;
    struct mf_config *a, *b;
    struct mf_buf out;

    a = load(text, 0, &err);
    ck_assert_msg(a != NULL, "%s", err.all);
    mf_buf_init(&out, 0);
    mf_config_dump_yaml(a, &out);
    b = mf_config_load("dump.yaml", out.data, out.len, 0, &err);
    ck_assert_msg(b != NULL, "%s\n--- dump:\n%s", err.all, out.data);
    ck_assert_uint_eq(a->tenants.n, b->tenants.n);
    ck_assert_uint_eq(a->outputs.n, b->outputs.n);
    ck_assert_uint_eq(mf_config_diff(&mf_config_sec, a, b, NULL, NULL), 0);
    /* spot checks of the text */
    ck_assert_ptr_nonnull(strstr(out.data, "  poll_interval: 30s\n"));
    ck_assert_ptr_nonnull(strstr(out.data, "  - id: \"fabrikam.onmicrosoft."
                                           "com\"\n"));
    ck_assert_ptr_nonnull(strstr(out.data, "    max_message_size: 1MiB\n"));
    mf_buf_fini(&out);
    mf_config_destroy(a);
    mf_config_destroy(b);
    free(text);
}
END_TEST

/* ---- mf_config_diff ---------------------------------------------------- */

static const char *const kind_names[] = {"changed", "added", "removed"};
static const char *const reload_names[] = {"restart", "live", "never"};

struct diff_log {
    char text[4096];
    size_t n;
    bool hidden;      /* a change without its values */
};

static void
on_change(const struct mf_change *ch, void *ud)
{
    struct diff_log *l = ud;
    size_t k = strlen(l->text);

    snprintf(l->text + k, sizeof(l->text) - k, "%s:%s:%s ", ch->path,
             kind_names[ch->kind], reload_names[ch->reload]);
    l->n++;
    l->hidden = ch->kind == MF_CHANGE_CHANGED && !ch->old_value;
}

START_TEST(mcdf_changes)
{
    static const char *old_text =
        "tenants:\n"
        "  - {id: a.example.com, client_id: app, client_secret_env: S}\n"
        "  - {id: b.example.com, client_id: app, client_secret_env: S}\n"
        "  - {id: c.example.com, client_id: app, client_secret_env: S}\n"
        "outputs:\n"
        "  - {name: f, type: file, path: /a}\n"
        "  - {name: g, type: file, path: /b}\n";
    static const char *new_text =
        "# comments and order do not matter\n"
        "state_dir: /srv/m365fwd\n"
        "log_level: debug\n"
        "tenants:\n"
        "  - {id: d.example.com, client_id: app, client_secret_env: S}\n"
        "  - {id: c.example.com, client_id: app, client_secret_env: S}\n"
        "  - {id: a.example.com, client_id: app2, client_secret_env: S}\n"
        "outputs:\n"
        "  - {name: g, type: file, path: /b}\n"
        "  - {name: f, type: file, path: /a, filter: {min_severity: 3}}\n"
        "  - {name: h, type: file, path: /c}\n";
    struct diff_log log = {0};
    struct mf_err err;
    struct mf_config *a = load(old_text, 0, &err), *b;

    ck_assert_msg(a != NULL, "%s", err.all);
    b = load(new_text, 0, &err);
    ck_assert_msg(b != NULL, "%s", err.all);
    ck_assert_uint_eq(mf_config_diff(&mf_config_sec, a, b, on_change, &log), 7);
    ck_assert_str_eq(log.text,
                     "state_dir:changed:never log_level:changed:live "
                     "tenants[a.example.com].client_id:changed:restart "
                     "tenants[b.example.com]:removed:restart "
                     "tenants[d.example.com]:added:restart "
                     "outputs[f].filter.min_severity:changed:restart "
                     "outputs[h]:added:restart ");
    ck_assert_uint_eq(mf_config_diff(&mf_config_sec, b, b, on_change, &log), 0);
    mf_config_destroy(b);
    mf_config_destroy(a);
}
END_TEST

/* Every key of the composed table, generated from the table: each is set
 * to another value its own table accepts, and the diff names exactly that
 * key path with the table's reload class (the identity key of a list
 * element: the element removed and added). A new key is covered without a
 * new test; a kind (output type) missing from the base configuration fails
 * the coverage check. */
static const char *const str_candidates[] = {
    "changed-1", "changed.example.com", "changed.example.com:1234",
    "https://changed.example.com", "http://changed.example.com:3128",
    "CHANGED_ENV", "/tmp/changed", NULL,
};

static const char *
valid_str(const struct mf_option *o, const char *cur)
{
    char why[160];
    int v;

    for (size_t i = 0; str_candidates[i]; i++) {
        const char *c = str_candidates[i];

        if ((cur && !strcmp(c, cur)) ||
            (o->check && o->check(c, why, sizeof(why)) != 0) ||
            (o->choices && mf_enum_parse(o->choices, c, &v) != 0))
            continue;
        return c;
    }
    for (const struct mf_enum *e = o->choices; e && e->name; e++)
        if (!cur || strcmp(e->name, cur))
            return e->name;
    return NULL;
}

/* Change the field of o in base to another valid value. */
static void
mutate(const struct mf_option *o, void *base, struct mf_arena *a)
{
    char *f = (char *)base + o->offset;

    switch (o->type) {
    case MF_OPT_STR: {
        const char *cur, *nv;

        memcpy(&cur, f, sizeof(cur));
        nv = valid_str(o, cur);
        ck_assert_msg(nv != NULL, "%s: no valid value to try", o->name);
        memcpy(f, &nv, sizeof(nv));
        return;
    }
    case MF_OPT_INT:
    case MF_OPT_DURATION:
    case MF_OPT_SIZE: {
        int64_t v;

        memcpy(&v, f, sizeof(v));
        v = (o->min || o->max) ? (v != o->max ? o->max : o->min) : v + 1;
        memcpy(f, &v, sizeof(v));
        return;
    }
    case MF_OPT_BOOL:
        *(bool *)f = !*(bool *)f;
        return;
    case MF_OPT_ENUM: {
        int v, w;

        memcpy(&v, f, sizeof(v));
        ck_assert_int_eq(mf_enum_parse(o->choices, valid_str(o, mf_enum_name(o->choices, v)),
                                       &w), 0);
        memcpy(f, &w, sizeof(w));
        return;
    }
    case MF_OPT_STRLIST: {
        struct mf_strlist sl;
        const char **v = mf_arena_calloc(a, sizeof(*v));

        memcpy(&sl, f, sizeof(sl));
        v[0] = valid_str(o, sl.n == 1 ? sl.v[0] : NULL);
        ck_assert_ptr_nonnull(v[0]);
        sl.v = v;
        sl.n = 1;
        memcpy(f, &sl, sizeof(sl));
        return;
    }
    case MF_OPT_PREFIX: {
        struct mf_kvlist kl;
        struct mf_kv *v;

        memcpy(&kl, f, sizeof(kl));
        v = mf_arena_calloc(a, (kl.n + 1) * sizeof(*v));
        if (kl.n)
            memcpy(v, kl.v, kl.n * sizeof(*v));
        v[kl.n].key = "changed.key";
        v[kl.n].value = "/tmp/changed";
        kl.v = v;
        kl.n++;
        memcpy(f, &kl, sizeof(kl));
        return;
    }
    default:
        ck_abort_msg("%s: not a value", o->name);
    }
}

static size_t
field_size(const struct mf_option *o)
{
    switch (o->type) {
    case MF_OPT_BOOL: return sizeof(bool);
    case MF_OPT_ENUM: return sizeof(int);
    case MF_OPT_STRLIST: return sizeof(struct mf_strlist);
    case MF_OPT_PREFIX: return sizeof(struct mf_kvlist);
    default: return sizeof(int64_t);   /* and pointers */
    }
}

struct every {
    const struct mf_config *a;
    struct mf_config *b;
    size_t keys;
    const struct mf_option *seen[512];
    size_t nseen;
};

static void every_sec(struct every *ev, const struct mf_optsec *sec,
                      void *eb, const char *path);

static void
every_option(struct every *ev, const struct mf_optsec *sec,
             const struct mf_option *o, void *eb, const char *path)
{
    char kp[300], want[400], saved[32];
    struct diff_log log = {0};
    size_t n;

    snprintf(kp, sizeof(kp), "%s%s%s", path, path[0] ? "." : "", o->name);
    if (o->type == MF_OPT_SECTION) {
        every_sec(ev, o->sub, (char *)eb + o->offset, kp);
        return;
    }
    if (o->type == MF_OPT_LIST) {
        struct mf_anylist l;

        memcpy(&l, (char *)eb + o->offset, sizeof(l));
        for (size_t i = 0; i < l.n; i++) {
            const char *id;
            char ep[400];

            memcpy(&id, (const char *)l.v + i * o->sub->size +
                            mf_opt_find(o->sub, o->sub->key)->offset, sizeof(id));
            snprintf(ep, sizeof(ep), "%s[%s]", kp, id);
            every_sec(ev, o->sub, (char *)l.v + i * o->sub->size, ep);
        }
        return;
    }
    memcpy(saved, (char *)eb + o->offset, field_size(o));
    mutate(o, eb, &ev->b->arena);
    n = mf_config_diff(&mf_config_sec, ev->a, ev->b, on_change, &log);
    if (sec->key && !strcmp(o->name, sec->key)) {
        /* the identity changed: another element */
        ck_assert_msg(n == 2 && strstr(log.text, ":removed:") &&
                      strstr(log.text, ":added:"), "%s: %s", kp, log.text);
    } else {
        snprintf(want, sizeof(want), "%s:changed:%s ", kp, reload_names[o->reload]);
        ck_assert_msg(n == 1 && !strcmp(log.text, want), "%s: want '%s', got '%s'",
                      kp, want, log.text);
        ck_assert_msg(log.hidden == ((o->flags & (MF_OPT_SECRET | MF_OPT_NOECHO)) != 0),
                      "%s: a secret or NOECHO value must never be shown", kp);
    }
    memcpy((char *)eb + o->offset, saved, field_size(o));
    ck_assert_uint_eq(mf_config_diff(&mf_config_sec, ev->a, ev->b, NULL, NULL), 0);
    ev->keys++;
    for (n = 0; n < ev->nseen && ev->seen[n] != o; n++)
        ;
    if (n == ev->nseen && ev->nseen < 512)
        ev->seen[ev->nseen++] = o;
}

static void
every_sec(struct every *ev, const struct mf_optsec *sec, void *eb, const char *path)
{
    const struct mf_optsec *kind = mf_opt_kind_sec(sec, eb);

    for (const struct mf_option *o = sec->opts; o->name; o++)
        every_option(ev, sec, o, eb, path);
    for (const struct mf_option *o = kind ? kind->opts : NULL; o && o->name; o++)
        every_option(ev, kind, o, (void *)mf_opt_kind(sec, eb), path);
}

/* Every leaf option reachable from sec (kinds included). */
static size_t
count_options(const struct mf_optsec *sec)
{
    size_t n = 0;

    for (const struct mf_option *o = sec->opts; o->name; o++)
        n += o->type == MF_OPT_SECTION || o->type == MF_OPT_LIST ? count_options(o->sub)
                                                                 : 1;
    for (size_t k = 0; sec->kinds && k < sec->nkinds; k++)
        n += sec->kinds[k] ? count_options(sec->kinds[k]) : 0;
    return n;
}

START_TEST(mcdf_every_key)
{
    static const char *text =
        "tenants:\n"
        "  - {id: t.example.com, client_id: app, client_secret_env: S}\n"
        "outputs:\n"
        "  - {name: f, type: file, path: /a}\n"
        "  - {name: k, type: kafka, brokers: 'b:9092', topic: t}\n"
        "  - {name: s, type: syslog, address: 's:514'}\n";
    struct every ev = {0};
    struct mf_err err;
    struct mf_config *a = load(text, 0, &err);

    ck_assert_msg(a != NULL, "%s", err.all);
    ev.a = a;
    ev.b = load(text, 0, &err);
    ck_assert_ptr_nonnull(ev.b);
    every_sec(&ev, &mf_config_sec, ev.b, "");
    ck_assert_uint_eq(ev.nseen, count_options(&mf_config_sec));
    ck_assert_uint_ge(ev.keys, ev.nseen);
    mf_config_destroy(ev.b);
    mf_config_destroy(a);
}
END_TEST

/* ---- mf_output_check_tags ---------------------------------------------- */

static bool
known_tag(const char *id, void *ud)
{
    return mf_tagdb_find(ud, id) != NULL;
}

START_TEST(mcct_unknown_tags)
{
    struct mf_err terr;
    struct mf_tagdb *db = mf_tagdb_load_builtin(&terr);
    struct mf_err err;
    struct mf_config *c;

    ck_assert_msg(db != NULL, "%s", terr.msg);
    c = load(T0 O0 "    filter:\n"
                   "      tags: [identity.mfa_disabled,\n"
                   "             identity.no_such_tag]\n",
             0, &err);
    ck_assert_msg(c != NULL, "%s", err.all);
    mf_err_reset(&err);
    ck_assert_uint_eq(mf_output_check_tags(&c->outputs, c->file, known_tag, db, &err), 1);
    ck_assert_str_eq(err.msg, "m365fwd.yaml:10: outputs[0].filter.tags: "
                              "unknown tag 'identity.no_such_tag'");
    mf_config_destroy(c);
    mf_tagdb_destroy(db);
}
END_TEST

/* ---- mf_config_doc_markdown -------------------------------------------- */

START_TEST(mcdm_in_sync)
{
    const char *src = getenv("MF_SOURCE_ROOT");
    char path[1024];
    struct mf_buf b;
    char *doc;
    size_t len;

    ck_assert_msg(src != NULL, "MF_SOURCE_ROOT is not set");
    snprintf(path, sizeof(path), "%s/docs/configuration.md", src);
    doc = mf_test_slurp(path, &len);
    ck_assert_msg(doc != NULL, "%s is missing", path);
    mf_buf_init(&b, 0);
    mf_config_doc_markdown(&b);
    ck_assert_msg(len == b.len && memcmp(doc, b.data, len) == 0,
                  "docs/configuration.md is out of date: run "
                  "'ninja -C <builddir> config-doc'");
    mf_buf_fini(&b);
    free(doc);
}
END_TEST

START_TEST(mcdm_content)
{
    static const char *const want[] = {
        "| `poll_interval` | duration, 1s to 1d | `60s` | restart |",
        "| `client_secret_env` | string | not set | restart | *(secret source)*",
        "| `state_dir` | path | `/var/lib/m365fwd` | never |",
        "| `log_level` | one of `error`, `warn`, `info`, `debug` | `info` | live |",
        "| `listen` | string | `127.0.0.1:9465` | live |",
        "| `tags_file` | path | the built-in catalogue | restart |",
        "| `cloud` | one of `commercial`, `gcc`, `gcc-high`, `dod` | "
        "`commercial` |",
        "### `tenants[]`",
        "#### `outputs[].filter`",
        "### `outputs[]` with `type: kafka`",
        "| `brokers` | string | **required** | restart |",
        "| `flush_timeout` | duration, 0s to 10m | `10s` | restart |",
        "| `rdkafka`, `rdkafka.*` | mapping of strings |",
        "| `dod` | `https://login.microsoftonline.us` | "
        "`https://manage.protection.apps.mil` |",
        "| `{area}` | yes | yes |",
    };
    struct mf_buf b;
    size_t i;

    mf_buf_init(&b, 0);
    mf_config_doc_markdown(&b);
    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(strstr(b.data, want[i]) != NULL, "missing: %s", want[i]);
    mf_buf_fini(&b);
}
END_TEST

static Suite *
config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc;

    tc = tcase_create("mf_config_load()");
    tcase_add_test(tc, mcl_defaults);
    tcase_add_test(tc, mcl_full_values);
    tcase_add_loop_test(tc, mcl_cloud_hosts, 0, 4);
    tcase_add_loop_test(tc, mcl_invalid, 0, sizeof(bad) / sizeof(bad[0]));
    tcase_add_loop_test(tc, mcl_invalid_files, 0,
                        sizeof(bad_files) / sizeof(bad_files[0]));
    tcase_add_test(tc, mcl_require_tenants);
    tcase_add_test(tc, mcl_null_is_default);
    tcase_add_test(tc, mcl_file_errors);
    tcase_add_test(tc, mcl_relative_paths);
    tcase_add_test(tc, mcl_example_loads);
    tcase_add_test(tc, mcl_vocabularies_match);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_secret_load()");
    tcase_add_test(tc, mcls_file_ok);
    tcase_add_test(tc, mcls_file_refused);
    tcase_add_test(tc, mcls_env);
    tcase_add_test(tc, mcls_tenant_helpers);
    tcase_add_test(tc, mcls_never_in_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_config_dump_yaml()");
    tcase_add_test(tc, mcd_round_trip);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_config_diff()");
    tcase_add_test(tc, mcdf_changes);
    tcase_add_test(tc, mcdf_every_key);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_config_check_tags()");
    tcase_add_test(tc, mcct_unknown_tags);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_config_doc_markdown()");
    tcase_add_test(tc, mcdm_in_sync);
    tcase_add_test(tc, mcdm_content);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return mf_test_run(config_suite());
}
