/* check_deliver.c - the delivery stage of `run` (agent/deliver.c) and the
 * Bloom filter it uses (core/bloom.c). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bloom.h"
#include "clock.h"
#include "agent_conf.h"
#include "deliver.h"
#include "fanout.h"
#include "normalize.h"
#include "state.h"
#include "test_common.h"

#define TENANT "11111111-2222-3333-4444-555555555555"
#define CT     "Audit.Exchange"

static char dir[256], out_path[320];

struct fixture {
    struct mf_config *cfg;
    struct mf_normalizer *norm;
    struct mf_fanout fo;
    struct mf_state *st;
    struct mf_deliver *d;
    int n_done, n_ok;
};

static void
setup(void)
{
    mf_test_mkdtemp(dir, sizeof(dir), "mf-deliver");
    snprintf(out_path, sizeof(out_path), "%s/out.ndjson", dir);
}

static void
teardown(void)
{
    mf_test_rmtree(dir);
}

static void
on_done(struct mf_dl_blob *b, void *ud)
{
    struct fixture *f = ud;

    f->n_done++;
    f->n_ok += b->rc == 0;
}

/* output_path NULL: the file in dir. */
static void
fx_open(struct fixture *f, int lanes, const char *output_path, const char *horizon)
{
    char yaml[1024], err[512];
    struct mf_err cerr;
    struct mf_err nerr;
    struct mf_err serr;
    struct mf_deliver_opts o;

    memset(f, 0, sizeof(*f));
    snprintf(yaml, sizeof(yaml),
             "state_dir: %s/state\n"
             "collect:\n  dedupe_horizon: %s\n  overlap: 0s\n"
             "outputs:\n  - name: out\n    type: file\n    path: %s\n    schema: ocsf\n",
             dir, horizon, output_path ? output_path : out_path);
    f->cfg = mf_config_load("t.yaml", yaml, strlen(yaml), 0, &cerr);
    ck_assert_msg(f->cfg != NULL, "%s", cerr.msg);
    f->norm = mf_normalizer_new(&(struct mf_norm_opts){0}, &nerr);
    ck_assert_msg(f->norm != NULL, "%s", nerr.msg);
    ck_assert_int_eq(mf_fanout_open(&f->fo, f->cfg, err, sizeof(err)), 0);
    f->st = mf_state_open(f->cfg->state_dir, &serr);
    ck_assert_msg(f->st != NULL, "%s", serr.msg);
    o = (struct mf_deliver_opts){.cfg = f->cfg, .norm = f->norm, .fo = &f->fo,
                                 .state = f->st, .lanes = lanes, .done = on_done,
                                 .ud = f};
    f->d = mf_deliver_new(&o, err, sizeof(err));
    ck_assert_msg(f->d != NULL, "%s", err);
    ck_assert_int_eq(mf_deliver_lanes(f->d), lanes);
}

static void
fx_close(struct fixture *f)
{
    mf_deliver_destroy(f->d);
    mf_fanout_close(&f->fo);
    mf_state_close(f->st);
    mf_normalizer_destroy(f->norm);
    mf_config_destroy(f->cfg);
}

/* A blob of n records with Ids prefix-0 .. prefix-(n-1), spooled to a
 * temporary file; truncate > 0 cuts that many bytes off its end. */
static int
spool(const char *prefix, int n, size_t truncate)
{
    char path[300], rec[512];
    FILE *f;
    int fd;
    long len;

    snprintf(path, sizeof(path), "%s/blob-XXXXXX", dir);
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    f = fdopen(dup(fd), "w");
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        snprintf(rec, sizeof(rec),
                 "%s{\"Id\":\"%s-%d\",\"CreationTime\":\"2026-11-20T10:00:00\","
                 "\"Operation\":\"MailItemsAccessed\",\"RecordType\":50,"
                 "\"UserId\":\"alice@contoso.com\",\"Workload\":\"Exchange\","
                 "\"OrganizationId\":\"" TENANT "\",\"ResultStatus\":\"Succeeded\"}",
                 i ? "," : "", prefix, i);
        fputs(rec, f);
    }
    fputc(']', f);
    fclose(f);
    len = lseek(fd, 0, SEEK_END);
    if (truncate)
        ck_assert_int_eq(ftruncate(fd, len - (long)truncate), 0);
    lseek(fd, 0, SEEK_SET);
    return fd;
}

static void
blob_init(struct mf_dl_blob *b, const char *content_id, int fd)
{
    memset(b, 0, sizeof(*b));
    b->tenant_id = TENANT;
    b->tenant_name = "contoso";
    b->content_type = CT;
    b->content_id = content_id;
    b->created_ms = 1000;
    b->fd = fd;
}

static void
drain_ok(struct fixture *f)
{
    ck_assert_int_eq(mf_deliver_drain(f->d, mf_clock_wall_ms() + 30000), 0);
    ck_assert_int_eq(mf_deliver_pending(f->d), 0);
}

/* Lines of the output holding "\"uid\":\"<id>\"" - how often record id
 * went out. */
static int
count_uid(const char *path, const char *id)
{
    char needle[200], *line = NULL;
    size_t cap = 0;
    int n = 0;
    FILE *fp = fopen(path, "r");

    if (!fp)
        return 0;
    snprintf(needle, sizeof(needle), "\"uid\":\"%s\"", id);
    while (getline(&line, &cap, fp) > 0)
        n += strstr(line, needle) != NULL;
    free(line);
    fclose(fp);
    return n;
}

static int
count_lines(const char *path)
{
    char *line = NULL;
    size_t cap = 0;
    int n = 0;
    FILE *fp = fopen(path, "r");

    if (!fp)
        return 0;
    while (getline(&line, &cap, fp) > 0)
        n++;
    free(line);
    fclose(fp);
    return n;
}

START_TEST(mdl_blobs_delivered_committed_and_remembered)
{
    struct fixture f;
    struct mf_dl_blob b[6];
    char cid[6][32];
    struct mf_stream_state ss;

    fx_open(&f, 2, NULL, "24h");
    ck_assert_int_eq(mf_state_stream_get(f.st, TENANT, CT, 0, &ss), 0);
    for (int i = 0; i < 6; i++) {
        char prefix[16];

        snprintf(cid[i], sizeof(cid[i]), "blob-%d", i);
        snprintf(prefix, sizeof(prefix), "r%d", i);
        blob_init(&b[i], cid[i], spool(prefix, 50, 0));
        mf_deliver_submit(f.d, &b[i]);
    }
    drain_ok(&f);
    ck_assert_int_eq(f.n_done, 6);
    ck_assert_int_eq(f.n_ok, 6);
    ck_assert_int_eq(count_lines(out_path), 300);
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(mf_state_blob_delivered(f.st, TENANT, CT, cid[i]), 1);
        ck_assert_int_eq(mf_state_id_seen(f.st, TENANT, "r3-49"), 1);
        close(b[i].fd);
    }
    ck_assert_int_eq(mf_state_stream_get(f.st, TENANT, CT, 0, &ss), 0);
    ck_assert_int_eq(ss.records_delivered, 300);
    ck_assert_int_eq(ss.blobs_delivered, 6);
    ck_assert_int_eq(ss.redelivered, 0);
    fx_close(&f);

    /* a new stage (a restart) knows the Ids from the state: the same
     * records in another blob are dropped as duplicates */
    fx_open(&f, 1, NULL, "24h");
    blob_init(&b[0], "blob-again", spool("r2", 50, 0));
    mf_deliver_submit(f.d, &b[0]);
    drain_ok(&f);
    ck_assert_int_eq(f.n_ok, 1);
    ck_assert_int_eq(count_lines(out_path), 300);
    ck_assert_int_eq(mf_state_stream_get(f.st, TENANT, CT, 0, &ss), 0);
    ck_assert_int_eq(ss.duplicates, 50);
    close(b[0].fd);
    fx_close(&f);
}
END_TEST

START_TEST(mdl_same_ids_in_concurrent_blobs_go_out_once)
{
    struct fixture f;
    struct mf_dl_blob b[8];
    char cid[8][32];

    /* eight blobs with the same 200 Ids on four lanes at once */
    fx_open(&f, 4, NULL, "24h");
    for (int i = 0; i < 8; i++) {
        snprintf(cid[i], sizeof(cid[i]), "dup-%d", i);
        blob_init(&b[i], cid[i], spool("same", 200, 0));
    }
    for (int i = 0; i < 8; i++)
        mf_deliver_submit(f.d, &b[i]);
    drain_ok(&f);
    ck_assert_int_eq(f.n_ok, 8);
    ck_assert_int_eq(count_lines(out_path), 200);
    ck_assert_int_eq(count_uid(out_path, "same-0"), 1);
    ck_assert_int_eq(count_uid(out_path, "same-199"), 1);
    for (int i = 0; i < 8; i++)
        close(b[i].fd);
    fx_close(&f);
}
END_TEST

START_TEST(mdl_dedupe_off_keeps_every_copy)
{
    struct fixture f;
    struct mf_dl_blob b[2];

    fx_open(&f, 2, NULL, "0s");
    blob_init(&b[0], "x-0", spool("same", 20, 0));
    blob_init(&b[1], "x-1", spool("same", 20, 0));
    mf_deliver_submit(f.d, &b[0]);
    mf_deliver_submit(f.d, &b[1]);
    drain_ok(&f);
    ck_assert_int_eq(f.n_ok, 2);
    ck_assert_int_eq(count_lines(out_path), 40);
    close(b[0].fd);
    close(b[1].fd);
    fx_close(&f);
}
END_TEST

START_TEST(mdl_truncated_blob_is_fetched_again_then_quarantined)
{
    struct fixture f;
    struct mf_dl_blob b;
    struct mf_gap gaps[4];
    char qpath[400];
    struct stat sb;

    fx_open(&f, 1, NULL, "24h");
    /* cut in the middle of the last record: nothing goes out, fetch again */
    blob_init(&b, "cut", spool("cut", 10, 40));
    mf_deliver_submit(f.d, &b);
    drain_ok(&f);
    ck_assert_int_eq(f.n_done, 1);
    ck_assert_int_eq(f.n_ok, 0);
    ck_assert_int_eq(count_lines(out_path), 0);
    ck_assert_int_eq(mf_state_blob_delivered(f.st, TENANT, CT, "cut"), 0);
    /* the last attempt: what can be read goes out, the blob is kept and a
     * gap event announces the rest */
    lseek(b.fd, 0, SEEK_SET);
    b.last_attempt = true;
    mf_deliver_submit(f.d, &b);
    drain_ok(&f);
    ck_assert_int_eq(f.n_ok, 1);
    ck_assert_int_eq(count_uid(out_path, "cut-0"), 1);
    ck_assert_int_eq(count_uid(out_path, "cut-8"), 1);
    ck_assert_int_eq(count_uid(out_path, "cut-9"), 0);
    ck_assert_int_eq(mf_state_blob_delivered(f.st, TENANT, CT, "cut"), 1);
    ck_assert_int_eq(mf_state_gaps(f.st, TENANT, CT, gaps, 4), 1);
    ck_assert_int_eq(gaps[0].emitted, 1);
    snprintf(qpath, sizeof(qpath), "%s/state/quarantine/cut.json", dir);
    ck_assert_int_eq(stat(qpath, &sb), 0);
    ck_assert_int_eq(count_lines(out_path), 10);     /* 9 records + the gap */
    close(b.fd);
    fx_close(&f);
}
END_TEST

START_TEST(mdl_output_failure_commits_nothing)
{
    struct fixture f;
    struct mf_dl_blob b[3];
    struct mf_stream_state ss;

    /* /dev/full takes the open and refuses every write */
    fx_open(&f, 2, "/dev/full", "24h");
    for (int i = 0; i < 3; i++) {
        static char cid[3][16];

        snprintf(cid[i], sizeof(cid[i]), "full-%d", i);
        blob_init(&b[i], cid[i], spool(cid[i], 400, 0));
        mf_deliver_submit(f.d, &b[i]);
    }
    drain_ok(&f);
    ck_assert_int_eq(f.n_done, 3);
    ck_assert_int_eq(f.n_ok, 0);
    ck_assert_int_eq(mf_deliver_flush(f.d), 0);     /* nothing new since */
    ck_assert_int_eq(mf_state_stream_get(f.st, TENANT, CT, 0, &ss), 0);
    ck_assert_int_eq(ss.blobs_delivered, 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(mf_state_blob_delivered(f.st, TENANT, CT, b[i].content_id), 0);
        ck_assert_int_eq(mf_state_id_seen(f.st, TENANT, "full-1-0"), 0);
        close(b[i].fd);
    }
    fx_close(&f);
}
END_TEST

START_TEST(mdl_interrupted_blob_counts_as_redelivered)
{
    struct fixture f;
    struct mf_dl_blob b;
    struct mf_stream_state ss;

    fx_open(&f, 1, NULL, "24h");
    ck_assert_int_eq(mf_state_stream_get(f.st, TENANT, CT, 0, &ss), 0);
    /* a mark left by an attempt that never committed (a kill -9) */
    ck_assert_int_eq(mf_state_blob_begin(f.st, TENANT, CT, "again", 5), 0);
    blob_init(&b, "again", spool("ag", 30, 0));
    mf_deliver_submit(f.d, &b);
    drain_ok(&f);
    ck_assert_int_eq(f.n_ok, 1);
    ck_assert_int_eq(mf_state_stream_get(f.st, TENANT, CT, 0, &ss), 0);
    ck_assert_int_eq(ss.redelivered, 30);
    /* the mark is gone with the commit */
    ck_assert_int_eq(mf_state_blob_begin(f.st, TENANT, CT, "again", 6), 0);
    close(b.fd);
    fx_close(&f);
}
END_TEST

START_TEST(mdl_gap_event_goes_out_and_is_recorded)
{
    struct fixture f;
    struct mf_gap gaps[2];

    fx_open(&f, 1, NULL, "24h");
    ck_assert_int_eq(mf_deliver_gap(f.d, TENANT, "contoso", CT, 1000, 90000000,
                                    "older than the retention"), 0);
    ck_assert_int_eq(count_lines(out_path), 1);
    ck_assert_int_eq(mf_state_gaps(f.st, TENANT, CT, gaps, 2), 1);
    ck_assert_int_eq(gaps[0].start_ms, 1000);
    ck_assert_int_eq(gaps[0].emitted, 1);
    fx_close(&f);
}
END_TEST

START_TEST(mbl_no_false_negatives_few_false_positives)
{
    struct mf_bloom b;
    int fp = 0;

    mf_bloom_init(&b, 20000);
    for (uint64_t i = 0; i < 20000; i++)
        mf_bloom_add(&b, i * 0x9e3779b97f4a7c15ULL);
    ck_assert(!mf_bloom_full(&b));
    for (uint64_t i = 0; i < 20000; i++)
        ck_assert(mf_bloom_test(&b, i * 0x9e3779b97f4a7c15ULL));
    for (uint64_t i = 0; i < 100000; i++)
        fp += mf_bloom_test(&b, (i + 1000000) * 0xff51afd7ed558ccdULL);
    /* 10 bits and 7 probes per key: about 1% at capacity */
    ck_assert_int_lt(fp, 2500);
    mf_bloom_add(&b, 1);
    for (int i = 0; i < 20000; i++)
        mf_bloom_add(&b, (uint64_t)i);
    ck_assert(mf_bloom_full(&b));
    mf_bloom_fini(&b);
}
END_TEST

static Suite *
suite(void)
{
    Suite *s = suite_create("deliver");
    TCase *tc = tcase_create("deliver");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, mdl_blobs_delivered_committed_and_remembered);
    tcase_add_test(tc, mdl_same_ids_in_concurrent_blobs_go_out_once);
    tcase_add_test(tc, mdl_dedupe_off_keeps_every_copy);
    tcase_add_test(tc, mdl_truncated_blob_is_fetched_again_then_quarantined);
    tcase_add_test(tc, mdl_output_failure_commits_nothing);
    tcase_add_test(tc, mdl_interrupted_blob_counts_as_redelivered);
    tcase_add_test(tc, mdl_gap_event_goes_out_and_is_recorded);
    tcase_add_test(tc, mbl_no_false_negatives_few_false_positives);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return mf_test_run(suite());
}
