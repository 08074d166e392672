/* cmd_report.c - `m365fwd report`: the security and governance review of a
 * period, from export files (streamed record by record) or from the rollup
 * `run` and `import` keep in the state directory (-c). See docs/report.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "agent_conf.h"
#include "input.h"
#include "mem.h"
#include "normalize.h"
#include "report.h"
#include "report_feed.h"

#include "mf_config.h"

#define DEFAULT_DAYS 30
#define MAX_DAYS     3660

const char mf_cmd_report_usage[] =
    "Usage: m365fwd report [-c FILE] [--tenant NAME] [--days N | --from DATE --to DATE]\n"
    "                      [--format html|md|json] [-o FILE] [INPUT...]\n"
    "\n"
    "Write the security and governance review of a period: where the tenant is\n"
    "most exposed (score per area, weekly trend, tags, riskiest actors and\n"
    "objects, highest-severity events, aggregate findings), which protections it\n"
    "owns but does not use properly (evidence-based checks), a 30/60/90-day\n"
    "plan citing that evidence, and the coverage it rests on (content types,\n"
    "days, collection gaps).\n"
    "\n"
    "With INPUT (anything `normalize` reads: Purview CSV, PowerShell JSON,\n"
    "NDJSON, content blobs; '-' is standard input) the review is built from\n"
    "the export, record by record. Without INPUT and with -c, from the rollup\n"
    "that `run` and `import` keep in the configuration's state_dir\n"
    "(report.db). Without either, standard input is read.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE     configuration: tenant names, and the rollup in its\n"
    "                        state_dir when no INPUT is given\n"
    "  --tenant NAME         only this tenant (a configured name or id, or an\n"
    "                        OrganizationId); default: every tenant\n"
    "  --days N              the last N days (default 30): ending today with\n"
    "                        -c, ending on the newest record's day with INPUT\n"
    "                        (default with INPUT: every day of the export)\n"
    "  --from DATE           first day, YYYY-MM-DD (UTC), with --to\n"
    "  --to DATE             last day, YYYY-MM-DD (UTC), included\n"
    "  --format html|md|json output format (default html: one self-contained\n"
    "                        file; md for tickets; json: the same content,\n"
    "                        schema m365fwd.report/1)\n"
    "  -o, --output FILE     write to FILE (default: standard output)\n"
    "  --input auto|json|ndjson|csv   input format (default auto)\n"
    "  --checks-file F       checks and aggregate findings instead of the\n"
    "                        built-in checks.yaml\n"
    "  --plan-file F         plan table instead of the built-in plan.yaml\n"
    "  -h, --help            show this help\n"
    "\n"
    "Exit status: 0 report written from every record, 1 report written but\n"
    "some record rejected or a file unreadable (or the report could not be\n"
    "written), 2 usage, configuration or table error.\n";

enum {
    OPT_TENANT = 256, OPT_DAYS, OPT_FROM, OPT_TO, OPT_FORMAT, OPT_INPUT, OPT_CHECKS,
    OPT_PLAN,
};

struct rep {
    const struct mf_normalizer *norm;
    const struct mf_config *cfg;
    struct mf_nctx nctx;
    struct mf_event ev;
    struct mf_agg *agg;
    struct mf_input_opts io;
    bool range_fixed;            /* --from/--to: records outside are skipped */
    int64_t from, to;
    uint64_t read, rejected, outside, files_failed;
};

static void
rep_record(struct rep *r, const struct mf_input_rec *rec)
{
    struct mf_norm_in in = {.data = rec->data, .len = rec->len,
                            .first_line = rec->loc.line ? rec->loc.line : 1};
    struct mf_event *ev = &r->ev;
    struct mf_report_rec rr;
    const struct mf_tenant_conf *tc = NULL;
    char where[300];
    int64_t day;

    r->read++;
    if (mf_normalize_event(r->norm, &r->nctx, &in, ev) != MF_OK) {
        fprintf(stderr, "%s: %s\n", mf_input_loc_str(&rec->loc, where, sizeof(where)),
                ev->error);
        r->rejected++;
        return;
    }
    day = ev->time_ms / 86400000;
    if (r->range_fixed && (day < r->from || day > r->to)) {
        r->outside++;
        return;
    }
    /* the tenant's configured name when there is one */
    if (r->cfg && ev->tenant_id[0] && (tc = mf_config_tenant(r->cfg, ev->tenant_id))) {
        ev->tenant_id = tc->id;
        ev->tenant = tc->name;
    }
    mf_report_rec_fill(&rr, ev, &r->nctx.rec, mf_normalizer_class_name(r->norm,
                                                                        ev->class_uid));
    mf_agg_add(r->agg, &rr);
}

static void
rep_file(struct rep *r, const char *path)
{
    struct mf_input *in;
    struct mf_input_rec rec;
    struct mf_input_err ierr;
    enum mf_input_ev ev;
    char where[300];
    int fd = STDIN_FILENO;

    if (strcmp(path, "-") != 0 && (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        fprintf(stderr, "m365fwd report: %s: %s\n", path, strerror(errno));
        r->files_failed++;
        return;
    }
    in = mf_input_new_fd(fd, strcmp(path, "-") ? path : "<stdin>", &r->io);
    while ((ev = mf_input_next(in, &rec, &ierr)) != MF_INPUT_EOF) {
        if (ev == MF_INPUT_RECORD) {
            rep_record(r, &rec);
            continue;
        }
        r->read++;
        r->rejected++;
        fprintf(stderr, "%s: %s\n", mf_input_loc_str(&ierr.loc, where, sizeof(where)),
                ierr.msg);
    }
    mf_input_destroy(in);
    if (fd != STDIN_FILENO)
        close(fd);
}

/* Write all of b to path ("-" or NULL: standard output), through a
 * temporary file renamed into place. 0 / -1 (message printed). */
static int
write_out(const char *path, const struct mf_buf *b)
{
    char tmp[4200];
    FILE *f;

    if (!path || strcmp(path, "-") == 0) {
        if (fwrite(b->data, 1, b->len, stdout) != b->len || fflush(stdout) != 0) {
            fprintf(stderr, "m365fwd report: writing standard output: %s\n", strerror(errno));
            return -1;
        }
        return 0;
    }
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= sizeof(tmp)) {
        fprintf(stderr, "m365fwd report: %s: path too long\n", path);
        return -1;
    }
    if (!(f = fopen(tmp, "w"))) {
        fprintf(stderr, "m365fwd report: %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    if (fwrite(b->data, 1, b->len, f) != b->len || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        fprintf(stderr, "m365fwd report: writing %s: %s\n", tmp, strerror(errno));
        fclose(f);
        unlink(tmp);
        return -1;
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "m365fwd report: %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

struct rep_args {
    const char *config, *tenant, *output, *checks, *plan;
    int64_t days, from, to;
    bool has_from, has_to;
    int format;
};

static int
parse_args(const struct mf_cmd *self, int argc, char **argv, struct rep_args *a,
           struct mf_input_opts *io, int *rc)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"tenant", required_argument, NULL, OPT_TENANT},
        {"days", required_argument, NULL, OPT_DAYS},
        {"from", required_argument, NULL, OPT_FROM},
        {"to", required_argument, NULL, OPT_TO},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"output", required_argument, NULL, 'o'},
        {"input", required_argument, NULL, OPT_INPUT},
        {"checks-file", required_argument, NULL, OPT_CHECKS},
        {"plan-file", required_argument, NULL, OPT_PLAN},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct mf_cli_opts o = {.cmd = self, .shortopts = "c:o:h", .longopts = longopts};
    char *end;
    int c;

    while ((c = mf_cli_getopt(&o, argc, argv)) > 0) {
        switch (c) {
        case OPT_TENANT: a->tenant = optarg; break;
        case 'o': a->output = optarg; break;
        case OPT_CHECKS: a->checks = optarg; break;
        case OPT_PLAN: a->plan = optarg; break;
        case OPT_DAYS:
            a->days = strtoll(optarg, &end, 10);
            if (*end || end == optarg || a->days < 1 || a->days > MAX_DAYS)
                goto bad;
            break;
        case OPT_FROM:
            if (mf_report_parse_day(optarg, &a->from) != 0)
                goto bad;
            a->has_from = true;
            break;
        case OPT_TO:
            if (mf_report_parse_day(optarg, &a->to) != 0)
                goto bad;
            a->has_to = true;
            break;
        case OPT_FORMAT:
            if ((a->format = mf_report_format_parse(optarg)) < 0)
                goto bad;
            break;
        case OPT_INPUT:
            if (mf_input_format_parse(optarg, &io->format) != 0)
                goto bad;
            break;
        }
        continue;
bad:
        *rc = mf_cli_usage_error(self, "bad value '%s' for %s", optarg, argv[optind - 1]);
        return -1;
    }
    a->config = o.config;
    if (c < 0) {
        *rc = o.rc;
        return -1;
    }
    if (a->days && (a->has_from || a->has_to)) {
        *rc = mf_cli_usage_error(self, "--days and --from/--to exclude each other");
        return -1;
    }
    if (a->has_from != a->has_to) {
        *rc = mf_cli_usage_error(self, "--from and --to go together");
        return -1;
    }
    if (a->has_from && (a->to < a->from || a->to - a->from >= MAX_DAYS)) {
        *rc = mf_cli_usage_error(self, "--to must be on or after --from, at most %d days "
                                 "later", MAX_DAYS - 1);
        return -1;
    }
    return optind;
}

/* The review's records from the rollup of cfg's state directory, over
 * --from/--to or the last --days days ending today; ro names the source
 * (its inputs point to path, which must outlive ro). 0 / -1 (message
 * printed). *rollup is the open rollup for the caller to close. */
static int
load_rollup(const struct mf_config *cfg, const struct mf_report_tables *tables,
            struct rep_args *a, int64_t today, struct mf_agg *agg,
            struct mf_rollup **rollup, const char **path,
            struct mf_review_opts *ro)
{
    struct mf_rollup_opts opts = {.read_only = true};
    struct mf_report_err rerr;

    if (!a->has_from) {
        a->to = today;
        a->from = today - (a->days ? a->days : DEFAULT_DAYS) + 1;
    }
    *rollup = mf_rollup_open(cfg->state_dir, tables, &opts, &rerr);
    if (!*rollup || mf_rollup_load(*rollup, a->tenant, a->from, a->to, agg, &rerr) != 0) {
        fprintf(stderr, "m365fwd report: %s\n", rerr.msg);
        return -1;
    }
    path[0] = mf_rollup_path(*rollup);
    ro->source_kind = "rollup";
    ro->inputs = path;
    ro->n_inputs = 1;
    return 0;
}

/* The review's records from the export files (standard input when there
 * is none), then the period when --from/--to did not fix it: the --days
 * days ending on the newest record's day, or every day of the export (at
 * most MAX_DAYS). Returns the exit status so far. */
static int
read_exports(struct rep *r, struct rep_args *a, int64_t today, char **files,
             int n_files, struct mf_review_opts *ro)
{
    r->range_fixed = a->has_from;
    r->from = a->from;
    r->to = a->to;
    mf_nctx_init(&r->nctx);
    mf_event_init(&r->ev, 0);
    if (n_files == 0)
        rep_file(r, "-");
    for (int i = 0; i < n_files; i++)
        rep_file(r, files[i]);
    mf_event_fini(&r->ev);
    mf_nctx_fini(&r->nctx);
    if (!a->has_from) {
        int64_t last = mf_agg_last_day(r->agg);

        a->to = last >= 0 ? last : today;
        a->from = a->days ? a->to - a->days + 1
                          : (mf_agg_first_day(r->agg) >= 0 ? mf_agg_first_day(r->agg) : a->to);
        if (a->to - a->from >= MAX_DAYS)
            a->from = a->to - MAX_DAYS + 1;
    }
    ro->source_kind = "export";
    ro->inputs = (const char *const *)files;
    ro->n_inputs = (size_t)n_files;
    return r->rejected || r->files_failed ? MF_EXIT_REJECTED : MF_EXIT_OK;
}

/* One line on standard error once the review went to a file: the period,
 * the records it rests on, where it went. */
static void
print_written(const struct rep_args *a, const struct rep *r,
              const struct mf_rollup *rollup, const struct mf_jval *doc,
              size_t len)
{
    char f0[16], f1[16];
    int64_t n = 0;

    mf_report_fmt_day(a->from, f0, sizeof(f0));
    mf_report_fmt_day(a->to, f1, sizeof(f1));
    mf_jget_int(mf_jget_path(doc, "summary.records"), &n);
    if (rollup)
        fprintf(stderr, "m365fwd report: %s to %s, %lld records from %s; ", f0, f1,
                (long long)n, mf_rollup_path(rollup));
    else
        fprintf(stderr, "m365fwd report: %s to %s, %llu records read, %llu rejected, "
                "%lld in the period; ", f0, f1, (unsigned long long)r->read,
                (unsigned long long)r->rejected, (long long)n);
    fprintf(stderr, "wrote %s (%zu bytes)\n", a->output, len);
}

/* Build the review of r's aggregate over a's period, render it in a's
 * format and write it out. 0 / -1 (message printed). */
static int
write_review(const struct rep_args *a, const struct rep *r,
             const struct mf_report_tables *tables,
             const struct mf_report_catalog *cat, const struct mf_rollup *rollup,
             struct mf_review_opts *ro)
{
    struct mf_arena arena;
    struct mf_buf out;
    struct mf_jval *doc;
    int rc = 0;

    ro->tenant = a->tenant;
    ro->day_from = a->from;
    ro->day_to = a->to;
    ro->now_ms = mf_clock_wall_ms();
    ro->records_read = r->read;
    ro->records_rejected = r->rejected;
    ro->records_outside = r->outside;
    ro->generator = "m365fwd " MF_VERSION;
    mf_arena_init(&arena, 256 * 1024);
    mf_buf_init(&out, 0);
    doc = mf_review_build(&arena, r->agg, tables, cat, ro);
    if (mf_report_render(&out, doc, (enum mf_report_format)a->format) != 0 ||
        write_out(a->output, &out) != 0)
        rc = -1;
    else if (a->output && strcmp(a->output, "-") != 0)
        print_written(a, r, rollup, doc, out.len);
    mf_buf_fini(&out);
    mf_arena_fini(&arena);
    return rc;
}

int
mf_cmd_report(int argc, char **argv)
{
    const struct mf_cmd *self = mf_cli_find("report");
    struct rep_args a = {.format = MF_RFMT_HTML};
    struct rep r = {.io = {.format = MF_INPUT_AUTO}};
    struct mf_review_opts ro = {0};
    struct mf_report_catalog cat = {0};
    struct mf_report_tables *tables = NULL;
    struct mf_report_err rerr;
    struct mf_normalizer *norm = NULL;
    struct mf_err nerr;
    struct mf_config *cfg = NULL;
    struct mf_rollup *rollup = NULL;
    const char *rollup_path[1];
    int first, rc = MF_EXIT_USAGE;
    int64_t today = mf_clock_wall_ms() / 86400000;

    if ((first = parse_args(self, argc, argv, &a, &r.io, &rc)) < 0)
        return rc;
    /* the configuration's normalizer (its `normalizer:` tables), else the
     * built-in one */
    if (a.config && !(cfg = mf_cli_load_config(a.config, 0, &norm)))
        return MF_EXIT_USAGE;
    if (!norm && !(norm = mf_normalizer_new(NULL, &nerr))) {
        fprintf(stderr, "m365fwd report: %s\n", nerr.msg);
        return MF_EXIT_USAGE;
    }
    mf_report_catalog_init(&cat, mf_normalizer_tags(norm));
    if (!(tables = mf_report_tables_load_files(a.checks, a.plan, &cat, &rerr))) {
        fprintf(stderr, "m365fwd report: %s\n", rerr.msg);
        goto out;
    }
    r.norm = norm;
    r.cfg = cfg;
    r.agg = mf_agg_new(tables, NULL);
    r.io.max_record = cfg ? (size_t)cfg->collect.max_record_size : MF_INPUT_DEFAULT_MAX_RECORD;
    if (cfg && first >= argc) {
        if (load_rollup(cfg, tables, &a, today, r.agg, &rollup, rollup_path, &ro) != 0) {
            rc = MF_EXIT_REJECTED;
            goto out;
        }
        rc = MF_EXIT_OK;
    } else {
        rc = read_exports(&r, &a, today, argv + first, argc - first, &ro);
    }
    if (write_review(&a, &r, tables, &cat, rollup, &ro) != 0)
        rc = MF_EXIT_REJECTED;
out:
    mf_rollup_close(rollup);
    mf_agg_destroy(r.agg);
    if (cfg)
        mf_config_destroy(cfg);
    mf_report_tables_destroy(tables);
    mf_report_catalog_free(&cat);
    mf_normalizer_destroy(norm);
    return rc;
}
