/* mock_kafka.c - a standalone librdkafka mock cluster for the end-to-end
 * tests, the demo and the benchmark (Debian's kcat 1.7.1 has no -M).
 *
 *   mock_kafka [-b BROKERS] [-t TOPIC[:PARTITIONS]]...
 *       Start a mock cluster (plaintext listeners on 127.0.0.1), create the
 *       topics (default 1 partition; the mock auto-creates unknown topics
 *       with several partitions), print the bootstrap servers as one line
 *       on standard output, then run until SIGTERM / SIGINT / SIGHUP.
 *       The mock keeps only ~5 MiB per partition: count with --watermark or
 *       consume while producing. SIGUSR1 takes every broker down (their
 *       connections close, new ones are refused), SIGUSR2 brings them up
 *       again; each prints "down" / "up" on standard output once done.
 *
 *   mock_kafka --watermark BOOTSTRAP TOPIC [--wait N] [--timeout SEC]
 *       Print the number of records appended to TOPIC (sum over its
 *       partitions of the high watermark; duplicates included; records the
 *       mock already dropped for retention still count). With
 *       --wait, poll until it reaches N: exit 0 when reached, 1 on timeout.
 *
 *   mock_kafka --consume BOOTSTRAP TOPIC [--count N] [--timeout SEC]
 *       Read TOPIC (a name or a ^regex; topics created meanwhile are
 *       picked up) from the beginning, partitions assigned directly (no
 *       consumer group, so no rebalance to wait for), and print one
 *       line per record: topic, partition, offset and the m365fwd-id header
 *       (or the key when there is none), tab-separated. Stops after N
 *       records, after SEC seconds without a new record (default 10), or on
 *       a signal. Exit 0, or 1 when fewer than N arrived.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tool_util.h"


static void
usage(void)
{
    fprintf(stderr,
            "usage: mock_kafka [-b BROKERS] [-t TOPIC[:PARTITIONS]]...\n"
            "       mock_kafka --watermark BOOTSTRAP TOPIC [--wait N] "
            "[--timeout SEC]\n"
            "       mock_kafka --consume BOOTSTRAP TOPIC [--count N] "
            "[--timeout SEC]\n");
    exit(2);
}

static rd_kafka_t *
client(rd_kafka_type_t type, const char *boot)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[512], group[64];
    rd_kafka_t *rk;

    /* a group of its own: a consumer that ran before (and perhaps did not
     * leave cleanly) must not make this one wait for a rebalance */
    snprintf(group, sizeof(group), "mock-kafka-check-%ld-%ld", (long)getpid(),
             (long)time(NULL));
    if ((boot && rd_kafka_conf_set(conf, "bootstrap.servers", boot, err,
                                   sizeof(err)) != RD_KAFKA_CONF_OK) ||
        rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err)) !=
            RD_KAFKA_CONF_OK ||
        (type == RD_KAFKA_CONSUMER &&
         (rd_kafka_conf_set(conf, "group.id", group, err,
                            sizeof(err)) != RD_KAFKA_CONF_OK ||
          rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err,
                            sizeof(err)) != RD_KAFKA_CONF_OK ||
          rd_kafka_conf_set(conf, "enable.auto.commit", "false", err,
                            sizeof(err)) != RD_KAFKA_CONF_OK ||
          rd_kafka_conf_set(conf, "topic.metadata.refresh.interval.ms", "500",
                            err, sizeof(err)) != RD_KAFKA_CONF_OK))) {
        fprintf(stderr, "mock_kafka: %s\n", err);
        exit(2);
    }
    rk = rd_kafka_new(type, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "mock_kafka: %s\n", err);
        exit(2);
    }
    return rk;
}

static int
serve(int brokers, char **topics, int n_topics)
{
    rd_kafka_mock_cluster_t *mc;
    rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, NULL);
    sigset_t set;
    int sig;

    mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mc) {
        fprintf(stderr, "mock_kafka: cannot create the mock cluster\n");
        return 2;
    }
    for (int i = 0; i < n_topics; i++) {
        char *colon = strrchr(topics[i], ':');
        int parts = 1;
        int repl = brokers < 3 ? brokers : 3;

        if (colon) {
            *colon = '\0';
            parts = atoi(colon + 1);
            if (parts < 1) {
                fprintf(stderr, "mock_kafka: bad partition count in -t\n");
                return 2;
            }
        }
        if (rd_kafka_mock_topic_create(mc, topics[i], parts, repl) !=
            RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "mock_kafka: cannot create topic %s\n", topics[i]);
            return 2;
        }
    }
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    /* signals were blocked in main() before any thread started */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    for (;;) {
        sigwait(&set, &sig);
        if (sig != SIGUSR1 && sig != SIGUSR2)
            break;
        for (int b = 1; b <= brokers; b++)
            if (sig == SIGUSR1)
                rd_kafka_mock_broker_set_down(mc, b);
            else
                rd_kafka_mock_broker_set_up(mc, b);
        printf("%s\n", sig == SIGUSR1 ? "down" : "up");
        fflush(stdout);
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}

static long long
watermark(rd_kafka_t *rk, const char *topic)
{
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    long long sum = -1;

    if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        md->topic_cnt == 1 && !md->topics[0].err) {
        sum = 0;
        for (int p = 0; p < md->topics[0].partition_cnt; p++) {
            int64_t lo = 0, hi = 0;

            if (rd_kafka_query_watermark_offsets(rk, topic,
                                                 md->topics[0].partitions[p].id,
                                                 &lo, &hi, 5000) !=
                RD_KAFKA_RESP_ERR_NO_ERROR) {
                sum = -1;
                break;
            }
            sum += hi;
        }
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return sum;
}

static int
cmd_watermark(const char *boot, const char *topic, long long want, int timeout_s)
{
    rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, boot);
    long long deadline = now_ms() + (long long)timeout_s * 1000, n;
    int rc;

    for (;;) {
        n = watermark(rk, topic);
        if (want < 0 || n >= want || now_ms() >= deadline || stop)
            break;
        rd_kafka_poll(rk, 100);
    }
    printf("%lld\n", n);
    rc = n < 0 ? 1 : (want >= 0 && n < want) ? 1 : 0;
    rd_kafka_destroy(rk);
    return rc;
}

/* Assign (from the beginning) every partition of the topics matching
 * topic (a name, or a ^regex) not assigned yet; returns how many topics
 * are assigned in all. No consumer group: nothing waits for a rebalance. */
static int
assign_new(rd_kafka_t *rk, const char *topic, char **seen, int n_seen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *add;
    regex_t re;
    bool is_re = topic[0] == '^';

    if (is_re && regcomp(&re, topic, REG_EXTENDED | REG_NOSUB) != 0)
        return n_seen;
    if (rd_kafka_metadata(rk, 1, NULL, &md, 2000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (is_re)
            regfree(&re);
        return n_seen;
    }
    add = rd_kafka_topic_partition_list_new(8);
    for (int t = 0; t < md->topic_cnt && n_seen < 256; t++) {
        const struct rd_kafka_metadata_topic *mt = &md->topics[t];
        bool known = false;

        if (mt->err || !(is_re ? regexec(&re, mt->topic, 0, NULL, 0) == 0
                               : strcmp(mt->topic, topic) == 0))
            continue;
        for (int k = 0; k < n_seen && !known; k++)
            known = strcmp(seen[k], mt->topic) == 0;
        if (known)
            continue;
        seen[n_seen++] = strdup(mt->topic);
        for (int p = 0; p < mt->partition_cnt; p++)
            rd_kafka_topic_partition_list_add(add, mt->topic, mt->partitions[p].id)
                ->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    if (add->cnt)
        rd_kafka_incremental_assign(rk, add);
    rd_kafka_topic_partition_list_destroy(add);
    rd_kafka_metadata_destroy(md);
    if (is_re)
        regfree(&re);
    return n_seen;
}

static int
cmd_consume(const char *boot, const char *topic, long long count, int idle_s)
{
    rd_kafka_t *rk = client(RD_KAFKA_CONSUMER, boot);
    long long got = 0, last = now_ms(), looked = 0;
    char *seen[256];
    int n_seen = 0;

    rd_kafka_poll_set_consumer(rk);
    while (!stop && (count < 0 || got < count) &&
           now_ms() - last < (long long)idle_s * 1000) {
        rd_kafka_message_t *m;
        rd_kafka_headers_t *h = NULL;
        const void *v = NULL;
        size_t len = 0;

        /* topics appear while the producer writes: look again now and then */
        if (now_ms() - looked >= 500) {
            n_seen = assign_new(rk, topic, seen, n_seen);
            looked = now_ms();
        }
        if (!(m = rd_kafka_consumer_poll(rk, 200)))
            continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF &&
                m->err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
                fprintf(stderr, "mock_kafka: %s\n", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            rd_kafka_header_get_last(h, "m365fwd-id", &v, &len) !=
                RD_KAFKA_RESP_ERR_NO_ERROR) {
            v = m->key;
            len = m->key ? m->key_len : 0;
        }
        printf("%s\t%d\t%lld\t%.*s\n", rd_kafka_topic_name(m->rkt),
               (int)m->partition, (long long)m->offset, (int)len,
               v ? (const char *)v : "");
        got++;
        last = now_ms();
        rd_kafka_message_destroy(m);
    }
    fflush(stdout);
    for (int k = 0; k < n_seen; k++)
        free(seen[k]);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return count >= 0 && got < count ? 1 : 0;
}

int
main(int argc, char **argv)
{
    char *topics[64];
    int n_topics = 0, brokers = 1, timeout_s = 10;
    long long want = -1;
    const char *mode = NULL, *boot = NULL, *topic = NULL;
    struct sigaction sa;
    sigset_t set;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "-b") == 0 && i + 1 < argc) {
            brokers = atoi(argv[++i]);
            if (brokers < 1 || brokers > 16)
                usage();
        } else if (strcmp(a, "-t") == 0 && i + 1 < argc) {
            if (n_topics == 64)
                usage();
            topics[n_topics++] = argv[++i];
        } else if ((strcmp(a, "--watermark") == 0 ||
                    strcmp(a, "--consume") == 0) && i + 2 < argc) {
            mode = a;
            boot = argv[++i];
            topic = argv[++i];
        } else if ((strcmp(a, "--wait") == 0 || strcmp(a, "--count") == 0) &&
                   i + 1 < argc) {
            want = atoll(argv[++i]);
        } else if (strcmp(a, "--timeout") == 0 && i + 1 < argc) {
            timeout_s = atoi(argv[++i]);
        } else {
            usage();
        }
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGPIPE, &(struct sigaction){.sa_handler = SIG_IGN}, NULL);
    if (!mode) {
        /* block before librdkafka starts threads; serve() sigwait()s */
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGHUP);
        sigaddset(&set, SIGUSR1);
        sigaddset(&set, SIGUSR2);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        return serve(brokers, topics, n_topics);
    }
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (strcmp(mode, "--watermark") == 0)
        return cmd_watermark(boot, topic, want, timeout_s);
    return cmd_consume(boot, topic, want, timeout_s);
}
