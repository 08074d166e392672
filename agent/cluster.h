/* cluster.h - cluster mode: agents share the tenants through a Kafka
 * consumer group and keep their state in Kafka (docs/scale-out.md).
 *
 * Every agent of a cluster loads the same configuration. With a `cluster`
 * section (brokers set), an agent:
 *   - joins the consumer group `group` on `<prefix>.assign`, a topic of
 *     `shards` partitions that carries no records: partition N is shard N,
 *     and the group's assignment says which agent collects which shards;
 *   - collects only the tenants of the shards it owns; a tenant's shard is
 *     mf_cluster_shard(tenant id, shards) (below);
 *   - keeps the truth of its collection state in `<prefix>.state`
 *     (compacted, `shards` partitions, partition = shard): stream
 *     checkpoints and the blobs delivered within the overlap with their
 *     record Ids. Local SQLite (state.c) is a cache, loaded from the topic
 *     when a shard is assigned;
 *   - commits, in one Kafka transaction, the records a group commit
 *     delivered through the Kafka outputs on the cluster, the state
 *     records that cover them and the group's offsets for the shards it
 *     owns (send_offsets_to_transaction): a member the group has dropped
 *     (a paused or partitioned agent) cannot commit;
 *   - on revocation stops the shards' tenants, waits (bounded) for their
 *     blobs in delivery, commits their checkpoints, then releases them; on
 *     a lost assignment it aborts what is open.
 *
 * Threads: everything here runs on the collector's thread except the
 * commit hook (struct mf_dl_txn), which runs on a delivery lane; the
 * stream table is shared under a lock.
 */
#ifndef MF_CLUSTER_H
#define MF_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "option.h"

struct mf_config;
struct mf_deliver;
struct mf_fanout;
struct mf_metrics;
struct mf_output_conf;
struct mf_state;

/* ---- configuration (agent/cluster_conf.c) ------------------------------ */

struct mf_cluster_conf {
    const char *brokers;             /* NULL: no cluster mode */
    const char *group;               /* consumer group */
    const char *topic_prefix;        /* <prefix>.assign, <prefix>.state */
    int64_t shards;                  /* partitions of both topics */
    const char *agent_id;            /* NULL: host name + hash of state_dir */
    int64_t replication;             /* of topics the agent creates; 0: the
                                        broker's default */
    int64_t timeout_ms;              /* bound of each blocking operation */
    struct mf_kvlist rdkafka;
    struct mf_kvlist rdkafka_secret_files;
    struct mf_kvlist rdkafka_secret_env;
};

extern const struct mf_optsec mf_cluster_sec;

/* Between two turns of the collector's loop longer than this, the process
 * stood still: the group may have dropped the agent meanwhile; its
 * membership is checked before any request goes out. */
#define MF_CLUSTER_STALL_MS 3000

#define MF_CLUSTER_SHARDS_DEFAULT 64
#define MF_CLUSTER_SHARDS_MAX 4096

/* Cluster mode is on (the section names brokers). */
bool mf_cluster_enabled(const struct mf_cluster_conf *cc);

/* The shard of a tenant: the first 8 bytes of SHA-256 of the tenant id in
 * lower case (UTF-8), read as a big-endian unsigned integer, modulo shards.
 * Stable across versions and hosts (docs/scale-out.md shows it in a shell
 * line). */
uint32_t mf_cluster_shard(const char *tenant_id, uint32_t shards);

/* A Kafka output whose brokers are the cluster's: its records travel in
 * the cluster's transactions (exactly once). */
bool mf_cluster_on_cluster(const struct mf_cluster_conf *cc, const struct mf_output_conf *oc);

/* The checks across sections (agent_conf.c's top check): what a Kafka
 * output on the cluster sets in rdkafka (and its secret maps), the cluster
 * sets the same (one producer carries both). */
void mf_cluster_check_outputs(const struct mf_optctx *c, const struct mf_config *cfg,
                              const struct mf_jval *outputs);

/* The agent's id (cluster.agent_id, else "<host>-<8 hex of SHA-256 of the
 * absolute state_dir>"): its client.id and, under the prefix and the
 * group, its transactional.id. */
void mf_cluster_agent_id(const struct mf_config *cfg, char *buf, size_t n);

/* ---- runtime (agent/cluster.c) ----------------------------------------- */

struct mf_cluster;

/* What the collector does when shards move (collector thread, inside the
 * consumer's poll). shards[] has conf.shards entries; true = this one. */
struct mf_cluster_hooks {
    /* Shards given to this agent, their state loaded into the cache:
     * start their tenants. */
    void (*assigned)(void *ud, const bool *shards);
    /* Shards this agent gives up: stop their tenants now, then wait
     * (bounded, until deadline_ms of mf_clock_wall_ms) for their blobs in
     * delivery to come back. lost: the group dropped this agent already
     * (nothing of these shards may be committed any more). */
    void (*revoking)(void *ud, const bool *shards, bool lost, int64_t deadline_ms);
    void *ud;
};

/* Connect, check or create the topics, start the transactional producer
 * (init_transactions: fences an earlier run of this agent). NULL with
 * err. Nothing joins the group before mf_cluster_start(). */
struct mf_cluster *mf_cluster_new(const struct mf_config *cfg, struct mf_state *state,
                                  struct mf_metrics *m, char *err, size_t errsz);
/* Route the Kafka outputs on the cluster through the transactional
 * producer (before anything is sent). 0 / -1 with err. */
int mf_cluster_attach(struct mf_cluster *cl, struct mf_fanout *fo, char *err, size_t errsz);
/* The commit strategy for the delivery stage (deliver.h), and the stage
 * itself (commits on revocation, the seen-Id filter on assignment). */
const struct mf_dl_txn *mf_cluster_txn(struct mf_cluster *cl);
/* Join the group. */
int mf_cluster_start(struct mf_cluster *cl, struct mf_deliver *d,
                     const struct mf_cluster_hooks *h, char *err, size_t errsz);
/* One turn of the collector's loop: rebalances (the hooks run from here),
 * shards whose state could not be read yet, the membership check after
 * the process stood still (SIGSTOP, a frozen VM), a commit of pending
 * checkpoints once a second. */
void mf_cluster_poll(struct mf_cluster *cl);
/* The tenant's shard is owned and its state loaded. */
bool mf_cluster_owns(const struct mf_cluster *cl, const char *tenant_id);
/* Shards were ever assigned (--once waits for the first assignment). */
bool mf_cluster_assigned_once(const struct mf_cluster *cl);
/* A stream's checkpoint moved: written to the state topic with the next
 * commit. */
void mf_cluster_checkpoint(struct mf_cluster *cl, const char *tenant_id, const char *ct,
                           int64_t ms);
/* Leave the group (revoking what is owned: the hooks run), after the last
 * commit. */
void mf_cluster_leave(struct mf_cluster *cl);
/* After the outputs attached to it are closed. */
void mf_cluster_destroy(struct mf_cluster *cl);

/* `preflight`: the brokers answer, the topics (or what to create), and the
 * guarantee of each output. report(ud, verdict 0 OK / 1 WARN / 2 FAIL,
 * check, text). Returns 1 when a check failed. */
typedef void (*mf_cluster_report_fn)(void *ud, int verdict, const char *check,
                                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int mf_cluster_preflight(const struct mf_config *cfg, mf_cluster_report_fn report, void *ud);

#endif
