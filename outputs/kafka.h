/* kafka.h - the Kafka output (librdkafka producer): mf_output_kafka_ops.
 *
 * Configuration (struct mf_kafka_conf, table mf_kafka_sec in
 * outputs/kafka_conf.c; docs/configuration.md):
 *   brokers            -> bootstrap.servers
 *   compression        -> compression.codec (none|gzip|snappy|lz4|zstd)
 *   max_in_flight      -> queue.buffering.max.messages (records sent and not
 *                         yet acknowledged; beyond it send() says MF_RETRY)
 *   rdkafka            every property passed to rd_kafka_conf_set(), after
 *                      the defaults below, so it may override them
 *   rdkafka_secret_files / rdkafka_secret_env
 *                      properties whose value is read with
 *                      mf_secret_load() at open
 *   flush_timeout      (a common key) bound of close()
 * Defaults (overridable through `rdkafka`): enable.idempotence=true,
 * acks=all, queue.buffering.max.kbytes=32768 (bounded memory),
 * client.id=m365fwd. A property librdkafka refuses makes open() fail with
 * an error naming the output and the property; values of sensitive
 * properties (mf_kafka_prop_sensitive(), and every secret source) are shown
 * as <redacted>, also inside librdkafka's own error text.
 *
 * Messages: value = the normalized event; key = the `key` template (default
 * "{id}", no key when it expands to ""); topic = the `topic` template per
 * record (mf_output_expand). Headers on every message:
 *   m365fwd-tenant        tenant name
 *   m365fwd-content-type  content type (Audit.Exchange, ...)
 *   m365fwd-tags          tag ids, comma-separated ("" when untagged)
 *   m365fwd-severity      highest tag severity, 1..5 (1 when untagged)
 *   m365fwd-schema        ocsf | ecs | raw
 *   m365fwd-id            the record Id ("" when it has none)
 *
 * Acknowledgement: every message carries the flush epoch it was sent in;
 * delivery reports count acked / failed per epoch, and flush() returns 0
 * only when every message of the current epoch has a report without error.
 * Retriable errors are retried inside librdkafka. A permanent error
 * (mf_kafka_err_permanent(): message too large, authorization, unknown
 * topic, ...) is logged with the record Id, counted as dropped and fails
 * the next flush(); other failures (message timeout, purge) are counted as
 * failed and fail it too. Reports of an earlier epoch (after a flush that
 * timed out) only update the counters. After a fatal producer error
 * (error_cb RD_KAFKA_RESP_ERR__FATAL) send() returns MF_FATAL, the next
 * flush() returns -1 and re-creates the producer. librdkafka's log and error
 * callbacks are served on the thread calling send/poll/flush and go
 * through mf_log.
 */
#ifndef MF_OUTPUT_KAFKA_H
#define MF_OUTPUT_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "output.h"

enum mf_kafka_compression {
    MF_KAFKA_COMPRESS_UNSET = -1,    /* leave librdkafka's compression.codec */
    MF_KAFKA_COMPRESS_NONE = 0,
    MF_KAFKA_COMPRESS_GZIP,
    MF_KAFKA_COMPRESS_SNAPPY,
    MF_KAFKA_COMPRESS_LZ4,
    MF_KAFKA_COMPRESS_ZSTD,
};

/* The kafka output's own keys (conf->plugin of a kafka output). */
struct mf_kafka_conf {
    const char *brokers;
    const char *topic;
    const char *key;
    int compression;                 /* enum mf_kafka_compression */
    struct mf_kvlist rdkafka;
    struct mf_kvlist rdkafka_secret_files;
    struct mf_kvlist rdkafka_secret_env;
};

extern const struct mf_optsec mf_kafka_sec;

/* Shared with the other sections that configure librdkafka (the `cluster`
 * section of cluster mode). */
/* `host:port[,host:port]` (an option checker). */
int mf_kafka_check_brokers(const char *s, char *why, size_t n);
/* A librdkafka property that a dedicated key sets instead. */
struct mf_kafka_owned {
    const char *prop;
    const char *key;
};
/* The checks of rdkafka / rdkafka_secret_files / rdkafka_secret_env at path:
 * no secret written inline, no property owned by a key (owned: ends with
 * {NULL}), a property in one place only, valid variable names. */
void mf_kafka_check_props(const struct mf_optctx *c, const char *path,
                          const struct mf_kvlist *rdkafka, const struct mf_kvlist *files,
                          const struct mf_kvlist *env, const struct mf_kafka_owned *owned);
/* The same set of host:port (order, spaces and case aside). */
bool mf_kafka_same_brokers(const char *a, const char *b);
/* Every property of a is in b with the same value; else *differs (may be
 * NULL) names one that is not. */
bool mf_kafka_kv_within(const struct mf_kvlist *a, const struct mf_kvlist *b,
                        const char **differs);
/* The placeholders of topics and keys, as a reference section. */
void mf_kafka_doc_placeholders(struct mf_buf *b);

/* Header names (a public contract: append only). */
#define MF_KAFKA_HDR_TENANT       "m365fwd-tenant"
#define MF_KAFKA_HDR_CONTENT_TYPE "m365fwd-content-type"
#define MF_KAFKA_HDR_TAGS         "m365fwd-tags"
#define MF_KAFKA_HDR_SEVERITY     "m365fwd-severity"
#define MF_KAFKA_HDR_SCHEMA       "m365fwd-schema"
#define MF_KAFKA_HDR_ID           "m365fwd-id"

/* Distinct topics kept as rd_kafka_topic_t handles; beyond that a topic is
 * named per message (RD_KAFKA_V_TOPIC). */
#define MF_KAFKA_TOPIC_CACHE 64

/* How a librdkafka property is treated (one table, kafka_conf.c):
 * SECRET  its value is a credential (password, secret, key material): never
 *         written in the configuration (rdkafka_secret_files/_env only) and
 *         never shown;
 * HIDDEN  never shown in a message (key locations, user names, tokens);
 * PLAIN   shown in errors. */
enum mf_kafka_prop { MF_KAFKA_PROP_PLAIN = 0, MF_KAFKA_PROP_HIDDEN, MF_KAFKA_PROP_SECRET };
enum mf_kafka_prop mf_kafka_prop_class(const char *prop);
/* A property whose value must never be echoed (SECRET or HIDDEN). */
bool mf_kafka_prop_sensitive(const char *prop);

/* A delivery error that retrying the same message cannot fix
 * (rd_kafka_resp_err_t value). */
bool mf_kafka_err_permanent(int err);

/* The effective librdkafka property of an open kafka output (tests,
 * preflight). 0, or -1 when unknown or too long for buf. */
int mf_kafka_conf_get(const struct mf_output *o, const char *prop, char *buf,
                      size_t n);

/* The rd_kafka_t of an open kafka output (tests: fault injection). It
 * changes when the producer is re-created after a fatal error. */
void *mf_kafka_handle(struct mf_output *o);

/* ---- transactions (cluster mode, agent/cluster.c) ----------------------
 *
 * One transactional producer per agent carries, in each transaction, the
 * records of the Kafka outputs attached to it and the agent's own state
 * records, then the consumer group's offsets (KIP-447: a member the group
 * no longer knows cannot commit) and the commit. An attached output keeps
 * its topic and key templates, headers, epochs and counters; only the
 * handle is shared. Every record sent while a transaction is open belongs
 * to it: the caller makes sure no record of a blob straddles two
 * transactions (agent/deliver.c: the commit barrier).
 *
 * After an abort, or a fatal error (the producer is then re-created with
 * the same transactional.id, which fences the old epoch), a new
 * transaction is open again; records sent through an attached output
 * while the producer cannot take them are refused (MF_FATAL) and the
 * output's next flush fails. */

#define MF_KAFKA_PEERS_MAX 32        /* outputs sharing one producer (+1) */

struct mf_kafka_txn;

/* c: a kafka output configuration (plugin: struct mf_kafka_conf with
 * brokers and the rdkafka maps; topic unused; compression
 * MF_KAFKA_COMPRESS_UNSET leaves it to `rdkafka`). Runs init_transactions
 * (bounded by timeout_ms, also the bound of each later transactional call)
 * and begins the first transaction. NULL with err set. */
struct mf_kafka_txn *mf_kafka_txn_new(const char *name, const struct mf_output_conf *c,
                                      const char *txn_id, int timeout_ms,
                                      struct mf_err *err);
/* Send the records of an open Kafka output through t (its own producer is
 * closed: call it before anything is sent). 0 / -1 with err. */
int mf_kafka_txn_attach(struct mf_kafka_txn *t, struct mf_output *o, struct mf_err *err);
/* True when the output sends through a shared (transactional) producer. */
bool mf_kafka_is_shared(const struct mf_output *o);
/* One record of the owner's (value NULL: a tombstone) in the open
 * transaction. 0 / -1 with why. */
int mf_kafka_txn_produce(struct mf_kafka_txn *t, const char *topic, int32_t partition,
                         const void *key, size_t klen, const void *value, size_t vlen,
                         char *why, size_t whysz);
/* Wait for the owner's records, send the group's offsets (cgmd: an
 * rd_kafka_consumer_group_metadata_t of the group's consumer; offset 0 on
 * each of parts[] of topic; none when n is 0), commit, begin the next.
 * 0 committed; -1 aborted (why says why; a new transaction is open). */
int mf_kafka_txn_commit(struct mf_kafka_txn *t, const void *cgmd, const char *topic,
                        const int32_t *parts, size_t n, char *why, size_t whysz);
/* An rd_kafka_conf_t (as void *) with the `rdkafka` properties, the secret
 * ones (read now) and bootstrap.servers, for the other clients of cluster
 * mode; errors name label and never show a secret value. NULL with err. */
void *mf_kafka_rdconf_new(const char *label, const struct mf_kafka_conf *k, char *err,
                          size_t errsz);
/* Abort the open transaction and begin the next. */
void mf_kafka_txn_abort(struct mf_kafka_txn *t);
/* Something was produced in the open transaction. */
bool mf_kafka_txn_dirty(struct mf_kafka_txn *t);
/* Abort what is open, close (after the attached outputs are closed). */
void mf_kafka_txn_destroy(struct mf_kafka_txn *t);

#endif
