/* cmd_status.c - `m365fwd status`: what the state store knows, per tenant
 * and content type. Does not contact the API. */
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "clock.h"
#include "agent_conf.h"
#include "state.h"

const char mf_cmd_status_usage[] =
    "Usage: m365fwd status -c FILE [--json]\n"
    "\n"
    "Show, for each tenant and content type: the time range collected, the\n"
    "last poll and last successful poll, blobs and records delivered,\n"
    "duplicates dropped, gaps that could not be collected, and the last\n"
    "error. Reads the state in state_dir; does not contact the API.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE   configuration\n"
    "  --json              one JSON document instead of a table\n"
    "  -h, --help          show this help\n";

/* ---------------------------------------------------------------------- */
/* status                                                                 */
/* ---------------------------------------------------------------------- */

struct status_ctx {
    const struct mf_config *cfg;
    struct mf_state *st;
    bool json;
    int rows;
};

static void
iso(int64_t ms, char *buf, size_t n)
{
    if (ms <= 0)
        snprintf(buf, n, "never");
    else
        mf_clock_fmt_iso(ms, MF_UTC_Z, buf, n);
}

static void
json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static const char *
tenant_name(const struct mf_config *cfg, const char *id)
{
    const struct mf_tenant_conf *t = mf_config_tenant(cfg, id);

    return t ? t->name : id;
}

static int
status_row(const struct mf_stream_state *s, void *ud)
{
    struct status_ctx *x = ud;
    struct mf_gap gaps[64];
    int ng = mf_state_gaps(x->st, s->tenant, s->content_type, gaps, 64);
    char a[32], b[32], p[32], ok[32], e[32];

    iso(s->first_ms, a, sizeof(a));
    iso(s->checkpoint_ms, b, sizeof(b));
    iso(s->last_poll_ms, p, sizeof(p));
    iso(s->last_success_ms, ok, sizeof(ok));
    iso(s->last_error_ms, e, sizeof(e));
    if (x->json) {
        printf("%s\n    {\"tenant\":", x->rows ? "," : "");
        json_str(tenant_name(x->cfg, s->tenant));
        printf(",\"tenant_id\":");
        json_str(s->tenant);
        printf(",\"content_type\":");
        json_str(s->content_type);
        printf(",\"covered\":{\"from\":\"%s\",\"to\":\"%s\"},\"checkpoint\":\"%s\","
               "\"checkpoint_ms\":%" PRId64 ",\"last_poll\":\"%s\",\"last_success\":\"%s\","
               "\"blobs_delivered\":%" PRId64 ",\"records_delivered\":%" PRId64
               ",\"duplicates\":%" PRId64 ",\"redelivered\":%" PRId64 ",\"gaps\":[",
               a, b, b, s->checkpoint_ms, p, ok, s->blobs_delivered,
               s->records_delivered, s->duplicates, s->redelivered);
        for (int i = 0; i < ng; i++) {
            char g0[32], g1[32];

            iso(gaps[i].start_ms, g0, sizeof(g0));
            iso(gaps[i].end_ms, g1, sizeof(g1));
            printf("%s{\"from\":\"%s\",\"to\":\"%s\",\"seconds\":%" PRId64 ",\"emitted\":%s}",
                   i ? "," : "", g0, g1, (gaps[i].end_ms - gaps[i].start_ms) / 1000,
                   gaps[i].emitted ? "true" : "false");
        }
        printf("],\"last_error\":");
        if (s->last_error[0] && s->last_error_ms > s->last_success_ms)
            json_str(s->last_error);
        else
            printf("null");
        printf(",\"last_error_at\":");
        if (s->last_error[0])
            printf("\"%s\"}", e);
        else
            printf("null}");
    } else {
        printf("%-20s %-27s %-20s .. %-20s last poll %-20s blobs %-7" PRId64
               " records %-9" PRId64 " dup %-6" PRId64 "\n",
               tenant_name(x->cfg, s->tenant), s->content_type, a, b, p,
               s->blobs_delivered, s->records_delivered, s->duplicates);
        for (int i = 0; i < ng; i++) {
            char g0[32], g1[32];

            iso(gaps[i].start_ms, g0, sizeof(g0));
            iso(gaps[i].end_ms, g1, sizeof(g1));
            printf("    GAP %s .. %s (%" PRId64 " s) not collectable%s\n", g0, g1,
                   (gaps[i].end_ms - gaps[i].start_ms) / 1000,
                   gaps[i].emitted ? ", reported as monitor.collection_gap" : "");
        }
        if (s->redelivered)
            printf("    %" PRId64 " records delivered again after an interrupted attempt "
                   "(possible duplicates downstream)\n", s->redelivered);
        if (s->last_error[0] && s->last_error_ms > s->last_success_ms)
            printf("    LAST ERROR at %s: %s\n", e, s->last_error);
    }
    x->rows++;
    return 0;
}

int
mf_cmd_status(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct mf_cmd *self = mf_cli_find("status");
    struct status_ctx x = {0};
    const char *config = NULL;
    struct mf_config *cfg;
    struct mf_err serr;
    int ch;

    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config = optarg;
            break;
        case 'j':
            x.json = true;
            break;
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
    cfg = mf_cli_load_config(config, 0, NULL);
    if (!cfg)
        return MF_EXIT_USAGE;
    x.cfg = cfg;
    x.st = mf_state_open(cfg->state_dir, &serr);
    if (!x.st) {
        fprintf(stderr, "m365fwd: %s\n", serr.msg);
        mf_config_destroy(cfg);
        return MF_EXIT_REJECTED;
    }
    if (x.json) {
        printf("{\"state_dir\":");
        json_str(cfg->state_dir);
        printf(",\"streams\":[");
    } else {
        printf("%-20s %-27s %-45s\n", "TENANT", "CONTENT TYPE", "COLLECTED (UTC)");
    }
    mf_state_foreach_stream(x.st, status_row, &x);
    if (x.json)
        printf("\n]}\n");
    else if (!x.rows)
        printf("(nothing collected yet)\n");
    mf_state_close(x.st);
    mf_config_destroy(cfg);
    return MF_EXIT_OK;
}
