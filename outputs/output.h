/* output.h - one interface for the file, kafka and syslog outputs.
 *
 * An output receives normalized events (core/event.h): it takes the form
 * its configuration asks for (schema, keep_raw; rendered once per record
 * whatever the number of outputs) and the facts and tags it needs for
 * headers, routing and syslog/CEF/LEEF. It never calls the normalizer.
 *
 * Delivery contract (what the checkpoint relies on):
 *   send()   accepts one event (the bytes are copied: the caller reuses the
 *            event at once). scratch is a buffer of the calling thread for
 *            this output (formatting outside the output's lock). MF_OK accepted; MF_RETRY the output
 *            cannot take more now (queue full, reconnecting): the caller
 *            calls poll() and sends the same record again - that is the
 *            backpressure that pauses collection; MF_DROP this output can
 *            never deliver this record (e.g. larger than the broker accepts):
 *            the output logged it with the record Id and counted it, and the
 *            next flush() fails, so the checkpoint holds.
 *   poll()   serves the transport (delivery reports, reconnects) for at most
 *            timeout_ms.
 *   flush()  the acknowledgement barrier: returns 0 once every record sent
 *            since the previous flush() is acknowledged (file: written and
 *            fsync'ed; kafka: delivery report without error; syslog tcp/tls:
 *            written to the socket without error, after a reconnect resend
 *            of what was in flight; udp: sent, best effort). -1 when any of
 *            them failed or timeout_ms passed: the caller must not checkpoint
 *            and will send those records again (duplicates possible,
 *            counted by the caller as redelivered).
 * Each output has its own schema and an optional filter (area, tag, minimum
 * severity, content type, tenant), applied by the caller (mf_output_wants).
 */
#ifndef MF_OUTPUT_H
#define MF_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "event.h"
#include "option.h"
#include "status.h"

struct mf_output;

/* ---- configuration (the common keys: outputs/output.c; each type's own
 * keys beside its code; the registry: outputs/registry.c) ------------- */

/* Values of `type`: the order of the registry. */
enum mf_output_type {
    MF_OUTPUT_FILE = 0,
    MF_OUTPUT_KAFKA,
    MF_OUTPUT_SYSLOG,
    MF_OUTPUT_NTYPES
};

/* Values of `schema`: the same numbers as enum mf_schema (core/event.h). */
#define MF_CONF_SCHEMA_OCSF 0
#define MF_CONF_SCHEMA_ECS  1
#define MF_CONF_SCHEMA_RAW  2

/* Output filter: every criterion given must match (AND); inside one list
 * any element matches (OR). Empty list / 0 = no criterion. */
struct mf_filter_conf {
    struct mf_strlist areas;         /* tag areas, names as mf_area_name() */
    struct mf_strlist tags;          /* tag ids */
    int64_t min_severity;            /* 0 = none; else 1..5 */
    struct mf_strlist content_types;
    struct mf_strlist tenants;       /* tenant names or ids */
    uint32_t line;                   /* line of the filter (or the output) */
};

/* The keys every output has. Enum fields are ints (the option engine
 * writes ints). */
struct mf_output_conf {
    const char *name;
    int type;                        /* enum mf_output_type */
    int schema;                      /* MF_CONF_SCHEMA_* */
    bool enabled;
    bool keep_raw;
    struct mf_filter_conf filter;
    int64_t max_in_flight;
    int64_t flush_timeout_ms;        /* bound of every wait on the output:
                                      * a send waiting for room, a flush,
                                      * close */
    uint32_t line;                   /* where the entry starts */
    const void *plugin;              /* the type's own conf struct
                                      * (struct mf_kafka_conf, ...) */
};

struct mf_output_list {
    const struct mf_output_conf *v;
    size_t n;
};

/* The `outputs[]` element table (common keys, kinds from the registry). */
extern const struct mf_optsec mf_output_sec;
/* The area names and content types filters accept (NULL-terminated). */
extern const struct mf_enum mf_output_areas[];
extern const struct mf_enum mf_content_type_choices[];
/* Tag ids of filters are checked once the catalogue is loaded (outputs/
 * know no normalizer): known() says whether an id exists. Adds one error
 * per unknown tag (file: for messages); returns the number added. */
size_t mf_output_check_tags(const struct mf_output_list *outs, const char *file,
                            bool (*known)(const char *id, void *ud), void *ud,
                            struct mf_err *err);

struct mf_output_stats {
    uint64_t sent;          /* accepted by send() */
    uint64_t acked;         /* acknowledged */
    uint64_t failed;        /* delivery failed (will be sent again) */
    uint64_t dropped;       /* refused for good (holds the checkpoint) */
    uint64_t retries;       /* send() answered MF_RETRY */
    uint64_t queued;        /* sent, not yet acknowledged (queue depth) */
};

/* flags */
#define MF_OUTPUT_CONCURRENT 0x01   /* send() may run on several threads at
                                       once (the output locks what it must) */

struct mf_output_ops {
    const char *name;                  /* the `type` value: "file", ... */
    const char *desc;                  /* one line for the reference */
    const struct mf_optsec *options;   /* the type's own keys (its conf
                                          struct: conf->plugin) */
    unsigned flags;
    /* Create the transport from the configuration. NULL with err set. */
    struct mf_output *(*open)(const struct mf_output_conf *conf,
                              struct mf_err *err);
    enum mf_status (*send)(struct mf_output *o, struct mf_event *ev, struct mf_buf *scratch);
    void (*poll)(struct mf_output *o, int timeout_ms);
    int (*flush)(struct mf_output *o, int timeout_ms);
    /* Optional: flush() in three steps for a caller that serializes sends
     * with a lock of its own, so the slow part does not hold the senders.
     * flush_start() (under that lock) hands what was sent to the
     * transport; flush_sync() (without the lock; may run while others
     * send) waits until it is acknowledged; flush_done() (under the lock)
     * takes flush_sync()'s result and returns what flush() would have:
     * 0 when every record sent before flush_start() was acknowledged.
     * One split flush at a time. */
    void (*flush_start)(struct mf_output *o);
    int (*flush_sync)(struct mf_output *o, int timeout_ms);
    int (*flush_done)(struct mf_output *o, int sync_rc);
    void (*stats)(const struct mf_output *o, struct mf_output_stats *out);
    /* Flush within a bounded time (the conf's flush timeout), then free. */
    void (*close)(struct mf_output *o);
    /* Optional: the last acknowledgement barrier of a stream (the end of
     * `import`): flush(), and where the transport's acknowledgement is
     * weaker than the receiver having read the records, confirm that too.
     * syslog tcp/tls half-closes the connection and waits for the
     * receiver to close its side (it read everything); a reset sends the
     * resend window and what was not confirmed again on a new connection,
     * until timeout_ms. 0 / -1 as flush(). NULL: flush() is enough. */
    int (*drain)(struct mf_output *o, int timeout_ms);
};

/* Every output starts with this header so the generic code can reach its
 * ops and configuration. */
struct mf_output {
    const struct mf_output_ops *ops;
    const struct mf_output_conf *conf;
};

/* The registry (outputs/registry.c): the ops of a `type` value, or NULL. */
const struct mf_output_ops *mf_output_ops_for(int type /* enum mf_output_type */);
extern const struct mf_enum mf_output_type_choices[];
extern const struct mf_optsec *const mf_output_kinds[MF_OUTPUT_NTYPES];

/* Open by configuration type. NULL with err set. */
struct mf_output *mf_output_open(const struct mf_output_conf *conf,
                                 struct mf_err *err);

/* The output's filter accepts this event (tenant: ev->tenant or
 * ev->tenant_id). */
bool mf_output_wants(const struct mf_output_conf *conf, const struct mf_event *ev);

/* The form this output sends (its schema and keep_raw): NULL when it
 * cannot be rendered (ev->error). */
static inline const struct mf_event_form *
mf_output_form(const struct mf_output *o, struct mf_event *ev)
{
    return mf_event_form(ev, (enum mf_schema)o->conf->schema, o->conf->keep_raw);
}

/* send(), and on MF_RETRY poll and try again until accepted or
 * timeout_ms passes (then MF_RETRY). */
enum mf_status mf_output_send_wait(struct mf_output *o, struct mf_event *ev,
                                   struct mf_buf *scratch, int timeout_ms);

static inline enum mf_status
mf_output_send(struct mf_output *o, struct mf_event *ev, struct mf_buf *scratch)
{
    return o->ops->send(o, ev, scratch);
}
static inline void
mf_output_poll(struct mf_output *o, int timeout_ms)
{
    if (o->ops->poll)
        o->ops->poll(o, timeout_ms);
}
static inline int
mf_output_flush(struct mf_output *o, int timeout_ms)
{
    return o->ops->flush(o, timeout_ms);
}
static inline int
mf_output_drain(struct mf_output *o, int timeout_ms)
{
    return o->ops->drain ? o->ops->drain(o, timeout_ms) : o->ops->flush(o, timeout_ms);
}
static inline void
mf_output_close(struct mf_output *o)
{
    if (o)
        o->ops->close(o);
}

/* Topic / key templates for kafka: {tenant} {tenant_id} {content_type}
 * {area} (of the most severe tag; "none" when untagged) {class_uid}
 * {schema} {id}. Characters Kafka does not allow in a topic name that come
 * from placeholder values become '_'. Returns bytes written (truncated to
 * n - 1), for tests and the kafka output. */
size_t mf_output_expand(const char *tmpl, const struct mf_event *ev,
                        enum mf_schema schema, bool topic, char *buf, size_t n);

extern const struct mf_output_ops mf_output_file_ops;
extern const struct mf_output_ops mf_output_kafka_ops;
extern const struct mf_output_ops mf_output_syslog_ops;

#endif
