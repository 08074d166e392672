/* cmd_import.c - `m365fwd import`: exported records through the configured
 * outputs, with the same acknowledgements as `run`. For history older than
 * the API's 7 days, and for benchmarks fed a recorded corpus. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "input.h"
#include "log.h"
#include "mem.h"
#include "normalize.h"
#include "fanout.h"
#include "output.h"
#include "report_feed.h"

#define IMPORT_BATCH 5000    /* records between acknowledgement barriers */

const char mf_cmd_import_usage[] =
    "Usage: m365fwd import -c FILE [--tenant NAME] [--input FORMAT] [INPUT...]\n"
    "\n"
    "Send exported audit records through the outputs of the configuration,\n"
    "with the same acknowledgements as `run`, then exit. INPUT is anything\n"
    "`normalize` reads (Purview CSV, PowerShell JSON, NDJSON, content blobs);\n"
    "'-' or no INPUT reads standard input. This is how history older than\n"
    "the API's 7 days is backfilled.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE     configuration (outputs; tenants optional)\n"
    "  --tenant NAME         tenant the records belong to (a configured name\n"
    "                        or id); default: each record's OrganizationId,\n"
    "                        named after the configured tenant with that id\n"
    "  --input auto|json|ndjson|csv   input format (default auto)\n"
    "  -h, --help            show this help\n"
    "\n"
    "Exit status: 0 every record delivered, 1 some record rejected or not\n"
    "acknowledged by an output, 2 usage or configuration error.\n";

struct import_run {
    const struct mf_config *cfg;
    const struct mf_normalizer *norm;
    struct mf_nctx nctx;
    struct mf_fanout fo;                   /* the outputs, the record's forms */
    const struct mf_tenant_conf *tenant;   /* --tenant */
    struct mf_report_feed *report;         /* state_dir/report.db, or NULL */
    unsigned long long read, delivered, rejected, unacked, pending;
};

static volatile sig_atomic_t import_stop;

static void
on_signal(int sig)
{
    (void)sig;
    import_stop = 1;
}

/* The acknowledgement barrier after a batch. */
static void
barrier(struct import_run *r)
{
    bool ok = true;

    if (!r->pending)
        return;
    for (size_t i = 0; i < r->fo.n; i++)
        if (mf_output_flush(r->fo.outs[i], (int)r->fo.outs[i]->conf->flush_timeout_ms) != 0)
            ok = false;
    /* the records since the last barrier are the rollup's batch r */
    if (ok) {
        r->delivered += r->pending;
        mf_report_feed_commit(r->report, (const void *const[]){r}, 1);
    } else {
        mf_report_feed_discard(r->report, r);
        r->unacked += r->pending;
        mf_log(MF_LOG_ERROR, "an output did not acknowledge %llu records (see above); "
               "import them again once it is fixed (duplicates possible)", r->pending);
    }
    r->pending = 0;
}

static void
import_record(struct import_run *r, const struct mf_input_rec *rec)
{
    struct mf_norm_in in = {.data = rec->data, .len = rec->len,
                            .first_line = rec->loc.line};
    const struct mf_norm_result *first;
    const struct mf_tenant_conf *tc = r->tenant;
    const char *tname, *tid;
    char where[300];

    r->read++;
    if (mf_fanout_normalize(&r->fo, r->norm, &r->nctx, &in, &first) != MF_OK) {
        fprintf(stderr, "%s: %s\n", mf_input_loc_str(&rec->loc, where, sizeof(where)),
                first->error);
        r->rejected++;
        return;
    }
    if (!tc && first->tenant_id[0])
        tc = mf_config_tenant(r->cfg, first->tenant_id);
    tid = tc ? tc->id : first->tenant_id;
    tname = tc ? tc->name : tid;
    for (size_t i = 0; i < r->fo.n; i++) {
        struct mf_output *o = r->fo.outs[i];
        struct mf_out_msg m;

        if (!mf_fanout_msg(&r->fo, i, tname, tid, first->content_type, &m))
            continue;
        if (mf_output_send_wait(o, &m, (int)o->conf->flush_timeout_ms) == MF_RETRY)
            mf_log(MF_LOG_ERROR, "output=%s %s: not accepted within %" PRId64 " ms",
                   o->conf->name, mf_input_loc_str(&rec->loc, where, sizeof(where)),
                   o->conf->flush_timeout_ms);
    }
    mf_report_feed_record(r->report, r, &r->nctx, first, tname);
    if (++r->pending >= IMPORT_BATCH)
        barrier(r);
}

static int
import_input(struct import_run *r, const char *path, const struct mf_input_opts *io)
{
    struct mf_input *in;
    struct mf_input_rec rec;
    struct mf_input_err ierr;
    enum mf_input_ev ev;
    char where[300];
    int fd = 0;

    if (strcmp(path, "-") != 0) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "%s: cannot open: %s\n", path, strerror(errno));
            return -1;
        }
    }
    in = mf_input_new_fd(fd, strcmp(path, "-") ? path : "<stdin>", io);
    while (!import_stop && (ev = mf_input_next(in, &rec, &ierr)) != MF_INPUT_EOF) {
        if (ev == MF_INPUT_ERROR) {
            fprintf(stderr, "%s: %s\n", mf_input_loc_str(&ierr.loc, where, sizeof(where)),
                    ierr.msg);
            r->rejected++;
            continue;
        }
        import_record(r, &rec);
    }
    mf_input_destroy(in);
    if (fd > 0)
        close(fd);
    return 0;
}

int
mf_cmd_import(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"tenant", required_argument, NULL, 'T'},
        {"input", required_argument, NULL, 'I'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct mf_cmd *self = mf_cli_find("import");
    struct import_run r = {0};
    struct mf_input_opts io = {.format = MF_INPUT_AUTO};
    const char *config = NULL, *tenant = NULL;
    struct mf_normalizer *norm;
    struct mf_normerr nerr;
    struct mf_config *cfg;
    struct sigaction sa;
    char err[512];
    int ch, rc = MF_EXIT_OK, files_failed = 0;

    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config = optarg;
            break;
        case 'T':
            tenant = optarg;
            break;
        case 'I':
            if (mf_input_format_parse(optarg, &io.format) != 0)
                return mf_cli_usage_error(self, "unknown input format '%s'", optarg);
            break;
        case 'h':
            return mf_cli_help(self);
        default:
            return mf_cli_usage_error(self, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (!config)
        return mf_cli_usage_error(self, "-c FILE is required");
    norm = mf_normalizer_new(NULL, &nerr);
    if (!norm) {
        fprintf(stderr, "m365fwd: %s\n", nerr.msg);
        return MF_EXIT_USAGE;
    }
    /* tenant credentials are not needed to import: no CHECK_FILES */
    cfg = mf_cli_load_config(config, 0, norm);
    if (!cfg) {
        mf_normalizer_destroy(norm);
        return MF_EXIT_USAGE;
    }
    mf_log_set_level((enum mf_log_level)cfg->log_level);
    mf_log_set_format(cfg->log_format == MF_LOG_FORMAT_JSON ? MF_LOG_JSON : MF_LOG_KV);
    io.max_record = (size_t)cfg->collect.max_record_size;
    r.cfg = cfg;
    r.norm = norm;
    if (tenant && !(r.tenant = mf_config_tenant(cfg, tenant))) {
        fprintf(stderr, "m365fwd: --tenant %s: no such tenant in %s\n", tenant, config);
        rc = MF_EXIT_USAGE;
        goto out;
    }
    if (mf_fanout_open(&r.fo, cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "m365fwd: %s\n", err);
        rc = MF_EXIT_USAGE;
        goto out;
    }
    mf_nctx_init(&r.nctx);
    r.report = mf_report_feed_open(cfg, norm);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (optind >= argc) {
        import_input(&r, "-", &io);
    } else {
        for (int i = optind; i < argc && !import_stop; i++)
            if (import_input(&r, argv[i], &io) != 0)
                files_failed++;
    }
    barrier(&r);
    fprintf(stderr, "m365fwd import: %llu records read, %llu delivered, %llu rejected, "
            "%llu not acknowledged\n", r.read, r.delivered, r.rejected, r.unacked);
    if (r.rejected || r.unacked || files_failed || import_stop)
        rc = MF_EXIT_REJECTED;
    mf_report_feed_close(r.report);
    mf_nctx_fini(&r.nctx);
out:
    mf_fanout_close(&r.fo);
    mf_config_destroy(cfg);
    mf_normalizer_destroy(norm);
    return rc;
}
