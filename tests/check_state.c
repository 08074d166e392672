/* check_state.c - durable collection state. */
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "state.h"
#include "test_common.h"

static char dir[256];

static void
setup(void)
{
    mf_test_mkdtemp(dir, sizeof(dir), "mf-state");
}

static void
teardown(void)
{
    mf_test_rmtree(dir);
}

static struct mf_state *
open_ok(void)
{
    struct mf_err err;
    struct mf_state *st = mf_state_open(dir, &err);

    ck_assert_msg(st != NULL, "%s", err.msg);
    return st;
}

START_TEST(mso_stream_defaults_and_checkpoint_forward_only)
{
    struct mf_state *st = open_ok();
    struct mf_stream_state s;

    ck_assert_int_eq(mf_state_stream_get(st, "t1", "Audit.Exchange", 1000, &s), 0);
    ck_assert_int_eq(s.checkpoint_ms, 1000);
    ck_assert_int_eq(s.last_poll_ms, 0);
    /* a second get does not reset it */
    ck_assert_int_eq(mf_state_checkpoint(st, "t1", "Audit.Exchange", 5000), 0);
    ck_assert_int_eq(mf_state_stream_get(st, "t1", "Audit.Exchange", 1, &s), 0);
    ck_assert_int_eq(s.checkpoint_ms, 5000);
    /* never backwards */
    ck_assert_int_eq(mf_state_checkpoint(st, "t1", "Audit.Exchange", 4000), 1);
    ck_assert_int_eq(mf_state_stream_get(st, "t1", "Audit.Exchange", 1, &s), 0);
    ck_assert_int_eq(s.checkpoint_ms, 5000);
    ck_assert_int_eq(mf_state_poll_done(st, "t1", "Audit.Exchange", 6000, NULL), 0);
    ck_assert_int_eq(mf_state_poll_done(st, "t1", "Audit.Exchange", 7000, "AF429 throttled"), 0);
    ck_assert_int_eq(mf_state_stream_get(st, "t1", "Audit.Exchange", 1, &s), 0);
    ck_assert_int_eq(s.last_poll_ms, 7000);
    ck_assert_int_eq(s.last_success_ms, 6000);
    ck_assert_int_eq(s.last_error_ms, 7000);
    ck_assert_str_eq(s.last_error, "AF429 throttled");
    mf_state_close(st);
}
END_TEST

START_TEST(mso_blob_commit_survives_reopen)
{
    struct mf_state *st = open_ok();
    const char *ids[] = {"id-1", "id-2", NULL, "id-3"};
    struct mf_stream_state s;

    mf_state_stream_get(st, "t1", "Audit.General", 0, &s);
    ck_assert_int_eq(mf_state_blob_delivered(st, "t1", "Audit.General", "b$1"), 0);
    ck_assert_int_eq(mf_state_blob_begin(st, "t1", "Audit.General", "b$1", 150), 0);
    /* an interrupted attempt leaves the mark: the next begin reports it */
    ck_assert_int_eq(mf_state_blob_begin(st, "t1", "Audit.General", "b$1", 160), 1);
    ck_assert_int_eq(mf_state_commit_blob(st, "t1", "Audit.General", "b$1", 100, ids, 4, 2,
                                          3, 200), 0);
    /* the commit cleared it */
    ck_assert_int_eq(mf_state_blob_begin(st, "t1", "Audit.General", "b$2", 210), 0);
    /* each interrupted attempt counts (kill -9 twice in one blob: its
     * records may be downstream three times) until the blob ends */
    ck_assert_int_eq(mf_state_blob_begin(st, "t1", "Audit.General", "b$2", 220), 1);
    ck_assert_int_eq(mf_state_blob_begin(st, "t1", "Audit.General", "b$2", 230), 2);
    ck_assert_int_eq(mf_state_blob_end(st, "t1", "Audit.General", "b$2"), 0);
    ck_assert_int_eq(mf_state_blob_begin(st, "t1", "Audit.General", "b$2", 240), 0);
    ck_assert_int_eq(mf_state_blob_begin(st, "t1", "Audit.General", "b$2", 250), 1);
    mf_state_close(st);

    st = open_ok();
    ck_assert_int_eq(mf_state_blob_delivered(st, "t1", "Audit.General", "b$1"), 1);
    ck_assert_int_eq(mf_state_blob_delivered(st, "t1", "Audit.Exchange", "b$1"), 0);
    ck_assert_int_eq(mf_state_blob_delivered(st, "t2", "Audit.General", "b$1"), 0);
    ck_assert_int_eq(mf_state_id_seen(st, "t1", "id-2"), 1);
    ck_assert_int_eq(mf_state_id_seen(st, "t2", "id-2"), 0);
    ck_assert_int_eq(mf_state_id_seen(st, "t1", "id-9"), 0);
    mf_state_stream_get(st, "t1", "Audit.General", 0, &s);
    ck_assert_int_eq(s.blobs_delivered, 1);
    ck_assert_int_eq(s.records_delivered, 4);
    ck_assert_int_eq(s.duplicates, 2);
    ck_assert_int_eq(s.redelivered, 3);
    /* pruning forgets old blobs and ids */
    ck_assert_int_eq(mf_state_prune(st, 150, 250), 0);
    ck_assert_int_eq(mf_state_blob_delivered(st, "t1", "Audit.General", "b$1"), 0);
    ck_assert_int_eq(mf_state_id_seen(st, "t1", "id-1"), 0);
    mf_state_close(st);
}
END_TEST

static int
count_streams(const struct mf_stream_state *s, void *ud)
{
    (void)s;
    (*(int *)ud)++;
    return 0;
}

START_TEST(mso_gaps_and_listing)
{
    struct mf_state *st = open_ok();
    struct mf_stream_state s;
    struct mf_gap g[4];
    int n = 0;

    mf_state_stream_get(st, "b", "DLP.All", 0, &s);
    mf_state_stream_get(st, "a", "Audit.Exchange", 0, &s);
    ck_assert_int_eq(mf_state_add_gap(st, "a", "Audit.Exchange", 300, 400, 1000), 0);
    ck_assert_int_eq(mf_state_add_gap(st, "a", "Audit.Exchange", 100, 200, 1000), 0);
    ck_assert_int_eq(mf_state_add_gap(st, "a", "Audit.Exchange", 100, 200, 1001), 0);
    ck_assert_int_eq(mf_state_gap_emitted(st, "a", "Audit.Exchange", 100), 0);
    ck_assert_int_eq(mf_state_gaps(st, "a", "Audit.Exchange", g, 4), 2);
    ck_assert_int_eq(g[0].start_ms, 100);
    ck_assert_int_eq(g[0].emitted, 1);
    ck_assert_int_eq(g[1].start_ms, 300);
    ck_assert_int_eq(g[1].emitted, 0);
    ck_assert_int_eq(mf_state_foreach_stream(st, count_streams, &n), 0);
    ck_assert_int_eq(n, 2);
    mf_state_close(st);
}
END_TEST

/* A state written by schema 1 (Ids as text) is upgraded at open: the Ids
 * it remembered are still known, the rest of it untouched. */
START_TEST(mso_schema1_upgraded)
{
    char path[300];
    sqlite3 *db;
    struct mf_state *st;
    struct mf_stream_state s;

    snprintf(path, sizeof(path), "%s/state.db", dir);
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db,
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('schema_version', '1');"
        "CREATE TABLE streams(tenant TEXT NOT NULL, content_type TEXT NOT NULL,"
        " checkpoint_ms INTEGER NOT NULL DEFAULT 0, first_ms INTEGER NOT NULL DEFAULT 0,"
        " last_poll_ms INTEGER NOT NULL DEFAULT 0, last_success_ms INTEGER NOT NULL DEFAULT 0,"
        " blobs_delivered INTEGER NOT NULL DEFAULT 0, records_delivered INTEGER NOT NULL DEFAULT 0,"
        " duplicates INTEGER NOT NULL DEFAULT 0, redelivered INTEGER NOT NULL DEFAULT 0,"
        " last_error_ms INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',"
        " PRIMARY KEY(tenant, content_type));"
        "INSERT INTO streams(tenant, content_type, checkpoint_ms) VALUES ('t1', 'Audit.Exchange', 777);"
        "CREATE TABLE records(tenant TEXT NOT NULL, id TEXT NOT NULL, seen_ms INTEGER NOT NULL,"
        " PRIMARY KEY(tenant, id)) WITHOUT ROWID;"
        "CREATE INDEX records_seen ON records(seen_ms);"
        "INSERT INTO records VALUES ('t1', 'old-1', 5), ('t1', 'old-2', 6), ('t2', 'old-3', 7);"
        "CREATE TABLE inflight(tenant TEXT NOT NULL, content_type TEXT NOT NULL,"
        " content_id TEXT NOT NULL, started_ms INTEGER NOT NULL,"
        " PRIMARY KEY(tenant, content_type, content_id)) WITHOUT ROWID;"
        "INSERT INTO inflight VALUES ('t1', 'Audit.Exchange', 'blob-x', 9);",
        NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    st = open_ok();
    ck_assert_int_eq(mf_state_id_seen(st, "t1", "old-1"), 1);
    ck_assert_int_eq(mf_state_id_seen(st, "t1", "old-2"), 1);
    ck_assert_int_eq(mf_state_id_seen(st, "t2", "old-3"), 1);
    ck_assert_int_eq(mf_state_id_seen(st, "t2", "old-1"), 0);
    ck_assert_int_eq(mf_state_stream_get(st, "t1", "Audit.Exchange", 1, &s), 0);
    ck_assert_int_eq(s.checkpoint_ms, 777);
    /* the in-flight mark moved to inflight.db and still counts */
    ck_assert_int_eq(mf_state_blob_begin(st, "t1", "Audit.Exchange", "blob-x", 10), 1);
    /* old Ids are pruned by their time like new ones */
    ck_assert_int_eq(mf_state_prune(st, 0, 6), 0);
    ck_assert_int_eq(mf_state_id_seen(st, "t1", "old-1"), 0);
    ck_assert_int_eq(mf_state_id_seen(st, "t1", "old-2"), 1);
    mf_state_close(st);
    /* reopening an upgraded state is a no-op */
    st = open_ok();
    ck_assert_int_eq(mf_state_id_seen(st, "t2", "old-3"), 1);
    mf_state_close(st);
}
END_TEST

START_TEST(mso_id_hash_separates_tenant_and_id)
{
    uint64_t a[2], b[2], c[2];

    mf_state_id_hash("ab", "c", a);
    mf_state_id_hash("a", "bc", b);
    mf_state_id_hash("ab", "c", c);
    ck_assert(a[0] != b[0] || a[1] != b[1]);
    ck_assert(a[0] == c[0] && a[1] == c[1]);
}
END_TEST

START_TEST(mso_open_errors)
{
    struct mf_err err;
    FILE *f;
    char path[300];

    ck_assert_ptr_null(mf_state_open("/proc/nonexistent/x", &err));
    ck_assert(strstr(err.msg, "cannot create") != NULL);
    /* a corrupt database file is refused with its path, not crashed on */
    snprintf(path, sizeof(path), "%s/state.db", dir);
    f = fopen(path, "w");
    fputs("this is not a database, just some bytes that are long enough to matter....", f);
    fclose(f);
    ck_assert_ptr_null(mf_state_open(dir, &err));
    ck_assert_msg(strstr(err.msg, "state.db") != NULL, "%s", err.msg);
}
END_TEST

static void
write_text(const char *name, const char *text)
{
    char p[400];
    FILE *f;

    snprintf(p, sizeof(p), "%s/%s", dir, name);
    f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static bool
exists_in_dir(const char *prefix)
{
    char cmd[400];

    snprintf(cmd, sizeof(cmd), "ls %s | grep -q '^%s'", dir, prefix);
    return system(cmd) == 0;
}

START_TEST(msl_exclusive_and_names_holder)
{
    char err[512], pid[32];
    struct mf_state_lock *a, *b;

    ck_assert_int_eq(mf_state_lock_holder(dir), 0);
    a = mf_state_lock(dir, err, sizeof(err));
    ck_assert_msg(a != NULL, "%s", err);
    /* an open-file-description lock: a second one conflicts even from
     * this process (as it does from another agent) */
    b = mf_state_lock(dir, err, sizeof(err));
    ck_assert_ptr_null(b);
    snprintf(pid, sizeof(pid), "PID %ld", (long)getpid());
    ck_assert_msg(strstr(err, dir) && strstr(err, pid), "%s", err);
    ck_assert_int_eq(mf_state_lock_holder(dir), getpid());
    mf_state_unlock(a);
    ck_assert_int_eq(mf_state_lock_holder(dir), 0);
    b = mf_state_lock(dir, err, sizeof(err));
    ck_assert_msg(b != NULL, "%s", err);
    mf_state_unlock(b);
}
END_TEST

START_TEST(mso_origin_new_then_reset)
{
    struct mf_state *st = open_ok();
    struct mf_state_origin o;
    char p[400];

    ck_assert_int_eq(mf_state_origin(st, &o), 0);
    ck_assert(o.created_now);
    ck_assert(!o.reset);
    ck_assert_int_gt(o.created_ms, 0);
    mf_state_close(st);
    st = open_ok();
    ck_assert_int_eq(mf_state_origin(st, &o), 0);
    ck_assert(!o.created_now);
    mf_state_close(st);
    /* state.db gone from a directory used before (inflight.db is there) */
    snprintf(p, sizeof(p), "%s/state.db", dir);
    ck_assert_int_eq(unlink(p), 0);
    st = open_ok();
    ck_assert_int_eq(mf_state_origin(st, &o), 0);
    ck_assert(o.created_now && o.reset);
    ck_assert_int_gt(o.reset_ms, 0);
    ck_assert_ptr_nonnull(strstr(o.reset_reason, "state.db was missing"));
    mf_state_close(st);
}
END_TEST

START_TEST(mso_inflight_damaged_set_aside)
{
    struct mf_state *st = open_ok();
    struct mf_state_origin o;
    char v[256], p[400];

    mf_state_close(st);
    write_text("inflight.db", "this is not a database, this is not a database, "
               "this is not a database, this is not a database\n");
    snprintf(p, sizeof(p), "%s/inflight.db-wal", dir);
    unlink(p);
    st = open_ok();
    ck_assert_int_eq(mf_state_origin(st, &o), 0);
    ck_assert_ptr_nonnull(strstr(o.inflight_note, "inflight.db was damaged"));
    ck_assert(exists_in_dir("inflight.db.damaged-"));
    ck_assert_int_eq(mf_state_meta_get(st, "inflight_reset_reason", v, sizeof(v)), 1);
    /* the marks work again */
    ck_assert_int_eq(mf_state_blob_begin(st, "t", "c", "b1", 1), 0);
    ck_assert_int_eq(mf_state_blob_begin(st, "t", "c", "b1", 2), 1);
    mf_state_close(st);
}
END_TEST

START_TEST(msm_meta)
{
    struct mf_state *st = open_ok();
    char v[16];

    ck_assert_int_eq(mf_state_meta_get(st, "k", v, sizeof(v)), 0);
    ck_assert_int_eq(mf_state_meta_set(st, "k", "first"), 0);
    ck_assert_int_eq(mf_state_meta_set(st, "k", "second value, cut"), 0);
    ck_assert_int_eq(mf_state_meta_get(st, "k", v, sizeof(v)), 1);
    ck_assert_str_eq(v, "second value, c");
    mf_state_close(st);
}
END_TEST

static Suite *
state_suite(void)
{
    Suite *s = suite_create("state");
    TCase *tc = tcase_create("mf_state_*()");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, mso_stream_defaults_and_checkpoint_forward_only);
    tcase_add_test(tc, mso_blob_commit_survives_reopen);
    tcase_add_test(tc, mso_gaps_and_listing);
    tcase_add_test(tc, mso_open_errors);
    tcase_add_test(tc, mso_schema1_upgraded);
    tcase_add_test(tc, mso_id_hash_separates_tenant_and_id);
    tcase_add_test(tc, mso_origin_new_then_reset);
    tcase_add_test(tc, mso_inflight_damaged_set_aside);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_state_lock");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, msl_exclusive_and_names_holder);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_state_meta");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, msm_meta);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return mf_test_run(state_suite());
}
