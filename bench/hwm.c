/* hwm.c - Kafka side of the forwarding benchmark (bench/forward-bench.sh).
 *
 *   forward-bench-hwm mock [TOPIC...]
 *       Start a librdkafka mock cluster (1 broker, plaintext on 127.0.0.1),
 *       create each TOPIC with 1 partition, print the bootstrap servers on
 *       one line of stdout. Then read commands on stdin, one per line:
 *         topic NAME      create NAME (1 partition); answers "ok NAME"
 *       and exit at EOF. Debian's kcat 1.7.1 has no -M, hence this helper.
 *   forward-bench-hwm wait BROKERS TOPIC N TIMEOUT_S
 *       Poll the high watermark of TOPIC partition 0 until it reaches N.
 *       Prints "hwm H SECONDS" (seconds since this program started) and
 *       exits 0; at the timeout prints the last value and exits 1.
 *   forward-bench-hwm query BROKERS TOPIC
 *       Print the high watermark of TOPIC partition 0 once.
 *
 * The mock keeps only about 5 MiB per partition, so the benchmark counts
 * records with the high watermark (records appended) and never consumes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define POLL_NS     (5 * 1000 * 1000L)    /* watermark poll interval */
#define QUERY_MS    2000                  /* one watermark request */

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level <= 3)
        fprintf(stderr, "forward-bench-hwm: %s: %s\n", fac, buf);
}

static rd_kafka_t *
new_handle(const char *brokers)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    rd_kafka_conf_set_log_cb(conf, quiet_log);
    if (brokers && rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err,
                                     sizeof(err)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "forward-bench-hwm: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "forward-bench-hwm: rd_kafka_new: %s\n", err);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

static int
create_topic(rd_kafka_mock_cluster_t *mc, const char *name)
{
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, name, 1, 1);

    if (e) {
        fprintf(stderr, "forward-bench-hwm: create %s: %s\n", name,
                rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

static int
cmd_mock(int argc, char **argv)
{
    rd_kafka_t *rk = new_handle(NULL);
    rd_kafka_mock_cluster_t *mc;
    char line[1024];
    int rc = 0;

    if (!rk)
        return 2;
    mc = rd_kafka_mock_cluster_new(rk, 1);
    if (!mc) {
        fprintf(stderr, "forward-bench-hwm: cannot create the mock cluster\n");
        rd_kafka_destroy(rk);
        return 2;
    }
    for (int i = 0; i < argc; i++)
        if (create_topic(mc, argv[i]) != 0)
            rc = 2;
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    while (rc == 0 && fgets(line, sizeof(line), stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, "topic ", 6) == 0 && line[6]) {
            if (create_topic(mc, line + 6) == 0)
                printf("ok %s\n", line + 6);
            else
                printf("error %s\n", line + 6);
        } else if (line[0]) {
            printf("error unknown command\n");
        }
        fflush(stdout);
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return rc;
}

/* The high watermark, or -1 (error printed once per kind). */
static long long
query(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
    static rd_kafka_resp_err_t last;
    int64_t lo = 0, hi = 0;
    rd_kafka_resp_err_t e;

    e = rd_kafka_query_watermark_offsets(rk, topic, 0, &lo, &hi, timeout_ms);
    if (e) {
        if (e != last)
            fprintf(stderr, "forward-bench-hwm: watermark of %s: %s\n", topic,
                    rd_kafka_err2str(e));
        last = e;
        return -1;
    }
    return (long long)hi;
}

static int
parse_ll(const char *s, long long *out)
{
    char *end;

    errno = 0;
    *out = strtoll(s, &end, 10);
    return (errno || end == s || *end || *out < 0) ? -1 : 0;
}

static int
cmd_wait(const char *brokers, const char *topic, const char *n_s,
         const char *timeout_s)
{
    double t0 = now_s(), deadline;
    long long n, tmo, hi = -1;
    struct timespec pause = {0, POLL_NS};
    rd_kafka_t *rk;

    if (parse_ll(n_s, &n) != 0 || parse_ll(timeout_s, &tmo) != 0) {
        fprintf(stderr, "forward-bench-hwm: N and TIMEOUT_S are integers\n");
        return 2;
    }
    rk = new_handle(brokers);
    if (!rk)
        return 2;
    deadline = t0 + (double)tmo;
    for (;;) {
        long long h = query(rk, topic, QUERY_MS);

        if (h > hi)
            hi = h;
        if (hi >= n) {
            printf("hwm %lld %.3f\n", hi, now_s() - t0);
            break;
        }
        if (now_s() >= deadline) {
            printf("hwm %lld %.3f timeout\n", hi, now_s() - t0);
            fflush(stdout);
            rd_kafka_destroy(rk);
            return 1;
        }
        nanosleep(&pause, NULL);
    }
    fflush(stdout);
    rd_kafka_destroy(rk);
    return 0;
}

static int
cmd_query(const char *brokers, const char *topic)
{
    rd_kafka_t *rk = new_handle(brokers);
    long long h;

    if (!rk)
        return 2;
    h = query(rk, topic, 5000);
    printf("%lld\n", h);
    rd_kafka_destroy(rk);
    return h < 0;
}

int
main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "mock") == 0)
        return cmd_mock(argc - 2, argv + 2);
    if (argc == 6 && strcmp(argv[1], "wait") == 0)
        return cmd_wait(argv[2], argv[3], argv[4], argv[5]);
    if (argc == 4 && strcmp(argv[1], "query") == 0)
        return cmd_query(argv[2], argv[3]);
    fprintf(stderr,
            "usage: forward-bench-hwm mock [TOPIC...]\n"
            "       forward-bench-hwm wait BROKERS TOPIC N TIMEOUT_S\n"
            "       forward-bench-hwm query BROKERS TOPIC\n");
    return 2;
}
