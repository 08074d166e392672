/* collector_conf.c - `tenants[]` and `collect`: option tables, checks,
 * clouds, credentials (see collector_conf.h). */
#include "collector_conf.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "optcheck.h"
#include "output.h"
#include "units.h"


static const struct mf_enum cloud_choices[] = {
    {"commercial", MF_CLOUD_COMMERCIAL},
    {"gcc", MF_CLOUD_GCC},
    {"gcc-high", MF_CLOUD_GCC_HIGH},
    {"dod", MF_CLOUD_DOD},
    {NULL, 0},
};

/* m365-api.md §1.1; the token audience is the API host. */
static const struct {
    const char *login;
    const char *api;
} cloud_hosts[] = {
    [MF_CLOUD_COMMERCIAL] = {"https://login.microsoftonline.com",
                             "https://manage.office.com"},
    [MF_CLOUD_GCC] = {"https://login.microsoftonline.com",
                      "https://manage-gcc.office.com"},
    [MF_CLOUD_GCC_HIGH] = {"https://login.microsoftonline.us",
                           "https://manage.office365.us"},
    [MF_CLOUD_DOD] = {"https://login.microsoftonline.us",
                      "https://manage.protection.apps.mil"},
};

#define N_CLOUDS (sizeof(cloud_hosts) / sizeof(cloud_hosts[0]))

static bool
is_hex_run(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

static bool
is_guid(const char *s)
{
    return strlen(s) == 36 && is_hex_run(s, 8) && s[8] == '-' &&
           is_hex_run(s + 9, 4) && s[13] == '-' && is_hex_run(s + 14, 4) &&
           s[18] == '-' && is_hex_run(s + 19, 4) && s[23] == '-' &&
           is_hex_run(s + 24, 12);
}

static int
check_domain(const char *s, char *w, size_t n)
{
    if (mf_is_domain(s, true))
        return 0;
    return mf_opt_why(w, n, "is not a domain name (e.g. contoso.com, no '@' or '*')");
}

static int
check_tenant_id(const char *s, char *w, size_t n)
{
    if (is_guid(s) || mf_is_domain(s, true))
        return 0;
    return mf_opt_why(w, n, "is neither a GUID nor a domain name "
                     "(e.g. contoso.onmicrosoft.com)");
}

/* Strip trailing '/' of an endpoint URL (copy in the config arena). */
static const char *
strip_slash(struct mf_arena *a, const char *s)
{
    size_t n = strlen(s);

    while (n > 8 && s[n - 1] == '/')
        n--;
    return mf_arena_strndup(a, s, n);
}

/* Defaults from the cloud, exactly one credential (the element's check
 * hook). */
static void
tenant_check(const struct mf_optctx *c, void *base, const struct mf_jval *node,
             const char *path)
{
    struct mf_tenant_conf *t = base;
    const char *file = c->file;
    struct mf_arena *a = c->a;
    const char *set[3];
    size_t nset = 0;

    t->line = node ? node->line : 1;
    if (!t->id)
        return;   /* already reported */
    if (!t->name)
        t->name = t->id;
    if (!t->publisher_id)
        t->publisher_id = t->id;
    if (t->cloud >= 0 && (size_t)t->cloud < N_CLOUDS) {
        if (!t->login_endpoint)
            t->login_endpoint = cloud_hosts[t->cloud].login;
        if (!t->api_endpoint)
            t->api_endpoint = cloud_hosts[t->cloud].api;
        if (!t->resource)
            t->resource = cloud_hosts[t->cloud].api;
    }
    if (t->login_endpoint)
        t->login_endpoint = strip_slash(a, t->login_endpoint);
    if (t->api_endpoint)
        t->api_endpoint = strip_slash(a, t->api_endpoint);
    if (t->resource)
        t->resource = strip_slash(a, t->resource);

    if (t->client_secret_file)
        set[nset++] = "client_secret_file";
    if (t->client_secret_env)
        set[nset++] = "client_secret_env";
    if (t->certificate_file || t->private_key_file)
        set[nset++] = t->certificate_file ? "certificate_file"
                                          : "private_key_file";
    if (nset == 0) {
        mf_err_add(c->err, file, t->line,
                      "%s: no credential: set client_secret_file, "
                      "client_secret_env, or certificate_file + "
                      "private_key_file", path);
    } else if (nset > 1) {
        mf_err_add(c->err, file, mf_opt_key_line(node, set[1]),
                      "%s: %s and %s are both set; use exactly one "
                      "credential", path, set[0], set[1]);
    }
    if (t->certificate_file && !t->private_key_file)
        mf_err_add(c->err, file, mf_opt_key_line(node, "certificate_file"),
                      "%s.certificate_file: needs private_key_file",
                      path);
    if (t->private_key_file && !t->certificate_file)
        mf_err_add(c->err, file, mf_opt_key_line(node, "private_key_file"),
                      "%s.private_key_file: needs certificate_file",
                      path);
    t->auth = t->client_secret_file ? MF_AUTH_SECRET_FILE
              : t->client_secret_env ? MF_AUTH_SECRET_ENV
                                     : MF_AUTH_CERTIFICATE;
}

void
mf_tenants_check(const struct mf_optctx *c, const struct mf_tenant_list *tl,
                 const struct mf_jval *list)
{
    size_t i, j;

    for (i = 0; i < tl->n; i++) {
        const struct mf_tenant_conf *t = &tl->v[i];
        const struct mf_jval *node = mf_jis_arr(list) && i < list->len
                                         ? list->u.items[i] : NULL;

        if (!t->id)
            continue;
        for (j = 0; j < i; j++) {
            const struct mf_tenant_conf *u = &tl->v[j];

            if (!u->id || strcasecmp(t->id, u->id) == 0)
                continue;   /* same id: reported as the table's key */
            if (strcasecmp(t->name, u->name) == 0) {
                mf_err_add(c->err, c->file, mf_opt_key_line(node, "name"),
                              "tenants[%zu].name: duplicate tenant name '%s' "
                              "(also tenants[%zu], line %u)",
                              i, t->name, j, (unsigned)u->line);
            } else if (strcasecmp(t->name, u->id) == 0 ||
                       strcasecmp(t->id, u->name) == 0) {
                mf_err_add(c->err, c->file, t->line,
                              "tenants[%zu]: name or id '%s' is also the %s "
                              "of tenants[%zu]; names and ids must not "
                              "collide",
                              i, strcasecmp(t->name, u->id) == 0 ? t->name
                                                                 : t->id,
                              strcasecmp(t->name, u->id) == 0 ? "id" : "name",
                              j);
            }
        }
    }
}

/* collect: dedupe_horizon covers overlap. */
static void
collect_check(const struct mf_optctx *c, void *base, const struct mf_jval *node,
              const char *path)
{
    const struct mf_collect_conf *col = base;

    (void)path;
    if (col->dedupe_horizon_ms != 0 && col->dedupe_horizon_ms < col->overlap_ms)
        mf_err_add(c->err, c->file,
                   mf_jobj_get(node, "dedupe_horizon")
                       ? mf_opt_key_line(node, "dedupe_horizon")
                       : mf_opt_key_line(node ? node : c->root, "overlap"),
                   "collect.dedupe_horizon: must be at least collect.overlap "
                   "(or 0s to disable)");
}

#define TEN(f) offsetof(struct mf_tenant_conf, f)
static const struct mf_option tenant_opts[] = {
    {.name = "id", .type = MF_OPT_STR, .offset = TEN(id),
     .flags = MF_OPT_REQUIRED, .check = check_tenant_id,
     .desc = "Directory (tenant) ID: the GUID, or a verified domain such as "
             "`contoso.onmicrosoft.com`. Identifies the tenant across "
             "reloads; unique."},
    {.name = "name", .type = MF_OPT_STR, .offset = TEN(name),
     .check = mf_check_label, .defdoc = "the `id`",
     .desc = "Label used in logs, metrics, `status`, the `{tenant}` "
             "placeholder, output filters and `import --tenant`. Letters, "
             "digits, `.`, `_`, `-`; at most 64; unique."},
    {.name = "client_id", .type = MF_OPT_STR, .offset = TEN(client_id),
     .flags = MF_OPT_REQUIRED, .check = mf_check_token,
     .desc = "Application (client) ID of the app registration. It needs the "
             "Office 365 Management APIs application permission "
             "ActivityFeed.Read (and ActivityFeed.ReadDlp for DLP.All), with "
             "admin consent."},
    {.name = "client_secret_file", .type = MF_OPT_STR,
     .offset = TEN(client_secret_file), .flags = MF_OPT_SECRET | MF_OPT_PATH,
     .desc = "File holding the client secret (trailing newline ignored). "
             "Exactly one credential: this, `client_secret_env`, or "
             "`certificate_file` + `private_key_file`."},
    {.name = "client_secret_env", .type = MF_OPT_STR,
     .offset = TEN(client_secret_env), .flags = MF_OPT_SECRET,
     .check = mf_check_env_name,
     .desc = "Name of the environment variable holding the client secret."},
    {.name = "certificate_file", .type = MF_OPT_STR,
     .offset = TEN(certificate_file), .flags = MF_OPT_PATH | MF_OPT_READABLE,
     .desc = "PEM certificate uploaded to the app registration (certificate "
             "credential, signed client assertion). Needs "
             "`private_key_file`."},
    {.name = "private_key_file", .type = MF_OPT_STR,
     .offset = TEN(private_key_file),
     .flags = MF_OPT_SECRET | MF_OPT_PATH | MF_OPT_RAW,
     .desc = "PEM private key of `certificate_file` (unencrypted). Same "
             "permission rules as secret files."},
    {.name = "cloud", .type = MF_OPT_ENUM, .def = "commercial",
     .offset = TEN(cloud), .choices = cloud_choices,
     .desc = "Microsoft 365 cloud; sets the default `login_endpoint`, "
             "`api_endpoint` and `resource` (see *Clouds* above)."},
    {.name = "login_endpoint", .type = MF_OPT_STR,
     .offset = TEN(login_endpoint), .check = mf_check_https_url,
     .defdoc = "from `cloud`",
     .desc = "Root URL of the token host; the agent appends "
             "`/{id}/oauth2/v2.0/token`. E.g. `https://127.0.0.1:8443` for "
             "the emulator."},
    {.name = "api_endpoint", .type = MF_OPT_STR, .offset = TEN(api_endpoint),
     .check = mf_check_https_url, .defdoc = "from `cloud`",
     .desc = "Root URL of the Management Activity API; the agent appends "
             "`/api/v1.0/{id}/activity/feed/...`."},
    {.name = "resource", .type = MF_OPT_STR, .offset = TEN(resource),
     .check = mf_check_https_url, .defdoc = "from `cloud`",
     .desc = "Token audience (the scope requested is `<resource>/.default`). "
             "Follows `cloud`, not `api_endpoint`; rarely needed."},
    {.name = "ca_file", .type = MF_OPT_STR, .offset = TEN(ca_file),
     .flags = MF_OPT_PATH | MF_OPT_READABLE,
     .desc = "Extra trusted CA certificates (PEM) for the token and API "
             "hosts, in addition to the system store. TLS is always "
             "verified."},
    {.name = "content_types", .type = MF_OPT_STRLIST,
     .def = "[Audit.AzureActiveDirectory, Audit.Exchange, Audit.SharePoint, "
            "Audit.General, DLP.All]",
     .offset = TEN(content_types), .choices = mf_content_type_choices,
     .flags = MF_OPT_NONEMPTY,
     .desc = "Content types to subscribe to and collect."},
    {.name = "domains", .type = MF_OPT_STRLIST, .offset = TEN(domains),
     .check = check_domain,
     .defdoc = "the domains of each record's `UserId`, mailbox owner and "
               "`OrganizationName`",
     .desc = "The tenant's accepted e-mail domains (Exchange accepted "
             "domains). An address under one of them, subdomains included, "
             "is inside the organization; any other is outside: risk tags "
             "raise forwarding and sharing to outside addresses. When "
             "empty, each record's own domains are used, so a partner "
             "administrator's domain counts as internal on that partner's "
             "records."},
    {.name = "publisher_id", .type = MF_OPT_STR, .offset = TEN(publisher_id),
     .check = mf_check_token, .defdoc = "the `id`",
     .desc = "`PublisherIdentifier` sent with every API call; Microsoft "
             "counts the request quota per publisher."},
    {.name = "enabled", .type = MF_OPT_BOOL, .def = "true",
     .offset = TEN(enabled),
     .desc = "`false` keeps the tenant (and its state) configured without "
             "collecting."},
    {.name = NULL},
};

const struct mf_optsec mf_tenant_sec = {
    .name = "tenants[]",
    .desc = "One entry per Microsoft 365 tenant. Each tenant is polled "
            "independently, with its own token, quota and checkpoints.",
    .opts = tenant_opts,
    .size = sizeof(struct mf_tenant_conf),
    .key = "id",
    .noun = "tenant",
    .check = tenant_check,
};

#define COL(f) offsetof(struct mf_collect_conf, f)
static const struct mf_option collect_opts[] = {
    {.name = "poll_interval", .type = MF_OPT_DURATION, .def = "60s",
     .offset = COL(poll_interval_ms), .min = MF_MS_S, .max = MF_MS_D,
     .desc = "Time between two listings of a content type."},
    {.name = "initial_lookback", .type = MF_OPT_DURATION, .def = "24h",
     .offset = COL(initial_lookback_ms), .min = 0, .max = 7 * MF_MS_D,
     .desc = "Where a content type without a checkpoint starts (the API "
             "keeps 7 days)."},
    {.name = "overlap", .type = MF_OPT_DURATION, .def = "1h",
     .offset = COL(overlap_ms), .min = 0, .max = MF_MS_D,
     .desc = "Window behind the checkpoint that is listed again to catch "
             "blobs published late; blobs already delivered are skipped by "
             "contentId."},
    {.name = "dedupe_horizon", .type = MF_OPT_DURATION, .def = "24h",
     .offset = COL(dedupe_horizon_ms), .min = 0, .max = 7 * MF_MS_D,
     .desc = "How long record `Id`s are remembered to drop the same record "
             "served in two blobs. At least `overlap`; `0s` disables "
             "record-level dedupe."},
    {.name = "max_concurrency", .type = MF_OPT_INT, .def = "8",
     .offset = COL(max_concurrency), .min = 1, .max = 256,
     .desc = "Blob downloads in flight per tenant."},
    {.name = "requests_per_minute", .type = MF_OPT_INT, .def = "1800",
     .offset = COL(requests_per_minute), .min = 1, .max = 100000,
     .desc = "API requests per minute per tenant (token bucket). Microsoft "
             "allows about 2000 per publisher."},
    {.name = "request_timeout", .type = MF_OPT_DURATION, .def = "60s",
     .offset = COL(request_timeout_ms), .min = MF_MS_S, .max = 10 * MF_MS_M,
     .desc = "An HTTP request (token, listing or blob) that makes no progress "
             "for this long - no connection, no answer, no byte of the body "
             "- is abandoned and retried. A slow transfer that progresses "
             "goes on, up to `transfer_timeout`."},
    {.name = "transfer_timeout", .type = MF_OPT_DURATION, .def = "30m",
     .offset = COL(transfer_timeout_ms), .min = MF_MS_S, .max = 24 * MF_MS_H,
     .desc = "Ceiling of one whole HTTP transfer, however it progresses (a "
             "body dripped out a byte at a time ends here and is retried)."},
    {.name = "max_blob_size", .type = MF_OPT_SIZE, .def = "1GiB",
     .offset = COL(max_blob_size), .min = 64 * MF_KIB, .max = 64 * MF_GIB,
     .desc = "Largest content blob accepted, counted after decompression (a "
             "gzip bomb stops here, not when the state disk is full). A "
             "larger blob is not delivered: it is reported as a collection "
             "gap naming its contentId, `run --once` exits 1, and the rest "
             "goes on."},
    {.name = "max_retry_after", .type = MF_OPT_DURATION, .def = "15m",
     .offset = COL(max_retry_after_ms), .min = MF_MS_S, .max = 24 * MF_MS_H,
     .desc = "Longest `Retry-After` honoured; a longer one from the server "
             "(or a proxy) is cut to this, so one answer cannot stop "
             "collection for days."},
    {.name = "max_backoff", .type = MF_OPT_DURATION, .def = "5m",
     .offset = COL(max_backoff_ms), .min = MF_MS_S, .max = MF_MS_H,
     .desc = "Ceiling of the exponential backoff (with jitter) between "
             "retries; a `Retry-After` from the server is honoured even when "
             "longer (up to `max_retry_after`). Configuration errors of a "
             "tenant (bad secret, unknown app or tenant, no consent) are "
             "retried at this cadence, so a fixed secret or a recovered "
             "Entra ID needs no restart."},
    {.name = "delivery_threads", .type = MF_OPT_INT, .def = "0",
     .offset = COL(delivery_threads), .min = 0, .max = 64,
     .desc = "Threads that normalize downloaded blobs and send their records "
             "to the outputs, in parallel with the downloads. `0` starts one "
             "per online CPU (at most 8)."},
    {.name = "max_record_size", .type = MF_OPT_SIZE, .def = "16MiB",
     .offset = COL(max_record_size), .min = 64 * MF_KIB, .max = MF_GIB,
     .desc = "Largest single audit record accepted; a larger one is reported "
             "and counted, never silently dropped."},
    {.name = NULL},
};

const struct mf_optsec mf_collect_sec = {
    .name = "collect",
    .desc = "How the Management Activity API is polled (every tenant).",
    .opts = collect_opts,
    .size = sizeof(struct mf_collect_conf),
    .check = collect_check,
};

/* ---- clouds ------------------------------------------------------------ */

const char *
mf_cloud_name(int cloud)
{
    return mf_enum_name(cloud_choices, cloud);
}

const char *
mf_cloud_login_endpoint(int cloud)
{
    if (cloud < 0 || (size_t)cloud >= N_CLOUDS)
        return NULL;
    return cloud_hosts[cloud].login;
}

const char *
mf_cloud_api_endpoint(int cloud)
{
    if (cloud < 0 || (size_t)cloud >= N_CLOUDS)
        return NULL;
    return cloud_hosts[cloud].api;
}

void
mf_clouds_doc(struct mf_buf *b)
{
    mf_buf_appends(b, "## Clouds\n\n"
                      "| `cloud` | `login_endpoint` | `api_endpoint` and "
                      "`resource` |\n|---|---|---|\n");
    for (size_t i = 0; i < N_CLOUDS; i++)
        mf_buf_printf(b, "| `%s` | `%s` | `%s` |\n",
                      mf_enum_name(cloud_choices, (int)i),
                      cloud_hosts[i].login, cloud_hosts[i].api);
    mf_buf_appendc(b, '\n');
}

int
mf_tenant_client_secret(const struct mf_tenant_conf *t, struct mf_secret *out,
                        char *err, size_t errlen)
{
    char what[128];

    snprintf(what, sizeof(what), "tenant %s: %s", t->name,
             t->client_secret_file ? "client_secret_file"
                                   : "client_secret_env");
    if (!t->client_secret_file && !t->client_secret_env) {
        snprintf(err, errlen, "tenant %s: no client secret configured",
                 t->name);
        out->data = NULL;
        out->len = 0;
        return -1;
    }
    return mf_secret_load(t->client_secret_file, t->client_secret_env,
                                 true, what, out, err, errlen);
}

int
mf_tenant_private_key(const struct mf_tenant_conf *t, struct mf_secret *out,
                      char *err, size_t errlen)
{
    char what[128];

    snprintf(what, sizeof(what), "tenant %s: private_key_file", t->name);
    if (!t->private_key_file) {
        snprintf(err, errlen, "tenant %s: no private key configured", t->name);
        out->data = NULL;
        out->len = 0;
        return -1;
    }
    return mf_secret_load(t->private_key_file, NULL, false, what, out,
                                 err, errlen);
}

