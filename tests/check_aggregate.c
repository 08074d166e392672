/* check_aggregate.c - aggregate table, windowed engine, persistence,
 * findings and geolocation (normalizers/aggregate.c, finding.c, geoip.c).
 *
 * Records are built here as JSON and fed through the real record view and
 * per-event tagger, so the built-in tables are what is tested. Geolocation
 * tests read the test database tests/support/mmdb_writer.py writes at
 * build time ($MF_TEST_MMDB).
 */
#include <check.h>
#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aggregate.h"
#include "arena.h"
#include "finding.h"
#include "geoip.h"
#include "json.h"
#include "record.h"
#include "tags.h"
#include "test_common.h"

static struct mf_tagdb *tagdb;

/* ---- harness ------------------------------------------------------------ */

struct harness {
    bool replay;                 /* feed as a replay (a blob fetched again) */
    struct mf_aggdb *db;
    struct mf_aggregates *g;
    struct mf_findings out;
    struct mf_arena a;
};

static void
h_init_opts(struct harness *h, const char *table, size_t max_keys,
            size_t max_memory, const struct mf_geoip *geo)
{
    struct mf_err err;
    struct mf_aggregates_opts o = {.max_keys = max_keys, .max_memory = max_memory, .geo = geo};

    memset(h, 0, sizeof(*h));
    h->db = table ? mf_aggdb_load("t.yaml", table, strlen(table), tagdb, &err)
                  : mf_aggdb_load_builtin(tagdb, &err);
    ck_assert_msg(h->db != NULL, "table: %s", err.msg);
    h->g = mf_aggregates_new(h->db, &o);
    mf_findings_init(&h->out);
    mf_arena_init(&h->a, 65536);
}

static void
h_init(struct harness *h)
{
    h_init_opts(h, NULL, 0, 0, NULL);
}

static void
h_fini(struct harness *h)
{
    mf_aggregates_destroy(h->g);
    mf_aggdb_destroy(h->db);
    mf_findings_fini(&h->out);
    mf_arena_fini(&h->a);
}

/* Feed one record given as JSON; returns the findings it caused. */
static size_t
feed(struct harness *h, const char *json)
{
    struct mf_record r;
    struct mf_tag_hits hits;
    struct mf_jval *root;

    mf_arena_reset(&h->a);
    root = mf_json_parse(&h->a, json, strlen(json), NULL, NULL, NULL);
    ck_assert_msg(root && root->type == MF_JOBJ, "bad test record %s", json);
    mf_record_init(&r, &h->a, root, json, strlen(json), NULL, 0);
    mf_tags_eval(tagdb, &r, &hits);
    return h->replay ? mf_aggregates_feed_replay(h->g, &r, &hits, &h->out)
                     : mf_aggregates_feed(h->g, &r, &hits, &h->out);
}

static const struct mf_finding *
find_rule(const struct harness *h, const char *rule)
{
    size_t i;

    for (i = 0; i < h->out.n; i++)
        if (strcmp(h->out.v[i].rule, rule) == 0)
            return &h->out.v[i];
    return NULL;
}

static size_t
count_rule(const struct harness *h, const char *rule)
{
    size_t i, n = 0;

    for (i = 0; i < h->out.n; i++)
        n += strcmp(h->out.v[i].rule, rule) == 0;
    return n;
}

/* Records. t: "10:04:59" on 2026-03-02 unless it holds a 'T'. */
static char rbuf[64][1024];
static unsigned rnext;

static const char *
when(const char *t)
{
    static char b[8][40];
    static unsigned k;
    char *o = b[k++ % 8];

    if (strchr(t, 'T'))
        snprintf(o, 40, "%s", t);
    else
        snprintf(o, 40, "2026-03-02T%s", t);
    return o;
}

static const char *
login_failed(const char *id, const char *t, const char *user, const char *ip,
             const char *err)
{
    char *o = rbuf[rnext++ % 64];

    snprintf(o, sizeof(rbuf[0]),
             "{\"CreationTime\":\"%s\",\"Id\":\"%s\",\"Operation\":\"UserLoginFailed\","
             "\"OrganizationId\":\"tenant-a\",\"RecordType\":15,\"ResultStatus\":\"Failed\","
             "\"UserType\":0,\"Workload\":\"AzureActiveDirectory\",\"ClientIP\":\"%s\","
             "\"UserId\":\"%s\",\"ErrorNumber\":\"%s\",\"LogonError\":\"InvalidUserNameOrPassword\"}",
             when(t), id, ip, user, err);
    return o;
}

static const char *
login_ok(const char *id, const char *t, const char *user, const char *ip)
{
    char *o = rbuf[rnext++ % 64];

    snprintf(o, sizeof(rbuf[0]),
             "{\"CreationTime\":\"%s\",\"Id\":\"%s\",\"Operation\":\"UserLoggedIn\","
             "\"OrganizationId\":\"tenant-a\",\"RecordType\":15,\"ResultStatus\":\"Success\","
             "\"UserType\":0,\"Workload\":\"AzureActiveDirectory\",\"ClientIP\":\"%s\","
             "\"UserId\":\"%s\",\"ErrorNumber\":\"0\"}",
             when(t), id, ip, user);
    return o;
}

/* A spray: n failures (50126) for user0..user<n-1> from ip, one a second
 * from t0 seconds after 10:00:00 of day (2026-03-02 when NULL); t0 may be
 * negative (before 10:00). */
static void
spray(struct harness *h, const char *idpfx, const char *day, int t0, int n,
      const char *ip)
{
    int i;

    for (i = 0; i < n; i++) {
        char id[64], user[64], t[40];
        int s = 36000 + t0 + i;

        snprintf(id, sizeof(id), "%s-%d", idpfx, i);
        snprintf(user, sizeof(user), "user%d@contoso.com", i);
        snprintf(t, sizeof(t), "%sT%02d:%02d:%02d", day ? day : "2026-03-02",
                 s / 3600, (s / 60) % 60, s % 60);
        feed(h, login_failed(id, t, user, ip, "50126"));
    }
}

/* ---- table ------------------------------------------------------------- */

START_TEST(tl_builtin_tags)
{
    static const char *const want[] = {
        "identity.password_spray", "identity.brute_force_user", "identity.mfa_fatigue",
        "identity.auth_enumeration", "identity.sso_errors",
        "identity.concurrent_sessions_multi_ip", "identity.account_deleted_bulk",
        "data.mass_download", "data.mass_deletion", "behavior.mail_access_burst",
        "behavior.mailbox_search_recon", "behavior.mass_send_attachments_external",
        "behavior.evidence_purge",
    };
    struct mf_err err;
    struct mf_aggdb *db = mf_aggdb_load_builtin(tagdb, &err);
    size_t i, j;
    bool raised_fwd = false;

    ck_assert_msg(db != NULL, "%s", err.msg);
    ck_assert_uint_eq(mf_aggdb_tag_count(db), sizeof(want) / sizeof(want[0]));
    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        bool has_rule = false;

        ck_assert_str_eq(mf_aggdb_tag_at(db, i)->id, want[i]);
        ck_assert_ptr_null(mf_tagdb_find(tagdb, want[i]));
        for (j = 0; j < mf_aggdb_rule_count(db); j++) {
            const char *id = mf_aggdb_rule_id(db, j, NULL);

            has_rule = has_rule || (strncmp(id, want[i], strlen(want[i])) == 0 &&
                                    id[strlen(want[i])] == '/');
        }
        ck_assert_msg(has_rule, "%s has no rule", want[i]);
    }
    for (j = 0; j < mf_aggdb_rule_count(db); j++)
        raised_fwd = raised_fwd ||
            strcmp(mf_aggdb_rule_id(db, j, NULL),
                   "behavior.mailbox_smtp_forwarding/shared_destination") == 0;
    ck_assert(raised_fwd);
    mf_aggdb_destroy(db);
}
END_TEST

#define TBL_HEAD "version: 1\nfields: [UserId, ClientIP, ErrorNumber, ObjectId]\ntags:\n" \
    "  - id: identity.x_spray\n    title: x\n    area: identity_access\n    severity: 3\n" \
    "    rules:\n"

static const struct {
    const char *yaml;
    const char *want;     /* substring of the error */
} bad_tables[] = {
    {"version: 1\nfoo: 1\ntags: []\n", "t.yaml:2: unknown key 'foo'"},
    {"version: 2\ntags: []\n", "t.yaml:1: version must be 1"},
    {"version: 1\nlateness: soon\ntags: []\n", "t.yaml:2: lateness must be a duration"},
    {"version: 1\nmax_keys: 5\ntags: []\n", "t.yaml:2: max_keys must be"},
    {TBL_HEAD "      - {name: a, description: d, window: 5x, key: [UserId],"
     " match: {operation: Op}, count: 2}\n", "t.yaml:9: identity.x_spray/a: window must be"},
    {TBL_HEAD "      - {name: a, description: d, window: 5m, key: [Usr],"
     " match: {operation: Op}, count: 2}\n", "unknown record field 'Usr'"},
    {TBL_HEAD "      - {name: a, description: d, window: 5m, key: [$who],"
     " match: {operation: Op}, count: 2}\n", "unknown derived field '$who'"},
    {TBL_HEAD "      - {name: a, description: d, window: 5m, key: [UserId],"
     " match: {operation: Op}}\n", "needs a threshold"},
    {TBL_HEAD "      - {name: a, description: d, window: 5m, key: [UserId],"
     " tagged: identity.nope, count: 2}\n", "t.yaml:9: identity.x_spray/a: tagged 'identity.nope'"},
    {TBL_HEAD "      - {name: a, description: d, window: 5m, key: [UserId],"
     " match: {operation: Op}, count: 2}\n"
     "      - {name: a, description: d, window: 5m, key: [UserId],"
     " match: {operation: Op}, count: 2}\n", "t.yaml:10: duplicate rule 'identity.x_spray/a'"},
    {TBL_HEAD "      - {name: a, description: d, after: b, match: {operation: Op}}\n",
     "after 'b' is not an earlier rule"},
    {TBL_HEAD "      - {name: a, description: d, window: 5m, key: [UserId],"
     " match: {operation: Op}, count: 2}\n"
     "      - {name: b, description: d, after: a, window: 5m, match: {operation: Op}}\n",
     "takes the window and key of the rule it follows"},
    {TBL_HEAD "      - {name: a, description: d, window: 5m, key: [UserId],"
     " match: {operation: Op}, distinct: {ObjectId: {min: 3, exclude: '('}}}\n",
     "bad regular expression"},
    {TBL_HEAD "      - {name: a, description: d, window: 5m, key: [UserId],"
     " match: {operation: Op}, distinct: {ObjectId: 0}}\n", "needs a number 1..1000"},
    {TBL_HEAD "      - {name: a, description: d, window: 5m, key: [UserId],"
     " match: {operation: Op}, count: 2, bogus: 1}\n", "t.yaml:9: unknown rule key 'bogus'"},
    {TBL_HEAD "      - {name: A, description: d, window: 5m, key: [UserId],"
     " match: {operation: Op}, count: 2}\n", "rule name must be"},
    {TBL_HEAD "      - {name: a, description: d, window: 5m, key: [UserId],"
     " match: {operation: Op, field: X}, count: 2}\n", "t.yaml:9:"},
    {"version: 1\ntags:\n  - id: identity.login_failed\n    title: again\n"
     "    rules: [{name: a, description: d, window: 5m, key: [UserId],"
     " match: {operation: Op}, count: 2}]\n", "t.yaml:4: identity.login_failed is a per-event tag"},
    {"version: 1\ntags:\n  - id: spray\n    title: x\n    area: identity_access\n"
     "    severity: 3\n    rules: []\n", "t.yaml:3: tag id must be"},
    {"version: 1\ntags:\n  - id: identity.y\n    title: x\n    area: nowhere\n"
     "    severity: 3\n    rules: []\n", "t.yaml:5: identity.y: unknown area"},
};

START_TEST(tl_bad_tables)
{
    struct mf_err err;
    struct mf_aggdb *db = mf_aggdb_load("t.yaml", bad_tables[_i].yaml,
                                        strlen(bad_tables[_i].yaml), tagdb, &err);

    ck_assert_msg(db == NULL, "case %d loaded", _i);
    ck_assert_msg(strstr(err.msg, bad_tables[_i].want) != NULL,
                  "case %d: got '%s', want '%s'", _i, err.msg, bad_tables[_i].want);
}
END_TEST

/* ---- thresholds, windows, storms ----------------------------------------- */

START_TEST(ta_spray_threshold)
{
    struct harness h;
    const struct mf_finding *f;

    h_init(&h);
    spray(&h, "a", NULL, 60, 4, "203.0.113.5");
    ck_assert_uint_eq(count_rule(&h, "identity.password_spray/one_source"), 0);
    ck_assert_uint_eq(feed(&h, login_failed("a-4", "10:01:30", "user4@contoso.com",
                                            "203.0.113.5", "50126")), 1);
    f = find_rule(&h, "identity.password_spray/one_source");
    ck_assert_ptr_nonnull(f);
    ck_assert_str_eq(f->tag->id, "identity.password_spray");
    ck_assert_int_eq(f->severity, 4);
    ck_assert_uint_eq(f->count, 5);
    ck_assert_uint_eq(f->n_distinct, 1);
    ck_assert_str_eq(f->distinct[0].field, "UserId");
    ck_assert_uint_eq(f->distinct[0].n, 5);
    ck_assert_str_eq(f->key, "ClientIP=203.0.113.5");
    ck_assert_str_eq(f->tenant, "tenant-a");
    ck_assert_uint_eq(f->n_actors, 5);
    ck_assert_uint_eq(f->n_ips, 1);
    ck_assert_str_eq(f->ips[0], "203.0.113.5");
    ck_assert_uint_eq(f->n_ids, 5);
    ck_assert_str_eq(f->ids[0], "a-0");
    ck_assert_int_eq(f->first_ms, 1772445660000LL);   /* 10:01:00 */
    ck_assert_int_eq(f->last_ms, 1772445690000LL);    /* 10:01:30 */
    ck_assert_int_eq(f->window_start_ms, 1772445600000LL);
    ck_assert_int_eq(f->window_end_ms, 1772445900000LL);
    /* no storm: more of the same window adds nothing */
    spray(&h, "b", NULL, 100, 20, "203.0.113.5");
    ck_assert_uint_eq(count_rule(&h, "identity.password_spray/one_source"), 1);
    h_fini(&h);
}
END_TEST

START_TEST(ta_distinct_vs_count)
{
    struct harness h;
    int i;

    h_init(&h);
    /* one account, one address, many attempts: brute force, not a spray */
    for (i = 0; i < 10; i++) {
        char id[32], t[16];

        snprintf(id, sizeof(id), "bf-%d", i);
        snprintf(t, sizeof(t), "10:0%d:%02d", i / 6, (i * 7) % 60);
        feed(&h, login_failed(id, t, "victim@contoso.com", "198.51.100.9", "50126"));
        ck_assert_uint_eq(count_rule(&h, "identity.brute_force_user/failures"),
                          i == 9 ? 1 : 0);
    }
    ck_assert_uint_eq(count_rule(&h, "identity.password_spray/one_source"), 0);
    ck_assert_uint_eq(find_rule(&h, "identity.brute_force_user/failures")->count, 10);
    h_fini(&h);
}
END_TEST

START_TEST(ta_duplicates_not_counted)
{
    struct harness h;
    int i;

    h_init(&h);
    /* the same record delivered 12 times (the API repeats records) */
    for (i = 0; i < 12; i++)
        feed(&h, login_failed("same-id", "10:00:01", "victim@contoso.com",
                              "198.51.100.9", "50126"));
    ck_assert_uint_eq(h.out.n, 0);
    h_fini(&h);
}
END_TEST

/* A blob whose delivery failed is fetched again: its records come again,
 * and the one that fired a window must yield the same finding again (same
 * uid and content), else the output that missed the blob never gets it.
 * The other records of the window stay quiet, and so do duplicates. */
static void
snapshot(const struct mf_finding *f, char *buf, size_t n)
{
    snprintf(buf, n, "%s|%s|%llu|%lld|%lld|%zu|%zu|%s|%s", f->uid, f->rule,
             (unsigned long long)f->count, (long long)f->first_ms, (long long)f->last_ms, f->n_ids, f->n_actors,
             f->n_ids ? f->ids[f->n_ids - 1] : "", f->after_uid ? f->after_uid : "");
}

START_TEST(ta_refetch_refires)
{
    struct harness h;
    struct mf_aggregates_stats st;
    char first[512], again[512], follow1[512], follow2[512], fired_rec[1024];
    const char *fired;

    h_init(&h);
    spray(&h, "r", NULL, 0, 4, "203.0.113.30");
    ck_assert_uint_eq(h.out.n, 0);
    snprintf(fired_rec, sizeof(fired_rec), "%s",   /* rbuf's slots are reused */
             login_failed("r-4", "10:00:04", "user4@contoso.com", "203.0.113.30", "50126"));
    fired = fired_rec;
    ck_assert_uint_eq(feed(&h, fired), 1);
    snapshot(&h.out.v[0], first, sizeof(first));
    /* later records of the window are counted, no new finding; nor does
     * the firing record duplicated in the same stream (not a replay) */
    spray(&h, "s", NULL, 20, 3, "203.0.113.30");
    ck_assert_uint_eq(feed(&h, fired), 0);
    ck_assert_uint_eq(h.out.n, 1);
    /* the blob again, in its order: only the firing record yields */
    mf_findings_reset(&h.out);
    h.replay = true;
    spray(&h, "r", NULL, 0, 5, "203.0.113.30");
    ck_assert_uint_eq(h.out.n, 1);
    snapshot(&h.out.v[0], again, sizeof(again));
    ck_assert_str_eq(again, first);
    ck_assert_str_eq(h.out.v[0].ids[h.out.v[0].n_ids - 1], "r-4");

    /* a success after it raises the follower once; that record again
     * raises the same follower finding, another success nothing */
    mf_findings_reset(&h.out);
    h.replay = false;
    ck_assert_uint_eq(feed(&h, login_ok("ok-r", "10:02:00", "user1@contoso.com",
                                        "203.0.113.30")), 1);
    snapshot(&h.out.v[0], follow1, sizeof(follow1));
    ck_assert_uint_eq(feed(&h, login_ok("ok-r", "10:02:00", "user1@contoso.com",
                                        "203.0.113.30")), 0);
    mf_findings_reset(&h.out);
    h.replay = true;
    ck_assert_uint_eq(feed(&h, login_ok("ok-r", "10:02:00", "user1@contoso.com",
                                        "203.0.113.30")), 1);
    snapshot(&h.out.v[0], follow2, sizeof(follow2));
    ck_assert_str_eq(follow1, follow2);
    mf_findings_reset(&h.out);
    ck_assert_uint_eq(feed(&h, login_ok("ok-s", "10:02:30", "user2@contoso.com",
                                        "203.0.113.30")), 0);
    mf_aggregates_stats(h.g, &st);
    ck_assert_uint_eq(st.findings, 2);
    ck_assert_uint_eq(st.reemitted, 2);
    /* the stream moved on 6 h (other blobs were delivered meanwhile): the
     * replayed record is late for counting, and still finds the window
     * it fired while that window is kept (its end + lateness) */
    h.replay = false;
    for (int i = 0; i < 40; i++) {
        char id[32], t[40];

        snprintf(id, sizeof(id), "later-%d", i);
        snprintf(t, sizeof(t), "2026-03-02T16:02:%02d", i);
        feed(&h, login_ok(id, t, "someone@contoso.com", "192.0.2.9"));
    }
    mf_findings_reset(&h.out);
    h.replay = true;
    ck_assert_uint_eq(feed(&h, fired), 1);
    snapshot(&h.out.v[0], again, sizeof(again));
    ck_assert_str_eq(again, first);
    mf_aggregates_stats(h.g, &st);
    ck_assert_uint_gt(st.late, 0);
    h_fini(&h);

    /* the success waited on the spray (it came first): both findings came
     * together, and the firing record again brings both again */
    h_init(&h);
    feed(&h, login_ok("ok-t", "10:00:30", "miriam@contoso.com", "203.0.113.31"));
    spray(&h, "t", NULL, 40, 5, "203.0.113.31");
    ck_assert_uint_eq(h.out.n, 2);
    mf_findings_reset(&h.out);
    h.replay = true;
    ck_assert_uint_eq(feed(&h, login_failed("t-4", "10:00:44", "user4@contoso.com",
                                            "203.0.113.31", "50126")), 2);
    ck_assert_ptr_nonnull(find_rule(&h, "identity.password_spray/success_after_spray"));
    h_fini(&h);
}
END_TEST

START_TEST(ta_window_boundary)
{
    struct harness h;
    const char *ip = "203.0.113.6";

    h_init(&h);
    /* 3 accounts before 10:05:00 and 2 after: two windows of the 5-minute
     * grid, neither reaches 5 */
    feed(&h, login_failed("w1", "10:04:50", "u1@c.com", ip, "50126"));
    feed(&h, login_failed("w2", "10:04:55", "u2@c.com", ip, "50126"));
    feed(&h, login_failed("w3", "10:04:59", "u3@c.com", ip, "50126"));
    feed(&h, login_failed("w4", "10:05:00", "u4@c.com", ip, "50126"));
    feed(&h, login_failed("w5", "10:05:10", "u5@c.com", ip, "50126"));
    ck_assert_uint_eq(h.out.n, 0);
    /* three more in the second window: 5 there */
    feed(&h, login_failed("w6", "10:06:00", "u1@c.com", ip, "50126"));
    feed(&h, login_failed("w7", "10:07:00", "u2@c.com", ip, "50126"));
    ck_assert_uint_eq(h.out.n, 0);
    feed(&h, login_failed("w8", "10:09:59", "u3@c.com", ip, "50126"));
    ck_assert_uint_eq(h.out.n, 1);
    ck_assert_int_eq(h.out.v[0].window_start_ms, 1772445900000LL);   /* 10:05 */
    ck_assert_int_eq(h.out.v[0].first_ms, 1772445900000LL);
    h_fini(&h);
}
END_TEST

/* ---- order, lateness ------------------------------------------------------ */

#define N_SCEN 60
static char scen[N_SCEN][1024];

/* A scenario over an hour: a spray and a brute force among noise. */
static void
make_scenario(void)
{
    int i;

    for (i = 0; i < N_SCEN; i++) {
        char id[32], t[16], user[48];

        snprintf(id, sizeof(id), "s-%02d", i);
        snprintf(t, sizeof(t), "10:%02d:%02d", i, (i * 13) % 60);
        if (i % 3 == 0) {
            snprintf(user, sizeof(user), "u%d@c.com", i);
            snprintf(scen[i], sizeof(scen[i]), "%s",
                     login_failed(id, when("10:22:00"), user, "203.0.113.7", "50126"));
            /* the spray: 20 accounts at 10:22 */
        } else if (i % 3 == 1) {
            snprintf(scen[i], sizeof(scen[i]), "%s",
                     login_failed(id, t, "bob@c.com", "198.51.100.3", "50053"));
        } else {
            snprintf(user, sizeof(user), "n%d@c.com", i);
            snprintf(scen[i], sizeof(scen[i]), "%s", login_ok(id, t, user, "192.0.2.1"));
        }
    }
}

static void
uids_of(const struct harness *h, char *out, size_t n)
{
    char list[64][80];
    size_t i, k = 0;

    for (i = 0; i < h->out.n && i < 64; i++)
        snprintf(list[i], sizeof(list[i]), "%s %s", h->out.v[i].rule, h->out.v[i].uid);
    qsort(list, i, sizeof(list[0]), (int (*)(const void *, const void *))strcmp);
    out[0] = '\0';
    for (size_t j = 0; j < i; j++)
        k += (size_t)snprintf(out + k, n > k ? n - k : 0, "%s;", list[j]);
}

START_TEST(ta_order_independent)
{
    struct harness h;
    char first[4096], got[4096];
    int order[N_SCEN], i, run;

    make_scenario();
    for (run = 0; run < 8; run++) {
        for (i = 0; i < N_SCEN; i++)
            order[i] = run == 1 ? N_SCEN - 1 - i : i;
        if (run >= 2) {
            srand((unsigned)run * 7919u);
            for (i = N_SCEN - 1; i > 0; i--) {
                int j = rand() % (i + 1), x = order[i];

                order[i] = order[j];
                order[j] = x;
            }
        }
        h_init(&h);
        for (i = 0; i < N_SCEN; i++)
            feed(&h, scen[order[i]]);
        uids_of(&h, run == 0 ? first : got, sizeof(first));
        if (run == 0) {
            ck_assert_uint_eq(count_rule(&h, "identity.password_spray/one_source"), 1);
            ck_assert_uint_ge(count_rule(&h, "identity.brute_force_user/lockout"), 1);
        } else {
            ck_assert_msg(strcmp(first, got) == 0, "run %d: %s vs %s", run, got, first);
        }
        h_fini(&h);
    }
}
END_TEST

START_TEST(ta_lateness)
{
    struct harness h;
    struct mf_aggregates_stats st;
    int i;

    h_init(&h);
    /* the stream: a first record at 04:00, then it moves on to 12:00 */
    feed(&h, login_ok("early", "04:00:00", "x@c.com", "192.0.2.1"));
    for (i = 0; i < 40; i++) {
        char id[16], t[16];

        snprintf(id, sizeof(id), "n%d", i);
        snprintf(t, sizeof(t), "12:%02d:00", i);
        feed(&h, login_ok(id, t, "x@c.com", "192.0.2.1"));
    }
    /* a spray at 05:00 is 7 h behind: the stream passed it (lateness 6h) */
    spray(&h, "late", NULL, -5 * 3600, 6, "203.0.113.8");
    mf_aggregates_stats(h.g, &st);
    ck_assert_uint_eq(st.late, 6);
    ck_assert_uint_eq(h.out.n, 0);
    /* one at 07:30 (4.5 h behind) is within lateness */
    spray(&h, "ok", NULL, -(2 * 3600 + 30 * 60), 6, "203.0.113.8");
    ck_assert_uint_eq(count_rule(&h, "identity.password_spray/one_source"), 1);
    mf_aggregates_stats(h.g, &st);
    ck_assert_uint_eq(st.late, 6);
    h_fini(&h);
}
END_TEST

START_TEST(ta_newest_first)
{
    struct harness h;
    struct mf_aggregates_stats st;
    int i;

    h_init(&h);
    /* an export read newest first: a record every 20 minutes over two
     * days, and a spray on day 1 at 05:10 */
    for (i = 143; i >= 0; i--) {
        char id[16], t[32];
        int m = 10 + i * 20;

        snprintf(id, sizeof(id), "d%d", i);
        snprintf(t, sizeof(t), "2026-03-%02dT%02d:%02d:00", 1 + m / 1440, (m / 60) % 24,
                 m % 60);
        feed(&h, login_failed(id, t, "x@c.com", "192.0.2.1", "50055"));
        if (i == 15) {
            int k;

            for (k = 5; k >= 0; k--) {
                char sid[16], user[32], st2[32];

                snprintf(sid, sizeof(sid), "sp%d", k);
                snprintf(user, sizeof(user), "v%d@c.com", k);
                snprintf(st2, sizeof(st2), "2026-03-01T05:10:%02d", k);
                feed(&h, login_failed(sid, st2, user, "203.0.113.9", "50126"));
            }
        }
    }
    ck_assert_uint_eq(count_rule(&h, "identity.password_spray/one_source"), 1);
    mf_aggregates_stats(h.g, &st);
    ck_assert_uint_eq(st.late, 0);
    ck_assert_uint_gt(st.expired, 50);   /* day-2 windows closed behind it */
    h_fini(&h);
}
END_TEST

/* ---- bounds --------------------------------------------------------------- */

START_TEST(ta_eviction)
{
    struct harness h;
    struct mf_aggregates_stats st;
    int i, k = 0;

    h_init_opts(&h, NULL, 100, 0, NULL);
    /* 3000 accounts failing once each (noise), and a spray touched every 40
     * records: the spray's window outlives the noise in the LRU */
    for (i = 0; i < 3000; i++) {
        char id[32], user[32], t[16];

        snprintf(id, sizeof(id), "noise%d", i);
        snprintf(user, sizeof(user), "n%d@c.com", i);
        snprintf(t, sizeof(t), "10:%02d:%02d", 20 + i / 1000, (i / 17) % 60);
        feed(&h, login_failed(id, t, user, "192.0.2.77", "50055"));
        if (i % 40 == 0 && k < 6) {
            char sid[16], su[32];

            snprintf(sid, sizeof(sid), "spr%d", k);
            snprintf(su, sizeof(su), "victim%d@c.com", k);
            feed(&h, login_failed(sid, "10:21:00", su, "203.0.113.10", "50126"));
            k++;
        }
        mf_aggregates_stats(h.g, &st);
        ck_assert_uint_le(st.keys, 100);
    }
    ck_assert_uint_gt(st.evicted, 2800);
    ck_assert_uint_eq(count_rule(&h, "identity.password_spray/one_source"), 1);
    h_fini(&h);
}
END_TEST

START_TEST(ta_eviction_protected)
{
    struct harness h;
    int i;

    h_init_opts(&h, NULL, 100, 0, NULL);
    /* 300 accounts failing twice each: windows of two records fill the
     * state; a spray must still get its second record in */
    for (i = 0; i < 300; i++) {
        char id[32], user[32];

        snprintf(id, sizeof(id), "a%d", i);
        snprintf(user, sizeof(user), "n%d@c.com", i);
        feed(&h, login_failed(id, "10:30:00", user, "192.0.2.77", "50055"));
        snprintf(id, sizeof(id), "b%d", i);
        feed(&h, login_failed(id, "10:30:01", user, "192.0.2.77", "50055"));
    }
    spray(&h, "late-spray", NULL, 1900, 5, "203.0.113.15");
    ck_assert_uint_eq(count_rule(&h, "identity.password_spray/one_source"), 1);
    h_fini(&h);
}
END_TEST

START_TEST(ta_memory_cap)
{
    struct harness h;
    struct mf_aggregates_stats st;
    size_t cap = (size_t)4 << 20;
    int i;

    h_init_opts(&h, NULL, 1000000, cap, NULL);
    for (i = 0; i < 40000; i++) {
        char id[32], user[32];

        snprintf(id, sizeof(id), "m%d", i);
        snprintf(user, sizeof(user), "n%d@c.com", i);
        feed(&h, login_failed(id, "10:30:00", user, "192.0.2.77", "50055"));
    }
    mf_aggregates_stats(h.g, &st);
    ck_assert_msg(st.bytes <= cap, "%llu bytes over a cap of %zu",
                  (unsigned long long)st.bytes, cap);
    ck_assert_uint_gt(st.evicted, 0);
    h_fini(&h);
}
END_TEST

/* ---- persistence, uids ------------------------------------------------------ */

START_TEST(ta_persist_split)
{
    struct harness h;
    char dir[256], path[300], uid[40];
    struct mf_err err;
    struct mf_aggregates_stats st;

    mf_test_mkdtemp(dir, sizeof(dir), "mf-agg");
    snprintf(path, sizeof(path), "%s/aggregates.state", dir);
    /* one run over the whole spray: the reference uid */
    h_init(&h);
    spray(&h, "p", NULL, 0, 5, "203.0.113.11");
    ck_assert_uint_eq(h.out.n, 1);
    snprintf(uid, sizeof(uid), "%s", h.out.v[0].uid);
    h_fini(&h);

    /* the same spray split by a restart */
    h_init(&h);
    spray(&h, "p", NULL, 0, 3, "203.0.113.11");
    ck_assert_int_eq(mf_aggregates_save(h.g, path, &err), 0);
    h_fini(&h);
    h_init(&h);
    ck_assert_msg(mf_aggregates_load(h.g, path, &err) == 0, "%s", err.msg);
    mf_aggregates_stats(h.g, &st);
    ck_assert_uint_gt(st.keys, 0);
    /* the records before the restart come again (blob not committed) */
    feed(&h, login_failed("p-1", "10:00:01", "user1@contoso.com", "203.0.113.11", "50126"));
    ck_assert_uint_eq(h.out.n, 0);
    feed(&h, login_failed("p-3", "10:00:03", "user3@contoso.com", "203.0.113.11", "50126"));
    ck_assert_uint_eq(h.out.n, 0);
    feed(&h, login_failed("p-4", "10:00:04", "user4@contoso.com", "203.0.113.11", "50126"));
    ck_assert_uint_eq(h.out.n, 1);
    ck_assert_str_eq(h.out.v[0].uid, uid);
    ck_assert_uint_eq(h.out.v[0].count, 5);
    ck_assert_str_eq(h.out.v[0].ids[0], "p-0");

    /* fired state survives too: after the next restart a replay yields the
     * same finding once (its firing record, p-4, comes again: the blob
     * that carried it may not have reached every output), new records of
     * the window none */
    ck_assert_int_eq(mf_aggregates_save(h.g, path, &err), 0);
    h_fini(&h);
    h_init(&h);
    ck_assert_int_eq(mf_aggregates_load(h.g, path, &err), 0);
    spray(&h, "p", NULL, 0, 5, "203.0.113.11");   /* the same records, not a replay */
    ck_assert_uint_eq(h.out.n, 0);
    h.replay = true;
    spray(&h, "p", NULL, 0, 5, "203.0.113.11");
    h.replay = false;
    spray(&h, "q", NULL, 10, 5, "203.0.113.11");
    ck_assert_uint_eq(count_rule(&h, "identity.password_spray/one_source"), 1);
    ck_assert_str_eq(h.out.v[0].uid, uid);
    ck_assert_uint_eq(h.out.v[0].count, 5);
    mf_aggregates_stats(h.g, &st);
    ck_assert_uint_eq(st.findings, 0);
    ck_assert_uint_eq(st.reemitted, 1);
    h_fini(&h);
    mf_test_rmtree(dir);
}
END_TEST

START_TEST(ta_persist_bad_files)
{
    struct harness h;
    char dir[256], path[300];
    struct mf_err err;
    struct mf_aggregates_stats st;
    char *good;
    size_t len;
    FILE *f;

    mf_test_mkdtemp(dir, sizeof(dir), "mf-agg");
    snprintf(path, sizeof(path), "%s/missing.state", dir);
    h_init(&h);
    ck_assert_int_eq(mf_aggregates_load(h.g, path, &err), 0);
    spray(&h, "x", NULL, 0, 3, "203.0.113.12");
    snprintf(path, sizeof(path), "%s/a.state", dir);
    ck_assert_int_eq(mf_aggregates_save(h.g, path, &err), 0);
    good = mf_test_slurp(path, &len);
    ck_assert_ptr_nonnull(good);

    /* not a state file */
    f = fopen(path, "wb");
    fputs("hello, world, this is no state at all", f);
    fclose(f);
    ck_assert_int_eq(mf_aggregates_load(h.g, path, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "a.state"));
    mf_aggregates_stats(h.g, &st);
    ck_assert_uint_eq(st.keys, 0);
    /* truncated, and one flipped byte */
    f = fopen(path, "wb");
    fwrite(good, 1, len / 2, f);
    fclose(f);
    ck_assert_int_eq(mf_aggregates_load(h.g, path, &err), -1);
    good[len / 3] ^= 0x40;
    f = fopen(path, "wb");
    fwrite(good, 1, len, f);
    fclose(f);
    ck_assert_int_eq(mf_aggregates_load(h.g, path, &err), -1);
    mf_aggregates_stats(h.g, &st);
    ck_assert_uint_eq(st.keys, 0);
    /* still usable */
    spray(&h, "y", NULL, 0, 5, "203.0.113.12");
    ck_assert_uint_eq(h.out.n, 1);
    free(good);
    h_fini(&h);
    mf_test_rmtree(dir);
}
END_TEST

START_TEST(ta_persist_table_changed)
{
    static const char t1[] =
        "version: 1\ntags:\n  - id: identity.x_burst\n    title: x\n"
        "    area: identity_access\n    severity: 3\n    rules:\n"
        "      - {name: a, description: d, window: 5m, key: [UserId],"
        " match: {operation: UserLoginFailed}, count: 3}\n"
        "      - {name: b, description: d, window: 5m, key: [ClientIP],"
        " match: {operation: UserLoginFailed}, count: 3}\n";
    static const char t2[] =
        "version: 1\ntags:\n  - id: identity.x_burst\n    title: x\n"
        "    area: identity_access\n    severity: 3\n    rules:\n"
        "      - {name: a, description: d, window: 5m, key: [UserId],"
        " match: {operation: UserLoginFailed}, count: 2}\n"       /* threshold only */
        "      - {name: b, description: d, window: 10m, key: [ClientIP],"
        " match: {operation: UserLoginFailed}, count: 3}\n";      /* window */
    struct harness h;
    char dir[256], path[300];
    struct mf_err err;
    struct mf_aggregates_stats st;

    mf_test_mkdtemp(dir, sizeof(dir), "mf-agg");
    snprintf(path, sizeof(path), "%s/s", dir);
    h_init_opts(&h, t1, 0, 0, NULL);
    feed(&h, login_failed("c1", "10:00:00", "v@c.com", "203.0.113.13", "50126"));
    ck_assert_int_eq(mf_aggregates_save(h.g, path, &err), 0);
    h_fini(&h);
    h_init_opts(&h, t2, 0, 0, NULL);
    ck_assert_int_eq(mf_aggregates_load(h.g, path, &err), 0);
    mf_aggregates_stats(h.g, &st);
    ck_assert_uint_eq(st.keys, 1);          /* rule a kept its window */
    ck_assert_uint_eq(st.load_dropped, 1);  /* rule b's window is another */
    feed(&h, login_failed("c2", "10:00:01", "v@c.com", "203.0.113.13", "50126"));
    ck_assert_uint_eq(count_rule(&h, "identity.x_burst/a"), 1);
    h_fini(&h);
    mf_test_rmtree(dir);
}
END_TEST

START_TEST(ta_uid_stable)
{
    struct harness h1, h2;
    regex_t re;

    h_init(&h1);
    h_init(&h2);
    spray(&h1, "u", NULL, 0, 5, "203.0.113.14");
    spray(&h2, "other-ids", NULL, 30, 7, "203.0.113.14");   /* same window, other records */
    spray(&h2, "u2", NULL, 400, 5, "203.0.113.14");        /* next window */
    ck_assert_uint_eq(h1.out.n, 1);
    ck_assert_uint_eq(h2.out.n, 2);
    ck_assert_str_eq(h1.out.v[0].uid, h2.out.v[0].uid);
    ck_assert_str_ne(h2.out.v[0].uid, h2.out.v[1].uid);
    ck_assert_int_eq(regcomp(&re, "^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                             "[0-9a-f]{12}$", REG_EXTENDED | REG_NOSUB), 0);
    ck_assert_int_eq(regexec(&re, h1.out.v[0].uid, 0, NULL, 0), 0);
    regfree(&re);
    h_fini(&h1);
    h_fini(&h2);
}
END_TEST

/* ---- raises that follow a window ----------------------------------------- */

START_TEST(ta_success_after_spray)
{
    struct harness h;
    const struct mf_finding *s, *f;

    /* (a) the spray fires, then a sign-in from its address succeeds */
    h_init(&h);
    spray(&h, "a", NULL, 0, 5, "203.0.113.20");
    feed(&h, login_ok("ok-1", "10:03:00", "user2@contoso.com", "203.0.113.20"));
    s = find_rule(&h, "identity.password_spray/one_source");
    f = find_rule(&h, "identity.password_spray/success_after_spray");
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(f->severity, 5);
    ck_assert_str_eq(f->after_uid, s->uid);
    ck_assert_str_eq(f->actors[0], "user2@contoso.com");
    ck_assert_str_eq(f->ids[0], "ok-1");
    ck_assert_int_eq(f->window_start_ms, s->window_start_ms);
    /* one per spray window */
    feed(&h, login_ok("ok-2", "10:04:00", "user3@contoso.com", "203.0.113.20"));
    ck_assert_uint_eq(count_rule(&h, "identity.password_spray/success_after_spray"), 1);
    /* a success from elsewhere, or two windows later, is no raise */
    feed(&h, login_ok("ok-3", "10:03:10", "user3@contoso.com", "192.0.2.50"));
    spray(&h, "b", NULL, 3600, 5, "203.0.113.21");
    feed(&h, login_ok("ok-4", "11:15:00", "user3@contoso.com", "203.0.113.21"));
    ck_assert_uint_eq(count_rule(&h, "identity.password_spray/success_after_spray"), 1);
    h_fini(&h);

    /* (b) the success comes while the spray is still below its threshold,
     * in the window before the one that fires */
    h_init(&h);
    feed(&h, login_failed("c-0", "10:04:00", "user0@contoso.com", "203.0.113.22", "50126"));
    feed(&h, login_ok("ok-5", "10:04:30", "miriam@contoso.com", "203.0.113.22"));
    ck_assert_uint_eq(h.out.n, 0);
    spray(&h, "c", NULL, 320, 5, "203.0.113.22");
    ck_assert_uint_eq(count_rule(&h, "identity.password_spray/one_source"), 1);
    f = find_rule(&h, "identity.password_spray/success_after_spray");
    ck_assert_ptr_nonnull(f);
    ck_assert_str_eq(f->actors[0], "miriam@contoso.com");
    h_fini(&h);

    /* (c) read newest first: the success comes before every failure */
    h_init(&h);
    feed(&h, login_ok("ok-6", "10:04:30", "miriam@contoso.com", "203.0.113.23"));
    spray(&h, "d", NULL, 200, 5, "203.0.113.23");
    ck_assert_uint_eq(count_rule(&h, "identity.password_spray/success_after_spray"), 1);
    /* the window the success opened does not move the spray's first time */
    ck_assert_int_eq(find_rule(&h, "identity.password_spray/one_source")->first_ms,
                     1772445800000LL);   /* 10:03:20 */
    h_fini(&h);
}
END_TEST

START_TEST(ta_raise_forwarding)
{
    struct harness h;
    const struct mf_finding *f;
    char rec[1024];
    int i;

    h_init(&h);
    for (i = 0; i < 3; i++) {
        snprintf(rec, sizeof(rec),
                 "{\"CreationTime\":\"2026-03-02T1%d:00:00\",\"Id\":\"fw%d\","
                 "\"Operation\":\"Set-Mailbox\",\"OrganizationId\":\"tenant-a\","
                 "\"RecordType\":1,\"ResultStatus\":\"True\",\"UserType\":2,"
                 "\"Workload\":\"Exchange\",\"UserId\":\"admin@contoso.com\","
                 "\"ObjectId\":\"mb%d\",\"Parameters\":[{\"Name\":\"Identity\",\"Value\":\"mb%d\"},"
                 "{\"Name\":\"ForwardingSmtpAddress\",\"Value\":\"%s\"}]}",
                 i, i, i, i, i == 2 ? "smtp:Drop@Evil.example" : "drop@evil.example");
        feed(&h, rec);
    }
    ck_assert_uint_eq(h.out.n, 1);
    f = &h.out.v[0];
    ck_assert_str_eq(f->rule, "behavior.mailbox_smtp_forwarding/shared_destination");
    ck_assert_str_eq(f->tag->id, "behavior.mailbox_smtp_forwarding");
    ck_assert_int_eq(f->severity, 5);
    ck_assert_str_eq(f->key, "Parameters.ForwardingSmtpAddress=drop@evil.example");
    h_fini(&h);
}
END_TEST

/* ---- geolocation --------------------------------------------------------- */

static struct mf_geoip *
test_geo(void)
{
    const char *path = getenv("MF_TEST_MMDB");
    struct mf_err err;
    struct mf_geoip *g;

    if (!mf_geoip_available())
        return NULL;
    ck_assert_msg(path != NULL, "MF_TEST_MMDB not set (meson sets it)");
    g = mf_geoip_open(path, &err);
    ck_assert_msg(g != NULL, "%s", err.msg);
    return g;
}

START_TEST(tg_lookup)
{
    struct mf_geoip *g = test_geo();
    struct mf_geo geo;
    struct mf_arena a;
    struct mf_jval *loc;
    struct mf_err err;

    if (!g) {
        ck_assert_ptr_null(mf_geoip_open("/x", &err));
        ck_assert_ptr_nonnull(strstr(err.msg, "without libmaxminddb"));
        return;
    }
    ck_assert_ptr_nonnull(strstr(mf_geoip_describe(g), "m365fwd-Test-City"));
    ck_assert_int_eq(mf_geoip_lookup(g, "192.0.2.5", &geo), 1);
    ck_assert_str_eq(geo.city, "Paris");
    ck_assert_str_eq(geo.country_iso, "FR");
    ck_assert_str_eq(geo.region_iso, "IDF");
    ck_assert(geo.has_coords);
    ck_assert_uint_eq(geo.accuracy_km, 20);
    ck_assert_int_eq(mf_geoip_lookup(g, "192.0.2.200", &geo), 1);   /* the /25 inside */
    ck_assert_str_eq(geo.city, "Lyon");
    ck_assert_int_eq(mf_geoip_lookup(g, "2001:db8::1", &geo), 1);
    ck_assert_str_eq(geo.country_iso, "JP");
    ck_assert_int_eq(mf_geoip_lookup(g, "10.1.2.3", &geo), 0);
    ck_assert_int_eq(mf_geoip_lookup(g, "not an address", &geo), -1);
    ck_assert_int_eq(mf_geoip_lookup(g, "100.64.1.1", &geo), 1);
    ck_assert(!geo.has_coords);
    mf_arena_init(&a, 4096);
    loc = mf_geo_ocsf_location(&a, &geo);
    ck_assert_ptr_nonnull(loc);
    ck_assert_str_eq(mf_jobj_get(loc, "country")->u.s, "DE");
    ck_assert_ptr_null(mf_jobj_get(loc, "lat"));
    loc = mf_geo_ecs_geo(&a, &geo);
    ck_assert_ptr_null(mf_jobj_get(loc, "location"));
    ck_assert_str_eq(mf_jobj_get(loc, "country_iso_code")->u.s, "DE");
    mf_arena_fini(&a);
    ck_assert_ptr_null(mf_geoip_open("/nonexistent.mmdb", &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent.mmdb: cannot read"));
    mf_geoip_close(g);
}
END_TEST

START_TEST(tg_distance)
{
    double d = mf_geo_distance_km(48.8566, 2.3522, -33.8688, 151.2093);

    ck_assert_msg(d > 16900 && d < 17000, "Paris-Sydney %f", d);
    ck_assert(mf_geo_distance_km(1, 1, 1, 1) < 1e-9);
}
END_TEST

START_TEST(tg_distant_signins)
{
    struct mf_geoip *g = test_geo();
    struct harness h;
    struct mf_aggregates_stats st;
    const struct mf_finding *f;

    h_init(&h);   /* without a database the rule is off */
    mf_aggregates_stats(h.g, &st);
    ck_assert_uint_eq(st.rules_off, 1);
    feed(&h, login_ok("g1", "10:00:00", "ann@c.com", "192.0.2.9"));
    feed(&h, login_ok("g2", "10:10:00", "ann@c.com", "198.51.100.9"));
    ck_assert_uint_eq(h.out.n, 0);
    h_fini(&h);
    if (!g)
        return;
    h_init_opts(&h, NULL, 0, 0, g);
    mf_aggregates_stats(h.g, &st);
    ck_assert_uint_eq(st.rules_off, 0);
    /* Paris then Lyon (390 km): not far enough */
    feed(&h, login_ok("g1", "10:00:00", "ann@c.com", "192.0.2.9"));
    feed(&h, login_ok("g2", "10:05:00", "ann@c.com", "192.0.2.200"));
    ck_assert_uint_eq(h.out.n, 0);
    /* Paris then Sydney ten minutes later */
    feed(&h, login_ok("g3", "10:10:00", "ann@c.com", "198.51.100.9"));
    ck_assert_uint_eq(h.out.n, 1);
    f = &h.out.v[0];
    ck_assert_str_eq(f->rule, "identity.concurrent_sessions_multi_ip/distant_addresses");
    ck_assert(f->distance_km > 16000);
    ck_assert_uint_eq(f->n_ips, 3);
    /* Paris then New York 59 minutes later: 5,840 km, still no plane */
    feed(&h, login_ok("g4", "10:00:00", "bob@c.com", "192.0.2.9"));
    feed(&h, login_ok("g5", "10:59:00", "bob@c.com", "203.0.113.1"));
    ck_assert_uint_eq(h.out.n, 2);
    h_fini(&h);
    mf_geoip_close(g);
}
END_TEST

/* ---- findings as events -------------------------------------------------- */

static const char *const golden_forms[] = {"ocsf", "ecs", "raw"};

START_TEST(tf_golden)
{
    struct harness h;
    struct mf_arena a;
    struct mf_buf out;
    char rel[128];
    char *want_text;
    json_t *got, *want;
    json_error_t jerr;
    enum mf_schema schema = (enum mf_schema)_i;

    h_init(&h);
    spray(&h, "gold", NULL, 0, 5, "203.0.113.30");
    feed(&h, login_ok("gold-ok", "10:02:00", "user1@contoso.com", "203.0.113.30"));
    ck_assert_uint_eq(h.out.n, 2);
    mf_arena_init(&a, 65536);
    mf_buf_init(&out, 0);
    ck_assert_int_eq(mf_buf_append(&out, "[", 1), 0);
    ck_assert_int_eq(mf_finding_write(&a, &h.out.v[0], schema, &out), 0);
    ck_assert_int_eq(mf_buf_append(&out, ",", 1), 0);
    ck_assert_int_eq(mf_finding_write(&a, &h.out.v[1], schema, &out), 0);
    ck_assert_int_eq(mf_buf_append(&out, "]", 1), 0);
    got = json_loads(out.data, 0, &jerr);
    ck_assert_msg(got != NULL, "%s", jerr.text);
    snprintf(rel, sizeof(rel), "aggregates/spray.%s.json", golden_forms[_i]);
    want_text = mf_test_slurp(mf_test_data(rel), NULL);
    ck_assert_msg(want_text != NULL, "missing %s", rel);
    want = json_loads(want_text, 0, &jerr);
    ck_assert_msg(want != NULL, "%s: %s", rel, jerr.text);
    /* the product version moves with releases */
    if (schema == MF_SCHEMA_OCSF) {
        for (size_t i = 0; i < 2; i++)
            json_object_del(json_object_get(json_object_get(json_array_get(got, i),
                                                            "metadata"), "product"),
                            "version");
    }
    if (getenv("MF_GOLDEN_UPDATE")) {
        /* regenerate (then read the diff before committing it) */
        char path[512];

        snprintf(path, sizeof(path), "%s/tests/data/%s", getenv("MF_SOURCE_ROOT"), rel);
        ck_assert_int_eq(json_dump_file(got, path, JSON_INDENT(1) | JSON_PRESERVE_ORDER), 0);
    } else if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_PRESERVE_ORDER);

        fprintf(stderr, "%s differs; got:\n%s\n", rel, g);
        free(g);
        ck_abort_msg("%s differs from the golden file (got it on stderr)", rel);
    }
    json_decref(got);
    json_decref(want);
    free(want_text);
    mf_buf_fini(&out);
    mf_arena_fini(&a);
    h_fini(&h);
}
END_TEST

static Suite *
aggregate_suite(void)
{
    Suite *s = suite_create("aggregate");
    TCase *tc;

    tc = tcase_create("mf_aggdb_load()");
    tcase_add_test(tc, tl_builtin_tags);
    tcase_add_loop_test(tc, tl_bad_tables, 0,
                        (int)(sizeof(bad_tables) / sizeof(bad_tables[0])));
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_aggregates_feed()");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, ta_spray_threshold);
    tcase_add_test(tc, ta_distinct_vs_count);
    tcase_add_test(tc, ta_duplicates_not_counted);
    tcase_add_test(tc, ta_refetch_refires);
    tcase_add_test(tc, ta_window_boundary);
    tcase_add_test(tc, ta_order_independent);
    tcase_add_test(tc, ta_lateness);
    tcase_add_test(tc, ta_newest_first);
    tcase_add_test(tc, ta_eviction);
    tcase_add_test(tc, ta_eviction_protected);
    tcase_add_test(tc, ta_memory_cap);
    tcase_add_test(tc, ta_uid_stable);
    tcase_add_test(tc, ta_success_after_spray);
    tcase_add_test(tc, ta_raise_forwarding);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_aggregates_save()");
    tcase_add_test(tc, ta_persist_split);
    tcase_add_test(tc, ta_persist_bad_files);
    tcase_add_test(tc, ta_persist_table_changed);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_geoip_lookup()");
    tcase_add_test(tc, tg_lookup);
    tcase_add_test(tc, tg_distance);
    tcase_add_test(tc, tg_distant_signins);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_finding_build()");
    tcase_add_loop_test(tc, tf_golden, 0, 3);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    struct mf_err err;
    int rc;

    tagdb = mf_tagdb_load_builtin(&err);
    if (!tagdb) {
        fprintf(stderr, "built-in catalogue: %s\n", err.msg);
        return 1;
    }
    rc = mf_test_run(aggregate_suite());
    mf_tagdb_destroy(tagdb);
    return rc;
}
