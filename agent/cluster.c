/* cluster.c - cluster mode at run time: the group member, the topics, the
 * state topic (reader and records), the transaction of each group commit,
 * metrics and the status file (see cluster.h, docs/scale-out.md). */
#include "cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_conf.h"
#include "buf.h"
#include "clock.h"
#include "deliver.h"
#include "fanout.h"
#include "json.h"
#include "kafka.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "state.h"

#define COMMIT_EVERY_MS  1000    /* pending checkpoints wait at most this */
#define LOAD_RETRY_MS    2000    /* a shard whose state could not be read */
#define STATUS_EVERY_MS  5000    /* cluster.json while nothing moves */
#define IDS_MAX          20000   /* record Ids carried by one blob record
                                    (16 bytes each: 430 KB in base64, under
                                    Kafka's default message.max.bytes) */
#define STATE_VERSION    1

/* A blob record of the state topic not yet tombstoned. */
struct cl_blob {
    char *cid;
    int64_t created_ms;
};

/* A (tenant, content type) of the configuration. */
struct cl_stream {
    const char *tenant_id;       /* the configuration's */
    const char *ct;
    uint32_t shard;
    int64_t checkpoint_ms;       /* committed to the state topic (0: none) */
    int64_t pending_ms;          /* to write with the next commit (0: none) */
    struct cl_blob *live;        /* its blob records in the topic */
    size_t n_live, cap_live;
};

struct mf_cluster {
    const struct mf_config *cfg;
    const struct mf_cluster_conf *cc;
    struct mf_state *state;      /* the collector's connection (its thread) */
    struct mf_metrics *m;
    struct mf_deliver *dl;
    struct mf_cluster_hooks hooks;
    struct mf_dl_txn txn_ops;
    uint32_t shards;
    char agent_id[128];
    char txn_id[512];
    char assign_topic[256];
    char state_topic[256];
    rd_kafka_t *consumer;        /* the group member (collector thread) */
    rd_kafka_t *reader;          /* reads state partitions (no group) */
    struct mf_kafka_txn *txn;
    /* the transactional producer's configuration (outlives it) */
    struct mf_output_conf pconf;
    struct mf_kafka_conf pkafka;
    struct mf_kv *pkv;
    bool cooperative;
    bool left;

    pthread_mutex_t mu;          /* everything below */
    bool *owned;                 /* assigned by the group */
    bool *ready;                 /* ... and its state loaded */
    struct cl_stream *streams;   /* sorted by (tenant id, content type) */
    size_t n_streams;
    size_t n_pending;
    bool assigned_once;
    uint64_t rebalances, commits, aborts;
    int64_t last_rebalance_ms;
    double last_takeover_s;
    bool status_dirty;

    /* collector thread only */
    bool suspect;                /* membership unknown after a stall */
    int64_t last_poll_mono;
    int64_t last_commit_mono;
    int64_t next_load_mono;
    int64_t next_status_mono;

    int m_shards, m_tenants, m_rebalances, m_takeover, m_txn;
};

/* ---------------------------------------------------------------------- */
/* Streams                                                                */
/* ---------------------------------------------------------------------- */

static int
stream_cmp(const char *ta, const char *ca, const char *tb, const char *cb)
{
    int c = strcasecmp(ta, tb);

    return c ? c : strcmp(ca, cb);
}

static int
stream_qcmp(const void *a, const void *b)
{
    const struct cl_stream *x = a, *y = b;

    return stream_cmp(x->tenant_id, x->ct, y->tenant_id, y->ct);
}

/* Under mu (or before the lanes start). */
static struct cl_stream *
stream_find(struct mf_cluster *cl, const char *tenant, const char *ct)
{
    size_t lo = 0, hi = cl->n_streams;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = stream_cmp(tenant, ct, cl->streams[mid].tenant_id, cl->streams[mid].ct);

        if (c == 0)
            return &cl->streams[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static void
streams_build(struct mf_cluster *cl)
{
    const struct mf_config *cfg = cl->cfg;
    size_t n = 0;

    for (size_t i = 0; i < cfg->tenants.n; i++)
        n += cfg->tenants.v[i].content_types.n;
    cl->streams = mf_xcalloc(n ? n : 1, sizeof(*cl->streams));
    for (size_t i = 0; i < cfg->tenants.n; i++) {
        const struct mf_tenant_conf *t = &cfg->tenants.v[i];

        for (size_t k = 0; k < t->content_types.n; k++) {
            struct cl_stream *st = &cl->streams[cl->n_streams++];

            st->tenant_id = t->id;
            st->ct = t->content_types.v[k];
            st->shard = mf_cluster_shard(t->id, cl->shards);
        }
    }
    qsort(cl->streams, cl->n_streams, sizeof(*cl->streams), stream_qcmp);
}

static void
live_add(struct cl_stream *st, const char *cid, int64_t created_ms)
{
    for (size_t i = 0; i < st->n_live; i++)
        if (!strcmp(st->live[i].cid, cid)) {
            st->live[i].created_ms = created_ms;
            return;
        }
    if (st->n_live == st->cap_live) {
        st->cap_live = st->cap_live ? st->cap_live * 2 : 16;
        st->live = mf_xrealloc(st->live, st->cap_live * sizeof(*st->live));
    }
    st->live[st->n_live].cid = mf_xstrdup(cid);
    st->live[st->n_live++].created_ms = created_ms;
}

static void
live_del(struct cl_stream *st, const char *cid)
{
    for (size_t i = 0; i < st->n_live; i++)
        if (!strcmp(st->live[i].cid, cid)) {
            free(st->live[i].cid);
            st->live[i] = st->live[--st->n_live];
            return;
        }
}

static void
live_clear(struct cl_stream *st)
{
    for (size_t i = 0; i < st->n_live; i++)
        free(st->live[i].cid);
    st->n_live = 0;
}

/* Under mu: forget what this agent knew of shard s's streams (it is no
 * longer theirs to write). */
static void
shard_forget(struct mf_cluster *cl, uint32_t s)
{
    for (size_t i = 0; i < cl->n_streams; i++) {
        struct cl_stream *st = &cl->streams[i];

        if (st->shard != s)
            continue;
        if (st->pending_ms)
            cl->n_pending--;
        st->pending_ms = 0;
        st->checkpoint_ms = 0;
        live_clear(st);
    }
}

/* ---------------------------------------------------------------------- */
/* Keys and values of the state topic                                     */
/* ---------------------------------------------------------------------- */

/* "c/<tenant>/<content type>" (checkpoint) or "b/<tenant>/<content
 * type>/<contentId>" (a blob delivered); the tenant id in lower case. */
static void
state_key(struct mf_buf *b, char kind, const char *tenant, const char *ct, const char *cid)
{
    mf_buf_reset(b);
    mf_buf_appendc(b, kind);
    mf_buf_appendc(b, '/');
    for (const char *p = tenant; *p; p++)
        mf_buf_appendc(b, (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p));
    mf_buf_appendc(b, '/');
    mf_buf_appends(b, ct);
    if (cid) {
        mf_buf_appendc(b, '/');
        mf_buf_appends(b, cid);
    }
}

static void
put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static uint64_t
get_be64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* The value of a blob record: when it was created and delivered, how many
 * records, and their Id keys (base64 of 16 bytes each) for the record-level
 * dedupe of the next owner. */
static void
blob_value(struct mf_cluster *cl, struct mf_buf *v, const struct mf_dl_blob *b, int64_t now)
{
    size_t n = b->n_ids <= IDS_MAX ? b->n_ids : 0;
    unsigned char *raw = mf_xmalloc(n * 16 + 1);
    char *enc = mf_xmalloc(4 * ((n * 16 + 2) / 3) + 1);

    for (size_t i = 0; i < n; i++) {
        uint64_t h[2];

        mf_state_id_hash(b->tenant_id, b->ids[i], h);
        put_be64(raw + 16 * i, h[0]);
        put_be64(raw + 16 * i + 8, h[1]);
    }
    EVP_EncodeBlock((unsigned char *)enc, raw, (int)(n * 16));
    mf_buf_reset(v);
    mf_buf_printf(v, "{\"v\":%d,\"created_ms\":%" PRId64 ",\"delivered_ms\":%" PRId64
                  ",\"records\":%zu,\"ids\":\"%s\"%s,\"agent\":", STATE_VERSION,
                  b->created_ms, now, b->n_ids, enc,
                  n < b->n_ids ? ",\"ids_omitted\":true" : "");
    mf_json_write_str(v, cl->agent_id, strlen(cl->agent_id));
    mf_buf_appendc(v, '}');
    free(raw);
    free(enc);
}

static void
checkpoint_value(struct mf_cluster *cl, struct mf_buf *v, int64_t cp, int64_t now)
{
    mf_buf_reset(v);
    mf_buf_printf(v, "{\"v\":%d,\"checkpoint_ms\":%" PRId64 ",\"at_ms\":%" PRId64
                  ",\"agent\":", STATE_VERSION, cp, now);
    mf_json_write_str(v, cl->agent_id, strlen(cl->agent_id));
    mf_buf_appendc(v, '}');
}

/* Id keys of a blob record ("ids": base64): malloc'd pairs, *n of them. */
static uint64_t *
decode_ids(const char *b64, size_t *n)
{
    size_t len = strlen(b64), pad = 0;
    unsigned char *raw;
    uint64_t *keys;
    int got;

    *n = 0;
    if (len == 0 || len % 4)
        return NULL;
    pad = (b64[len - 1] == '=') + (len > 1 && b64[len - 2] == '=');
    raw = mf_xmalloc(len / 4 * 3 + 1);
    got = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
    if (got < 0 || ((size_t)got - pad) % 16) {
        free(raw);
        return NULL;
    }
    *n = ((size_t)got - pad) / 16;
    keys = mf_xmalloc((*n ? *n : 1) * 2 * sizeof(*keys));
    for (size_t i = 0; i < *n; i++) {
        keys[2 * i] = get_be64(raw + 16 * i);
        keys[2 * i + 1] = get_be64(raw + 16 * i + 8);
    }
    free(raw);
    return keys;
}

/* ---------------------------------------------------------------------- */
/* librdkafka plumbing                                                    */
/* ---------------------------------------------------------------------- */

static void
cl_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    enum mf_log_level lvl = level <= 2 ? MF_LOG_ERROR
                            : level <= 4 ? MF_LOG_WARN
                            : level <= 6 ? MF_LOG_INFO : MF_LOG_DEBUG;

    if (strstr(buf, " property and will be ignored by this "))
        lvl = MF_LOG_DEBUG;
    mf_log(lvl, "cluster %s rdkafka %s: %s", rd_kafka_name(rk), fac, buf);
}

static void
cl_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)opaque;
    mf_log(err == RD_KAFKA_RESP_ERR__TRANSPORT ? MF_LOG_DEBUG : MF_LOG_WARN,
           "cluster %s: %s: %s", rd_kafka_name(rk), rd_kafka_err2name(err), reason);
}

static int
set(rd_kafka_conf_t *conf, const char *k, const char *v, char *err, size_t errsz)
{
    char why[256];

    if (rd_kafka_conf_set(conf, k, v, why, sizeof(why)) == RD_KAFKA_CONF_OK)
        return 0;
    snprintf(err, errsz, "cluster: %s = %s refused by librdkafka: %s", k, v, why);
    return -1;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque);

static bool
kv_has(const struct mf_kvlist *kl, const char *key)
{
    for (size_t i = 0; i < kl->n; i++)
        if (!strcmp(kl->v[i].key, key))
            return true;
    return false;
}

/* A consumer of the cluster: cluster.rdkafka and its secrets, the defaults
 * it does not set, then what the agent owns. */
static rd_kafka_t *
new_consumer(struct mf_cluster *cl, const char *const *defaults, const char *const *forced,
             bool member, char *err, size_t errsz)
{
    struct mf_kafka_conf k = {.brokers = cl->cc->brokers, .rdkafka = cl->cc->rdkafka,
                              .rdkafka_secret_files = cl->cc->rdkafka_secret_files,
                              .rdkafka_secret_env = cl->cc->rdkafka_secret_env};
    rd_kafka_conf_t *conf = mf_kafka_rdconf_new("cluster", &k, err, errsz);
    rd_kafka_t *rk;
    char why[512];

    if (!conf)
        return NULL;
    for (size_t i = 0; defaults[i]; i += 2)
        if (!kv_has(&cl->cc->rdkafka, defaults[i]) &&
            set(conf, defaults[i], defaults[i + 1], err, errsz) != 0)
            goto fail;
    for (size_t i = 0; forced[i]; i += 2)
        if (set(conf, forced[i], forced[i + 1], err, errsz) != 0)
            goto fail;
    rd_kafka_conf_set_opaque(conf, cl);
    rd_kafka_conf_set_log_cb(conf, cl_log_cb);
    rd_kafka_conf_set_error_cb(conf, cl_error_cb);
    if (member)
        rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why)))) {
        snprintf(err, errsz, "cluster: librdkafka refused the configuration: %s", why);
        goto fail;
    }
    rd_kafka_set_log_queue(rk, NULL);
    return rk;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Topics                                                                 */
/* ---------------------------------------------------------------------- */

/* Partitions of topic in the cluster (0: missing, -1: no answer). */
static int
topic_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int n = -1;

    if (!rkt)
        return -1;
    if (rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        n = 0;
        if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
            n = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return n;
}

/* Create topic (state: compacted). 0 created or already there. */
static int
topic_create(struct mf_cluster *cl, const char *topic, bool state, char *err, size_t errsz)
{
    rd_kafka_NewTopic_t *nt;
    rd_kafka_AdminOptions_t *ao;
    rd_kafka_queue_t *q;
    rd_kafka_event_t *ev;
    char why[512];
    int rc = -1;

    nt = rd_kafka_NewTopic_new(topic, (int)cl->shards,
                               cl->cc->replication ? (int)cl->cc->replication : -1, why,
                               sizeof(why));
    if (!nt) {
        snprintf(err, errsz, "cluster: topic %s: %s", topic, why);
        return -1;
    }
    if (state) {
        /* compaction keeps the last record of each key; segments roll
         * hourly so that it can */
        rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
        rd_kafka_NewTopic_set_config(nt, "segment.ms", "3600000");
    }
    q = rd_kafka_queue_new(cl->consumer);
    ao = rd_kafka_AdminOptions_new(cl->consumer, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(ao, (int)cl->cc->timeout_ms, NULL, 0);
    rd_kafka_CreateTopics(cl->consumer, &nt, 1, ao, q);
    ev = rd_kafka_queue_poll(q, (int)cl->cc->timeout_ms + 5000);
    if (!ev) {
        snprintf(err, errsz, "cluster: creating topic %s: no answer within %" PRId64 " s",
                 topic, cl->cc->timeout_ms / 1000);
    } else if (rd_kafka_event_error(ev)) {
        snprintf(err, errsz, "cluster: creating topic %s: %s", topic,
                 rd_kafka_event_error_string(ev));
    } else {
        size_t n = 0;
        const rd_kafka_topic_result_t **tr =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        rd_kafka_resp_err_t e = n == 1 ? rd_kafka_topic_result_error(tr[0])
                                       : RD_KAFKA_RESP_ERR__FAIL;

        if (e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            rc = 0;
        else
            snprintf(err, errsz, "cluster: creating topic %s: %s%s%s", topic,
                     rd_kafka_err2name(e), n == 1 ? ": " : "",
                     n == 1 && rd_kafka_topic_result_error_string(tr[0])
                         ? rd_kafka_topic_result_error_string(tr[0]) : "");
        if (rc == 0 && e == RD_KAFKA_RESP_ERR_NO_ERROR)
            mf_log(MF_LOG_INFO, "cluster: created topic %s (%u partitions%s)", topic,
                   cl->shards, state ? ", compacted" : "");
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

/* Both topics exist with one partition per shard (created when missing). */
static int
topics_ensure(struct mf_cluster *cl, char *err, size_t errsz)
{
    const char *topics[2] = {cl->assign_topic, cl->state_topic};
    int64_t deadline = mf_clock_mono_ms() + cl->cc->timeout_ms;

    for (int i = 0; i < 2; i++) {
        int n;

        for (;;) {
            n = topic_partitions(cl->consumer, topics[i], 5000);
            if (n >= 0 || mf_clock_mono_ms() > deadline)
                break;
        }
        if (n < 0) {
            snprintf(err, errsz, "cluster: no answer from %s within %" PRId64 " s",
                     cl->cc->brokers, cl->cc->timeout_ms / 1000);
            return -1;
        }
        if (n == 0) {
            char why[600];

            if (topic_create(cl, topics[i], i == 1, why, sizeof(why)) != 0) {
                snprintf(err, errsz, "%s. Create it: kafka-topics.sh --create --topic %s "
                         "--partitions %u%s (see m365fwd preflight)", why, topics[i],
                         cl->shards, i == 1 ? " --config cleanup.policy=compact" : "");
                return -1;
            }
            /* until the metadata shows it */
            while ((n = topic_partitions(cl->consumer, topics[i], 5000)) <= 0 &&
                   mf_clock_mono_ms() < deadline)
                ;
        }
        if (n != (int)cl->shards) {
            snprintf(err, errsz, "cluster: topic %s has %d partitions but cluster.shards is "
                     "%u: every agent of the group must use the shards the topics were "
                     "made with", topics[i], n, cl->shards);
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Status: metrics and state_dir/cluster.json                             */
/* ---------------------------------------------------------------------- */

static void
metrics_register(struct mf_cluster *cl)
{
    static const char *const kind[] = {"kind"}, *const result[] = {"result"};
    static const struct {
        enum mf_metric_type type;
        const char *name, *help;
        const char *const *labels;
        size_t n;
    } fam[] = {
        {MF_METRIC_GAUGE, "m365fwd_cluster_shards_owned",
         "Shards this agent owns (its state loaded).", NULL, 0},
        {MF_METRIC_GAUGE, "m365fwd_cluster_tenants_owned",
         "Tenants of the shards this agent owns.", NULL, 0},
        {MF_METRIC_COUNTER, "m365fwd_cluster_rebalances_total",
         "Rebalances of the group seen by this agent: kind assign, revoke or lost.",
         kind, 1},
        {MF_METRIC_GAUGE, "m365fwd_cluster_takeover_seconds",
         "Time from the last assignment to its tenants collecting (state read).",
         NULL, 0},
        {MF_METRIC_COUNTER, "m365fwd_cluster_transactions_total",
         "Transactions of the group commit: result committed or aborted.", result, 1},
    };
    int *ids[] = {&cl->m_shards, &cl->m_tenants, &cl->m_rebalances, &cl->m_takeover,
                  &cl->m_txn};

    for (size_t i = 0; i < sizeof(fam) / sizeof(fam[0]); i++) {
        *ids[i] = mf_metrics_family(cl->m, fam[i].name);
        if (*ids[i] < 0)
            *ids[i] = mf_metrics_register(cl->m, fam[i].type, fam[i].name, fam[i].help,
                                          fam[i].labels, fam[i].n, NULL, 0);
    }
}

/* Under mu. */
static size_t
count_owned(const struct mf_cluster *cl, size_t *tenants)
{
    size_t n = 0;

    *tenants = 0;
    for (uint32_t s = 0; s < cl->shards; s++)
        n += cl->ready[s];
    for (size_t i = 0; i < cl->cfg->tenants.n; i++)
        if (cl->cfg->tenants.v[i].enabled &&
            cl->ready[mf_cluster_shard(cl->cfg->tenants.v[i].id, cl->shards)])
            (*tenants)++;
    return n;
}

/* state_dir/cluster.json, for `status` (which does not contact Kafka). */
static void
status_write(struct mf_cluster *cl)
{
    struct mf_buf b;
    char path[1200], tmp[1300];
    size_t shards, tenants;
    bool first = true;
    int fd;

    pthread_mutex_lock(&cl->mu);
    shards = count_owned(cl, &tenants);
    mf_buf_init(&b, 0);
    mf_buf_appends(&b, "{\"agent_id\":");
    mf_json_write_str(&b, cl->agent_id, strlen(cl->agent_id));
    mf_buf_appends(&b, ",\"group\":");
    mf_json_write_str(&b, cl->cc->group, strlen(cl->cc->group));
    mf_buf_printf(&b, ",\"pid\":%d,\"updated_ms\":%" PRId64 ",\"shards\":%u,"
                  "\"shards_owned\":[", (int)getpid(), mf_clock_wall_ms(), cl->shards);
    for (uint32_t s = 0; s < cl->shards; s++)
        if (cl->ready[s]) {
            mf_buf_printf(&b, "%s%u", first ? "" : ",", s);
            first = false;
        }
    mf_buf_printf(&b, "],\"n_shards_owned\":%zu,\"tenants_owned\":%zu,\"rebalances\":%" PRIu64
                  ",\"last_rebalance_ms\":%" PRId64 ",\"last_takeover_seconds\":%.3f,"
                  "\"transactions_committed\":%" PRIu64 ",\"transactions_aborted\":%" PRIu64
                  "}\n", shards, tenants, cl->rebalances, cl->last_rebalance_ms,
                  cl->last_takeover_s, cl->commits, cl->aborts);
    cl->status_dirty = false;
    pthread_mutex_unlock(&cl->mu);
    mf_metrics_set(cl->m, cl->m_shards, NULL, (double)shards);
    mf_metrics_set(cl->m, cl->m_tenants, NULL, (double)tenants);
    snprintf(path, sizeof(path), "%s/cluster.json", cl->cfg->state_dir);
    snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        bool ok = write(fd, b.data, b.len) == (ssize_t)b.len;

        if (close(fd) != 0 || !ok || rename(tmp, path) != 0)
            unlink(tmp);
    }
    mf_buf_fini(&b);
    cl->next_status_mono = mf_clock_mono_ms() + STATUS_EVERY_MS;
}

/* ---------------------------------------------------------------------- */
/* Reading a shard's state                                                */
/* ---------------------------------------------------------------------- */

struct loading {
    int batch;                   /* records in the open state transaction */
    uint64_t *h1;                /* Id keys for the delivery's filter */
    size_t n_h1, cap_h1;
    size_t records, blobs, checkpoints;
    int64_t *cp;                 /* per stream: the checkpoint read */
};

/* One record of the state topic (under mu and a state transaction; the
 * shard is not ready: nobody else touches its streams). */
static void
apply_record(struct mf_cluster *cl, struct loading *ld, const rd_kafka_message_t *m)
{
    char key[1200], tenant[300], ct[80];
    const char *cid = NULL;
    struct cl_stream *st;
    struct mf_arena a;
    struct mf_jval *v;
    char kind;
    int64_t n;

    ld->records++;
    if (!m->key || m->key_len < 4 || m->key_len >= sizeof(key))
        return;
    memcpy(key, m->key, m->key_len);
    key[m->key_len] = '\0';
    kind = key[0];
    {
        char *p = key + 2, *slash = strchr(p, '/');

        if (key[1] != '/' || !slash || (size_t)(slash - p) >= sizeof(tenant))
            return;
        snprintf(tenant, sizeof(tenant), "%.*s", (int)(slash - p), p);
        p = slash + 1;
        slash = strchr(p, '/');
        if (kind == 'b') {
            if (!slash)
                return;
            cid = slash + 1;
        }
        snprintf(ct, sizeof(ct), "%.*s", (int)(slash ? slash - p : (ptrdiff_t)strlen(p)), p);
    }
    if (!(st = stream_find(cl, tenant, ct)))
        return;     /* a tenant no longer configured */
    if (!m->payload) {
        if (kind == 'b')
            live_del(st, cid);
        return;
    }
    mf_arena_init(&a, 4096);
    v = mf_json_parse(&a, m->payload, m->len, NULL, NULL, NULL);
    if (kind == 'c' && mf_jget_int(mf_jobj_get(v, "checkpoint_ms"), &n) == 0) {
        size_t idx = (size_t)(st - cl->streams);

        if (n > ld->cp[idx])
            ld->cp[idx] = n;
        ld->checkpoints++;
    } else if (kind == 'b' && mf_jget_int(mf_jobj_get(v, "created_ms"), &n) == 0) {
        int64_t delivered = 0;
        size_t nk = 0;
        const char *ids = mf_jstrv(mf_jobj_get(v, "ids"));
        uint64_t *keys = ids ? decode_ids(ids, &nk) : NULL;

        mf_jget_int(mf_jobj_get(v, "delivered_ms"), &delivered);
        live_add(st, cid, n);
        if (mf_state_remember_blob(cl->state, st->tenant_id, st->ct, cid, n,
                                   delivered ? delivered : mf_clock_wall_ms(), keys, nk) != 0)
            mf_log(MF_LOG_WARN, "%s", mf_state_errmsg(cl->state));
        for (size_t i = 0; i < nk; i++) {
            if (ld->n_h1 == ld->cap_h1) {
                ld->cap_h1 = ld->cap_h1 ? ld->cap_h1 * 2 : 4096;
                ld->h1 = mf_xrealloc(ld->h1, ld->cap_h1 * sizeof(*ld->h1));
            }
            ld->h1[ld->n_h1++] = keys[2 * i];
        }
        free(keys);
        ld->blobs++;
    } else {
        mf_log(MF_LOG_WARN, "cluster: %s [%d] offset %" PRId64 ": record %s not understood; "
               "ignored", cl->state_topic, (int)m->partition, m->offset, key);
    }
    mf_arena_fini(&a);
}

/* Read the state partitions of want[] (to their last stable offset) into
 * the cache; done[] says which were read completely. */
static void
load_shards(struct mf_cluster *cl, const bool *want, bool *done)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)cl->shards);
    int64_t deadline = mf_clock_mono_ms() + cl->cc->timeout_ms;
    struct loading ld = {0};
    size_t left = 0;
    bool *eof = mf_xcalloc(cl->shards, sizeof(*eof));

    ld.cp = mf_xcalloc(cl->n_streams ? cl->n_streams : 1, sizeof(*ld.cp));
    for (uint32_t s = 0; s < cl->shards; s++) {
        done[s] = false;
        if (want[s]) {
            rd_kafka_topic_partition_list_add(l, cl->state_topic, (int32_t)s)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
            left++;
        }
    }
    if (!left)
        goto out;
    pthread_mutex_lock(&cl->mu);
    for (uint32_t s = 0; s < cl->shards; s++)
        if (want[s])
            shard_forget(cl, s);
    pthread_mutex_unlock(&cl->mu);
    if (rd_kafka_assign(cl->reader, l) != RD_KAFKA_RESP_ERR_NO_ERROR)
        goto end;
    /* the cache is written in batches: the lanes' commits wait for the
     * state's writer lock meanwhile */
    while (left && mf_clock_mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cl->reader, ld.batch ? 0 : 100);

        if (!m || ld.batch >= 500) {
            if (ld.batch && mf_state_txn_end(cl->state, true) != 0)
                mf_log(MF_LOG_ERROR, "%s", mf_state_errmsg(cl->state));
            ld.batch = 0;
            if (!m)
                continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && (uint32_t)m->partition < cl->shards &&
                !eof[m->partition]) {
                eof[m->partition] = true;
                left--;
            }
        } else if (m->err) {
            mf_log(MF_LOG_WARN, "cluster: reading %s: %s", cl->state_topic,
                   rd_kafka_message_errstr(m));
        } else if (m->partition >= 0 && (uint32_t)m->partition < cl->shards) {
            if (ld.batch++ == 0)
                mf_state_txn_begin(cl->state);
            pthread_mutex_lock(&cl->mu);
            apply_record(cl, &ld, m);
            pthread_mutex_unlock(&cl->mu);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(cl->reader, NULL);
end:
    if (ld.batch && mf_state_txn_end(cl->state, true) != 0)
        mf_log(MF_LOG_ERROR, "%s", mf_state_errmsg(cl->state));
    pthread_mutex_lock(&cl->mu);
    /* the topic's checkpoints are the truth; a stream it does not know yet
     * keeps the local one (a single agent moving to cluster mode) */
    for (size_t i = 0; i < cl->n_streams; i++) {
        struct cl_stream *st = &cl->streams[i];

        if (!want[st->shard] || !eof[st->shard] || !ld.cp[i])
            continue;
        st->checkpoint_ms = ld.cp[i];
        if (mf_state_checkpoint_set(cl->state, st->tenant_id, st->ct, ld.cp[i]) != 0)
            mf_log(MF_LOG_ERROR, "%s", mf_state_errmsg(cl->state));
    }
    pthread_mutex_unlock(&cl->mu);
    if (cl->dl && ld.n_h1)
        mf_deliver_seen_add(cl->dl, ld.h1, ld.n_h1);
    for (uint32_t s = 0; s < cl->shards; s++)
        done[s] = want[s] && eof[s];
    if (left)
        mf_log(MF_LOG_WARN, "cluster: %zu state partition(s) not read to their end within "
               "%" PRId64 " s (an open transaction of another agent holds them?); trying "
               "again", left, cl->cc->timeout_ms / 1000);
    mf_log(MF_LOG_INFO, "cluster: state read: %zu records, %zu checkpoints, %zu blobs, "
           "%zu record Ids", ld.records, ld.checkpoints, ld.blobs, ld.n_h1);
out:
    rd_kafka_topic_partition_list_destroy(l);
    free(eof);
    free(ld.cp);
    free(ld.h1);
}

/* ---------------------------------------------------------------------- */
/* Rebalances                                                             */
/* ---------------------------------------------------------------------- */

static void
count_rebalance(struct mf_cluster *cl, const char *kind)
{
    const char *v[] = {kind};

    mf_metrics_add(cl->m, cl->m_rebalances, v, 1);
    pthread_mutex_lock(&cl->mu);
    cl->rebalances++;
    cl->last_rebalance_ms = mf_clock_wall_ms();
    cl->status_dirty = true;
    pthread_mutex_unlock(&cl->mu);
}

/* The agent's own record in the state topic ("a/<agent id>": when it
 * joined), committed in a first transaction before any tenant starts: the
 * lookups of a first commit (coordinators, partitions) are start-up, not
 * collection. Readers ignore the key. */
static void
warm_up(struct mf_cluster *cl, const bool *shards)
{
    char key[200], val[300], why[256];
    uint32_t s = 0;
    int n;

    while (s < cl->shards && !shards[s])
        s++;
    if (s == cl->shards || !cl->dl)
        return;
    snprintf(key, sizeof(key), "a/%s", cl->agent_id);
    n = snprintf(val, sizeof(val), "{\"v\":%d,\"joined_ms\":%" PRId64 ",\"pid\":%d}",
                 STATE_VERSION, mf_clock_wall_ms(), (int)getpid());
    if (mf_kafka_txn_produce(cl->txn, cl->state_topic, (int32_t)s, key, strlen(key), val,
                             (size_t)n, why, sizeof(why)) != 0 ||
        mf_deliver_commit(cl->dl) != 0)
        mf_log(MF_LOG_WARN, "cluster: first transaction: %s", why[0] ? why : "aborted");
}

/* Shards owned, not loaded yet: read them; those done start collecting. */
static void
take_over(struct mf_cluster *cl, int64_t t0)
{
    bool *want = mf_xcalloc(cl->shards, sizeof(*want));
    bool *done = mf_xcalloc(cl->shards, sizeof(*done));
    size_t n = 0;

    pthread_mutex_lock(&cl->mu);
    for (uint32_t s = 0; s < cl->shards; s++)
        n += want[s] = cl->owned[s] && !cl->ready[s];
    pthread_mutex_unlock(&cl->mu);
    if (n) {
        size_t got = 0;
        bool first;

        load_shards(cl, want, done);
        pthread_mutex_lock(&cl->mu);
        for (uint32_t s = 0; s < cl->shards; s++)
            if (done[s] && cl->owned[s]) {
                cl->ready[s] = true;
                got++;
            } else {
                done[s] = false;
            }
        first = !cl->assigned_once && got;
        cl->assigned_once = true;
        pthread_mutex_unlock(&cl->mu);
        if (first)
            warm_up(cl, done);
        if (got && cl->hooks.assigned) {
            cl->hooks.assigned(cl->hooks.ud, done);
            pthread_mutex_lock(&cl->mu);
            cl->last_takeover_s = (double)(mf_clock_mono_ms() - t0) / 1000;
            cl->status_dirty = true;
            pthread_mutex_unlock(&cl->mu);
            mf_metrics_set(cl->m, cl->m_takeover, NULL, cl->last_takeover_s);
            mf_log(MF_LOG_INFO, "cluster: %zu shard(s) taken over in %.3f s", got,
                   cl->last_takeover_s);
        }
        if (got < n)
            cl->next_load_mono = mf_clock_mono_ms() + LOAD_RETRY_MS;
    }
    free(want);
    free(done);
    status_write(cl);
}

/* Give up shards[]: the collector stops their tenants and waits for their
 * blobs; what they still owe is committed while they are ours (not when
 * lost: then nothing of them may commit), then they are forgotten. */
static void
give_up(struct mf_cluster *cl, const bool *shards, bool lost)
{
    int64_t deadline = mf_clock_wall_ms() + cl->cc->timeout_ms;
    size_t n = 0;

    pthread_mutex_lock(&cl->mu);
    for (uint32_t s = 0; s < cl->shards; s++)
        if (shards[s] && cl->owned[s]) {
            n++;
            if (lost) {
                cl->owned[s] = cl->ready[s] = false;
                shard_forget(cl, s);
            }
        }
    pthread_mutex_unlock(&cl->mu);
    if (!n)
        return;
    mf_log(lost ? MF_LOG_WARN : MF_LOG_INFO, "cluster: %s %zu shard(s)",
           lost ? "lost (the group dropped this agent): abandoning" : "giving up", n);
    if (cl->hooks.revoking)
        cl->hooks.revoking(cl->hooks.ud, shards, lost, deadline);
    /* their checkpoints (and whatever else is due) while still ours; when
     * lost the commit aborts what holds records of those shards */
    if (cl->dl && mf_deliver_commit(cl->dl) != 0 && !lost)
        mf_log(MF_LOG_WARN, "cluster: the last commit before giving up the shards was "
               "aborted: their tenants' last blobs are collected again by the next owner");
    pthread_mutex_lock(&cl->mu);
    for (uint32_t s = 0; s < cl->shards; s++)
        if (shards[s]) {
            cl->owned[s] = cl->ready[s] = false;
            shard_forget(cl, s);
        }
    cl->status_dirty = true;
    pthread_mutex_unlock(&cl->mu);
    status_write(cl);
}

/* The shards of a partition list (of the assign topic). */
static bool *
shards_of(struct mf_cluster *cl, const rd_kafka_topic_partition_list_t *parts)
{
    bool *m = mf_xcalloc(cl->shards, sizeof(*m));

    for (int i = 0; parts && i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &parts->elems[i];

        if (!strcmp(p->topic, cl->assign_topic) && p->partition >= 0 &&
            (uint32_t)p->partition < cl->shards)
            m[p->partition] = true;
    }
    return m;
}

static void
rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
             rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct mf_cluster *cl = opaque;
    bool *m = shards_of(cl, parts);
    rd_kafka_error_t *e = NULL;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        int64_t t0 = mf_clock_mono_ms();

        if (cl->cooperative)
            e = rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
        /* nothing is read from the assign topic */
        rd_kafka_pause_partitions(rk, parts);
        pthread_mutex_lock(&cl->mu);
        for (uint32_t s = 0; s < cl->shards; s++)
            if (m[s])
                cl->owned[s] = true;
        pthread_mutex_unlock(&cl->mu);
        count_rebalance(cl, "assign");
        if (parts && parts->cnt)
            mf_log(MF_LOG_INFO, "cluster: %d shard(s) assigned", parts->cnt);
        take_over(cl, t0);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        bool lost = rd_kafka_assignment_lost(rk);

        count_rebalance(cl, lost ? "lost" : "revoke");
        give_up(cl, m, lost);
        if (cl->cooperative)
            e = rd_kafka_incremental_unassign(rk, parts);
        else
            rd_kafka_assign(rk, NULL);
    } else {
        mf_log(MF_LOG_ERROR, "cluster: rebalance error %s", rd_kafka_err2str(err));
        give_up(cl, m, true);
        rd_kafka_assign(rk, NULL);
    }
    if (e) {
        mf_log(MF_LOG_ERROR, "cluster: rebalance: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    free(m);
}

/* After the process stood still (SIGSTOP, a frozen VM): is this agent
 * still a member? An offset commit for the owned shards says so (the
 * coordinator checks the generation). No: every shard is lost at once,
 * before any request goes out for a tenant another agent has now. */
static void
check_membership(struct mf_cluster *cl)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)cl->shards);
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_queue_t *q;
    bool *all;

    pthread_mutex_lock(&cl->mu);
    for (uint32_t s = 0; s < cl->shards; s++)
        if (cl->owned[s])
            rd_kafka_topic_partition_list_add(l, cl->assign_topic, (int32_t)s)->offset = 0;
    pthread_mutex_unlock(&cl->mu);
    if (l->cnt == 0) {
        rd_kafka_topic_partition_list_destroy(l);
        cl->suspect = false;
        return;
    }
    q = rd_kafka_queue_new(cl->consumer);
    e = rd_kafka_commit_queue(cl->consumer, l, q, NULL, NULL);
    if (!e) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 10000);

        e = ev ? rd_kafka_event_error(ev) : RD_KAFKA_RESP_ERR__TIMED_OUT;
        if (ev)
            rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_topic_partition_list_destroy(l);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS) {
        /* still a member (a rebalance revokes before anything moves) */
        cl->suspect = false;
        return;
    }
    if (e != RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID && e != RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION &&
        e != RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID &&
        e != RD_KAFKA_RESP_ERR__ASSIGNMENT_LOST) {
        /* no answer: no request goes out until one comes */
        if (!cl->suspect)
            mf_log(MF_LOG_WARN, "cluster: after a stall, membership unknown (%s): "
                   "collection waits for the group's answer", rd_kafka_err2name(e));
        cl->suspect = true;
        return;
    }
    cl->suspect = false;
    mf_log(MF_LOG_WARN, "cluster: this agent stood still and the group dropped it (%s): its "
           "shards are another agent's now", rd_kafka_err2name(e));
    all = mf_xcalloc(cl->shards, sizeof(*all));
    pthread_mutex_lock(&cl->mu);
    for (uint32_t s = 0; s < cl->shards; s++)
        all[s] = cl->owned[s];
    pthread_mutex_unlock(&cl->mu);
    count_rebalance(cl, "lost");
    give_up(cl, all, true);
    free(all);
}

/* ---------------------------------------------------------------------- */
/* The transaction of a group commit (a delivery lane)                    */
/* ---------------------------------------------------------------------- */

struct cp_out {
    struct cl_stream *st;
    int64_t cp;
    char **dead;                 /* blob records to tombstone */
    size_t n_dead;
};

/* The outputs attached to the transactional producer (mf_cluster_attach). */
static bool
cl_covers(void *ud, const struct mf_output *o)
{
    struct mf_cluster *cl = ud;

    return mf_cluster_on_cluster(cl->cc, o->conf);
}

/* The checkpoints waiting for a transaction (cl->mu held): each with the
 * blob records older than its overlap, to tombstone. */
static struct cp_out *
pending_checkpoints(struct mf_cluster *cl, size_t *n_cps)
{
    int64_t overlap = cl->cfg->collect.overlap_ms;
    struct cp_out *cps = NULL;

    *n_cps = 0;
    if (!cl->n_pending)
        return NULL;
    cps = mf_xcalloc(cl->n_pending, sizeof(*cps));
    for (size_t i = 0; i < cl->n_streams && *n_cps < cl->n_pending; i++) {
        struct cl_stream *st = &cl->streams[i];
        struct cp_out *c;

        if (!st->pending_ms || !cl->ready[st->shard])
            continue;
        c = &cps[(*n_cps)++];
        c->st = st;
        c->cp = st->pending_ms;
        for (size_t j = 0; j < st->n_live; j++)
            if (st->live[j].created_ms < c->cp - overlap) {
                c->dead = mf_xrealloc(c->dead, (c->n_dead + 1) * sizeof(*c->dead));
                c->dead[c->n_dead++] = mf_xstrdup(st->live[j].cid);
            }
    }
    return cps;
}

static void
cps_free(struct cp_out *cps, size_t n_cps)
{
    for (size_t i = 0; i < n_cps; i++) {
        for (size_t j = 0; j < cps[i].n_dead; j++)
            free(cps[i].dead[j]);
        free(cps[i].dead);
    }
    free(cps);
}

/* Whether the transaction may commit (cl->mu held); fills parts with the
 * owned shards either way. */
static int
txn_precheck(struct mf_cluster *cl, const struct mf_dl_blob *list, bool outputs_ok,
             int32_t *parts, size_t *n_parts, char *why, size_t why_len)
{
    int rc = 0;

    if (!outputs_ok) {
        snprintf(why, why_len, "an output did not acknowledge every record");
        rc = -1;
    }
    for (const struct mf_dl_blob *b = list; b && rc == 0; b = b->next) {
        uint32_t s = mf_cluster_shard(b->tenant_id, cl->shards);

        if (!cl->ready[s]) {
            snprintf(why, why_len, "tenant %s: shard %u is no longer this agent's",
                     b->tenant_name, s);
            rc = -1;
        }
    }
    for (uint32_t s = 0; s < cl->shards; s++)
        if (cl->owned[s])
            parts[(*n_parts)++] = (int32_t)s;
    if (rc == 0 && *n_parts == 0) {
        snprintf(why, why_len, "no shard is this agent's");
        rc = -1;
    }
    return rc;
}

/* The checkpoints' and the tombstones' state records, into the open
 * transaction (the blobs' own records went in as they were sent,
 * cl_blob_sent). */
static int
produce_checkpoints(struct mf_cluster *cl, const struct cp_out *cps, size_t n_cps, int64_t now,
                    char *why, size_t why_len)
{
    struct mf_buf k, v;
    int rc = 0;

    mf_buf_init(&k, 0);
    mf_buf_init(&v, 0);
    for (size_t i = 0; i < n_cps && rc == 0; i++) {
        struct cl_stream *st = cps[i].st;

        state_key(&k, 'c', st->tenant_id, st->ct, NULL);
        checkpoint_value(cl, &v, cps[i].cp, now);
        rc = mf_kafka_txn_produce(cl->txn, cl->state_topic, (int32_t)st->shard, k.data, k.len,
                                  v.data, v.len, why, why_len);
        for (size_t j = 0; j < cps[i].n_dead && rc == 0; j++) {
            state_key(&k, 'b', st->tenant_id, st->ct, cps[i].dead[j]);
            rc = mf_kafka_txn_produce(cl->txn, cl->state_topic, (int32_t)st->shard, k.data,
                                      k.len, NULL, 0, why, why_len);
        }
    }
    mf_buf_fini(&k);
    mf_buf_fini(&v);
    return rc;
}

/* Commit the transaction with the group's offsets when rc is 0, abort it
 * otherwise. */
static int
txn_end(struct mf_cluster *cl, int rc, const int32_t *parts, size_t n_parts, char *why,
        size_t why_len)
{
    if (rc == 0) {
        rd_kafka_consumer_group_metadata_t *cgmd =
            rd_kafka_consumer_group_metadata(cl->consumer);

        rc = mf_kafka_txn_commit(cl->txn, cgmd, cl->assign_topic, parts, n_parts, why,
                                 why_len);
        if (cgmd)
            rd_kafka_consumer_group_metadata_destroy(cgmd);
    } else {
        mf_kafka_txn_abort(cl->txn);
    }
    return rc;
}

/* After a commit (cl->mu held): the checkpoints move, the tombstoned
 * blobs leave, the committed blobs are live; counted either way. */
static void
txn_settle(struct mf_cluster *cl, int rc, const struct mf_dl_blob *list,
           const struct cp_out *cps, size_t n_cps)
{
    if (rc != 0) {
        cl->aborts++;
        return;
    }
    for (size_t i = 0; i < n_cps; i++) {
        struct cl_stream *st = cps[i].st;

        if (!cl->ready[st->shard])
            continue;
        st->checkpoint_ms = cps[i].cp;
        if (st->pending_ms == cps[i].cp) {
            st->pending_ms = 0;
            cl->n_pending--;
        }
        for (size_t j = 0; j < cps[i].n_dead; j++)
            live_del(st, cps[i].dead[j]);
    }
    for (const struct mf_dl_blob *b = list; b; b = b->next) {
        struct cl_stream *st = stream_find(cl, b->tenant_id, b->content_type);

        if (st && cl->ready[st->shard])
            live_add(st, b->content_id, b->created_ms);
    }
    cl->commits++;
}

static void
txn_report(struct mf_cluster *cl, int rc, const struct mf_dl_blob *list, size_t n_cps,
           const char *why, int64_t t0, int64_t t_state)
{
    const char *result = rc == 0 ? "committed" : "aborted";

    mf_metrics_add(cl->m, cl->m_txn, &result, 1);
    if (rc != 0) {
        mf_log(MF_LOG_WARN, "cluster: transaction aborted: %s; its blobs are collected "
               "again", why);
    } else {
        size_t nb = 0;

        for (const struct mf_dl_blob *b = list; b; b = b->next)
            nb++;
        mf_log(MF_LOG_DEBUG, "cluster: transaction committed: %zu blob(s), %zu "
               "checkpoint(s) in %" PRId64 " ms (state records %" PRId64 " ms)", nb, n_cps,
               mf_clock_mono_ms() - t0, t_state - t0);
    }
}

static int
cl_commit(void *ud, struct mf_dl_blob *list, bool outputs_ok)
{
    struct mf_cluster *cl = ud;
    int64_t now = mf_clock_wall_ms();
    struct cp_out *cps;
    size_t n_cps, n_parts = 0;
    int32_t *parts = mf_xcalloc(cl->shards, sizeof(*parts));
    char why[768] = "";
    int64_t t0 = mf_clock_mono_ms(), t_state;
    int rc;

    pthread_mutex_lock(&cl->mu);
    cps = pending_checkpoints(cl, &n_cps);
    if (!list && !n_cps && !mf_kafka_txn_dirty(cl->txn)) {
        pthread_mutex_unlock(&cl->mu);
        free(cps);
        free(parts);
        return 0;
    }
    rc = txn_precheck(cl, list, outputs_ok, parts, &n_parts, why, sizeof(why));
    pthread_mutex_unlock(&cl->mu);

    if (rc == 0)
        rc = produce_checkpoints(cl, cps, n_cps, now, why, sizeof(why));
    t_state = mf_clock_mono_ms();
    rc = txn_end(cl, rc, parts, n_parts, why, sizeof(why));

    pthread_mutex_lock(&cl->mu);
    txn_settle(cl, rc, list, cps, n_cps);
    pthread_mutex_unlock(&cl->mu);
    txn_report(cl, rc, list, n_cps, why, t0, t_state);
    cps_free(cps, n_cps);
    free(parts);
    return rc;
}

/* A blob sent completely (its lane, the transaction still open): its
 * state record joins its records. */
static int
cl_blob_sent(void *ud, const struct mf_dl_blob *b)
{
    struct mf_cluster *cl = ud;
    struct mf_buf k, v;
    char why[512];
    int rc;

    mf_buf_init(&k, 0);
    mf_buf_init(&v, 0);
    state_key(&k, 'b', b->tenant_id, b->content_type, b->content_id);
    blob_value(cl, &v, b, mf_clock_wall_ms());
    rc = mf_kafka_txn_produce(cl->txn, cl->state_topic,
                              (int32_t)mf_cluster_shard(b->tenant_id, cl->shards), k.data,
                              k.len, v.data, v.len, why, sizeof(why));
    if (rc != 0)
        mf_log(MF_LOG_WARN, "cluster: tenant=%s blob %s: state record: %s; the transaction "
               "is aborted", b->tenant_name, b->content_id, why);
    mf_buf_fini(&k);
    mf_buf_fini(&v);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* API                                                                    */
/* ---------------------------------------------------------------------- */

struct mf_cluster *
mf_cluster_new(const struct mf_config *cfg, struct mf_state *state, struct mf_metrics *m,
               char *err, size_t errsz)
{
    struct mf_cluster *cl = mf_xcalloc(1, sizeof(*cl));
    const struct mf_cluster_conf *cc = &cfg->cluster;
    char reader_group[700], strategy[64];
    size_t ssz = sizeof(strategy);
    struct mf_err e;

    cl->cfg = cfg;
    cl->cc = cc;
    cl->state = state;
    cl->m = m;
    cl->shards = (uint32_t)cc->shards;
    pthread_mutex_init(&cl->mu, NULL);
    cl->owned = mf_xcalloc(cl->shards, sizeof(*cl->owned));
    cl->ready = mf_xcalloc(cl->shards, sizeof(*cl->ready));
    mf_cluster_agent_id(cfg, cl->agent_id, sizeof(cl->agent_id));
    snprintf(cl->txn_id, sizeof(cl->txn_id), "%s.%s.%s", cc->topic_prefix, cc->group,
             cl->agent_id);
    snprintf(cl->assign_topic, sizeof(cl->assign_topic), "%s.assign", cc->topic_prefix);
    snprintf(cl->state_topic, sizeof(cl->state_topic), "%s.state", cc->topic_prefix);
    snprintf(reader_group, sizeof(reader_group), "%s.state-reader.%s", cc->group,
             cl->agent_id);
    streams_build(cl);
    metrics_register(cl);
    cl->txn_ops.commit = cl_commit;
    cl->txn_ops.blob_sent = cl_blob_sent;
    cl->txn_ops.covers = cl_covers;
    cl->txn_ops.ud = cl;
    {
        const char *const defaults[] = {
            "partition.assignment.strategy", "cooperative-sticky",
            "allow.auto.create.topics", "false", NULL};
        const char *const forced[] = {
            "group.id", cc->group, "client.id", cl->agent_id,
            "enable.auto.commit", "false", "enable.auto.offset.store", "false",
            "enable.partition.eof", "false", NULL};

        if (!(cl->consumer = new_consumer(cl, defaults, forced, true, err, errsz)))
            goto fail;
    }
    {
        const char *const defaults[] = {"allow.auto.create.topics", "false",
                                        "fetch.wait.max.ms", "100", NULL};
        const char *const forced[] = {
            "group.id", reader_group, "client.id", cl->agent_id,
            "enable.auto.commit", "false", "enable.auto.offset.store", "false",
            "enable.partition.eof", "true", "isolation.level", "read_committed",
            "auto.offset.reset", "earliest", NULL};

        if (!(cl->reader = new_consumer(cl, defaults, forced, false, err, errsz)))
            goto fail;
    }
    if (rd_kafka_conf_get(rd_kafka_conf(cl->consumer), "partition.assignment.strategy",
                          strategy, &ssz) == RD_KAFKA_CONF_OK)
        cl->cooperative = strstr(strategy, "cooperative") != NULL;
    if (topics_ensure(cl, err, errsz) != 0)
        goto fail;
    /* the transactional producer: defaults, then cluster.rdkafka */
    cl->pkv = mf_xcalloc(cc->rdkafka.n + 2, sizeof(*cl->pkv));
    cl->pkv[0] = (struct mf_kv){.key = "client.id", .value = cl->agent_id};
    cl->pkv[1] = (struct mf_kv){.key = "compression.codec", .value = "lz4"};
    for (size_t i = 0; i < cc->rdkafka.n; i++)
        cl->pkv[2 + i] = cc->rdkafka.v[i];
    cl->pkafka = (struct mf_kafka_conf){
        .brokers = cc->brokers, .compression = MF_KAFKA_COMPRESS_UNSET,
        .rdkafka = {.v = cl->pkv, .n = cc->rdkafka.n + 2},
        .rdkafka_secret_files = cc->rdkafka_secret_files,
        .rdkafka_secret_env = cc->rdkafka_secret_env};
    cl->pconf = (struct mf_output_conf){
        .name = "cluster", .type = MF_OUTPUT_KAFKA, .enabled = true,
        .max_in_flight = 100000, .flush_timeout_ms = cc->timeout_ms, .plugin = &cl->pkafka};
    if (!(cl->txn = mf_kafka_txn_new("cluster", &cl->pconf, cl->txn_id,
                                     (int)cc->timeout_ms, &e))) {
        snprintf(err, errsz, "%s", e.msg);
        goto fail;
    }
    mf_log(MF_LOG_INFO, "cluster: agent %s, group %s, %u shards, topics %s and %s, "
           "transactional.id %s", cl->agent_id, cc->group, cl->shards, cl->assign_topic,
           cl->state_topic, cl->txn_id);
    return cl;
fail:
    mf_cluster_destroy(cl);
    return NULL;
}

int
mf_cluster_attach(struct mf_cluster *cl, struct mf_fanout *fo, char *err, size_t errsz)
{
    for (size_t i = 0; i < fo->n; i++) {
        struct mf_output *o = fo->outs[i];
        struct mf_err e;

        if (!mf_cluster_on_cluster(cl->cc, o->conf)) {
            mf_log(MF_LOG_INFO, "cluster: output %s: at-least-once (not a Kafka output on "
                   "the cluster's brokers)", o->conf->name);
            continue;
        }
        if (mf_kafka_txn_attach(cl->txn, o, &e) != 0) {
            snprintf(err, errsz, "%s", e.msg);
            return -1;
        }
        mf_log(MF_LOG_INFO, "cluster: output %s: exactly once (the cluster's transactions)",
               o->conf->name);
    }
    return 0;
}

const struct mf_dl_txn *
mf_cluster_txn(struct mf_cluster *cl)
{
    return &cl->txn_ops;
}

int
mf_cluster_start(struct mf_cluster *cl, struct mf_deliver *d,
                 const struct mf_cluster_hooks *h, char *err, size_t errsz)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t e;

    cl->dl = d;
    cl->hooks = *h;
    rd_kafka_topic_partition_list_add(l, cl->assign_topic, RD_KAFKA_PARTITION_UA);
    e = rd_kafka_subscribe(cl->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        snprintf(err, errsz, "cluster: cannot join group %s: %s", cl->cc->group,
                 rd_kafka_err2str(e));
        return -1;
    }
    cl->last_poll_mono = cl->last_commit_mono = mf_clock_mono_ms();
    status_write(cl);
    return 0;
}

void
mf_cluster_poll(struct mf_cluster *cl)
{
    int64_t now = mf_clock_mono_ms();
    rd_kafka_message_t *msg;
    bool pending;

    if (cl->left)
        return;
    if (now - cl->last_poll_mono > MF_CLUSTER_STALL_MS || cl->suspect)
        check_membership(cl);
    /* rebalances run their callback from here */
    for (int i = 0; i < 16 && (msg = rd_kafka_consumer_poll(cl->consumer, 0)); i++)
        rd_kafka_message_destroy(msg);
    now = mf_clock_mono_ms();
    if (cl->next_load_mono && now >= cl->next_load_mono) {
        cl->next_load_mono = 0;
        take_over(cl, now);
    }
    pthread_mutex_lock(&cl->mu);
    pending = cl->n_pending > 0;
    pthread_mutex_unlock(&cl->mu);
    if (pending && cl->dl && now - cl->last_commit_mono >= COMMIT_EVERY_MS) {
        mf_deliver_commit_soon(cl->dl);
        cl->last_commit_mono = now;
    }
    if (cl->status_dirty || now >= cl->next_status_mono)
        status_write(cl);
    cl->last_poll_mono = mf_clock_mono_ms();
}

bool
mf_cluster_owns(const struct mf_cluster *cl, const char *tenant_id)
{
    return !cl->suspect && cl->ready[mf_cluster_shard(tenant_id, cl->shards)];
}

bool
mf_cluster_assigned_once(const struct mf_cluster *cl)
{
    return cl->assigned_once;
}

void
mf_cluster_checkpoint(struct mf_cluster *cl, const char *tenant_id, const char *ct,
                      int64_t ms)
{
    struct cl_stream *st;

    pthread_mutex_lock(&cl->mu);
    st = stream_find(cl, tenant_id, ct);
    if (st && cl->ready[st->shard] && ms > st->checkpoint_ms && ms > st->pending_ms) {
        if (!st->pending_ms)
            cl->n_pending++;
        st->pending_ms = ms;
    }
    pthread_mutex_unlock(&cl->mu);
}

void
mf_cluster_leave(struct mf_cluster *cl)
{
    rd_kafka_resp_err_t e;

    if (!cl || cl->left || !cl->consumer)
        return;
    /* the revocation runs our hooks: the tenants are stopped already */
    e = rd_kafka_consumer_close(cl->consumer);
    if (e)
        mf_log(MF_LOG_WARN, "cluster: leaving the group: %s", rd_kafka_err2str(e));
    cl->left = true;
    status_write(cl);
}

void
mf_cluster_destroy(struct mf_cluster *cl)
{
    if (!cl)
        return;
    /* a revocation while closing no longer reaches the collector */
    cl->hooks = (struct mf_cluster_hooks){0};
    cl->dl = NULL;
    if (cl->consumer) {
        if (!cl->left)
            rd_kafka_consumer_close(cl->consumer);
        rd_kafka_destroy(cl->consumer);
    }
    if (cl->reader) {
        rd_kafka_consumer_close(cl->reader);
        rd_kafka_destroy(cl->reader);
    }
    mf_kafka_txn_destroy(cl->txn);
    for (size_t i = 0; i < cl->n_streams; i++) {
        live_clear(&cl->streams[i]);
        free(cl->streams[i].live);
    }
    free(cl->streams);
    free(cl->owned);
    free(cl->ready);
    free(cl->pkv);
    pthread_mutex_destroy(&cl->mu);
    free(cl);
}

/* ---------------------------------------------------------------------- */
/* preflight                                                              */
/* ---------------------------------------------------------------------- */

/* cleanup.policy of topic ("" when it cannot be read). */
static void
topic_policy(rd_kafka_t *rk, const char *topic, int timeout_ms, char *out, size_t n)
{
    rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC,
                                                                 topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_event_t *ev;

    out[0] = '\0';
    rd_kafka_DescribeConfigs(rk, &cr, 1, NULL, q);
    ev = rd_kafka_queue_poll(q, timeout_ms);
    if (ev && !rd_kafka_event_error(ev)) {
        size_t nr = 0, nc = 0;
        const rd_kafka_ConfigResource_t **rs = rd_kafka_DescribeConfigs_result_resources(
            rd_kafka_event_DescribeConfigs_result(ev), &nr);
        const rd_kafka_ConfigEntry_t **ce = nr == 1 ? rd_kafka_ConfigResource_configs(rs[0],
                                                                                    &nc)
                                                    : NULL;

        for (size_t i = 0; i < nc; i++)
            if (!strcmp(rd_kafka_ConfigEntry_name(ce[i]), "cleanup.policy"))
                snprintf(out, n, "%s", rd_kafka_ConfigEntry_value(ce[i])
                                           ? rd_kafka_ConfigEntry_value(ce[i]) : "");
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(cr);
}

int
mf_cluster_preflight(const struct mf_config *cfg, mf_cluster_report_fn report, void *ud)
{
    const struct mf_cluster_conf *cc = &cfg->cluster;
    struct mf_cluster cl = {.cfg = cfg, .cc = cc, .shards = (uint32_t)cc->shards};
    const char *const defaults[] = {"allow.auto.create.topics", "false", NULL};
    const char *const forced[] = {"group.id", cc->group, NULL};
    const struct rd_kafka_metadata *md = NULL;
    char err[1024], topics[2][256];
    int fails = 0;
    rd_kafka_t *rk;

    mf_cluster_agent_id(cfg, cl.agent_id, sizeof(cl.agent_id));
    snprintf(topics[0], sizeof(topics[0]), "%s.assign", cc->topic_prefix);
    snprintf(topics[1], sizeof(topics[1]), "%s.state", cc->topic_prefix);
    if (!(rk = new_consumer(&cl, defaults, forced, false, err, sizeof(err)))) {
        report(ud, 2, "configuration", "%s", err);
        return 1;
    }
    if (rd_kafka_metadata(rk, 0, NULL, &md, 15000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        report(ud, 2, "brokers", "no answer from %s within 15 s. Fix: check the addresses, "
               "the network and cluster.rdkafka (security.protocol, certificates, SASL)",
               cc->brokers);
        rd_kafka_destroy(rk);
        return 1;
    }
    report(ud, 0, "brokers", "%s: %d broker(s); agent %s joins group %s", cc->brokers,
           md->broker_cnt, cl.agent_id, cc->group);
    rd_kafka_metadata_destroy(md);
    for (int i = 0; i < 2; i++) {
        int n = topic_partitions(rk, topics[i], 15000);
        char policy[128];

        if (n == 0) {
            report(ud, 1, "topics", "%s is missing: `m365fwd run` creates it (it needs the "
                   "right to create topics); to create it yourself: kafka-topics.sh "
                   "--bootstrap-server %s --create --topic %s --partitions %u%s%s",
                   topics[i], cc->brokers, topics[i], cl.shards,
                   cc->replication ? " --replication-factor N" : "",
                   i == 1 ? " --config cleanup.policy=compact" : "");
            continue;
        }
        if (n < 0) {
            report(ud, 2, "topics", "%s: no answer", topics[i]);
            fails++;
            continue;
        }
        if (n != (int)cl.shards) {
            report(ud, 2, "topics", "%s has %d partitions, cluster.shards is %u. Fix: set "
                   "shards to %d, or (with every agent stopped) recreate the topics with %u",
                   topics[i], n, cl.shards, n, cl.shards);
            fails++;
            continue;
        }
        if (i == 1) {
            topic_policy(rk, topics[i], 15000, policy, sizeof(policy));
            if (!strstr(policy, "compact")) {
                report(ud, 2, "topics", "%s is not compacted (cleanup.policy %s): the state "
                       "would be deleted by retention. Fix: kafka-configs.sh "
                       "--bootstrap-server %s --alter --entity-type topics --entity-name %s "
                       "--add-config cleanup.policy=compact", topics[i],
                       policy[0] ? policy : "unknown", cc->brokers, topics[i]);
                fails++;
                continue;
            }
        }
        report(ud, 0, "topics", "%s: %d partitions%s", topics[i], n,
               i == 1 ? ", compacted" : "");
    }
    rd_kafka_destroy(rk);
    for (size_t i = 0; i < cfg->outputs.n; i++) {
        const struct mf_output_conf *oc = &cfg->outputs.v[i];

        if (!oc->enabled)
            continue;
        if (mf_cluster_on_cluster(cc, oc))
            report(ud, 0, "outputs", "%s: exactly once (a Kafka output on the cluster: its "
                   "records commit in the cluster's transactions; read it with "
                   "isolation.level=read_committed)", oc->name);
        else
            report(ud, 1, "outputs", "%s: at-least-once (%s): a takeover, an aborted "
                   "transaction or a restart can write records again", oc->name,
                   oc->type == MF_OUTPUT_KAFKA ? "a Kafka output on other brokers"
                                               : "not a Kafka output");
    }
    return fails ? 1 : 0;
}
