/* cmd_run.c - `m365fwd run`. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent_conf.h"
#include "cli.h"
#include "collector.h"
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
    "SIGHUP reloads the configuration: the new file is checked while the\n"
    "old one runs, every changed key is logged with what is done with it,\n"
    "and a file that is invalid, changes a key that needs a restart\n"
    "(state_dir) or cannot start is refused: the running one stays.\n"
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

static bool
tag_known(const char *id, void *ud)
{
    return mf_tagdb_find(ud, id) != NULL;
}

/* The configuration and the normalizer of its `normalizer:` section (tag
 * ids of output filters checked against its catalogue). NULL with err. */
static struct mf_config *
load_all(const char *path, unsigned flags, struct mf_normalizer **norm,
         struct mf_err *err)
{
    struct mf_config *cfg = mf_config_load_file(path, flags, err);

    if (!cfg || !norm)
        return cfg;
    *norm = mf_normalizer_new(&cfg->normalizer, err);
    if (*norm && mf_output_check_tags(&cfg->outputs, cfg->file, tag_known,
                                      (void *)mf_normalizer_tags(*norm), err) == 0)
        return cfg;
    mf_normalizer_destroy(*norm);
    *norm = NULL;
    mf_config_destroy(cfg);
    return NULL;
}

struct mf_config *
mf_cli_load_config(const char *path, unsigned flags, struct mf_normalizer **norm)
{
    struct mf_err err;
    struct mf_config *cfg = load_all(path, flags, norm, &err);

    if (!cfg)
        fprintf(stderr, "m365fwd: %s", err.all[0] ? err.all : "\n");
    return cfg;
}

/* ---- SIGHUP ------------------------------------------------------------ */

/* The running process: the collector's configuration (run), the newest one
 * accepted (cur: run, or newer by live keys only), the metrics listener,
 * and a validated configuration waiting for the collector to drain. */
struct reload {
    const char *path;
    struct mf_config *run, *cur;
    struct mf_normalizer *norm;
    struct mf_metrics *metrics;
    struct mf_metrics_server *srv;
    struct mf_config *next;
    struct mf_normalizer *next_norm;
};

static void
apply_log_settings(const struct mf_config *cfg)
{
    mf_log_set_level((enum mf_log_level)cfg->log_level);
    mf_log_set_format(cfg->log_format == MF_LOG_FORMAT_JSON ? MF_LOG_JSON : MF_LOG_KV);
}

/* The metrics listener of cfg, moved from old's (NULL: none yet). On a
 * failure the old one is back and -1 is returned with err. */
static int
apply_metrics(struct reload *rl, const struct mf_config *old,
              const struct mf_config *cfg, char *err, size_t errsz)
{
    struct mf_metrics_server *srv = NULL;

    if (old && old->metrics.enabled == cfg->metrics.enabled &&
        (!cfg->metrics.enabled || !strcmp(old->metrics.listen, cfg->metrics.listen)))
        return 0;
    if (rl->srv)
        mf_metrics_server_stop(rl->srv);
    rl->srv = NULL;
    if (cfg->metrics.enabled &&
        !(srv = mf_metrics_server_start(rl->metrics, cfg->metrics.listen, err, errsz))) {
        if (old && old->metrics.enabled)
            rl->srv = mf_metrics_server_start(rl->metrics, old->metrics.listen, NULL, 0);
        return -1;
    }
    rl->srv = srv;
    if (srv)
        mf_log_always(MF_LOG_INFO, "metrics and health on http://%s (/metrics /healthz /readyz)",
               cfg->metrics.listen);
    else if (old)
        mf_log_always(MF_LOG_INFO, "metrics listener stopped");
    return 0;
}

/* What a reload finds, change by change. */
struct changes {
    size_t restart, never;
    const char *never_key;
    char never_path[256];
};

static const char *const verdicts[] = {
    [MF_RELOAD_RESTART] = "applied", [MF_RELOAD_LIVE] = "applied",
    [MF_RELOAD_NEVER] = "refused: restart m365fwd to change it",
};

static void
on_change(const struct mf_change *ch, void *ud)
{
    struct changes *cs = ud;
    enum mf_log_level lvl = ch->reload == MF_RELOAD_NEVER ? MF_LOG_ERROR : MF_LOG_INFO;

    if (ch->kind != MF_CHANGE_CHANGED)
        mf_log_always(lvl, "reload: %s %s (%s)", ch->path,
               ch->kind == MF_CHANGE_ADDED ? "added" : "removed", verdicts[ch->reload]);
    else if (!ch->old_value)
        mf_log_always(lvl, "reload: %s: changed, value not shown (%s)", ch->path,
               verdicts[ch->reload]);
    else
        mf_log_always(lvl, "reload: %s: %s -> %s (%s)", ch->path, ch->old_value, ch->new_value,
               verdicts[ch->reload]);
    if (ch->reload == MF_RELOAD_RESTART)
        cs->restart++;
    if (ch->reload == MF_RELOAD_NEVER && cs->never++ == 0)
        snprintf(cs->never_path, sizeof(cs->never_path), "%s", ch->path);
}

static void
log_lines(enum mf_log_level lvl, const char *prefix, const char *text)
{
    while (*text) {
        size_t n = strcspn(text, "\n");

        mf_log_always(lvl, "%s%.*s", prefix, (int)n, text);
        text += n + (text[n] == '\n');
    }
}

static void
drop(struct mf_config **cfg, struct mf_normalizer **norm)
{
    mf_config_destroy(*cfg);
    mf_normalizer_destroy(*norm);
    *cfg = NULL;
    *norm = NULL;
}

/* Called by the collector once per loop turn: true stops it to start again
 * with rl->next. */
static bool
reload_tick(void *ud)
{
    struct reload *rl = ud;
    struct mf_normalizer *norm = NULL;
    struct changes cs = {0};
    struct mf_config *next;
    struct mf_err err;
    char e[256];
    size_t n;

    if (!reload_requested || rl->next)
        return rl->next != NULL;
    reload_requested = 0;
    mf_log_always(MF_LOG_INFO, "SIGHUP: reloading %s", rl->path);
    next = load_all(rl->path, MF_CONFIG_REQUIRE_TENANTS | MF_CONFIG_CHECK_FILES, &norm,
                    &err);
    if (!next) {
        log_lines(MF_LOG_ERROR, "reload: ", err.all);
        mf_log_always(MF_LOG_ERROR, "reload: the new configuration is refused (errors above); "
               "the running one stays");
        return false;
    }
    n = mf_config_diff(&mf_config_sec, rl->cur, next, on_change, &cs);
    if (n == 0 || cs.never) {
        if (n == 0)
            mf_log_always(MF_LOG_INFO, "reload: %s unchanged; nothing to do", rl->path);
        else
            mf_log_always(MF_LOG_ERROR, "reload: the new configuration is refused: %s cannot "
                   "change while m365fwd runs; the running one stays", cs.never_path);
        drop(&next, &norm);
        return false;
    }
    if (apply_metrics(rl, rl->cur, next, e, sizeof(e)) != 0) {
        mf_log_always(MF_LOG_ERROR, "reload: metrics: %s; the new configuration is refused, "
               "the running one stays", e);
        drop(&next, &norm);
        return false;
    }
    apply_log_settings(next);
    if (rl->cur != rl->run)
        mf_config_destroy(rl->cur);
    rl->cur = next;
    if (cs.restart == 0) {
        mf_log_always(MF_LOG_INFO, "reload: %zu change(s) applied in place", n);
        mf_normalizer_destroy(norm);
        return false;
    }
    mf_log_always(MF_LOG_INFO, "reload: %zu change(s); collection drains and restarts with the "
           "new configuration", n);
    rl->next = next;
    rl->next_norm = norm;
    return true;
}

/* After a reload: the health entries of the tenants and outputs the new
 * configuration no longer runs go (/readyz would report them forever). */
static void
forget_removed(struct mf_metrics *m, const struct mf_config *old,
               const struct mf_config *cur)
{
    for (size_t i = 0; i < old->tenants.n; i++) {
        const char *n = old->tenants.v[i].name;
        const struct mf_tenant_conf *t = mf_config_tenant(cur, n);

        if (!t || !t->enabled || strcmp(t->name, n))
            mf_metrics_status_remove(m, MF_METRICS_TENANT, n);
    }
    for (size_t i = 0; i < old->outputs.n; i++) {
        const char *n = old->outputs.v[i].name;
        const struct mf_output_conf *o = mf_config_output(cur, n);

        if (!o || !o->enabled || strcmp(o->name, n))
            mf_metrics_status_remove(m, MF_METRICS_OUTPUT, n);
    }
}

/* ---- the run ----------------------------------------------------------- */

static int
parse_args(int argc, char **argv, struct mf_collector_opts *opts, const char **config)
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
    struct mf_cli_opts o = {.cmd = self, .shortopts = "+c:h", .longopts = longopts,
                            .flags = MF_CLI_NEED_CONFIG | MF_CLI_NO_ARGS};
    char *end;
    long v;
    int ch;

    while ((ch = mf_cli_getopt(&o, argc, argv)) > 0) {
        switch (ch) {
        case 'O':
            opts->once = true;
            break;
        case 'T':
            opts->only_tenant = optarg;
            break;
        case 't':
            v = strtol(optarg, &end, 10);
            if (*end || v <= 0)
                return mf_cli_usage_error(self, "--timeout needs a positive number of "
                                          "seconds, not '%s'", optarg);
            opts->once_timeout_ms = (int64_t)v * 1000;
            break;
        }
    }
    *config = o.config;
    return ch < 0 ? o.rc : -1;
}

/* Collection until stopped; a reload swaps the configuration between two
 * runs of the collector (nothing collected is lost: same state). */
static int
run_loop(struct reload *rl, struct mf_collector_opts *opts)
{
    struct mf_config *prev = NULL;
    struct mf_normalizer *prev_norm = NULL;
    char err[512];
    int rc;

    for (;;) {
        struct mf_collector *c = mf_collector_new(rl->run, rl->norm, opts, err, sizeof(err));

        if (!c && prev) {
            /* the reloaded configuration validated but cannot start (an
             * output path, the state dir...): back to the one that ran */
            mf_log(MF_LOG_ERROR, "reload: the new configuration cannot start: %s; going "
                   "back to the previous one", err);
            apply_metrics(rl, rl->run, prev, err, sizeof(err));
            apply_log_settings(prev);
            drop(&rl->run, &rl->norm);
            rl->run = rl->cur = prev;
            rl->norm = prev_norm;
            prev = NULL;
            continue;
        }
        if (!c) {
            fprintf(stderr, "m365fwd: %s\n", err);
            return MF_EXIT_USAGE;
        }
        if (prev) {
            mf_log(MF_LOG_INFO, "configuration reloaded: %zu tenant(s), %zu output(s)",
                   rl->run->tenants.n, rl->run->outputs.n);
            forget_removed(opts->metrics, prev, rl->run);
            drop(&prev, &prev_norm);
        }
        running = c;
        if (stop_requested)         /* SIGTERM while starting up */
            mf_collector_stop(c);
        rc = mf_collector_run(c);
        running = NULL;
        mf_collector_destroy(c);
        if (!rl->next)
            return rc;
        /* a validated new configuration: swap and start again */
        prev = rl->run;
        prev_norm = rl->norm;
        rl->run = rl->cur = rl->next;
        rl->norm = rl->next_norm;
        rl->next = NULL;
        rl->next_norm = NULL;
    }
}

int
mf_cmd_run(int argc, char **argv)
{
    struct mf_collector_opts opts = {0};
    const char *config = NULL;
    struct reload rl = {0};
    struct sigaction sa;
    struct mf_state_lock *lock;
    char err[512];
    int rc = parse_args(argc, argv, &opts, &config);

    if (rc >= 0)
        return rc;
    rl.path = config;
    rl.run = rl.cur = mf_cli_load_config(config, MF_CONFIG_REQUIRE_TENANTS |
                                         MF_CONFIG_CHECK_FILES, &rl.norm);
    if (!rl.run)
        return MF_EXIT_USAGE;
    apply_log_settings(rl.run);
    /* one agent per state_dir, for the whole run (reloads included;
     * state_dir is not reloadable) */
    lock = mf_state_lock(rl.run->state_dir, err, sizeof(err));
    if (!lock) {
        fprintf(stderr, "m365fwd: %s\n", err);
        drop(&rl.run, &rl.norm);
        return MF_EXIT_REJECTED;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    rl.metrics = opts.metrics = mf_metrics_new(MF_VERSION);
    if (apply_metrics(&rl, NULL, rl.run, err, sizeof(err)) != 0) {
        fprintf(stderr, "m365fwd: metrics: %s\n", err);
        rc = MF_EXIT_USAGE;
    } else {
        if (!opts.once) {
            opts.tick = reload_tick;
            opts.tick_ud = &rl;
        }
        rc = run_loop(&rl, &opts);
    }
    if (rl.srv)
        mf_metrics_server_stop(rl.srv);
    mf_metrics_destroy(rl.metrics);
    if (rl.cur != rl.run)
        mf_config_destroy(rl.cur);
    drop(&rl.run, &rl.norm);
    mf_state_unlock(lock);
    mf_log(MF_LOG_INFO, "exiting with status %d", rc);
    return rc;
}
