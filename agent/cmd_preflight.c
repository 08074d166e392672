/* cmd_preflight.c - `m365fwd preflight`: is every tenant ready to collect?
 *
 * Per tenant: token, roles, subscriptions, one content listing (last hour),
 * clock. Each check prints one line, "OK", "WARN" or "FAIL", with what is
 * wrong and how to fix it. The diagnosis is data: a table of AADSTS / AF
 * codes and one of transport errors.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "clock.h"
#include "cli.h"
#include "agent_conf.h"
#include "geoip.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "preflight.h"

#define SKEW_WARN_MS (5 * 60 * 1000)

const char mf_cmd_preflight_usage[] =
    "Usage: m365fwd preflight -c FILE [--tenant NAME]\n"
    "\n"
    "Check that every configured tenant can be collected: get a token, read\n"
    "its roles (ActivityFeed.Read; ActivityFeed.ReadDlp for DLP.All), list\n"
    "the subscriptions, try one content listing (last hour) and compare the\n"
    "service clock with the local one. Prints one line per check (OK, WARN,\n"
    "FAIL) saying what is wrong and how to fix it. Nothing is changed: a\n"
    "missing subscription is reported, `m365fwd run` starts it.\n"
    "\n"
    "With a `cluster` section it first checks the cluster: the brokers\n"
    "answer, the topics <prefix>.assign and <prefix>.state have one\n"
    "partition per shard (the state compacted), or the command to create\n"
    "them; and it says which outputs are exactly once (Kafka outputs on the\n"
    "cluster's brokers) and which stay at-least-once (WARN).\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE   configuration file (required)\n"
    "  -t, --tenant NAME   check only this tenant (name or id)\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit status: 0 every tenant passed (warnings allowed), 1 a check\n"
    "failed or the configuration is invalid, 2 usage.\n";

enum verdict { V_OK, V_WARN, V_FAIL };

static const char *const vname[] = {"OK", "WARN", "FAIL"};

struct diag {
    const char *code;   /* af_code (exact), or "" for any */
    enum verdict v;
    const char *what;
    const char *fix;
};

/* Token endpoint (AADSTS) and API (AF) codes. */
static const struct diag code_diags[] = {
    {"AADSTS90002", V_FAIL, "wrong tenant: Entra ID does not know this tenant",
     "set tenants[].id to the Directory (tenant) ID GUID or a verified "
     "domain, and check `cloud`"},
    {"AADSTS700016", V_FAIL, "app not found in this tenant",
     "check client_id (the Application (client) ID); for a multi-tenant app "
     "an admin of this tenant must grant consent first"},
    {"AADSTS7000215", V_FAIL, "bad client secret",
     "put the secret's Value (not its Secret ID) in the secret file or "
     "variable"},
    {"AADSTS7000222", V_FAIL, "the client secret has expired",
     "create a new client secret in the app registration (Certificates & "
     "secrets) and update the secret file or variable"},
    {"AADSTS700027", V_FAIL, "certificate not registered for the app (or the "
     "signature does not verify)",
     "upload certificate_file's certificate to the app registration "
     "(Certificates & secrets) and check private_key_file belongs to it"},
    {"AADSTS50012", V_FAIL, "certificate or secret rejected",
     "check the credential registered on the app"},
    {"AADSTS7000112", V_FAIL, "the application is disabled",
     "enable the app's service principal in Entra ID (Enterprise "
     "applications)"},
    {"AADSTS7000218", V_FAIL, "no credential sent",
     "configure client_secret_file, client_secret_env or a certificate"},
    {"AADSTS700024", V_FAIL, "client assertion outside its validity window",
     "fix the local clock (NTP)"},
    {"AADSTS500133", V_FAIL, "client assertion outside its validity window",
     "fix the local clock (NTP)"},
    {"AADSTS500011", V_FAIL, "the Office 365 Management API is not known in "
     "this tenant (wrong resource or cloud)",
     "check `cloud` (and `resource`); the app needs Office 365 Management "
     "APIs permissions"},
    {"AADSTS70011", V_FAIL, "invalid scope", "check `cloud` and `resource`"},
    {"AADSTS90055", V_WARN, "the token endpoint is throttling this tenant",
     "try again later"},
    {MF_HTTP_TENANT_NOT_EXIST, V_FAIL, "unified audit logging is off for "
     "this tenant (the audit service does not know it)",
     "turn auditing on: Microsoft Purview portal > Audit > Start recording "
     "user and admin activity (or Set-AdminAuditLogConfig "
     "-UnifiedAuditLogIngestionEnabled $true); it can take up to 60 minutes"},
    {"AF10001", V_FAIL, "no admin consent: the app lacks ActivityFeed.Read",
     "add the application permission Office 365 Management APIs > "
     "ActivityFeed.Read and grant admin consent"},
    {"AF20010", V_FAIL, "the tenant in the URL is not the token's tenant",
     "set tenants[].id to the tenant GUID the app authenticates in"},
    {"AF20011", V_FAIL, "the tenant does not exist or was deleted",
     "check tenants[].id"},
    {"AF20012", V_FAIL, "the tenant is incorrectly configured for the "
     "Management Activity API", "contact Microsoft support"},
    {"AF20013", V_FAIL, "the tenant in the URL is not a GUID",
     "set tenants[].id to the tenant GUID"},
    {"AF429", V_WARN, "throttled by the API", "try again later; lower "
     "collect.requests_per_minute"},
    {"AF20022", V_WARN, "subscription missing", "`m365fwd run` starts it"},
    {"AF20023", V_WARN, "subscription disabled by an admin",
     "`m365fwd run` starts it again"},
};

struct tdiag {
    int curl_code;
    const char *match;   /* substring of the error text, or NULL */
    const char *what;
    const char *fix;
};

static const struct tdiag transport_diags[] = {
    /* curl says "CONNECT tunnel failed, response 407" (or "Received HTTP
     * code 407 from proxy"): matched whole, not a "407" in a URL's port */
    {-1, "response 407", "the proxy wants authentication (HTTP 407)",
     "put \"user:password\" in the file named by proxy_auth_file"},
    {-1, "code 407", "the proxy wants authentication (HTTP 407)",
     "put \"user:password\" in the file named by proxy_auth_file"},
    {CURLE_PEER_FAILED_VERIFICATION, "name", "TLS: the server certificate "
     "does not match the host name",
     "check login_endpoint / api_endpoint; a TLS-inspecting proxy must "
     "present a certificate for the real host"},
    {CURLE_PEER_FAILED_VERIFICATION, "match", "TLS: the server certificate "
     "does not match the host name",
     "check login_endpoint / api_endpoint; a TLS-inspecting proxy must "
     "present a certificate for the real host"},
    {CURLE_PEER_FAILED_VERIFICATION, NULL, "TLS: the server certificate is "
     "not trusted (unknown CA)",
     "if a TLS-inspecting proxy is in the way, set ca_file to its CA "
     "certificate; TLS verification cannot be turned off"},
    {CURLE_SSL_CACERT_BADFILE, NULL, "TLS: ca_file cannot be read as PEM "
     "certificates", "check ca_file"},
    {CURLE_SSL_CONNECT_ERROR, NULL, "TLS handshake failed",
     "check the endpoint and any proxy in the way"},
    {CURLE_COULDNT_RESOLVE_PROXY, NULL, "proxy host name does not resolve",
     "check `proxy` / HTTPS_PROXY"},
    {CURLE_PROXY, NULL, "the proxy refused the connection",
     "check `proxy` / HTTPS_PROXY and proxy_auth_file"},
    {CURLE_RECV_ERROR, "proxy", "the proxy refused the tunnel",
     "check `proxy` / HTTPS_PROXY and proxy_auth_file"},
    {CURLE_COULDNT_RESOLVE_HOST, NULL, "host name does not resolve",
     "check DNS, login_endpoint / api_endpoint, or set `proxy`"},
    {CURLE_COULDNT_CONNECT, "proxy", "cannot connect to the proxy",
     "check `proxy` / HTTPS_PROXY"},
    {CURLE_COULDNT_CONNECT, NULL, "cannot connect",
     "check the firewall (outbound HTTPS), the endpoint, or set `proxy`"},
    {CURLE_OPERATION_TIMEDOUT, NULL, "timed out",
     "check the network path and any proxy"},
    {-1, NULL, "network error", "check the network path and any proxy"},
};

struct pf {
    const struct mf_config *cfg;
    const char *proxy_userpwd;
    struct mf_http *http;
    int fails, warns;
    int64_t skew_ms;
    bool have_date;
};

static void
line(struct pf *p, const struct mf_tenant_conf *t, enum verdict v,
     const char *check, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
line(struct pf *p, const struct mf_tenant_conf *t, enum verdict v,
     const char *check, const char *fmt, ...)
{
    va_list ap;

    printf("%-4s %s: %s: ", vname[v], t->name, check);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    if (v == V_FAIL)
        p->fails++;
    else if (v == V_WARN)
        p->warns++;
}

static void
note_date(struct pf *p, const struct mf_http_req *r, int64_t local_ms)
{
    if (r->date_ms > 0 && !p->have_date) {
        p->skew_ms = local_ms - r->date_ms;
        p->have_date = true;
    }
}

/* A line of the cluster's checks (mf_cluster_preflight). */
static void
cluster_line(void *ud, int v, const char *check, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
cluster_line(void *ud, int v, const char *check, const char *fmt, ...)
{
    struct pf *p = ud;
    va_list ap;

    printf("%-4s cluster: %s: ", vname[v], check);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    if (v == V_WARN)
        p->warns++;
}

/* Explain a failed request; returns the verdict printed. */
static enum verdict
explain(struct pf *p, const struct mf_tenant_conf *t, const char *check,
        const struct mf_http_req *r, const char *proxy)
{
    size_t i;

    if (r->curl_code != 0 || r->status == 0) {
        for (i = 0; i < sizeof(transport_diags) / sizeof(transport_diags[0]);
             i++) {
            const struct tdiag *d = &transport_diags[i];
            if (d->curl_code != -1 && d->curl_code != r->curl_code)
                continue;
            if (d->match && !strcasestr(r->error, d->match) &&
                !(strcmp(d->match, "proxy") == 0 && proxy))
                continue;
            line(p, t, V_FAIL, check, "%s (%s). Fix: %s", d->what, r->error,
                 d->fix);
            return V_FAIL;
        }
    }
    for (i = 0; i < sizeof(code_diags) / sizeof(code_diags[0]); i++) {
        const struct diag *d = &code_diags[i];
        if (strcmp(d->code, r->af_code) != 0)
            continue;
        line(p, t, d->v, check, "%s (HTTP %ld %s%s%s). Fix: %s", d->what,
             r->status, r->af_code, r->af_message[0] ? ": " : "",
             r->af_message, d->fix);
        return d->v;
    }
    if (r->status == 407) {
        line(p, t, V_FAIL, check, "the proxy wants authentication (HTTP 407). "
             "Fix: set proxy_auth_file");
        return V_FAIL;
    }
    if (r->status == 401) {
        line(p, t, V_FAIL, check, "the API refused the token (HTTP 401%s%s). "
             "Fix: check `cloud`/`resource` (token audience) and that "
             "tenants[].id is the app's tenant",
             r->af_message[0] ? ": " : "", r->af_message);
        return V_FAIL;
    }
    line(p, t, V_FAIL, check, "HTTP %ld %s%s%s", r->status, r->af_code,
         r->af_code[0] ? ": " : "", r->af_message[0] ? r->af_message : "");
    return V_FAIL;
}

/* The proxy libcurl will use, or NULL. */
static const char *
proxy_in_use(const struct mf_config *cfg)
{
    static const char *const vars[] = {"https_proxy", "HTTPS_PROXY",
                                       "all_proxy", "ALL_PROXY"};
    size_t i;

    if (cfg->proxy)
        return cfg->proxy;
    for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        if (getenv(vars[i]) && *getenv(vars[i]))
            return getenv(vars[i]);
    return NULL;
}

static bool
has_role(const char *roles, const char *role)
{
    size_t n = strlen(role);
    const char *p = roles;

    while ((p = strstr(p, role)) != NULL) {
        if ((p == roles || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return true;
        p += n;
    }
    return false;
}

static const char *const all_types[] = {
    "Audit.AzureActiveDirectory", "Audit.Exchange", "Audit.SharePoint",
    "Audit.General", "DLP.All",
};

static void
api_url(char *out, size_t n, const struct mf_tenant_conf *t, const char *tid,
        const char *op, const char *query)
{
    const char *api = t->api_endpoint ? t->api_endpoint
                                      : mf_cloud_api_endpoint(t->cloud);
    const char *pub = t->publisher_id ? t->publisher_id : tid;

    snprintf(out, n,
             "%s/api/v1.0/%s/activity/feed/%s?%s%sPublisherIdentifier=%s",
             api, tid, op, query ? query : "", query ? "&" : "", pub);
}

/* One tenant's checks, step by step. */
struct pf_tenant {
    const struct mf_tenant_conf *t;
    struct mf_auth *a;
    const char *const *types;   /* the content types checked */
    size_t ntypes;
    const char *tok, *tid;
    const char *list_type;      /* the first one subscribed to */
    bool subscribed_any;
    int64_t local;              /* the local clock when subscriptions answered */
};

/* r (its url set) sent with the tenant's token, CA and the proxy; the
 * service's clock noted. The local clock at the answer. */
static int64_t
api_get(struct pf *p, const struct pf_tenant *x, struct mf_http_req *r)
{
    int64_t local;

    r->bearer = x->tok;
    r->ca_file = x->t->ca_file;
    r->proxy = p->cfg->proxy;
    r->proxy_userpwd = p->proxy_userpwd;
    r->timeout_ms = 60000;
    mf_http_perform(p->http, r);
    local = mf_clock_wall_ms();
    note_date(p, r, local);
    return local;
}

/* A token from the tenant's credentials: false when there is none. */
static bool
check_token(struct pf *p, struct pf_tenant *x, int64_t t0)
{
    const struct mf_tenant_conf *t = x->t;
    const struct mf_http_req *tr;

    x->tok = mf_auth_get(x->a, p->http, t0);
    tr = mf_auth_last_response(x->a);
    note_date(p, tr, mf_clock_wall_ms());
    if (!x->tok) {
        if (tr->status == 0 && tr->curl_code == 0)
            line(p, t, V_FAIL, "token", "%s", mf_auth_last_error(x->a));
        else
            explain(p, t, "token", tr, proxy_in_use(p->cfg));
        return false;
    }
    line(p, t, V_OK, "token", "obtained from %s (%s), valid %lld min",
         mf_auth_token_url(x->a),
         t->auth == MF_AUTH_CERTIFICATE ? "certificate" : "client secret",
         (long long)((mf_auth_expires_ms(x->a) - t0) / 60000));
    return true;
}

/* The token's roles: false without ActivityFeed.Read. */
static bool
check_roles(struct pf *p, const struct pf_tenant *x)
{
    const struct mf_tenant_conf *t = x->t;
    const char *roles = mf_auth_roles(x->a);
    bool dlp = false;

    for (size_t i = 0; i < x->ntypes; i++)
        if (strcasecmp(x->types[i], "DLP.All") == 0)
            dlp = true;
    if (!has_role(roles, "ActivityFeed.Read")) {
        line(p, t, V_FAIL, "roles", "the token has no ActivityFeed.Read role "
             "(roles: %s): no admin consent. Fix: add the application "
             "permission Office 365 Management APIs > ActivityFeed.Read"
             "%s and grant admin consent", roles[0] ? roles : "none",
             dlp ? " (and ActivityFeed.ReadDlp)" : "");
        return false;
    }
    if (dlp && !has_role(roles, "ActivityFeed.ReadDlp")) {
        line(p, t, V_FAIL, "roles", "DLP.All is configured but the token has "
             "no ActivityFeed.ReadDlp role (roles: %s). Fix: add the "
             "application permission ActivityFeed.ReadDlp and grant admin "
             "consent, or drop DLP.All from content_types", roles);
    } else {
        line(p, t, V_OK, "roles", "%s", roles);
    }
    return true;
}

/* The subscriptions' answer (a JSON array): the content types not
 * enabled, the first enabled one. */
static void
subscriptions_seen(struct pf *p, struct pf_tenant *x, const struct mf_http_req *r)
{
    const struct mf_tenant_conf *t = x->t;
    struct mf_arena ar;
    struct mf_jval *root;
    char missing[512] = "";
    bool is_arr;

    mf_arena_init(&ar, 0);
    root = mf_json_parse(&ar, r->resp.data ? r->resp.data : "", r->resp.len,
                         NULL, NULL, NULL);
    for (size_t i = 0; i < x->ntypes; i++) {
        size_t k;
        bool on = false;
        for (k = 0; mf_jis_arr(root) && k < root->len; k++) {
            struct mf_jval *e = root->u.items[k];
            const char *ct = mf_jstrv(mf_jobj_geti(e, "contentType"));
            const char *st = mf_jstrv(mf_jobj_geti(e, "status"));
            if (ct && st && strcasecmp(ct, x->types[i]) == 0 &&
                strcasecmp(st, "enabled") == 0)
                on = true;
        }
        if (on) {
            x->subscribed_any = true;
            if (!x->list_type)
                x->list_type = x->types[i];
        } else {
            size_t l = strlen(missing);
            snprintf(missing + l, sizeof(missing) - l, "%s%s",
                     l ? ", " : "", x->types[i]);
        }
    }
    is_arr = mf_jis_arr(root);
    mf_arena_fini(&ar);
    if (!is_arr)
        line(p, t, V_WARN, "subscriptions", "unexpected answer (not a "
             "JSON array)");
    else if (missing[0])
        line(p, t, V_WARN, "subscriptions", "not started: %s "
             "(`m365fwd run` starts them)", missing);
    else
        line(p, t, V_OK, "subscriptions", "all %zu content types enabled",
             x->ntypes);
}

/* The tenant's subscriptions: false when they cannot be listed. */
static bool
check_subscriptions(struct pf *p, struct pf_tenant *x)
{
    struct mf_http_req r;

    x->tid = mf_auth_tid(x->a)[0] ? mf_auth_tid(x->a) : x->t->id;
    mf_http_req_init(&r);
    api_url(r.url, sizeof(r.url), x->t, x->tid, "subscriptions/list", NULL);
    x->local = api_get(p, x, &r);
    if (mf_http_classify(&r, NULL, 0) != MF_OK) {
        explain(p, x->t, "subscriptions", &r, proxy_in_use(p->cfg));
        mf_http_req_fini(&r);
        return false;
    }
    subscriptions_seen(p, x, &r);
    mf_http_req_fini(&r);
    return true;
}

/* One listing, last hour. */
static void
check_listing(struct pf *p, struct pf_tenant *x)
{
    const struct mf_tenant_conf *t = x->t;
    struct mf_http_req r;
    char url[2048], q[256], s1[32], s2[32];

    if (!x->list_type)
        x->list_type = x->types[0];
    mf_clock_fmt_utc(x->local - 3600 * 1000, s1, sizeof(s1));
    mf_clock_fmt_utc(x->local, s2, sizeof(s2));
    snprintf(q, sizeof(q), "contentType=%s&startTime=%s&endTime=%s",
             x->list_type, s1, s2);
    mf_http_req_init(&r);
    api_url(url, sizeof(url), t, x->tid, "subscriptions/content", q);
    snprintf(r.url, sizeof(r.url), "%s", url);
    api_get(p, x, &r);
    if (mf_http_classify(&r, NULL, 0) != MF_OK) {
        if (!x->subscribed_any && (strcmp(r.af_code, "AF20022") == 0 ||
                                   strcmp(r.af_code, "AF20023") == 0))
            line(p, t, V_WARN, "listing", "%s: no active subscription yet "
                 "(`m365fwd run` starts it)", x->list_type);
        else
            explain(p, t, "listing", &r, proxy_in_use(p->cfg));
    } else {
        struct mf_arena ar;
        struct mf_jval *root;

        mf_arena_init(&ar, 0);
        root = mf_json_parse(&ar, r.resp.data ? r.resp.data : "", r.resp.len,
                             NULL, NULL, NULL);
        line(p, t, V_OK, "listing", "%s, last hour: %zu blob(s) on the first "
             "page%s", x->list_type, mf_jis_arr(root) ? root->len : 0,
             r.next_page_uri ? ", more pages" : "");
        mf_arena_fini(&ar);
    }
    mf_http_req_fini(&r);
}

/* The local clock against the service's (from its Date headers). */
static void
check_clock(struct pf *p, const struct mf_tenant_conf *t)
{
    if (p->have_date) {
        int64_t s = p->skew_ms;
        if (s > SKEW_WARN_MS || s < -SKEW_WARN_MS)
            line(p, t, V_WARN, "clock", "the local clock is %lld s %s the "
                 "service's. Fix: synchronize the clock (NTP: chrony or "
                 "systemd-timesyncd)", (long long)(s < 0 ? -s : s) / 1000,
                 s > 0 ? "ahead of" : "behind");
        else
            line(p, t, V_OK, "clock", "within %lld s of the service",
                 (long long)(s < 0 ? -s : s) / 1000 + 1);
    }
}

static void
check_tenant(struct pf *p, const struct mf_tenant_conf *t)
{
    struct mf_auth_opts ao = {.proxy = p->cfg->proxy,
                              .proxy_userpwd = p->proxy_userpwd};
    struct pf_tenant x = {.t = t, .a = mf_auth_new(t, &ao), .types = t->content_types.v,
                          .ntypes = t->content_types.n};
    int64_t t0 = mf_clock_wall_ms();
    int fails0 = p->fails;

    if (x.ntypes == 0) {
        x.types = all_types;
        x.ntypes = 5;
    }
    p->have_date = false;
    if (check_token(p, &x, t0) && check_roles(p, &x) && check_subscriptions(p, &x))
        check_listing(p, &x);
    check_clock(p, t);
    if (p->fails == fails0)
        line(p, t, V_OK, "ready", "this tenant can be collected");
    mf_auth_destroy(x.a);
}

/* The optional geolocation database: opened as `run` would; says what is
 * off without it. false when it is configured and cannot be read. */
static bool
check_geoip(const struct mf_config *cfg)
{
    struct mf_geoip *g;
    struct mf_err err;
    const char *db = cfg->normalizer.geoip_db;

    if (!db) {
        printf("SKIP geoip: off (no normalizer.geoip_db): records carry no "
               "locations and the distant-sign-in aggregate "
               "(identity.concurrent_sessions_multi_ip) is off\n");
        return true;
    }
    if (!(g = mf_geoip_open(db, &err))) {
        printf("FAIL geoip: %s\n", err.msg);
        return false;
    }
    printf("OK   geoip: %s (%s): locations and distant sign-ins on\n", db,
           mf_geoip_describe(g));
    mf_geoip_close(g);
    return true;
}

int
mf_cmd_preflight(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"tenant", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct mf_cmd *self = mf_cli_find("preflight");
    const char *file = NULL, *only = NULL;
    struct mf_err err;
    struct mf_secret proxy_auth = {0};
    struct mf_config *cfg;
    struct pf p;
    size_t i;
    int c, failed_tenants = 0, cluster_failed = 0;
    bool geo_ok;

    optind = 1;
    while ((c = getopt_long(argc, argv, "+c:t:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': file = optarg; break;
        case 't': only = optarg; break;
        case 'h': return mf_cli_help(self);
        default: return mf_cli_usage_error(self, "unknown option");
        }
    }
    if (optind < argc)
        return mf_cli_usage_error(self, "unexpected argument '%s'",
                                  argv[optind]);
    if (!file)
        return mf_cli_usage_error(self, "-c FILE is required");

    mf_err_reset(&err);
    cfg = mf_config_load_file(file, MF_CONFIG_REQUIRE_TENANTS |
                              MF_CONFIG_CHECK_FILES, &err);
    if (!cfg) {
        fprintf(stderr, "m365fwd preflight: %s",
                err.all[0] ? err.all : err.msg);
        if (!err.all[0] || err.all[strlen(err.all) - 1] != '\n')
            fputc('\n', stderr);
        return MF_EXIT_REJECTED;
    }
    if (only && !mf_config_tenant(cfg, only)) {
        fprintf(stderr, "m365fwd preflight: no tenant '%s' in %s\n", only,
                file);
        mf_config_destroy(cfg);
        return MF_EXIT_USAGE;
    }
    memset(&p, 0, sizeof(p));
    if (cfg->proxy_auth_file) {
        char e[256];
        if (mf_secret_load(cfg->proxy_auth_file, NULL, true,
                                  "proxy_auth_file", &proxy_auth, e,
                                  sizeof(e)) != 0) {
            fprintf(stderr, "m365fwd preflight: %s\n", e);
            mf_config_destroy(cfg);
            return MF_EXIT_REJECTED;
        }
        p.proxy_userpwd = proxy_auth.data;
    }
    mf_log_set_level(MF_LOG_ERROR);   /* the lines below say it all */
    geo_ok = check_geoip(cfg);
    p.cfg = cfg;
    if (mf_cluster_enabled(&cfg->cluster))
        cluster_failed = mf_cluster_preflight(cfg, cluster_line, &p);
    p.http = mf_http_new();
    for (i = 0; i < cfg->tenants.n; i++) {
        const struct mf_tenant_conf *t = &cfg->tenants.v[i];
        int f0 = p.fails;
        if (only && t != mf_config_tenant(cfg, only))
            continue;
        if (!t->enabled && !only) {
            printf("SKIP %s: disabled in the configuration\n", t->name);
            continue;
        }
        check_tenant(&p, t);
        if (p.fails != f0)
            failed_tenants++;
    }
    mf_http_destroy(p.http);
    mf_secret_clear(&proxy_auth);
    mf_config_destroy(cfg);
    printf("preflight: %d tenant(s) failing, %s%d warning(s)%s\n", failed_tenants,
           cluster_failed ? "the cluster failing, " : "", p.warns,
           geo_ok ? "" : ", normalizer.geoip_db unreadable");
    return failed_tenants || cluster_failed || !geo_ok ? MF_EXIT_REJECTED : MF_EXIT_OK;
}
