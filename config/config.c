/* config.c - m365fwd.yaml: option tables, cross-checks, secrets, reload
 * identity and the generated reference (see config.h). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "yaml_tree.h"

/* ---- vocabularies ------------------------------------------------------ */

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

static const struct mf_enum content_type_choices[] = {
    {"Audit.AzureActiveDirectory", 0},
    {"Audit.Exchange", 1},
    {"Audit.SharePoint", 2},
    {"Audit.General", 3},
    {"DLP.All", 4},
    {NULL, 0},
};

const struct mf_enum mf_config_areas[] = {
    {"identity_access", 0},
    {"data_protection", 1},
    {"collaboration_sharing", 2},
    {"device_posture", 3},
    {"monitoring_response", 4},
    {NULL, 0},
};

static const struct mf_enum log_level_choices[] = {
    {"error", MF_LOG_ERROR},
    {"warn", MF_LOG_WARN},
    {"info", MF_LOG_INFO},
    {"debug", MF_LOG_DEBUG},
    {NULL, 0},
};

static const struct mf_enum log_format_choices[] = {
    {"kv", MF_LOG_FORMAT_KV},
    {"json", MF_LOG_FORMAT_JSON},
    {NULL, 0},
};

static const struct mf_enum output_type_choices[] = {
    {"file", MF_OUTPUT_FILE},
    {"kafka", MF_OUTPUT_KAFKA},
    {"syslog", MF_OUTPUT_SYSLOG},
    {NULL, 0},
};

static const struct mf_enum schema_choices[] = {
    {"ocsf", MF_CONF_SCHEMA_OCSF},
    {"ecs", MF_CONF_SCHEMA_ECS},
    {"raw", MF_CONF_SCHEMA_RAW},
    {NULL, 0},
};

static const struct mf_enum compression_choices[] = {
    {"none", MF_KAFKA_COMPRESS_NONE},
    {"gzip", MF_KAFKA_COMPRESS_GZIP},
    {"snappy", MF_KAFKA_COMPRESS_SNAPPY},
    {"lz4", MF_KAFKA_COMPRESS_LZ4},
    {"zstd", MF_KAFKA_COMPRESS_ZSTD},
    {NULL, 0},
};

static const struct mf_enum transport_choices[] = {
    {"udp", MF_SYSLOG_UDP},
    {"tcp", MF_SYSLOG_TCP},
    {"tls", MF_SYSLOG_TLS},
    {NULL, 0},
};

static const struct mf_enum framing_choices[] = {
    {"octet-counting", MF_SYSLOG_OCTET_COUNTING},
    {"lf", MF_SYSLOG_LF},
    {NULL, 0},
};

static const struct mf_enum format_choices[] = {
    {"rfc5424", MF_SYSLOG_RFC5424},
    {"rfc3164", MF_SYSLOG_RFC3164},
    {NULL, 0},
};

static const struct mf_enum payload_choices[] = {
    {"json", MF_SYSLOG_JSON},
    {"cef", MF_SYSLOG_CEF},
    {"leef", MF_SYSLOG_LEEF},
    {NULL, 0},
};

static const struct mf_enum facility_choices[] = {
    {"kern", 0}, {"user", 1}, {"mail", 2}, {"daemon", 3}, {"auth", 4},
    {"syslog", 5}, {"lpr", 6}, {"news", 7}, {"uucp", 8}, {"cron", 9},
    {"authpriv", 10}, {"ftp", 11}, {"ntp", 12}, {"security", 13},
    {"console", 14}, {"solaris-cron", 15}, {"local0", 16}, {"local1", 17},
    {"local2", 18}, {"local3", 19}, {"local4", 20}, {"local5", 21},
    {"local6", 22}, {"local7", 23},
    {NULL, 0},
};

/* Placeholders of Kafka topics and keys. */
static const struct {
    const char *name;
    bool in_topic;
    const char *desc;
} placeholders[] = {
    {"tenant", true, "the tenant's `name`"},
    {"tenant_id", true, "the tenant's `id`"},
    {"content_type", true, "the content type, e.g. `Audit.Exchange`"},
    {"area", true, "area of the record's most severe tag (`identity_access`, "
                   "...); `none` when untagged"},
    {"class_uid", true, "OCSF class_uid of the normalized event (also with "
                        "`ecs` and `raw` schemas)"},
    {"schema", true, "the output's `schema`"},
    {"id", false, "the record `Id` (keys only)"},
};

#define N_PLACEHOLDERS (sizeof(placeholders) / sizeof(placeholders[0]))

/* ---- value checks ------------------------------------------------------ */

static int
why(char *out, size_t n, const char *text)
{
    snprintf(out, n, "%s", text);
    return -1;
}

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

/* DNS name: labels of letters, digits and '-', at least two labels. */
static bool
is_domain(const char *s, bool need_dot)
{
    size_t label = 0, labels = 1, total = strlen(s);
    const char *p;

    if (total == 0 || total > 253)
        return false;
    for (p = s; *p; p++) {
        if (*p == '.') {
            if (label == 0 || p[-1] == '-')
                return false;
            label = 0;
            labels++;
            continue;
        }
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return false;
        if (*p == '-' && label == 0)
            return false;
        if (++label > 63)
            return false;
    }
    if (label == 0 || p[-1] == '-')
        return false;
    return !need_dot || labels >= 2;
}

static int
check_tenant_id(const char *s, char *w, size_t n)
{
    if (is_guid(s) || is_domain(s, true))
        return 0;
    return why(w, n, "is neither a GUID nor a domain name "
                     "(e.g. contoso.onmicrosoft.com)");
}

static int
check_label(const char *s, char *w, size_t n)
{
    size_t i, len = strlen(s);

    if (len > 64)
        return why(w, n, "is longer than 64 characters");
    if (!isalnum((unsigned char)s[0]))
        return why(w, n, "must start with a letter or a digit");
    for (i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
            return why(w, n, "may contain only letters, digits, '.', '_' "
                             "and '-'");
    return 0;
}

static int
check_token(const char *s, char *w, size_t n)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return why(w, n, "must not contain spaces or control characters");
    return 0;
}

static int
check_env_name(const char *s, char *w, size_t n)
{
    if (!isalpha((unsigned char)*s) && *s != '_')
        return why(w, n, "is not an environment variable name");
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return why(w, n, "is not an environment variable name");
    return 0;
}

/* host:port, [v6]:port. */
static int
check_hostport(const char *s, char *w, size_t n)
{
    const char *colon, *p;
    long port = 0;
    char host[256];
    size_t hl;

    if (s[0] == '[') {
        const char *end = strchr(s, ']');

        if (!end || end[1] != ':' || end == s + 1)
            return why(w, n, "is not host:port ([IPv6]:port for IPv6)");
        hl = (size_t)(end - s - 1);
        for (p = s + 1; p < end; p++)
            if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
                return why(w, n, "has an invalid IPv6 address");
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || colon == s)
            return why(w, n, "is not host:port");
        if (memchr(s, ':', (size_t)(colon - s)))
            return why(w, n, "has an IPv6 address without brackets "
                             "(write [addr]:port)");
        hl = (size_t)(colon - s);
        if (hl >= sizeof(host))
            return why(w, n, "has a host name that is too long");
        memcpy(host, s, hl);
        host[hl] = '\0';
        if (!is_domain(host, false))
            return why(w, n, "has an invalid host name");
    }
    if (!colon[1])
        return why(w, n, "has no port");
    for (p = colon + 1; *p; p++) {
        if (!isdigit((unsigned char)*p) || port > 65535)
            return why(w, n, "has an invalid port");
        port = port * 10 + (*p - '0');
    }
    if (port < 1 || port > 65535)
        return why(w, n, "has a port outside 1-65535");
    return 0;
}

static int
check_brokers(const char *s, char *w, size_t n)
{
    char one[300];
    const char *p = s;

    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        int rc;

        while (len && *p == ' ') {
            p++;
            len--;
        }
        while (len && p[len - 1] == ' ')
            len--;
        if (len == 0 || len >= sizeof(one))
            return why(w, n, "is not a comma-separated list of host:port");
        memcpy(one, p, len);
        one[len] = '\0';
        if ((rc = check_hostport(one, w, n)) != 0) {
            char inner[160];

            snprintf(inner, sizeof(inner), "%s", w);
            snprintf(w, n, "has an invalid entry '%s' (%s)", one, inner);
            return rc;
        }
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

/* https://host[:port][/path]; no credentials, query or fragment. */
static int
check_url_schemes(const char *s, char *w, size_t n, const char *const *schemes,
                  const char *expect)
{
    const char *auth = NULL, *end;
    char host[300];
    size_t i;

    for (i = 0; schemes[i]; i++) {
        size_t k = strlen(schemes[i]);

        if (strncasecmp(s, schemes[i], k) == 0) {
            auth = s + k;
            break;
        }
    }
    if (!auth)
        return why(w, n, expect);
    if (check_token(s, w, n) != 0)
        return -1;
    end = auth + strcspn(auth, "/?#");
    if (memchr(auth, '@', (size_t)(end - auth)))
        return why(w, n, "must not contain credentials");
    if (strpbrk(end, "?#"))
        return why(w, n, "must not have a query or fragment");
    if (end == auth || (size_t)(end - auth) >= sizeof(host))
        return why(w, n, "has no host");
    memcpy(host, auth, (size_t)(end - auth));
    host[end - auth] = '\0';
    if (!strchr(host, ':') || host[0] == '[') {
        if (host[0] == '[' ? strchr(host, ']') == NULL
                           : !is_domain(host, false))
            return why(w, n, "has an invalid host");
        return 0;
    }
    return check_hostport(host, w, n);
}

static int
check_https_url(const char *s, char *w, size_t n)
{
    static const char *const schemes[] = {"https://", NULL};

    return check_url_schemes(s, w, n, schemes,
                             "must be an https:// URL (TLS is always used "
                             "and verified)");
}

static int
check_proxy_url(const char *s, char *w, size_t n)
{
    static const char *const schemes[] = {"http://", "https://", "socks5://",
                                          "socks5h://", NULL};
    int rc = check_url_schemes(s, w, n, schemes,
                               "must be an http://, https://, socks5:// or "
                               "socks5h:// URL");

    if (rc != 0 && strstr(w, "credentials"))
        return why(w, n, "must not contain credentials (put user:password in "
                         "the file named by proxy_auth_file)");
    return rc;
}

/* Kafka topic literal characters and placeholders. */
static int
check_template(const char *s, char *w, size_t n, bool topic)
{
    const char *p;
    size_t literal = 0, i;

    for (p = s; *p; p++) {
        if (*p == '{') {
            const char *end = strchr(p, '}');
            size_t len;

            if (!end)
                return why(w, n, "has a '{' without '}'");
            len = (size_t)(end - p - 1);
            for (i = 0; i < N_PLACEHOLDERS; i++)
                if (strlen(placeholders[i].name) == len &&
                    strncmp(placeholders[i].name, p + 1, len) == 0 &&
                    (!topic || placeholders[i].in_topic))
                    break;
            if (i == N_PLACEHOLDERS) {
                char list[256];
                size_t used = 0;

                list[0] = '\0';
                for (i = 0; i < N_PLACEHOLDERS; i++) {
                    int k;

                    if (topic && !placeholders[i].in_topic)
                        continue;
                    k = snprintf(list + used, sizeof(list) - used, "%s{%s}",
                                 used ? " " : "", placeholders[i].name);
                    if (k > 0 && (size_t)k < sizeof(list) - used)
                        used += (size_t)k;
                }
                snprintf(w, n, "has an unknown placeholder '%.*s' "
                         "(expected %s)", (int)(len + 2 > 40 ? 40 : len + 2),
                         p, list);
                return -1;
            }
            p = end;
            continue;
        }
        if (*p == '}')
            return why(w, n, "has a '}' without '{'");
        if (topic && !isalnum((unsigned char)*p) && !strchr("._-", *p))
            return why(w, n, "may contain only letters, digits, '.', '_', "
                             "'-' and placeholders");
        literal++;
    }
    if (topic && literal > 249)
        return why(w, n, "is longer than Kafka's 249 characters");
    return 0;
}

static int
check_topic(const char *s, char *w, size_t n)
{
    return check_template(s, w, n, true);
}

static int
check_key_template(const char *s, char *w, size_t n)
{
    return check_template(s, w, n, false);
}

/* Tag id syntax: area.name[.more], lower case. */
static int
check_tag_id(const char *s, char *w, size_t n)
{
    static const char bad[] = "is not a tag id (e.g. identity.mfa_disabled)";
    const char *p;
    bool dot = false;

    if (!islower((unsigned char)*s))
        return why(w, n, bad);
    for (p = s; *p; p++) {
        if (*p == '.') {
            if (p[1] == '\0' || p[1] == '.')
                return why(w, n, bad);
            dot = true;
        } else if (!islower((unsigned char)*p) &&
                   !isdigit((unsigned char)*p) && *p != '_') {
            return why(w, n, bad);
        }
    }
    return dot ? 0 : why(w, n, bad);
}

/* RFC 5424 APP-NAME: 1*48 PRINTUSASCII. */
static int
check_app_name(const char *s, char *w, size_t n)
{
    if (strlen(s) > 48)
        return why(w, n, "is longer than 48 characters (RFC 5424 APP-NAME)");
    for (; *s; s++)
        if ((unsigned char)*s < 33 || (unsigned char)*s > 126)
            return why(w, n, "may contain only printable ASCII without spaces");
    return 0;
}

/* ---- option tables ----------------------------------------------------- */

#define MS_S 1000LL
#define MS_M (60 * MS_S)
#define MS_H (60 * MS_M)
#define MS_D (24 * MS_H)
#define KIB 1024LL
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)

#define TEN(f) offsetof(struct mf_tenant_conf, f)
static const struct mf_option tenant_opts[] = {
    {.name = "id", .type = MF_OPT_STR, .offset = TEN(id),
     .flags = MF_OPT_REQUIRED, .check = check_tenant_id,
     .desc = "Directory (tenant) ID: the GUID, or a verified domain such as "
             "`contoso.onmicrosoft.com`. Identifies the tenant across "
             "reloads; unique."},
    {.name = "name", .type = MF_OPT_STR, .offset = TEN(name),
     .check = check_label, .defdoc = "the `id`",
     .desc = "Label used in logs, metrics, `status`, the `{tenant}` "
             "placeholder, output filters and `import --tenant`. Letters, "
             "digits, `.`, `_`, `-`; at most 64; unique."},
    {.name = "client_id", .type = MF_OPT_STR, .offset = TEN(client_id),
     .flags = MF_OPT_REQUIRED, .check = check_token,
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
     .check = check_env_name,
     .desc = "Name of the environment variable holding the client secret."},
    {.name = "certificate_file", .type = MF_OPT_STR,
     .offset = TEN(certificate_file), .flags = MF_OPT_PATH,
     .desc = "PEM certificate uploaded to the app registration (certificate "
             "credential, signed client assertion). Needs "
             "`private_key_file`."},
    {.name = "private_key_file", .type = MF_OPT_STR,
     .offset = TEN(private_key_file), .flags = MF_OPT_SECRET | MF_OPT_PATH,
     .desc = "PEM private key of `certificate_file` (unencrypted). Same "
             "permission rules as secret files."},
    {.name = "cloud", .type = MF_OPT_ENUM, .def = "commercial",
     .offset = TEN(cloud), .choices = cloud_choices,
     .desc = "Microsoft 365 cloud; sets the default `login_endpoint`, "
             "`api_endpoint` and `resource` (see *Clouds* above)."},
    {.name = "login_endpoint", .type = MF_OPT_STR,
     .offset = TEN(login_endpoint), .check = check_https_url,
     .defdoc = "from `cloud`",
     .desc = "Root URL of the token host; the agent appends "
             "`/{id}/oauth2/v2.0/token`. E.g. `https://127.0.0.1:8443` for "
             "the emulator."},
    {.name = "api_endpoint", .type = MF_OPT_STR, .offset = TEN(api_endpoint),
     .check = check_https_url, .defdoc = "from `cloud`",
     .desc = "Root URL of the Management Activity API; the agent appends "
             "`/api/v1.0/{id}/activity/feed/...`."},
    {.name = "resource", .type = MF_OPT_STR, .offset = TEN(resource),
     .check = check_https_url, .defdoc = "from `cloud`",
     .desc = "Token audience (the scope requested is `<resource>/.default`). "
             "Follows `cloud`, not `api_endpoint`; rarely needed."},
    {.name = "ca_file", .type = MF_OPT_STR, .offset = TEN(ca_file),
     .flags = MF_OPT_PATH,
     .desc = "Extra trusted CA certificates (PEM) for the token and API "
             "hosts, in addition to the system store. TLS is always "
             "verified."},
    {.name = "content_types", .type = MF_OPT_STRLIST,
     .def = "[Audit.AzureActiveDirectory, Audit.Exchange, Audit.SharePoint, "
            "Audit.General, DLP.All]",
     .offset = TEN(content_types), .choices = content_type_choices,
     .flags = MF_OPT_NONEMPTY,
     .desc = "Content types to subscribe to and collect."},
    {.name = "publisher_id", .type = MF_OPT_STR, .offset = TEN(publisher_id),
     .check = check_token, .defdoc = "the `id`",
     .desc = "`PublisherIdentifier` sent with every API call; Microsoft "
             "counts the request quota per publisher."},
    {.name = "enabled", .type = MF_OPT_BOOL, .def = "true",
     .offset = TEN(enabled),
     .desc = "`false` keeps the tenant (and its state) configured without "
             "collecting."},
    {.name = NULL},
};

static const struct mf_optsec tenant_sec = {
    .name = "tenants[]",
    .desc = "One entry per Microsoft 365 tenant. Each tenant is polled "
            "independently, with its own token, quota and checkpoints.",
    .opts = tenant_opts,
    .size = sizeof(struct mf_tenant_conf),
};

#define COL(f) offsetof(struct mf_collect_conf, f)
static const struct mf_option collect_opts[] = {
    {.name = "poll_interval", .type = MF_OPT_DURATION, .def = "60s",
     .offset = COL(poll_interval_ms), .min = MS_S, .max = MS_D,
     .desc = "Time between two listings of a content type."},
    {.name = "initial_lookback", .type = MF_OPT_DURATION, .def = "24h",
     .offset = COL(initial_lookback_ms), .min = 0, .max = 7 * MS_D,
     .desc = "Where a content type without a checkpoint starts (the API "
             "keeps 7 days)."},
    {.name = "overlap", .type = MF_OPT_DURATION, .def = "1h",
     .offset = COL(overlap_ms), .min = 0, .max = MS_D,
     .desc = "Window behind the checkpoint that is listed again to catch "
             "blobs published late; blobs already delivered are skipped by "
             "contentId."},
    {.name = "dedupe_horizon", .type = MF_OPT_DURATION, .def = "24h",
     .offset = COL(dedupe_horizon_ms), .min = 0, .max = 7 * MS_D,
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
     .offset = COL(request_timeout_ms), .min = MS_S, .max = 10 * MS_M,
     .desc = "Time limit of one HTTP request without progress."},
    {.name = "max_backoff", .type = MF_OPT_DURATION, .def = "5m",
     .offset = COL(max_backoff_ms), .min = MS_S, .max = MS_H,
     .desc = "Ceiling of the exponential backoff (with jitter) between "
             "retries; a `Retry-After` from the server is honoured even when "
             "longer."},
    {.name = "delivery_threads", .type = MF_OPT_INT, .def = "0",
     .offset = COL(delivery_threads), .min = 0, .max = 64,
     .desc = "Threads that normalize downloaded blobs and send their records "
             "to the outputs, in parallel with the downloads. `0` starts one "
             "per online CPU (at most 8)."},
    {.name = "max_record_size", .type = MF_OPT_SIZE, .def = "16MiB",
     .offset = COL(max_record_size), .min = 64 * KIB, .max = GIB,
     .desc = "Largest single audit record accepted; a larger one is reported "
             "and counted, never silently dropped."},
    {.name = NULL},
};

static const struct mf_optsec collect_sec = {
    .name = "collect",
    .desc = "How the Management Activity API is polled (every tenant).",
    .opts = collect_opts,
};

#define MET(f) offsetof(struct mf_metrics_conf, f)
static const struct mf_option metrics_opts[] = {
    {.name = "enabled", .type = MF_OPT_BOOL, .def = "false",
     .offset = MET(enabled),
     .desc = "Serve `/metrics` (Prometheus text format), `/healthz` and "
             "`/readyz` over HTTP."},
    {.name = "listen", .type = MF_OPT_STR, .def = "127.0.0.1:9465",
     .offset = MET(listen), .check = check_hostport,
     .desc = "Address and port of the listener (`[::1]:9465` for IPv6). It "
             "has no authentication: keep it on loopback or a private "
             "network."},
    {.name = NULL},
};

static const struct mf_optsec metrics_sec = {
    .name = "metrics",
    .desc = "Metrics and health endpoints.",
    .opts = metrics_opts,
};

#define FIL(f) offsetof(struct mf_filter_conf, f)
static const struct mf_option filter_opts[] = {
    {.name = "areas", .type = MF_OPT_STRLIST, .offset = FIL(areas),
     .choices = mf_config_areas,
     .desc = "Records with at least one tag in one of these areas."},
    {.name = "tags", .type = MF_OPT_STRLIST, .offset = FIL(tags),
     .check = check_tag_id,
     .desc = "Records with at least one of these tags (ids from the tag "
             "catalogue; unknown ids are a start-up error)."},
    {.name = "min_severity", .type = MF_OPT_INT, .offset = FIL(min_severity),
     .min = 1, .max = 5,
     .desc = "Records whose severity (highest tag severity, 1 when "
             "untagged) is at least this: 1 info, 2 low, 3 medium, 4 high, "
             "5 critical."},
    {.name = "content_types", .type = MF_OPT_STRLIST,
     .offset = FIL(content_types), .choices = content_type_choices,
     .desc = "Records of these content types."},
    {.name = "tenants", .type = MF_OPT_STRLIST, .offset = FIL(tenants),
     .desc = "Records of these tenants (`name` or `id` of configured "
             "tenants)."},
    {.name = NULL},
};

static const struct mf_optsec filter_sec = {
    .name = "filter",
    .desc = "Optional: which records the output receives. Every criterion "
            "given must match; within one list any element matches. "
            "Without `filter` an output receives every record. A record an "
            "output filters out counts as acknowledged by that output.",
    .opts = filter_opts,
};

#define OUT(f) offsetof(struct mf_output_conf, f)
#define O_FILE (1u << MF_OUTPUT_FILE)
#define O_KAFKA (1u << MF_OUTPUT_KAFKA)
#define O_SYSLOG (1u << MF_OUTPUT_SYSLOG)
static const struct mf_option output_opts[] = {
    {.name = "name", .type = MF_OPT_STR, .offset = OUT(name),
     .flags = MF_OPT_REQUIRED, .check = check_label,
     .desc = "Label of the output (logs, metrics, reload identity); unique."},
    {.name = "type", .type = MF_OPT_ENUM, .offset = OUT(type),
     .flags = MF_OPT_REQUIRED, .choices = output_type_choices,
     .desc = "Kind of output; decides which other keys apply."},
    {.name = "schema", .type = MF_OPT_ENUM, .def = "ocsf",
     .offset = OUT(schema), .choices = schema_choices,
     .desc = "Event format: OCSF 1.8.0, Elastic Common Schema, or the record "
             "unchanged plus an `m365fwd` object with the tags."},
    {.name = "keep_raw", .type = MF_OPT_BOOL, .def = "false",
     .offset = OUT(keep_raw),
     .desc = "Also carry the original record, as `normalize --keep-raw` "
             "does."},
    {.name = "enabled", .type = MF_OPT_BOOL, .def = "true",
     .offset = OUT(enabled),
     .desc = "`false` keeps the output configured but sends nothing to it "
             "(and does not wait for it). At least one output must be "
             "enabled."},
    {.name = "filter", .type = MF_OPT_SECTION, .offset = OUT(filter),
     .sub = &filter_sec, .desc = "Which records this output receives."},
    {.name = "max_in_flight", .type = MF_OPT_INT, .def = "10000",
     .offset = OUT(max_in_flight), .min = 1, .max = 10000000,
     .desc = "Records handed to the output and not yet acknowledged; at the "
             "limit collection pauses (backpressure), nothing is dropped."},
    /* file */
    {.name = "path", .type = MF_OPT_STR, .offset = OUT(path),
     .flags = MF_OPT_REQUIRED | MF_OPT_PATH, .only = O_FILE,
     .desc = "File the events are appended to, one JSON object per line; "
             "`-` for standard output. A record is acknowledged after "
             "fsync."},
    /* kafka */
    {.name = "brokers", .type = MF_OPT_STR, .offset = OUT(brokers),
     .flags = MF_OPT_REQUIRED, .only = O_KAFKA, .check = check_brokers,
     .desc = "Bootstrap brokers, `host:port[,host:port]`."},
    {.name = "topic", .type = MF_OPT_STR, .offset = OUT(topic),
     .flags = MF_OPT_REQUIRED, .only = O_KAFKA, .check = check_topic,
     .desc = "Topic, with placeholders (see *Kafka placeholders* above), "
             "e.g. `m365.{tenant}.{area}`."},
    {.name = "key", .type = MF_OPT_STR, .def = "\"{id}\"", .offset = OUT(key),
     .only = O_KAFKA, .check = check_key_template,
     .desc = "Message key template; the record `Id` by default."},
    {.name = "compression", .type = MF_OPT_ENUM, .def = "lz4",
     .offset = OUT(compression), .only = O_KAFKA,
     .choices = compression_choices,
     .desc = "Compression codec (librdkafka `compression.type`)."},
    {.name = "rdkafka", .type = MF_OPT_PREFIX, .offset = OUT(rdkafka),
     .only = O_KAFKA, .flags = MF_OPT_NOECHO,
     .desc = "librdkafka properties passed to `rd_kafka_conf_set()`, as a "
             "mapping (`rdkafka: {security.protocol: SASL_SSL}`) or as "
             "`rdkafka.<property>` keys. A property librdkafka refuses is a "
             "start-up error. Defaults `enable.idempotence=true`, "
             "`acks=all`. Passwords are refused here: use "
             "`rdkafka_secret_files` or `rdkafka_secret_env`; "
             "`bootstrap.servers` and `compression.type` come from `brokers` "
             "and `compression`."},
    {.name = "rdkafka_secret_files", .type = MF_OPT_PREFIX,
     .offset = OUT(rdkafka_secret_files), .only = O_KAFKA,
     .flags = MF_OPT_SECRET | MF_OPT_PATH,
     .desc = "librdkafka properties whose value is read from a file, e.g. "
             "`{sasl.password: /etc/m365fwd/kafka.pw}` (same rules as "
             "secret files)."},
    {.name = "rdkafka_secret_env", .type = MF_OPT_PREFIX,
     .offset = OUT(rdkafka_secret_env), .only = O_KAFKA,
     .flags = MF_OPT_SECRET,
     .desc = "librdkafka properties whose value is read from an environment "
             "variable, e.g. `{sasl.password: KAFKA_PASSWORD}`."},
    {.name = "flush_timeout", .type = MF_OPT_DURATION, .def = "10s",
     .offset = OUT(flush_timeout_ms), .min = 0, .max = 10 * MS_M,
     .only = O_KAFKA | O_SYSLOG,
     .desc = "At shutdown, how long to wait for outstanding "
             "acknowledgements. Records still unacknowledged are not "
             "checkpointed and are collected again on the next start."},
    /* syslog */
    {.name = "address", .type = MF_OPT_STR, .offset = OUT(address),
     .flags = MF_OPT_REQUIRED, .only = O_SYSLOG, .check = check_hostport,
     .desc = "Receiver, `host:port` (`[v6]:port`)."},
    {.name = "transport", .type = MF_OPT_ENUM, .def = "tcp",
     .offset = OUT(transport), .only = O_SYSLOG,
     .choices = transport_choices,
     .desc = "`udp` is best effort (no acknowledgement, losses possible); "
             "`tcp` and `tls` (RFC 5425, certificate verified) acknowledge a "
             "record once written and resend what was in flight when a "
             "connection breaks."},
    {.name = "framing", .type = MF_OPT_ENUM, .def = "octet-counting",
     .offset = OUT(framing), .only = O_SYSLOG, .choices = framing_choices,
     .desc = "Stream framing for tcp/tls (RFC 6587): `octet-counting` or "
             "`lf` (one message per line; line breaks inside are "
             "escaped). Ignored with udp."},
    {.name = "format", .type = MF_OPT_ENUM, .def = "rfc5424",
     .offset = OUT(format), .only = O_SYSLOG, .choices = format_choices,
     .desc = "Syslog header: RFC 5424 (structured data with tenant, tags, "
             "severity) or RFC 3164 for old receivers."},
    {.name = "payload", .type = MF_OPT_ENUM, .def = "json",
     .offset = OUT(payload), .only = O_SYSLOG, .choices = payload_choices,
     .desc = "Message body: the normalized event as JSON, ArcSight CEF, or "
             "QRadar LEEF 2.0."},
    {.name = "facility", .type = MF_OPT_ENUM, .def = "local0",
     .offset = OUT(facility), .only = O_SYSLOG, .choices = facility_choices,
     .desc = "Syslog facility; the message severity follows the event "
             "severity."},
    {.name = "app_name", .type = MF_OPT_STR, .def = "m365fwd",
     .offset = OUT(app_name), .only = O_SYSLOG, .check = check_app_name,
     .desc = "APP-NAME (RFC 5424) / TAG (RFC 3164)."},
    {.name = "ca_file", .type = MF_OPT_STR, .offset = OUT(ca_file),
     .only = O_SYSLOG, .flags = MF_OPT_PATH,
     .desc = "tls: CA certificates (PEM) that verify the receiver; default: "
             "the system store."},
    {.name = "cert_file", .type = MF_OPT_STR, .offset = OUT(cert_file),
     .only = O_SYSLOG, .flags = MF_OPT_PATH,
     .desc = "tls: client certificate (PEM); needs `key_file`."},
    {.name = "key_file", .type = MF_OPT_STR, .offset = OUT(key_file),
     .only = O_SYSLOG, .flags = MF_OPT_SECRET | MF_OPT_PATH,
     .desc = "tls: private key of `cert_file` (same permission rules as "
             "secret files)."},
    {.name = "max_message_size", .type = MF_OPT_SIZE, .def = "64KiB",
     .offset = OUT(max_message_size), .only = O_SYSLOG, .min = 480,
     .max = 16 * MIB,
     .desc = "Largest message sent, header included (at most 65507 with "
             "udp). A larger record is never cut silently: see the syslog "
             "output documentation for the policy."},
    {.name = NULL},
};

static const struct mf_optsec output_sec = {
    .name = "outputs[]",
    .desc = "Where normalized events go. Several outputs may run at once; "
            "the checkpoint moves only after every enabled output "
            "acknowledged every record it should receive.",
    .opts = output_opts,
    .size = sizeof(struct mf_output_conf),
    .disc = "type",
    .disc_choices = output_type_choices,
};

#define TOP(f) offsetof(struct mf_config, f)
static const struct mf_option top_opts[] = {
    {.name = "state_dir", .type = MF_OPT_STR, .def = "/var/lib/m365fwd",
     .offset = TOP(state_dir), .flags = MF_OPT_PATH,
     .desc = "Directory of the durable state (SQLite: checkpoints, "
             "delivered blobs, dedupe). Created if missing; one agent per "
             "directory."},
    {.name = "geoip_db", .type = MF_OPT_STR, .offset = TOP(geoip_db),
     .flags = MF_OPT_PATH,
     .defdoc = "none: no locations, the distant-sign-in aggregate is off",
     .desc = "MaxMind DB file (GeoIP2 / GeoLite2 City or Country) read with "
             "libmaxminddb: fills `src_endpoint.location` (OCSF) / "
             "`source.geo` (ECS) from the client address and turns on the "
             "aggregate rules that need places (impossible travel: "
             "docs/aggregates.md). `preflight` says when it is off."},
    {.name = "proxy", .type = MF_OPT_STR, .offset = TOP(proxy),
     .flags = MF_OPT_NOECHO, .check = check_proxy_url,
     .defdoc = "`HTTPS_PROXY` / `NO_PROXY` from the environment",
     .desc = "Proxy for token and API calls (`http://host:3128`, "
             "`socks5h://host:1080`). Credentials are not allowed in the "
             "URL: see `proxy_auth_file`."},
    {.name = "proxy_auth_file", .type = MF_OPT_STR,
     .offset = TOP(proxy_auth_file), .flags = MF_OPT_SECRET | MF_OPT_PATH,
     .desc = "File holding `user:password` for the proxy (same rules as "
             "secret files). Needs `proxy`."},
    {.name = "log_level", .type = MF_OPT_ENUM, .def = "info",
     .offset = TOP(log_level), .choices = log_level_choices,
     .desc = "Least severe level logged (on standard error)."},
    {.name = "log_format", .type = MF_OPT_ENUM, .def = "kv",
     .offset = TOP(log_format), .choices = log_format_choices,
     .desc = "Log lines as `key=value` pairs or as JSON objects."},
    {.name = "collect", .type = MF_OPT_SECTION, .offset = TOP(collect),
     .sub = &collect_sec, .desc = "Polling settings."},
    {.name = "metrics", .type = MF_OPT_SECTION, .offset = TOP(metrics),
     .sub = &metrics_sec, .desc = "Metrics and health endpoints."},
    {.name = "tenants", .type = MF_OPT_LIST, .offset = TOP(tenants),
     .sub = &tenant_sec,
     .desc = "Tenants to collect from. `run`, `status` and `preflight` need "
             "at least one; `import` does not."},
    {.name = "outputs", .type = MF_OPT_LIST, .offset = TOP(outputs),
     .sub = &output_sec, .flags = MF_OPT_REQUIRED | MF_OPT_NONEMPTY,
     .desc = "Destinations of the events; at least one."},
    {.name = NULL},
};

static const struct mf_optsec top_sec = {
    .name = "",
    .desc = "",
    .opts = top_opts,
    .size = sizeof(struct mf_config),
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

/* ---- cross-checks ------------------------------------------------------ */

struct loadctx {
    struct mf_config *cfg;
    struct mf_cfgerr *err;
    const struct mf_jval *root;
};

static uint32_t
key_line(const struct mf_jval *node, const char *key)
{
    const struct mf_jval *v = mf_jobj_get(node, key);

    if (v)
        return v->line;
    return node ? node->line : 1;
}

static const struct mf_jval *
list_node(const struct loadctx *lc, const char *list, size_t i)
{
    const struct mf_jval *l = mf_jobj_get(lc->root, list);

    if (!mf_jis_arr(l) || i >= l->len)
        return NULL;
    return l->u.items[i];
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

static void
fix_tenant(struct loadctx *lc, struct mf_tenant_conf *t, size_t i)
{
    const struct mf_jval *node = list_node(lc, "tenants", i);
    const char *file = lc->cfg->file;
    struct mf_arena *a = &lc->cfg->arena;
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
        mf_cfgerr_add(lc->err, file, t->line,
                      "tenants[%zu]: no credential: set client_secret_file, "
                      "client_secret_env, or certificate_file + "
                      "private_key_file", i);
    } else if (nset > 1) {
        mf_cfgerr_add(lc->err, file, key_line(node, set[1]),
                      "tenants[%zu]: %s and %s are both set; use exactly one "
                      "credential", i, set[0], set[1]);
    }
    if (t->certificate_file && !t->private_key_file)
        mf_cfgerr_add(lc->err, file, key_line(node, "certificate_file"),
                      "tenants[%zu].certificate_file: needs private_key_file",
                      i);
    if (t->private_key_file && !t->certificate_file)
        mf_cfgerr_add(lc->err, file, key_line(node, "private_key_file"),
                      "tenants[%zu].private_key_file: needs certificate_file",
                      i);
    t->auth = t->client_secret_file ? MF_AUTH_SECRET_FILE
              : t->client_secret_env ? MF_AUTH_SECRET_ENV
                                     : MF_AUTH_CERTIFICATE;
}

static void
check_tenant_dups(struct loadctx *lc)
{
    const struct mf_tenant_list *tl = &lc->cfg->tenants;
    size_t i, j;

    for (i = 0; i < tl->n; i++) {
        const struct mf_tenant_conf *t = &tl->v[i];
        const struct mf_jval *node = list_node(lc, "tenants", i);

        if (!t->id)
            continue;
        for (j = 0; j < i; j++) {
            const struct mf_tenant_conf *u = &tl->v[j];

            if (!u->id)
                continue;
            if (strcasecmp(t->id, u->id) == 0) {
                mf_cfgerr_add(lc->err, lc->cfg->file, key_line(node, "id"),
                              "tenants[%zu].id: duplicate tenant id '%s' "
                              "(also tenants[%zu], line %u)",
                              i, t->id, j, (unsigned)u->line);
            } else if (strcasecmp(t->name, u->name) == 0) {
                mf_cfgerr_add(lc->err, lc->cfg->file, key_line(node, "name"),
                              "tenants[%zu].name: duplicate tenant name '%s' "
                              "(also tenants[%zu], line %u)",
                              i, t->name, j, (unsigned)u->line);
            } else if (strcasecmp(t->name, u->id) == 0 ||
                       strcasecmp(t->id, u->name) == 0) {
                mf_cfgerr_add(lc->err, lc->cfg->file, t->line,
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

/* librdkafka properties that carry credentials (refused inline). */
static bool
rdkafka_sensitive(const char *k)
{
    static const char *const exact[] = {"ssl.key.pem", "ssl_key",
                                        "sasl.oauthbearer.config", NULL};
    size_t i;

    for (i = 0; exact[i]; i++)
        if (strcmp(k, exact[i]) == 0)
            return true;
    return strstr(k, "password") || strstr(k, "secret");
}

/* Properties owned by dedicated keys. */
static const struct {
    const char *prop;
    const char *key;
} rdkafka_owned[] = {
    {"bootstrap.servers", "brokers"},
    {"metadata.broker.list", "brokers"},
    {"compression.type", "compression"},
    {"compression.codec", "compression"},
    {NULL, NULL},
};

static bool
kv_has(const struct mf_kvlist *kl, const char *key)
{
    size_t i;

    for (i = 0; i < kl->n; i++)
        if (strcmp(kl->v[i].key, key) == 0)
            return true;
    return false;
}

static void
fix_kafka(struct loadctx *lc, const struct mf_output_conf *o, size_t i)
{
    const char *file = lc->cfg->file;
    size_t k, m;
    char w[160];

    for (k = 0; k < o->rdkafka.n; k++) {
        const struct mf_kv *kv = &o->rdkafka.v[k];

        if (rdkafka_sensitive(kv->key))
            mf_cfgerr_add(lc->err, file, kv->line,
                          "outputs[%zu].rdkafka.%s: secrets are never written "
                          "in the configuration: use rdkafka_secret_files or "
                          "rdkafka_secret_env", i, kv->key);
        for (m = 0; rdkafka_owned[m].prop; m++)
            if (strcmp(kv->key, rdkafka_owned[m].prop) == 0)
                mf_cfgerr_add(lc->err, file, kv->line,
                              "outputs[%zu].rdkafka.%s: set by '%s'; remove "
                              "it here", i, kv->key, rdkafka_owned[m].key);
        if (kv_has(&o->rdkafka_secret_files, kv->key) ||
            kv_has(&o->rdkafka_secret_env, kv->key))
            mf_cfgerr_add(lc->err, file, kv->line,
                          "outputs[%zu].rdkafka.%s: also set as a secret", i,
                          kv->key);
    }
    for (k = 0; k < o->rdkafka_secret_files.n; k++) {
        const struct mf_kv *kv = &o->rdkafka_secret_files.v[k];

        if (kv_has(&o->rdkafka_secret_env, kv->key))
            mf_cfgerr_add(lc->err, file, kv->line,
                          "outputs[%zu].rdkafka_secret_files.%s: also in "
                          "rdkafka_secret_env; keep one", i, kv->key);
        if (!kv->value[0])
            mf_cfgerr_add(lc->err, file, kv->line,
                          "outputs[%zu].rdkafka_secret_files.%s: empty path",
                          i, kv->key);
    }
    for (k = 0; k < o->rdkafka_secret_env.n; k++) {
        const struct mf_kv *kv = &o->rdkafka_secret_env.v[k];

        if (check_env_name(kv->value, w, sizeof(w)) != 0)
            mf_cfgerr_add(lc->err, file, kv->line,
                          "outputs[%zu].rdkafka_secret_env.%s: '%s' %s", i,
                          kv->key, kv->value, w);
    }
}

static void
fix_syslog(struct loadctx *lc, const struct mf_output_conf *o, size_t i,
           const struct mf_jval *node)
{
    static const char *const tls_only[] = {"ca_file", "cert_file", "key_file",
                                           NULL};
    const char *file = lc->cfg->file;
    size_t k;

    if (o->transport != MF_SYSLOG_TLS) {
        for (k = 0; tls_only[k]; k++)
            if (mf_jobj_get(node, tls_only[k]))
                mf_cfgerr_add(lc->err, file, key_line(node, tls_only[k]),
                              "outputs[%zu].%s: only used with transport: tls",
                              i, tls_only[k]);
    }
    if (o->cert_file && !o->key_file)
        mf_cfgerr_add(lc->err, file, key_line(node, "cert_file"),
                      "outputs[%zu].cert_file: needs key_file", i);
    if (o->key_file && !o->cert_file)
        mf_cfgerr_add(lc->err, file, key_line(node, "key_file"),
                      "outputs[%zu].key_file: needs cert_file", i);
    if (o->transport == MF_SYSLOG_UDP && o->max_message_size > 65507)
        mf_cfgerr_add(lc->err, file,
                      mf_jobj_get(node, "max_message_size")
                          ? key_line(node, "max_message_size")
                          : key_line(node, "transport"),
                      "outputs[%zu].max_message_size: at most 65507 with "
                      "transport: udp", i);
}

static void
fix_outputs(struct loadctx *lc)
{
    const struct mf_output_list *ol = &lc->cfg->outputs;
    const char *file = lc->cfg->file;
    size_t i, j, k;

    for (i = 0; i < ol->n; i++) {
        struct mf_output_conf *o = (struct mf_output_conf *)&ol->v[i];
        const struct mf_jval *node = list_node(lc, "outputs", i);
        const struct mf_jval *fnode = mf_jobj_get(node, "filter");

        o->line = node ? node->line : 1;
        o->filter.line = fnode ? fnode->line : o->line;
        if (!o->name)
            continue;
        for (j = 0; j < i; j++) {
            const struct mf_output_conf *p = &ol->v[j];

            if (p->name && strcasecmp(p->name, o->name) == 0)
                mf_cfgerr_add(lc->err, file, key_line(node, "name"),
                              "outputs[%zu].name: duplicate output name '%s' "
                              "(also outputs[%zu], line %u)",
                              i, o->name, j, (unsigned)p->line);
            if (o->type == MF_OUTPUT_FILE && p->type == MF_OUTPUT_FILE &&
                o->path && p->path && strcmp(o->path, p->path) == 0)
                mf_cfgerr_add(lc->err, file, key_line(node, "path"),
                              "outputs[%zu].path: '%s' is also the path of "
                              "outputs[%zu]", i, o->path, j);
        }
        if (o->type == MF_OUTPUT_KAFKA)
            fix_kafka(lc, o, i);
        else if (o->type == MF_OUTPUT_SYSLOG)
            fix_syslog(lc, o, i, node);
        for (k = 0; k < o->filter.tenants.n; k++) {
            const char *t = o->filter.tenants.v[k];

            if (!mf_config_tenant(lc->cfg, t))
                mf_cfgerr_add(lc->err, file, key_line(fnode, "tenants"),
                              "outputs[%zu].filter.tenants: unknown tenant "
                              "'%s'", i, t);
        }
    }
}

static void
fix_top(struct loadctx *lc, unsigned flags)
{
    struct mf_config *cfg = lc->cfg;
    const struct mf_jval *col = mf_jobj_get(lc->root, "collect");

    if (cfg->collect.dedupe_horizon_ms != 0 &&
        cfg->collect.dedupe_horizon_ms < cfg->collect.overlap_ms)
        mf_cfgerr_add(lc->err, cfg->file,
                      mf_jobj_get(col, "dedupe_horizon")
                          ? key_line(col, "dedupe_horizon")
                          : key_line(col ? col : lc->root, "overlap"),
                      "collect.dedupe_horizon: must be at least "
                      "collect.overlap (or 0s to disable)");
    if (cfg->proxy_auth_file && !cfg->proxy)
        mf_cfgerr_add(lc->err, cfg->file,
                      key_line(lc->root, "proxy_auth_file"),
                      "proxy_auth_file: needs proxy");
    if (cfg->outputs.n > 0) {
        size_t i, on = 0;

        for (i = 0; i < cfg->outputs.n; i++)
            on += cfg->outputs.v[i].enabled;
        if (on == 0)
            mf_cfgerr_add(lc->err, cfg->file, key_line(lc->root, "outputs"),
                          "outputs: every output is disabled; records would "
                          "be checkpointed without being delivered");
    }
    if ((flags & MF_CONFIG_REQUIRE_TENANTS) && cfg->tenants.n == 0)
        mf_cfgerr_add(lc->err, cfg->file,
                      mf_jobj_get(lc->root, "tenants")
                          ? key_line(lc->root, "tenants")
                          : 1,
                      "tenants: at least one tenant is needed");
}

/* MF_CONFIG_CHECK_FILES: read every secret once and forget it. */
static void
check_secret(struct loadctx *lc, const char *file, const char *env, bool trim,
             const char *what, uint32_t line)
{
    struct mf_secret s;
    char e[400];

    if (mf_config_load_secret(file, env, trim, what, &s, e, sizeof(e)) != 0)
        mf_cfgerr_add(lc->err, lc->cfg->file, line, "%s", e);
    else
        mf_secret_clear(&s);
}

static void
check_readable(struct loadctx *lc, const char *path, const char *what,
               uint32_t line)
{
    if (path && access(path, R_OK) != 0)
        mf_cfgerr_add(lc->err, lc->cfg->file, line, "%s: %s: %s", what, path,
                      strerror(errno));
}

static void
check_files(struct loadctx *lc)
{
    struct mf_config *cfg = lc->cfg;
    char what[128];
    size_t i, k;

    if (cfg->proxy_auth_file)
        check_secret(lc, cfg->proxy_auth_file, NULL, true, "proxy_auth_file",
                     key_line(lc->root, "proxy_auth_file"));
    for (i = 0; i < cfg->tenants.n; i++) {
        const struct mf_tenant_conf *t = &cfg->tenants.v[i];
        const struct mf_jval *n = list_node(lc, "tenants", i);

        if (!t->enabled)
            continue;
        if (t->client_secret_file || t->client_secret_env) {
            snprintf(what, sizeof(what), "tenants[%zu].%s", i,
                     t->client_secret_file ? "client_secret_file"
                                           : "client_secret_env");
            check_secret(lc, t->client_secret_file, t->client_secret_env,
                         true, what,
                         key_line(n, t->client_secret_file
                                         ? "client_secret_file"
                                         : "client_secret_env"));
        }
        if (t->private_key_file) {
            snprintf(what, sizeof(what), "tenants[%zu].private_key_file", i);
            check_secret(lc, t->private_key_file, NULL, false, what,
                         key_line(n, "private_key_file"));
        }
        snprintf(what, sizeof(what), "tenants[%zu].certificate_file", i);
        check_readable(lc, t->certificate_file, what,
                       key_line(n, "certificate_file"));
        snprintf(what, sizeof(what), "tenants[%zu].ca_file", i);
        check_readable(lc, t->ca_file, what, key_line(n, "ca_file"));
    }
    for (i = 0; i < cfg->outputs.n; i++) {
        const struct mf_output_conf *o = &cfg->outputs.v[i];
        const struct mf_jval *n = list_node(lc, "outputs", i);

        if (!o->enabled)
            continue;
        if (o->type == MF_OUTPUT_SYSLOG) {
            snprintf(what, sizeof(what), "outputs[%zu].ca_file", i);
            check_readable(lc, o->ca_file, what, key_line(n, "ca_file"));
            snprintf(what, sizeof(what), "outputs[%zu].cert_file", i);
            check_readable(lc, o->cert_file, what, key_line(n, "cert_file"));
            if (o->key_file) {
                snprintf(what, sizeof(what), "outputs[%zu].key_file", i);
                check_secret(lc, o->key_file, NULL, false, what,
                             key_line(n, "key_file"));
            }
        }
        for (k = 0; k < o->rdkafka_secret_files.n; k++) {
            snprintf(what, sizeof(what), "outputs[%zu].rdkafka_secret_files.%s",
                     i, o->rdkafka_secret_files.v[k].key);
            check_secret(lc, o->rdkafka_secret_files.v[k].value, NULL, true,
                         what, o->rdkafka_secret_files.v[k].line);
        }
        for (k = 0; k < o->rdkafka_secret_env.n; k++) {
            snprintf(what, sizeof(what), "outputs[%zu].rdkafka_secret_env.%s",
                     i, o->rdkafka_secret_env.v[k].key);
            check_secret(lc, NULL, o->rdkafka_secret_env.v[k].value, true,
                         what, o->rdkafka_secret_env.v[k].line);
        }
    }
}

/* ---- load -------------------------------------------------------------- */

static struct mf_config *
load_text(const char *name, const char *text, size_t len, unsigned flags,
          const char *base_dir, struct mf_cfgerr *err)
{
    struct mf_cfgerr scratch;   /* when the caller passes NULL */
    struct mf_config *cfg;
    struct mf_arena tmp;
    struct mf_yerror yerr;
    struct mf_jval *root;
    struct mf_optctx c;
    struct loadctx lc;
    size_t i;

    if (!err)
        err = &scratch;
    mf_cfgerr_reset(err);
    if (!name)
        name = "<config>";
    mf_arena_init(&tmp, 16384);
    root = mf_yaml_load(&tmp, name, text, len, &yerr);
    if (!root) {
        mf_cfgerr_add(err, NULL, 0, "%s", yerr.msg);
        mf_arena_fini(&tmp);
        return NULL;
    }
    cfg = mf_xcalloc(1, sizeof(*cfg));
    mf_arena_init(&cfg->arena, 16384);
    cfg->file = mf_arena_strdup(&cfg->arena, name);
    c.a = &cfg->arena;
    c.file = cfg->file;
    c.err = err;
    c.base_dir = base_dir;
    if (root->type != MF_JOBJ) {
        mf_cfgerr_add(err, cfg->file, root->line,
                      "top level: expected a mapping of settings, got %s",
                      root->type == MF_JARR ? "a list" : "a scalar");
    } else {
        mf_opt_apply(&c, &top_sec, root, 1, cfg, "");
        lc.cfg = cfg;
        lc.err = err;
        lc.root = root;
        for (i = 0; i < cfg->tenants.n; i++)
            fix_tenant(&lc, (struct mf_tenant_conf *)&cfg->tenants.v[i], i);
        check_tenant_dups(&lc);
        fix_outputs(&lc);
        fix_top(&lc, flags);
        if (err->n == 0 && (flags & MF_CONFIG_CHECK_FILES))
            check_files(&lc);
    }
    mf_arena_fini(&tmp);
    if (err->n) {
        mf_config_destroy(cfg);
        return NULL;
    }
    return cfg;
}

struct mf_config *
mf_config_load(const char *name, const char *text, size_t len, unsigned flags,
               struct mf_cfgerr *err)
{
    return load_text(name, text, len, flags, NULL, err);
}

struct mf_config *
mf_config_load_file(const char *path, unsigned flags, struct mf_cfgerr *err)
{
    struct mf_config *cfg;
    struct mf_buf b;
    char *abs;

    if (err)
        mf_cfgerr_reset(err);
    mf_buf_init(&b, 16 * MIB);
    if (mf_buf_read_file(&b, path) != 0) {
        if (errno == EFBIG)
            mf_cfgerr_add(err, path, 0, "larger than 16 MiB");
        else
            mf_cfgerr_add(err, path, 0, "cannot open: %s", strerror(errno));
        mf_buf_fini(&b);
        return NULL;
    }
    /* relative paths in the file are relative to its directory */
    abs = realpath(path, NULL);
    if (abs) {
        char *slash = strrchr(abs, '/');

        if (slash == abs)
            slash[1] = '\0';
        else if (slash)
            *slash = '\0';
    }
    cfg = load_text(path, b.data ? b.data : "", b.len, flags, abs, err);
    free(abs);
    mf_buf_fini(&b);
    return cfg;
}

void
mf_config_destroy(struct mf_config *cfg)
{
    if (!cfg)
        return;
    mf_arena_fini(&cfg->arena);
    free(cfg);
}

const struct mf_tenant_conf *
mf_config_tenant(const struct mf_config *cfg, const char *id_or_name)
{
    size_t i;

    for (i = 0; i < cfg->tenants.n; i++) {
        const struct mf_tenant_conf *t = &cfg->tenants.v[i];

        if (t->id && strcasecmp(t->id, id_or_name) == 0)
            return t;
    }
    for (i = 0; i < cfg->tenants.n; i++) {
        const struct mf_tenant_conf *t = &cfg->tenants.v[i];

        if (t->name && strcasecmp(t->name, id_or_name) == 0)
            return t;
    }
    return NULL;
}

const struct mf_output_conf *
mf_config_output(const struct mf_config *cfg, const char *name)
{
    size_t i;

    for (i = 0; i < cfg->outputs.n; i++)
        if (cfg->outputs.v[i].name &&
            strcasecmp(cfg->outputs.v[i].name, name) == 0)
            return &cfg->outputs.v[i];
    return NULL;
}

/* ---- reload ------------------------------------------------------------ */

bool
mf_config_tenant_equal(const struct mf_tenant_conf *a,
                       const struct mf_tenant_conf *b)
{
    return mf_opt_equal(&tenant_sec, a, b);
}

bool
mf_config_output_equal(const struct mf_output_conf *a,
                       const struct mf_output_conf *b)
{
    return mf_opt_equal(&output_sec, a, b);
}

bool
mf_config_diff(const struct mf_config *old, const struct mf_config *new_,
               const struct mf_config_diff_ops *ops, void *ud)
{
    const struct mf_option *o;
    bool global = false;
    size_t i;

    for (i = 0; i < old->tenants.n; i++) {
        const struct mf_tenant_conf *a = &old->tenants.v[i], *b = NULL;
        size_t j;

        for (j = 0; j < new_->tenants.n; j++)
            if (strcasecmp(new_->tenants.v[j].id, a->id) == 0)
                b = &new_->tenants.v[j];
        if (ops && ops->tenant)
            ops->tenant(!b ? MF_CONFIG_REMOVED
                        : mf_config_tenant_equal(a, b) ? MF_CONFIG_UNCHANGED
                                                       : MF_CONFIG_CHANGED,
                        a, b, ud);
    }
    for (i = 0; i < new_->tenants.n; i++) {
        const struct mf_tenant_conf *b = &new_->tenants.v[i];
        size_t j;

        for (j = 0; j < old->tenants.n; j++)
            if (strcasecmp(old->tenants.v[j].id, b->id) == 0)
                break;
        if (j == old->tenants.n && ops && ops->tenant)
            ops->tenant(MF_CONFIG_ADDED, NULL, b, ud);
    }
    for (i = 0; i < old->outputs.n; i++) {
        const struct mf_output_conf *a = &old->outputs.v[i];
        const struct mf_output_conf *b = mf_config_output(new_, a->name);

        if (ops && ops->output)
            ops->output(!b ? MF_CONFIG_REMOVED
                        : mf_config_output_equal(a, b) ? MF_CONFIG_UNCHANGED
                                                       : MF_CONFIG_CHANGED,
                        a, b, ud);
    }
    for (i = 0; i < new_->outputs.n; i++) {
        const struct mf_output_conf *b = &new_->outputs.v[i];

        if (!mf_config_output(old, b->name) && ops && ops->output)
            ops->output(MF_CONFIG_ADDED, NULL, b, ud);
    }
    /* everything else: compare the top table without the two lists */
    for (o = top_opts; o->name; o++) {
        struct mf_option one[2];
        struct mf_optsec sec = top_sec;

        if (o->type == MF_OPT_LIST)
            continue;
        one[0] = *o;
        memset(&one[1], 0, sizeof(one[1]));
        sec.opts = one;
        if (!mf_opt_equal(&sec, old, new_))
            global = true;
    }
    return global;
}

/* ---- secrets ----------------------------------------------------------- */

void
mf_secret_clear(struct mf_secret *s)
{
    if (s->data) {
        explicit_bzero(s->data, s->len);
        free(s->data);
    }
    s->data = NULL;
    s->len = 0;
}

static size_t
trim_len(const char *s, size_t n)
{
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    return n;
}

int
mf_config_load_secret(const char *file, const char *env, bool trim,
                      const char *what, struct mf_secret *out, char *err,
                      size_t errlen)
{
    struct stat st;
    size_t n = 0;
    char *buf;
    int fd;

    out->data = NULL;
    out->len = 0;
    if (!what)
        what = "secret";
    if (!file) {
        const char *v = env ? getenv(env) : NULL;

        if (!env) {
            snprintf(err, errlen, "%s: no secret source", what);
            return -1;
        }
        if (!v) {
            snprintf(err, errlen, "%s: environment variable %s is not set",
                     what, env);
            return -1;
        }
        n = trim ? trim_len(v, strlen(v)) : strlen(v);
        if (n == 0) {
            snprintf(err, errlen, "%s: environment variable %s is empty", what,
                     env);
            return -1;
        }
        out->data = mf_xstrndup(v, n);
        out->len = n;
        return 0;
    }
    fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s: cannot open: %s", what, file,
                 strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: %s: not a regular file", what, file);
        close(fd);
        return -1;
    }
    if (st.st_mode & (S_IROTH | S_IWOTH | S_IXOTH)) {
        snprintf(err, errlen,
                 "%s: %s: accessible by other users (mode %04o); run "
                 "'chmod o-rwx %s'", what, file,
                 (unsigned)(st.st_mode & 07777), file);
        close(fd);
        return -1;
    }
    if (st.st_size > MF_SECRET_MAX) {
        snprintf(err, errlen, "%s: %s: larger than 1 MiB", what, file);
        close(fd);
        return -1;
    }
    buf = mf_xmalloc((size_t)st.st_size + 1);
    for (;;) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "%s: %s: read error: %s", what, file,
                     strerror(errno));
            explicit_bzero(buf, n);
            free(buf);
            close(fd);
            return -1;
        }
        if (r == 0 || (n += (size_t)r) == (size_t)st.st_size)
            break;
    }
    close(fd);
    if (trim)
        n = trim_len(buf, n);
    buf[n] = '\0';
    if (n == 0) {
        snprintf(err, errlen, "%s: %s: empty", what, file);
        free(buf);
        return -1;
    }
    out->data = buf;
    out->len = n;
    return 0;
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
    return mf_config_load_secret(t->client_secret_file, t->client_secret_env,
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
    return mf_config_load_secret(t->private_key_file, NULL, false, what, out,
                                 err, errlen);
}

/* ---- tags -------------------------------------------------------------- */

size_t
mf_config_check_tags(const struct mf_config *cfg,
                     bool (*known)(const char *id, void *ud), void *ud,
                     struct mf_cfgerr *err)
{
    size_t i, k, added = 0;

    for (i = 0; i < cfg->outputs.n; i++) {
        const struct mf_output_conf *o = &cfg->outputs.v[i];

        for (k = 0; k < o->filter.tags.n; k++)
            if (!known(o->filter.tags.v[k], ud)) {
                mf_cfgerr_add(err, cfg->file, o->filter.line,
                              "outputs[%zu].filter.tags: unknown tag '%s'", i,
                              o->filter.tags.v[k]);
                added++;
            }
    }
    return added;
}

/* ---- generated text ---------------------------------------------------- */

static const char doc_intro[] =
    "<!-- Generated from the option tables in config/config.c by\n"
    "     mf_config_doc_markdown(). Do not edit: run\n"
    "     `ninja -C <builddir> config-doc` (or `m365fwd help-config`) and\n"
    "     commit the result. A unit test fails when they disagree. -->\n"
    "\n"
    "# m365fwd.yaml: configuration reference\n"
    "\n"
    "`m365fwd run|status|preflight|import -c FILE` read one YAML file. "
    "An annotated example is `config/m365fwd.yaml.example`.\n"
    "\n"
    "## Rules\n"
    "\n"
    "- The file is checked completely at start-up (and on `SIGHUP`, where an "
    "invalid file is refused and the running configuration stays). Unknown "
    "keys, wrong types, out-of-range values, missing required keys, "
    "duplicate tenant ids or names, duplicate output names and contradictory "
    "settings are errors; every error is listed as "
    "`FILE:LINE: key.path: what is wrong`.\n"
    "- A key written without a value (`ca_file:`) or with `null` counts as "
    "absent: the default applies.\n"
    "- Durations are a number with a unit: `500ms`, `60s`, `15m`, `24h`, "
    "`7d`, or several (`1h30m`); `0` alone is allowed.\n"
    "- Sizes are bytes (`512`) or a number with a unit: `KiB`, `MiB`, `GiB` "
    "(1024-based; `K`, `M`, `G` are the same) or `KB`, `MB`, `GB` "
    "(1000-based); e.g. `64KiB`, `1MiB`, `10MB`.\n"
    "- Booleans are `true` or `false` (not `yes`/`on`).\n"
    "- Lists are YAML sequences; a single string is a list of one.\n"
    "- A relative *path* is relative to the directory of the configuration "
    "file; `-` (standard output) stays as it is.\n"
    "\n"
    "## Secrets\n"
    "\n"
    "Secrets are never written in this file. The file names where they "
    "are: a file (`client_secret_file`, `private_key_file`, `key_file`, "
    "`proxy_auth_file`, `rdkafka_secret_files`) or an environment variable "
    "(`client_secret_env`, `rdkafka_secret_env`). They are read when "
    "needed, and also once at start-up to fail early. A secret file must "
    "be a regular file (symbolic links are followed), not accessible by "
    "other users (`chmod 600` or `640`; a file readable by others is "
    "refused), not empty, at most 1 MiB; trailing white space and newlines "
    "of client secrets are ignored. An environment variable must be set and "
    "not empty. Secret values never appear in logs, metrics, `status`, the "
    "state, error messages or this reference. Keys such as `client_secret` "
    "or `rdkafka.sasl.password` are refused with a pointer to the right "
    "key.\n"
    "\n";

void
mf_config_doc_markdown(struct mf_buf *b)
{
    size_t i;

    mf_buf_appends(b, doc_intro);
    mf_buf_appends(b, "## Clouds\n\n"
                      "| `cloud` | `login_endpoint` | `api_endpoint` and "
                      "`resource` |\n|---|---|---|\n");
    for (i = 0; i < N_CLOUDS; i++)
        mf_buf_printf(b, "| `%s` | `%s` | `%s` |\n",
                      mf_enum_name(cloud_choices, (int)i),
                      cloud_hosts[i].login, cloud_hosts[i].api);
    mf_buf_appends(b, "\n## Kafka placeholders\n\n"
                      "`topic` and `key` of Kafka outputs may contain:\n\n"
                      "| Placeholder | Topic | Key | Value |\n"
                      "|---|---|---|---|\n");
    for (i = 0; i < N_PLACEHOLDERS; i++)
        mf_buf_printf(b, "| `{%s}` | %s | yes | %s |\n", placeholders[i].name,
                      placeholders[i].in_topic ? "yes" : "no",
                      placeholders[i].desc);
    mf_buf_appends(b, "\nCharacters a Kafka topic does not allow that come "
                      "from a placeholder value are replaced by `_`.\n\n");
    mf_opt_doc(b, &top_sec, "", 2);
}

void
mf_config_dump_yaml(const struct mf_config *cfg, struct mf_buf *b)
{
    mf_opt_dump(b, &top_sec, cfg, 0);
}
