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

#include "buf.h"
#include "output.h"

enum mf_kafka_compression {
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

#endif
