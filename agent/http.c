/* http.c - libcurl multi wrapper (see http.h).
 *
 * TLS: verification is always on. With an extra CA file (ca_file), the TLS
 * context gets, through CURLOPT_SSL_CTX_FUNCTION, a store holding the system
 * CAs and that file, built once per file and shared (never modified after
 * it is built, so the extra CA never reaches another tenant's store). When
 * libcurl is not built with OpenSSL the
 * callback is refused and we fall back to CURLOPT_CAINFO = ca_file, which
 * REPLACES the system bundle (only ca_file is trusted then).
 *
 * Headers are parsed one line at a time as libcurl delivers them (name up
 * to ':', value trimmed of blanks and CR/LF), so a NextPageUri value can
 * never carry the CRLF or the next header (m365-api.md §2.5, Wazuh #30921).
 * Every new status line resets the parsed headers (proxy CONNECT, 100).
 *
 * A response with status >= 400 goes to memory even when body_fd is set,
 * so error bodies of blob downloads are parsed like any other.
 */
#include "http.h"
#include "clock.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "json.h"
#include "mem.h"

#include "mf_config.h"

static unsigned live_https;     /* mf_http objects alive: the last one frees
                                   the shared CA stores */
static void ca_stores_free(void);

#define DEFAULT_TIMEOUT_MS   120000L
#define DEFAULT_CONNECT_MS   15000L
#define DEFAULT_STALL_S      60L
#define DEFAULT_MAX_BODY     ((size_t)16 << 20)
#define ERROR_BODY_MAX       ((size_t)64 << 10)

struct mf_http {
    CURLM *multi;
    struct mf_http_req **act;   /* transfers in flight */
    size_t nact, capact;
    atomic_int woken;           /* mf_http_wakeup() since the last run */
};

/* Per-transfer private state (req->headers points here). */
struct xfer {
    struct curl_slist *slist;
    char errbuf[CURL_ERROR_SIZE];
    bool write_failed;          /* body_fd write error */
    int write_errno;
};

static int curl_ready;

static void
global_init(void)
{
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            fprintf(stderr, "m365fwd: curl_global_init failed\n");
            abort();
        }
        curl_ready = 1;
    }
}

void
mf_http_req_init(struct mf_http_req *req)
{
    memset(req, 0, sizeof(*req));
    req->body_fd = -1;
    req->retry_after_s = -1;
}

static void
next_page_clear(struct mf_http_req *req)
{
    free(req->next_page_uri);
    req->next_page_uri = NULL;
    req->next_page_too_long = false;
}

void
mf_http_req_fini(struct mf_http_req *req)
{
    mf_buf_fini(&req->resp);
    next_page_clear(req);
}

struct mf_http *
mf_http_new(void)
{
    struct mf_http *h;

    global_init();
    live_https++;
    h = mf_xcalloc(1, sizeof(*h));
    h->multi = curl_multi_init();
    if (!h->multi) {
        fprintf(stderr, "m365fwd: curl_multi_init failed\n");
        abort();
    }
    return h;
}

static void
xfer_release(struct mf_http *h, struct mf_http_req *req)
{
    struct xfer *x = req->headers;
    size_t i;

    if (req->easy) {
        curl_multi_remove_handle(h->multi, req->easy);
        curl_easy_cleanup(req->easy);
        req->easy = NULL;
    }
    if (x) {
        curl_slist_free_all(x->slist);
        free(x);
        req->headers = NULL;
    }
    for (i = 0; i < h->nact; i++) {
        if (h->act[i] == req) {
            h->act[i] = h->act[--h->nact];
            break;
        }
    }
    req->owner = NULL;
}

void
mf_http_cancel(struct mf_http *h, struct mf_http_req *req)
{
    if (h && req && req->owner == h)
        xfer_release(h, req);
}

void
mf_http_destroy(struct mf_http *h)
{
    if (!h)
        return;
    while (h->nact > 0)
        xfer_release(h, h->act[h->nact - 1]);
    free(h->act);
    curl_multi_cleanup(h->multi);
    free(h);
    if (--live_https == 0)
        ca_stores_free();
}

int
mf_http_running(const struct mf_http *h)
{
    return (int)h->nact;
}

/* ---- dates -------------------------------------------------------------- */

static int
month_index(const char *m)
{
    static const char *const months[] = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun",
        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    };
    int i;

    for (i = 0; i < 12; i++)
        if (strcasecmp(m, months[i]) == 0)
            return i;
    return -1;
}

int
mf_http_parse_date(const char *s, int64_t *ms)
{
    char mon[4] = "", wd[16], tz[8] = "";
    int d = 0, y = 0, hh = 0, mi = 0, ss = 0, n = 0, mo;
    struct tm tm;
    time_t t;

    if (!s)
        return -1;
    while (*s == ' ' || *s == '\t')
        s++;
    /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
    if (sscanf(s, "%15[A-Za-z], %d %3s %d %d:%d:%d %7s%n", wd, &d, mon, &y,
               &hh, &mi, &ss, tz, &n) == 8) {
        /* ok */
    } else if (sscanf(s, "%15[A-Za-z], %d-%3s-%d %d:%d:%d %7s%n", wd, &d,
                      mon, &y, &hh, &mi, &ss, tz, &n) == 8) {
        /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
        if (y < 100)
            y += y < 70 ? 2000 : 1900;
    } else if (sscanf(s, "%15[A-Za-z] %3s %d %d:%d:%d %d%n", wd, mon, &d,
                      &hh, &mi, &ss, &y, &n) == 7) {
        /* asctime: Sun Nov  6 08:49:37 1994 */
        strcpy(tz, "GMT");
    } else {
        return -1;
    }
    if (strcmp(tz, "GMT") != 0 && strcmp(tz, "UTC") != 0)
        return -1;
    mo = month_index(mon);
    if (mo < 0 || d < 1 || d > 31 || y < 1970 || y > 9999 || hh > 23 ||
        mi > 59 || ss > 60 || hh < 0 || mi < 0 || ss < 0)
        return -1;
    s += n;
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    if (*s)
        return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo;
    tm.tm_mday = d;
    tm.tm_hour = hh;
    tm.tm_min = mi;
    tm.tm_sec = ss;
    t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *ms = (int64_t)t * 1000;
    return 0;
}

long
mf_http_parse_retry_after(const char *s, int64_t now_ms)
{
    int64_t at;
    const char *p;
    long v = 0;

    if (!s)
        return -1;
    while (*s == ' ' || *s == '\t')
        s++;
    if (isdigit((unsigned char)*s)) {
        for (p = s; isdigit((unsigned char)*p); p++) {
            if (v > 100000000L)
                return -1;
            v = v * 10 + (*p - '0');
        }
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            p++;
        return *p ? -1 : v;
    }
    if (mf_http_parse_date(s, &at) != 0)
        return -1;
    if (at <= now_ms)
        return 0;
    return (long)((at - now_ms + 999) / 1000);
}

/* ---- callbacks ---------------------------------------------------------- */

static size_t
header_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    struct mf_http_req *req = ud;
    size_t n = size * nmemb, nlen, vlen;
    const char *colon, *v, *end = data + n;
    char tmp[4096];

    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        /* a new response (after 100 Continue or a proxy CONNECT) */
        next_page_clear(req);
        req->retry_after_s = -1;
        req->date_ms = 0;
        return n;
    }
    colon = memchr(data, ':', n);
    if (!colon)
        return n;
    nlen = (size_t)(colon - data);
    while (nlen > 0 && (data[nlen - 1] == ' ' || data[nlen - 1] == '\t'))
        nlen--;
    v = colon + 1;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' ||
                       end[-1] == '\t'))
        end--;
    vlen = (size_t)(end - v);
    /* a bare CR or LF inside one header line is never part of a value */
    {
        const char *cr = memchr(v, '\r', vlen), *lf = memchr(v, '\n', vlen);
        if (cr)
            vlen = (size_t)(cr - v);
        if (lf && (size_t)(lf - v) < vlen)
            vlen = (size_t)(lf - v);
    }
    if (nlen == 11 && strncasecmp(data, "NextPageUri", 11) == 0) {
        next_page_clear(req);
        if (vlen < MF_HTTP_URL_MAX)
            req->next_page_uri = mf_xstrndup(v, vlen);
        else
            req->next_page_too_long = true;
    } else if (nlen == 11 && strncasecmp(data, "Retry-After", 11) == 0) {
        if (vlen < sizeof(tmp)) {
            memcpy(tmp, v, vlen);
            tmp[vlen] = '\0';
            req->retry_after_s = mf_http_parse_retry_after(tmp, mf_clock_wall_ms());
        }
    } else if (nlen == 4 && strncasecmp(data, "Date", 4) == 0) {
        int64_t ms;
        if (vlen < sizeof(tmp)) {
            memcpy(tmp, v, vlen);
            tmp[vlen] = '\0';
            if (mf_http_parse_date(tmp, &ms) == 0)
                req->date_ms = ms;
        }
    }
    return n;
}

static size_t
write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    struct mf_http_req *req = ud;
    struct xfer *x = req->headers;
    size_t n = size * nmemb, off = 0;
    long status = 0;

    curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
    if (req->body_fd >= 0 && status < 400) {
        if (req->max_body && req->body_bytes + n > req->max_body) {
            req->body_truncated = true;
            return 0;
        }
        while (off < n) {
            ssize_t w = write(req->body_fd, data + off, n - off);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                x->write_failed = true;
                x->write_errno = errno;
                return 0;
            }
            off += (size_t)w;
        }
        req->body_bytes += n;
        return n;
    }
    if (req->body_fd >= 0 && req->resp.max == 0)
        req->resp.max = ERROR_BODY_MAX;
    if (mf_buf_append(&req->resp, data, n) != 0) {
        req->body_truncated = true;
        return 0;   /* aborts the transfer (CURLE_WRITE_ERROR) */
    }
    req->body_bytes += n;
    return n;
}

/* Trust stores with the system CAs plus one extra CA file, built once per
 * file and shared by every TLS context that needs it (reference counted by
 * OpenSSL). Loading the system bundle for each new connection cost more CPU
 * than normalizing the records it carried; the stores are never modified
 * after they are built, so one tenant's CA cannot reach another's store. */
struct ca_store {
    char *file;
    X509_STORE *store;
};

static struct ca_store *ca_stores;
static size_t n_ca_stores;

static X509_STORE *
ca_store_for(const char *ca_file)
{
    X509_STORE *st;

    for (size_t i = 0; i < n_ca_stores; i++)
        if (strcmp(ca_stores[i].file, ca_file) == 0)
            return ca_stores[i].store;
    st = X509_STORE_new();
    if (!st)
        return NULL;
    if (X509_STORE_set_default_paths(st) != 1 || X509_STORE_load_file(st, ca_file) != 1) {
        X509_STORE_free(st);
        return NULL;
    }
    ca_stores = mf_xrealloc(ca_stores, (n_ca_stores + 1) * sizeof(*ca_stores));
    ca_stores[n_ca_stores].file = mf_xstrdup(ca_file);
    ca_stores[n_ca_stores].store = st;
    n_ca_stores++;
    return st;
}

static void
ca_stores_free(void)
{
    for (size_t i = 0; i < n_ca_stores; i++) {
        X509_STORE_free(ca_stores[i].store);
        free(ca_stores[i].file);
    }
    free(ca_stores);
    ca_stores = NULL;
    n_ca_stores = 0;
}

/* Give the TLS context the shared store (system CAs + the extra CA). */
static CURLcode
sslctx_cb(CURL *curl, void *sslctx, void *ud)
{
    X509_STORE *st = ca_store_for((const char *)ud);

    (void)curl;
    if (!st || X509_STORE_up_ref(st) != 1)
        return CURLE_SSL_CACERT_BADFILE;
    SSL_CTX_set_cert_store((SSL_CTX *)sslctx, st);
    return CURLE_OK;
}

/* ---- submit / run ------------------------------------------------------- */

void
mf_http_url_redact(const char *url, char *out, size_t outsz)
{
    const char *sep = strstr(url, "://"), *host = url, *end, *at;
    size_t k = 0, n;

    if (outsz == 0)
        return;
    if (sep && (size_t)(sep - url) < strcspn(url, "/?#@"))
        host = sep + 3;
    end = host + strcspn(host, "/?#");
    at = memchr(host, '@', (size_t)(end - host));
    if (at) {
        /* scheme:// kept, user:password@ dropped */
        k = (size_t)(host - url) < outsz ? (size_t)(host - url) : outsz - 1;
        memcpy(out, url, k);
        host = at + 1;
    } else {
        host = url;
    }
    n = strcspn(host, "?#");
    if (k + n >= outsz)
        n = outsz - k - 1;
    memcpy(out + k, host, n);
    out[k + n] = '\0';
}

static void
set_error(struct mf_http_req *req, const char *what)
{
    char u[200];

    mf_http_url_redact(req->url, u, sizeof(u));
    snprintf(req->error, sizeof(req->error), "%s %s: %s",
             req->method ? req->method : "GET", u, what);
}

/* Clear what the previous transfer of req left (status, error, body,
 * parsed headers) and bound the memory body for this one. */
static void
req_reset_result(struct mf_http_req *req)
{
    req->status = 0;
    req->curl_code = 0;
    req->error[0] = '\0';
    req->body_bytes = 0;
    req->body_truncated = false;
    next_page_clear(req);
    req->retry_after_s = -1;
    req->date_ms = 0;
    req->af_code[0] = '\0';
    req->af_message[0] = '\0';
    if (req->resp.data)
        mf_buf_reset(&req->resp);
    req->resp.max = req->body_fd >= 0 ? ERROR_BODY_MAX
                    : (req->max_body ? req->max_body : DEFAULT_MAX_BODY);
}

/* TLS: peer and host always verified; with ca_file, the shared store of
 * the system CAs plus that file (or, without OpenSSL, that file alone). */
static void
set_tls_opts(CURL *e, const struct mf_http_req *req)
{
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!req->ca_file)
        return;
    if (curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, sslctx_cb) == CURLE_OK) {
        curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, (void *)req->ca_file);
        /* the callback installs the complete store: libcurl need not
         * parse the system bundle for every connection */
        curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    } else {
        curl_easy_setopt(e, CURLOPT_CAINFO, req->ca_file);
    }
}

/* The proxy and its credentials, when req has them. */
static void
set_proxy_opts(CURL *e, const struct mf_http_req *req)
{
    if (req->proxy)
        curl_easy_setopt(e, CURLOPT_PROXY, req->proxy);
    if (req->proxy_userpwd) {
        curl_easy_setopt(e, CURLOPT_PROXYUSERPWD, req->proxy_userpwd);
        curl_easy_setopt(e, CURLOPT_PROXYAUTH, (long)CURLAUTH_ANY);
    }
}

/* Timeouts (the defaults where req leaves them 0) and the size bound of a
 * body spooled to a file. */
static void
set_limit_opts(CURL *e, const struct mf_http_req *req)
{
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                     req->timeout_ms > 0 ? req->timeout_ms
                                         : DEFAULT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     req->connect_timeout_ms > 0 ? req->connect_timeout_ms
                                                 : DEFAULT_CONNECT_MS);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
                     req->stall_seconds > 0 ? req->stall_seconds
                                            : DEFAULT_STALL_S);
    if (req->body_fd >= 0 && req->max_body)
        curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->max_body);
}

/* Bearer token, else basic credentials, when req has them. */
static void
set_auth_opts(CURL *e, const struct mf_http_req *req)
{
    if (req->bearer) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
        curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER, req->bearer);
    } else if (req->basic_user) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, req->basic_user);
        curl_easy_setopt(e, CURLOPT_PASSWORD,
                         req->basic_pass ? req->basic_pass : "");
    }
}

/* The request headers into x->slist, and the POST body. 0 / -1 when the
 * header list could not be built. */
static int
set_body_and_headers(CURL *e, const struct mf_http_req *req, struct xfer *x,
                     bool post)
{
    x->slist = curl_slist_append(x->slist, "Expect:");
    x->slist = curl_slist_append(x->slist, "Accept: application/json");
    if (post) {
        char ct[256];

        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(req->body ? req->body_len : 0));
        if (req->content_type) {
            snprintf(ct, sizeof(ct), "Content-Type: %s", req->content_type);
            x->slist = curl_slist_append(x->slist, ct);
        }
    }
    if (!x->slist)
        return -1;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->slist);
    return 0;
}

/* The easy handle's options for req (x: its private state). 0 / -1 with
 * req->error set. */
static int
xfer_setup(CURL *e, struct mf_http_req *req, struct xfer *x, bool post)
{
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, req);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "m365fwd/" MF_VERSION);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    set_tls_opts(e, req);
    set_proxy_opts(e, req);
    set_limit_opts(e, req);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
    set_auth_opts(e, req);
    if (set_body_and_headers(e, req, x, post) != 0) {
        set_error(req, "out of memory for headers");
        return -1;
    }
    return 0;
}

int
mf_http_submit(struct mf_http *h, struct mf_http_req *req)
{
    CURL *e;
    struct xfer *x;
    bool post = req->method && strcasecmp(req->method, "POST") == 0;
    CURLMcode mc;

    req_reset_result(req);
    if (req->method && !post && strcasecmp(req->method, "GET") != 0) {
        set_error(req, "unsupported method");
        return -1;
    }
    if (strncasecmp(req->url, "https://", 8) != 0) {
        set_error(req, "only https:// URLs are allowed");
        return -1;
    }
    e = curl_easy_init();
    if (!e) {
        set_error(req, "curl_easy_init failed");
        return -1;
    }
    x = mf_xcalloc(1, sizeof(*x));
    req->easy = e;
    req->headers = x;
    req->owner = h;
    if (xfer_setup(e, req, x, post) != 0)
        goto fail;
    if (h->nact == h->capact) {
        h->capact = h->capact ? h->capact * 2 : 16;
        h->act = mf_xrealloc(h->act, h->capact * sizeof(*h->act));
    }
    h->act[h->nact++] = req;
    mc = curl_multi_add_handle(h->multi, e);
    if (mc != CURLM_OK) {
        set_error(req, curl_multi_strerror(mc));
        goto fail;
    }
    return 0;
fail:
    xfer_release(h, req);
    return -1;
}

/* ---- error bodies ------------------------------------------------------- */

static void
copy_line(char *out, size_t outsz, const char *s, size_t n)
{
    size_t i, k = 0;

    for (i = 0; i < n && k + 1 < outsz; i++) {
        if (s[i] == '\r' || s[i] == '\n')
            break;
        out[k++] = s[i];
    }
    out[k] = '\0';
}

static bool
looks_af_code(const char *s)
{
    size_t i;

    if (strncmp(s, "AF", 2) != 0 || !s[2])
        return false;
    for (i = 2; s[i]; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return i < 24;
}

/* "...Exception: Tenant <tid> does not exist." -> that sentence. */
static void
tenant_sentence(char *out, size_t outsz, const char *msg)
{
    const char *p = strstr(msg, "does not exist"), *b;

    b = p;
    while (b > msg && strncmp(b, "Tenant ", 7) != 0)
        b--;
    if (strncmp(b, "Tenant ", 7) != 0)
        b = p;
    copy_line(out, outsz, b, strlen(b));
}

static void
parse_error_body(struct mf_http_req *req)
{
    struct mf_arena a;
    struct mf_jval *root, *err, *code, *msg, *codes;
    const char *cs, *ms;

    if (!req->resp.data || req->resp.len == 0 || req->body_truncated)
        return;
    mf_arena_init(&a, 0);
    root = mf_json_parse(&a, req->resp.data, req->resp.len, NULL, NULL, NULL);
    if (!mf_jis_obj(root))
        goto out;
    err = mf_jobj_get(root, "error");
    if (mf_jis_obj(err)) {
        /* {"error":{"code":"AF...","message":"..."}} */
        code = mf_jobj_geti(err, "code");
        msg = mf_jobj_geti(err, "message");
        cs = mf_jstrv(code) ? mf_jstrv(code) : "";
        ms = mf_jstrv(msg) ? mf_jstrv(msg) : "";
        if (!looks_af_code(cs) &&
            ((strstr(ms, "Tenant ") && strstr(ms, "does not exist")) ||
             (strstr(cs, "Tenant ") && strstr(cs, "does not exist")))) {
            /* audit logging off / tenant unknown to the audit service */
            snprintf(req->af_code, sizeof(req->af_code), "%s",
                     MF_HTTP_TENANT_NOT_EXIST);
            tenant_sentence(req->af_message, sizeof(req->af_message),
                            strstr(ms, "does not exist") ? ms : cs);
        } else {
            if (looks_af_code(cs))
                snprintf(req->af_code, sizeof(req->af_code), "%s", cs);
            copy_line(req->af_message, sizeof(req->af_message), ms,
                      strlen(ms));
        }
        goto out;
    }
    if (mf_jis_str(err)) {
        /* token endpoint: error, error_description, error_codes */
        int64_t c;
        const char *d;
        codes = mf_jobj_get(root, "error_codes");
        if (mf_jis_arr(codes) && codes->len > 0 &&
            mf_jget_int(codes->u.items[0], &c) == 0)
            snprintf(req->af_code, sizeof(req->af_code), "AADSTS%lld",
                     (long long)c);
        d = mf_jstrv(mf_jobj_get(root, "error_description"));
        if (d) {
            const char *p = d;
            if (strncmp(p, "AADSTS", 6) == 0) {
                const char *q = p + 6;
                while (isdigit((unsigned char)*q))
                    q++;
                if (!req->af_code[0] && q > p + 6 && (size_t)(q - p) < 24) {
                    memcpy(req->af_code, p, (size_t)(q - p));
                    req->af_code[q - p] = '\0';
                }
                if (*q == ':')
                    q++;
                while (*q == ' ')
                    q++;
                p = q;
            }
            copy_line(req->af_message, sizeof(req->af_message), p, strlen(p));
        } else {
            copy_line(req->af_message, sizeof(req->af_message), err->u.s,
                      err->len);
        }
        goto out;
    }
    ms = mf_jstrv(mf_jobj_geti(root, "Message"));
    if (ms)
        copy_line(req->af_message, sizeof(req->af_message), ms, strlen(ms));
out:
    mf_arena_fini(&a);
}

/* The body ceiling that applied to req. */
static size_t
body_cap(const struct mf_http_req *req)
{
    return req->body_fd >= 0 && req->status < 400 ? req->max_body : req->resp.max;
}

static void
finish(struct mf_http *h, struct mf_http_req *req, CURLcode rc)
{
    struct xfer *x = req->headers;
    mf_http_done_fn done = req->done;

    curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->status);
    req->curl_code = (int)rc;
    if (rc == CURLE_FILESIZE_EXCEEDED)
        req->body_truncated = true;     /* Content-Length over max_body */
    if (rc != CURLE_OK) {
        if (req->body_truncated) {
            char m[64];
            snprintf(m, sizeof(m), "body over %zu bytes", body_cap(req));
            set_error(req, m);
        } else if (x->write_failed) {
            set_error(req, strerror(x->write_errno));
        } else {
            set_error(req, x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
        }
    }
    if (req->status >= 400)
        parse_error_body(req);
    xfer_release(h, req);
    if (done)
        done(req, req->ud);
}

static int
reap(struct mf_http *h)
{
    CURLMsg *m;
    int left, n = 0;

    while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
        struct mf_http_req *req = NULL;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&req);
        if (req) {
            finish(h, req, m->data.result);
            n++;
        }
    }
    return n;
}

int
mf_http_run(struct mf_http *h, int timeout_ms)
{
    int64_t deadline = mf_clock_wall_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int still;

    for (;;) {
        int64_t left;
        curl_multi_perform(h->multi, &still);
        if (reap(h) > 0)
            break;
        /* nothing finished: wait, also when nothing runs (callers use this
         * as their idle tick; a signal ends the wait early) */
        left = deadline - mf_clock_wall_ms();
        if (left <= 0)
            break;
        if (atomic_exchange(&h->woken, 0))
            break;
        curl_multi_poll(h->multi, NULL, 0, (int)(left > 1000 ? 1000 : left),
                        NULL);
        if (atomic_exchange(&h->woken, 0))
            break;
    }
    return (int)h->nact;
}

void
mf_http_wakeup(struct mf_http *h)
{
    atomic_store(&h->woken, 1);
    curl_multi_wakeup(h->multi);
}

int
mf_http_perform(struct mf_http *h, struct mf_http_req *req)
{
    if (mf_http_submit(h, req) != 0)
        return -1;
    while (req->owner == h)
        mf_http_run(h, 1000);
    return 0;
}

/* ---- classification (m365-api.md §3, §9.6; collector-design.md) ------- */

struct verdict_row {
    long status_lo, status_hi;  /* 0, 0 = any status */
    const char *code;           /* NULL = any; "X*" = prefix */
    enum mf_status verdict;
    const char *why;
};

/* First matching row wins. */
static const struct verdict_row verdicts[] = {
    {0, 0, "AF429", MF_RETRY, "throttled (AF429)"},
    {0, 0, "AF5*", MF_RETRY, "service error, retry"},
    {0, 0, "AF20024", MF_OK, "subscription already enabled"},
    {0, 0, "AF10001", MF_FATAL,
     "app lacks ActivityFeed.Read (no admin consent)"},
    {0, 0, MF_HTTP_TENANT_NOT_EXIST, MF_FATAL,
     "tenant unknown to the audit service (unified audit logging off?)"},
    {0, 0, "AF2001*", MF_FATAL, "tenant rejected"},
    {0, 0, "AF20022", MF_DROP, "no subscription for this content type"},
    {0, 0, "AF20023", MF_DROP, "subscription disabled"},
    {0, 0, "AF20055", MF_DROP, "time window outside what the API keeps"},
    {0, 0, "AF20030", MF_DROP, "time window outside what the API keeps"},
    {0, 0, "AF20050", MF_DROP, "content blob does not exist"},
    {0, 0, "AF20051", MF_DROP, "content blob expired"},
    {0, 0, "AADSTS90055", MF_RETRY, "token endpoint throttled"},
    {0, 0, "AADSTS*", MF_FATAL, "token request refused"},
    {200, 299, NULL, MF_OK, "ok"},
    {401, 401, NULL, MF_RETRY, "unauthorized (token expired or revoked)"},
    {408, 408, NULL, MF_RETRY, "request timeout"},
    {429, 429, NULL, MF_RETRY, "throttled (429)"},
    {500, 599, NULL, MF_RETRY, "server error"},
    {400, 499, NULL, MF_DROP, "request refused"},
    {0, 0, NULL, MF_DROP, "unexpected status"},
};

static bool
code_match(const char *pat, const char *code)
{
    size_t n;

    if (!pat)
        return true;
    if (!code[0])
        return false;
    n = strlen(pat);
    if (n > 0 && pat[n - 1] == '*')
        return strncmp(pat, code, n - 1) == 0;
    return strcmp(pat, code) == 0;
}

enum mf_status
mf_http_classify(const struct mf_http_req *req, char *why, size_t whysz)
{
    size_t i;

    if (req->body_truncated) {
        if (why)
            snprintf(why, whysz, "response body over %zu bytes", body_cap(req));
        return MF_DROP;
    }
    if (req->curl_code != 0 || req->status == 0) {
        if (why)
            snprintf(why, whysz, "transport error: %s",
                     req->error[0] ? req->error : "no response");
        return MF_RETRY;
    }
    for (i = 0; i < sizeof(verdicts) / sizeof(verdicts[0]); i++) {
        const struct verdict_row *r = &verdicts[i];
        if (r->status_lo && (req->status < r->status_lo ||
                             req->status > r->status_hi))
            continue;
        if (!code_match(r->code, req->af_code))
            continue;
        if (why) {
            if (req->af_code[0])
                snprintf(why, whysz, "HTTP %ld %s: %s%s%s", req->status,
                         req->af_code, r->why,
                         req->af_message[0] ? ": " : "", req->af_message);
            else
                snprintf(why, whysz, "HTTP %ld: %s%s%s", req->status, r->why,
                         req->af_message[0] ? ": " : "", req->af_message);
        }
        return r->verdict;
    }
    return MF_DROP;
}
