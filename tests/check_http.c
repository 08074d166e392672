/* check_http.c - the libcurl multi wrapper against the API emulator. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "emu.h"
#include "http.h"
#include "json.h"
#include "test_common.h"

#define TID  "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
#define TID_OFF "1b1c2d3e-4f50-6172-8394-a5b6c7d8e9f1"
#define CID  "11111111-2222-3333-4444-555555555555"

/* The secret has characters that must be form-encoded. */
static const char scenario[] =
    "{\"seed\": 7, \"page_size\": 2,\n"
    " \"clients\": [{\"client_id\": \"" CID "\",\n"
    "   \"secret\": \"s3&c=r+t%/ x\"}],\n"
    " \"tenants\": [\n"
    "  {\"id\": \"" TID "\", \"domain\": \"contoso.onmicrosoft.com\",\n"
    "   \"content\": {\"Audit.Exchange\": {\"blobs\": 7,"
    " \"records_per_blob\": 5,"
    " \"span\": \"2h\", \"end\": \"-10m\"}}},\n"
    "  {\"id\": \"" TID_OFF "\", \"audit_enabled\": false}\n"
    " ]}\n";

static struct mf_emu emu;
static char token[8192];
static char token_off[8192];   /* the audit-disabled tenant's */

/* ---- helpers ------------------------------------------------------------ */

static void
ctl(const char *method, const char *path, const char *body)
{
    long st = mf_emu_ctl(&emu, method, path, body, NULL);

    ck_assert_msg(st == 200, "control %s %s -> %ld", method, path, st);
}

static void
fault(const char *json)
{
    char body[1024];

    snprintf(body, sizeof(body), "{\"faults\": [%s], \"replace\": true}", json);
    ctl("POST", "/_control/faults", body);
}

static void
req_api(struct mf_http_req *r, const char *tid, const char *op)
{
    mf_http_req_init(r);
    snprintf(r->url, sizeof(r->url),
             "%s/api/v1.0/%s/activity/feed/%s%sPublisherIdentifier=%s",
             emu.base, tid, op, strchr(op, '?') ? "&" : "?", tid);
    r->bearer = token;
    r->ca_file = mf_emu_certs()->ca;
    r->timeout_ms = 60000;           /* generous: busy CI, sanitizers */
    r->connect_timeout_ms = 60000;
}

static void
fmt_utc(char *out, size_t n, time_t t)
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
}

static void
req_listing(struct mf_http_req *r)
{
    char op[256], s1[32], s2[32];
    time_t now = time(NULL);

    fmt_utc(s1, sizeof(s1), now - 6 * 3600);
    fmt_utc(s2, sizeof(s2), now + 600);
    snprintf(op, sizeof(op), "subscriptions/content?contentType=Audit.Exchange"
             "&startTime=%s&endTime=%s", s1, s2);
    req_api(r, TID, op);
}

/* First blob's contentUri (from a listing). */
static void
first_blob_uri(char *out, size_t n)
{
    struct mf_http_req r;
    struct mf_arena a;
    struct mf_jval *root;
    struct mf_http *h = mf_http_new();

    req_listing(&r);
    ck_assert_int_eq(mf_http_perform(h, &r), 0);
    ck_assert_int_eq(r.status, 200);
    mf_arena_init(&a, 0);
    root = mf_json_parse(&a, r.resp.data, r.resp.len, NULL, NULL, NULL);
    ck_assert(mf_jis_arr(root) && root->len > 0);
    snprintf(out, n, "%s",
             mf_jstrv(mf_jobj_get(root->u.items[0], "contentUri")));
    mf_arena_fini(&a);
    mf_http_req_fini(&r);
    mf_http_destroy(h);
}

/* Outside the tests (no ck_assert): 0 or -1 with a message. */
static int
get_token(const char *tid, char *out, size_t outsz)
{
    static const char body[] =
        "grant_type=client_credentials&client_id=" CID
        "&scope=https%3A%2F%2Fmanage.office.com%2F.default"
        "&client_secret=s3%26c%3Dr%2Bt%25%2F%20x";
    struct mf_http *h = mf_http_new();
    struct mf_http_req r;
    struct mf_arena a;
    struct mf_jval *root;
    int rc = -1;

    mf_http_req_init(&r);
    r.method = "POST";
    snprintf(r.url, sizeof(r.url), "%s/%s/oauth2/v2.0/token", emu.base, tid);
    r.body = body;
    r.body_len = strlen(body);
    r.content_type = "application/x-www-form-urlencoded";
    r.ca_file = mf_emu_certs()->ca;
    mf_http_perform(h, &r);
    mf_arena_init(&a, 0);
    root = r.resp.data ? mf_json_parse(&a, r.resp.data, r.resp.len, NULL, NULL,
                                       NULL) : NULL;
    if (r.status == 200 && mf_jis_str(mf_jobj_get(root, "access_token"))) {
        snprintf(out, outsz, "%s", mf_jstrv(mf_jobj_get(root, "access_token")));
        rc = 0;
    } else {
        fprintf(stderr, "token: status %ld %s %s %s\n", r.status, r.error,
                r.af_code, r.af_message);
    }
    mf_arena_fini(&a);
    mf_http_req_fini(&r);
    mf_http_destroy(h);
    return rc;
}

static void
setup(void)
{
    ctl("DELETE", "/_control/faults", NULL);
    ctl("POST", "/_control/config", "{\"nextpage_header\": \"NextPageUri\"}");
}

/* ---- mf_http_perform ---------------------------------------------------- */

START_TEST(hp_post_token_and_get)
{
    struct mf_http *h = mf_http_new();
    struct mf_http_req r;
    int64_t now = (int64_t)time(NULL) * 1000;
    char why[256];

    ck_assert(token[0] != '\0');
    req_api(&r, TID, "subscriptions/list");
    ck_assert_int_eq(mf_http_perform(h, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.curl_code, 0);
    ck_assert_str_eq(r.error, "");
    ck_assert_ptr_nonnull(strstr(r.resp.data, "Audit.Exchange"));
    ck_assert_int_eq(mf_http_classify(&r, why, sizeof(why)), MF_OK);
    /* Date header read (virtual clock = real clock here) */
    ck_assert(r.date_ms > now - 120000 && r.date_ms < now + 120000);
    ck_assert_int_eq(r.retry_after_s, -1);
    ck_assert_int_eq(mf_http_running(h), 0);
    mf_http_req_fini(&r);
    mf_http_destroy(h);
}
END_TEST

START_TEST(hp_post_start_af20024)
{
    struct mf_http *h = mf_http_new();
    struct mf_http_req r;
    char why[256];

    req_api(&r, TID, "subscriptions/start?contentType=Audit.Exchange");
    r.method = "POST";
    ck_assert_int_eq(mf_http_perform(h, &r), 0);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(r.af_code, "AF20024");
    ck_assert_int_eq(mf_http_classify(&r, why, sizeof(why)), MF_OK);
    mf_http_req_fini(&r);
    mf_http_destroy(h);
}
END_TEST

static int
follow_pages(const char *expect_name)
{
    struct mf_http *h = mf_http_new();
    struct mf_http_req r;
    int pages = 0;
    char next[4096];

    req_listing(&r);
    for (;;) {
        ck_assert_int_eq(mf_http_perform(h, &r), 0);
        ck_assert_msg(r.status == 200, "page %d: %ld %s", pages, r.status,
                      r.af_message);
        pages++;
        if (!r.next_page_uri)
            break;
        /* no CR/LF, no following header, lower-case params, no publisher */
        ck_assert_ptr_null(strpbrk(r.next_page_uri, "\r\n "));
        ck_assert_ptr_null(strstr(r.next_page_uri, "X-AspNet"));
        ck_assert_ptr_null(strstr(r.next_page_uri, "4.0.30319"));
        ck_assert(strncmp(r.next_page_uri, "https://", 8) == 0);
        ck_assert_ptr_nonnull(strstr(r.next_page_uri, "nextpage="));
        snprintf(next, sizeof(next), "%s&PublisherIdentifier=%s",
                 r.next_page_uri, TID);
        snprintf(r.url, sizeof(r.url), "%s", next);
        ck_assert_int_lt(pages, 50);
    }
    (void)expect_name;
    mf_http_req_fini(&r);
    mf_http_destroy(h);
    return pages;
}

START_TEST(hp_paging_header)
{
    /* 7 blobs, 2 per page -> 4 pages */
    ck_assert_int_eq(follow_pages("NextPageUri"), 4);
}
END_TEST

START_TEST(hp_paging_header_lower_case)
{
    ctl("POST", "/_control/config", "{\"nextpage_header\": \"nextpageuri\"}");
    ck_assert_int_eq(follow_pages("nextpageuri"), 4);
}
END_TEST

START_TEST(hp_max_body_truncates)
{
    struct mf_http *h = mf_http_new();
    struct mf_http_req r;
    char uri[1024];

    first_blob_uri(uri, sizeof(uri));
    req_api(&r, TID, "x");
    snprintf(r.url, sizeof(r.url), "%s?PublisherIdentifier=%s", uri, TID);
    r.max_body = 100;
    ck_assert_int_eq(mf_http_perform(h, &r), 0);
    ck_assert(r.body_truncated);
    ck_assert_int_ne(r.curl_code, 0);
    ck_assert_uint_le(r.resp.len, 100);
    ck_assert_int_eq(mf_http_classify(&r, NULL, 0), MF_DROP);
    mf_http_req_fini(&r);
    mf_http_destroy(h);
}
END_TEST

START_TEST(hp_body_to_fd)
{
    struct mf_http *h = mf_http_new();
    struct mf_http_req r;
    char uri[1024], path[] = "/tmp/mf-http-body-XXXXXX";
    int fd = mkstemp(path);
    size_t len;
    char *text;
    struct mf_arena a;
    struct mf_jval *root;

    ck_assert_int_ge(fd, 0);
    first_blob_uri(uri, sizeof(uri));
    req_api(&r, TID, "x");
    snprintf(r.url, sizeof(r.url), "%s?PublisherIdentifier=%s", uri, TID);
    r.body_fd = fd;
    ck_assert_int_eq(mf_http_perform(h, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert(!r.body_truncated);
    ck_assert_uint_eq(r.resp.len, 0);
    ck_assert_uint_gt(r.body_bytes, 100);
    close(fd);
    text = mf_test_slurp(path, &len);
    unlink(path);
    ck_assert_uint_eq(len, r.body_bytes);
    mf_arena_init(&a, 0);
    root = mf_json_parse(&a, text, len, NULL, NULL, NULL);
    ck_assert(mf_jis_arr(root));
    ck_assert_uint_eq(root->len, 5);
    mf_arena_fini(&a);
    free(text);
    mf_http_req_fini(&r);
    mf_http_destroy(h);
}
END_TEST

START_TEST(hp_error_body_with_fd_goes_to_memory)
{
    struct mf_http *h = mf_http_new();
    struct mf_http_req r;
    char path[] = "/tmp/mf-http-body-XXXXXX";
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    req_api(&r, TID, "audit/20260101000000000000000$20260101000000000000000"
            "$audit_exchange$Audit_Exchange$emea0000");
    r.body_fd = fd;
    ck_assert_int_eq(mf_http_perform(h, &r), 0);
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq(r.af_code, "AF20050");
    ck_assert_int_eq(lseek(fd, 0, SEEK_END), 0);
    close(fd);
    unlink(path);
    mf_http_req_fini(&r);
    mf_http_destroy(h);
}
END_TEST

START_TEST(hp_tls_untrusted_ca_fails)
{
    struct mf_http *h = mf_http_new();
    struct mf_http_req r;

    req_api(&r, TID, "subscriptions/list");
    r.ca_file = NULL;   /* system CAs only: the test CA is unknown */
    ck_assert_int_eq(mf_http_perform(h, &r), 0);
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_eq(r.curl_code, CURLE_PEER_FAILED_VERIFICATION);
    ck_assert_uint_eq(r.resp.len, 0);
    ck_assert_int_eq(mf_http_classify(&r, NULL, 0), MF_RETRY);
    mf_http_req_fini(&r);
    mf_http_destroy(h);
}
END_TEST

START_TEST(hp_tls_wrong_host_refused)
{
    struct mf_emu wrong;
    struct mf_http *h = mf_http_new();
    struct mf_http_req r;

    ck_assert_int_eq(mf_emu_start(&wrong, scenario, 1), 0);
    mf_http_req_init(&r);
    snprintf(r.url, sizeof(r.url), "%s/%s/oauth2/v2.0/token", wrong.base, TID);
    r.method = "POST";
    r.ca_file = mf_emu_certs()->ca;   /* trusted CA, wrong name */
    ck_assert_int_eq(mf_http_perform(h, &r), 0);
    mf_emu_stop(&wrong);
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_eq(r.curl_code, CURLE_PEER_FAILED_VERIFICATION);
    mf_http_req_fini(&r);
    mf_http_destroy(h);
}
END_TEST

START_TEST(hp_http_url_refused)
{
    struct mf_http *h = mf_http_new();
    struct mf_http_req r;

    mf_http_req_init(&r);
    snprintf(r.url, sizeof(r.url), "http://127.0.0.1:%d/x?secret=1",
             emu.api_port);
    ck_assert_int_eq(mf_http_perform(h, &r), -1);
    ck_assert_ptr_nonnull(strstr(r.error, "https"));
    ck_assert_ptr_null(strstr(r.error, "secret"));
    mf_http_destroy(h);
}
END_TEST

START_TEST(hp_connection_reset)
{
    struct mf_http *h = mf_http_new();
    struct mf_http_req r;
    char why[512];

    fault("{\"match\": {\"route\": \"list\"}, \"action\": \"reset\"}");
    req_api(&r, TID, "subscriptions/list");
    ck_assert_int_eq(mf_http_perform(h, &r), 0);
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_ne(r.curl_code, 0);
    ck_assert_str_ne(r.error, "");
    ck_assert_ptr_null(strstr(r.error, "PublisherIdentifier"));
    ck_assert_int_eq(mf_http_classify(&r, why, sizeof(why)), MF_RETRY);
    ck_assert_ptr_nonnull(strstr(why, "transport"));
    mf_http_req_fini(&r);
    mf_http_destroy(h);
}
END_TEST

START_TEST(hp_stall_times_out)
{
    struct mf_http *h = mf_http_new();
    struct mf_http_req r;

    fault("{\"match\": {\"route\": \"list\"}, \"action\": \"stall\"}");
    req_api(&r, TID, "subscriptions/list");
    r.stall_seconds = 1;
    r.timeout_ms = 3000;
    ck_assert_int_eq(mf_http_perform(h, &r), 0);
    ck_assert_int_eq(r.curl_code, CURLE_OPERATION_TIMEDOUT);
    ck_assert_int_eq(mf_http_classify(&r, NULL, 0), MF_RETRY);
    mf_http_req_fini(&r);
    mf_http_destroy(h);
}
END_TEST

/* A blob to a file, with a ceiling on the decompressed size; the fault
 * (or none) is set first. */
static void
blob_to_fd(struct mf_http *h, struct mf_http_req *r, int fd, size_t max_body,
           long stall_seconds)
{
    char uri[1024];

    first_blob_uri(uri, sizeof(uri));
    req_api(r, TID, "x");
    snprintf(r->url, sizeof(r->url), "%s?PublisherIdentifier=%s", uri, TID);
    r->body_fd = fd;
    r->max_body = max_body;
    r->stall_seconds = stall_seconds;
    ck_assert_int_eq(mf_http_perform(h, r), 0);
}

/* A blob fetched to a file with a ceiling: truncated there, never more
 * written, verdict DROP with the ceiling in the reason. */
static void
assert_capped(const char *fault_json, size_t cap)
{
    struct mf_http *h = mf_http_new();
    struct mf_http_req r;
    char path[] = "/tmp/mf-http-cap-XXXXXX", why[200], want[64];
    int fd = mkstemp(path);

    unlink(path);
    if (fault_json)
        fault(fault_json);
    blob_to_fd(h, &r, fd, cap, 0);
    ck_assert(r.body_truncated);
    ck_assert_int_le(lseek(fd, 0, SEEK_END), (off_t)cap);
    ck_assert_int_eq(mf_http_classify(&r, why, sizeof(why)), MF_DROP);
    snprintf(want, sizeof(want), "over %zu bytes", cap);
    ck_assert_ptr_nonnull(strstr(why, want));
    close(fd);
    mf_http_req_fini(&r);
    mf_http_destroy(h);
}

START_TEST(hp_fd_body_capped)
{
    assert_capped(NULL, 100);
}
END_TEST

START_TEST(hp_gzip_bomb_capped)
{
    /* 8 MiB once decompressed, a few KiB on the wire: the cap counts what
     * is written, after decompression */
    assert_capped("{\"match\": {\"route\": \"blob\"}, \"action\": \"gzip_bomb\","
                  " \"size\": 8388608, \"count\": 1}", 1 << 20);
}
END_TEST

START_TEST(hp_long_next_page)
{
    struct mf_http *h = mf_http_new();
    struct mf_http_req r;
    char f[256];

    /* 6000 bytes: kept whole and followed */
    fault("{\"match\": {\"route\": \"content\"}, \"action\": \"nextpage_long\","
          " \"length\": 6000, \"count\": 1}");
    req_listing(&r);
    ck_assert_int_eq(mf_http_perform(h, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(r.next_page_uri);
    ck_assert_uint_ge(strlen(r.next_page_uri), 6000);
    ck_assert(!r.next_page_too_long);
    snprintf(r.url, sizeof(r.url), "%s&PublisherIdentifier=%s", r.next_page_uri, TID);
    ck_assert_int_eq(mf_http_perform(h, &r), 0);
    ck_assert_int_eq(r.status, 200);
    mf_http_req_fini(&r);
    /* beyond what a request can carry: flagged, never "no next page" */
    snprintf(f, sizeof(f), "{\"match\": {\"route\": \"content\"}, \"action\": "
             "\"nextpage_long\", \"length\": %d, \"count\": 1}", MF_HTTP_URL_MAX + 100);
    fault(f);
    req_listing(&r);
    ck_assert_int_eq(mf_http_perform(h, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_null(r.next_page_uri);
    ck_assert(r.next_page_too_long);
    mf_http_req_fini(&r);
    mf_http_destroy(h);
}
END_TEST

START_TEST(hp_slow_progress_is_no_stall)
{
    struct mf_http *h = mf_http_new();
    struct mf_http_req r;
    char path[] = "/tmp/mf-http-drip-XXXXXX";
    int fd = mkstemp(path);

    unlink(path);
    /* a body that keeps coming for longer than the no-progress limit */
    fault("{\"match\": {\"route\": \"blob\"}, \"action\": \"drip\","
          " \"chunk\": 400, \"interval\": \"300ms\", \"count\": 1}");
    blob_to_fd(h, &r, fd, 0, 1);
    ck_assert_msg(r.curl_code == 0, "%s", r.error);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_gt(r.body_bytes, 2000);
    close(fd);
    mf_http_req_fini(&r);
    mf_http_destroy(h);
}
END_TEST

START_TEST(hp_stall_mid_body_times_out)
{
    struct mf_http *h = mf_http_new();
    struct mf_http_req r;
    char uri[1024];

    fault("{\"match\": {\"route\": \"blob\"}, \"action\": \"drip\","
          " \"chunk\": 50, \"interval\": \"10ms\", \"stall_after\": 100,"
          " \"stall_max\": \"30s\", \"count\": 1}");
    first_blob_uri(uri, sizeof(uri));
    req_api(&r, TID, "x");
    snprintf(r.url, sizeof(r.url), "%s?PublisherIdentifier=%s", uri, TID);
    r.stall_seconds = 1;
    ck_assert_int_eq(mf_http_perform(h, &r), 0);
    ck_assert_int_eq(r.curl_code, CURLE_OPERATION_TIMEDOUT);
    ck_assert_int_eq(mf_http_classify(&r, NULL, 0), MF_RETRY);
    mf_http_req_fini(&r);
    mf_http_destroy(h);
}
END_TEST

/* ---- mf_http_url_redact ------------------------------------------------ */

START_TEST(hu_redact)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"https://user:pw@host:8443/p/q?secret=1", "https://host:8443/p/q"},
        {"http://u@proxy:3128", "http://proxy:3128"},
        {"https://host/a@b?x=y", "https://host/a@b"},
        {"https://host/path#frag", "https://host/path"},
        {"user:pw@host/x", "host/x"},
        {"https://h", "https://h"},
    };
    char out[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mf_http_url_redact(cases[i].in, out, sizeof(out));
        ck_assert_str_eq(out, cases[i].out);
    }
    mf_http_url_redact("https://user:pw@averyveryverylonghostname.example/x", out, 12);
    ck_assert_ptr_null(strstr(out, "pw"));
    ck_assert_uint_eq(strlen(out), 11);
}
END_TEST

/* ---- mf_http_classify (with the emulator's faults) ---------------------- */

static enum mf_status
classify_fault(const char *f, long want_status, const char *want_code,
               long want_retry_after)
{
    struct mf_http *h = mf_http_new();
    struct mf_http_req r;
    enum mf_status st;
    char why[512];

    fault(f);
    req_api(&r, TID, "subscriptions/list");
    ck_assert_int_eq(mf_http_perform(h, &r), 0);
    ck_assert_msg(r.status == want_status, "%s: status %ld", f, r.status);
    ck_assert_str_eq(r.af_code, want_code);
    ck_assert_int_eq(r.retry_after_s, want_retry_after);
    st = mf_http_classify(&r, why, sizeof(why));
    ck_assert_ptr_null(strstr(why, token));
    mf_http_req_fini(&r);
    mf_http_destroy(h);
    return st;
}

START_TEST(hc_throttle_429_retry_after_seconds)
{
    ck_assert_int_eq(classify_fault("{\"match\": {\"route\": \"list\"}, "
        "\"action\": \"throttle429\", \"retry_after\": 7}", 429, "AF429", 7),
        MF_RETRY);
}
END_TEST

START_TEST(hc_throttle_429_no_retry_after)
{
    ck_assert_int_eq(classify_fault("{\"match\": {\"route\": \"list\"}, "
        "\"action\": \"throttle429\"}", 429, "AF429", -1), MF_RETRY);
}
END_TEST

START_TEST(hc_throttle_403_af429)
{
    ck_assert_int_eq(classify_fault("{\"match\": {\"route\": \"list\"}, "
        "\"action\": \"throttle403\"}", 403, "AF429", -1), MF_RETRY);
}
END_TEST

START_TEST(hc_retry_after_http_date)
{
    char f[512], date[64];
    time_t t = time(NULL) + 120;
    struct tm tm;
    struct mf_http *h = mf_http_new();
    struct mf_http_req r;

    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    snprintf(f, sizeof(f), "{\"match\": {\"route\": \"list\"}, \"action\": "
             "\"status\", \"status\": 503, \"code\": \"AF50000\", "
             "\"retry_after\": \"%s\"}", date);
    fault(f);
    req_api(&r, TID, "subscriptions/list");
    ck_assert_int_eq(mf_http_perform(h, &r), 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert_msg(r.retry_after_s >= 115 && r.retry_after_s <= 121,
                  "retry_after %ld", r.retry_after_s);
    ck_assert_int_eq(mf_http_classify(&r, NULL, 0), MF_RETRY);
    mf_http_req_fini(&r);
    mf_http_destroy(h);
}
END_TEST

START_TEST(hc_server_errors_retry)
{
    ck_assert_int_eq(classify_fault("{\"match\": {\"route\": \"list\"}, "
        "\"action\": \"status\", \"status\": 500, \"code\": \"AF50000\"}",
        500, "AF50000", -1), MF_RETRY);
    ck_assert_int_eq(classify_fault("{\"match\": {\"route\": \"list\"}, "
        "\"action\": \"status\", \"status\": 503, \"code\": \"\"}",
        503, "", -1), MF_RETRY);
    ck_assert_int_eq(classify_fault("{\"match\": {\"route\": \"list\"}, "
        "\"action\": \"status\", \"status\": 408, \"code\": \"\"}",
        408, "", -1), MF_RETRY);
}
END_TEST

START_TEST(hc_expired_token_401)
{
    struct mf_http *h = mf_http_new();
    struct mf_http_req r;

    fault("{\"match\": {\"route\": \"list\"}, \"action\": \"expire_token\"}");
    req_api(&r, TID, "subscriptions/list");
    ck_assert_int_eq(mf_http_perform(h, &r), 0);
    ck_assert_int_eq(r.status, 401);
    ck_assert_str_eq(r.af_code, "");
    ck_assert_ptr_nonnull(strstr(r.af_message,
                                 "Authorization has been denied"));
    ck_assert_int_eq(mf_http_classify(&r, NULL, 0), MF_RETRY);
    mf_http_req_fini(&r);
    mf_http_destroy(h);
}
END_TEST

START_TEST(hc_time_window_af20055_drop)
{
    struct mf_http *h = mf_http_new();
    struct mf_http_req r;

    req_api(&r, TID, "subscriptions/content?contentType=Audit.Exchange"
            "&startTime=2000-01-01T00:00:00&endTime=2000-01-01T10:00:00");
    ck_assert_int_eq(mf_http_perform(h, &r), 0);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(r.af_code, "AF20055");
    ck_assert_int_eq(mf_http_classify(&r, NULL, 0), MF_DROP);
    mf_http_req_fini(&r);
    mf_http_destroy(h);
}
END_TEST

START_TEST(hc_audit_disabled_fatal)
{
    struct mf_http *h = mf_http_new();
    struct mf_http_req r;
    char why[512];

    req_api(&r, TID_OFF, "subscriptions/list");
    r.bearer = token_off;
    ck_assert_int_eq(mf_http_perform(h, &r), 0);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(r.af_code, MF_HTTP_TENANT_NOT_EXIST);
    ck_assert_ptr_nonnull(strstr(r.af_message, "does not exist"));
    ck_assert_ptr_null(strpbrk(r.af_message, "\r\n"));
    ck_assert_int_eq(mf_http_classify(&r, why, sizeof(why)), MF_FATAL);
    ck_assert_ptr_nonnull(strstr(why, "audit"));
    mf_http_req_fini(&r);
    mf_http_destroy(h);
}
END_TEST

/* Table rows without a server. */
START_TEST(hc_table)
{
    static const struct {
        long status;
        const char *code;
        int curl_code;
        enum mf_status want;
    } rows[] = {
        {200, "", 0, MF_OK},
        {204, "", 0, MF_OK},
        {400, "AF20024", 0, MF_OK},
        {401, "", 0, MF_RETRY},
        {403, "AF429", 0, MF_RETRY},
        {429, "", 0, MF_RETRY},
        {500, "AF50005", 0, MF_RETRY},
        {400, "AF50006", 0, MF_RETRY},
        {502, "", 0, MF_RETRY},
        {504, "", 0, MF_RETRY},
        {403, "AF10001", 0, MF_FATAL},
        {403, "AF20010", 0, MF_FATAL},
        {400, "AF20013", 0, MF_FATAL},
        {400, "AF20022", 0, MF_DROP},
        {400, "AF20023", 0, MF_DROP},
        {400, "AF20030", 0, MF_DROP},
        {404, "AF20050", 0, MF_DROP},
        {400, "AF20051", 0, MF_DROP},
        {400, "AF20020", 0, MF_DROP},
        {404, "", 0, MF_DROP},
        {401, "AADSTS7000215", 0, MF_FATAL},
        {400, "AADSTS90002", 0, MF_FATAL},
        {429, "AADSTS90055", 0, MF_RETRY},
        {0, "", CURLE_COULDNT_CONNECT, MF_RETRY},
        {200, "", CURLE_RECV_ERROR, MF_RETRY},
    };
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct mf_http_req r;
        char why[256];
        mf_http_req_init(&r);
        r.status = rows[i].status;
        r.curl_code = rows[i].curl_code;
        snprintf(r.af_code, sizeof(r.af_code), "%s", rows[i].code);
        ck_assert_msg(mf_http_classify(&r, why, sizeof(why)) == rows[i].want,
                      "row %zu (%ld %s): %s", i, rows[i].status, rows[i].code,
                      why);
        ck_assert_str_ne(why, "");
    }
}
END_TEST

/* ---- mf_http_run: many transfers at once -------------------------------- */

struct counter {
    int done, ok;
    char first_error[300];
};

static void
count_done(struct mf_http_req *r, void *ud)
{
    struct counter *c = ud;

    c->done++;
    if (r->status == 200 && r->resp.len > 0)
        c->ok++;
    else if (r->status != 404 && !c->first_error[0])
        snprintf(c->first_error, sizeof(c->first_error), "%ld %d %s",
                 r->status, r->curl_code, r->error);
}

START_TEST(hr_concurrent_32)
{
    struct mf_http *h = mf_http_new();
    struct mf_http_req *rs = calloc(32, sizeof(*rs));
    struct counter c = {0, 0, ""};
    char uri[1024];
    int i, rounds = 0;

    ck_assert_ptr_nonnull(rs);
    first_blob_uri(uri, sizeof(uri));
    for (i = 0; i < 32; i++) {
        req_api(&rs[i], TID, "x");
        if (i % 2)
            snprintf(rs[i].url, sizeof(rs[i].url), "%s?PublisherIdentifier=%s",
                     uri, TID);
        /* 32 TLS handshakes at once against a Python server on a busy
         * (or sanitized) build can take a while */
        rs[i].connect_timeout_ms = 90000;
        rs[i].timeout_ms = 120000;
        rs[i].done = count_done;
        rs[i].ud = &c;
        ck_assert_int_eq(mf_http_submit(h, &rs[i]), 0);
    }
    ck_assert_int_eq(mf_http_running(h), 32);
    while (mf_http_running(h) > 0) {
        mf_http_run(h, 1000);
        ck_assert_int_lt(++rounds, 400);
    }
    ck_assert_int_eq(c.done, 32);
    /* the "x" operations are 404s */
    ck_assert_msg(c.ok == 16, "%d ok; %s", c.ok, c.first_error);
    for (i = 0; i < 32; i++)
        mf_http_req_fini(&rs[i]);
    free(rs);
    mf_http_destroy(h);
}
END_TEST

START_TEST(hr_destroy_aborts_running)
{
    struct mf_http *h = mf_http_new();
    struct mf_http_req r;
    struct counter c = {0, 0, ""};

    fault("{\"match\": {\"route\": \"list\"}, \"action\": \"stall\"}");
    req_api(&r, TID, "subscriptions/list");
    r.done = count_done;
    r.ud = &c;
    ck_assert_int_eq(mf_http_submit(h, &r), 0);
    mf_http_run(h, 50);
    ck_assert_int_eq(mf_http_running(h), 1);
    mf_http_destroy(h);
    ck_assert_int_eq(c.done, 0);
    mf_http_req_fini(&r);
}
END_TEST

static int64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* With nothing to do, run waits (the collector's idle tick must not spin). */
START_TEST(hr_idle_waits_timeout)
{
    struct mf_http *h = mf_http_new();
    int64_t t0 = mono_ms(), dt;

    ck_assert_int_eq(mf_http_run(h, 300), 0);
    dt = mono_ms() - t0;
    ck_assert_msg(dt >= 250 && dt < 3000, "waited %lld ms", (long long)dt);
    mf_http_destroy(h);
}
END_TEST

/* ---- date helpers ------------------------------------------------------- */

START_TEST(hd_forms)
{
    int64_t ms;

    ck_assert_int_eq(mf_http_parse_date("Sun, 06 Nov 1994 08:49:37 GMT",
                                        &ms), 0);
    ck_assert_int_eq(ms, 784111777000LL);
    ck_assert_int_eq(mf_http_parse_date("Sunday, 06-Nov-94 08:49:37 GMT",
                                        &ms), 0);
    ck_assert_int_eq(ms, 784111777000LL);
    ck_assert_int_eq(mf_http_parse_date("Sun Nov  6 08:49:37 1994", &ms), 0);
    ck_assert_int_eq(ms, 784111777000LL);
    ck_assert_int_eq(mf_http_parse_date("Sat, 28 Nov 2026 21:40:00 GMT\r\n",
                                        &ms), 0);
    ck_assert_int_eq(ms, 1795902000000LL);
}
END_TEST

START_TEST(hd_invalid)
{
    int64_t ms = 42;

    ck_assert_int_eq(mf_http_parse_date("", &ms), -1);
    ck_assert_int_eq(mf_http_parse_date(NULL, &ms), -1);
    ck_assert_int_eq(mf_http_parse_date("Sun, 06 Foo 1994 08:49:37 GMT",
                                        &ms), -1);
    ck_assert_int_eq(mf_http_parse_date("Sun, 06 Nov 1994 25:49:37 GMT",
                                        &ms), -1);
    ck_assert_int_eq(mf_http_parse_date("Sun, 06 Nov 1994 08:49:37 CET",
                                        &ms), -1);
    ck_assert_int_eq(mf_http_parse_date("Sun, 06 Nov 1994 08:49:37 GMT x",
                                        &ms), -1);
    ck_assert_int_eq(ms, 42);
}
END_TEST

START_TEST(hra_forms)
{
    int64_t now = 784111777000LL;

    ck_assert_int_eq(mf_http_parse_retry_after("120", now), 120);
    ck_assert_int_eq(mf_http_parse_retry_after(" 0 ", now), 0);
    ck_assert_int_eq(mf_http_parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT",
                                               now), 60);
    /* a date in the past means now */
    ck_assert_int_eq(mf_http_parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT",
                                               now), 0);
    ck_assert_int_eq(mf_http_parse_retry_after("soon", now), -1);
    ck_assert_int_eq(mf_http_parse_retry_after("12x", now), -1);
    ck_assert_int_eq(mf_http_parse_retry_after("-5", now), -1);
    ck_assert_int_eq(mf_http_parse_retry_after("99999999999999", now), -1);
    ck_assert_int_eq(mf_http_parse_retry_after(NULL, now), -1);
}
END_TEST

static Suite *
suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc;

    tc = tcase_create("mf_http_perform");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, hp_post_token_and_get);
    tcase_add_test(tc, hp_post_start_af20024);
    tcase_add_test(tc, hp_paging_header);
    tcase_add_test(tc, hp_paging_header_lower_case);
    tcase_add_test(tc, hp_max_body_truncates);
    tcase_add_test(tc, hp_body_to_fd);
    tcase_add_test(tc, hp_error_body_with_fd_goes_to_memory);
    tcase_add_test(tc, hp_tls_untrusted_ca_fails);
    tcase_add_test(tc, hp_tls_wrong_host_refused);
    tcase_add_test(tc, hp_http_url_refused);
    tcase_add_test(tc, hp_connection_reset);
    tcase_add_test(tc, hp_stall_times_out);
    tcase_add_test(tc, hp_fd_body_capped);
    tcase_add_test(tc, hp_gzip_bomb_capped);
    tcase_add_test(tc, hp_long_next_page);
    tcase_add_test(tc, hp_slow_progress_is_no_stall);
    tcase_add_test(tc, hp_stall_mid_body_times_out);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_http_url_redact");
    tcase_add_test(tc, hu_redact);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_http_classify");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, hc_throttle_429_retry_after_seconds);
    tcase_add_test(tc, hc_throttle_429_no_retry_after);
    tcase_add_test(tc, hc_throttle_403_af429);
    tcase_add_test(tc, hc_retry_after_http_date);
    tcase_add_test(tc, hc_server_errors_retry);
    tcase_add_test(tc, hc_expired_token_401);
    tcase_add_test(tc, hc_time_window_af20055_drop);
    tcase_add_test(tc, hc_audit_disabled_fatal);
    tcase_add_test(tc, hc_table);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_http_run");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, hr_concurrent_32);
    tcase_add_test(tc, hr_destroy_aborts_running);
    tcase_add_test(tc, hr_idle_waits_timeout);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_http_parse_date");
    tcase_add_test(tc, hd_forms);
    tcase_add_test(tc, hd_invalid);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_http_parse_retry_after");
    tcase_add_test(tc, hra_forms);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    int rc;

    mf_emu_require();
    mf_emu_certs();
    if (mf_emu_start(&emu, scenario, 0) != 0) {
        mf_emu_cleanup();
        return 1;
    }
    if (get_token(TID, token, sizeof(token)) != 0 ||
        get_token(TID_OFF, token_off, sizeof(token_off)) != 0) {
        mf_emu_stop(&emu);
        mf_emu_cleanup();
        return 1;
    }
    rc = mf_test_run(suite());
    mf_emu_stop(&emu);
    mf_emu_cleanup();
    return rc;
}
