/* cmd_status.c - `m365fwd status`: what the state store knows, per tenant
 * and content type. Does not contact the API. */
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "clock.h"
#include "agent_conf.h"
#include "json.h"
#include "state.h"

#define SKEW_WARN_MS (5LL * 60 * 1000)

const char mf_cmd_status_usage[] =
    "Usage: m365fwd status -c FILE [--json]\n"
    "\n"
    "Show, for each tenant and content type: the time range collected, the\n"
    "last poll and last successful poll, blobs and records delivered,\n"
    "duplicates dropped, gaps that could not be collected, and the last\n"
    "error; then the agent running on the state_dir (its PID), when the\n"
    "state was created or reset, and the clock skew against the API (a\n"
    "warning beyond 5 minutes). Reads the state in state_dir; does not\n"
    "contact the API. In cluster mode also the agent's shards, tenants,\n"
    "rebalances, last takeover time and transactions, as the running agent\n"
    "last wrote them (it does not contact Kafka either).\n"
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

/* Cluster mode: what the running agent last wrote (state_dir/cluster.json:
 * shards owned, rebalances, takeover time, transactions); status does not
 * contact Kafka. */
static void
cluster_status(const struct mf_config *cfg, bool json)
{
    char path[1200], text[16384], when[32], took[32];
    struct mf_arena a;
    struct mf_jval *v;
    size_t n = 0;
    int64_t upd = 0, last = 0, shards = 0, tenants = 0, reb = 0, ok = 0, ab = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/cluster.json", cfg->state_dir);
    if ((f = fopen(path, "r")) != NULL) {
        n = fread(text, 1, sizeof(text) - 1, f);
        fclose(f);
    }
    text[n] = '\0';
    mf_arena_init(&a, 4096);
    v = n ? mf_json_parse(&a, text, n, NULL, NULL, NULL) : NULL;
    if (json) {
        printf(",\n \"cluster\":");
        if (mf_jis_obj(v)) {
            struct mf_buf b;

            mf_buf_init(&b, 0);
            mf_json_write(&b, v);
            fwrite(b.data, 1, b.len, stdout);
            mf_buf_fini(&b);
        } else {
            printf("null");
        }
    } else if (!mf_jis_obj(v)) {
        printf("CLUSTER group %s: this agent has not joined yet (no %s)\n",
               cfg->cluster.group, path);
    } else {
        const struct mf_jval *own = mf_jobj_get(v, "shards_owned");

        mf_jget_int(mf_jobj_get(v, "updated_ms"), &upd);
        mf_jget_int(mf_jobj_get(v, "last_rebalance_ms"), &last);
        mf_jget_int(mf_jobj_get(v, "n_shards_owned"), &shards);
        mf_jget_int(mf_jobj_get(v, "tenants_owned"), &tenants);
        mf_jget_int(mf_jobj_get(v, "rebalances"), &reb);
        mf_jget_int(mf_jobj_get(v, "transactions_committed"), &ok);
        mf_jget_int(mf_jobj_get(v, "transactions_aborted"), &ab);
        iso(last, when, sizeof(when));
        iso(upd, took, sizeof(took));
        printf("CLUSTER group %s, agent %s (updated %s): %" PRId64 " of %" PRId64
               " shards, %" PRId64 " tenants\n", cfg->cluster.group,
               mf_jstrv(mf_jobj_get(v, "agent_id")) ? mf_jstrv(mf_jobj_get(v, "agent_id"))
                                                     : "?", took, shards,
               cfg->cluster.shards, tenants);
        printf("    shards:");
        for (size_t i = 0; mf_jis_arr(own) && i < own->len; i++)
            printf("%s%s", i ? "," : " ", mf_jscalar_text(own->u.items[i], NULL));
        printf("%s\n", mf_jis_arr(own) && own->len ? "" : " none");
        printf("    rebalances %" PRId64 " (last %s), last takeover %s s, transactions %"
               PRId64 " committed, %" PRId64 " aborted\n", reb, when,
               mf_jscalar_text(mf_jobj_get(v, "last_takeover_seconds"), NULL)
                   ? mf_jscalar_text(mf_jobj_get(v, "last_takeover_seconds"), NULL) : "?",
               ok, ab);
    }
    mf_arena_fini(&a);
}

/* The agent holding the state_dir, how the state began (new, reset, a
 * damaged inflight.db set aside). */
static void
state_info(struct status_ctx *x)
{
    struct mf_state_origin o;
    long pid = mf_state_lock_holder(x->cfg->state_dir);
    char when[32], reset[32], fl[32], note[256] = "";
    int64_t fl_ms = 0;

    if (mf_state_origin(x->st, &o) != 0)
        return;
    if (mf_state_meta_get(x->st, "inflight_reset_reason", note, sizeof(note)) == 1) {
        char v[32];

        if (mf_state_meta_get(x->st, "inflight_reset_ms", v, sizeof(v)) == 1)
            fl_ms = strtoll(v, NULL, 10);
    }
    iso(o.created_ms, when, sizeof(when));
    iso(o.reset_ms, reset, sizeof(reset));
    iso(fl_ms, fl, sizeof(fl));
    if (x->json) {
        printf(",\n \"state\":{\"running_pid\":%ld,\"created_at\":", pid > 0 ? pid : 0);
        if (o.created_ms)
            printf("\"%s\"", when);
        else
            printf("null");
        printf(",\"reset_at\":");
        if (o.reset_ms) {
            printf("\"%s\",\"reset_reason\":", reset);
            json_str(o.reset_reason);
        } else {
            printf("null");
        }
        printf(",\"inflight_reset_at\":");
        if (fl_ms) {
            printf("\"%s\",\"inflight_reset_reason\":", fl);
            json_str(note);
        } else {
            printf("null");
        }
        printf("}");
        return;
    }
    printf("\nstate_dir %s: %s", x->cfg->state_dir,
           pid > 0 ? "in use by m365fwd PID " : "no agent running");
    if (pid > 0)
        printf("%ld", pid);
    printf("; state created %s\n", when);
    if (o.reset_ms)
        printf("    STATE RESET at %s: %s\n", reset, o.reset_reason);
    if (fl_ms)
        printf("    at %s: %s\n", fl, note);
}

/* The clock skew last measured against each tenant's API (beyond 5
 * minutes it is a warning). */
static void
clock_info(struct status_ctx *x)
{
    int n = 0;

    for (size_t i = 0; i < x->cfg->tenants.n; i++) {
        const struct mf_tenant_conf *t = &x->cfg->tenants.v[i];
        char key[200], v[64], at[32];
        long long skew = 0, when = 0;
        bool warn;

        snprintf(key, sizeof(key), "clock_skew:%s", t->id);
        if (mf_state_meta_get(x->st, key, v, sizeof(v)) != 1 ||
            sscanf(v, "%lld %lld", &skew, &when) != 2)
            continue;
        warn = skew > SKEW_WARN_MS || skew < -SKEW_WARN_MS;
        iso(when, at, sizeof(at));
        if (x->json) {
            printf("%s{\"tenant\":", n ? "," : ",\n \"clock_skew\":[");
            json_str(t->name);
            printf(",\"seconds\":%lld,\"measured_at\":\"%s\",\"warning\":%s}",
                   skew / 1000, at, warn ? "true" : "false");
        } else if (warn) {
            printf("CLOCK: the local clock was %lld s %s the API's for tenant %s (at %s): "
                   "fix it (NTP); collection follows the API's clock\n",
                   (skew < 0 ? -skew : skew) / 1000, skew > 0 ? "ahead of" : "behind",
                   t->name, at);
        }
        n++;
    }
    if (x->json)
        printf(n ? "]" : ",\n \"clock_skew\":[]");
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
    struct mf_cli_opts o = {.cmd = mf_cli_find("status"), .shortopts = "+c:h",
                            .longopts = longopts, .flags = MF_CLI_NEED_CONFIG | MF_CLI_NO_ARGS};
    struct status_ctx x = {0};
    struct mf_config *cfg;
    struct mf_err serr;
    int ch;

    while ((ch = mf_cli_getopt(&o, argc, argv)) > 0)
        if (ch == 'j')
            x.json = true;
    if (ch < 0)
        return o.rc;
    cfg = mf_cli_load_config(o.config, 0, NULL);
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
        printf("\n]");
    else if (!x.rows)
        printf("(nothing collected yet)\n");
    state_info(&x);
    clock_info(&x);
    if (mf_cluster_enabled(&cfg->cluster))
        cluster_status(cfg, x.json);
    if (x.json)
        printf("}\n");
    mf_state_close(x.st);
    mf_config_destroy(cfg);
    return MF_EXIT_OK;
}
