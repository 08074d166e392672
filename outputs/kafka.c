/* kafka.c - the Kafka output over librdkafka; see kafka.h. */
#include "kafka.h"
#include "clock.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "secret.h"
#include "log.h"
#include "mem.h"

#define TOPIC_NAME_MAX 249          /* Kafka's limit */
#define KEY_MAX 1024
#define TAGS_MAX 1024
#define SECRETS_MAX 32
#define FAIL_LOG_MAX 20             /* transient failures logged per epoch */
#define PERM_LOG_MAX 200            /* permanent ones (each with its Id) */
#define ERR_REPEAT_MS 5000          /* same error_cb code: debug in between */
#define FLUSH_SLICE_MS 20
#define EPOCH_SLOTS 4               /* flush epochs whose reports still count */
#define POLL_EVERY 64               /* sends between two rd_kafka_poll(0) */

struct topic_slot {
    char *name;
    size_t len;
    rd_kafka_topic_t *rkt;
};

/* What happened to the messages sent in one flush epoch. */
struct epoch {
    uint64_t id;                    /* which epoch the slot holds */
    uint64_t sent;                  /* accepted by send() */
    uint64_t done;                  /* delivery reports received */
    uint64_t failed;                /* ... with a transient error */
    uint64_t permanent;             /* ... with a permanent error */
    uint64_t refused;               /* refused by send() (MF_DROP) */
    uint64_t logged;                /* transient failures logged */
    uint64_t plogged;               /* permanent failures logged */
};

/* Threads: send() runs on several threads at once (produce is
 * thread-safe in librdkafka); mu guards the counters, the epochs and the
 * topic cache and is never held across a librdkafka call that serves
 * callbacks. rk_lock is read-held by senders and write-held to replace
 * the handle after a fatal error. */
struct kafka_output {
    struct mf_output base;          /* first: the generic header */
    rd_kafka_t *rk;
    char *name;
    char *topic_tmpl;
    char *key_tmpl;
    pthread_mutex_t mu;
    pthread_rwlock_t rk_lock;
    struct topic_slot topics[MF_KAFKA_TOPIC_CACHE];
    size_t n_topics;
    size_t last_topic;              /* fast path: same topic as before */
    int flush_timeout_ms;
    struct mf_output_stats st;
    uint64_t epoch;                 /* the current flush epoch */
    struct epoch ep[EPOCH_SLOTS];   /* by epoch id modulo EPOCH_SLOTS */
    atomic_uint sends;              /* for the periodic poll */
    bool fatal;
    int last_err;                   /* error_cb flood control */
    int64_t last_err_ms;
};

/* The slot of epoch id while it is open, else NULL (its flush is over:
 * a late report only updates the totals). Under mu. */
static struct epoch *
epoch_of(struct kafka_output *ko, uint64_t id)
{
    struct epoch *e = &ko->ep[id % EPOCH_SLOTS];

    return e->id == id ? e : NULL;
}

/* Defaults applied before the user's `rdkafka` properties. */
static const struct {
    const char *prop;
    const char *value;
} kafka_defaults[] = {
    {"client.id", "m365fwd"},
    {"enable.idempotence", "true"},
    {"acks", "all"},
    {"queue.buffering.max.kbytes", "32768"},
    {"log.queue", "true"},
    {NULL, NULL},
};

static const char *const compression_names[] = {
    [MF_KAFKA_COMPRESS_NONE] = "none",
    [MF_KAFKA_COMPRESS_GZIP] = "gzip",
    [MF_KAFKA_COMPRESS_SNAPPY] = "snappy",
    [MF_KAFKA_COMPRESS_LZ4] = "lz4",
    [MF_KAFKA_COMPRESS_ZSTD] = "zstd",
};

/* Delivery errors that a retry of the same message cannot fix. */
static const rd_kafka_resp_err_t permanent_errors[] = {
    RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
    RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE,
    RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE,
    RD_KAFKA_RESP_ERR_INVALID_RECORD,
    RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
    RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED,
    RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION,
    RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
    RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS,
    RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT,
    RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED,
    RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC,
    RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION,
    RD_KAFKA_RESP_ERR__INVALID_ARG,
};

bool
mf_kafka_err_permanent(int err)
{
    size_t i;

    for (i = 0; i < sizeof(permanent_errors) / sizeof(permanent_errors[0]); i++)
        if ((int)permanent_errors[i] == err)
            return true;
    return false;
}

/* Copy src to dst replacing every occurrence of the secret values by
 * <redacted>. */
static void
redact(char *dst, size_t n, const char *src, const char *const *secrets,
       size_t n_secrets)
{
    size_t o = 0;

    if (n == 0)
        return;
    while (*src && o + 1 < n) {
        size_t i, hit = 0;

        for (i = 0; i < n_secrets && !hit; i++) {
            size_t l = secrets[i] ? strlen(secrets[i]) : 0;

            if (l && strncmp(src, secrets[i], l) == 0)
                hit = l;
        }
        if (hit) {
            const char *r = "<redacted>";

            while (*r && o + 1 < n)
                dst[o++] = *r++;
            src += hit;
            continue;
        }
        dst[o++] = *src++;
    }
    dst[o] = '\0';
}

/* ---------------------------------------------------------------------- */
/* librdkafka callbacks (served on the thread calling poll/flush)          */
/* ---------------------------------------------------------------------- */

static const char *
msg_id(const rd_kafka_message_t *m, char *buf, size_t n)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *v = NULL;
    size_t len = 0;

    buf[0] = '\0';
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(hdrs, MF_KAFKA_HDR_ID, &v, &len) ==
            RD_KAFKA_RESP_ERR_NO_ERROR && v) {
        if (len >= n)
            len = n - 1;
        memcpy(buf, v, len);
        buf[len] = '\0';
    }
    return buf[0] ? buf : "(none)";
}

static void
dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct kafka_output *ko = opaque;
    struct epoch *e;
    char id[160];

    (void)rk;
    pthread_mutex_lock(&ko->mu);
    e = epoch_of(ko, (uint64_t)(uintptr_t)m->_private);
    if (ko->st.queued)
        ko->st.queued--;
    if (e)
        e->done++;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ko->st.acked++;
    } else if (mf_kafka_err_permanent(m->err)) {
        ko->st.dropped++;
        if (e)
            e->permanent++;
        if (e && e->plogged++ < PERM_LOG_MAX)
            mf_log(MF_LOG_ERROR,
                   "output=%s id=%s topic=%s error=%s: %s; not delivered, "
                   "permanent (the checkpoint holds)", ko->name,
                   msg_id(m, id, sizeof(id)),
                   m->rkt ? rd_kafka_topic_name(m->rkt) : "?",
                   rd_kafka_err2name(m->err), rd_kafka_err2str(m->err));
    } else {
        ko->st.failed++;
        /* without its epoch: that flush already failed, the caller sends
         * the record again */
        if (e)
            e->failed++;
        if (e && e->logged++ < FAIL_LOG_MAX)
            mf_log(MF_LOG_WARN, "output=%s id=%s error=%s: %s (%s); will be sent "
                   "again", ko->name, msg_id(m, id, sizeof(id)),
                   rd_kafka_err2name(m->err), rd_kafka_err2str(m->err),
                   rd_kafka_message_status(m) == RD_KAFKA_MSG_STATUS_NOT_PERSISTED
                       ? "not persisted" : "possibly persisted");
    }
    pthread_mutex_unlock(&ko->mu);
}

static void
error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct kafka_output *ko = opaque;
    int64_t t = mf_clock_mono_ms();

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof(why));

        pthread_mutex_lock(&ko->mu);
        ko->fatal = true;
        pthread_mutex_unlock(&ko->mu);
        mf_log(MF_LOG_ERROR, "output=%s fatal producer error %s: %s; no more "
               "records are accepted until the producer is re-created (next flush)",
               ko->name, rd_kafka_err2name(orig), why);
        return;
    }
    /* broker connection failures are logged by librdkafka itself (log_cb) */
    pthread_mutex_lock(&ko->mu);
    if (err == RD_KAFKA_RESP_ERR__TRANSPORT ||
        (err == ko->last_err && t - ko->last_err_ms < ERR_REPEAT_MS)) {
        pthread_mutex_unlock(&ko->mu);
        mf_log(MF_LOG_DEBUG, "output=%s kafka %s: %s", ko->name,
               rd_kafka_err2name(err), reason);
        return;
    }
    ko->last_err = err;
    ko->last_err_ms = t;
    pthread_mutex_unlock(&ko->mu);
    mf_log(MF_LOG_WARN, "output=%s kafka %s: %s", ko->name,
           rd_kafka_err2name(err), reason);
}

static void
log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    struct kafka_output *ko = rd_kafka_opaque(rk);
    enum mf_log_level lvl = level <= 2 ? MF_LOG_ERROR
                            : level <= 4 ? MF_LOG_WARN
                            : level <= 6 ? MF_LOG_INFO : MF_LOG_DEBUG;

    mf_log(lvl, "output=%s rdkafka %s: %s", ko ? ko->name : "?", fac, buf);
}

/* ---------------------------------------------------------------------- */
/* open                                                                   */
/* ---------------------------------------------------------------------- */

struct secrets {
    struct mf_secret v[SECRETS_MAX];
    const char *val[SECRETS_MAX];
    size_t n;
};

static void
secrets_clear(struct secrets *s)
{
    size_t i;

    for (i = 0; i < s->n; i++)
        mf_secret_clear(&s->v[i]);
    s->n = 0;
}

/* rd_kafka_conf_set with an error that names the output and the property
 * and never shows a sensitive value. 0 / -1. */
static int
conf_set(rd_kafka_conf_t *conf, const char *out, const char *origin,
         const char *prop, const char *value, bool secret,
         const struct secrets *sec, char *err, size_t errsz)
{
    char why[512], clean[512];
    const char *shown[SECRETS_MAX + 1];
    size_t ns = 0, i;

    if (rd_kafka_conf_set(conf, prop, value, why, sizeof(why)) ==
        RD_KAFKA_CONF_OK)
        return 0;
    secret = secret || mf_kafka_prop_sensitive(prop);
    for (i = 0; i < sec->n; i++)
        shown[ns++] = sec->val[i];
    if (secret)
        shown[ns++] = value;
    redact(clean, sizeof(clean), why, shown, ns);
    snprintf(err, errsz, "outputs '%s': %s.%s = %s refused by librdkafka: %s",
             out, origin, prop, secret ? "<redacted>" : value, clean);
    return -1;
}

static int
configure(rd_kafka_conf_t *conf, const struct mf_output_conf *c,
          struct secrets *sec, char *err, size_t errsz)
{
    const struct mf_kafka_conf *k = c->plugin;
    char num[32], what[256];
    size_t i;

    for (i = 0; kafka_defaults[i].prop; i++)
        if (conf_set(conf, c->name, "default", kafka_defaults[i].prop,
                     kafka_defaults[i].value, false, sec, err, errsz) != 0)
            return -1;
    if (c->max_in_flight > 0) {
        snprintf(num, sizeof(num), "%" PRId64, c->max_in_flight);
        if (conf_set(conf, c->name, "max_in_flight",
                     "queue.buffering.max.messages", num, false, sec, err,
                     errsz) != 0)
            return -1;
    }
    for (i = 0; i < k->rdkafka.n; i++)
        if (conf_set(conf, c->name, "rdkafka", k->rdkafka.v[i].key,
                     k->rdkafka.v[i].value, false, sec, err, errsz) != 0)
            return -1;
    for (int pass = 0; pass < 2; pass++) {
        const struct mf_kvlist *kl = pass ? &k->rdkafka_secret_env
                                          : &k->rdkafka_secret_files;
        const char *origin = pass ? "rdkafka_secret_env" : "rdkafka_secret_files";

        for (i = 0; i < kl->n; i++) {
            const struct mf_kv *kv = &kl->v[i];
            size_t kl_len = strlen(kv->key);
            bool pem = kl_len >= 4 && strcmp(kv->key + kl_len - 4, ".pem") == 0;
            struct mf_secret *s;

            if (sec->n == SECRETS_MAX) {
                snprintf(err, errsz, "outputs '%s': more than %d secret "
                         "properties", c->name, SECRETS_MAX);
                return -1;
            }
            s = &sec->v[sec->n];
            snprintf(what, sizeof(what), "outputs '%s': %s.%s", c->name,
                     origin, kv->key);
            if (mf_secret_load(pass ? NULL : kv->value,
                                      pass ? kv->value : NULL, !pem, what, s,
                                      err, errsz) != 0)
                return -1;
            sec->val[sec->n++] = s->data;
            if (conf_set(conf, c->name, origin, kv->key, s->data, true, sec,
                         err, errsz) != 0)
                return -1;
        }
    }
    if (!k->brokers || !k->brokers[0]) {
        snprintf(err, errsz, "outputs '%s': no brokers", c->name);
        return -1;
    }
    if (conf_set(conf, c->name, "brokers", "bootstrap.servers", k->brokers,
                 false, sec, err, errsz) != 0)
        return -1;
    if (k->compression < 0 ||
        (size_t)k->compression >= sizeof(compression_names) /
                                      sizeof(compression_names[0])) {
        snprintf(err, errsz, "outputs '%s': unknown compression %d", c->name,
                 k->compression);
        return -1;
    }
    return conf_set(conf, c->name, "compression", "compression.codec",
                    compression_names[k->compression], false, sec, err, errsz);
}

/* A configured producer handle, or NULL with err set. */
static rd_kafka_t *
new_handle(struct kafka_output *ko, const struct mf_output_conf *c, char *err,
           size_t errsz)
{
    struct secrets sec = {.n = 0};
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char why[512], clean[512];
    rd_kafka_t *rk;

    if (configure(conf, c, &sec, err, errsz) != 0) {
        secrets_clear(&sec);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_opaque(conf, ko);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!rk) {
        redact(clean, sizeof(clean), why, sec.val, sec.n);
        snprintf(err, errsz, "outputs '%s': librdkafka refused the "
                 "configuration: %s", ko->name, clean);
        secrets_clear(&sec);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    secrets_clear(&sec);
    /* log lines travel through the main queue: served by our poll calls */
    rd_kafka_set_log_queue(rk, NULL);
    return rk;
}

static void
topics_clear(struct kafka_output *ko)
{
    size_t i;

    for (i = 0; i < ko->n_topics; i++) {
        rd_kafka_topic_destroy(ko->topics[i].rkt);
        free(ko->topics[i].name);
    }
    ko->n_topics = 0;
    ko->last_topic = 0;
}

/* Flush within timeout_ms, drop what is left (logged), destroy. */
static void
destroy_handle(struct kafka_output *ko, int timeout_ms)
{
    int left;

    rd_kafka_flush(ko->rk, timeout_ms);
    left = rd_kafka_outq_len(ko->rk);
    if (left > 0) {
        mf_log(MF_LOG_WARN, "output=%s closing with %d messages not "
               "acknowledged after %d ms; they are collected again on the "
               "next start", ko->name, left, timeout_ms);
        rd_kafka_purge(ko->rk, RD_KAFKA_PURGE_F_QUEUE |
                                   RD_KAFKA_PURGE_F_INFLIGHT |
                                   RD_KAFKA_PURGE_F_NON_BLOCKING);
        rd_kafka_poll(ko->rk, 0);
    }
    topics_clear(ko);
    rd_kafka_destroy(ko->rk);
    ko->rk = NULL;
}

static struct mf_output *
kafka_open(const struct mf_output_conf *c, struct mf_err *err)
{
    const struct mf_kafka_conf *k = c->plugin;
    struct kafka_output *ko;
    char e[512] = "";

    if (!k || !k->topic || !k->topic[0]) {
        mf_err_set(err, "outputs '%s': no topic", c->name ? c->name : "?");
        return NULL;
    }
    ko = mf_xcalloc(1, sizeof(*ko));
    ko->name = mf_xstrdup(c->name ? c->name : "kafka");
    ko->topic_tmpl = mf_xstrdup(k->topic);
    ko->key_tmpl = mf_xstrdup(k->key ? k->key : "{id}");
    ko->flush_timeout_ms = c->flush_timeout_ms > INT32_MAX
                               ? INT32_MAX : (int)c->flush_timeout_ms;
    ko->base.ops = &mf_output_kafka_ops;
    ko->base.conf = c;
    pthread_mutex_init(&ko->mu, NULL);
    pthread_rwlock_init(&ko->rk_lock, NULL);
    ko->rk = new_handle(ko, c, e, sizeof(e));
    if (!ko->rk) {
        mf_err_set(err, "%s", e);
        pthread_mutex_destroy(&ko->mu);
        pthread_rwlock_destroy(&ko->rk_lock);
        free(ko->key_tmpl);
        free(ko->topic_tmpl);
        free(ko->name);
        free(ko);
        return NULL;
    }
    return &ko->base;
}

/* After a fatal producer error (idempotence state lost...) the handle
 * refuses everything: replace it, holding the senders off. The records of
 * the failed epochs are sent again by the caller. */
static void
recreate(struct kafka_output *ko)
{
    char err[512];
    rd_kafka_t *rk;

    pthread_rwlock_wrlock(&ko->rk_lock);
    /* in-flight requests of the old handle may still complete */
    if (ko->rk)
        destroy_handle(ko, ko->flush_timeout_ms < 1000 ? ko->flush_timeout_ms
                                                       : 1000);
    rk = new_handle(ko, ko->base.conf, err, sizeof(err));
    if (!rk) {
        pthread_rwlock_unlock(&ko->rk_lock);
        mf_log(MF_LOG_ERROR, "output=%s cannot re-create the producer: %s",
               ko->name, err);
        return;     /* still fatal: send() keeps refusing */
    }
    pthread_mutex_lock(&ko->mu);
    ko->rk = rk;
    ko->fatal = false;
    ko->st.queued = 0;
    pthread_mutex_unlock(&ko->mu);
    pthread_rwlock_unlock(&ko->rk_lock);
    mf_log(MF_LOG_WARN, "output=%s producer re-created after a fatal error",
           ko->name);
}

/* ---------------------------------------------------------------------- */
/* send                                                                   */
/* ---------------------------------------------------------------------- */

/* The cached handle of a topic, or NULL when the cache is full. Under
 * mu. */
static rd_kafka_topic_t *
topic_get(struct kafka_output *ko, const char *name, size_t len)
{
    struct topic_slot *s;
    size_t i;

    if (ko->n_topics) {
        s = &ko->topics[ko->last_topic];
        if (s->len == len && memcmp(s->name, name, len) == 0)
            return s->rkt;
    }
    for (i = 0; i < ko->n_topics; i++) {
        s = &ko->topics[i];
        if (s->len == len && memcmp(s->name, name, len) == 0) {
            ko->last_topic = i;
            return s->rkt;
        }
    }
    if (ko->n_topics == MF_KAFKA_TOPIC_CACHE)
        return NULL;
    s = &ko->topics[ko->n_topics];
    s->rkt = rd_kafka_topic_new(ko->rk, name, NULL);
    if (!s->rkt)
        return NULL;
    s->name = mf_xstrndup(name, len);
    s->len = len;
    ko->last_topic = ko->n_topics++;
    return s->rkt;
}

/* A record this output can never take: counted in epoch e, logged with
 * its Id. Under mu. */
static enum mf_status
refuse(struct kafka_output *ko, uint64_t e, const struct mf_event *ev, size_t len,
       const char *why)
{
    struct epoch *ep = epoch_of(ko, e);

    ko->st.dropped++;
    if (ep)
        ep->refused++;
    if (!ep || ep->plogged++ < PERM_LOG_MAX)
        mf_log(MF_LOG_ERROR, "output=%s id=%s size=%zu: %s; not delivered, "
               "permanent (the checkpoint holds)", ko->name,
               ev->id[0] ? ev->id : "(none)", len, why);
    return MF_DROP;
}

/* The end of a send that librdkafka did not take: undo the count, then
 * classify. Under mu. */
static enum mf_status
not_taken(struct kafka_output *ko, uint64_t e, const struct mf_event *ev, size_t len,
          rd_kafka_resp_err_t err)
{
    struct epoch *ep = epoch_of(ko, e);
    char why[160];

    if (ep)
        ep->sent--;
    ko->st.sent--;
    ko->st.queued--;
    switch (err) {
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        ko->st.retries++;
        return MF_RETRY;
    case RD_KAFKA_RESP_ERR__FATAL:
        ko->fatal = true;
        ko->st.dropped++;
        if (ep)
            ep->refused++;
        return MF_FATAL;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        return refuse(ko, e, ev, len, "larger than message.max.bytes "
                                      "(MSG_SIZE_TOO_LARGE)");
    default:
        snprintf(why, sizeof(why), "refused by librdkafka: %s: %s",
                 rd_kafka_err2name(err), rd_kafka_err2str(err));
        return refuse(ko, e, ev, len, why);
    }
}

static enum mf_status
kafka_send(struct mf_output *o, struct mf_event *ev, struct mf_buf *scratch)
{
    struct kafka_output *ko = (struct kafka_output *)o;
    const struct mf_event_form *f = mf_output_form(o, ev);
    char topic[TOPIC_NAME_MAX + 2], key[KEY_MAX], tags[TAGS_MAX], sev[8];
    const char *tenant = ev->tenant ? ev->tenant : "";
    const char *ct = ev->content_type ? ev->content_type : "";
    const char *schema = mf_schema_name((enum mf_schema)o->conf->schema);
    const char *id = ev->id;
    size_t tlen, klen, glen, len = f ? f->text.len : 0;
    rd_kafka_topic_t *rkt;
    rd_kafka_resp_err_t err;
    enum mf_status st = MF_OK;
    uint64_t e;

    (void)scratch;
    if (!f)
        return MF_DROP;
    tlen = mf_output_expand(ko->topic_tmpl, ev, (enum mf_schema)o->conf->schema,
                            true, topic, sizeof(topic));
    klen = mf_output_expand(ko->key_tmpl, ev, (enum mf_schema)o->conf->schema, false,
                            key, sizeof(key));
    glen = mf_event_join_tags(ev, ',', tags, sizeof(tags));
    snprintf(sev, sizeof(sev), "%d", ev->severity < 1 ? 1 : ev->severity);

    pthread_rwlock_rdlock(&ko->rk_lock);
    pthread_mutex_lock(&ko->mu);
    e = ko->epoch;
    if (ko->fatal || !ko->rk) {
        struct epoch *ep = epoch_of(ko, e);

        ko->st.dropped++;
        if (ep)
            ep->refused++;
        st = MF_FATAL;
    } else if (tlen == 0 || tlen > TOPIC_NAME_MAX) {
        st = refuse(ko, e, ev, len, tlen ? "topic name longer than 249 characters"
                                         : "empty topic name");
    } else if (tlen <= 2 && (strcmp(topic, ".") == 0 || strcmp(topic, "..") == 0)) {
        st = refuse(ko, e, ev, len, "topic name '.' or '..'");
    }
    if (st != MF_OK) {
        pthread_mutex_unlock(&ko->mu);
        pthread_rwlock_unlock(&ko->rk_lock);
        return st;
    }
    rkt = topic_get(ko, topic, tlen);
    epoch_of(ko, e)->sent++;
    ko->st.sent++;
    ko->st.queued++;
    pthread_mutex_unlock(&ko->mu);

#define MF_KAFKA_COMMON_ARGS                                                  \
    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),                                 \
    RD_KAFKA_V_VALUE((void *)f->text.data, f->text.len),                      \
    RD_KAFKA_V_KEY(klen ? key : NULL, klen),                                  \
    RD_KAFKA_V_OPAQUE((void *)(uintptr_t)e),                                  \
    RD_KAFKA_V_HEADER(MF_KAFKA_HDR_TENANT, tenant, (ssize_t)strlen(tenant)),  \
    RD_KAFKA_V_HEADER(MF_KAFKA_HDR_CONTENT_TYPE, ct, (ssize_t)strlen(ct)),    \
    RD_KAFKA_V_HEADER(MF_KAFKA_HDR_TAGS, tags, (ssize_t)glen),                \
    RD_KAFKA_V_HEADER(MF_KAFKA_HDR_SEVERITY, sev, (ssize_t)strlen(sev)),      \
    RD_KAFKA_V_HEADER(MF_KAFKA_HDR_SCHEMA, schema, (ssize_t)strlen(schema)),  \
    RD_KAFKA_V_HEADER(MF_KAFKA_HDR_ID, id, (ssize_t)strlen(id)),              \
    RD_KAFKA_V_END

    if (rkt)
        err = rd_kafka_producev(ko->rk, RD_KAFKA_V_RKT(rkt),
                                MF_KAFKA_COMMON_ARGS);
    else
        err = rd_kafka_producev(ko->rk, RD_KAFKA_V_TOPIC(topic),
                                MF_KAFKA_COMMON_ARGS);
#undef MF_KAFKA_COMMON_ARGS

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        pthread_mutex_lock(&ko->mu);
        st = not_taken(ko, e, ev, len, err);
        pthread_mutex_unlock(&ko->mu);
    }
    /* serve delivery reports as we go (and at once when full) */
    if (st == MF_RETRY || atomic_fetch_add(&ko->sends, 1) % POLL_EVERY == 0)
        rd_kafka_poll(ko->rk, 0);
    pthread_rwlock_unlock(&ko->rk_lock);
    return st;
}

/* ---------------------------------------------------------------------- */
/* poll, flush, stats, close                                              */
/* ---------------------------------------------------------------------- */

static void
kafka_poll(struct mf_output *o, int timeout_ms)
{
    struct kafka_output *ko = (struct kafka_output *)o;

    pthread_rwlock_rdlock(&ko->rk_lock);
    if (ko->rk)
        rd_kafka_poll(ko->rk, timeout_ms < 0 ? 0 : timeout_ms);
    pthread_rwlock_unlock(&ko->rk_lock);
}

/* Epoch e has every delivery report it waits for, or cannot get them. */
static bool
epoch_settled(struct kafka_output *ko, uint64_t e)
{
    const struct epoch *ep;
    bool done;

    pthread_mutex_lock(&ko->mu);
    ep = epoch_of(ko, e);
    done = !ep || ep->done >= ep->sent || ko->fatal || !ko->rk;
    pthread_mutex_unlock(&ko->mu);
    return done;
}

/* The acknowledgement barrier for every message sent before the call:
 * they belong to the epoch closed here; sends that run meanwhile go to
 * the next one. */
static int
kafka_flush(struct mf_output *o, int timeout_ms)
{
    struct kafka_output *ko = (struct kafka_output *)o;
    int64_t deadline = mf_clock_mono_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
    struct epoch ep;
    uint64_t e, pending;
    bool fatal;
    int rc = 0;

    pthread_mutex_lock(&ko->mu);
    e = ko->epoch++;
    ko->ep[ko->epoch % EPOCH_SLOTS] = (struct epoch){.id = ko->epoch};
    pthread_mutex_unlock(&ko->mu);
    pthread_rwlock_rdlock(&ko->rk_lock);
    for (;;) {
        int64_t left = deadline - mf_clock_mono_ms();

        if (epoch_settled(ko, e))
            break;
        if (left <= 0) {
            rd_kafka_poll(ko->rk, 0);
            break;
        }
        /* rd_kafka_flush sends lingering batches at once and serves the
         * delivery reports; other epochs may be outstanding, so wait in
         * slices and look at this one only */
        rd_kafka_flush(ko->rk, (int)(left < FLUSH_SLICE_MS ? left : FLUSH_SLICE_MS));
    }
    pthread_rwlock_unlock(&ko->rk_lock);
    pthread_mutex_lock(&ko->mu);
    ep = epoch_of(ko, e) ? *epoch_of(ko, e) : (struct epoch){.id = e};
    ko->ep[e % EPOCH_SLOTS].id = UINT64_MAX;    /* closed: late reports only count */
    fatal = ko->fatal || !ko->rk;
    pthread_mutex_unlock(&ko->mu);
    pending = ep.sent > ep.done ? ep.sent - ep.done : 0;
    if (pending) {
        mf_log(MF_LOG_WARN, "output=%s %" PRIu64 " of %" PRIu64 " records not "
               "acknowledged within %d ms", ko->name, pending, ep.sent, timeout_ms);
        rc = -1;
        /* they will be sent again: what never left the queue goes now (no
         * late copy once the brokers are back); what is in flight stays */
        pthread_rwlock_rdlock(&ko->rk_lock);
        if (ko->rk)
            rd_kafka_purge(ko->rk, RD_KAFKA_PURGE_F_QUEUE);
        pthread_rwlock_unlock(&ko->rk_lock);
    }
    if (ep.failed || ep.permanent || ep.refused) {
        mf_log(MF_LOG_ERROR, "output=%s %" PRIu64 " records failed, %" PRIu64
               " refused for good (%" PRIu64 " not logged one by one): not "
               "acknowledged", ko->name, ep.failed, ep.permanent + ep.refused,
               ep.plogged > PERM_LOG_MAX ? ep.plogged - PERM_LOG_MAX : 0);
        rc = -1;
    }
    if (fatal) {
        rc = -1;
        recreate(ko);
    }
    return rc;
}

static void
kafka_stats(const struct mf_output *o, struct mf_output_stats *out)
{
    struct kafka_output *ko = (struct kafka_output *)o;

    pthread_mutex_lock(&ko->mu);
    *out = ko->st;
    pthread_mutex_unlock(&ko->mu);
}

static void
kafka_close(struct mf_output *o)
{
    struct kafka_output *ko = (struct kafka_output *)o;

    if (!ko)
        return;
    if (ko->rk)
        destroy_handle(ko, ko->flush_timeout_ms);
    pthread_mutex_destroy(&ko->mu);
    pthread_rwlock_destroy(&ko->rk_lock);
    free(ko->key_tmpl);
    free(ko->topic_tmpl);
    free(ko->name);
    free(ko);
}

void *
mf_kafka_handle(struct mf_output *o)
{
    return o ? ((struct kafka_output *)o)->rk : NULL;
}

int
mf_kafka_conf_get(const struct mf_output *o, const char *prop, char *buf,
                  size_t n)
{
    const struct kafka_output *ko = (const struct kafka_output *)o;
    size_t size = n;

    if (!ko || !ko->rk || !buf || n == 0)
        return -1;
    if (rd_kafka_conf_get(rd_kafka_conf(ko->rk), prop, buf, &size) !=
            RD_KAFKA_CONF_OK || size > n)
        return -1;
    return 0;
}

const struct mf_output_ops mf_output_kafka_ops = {
    .name = "kafka",
    .desc = "messages to Apache Kafka topics",
    .options = &mf_kafka_sec,
    .flags = MF_OUTPUT_CONCURRENT,
    .open = kafka_open,
    .send = kafka_send,
    .poll = kafka_poll,
    .flush = kafka_flush,
    .stats = kafka_stats,
    .close = kafka_close,
};
