/* kafka_client.c - a small librdkafka client for the tests and benchmarks
 * that run against a real Kafka broker (tests/kafka/broker.py). Every
 * command takes any librdkafka property with -X PROP=VALUE (security.protocol,
 * sasl.*, ssl.*, isolation.level...), and -F PROP=FILE for a property whose
 * value is read from a file (a password: kept off the command line).
 *
 *   kafka_client metadata -b BOOT [--brokers N] [--broker-id ID]...
 *                [--absent-id ID]... [--timeout SEC] [-X P=V]...
 *       Wait until the cluster lists at least N brokers (default 1), every
 *       --broker-id and no --absent-id (a broker the controller fenced),
 *       then print one JSON object: {"brokers": [{"id", "host",
 *       "port"}], "controller": id, "topics": {name: partitions}}.
 *       Exit 0, or 1 when the condition is not met before the deadline
 *       (the last error is printed).
 *
 *   kafka_client create-topic -b BOOT -t NAME [--partitions N]
 *                [--replication R] [-c CONFIG=VALUE]... [--timeout SEC]
 *       Create the topic (e.g. -c cleanup.policy=compact) and wait until every
 *       partition has a leader. Exit 0 when created or already there.
 *
 *   kafka_client consume -b BOOT -t TOPIC [-t TOPIC]... [--count N]
 *                [--idle SEC] [--timeout SEC] [--eof] [-X P=V]...
 *       Read every partition of the topics from the beginning (assigned, no
 *       consumer group) and print one JSON line per record: {"topic",
 *       "partition", "offset", "timestamp", "key", "value", "headers"}; key
 *       and value are strings (null when absent; "value_hex"/"key_hex" instead
 *       when not UTF-8), headers an object (last value wins). Stops after N
 *       records, after SEC seconds without a new record (--idle, default 10),
 *       at --timeout (default 120), or with --eof once every partition is at
 *       its end (under isolation.level=read_committed: the last stable
 *       offset). Prints a summary on stderr. Exit 0, 1 when fewer than N
 *       arrived, 2 on a usage error.
 *
 *   kafka_client produce -b BOOT -t TOPIC [--txn-id ID --txn-end commit|abort]
 *                [-X P=V]...
 *       Produce one record per standard input line: a JSON object with
 *       "value", optional "key", "headers" and "partition" (what consume
 *       prints). With --txn-id all records are one transaction, committed or
 *       aborted at the end of the input ("transaction begun" on stderr once
 *       the producer holds the transactional id). Exit 0 when every record
 *       was acknowledged (or the abort succeeded), 1 otherwise.
 *
 *   kafka_client version
 *       Print librdkafka's version (e.g. 2.0.2).
 *
 *   librdkafka's default isolation.level is read_committed. A failed
 *   authentication or TLS handshake ends any command at once with exit 3 and
 *   the reason on stderr.
 */
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tool_util.h"

#define MAX_LIST 64
#define LINE_MAX_BYTES (4 * 1024 * 1024)

static char auth_error[512];    /* a failed authentication or TLS handshake */

struct opts {
    const char *cmd;
    const char *boot;
    const char *topics[MAX_LIST];
    int n_topics;
    const char *props[MAX_LIST];    /* "P=V" for rd_kafka_conf_set */
    int n_props;
    const char *fprops[MAX_LIST];   /* "P=FILE" */
    int n_fprops;
    const char *configs[MAX_LIST];  /* topic configs "K=V" */
    int n_configs;
    int broker_ids[MAX_LIST];
    int n_broker_ids;
    int absent_ids[MAX_LIST];
    int n_absent_ids;
    long long count;
    int brokers;
    int partitions;
    int replication;
    double idle_s;
    double timeout_s;
    int eof;
    const char *txn_id;
    const char *txn_end;
};

static void
die(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "kafka_client: ");
    fprintf(stderr, fmt, a ? a : "", b ? b : "");
    fprintf(stderr, "\n");
    exit(2);
}

static void
usage(void)
{
    fprintf(stderr,
            "usage: kafka_client metadata -b BOOT [--brokers N] "
            "[--broker-id ID]... [--absent-id ID]... [--timeout SEC] "
            "[-X P=V]... [-F P=FILE]...\n"
            "       kafka_client create-topic -b BOOT -t NAME [--partitions N] "
            "[--replication R] [-c K=V]... [--timeout SEC] [-X P=V]...\n"
            "       kafka_client consume -b BOOT -t TOPIC... [--count N] "
            "[--idle SEC] [--timeout SEC] [--eof] [-X P=V]...\n"
            "       kafka_client produce -b BOOT -t TOPIC [--txn-id ID "
            "--txn-end commit|abort] [-X P=V]...\n"
            "       kafka_client version\n");
    exit(2);
}

/* The first line of a file, without the trailing newline. */
static char *
read_file_value(const char *path)
{
    FILE *f = fopen(path, "r");
    char buf[4096];
    size_t n;

    if (!f)
        die("cannot read %s", path, NULL);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    return strdup(buf);
}

static void
set_prop(rd_kafka_conf_t *conf, const char *prop, const char *value)
{
    char err[512];

    if (rd_kafka_conf_set(conf, prop, value, err, sizeof(err)) !=
        RD_KAFKA_CONF_OK)
        die("property %s: %s", prop, err);
}

/* Split "P=V" (V may hold '='), set it. */
static void
set_pair(rd_kafka_conf_t *conf, const char *pair, int from_file)
{
    const char *eq = strchr(pair, '=');
    char *prop, *value;

    if (!eq || eq == pair)
        die("expected PROPERTY=VALUE, got '%s'", pair, NULL);
    prop = strndup(pair, (size_t)(eq - pair));
    value = from_file ? read_file_value(eq + 1) : strdup(eq + 1);
    set_prop(conf, prop, value);
    free(prop);
    free(value);
}

/* Authentication and TLS failures will not heal by retrying: remember the
 * first one so that every command stops at once (exit 3). */
static void
error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    /* under TLS 1.3 a refused client certificate arrives after the
     * handshake, as an alert on the first read: a transport error */
    if ((err == RD_KAFKA_RESP_ERR__AUTHENTICATION ||
         err == RD_KAFKA_RESP_ERR__SSL ||
         err == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED ||
         (err == RD_KAFKA_RESP_ERR__TRANSPORT && reason &&
          strstr(reason, "SSL alert"))) &&
        !auth_error[0])
        snprintf(auth_error, sizeof(auth_error), "%s: %s",
                 rd_kafka_err2name(err), reason);
}

static int
auth_failed(const char *cmd)
{
    if (!auth_error[0])
        return 0;
    fprintf(stderr, "kafka_client: %s: %s\n", cmd, auth_error);
    return 1;
}

static rd_kafka_conf_t *
base_conf(const struct opts *o)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    rd_kafka_conf_set_error_cb(conf, error_cb);
    set_prop(conf, "bootstrap.servers", o->boot);
    set_prop(conf, "log_level", "3");
    for (int i = 0; i < o->n_props; i++)
        set_pair(conf, o->props[i], 0);
    for (int i = 0; i < o->n_fprops; i++)
        set_pair(conf, o->fprops[i], 1);
    return conf;
}

static rd_kafka_t *
make_client(rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));

    if (!rk)
        die("%s", err, NULL);
    return rk;
}

static int
remaining_ms(long long deadline)
{
    long long r = deadline - now_ms();

    return r < 0 ? 0 : r > 5000 ? 5000 : (int)r;
}

/* ---------------------------------------------------------------- metadata */

static int
listed(const rd_kafka_metadata_t *md, int id)
{
    for (int b = 0; b < md->broker_cnt; b++)
        if (md->brokers[b].id == id)
            return 1;
    return 0;
}

static int
metadata_ok(const struct opts *o, const rd_kafka_metadata_t *md)
{
    if (md->broker_cnt < o->brokers)
        return 0;
    for (int i = 0; i < o->n_broker_ids; i++)
        if (!listed(md, o->broker_ids[i]))
            return 0;
    for (int i = 0; i < o->n_absent_ids; i++)
        if (listed(md, o->absent_ids[i]))
            return 0;
    return 1;
}

static void
print_metadata(rd_kafka_t *rk, const rd_kafka_metadata_t *md)
{
    json_t *out = json_object(), *brokers = json_array(), *topics = json_object();
    char *s;

    for (int b = 0; b < md->broker_cnt; b++)
        json_array_append_new(brokers,
                              json_pack("{s:i, s:s, s:i}", "id",
                                        md->brokers[b].id, "host",
                                        md->brokers[b].host, "port",
                                        md->brokers[b].port));
    for (int t = 0; t < md->topic_cnt; t++)
        if (!md->topics[t].err)
            json_object_set_new(topics, md->topics[t].topic,
                                json_integer(md->topics[t].partition_cnt));
    json_object_set_new(out, "brokers", brokers);
    json_object_set_new(out, "controller", json_integer(rd_kafka_controllerid(rk, 0)));
    json_object_set_new(out, "topics", topics);
    s = json_dumps(out, JSON_COMPACT);
    printf("%s\n", s);
    free(s);
    json_decref(out);
}

static int
cmd_metadata(const struct opts *o)
{
    rd_kafka_t *rk = make_client(RD_KAFKA_PRODUCER, base_conf(o));
    long long deadline = now_ms() + (long long)(o->timeout_s * 1000);
    rd_kafka_resp_err_t last = RD_KAFKA_RESP_ERR_NO_ERROR;
    int rc = 1;

    while (!stop) {
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_resp_err_t err =
            rd_kafka_metadata(rk, 1, NULL, &md, remaining_ms(deadline) + 1);

        if (err == RD_KAFKA_RESP_ERR_NO_ERROR && metadata_ok(o, md)) {
            print_metadata(rk, md);
            rd_kafka_metadata_destroy(md);
            rc = 0;
            break;
        }
        if (md)
            rd_kafka_metadata_destroy(md);
        if (err)
            last = err;
        rd_kafka_poll(rk, 0);
        if (auth_failed("metadata")) {
            rc = 3;
            break;
        }
        if (now_ms() >= deadline) {
            fprintf(stderr, "kafka_client: metadata: condition not met in %.0fs "
                    "(last error: %s)\n", o->timeout_s,
                    last ? rd_kafka_err2str(last) : "none");
            break;
        }
        rd_kafka_poll(rk, 100);
    }
    rd_kafka_destroy(rk);
    return rc;
}

/* ------------------------------------------------------------ create-topic */

/* Every partition of topic has a leader: 1; topic unknown or not yet: 0. */
static int
topic_led(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int ok = 0;

    if (rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        md->topic_cnt == 1 && !md->topics[0].err &&
        md->topics[0].partition_cnt > 0) {
        ok = 1;
        for (int p = 0; p < md->topics[0].partition_cnt; p++)
            if (md->topics[0].partitions[p].err ||
                md->topics[0].partitions[p].leader < 0)
                ok = 0;
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return ok;
}

static int
cmd_create_topic(const struct opts *o)
{
    rd_kafka_t *rk = make_client(RD_KAFKA_PRODUCER, base_conf(o));
    long long deadline = now_ms() + (long long)(o->timeout_s * 1000);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_NewTopic_t *nt;
    rd_kafka_AdminOptions_t *ao;
    rd_kafka_event_t *ev;
    char err[512];
    int rc = 1;

    if (o->n_topics != 1)
        usage();
    nt = rd_kafka_NewTopic_new(o->topics[0], o->partitions, o->replication,
                               err, sizeof(err));
    if (!nt)
        die("%s", err, NULL);
    for (int i = 0; i < o->n_configs; i++) {
        const char *eq = strchr(o->configs[i], '=');
        char *k;

        if (!eq)
            die("expected CONFIG=VALUE, got '%s'", o->configs[i], NULL);
        k = strndup(o->configs[i], (size_t)(eq - o->configs[i]));
        if (rd_kafka_NewTopic_set_config(nt, k, eq + 1))
            die("bad topic config %s", k, NULL);
        free(k);
    }
    ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(ao, (int)(o->timeout_s * 1000),
                                              err, sizeof(err));
    rd_kafka_AdminOptions_set_operation_timeout(ao, (int)(o->timeout_s * 1000),
                                                err, sizeof(err));
    rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
    ev = rd_kafka_queue_poll(q, (int)(o->timeout_s * 1000) + 1000);
    if (!ev) {
        fprintf(stderr, "kafka_client: create-topic %s: no answer in %.0fs\n",
                o->topics[0], o->timeout_s);
    } else if (rd_kafka_event_error(ev)) {
        fprintf(stderr, "kafka_client: create-topic %s: %s\n", o->topics[0],
                rd_kafka_event_error_string(ev));
    } else {
        const rd_kafka_CreateTopics_result_t *res =
            rd_kafka_event_CreateTopics_result(ev);
        size_t n = 0;
        const rd_kafka_topic_result_t **tr =
            rd_kafka_CreateTopics_result_topics(res, &n);
        rd_kafka_resp_err_t e = n == 1 ? rd_kafka_topic_result_error(tr[0])
                                       : RD_KAFKA_RESP_ERR__FAIL;

        if (e == RD_KAFKA_RESP_ERR_NO_ERROR ||
            e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            printf("%s\n", e ? "exists" : "created");
            rc = 0;
        } else {
            fprintf(stderr, "kafka_client: create-topic %s: %s: %s\n",
                    o->topics[0], rd_kafka_err2name(e),
                    n == 1 && rd_kafka_topic_result_error_string(tr[0])
                        ? rd_kafka_topic_result_error_string(tr[0])
                        : rd_kafka_err2str(e));
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    /* the controller has it; wait until the brokers lead every partition */
    while (rc == 0 && !topic_led(rk, o->topics[0], remaining_ms(deadline) + 1)) {
        if (stop || now_ms() >= deadline) {
            fprintf(stderr, "kafka_client: create-topic %s: partitions without "
                    "a leader after %.0fs\n", o->topics[0], o->timeout_s);
            rc = 1;
            break;
        }
        rd_kafka_poll(rk, 100);
    }
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

/* ----------------------------------------------------------------- consume */

/* A string for bytes: JSON string when UTF-8, else hex under NAME_hex. */
static void
set_bytes(json_t *obj, const char *name, const void *p, size_t len)
{
    json_t *s;
    char hexname[32];

    if (!p) {
        json_object_set_new(obj, name, json_null());
        return;
    }
    s = json_stringn((const char *)p, len);
    if (s) {
        json_object_set_new(obj, name, s);
        return;
    }
    {
        char *hex = malloc(len * 2 + 1);
        static const char digits[] = "0123456789abcdef";

        if (!hex)
            die("out of memory", NULL, NULL);
        for (size_t i = 0; i < len; i++) {
            hex[2 * i] = digits[((const unsigned char *)p)[i] >> 4];
            hex[2 * i + 1] = digits[((const unsigned char *)p)[i] & 15];
        }
        hex[len * 2] = '\0';
        snprintf(hexname, sizeof(hexname), "%s_hex", name);
        json_object_set_new(obj, hexname, json_string(hex));
        free(hex);
    }
}

static void
print_message(const rd_kafka_message_t *m)
{
    json_t *o = json_object(), *hdrs = json_object();
    rd_kafka_headers_t *h = NULL;
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    char *s;

    json_object_set_new(o, "topic", json_string(rd_kafka_topic_name(m->rkt)));
    json_object_set_new(o, "partition", json_integer(m->partition));
    json_object_set_new(o, "offset", json_integer(m->offset));
    json_object_set_new(o, "timestamp", json_integer(ts));
    set_bytes(o, "key", m->key, m->key_len);
    set_bytes(o, "value", m->payload, m->len);
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *v;
        size_t len;

        for (size_t i = 0;
             rd_kafka_header_get_all(h, i, &name, &v, &len) ==
             RD_KAFKA_RESP_ERR_NO_ERROR;
             i++)
            set_bytes(hdrs, name, v, len);
    }
    json_object_set_new(o, "headers", hdrs);
    s = json_dumps(o, JSON_COMPACT);
    printf("%s\n", s);
    free(s);
    json_decref(o);
}

/* Assign every partition of the topics at the beginning; the list
 * assigned (the caller destroys it), or NULL. */
static rd_kafka_topic_partition_list_t *
assign_all(rd_kafka_t *rk, const struct opts *o, long long deadline)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);

    for (int t = 0; t < o->n_topics; t++) {
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topics[t], NULL);
        int found = 0;

        /* the topic may be created by the producer a moment later */
        while (!stop) {
            rd_kafka_resp_err_t err =
                rd_kafka_metadata(rk, 0, rkt, &md, remaining_ms(deadline) + 1);

            if (!err && md->topic_cnt == 1 && !md->topics[0].err &&
                md->topics[0].partition_cnt > 0) {
                for (int p = 0; p < md->topics[0].partition_cnt; p++)
                    rd_kafka_topic_partition_list_add(
                        l, o->topics[t], md->topics[0].partitions[p].id)
                        ->offset = RD_KAFKA_OFFSET_BEGINNING;
                found = 1;
            }
            if (md)
                rd_kafka_metadata_destroy(md);
            md = NULL;
            rd_kafka_poll(rk, 0);
            if (found || now_ms() >= deadline || auth_error[0])
                break;
            rd_kafka_poll(rk, 200);
        }
        rd_kafka_topic_destroy(rkt);
        if (!found) {
            fprintf(stderr, "kafka_client: consume: topic %s not found\n",
                    o->topics[t]);
            rd_kafka_topic_partition_list_destroy(l);
            return NULL;
        }
    }
    if (rd_kafka_assign(rk, l) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_topic_partition_list_destroy(l);
        return NULL;
    }
    return l;
}

/* Mark a partition of the assignment at its end (1) or not (0); the
 * number of partitions at their end. */
static int
mark_eof(rd_kafka_topic_partition_list_t *l, const rd_kafka_message_t *m,
         int eof)
{
    rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(
        l, rd_kafka_topic_name(m->rkt), m->partition);
    int n = 0;

    if (tp)
        tp->opaque = eof ? (void *)l : NULL;
    for (int i = 0; i < l->cnt; i++)
        n += l->elems[i].opaque != NULL;
    return n;
}

static int
cmd_consume(const struct opts *o)
{
    rd_kafka_conf_t *conf = base_conf(o);
    long long start = now_ms(), deadline = start + (long long)(o->timeout_s * 1000);
    long long got = 0, last = start, errors = 0;
    const char *why = "interrupted";
    char group[64];
    rd_kafka_topic_partition_list_t *parts;
    rd_kafka_t *rk;
    int at_eof = 0;

    /* no group membership (assign), but librdkafka wants a group.id */
    snprintf(group, sizeof(group), "kafka-client-%ld", (long)getpid());
    set_prop(conf, "group.id", group);
    set_prop(conf, "enable.auto.commit", "false");
    set_prop(conf, "enable.partition.eof", o->eof ? "true" : "false");
    rk = make_client(RD_KAFKA_CONSUMER, conf);
    /* errors are served by rd_kafka_poll() until the consumer queue takes
     * over */
    parts = assign_all(rk, o, deadline);
    if (!parts) {
        rd_kafka_destroy(rk);
        return auth_failed("consume") ? 3 : 1;
    }
    rd_kafka_poll_set_consumer(rk);
    while (!stop) {
        rd_kafka_message_t *m;

        if (o->count >= 0 && got >= o->count) {
            why = "count reached";
            break;
        }
        if (o->eof && at_eof >= parts->cnt) {
            why = "end of every partition";
            break;
        }
        if (now_ms() - last >= (long long)(o->idle_s * 1000)) {
            why = "idle";
            break;
        }
        if (now_ms() >= deadline) {
            why = "timeout";
            break;
        }
        if (auth_error[0]) {
            why = "authentication failed";
            break;
        }
        m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            at_eof = mark_eof(parts, m, 1);
        } else if (m->err) {
            errors++;
            fprintf(stderr, "kafka_client: consume: %s: %s\n",
                    rd_kafka_err2name(m->err), rd_kafka_message_errstr(m));
        } else {
            print_message(m);
            at_eof = mark_eof(parts, m, 0);
            got++;
            last = now_ms();
        }
        rd_kafka_message_destroy(m);
    }
    fflush(stdout);
    fprintf(stderr, "kafka_client: consume: %lld records from %d partitions "
            "in %lld ms (%s; %lld errors)\n", got, parts->cnt, now_ms() - start,
            why, errors);
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (auth_failed("consume"))
        return 3;
    return o->count >= 0 && got < o->count ? 1 : 0;
}

/* ----------------------------------------------------------------- produce */

static long long delivered, failed;

static void
dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err) {
        if (failed++ < 5)
            fprintf(stderr, "kafka_client: produce: %s\n",
                    rd_kafka_err2str(m->err));
    } else {
        delivered++;
    }
}

static int
txn_ok(rd_kafka_error_t *e, const char *what)
{
    if (!e)
        return 1;
    fprintf(stderr, "kafka_client: produce: %s: %s\n", what,
            rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    return 0;
}

static int
produce_line(rd_kafka_t *rk, const char *topic, const char *line)
{
    json_error_t jerr;
    json_t *j = json_loads(line, 0, &jerr), *hv;
    rd_kafka_headers_t *h = rd_kafka_headers_new(8);
    const char *k, *key = NULL, *value = NULL;
    int partition = RD_KAFKA_PARTITION_UA;
    rd_kafka_resp_err_t err;

    if (!json_is_object(j)) {
        fprintf(stderr, "kafka_client: produce: not a JSON object: %s\n", line);
        json_decref(j);
        rd_kafka_headers_destroy(h);
        return 0;
    }
    key = json_string_value(json_object_get(j, "key"));
    value = json_string_value(json_object_get(j, "value"));
    if (json_is_integer(json_object_get(j, "partition")))
        partition = (int)json_integer_value(json_object_get(j, "partition"));
    json_object_foreach(json_object_get(j, "headers"), k, hv)
        if (json_is_string(hv))
            rd_kafka_header_add(h, k, -1, json_string_value(hv), -1);
    for (;;) {
        err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
            RD_KAFKA_V_VALUE((void *)value, value ? strlen(value) : 0),
            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(rk, 100);
    }
    json_decref(j);
    if (err) {
        fprintf(stderr, "kafka_client: produce: %s\n", rd_kafka_err2str(err));
        rd_kafka_headers_destroy(h);
        return 0;
    }
    return 1;   /* h now belongs to the message */
}

static int
cmd_produce(const struct opts *o)
{
    rd_kafka_conf_t *conf = base_conf(o);
    int txn = o->txn_id != NULL, ok = 1, tmo = (int)(o->timeout_s * 1000);
    long long sent = 0;
    char *line = malloc(LINE_MAX_BYTES);
    rd_kafka_t *rk;

    if (o->n_topics != 1 || !line ||
        (txn && (!o->txn_end || (strcmp(o->txn_end, "commit") != 0 &&
                                 strcmp(o->txn_end, "abort") != 0))))
        usage();
    if (txn)
        set_prop(conf, "transactional.id", o->txn_id);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rk = make_client(RD_KAFKA_PRODUCER, conf);
    rd_kafka_poll(rk, 0);
    if (txn)
        ok = txn_ok(rd_kafka_init_transactions(rk, tmo), "init_transactions") &&
             txn_ok(rd_kafka_begin_transaction(rk), "begin_transaction");
    if (txn && ok) {
        /* a test may wait for this line before it fences us */
        fprintf(stderr, "kafka_client: produce: transaction begun\n");
        fflush(stderr);
    }
    while (ok && !stop && fgets(line, LINE_MAX_BYTES, stdin)) {
        line[strcspn(line, "\n")] = '\0';
        if (!line[0])
            continue;
        ok = produce_line(rk, o->topics[0], line);
        sent++;
        rd_kafka_poll(rk, 0);
    }
    /* an abort must find the records written (aborted records in the log,
     * which read_committed readers skip), not purge them from the queue */
    if (ok && txn && rd_kafka_flush(rk, tmo) != RD_KAFKA_RESP_ERR_NO_ERROR)
        ok = 0;
    if (ok && txn && strcmp(o->txn_end, "commit") == 0)
        ok = txn_ok(rd_kafka_commit_transaction(rk, tmo), "commit_transaction");
    else if (txn)
        ok = txn_ok(rd_kafka_abort_transaction(rk, tmo), "abort_transaction") && ok;
    else
        rd_kafka_flush(rk, tmo);
    rd_kafka_poll(rk, 0);
    if (!txn || strcmp(o->txn_end, "commit") == 0)
        ok = ok && delivered == sent;
    fprintf(stderr, "kafka_client: produce: %lld sent, %lld acknowledged, "
            "%lld failed%s\n", sent, delivered, failed,
            !txn ? "" : !ok ? " (transaction failed)"
            : strcmp(o->txn_end, "commit") == 0 ? " (committed)" : " (aborted)");
    free(line);
    rd_kafka_destroy(rk);
    if (auth_failed("produce"))
        return 3;
    return ok ? 0 : 1;
}

/* -------------------------------------------------------------------- main */

static void
add(const char **list, int *n, const char *v)
{
    if (*n == MAX_LIST)
        usage();
    list[(*n)++] = v;
}

static void
add_id(int *list, int *n, const char *v)
{
    if (*n == MAX_LIST)
        usage();
    list[(*n)++] = atoi(v);
}

int
main(int argc, char **argv)
{
    struct opts o = {.count = -1, .brokers = 1, .partitions = 1,
                     .replication = 1, .idle_s = 10, .timeout_s = 120};
    struct sigaction sa = {.sa_handler = on_signal};

    if (argc < 2)
        usage();
    o.cmd = argv[1];
    if (strcmp(o.cmd, "version") == 0) {
        printf("%s\n", rd_kafka_version_str());
        return 0;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (!v && strcmp(a, "--eof") != 0)
            usage();
        if (strcmp(a, "-b") == 0)
            o.boot = v;
        else if (strcmp(a, "-t") == 0)
            add(o.topics, &o.n_topics, v);
        else if (strcmp(a, "-X") == 0)
            add(o.props, &o.n_props, v);
        else if (strcmp(a, "-F") == 0)
            add(o.fprops, &o.n_fprops, v);
        else if (strcmp(a, "-c") == 0)
            add(o.configs, &o.n_configs, v);
        else if (strcmp(a, "--broker-id") == 0) {
            add_id(o.broker_ids, &o.n_broker_ids, v);
        } else if (strcmp(a, "--absent-id") == 0) {
            add_id(o.absent_ids, &o.n_absent_ids, v);
        } else if (strcmp(a, "--brokers") == 0)
            o.brokers = atoi(v);
        else if (strcmp(a, "--count") == 0)
            o.count = atoll(v);
        else if (strcmp(a, "--partitions") == 0)
            o.partitions = atoi(v);
        else if (strcmp(a, "--replication") == 0)
            o.replication = atoi(v);
        else if (strcmp(a, "--idle") == 0)
            o.idle_s = atof(v);
        else if (strcmp(a, "--timeout") == 0)
            o.timeout_s = atof(v);
        else if (strcmp(a, "--txn-id") == 0)
            o.txn_id = v;
        else if (strcmp(a, "--txn-end") == 0)
            o.txn_end = v;
        else if (strcmp(a, "--eof") == 0) {
            o.eof = 1;
            continue;
        } else
            usage();
        i++;
    }
    if (!o.boot || o.timeout_s <= 0 || o.idle_s <= 0 || o.partitions < 1 ||
        o.replication < 1)
        usage();
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(o.cmd, "metadata") == 0)
        return cmd_metadata(&o);
    if (strcmp(o.cmd, "create-topic") == 0)
        return cmd_create_topic(&o);
    if (o.n_topics < 1)
        usage();
    if (strcmp(o.cmd, "consume") == 0)
        return cmd_consume(&o);
    if (strcmp(o.cmd, "produce") == 0)
        return cmd_produce(&o);
    usage();
    return 2;
}
