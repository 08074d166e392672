/* cmd_run.c - `m365fwd run`. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "collector.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "mf_config.h"
#include "normalize.h"
#include "state.h"

const char mf_cmd_run_usage[] =
    "Usage: m365fwd run -c FILE [--once] [--tenant NAME] [--timeout SECONDS]\n"
    "\n"
    "Collect audit records from the Office 365 Management Activity API for\n"
    "every tenant and content type of the configuration, normalize them and\n"
    "deliver them to the configured outputs. A stream's checkpoint moves only\n"
    "after every output acknowledged every record before it. Runs until\n"
    "SIGTERM or SIGINT, then drains transfers in flight and exits 0.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE   configuration (see docs/configuration.md)\n"
    "  --once              collect everything available up to now, deliver\n"
    "                      it, checkpoint, exit: 0 when all was delivered\n"
    "  --tenant NAME       only this tenant (name or id)\n"
    "  --timeout SECONDS   --once gives up after this long (default 900)\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit status: 0 done, 1 something could not be delivered or collected\n"
    "(a stream stopped with an error, records quarantined, a blob over\n"
    "collect.max_blob_size, the state_dir in use by another agent - its PID\n"
    "is named; see `m365fwd status`), 2 usage or configuration error.\n";

static struct mf_collector *running;
static volatile sig_atomic_t reload_requested;
static volatile sig_atomic_t stop_requested;   /* also before a collector runs */

static void
on_signal(int sig)
{
    if (sig == SIGHUP) {
        reload_requested = 1;
        return;
    }
    stop_requested = 1;
    if (running)
        mf_collector_stop(running);
}

/* SIGHUP: the new configuration is loaded and validated while the old one
 * keeps running; only a valid one replaces it (the collector drains, then a
 * new one starts on the same state: nothing collected is lost). */
struct reload {
    const char *path;
    const struct mf_normalizer *norm;
    struct mf_config *next;
};

/* After a reload: the health entries of the tenants and outputs the new
 * configuration no longer runs go (/readyz would report them forever). */
static void
forget_removed(struct mf_metrics *m, const struct mf_config *old,
               const struct mf_config *cur)
{
    for (size_t i = 0; i < old->tenants.n; i++) {
        const char *n = old->tenants.v[i].name;
        bool kept = false;

        for (size_t k = 0; n && !kept && k < cur->tenants.n; k++)
            kept = cur->tenants.v[k].enabled && cur->tenants.v[k].name &&
                   !strcmp(cur->tenants.v[k].name, n);
        if (n && !kept)
            mf_metrics_status_remove(m, MF_METRICS_TENANT, n);
    }
    for (size_t i = 0; i < old->outputs.n; i++) {
        const char *n = old->outputs.v[i].name;
        bool kept = false;

        for (size_t k = 0; n && !kept && k < cur->outputs.n; k++)
            kept = cur->outputs.v[k].enabled && cur->outputs.v[k].name &&
                   !strcmp(cur->outputs.v[k].name, n);
        if (n && !kept)
            mf_metrics_status_remove(m, MF_METRICS_OUTPUT, n);
    }
}

static bool
reload_tick(void *ud)
{
    struct reload *rl = ud;

    if (!reload_requested)
        return false;
    reload_requested = 0;
    mf_log(MF_LOG_INFO, "SIGHUP: reloading %s", rl->path);
    rl->next = mf_cli_load_config(rl->path,
                                  MF_CONFIG_REQUIRE_TENANTS | MF_CONFIG_CHECK_FILES,
                                  rl->norm);
    if (!rl->next) {
        mf_log(MF_LOG_ERROR, "SIGHUP: the new configuration is refused (errors above); "
               "the running one stays");
        return false;
    }
    return true;
}

static void
apply_log_settings(const struct mf_config *cfg)
{
    mf_log_set_level((enum mf_log_level)cfg->log_level);
    mf_log_set_format(cfg->log_format == MF_LOG_FORMAT_JSON ? MF_LOG_JSON : MF_LOG_KV);
}

static bool
tag_known(const char *id, void *ud)
{
    return mf_tagdb_find(ud, id) != NULL;
}

struct mf_config *
mf_cli_load_config(const char *path, unsigned flags, const struct mf_normalizer *norm)
{
    struct mf_cfgerr err;
    struct mf_config *cfg = mf_config_load_file(path, flags, &err);

    if (cfg && norm &&
        mf_config_check_tags(cfg, tag_known, (void *)mf_normalizer_tags(norm), &err) > 0) {
        mf_config_destroy(cfg);
        cfg = NULL;
    }
    if (!cfg)
        fprintf(stderr, "m365fwd: %s", err.all[0] ? err.all : err.msg);
    if (!cfg && err.all[0] && err.all[strlen(err.all) - 1] != '\n')
        fputc('\n', stderr);
    if (!cfg && !err.all[0])
        fputc('\n', stderr);
    return cfg;
}

int
mf_cmd_run(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"once", no_argument, NULL, 'O'},
        {"tenant", required_argument, NULL, 'T'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct mf_cmd *self = mf_cli_find("run");
    struct mf_collector_opts opts = {0};
    const char *config = NULL;
    struct mf_normalizer *norm;
    struct mf_normerr nerr;
    struct mf_config *cfg, *prev = NULL;
    struct mf_metrics_server *srv = NULL;
    struct mf_collector *c;
    struct sigaction sa;
    struct reload rl = {0};
    struct mf_state_lock *lock;
    char err[512];
    int ch, rc;

    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config = optarg;
            break;
        case 'O':
            opts.once = true;
            break;
        case 'T':
            opts.only_tenant = optarg;
            break;
        case 't': {
            char *end;
            long v = strtol(optarg, &end, 10);

            if (*end || v <= 0)
                return mf_cli_usage_error(self, "--timeout needs a positive number of "
                                          "seconds, not '%s'", optarg);
            opts.once_timeout_ms = (int64_t)v * 1000;
            break;
        }
        case 'h':
            return mf_cli_help(self);
        default:
            return mf_cli_usage_error(self, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return mf_cli_usage_error(self, "unexpected argument '%s'", argv[optind]);
    if (!config)
        return mf_cli_usage_error(self, "-c FILE is required");

    norm = mf_normalizer_new(NULL, &nerr);
    if (!norm) {
        fprintf(stderr, "m365fwd: %s\n", nerr.msg);
        return MF_EXIT_USAGE;
    }
    cfg = mf_cli_load_config(config, MF_CONFIG_REQUIRE_TENANTS | MF_CONFIG_CHECK_FILES,
                             norm);
    if (!cfg) {
        mf_normalizer_destroy(norm);
        return MF_EXIT_USAGE;
    }
    apply_log_settings(cfg);
    /* one agent per state_dir, for the whole run (reloads included) */
    lock = mf_state_lock(cfg->state_dir, err, sizeof(err));
    if (!lock) {
        fprintf(stderr, "m365fwd: %s\n", err);
        mf_config_destroy(cfg);
        mf_normalizer_destroy(norm);
        return MF_EXIT_REJECTED;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    opts.metrics = mf_metrics_new(MF_VERSION);
    if (cfg->metrics.enabled) {
        srv = mf_metrics_server_start(opts.metrics, cfg->metrics.listen, err, sizeof(err));
        if (!srv) {
            fprintf(stderr, "m365fwd: metrics: %s\n", err);
            mf_metrics_destroy(opts.metrics);
            mf_config_destroy(cfg);
            mf_normalizer_destroy(norm);
            mf_state_unlock(lock);
            return MF_EXIT_USAGE;
        }
        mf_log(MF_LOG_INFO, "metrics and health on http://%s (/metrics /healthz /readyz)",
               cfg->metrics.listen);
    }
    rl.path = config;
    rl.norm = norm;
    if (!opts.once) {
        opts.tick = reload_tick;
        opts.tick_ud = &rl;
    }
    for (;;) {
        c = mf_collector_new(cfg, norm, &opts, err, sizeof(err));
        if (!c && prev) {
            /* the reloaded configuration validated but cannot start (an
             * output path, the state dir...): back to the one that ran */
            mf_log(MF_LOG_ERROR, "SIGHUP: the new configuration cannot start: %s; "
                   "going back to the previous one", err);
            mf_config_destroy(cfg);
            cfg = prev;
            prev = NULL;
            apply_log_settings(cfg);
            continue;
        }
        if (!c) {
            fprintf(stderr, "m365fwd: %s\n", err);
            rc = MF_EXIT_USAGE;
            break;
        }
        if (prev) {
            mf_log(MF_LOG_INFO, "configuration reloaded: %zu tenant(s), %zu output(s)",
                   cfg->tenants.n, cfg->outputs.n);
            forget_removed(opts.metrics, prev, cfg);
            mf_config_destroy(prev);
            prev = NULL;
        }
        running = c;
        if (stop_requested)         /* SIGTERM while starting up */
            mf_collector_stop(c);
        rc = mf_collector_run(c);
        running = NULL;
        mf_collector_destroy(c);
        if (!rl.next)
            break;
        /* a validated new configuration: swap and start again */
        prev = cfg;
        cfg = rl.next;
        rl.next = NULL;
        apply_log_settings(cfg);
    }
    if (srv)
        mf_metrics_server_stop(srv);
    mf_metrics_destroy(opts.metrics);
    mf_config_destroy(cfg);
    mf_normalizer_destroy(norm);
    mf_state_unlock(lock);
    mf_log(MF_LOG_INFO, "exiting with status %d", rc);
    return rc;
}

