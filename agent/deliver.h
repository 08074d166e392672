/* deliver.h - the delivery stage of `run`.
 *
 * The collector's thread downloads blobs to spool files and hands them
 * here, then goes on downloading. Lanes (threads, one per online CPU by
 * default) each take a blob, read it record by record, normalize every
 * record in the forms the outputs need, drop the Ids delivered before and
 * send the rest. A group commit then waits until every output acknowledged
 * everything sent so far (one flush, one fsync for many blobs) and records
 * every blob that was completely sent before it, in one SQLite transaction.
 * A blob comes back to the collector either committed (rc 0) or to be
 * fetched again (rc -1): never half recorded, so the checkpoint that waits
 * for it moves only after delivery.
 *
 * Each output acknowledges on its own. A failed flush of an output bumps
 * that output's generation counter: a blob whose sending began before a
 * failed flush of output i does not count as acknowledged by i (the failed
 * record may have been its own). A blob that every output acknowledged is
 * committed; one that some did not is fetched again, and the outputs that
 * did acknowledge it are recorded (inflight.db, mf_state_blob_acked) so the
 * next attempt sends it only to the others: no duplicate in a healthy
 * output while another is down. An output that cannot take a record
 * (full for its flush_timeout) fails that blob for itself only; the
 * others go on. The checkpoint still moves only once every output has
 * every record.
 *
 * The same record Id in two blobs handled at once by two lanes: the first
 * lane reserves the Id, the second drops it as a duplicate; reservations
 * end with the commit (then SQLite has the Id) or with the failure of the
 * blob (then the blob comes again with the record).
 *
 * Every call is for the collector's thread; the done callback runs there,
 * from mf_deliver_reap(). The wake callback runs on a lane, when results
 * are waiting (the collector wakes its poll loop).
 */
#ifndef MF_DELIVER_H
#define MF_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mf_config;
struct mf_normalizer;
struct mf_fanout;
struct mf_metrics;
struct mf_state;

/* One blob to deliver; the caller owns it (and its fd) and must not touch
 * it between mf_deliver_submit() and its done callback. */
struct mf_dl_blob {
    const char *tenant_id;       /* these outlive the job */
    const char *tenant_name;
    const char *content_type;
    const char *content_id;
    const char *const *domains;  /* the tenant's accepted e-mail domains
                                    (tenants[].domains), n_domains of them */
    size_t n_domains;
    int64_t created_ms;
    int fd;                      /* the spooled body, read from offset 0 */
    int attempt, max_attempts;   /* for the logs: this is attempt n of max */
    bool last_attempt;           /* unreadable records: deliver the rest,
                                    quarantine the blob, emit a gap - rather
                                    than fetching it again */
    void *ud;
    int rc;                      /* result: 0 committed, -1 fetch it again */
    size_t n_unreadable;         /* result: records that stayed unreadable
                                    (with rc 0: quarantined, a gap event) */
    /* private */
    struct mf_dl_blob *next;
    uint64_t gen;
    size_t again;                /* earlier attempts interrupted (0: first) */
    size_t n_dups, n_bad;
    uint64_t *out_sent;          /* records per output */
    bool *out_skip;              /* per output: acknowledged it before */
    bool *out_failed;            /* per output: could not take a record */
    uint64_t *out_gen;           /* per output: its generation at the start */
    char **ids;
    uint64_t *id_keys;           /* per Id: its key (rid_hash) when deduped */
    size_t n_ids, cap_ids;
};

typedef void (*mf_dl_done_fn)(struct mf_dl_blob *b, void *ud);
typedef void (*mf_dl_wake_fn)(void *ud);

/* Cluster mode (agent/cluster.c): the group commit is a Kafka transaction.
 * With a strategy, records of a blob never straddle two transactions: while
 * a commit runs no lane starts a blob, and the commit first waits for the
 * lanes in the middle of one (a barrier). After flushing the outputs, the
 * group commit calls commit() with the blobs completely sent since the
 * last commit (list may be NULL when only other state waits); it writes
 * their state and commits it with their records. When it aborts, every
 * blob of the list is fetched again. A blob that failed after some of its
 * records went out poisons the open transaction: the next commit gets
 * outputs_ok false and must abort. The local state (SQLite) is written
 * after a successful commit only: a cache of the transaction's outcome. */
struct mf_output;

struct mf_dl_txn {
    /* 0 committed, -1 aborted. Runs on a lane (or on the thread of
     * mf_deliver_commit), while no record is being sent. */
    int (*commit)(void *ud, struct mf_dl_blob *list, bool outputs_ok);
    /* Optional: b was sent completely (on its lane, before the barrier can
     * close): write its state into the open transaction. -1 poisons it. */
    int (*blob_sent)(void *ud, const struct mf_dl_blob *b);
    /* Optional: o's records travel in the transaction (an aborted one
     * counts as not acknowledged by o). NULL: every output's do. */
    bool (*covers)(void *ud, const struct mf_output *o);
    void *ud;
};

struct mf_deliver_opts {
    const struct mf_config *cfg;
    const struct mf_normalizer *norm;
    struct mf_fanout *fo;        /* open outputs, closed by the caller after
                                    mf_deliver_destroy() */
    struct mf_metrics *m;        /* may be NULL */
    struct mf_state *state;      /* the caller's connection (gap events) */
    const struct mf_dl_txn *txn; /* cluster mode, else NULL */
    int lanes;                   /* 0 = one per online CPU, at most 8 */
    mf_dl_done_fn done;
    mf_dl_wake_fn wake;
    void *ud;
};

/* NULL with err set. */
struct mf_deliver *mf_deliver_new(const struct mf_deliver_opts *o, char *err,
                                  size_t errsz);
int mf_deliver_lanes(const struct mf_deliver *d);

void mf_deliver_submit(struct mf_deliver *d, struct mf_dl_blob *b);
/* Blobs submitted whose done callback has not run yet. */
size_t mf_deliver_pending(const struct mf_deliver *d);
/* Run the done callback of every finished blob; returns how many. */
size_t mf_deliver_reap(struct mf_deliver *d);
/* Wait (reaping) until nothing is pending or until deadline_ms (wall
 * clock). 0 / -1 when blobs are still pending. */
int mf_deliver_drain(struct mf_deliver *d, int64_t deadline_ms);

/* A range that can no longer be fetched: recorded in the state and sent
 * through every output as a monitor.collection_gap record, then flushed.
 * Synchronous. 0, or -1 when an output did not acknowledge it. */
int mf_deliver_gap(struct mf_deliver *d, const char *tenant_id, const char *tenant_name,
                   const char *content_type, int64_t start_ms, int64_t end_ms,
                   const char *reason);

/* Flush every output: 0 when all of it was acknowledged. With a commit
 * strategy: mf_deliver_commit(). */
int mf_deliver_flush(struct mf_deliver *d);

/* Cluster mode. Commit now, on the caller's thread: every blob completely
 * sent and whatever state waits (after lanes in the middle of a blob
 * finished it). 0 committed (or nothing to do), -1 aborted. */
int mf_deliver_commit(struct mf_deliver *d);
/* Ask the lanes for a commit soon, even without blobs (pending state). */
void mf_deliver_commit_soon(struct mf_deliver *d);
/* Record Id keys (mf_state_id_hash, first halves) delivered by another
 * agent, now in the state: into the filter of remembered Ids. */
void mf_deliver_seen_add(struct mf_deliver *d, const uint64_t *h1, size_t n);

/* Stop the lanes (blobs not committed yet are dropped: fetched again on
 * the next run) and free. */
void mf_deliver_destroy(struct mf_deliver *d);

#endif
