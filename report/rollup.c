/* rollup.c - the aggregate kept in state_dir/report.db by `run` and
 * `import`, read by `report -c`.
 *
 * Records are counted in memory per batch (a blob, an import barrier) as
 * they are delivered; a batch reaches the file only when the delivery that
 * carried it committed (mf_rollup_commit), in one transaction of upserts,
 * then every (tenant, day) list is cut back to its bound. A batch that was
 * not delivered is discarded: it comes again with its records. So the
 * rollup never counts a record twice; a crash between the delivery commit
 * and this one loses that batch's counts (it undercounts).
 *
 * Sized by distinct keys: per (tenant, day) at most 6 content-type rows,
 * one row per tag and fact seen, top_per_area actors and objects per area,
 * events_per_area events per area, examples_per_key examples per evidence
 * key, keys_per_aggregate keys per aggregate finding (docs/report.md).
 */
#include "agg_int.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "mem.h"

#define ROLLUP_SCHEMA 1

struct batch {
    const void *key;
    struct mf_agg *agg;
};

struct mf_rollup {
    sqlite3 *db;
    char *path;
    const struct mf_report_tables *t;
    struct mf_rollup_opts o;
    struct mf_agg_limits lim;
    pthread_mutex_t mu;          /* the batches */
    pthread_mutex_t commit_mu;   /* one commit at a time */
    struct batch *batches;
    size_t n_batches, cap_batches;
    struct mf_agg *pending;      /* delivered, not written yet (commit_mu) */
    int64_t last_flush_ms;       /* monotonic */
    pthread_cond_t cv;           /* the flusher thread: stop (commit_mu) */
    pthread_t flusher;
    bool has_flusher, stop;
    int64_t pruned_day;          /* retention applied up to this day */
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS tenant(tid INTEGER PRIMARY KEY, tenant_id TEXT UNIQUE "
    "  NOT NULL, name TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS ct(tid INTEGER, day INTEGER, ct INTEGER, records INTEGER,"
    "  tagged INTEGER, PRIMARY KEY(tid, day, ct)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS tag(tid INTEGER, day INTEGER, tag TEXT, area INTEGER,"
    "  n1 INTEGER, n2 INTEGER, n3 INTEGER, n4 INTEGER, n5 INTEGER,"
    "  PRIMARY KEY(tid, day, tag)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS fact(tid INTEGER, day INTEGER, fact TEXT, n INTEGER,"
    "  PRIMARY KEY(tid, day, fact)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS top(tid INTEGER, day INTEGER, kind INTEGER, area INTEGER,"
    "  key TEXT, n INTEGER, risk INTEGER, max_sev INTEGER,"
    "  PRIMARY KEY(tid, day, kind, area, key)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS burst(tid INTEGER, day INTEGER, agg TEXT, key TEXT,"
    "  n INTEGER, hashes BLOB, PRIMARY KEY(tid, day, agg, key)) WITHOUT ROWID;"   /* 32-bit */
    "CREATE TABLE IF NOT EXISTS event(tid INTEGER, day INTEGER, slot TEXT, rid TEXT,"
    "  time_ms INTEGER, sev INTEGER, body TEXT, UNIQUE(tid, day, slot, rid, time_ms));"
    "CREATE TABLE IF NOT EXISTS gap(tid INTEGER, ct TEXT, start_ms INTEGER, end_ms INTEGER,"
    "  reason TEXT, PRIMARY KEY(tid, ct, start_ms)) WITHOUT ROWID;";

static const char *const day_tables[] = {"ct", "tag", "fact", "top", "burst", "event"};

static void *flusher_main(void *arg);

static void
set_err(struct mf_report_err *err, const char *fmt, const char *a, const char *b)
{
    if (err)
        snprintf(err->msg, sizeof(err->msg), fmt, a, b);
}

static int prune_locked(struct mf_rollup *r, int64_t now_ms);

struct mf_rollup *
mf_rollup_open(const char *dir, const struct mf_report_tables *t,
               const struct mf_rollup_opts *o, struct mf_report_err *err)
{
    struct mf_rollup *r = mf_xcalloc(1, sizeof(*r));
    size_t n = strlen(dir) + 16;
    int flags, v = 0;
    sqlite3_stmt *st;

    r->path = mf_xmalloc(n);
    snprintf(r->path, n, "%s/report.db", dir);
    r->t = t;
    if (o)
        r->o = *o;
    if (r->o.retention_days <= 0)
        r->o.retention_days = MF_ROLLUP_DEFAULT_RETENTION_DAYS;
    r->lim = (struct mf_agg_limits){0};
    r->pruned_day = -1;
    if (r->o.flush_interval_ms < 0)
        r->o.flush_interval_ms = 0;
    r->pending = mf_agg_new(t, &r->lim);
    r->last_flush_ms = mf_clock_mono_ms();
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->commit_mu, NULL);
    {
        pthread_condattr_t ca;

        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&r->cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (r->o.read_only) {
        struct stat sb;

        if (stat(r->path, &sb) != 0) {
            set_err(err, "%s: no rollup (%s): `run` or `import` with this configuration "
                    "maintains it", r->path, strerror(errno));
            goto fail;
        }
        flags = SQLITE_OPEN_READONLY;
    } else {
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            set_err(err, "%s: cannot create: %s", dir, strerror(errno));
            goto fail;
        }
        flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    }
    if (sqlite3_open_v2(r->path, &r->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        set_err(err, "%s: %s", r->path, r->db ? sqlite3_errmsg(r->db) : "cannot open");
        goto fail;
    }
    sqlite3_busy_timeout(r->db, 10000);
    if (!r->o.read_only &&
        sqlite3_exec(r->db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
                     NULL, NULL, NULL) != SQLITE_OK) {
        set_err(err, "%s: %s", r->path, sqlite3_errmsg(r->db));
        goto fail;
    }
    if (sqlite3_prepare_v2(r->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    if (v > ROLLUP_SCHEMA) {
        char vs[32];

        snprintf(vs, sizeof(vs), "%d", v);
        set_err(err, "%s: written by a newer m365fwd (schema %s)", r->path, vs);
        goto fail;
    }
    if (!r->o.read_only) {
        char sql[64];

        if (sqlite3_exec(r->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK) {
            set_err(err, "%s: %s", r->path, sqlite3_errmsg(r->db));
            goto fail;
        }
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", ROLLUP_SCHEMA);
        sqlite3_exec(r->db, sql, NULL, NULL, NULL);
        prune_locked(r, mf_clock_wall_ms());
        if (r->o.flush_interval_ms > 0) {
            if (pthread_create(&r->flusher, NULL, flusher_main, r) != 0) {
                set_err(err, "%s: %s", r->path, "cannot start the rollup's writer thread");
                goto fail;
            }
            r->has_flusher = true;
        }
    } else if (v == 0) {
        set_err(err, "%s: %s", r->path, "not a rollup (empty schema)");
        goto fail;
    }
    return r;
fail:
    mf_rollup_close(r);
    return NULL;
}

const char *
mf_rollup_path(const struct mf_rollup *r)
{
    return r->path;
}

void
mf_rollup_close(struct mf_rollup *r)
{
    if (!r)
        return;
    if (r->has_flusher) {
        pthread_mutex_lock(&r->commit_mu);
        r->stop = true;
        pthread_cond_signal(&r->cv);
        pthread_mutex_unlock(&r->commit_mu);
        pthread_join(r->flusher, NULL);
    }
    if (r->db)
        mf_rollup_flush(r);
    mf_agg_destroy(r->pending);
    for (size_t i = 0; i < r->n_batches; i++)
        mf_agg_destroy(r->batches[i].agg);
    free(r->batches);
    if (r->db)
        sqlite3_close(r->db);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->commit_mu);
    pthread_cond_destroy(&r->cv);
    free(r->path);
    free(r);
}

/* ---- batches ------------------------------------------------------------ */

static struct batch *
batch_find(struct mf_rollup *r, const void *key, bool create)
{
    for (size_t i = 0; i < r->n_batches; i++)
        if (r->batches[i].key == key)
            return &r->batches[i];
    if (!create)
        return NULL;
    if (r->n_batches == r->cap_batches) {
        r->cap_batches = r->cap_batches ? r->cap_batches * 2 : 16;
        r->batches = mf_xrealloc(r->batches, r->cap_batches * sizeof(*r->batches));
    }
    r->batches[r->n_batches].key = key;
    r->batches[r->n_batches].agg = mf_agg_new(r->t, &r->lim);
    return &r->batches[r->n_batches++];
}

void
mf_rollup_add(struct mf_rollup *r, const void *batch, const struct mf_report_rec *rec)
{
    struct mf_agg *a;

    if (!r || r->o.read_only)
        return;
    pthread_mutex_lock(&r->mu);
    a = batch_find(r, batch, true)->agg;
    if (!batch) {   /* shared by every thread */
        mf_agg_add(a, rec);
        pthread_mutex_unlock(&r->mu);
        return;
    }
    pthread_mutex_unlock(&r->mu);
    /* a batch is one thread's at a time: counted without the lock */
    mf_agg_add(a, rec);
}

/* Take batch key out of the list (under r->mu); its aggregate or NULL. */
static struct mf_agg *
batch_take(struct mf_rollup *r, const void *key)
{
    struct batch *b = batch_find(r, key, false);
    struct mf_agg *a;

    if (!b)
        return NULL;
    a = b->agg;
    *b = r->batches[--r->n_batches];
    return a;
}

void
mf_rollup_discard(struct mf_rollup *r, const void *batch)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    mf_agg_destroy(batch_take(r, batch));
    pthread_mutex_unlock(&r->mu);
}

/* ---- writing -------------------------------------------------------------- */

/* A flush replaces each (tenant, day) it touches: the day as stored is
 * loaded, what was delivered since is merged into it in memory (the same
 * bounded lists as everywhere), the day's rows are deleted and the merged
 * day is written. */

struct wr {
    struct mf_rollup *r;
    sqlite3_stmt *tenant, *tid, *ct, *tag, *fact, *top, *burst, *event, *gap;
    sqlite3_stmt *del[sizeof(day_tables) / sizeof(day_tables[0])];
    int rc;
};

static int
prep(struct wr *w, sqlite3_stmt **st, const char *sql)
{
    if (w->rc == 0 && sqlite3_prepare_v2(w->r->db, sql, -1, st, NULL) != SQLITE_OK)
        w->rc = -1;
    return w->rc;
}

static void
step(struct wr *w, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    if (rc != SQLITE_DONE && rc != SQLITE_ROW && w->rc == 0) {
        mf_log(MF_LOG_ERROR, "%s: %s", w->r->path, sqlite3_errmsg(w->r->db));
        w->rc = -1;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static void
bind_text(sqlite3_stmt *st, int i, const char *s)
{
    sqlite3_bind_text(st, i, s ? s : "", -1, SQLITE_TRANSIENT);
}

static void
json_field(struct mf_buf *b, const char *k, const char *v)
{
    if (!v)
        return;
    mf_buf_printf(b, ",\"%s\":", k);
    mf_json_write_str(b, v, strlen(v));
}

static void
write_events(struct wr *w, struct mf_buf *b, int64_t tid, int64_t day, const char *slot,
             const struct agg_events *l)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct agg_event *e = &l->e[i];

        /* the tenant's name is the tenant row's */
        mf_buf_reset(b);
        mf_buf_printf(b, "{\"t\":%lld,\"s\":%d", (long long)e->time_ms, e->sev);
        json_field(b, "actor", e->actor);
        json_field(b, "op", e->operation);
        json_field(b, "obj", e->object);
        json_field(b, "ip", e->client_ip);
        json_field(b, "ua", e->user_agent);
        json_field(b, "id", e->record_id);
        json_field(b, "wl", e->workload);
        json_field(b, "ct", e->content_type);
        json_field(b, "tags", e->tags);
        mf_buf_appendc(b, '}');
        sqlite3_bind_int64(w->event, 1, tid);
        sqlite3_bind_int64(w->event, 2, day);
        bind_text(w->event, 3, slot);
        bind_text(w->event, 4, e->record_id);
        sqlite3_bind_int64(w->event, 5, e->time_ms);
        sqlite3_bind_int(w->event, 6, e->sev);
        sqlite3_bind_text(w->event, 7, b->data, (int)b->len, SQLITE_TRANSIENT);
        step(w, w->event);
    }
}

static void
write_day(struct wr *w, const struct mf_agg *a, int64_t tid, const struct agg_day *d)
{
    const struct mf_report_tables *t = a->t;
    char slot[200];
    struct mf_buf b;

    mf_buf_init(&b, 0);
    for (int c = 0; c < AGG_N_CT; c++) {
        if (!d->ct_records[c])
            continue;
        sqlite3_bind_int64(w->ct, 1, tid);
        sqlite3_bind_int64(w->ct, 2, d->day);
        sqlite3_bind_int(w->ct, 3, c);
        sqlite3_bind_int64(w->ct, 4, (int64_t)d->ct_records[c]);
        sqlite3_bind_int64(w->ct, 5, (int64_t)d->ct_tagged[c]);
        step(w, w->ct);
    }
    for (size_t i = 0; i < d->n_tags; i++) {
        const struct agg_tagcnt *tc = &d->tags[i];

        if (!(tc->n[0] | tc->n[1] | tc->n[2] | tc->n[3] | tc->n[4]))
            continue;
        sqlite3_bind_int64(w->tag, 1, tid);
        sqlite3_bind_int64(w->tag, 2, d->day);
        bind_text(w->tag, 3, a->tag_ids[i]);
        sqlite3_bind_int(w->tag, 4, a->tag_area[i]);
        for (int v = 0; v < 5; v++)
            sqlite3_bind_int64(w->tag, 5 + v, (int64_t)tc->n[v]);
        step(w, w->tag);
    }
    for (int f = 0; f < MF_FACT_COUNT; f++) {
        if (d->facts[f]) {
            sqlite3_bind_int64(w->fact, 1, tid);
            sqlite3_bind_int64(w->fact, 2, d->day);
            bind_text(w->fact, 3, mf_report_fact_name(f));
            sqlite3_bind_int64(w->fact, 4, (int64_t)d->facts[f]);
            step(w, w->fact);
        }
        snprintf(slot, sizeof(slot), "f:%s", mf_report_fact_name(f));
        write_events(w, &b, tid, d->day, slot, &d->ex_facts[f]);
    }
    for (int k = 0; k < 2; k++)
        for (int ar = 0; ar < MF_RAREA_COUNT; ar++)
            for (size_t i = 0; i < d->tops[k][ar].n; i++) {
                const struct agg_top_ent *e = &d->tops[k][ar].e[i];

                sqlite3_bind_int64(w->top, 1, tid);
                sqlite3_bind_int64(w->top, 2, d->day);
                sqlite3_bind_int(w->top, 3, k);
                sqlite3_bind_int(w->top, 4, ar);
                bind_text(w->top, 5, e->key);
                sqlite3_bind_int64(w->top, 6, (int64_t)e->n);
                sqlite3_bind_int64(w->top, 7, (int64_t)e->risk);
                sqlite3_bind_int(w->top, 8, e->max_sev);
                step(w, w->top);
            }
    for (int ar = 0; ar < MF_RAREA_COUNT; ar++) {
        snprintf(slot, sizeof(slot), "a:%s", mf_report_area_name(ar));
        write_events(w, &b, tid, d->day, slot, &d->events[ar]);
    }
    for (size_t g = 0; g < t->n_aggs; g++) {
        for (size_t i = 0; i < d->bursts[g].n; i++) {
            const struct agg_burst_ent *e = &d->bursts[g].e[i];

            sqlite3_bind_int64(w->burst, 1, tid);
            sqlite3_bind_int64(w->burst, 2, d->day);
            bind_text(w->burst, 3, t->aggs[g].id);
            bind_text(w->burst, 4, e->key);
            sqlite3_bind_int64(w->burst, 5, (int64_t)e->n);
            sqlite3_bind_blob(w->burst, 6, e->dh, (int)(e->nd * sizeof(*e->dh)),
                              SQLITE_TRANSIENT);
            step(w, w->burst);
        }
        snprintf(slot, sizeof(slot), "g:%s", t->aggs[g].id);
        write_events(w, &b, tid, d->day, slot, &d->ex_aggs[g]);
    }
    for (size_t i = 0; i < t->n_ex_tags; i++) {
        snprintf(slot, sizeof(slot), "t:%s", t->ex_tags[i]);
        write_events(w, &b, tid, d->day, slot, &d->ex_tags[i]);
    }
    mf_buf_fini(&b);
}

static int64_t
tenant_tid(struct wr *w, const char *id, const char *name)
{
    int64_t tid = -1;

    bind_text(w->tenant, 1, id);
    bind_text(w->tenant, 2, name);
    step(w, w->tenant);
    bind_text(w->tid, 1, id);
    if (sqlite3_step(w->tid) == SQLITE_ROW)
        tid = sqlite3_column_int64(w->tid, 0);
    sqlite3_reset(w->tid);
    if (tid < 0)
        w->rc = -1;
    return tid;
}

static void
wr_fini(struct wr *w)
{
    sqlite3_stmt *all[] = {w->tenant, w->tid, w->ct, w->tag, w->fact, w->top, w->burst,
                           w->event, w->gap};

    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        sqlite3_finalize(all[i]);
    for (size_t i = 0; i < sizeof(w->del) / sizeof(w->del[0]); i++)
        sqlite3_finalize(w->del[i]);
}

static int load_days(struct mf_rollup *r, int64_t tid, struct agg_tenant *t, int64_t from,
                     int64_t to, struct mf_agg *a);

/* Replace (tid, day) with its stored rows merged with pending's day. */
static void
replace_day(struct wr *w, int64_t tid, const struct agg_tenant *pt, const struct mf_agg *pa,
            const struct agg_day *pd)
{
    struct mf_agg *m = mf_agg_new(w->r->t, &w->r->lim);
    struct agg_tenant *mt = mf_agg_tenant(m, pt->id, pt->name);

    if (load_days(w->r, tid, mt, pd->day, pd->day, m) != 0) {
        mf_log(MF_LOG_ERROR, "%s: %s", w->r->path, sqlite3_errmsg(w->r->db));
        w->rc = -1;
    } else {
        struct agg_day *md = mf_agg_day(m, mt, pd->day);

        mf_agg_merge_day(m, pa, md, pd);
        for (size_t i = 0; i < sizeof(w->del) / sizeof(w->del[0]); i++) {
            sqlite3_bind_int64(w->del[i], 1, tid);
            sqlite3_bind_int64(w->del[i], 2, pd->day);
            step(w, w->del[i]);
        }
        write_day(w, m, tid, md);
    }
    mf_agg_destroy(m);
}

static int
write_agg(struct mf_rollup *r, const struct mf_agg *a)
{
    struct wr w = {.r = r};

    prep(&w, &w.tenant, "INSERT INTO tenant(tenant_id, name) VALUES(?1, ?2) "
         "ON CONFLICT(tenant_id) DO UPDATE SET name = excluded.name");
    prep(&w, &w.tid, "SELECT tid FROM tenant WHERE tenant_id = ?1");
    prep(&w, &w.ct, "INSERT INTO ct VALUES(?1, ?2, ?3, ?4, ?5)");
    prep(&w, &w.tag, "INSERT INTO tag VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    prep(&w, &w.fact, "INSERT INTO fact VALUES(?1, ?2, ?3, ?4)");
    prep(&w, &w.top, "INSERT INTO top VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    prep(&w, &w.burst, "INSERT INTO burst VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
    prep(&w, &w.event, "INSERT OR IGNORE INTO event VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    prep(&w, &w.gap, "INSERT INTO gap VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT DO UPDATE SET "
         "end_ms = max(end_ms, excluded.end_ms)");
    for (size_t i = 0; i < sizeof(w.del) / sizeof(w.del[0]); i++) {
        char sql[96];

        snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE tid = ?1 AND day = ?2",
                 day_tables[i]);
        prep(&w, &w.del[i], sql);
    }
    if (w.rc != 0) {
        mf_log(MF_LOG_ERROR, "%s: %s", r->path, sqlite3_errmsg(r->db));
        wr_fini(&w);
        return -1;
    }
    for (size_t i = 0; w.rc == 0 && i < a->n_tenants; i++) {
        const struct agg_tenant *t = &a->tenants[i];
        int64_t tid = tenant_tid(&w, t->id, t->name);

        for (size_t j = 0; w.rc == 0 && j < t->n_days; j++)
            replace_day(&w, tid, t, a, t->days[j]);
    }
    for (size_t i = 0; w.rc == 0 && i < a->n_gaps; i++) {
        const struct agg_gap *g = &a->gaps[i];
        int64_t tid = tenant_tid(&w, g->tenant, NULL);

        sqlite3_bind_int64(w.gap, 1, tid);
        bind_text(w.gap, 2, g->content_type);
        sqlite3_bind_int64(w.gap, 3, g->start_ms);
        sqlite3_bind_int64(w.gap, 4, g->end_ms);
        bind_text(w.gap, 5, g->reason);
        step(&w, w.gap);
    }
    wr_fini(&w);
    return w.rc;
}

/* Write what is pending (under commit_mu). */
static int
flush_pending(struct mf_rollup *r)
{
    int rc = 0;

    if (mf_agg_empty(r->pending)) {
        r->last_flush_ms = mf_clock_mono_ms();   /* nothing waits: next check later */
        return 0;
    }
    if (mf_clock_wall_ms() / 86400000 != r->pruned_day)
        prune_locked(r, mf_clock_wall_ms());
    if (sqlite3_exec(r->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        mf_log(MF_LOG_ERROR, "%s: %s", r->path, sqlite3_errmsg(r->db));
        rc = -1;
    } else {
        rc = write_agg(r, r->pending);
        if (sqlite3_exec(r->db, rc == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) !=
            SQLITE_OK) {
            mf_log(MF_LOG_ERROR, "%s: %s", r->path, sqlite3_errmsg(r->db));
            sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
            rc = -1;
        }
    }
    if (rc != 0)
        mf_log(MF_LOG_ERROR, "%s: the report rollup missed the counts of delivered "
               "records (the review will undercount them)", r->path);
    mf_agg_destroy(r->pending);
    r->pending = mf_agg_new(r->t, &r->lim);
    r->last_flush_ms = mf_clock_mono_ms();
    return rc;
}

int
mf_rollup_commit(struct mf_rollup *r, const void *const *batches, size_t n)
{
    int rc = 0;

    if (!r || r->o.read_only)
        return 0;
    pthread_mutex_lock(&r->commit_mu);
    for (size_t i = 0; i <= n; i++) {
        struct mf_agg *one;

        pthread_mutex_lock(&r->mu);
        one = batch_take(r, i < n ? batches[i] : NULL);
        pthread_mutex_unlock(&r->mu);
        if (one) {
            mf_agg_merge(r->pending, one);
            mf_agg_destroy(one);
        }
    }
    if (mf_clock_mono_ms() - r->last_flush_ms >= r->o.flush_interval_ms)
        rc = flush_pending(r);
    pthread_mutex_unlock(&r->commit_mu);
    return rc;
}

/* With a flush interval: what waits is written at the latest one interval
 * after the last write, even when no commit comes to do it. */
static void *
flusher_main(void *arg)
{
    struct mf_rollup *r = arg;
    struct timespec ts;

    pthread_mutex_lock(&r->commit_mu);
    while (!r->stop) {
        int64_t due = r->last_flush_ms + r->o.flush_interval_ms - mf_clock_mono_ms();

        if (due <= 0) {
            flush_pending(r);
            continue;
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += due / 1000;
        ts.tv_nsec += (due % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&r->cv, &r->commit_mu, &ts);
    }
    pthread_mutex_unlock(&r->commit_mu);
    return NULL;
}

int
mf_rollup_flush(struct mf_rollup *r)
{
    int rc;

    if (!r || r->o.read_only)
        return 0;
    pthread_mutex_lock(&r->commit_mu);
    rc = flush_pending(r);
    pthread_mutex_unlock(&r->commit_mu);
    return rc;
}

/* Under commit_mu (or before the writer thread runs). */
static int
prune_locked(struct mf_rollup *r, int64_t now_ms)
{
    int64_t cutoff = now_ms / 86400000 - r->o.retention_days;
    char sql[160];
    int rc = 0;

    if (r->o.read_only)
        return 0;
    for (size_t i = 0; i < sizeof(day_tables) / sizeof(day_tables[0]); i++) {
        snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE day < %lld", day_tables[i],
                 (long long)cutoff);
        if (sqlite3_exec(r->db, sql, NULL, NULL, NULL) != SQLITE_OK)
            rc = -1;
    }
    snprintf(sql, sizeof(sql), "DELETE FROM gap WHERE end_ms < %lld",
             (long long)cutoff * 86400000);
    if (sqlite3_exec(r->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        rc = -1;
    if (rc != 0)
        mf_log(MF_LOG_WARN, "%s: retention: %s", r->path, sqlite3_errmsg(r->db));
    r->pruned_day = now_ms / 86400000;
    return rc;
}

int
mf_rollup_prune(struct mf_rollup *r, int64_t now_ms)
{
    int rc;

    pthread_mutex_lock(&r->commit_mu);
    rc = prune_locked(r, now_ms);
    pthread_mutex_unlock(&r->commit_mu);
    return rc;
}

/* ---- reading -------------------------------------------------------------- */

struct rd {
    struct mf_rollup *r;
    struct mf_agg *a;
    int64_t from, to;
    struct agg_tenant **tenants;   /* by tid (sparse), NULL = not selected */
    int64_t n_tids;
    int64_t only_tid;              /* >= 0: that tenant only, and no gaps */
};

static struct agg_tenant *
rd_tenant(struct rd *d, int64_t tid)
{
    return tid >= 0 && tid < d->n_tids ? d->tenants[tid] : NULL;
}

/* sql ends with its WHERE clause on ?1 ?2 (days). */
static int
rd_query(struct rd *d, const char *sql, sqlite3_stmt **st)
{
    char q[400];

    snprintf(q, sizeof(q), "%s%s", sql, d->only_tid >= 0 ? " AND tid = ?3" : "");
    if (sqlite3_prepare_v2(d->r->db, q, -1, st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(*st, 1, d->from);
    sqlite3_bind_int64(*st, 2, d->to);
    if (d->only_tid >= 0)
        sqlite3_bind_int64(*st, 3, d->only_tid);
    return 0;
}

static const char *
col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);

    return s ? (const char *)s : "";
}

static void
rd_event(struct rd *d, const struct agg_tenant *t, struct agg_day *day, const char *slot,
         const char *body)
{
    struct mf_arena ar;
    struct mf_jval *v;
    struct agg_events *l = NULL;
    size_t cap = d->a->lim.examples_per_key;
    struct agg_event ev;
    int64_t n;

    if (strncmp(slot, "a:", 2) == 0) {
        int ar_i = mf_report_area_parse(slot + 2);

        if (ar_i >= 0) {
            l = &day->events[ar_i];
            cap = d->a->lim.events_per_area;
        }
    } else if (strncmp(slot, "f:", 2) == 0) {
        int f = mf_report_fact_parse(slot + 2);

        if (f >= 0)
            l = &day->ex_facts[f];
    } else if (strncmp(slot, "g:", 2) == 0) {
        for (size_t i = 0; i < d->a->t->n_aggs; i++)
            if (strcmp(d->a->t->aggs[i].id, slot + 2) == 0)
                l = &day->ex_aggs[i];
    } else if (strncmp(slot, "t:", 2) == 0) {
        for (size_t i = 0; i < d->a->t->n_ex_tags; i++)
            if (strcmp(d->a->t->ex_tags[i], slot + 2) == 0)
                l = &day->ex_tags[i];
    }
    if (!l)
        return;   /* a slot of other tables than these: not shown */
    mf_arena_init(&ar, 4096);
    v = mf_json_parse(&ar, body, strlen(body), NULL, NULL, NULL);
    if (v && v->type == MF_JOBJ) {
        memset(&ev, 0, sizeof(ev));
        if (mf_jget_int(mf_jobj_get(v, "t"), &n) == 0)
            ev.time_ms = n;
        if (mf_jget_int(mf_jobj_get(v, "s"), &n) == 0)
            ev.sev = (int)n;
        ev.tenant = t->name;
        ev.actor = (char *)mf_jstrv(mf_jobj_get(v, "actor"));
        ev.operation = (char *)mf_jstrv(mf_jobj_get(v, "op"));
        ev.object = (char *)mf_jstrv(mf_jobj_get(v, "obj"));
        ev.client_ip = (char *)mf_jstrv(mf_jobj_get(v, "ip"));
        ev.user_agent = (char *)mf_jstrv(mf_jobj_get(v, "ua"));
        ev.record_id = (char *)mf_jstrv(mf_jobj_get(v, "id"));
        ev.workload = (char *)mf_jstrv(mf_jobj_get(v, "wl"));
        ev.content_type = (char *)mf_jstrv(mf_jobj_get(v, "ct"));
        ev.tags = (char *)mf_jstrv(mf_jobj_get(v, "tags"));
        mf_agg_events_offer(d->a, l, cap, &ev);
    }
    mf_arena_fini(&ar);
}

static int
rd_all(struct rd *d)
{
    sqlite3_stmt *st;
    struct agg_tenant *t;
    struct mf_agg *a = d->a;

    if (rd_query(d, "SELECT tid, day, ct, records, tagged FROM ct WHERE day BETWEEN ?1 AND ?2",
                 &st) != 0)
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW)
        if ((t = rd_tenant(d, sqlite3_column_int64(st, 0)))) {
            struct agg_day *day = mf_agg_day(a, t, sqlite3_column_int64(st, 1));
            int c = sqlite3_column_int(st, 2);

            if (c >= 0 && c < AGG_N_CT) {
                day->ct_records[c] += (uint64_t)sqlite3_column_int64(st, 3);
                day->ct_tagged[c] += (uint64_t)sqlite3_column_int64(st, 4);
            }
        }
    sqlite3_finalize(st);
    if (rd_query(d, "SELECT tid, day, tag, area, n1, n2, n3, n4, n5 FROM tag "
                 "WHERE day BETWEEN ?1 AND ?2", &st) != 0)
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW)
        if ((t = rd_tenant(d, sqlite3_column_int64(st, 0)))) {
            struct agg_day *day = mf_agg_day(a, t, sqlite3_column_int64(st, 1));
            int idx = mf_agg_tag(a, col_text(st, 2), sqlite3_column_int(st, 3));

            for (int v = 0; idx >= 0 && v < 5; v++)
                if (sqlite3_column_int64(st, 4 + v))
                    mf_agg_day_tag_add(a, day, idx, v + 1,
                                       (uint64_t)sqlite3_column_int64(st, 4 + v));
        }
    sqlite3_finalize(st);
    if (rd_query(d, "SELECT tid, day, fact, n FROM fact WHERE day BETWEEN ?1 AND ?2",
                 &st) != 0)
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int f = mf_report_fact_parse(col_text(st, 2));

        if (f >= 0 && (t = rd_tenant(d, sqlite3_column_int64(st, 0))))
            mf_agg_day(a, t, sqlite3_column_int64(st, 1))->facts[f] +=
                (uint64_t)sqlite3_column_int64(st, 3);
    }
    sqlite3_finalize(st);
    if (rd_query(d, "SELECT tid, day, kind, area, key, n, risk, max_sev FROM top "
                 "WHERE day BETWEEN ?1 AND ?2", &st) != 0)
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int k = sqlite3_column_int(st, 2), ar = sqlite3_column_int(st, 3);

        if (k >= 0 && k < 2 && ar >= 0 && ar < MF_RAREA_COUNT &&
            (t = rd_tenant(d, sqlite3_column_int64(st, 0))))
            mf_agg_top_add(a, &mf_agg_day(a, t, sqlite3_column_int64(st, 1))->tops[k][ar],
                           col_text(st, 4), (uint64_t)sqlite3_column_int64(st, 5),
                           (uint64_t)sqlite3_column_int64(st, 6), sqlite3_column_int(st, 7));
    }
    sqlite3_finalize(st);
    if (rd_query(d, "SELECT tid, day, agg, key, n, hashes FROM burst "
                 "WHERE day BETWEEN ?1 AND ?2", &st) != 0)
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *g = col_text(st, 2);

        if (!(t = rd_tenant(d, sqlite3_column_int64(st, 0))))
            continue;
        for (size_t i = 0; i < a->t->n_aggs; i++) {
            uint32_t dh[AGG_DISTINCT_MAX];
            unsigned nd = (unsigned)sqlite3_column_bytes(st, 5) / 4;

            if (strcmp(a->t->aggs[i].id, g) != 0)
                continue;
            if (nd > AGG_DISTINCT_MAX)
                nd = AGG_DISTINCT_MAX;
            if (nd)
                memcpy(dh, sqlite3_column_blob(st, 5), nd * 4);
            mf_agg_burst_add(a, &mf_agg_day(a, t, sqlite3_column_int64(st, 1))->bursts[i],
                             col_text(st, 3), (uint64_t)sqlite3_column_int64(st, 4), dh, nd);
        }
    }
    sqlite3_finalize(st);
    if (rd_query(d, "SELECT tid, day, slot, body FROM event WHERE day BETWEEN ?1 AND ?2",
                 &st) != 0)
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW)
        if ((t = rd_tenant(d, sqlite3_column_int64(st, 0))))
            rd_event(d, t, mf_agg_day(a, t, sqlite3_column_int64(st, 1)), col_text(st, 2),
                     col_text(st, 3));
    sqlite3_finalize(st);
    if (d->only_tid >= 0)
        return 0;
    if (rd_query(d, "SELECT tid, ct, start_ms, end_ms, reason FROM gap WHERE "
                 "end_ms >= ?1 * 86400000 AND start_ms < (?2 + 1) * 86400000", &st) != 0)
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW)
        if ((t = rd_tenant(d, sqlite3_column_int64(st, 0))))
            mf_agg_add_gap(a, t->id, col_text(st, 1), sqlite3_column_int64(st, 2),
                           sqlite3_column_int64(st, 3), col_text(st, 4));
    sqlite3_finalize(st);
    return 0;
}

static int
load_days(struct mf_rollup *r, int64_t tid, struct agg_tenant *t, int64_t from, int64_t to,
          struct mf_agg *a)
{
    struct rd d = {.r = r, .a = a, .from = from, .to = to, .only_tid = tid};
    int rc;

    d.n_tids = tid + 1;
    d.tenants = mf_xcalloc((size_t)d.n_tids, sizeof(*d.tenants));
    d.tenants[tid] = t;
    rc = rd_all(&d);
    free(d.tenants);
    return rc;
}

int
mf_rollup_load(struct mf_rollup *r, const char *tenant, int64_t day_from, int64_t day_to,
               struct mf_agg *a, struct mf_report_err *err)
{
    struct rd d = {.r = r, .a = a, .from = day_from, .to = day_to, .only_tid = -1};
    sqlite3_stmt *st;
    int rc = 0;

    pthread_mutex_lock(&r->commit_mu);
    if (sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(r->db, "SELECT tid, tenant_id, name FROM tenant", -1, &st,
                           NULL) != SQLITE_OK) {
        set_err(err, "%s: %s", r->path, sqlite3_errmsg(r->db));
        pthread_mutex_unlock(&r->commit_mu);
        return -1;
    }
    struct sel { int64_t tid; char *id; } *sel = NULL;
    size_t n_sel = 0;

    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t tid = sqlite3_column_int64(st, 0);
        const char *id = col_text(st, 1), *name = col_text(st, 2);

        if ((tenant && strcmp(tenant, id) != 0 && strcmp(tenant, name) != 0) ||
            tid < 0 || tid > 1000000 || !mf_agg_tenant(a, id, name))
            continue;
        sel = mf_xrealloc(sel, (n_sel + 1) * sizeof(*sel));
        sel[n_sel].tid = tid;
        sel[n_sel++].id = mf_xstrdup(id);
        if (tid >= d.n_tids)
            d.n_tids = tid + 1;
    }
    sqlite3_finalize(st);
    /* pointers once every tenant exists (the tenant array moves as it grows) */
    d.tenants = mf_xcalloc(d.n_tids ? (size_t)d.n_tids : 1, sizeof(*d.tenants));
    for (size_t i = 0; i < n_sel; i++) {
        d.tenants[sel[i].tid] = mf_agg_tenant(a, sel[i].id, NULL);
        free(sel[i].id);
    }
    free(sel);
    if (rd_all(&d) != 0) {
        set_err(err, "%s: %s", r->path, sqlite3_errmsg(r->db));
        rc = -1;
    }
    sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
    pthread_mutex_unlock(&r->commit_mu);
    free(d.tenants);
    return rc;
}

int
mf_rollup_stats(struct mf_rollup *r, struct mf_rollup_stats *out)
{
    static const char *const tables[] = {"tenant", "ct", "tag", "fact", "top", "burst",
                                         "event", "gap"};
    sqlite3_stmt *st;
    char sql[96], wal[1100];
    struct stat sb;

    memset(out, 0, sizeof(*out));
    out->first_day = out->last_day = -1;
    /* one connection, shared with the writer thread (opened NOMUTEX) */
    pthread_mutex_lock(&r->commit_mu);
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", tables[i]);
        if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK) {
            pthread_mutex_unlock(&r->commit_mu);
            return -1;
        }
        if (sqlite3_step(st) == SQLITE_ROW)
            out->rows += sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    if (sqlite3_prepare_v2(r->db, "SELECT min(day), max(day) FROM ct", -1, &st, NULL) ==
        SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
            out->first_day = sqlite3_column_int64(st, 0);
            out->last_day = sqlite3_column_int64(st, 1);
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&r->commit_mu);
    if (stat(r->path, &sb) == 0)
        out->bytes += sb.st_size;
    snprintf(wal, sizeof(wal), "%s-wal", r->path);
    if (stat(wal, &sb) == 0)
        out->bytes += sb.st_size;
    return 0;
}
