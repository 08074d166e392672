/* auth.c - OAuth2 client-credentials tokens from Entra ID (see auth.h).
 *
 * The request body holds the client secret or the signed assertion; it is
 * built when a token is requested and wiped (OPENSSL_cleanse) as soon as the
 * transfer finished. The secret and the private key are read through
 * config.h and cleared right after use. No function here writes the secret,
 * the assertion or the access token into a log line or an error message.
 */
#include "auth.h"

#include <ctype.h>
#include <stdarg.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "buf.h"
#include "clock.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "tls.h"

#define DEFAULT_RESOURCE "https://manage.office.com"
#define ASSERTION_LIFETIME_S 600
#define REFRESH_MARGIN_MS (5 * 60 * 1000)
#define SKEW_USE_MS (60 * 1000)     /* below this the local clock dates
                                       assertions as it is */

struct mf_auth {
    const struct mf_tenant_conf *t;
    struct mf_auth_opts opts;
    char *proxy;
    char *proxy_userpwd;
    char token_url[1024];
    char resource[512];

    char *token;            /* malloc'd, wiped on free */
    int64_t expires_ms;
    int64_t refresh_ms;
    char *roles;
    char *tid;

    struct mf_http *http;   /* while busy */
    bool busy;
    int64_t started_ms;
    struct mf_http_req req;
    struct mf_buf body;     /* holds a secret while busy */

    char err[512];
    enum mf_status st;
    int64_t skew_ms;        /* local clock - token host clock */
};

/* ---- helpers ------------------------------------------------------------ */

static void
wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static void
body_wipe(struct mf_buf *b)
{
    if (b->data && b->cap)
        OPENSSL_cleanse(b->data, b->cap);
    mf_buf_fini(b);
    mf_buf_init(b, 0);
}

/* application/x-www-form-urlencoded value (RFC 3986 unreserved kept). */
static void
form_escape(struct mf_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            mf_buf_appendc(b, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            mf_buf_append(b, e, 3);
        }
    }
}

static void
form_kv(struct mf_buf *b, const char *k, const char *v, size_t vlen)
{
    if (b->len)
        mf_buf_appendc(b, '&');
    mf_buf_appends(b, k);
    mf_buf_appendc(b, '=');
    form_escape(b, v, vlen);
}

static void
b64url(struct mf_buf *b, const unsigned char *p, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t i;

    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8) |
                     p[i + 2];
        char o[4] = {tab[v >> 18], tab[(v >> 12) & 63], tab[(v >> 6) & 63],
                     tab[v & 63]};
        mf_buf_append(b, o, 4);
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        char o[2] = {tab[v >> 18], tab[(v >> 12) & 63]};
        mf_buf_append(b, o, 2);
    } else if (n - i == 2) {
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8);
        char o[3] = {tab[v >> 18], tab[(v >> 12) & 63], tab[(v >> 6) & 63]};
        mf_buf_append(b, o, 3);
    }
}

/* base64url (padding optional) -> bytes; -1 on a bad character. */
static int
b64url_decode(const char *s, size_t n, struct mf_buf *out)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        int c = (unsigned char)s[i], v;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '-' || c == '+') v = 62;
        else if (c == '_' || c == '/') v = 63;
        else if (c == '=') break;
        else return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            mf_buf_appendc(out, (char)((acc >> bits) & 0xff));
        }
    }
    return 0;
}

static void
set_err(struct mf_auth *a, enum mf_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_err(struct mf_auth *a, enum mf_status st, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(a->err, sizeof(a->err), fmt, ap);
    va_end(ap);
    a->st = st;
}

/* ---- certificate assertion ---------------------------------------------- */

/* The certificate's SHA-1 and SHA-256 thumbprints, base64url, into x5t and
 * x5t256 (the JWT header's x5t and x5t#S256). 0 / -1 (a->err set). */
static int
cert_thumbprints(struct mf_auth *a, struct mf_buf *x5t, struct mf_buf *x5t256)
{
    const struct mf_tenant_conf *t = a->t;
    unsigned char der_sha1[20], der_sha256[32];
    unsigned char *der = NULL;
    char reason[200];
    int derlen, rc = -1;
    X509 *cert = NULL;
    FILE *f;

    f = t->certificate_file ? fopen(t->certificate_file, "r") : NULL;
    if (!f) {
        set_err(a, MF_FATAL, "tenant %s: cannot open certificate_file %s",
                t->name, t->certificate_file ? t->certificate_file : "(none)");
        goto out;
    }
    cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!cert) {
        mf_tls_reason(reason, sizeof(reason), "unknown error");
        set_err(a, MF_FATAL, "tenant %s: certificate_file %s is not a PEM "
                "certificate: %s", t->name, t->certificate_file, reason);
        goto out;
    }
    derlen = i2d_X509(cert, &der);
    if (derlen <= 0) {
        set_err(a, MF_FATAL, "tenant %s: cannot encode the certificate",
                t->name);
        goto out;
    }
    SHA1(der, (size_t)derlen, der_sha1);
    SHA256(der, (size_t)derlen, der_sha256);
    b64url(x5t, der_sha1, sizeof(der_sha1));
    b64url(x5t256, der_sha256, sizeof(der_sha256));
    rc = 0;
out:
    OPENSSL_free(der);
    X509_free(cert);
    return rc;
}

/* Append the assertion's signing input to jwt: base64url(header) '.'
 * base64url(payload), with a random jti, valid from now for
 * ASSERTION_LIFETIME_S. 0 / -1 (a->err set: no random bytes). */
static int
assertion_claims(struct mf_auth *a, int64_t now, const struct mf_buf *x5t,
                 const struct mf_buf *x5t256, struct mf_buf *jwt)
{
    const struct mf_tenant_conf *t = a->t;
    unsigned char rnd[16];
    char jti[33];
    struct mf_buf hdr;

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        set_err(a, MF_RETRY, "tenant %s: no random bytes for the jti", t->name);
        return -1;
    }
    for (int i = 0; i < 16; i++)
        snprintf(jti + 2 * i, 3, "%02x", rnd[i]);

    mf_buf_init(&hdr, 0);
    mf_buf_printf(&hdr, "{\"alg\":\"%s\",\"typ\":\"JWT\",\"x5t\":\"%s\","
                  "\"x5t#S256\":\"%s\"}", a->opts.pss ? "PS256" : "RS256",
                  x5t->data, x5t256->data);
    b64url(jwt, (const unsigned char *)hdr.data, hdr.len);
    mf_buf_appendc(jwt, '.');
    mf_buf_reset(&hdr);
    mf_buf_appends(&hdr, "{\"aud\":");
    mf_json_write_str(&hdr, a->token_url, strlen(a->token_url));
    mf_buf_appends(&hdr, ",\"iss\":");
    mf_json_write_str(&hdr, t->client_id, strlen(t->client_id));
    mf_buf_appends(&hdr, ",\"sub\":");
    mf_json_write_str(&hdr, t->client_id, strlen(t->client_id));
    mf_buf_printf(&hdr, ",\"jti\":\"%s\",\"nbf\":%lld,\"iat\":%lld,"
                  "\"exp\":%lld}", jti, (long long)now, (long long)now,
                  (long long)(now + ASSERTION_LIFETIME_S));
    b64url(jwt, (const unsigned char *)hdr.data, hdr.len);
    mf_buf_fini(&hdr);
    return 0;
}

/* The tenant's RSA private key (the secret read, parsed and cleared), or
 * NULL (a->err set). The caller frees it with EVP_PKEY_free(). */
static EVP_PKEY *
load_rsa_key(struct mf_auth *a)
{
    const struct mf_tenant_conf *t = a->t;
    struct mf_secret key = {0};
    char err[256], reason[200];
    EVP_PKEY *pkey = NULL;
    BIO *bio;

    if (mf_tenant_private_key(t, &key, err, sizeof(err)) != 0) {
        set_err(a, MF_FATAL, "%s", err);
        return NULL;
    }
    bio = BIO_new_mem_buf(key.data, (int)key.len);
    pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    mf_secret_clear(&key);
    if (!pkey) {
        mf_tls_reason(reason, sizeof(reason), "unknown error");
        set_err(a, MF_FATAL, "tenant %s: private_key_file is not a readable "
                "PEM private key (%s)", t->name, reason);
    } else if (EVP_PKEY_base_id(pkey) != EVP_PKEY_RSA) {
        set_err(a, MF_FATAL, "tenant %s: the private key is not RSA", t->name);
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    BIO_free(bio);
    return pkey;
}

/* Sign jwt (the signing input) with pkey, SHA-256 with PSS or PKCS#1 v1.5
 * padding (a->opts.pss), and append '.' base64url(signature). 0 / -1
 * (a->err set). */
static int
sign_assertion(struct mf_auth *a, EVP_PKEY *pkey, struct mf_buf *jwt)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char *sig = NULL;
    size_t siglen = 0;
    char reason[200];
    int rc = -1;

    if (!md || EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, pkey) != 1)
        goto out;
    if (a->opts.pss) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx,
                                             RSA_PSS_SALTLEN_DIGEST) != 1 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1)
            goto out;
    } else if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
        goto out;
    }
    if (EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)jwt->data,
                       jwt->len) != 1)
        goto out;
    sig = mf_xmalloc(siglen);
    if (EVP_DigestSign(md, sig, &siglen, (const unsigned char *)jwt->data,
                       jwt->len) != 1)
        goto out;
    mf_buf_appendc(jwt, '.');
    b64url(jwt, sig, siglen);
    rc = 0;
out:
    if (rc != 0) {
        mf_tls_reason(reason, sizeof(reason), "unknown error");
        set_err(a, MF_FATAL, "tenant %s: signing the client assertion "
                "failed: %s", a->t->name, reason);
    }
    free(sig);
    EVP_MD_CTX_free(md);
    return rc;
}

/* Append the signed client_assertion JWT to jwt. 0 / -1 (a->err set). */
static int
make_assertion(struct mf_auth *a, int64_t now_ms, struct mf_buf *jwt)
{
    struct mf_buf x5t, x5t256;
    EVP_PKEY *pkey = NULL;
    int rc = -1;

    mf_buf_init(&x5t, 0);
    mf_buf_init(&x5t256, 0);
    if (cert_thumbprints(a, &x5t, &x5t256) != 0 ||
        assertion_claims(a, now_ms / 1000, &x5t, &x5t256, jwt) != 0)
        goto out;
    if (!(pkey = load_rsa_key(a)))
        goto out;
    rc = sign_assertion(a, pkey, jwt);
out:
    EVP_PKEY_free(pkey);
    mf_buf_fini(&x5t);
    mf_buf_fini(&x5t256);
    return rc;
}

/* ---- lifecycle ---------------------------------------------------------- */

struct mf_auth *
mf_auth_new(const struct mf_tenant_conf *t, const struct mf_auth_opts *opts)
{
    struct mf_auth *a = mf_xcalloc(1, sizeof(*a));
    const char *login = t->login_endpoint ? t->login_endpoint
                                          : mf_cloud_login_endpoint(t->cloud);
    size_t n;

    a->t = t;
    if (opts)
        a->opts = *opts;
    if (a->opts.proxy) {
        a->proxy = mf_xstrdup(a->opts.proxy);
        a->opts.proxy = a->proxy;
    }
    if (a->opts.proxy_userpwd) {
        a->proxy_userpwd = mf_xstrdup(a->opts.proxy_userpwd);
        a->opts.proxy_userpwd = a->proxy_userpwd;
    }
    n = strlen(login);
    while (n > 0 && login[n - 1] == '/')
        n--;
    snprintf(a->token_url, sizeof(a->token_url), "%.*s/%s/oauth2/%stoken",
             (int)n, login, t->id, a->opts.v1 ? "" : "v2.0/");
    snprintf(a->resource, sizeof(a->resource), "%s",
             t->resource ? t->resource : DEFAULT_RESOURCE);
    n = strlen(a->resource);
    while (n > 0 && a->resource[n - 1] == '/')
        a->resource[--n] = '\0';
    mf_http_req_init(&a->req);
    mf_buf_init(&a->body, 0);
    a->st = MF_OK;
    return a;
}

static void
forget_token(struct mf_auth *a)
{
    wipe_free(a->token);
    a->token = NULL;
    free(a->roles);
    a->roles = NULL;
    free(a->tid);
    a->tid = NULL;
    a->expires_ms = 0;
    a->refresh_ms = 0;
}

void
mf_auth_destroy(struct mf_auth *a)
{
    if (!a)
        return;
    if (a->busy && a->http)
        mf_http_cancel(a->http, &a->req);
    forget_token(a);
    body_wipe(&a->body);
    if (a->req.resp.data)
        OPENSSL_cleanse(a->req.resp.data, a->req.resp.cap);
    mf_http_req_fini(&a->req);
    free(a->proxy);
    wipe_free(a->proxy_userpwd);
    free(a);
}

const char *
mf_auth_token(struct mf_auth *a, int64_t now_ms)
{
    if (a->token && now_ms < a->refresh_ms)
        return a->token;
    return NULL;
}

bool
mf_auth_busy(const struct mf_auth *a)
{
    return a->busy;
}

void
mf_auth_invalidate(struct mf_auth *a)
{
    forget_token(a);
}

const char *
mf_auth_last_error(const struct mf_auth *a)
{
    return a->err;
}

enum mf_status
mf_auth_last_status(const struct mf_auth *a)
{
    return a->st;
}

void
mf_auth_set_skew(struct mf_auth *a, int64_t skew_ms)
{
    a->skew_ms = skew_ms;
}

const char *
mf_auth_roles(const struct mf_auth *a)
{
    return a->roles ? a->roles : "";
}

int64_t
mf_auth_expires_ms(const struct mf_auth *a)
{
    return a->expires_ms;
}

const struct mf_http_req *
mf_auth_last_response(const struct mf_auth *a)
{
    return &a->req;
}

const char *
mf_auth_tid(const struct mf_auth *a)
{
    return a->tid ? a->tid : "";
}

const char *
mf_auth_token_url(const struct mf_auth *a)
{
    return a->token_url;
}

/* ---- response ----------------------------------------------------------- */

/* Read roles and tid from the (unverified) JWT payload. */
static void
read_claims(struct mf_auth *a)
{
    const char *p = strchr(a->token, '.'), *q;
    struct mf_buf js, roles;
    struct mf_arena ar;
    struct mf_jval *root, *r;
    size_t i;

    if (!p)
        return;
    q = strchr(p + 1, '.');
    if (!q)
        return;
    mf_buf_init(&js, 1 << 20);
    mf_buf_init(&roles, 0);
    mf_arena_init(&ar, 0);
    if (b64url_decode(p + 1, (size_t)(q - p - 1), &js) == 0 && js.len > 0) {
        root = mf_json_parse(&ar, js.data, js.len, NULL, NULL, NULL);
        r = mf_jobj_get(root, "roles");
        if (mf_jis_arr(r)) {
            for (i = 0; i < r->len; i++) {
                const char *s = mf_jstrv(r->u.items[i]);
                if (!s)
                    continue;
                if (roles.len)
                    mf_buf_appendc(&roles, ',');
                mf_buf_appends(&roles, s);
            }
        }
        if (mf_jstrv(mf_jobj_get(root, "tid")))
            a->tid = mf_xstrdup(mf_jstrv(mf_jobj_get(root, "tid")));
    }
    a->roles = mf_xstrdup(roles.data ? roles.data : "");
    mf_arena_fini(&ar);
    mf_buf_fini(&js);
    mf_buf_fini(&roles);
}

/* Token endpoint verdicts (m365-api.md §1.8; issue 11 defect 1): what is
 * transient is retried with backoff like any API error, the rest is a
 * configuration error (retried at a slow cadence by the caller). First
 * matching row wins; status 0 = any, NULL = any. */
struct token_row {
    long status_lo, status_hi;
    const char *error;          /* the body's "error" */
    const char *code;           /* "AADSTS<n>" */
    enum mf_status verdict;
    const char *why;
};

static const struct token_row token_verdicts[] = {
    {0, 0, "temporarily_unavailable", NULL, MF_RETRY, "Entra ID temporarily unavailable"},
    {0, 0, "server_error", NULL, MF_RETRY, "Entra ID server error"},
    {0, 0, NULL, "AADSTS90033", MF_RETRY, "Entra ID transient error"},
    {0, 0, NULL, "AADSTS90055", MF_RETRY, "token endpoint throttled"},
    /* the assertion was dated by a local clock far off: the next one is
     * dated on the token host's clock (its Date header) */
    {0, 0, NULL, "AADSTS700024", MF_RETRY, "client assertion outside its validity "
     "(clock skew)"},
    {500, 599, NULL, NULL, MF_RETRY, "token endpoint server error"},
    {408, 408, NULL, NULL, MF_RETRY, "token endpoint timeout"},
    {429, 429, NULL, NULL, MF_RETRY, "token endpoint throttled"},
    {400, 499, NULL, NULL, MF_FATAL, "configuration error"},
    {0, 0, NULL, NULL, MF_RETRY, "unexpected answer from the token endpoint"},
};

static const struct token_row *
token_verdict(const struct mf_http_req *req, const char *error)
{
    size_t i;

    for (i = 0; i < sizeof(token_verdicts) / sizeof(token_verdicts[0]); i++) {
        const struct token_row *r = &token_verdicts[i];

        if (r->status_lo && (req->status < r->status_lo || req->status > r->status_hi))
            continue;
        if (r->error && strcmp(r->error, error) != 0)
            continue;
        if (r->code && strcmp(r->code, req->af_code) != 0)
            continue;
        return r;
    }
    return &token_verdicts[i - 1];
}

/* The "error" member of a token endpoint error body ("" when none). */
static void
oauth_error(const struct mf_http_req *req, char *out, size_t n)
{
    struct mf_arena ar;
    const char *e;

    out[0] = '\0';
    if (!req->resp.data || req->resp.len == 0)
        return;
    mf_arena_init(&ar, 0);
    e = mf_jstrv(mf_jobj_get(mf_json_parse(&ar, req->resp.data, req->resp.len, NULL,
                                           NULL, NULL), "error"));
    if (e)
        snprintf(out, n, "%s", e);
    mf_arena_fini(&ar);
}

static void
auth_done(struct mf_http_req *req, void *ud)
{
    struct mf_auth *a = ud;
    char why[300];
    enum mf_status st;

    a->busy = false;
    a->http = NULL;
    body_wipe(&a->body);
    req->body = NULL;
    req->body_len = 0;
    req->basic_pass = NULL;
    if (req->date_ms > 0)
        a->skew_ms = mf_clock_wall_ms() - req->date_ms;

    st = mf_http_classify(req, why, sizeof(why));
    if (st == MF_OK) {
        struct mf_arena ar;
        struct mf_jval *root, *tok, *exp;
        int64_t exp_s = 0;

        mf_arena_init(&ar, 0);
        root = mf_json_parse(&ar, req->resp.data ? req->resp.data : "",
                             req->resp.len, NULL, NULL, NULL);
        tok = mf_jobj_get(root, "access_token");
        exp = mf_jobj_get(root, "expires_in");
        if (!mf_jis_str(tok) || tok->len == 0 ||
            mf_jget_int(exp, &exp_s) != 0 || exp_s <= 0) {
            set_err(a, MF_RETRY, "tenant %s: token response without "
                    "access_token or expires_in", a->t->name);
        } else {
            int64_t life = exp_s * 1000, at = life * 8 / 10;
            forget_token(a);
            a->token = mf_xstrndup(tok->u.s, tok->len);
            a->expires_ms = a->started_ms + life;
            if (life - REFRESH_MARGIN_MS < at)
                at = life - REFRESH_MARGIN_MS;
            if (at < 0)
                at = 0;
            a->refresh_ms = a->started_ms + at;
            read_claims(a);
            a->err[0] = '\0';
            a->st = MF_OK;
            OPENSSL_cleanse((void *)tok->u.s, tok->len);
        }
        mf_arena_fini(&ar);
    } else if (req->status == 0 || req->curl_code != 0) {
        set_err(a, MF_RETRY, "tenant %s: token request failed: %s (retrying)",
                a->t->name, req->error);
    } else {
        char error[64];
        const struct token_row *v;

        oauth_error(req, error, sizeof(error));
        v = token_verdict(req, error);
        if (req->af_code[0])
            set_err(a, v->verdict, "tenant %s: token request refused, %s (HTTP %ld%s%s): "
                    "%s: %s", a->t->name, v->why, req->status, error[0] ? " " : "",
                    error, req->af_code, req->af_message);
        else
            set_err(a, v->verdict, "tenant %s: token request refused, %s: %s",
                    a->t->name, v->why, why);
    }
    if (req->resp.data)
        OPENSSL_cleanse(req->resp.data, req->resp.cap);
    if (a->st != MF_OK)
        mf_log(MF_LOG_WARN, "%s", a->err);
}

int
mf_auth_refresh(struct mf_auth *a, struct mf_http *h, int64_t now_ms)
{
    const struct mf_tenant_conf *t = a->t;
    char err[256];

    if (a->busy)
        return 0;
    body_wipe(&a->body);
    if (!t->client_id || !t->client_id[0]) {
        set_err(a, MF_FATAL, "tenant %s: no client_id configured", t->name);
        return -1;
    }
    form_kv(&a->body, "grant_type", "client_credentials", 18);
    form_kv(&a->body, "client_id", t->client_id, strlen(t->client_id));
    if (a->opts.v1) {
        form_kv(&a->body, "resource", a->resource, strlen(a->resource));
    } else {
        char scope[600];
        snprintf(scope, sizeof(scope), "%s/.default", a->resource);
        form_kv(&a->body, "scope", scope, strlen(scope));
    }
    if (t->auth == MF_AUTH_CERTIFICATE) {
        struct mf_buf jwt;
        mf_buf_init(&jwt, 0);
        bool off = a->skew_ms > SKEW_USE_MS || a->skew_ms < -SKEW_USE_MS;

        if (make_assertion(a, off ? now_ms - a->skew_ms : now_ms, &jwt) != 0) {
            mf_buf_fini(&jwt);
            body_wipe(&a->body);
            return -1;
        }
        form_kv(&a->body, "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", 54);
        form_kv(&a->body, "client_assertion", jwt.data, jwt.len);
        mf_buf_fini(&jwt);
    } else {
        struct mf_secret s = {0};
        if (mf_tenant_client_secret(t, &s, err, sizeof(err)) != 0) {
            set_err(a, MF_FATAL, "%s", err);
            body_wipe(&a->body);
            return -1;
        }
        form_kv(&a->body, "client_secret", s.data, s.len);
        mf_secret_clear(&s);
    }

    mf_http_req_fini(&a->req);
    mf_http_req_init(&a->req);
    a->req.method = "POST";
    snprintf(a->req.url, sizeof(a->req.url), "%s", a->token_url);
    a->req.body = a->body.data;
    a->req.body_len = a->body.len;
    a->req.content_type = "application/x-www-form-urlencoded";
    a->req.ca_file = t->ca_file;
    a->req.proxy = a->opts.proxy;
    a->req.proxy_userpwd = a->opts.proxy_userpwd;
    a->req.timeout_ms = a->opts.transfer_timeout_ms > 0 ? (long)a->opts.transfer_timeout_ms
                                                        : 120000;
    a->req.connect_timeout_ms = a->opts.request_timeout_ms > 0
                                ? (long)a->opts.request_timeout_ms : 60000;
    a->req.stall_seconds = (long)((a->req.connect_timeout_ms + 999) / 1000);
    a->req.max_body = 1 << 20;
    a->req.done = auth_done;
    a->req.ud = a;
    a->started_ms = now_ms;
    if (mf_http_submit(h, &a->req) != 0) {
        body_wipe(&a->body);
        set_err(a, MF_RETRY, "tenant %s: token request not started: %s",
                t->name, a->req.error);
        return -1;
    }
    a->busy = true;
    a->http = h;
    return 0;
}

const char *
mf_auth_get(struct mf_auth *a, struct mf_http *h, int64_t now_ms)
{
    const char *tok = mf_auth_token(a, now_ms);

    if (tok)
        return tok;
    if (!a->busy && mf_auth_refresh(a, h, now_ms) != 0)
        return NULL;
    while (a->busy)
        mf_http_run(h, 1000);
    if (a->st != MF_OK)
        return NULL;
    return a->token;
}
