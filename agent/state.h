/* state.h - durable collection state in SQLite (state_dir/state.db).
 *
 * Per tenant and content type ("stream"): the checkpoint, counters, the last
 * error, the blobs already delivered (blob-level dedupe by contentId), the
 * record Ids delivered within a horizon (record-level dedupe) and the gaps
 * that could no longer be fetched. Everything a blob changes is written in
 * one transaction, after every output acknowledged the blob's records, so a
 * kill -9 at any moment leaves either the blob delivered and recorded or
 * neither (then it is fetched again: a duplicate, never a loss).
 *
 * Secrets never reach this store.
 */
#ifndef MF_STATE_H
#define MF_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct mf_state;

struct mf_stream_state {
    char tenant[128];
    char content_type[64];
    int64_t checkpoint_ms;       /* every blob listed before this was delivered */
    int64_t first_ms;            /* where collection of the stream began */
    int64_t last_poll_ms;        /* 0 = never */
    int64_t last_success_ms;
    int64_t blobs_delivered;
    int64_t records_delivered;
    int64_t duplicates;          /* records dropped as already delivered */
    int64_t redelivered;         /* records delivered again because an
                                    earlier attempt at their blob was
                                    interrupted (crash, output error): the
                                    upper bound of duplicates downstream */
    int64_t last_error_ms;
    char last_error[256];        /* "" = none */
};

struct mf_gap {
    int64_t start_ms, end_ms, detected_ms;
    int emitted;                 /* the gap event went through the outputs */
};

/* Open (creating dir/state.db and the schema when missing). */
struct mf_state *mf_state_open(const char *dir, struct mf_err *err);
void mf_state_close(struct mf_state *st);

/* Stream row; created with checkpoint_ms = initial_ms when missing. */
int mf_state_stream_get(struct mf_state *st, const char *tenant, const char *ct,
                        int64_t initial_ms, struct mf_stream_state *out);
/* Move the checkpoint forward (never backwards: returns 1 and leaves it when
 * ms is older than the stored one). 0 on success, -1 on error. */
int mf_state_checkpoint(struct mf_state *st, const char *tenant, const char *ct,
                        int64_t ms);
int mf_state_poll_done(struct mf_state *st, const char *tenant, const char *ct,
                       int64_t now_ms, const char *error);

/* 1 delivered before, 0 not, -1 error. */
int mf_state_blob_delivered(struct mf_state *st, const char *tenant,
                            const char *ct, const char *content_id);
/* 1 when the record Id was delivered within the horizon, 0 not, -1 error. */
int mf_state_id_seen(struct mf_state *st, const char *tenant, const char *id);

/* Mark a blob's delivery as started (durably, before the first record
 * reaches an output). N >= 1 when it was already marked - N earlier
 * attempts were interrupted, each may have left its records downstream,
 * so what follows may duplicate them N times -, 0 when not, -1 error. */
int mf_state_blob_begin(struct mf_state *st, const char *tenant, const char *ct,
                        const char *content_id, int64_t now_ms);
/* Record a delivered blob and its record Ids in one transaction, then
 * clear its in-flight mark - inside a transaction of the caller's
 * (mf_state_txn_begin) the caller clears it with mf_state_blob_end() after
 * the commit. redelivered: records delivered again after an interrupted
 * attempt (see mf_state_blob_begin). */
int mf_state_commit_blob(struct mf_state *st, const char *tenant, const char *ct,
                         const char *content_id, int64_t content_created_ms,
                         const char *const *ids, size_t n_ids, size_t duplicates,
                         size_t redelivered, int64_t now_ms);

/* A write transaction of the caller's: the calls in between,
 * mf_state_commit_blob included, take effect together at
 * mf_state_txn_end(st, true); false rolls back. It holds the process's
 * writer lock of state.db until then. 0 / -1. */
int mf_state_txn_begin(struct mf_state *st);
int mf_state_txn_end(struct mf_state *st, bool commit);

/* Clear a blob's in-flight mark and its outputs' acknowledgements. */
int mf_state_blob_end(struct mf_state *st, const char *tenant, const char *ct,
                      const char *content_id);

/* Per-output acknowledgement of a blob that is not committed yet (an
 * output failed): output (its name) acknowledged every record of the blob,
 * so when the blob comes again it goes only to the others. Kept in
 * inflight.db (survives kill -9; losing it only costs duplicates), cleared
 * by mf_state_blob_end() and by mf_state_prune(). 0 / -1. */
int mf_state_blob_acked(struct mf_state *st, const char *tenant, const char *ct,
                        const char *content_id, const char *output, int64_t now_ms);
typedef void (*mf_state_output_fn)(const char *output, void *ud);
/* fn(output) for every output that acknowledged the blob; how many, or -1. */
int mf_state_blob_acks(struct mf_state *st, const char *tenant, const char *ct,
                       const char *content_id, mf_state_output_fn fn, void *ud);

int mf_state_add_gap(struct mf_state *st, const char *tenant, const char *ct,
                     int64_t start_ms, int64_t end_ms, int64_t now_ms);
int mf_state_gap_emitted(struct mf_state *st, const char *tenant, const char *ct,
                         int64_t start_ms);
/* Gaps of a stream, oldest first; returns how many were written (<= max). */
int mf_state_gaps(struct mf_state *st, const char *tenant, const char *ct,
                  struct mf_gap *out, int max);

/* Forget blobs created and Ids seen before the given times. */
int mf_state_prune(struct mf_state *st, int64_t blobs_before_ms, int64_t ids_before_ms);

typedef int (*mf_state_stream_fn)(const struct mf_stream_state *s, void *ud);
/* Every stream, ordered by tenant and content type; stops when fn != 0. */
int mf_state_foreach_stream(struct mf_state *st, mf_state_stream_fn fn, void *ud);

/* The key a record Id is remembered by: a 128-bit hash of (tenant, Id). */
void mf_state_id_hash(const char *tenant, const char *id, uint64_t h[2]);
typedef int (*mf_state_id_fn)(const uint64_t h[2], void *ud);
/* The key of every record Id remembered (any order); stops when fn != 0.
 * The number visited, or -1. */
int mf_state_foreach_id(struct mf_state *st, mf_state_id_fn fn, void *ud);

/* Cluster mode: the cache takes what the state topic says. The stream's
 * checkpoint becomes ms (even backwards; the row is created when missing). */
int mf_state_checkpoint_set(struct mf_state *st, const char *tenant, const char *ct,
                            int64_t ms);
/* A blob delivered (by any agent) and its record Id keys (keys[2 i],
 * keys[2 i + 1]: mf_state_id_hash of each), without touching the stream's
 * counters. Inside a caller's transaction when one is open. */
int mf_state_remember_blob(struct mf_state *st, const char *tenant, const char *ct,
                           const char *content_id, int64_t content_created_ms,
                           int64_t delivered_ms, const uint64_t *keys, size_t n_keys);

const char *mf_state_errmsg(struct mf_state *st);

/* Small named values kept with the state (meta table): the clock skew
 * measured against the API, when the state was created or reset. get: 1
 * found, 0 not, -1 error. */
int mf_state_meta_set(struct mf_state *st, const char *key, const char *value);
int mf_state_meta_get(struct mf_state *st, const char *key, char *out, size_t n);

/* How this state began, for the log and `status` (meta keys created_ms,
 * reset_ms, reset_reason). created_now: state.db did not exist before this
 * open. reset: it did not exist although the directory had been used by an
 * agent before (spool/ or the lock file were there): everything restarts
 * from collect.initial_lookback. */
struct mf_state_origin {
    bool created_now;
    bool reset;
    int64_t created_ms;          /* 0 = unknown (state older than this) */
    int64_t reset_ms;            /* 0 = never reset */
    char reset_reason[160];
    char inflight_note[200];     /* inflight.db was damaged and set aside at
                                    this open: what happened, "" = no */
};
int mf_state_origin(struct mf_state *st, struct mf_state_origin *out);

/* One agent per state_dir: an exclusive lock on state_dir/lock (fcntl),
 * held until mf_state_unlock() or the process ends (also kill -9). NULL
 * when another process holds it (err names the directory and the holder's
 * PID) or the file cannot be locked. */
struct mf_state_lock;
struct mf_state_lock *mf_state_lock(const char *dir, char *err, size_t errsz);
void mf_state_unlock(struct mf_state_lock *l);
/* PID of the process holding the lock of dir, 0 when none, -1 unknown. */
long mf_state_lock_holder(const char *dir);

#endif
