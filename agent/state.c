/* state.c - SQLite-backed collection state. */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bloom.h"
#include "clock.h"
#include "mem.h"

#define STATE_SCHEMA_VERSION 2   /* 2: records keyed by a 128-bit hash */

/* Prepared statements, by index. */
enum {
    Q_STREAM_GET,
    Q_STREAM_INS,
    Q_CHECKPOINT,
    Q_POLL_DONE,
    Q_BLOB_GET,
    Q_ID_GET,
    Q_BLOB_INS,
    Q_ID_INS,
    Q_STREAM_COUNT,
    Q_GAP_INS,
    Q_GAP_EMIT,
    Q_GAP_LIST,
    Q_PRUNE_BLOBS,
    Q_PRUNE_IDS,
    Q_STREAM_ALL,
    Q_INFLIGHT_GET,
    Q_INFLIGHT_INS,
    Q_INFLIGHT_DEL,
    Q_PRUNE_INFLIGHT,
    Q_CHECKPOINT_SET,
    Q_ACK_INS,
    Q_ACK_LIST,
    Q_ACK_DEL,
    Q_PRUNE_ACKS,
    Q_ATTEMPT_ADD,
    Q_ATTEMPT_GET,
    Q_ATTEMPT_DEL,
    Q_PRUNE_ATTEMPTS,
    Q_COUNT
};

static const char *const sql_text[Q_COUNT] = {
    [Q_STREAM_GET] =
        "SELECT checkpoint_ms, last_poll_ms, last_success_ms, blobs_delivered,"
        " records_delivered, duplicates, last_error_ms, last_error, first_ms,"
        " redelivered FROM streams WHERE tenant = ?1 AND content_type = ?2",
    [Q_STREAM_INS] =
        "INSERT OR IGNORE INTO streams(tenant, content_type, checkpoint_ms, first_ms)"
        " VALUES (?1, ?2, ?3, ?3)",
    [Q_CHECKPOINT] =
        "UPDATE streams SET checkpoint_ms = ?3"
        " WHERE tenant = ?1 AND content_type = ?2 AND checkpoint_ms <= ?3",
    [Q_POLL_DONE] =
        "UPDATE streams SET last_poll_ms = ?3,"
        " last_success_ms = CASE WHEN ?4 IS NULL THEN ?3 ELSE last_success_ms END,"
        " last_error = CASE WHEN ?4 IS NULL THEN last_error ELSE ?4 END,"
        " last_error_ms = CASE WHEN ?4 IS NULL THEN last_error_ms ELSE ?3 END"
        " WHERE tenant = ?1 AND content_type = ?2",
    [Q_BLOB_GET] =
        "SELECT 1 FROM blobs WHERE tenant = ?1 AND content_type = ?2 AND content_id = ?3",
    [Q_ID_GET] = "SELECT 1 FROM records WHERE h1 = ?1 AND h2 = ?2",
    [Q_BLOB_INS] =
        "INSERT OR IGNORE INTO blobs(tenant, content_type, content_id,"
        " content_created_ms, records, delivered_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [Q_ID_INS] = "INSERT OR REPLACE INTO records(h1, h2, seen_ms) VALUES (?1, ?2, ?3)",
    [Q_STREAM_COUNT] =
        "UPDATE streams SET blobs_delivered = blobs_delivered + 1,"
        " records_delivered = records_delivered + ?3, duplicates = duplicates + ?4,"
        " redelivered = redelivered + ?5"
        " WHERE tenant = ?1 AND content_type = ?2",
    [Q_GAP_INS] =
        "INSERT OR IGNORE INTO gaps(tenant, content_type, start_ms, end_ms,"
        " detected_ms, emitted) VALUES (?1, ?2, ?3, ?4, ?5, 0)",
    [Q_GAP_EMIT] =
        "UPDATE gaps SET emitted = 1 WHERE tenant = ?1 AND content_type = ?2"
        " AND start_ms = ?3",
    [Q_GAP_LIST] =
        "SELECT start_ms, end_ms, detected_ms, emitted FROM gaps"
        " WHERE tenant = ?1 AND content_type = ?2 ORDER BY start_ms",
    [Q_PRUNE_BLOBS] = "DELETE FROM blobs WHERE content_created_ms < ?1",
    [Q_PRUNE_IDS] = "DELETE FROM records WHERE seen_ms < ?1",
    [Q_STREAM_ALL] =
        "SELECT tenant, content_type, checkpoint_ms, last_poll_ms, last_success_ms,"
        " blobs_delivered, records_delivered, duplicates, last_error_ms, last_error,"
        " first_ms, redelivered FROM streams ORDER BY tenant, content_type",
    [Q_INFLIGHT_GET] =
        "SELECT 1 FROM fl.inflight WHERE tenant = ?1 AND content_type = ?2"
        " AND content_id = ?3",
    [Q_INFLIGHT_INS] =
        "INSERT OR REPLACE INTO fl.inflight(tenant, content_type, content_id, started_ms)"
        " VALUES (?1, ?2, ?3, ?4)",
    [Q_INFLIGHT_DEL] =
        "DELETE FROM fl.inflight WHERE tenant = ?1 AND content_type = ?2"
        " AND content_id = ?3",
    [Q_PRUNE_INFLIGHT] = "DELETE FROM fl.inflight WHERE started_ms < ?1",
    [Q_CHECKPOINT_SET] =
        "UPDATE streams SET checkpoint_ms = ?3 WHERE tenant = ?1 AND content_type = ?2",
    [Q_ACK_INS] =
        "INSERT OR REPLACE INTO fl.acks(tenant, content_type, content_id, output, acked_ms)"
        " VALUES (?1, ?2, ?3, ?4, ?5)",
    [Q_ACK_LIST] =
        "SELECT output FROM fl.acks WHERE tenant = ?1 AND content_type = ?2"
        " AND content_id = ?3",
    [Q_ACK_DEL] =
        "DELETE FROM fl.acks WHERE tenant = ?1 AND content_type = ?2 AND content_id = ?3",
    [Q_PRUNE_ACKS] = "DELETE FROM fl.acks WHERE acked_ms < ?1",
    [Q_ATTEMPT_ADD] =
        "INSERT INTO fl.attempts(tenant, content_type, content_id, n, started_ms)"
        " VALUES (?1, ?2, ?3, 1, ?4) ON CONFLICT(tenant, content_type, content_id)"
        " DO UPDATE SET n = n + 1",
    [Q_ATTEMPT_GET] =
        "SELECT n FROM fl.attempts WHERE tenant = ?1 AND content_type = ?2"
        " AND content_id = ?3",
    [Q_ATTEMPT_DEL] =
        "DELETE FROM fl.attempts WHERE tenant = ?1 AND content_type = ?2"
        " AND content_id = ?3",
    [Q_PRUNE_ATTEMPTS] = "DELETE FROM fl.attempts WHERE started_ms < ?1",
};

/* Record Ids remembered for dedupe: a 128-bit hash of (tenant, Id) as two
 * integers, a third of the size of the text and as many times fewer pages
 * touched per commit (Ids are random GUIDs). */
#define RECORDS_SQL(name)                                                   \
    "CREATE TABLE IF NOT EXISTS " name "("                                  \
    " h1 INTEGER NOT NULL, h2 INTEGER NOT NULL, seen_ms INTEGER NOT NULL,"  \
    " PRIMARY KEY(h1, h2)) WITHOUT ROWID;"

static const char schema_sql[] =
    "PRAGMA journal_mode = WAL;"
    "PRAGMA synchronous = FULL;"
    "PRAGMA cache_size = -8192;"     /* KiB: the Id index of a busy day */
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS streams("
    " tenant TEXT NOT NULL, content_type TEXT NOT NULL,"
    " checkpoint_ms INTEGER NOT NULL DEFAULT 0,"
    " first_ms INTEGER NOT NULL DEFAULT 0,"
    " last_poll_ms INTEGER NOT NULL DEFAULT 0,"
    " last_success_ms INTEGER NOT NULL DEFAULT 0,"
    " blobs_delivered INTEGER NOT NULL DEFAULT 0,"
    " records_delivered INTEGER NOT NULL DEFAULT 0,"
    " duplicates INTEGER NOT NULL DEFAULT 0,"
    " redelivered INTEGER NOT NULL DEFAULT 0,"
    " last_error_ms INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT NOT NULL DEFAULT '',"
    " PRIMARY KEY(tenant, content_type));"
    "CREATE TABLE IF NOT EXISTS blobs("
    " tenant TEXT NOT NULL, content_type TEXT NOT NULL, content_id TEXT NOT NULL,"
    " content_created_ms INTEGER NOT NULL, records INTEGER NOT NULL,"
    " delivered_ms INTEGER NOT NULL,"
    " PRIMARY KEY(tenant, content_type, content_id)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS blobs_created ON blobs(content_created_ms);"
    RECORDS_SQL("records")
    "CREATE INDEX IF NOT EXISTS records_seen ON records(seen_ms);"
    "CREATE TABLE IF NOT EXISTS gaps("
    " tenant TEXT NOT NULL, content_type TEXT NOT NULL, start_ms INTEGER NOT NULL,"
    " end_ms INTEGER NOT NULL, detected_ms INTEGER NOT NULL, emitted INTEGER NOT NULL,"
    " PRIMARY KEY(tenant, content_type, start_ms));"
    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '2');";

/* In-flight marks live in a database of their own (inflight.db, attached
 * as "fl"): SQLite locks per file, so marking a blob before its first
 * record goes out never waits for a commit of many Ids in state.db. A
 * mark only has to survive the process (kill -9), not a power cut, so its
 * file is not synced on every write. Schema 1 kept them in state.db: they
 * move over with its upgrade. */
static const char inflight_sql[] =
    "PRAGMA fl.journal_mode = WAL;"
    "PRAGMA fl.synchronous = NORMAL;"
    "CREATE TABLE IF NOT EXISTS fl.inflight("
    " tenant TEXT NOT NULL, content_type TEXT NOT NULL, content_id TEXT NOT NULL,"
    " started_ms INTEGER NOT NULL,"
    " PRIMARY KEY(tenant, content_type, content_id)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS fl.acks("
    " tenant TEXT NOT NULL, content_type TEXT NOT NULL, content_id TEXT NOT NULL,"
    " output TEXT NOT NULL, acked_ms INTEGER NOT NULL,"
    " PRIMARY KEY(tenant, content_type, content_id, output)) WITHOUT ROWID;"
    /* interrupted attempts of a blob still in flight (each may have left
     * all its records downstream: status counts them per attempt) */
    "CREATE TABLE IF NOT EXISTS fl.attempts("
    " tenant TEXT NOT NULL, content_type TEXT NOT NULL, content_id TEXT NOT NULL,"
    " n INTEGER NOT NULL, started_ms INTEGER NOT NULL,"
    " PRIMARY KEY(tenant, content_type, content_id)) WITHOUT ROWID;";

struct mf_state {
    sqlite3 *db;
    sqlite3_stmt *q[Q_COUNT];
    bool write_txn;              /* holds wmu until mf_state_txn_end() */
    bool created_now;            /* state.db made by this open */
    char inflight_note[200];     /* inflight.db set aside by this open */
    char errmsg[256];
};

/* One writer at a time among this process's connections (the collector's
 * and its delivery threads'): they queue on this lock instead of meeting
 * SQLITE_BUSY, whose handler sleeps up to 100 ms per try. Recursive: a
 * transaction holds it across the statements inside. */
static pthread_mutex_t wmu = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static pthread_mutex_t fmu = PTHREAD_MUTEX_INITIALIZER;     /* inflight.db */

static int
fail(struct mf_state *st, const char *what)
{
    snprintf(st->errmsg, sizeof(st->errmsg), "state: %s: %s", what,
             sqlite3_errmsg(st->db));
    return -1;
}

const char *
mf_state_errmsg(struct mf_state *st)
{
    return st->errmsg;
}

void
mf_state_id_hash(const char *tenant, const char *id, uint64_t h[2])
{
    uint64_t a = 0xcbf29ce484222325ULL, b = 0x9e3779b97f4a7c15ULL;
    const char *parts[2] = {tenant, id};

    for (int k = 0; k < 2; k++) {
        for (const unsigned char *p = (const unsigned char *)parts[k]; *p; p++) {
            a = (a ^ *p) * 0x100000001b3ULL;
            b = (b + *p) * 0xff51afd7ed558ccdULL;
            b ^= b >> 29;
        }
        a = (a ^ 0x1f) * 0x100000001b3ULL;      /* separator */
        b = (b + 0x1f) * 0xff51afd7ed558ccdULL;
    }
    h[0] = mf_mix64(a);
    h[1] = mf_mix64(b ^ (a << 1));
}

/* Schema 1 kept (tenant, Id) as text and the in-flight marks in state.db:
 * rewrite the table and move the marks, once. */
static int
migrate_v1(sqlite3 *db)
{
    sqlite3_stmt *rd = NULL, *wr = NULL;
    int rc;

    if (sqlite3_exec(db, "BEGIN;" RECORDS_SQL("records_v2"), NULL, NULL, NULL) != SQLITE_OK)
        return -1;
    rc = sqlite3_prepare_v2(db, "SELECT tenant, id, seen_ms FROM records", -1, &rd, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO records_v2 VALUES (?1, ?2, ?3)",
                                -1, &wr, NULL);
    while (rc == SQLITE_OK && sqlite3_step(rd) == SQLITE_ROW) {
        uint64_t h[2];
        const char *t = (const char *)sqlite3_column_text(rd, 0);
        const char *id = (const char *)sqlite3_column_text(rd, 1);

        mf_state_id_hash(t ? t : "", id ? id : "", h);
        sqlite3_bind_int64(wr, 1, (sqlite3_int64)h[0]);
        sqlite3_bind_int64(wr, 2, (sqlite3_int64)h[1]);
        sqlite3_bind_int64(wr, 3, sqlite3_column_int64(rd, 2));
        if (sqlite3_step(wr) != SQLITE_DONE)
            rc = SQLITE_ERROR;
        sqlite3_reset(wr);
    }
    sqlite3_finalize(rd);
    sqlite3_finalize(wr);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db,
                          "DROP TABLE records;"
                          "ALTER TABLE records_v2 RENAME TO records;"
                          "INSERT OR IGNORE INTO fl.inflight SELECT * FROM main.inflight;"
                          "DROP TABLE main.inflight;"
                          "CREATE INDEX records_seen ON records(seen_ms);"
                          "UPDATE meta SET value = '2' WHERE key = 'schema_version';"
                          "COMMIT;", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

static int
schema_version(sqlite3 *db)
{
    sqlite3_stmt *ver = NULL;
    int v = -1;

    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='schema_version'", -1,
                           &ver, NULL) == SQLITE_OK &&
        sqlite3_step(ver) == SQLITE_ROW)
        v = sqlite3_column_int(ver, 0);
    sqlite3_finalize(ver);
    return v;
}

static bool
path_exists(const char *dir, const char *name)
{
    char p[4200];
    struct stat sb;

    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return stat(p, &sb) == 0;
}

static int
exec_locked(sqlite3 *db, const char *sql, char **emsg)
{
    int rc;

    pthread_mutex_lock(&wmu);
    pthread_mutex_lock(&fmu);
    rc = sqlite3_exec(db, sql, NULL, NULL, emsg);
    pthread_mutex_unlock(&fmu);
    pthread_mutex_unlock(&wmu);
    return rc;
}

/* Attach inflight.db as "fl" and make its table. A damaged file (not a
 * database, corrupt) is reported under its own name and set aside: the
 * marks only count duplicates of interrupted blobs, they never decide
 * what is delivered, so collection goes on with an empty one. */
static int
attach_inflight(struct mf_state *st, const char *dir, struct mf_err *err)
{
    char *sql = sqlite3_mprintf("ATTACH DATABASE '%q/inflight.db' AS fl", dir);
    char *emsg = NULL;
    int rc = exec_locked(st->db, sql, &emsg);

    sqlite3_free(sql);
    if (rc == SQLITE_OK)
        rc = exec_locked(st->db, inflight_sql, &emsg);
    if (rc == SQLITE_OK)
        return 0;
    if ((rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT) {
        char from[4200], to[4300], why[80];
        static const char *const suffix[] = {"", "-wal", "-shm"};
        int64_t now = mf_clock_wall_ms();

        snprintf(why, sizeof(why), "%s", emsg ? emsg : sqlite3_errstr(rc));
        sqlite3_free(emsg);
        emsg = NULL;
        exec_locked(st->db, "DETACH DATABASE fl", NULL);
        for (int i = 0; i < 3; i++) {
            snprintf(from, sizeof(from), "%s/inflight.db%s", dir, suffix[i]);
            snprintf(to, sizeof(to), "%s/inflight.db.damaged-%lld%s", dir,
                     (long long)(now / 1000), suffix[i]);
            if (rename(from, to) != 0 && errno != ENOENT) {
                mf_err_set(err, "%.100s/inflight.db is damaged (%s) and cannot be set "
                           "aside: %s", dir, why, strerror(errno));
                return -1;
            }
        }
        snprintf(st->inflight_note, sizeof(st->inflight_note),
                 "inflight.db was damaged (%.60s); set aside as inflight.db.damaged-%lld, "
                 "started empty", why, (long long)(now / 1000));
        sql = sqlite3_mprintf("ATTACH DATABASE '%q/inflight.db' AS fl", dir);
        rc = exec_locked(st->db, sql, &emsg);
        sqlite3_free(sql);
        if (rc == SQLITE_OK)
            rc = exec_locked(st->db, inflight_sql, &emsg);
        if (rc == SQLITE_OK)
            return 0;
    }
    mf_err_set(err, "%.150s/inflight.db (in-flight marks): cannot open: %.80s", dir,
               emsg ? emsg : sqlite3_errstr(rc));
    sqlite3_free(emsg);
    return -1;
}

/* Record how this state began (meta): creation, a reset, a damaged
 * inflight.db set aside. */
static void
note_origin(struct mf_state *st, bool used_before)
{
    char v[32];
    int64_t now = mf_clock_wall_ms();

    snprintf(v, sizeof(v), "%lld", (long long)now);
    if (st->created_now) {
        mf_state_meta_set(st, "created_ms", v);
        if (used_before) {
            mf_state_meta_set(st, "reset_ms", v);
            mf_state_meta_set(st, "reset_reason", "state.db was missing from a state_dir "
                              "used before: every stream starts over from "
                              "collect.initial_lookback");
        }
    }
    if (st->inflight_note[0]) {
        mf_state_meta_set(st, "inflight_reset_ms", v);
        mf_state_meta_set(st, "inflight_reset_reason", st->inflight_note);
    }
}

struct mf_state *
mf_state_open(const char *dir, struct mf_err *err)
{
    struct mf_state *st;
    char path[4096];
    char *emsg = NULL;
    bool used_before;
    struct stat sb;
    int rc;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        mf_err_set(err, "state_dir %.180s: cannot create: %m", dir);
        return NULL;
    }
    if ((size_t)snprintf(path, sizeof(path), "%s/state.db", dir) >= sizeof(path)) {
        mf_err_set(err, "state_dir: path too long");
        return NULL;
    }
    st = mf_xcalloc(1, sizeof(*st));
    st->created_now = stat(path, &sb) != 0;
    used_before = path_exists(dir, "spool") || path_exists(dir, "inflight.db") ||
                  path_exists(dir, "quarantine");
    if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        mf_err_set(err, "%.180s: cannot open: %s", path,
                   st->db ? sqlite3_errmsg(st->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(st->db, 5000);
    rc = exec_locked(st->db, schema_sql, &emsg);
    if (rc != SQLITE_OK) {
        mf_err_set(err, "%.180s: cannot create the schema: %.60s", path,
                   emsg ? emsg : "?");
        sqlite3_free(emsg);
        goto fail;
    }
    if (attach_inflight(st, dir, err) != 0)
        goto fail;
    if (schema_version(st->db) == 1) {
        pthread_mutex_lock(&wmu);
        pthread_mutex_lock(&fmu);
        rc = schema_version(st->db) == 1 ? migrate_v1(st->db) : 0;
        pthread_mutex_unlock(&fmu);
        pthread_mutex_unlock(&wmu);
        if (rc != 0) {
            mf_err_set(err, "%.180s: cannot upgrade the state: %.60s",
                       path, sqlite3_errmsg(st->db));
            goto fail;
        }
    }
    if (schema_version(st->db) != STATE_SCHEMA_VERSION) {
        mf_err_set(err, "%.180s: unknown state schema version (written by a newer m365fwd?)", path);
        goto fail;
    }
    for (int i = 0; i < Q_COUNT; i++) {
        if (sqlite3_prepare_v2(st->db, sql_text[i], -1, &st->q[i], NULL) != SQLITE_OK) {
            mf_err_set(err, "%.180s: %.60s", path, sqlite3_errmsg(st->db));
            goto fail;
        }
    }
    note_origin(st, used_before);
    return st;
fail:
    mf_state_close(st);
    return NULL;
}

void
mf_state_close(struct mf_state *st)
{
    if (!st)
        return;
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(st->q[i]);
    sqlite3_close(st->db);
    free(st);
}

/* Reset and bind tenant (?1) and content type (?2). */
static sqlite3_stmt *
stmt(struct mf_state *st, int which, const char *tenant, const char *ct)
{
    sqlite3_stmt *s = st->q[which];

    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (tenant)
        sqlite3_bind_text(s, 1, tenant, -1, SQLITE_STATIC);
    if (ct)
        sqlite3_bind_text(s, 2, ct, -1, SQLITE_STATIC);
    return s;
}

static int
run_with(struct mf_state *st, sqlite3_stmt *s, const char *what, pthread_mutex_t *mu)
{
    int rc;

    pthread_mutex_lock(mu);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    pthread_mutex_unlock(mu);
    if (rc != SQLITE_DONE)
        return fail(st, what);
    return 0;
}

/* A write to state.db. */
static int
run(struct mf_state *st, sqlite3_stmt *s, const char *what)
{
    int rc;

    pthread_mutex_lock(&wmu);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    pthread_mutex_unlock(&wmu);
    if (rc != SQLITE_DONE)
        return fail(st, what);
    return 0;
}

static void
row_to_stream(sqlite3_stmt *s, int off, struct mf_stream_state *out)
{
    const unsigned char *e;

    out->checkpoint_ms = sqlite3_column_int64(s, off + 0);
    out->last_poll_ms = sqlite3_column_int64(s, off + 1);
    out->last_success_ms = sqlite3_column_int64(s, off + 2);
    out->blobs_delivered = sqlite3_column_int64(s, off + 3);
    out->records_delivered = sqlite3_column_int64(s, off + 4);
    out->duplicates = sqlite3_column_int64(s, off + 5);
    out->last_error_ms = sqlite3_column_int64(s, off + 6);
    e = sqlite3_column_text(s, off + 7);
    snprintf(out->last_error, sizeof(out->last_error), "%s", e ? (const char *)e : "");
    out->first_ms = sqlite3_column_int64(s, off + 8);
    out->redelivered = sqlite3_column_int64(s, off + 9);
}

int
mf_state_stream_get(struct mf_state *st, const char *tenant, const char *ct,
                    int64_t initial_ms, struct mf_stream_state *out)
{
    sqlite3_stmt *s = stmt(st, Q_STREAM_INS, tenant, ct);
    int rc;

    sqlite3_bind_int64(s, 3, initial_ms);
    if (run(st, s, "create stream") != 0)
        return -1;
    s = stmt(st, Q_STREAM_GET, tenant, ct);
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        return fail(st, "read stream");
    }
    memset(out, 0, sizeof(*out));
    snprintf(out->tenant, sizeof(out->tenant), "%s", tenant);
    snprintf(out->content_type, sizeof(out->content_type), "%s", ct);
    row_to_stream(s, 0, out);
    sqlite3_reset(s);
    return 0;
}

int
mf_state_checkpoint(struct mf_state *st, const char *tenant, const char *ct, int64_t ms)
{
    sqlite3_stmt *s = stmt(st, Q_CHECKPOINT, tenant, ct);

    sqlite3_bind_int64(s, 3, ms);
    if (run(st, s, "checkpoint") != 0)
        return -1;
    return sqlite3_changes(st->db) ? 0 : 1;
}

int
mf_state_poll_done(struct mf_state *st, const char *tenant, const char *ct,
                   int64_t now_ms, const char *error)
{
    sqlite3_stmt *s = stmt(st, Q_POLL_DONE, tenant, ct);

    sqlite3_bind_int64(s, 3, now_ms);
    if (error)
        sqlite3_bind_text(s, 4, error, -1, SQLITE_STATIC);
    return run(st, s, "poll result");
}

static int
exists(struct mf_state *st, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);

    sqlite3_reset(s);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return fail(st, what);
}

int
mf_state_blob_delivered(struct mf_state *st, const char *tenant, const char *ct,
                        const char *content_id)
{
    sqlite3_stmt *s = stmt(st, Q_BLOB_GET, tenant, ct);

    sqlite3_bind_text(s, 3, content_id, -1, SQLITE_STATIC);
    return exists(st, s, "blob lookup");
}

int
mf_state_id_seen(struct mf_state *st, const char *tenant, const char *id)
{
    sqlite3_stmt *s = stmt(st, Q_ID_GET, NULL, NULL);
    uint64_t h[2];

    mf_state_id_hash(tenant, id, h);
    sqlite3_bind_int64(s, 1, (sqlite3_int64)h[0]);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)h[1]);
    return exists(st, s, "record lookup");
}

struct idkey {
    uint64_t h[2];
};

/* SQLite's order of the key: signed integers. */
static int
cmp_key(const void *a, const void *b)
{
    const struct idkey *x = a, *y = b;

    for (int i = 0; i < 2; i++) {
        int64_t p = (int64_t)x->h[i], q = (int64_t)y->h[i];

        if (p != q)
            return p < q ? -1 : 1;
    }
    return 0;
}

int
mf_state_commit_blob(struct mf_state *st, const char *tenant, const char *ct,
                     const char *content_id, int64_t content_created_ms,
                     const char *const *ids, size_t n_ids, size_t duplicates,
                     size_t redelivered, int64_t now_ms)
{
    sqlite3_stmt *s;
    bool own = sqlite3_get_autocommit(st->db) != 0;   /* else the caller's */
    struct idkey *keys = NULL;
    size_t n_keys = 0;

    if (own && mf_state_txn_begin(st) != 0)
        return -1;
    s = stmt(st, Q_BLOB_INS, tenant, ct);
    sqlite3_bind_text(s, 3, content_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, content_created_ms);
    sqlite3_bind_int64(s, 5, (sqlite3_int64)n_ids);
    sqlite3_bind_int64(s, 6, now_ms);
    if (run(st, s, "record blob") != 0)
        goto rollback;
    /* in key order: neighbouring inserts touch the same B-tree pages */
    keys = mf_xmalloc((n_ids ? n_ids : 1) * sizeof(*keys));
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i])
            mf_state_id_hash(tenant, ids[i], keys[n_keys++].h);
    qsort(keys, n_keys, sizeof(*keys), cmp_key);
    for (size_t i = 0; i < n_keys; i++) {
        s = stmt(st, Q_ID_INS, NULL, NULL);
        sqlite3_bind_int64(s, 1, (sqlite3_int64)keys[i].h[0]);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)keys[i].h[1]);
        sqlite3_bind_int64(s, 3, now_ms);
        if (run(st, s, "record id") != 0)
            goto rollback;
    }
    s = stmt(st, Q_STREAM_COUNT, tenant, ct);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)n_ids);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)duplicates);
    sqlite3_bind_int64(s, 5, (sqlite3_int64)redelivered);
    if (run(st, s, "count blob") != 0)
        goto rollback;
    free(keys);
    if (own) {
        if (mf_state_txn_end(st, true) != 0)
            return -1;
        return mf_state_blob_end(st, tenant, ct, content_id);
    }
    return 0;
rollback:
    free(keys);
    if (own)
        mf_state_txn_end(st, false);
    return -1;
}

int
mf_state_txn_begin(struct mf_state *st)
{
    pthread_mutex_lock(&wmu);
    /* not BEGIN IMMEDIATE: that would lock every attached database,
     * inflight.db too, for the whole transaction; wmu already makes this
     * the process's only writer of state.db */
    if (sqlite3_exec(st->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        pthread_mutex_unlock(&wmu);
        return fail(st, "begin");
    }
    st->write_txn = true;
    return 0;
}

int
mf_state_txn_end(struct mf_state *st, bool commit)
{
    int rc = 0;

    if (sqlite3_get_autocommit(st->db)) {
        /* already ended (SQLite rolls back by itself on some errors) */
    } else if (commit && sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) {
        /* done */
    } else {
        if (commit)
            rc = fail(st, "commit");
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    }
    if (st->write_txn) {
        st->write_txn = false;
        pthread_mutex_unlock(&wmu);
    }
    return rc;
}

int
mf_state_add_gap(struct mf_state *st, const char *tenant, const char *ct,
                 int64_t start_ms, int64_t end_ms, int64_t now_ms)
{
    sqlite3_stmt *s = stmt(st, Q_GAP_INS, tenant, ct);

    sqlite3_bind_int64(s, 3, start_ms);
    sqlite3_bind_int64(s, 4, end_ms);
    sqlite3_bind_int64(s, 5, now_ms);
    return run(st, s, "record gap");
}

int
mf_state_gap_emitted(struct mf_state *st, const char *tenant, const char *ct,
                     int64_t start_ms)
{
    sqlite3_stmt *s = stmt(st, Q_GAP_EMIT, tenant, ct);

    sqlite3_bind_int64(s, 3, start_ms);
    return run(st, s, "mark gap");
}

int
mf_state_gaps(struct mf_state *st, const char *tenant, const char *ct,
              struct mf_gap *out, int max)
{
    sqlite3_stmt *s = stmt(st, Q_GAP_LIST, tenant, ct);
    int n = 0, rc;

    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n < max) {
            out[n].start_ms = sqlite3_column_int64(s, 0);
            out[n].end_ms = sqlite3_column_int64(s, 1);
            out[n].detected_ms = sqlite3_column_int64(s, 2);
            out[n].emitted = sqlite3_column_int(s, 3);
        }
        n++;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return fail(st, "list gaps");
    return n < max ? n : max;
}

int
mf_state_prune(struct mf_state *st, int64_t blobs_before_ms, int64_t ids_before_ms)
{
    sqlite3_stmt *s = stmt(st, Q_PRUNE_BLOBS, NULL, NULL);

    sqlite3_bind_int64(s, 1, blobs_before_ms);
    if (run(st, s, "prune blobs") != 0)
        return -1;
    s = stmt(st, Q_PRUNE_IDS, NULL, NULL);
    sqlite3_bind_int64(s, 1, ids_before_ms);
    if (run(st, s, "prune ids") != 0)
        return -1;
    /* marks left by a stop between a commit and its mark's removal */
    s = stmt(st, Q_PRUNE_INFLIGHT, NULL, NULL);
    sqlite3_bind_int64(s, 1, blobs_before_ms);
    if (run_with(st, s, "prune in-flight marks", &fmu) != 0)
        return -1;
    s = stmt(st, Q_PRUNE_ATTEMPTS, NULL, NULL);
    sqlite3_bind_int64(s, 1, blobs_before_ms);
    if (run_with(st, s, "prune interrupted attempts", &fmu) != 0)
        return -1;
    s = stmt(st, Q_PRUNE_ACKS, NULL, NULL);
    sqlite3_bind_int64(s, 1, blobs_before_ms);
    return run_with(st, s, "prune output acknowledgements", &fmu);
}

int
mf_state_foreach_stream(struct mf_state *st, mf_state_stream_fn fn, void *ud)
{
    sqlite3_stmt *s = stmt(st, Q_STREAM_ALL, NULL, NULL);
    struct mf_stream_state row;
    int rc;

    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(s, 0);
        const unsigned char *c = sqlite3_column_text(s, 1);

        memset(&row, 0, sizeof(row));
        snprintf(row.tenant, sizeof(row.tenant), "%s", t ? (const char *)t : "");
        snprintf(row.content_type, sizeof(row.content_type), "%s",
                 c ? (const char *)c : "");
        row_to_stream(s, 2, &row);
        if (fn(&row, ud) != 0)
            break;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return fail(st, "list streams");
    return 0;
}

int
mf_state_blob_begin(struct mf_state *st, const char *tenant, const char *ct,
                    const char *content_id, int64_t now_ms)
{
    sqlite3_stmt *s = stmt(st, Q_INFLIGHT_GET, tenant, ct);
    int before;

    sqlite3_bind_text(s, 3, content_id, -1, SQLITE_STATIC);
    before = exists(st, s, "in-flight lookup");
    if (before < 0)
        return -1;
    s = stmt(st, Q_INFLIGHT_INS, tenant, ct);
    sqlite3_bind_text(s, 3, content_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, now_ms);
    if (run_with(st, s, "in-flight mark", &fmu) != 0)
        return -1;
    if (!before)
        return 0;
    /* how many attempts were interrupted so far */
    s = stmt(st, Q_ATTEMPT_ADD, tenant, ct);
    sqlite3_bind_text(s, 3, content_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, now_ms);
    if (run_with(st, s, "interrupted attempt", &fmu) != 0)
        return -1;
    s = stmt(st, Q_ATTEMPT_GET, tenant, ct);
    sqlite3_bind_text(s, 3, content_id, -1, SQLITE_STATIC);
    before = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : 1;
    sqlite3_reset(s);
    return before > 0 ? before : 1;
}

int
mf_state_blob_end(struct mf_state *st, const char *tenant, const char *ct,
                  const char *content_id)
{
    sqlite3_stmt *s = stmt(st, Q_INFLIGHT_DEL, tenant, ct);

    sqlite3_bind_text(s, 3, content_id, -1, SQLITE_STATIC);
    if (run_with(st, s, "clear in-flight mark", &fmu) != 0)
        return -1;
    s = stmt(st, Q_ATTEMPT_DEL, tenant, ct);
    sqlite3_bind_text(s, 3, content_id, -1, SQLITE_STATIC);
    if (run_with(st, s, "clear interrupted attempts", &fmu) != 0)
        return -1;
    s = stmt(st, Q_ACK_DEL, tenant, ct);
    sqlite3_bind_text(s, 3, content_id, -1, SQLITE_STATIC);
    return run_with(st, s, "clear output acknowledgements", &fmu);
}

int
mf_state_blob_acked(struct mf_state *st, const char *tenant, const char *ct,
                    const char *content_id, const char *output, int64_t now_ms)
{
    sqlite3_stmt *s = stmt(st, Q_ACK_INS, tenant, ct);

    sqlite3_bind_text(s, 3, content_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, output, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, now_ms);
    return run_with(st, s, "output acknowledgement", &fmu);
}

int
mf_state_blob_acks(struct mf_state *st, const char *tenant, const char *ct,
                   const char *content_id, mf_state_output_fn fn, void *ud)
{
    sqlite3_stmt *s = stmt(st, Q_ACK_LIST, tenant, ct);
    int rc, n = 0;

    sqlite3_bind_text(s, 3, content_id, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const unsigned char *o = sqlite3_column_text(s, 0);

        if (o) {
            fn((const char *)o, ud);
            n++;
        }
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return fail(st, "list output acknowledgements");
    return n;
}

int
mf_state_foreach_id(struct mf_state *st, mf_state_id_fn fn, void *ud)
{
    sqlite3_stmt *s;
    int rc, n = 0;

    if (sqlite3_prepare_v2(st->db, "SELECT h1, h2 FROM records", -1, &s, NULL) != SQLITE_OK)
        return fail(st, "list ids");
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        uint64_t h[2] = {(uint64_t)sqlite3_column_int64(s, 0),
                         (uint64_t)sqlite3_column_int64(s, 1)};

        n++;
        if (fn(h, ud) != 0)
            break;
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(st, "list ids");
    return n;
}

int
mf_state_checkpoint_set(struct mf_state *st, const char *tenant, const char *ct, int64_t ms)
{
    struct mf_stream_state ss;
    sqlite3_stmt *s;

    if (mf_state_stream_get(st, tenant, ct, ms, &ss) != 0)
        return -1;
    s = stmt(st, Q_CHECKPOINT_SET, tenant, ct);
    sqlite3_bind_int64(s, 3, ms);
    return run(st, s, "set checkpoint");
}

int
mf_state_remember_blob(struct mf_state *st, const char *tenant, const char *ct,
                       const char *content_id, int64_t content_created_ms,
                       int64_t delivered_ms, const uint64_t *keys, size_t n_keys)
{
    sqlite3_stmt *s = stmt(st, Q_BLOB_INS, tenant, ct);

    sqlite3_bind_text(s, 3, content_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, content_created_ms);
    sqlite3_bind_int64(s, 5, (sqlite3_int64)n_keys);
    sqlite3_bind_int64(s, 6, delivered_ms);
    if (run(st, s, "remember blob") != 0)
        return -1;
    for (size_t i = 0; i < n_keys; i++) {
        s = stmt(st, Q_ID_INS, NULL, NULL);
        sqlite3_bind_int64(s, 1, (sqlite3_int64)keys[2 * i]);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)keys[2 * i + 1]);
        sqlite3_bind_int64(s, 3, delivered_ms);
        if (run(st, s, "remember id") != 0)
            return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* meta, origin                                                           */
/* ---------------------------------------------------------------------- */

int
mf_state_meta_set(struct mf_state *st, const char *key, const char *value)
{
    char *sql = sqlite3_mprintf("INSERT OR REPLACE INTO meta(key, value) VALUES (%Q, %Q)",
                                key, value);
    int rc;

    pthread_mutex_lock(&wmu);
    rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    pthread_mutex_unlock(&wmu);
    sqlite3_free(sql);
    return rc == SQLITE_OK ? 0 : fail(st, "meta");
}

int
mf_state_meta_get(struct mf_state *st, const char *key, char *out, size_t n)
{
    sqlite3_stmt *s;
    int rc, found = 0;

    if (sqlite3_prepare_v2(st->db, "SELECT value FROM meta WHERE key = ?1", -1, &s,
                           NULL) != SQLITE_OK)
        return fail(st, "meta");
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(s, 0);

        snprintf(out, n, "%s", v ? (const char *)v : "");
        found = 1;
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(st, "meta");
    return found;
}

static int64_t
meta_ms(struct mf_state *st, const char *key)
{
    char v[32];

    return mf_state_meta_get(st, key, v, sizeof(v)) == 1 ? strtoll(v, NULL, 10) : 0;
}

int
mf_state_origin(struct mf_state *st, struct mf_state_origin *out)
{
    memset(out, 0, sizeof(*out));
    out->created_now = st->created_now;
    out->created_ms = meta_ms(st, "created_ms");
    out->reset_ms = meta_ms(st, "reset_ms");
    out->reset = st->created_now && out->reset_ms != 0;
    if (out->reset_ms &&
        mf_state_meta_get(st, "reset_reason", out->reset_reason,
                          sizeof(out->reset_reason)) < 0)
        return -1;
    snprintf(out->inflight_note, sizeof(out->inflight_note), "%s", st->inflight_note);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* one agent per state_dir                                                */
/* ---------------------------------------------------------------------- */

struct mf_state_lock {
    int fd;
};

static long
lock_file_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

    if (n <= 0)
        return -1;
    buf[n] = '\0';
    return strtol(buf, NULL, 10) > 0 ? strtol(buf, NULL, 10) : -1;
}

struct mf_state_lock *
mf_state_lock(const char *dir, char *err, size_t errsz)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    struct mf_state_lock *l;
    char path[4200], pid[32];
    int fd;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errsz, "state_dir %s: cannot create: %s", dir, strerror(errno));
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/lock", dir);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errsz, "state_dir %s: cannot open %s: %s", dir, path, strerror(errno));
        return NULL;
    }
    /* an open-file-description lock: not dropped when another descriptor
     * of this file is closed in this process, released by the kernel when
     * the process ends however it ends */
    if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
        int e = errno;
        long holder = lock_file_pid(fd);

        if (e == EAGAIN || e == EACCES) {
            if (holder > 0)
                snprintf(err, errsz, "state_dir %s is in use by another m365fwd (PID %ld): "
                         "one agent per state_dir (two would deliver everything twice)",
                         dir, holder);
            else
                snprintf(err, errsz, "state_dir %s is in use by another m365fwd (PID "
                         "unknown): one agent per state_dir", dir);
        } else {
            snprintf(err, errsz, "state_dir %s: cannot lock %s: %s", dir, path,
                     strerror(e));
        }
        close(fd);
        return NULL;
    }
    snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, strlen(pid), 0) != (ssize_t)strlen(pid)) {
        snprintf(err, errsz, "state_dir %s: cannot write %s: %s", dir, path, strerror(errno));
        close(fd);
        return NULL;
    }
    l = mf_xcalloc(1, sizeof(*l));
    l->fd = fd;
    return l;
}

void
mf_state_unlock(struct mf_state_lock *l)
{
    if (!l)
        return;
    close(l->fd);
    free(l);
}

long
mf_state_lock_holder(const char *dir)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    char path[4200];
    long pid;
    int fd;

    snprintf(path, sizeof(path), "%s/lock", dir);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    if (fcntl(fd, F_OFD_GETLK, &fl) != 0) {
        close(fd);
        return -1;
    }
    pid = fl.l_type == F_UNLCK ? 0 : lock_file_pid(fd);
    close(fd);
    return pid;
}
