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
#include "normalize.h"

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
    "Exit status: 0 done, 1 something could not be delivered or a stream\n"
    "stopped with an error (see `m365fwd status`), 2 usage or configuration\n"
    "error.\n";

static struct mf_collector *running;

static void
on_signal(int sig)
{
    (void)sig;
    if (running)
        mf_collector_stop(running);
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
    struct mf_config *cfg;
    struct mf_collector *c;
    struct sigaction sa;
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
    mf_log_set_level((enum mf_log_level)cfg->log_level);
    c = mf_collector_new(cfg, norm, &opts, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "m365fwd: %s\n", err);
        mf_config_destroy(cfg);
        mf_normalizer_destroy(norm);
        return MF_EXIT_USAGE;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    running = c;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    rc = mf_collector_run(c);
    running = NULL;
    mf_collector_destroy(c);
    mf_config_destroy(cfg);
    mf_normalizer_destroy(norm);
    mf_log(MF_LOG_INFO, "exiting with status %d", rc);
    return rc;
}

