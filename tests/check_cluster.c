/* check_cluster.c - cluster mode's pure parts: the tenant -> shard hash
 * (agent/cluster_conf.c) and the `cluster` section's checks. What needs
 * brokers (the group, the state topic, transactions) is in
 * tests/kafka/test_cluster.py against Apache Kafka itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_conf.h"
#include "cluster.h"
#include "test_common.h"

/* ---- mf_cluster_shard ------------------------------------------------- */

/* The values of the documented formula, computed outside m365fwd:
 *   int.from_bytes(sha256(id.lower()).digest()[:8], "big") % shards */
START_TEST(mcs_documented_values)
{
    ck_assert_uint_eq(mf_cluster_shard("0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", 64), 25);
    ck_assert_uint_eq(mf_cluster_shard("contoso.onmicrosoft.com", 64), 7);
    ck_assert_uint_eq(mf_cluster_shard("contoso.onmicrosoft.com", 7), 5);
    ck_assert_uint_eq(mf_cluster_shard("1c2d3e4f-5061-7283-94a5-b6c7d8e9f0a1", 4096), 2866);
    ck_assert_uint_eq(mf_cluster_shard("", 64), 20);
}
END_TEST

START_TEST(mcs_case_insensitive_and_in_range)
{
    unsigned hits[16] = {0};
    char id[64];

    ck_assert_uint_eq(mf_cluster_shard("0B1C2D3E-4F50-6172-8394-A5B6C7D8E9F0", 64),
                      mf_cluster_shard("0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", 64));
    for (unsigned i = 0; i < 1600; i++) {
        uint32_t s;

        snprintf(id, sizeof(id), "%08x-0000-4000-8000-%012x", i * 2654435761u, i);
        s = mf_cluster_shard(id, 16);
        ck_assert_uint_lt(s, 16);
        hits[s]++;
    }
    /* 100 expected per shard: a hash that spreads tenants */
    for (int s = 0; s < 16; s++)
        ck_assert_msg(hits[s] > 60 && hits[s] < 140, "shard %d: %u of 1600", s, hits[s]);
    ck_assert_uint_eq(mf_cluster_shard("x", 1), 0);
}
END_TEST

/* ---- the cluster section ---------------------------------------------- */

static struct mf_config *
load(const char *tail, struct mf_err *err)
{
    char yaml[4096];

    snprintf(yaml, sizeof(yaml),
             "state_dir: /tmp/mf-cluster-test\n"
             "outputs:\n"
             "  - name: k\n    type: kafka\n    brokers: \"k1:9092,k2:9092\"\n"
             "    topic: out\n"
             "%s", tail);
    return mf_config_load("t.yaml", yaml, strlen(yaml), 0, err);
}

START_TEST(mcc_absent_section_is_off)
{
    struct mf_err err;
    struct mf_config *cfg = load("", &err);
    struct mf_buf b;
    struct mf_config *again;

    ck_assert_msg(cfg != NULL, "%s", err.msg);
    ck_assert(!mf_cluster_enabled(&cfg->cluster));
    ck_assert(!mf_cluster_on_cluster(&cfg->cluster, &cfg->outputs.v[0]));
    /* the dump of a configuration without cluster mode loads without it */
    mf_buf_init(&b, 0);
    mf_config_dump_yaml(cfg, &b);
    again = mf_config_load("dump.yaml", b.data, b.len, 0, &err);
    ck_assert_msg(again != NULL, "%s\n%s", err.msg, b.data);
    ck_assert(!mf_cluster_enabled(&again->cluster));
    mf_buf_fini(&b);
    mf_config_destroy(again);
    mf_config_destroy(cfg);
}
END_TEST

START_TEST(mcc_defaults_and_round_trip)
{
    struct mf_err err;
    struct mf_config *cfg = load("cluster:\n  brokers: \"k2:9092, k1:9092\"\n", &err);
    struct mf_config *again;
    struct mf_buf b;

    ck_assert_msg(cfg != NULL, "%s", err.msg);
    ck_assert(mf_cluster_enabled(&cfg->cluster));
    ck_assert_str_eq(cfg->cluster.group, "m365fwd");
    ck_assert_str_eq(cfg->cluster.topic_prefix, "m365fwd");
    ck_assert_int_eq(cfg->cluster.shards, 64);
    ck_assert_int_eq(cfg->cluster.timeout_ms, 60000);
    /* the same brokers in another order: the output is on the cluster */
    ck_assert(mf_cluster_on_cluster(&cfg->cluster, &cfg->outputs.v[0]));
    mf_buf_init(&b, 0);
    mf_config_dump_yaml(cfg, &b);
    again = mf_config_load("dump.yaml", b.data, b.len, 0, &err);
    ck_assert_msg(again != NULL, "%s\n%s", err.msg, b.data);
    ck_assert_uint_eq(mf_config_diff(&mf_config_sec, cfg, again, NULL, NULL), 0);
    mf_buf_fini(&b);
    mf_config_destroy(again);
    mf_config_destroy(cfg);
}
END_TEST

/* Each case: the section, and what the error must say. */
static const struct {
    const char *yaml;
    const char *error;
} bad[] = {
    {"cluster:\n  group: g\n", "cluster: missing required key 'brokers'"},
    {"cluster:\n  brokers: k1\n", "cluster.brokers:"},
    {"cluster:\n  brokers: k1:9092\n  shards: 0\n", "cluster.shards"},
    {"cluster:\n  brokers: k1:9092\n  topic_prefix: \"a b\"\n", "cluster.topic_prefix"},
    {"cluster:\n  brokers: k1:9092\n  rdkafka: {group.id: x}\n",
     "cluster.rdkafka.group.id: set by 'group'"},
    {"cluster:\n  brokers: k1:9092\n  rdkafka: {isolation.level: read_uncommitted}\n",
     "cluster.rdkafka.isolation.level"},
    {"cluster:\n  brokers: k1:9092\n  rdkafka: {transactional.id: x}\n",
     "cluster.rdkafka.transactional.id: set by 'agent_id'"},
    {"cluster:\n  brokers: k1:9092\n  rdkafka: {sasl.password: x}\n",
     "secrets are never written"},
    {"cluster:\n  brokers: k1:9092\n  timeout: 1s\n", "cluster.timeout"},
};

START_TEST(mcc_errors_name_the_key)
{
    struct mf_err err;
    struct mf_config *cfg = load(bad[_i].yaml, &err);

    ck_assert_msg(cfg == NULL, "accepted: %s", bad[_i].yaml);
    ck_assert_msg(strstr(err.all, bad[_i].error) != NULL, "case %d: wanted '%s' in:\n%s",
                  _i, bad[_i].error, err.all);
    ck_assert_msg(strstr(err.all, "t.yaml:") != NULL, "no location:\n%s", err.all);
}
END_TEST

START_TEST(mcc_output_on_cluster_shares_its_properties)
{
    static const char yaml[] =
        "state_dir: /tmp/mf-cluster-test\n"
        "outputs:\n"
        "  - name: k\n    type: kafka\n    brokers: \"k1:9092\"\n    topic: out\n"
        "    rdkafka: {security.protocol: SSL, linger.ms: \"50\"}\n"
        "  - name: other\n    type: kafka\n    brokers: \"k9:9092\"\n    topic: out\n"
        "    rdkafka: {linger.ms: \"5\"}\n"
        "cluster:\n  brokers: \"k1:9092\"\n"
        "  rdkafka: {security.protocol: SSL, session.timeout.ms: \"10000\"}\n";
    struct mf_err err;
    struct mf_config *cfg = mf_config_load("t.yaml", yaml, sizeof(yaml) - 1, 0, &err);
    char fixed[sizeof(yaml) + 64];

    /* linger.ms on the output only: the cluster's producer carries it, so
     * the cluster must set it too; the output on other brokers is free */
    ck_assert(cfg == NULL);
    ck_assert_msg(strstr(err.all, "outputs[0].rdkafka.linger.ms: this output is on the "
                                  "cluster's brokers") != NULL, "%s", err.all);
    ck_assert_msg(strstr(err.all, "outputs[1]") == NULL, "%s", err.all);
    {
        const char *at = strstr(yaml, "session.timeout.ms");

        snprintf(fixed, sizeof(fixed), "%.*slinger.ms: \"50\", %s", (int)(at - yaml), yaml,
                 at);
    }
    cfg = mf_config_load("t.yaml", fixed, strlen(fixed), 0, &err);
    ck_assert_msg(cfg != NULL, "%s\n%s", err.all, fixed);
    ck_assert(mf_cluster_on_cluster(&cfg->cluster, &cfg->outputs.v[0]));
    ck_assert(!mf_cluster_on_cluster(&cfg->cluster, &cfg->outputs.v[1]));
    mf_config_destroy(cfg);
}
END_TEST

START_TEST(mcc_agent_id_default_names_host_and_state_dir)
{
    struct mf_err err;
    struct mf_config *a = load("cluster:\n  brokers: k1:9092\n", &err);
    struct mf_config *b;
    char ida[128], idb[128], yaml[512];

    ck_assert_msg(a != NULL, "%s", err.msg);
    mf_cluster_agent_id(a, ida, sizeof(ida));
    snprintf(yaml, sizeof(yaml),
             "state_dir: /tmp/mf-cluster-test-2\n"
             "outputs:\n  - name: f\n    type: file\n    path: /dev/null\n"
             "cluster:\n  brokers: k1:9092\n");
    b = mf_config_load("t.yaml", yaml, strlen(yaml), 0, &err);
    ck_assert_msg(b != NULL, "%s", err.msg);
    mf_cluster_agent_id(b, idb, sizeof(idb));
    /* stable, distinct per state_dir, usable as a client.id */
    ck_assert_str_ne(ida, idb);
    mf_cluster_agent_id(a, idb, sizeof(idb));
    ck_assert_str_eq(ida, idb);
    for (const char *p = ida; *p; p++)
        ck_assert_msg(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                             "0123456789.-", *p) != NULL, "%s", ida);
    mf_config_destroy(a);
    mf_config_destroy(b);
    a = load("cluster:\n  brokers: k1:9092\n  agent_id: east-1\n", &err);
    ck_assert_msg(a != NULL, "%s", err.msg);
    mf_cluster_agent_id(a, ida, sizeof(ida));
    ck_assert_str_eq(ida, "east-1");
    mf_config_destroy(a);
}
END_TEST

static Suite *
suite(void)
{
    Suite *s = suite_create("cluster");
    TCase *tc;

    tc = tcase_create("mf_cluster_shard");
    tcase_add_test(tc, mcs_documented_values);
    tcase_add_test(tc, mcs_case_insensitive_and_in_range);
    suite_add_tcase(s, tc);
    tc = tcase_create("cluster section");
    tcase_add_test(tc, mcc_absent_section_is_off);
    tcase_add_test(tc, mcc_defaults_and_round_trip);
    tcase_add_loop_test(tc, mcc_errors_name_the_key, 0, (int)(sizeof(bad) / sizeof(bad[0])));
    tcase_add_test(tc, mcc_output_on_cluster_shares_its_properties);
    tcase_add_test(tc, mcc_agent_id_default_names_host_and_state_dir);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return mf_test_run(suite());
}
