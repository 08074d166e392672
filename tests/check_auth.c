/* check_auth.c - Entra ID client-credentials tokens against the emulator. */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "emu.h"
#include "json.h"
#include "log.h"
#include "test_common.h"

#define TID      "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
#define TID_NR   "2b1c2d3e-4f50-6172-8394-a5b6c7d8e9f2"
#define CID      "11111111-2222-3333-4444-555555555555"
#define CID_EXP  "33333333-2222-3333-4444-555555555555"
#define SECRET   "s3&c=r+t%/ x"
#define WRONG    "not-the-secret-Zq9"

static const char scenario[] =
    "{\"seed\": 3,\n"
    " \"clients\": [\n"
    "  {\"client_id\": \"" CID "\", \"secret\": \"s3&c=r+t%/ x\",\n"
    "   \"certificates\": [\"@client_cert\"]},\n"
    "  {\"client_id\": \"" CID_EXP "\", \"secret\": \"old\",\n"
    "   \"secret_expired\": true}],\n"
    " \"tenants\": [\n"
    "  {\"id\": \"" TID "\", \"domain\": \"contoso.onmicrosoft.com\"},\n"
    "  {\"id\": \"" TID_NR "\", \"clients\": [{\"client_id\": \"" CID "\",\n"
    "    \"secret\": \"s3&c=r+t%/ x\", \"roles\": []}]}\n"
    " ]}\n";

static struct mf_emu emu;
static char dir[256];
static char secret_file[320], wrong_file[320], expired_file[320];

/* ---- helpers ------------------------------------------------------------ */

static int64_t
now_ms(void)
{
    return (int64_t)time(NULL) * 1000;
}

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    chmod(path, 0600);
}

static struct mf_tenant_conf
tenant(const char *tid, const char *cid, const char *secret_path)
{
    struct mf_tenant_conf t;

    memset(&t, 0, sizeof(t));
    t.id = tid;
    t.name = "lab";
    t.client_id = cid;
    t.client_secret_file = secret_path;
    t.auth = MF_AUTH_SECRET_FILE;
    t.login_endpoint = emu.base;
    t.api_endpoint = emu.base;
    t.ca_file = mf_emu_certs()->ca;
    t.enabled = true;
    return t;
}

static struct mf_tenant_conf
cert_tenant(void)
{
    struct mf_tenant_conf t = tenant(TID, CID, NULL);

    t.client_secret_file = NULL;
    t.certificate_file = mf_emu_certs()->client_crt;
    t.private_key_file = mf_emu_certs()->client_key;
    t.auth = MF_AUTH_CERTIFICATE;
    return t;
}

/* A member of the emulator's statistics: section "counters" or
 * "requests" (by route and status), one entry, or with name NULL the sum
 * of the section. */
static int64_t
emu_stat(const char *section, const char *name)
{
    struct mf_buf b;
    struct mf_arena a;
    const struct mf_jval *sec;
    int64_t v, sum = 0;

    mf_buf_init(&b, 0);
    ck_assert_int_eq(mf_emu_ctl(&emu, "GET", "/_control/stats", NULL, &b), 200);
    mf_arena_init(&a, 0);
    sec = mf_jobj_get(mf_json_parse(&a, b.data, b.len, NULL, NULL, NULL), section);
    ck_assert(mf_jis_obj(sec));
    for (size_t i = 0; i < sec->len; i++)
        if ((!name || strcmp(sec->u.mem[i].key, name) == 0) &&
            mf_jget_int(sec->u.mem[i].val, &v) == 0)
            sum += v;
    mf_arena_fini(&a);
    mf_buf_fini(&b);
    return sum;
}

static int64_t
counter(const char *name)
{
    return emu_stat("counters", name);
}

/* Every log line, for the secret scan. */
static struct mf_buf logged;

static void
sink(enum mf_log_level lvl, const char *msg, void *ud)
{
    mf_buf_appends(&logged, msg);
    mf_buf_appendc(&logged, '\n');
}

static void
setup(void)
{
    mf_buf_init(&logged, 0);
    mf_log_set_sink(sink, NULL);
    mf_log_set_level(MF_LOG_DEBUG);
}

static void
teardown(void)
{
    mf_log_set_sink(NULL, NULL);
    mf_buf_fini(&logged);
}

/* ---- mf_auth_get -------------------------------------------------------- */

START_TEST(ag_v2_secret)
{
    struct mf_tenant_conf t = tenant(TID, CID, secret_file);
    struct mf_auth *a = mf_auth_new(&t, NULL);
    struct mf_http *h = mf_http_new();
    int64_t now = now_ms();
    const char *tok = mf_auth_get(a, h, now);

    ck_assert_msg(tok != NULL, "%s", mf_auth_last_error(a));
    ck_assert_int_eq(mf_auth_last_status(a), MF_OK);
    ck_assert_str_eq(mf_auth_last_error(a), "");
    ck_assert_int_eq(mf_auth_expires_ms(a), now + 3599 * 1000);
    ck_assert_str_eq(mf_auth_tid(a), TID);
    ck_assert_ptr_nonnull(strstr(mf_auth_token_url(a), "/oauth2/v2.0/token"));
    mf_auth_destroy(a);
    mf_http_destroy(h);
}
END_TEST

START_TEST(ag_v1_secret_string_expires_in)
{
    struct mf_tenant_conf t = tenant("contoso.onmicrosoft.com", CID,
                                     secret_file);
    struct mf_auth_opts o = {.v1 = true};
    struct mf_auth *a = mf_auth_new(&t, &o);
    struct mf_http *h = mf_http_new();
    int64_t now = now_ms();

    ck_assert_msg(mf_auth_get(a, h, now) != NULL, "%s", mf_auth_last_error(a));
    /* v1 sends "expires_in": "3599" as a string */
    ck_assert_int_eq(mf_auth_expires_ms(a), now + 3599 * 1000);
    ck_assert_str_eq(mf_auth_tid(a), TID);
    ck_assert_ptr_null(strstr(mf_auth_token_url(a), "v2.0"));
    mf_auth_destroy(a);
    mf_http_destroy(h);
}
END_TEST

START_TEST(ag_secret_from_env)
{
    struct mf_tenant_conf t = tenant(TID, CID, NULL);
    struct mf_auth *a;
    struct mf_http *h = mf_http_new();

    setenv("MF_TEST_SECRET", SECRET, 1);
    t.client_secret_env = "MF_TEST_SECRET";
    t.auth = MF_AUTH_SECRET_ENV;
    a = mf_auth_new(&t, NULL);
    ck_assert_msg(mf_auth_get(a, h, now_ms()) != NULL, "%s",
                  mf_auth_last_error(a));
    mf_auth_destroy(a);
    mf_http_destroy(h);
}
END_TEST

static void
cert_ok(bool pss, bool v1, const char *alg_counter)
{
    struct mf_tenant_conf t = cert_tenant();
    struct mf_auth_opts o = {.pss = pss, .v1 = v1};
    struct mf_auth *a = mf_auth_new(&t, &o);
    struct mf_http *h = mf_http_new();
    int64_t before = counter(alg_counter), x5t = counter("assertion_ok:x5t"),
            x5t256 = counter("assertion_ok:x5t#S256");

    ck_assert_msg(mf_auth_get(a, h, now_ms()) != NULL, "%s",
                  mf_auth_last_error(a));
    ck_assert_int_eq(counter(alg_counter), before + 1);
    /* one of the thumbprints was used to find the certificate */
    ck_assert_int_eq(counter("assertion_ok:x5t") +
                     counter("assertion_ok:x5t#S256"), x5t + x5t256 + 1);
    /* a second assertion has a fresh jti (replays are refused) */
    mf_auth_invalidate(a);
    ck_assert_msg(mf_auth_get(a, h, now_ms()) != NULL, "%s",
                  mf_auth_last_error(a));
    ck_assert_int_eq(counter(alg_counter), before + 2);
    mf_auth_destroy(a);
    mf_http_destroy(h);
}

START_TEST(ag_cert_rs256)
{
    cert_ok(false, false, "assertion_ok:RS256");
}
END_TEST

START_TEST(ag_cert_ps256)
{
    cert_ok(true, false, "assertion_ok:PS256");
}
END_TEST

START_TEST(ag_cert_rs256_v1)
{
    cert_ok(false, true, "assertion_ok:RS256");
}
END_TEST

START_TEST(ag_cert_not_registered)
{
    struct mf_tenant_conf t = cert_tenant();
    struct mf_auth *a;
    struct mf_http *h = mf_http_new();

    t.certificate_file = mf_emu_certs()->client2_crt;
    t.private_key_file = mf_emu_certs()->client2_key;
    a = mf_auth_new(&t, NULL);
    ck_assert_ptr_null(mf_auth_get(a, h, now_ms()));
    ck_assert_int_eq(mf_auth_last_status(a), MF_FATAL);
    ck_assert_ptr_nonnull(strstr(mf_auth_last_error(a), "AADSTS700027"));
    mf_auth_destroy(a);
    mf_http_destroy(h);
}
END_TEST

/* A P-256 key in PEM at path (a readable private key that is not RSA). */
static void
write_ec_key(const char *path)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(k);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    ck_assert_int_eq(fclose(f), 0);
    chmod(path, 0600);
    EVP_PKEY_free(k);
}

/* A certificate or key that cannot be used fails before any request, as a
 * configuration error naming the file's problem. */
START_TEST(ag_cert_local_errors)
{
    char not_pem[320], ec_key[320];
    const struct {
        const char *crt, *key, *want;
    } cases[] = {
        {"/nonexistent/client.crt", NULL, "cannot open certificate_file"},
        {not_pem, NULL, "is not a PEM certificate"},
        {NULL, not_pem, "is not a readable PEM private key"},
        {NULL, ec_key, "the private key is not RSA"},
        {NULL, "/nonexistent/client.key", "private_key_file"},
    };
    int64_t requests = emu_stat("requests", NULL);

    snprintf(not_pem, sizeof(not_pem), "%s/not-pem", dir);
    snprintf(ec_key, sizeof(ec_key), "%s/ec.key", dir);
    write_file(not_pem, "neither a certificate nor a key\n");
    write_ec_key(ec_key);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mf_tenant_conf t = cert_tenant();
        struct mf_http *h = mf_http_new();
        struct mf_auth *a;

        if (cases[i].crt)
            t.certificate_file = cases[i].crt;
        if (cases[i].key)
            t.private_key_file = cases[i].key;
        a = mf_auth_new(&t, NULL);
        ck_assert_ptr_null(mf_auth_get(a, h, now_ms()));
        ck_assert_int_eq(mf_auth_last_status(a), MF_FATAL);
        ck_assert_msg(strstr(mf_auth_last_error(a), cases[i].want) != NULL,
                      "case %zu: %s", i, mf_auth_last_error(a));
        mf_auth_destroy(a);
        mf_http_destroy(h);
    }
    ck_assert_int_eq(emu_stat("requests", NULL), requests);   /* no request went out */
}
END_TEST

START_TEST(ag_wrong_secret_fatal_without_secret)
{
    struct mf_tenant_conf t = tenant(TID, CID, wrong_file);
    struct mf_auth *a = mf_auth_new(&t, NULL);
    struct mf_http *h = mf_http_new();
    const struct mf_http_req *r;

    ck_assert_ptr_null(mf_auth_get(a, h, now_ms()));
    ck_assert_int_eq(mf_auth_last_status(a), MF_FATAL);
    ck_assert_ptr_nonnull(strstr(mf_auth_last_error(a), "AADSTS7000215"));
    ck_assert_ptr_null(strstr(mf_auth_last_error(a), WRONG));
    r = mf_auth_last_response(a);
    ck_assert_int_eq(r->status, 401);
    ck_assert_str_eq(r->af_code, "AADSTS7000215");
    ck_assert_ptr_null(r->body);
    ck_assert_ptr_nonnull(logged.data);
    ck_assert_ptr_null(strstr(logged.data, WRONG));
    ck_assert_ptr_nonnull(strstr(logged.data, "AADSTS7000215"));
    mf_auth_destroy(a);
    mf_http_destroy(h);
}
END_TEST

START_TEST(ag_expired_secret)
{
    struct mf_tenant_conf t = tenant(TID, CID_EXP, expired_file);
    struct mf_auth *a = mf_auth_new(&t, NULL);
    struct mf_http *h = mf_http_new();

    ck_assert_ptr_null(mf_auth_get(a, h, now_ms()));
    ck_assert_int_eq(mf_auth_last_status(a), MF_FATAL);
    ck_assert_ptr_nonnull(strstr(mf_auth_last_error(a), "AADSTS7000222"));
    mf_auth_destroy(a);
    mf_http_destroy(h);
}
END_TEST

START_TEST(ag_unknown_tenant)
{
    struct mf_tenant_conf t = tenant("nowhere.onmicrosoft.com", CID,
                                     secret_file);
    struct mf_auth *a = mf_auth_new(&t, NULL);
    struct mf_http *h = mf_http_new();

    ck_assert_ptr_null(mf_auth_get(a, h, now_ms()));
    ck_assert_int_eq(mf_auth_last_status(a), MF_FATAL);
    ck_assert_ptr_nonnull(strstr(mf_auth_last_error(a), "AADSTS90002"));
    mf_auth_destroy(a);
    mf_http_destroy(h);
}
END_TEST

START_TEST(ag_network_error_retry)
{
    struct mf_tenant_conf t = tenant(TID, CID, secret_file);
    struct mf_auth *a;
    struct mf_http *h = mf_http_new();

    t.login_endpoint = "https://127.0.0.1:1";
    a = mf_auth_new(&t, NULL);
    ck_assert_ptr_null(mf_auth_get(a, h, now_ms()));
    ck_assert_int_eq(mf_auth_last_status(a), MF_RETRY);
    ck_assert_str_ne(mf_auth_last_error(a), "");
    mf_auth_destroy(a);
    mf_http_destroy(h);
}
END_TEST

static void
token_fault(const char *json)
{
    char body[512];

    snprintf(body, sizeof(body), "{\"faults\": [%s], \"replace\": true}", json);
    ck_assert_int_eq(mf_emu_ctl(&emu, "POST", "/_control/faults", body, NULL), 200);
}

/* A fresh mf_auth whose first token request met a token_error fault of
 * this kind (no token). */
static struct mf_auth *
after_token_error(const struct mf_tenant_conf *t, struct mf_http *h, const char *kind)
{
    struct mf_auth *a = mf_auth_new(t, NULL);
    char f[256];

    snprintf(f, sizeof(f), "{\"match\": {\"route\": \"token\"}, \"action\": "
             "\"token_error\", \"kind\": \"%s\", \"count\": 1}", kind);
    token_fault(f);
    ck_assert_ptr_null(mf_auth_get(a, h, now_ms()));
    ck_assert_ptr_nonnull(strstr(mf_auth_last_error(a), "AADSTS"));
    return a;
}

/* Entra ID incidents are transient (issue 11 defect 1), whatever the body
 * says: 5xx, temporarily_unavailable / server_error, throttling. */
START_TEST(ag_transient_token_errors_retry)
{
    static const char *const kinds[] = {"temporarily_unavailable", "server_error",
                                        "throttled"};
    struct mf_tenant_conf t = tenant(TID, CID, secret_file);
    struct mf_http *h = mf_http_new();
    struct mf_auth *a;

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        a = after_token_error(&t, h, kinds[i]);
        ck_assert_msg(mf_auth_last_status(a) == MF_RETRY, "%s: %s", kinds[i],
                      mf_auth_last_error(a));
        /* the next attempt gets a token */
        ck_assert_ptr_nonnull(mf_auth_get(a, h, now_ms()));
        mf_auth_destroy(a);
    }
    /* a bare 503 without a body too */
    token_fault("{\"match\": {\"route\": \"token\"}, \"action\": \"status\","
                " \"status\": 503, \"body\": \"\", \"count\": 1}");
    a = mf_auth_new(&t, NULL);
    ck_assert_ptr_null(mf_auth_get(a, h, now_ms()));
    ck_assert_int_eq(mf_auth_last_status(a), MF_RETRY);
    mf_auth_destroy(a);
    mf_http_destroy(h);
}
END_TEST

/* Configuration errors are reported as such (the caller retries them at
 * a slow cadence). */
START_TEST(ag_config_token_errors)
{
    static const char *const kinds[] = {"bad_secret", "unknown_app", "unknown_tenant",
                                        "no_consent"};
    struct mf_tenant_conf t = tenant(TID, CID, secret_file);
    struct mf_http *h = mf_http_new();

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        struct mf_auth *a = after_token_error(&t, h, kinds[i]);

        ck_assert_msg(mf_auth_last_status(a) == MF_FATAL, "%s", kinds[i]);
        ck_assert_ptr_nonnull(strstr(mf_auth_last_error(a), "configuration error"));
        mf_auth_destroy(a);
    }
    mf_http_destroy(h);
}
END_TEST

/* A token endpoint that never answers: given up after request_timeout of
 * no progress, not after a fixed minute. */
START_TEST(ag_request_timeout_honoured)
{
    struct mf_tenant_conf t = tenant(TID, CID, secret_file);
    struct mf_auth_opts o = {.request_timeout_ms = 1000, .transfer_timeout_ms = 30000};
    struct mf_auth *a = mf_auth_new(&t, &o);
    struct mf_http *h = mf_http_new();
    time_t t0 = time(NULL);

    token_fault("{\"match\": {\"route\": \"token\"}, \"action\": \"stall\","
                " \"stall_max\": \"60s\", \"count\": 1}");
    ck_assert_ptr_null(mf_auth_get(a, h, now_ms()));
    ck_assert_int_eq(mf_auth_last_status(a), MF_RETRY);
    ck_assert_int_lt(time(NULL) - t0, 20);
    mf_auth_destroy(a);
    mf_http_destroy(h);
}
END_TEST

START_TEST(ag_missing_secret_file)
{
    struct mf_tenant_conf t = tenant(TID, CID, "/nonexistent/secret");
    struct mf_auth *a = mf_auth_new(&t, NULL);
    struct mf_http *h = mf_http_new();

    ck_assert_ptr_null(mf_auth_get(a, h, now_ms()));
    ck_assert_int_eq(mf_auth_last_status(a), MF_FATAL);
    ck_assert_ptr_nonnull(strstr(mf_auth_last_error(a), "secret"));
    mf_auth_destroy(a);
    mf_http_destroy(h);
}
END_TEST

/* No log line and no error string holds the secret or the access token. */
START_TEST(ag_no_secret_or_token_in_logs)
{
    struct mf_tenant_conf t = tenant(TID, CID, secret_file);
    struct mf_tenant_conf bad = tenant(TID, CID, wrong_file);
    struct mf_auth *a = mf_auth_new(&t, NULL), *b = mf_auth_new(&bad, NULL);
    struct mf_http *h = mf_http_new();
    const char *tok;
    char *copy;

    tok = mf_auth_get(a, h, now_ms());
    ck_assert_ptr_nonnull(tok);
    copy = strdup(tok);
    ck_assert_ptr_null(mf_auth_get(b, h, now_ms()));
    mf_auth_invalidate(a);
    ck_assert_ptr_nonnull(mf_auth_get(a, h, now_ms()));
    mf_buf_appends(&logged, mf_auth_last_error(a));
    mf_buf_appends(&logged, mf_auth_last_error(b));
    mf_buf_appends(&logged, mf_auth_last_response(b)->error);
    mf_buf_appends(&logged, mf_auth_last_response(b)->af_message);
    ck_assert_ptr_nonnull(logged.data);
    ck_assert_ptr_null(strstr(logged.data, SECRET));
    ck_assert_ptr_null(strstr(logged.data, "s3%26c"));
    ck_assert_ptr_null(strstr(logged.data, WRONG));
    ck_assert_ptr_null(strstr(logged.data, copy));
    /* the JWT signature part alone must not leak either */
    ck_assert_ptr_null(strstr(logged.data, strrchr(copy, '.') + 1));
    free(copy);
    mf_auth_destroy(a);
    mf_auth_destroy(b);
    mf_http_destroy(h);
}
END_TEST

/* ---- mf_auth_token (cache and refresh) ---------------------------------- */

START_TEST(at_cached_then_refresh_before_expiry)
{
    struct mf_tenant_conf t = tenant(TID, CID, secret_file);
    struct mf_auth *a = mf_auth_new(&t, NULL);
    struct mf_http *h = mf_http_new();
    int64_t now = now_ms(), issued;
    const char *tok;

    ck_assert_ptr_null(mf_auth_token(a, now));
    tok = mf_auth_get(a, h, now);
    ck_assert_ptr_nonnull(tok);
    issued = counter("tokens_issued");
    /* cached: no new request */
    ck_assert_ptr_eq(mf_auth_get(a, h, now + 60000), tok);
    ck_assert_ptr_eq(mf_auth_token(a, now + 2800 * 1000), tok);
    ck_assert_int_eq(counter("tokens_issued"), issued);
    /* 3599 s: refreshed at 80% (2879 s), well before expiry */
    ck_assert_ptr_null(mf_auth_token(a, now + 2880 * 1000));
    ck_assert_ptr_nonnull(mf_auth_get(a, h, now + 2880 * 1000));
    ck_assert_int_eq(counter("tokens_issued"), issued + 1);
    ck_assert_int_eq(mf_auth_expires_ms(a), now + (2880 + 3599) * 1000);
    mf_auth_destroy(a);
    mf_http_destroy(h);
}
END_TEST

START_TEST(at_short_lifetime_five_minutes_before)
{
    struct mf_tenant_conf t = tenant(TID, CID, secret_file);
    struct mf_auth *a = mf_auth_new(&t, NULL);
    struct mf_http *h = mf_http_new();
    int64_t now = now_ms();

    /* 100 min: 80% = 80 min, 5 min before = 95 min -> 80 min */
    ck_assert_int_eq(mf_emu_ctl(&emu, "POST", "/_control/config",
                                "{\"token_lifetime\": 6000}", NULL), 200);
    ck_assert_ptr_nonnull(mf_auth_get(a, h, now));
    ck_assert_ptr_nonnull(mf_auth_token(a, now + 4799 * 1000));
    ck_assert_ptr_null(mf_auth_token(a, now + 4800 * 1000));
    mf_auth_invalidate(a);
    /* 20 min: 80% = 16 min, 5 min before = 15 min -> 15 min */
    ck_assert_int_eq(mf_emu_ctl(&emu, "POST", "/_control/config",
                                "{\"token_lifetime\": 1200}", NULL), 200);
    ck_assert_ptr_nonnull(mf_auth_get(a, h, now));
    ck_assert_ptr_nonnull(mf_auth_token(a, now + 899 * 1000));
    ck_assert_ptr_null(mf_auth_token(a, now + 900 * 1000));
    ck_assert_int_eq(mf_emu_ctl(&emu, "POST", "/_control/config",
                                "{\"token_lifetime\": 3599}", NULL), 200);
    mf_auth_destroy(a);
    mf_http_destroy(h);
}
END_TEST

/* ---- mf_auth_invalidate ------------------------------------------------- */

START_TEST(ai_refetch_after_invalidate)
{
    struct mf_tenant_conf t = tenant(TID, CID, secret_file);
    struct mf_auth *a = mf_auth_new(&t, NULL);
    struct mf_http *h = mf_http_new();
    int64_t now = now_ms(), issued;

    ck_assert_ptr_nonnull(mf_auth_get(a, h, now));
    issued = counter("tokens_issued");
    /* the server revokes it (401 on the API), the caller invalidates */
    ck_assert_int_eq(mf_emu_ctl(&emu, "POST", "/_control/expire-tokens", "{}",
                                NULL), 200);
    mf_auth_invalidate(a);
    ck_assert_ptr_null(mf_auth_token(a, now));
    ck_assert_str_eq(mf_auth_roles(a), "");
    ck_assert_ptr_nonnull(mf_auth_get(a, h, now));
    ck_assert_int_eq(counter("tokens_issued"), issued + 1);
    mf_auth_destroy(a);
    mf_http_destroy(h);
}
END_TEST

/* ---- mf_auth_refresh (async) -------------------------------------------- */

START_TEST(ar_async)
{
    struct mf_tenant_conf t = tenant(TID, CID, secret_file);
    struct mf_auth *a = mf_auth_new(&t, NULL);
    struct mf_http *h = mf_http_new();
    int64_t now = now_ms();
    int rounds = 0;

    ck_assert_int_eq(mf_auth_refresh(a, h, now), 0);
    ck_assert(mf_auth_busy(a));
    ck_assert_int_eq(mf_auth_refresh(a, h, now), 0);   /* one in flight */
    ck_assert_int_eq(mf_http_running(h), 1);
    while (mf_auth_busy(a)) {
        mf_http_run(h, 1000);
        ck_assert_int_lt(++rounds, 60);
    }
    ck_assert_ptr_nonnull(mf_auth_token(a, now));
    mf_auth_destroy(a);
    mf_http_destroy(h);
}
END_TEST

START_TEST(ar_destroy_while_busy)
{
    struct mf_tenant_conf t = tenant(TID, CID, secret_file);
    struct mf_auth *a = mf_auth_new(&t, NULL);
    struct mf_http *h = mf_http_new();

    ck_assert_int_eq(mf_auth_refresh(a, h, now_ms()), 0);
    mf_auth_destroy(a);
    ck_assert_int_eq(mf_http_running(h), 0);
    mf_http_run(h, 10);
    mf_http_destroy(h);
}
END_TEST

/* ---- mf_auth_roles ------------------------------------------------------ */

START_TEST(aro_from_token)
{
    struct mf_tenant_conf t = tenant(TID, CID, secret_file);
    struct mf_auth *a = mf_auth_new(&t, NULL);
    struct mf_http *h = mf_http_new();

    ck_assert_str_eq(mf_auth_roles(a), "");
    ck_assert_ptr_nonnull(mf_auth_get(a, h, now_ms()));
    ck_assert_ptr_nonnull(strstr(mf_auth_roles(a), "ActivityFeed.Read"));
    ck_assert_ptr_nonnull(strstr(mf_auth_roles(a), "ActivityFeed.ReadDlp"));
    mf_auth_destroy(a);
    mf_http_destroy(h);
}
END_TEST

START_TEST(aro_none)
{
    struct mf_tenant_conf t = tenant(TID_NR, CID, secret_file);
    struct mf_auth *a = mf_auth_new(&t, NULL);
    struct mf_http *h = mf_http_new();

    ck_assert_msg(mf_auth_get(a, h, now_ms()) != NULL, "%s",
                  mf_auth_last_error(a));
    ck_assert_str_eq(mf_auth_roles(a), "");
    mf_auth_destroy(a);
    mf_http_destroy(h);
}
END_TEST

static Suite *
suite(void)
{
    Suite *s = suite_create("auth");
    TCase *tc;

    tc = tcase_create("mf_auth_get");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, ag_v2_secret);
    tcase_add_test(tc, ag_v1_secret_string_expires_in);
    tcase_add_test(tc, ag_secret_from_env);
    tcase_add_test(tc, ag_cert_rs256);
    tcase_add_test(tc, ag_cert_ps256);
    tcase_add_test(tc, ag_cert_rs256_v1);
    tcase_add_test(tc, ag_cert_not_registered);
    tcase_add_test(tc, ag_cert_local_errors);
    tcase_add_test(tc, ag_wrong_secret_fatal_without_secret);
    tcase_add_test(tc, ag_expired_secret);
    tcase_add_test(tc, ag_unknown_tenant);
    tcase_add_test(tc, ag_network_error_retry);
    tcase_add_test(tc, ag_transient_token_errors_retry);
    tcase_add_test(tc, ag_config_token_errors);
    tcase_add_test(tc, ag_request_timeout_honoured);
    tcase_add_test(tc, ag_missing_secret_file);
    tcase_add_test(tc, ag_no_secret_or_token_in_logs);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_auth_token");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, at_cached_then_refresh_before_expiry);
    tcase_add_test(tc, at_short_lifetime_five_minutes_before);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_auth_invalidate");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, ai_refetch_after_invalidate);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_auth_refresh");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, ar_async);
    tcase_add_test(tc, ar_destroy_while_busy);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_auth_roles");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, aro_from_token);
    tcase_add_test(tc, aro_none);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    char tmpl[] = "/tmp/mf-auth-XXXXXX", cmd[300];
    int rc;

    mf_emu_require();
    mf_emu_certs();
    if (!mkdtemp(tmpl)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(dir, sizeof(dir), "%s", tmpl);
    snprintf(secret_file, sizeof(secret_file), "%s/secret", dir);
    snprintf(wrong_file, sizeof(wrong_file), "%s/wrong", dir);
    snprintf(expired_file, sizeof(expired_file), "%s/expired", dir);
    write_file(secret_file, SECRET "\n");
    write_file(wrong_file, WRONG "\n");
    write_file(expired_file, "old\n");
    if (mf_emu_start(&emu, scenario, 0) != 0) {
        rc = 1;
    } else {
        rc = mf_test_run(suite());
        mf_emu_stop(&emu);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    mf_emu_cleanup();
    return rc;
}
