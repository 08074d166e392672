/* http.h - libcurl multi wrapper for the token endpoint and the Management
 * Activity API.
 *
 * One struct mf_http drives every transfer of the process on one thread:
 * mf_http_submit() queues a request, mf_http_run() waits for activity (at
 * most timeout_ms) and calls each finished request's done() callback. TLS is
 * always verified (system CAs plus an optional extra CA file). Response
 * bodies go to a bounded memory buffer or, for content blobs, to a file
 * descriptor (spooled to disk so memory does not grow with blob size).
 *
 * Secrets: the bearer token and request bodies are never logged; error
 * strings name the URL without credentials and query string.
 */
#ifndef MF_HTTP_H
#define MF_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "status.h"

struct mf_http;
struct mf_http_req;

/* Longest URL a request can have (a NextPageUri of the API can be several
 * KiB); a longer NextPageUri header sets next_page_too_long. */
#define MF_HTTP_URL_MAX 16384

typedef void (*mf_http_done_fn)(struct mf_http_req *req, void *ud);

struct mf_http_req {
    /* ---- request (set by the caller) ---- */
    const char *method;          /* "GET" (default when NULL) or "POST" */
    char url[MF_HTTP_URL_MAX];
    const char *body;            /* POST body or NULL; not copied */
    size_t body_len;
    const char *content_type;    /* of the body, e.g. form-urlencoded */
    const char *bearer;          /* access token or NULL; not copied */
    const char *basic_user;      /* HTTP Basic (client_secret_basic) or NULL */
    const char *basic_pass;
    const char *ca_file;         /* extra trusted CA, or NULL */
    const char *proxy;           /* proxy URL, or NULL (HTTPS_PROXY is honoured
                                    by libcurl when NULL) */
    const char *proxy_userpwd;   /* "user:password" for the proxy (from
                                    proxy_auth_file), or NULL; not copied */
    long timeout_ms;             /* ceiling of the whole transfer; 0 = 120 s */
    long connect_timeout_ms;     /* 0 = 15 s */
    long stall_seconds;          /* no progress (below 1 byte/s) this long
                                    aborts the transfer; 0 = 60 */
    size_t max_body;             /* body ceiling (after decompression):
                                    memory 0 = 16 MiB; body_fd 0 = none */
    int body_fd;                 /* >= 0: write the body there instead of
                                    memory (not closed); -1 (default via
                                    mf_http_req_init) = memory */
    mf_http_done_fn done;
    void *ud;

    /* ---- response (filled before done() is called) ---- */
    long status;                 /* HTTP status, 0 when no response */
    int curl_code;               /* CURLcode, 0 = OK */
    char error[256];             /* transport error text, "" when none */
    struct mf_buf resp;          /* body when body_fd < 0 */
    size_t body_bytes;           /* body bytes received (memory or fd) */
    bool body_truncated;         /* over max_body (then verdict is DROP) */
    char *next_page_uri;         /* NextPageUri header (any case), NULL none
                                    (freed by mf_http_req_fini) */
    bool next_page_too_long;     /* a NextPageUri of MF_HTTP_URL_MAX bytes or
                                    more was not kept */
    long retry_after_s;          /* Retry-After in seconds, -1 when absent */
    int64_t date_ms;             /* Date header as epoch ms, 0 when absent */
    char af_code[24];            /* API error code from the body ("AF20024",
                                    "AF429", ...) or AADSTS number, "" none */
    char af_message[256];        /* its message, "" none */

    /* ---- internal ---- */
    void *easy;
    void *headers;
    struct mf_http *owner;
};

/* af_code set for the "Tenant <tid> does not exist" bodies of m365-api.md
 * §3.3 (unified audit logging off / tenant unknown to the audit service);
 * af_message then holds that sentence. */
#define MF_HTTP_TENANT_NOT_EXIST "TenantNotExist"

/* Zero a request and set defaults (body_fd = -1). */
void mf_http_req_init(struct mf_http_req *req);
/* Free response memory (the request can then be reused or dropped). */
void mf_http_req_fini(struct mf_http_req *req);

struct mf_http *mf_http_new(void);
/* Aborts transfers still running (their done() is not called). */
void mf_http_destroy(struct mf_http *h);

/* Queue a request. The request must stay valid until done() ran.
 * 0, or -1 (cannot start: done() is not called, req->error says why). */
int mf_http_submit(struct mf_http *h, struct mf_http_req *req);
/* Run transfers for at most timeout_ms (returns at once when one finished;
 * waits the whole timeout when nothing runs, so it can be the idle tick).
 * Calls done() of finished requests. Returns the number still running. */
int mf_http_run(struct mf_http *h, int timeout_ms);
/* From any thread: make a mf_http_run() in progress (or the next one)
 * return early. */
void mf_http_wakeup(struct mf_http *h);
/* Submit and run until this request is done (done() may be NULL). */
int mf_http_perform(struct mf_http *h, struct mf_http_req *req);
int mf_http_running(const struct mf_http *h);
/* Abort one submitted request (its done() is not called). No-op when the
 * request is not in flight on h. */
void mf_http_cancel(struct mf_http *h, struct mf_http_req *req);

/* The verdict for a finished request (m365-api.md §3 and §9.6):
 * MF_OK 2xx; MF_RETRY transport errors, 401, 408, 429, 5xx, 403 AF429,
 * AF50000-series; MF_DROP other 4xx; callers look at af_code for the cases
 * that need more than a verdict (AF20024, AF20022/23, AF20055, AF20051...).
 * why gets a one-line reason without secrets. */
enum mf_status mf_http_classify(const struct mf_http_req *req, char *why, size_t whysz);

/* url without its user:password@ part, query and fragment, for messages. */
void mf_http_url_redact(const char *url, char *out, size_t outsz);

/* Parse an HTTP date (RFC 7231 IMF-fixdate, also RFC 850 and asctime) or
 * Retry-After (seconds or date) helpers, exposed for tests. */
int mf_http_parse_date(const char *s, int64_t *ms);
long mf_http_parse_retry_after(const char *s, int64_t now_ms);

#endif
