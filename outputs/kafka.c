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
    rd_kafka_t *rk;                 /* own producer (NULL when via) */
    /* Sharing a producer (a transactional one, see mf_kafka_txn_attach):
     * the output keeps its templates, topic cache, epochs and counters and
     * sends through via's handle; every message carries its slot among
     * via's peers, so via's delivery reports reach the right epochs. */
    struct kafka_output *via;       /* the producer's owner, or NULL */
    unsigned slot;                  /* this output among via->peers */
    struct kafka_output *peers[MF_KAFKA_PEERS_MAX]; /* owner: slot -> output */
    size_t n_peers;
    struct mf_kafka_txn *txn;       /* owner of a transactional producer */
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

/* A transactional producer (cluster mode): its own kafka_output holds the
 * handle; attached outputs send through it; the owner's own records (the
 * agent's state) are "aux" messages, counted here. */
struct mf_kafka_txn {
    struct kafka_output ko;         /* first: the producer */
    char *txn_id;
    int timeout_ms;                 /* bound of each transactional call */
    pthread_mutex_t mu;             /* the aux counters */
    uint64_t aux_sent, aux_done, aux_failed;
    char aux_error[256];
    atomic_bool dirty;              /* something produced in this transaction */
    bool open;                      /* a transaction is open */
};

/* A message's opaque: the sender's slot among the producer's peers (top
 * byte; TAG_AUX for the owner's own state records) and its flush epoch. */
#define TAG_SHIFT 56
#define TAG_EPOCH ((UINT64_C(1) << TAG_SHIFT) - 1)
#define TAG_AUX 0xFFu

static void *
msg_tag(unsigned slot, uint64_t epoch)
{
    return (void *)(uintptr_t)(((uint64_t)slot << TAG_SHIFT) | (epoch & TAG_EPOCH));
}

/* The handle's owner: itself, or the producer it was attached to. */
static struct kafka_output *
prod_of(struct kafka_output *ko)
{
    return ko->via ? ko->via : ko;
}

/* The producer is unusable (fatal error, or no handle). */
static bool
prod_broken(struct kafka_output *pk)
{
    bool broken;

    pthread_mutex_lock(&pk->mu);
    broken = pk->fatal || !pk->rk;
    pthread_mutex_unlock(&pk->mu);
    return broken;
}

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

/* The report of a state record of a transactional producer. */
static void
aux_report(struct mf_kafka_txn *t, const rd_kafka_message_t *m)
{
    pthread_mutex_lock(&t->mu);
    t->aux_done++;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR && t->aux_failed++ == 0)
        snprintf(t->aux_error, sizeof(t->aux_error), "%s: %s", rd_kafka_err2name(m->err),
                 rd_kafka_err2str(m->err));
    pthread_mutex_unlock(&t->mu);
}

static void
dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct kafka_output *owner = opaque, *ko;
    uint64_t tag = (uint64_t)(uintptr_t)m->_private;
    unsigned slot = (unsigned)(tag >> TAG_SHIFT);
    struct epoch *e;
    char id[160];

    (void)rk;
    if (slot == TAG_AUX && owner->txn) {
        aux_report(owner->txn, m);
        return;
    }
    ko = slot < owner->n_peers && owner->peers[slot] ? owner->peers[slot] : owner;
    pthread_mutex_lock(&ko->mu);
    e = epoch_of(ko, tag & TAG_EPOCH);
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

    /* the cluster's properties go to its producer and its consumers alike */
    if (strstr(buf, " property and will be ignored by this "))
        lvl = MF_LOG_DEBUG;
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
conf_set(rd_kafka_conf_t *conf, const char *label, const char *origin,
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
    snprintf(err, errsz, "%s: %s.%s = %s refused by librdkafka: %s",
             label, origin, prop, secret ? "<redacted>" : value, clean);
    return -1;
}

/* The `rdkafka` properties, then the secret ones (read now). */
static int
user_props(rd_kafka_conf_t *conf, const struct mf_kafka_conf *k, const char *label,
           struct secrets *sec, char *err, size_t errsz)
{
    char what[256];
    size_t i;

    for (i = 0; i < k->rdkafka.n; i++)
        if (conf_set(conf, label, "rdkafka", k->rdkafka.v[i].key,
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
                snprintf(err, errsz, "%s: more than %d secret "
                         "properties", label, SECRETS_MAX);
                return -1;
            }
            s = &sec->v[sec->n];
            snprintf(what, sizeof(what), "%s: %s.%s", label, origin, kv->key);
            if (mf_secret_load(pass ? NULL : kv->value,
                                      pass ? kv->value : NULL, !pem, what, s,
                                      err, errsz) != 0)
                return -1;
            sec->val[sec->n++] = s->data;
            if (conf_set(conf, label, origin, kv->key, s->data, true, sec,
                         err, errsz) != 0)
                return -1;
        }
    }
    return 0;
}

/* The producer's configuration: defaults, max_in_flight, the `rdkafka`
 * properties, the secret ones, brokers and compression; a transactional
 * producer (txn_id) also gets its transactional.id. label names the owner
 * in errors ("outputs 'k'", "cluster"). */
static int
configure(rd_kafka_conf_t *conf, const struct mf_output_conf *c, const char *label,
          const char *txn_id, struct secrets *sec, char *err, size_t errsz)
{
    const struct mf_kafka_conf *k = c->plugin;
    char num[32];
    size_t i;

    for (i = 0; kafka_defaults[i].prop; i++)
        if (conf_set(conf, label, "default", kafka_defaults[i].prop,
                     kafka_defaults[i].value, false, sec, err, errsz) != 0)
            return -1;
    if (c->max_in_flight > 0) {
        snprintf(num, sizeof(num), "%" PRId64, c->max_in_flight);
        if (conf_set(conf, label, "max_in_flight",
                     "queue.buffering.max.messages", num, false, sec, err,
                     errsz) != 0)
            return -1;
    }
    if (user_props(conf, k, label, sec, err, errsz) != 0)
        return -1;
    if (!k->brokers || !k->brokers[0]) {
        snprintf(err, errsz, "%s: no brokers", label);
        return -1;
    }
    if (conf_set(conf, label, "brokers", "bootstrap.servers", k->brokers,
                 false, sec, err, errsz) != 0)
        return -1;
    if ((size_t)k->compression >= sizeof(compression_names) /
                                     sizeof(compression_names[0]) &&
        k->compression != MF_KAFKA_COMPRESS_UNSET) {
        snprintf(err, errsz, "%s: unknown compression %d", label, k->compression);
        return -1;
    }
    if (k->compression != MF_KAFKA_COMPRESS_UNSET &&
        conf_set(conf, label, "compression", "compression.codec",
                 compression_names[k->compression], false, sec, err, errsz) != 0)
        return -1;
    return txn_id ? conf_set(conf, label, "cluster", "transactional.id", txn_id, false,
                             sec, err, errsz)
                  : 0;
}

/* Who configuration errors name: "outputs 'k'", or "cluster". */
static void
label_of(const struct kafka_output *ko, char *buf, size_t n)
{
    if (ko->txn)
        snprintf(buf, n, "cluster");
    else
        snprintf(buf, n, "outputs '%s'", ko->name);
}

/* A configured producer handle, or NULL with err set. */
static rd_kafka_t *
new_handle(struct kafka_output *ko, const struct mf_output_conf *c, char *err,
           size_t errsz)
{
    struct secrets sec = {.n = 0};
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char why[512], clean[512], label[300];
    rd_kafka_t *rk;

    label_of(ko, label, sizeof(label));
    if (configure(conf, c, label, ko->txn ? ko->txn->txn_id : NULL, &sec, err,
                  errsz) != 0) {
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
        snprintf(err, errsz, "%s: librdkafka refused the configuration: %s", label,
                 clean);
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

/* Flush within timeout_ms, drop what is left (logged), destroy. The topic
 * handles of the outputs sending through it go first. */
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
    for (size_t i = 1; i < ko->n_peers; i++) {
        struct kafka_output *p = ko->peers[i];

        if (!p)
            continue;
        pthread_mutex_lock(&p->mu);
        topics_clear(p);
        pthread_mutex_unlock(&p->mu);
    }
    topics_clear(ko);
    rd_kafka_destroy(ko->rk);
    ko->rk = NULL;
}

static void
ko_init(struct kafka_output *ko, const struct mf_output_conf *c, const char *name)
{
    const struct mf_kafka_conf *k = c->plugin;

    ko->name = mf_xstrdup(name);
    ko->topic_tmpl = mf_xstrdup(k && k->topic ? k->topic : "");
    ko->key_tmpl = mf_xstrdup(k && k->key ? k->key : "{id}");
    ko->flush_timeout_ms = c->flush_timeout_ms > INT32_MAX
                               ? INT32_MAX : (int)c->flush_timeout_ms;
    ko->base.ops = &mf_output_kafka_ops;
    ko->base.conf = c;
    ko->peers[0] = ko;
    ko->n_peers = 1;
    pthread_mutex_init(&ko->mu, NULL);
    pthread_rwlock_init(&ko->rk_lock, NULL);
}

static void
ko_fini(struct kafka_output *ko)
{
    pthread_mutex_destroy(&ko->mu);
    pthread_rwlock_destroy(&ko->rk_lock);
    free(ko->key_tmpl);
    free(ko->topic_tmpl);
    free(ko->name);
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
    ko_init(ko, c, c->name ? c->name : "kafka");
    ko->rk = new_handle(ko, c, e, sizeof(e));
    if (!ko->rk) {
        mf_err_set(err, "%s", e);
        ko_fini(ko);
        free(ko);
        return NULL;
    }
    return &ko->base;
}

/* After a fatal producer error (idempotence state lost...) the handle
 * refuses everything: replace it, holding the senders off. The records of
 * the failed epochs are sent again by the caller. Own producers only (a
 * transactional one is re-created by txn_reset). */
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

/* The cached handle of a topic on rk, or NULL when the cache is full.
 * Under mu. */
static rd_kafka_topic_t *
topic_get(struct kafka_output *ko, rd_kafka_t *rk, const char *name, size_t len)
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
    s->rkt = rd_kafka_topic_new(rk, name, NULL);
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
    if (ko->via && (err == RD_KAFKA_RESP_ERR__STATE || err == RD_KAFKA_RESP_ERR__FATAL)) {
        /* the shared transaction failed (its owner aborts it): the record
         * comes again with its blob */
        ko->st.failed++;
        if (ep)
            ep->refused++;
        if (!ep || ep->logged++ == 0)
            mf_log(MF_LOG_WARN, "output=%s id=%s: the transaction cannot take records "
                   "(%s); it is aborted and the records come again", ko->name,
                   ev->id[0] ? ev->id : "(none)", rd_kafka_err2name(err));
        return MF_FATAL;
    }
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
    struct kafka_output *ko = (struct kafka_output *)o, *pk = prod_of(ko);
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
    bool broken;
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

    pthread_rwlock_rdlock(&pk->rk_lock);
    broken = prod_broken(pk);
    pthread_mutex_lock(&ko->mu);
    e = ko->epoch;
    if (broken) {
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
        pthread_rwlock_unlock(&pk->rk_lock);
        return st;
    }
    rkt = topic_get(ko, pk->rk, topic, tlen);
    epoch_of(ko, e)->sent++;
    ko->st.sent++;
    ko->st.queued++;
    pthread_mutex_unlock(&ko->mu);

#define MF_KAFKA_COMMON_ARGS                                                  \
    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),                                 \
    RD_KAFKA_V_VALUE((void *)f->text.data, f->text.len),                      \
    RD_KAFKA_V_KEY(klen ? key : NULL, klen),                                  \
    RD_KAFKA_V_OPAQUE(msg_tag(ko->slot, e)),                                  \
    RD_KAFKA_V_HEADER(MF_KAFKA_HDR_TENANT, tenant, (ssize_t)strlen(tenant)),  \
    RD_KAFKA_V_HEADER(MF_KAFKA_HDR_CONTENT_TYPE, ct, (ssize_t)strlen(ct)),    \
    RD_KAFKA_V_HEADER(MF_KAFKA_HDR_TAGS, tags, (ssize_t)glen),                \
    RD_KAFKA_V_HEADER(MF_KAFKA_HDR_SEVERITY, sev, (ssize_t)strlen(sev)),      \
    RD_KAFKA_V_HEADER(MF_KAFKA_HDR_SCHEMA, schema, (ssize_t)strlen(schema)),  \
    RD_KAFKA_V_HEADER(MF_KAFKA_HDR_ID, id, (ssize_t)strlen(id)),              \
    RD_KAFKA_V_END

    if (rkt)
        err = rd_kafka_producev(pk->rk, RD_KAFKA_V_RKT(rkt),
                                MF_KAFKA_COMMON_ARGS);
    else
        err = rd_kafka_producev(pk->rk, RD_KAFKA_V_TOPIC(topic),
                                MF_KAFKA_COMMON_ARGS);
#undef MF_KAFKA_COMMON_ARGS

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        pthread_mutex_lock(&ko->mu);
        st = not_taken(ko, e, ev, len, err);
        pthread_mutex_unlock(&ko->mu);
    } else if (pk->txn) {
        atomic_store(&pk->txn->dirty, true);
    }
    /* serve delivery reports as we go (and at once when full) */
    if (st == MF_RETRY || atomic_fetch_add(&ko->sends, 1) % POLL_EVERY == 0)
        rd_kafka_poll(pk->rk, 0);
    pthread_rwlock_unlock(&pk->rk_lock);
    return st;
}

/* ---------------------------------------------------------------------- */
/* poll, flush, stats, close                                              */
/* ---------------------------------------------------------------------- */

static void
kafka_poll(struct mf_output *o, int timeout_ms)
{
    struct kafka_output *pk = prod_of((struct kafka_output *)o);

    pthread_rwlock_rdlock(&pk->rk_lock);
    if (pk->rk)
        rd_kafka_poll(pk->rk, timeout_ms < 0 ? 0 : timeout_ms);
    pthread_rwlock_unlock(&pk->rk_lock);
}

/* Epoch e has every delivery report it waits for, or cannot get them. */
static bool
epoch_settled(struct kafka_output *ko, uint64_t e)
{
    bool broken = prod_broken(prod_of(ko));
    const struct epoch *ep;
    bool done;

    pthread_mutex_lock(&ko->mu);
    ep = epoch_of(ko, e);
    done = !ep || ep->done >= ep->sent || ko->fatal || broken;
    pthread_mutex_unlock(&ko->mu);
    return done;
}

/* The acknowledgement barrier for every message sent before the call:
 * they belong to the epoch closed here; sends that run meanwhile go to
 * the next one. */
static int
kafka_flush(struct mf_output *o, int timeout_ms)
{
    struct kafka_output *ko = (struct kafka_output *)o, *pk = prod_of(ko);
    int64_t deadline = mf_clock_mono_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
    struct epoch ep;
    uint64_t e, pending;
    bool fatal;
    int rc = 0;

    pthread_mutex_lock(&ko->mu);
    e = ko->epoch++;
    ko->ep[ko->epoch % EPOCH_SLOTS] = (struct epoch){.id = ko->epoch};
    pthread_mutex_unlock(&ko->mu);
    pthread_rwlock_rdlock(&pk->rk_lock);
    for (;;) {
        int64_t left = deadline - mf_clock_mono_ms();

        if (epoch_settled(ko, e) || !pk->rk)
            break;
        if (left <= 0) {
            rd_kafka_poll(pk->rk, 0);
            break;
        }
        /* rd_kafka_flush sends lingering batches at once and serves the
         * delivery reports; other epochs may be outstanding, so wait in
         * slices and look at this one only */
        rd_kafka_flush(pk->rk, (int)(left < FLUSH_SLICE_MS ? left : FLUSH_SLICE_MS));
    }
    pthread_rwlock_unlock(&pk->rk_lock);
    fatal = prod_broken(pk);
    pthread_mutex_lock(&ko->mu);
    ep = epoch_of(ko, e) ? *epoch_of(ko, e) : (struct epoch){.id = e};
    ko->ep[e % EPOCH_SLOTS].id = UINT64_MAX;    /* closed: late reports only count */
    fatal = fatal || ko->fatal;
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
        if (!ko->via)
            recreate(ko);   /* a shared producer: its owner re-creates it */
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
    if (ko->via) {
        /* the producer stays (its owner closes it): no report reaches this
         * output once it is gone from the peers */
        pthread_rwlock_wrlock(&ko->via->rk_lock);
        topics_clear(ko);
        ko->via->peers[ko->slot] = NULL;
        pthread_rwlock_unlock(&ko->via->rk_lock);
    } else if (ko->rk) {
        destroy_handle(ko, ko->flush_timeout_ms);
    }
    ko_fini(ko);
    free(ko);
}

void *
mf_kafka_handle(struct mf_output *o)
{
    return o ? prod_of((struct kafka_output *)o)->rk : NULL;
}

int
mf_kafka_conf_get(const struct mf_output *o, const char *prop, char *buf,
                  size_t n)
{
    const struct kafka_output *ko = (const struct kafka_output *)o;
    size_t size = n;

    if (ko && ko->via)
        ko = ko->via;
    if (!ko || !ko->rk || !buf || n == 0)
        return -1;
    if (rd_kafka_conf_get(rd_kafka_conf(ko->rk), prop, buf, &size) !=
            RD_KAFKA_CONF_OK || size > n)
        return -1;
    return 0;
}

bool
mf_kafka_is_shared(const struct mf_output *o)
{
    return o && o->ops == &mf_output_kafka_ops && ((const struct kafka_output *)o)->via;
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

/* ---------------------------------------------------------------------- */
/* Transactions (cluster mode)                                            */
/* ---------------------------------------------------------------------- */

/* What a transactional call's error means: 0 none, 1 retry it, -1 abort
 * the transaction, -2 fatal (re-create the producer). why gets the text. */
static int
txn_verdict(rd_kafka_error_t *error, const char *what, char *why, size_t n)
{
    int v;

    if (!error)
        return 0;
    snprintf(why, n, "%s: %s: %s", what, rd_kafka_error_name(error),
             rd_kafka_error_string(error));
    v = rd_kafka_error_is_fatal(error) ? -2
        : rd_kafka_error_txn_requires_abort(error) ? -1
        : rd_kafka_error_is_retriable(error) ? 1 : -1;
    rd_kafka_error_destroy(error);
    return v;
}

static int
left_ms(int64_t deadline)
{
    int64_t l = deadline - mf_clock_mono_ms();

    return l < 1 ? 1 : l > INT32_MAX ? INT32_MAX : (int)l;
}

static void
aux_clear(struct mf_kafka_txn *t)
{
    pthread_mutex_lock(&t->mu);
    t->aux_sent = t->aux_done = t->aux_failed = 0;
    t->aux_error[0] = '\0';
    pthread_mutex_unlock(&t->mu);
    atomic_store(&t->dirty, false);
}

/* init_transactions (retried until the deadline), then begin. Under the
 * write lock or before anyone sends. 0 / -1 with why. */
static int
txn_start(struct mf_kafka_txn *t, char *why, size_t n)
{
    int64_t deadline = mf_clock_mono_ms() + t->timeout_ms;
    int v;

    do {
        v = txn_verdict(rd_kafka_init_transactions(t->ko.rk, left_ms(deadline)),
                        "init_transactions", why, n);
    } while (v == 1 && mf_clock_mono_ms() < deadline);
    if (v == 0)
        v = txn_verdict(rd_kafka_begin_transaction(t->ko.rk), "begin_transaction", why, n);
    t->open = v == 0;
    aux_clear(t);
    return v == 0 ? 0 : -1;
}

/* A new handle (same transactional.id: the old epoch is fenced and its
 * open transaction aborted by the coordinator) and a new transaction. */
static int
txn_recreate(struct mf_kafka_txn *t, char *why, size_t n)
{
    struct kafka_output *ko = &t->ko;
    char err[512];
    int rc = -1;

    pthread_rwlock_wrlock(&ko->rk_lock);
    if (ko->rk)
        destroy_handle(ko, 0);
    t->open = false;
    ko->rk = new_handle(ko, ko->base.conf, err, sizeof(err));
    if (!ko->rk)
        snprintf(why, n, "%s", err);
    else
        rc = txn_start(t, why, n);
    pthread_mutex_lock(&ko->mu);
    ko->fatal = rc != 0;
    pthread_mutex_unlock(&ko->mu);
    pthread_rwlock_unlock(&ko->rk_lock);
    if (rc == 0)
        mf_log(MF_LOG_WARN, "cluster: transactional producer re-created");
    else
        mf_log(MF_LOG_ERROR, "cluster: the transactional producer cannot be re-created: "
               "%s (the next commit tries again)", why);
    return rc;
}

/* Abort the open transaction and begin the next; a producer that cannot
 * abort is re-created (which aborts it on the coordinator). */
static void
txn_reset(struct mf_kafka_txn *t)
{
    struct kafka_output *ko = &t->ko;
    int64_t deadline = mf_clock_mono_ms() + t->timeout_ms;
    char why[512] = "";
    int v = -2;

    pthread_rwlock_rdlock(&ko->rk_lock);
    if (ko->rk && t->open && !prod_broken(ko)) {
        do {
            v = txn_verdict(rd_kafka_abort_transaction(ko->rk, left_ms(deadline)),
                            "abort_transaction", why, sizeof(why));
        } while (v == 1 && mf_clock_mono_ms() < deadline);
        if (v == 0)
            v = txn_verdict(rd_kafka_begin_transaction(ko->rk), "begin_transaction", why,
                            sizeof(why));
    }
    pthread_rwlock_unlock(&ko->rk_lock);
    if (v == 0) {
        aux_clear(t);
        return;
    }
    if (why[0])
        mf_log(MF_LOG_WARN, "cluster: %s; re-creating the transactional producer", why);
    txn_recreate(t, why, sizeof(why));
}

struct mf_kafka_txn *
mf_kafka_txn_new(const char *name, const struct mf_output_conf *c, const char *txn_id,
                 int timeout_ms, struct mf_err *err)
{
    struct mf_kafka_txn *t = mf_xcalloc(1, sizeof(*t));
    char e[512] = "";

    ko_init(&t->ko, c, name);
    t->ko.txn = t;
    t->txn_id = mf_xstrdup(txn_id);
    t->timeout_ms = timeout_ms > 0 ? timeout_ms : 60000;
    pthread_mutex_init(&t->mu, NULL);
    atomic_init(&t->dirty, false);
    t->ko.rk = new_handle(&t->ko, c, e, sizeof(e));
    if (!t->ko.rk || txn_start(t, e, sizeof(e)) != 0) {
        mf_err_set(err, "cluster: %s", e);
        mf_kafka_txn_destroy(t);
        return NULL;
    }
    return t;
}

int
mf_kafka_txn_attach(struct mf_kafka_txn *t, struct mf_output *o, struct mf_err *err)
{
    struct kafka_output *ko = (struct kafka_output *)o, *pk = &t->ko;

    if (!o || o->ops != &mf_output_kafka_ops || ko->via) {
        mf_err_set(err, "cluster: output '%s' is not a Kafka output of its own",
                   o && o->conf && o->conf->name ? o->conf->name : "?");
        return -1;
    }
    if (pk->n_peers >= MF_KAFKA_PEERS_MAX) {
        mf_err_set(err, "cluster: more than %d Kafka outputs on the cluster",
                   MF_KAFKA_PEERS_MAX - 1);
        return -1;
    }
    /* its own producer goes: nothing was sent through it yet */
    if (ko->rk) {
        pthread_rwlock_wrlock(&ko->rk_lock);
        destroy_handle(ko, 0);
        pthread_rwlock_unlock(&ko->rk_lock);
    }
    pthread_rwlock_wrlock(&pk->rk_lock);
    ko->via = pk;
    ko->slot = (unsigned)pk->n_peers;
    pk->peers[pk->n_peers++] = ko;
    pthread_rwlock_unlock(&pk->rk_lock);
    return 0;
}

int
mf_kafka_txn_produce(struct mf_kafka_txn *t, const char *topic, int32_t partition,
                     const void *key, size_t klen, const void *value, size_t vlen,
                     char *why, size_t whysz)
{
    struct kafka_output *ko = &t->ko;
    int64_t deadline = mf_clock_mono_ms() + t->timeout_ms;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__STATE;

    pthread_rwlock_rdlock(&ko->rk_lock);
    while (ko->rk && t->open) {
        err = rd_kafka_producev(ko->rk, RD_KAFKA_V_TOPIC(topic),
                                RD_KAFKA_V_PARTITION(partition),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_KEY((void *)key, klen),
                                RD_KAFKA_V_VALUE((void *)value, vlen),
                                RD_KAFKA_V_OPAQUE(msg_tag(TAG_AUX, 0)),
                                RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || mf_clock_mono_ms() >= deadline)
            break;
        rd_kafka_poll(ko->rk, 10);
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        pthread_mutex_lock(&t->mu);
        t->aux_sent++;
        pthread_mutex_unlock(&t->mu);
        atomic_store(&t->dirty, true);
    } else {
        snprintf(why, whysz, "cannot produce to %s [%d]: %s", topic, (int)partition,
                 rd_kafka_err2str(err));
    }
    pthread_rwlock_unlock(&ko->rk_lock);
    return err == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

/* Every state record produced in this transaction is on the broker (or
 * failed). Under the read lock. */
static int
aux_wait(struct mf_kafka_txn *t, int64_t deadline, char *why, size_t n)
{
    for (;;) {
        uint64_t sent, done, failed;

        pthread_mutex_lock(&t->mu);
        sent = t->aux_sent;
        done = t->aux_done;
        failed = t->aux_failed;
        if (failed)
            snprintf(why, n, "%" PRIu64 " state records failed (%s)", failed, t->aux_error);
        pthread_mutex_unlock(&t->mu);
        if (failed)
            return -1;
        if (done >= sent)
            return 0;
        if (mf_clock_mono_ms() >= deadline) {
            snprintf(why, n, "%" PRIu64 " of %" PRIu64 " state records not acknowledged "
                     "in time", sent - done, sent);
            return -1;
        }
        rd_kafka_flush(t->ko.rk, FLUSH_SLICE_MS);
    }
}

int
mf_kafka_txn_commit(struct mf_kafka_txn *t, const void *cgmd, const char *topic,
                    const int32_t *parts, size_t n, char *why, size_t whysz)
{
    struct kafka_output *ko = &t->ko;
    int64_t deadline = mf_clock_mono_ms() + t->timeout_ms;
    rd_kafka_topic_partition_list_t *offs;
    int v, tries = 0;

    why[0] = '\0';
    pthread_rwlock_rdlock(&ko->rk_lock);
    if (!ko->rk || !t->open || prod_broken(ko)) {
        pthread_rwlock_unlock(&ko->rk_lock);
        snprintf(why, whysz, "no transaction is open (the producer failed)");
        txn_reset(t);
        return -1;
    }
    /* the state records are on the broker before the group's generation
     * is checked: a member that takes these shards over later reads them
     * (or waits for this transaction's outcome) */
    v = aux_wait(t, deadline, why, whysz);
    if (v == 0 && cgmd && n) {
        offs = rd_kafka_topic_partition_list_new((int)n);
        for (size_t i = 0; i < n; i++)
            rd_kafka_topic_partition_list_add(offs, topic, parts[i])->offset = 0;
        do {
            v = txn_verdict(rd_kafka_send_offsets_to_transaction(
                                ko->rk, offs, (const rd_kafka_consumer_group_metadata_t *)cgmd,
                                left_ms(deadline)),
                            "send_offsets_to_transaction", why, whysz);
        } while (v == 1 && mf_clock_mono_ms() < deadline);
        rd_kafka_topic_partition_list_destroy(offs);
        if (v == 1)
            v = -1;     /* nothing decided yet: abort is safe */
    }
    /* once EndTxn may have gone out, only the coordinator's answer tells:
     * a commit that times out is resumed (3 timeouts at most) */
    while (v == 0) {
        v = txn_verdict(rd_kafka_commit_transaction(ko->rk, left_ms(deadline)),
                        "commit_transaction", why, whysz);
        if (v != 1)
            break;
        if (mf_clock_mono_ms() >= deadline) {
            if (++tries == 3) {
                v = -2;
                break;
            }
            mf_log(MF_LOG_WARN, "cluster: %s; still waiting for the commit", why);
            deadline = mf_clock_mono_ms() + t->timeout_ms;
        }
        v = 0;
    }
    if (v == 0)
        v = txn_verdict(rd_kafka_begin_transaction(ko->rk), "begin_transaction", why,
                        whysz) == 0 ? 0 : -3;
    pthread_rwlock_unlock(&ko->rk_lock);
    if (v == 0 || v == -3) {
        aux_clear(t);
        if (v == -3)
            txn_recreate(t, why, whysz);
        return 0;
    }
    if (v == -2) {
        char w[512];

        txn_recreate(t, w, sizeof(w));
        return -1;
    }
    txn_reset(t);
    return -1;
}

void
mf_kafka_txn_abort(struct mf_kafka_txn *t)
{
    txn_reset(t);
}

bool
mf_kafka_txn_dirty(struct mf_kafka_txn *t)
{
    return atomic_load(&t->dirty);
}

void
mf_kafka_txn_destroy(struct mf_kafka_txn *t)
{
    struct kafka_output *ko;

    if (!t)
        return;
    ko = &t->ko;
    if (ko->rk && t->open && !prod_broken(ko)) {
        /* nothing left open on the coordinator: readers are not held */
        rd_kafka_error_t *e = rd_kafka_abort_transaction(ko->rk, t->timeout_ms);

        if (e)
            rd_kafka_error_destroy(e);
    }
    if (ko->rk)
        destroy_handle(ko, 1000);
    pthread_mutex_destroy(&t->mu);
    ko_fini(ko);
    free(t->txn_id);
    free(t);
}

void *
mf_kafka_rdconf_new(const char *label, const struct mf_kafka_conf *k, char *err,
                    size_t errsz)
{
    struct secrets sec = {.n = 0};
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = user_props(conf, k, label, &sec, err, errsz);

    if (rc == 0)
        rc = conf_set(conf, label, "brokers", "bootstrap.servers", k->brokers, false, &sec,
                      err, errsz);
    secrets_clear(&sec);
    if (rc != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}
