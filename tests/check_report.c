/* check_report.c - the review: tables, aggregate, rollup, review, renderers,
 * and the agent's adapter from normalizer output to report facts. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "agg_int.h"
#include "clock.h"
#include "normalize.h"
#include "report.h"
#include "report_feed.h"
#include "test_common.h"

#define DAY(n) ((int64_t)(n) * 86400000)
#define D0 20501   /* a day (2026-02-17) the tests put records on */

/* A small catalogue for the library's own tests. */
static const struct mf_report_tagdef tagdefs[] = {
    {"identity.legacy_or_ropc_auth", "Legacy sign-in", MF_RAREA_IDENTITY, 3},
    {"identity.privileged_role_assigned", "Role assigned", MF_RAREA_IDENTITY, 4},
    {"identity.mfa_disabled", "MFA disabled", MF_RAREA_IDENTITY, 4},
    {"identity.mfa_trusted_ips_changed", "Trusted IPs", MF_RAREA_IDENTITY, 4},
    {"identity.app_consent_granted", "Consent", MF_RAREA_IDENTITY, 3},
    {"identity.risky_app_consent_allowed", "Risky consent", MF_RAREA_IDENTITY, 4},
    {"identity.app_privileged_permission_granted", "Priv perm", MF_RAREA_IDENTITY, 4},
    {"identity.device_code_login", "Device code", MF_RAREA_IDENTITY, 3},
    {"identity.login_failed", "Sign-in failed", MF_RAREA_IDENTITY, 1},
    {"monitor.ual_disabled", "UAL off", MF_RAREA_MONITOR, 5},
    {"monitor.mailbox_audit_bypass", "bypass", MF_RAREA_MONITOR, 4},
    {"monitor.mailbox_audit_weakened", "weakened", MF_RAREA_MONITOR, 4},
    {"monitor.advanced_audit_removed", "adv", MF_RAREA_MONITOR, 3},
    {"monitor.security_alert", "alert", MF_RAREA_MONITOR, 3},
    {"monitor.email_protection_weakened", "eop", MF_RAREA_MONITOR, 4},
    {"monitor.collection_gap", "gap", MF_RAREA_MONITOR, 4},
    {"collab.anonymous_link_created", "anon", MF_RAREA_COLLAB, 3},
    {"collab.guest_user_added", "guest", MF_RAREA_COLLAB, 3},
    {"collab.external_share", "ext", MF_RAREA_COLLAB, 3},
    {"behavior.inbox_rule_forwarding", "fwd", MF_RAREA_DATA, 4},
    {"behavior.mailbox_smtp_forwarding", "smtp fwd", MF_RAREA_DATA, 4},
    {"data.transport_rule_forwarding", "tr fwd", MF_RAREA_DATA, 4},
    {"data.dlp_match", "dlp", MF_RAREA_DATA, 3},
    {"data.dlp_policy_weakened", "dlp weak", MF_RAREA_DATA, 4},
    {"data.dlp_override", "dlp override", MF_RAREA_DATA, 3},
    {"data.label_downgraded", "label down", MF_RAREA_DATA, 3},
    {"data.label_removed", "label rm", MF_RAREA_DATA, 3},
    {"device.access_policy_weakened", "dev pol", MF_RAREA_DEVICE, 4},
};
static const struct mf_report_catalog cat = {tagdefs, sizeof(tagdefs) / sizeof(tagdefs[0])};

static struct mf_report_tables *
builtin_tables(void)
{
    struct mf_report_err err;
    struct mf_report_tables *t = mf_report_tables_load(NULL, NULL, 0, NULL, NULL, 0, &cat,
                                                       &err);

    ck_assert_msg(t != NULL, "%s", err.msg);
    return t;
}

static struct mf_report_rec
rec(int64_t ms, const char *actor, const char *op, const char *ct)
{
    struct mf_report_rec r;

    memset(&r, 0, sizeof(r));
    r.time_ms = ms;
    r.tenant_id = "t-1";
    r.tenant = "contoso";
    r.actor = actor;
    r.operation = op;
    r.content_type = ct;
    r.object = "obj";
    r.record_id = op;
    return r;
}

static void
tag(struct mf_report_rec *r, const char *id, int area, int sev)
{
    r->tags[r->n_tags].id = id;
    r->tags[r->n_tags].area = area;
    r->tags[r->n_tags].severity = sev;
    r->n_tags++;
    if (sev > r->severity)
        r->severity = sev;
}

static struct mf_jval *
review(struct mf_arena *ar, const struct mf_agg *a, const struct mf_report_tables *t,
       int64_t from, int64_t to)
{
    struct mf_review_opts o = {.day_from = from, .day_to = to, .now_ms = DAY(D0),
                               .source_kind = "export", .generator = "test"};

    return mf_review_build(ar, a, t, &cat, &o);
}

/* The member at a path like "summary.checks.ok" or "checks[id=x].status". */
static const struct mf_jval *
jat(const struct mf_jval *v, const char *path)
{
    char part[256];

    while (v && *path) {
        size_t n = 0;
        int depth = 0;
        char *br;

        /* one step: up to a '.' outside brackets */
        for (; *path && (depth || *path != '.') && n + 1 < sizeof(part); path++) {
            depth += *path == '[' ? 1 : *path == ']' ? -1 : 0;
            part[n++] = *path;
        }
        part[n] = '\0';
        if (*path == '.')
            path++;
        if ((br = strchr(part, '['))) {
            char *eq = strchr(br, '='), *end = strrchr(br, ']');
            const struct mf_jval *arr;

            *br = '\0';
            *eq = '\0';
            *end = '\0';
            arr = mf_jobj_get(v, part);
            v = NULL;
            for (size_t i = 0; arr && i < arr->len; i++) {
                size_t len;
                const char *s = mf_jscalar_text(mf_jobj_get(arr->u.items[i], br + 1), &len);

                if (s && strcmp(s, eq + 1) == 0) {
                    v = arr->u.items[i];
                    break;
                }
            }
        } else {
            v = mf_jobj_get(v, part);
        }
    }
    return v;
}

static int64_t
jint(const struct mf_jval *doc, const char *path)
{
    int64_t n = -999;

    ck_assert_msg(mf_jget_int(jat(doc, path), &n) == 0, "no integer at %s", path);
    return n;
}

static const char *
jstr(const struct mf_jval *doc, const char *path)
{
    const char *s = mf_jstrv(jat(doc, path));

    ck_assert_msg(s != NULL, "no string at %s", path);
    return s;
}

/* ---- tables -------------------------------------------------------------------- */

START_TEST(rt_builtin_against_real_catalogue)
{
    struct mf_err nerr;
    struct mf_normalizer *n = mf_normalizer_new(NULL, &nerr);
    struct mf_report_catalog real;
    struct mf_report_err err;
    struct mf_report_tables *t;

    ck_assert_ptr_nonnull(n);
    mf_report_catalog_init(&real, mf_normalizer_tags(n));
    t = mf_report_tables_load(NULL, NULL, 0, NULL, NULL, 0, &real, &err);
    ck_assert_msg(t != NULL, "%s", err.msg);
    ck_assert_uint_ge(t->n_checks, 9);
    ck_assert_uint_ge(t->n_aggs, 3);
    mf_report_tables_destroy(t);
    mf_report_catalog_free(&real);
    mf_normalizer_destroy(n);
}
END_TEST

static const char ok_checks[] =
    "version: 1\n"
    "aggregates:\n"
    "  - id: spray\n"
    "    title: Spray\n"
    "    area: identity_access\n"
    "    fact: signin_failed\n"
    "    by: client_ip\n"
    "    distinct: actor\n"
    "    min_distinct: 3\n"
    "    text: \"{distinct} from {key}\"\n"
    "checks:\n"
    "  - id: one\n"
    "    title: One\n"
    "    area: identity_access\n"
    "    applies: fact.signin\n"
    "    when: fact.signin - fact.signin_ok * 2 > 1 and (agg.spray + 1 >= 2 or records == 0)\n"
    "    evidence: fact.signin_failed\n"
    "    finding: \"{evidence} failed of {fact.signin}\"\n"
    "    ok: fine\n"
    "    no_evidence: none\n";
static const char ok_plan[] =
    "version: 1\n"
    "actions:\n"
    "  - check: one\n"
    "    area: identity_access\n"
    "    action: Do it\n"
    "    owner: Admin\n"
    "    effort: low\n"
    "    horizon: 30\n";

START_TEST(rt_errors_name_file_and_line)
{
    static const struct {
        const char *from, *to;   /* a replacement in ok_checks/ok_plan */
        bool plan;
        const char *want;
    } cases[] = {
        {"    ok: fine\n", "    okay: fine\n", false, "checks.yaml:19: check one: unknown key 'okay'"},
        {"fact.signin_failed\n    finding", "tags.no\n    finding", false, "unknown quantity 'tags.no'"},
        {"fact.signin_failed\n    finding", "tag.identity.nope\n    finding", false,
         "unknown tag 'identity.nope'"},
        {"* 2 > 1 and", "* 2 > and", false, "unknown quantity 'and'"},
        {"* 2 > 1 and", "* 2 > 1 and and", false, "unknown quantity 'and'"},
        {"* 2 > 1 and", "* 2 > 1 and )", false, "expected a number, a quantity or '('"},
        {"(agg.spray + 1 >= 2 or records == 0)", "(agg.spray + 1", false, "missing ')'"},
        {"{fact.signin}", "{fact.signins}", false, "unknown placeholder '{fact.signins}'"},
        {"{distinct} from", "{user} from", false, "unknown placeholder '{user}'"},
        {"    distinct: actor\n", "", false, "min_distinct needs 'distinct'"},
        {"    area: identity_access\n    fact", "    area: identity\n    fact", false,
         "unknown area 'identity'"},
        {"version: 1\n", "version: 2\n", false, "version: 1 is required"},
        {"    no_evidence: none\n", "", false, "'no_evidence' is required"},
        {"check: one", "check: two", true, "plan.yaml:3: actions[0]: unknown check 'two'"},
        {"horizon: 30", "horizon: 45", true, "horizon must be 30, 60 or 90"},
        {"effort: low", "effort: tiny", true, "effort must be low, medium or high"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *base = cases[i].plan ? ok_plan : ok_checks;
        const char *at = strstr(base, cases[i].from);
        char text[4096];
        struct mf_report_err err = {{0}};
        struct mf_report_tables *t;

        ck_assert_msg(at != NULL, "case %zu: '%s' not in the table", i, cases[i].from);
        snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - base), base, cases[i].to,
                 at + strlen(cases[i].from));
        t = mf_report_tables_load("checks.yaml", cases[i].plan ? ok_checks : text,
                                  strlen(cases[i].plan ? ok_checks : text), "plan.yaml",
                                  cases[i].plan ? text : ok_plan,
                                  strlen(cases[i].plan ? text : ok_plan), &cat, &err);
        ck_assert_msg(t == NULL, "case %zu loaded", i);
        ck_assert_msg(strstr(err.msg, cases[i].want) != NULL, "case %zu: got '%s', want '%s'",
                      i, err.msg, cases[i].want);
    }
    /* and the originals load */
    {
        struct mf_report_err err;
        struct mf_report_tables *t = mf_report_tables_load("checks.yaml", ok_checks,
                                                           strlen(ok_checks), "plan.yaml",
                                                           ok_plan, strlen(ok_plan), &cat, &err);

        ck_assert_msg(t != NULL, "%s", err.msg);
        mf_report_tables_destroy(t);
    }
}
END_TEST

START_TEST(rt_check_without_action)
{
    struct mf_report_err err;
    char checks[4096];

    snprintf(checks, sizeof(checks), "%s%s", ok_checks,
             "  - id: two\n    title: Two\n    area: device_posture\n    when: records\n"
             "    evidence: records\n    finding: x\n    ok: y\n");
    ck_assert_ptr_null(mf_report_tables_load("checks.yaml", checks, strlen(checks),
                                             "plan.yaml", ok_plan, strlen(ok_plan), &cat,
                                             &err));
    ck_assert_msg(strstr(err.msg, "check 'two' has no action") != NULL, "%s", err.msg);
}
END_TEST

/* The expression of ok_checks, on counts made to flip it. */
START_TEST(rt_expression_values)
{
    struct mf_report_err err;
    struct mf_report_tables *t = mf_report_tables_load("c", ok_checks, strlen(ok_checks), "p",
                                                       ok_plan, strlen(ok_plan), &cat, &err);
    struct mf_agg *a = mf_agg_new(t, NULL);
    struct mf_arena ar;
    struct mf_jval *doc;
    const char *ips[] = {"203.0.113.9", "203.0.113.9", "203.0.113.9", "198.51.100.1"};
    const char *who[] = {"a@x", "b@x", "c@x", "a@x"};

    ck_assert_msg(t != NULL, "%s", err.msg);
    mf_arena_init(&ar, 65536);
    /* 4 failed sign-ins, 3 accounts from one address: signin 4 - ok 0 * 2 > 1,
     * and one spray instance (agg.spray + 1 >= 2) */
    for (int i = 0; i < 4; i++) {
        struct mf_report_rec r = rec(DAY(D0) + i, who[i], "UserLoginFailed",
                                     "Audit.AzureActiveDirectory");

        r.client_ip = ips[i];
        r.facts = 1u << MF_FACT_SIGNIN | 1u << MF_FACT_SIGNIN_FAILED;
        mf_agg_add(a, &r);
    }
    doc = review(&ar, a, t, D0, D0);
    ck_assert_str_eq(jstr(doc, "checks[id=one].status"), "finding");
    ck_assert_int_eq(jint(doc, "checks[id=one].evidence"), 4);
    ck_assert_str_eq(jstr(doc, "checks[id=one].text"), "4 failed of 4");
    ck_assert_int_eq(jint(doc, "exposure.areas[area=identity_access].findings_total"), 1);
    ck_assert_str_eq(jstr(doc, "exposure.areas[area=identity_access].findings[id=spray].text"),
                     "3 from 203.0.113.9");
    /* two successful sign-ins: 6 - 2 * 2 = 2 > 1 still; three: 7 - 6 = 1, ok */
    for (int i = 0; i < 3; i++) {
        struct mf_report_rec r = rec(DAY(D0) + 100 + i, "d@x", "UserLoggedIn",
                                     "Audit.AzureActiveDirectory");

        r.facts = 1u << MF_FACT_SIGNIN | 1u << MF_FACT_SIGNIN_OK;
        mf_agg_add(a, &r);
        mf_arena_reset(&ar);
        doc = review(&ar, a, t, D0, D0);
        ck_assert_str_eq(jstr(doc, "checks[id=one].status"), i < 2 ? "finding" : "ok");
    }
    /* a period without sign-ins: no evidence either way */
    mf_arena_reset(&ar);
    doc = review(&ar, a, t, D0 + 1, D0 + 2);
    ck_assert_str_eq(jstr(doc, "checks[id=one].status"), "no_evidence");
    ck_assert_str_eq(jstr(doc, "checks[id=one].text"), "none");
    mf_arena_fini(&ar);
    mf_agg_destroy(a);
    mf_report_tables_destroy(t);
}
END_TEST

/* ---- aggregate ---------------------------------------------------------------- */

START_TEST(ag_top_lists_stay_bounded_and_keep_the_heavy_hitter)
{
    struct mf_report_tables *t = builtin_tables();
    struct mf_agg_limits lim = {.top_per_area = 4, .events_per_area = 3};
    struct mf_agg *a = mf_agg_new(t, &lim);
    char name[64];
    size_t mem_after_first;
    const struct agg_day *d;

    for (int i = 0; i < 2000; i++) {
        struct mf_report_rec r;

        snprintf(name, sizeof(name), "user%d@x", i);
        r = rec(DAY(D0) + i, name, "Add member to role.", "Audit.AzureActiveDirectory");
        tag(&r, "identity.privileged_role_assigned", MF_RAREA_IDENTITY, 2);
        mf_agg_add(a, &r);
        if (i % 2 == 0) {   /* every other record is the heavy one */
            r = rec(DAY(D0) + i, "mallory@x", "Disable Strong Authentication.",
                    "Audit.AzureActiveDirectory");
            tag(&r, "identity.mfa_disabled", MF_RAREA_IDENTITY, 4);
            mf_agg_add(a, &r);
        }
        if (i == 10)
            mem_after_first = mf_agg_memory(a);
    }
    d = a->tenants[0].days[0];
    ck_assert_uint_eq(d->tops[0][MF_RAREA_IDENTITY].n, 4);
    ck_assert_uint_le(d->events[MF_RAREA_IDENTITY].n, 3);
    /* memory does not grow with the records once the lists are full */
    ck_assert_uint_lt(mf_agg_memory(a), mem_after_first + 4096);
    {
        struct mf_arena ar;
        struct mf_jval *doc;

        mf_arena_init(&ar, 65536);
        doc = review(&ar, a, t, D0, D0);
        ck_assert_str_eq(jstr(doc, "exposure.areas[area=identity_access].actors[name=mallory@x]"
                              ".name"), "mallory@x");
        ck_assert_int_eq(jint(doc, "exposure.areas[area=identity_access].actors[name=mallory@x]"
                              ".records"), 1000);
        ck_assert_int_eq(jint(doc, "exposure.areas[area=identity_access].actors[name=mallory@x]"
                              ".risk"), 16000);
        /* exact counts do not depend on the bounds */
        ck_assert_int_eq(jint(doc, "summary.records"), 3000);
        ck_assert_int_eq(jint(doc, "exposure.areas[area=identity_access]"
                              ".tags[id=identity.privileged_role_assigned].count"), 2000);
        /* most severe first */
        ck_assert_int_eq(jint(doc, "exposure.areas[area=identity_access].events[severity=4]"
                              ".severity"), 4);
        mf_arena_fini(&ar);
    }
    mf_agg_destroy(a);
    mf_report_tables_destroy(t);
}
END_TEST

/* Merging per-batch aggregates gives what one aggregate of everything gives. */
START_TEST(ag_merge_equals_single)
{
    struct mf_report_tables *t = builtin_tables();
    struct mf_agg *all = mf_agg_new(t, NULL), *parts[3], *merged = mf_agg_new(t, NULL);
    struct mf_arena ar;
    struct mf_buf b1, b2;

    for (int p = 0; p < 3; p++)
        parts[p] = mf_agg_new(t, NULL);
    for (int i = 0; i < 300; i++) {
        char who[32];
        struct mf_report_rec r;

        snprintf(who, sizeof(who), "u%d@x", i % 7);
        r = rec(DAY(D0 + i % 5) + i, who, i % 3 ? "UserLoggedIn" : "Set-AdminAuditLogConfig",
                i % 3 ? "Audit.AzureActiveDirectory" : "Audit.Exchange");
        if (i % 3 == 0)
            tag(&r, "monitor.ual_disabled", MF_RAREA_MONITOR, 5);
        else
            r.facts = 1u << MF_FACT_SIGNIN | 1u << (i % 2 ? MF_FACT_SIGNIN_OK
                                                             : MF_FACT_SIGNIN_FAILED);
        r.client_ip = "192.0.2.1";
        mf_agg_add(all, &r);
        mf_agg_add(parts[i % 3], &r);
    }
    for (int p = 0; p < 3; p++)
        mf_agg_merge(merged, parts[p]);
    mf_arena_init(&ar, 65536);
    mf_buf_init(&b1, 0);
    mf_buf_init(&b2, 0);
    mf_json_write(&b1, review(&ar, all, t, D0, D0 + 4));
    mf_json_write(&b2, review(&ar, merged, t, D0, D0 + 4));
    ck_assert_str_eq(b1.data, b2.data);
    ck_assert_ptr_nonnull(strstr(b1.data, "\"records\":300"));
    mf_buf_fini(&b1);
    mf_buf_fini(&b2);
    mf_arena_fini(&ar);
    for (int p = 0; p < 3; p++)
        mf_agg_destroy(parts[p]);
    mf_agg_destroy(all);
    mf_agg_destroy(merged);
    mf_report_tables_destroy(t);
}
END_TEST

/* ---- rollup ---------------------------------------------------------------------- */

static char dir[256];

static void
setup(void)
{
    mf_test_mkdtemp(dir, sizeof(dir), "mf-report");
}

static void
teardown(void)
{
    mf_test_rmtree(dir);
}

static void
some_records(int64_t day0, int n, void (*fn)(void *, const struct mf_report_rec *),
             void *ud)
{
    static const char *const who[] = {"a@x", "b@x", "<script>alert(1)</script>", "d@x"};

    for (int i = 0; i < n; i++) {
        struct mf_report_rec r = rec(DAY(day0 + i % 3) + 1000 * i, who[i % 4],
                                     i % 2 ? "UserLoginFailed" : "New-InboxRule",
                                     i % 2 ? "Audit.AzureActiveDirectory" : "Audit.Exchange");
        char id[32];

        snprintf(id, sizeof(id), "rec-%d", i);
        r.record_id = id;
        r.client_ip = "203.0.113.7";
        if (i % 2) {
            r.facts = 1u << MF_FACT_SIGNIN | 1u << MF_FACT_SIGNIN_FAILED;
            tag(&r, "identity.login_failed", MF_RAREA_IDENTITY, 1);
        } else {
            tag(&r, "behavior.inbox_rule_forwarding", MF_RAREA_DATA, 4 + i % 2);
        }
        fn(ud, &r);
    }
}

struct add_ud {
    struct mf_rollup *r;
    const void *batch;
};

static void
add_rollup(void *ud, const struct mf_report_rec *r)
{
    struct add_ud *x = ud;

    mf_rollup_add(x->r, x->batch, r);
}

static void
add_agg(void *ud, const struct mf_report_rec *r)
{
    mf_agg_add(ud, r);
}

/* What comes back from report.db is the review of what was committed:
 * the same document as the aggregate of those records. */
START_TEST(ru_round_trip_commit_discard)
{
    struct mf_report_tables *t = builtin_tables();
    struct mf_report_err err;
    struct mf_rollup *r = mf_rollup_open(dir, t, NULL, &err);
    struct mf_rollup_opts ro = {.read_only = true};
    struct mf_agg *direct = mf_agg_new(t, NULL), *loaded = mf_agg_new(t, NULL);
    int batch_a, batch_b;
    struct add_ud ua, ub, un;
    struct mf_arena ar;
    struct mf_buf b1, b2;
    struct mf_rollup_stats st;
    int64_t today = mf_clock_wall_ms() / 86400000;

    ck_assert_msg(r != NULL, "%s", err.msg);
    ua = (struct add_ud){r, &batch_a};
    ub = (struct add_ud){r, &batch_b};
    un = (struct add_ud){r, NULL};
    some_records(today - 3, 40, add_rollup, &ua);
    some_records(today - 3, 25, add_rollup, &ub);
    some_records(today - 2, 5, add_rollup, &un);
    /* nothing reaches the file before a commit */
    ck_assert_int_eq(mf_rollup_stats(r, &st), 0);
    ck_assert_int_eq(st.rows, 0);
    mf_rollup_discard(r, &batch_b);
    ck_assert_int_eq(mf_rollup_commit(r, (const void *const[]){&batch_a}, 1), 0);
    /* a second commit of the same batch adds nothing: it was taken */
    ck_assert_int_eq(mf_rollup_commit(r, (const void *const[]){&batch_a}, 1), 0);
    mf_rollup_close(r);
    some_records(today - 3, 40, add_agg, direct);
    some_records(today - 2, 5, add_agg, direct);

    r = mf_rollup_open(dir, t, &ro, &err);
    ck_assert_msg(r != NULL, "%s", err.msg);
    ck_assert_int_eq(mf_rollup_load(r, NULL, today - 10, today, loaded, &err), 0);
    ck_assert_int_eq(mf_rollup_stats(r, &st), 0);
    ck_assert_int_gt(st.rows, 0);
    ck_assert_int_eq(st.first_day, today - 3);
    mf_arena_init(&ar, 65536);
    mf_buf_init(&b1, 0);
    mf_buf_init(&b2, 0);
    mf_json_write(&b1, review(&ar, direct, t, today - 10, today));
    mf_json_write(&b2, review(&ar, loaded, t, today - 10, today));
    ck_assert_str_eq(b2.data, b1.data);
    ck_assert_ptr_nonnull(strstr(b1.data, "\"records\":45"));
    /* a tenant filter by name or by id, and one that matches nothing */
    mf_agg_destroy(loaded);
    loaded = mf_agg_new(t, NULL);
    ck_assert_int_eq(mf_rollup_load(r, "contoso", today - 10, today, loaded, &err), 0);
    ck_assert_int_eq(loaded->n_tenants, 1);
    mf_agg_destroy(loaded);
    loaded = mf_agg_new(t, NULL);
    ck_assert_int_eq(mf_rollup_load(r, "fabrikam", today - 10, today, loaded, &err), 0);
    ck_assert(mf_agg_empty(loaded));
    mf_buf_fini(&b1);
    mf_buf_fini(&b2);
    mf_arena_fini(&ar);
    mf_rollup_close(r);
    mf_agg_destroy(direct);
    mf_agg_destroy(loaded);
    mf_report_tables_destroy(t);
}
END_TEST

static int64_t
count_rows(const char *sql)
{
    char path[300];
    sqlite3 *db;
    sqlite3_stmt *st;
    int64_t n = -1;

    snprintf(path, sizeof(path), "%s/report.db", dir);
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* Rows grow with distinct keys per day up to the bounds, never with
 * records; retention removes old days. */
START_TEST(ru_bounded_by_keys_and_retention)
{
    struct mf_report_tables *t = builtin_tables();
    struct mf_report_err err;
    struct mf_rollup_opts o = {.retention_days = 30};
    struct mf_rollup *r = mf_rollup_open(dir, t, &o, &err);
    int64_t today = mf_clock_wall_ms() / 86400000, rows1;
    struct mf_rollup_stats st;

    ck_assert_msg(r != NULL, "%s", err.msg);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 500; i++) {
            char who[32];
            struct mf_report_rec x;

            snprintf(who, sizeof(who), "user%d.%d@x", round, i);
            x = rec(DAY(today) + i, who, "Add member to role.", "Audit.AzureActiveDirectory");
            tag(&x, "identity.privileged_role_assigned", MF_RAREA_IDENTITY, 4);
            mf_rollup_add(r, NULL, &x);
        }
        ck_assert_int_eq(mf_rollup_commit(r, NULL, 0), 0);
        ck_assert_int_eq(mf_rollup_stats(r, &st), 0);
        if (round == 0)
            rows1 = st.rows;
        else
            ck_assert_int_eq(st.rows, rows1);   /* 1000 more records, no more rows */
    }
    ck_assert_int_eq(count_rows("SELECT count(*) FROM top WHERE kind = 0"), 16);
    ck_assert_int_eq(count_rows("SELECT count(*) FROM event"), 6);
    ck_assert_int_eq(count_rows("SELECT n1 + n2 + n3 + n4 + n5 FROM tag"), 1500);
    /* a day beyond the retention goes at the next prune */
    {
        struct mf_report_rec x = rec(DAY(today - 31), "old@x", "UserLoggedIn",
                                     "Audit.AzureActiveDirectory");

        mf_rollup_add(r, NULL, &x);
        ck_assert_int_eq(mf_rollup_commit(r, NULL, 0), 0);
    }
    ck_assert_int_eq(count_rows("SELECT count(*) FROM ct WHERE day < (SELECT max(day) FROM ct)"),
                     1);
    ck_assert_int_eq(mf_rollup_prune(r, DAY(today) + 1), 0);
    ck_assert_int_eq(count_rows("SELECT count(*) FROM ct WHERE day < (SELECT max(day) FROM ct)"),
                     0);
    mf_rollup_close(r);
    mf_report_tables_destroy(t);
}
END_TEST

/* With a flush interval, delivered counts reach the file within it even
 * when no other commit comes, and at close. */
START_TEST(ru_write_behind)
{
    struct mf_report_tables *t = builtin_tables();
    struct mf_report_err err;
    struct mf_rollup_opts o = {.flush_interval_ms = 300};
    struct mf_rollup *r = mf_rollup_open(dir, t, &o, &err);
    struct mf_rollup_stats st;
    struct mf_report_rec x = rec(mf_clock_wall_ms(), "a@x", "UserLoggedIn",
                                 "Audit.AzureActiveDirectory");
    int64_t deadline;

    ck_assert_msg(r != NULL, "%s", err.msg);
    /* the writer thread wakes with nothing to write (and must not then hold
     * the rollup): let two intervals pass first */
    deadline = mf_clock_mono_ms() + 700;
    while (mf_clock_mono_ms() < deadline) {
        struct timespec ts = {0, 50 * 1000 * 1000};

        nanosleep(&ts, NULL);
    }
    mf_rollup_add(r, NULL, &x);
    ck_assert_int_eq(mf_rollup_commit(r, NULL, 0), 0);
    /* the next one waits for the writer thread */
    x.time_ms -= DAY(1);
    mf_rollup_add(r, NULL, &x);
    ck_assert_int_eq(mf_rollup_commit(r, NULL, 0), 0);
    /* look every 20 ms until the writer thread wrote it (a tight loop on
     * the rollup would keep the writer from its lock on a busy machine) */
    deadline = mf_clock_mono_ms() + 10000;
    do {
        struct timespec ts = {0, 20 * 1000 * 1000};

        ck_assert_int_eq(mf_rollup_stats(r, &st), 0);
        nanosleep(&ts, NULL);
    } while (count_rows("SELECT count(DISTINCT day) FROM ct") < 2 &&
             mf_clock_mono_ms() < deadline);
    ck_assert_int_eq(count_rows("SELECT count(DISTINCT day) FROM ct"), 2);
    /* close writes what waits */
    x.time_ms -= DAY(1);
    mf_rollup_add(r, NULL, &x);
    ck_assert_int_eq(mf_rollup_commit(r, NULL, 0), 0);
    mf_rollup_close(r);
    ck_assert_int_eq(count_rows("SELECT count(DISTINCT day) FROM ct"), 3);
    ck_assert_int_eq(count_rows("SELECT sum(records) FROM ct"), 3);
    mf_report_tables_destroy(t);
}
END_TEST

START_TEST(ru_open_errors)
{
    struct mf_report_tables *t = builtin_tables();
    struct mf_report_err err;
    struct mf_rollup_opts ro = {.read_only = true};

    ck_assert_ptr_null(mf_rollup_open(dir, t, &ro, &err));
    ck_assert_msg(strstr(err.msg, "no rollup") && strstr(err.msg, "report.db"), "%s", err.msg);
    ck_assert_ptr_null(mf_rollup_open("/proc/nonexistent/x", t, NULL, &err));
    ck_assert_msg(strstr(err.msg, "cannot create") != NULL, "%s", err.msg);
    mf_report_tables_destroy(t);
}
END_TEST

/* ---- review ------------------------------------------------------------------------ */

START_TEST(rv_scores_checks_plan_coverage)
{
    struct mf_report_tables *t = builtin_tables();
    struct mf_agg *a = mf_agg_new(t, NULL);
    struct mf_arena ar;
    struct mf_jval *doc;
    struct mf_report_rec r;

    /* one critical hit: points 64, score round(25 log10 65) = 45 */
    r = rec(DAY(D0) + 5, "admin@x", "Set-AdminAuditLogConfig", "Audit.Exchange");
    tag(&r, "monitor.ual_disabled", MF_RAREA_MONITOR, 5);
    mf_agg_add(a, &r);
    /* 3 medium: 12 points -> 28 */
    for (int i = 0; i < 3; i++) {
        r = rec(DAY(D0 + 2) + i, "u@x", "UserLoggedIn", "Audit.AzureActiveDirectory");
        tag(&r, "identity.legacy_or_ropc_auth", MF_RAREA_IDENTITY, 3);
        r.facts = 1u << MF_FACT_SIGNIN | 1u << MF_FACT_SIGNIN_OK | 1u << MF_FACT_SIGNIN_LEGACY;
        mf_agg_add(a, &r);
    }
    /* the collector's gap record: coverage, not exposure */
    r = rec(DAY(D0 + 3), "m365fwd", "CollectionGap", "Audit.SharePoint");
    tag(&r, "monitor.collection_gap", MF_RAREA_MONITOR, 4);
    r.gap_start_ms = DAY(D0 + 1);
    r.gap_end_ms = DAY(D0 + 1) + 3600000;
    r.gap_reason = "older than the API's 7 days";
    r.gap_content_type = "Audit.SharePoint";
    mf_agg_add(a, &r);
    mf_arena_init(&ar, 65536);
    doc = review(&ar, a, t, D0, D0 + 6);
    ck_assert_int_eq(jint(doc, "exposure.areas[area=monitoring_response].points"), 64);
    ck_assert_int_eq(jint(doc, "exposure.areas[area=monitoring_response].score"),
                     (int64_t)floor(25 * log10(65) + 0.5));
    ck_assert_int_eq(jint(doc, "exposure.areas[area=identity_access].score"),
                     (int64_t)floor(25 * log10(13) + 0.5));
    ck_assert_str_eq(jstr(doc, "exposure.areas[area=identity_access].level"), "low");
    ck_assert_int_eq(jint(doc, "exposure.areas[area=device_posture].score"), 0);
    ck_assert_str_eq(jstr(doc, "summary.most_exposed_area"), "monitoring_response");
    /* trend: one week, scores of the week */
    ck_assert_int_eq(jint(doc, "exposure.areas[area=identity_access].trend[to=2026-02-23]"
                          ".hits"), 3);
    /* checks */
    ck_assert_str_eq(jstr(doc, "checks[id=audit_turned_off].status"), "finding");
    ck_assert_int_eq(jint(doc, "checks[id=audit_turned_off].evidence"), 1);
    ck_assert_str_eq(jstr(doc, "checks[id=audit_turned_off].examples[actor=admin@x].operation"),
                     "Set-AdminAuditLogConfig");
    ck_assert_str_eq(jstr(doc, "checks[id=legacy_auth].status"), "finding");
    ck_assert_str_eq(jstr(doc, "checks[id=legacy_auth].text"),
                     "Sign-ins over legacy protocols or ROPC (password-only flows that cannot "
                     "enforce MFA or device rules): 3 of 3.");
    ck_assert_str_eq(jstr(doc, "checks[id=signin_without_mfa].status"), "no_evidence");
    ck_assert_str_eq(jstr(doc, "checks[id=collection_gaps].status"), "finding");
    ck_assert_str_eq(jstr(doc, "checks[id=unmanaged_devices].status"), "no_evidence");
    ck_assert_str_eq(jstr(doc, "checks[id=email_protection_weakened].status"), "ok");
    /* plan: the findings' actions, in their horizons, citing evidence */
    {
        const struct mf_jval *hz = jat(doc, "plan.horizons"), *found = NULL;
        int64_t days = 0;

        for (size_t i = 0; hz && i < hz->len; i++) {
            const struct mf_jval *act = jat(hz->u.items[i], "actions[check=audit_turned_off]");

            if (act) {
                found = act;
                days = jint(hz->u.items[i], "days");
            }
        }
        ck_assert_ptr_nonnull(found);
        ck_assert_int_eq(days, 30);
        ck_assert_int_eq(jint(found, "evidence"), 1);
        ck_assert_int_eq(jint(found, "priority"), 1);
        ck_assert_str_eq(jstr(found, "why"), jstr(doc, "checks[id=audit_turned_off].text"));
        ck_assert_str_eq(jstr(found, "owner"), "Compliance administrator");
    }
    ck_assert_str_eq(jstr(doc, "plan.areas[area=device_posture].status"), "no_evidence");
    ck_assert_ptr_nonnull(strstr(jstr(doc, "plan.areas[area=device_posture].text"),
                                 "nothing is planned from guesswork"));
    ck_assert_str_eq(jstr(doc, "plan.areas[area=monitoring_response].status"), "actions");
    ck_assert_int_eq(jint(doc, "summary.actions"), jint(doc, "summary.checks.finding"));
    /* coverage: content types, empty days, the gap */
    ck_assert_int_eq(jint(doc, "coverage.days_in_period"), 7);
    ck_assert_int_eq(jint(doc, "coverage.days_with_records"), 2);
    ck_assert_int_eq(jint(doc, "coverage.content_types[content_type=DLP.All].records"), 0);
    ck_assert_str_eq(jstr(doc, "coverage.days_without_records[from=2026-02-18].to"),
                     "2026-02-18");
    ck_assert_str_eq(jstr(doc, "coverage.gaps[content_type=Audit.SharePoint].reason"),
                     "older than the API's 7 days");
    ck_assert_str_eq(jstr(doc, "coverage.gaps[content_type=Audit.SharePoint].start"),
                     "2026-02-18T00:00:00Z");
    mf_arena_fini(&ar);
    mf_agg_destroy(a);
    mf_report_tables_destroy(t);
}
END_TEST

/* Markup in a record stays text in every format. */
START_TEST(rv_record_values_are_escaped)
{
    struct mf_report_tables *t = builtin_tables();
    struct mf_agg *a = mf_agg_new(t, NULL);
    struct mf_arena ar;
    struct mf_buf html, md, js;
    struct mf_jval *doc;
    struct mf_report_rec r = rec(DAY(D0), "<script>alert(1)</script>",
                                 "Set-AdminAuditLogConfig</td><script>x()</script>",
                                 "Audit.Exchange");

    r.object = "\"><img src=x onerror=alert(2)>";
    r.user_agent = "'><svg onload=alert(3)>";
    r.tenant = "<b>t</b>";
    tag(&r, "monitor.ual_disabled", MF_RAREA_MONITOR, 5);
    mf_agg_add(a, &r);
    mf_arena_init(&ar, 65536);
    doc = review(&ar, a, t, D0, D0);
    mf_buf_init(&html, 0);
    mf_buf_init(&md, 0);
    mf_buf_init(&js, 0);
    ck_assert_int_eq(mf_report_render(&html, doc, MF_RFMT_HTML), 0);
    ck_assert_int_eq(mf_report_render(&md, doc, MF_RFMT_MD), 0);
    ck_assert_int_eq(mf_report_render(&js, doc, MF_RFMT_JSON), 0);
    ck_assert_ptr_null(strcasestr(html.data, "<script"));
    ck_assert_ptr_null(strcasestr(html.data, "<img"));
    ck_assert_ptr_null(strcasestr(html.data, "<svg onload"));
    ck_assert_ptr_null(strcasestr(html.data, "<b>t"));
    ck_assert_ptr_nonnull(strstr(html.data, "&lt;script&gt;alert(1)&lt;/script&gt;"));
    ck_assert_ptr_nonnull(strstr(html.data, "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"));
    ck_assert_ptr_nonnull(strstr(html.data, "&#39;&gt;&lt;svg onload=alert(3)&gt;"));
    ck_assert_ptr_null(strcasestr(md.data, "<script"));
    ck_assert_ptr_nonnull(strstr(md.data, "&lt;script&gt;alert\\(1\\)&lt;/script&gt;"));
    ck_assert_ptr_nonnull(strstr(js.data, "\"actor\":\"<script>alert(1)</script>\""));
    /* self-contained: nothing to fetch */
    ck_assert_ptr_null(strcasestr(html.data, "src=\""));
    ck_assert_ptr_null(strcasestr(html.data, "url("));
    ck_assert_ptr_null(strcasestr(html.data, "http://"));
    ck_assert_ptr_null(strcasestr(html.data, "https://"));
    ck_assert_ptr_null(strcasestr(html.data, "@import"));
    ck_assert_ptr_nonnull(strstr(html.data, "<svg"));
    mf_buf_fini(&html);
    mf_buf_fini(&md);
    mf_buf_fini(&js);
    mf_arena_fini(&ar);
    mf_agg_destroy(a);
    mf_report_tables_destroy(t);
}
END_TEST

START_TEST(rv_days)
{
    int64_t d;
    char buf[16];

    ck_assert_int_eq(mf_report_parse_day("2026-02-17", &d), 0);
    ck_assert_int_eq(d, D0);
    mf_report_fmt_day(d, buf, sizeof(buf));
    ck_assert_str_eq(buf, "2026-02-17");
    ck_assert_int_eq(mf_report_parse_day("2024-02-29", &d), 0);
    ck_assert_int_eq(mf_report_parse_day("2026-02-29", &d), -1);
    ck_assert_int_eq(mf_report_parse_day("2026-13-01", &d), -1);
    ck_assert_int_eq(mf_report_parse_day("2026-1-01", &d), -1);
    ck_assert_int_eq(mf_report_parse_day("2026-01-01x", &d), -1);
    ck_assert_int_eq(mf_report_parse_day("", &d), -1);
}
END_TEST

/* ---- the agent's adapter ----------------------------------------------------------- */

START_TEST(ad_facts_from_normalizer)
{
    static const struct {
        const char *json;
        uint32_t facts;         /* exactly these */
        const char *object;
    } cases[] = {
        {"{\"Id\":\"1\",\"CreationTime\":\"2026-02-17T10:00:00\",\"Operation\":\"UserLoggedIn\","
         "\"RecordType\":15,\"ResultStatus\":\"Success\",\"UserId\":\"a@x\","
         "\"ObjectId\":\"app\",\"ExtendedProperties\":[{\"Name\":\"AuthenticationRequirement\","
         "\"Value\":\"singleFactorAuthentication\"}],\"DeviceProperties\":[{\"Name\":"
         "\"IsCompliantAndManaged\",\"Value\":\"False\"}]}",
         1u << MF_FACT_SIGNIN | 1u << MF_FACT_SIGNIN_OK | 1u << MF_FACT_SIGNIN_SINGLE_FACTOR |
         1u << MF_FACT_SIGNIN_DEVICE_KNOWN | 1u << MF_FACT_SIGNIN_UNMANAGED, "app"},
        {"{\"Id\":\"2\",\"CreationTime\":\"2026-02-17T10:00:00\",\"Operation\":\"UserLoginFailed\","
         "\"RecordType\":15,\"ResultStatus\":\"Failed\",\"UserId\":\"a@x\",\"ErrorNumber\":\"500121\","
         "\"DeviceProperties\":[{\"Name\":\"IsCompliant\",\"Value\":\"True\"}]}",
         1u << MF_FACT_SIGNIN | 1u << MF_FACT_SIGNIN_FAILED | 1u << MF_FACT_SIGNIN_MULTI_FACTOR |
         1u << MF_FACT_MFA_DENIED | 1u << MF_FACT_SIGNIN_DEVICE_KNOWN, NULL},
        {"{\"Id\":\"3\",\"CreationTime\":\"2026-02-17T10:00:00\",\"Operation\":\"MailboxLogin\","
         "\"RecordType\":2,\"UserId\":\"a@x\",\"ClientInfoString\":\"Client=POP3/IMAP4;Protocol=POP3\","
         "\"MailboxOwnerUPN\":\"a@x\"}",
         1u << MF_FACT_SIGNIN_LEGACY, "a@x"},
        {"{\"Id\":\"4\",\"CreationTime\":\"2026-02-17T10:00:00\",\"Operation\":\"Delete user.\","
         "\"RecordType\":8,\"UserId\":\"admin@x\",\"ObjectId\":\"guest_gmail.com#EXT#@x\"}",
         1u << MF_FACT_GUEST_REMOVED, "guest_gmail.com#EXT#@x"},
        {"{\"Id\":\"5\",\"CreationTime\":\"2026-02-17T10:00:00\",\"Operation\":\"FileDownloaded\","
         "\"RecordType\":6,\"UserId\":\"a@x\",\"SourceFileName\":\"<script>.docx\"}",
         1u << MF_FACT_FILE_DOWNLOAD, "<script>.docx"},
        {"{\"Id\":\"6\",\"CreationTime\":\"2026-02-17T10:00:00\",\"Operation\":\"AlertUpdated\","
         "\"RecordType\":40,\"UserId\":\"SecurityComplianceAlerts\"}",
         1u << MF_FACT_ALERT_FOLLOWUP, NULL},
    };
    struct mf_err nerr;
    struct mf_normalizer *n = mf_normalizer_new(NULL, &nerr);
    struct mf_nctx c;
    struct mf_event ev;

    ck_assert_ptr_nonnull(n);
    mf_nctx_init(&c);
    mf_event_init(&ev, 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mf_norm_in in = {.data = cases[i].json, .len = strlen(cases[i].json)};
        struct mf_report_rec r;

        ck_assert_int_eq(mf_normalize_event(n, &c, &in, &ev), MF_OK);
        ev.tenant = "contoso";
        mf_report_rec_fill(&r, &ev, &c.rec, NULL);
        ck_assert_msg(r.facts == cases[i].facts, "case %zu: facts %#x, want %#x", i, r.facts,
                      cases[i].facts);
        ck_assert_str_eq(r.tenant, "contoso");
        ck_assert_int_eq(r.time_ms, DAY(D0) + 36000000);
        if (cases[i].object)
            ck_assert_str_eq(r.object, cases[i].object);
        ck_assert_int_eq((int)r.n_tags, (int)ev.n_tags);
    }
    /* the gap record of the collector carries its range */
    {
        const char *g = "{\"Id\":\"g\",\"CreationTime\":\"2026-02-17T10:00:00\",\"Operation\":"
                        "\"CollectionGap\",\"Workload\":\"m365fwd\",\"RecordType\":-1,"
                        "\"UserType\":4,\"UserId\":\"m365fwd\",\"OrganizationId\":\"t\","
                        "\"ResultStatus\":\"Failed\",\"ContentType\":\"Audit.Exchange\","
                        "\"GapStart\":\"2026-02-01T00:00:00\",\"GapEnd\":\"2026-02-02T00:00:00\","
                        "\"Reason\":\"too old\"}";
        struct mf_norm_in in = {.data = g, .len = strlen(g)};
        struct mf_report_rec r;

        ck_assert_int_eq(mf_normalize_event(n, &c, &in, &ev), MF_OK);
        mf_report_rec_fill(&r, &ev, &c.rec, NULL);
        ck_assert_str_eq(r.tenant, "t");
        ck_assert_str_eq(r.gap_content_type, "Audit.Exchange");
        ck_assert_str_eq(r.gap_reason, "too old");
        ck_assert_int_eq(r.gap_end_ms - r.gap_start_ms, DAY(1));
    }
    mf_event_fini(&ev);
    mf_nctx_fini(&c);
    mf_normalizer_destroy(n);
}
END_TEST

static Suite *
report_suite(void)
{
    Suite *s = suite_create("report");
    TCase *tt = tcase_create("mf_report_tables_load()");
    TCase *ta = tcase_create("mf_agg_*()");
    TCase *tr = tcase_create("mf_rollup_*()");

    /* the write-behind test waits for the writer thread (bounded by its
     * own deadlines): not Check's default 4 s on a busy machine */
    tcase_set_timeout(tr, 60);
    TCase *tv = tcase_create("mf_review_build()");
    TCase *td = tcase_create("mf_report_rec_fill()");

    tcase_add_test(tt, rt_builtin_against_real_catalogue);
    tcase_add_test(tt, rt_errors_name_file_and_line);
    tcase_add_test(tt, rt_check_without_action);
    tcase_add_test(tt, rt_expression_values);
    tcase_add_test(ta, ag_top_lists_stay_bounded_and_keep_the_heavy_hitter);
    tcase_add_test(ta, ag_merge_equals_single);
    tcase_add_checked_fixture(tr, setup, teardown);
    tcase_add_test(tr, ru_round_trip_commit_discard);
    tcase_add_test(tr, ru_bounded_by_keys_and_retention);
    tcase_add_test(tr, ru_write_behind);
    tcase_add_test(tr, ru_open_errors);
    tcase_add_test(tv, rv_scores_checks_plan_coverage);
    tcase_add_test(tv, rv_record_values_are_escaped);
    tcase_add_test(tv, rv_days);
    tcase_add_test(td, ad_facts_from_normalizer);
    suite_add_tcase(s, tt);
    suite_add_tcase(s, ta);
    suite_add_tcase(s, tr);
    suite_add_tcase(s, tv);
    suite_add_tcase(s, td);
    return s;
}

int
main(void)
{
    return mf_test_run(report_suite());
}
