/* agent_conf.c - m365fwd.yaml: the top-level table composing every
 * section (each declared beside its plugin), the checks across sections,
 * loading, lookups and the generated reference (see agent_conf.h). */
#include "agent_conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kafka.h"
#include "log.h"
#include "mem.h"
#include "optcheck.h"

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

static int
check_proxy_url(const char *s, char *w, size_t n)
{
    static const char *const schemes[] = {"http://", "https://", "socks5://",
                                          "socks5h://", NULL};
    int rc = mf_check_url(s, w, n, schemes,
                          "must be an http://, https://, socks5:// or "
                          "socks5h:// URL");

    if (rc != 0 && strstr(w, "credentials"))
        return mf_opt_why(w, n, "must not contain credentials (put "
                                "user:password in the file named by "
                                "proxy_auth_file)");
    return rc;
}

/* Filters name configured tenants. */
static void
filter_tenants(const struct mf_optctx *c, const struct mf_config *cfg,
               const struct mf_jval *list)
{
    for (size_t i = 0; i < cfg->outputs.n; i++) {
        const struct mf_output_conf *o = &cfg->outputs.v[i];
        const struct mf_jval *node = mf_jis_arr(list) && i < list->len
                                         ? list->u.items[i] : NULL;

        for (size_t k = 0; k < o->filter.tenants.n; k++)
            if (!mf_config_tenant(cfg, o->filter.tenants.v[k]))
                mf_err_add(c->err, c->file,
                           mf_opt_key_line(mf_jobj_get(node, "filter"),
                                           "tenants"),
                           "outputs[%zu].filter.tenants: unknown tenant '%s'",
                           i, o->filter.tenants.v[k]);
    }
}

/* Checks across sections (the top table's check hook). */
static void
top_check(const struct mf_optctx *c, void *base, const struct mf_jval *root,
          const char *path)
{
    struct mf_config *cfg = base;
    unsigned flags = c->flags;

    (void)path;
    mf_tenants_check(c, &cfg->tenants, mf_jobj_get(root, "tenants"));
    filter_tenants(c, cfg, mf_jobj_get(root, "outputs"));
    if (cfg->proxy_auth_file && !cfg->proxy)
        mf_err_add(c->err, c->file,
                      mf_opt_key_line(root, "proxy_auth_file"),
                      "proxy_auth_file: needs proxy");
    if (cfg->outputs.n > 0) {
        size_t i, on = 0;

        for (i = 0; i < cfg->outputs.n; i++)
            on += cfg->outputs.v[i].enabled;
        if (on == 0)
            mf_err_add(c->err, c->file, mf_opt_key_line(root, "outputs"),
                          "outputs: every output is disabled; records would "
                          "be checkpointed without being delivered");
    }
    if ((flags & MF_CONFIG_REQUIRE_TENANTS) && cfg->tenants.n == 0)
        mf_err_add(c->err, c->file,
                      mf_jobj_get(root, "tenants")
                          ? mf_opt_key_line(root, "tenants")
                          : 1,
                      "tenants: at least one tenant is needed");
}

#define TOP(f) offsetof(struct mf_config, f)
static const struct mf_option top_opts[] = {
    {.name = "state_dir", .type = MF_OPT_STR, .def = "/var/lib/m365fwd",
     .offset = TOP(state_dir), .flags = MF_OPT_PATH,
     .reload = MF_RELOAD_NEVER,
     .desc = "Directory of the durable state (SQLite: checkpoints, "
             "delivered blobs, dedupe). Created if missing; one agent per "
             "directory."},
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
     .reload = MF_RELOAD_LIVE,
     .desc = "Least severe level logged (on standard error)."},
    {.name = "log_format", .type = MF_OPT_ENUM, .def = "kv",
     .offset = TOP(log_format), .choices = log_format_choices,
     .reload = MF_RELOAD_LIVE,
     .desc = "Log lines as `key=value` pairs or as JSON objects."},
    {.name = "collect", .type = MF_OPT_SECTION, .offset = TOP(collect),
     .sub = &mf_collect_sec, .desc = "Polling settings."},
    {.name = "metrics", .type = MF_OPT_SECTION, .offset = TOP(metrics),
     .sub = &mf_metrics_sec, .desc = "Metrics and health endpoints."},
    {.name = "normalizer", .type = MF_OPT_SECTION, .offset = TOP(normalizer),
     .sub = &mf_normalizer_sec,
     .desc = "Tables of the normalizer (risk tags, OCSF and ECS mappings)."},
    {.name = "report", .type = MF_OPT_SECTION, .offset = TOP(report),
     .sub = &mf_report_sec, .desc = "The rollup of the review."},
    {.name = "tenants", .type = MF_OPT_LIST, .offset = TOP(tenants),
     .sub = &mf_tenant_sec,
     .desc = "Tenants to collect from. `run`, `status` and `preflight` need "
             "at least one; `import` does not."},
    {.name = "outputs", .type = MF_OPT_LIST, .offset = TOP(outputs),
     .sub = &mf_output_sec, .flags = MF_OPT_REQUIRED | MF_OPT_NONEMPTY,
     .desc = "Destinations of the events; at least one."},
    {.name = NULL},
};

const struct mf_optsec mf_config_sec = {
    .name = "",
    .desc = "",
    .opts = top_opts,
    .size = sizeof(struct mf_config),
    .check = top_check,
};

/* ---- load ------------------------------------------------------------ */

static struct mf_config *
config_new(void)
{
    struct mf_config *cfg = mf_xcalloc(1, sizeof(*cfg));

    mf_arena_init(&cfg->arena, 16384);
    return cfg;
}

struct mf_config *
mf_config_load(const char *name, const char *text, size_t len, unsigned flags,
               struct mf_err *err)
{
    struct mf_config *cfg = config_new();

    cfg->file = mf_arena_strdup(&cfg->arena, name ? name : "<config>");
    if (mf_config_read(&mf_config_sec, cfg, &cfg->arena, cfg->file, text, len,
                       NULL, flags, err) != 0) {
        mf_config_destroy(cfg);
        return NULL;
    }
    return cfg;
}

struct mf_config *
mf_config_load_file(const char *path, unsigned flags, struct mf_err *err)
{
    struct mf_config *cfg = config_new();

    cfg->file = mf_arena_strdup(&cfg->arena, path);
    if (mf_config_read_file(&mf_config_sec, cfg, &cfg->arena, path, flags,
                            err) != 0) {
        mf_config_destroy(cfg);
        return NULL;
    }
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

/* ---- generated text -------------------------------------------------- */

static const char doc_intro[] =
    "<!-- Generated from the option tables beside each plugin (composed in\n"
    "     agent/agent_conf.c) by mf_config_doc_markdown(). Do not edit: run\n"
    "     `ninja -C <builddir> config-doc` (or `m365fwd help config`) and\n"
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
    "- *Reload* says what `SIGHUP` does with a change of the key (every "
    "change is logged, key by key): `live` applies it at once; `restart` "
    "drains collection and starts it again with the new configuration on "
    "the same state (nothing collected is lost); `never` refuses the whole "
    "new configuration with an error naming the key (the running one stays; "
    "restart the service to change it). For a list (`tenants`, `outputs`) "
    "it is what adding or removing an element does.\n"
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
    mf_buf_appends(b, doc_intro);
    mf_clouds_doc(b);
    mf_kafka_doc_placeholders(b);
    mf_opt_doc(b, &mf_config_sec, "", 2);
}

void
mf_config_dump_yaml(const struct mf_config *cfg, struct mf_buf *b)
{
    mf_opt_dump(b, &mf_config_sec, cfg, 0);
}
