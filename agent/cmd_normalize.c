/* cmd_normalize.c - `m365fwd normalize`: files in, one JSON line per record
 * out (stdout or --output), rejected records on stderr with their location,
 * an optional summary of tags and classes. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "aggregate.h"
#include "cli.h"
#include "file.h"
#include "input.h"
#include "mem.h"
#include "normalize.h"
#include "units.h"

const char mf_cmd_normalize_usage[] =
    "Usage: m365fwd normalize [OPTIONS] [FILE...]\n"
    "\n"
    "Normalize Microsoft 365 audit records: one JSON object per input record,\n"
    "one per line, on standard output. FILE is a content blob (JSON array),\n"
    "NDJSON, or a Purview audit-search CSV export; '-' or no FILE reads\n"
    "standard input. A record that cannot be normalized is reported on\n"
    "standard error as FILE:LINE[ (index N)]: reason; the rest go on.\n"
    "\n"
    "Options:\n"
    "  --schema ocsf|ecs|raw     output schema (default ocsf: OCSF 1.8.0)\n"
    "  --input auto|json|ndjson|csv\n"
    "                            input format (default auto)\n"
    "  --keep-raw                keep the original record (OCSF raw_data,\n"
    "                            ECS event.original)\n"
    "  --content-type TYPE       content type of the records (Audit.Exchange,\n"
    "                            Audit.AzureActiveDirectory, Audit.SharePoint,\n"
    "                            Audit.General, DLP.All); default: derived\n"
    "  --domains LIST            the tenant's accepted e-mail domains, comma-\n"
    "                            separated: addresses under them are inside\n"
    "                            the organization, others outside (risk tags\n"
    "                            on forwarding, sharing); default: each\n"
    "                            record's own domains (UserId, mailbox owner,\n"
    "                            OrganizationName)\n"
    "  --summary                 print counts, risk tags per area and classes\n"
    "                            on standard error\n"
    "  --tags-file F             risk-tag catalogue instead of the built-in\n"
    "  --ocsf-file F             OCSF mapping instead of the built-in\n"
    "  --ecs-file F              ECS mapping instead of the built-in\n"
    "  --aggregates-file F       aggregate rules instead of the built-in\n"
    "  --no-aggregates           no aggregate findings (by default a record that\n"
    "                            takes a window over its threshold is followed by\n"
    "                            one finding line: OCSF Detection Finding, ECS\n"
    "                            alert or raw; see docs/aggregates.md)\n"
    "  --aggregate-state F       load the windows from F first and save them there\n"
    "                            at the end (a burst split over two runs fires once)\n"
    "  --geoip-db F              MaxMind DB: source locations on every record, and\n"
    "                            the distant-address aggregates\n"
    "  --max-record-size SIZE    larger records are reported and skipped\n"
    "                            (default 64M; suffixes k, M, G)\n"
    "  -o, --output F            write to F instead of standard output\n"
    "  -h, --help                show this help\n"
    "\n"
    "Exit status: 0 every record normalized, 1 some record rejected or a\n"
    "file unreadable, 2 usage or table error.\n";

static const char *const content_types[] = {
    "Audit.AzureActiveDirectory", "Audit.Exchange", "Audit.SharePoint",
    "Audit.General", "DLP.All",
};


#define N_REPAIRS MF_REPAIR_COUNT

static const char *const severity_names[] = {
    "unknown", "informational", "low", "medium", "high", "critical",
};

#define MAX_CLASSES 64
#define MAX_DOMAINS 256

struct norm_stats {
    unsigned long long read;
    unsigned long long normalized;
    unsigned long long rejected;
    unsigned long long repaired;
    unsigned long long repair_bits[N_REPAIRS];
    unsigned long long files_failed;
    /* per catalogue tag (index as in the tagdb) */
    size_t n_tags;
    unsigned long long *tag_count;
    int *tag_sev;
    struct {
        int uid;
        unsigned long long count;
    } classes[MAX_CLASSES];
    size_t n_classes;
    unsigned long long other_classes;
};

struct norm_run {
    const struct mf_normalizer *n;
    struct mf_aggregates *agg;       /* NULL with --no-aggregates */
    struct mf_findings findings;
    struct mf_arena farena;          /* finding trees */
    struct mf_buf fline;             /* one finding as a line */
    unsigned long long n_findings;
    const struct mf_tagdb *tags;
    struct mf_nctx ctx;
    struct mf_event ev;
    struct mf_file_out *fo;
    struct mf_input_opts iopts;
    enum mf_schema schema;
    bool keep_raw;
    bool summary;
    const char *content_type;
    const char *domains[MAX_DOMAINS];   /* --domains, in argv */
    size_t n_domains;
    struct norm_stats st;
    bool write_failed;
};

enum {
    OPT_SCHEMA = 256, OPT_INPUT, OPT_KEEP_RAW, OPT_CONTENT_TYPE, OPT_SUMMARY,
    OPT_TAGS_FILE, OPT_OCSF_FILE, OPT_ECS_FILE, OPT_MAX_RECORD, OPT_DOMAINS,
    OPT_AGG_FILE, OPT_NO_AGG, OPT_AGG_STATE, OPT_GEOIP,
};

static const struct option longopts[] = {
    {"schema", required_argument, NULL, OPT_SCHEMA},
    {"input", required_argument, NULL, OPT_INPUT},
    {"keep-raw", no_argument, NULL, OPT_KEEP_RAW},
    {"content-type", required_argument, NULL, OPT_CONTENT_TYPE},
    {"domains", required_argument, NULL, OPT_DOMAINS},
    {"summary", no_argument, NULL, OPT_SUMMARY},
    {"tags-file", required_argument, NULL, OPT_TAGS_FILE},
    {"ocsf-file", required_argument, NULL, OPT_OCSF_FILE},
    {"ecs-file", required_argument, NULL, OPT_ECS_FILE},
    {"max-record-size", required_argument, NULL, OPT_MAX_RECORD},
    {"aggregates-file", required_argument, NULL, OPT_AGG_FILE},
    {"no-aggregates", no_argument, NULL, OPT_NO_AGG},
    {"aggregate-state", required_argument, NULL, OPT_AGG_STATE},
    {"geoip-db", required_argument, NULL, OPT_GEOIP},
    {"output", required_argument, NULL, 'o'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* ---- statistics --------------------------------------------------------- */

static void
count_result(struct norm_run *r, const struct mf_event *ev)
{
    struct norm_stats *st = &r->st;
    const struct mf_tag_hits *hits = &r->ctx.hits;   /* ev's tags, catalogue side */
    size_t i, j;

    if (ev->repairs) {
        st->repaired++;
        for (i = 0; i < N_REPAIRS; i++)
            if (ev->repairs & (1u << i))
                st->repair_bits[i]++;
    }
    if (!r->summary)
        return;
    for (i = 0; i < hits->n; i++) {
        const struct mf_tag_hit *h = &hits->hit[i];

        for (j = 0; j < st->n_tags; j++) {
            if (mf_tagdb_at(r->tags, j) == h->tag) {
                st->tag_count[j]++;
                if (h->severity > st->tag_sev[j])
                    st->tag_sev[j] = h->severity;
                break;
            }
        }
    }
    for (i = 0; i < st->n_classes; i++) {
        if (st->classes[i].uid == ev->class_uid) {
            st->classes[i].count++;
            return;
        }
    }
    if (st->n_classes < MAX_CLASSES) {
        st->classes[st->n_classes].uid = ev->class_uid;
        st->classes[st->n_classes].count = 1;
        st->n_classes++;
    } else {
        st->other_classes++;
    }
}

static int
cmp_class(const void *a, const void *b)
{
    const int *x = a, *y = b;

    return (*x > *y) - (*x < *y);
}

static void
print_summary(struct norm_run *r)
{
    struct norm_stats *st = &r->st;
    FILE *f = stderr;
    size_t i, a;
    bool any = false;

    fprintf(f, "\nm365fwd normalize summary (%s)\n", mf_schema_name(r->schema));
    fprintf(f, "  records read:       %llu\n", st->read);
    fprintf(f, "  normalized:         %llu\n", st->normalized);
    fprintf(f, "  rejected:           %llu\n", st->rejected);
    fprintf(f, "  repaired:           %llu", st->repaired);
    for (i = 0; i < N_REPAIRS; i++) {
        if (st->repair_bits[i]) {
            fprintf(f, "%s%s %llu", any ? ", " : " (",
                    mf_repair_name(1u << i), st->repair_bits[i]);
            any = true;
        }
    }
    fprintf(f, "%s\n", any ? ")" : "");
    if (st->files_failed)
        fprintf(f, "  unreadable files:   %llu\n", st->files_failed);

    fprintf(f, "\nRisk tags by area\n");
    fprintf(f, "  %-24s %-44s %-15s %8s\n", "AREA", "TAG", "SEVERITY",
            "COUNT");
    any = false;
    for (a = 0; a < MF_AREA_COUNT; a++) {
        for (i = 0; i < st->n_tags; i++) {
            const struct mf_tag *t = mf_tagdb_at(r->tags, i);
            int sev = st->tag_sev[i];

            if (t->area != (enum mf_area)a || st->tag_count[i] == 0)
                continue;
            if (sev < 0 || sev > 5)
                sev = 0;
            fprintf(f, "  %-24s %-44s %-15s %8llu\n", mf_area_name(t->area),
                    t->id, severity_names[sev], st->tag_count[i]);
            any = true;
        }
    }
    if (!any)
        fprintf(f, "  (no risk tags)\n");

    if (r->agg) {
        struct mf_aggregates_stats as;

        mf_aggregates_stats(r->agg, &as);
        fprintf(f, "\nAggregate findings:   %llu", r->n_findings);
        fprintf(f, " (windows tracked %llu, late %llu, evicted %llu",
                (unsigned long long)as.keys, (unsigned long long)as.late,
                (unsigned long long)as.evicted);
        if (as.rules_off)
            fprintf(f, ", %llu rules off without --geoip-db",
                    (unsigned long long)as.rules_off);
        fprintf(f, ")\n");
    }

    fprintf(f, "\nOCSF classes\n");
    qsort(st->classes, st->n_classes, sizeof(st->classes[0]), cmp_class);
    for (i = 0; i < st->n_classes; i++)
        fprintf(f, "  %-6d %-28s %8llu\n", st->classes[i].uid,
                mf_normalizer_class_name(r->n, st->classes[i].uid), st->classes[i].count);
    if (st->other_classes)
        fprintf(f, "  %-35s %8llu\n", "(other)", st->other_classes);
    fflush(f);
}

/* ---- processing --------------------------------------------------------- */

static void
report(const struct mf_input_loc *loc, const char *msg)
{
    char where[512];

    fprintf(stderr, "%s: %s\n", mf_input_loc_str(loc, where, sizeof(where)),
            msg);
}

static void
write_line(struct norm_run *r, const char *data, size_t len)
{
    if (!r->write_failed && mf_file_out_line(r->fo, data, len) < 0) {
        fprintf(stderr, "m365fwd normalize: writing %s: %s\n",
                mf_file_out_name(r->fo), strerror(errno));
        r->write_failed = true;
    }
}

/* The findings the record normalized last caused, each on its own line
 * right after it. */
static void
write_findings(struct norm_run *r)
{
    size_t i;

    mf_findings_reset(&r->findings);
    if (mf_aggregates_feed(r->agg, &r->ctx.rec, &r->ctx.hits, &r->findings) == 0)
        return;
    for (i = 0; i < r->findings.n; i++) {
        mf_arena_reset(&r->farena);
        mf_buf_reset(&r->fline);
        if (mf_finding_write(&r->farena, &r->findings.v[i], r->schema, &r->fline) != 0)
            continue;   /* cannot happen below the output ceiling */
        r->n_findings++;
        write_line(r, r->fline.data, r->fline.len);
    }
}

static void
do_record(struct norm_run *r, const struct mf_input_rec *rec)
{
    struct mf_norm_in in = {.data = rec->data, .len = rec->len,
                            .first_line = rec->loc.line ? rec->loc.line : 1,
                            .content_type = r->content_type,
                            .domains = r->domains, .n_domains = r->n_domains};
    struct mf_event *ev = &r->ev;
    const struct mf_event_form *f = NULL;

    r->st.read++;
    if (mf_normalize_event(r->n, &r->ctx, &in, ev) == MF_OK)
        f = mf_event_form(ev, r->schema, r->keep_raw);
    if (!f) {
        r->st.rejected++;
        report(&rec->loc, ev->error[0] ? ev->error : mf_status_str(MF_DROP));
        return;
    }
    r->st.normalized++;
    count_result(r, ev);
    write_line(r, f->text.data, f->text.len);
    if (r->agg)
        write_findings(r);
    if (f->text.cap > ((size_t)8 << 20))
        mf_event_shrink(ev, (size_t)1 << 20);
}

static void
do_file(struct norm_run *r, const char *path)
{
    struct mf_input *in;
    struct mf_input_rec rec;
    struct mf_input_err err;
    enum mf_input_ev ev;
    const char *name = path;
    int fd;

    if (strcmp(path, "-") == 0) {
        fd = STDIN_FILENO;
        name = "<stdin>";
    } else {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "m365fwd normalize: %s: %s\n", path,
                    strerror(errno));
            r->st.files_failed++;
            return;
        }
    }
    in = mf_input_new_fd(fd, name, &r->iopts);
    while (!r->write_failed &&
           (ev = mf_input_next(in, &rec, &err)) != MF_INPUT_EOF) {
        if (ev == MF_INPUT_RECORD) {
            do_record(r, &rec);
        } else {
            r->st.read++;
            r->st.rejected++;
            report(&err.loc, err.msg);
        }
    }
    mf_input_destroy(in);
    if (fd != STDIN_FILENO)
        close(fd);
}

static int
parse_content_type(const char *s, const char **out)
{
    size_t i;

    for (i = 0; i < sizeof(content_types) / sizeof(content_types[0]); i++) {
        if (strcasecmp(s, content_types[i]) == 0) {
            *out = content_types[i];
            return 0;
        }
    }
    return -1;
}

/* "contoso.com": labels of letters, digits, '-', '_', at least two. */
static bool
domain_ok(const char *s, size_t n)
{
    size_t label = 0, labels = 1;

    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (label == 0)
                return false;
            label = 0;
            labels++;
        } else if (isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0 && labels >= 2;
}

/* --domains a.com,b.com (may repeat), split in place (argv lives as long
 * as the command): 0, or -1 naming the bad one in bad. */
static int
add_domains(struct norm_run *r, char *list, char *bad, size_t badsz)
{
    char *p = list;

    while (*p) {
        size_t len = strcspn(p, ","), n = len, s = 0;
        bool last = p[len] == '\0';

        while (s < n && (p[s] == ' ' || p[s] == '\t'))
            s++;
        while (n > s && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n > s) {
            if (!domain_ok(p + s, n - s) || r->n_domains >= MAX_DOMAINS) {
                snprintf(bad, badsz, "%.*s", (int)(n - s), p + s);
                return -1;
            }
            p[n] = '\0';
            r->domains[r->n_domains++] = p + s;
        }
        if (last)
            break;
        p += len + 1;
    }
    return 0;
}

/* The options of normalize besides those norm_run keeps. */
struct norm_args {
    struct mf_norm_opts nopts;
    const char *output, *agg_state;
    bool no_aggregates;
    struct mf_normalizer *n;            /* r->n, owned */
};

/* The option ch (optarg) into r or a: -1 to go on, or the exit code. */
static int
norm_option(const struct mf_cmd *self, int ch, struct norm_run *r, struct norm_args *a,
            char **argv)
{
    int64_t size;
    char bad[300];

    switch (ch) {
    case 'h':
        return mf_cli_help(self);
    case OPT_SCHEMA:
        if (mf_schema_parse(optarg, &r->schema) < 0)
            return mf_cli_usage_error(self, "unknown schema '%s' "
                                      "(ocsf, ecs, raw)", optarg);
        break;
    case OPT_INPUT:
        if (mf_input_format_parse(optarg, &r->iopts.format) < 0)
            return mf_cli_usage_error(self, "unknown input format '%s' "
                                      "(auto, json, ndjson, csv)",
                                      optarg);
        break;
    case OPT_KEEP_RAW:
        r->keep_raw = true;
        break;
    case OPT_CONTENT_TYPE:
        if (parse_content_type(optarg, &r->content_type) < 0)
            return mf_cli_usage_error(self, "unknown content type '%s'",
                                      optarg);
        break;
    case OPT_DOMAINS:
        if (add_domains(r, optarg, bad, sizeof(bad)) < 0)
            return mf_cli_usage_error(self, "--domains: '%s' is not a domain "
                                      "name (e.g. contoso.com)", bad);
        break;
    case OPT_SUMMARY:
        r->summary = true;
        break;
    case OPT_TAGS_FILE:
        a->nopts.tags_file = optarg;
        break;
    case OPT_OCSF_FILE:
        a->nopts.ocsf_file = optarg;
        break;
    case OPT_ECS_FILE:
        a->nopts.ecs_file = optarg;
        break;
    case OPT_AGG_FILE:
        a->nopts.aggregates_file = optarg;
        break;
    case OPT_NO_AGG:
        a->no_aggregates = true;
        break;
    case OPT_AGG_STATE:
        a->agg_state = optarg;
        break;
    case OPT_GEOIP:
        a->nopts.geoip_db = optarg;
        break;
    case OPT_MAX_RECORD:
        if (mf_parse_size(optarg, &size) < 0 || size < 16 ||
            size > ((int64_t)1 << 32))
            return mf_cli_usage_error(self, "bad --max-record-size '%s' "
                                      "(16 bytes .. 4G)", optarg);
        r->iopts.max_record = (size_t)size;
        break;
    case 'o':
        a->output = optarg;
        break;
    default:
        if (optopt && optopt < 256 && optopt != '?')
            return mf_cli_usage_error(self, "bad option '-%c'", optopt);
        return mf_cli_usage_error(self, "bad option '%s'",
                                  argv[optind - 1]);
    }
    return -1;
}

/* The normalizer, the output and the run's buffers: -1 to go on, or the
 * exit code (the error printed, nothing left to free). */
static int
norm_start(struct norm_run *r, struct norm_args *a)
{
    struct mf_err nerr, aerr;
    struct mf_normalizer *n;

    n = mf_normalizer_new(&a->nopts, &nerr);
    if (!n) {
        fprintf(stderr, "m365fwd normalize: %s\n", nerr.msg);
        return MF_EXIT_USAGE;
    }
    r->n = a->n = n;
    r->tags = mf_normalizer_tags(n);
    if (r->summary) {
        r->st.n_tags = mf_tagdb_count(r->tags);
        r->st.tag_count = mf_xcalloc(r->st.n_tags + 1, sizeof(*r->st.tag_count));
        r->st.tag_sev = mf_xcalloc(r->st.n_tags + 1, sizeof(*r->st.tag_sev));
    }
    r->fo = mf_file_out_open(a->output, 0, 0);
    if (!r->fo) {
        fprintf(stderr, "m365fwd normalize: %s: %s\n", a->output,
                strerror(errno));
        mf_normalizer_destroy(n);
        free(r->st.tag_count);
        free(r->st.tag_sev);
        return MF_EXIT_REJECTED;
    }
    mf_findings_init(&r->findings);
    mf_arena_init(&r->farena, 65536);
    mf_buf_init(&r->fline, 0);
    if (!a->no_aggregates) {
        struct mf_aggregates_opts ao = {.geo = mf_normalizer_geoip(n)};

        r->agg = mf_aggregates_new(mf_normalizer_aggregates(n), &ao);
        if (a->agg_state && mf_aggregates_load(r->agg, a->agg_state, &aerr) != 0)
            fprintf(stderr, "m365fwd normalize: %s\n", aerr.msg);
    }
    mf_nctx_init(&r->ctx);
    /* an event is a few times its record at most (raw_data, unmapped) */
    mf_event_init(&r->ev, r->iopts.max_record * 4 + ((size_t)1 << 20));
    return -1;
}

/* The end of the run: the output closed, the summary, the aggregate
 * state saved, everything freed. The exit code. */
static int
norm_finish(struct norm_run *r, const struct norm_args *a)
{
    struct mf_err aerr;
    int rc;

    if (mf_file_out_close(r->fo) < 0 && !r->write_failed) {
        fprintf(stderr, "m365fwd normalize: writing %s: %s\n",
                a->output ? a->output : "<stdout>", strerror(errno));
        r->write_failed = true;
    }
    if (r->summary)
        print_summary(r);
    if (r->agg && a->agg_state && mf_aggregates_save(r->agg, a->agg_state, &aerr) != 0) {
        fprintf(stderr, "m365fwd normalize: saving the aggregate state: %s\n", aerr.msg);
        r->write_failed = true;
    }

    rc = (r->st.rejected || r->st.files_failed || r->write_failed)
         ? MF_EXIT_REJECTED : MF_EXIT_OK;
    mf_aggregates_destroy(r->agg);
    mf_findings_fini(&r->findings);
    mf_arena_fini(&r->farena);
    mf_buf_fini(&r->fline);
    mf_event_fini(&r->ev);
    mf_nctx_fini(&r->ctx);
    mf_normalizer_destroy(a->n);
    free(r->st.tag_count);
    free(r->st.tag_sev);
    return rc;
}

int
mf_cmd_normalize(int argc, char **argv)
{
    const struct mf_cmd *self = mf_cli_find("normalize");
    struct norm_run r;
    struct norm_args a;
    int c, i, rc;

    memset(&r, 0, sizeof(r));
    memset(&a, 0, sizeof(a));
    r.schema = MF_SCHEMA_OCSF;
    r.iopts.format = MF_INPUT_AUTO;
    r.iopts.max_record = MF_INPUT_DEFAULT_MAX_RECORD;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1)
        if ((rc = norm_option(self, c, &r, &a, argv)) >= 0)
            return rc;
    if ((rc = norm_start(&r, &a)) >= 0)
        return rc;

    if (optind >= argc) {
        do_file(&r, "-");
    } else {
        for (i = optind; i < argc && !r.write_failed; i++)
            do_file(&r, argv[i]);
    }
    return norm_finish(&r, &a);
}
