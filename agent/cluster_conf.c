/* cluster_conf.c - the `cluster` section (option table and checks), the
 * tenant -> shard hash and the agent's id (see cluster.h). */
#include "cluster.h"

#include <limits.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_conf.h"
#include "kafka.h"
#include "optcheck.h"

#define MS_S 1000LL
#define MS_M (60 * MS_S)

/* Properties the agent sets itself on the cluster's clients. */
static const struct mf_kafka_owned cluster_owned[] = {
    {"bootstrap.servers", "brokers"},
    {"metadata.broker.list", "brokers"},
    {"group.id", "group"},
    {"transactional.id", "agent_id"},
    {"client.id", "agent_id"},
    {"isolation.level", "cluster (always read_committed)"},
    {"enable.auto.commit", "cluster (offsets commit in transactions)"},
    {"enable.auto.offset.store", "cluster (offsets commit in transactions)"},
    {NULL, NULL},
};

/* A prefix Kafka accepts in front of ".assign" / ".state". */
static int
check_prefix(const char *s, char *w, size_t n)
{
    if (mf_check_label(s, w, n) != 0)
        return -1;
    if (strlen(s) > 200)
        return mf_opt_why(w, n, "is longer than 200 characters");
    return 0;
}

/* Defaults exist only in cluster mode, so that a configuration without the
 * section dumps and reloads without it. */
static void
cluster_check(const struct mf_optctx *c, void *base, const struct mf_jval *node,
              const char *path)
{
    struct mf_cluster_conf *cc = base;

    if (!cc->brokers) {
        if (node && mf_jis_obj(node) && node->len > 0)
            mf_err_add(c->err, c->file, node->line,
                       "%s: missing required key 'brokers' (the section turns cluster "
                       "mode on; remove it to run alone)", path);
        return;
    }
    if (!cc->group)
        cc->group = "m365fwd";
    if (!cc->topic_prefix)
        cc->topic_prefix = "m365fwd";
    if (!cc->shards)
        cc->shards = MF_CLUSTER_SHARDS_DEFAULT;
    if (!cc->timeout_ms)
        cc->timeout_ms = 60 * MS_S;
    mf_kafka_check_props(c, path, &cc->rdkafka, &cc->rdkafka_secret_files,
                         &cc->rdkafka_secret_env, cluster_owned);
}

#define CL(f) offsetof(struct mf_cluster_conf, f)
static const struct mf_option cluster_opts[] = {
    {.name = "brokers", .type = MF_OPT_STR, .offset = CL(brokers),
     .check = mf_kafka_check_brokers, .reload = MF_RELOAD_RESTART,
     .desc = "Bootstrap brokers of the Kafka cluster that coordinates the agents, "
             "`host:port[,host:port]`. Setting it turns cluster mode on: the agents "
             "share the tenants through a consumer group and keep their state in "
             "Kafka (docs/scale-out.md). Kafka outputs whose `brokers` are these "
             "(same host:port set) are produced in the cluster's transactions: "
             "exactly once; every other output stays at-least-once."},
    {.name = "group", .type = MF_OPT_STR, .offset = CL(group), .check = mf_check_label,
     .reload = MF_RELOAD_NEVER, .defdoc = "`m365fwd`",
     .desc = "Consumer group the agents join. Agents of one group share its "
             "tenants; one group per cluster of agents."},
    {.name = "topic_prefix", .type = MF_OPT_STR, .offset = CL(topic_prefix),
     .check = check_prefix, .reload = MF_RELOAD_NEVER, .defdoc = "`m365fwd`",
     .desc = "The group's topics: `<prefix>.assign` (one partition per shard, no "
             "records: its assignment says who collects what) and `<prefix>.state` "
             "(compacted, one partition per shard: checkpoints and the blobs "
             "delivered within the overlap). Created when missing."},
    {.name = "shards", .type = MF_OPT_INT, .offset = CL(shards), .min = 1,
     .max = MF_CLUSTER_SHARDS_MAX, .reload = MF_RELOAD_NEVER, .defdoc = "`64`",
     .desc = "Shards (partitions of both topics). A tenant's shard is the first 8 "
             "bytes of SHA-256 of its id in lower case, big-endian, modulo `shards`. "
             "At least the number of agents; every agent must use the same value (an "
             "agent refuses to start when the topics disagree)."},
    {.name = "agent_id", .type = MF_OPT_STR, .offset = CL(agent_id),
     .check = mf_check_label, .reload = MF_RELOAD_RESTART,
     .defdoc = "host name and a hash of `state_dir`",
     .desc = "This agent's name in the group (client.id) and in its "
             "transactional.id (`<prefix>.<group>.<agent_id>`): a restart under the "
             "same id fences the previous run at once. Unique per agent."},
    {.name = "replication", .type = MF_OPT_INT, .offset = CL(replication), .min = 0,
     .max = 32, .reload = MF_RELOAD_RESTART, .defdoc = "the broker's "
     "`default.replication.factor`",
     .desc = "Replication factor of the topics the agent creates."},
    {.name = "timeout", .type = MF_OPT_DURATION, .offset = CL(timeout_ms),
     .min = 5 * MS_S, .max = 15 * MS_M, .reload = MF_RELOAD_RESTART, .defdoc = "`60s`",
     .desc = "Bound of each blocking cluster operation: starting transactions, "
             "creating topics, reading a shard's state, a commit, and the wait for a "
             "revoked tenant's outstanding acknowledgements."},
    {.name = "rdkafka", .type = MF_OPT_PREFIX, .offset = CL(rdkafka),
     .flags = MF_OPT_NOECHO, .reload = MF_RELOAD_RESTART,
     .desc = "librdkafka properties of the cluster's clients (the group member, "
             "the state reader, the transactional producer), e.g. "
             "`{security.protocol: SSL, session.timeout.ms: 10000}`. Any property "
             "librdkafka knows; one it refuses is a start-up error. Defaults: "
             "`partition.assignment.strategy: cooperative-sticky`, "
             "`compression.codec: lz4`; librdkafka's own otherwise "
             "(`session.timeout.ms` 45000, `transaction.timeout.ms` 60000). "
             "Passwords go in `rdkafka_secret_files` or `rdkafka_secret_env`."},
    {.name = "rdkafka_secret_files", .type = MF_OPT_PREFIX,
     .offset = CL(rdkafka_secret_files), .flags = MF_OPT_SECRET | MF_OPT_PATH,
     .reload = MF_RELOAD_RESTART,
     .desc = "librdkafka properties whose value is read from a file (as for Kafka "
             "outputs)."},
    {.name = "rdkafka_secret_env", .type = MF_OPT_PREFIX,
     .offset = CL(rdkafka_secret_env), .flags = MF_OPT_SECRET,
     .reload = MF_RELOAD_RESTART,
     .desc = "librdkafka properties whose value is read from an environment "
             "variable (as for Kafka outputs)."},
    {.name = NULL},
};

const struct mf_optsec mf_cluster_sec = {
    .name = "cluster",
    .desc = "Scale-out: several agents share the tenants through a Kafka consumer "
            "group, take over each other's tenants on failure, keep their state in "
            "Kafka and deliver exactly once into the Kafka outputs on the cluster "
            "(docs/scale-out.md). Without `brokers` the section does nothing and the "
            "agent runs alone. Turning cluster mode on or off needs a restart of the "
            "service (`group` cannot change on reload).",
    .opts = cluster_opts,
    .size = sizeof(struct mf_cluster_conf),
    .check = cluster_check,
};

bool
mf_cluster_enabled(const struct mf_cluster_conf *cc)
{
    return cc && cc->brokers && cc->brokers[0];
}

uint32_t
mf_cluster_shard(const char *tenant_id, uint32_t shards)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    char low[512];
    uint64_t v = 0;
    size_t i;

    for (i = 0; tenant_id[i] && i + 1 < sizeof(low); i++)
        low[i] = (char)(tenant_id[i] >= 'A' && tenant_id[i] <= 'Z' ? tenant_id[i] + 32
                                                                    : tenant_id[i]);
    low[i] = '\0';
    SHA256((const unsigned char *)low, i, md);
    for (i = 0; i < 8; i++)
        v = v << 8 | md[i];
    return shards ? (uint32_t)(v % shards) : 0;
}

bool
mf_cluster_on_cluster(const struct mf_cluster_conf *cc, const struct mf_output_conf *oc)
{
    const struct mf_kafka_conf *k = oc->plugin;

    return mf_cluster_enabled(cc) && oc->type == MF_OUTPUT_KAFKA && oc->enabled && k &&
           mf_kafka_same_brokers(cc->brokers, k->brokers);
}

void
mf_cluster_check_outputs(const struct mf_optctx *c, const struct mf_config *cfg,
                         const struct mf_jval *outputs)
{
    const struct mf_cluster_conf *cc = &cfg->cluster;

    for (size_t i = 0; mf_cluster_enabled(cc) && i < cfg->outputs.n; i++) {
        const struct mf_output_conf *oc = &cfg->outputs.v[i];
        const struct mf_kafka_conf *k = oc->plugin;
        const struct mf_jval *node = mf_jis_arr(outputs) && i < outputs->len
                                         ? outputs->u.items[i] : NULL;
        static const char *const keys[] = {"rdkafka", "rdkafka_secret_files",
                                           "rdkafka_secret_env"};
        const struct mf_kvlist *mine[3], *theirs[3];

        if (!mf_cluster_on_cluster(cc, oc))
            continue;
        mine[0] = &k->rdkafka;
        mine[1] = &k->rdkafka_secret_files;
        mine[2] = &k->rdkafka_secret_env;
        theirs[0] = &cc->rdkafka;
        theirs[1] = &cc->rdkafka_secret_files;
        theirs[2] = &cc->rdkafka_secret_env;
        for (int j = 0; j < 3; j++) {
            const char *differs = NULL;

            if (!mf_kafka_kv_within(mine[j], theirs[j], &differs))
                mf_err_add(c->err, c->file,
                           mf_opt_key_line(node, mf_jobj_get(node, keys[j]) ? keys[j]
                                                                           : "brokers"),
                           "outputs[%zu].%s.%s: this output is on the cluster's brokers: "
                           "its records travel in the cluster's transactions, through a "
                           "producer made with cluster.%s, which must set it to the same "
                           "value (or give the output other brokers, to stay "
                           "at-least-once)", i, keys[j], differs, keys[j]);
        }
    }
}

void
mf_cluster_agent_id(const struct mf_config *cfg, char *buf, size_t n)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    char host[256] = "", path[PATH_MAX];
    const char *dir = cfg->state_dir ? cfg->state_dir : "";

    if (cfg->cluster.agent_id) {
        snprintf(buf, n, "%s", cfg->cluster.agent_id);
        return;
    }
    if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
        snprintf(host, sizeof(host), "agent");
    for (char *p = host; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
            *p = '-';
    if (realpath(dir, path))
        dir = path;
    SHA256((const unsigned char *)dir, strlen(dir), md);
    snprintf(buf, n, "%.40s-%02x%02x%02x%02x", host, md[0], md[1], md[2], md[3]);
}
