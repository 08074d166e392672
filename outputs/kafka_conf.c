/* kafka_conf.c - the kafka output's own keys (option table, checks,
 * placeholders of topics and keys). */
#include "kafka.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "optcheck.h"

/* Placeholders of Kafka topics and keys. */
static const struct {
    const char *name;
    bool in_topic;
    const char *desc;
} placeholders[] = {
    {"tenant", true, "the tenant's `name`"},
    {"tenant_id", true, "the tenant's `id`"},
    {"content_type", true, "the content type, e.g. `Audit.Exchange`"},
    {"area", true, "area of the record's most severe tag (`identity_access`, "
                   "...); `none` when untagged"},
    {"class_uid", true, "OCSF class_uid of the normalized event (also with "
                        "`ecs` and `raw` schemas)"},
    {"schema", true, "the output's `schema`"},
    {"id", false, "the record `Id` (keys only)"},
};

#define N_PLACEHOLDERS (sizeof(placeholders) / sizeof(placeholders[0]))

static int
check_brokers(const char *s, char *w, size_t n)
{
    char one[300];
    const char *p = s;

    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        int rc;

        while (len && *p == ' ') {
            p++;
            len--;
        }
        while (len && p[len - 1] == ' ')
            len--;
        if (len == 0 || len >= sizeof(one))
            return mf_opt_why(w, n, "is not a comma-separated list of host:port");
        memcpy(one, p, len);
        one[len] = '\0';
        if ((rc = mf_check_hostport(one, w, n)) != 0) {
            char inner[160];

            snprintf(inner, sizeof(inner), "%s", w);
            snprintf(w, n, "has an invalid entry '%s' (%s)", one, inner);
            return rc;
        }
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

/* Kafka topic literal characters and placeholders. */
/* Kafka topic literal characters and placeholders. */
static int
check_template(const char *s, char *w, size_t n, bool topic)
{
    const char *p;
    size_t literal = 0, i;

    for (p = s; *p; p++) {
        if (*p == '{') {
            const char *end = strchr(p, '}');
            size_t len;

            if (!end)
                return mf_opt_why(w, n, "has a '{' without '}'");
            len = (size_t)(end - p - 1);
            for (i = 0; i < N_PLACEHOLDERS; i++)
                if (strlen(placeholders[i].name) == len &&
                    strncmp(placeholders[i].name, p + 1, len) == 0 &&
                    (!topic || placeholders[i].in_topic))
                    break;
            if (i == N_PLACEHOLDERS) {
                char list[256];
                size_t used = 0;

                list[0] = '\0';
                for (i = 0; i < N_PLACEHOLDERS; i++) {
                    int k;

                    if (topic && !placeholders[i].in_topic)
                        continue;
                    k = snprintf(list + used, sizeof(list) - used, "%s{%s}",
                                 used ? " " : "", placeholders[i].name);
                    if (k > 0 && (size_t)k < sizeof(list) - used)
                        used += (size_t)k;
                }
                snprintf(w, n, "has an unknown placeholder '%.*s' "
                         "(expected %s)", (int)(len + 2 > 40 ? 40 : len + 2),
                         p, list);
                return -1;
            }
            p = end;
            continue;
        }
        if (*p == '}')
            return mf_opt_why(w, n, "has a '}' without '{'");
        if (topic && !isalnum((unsigned char)*p) && !strchr("._-", *p))
            return mf_opt_why(w, n, "may contain only letters, digits, '.', '_', "
                             "'-' and placeholders");
        literal++;
    }
    if (topic && literal > 249)
        return mf_opt_why(w, n, "is longer than Kafka's 249 characters");
    return 0;
}

static int
check_topic(const char *s, char *w, size_t n)
{
    return check_template(s, w, n, true);
}

static int
check_key_template(const char *s, char *w, size_t n)
{
    return check_template(s, w, n, false);
}

/* librdkafka properties that carry credentials (refused inline). */
/* The one list of librdkafka properties that reveal credentials: the
 * name exactly, or (exact false) anywhere in the name. */
static const struct {
    const char *word;
    bool exact;
    enum mf_kafka_prop cls;
} prop_classes[] = {
    {"password", false, MF_KAFKA_PROP_SECRET},
    {"secret", false, MF_KAFKA_PROP_SECRET},
    {"ssl.key.pem", true, MF_KAFKA_PROP_SECRET},
    {"ssl_key", true, MF_KAFKA_PROP_SECRET},
    {"sasl.oauthbearer.config", true, MF_KAFKA_PROP_SECRET},
    /* locations of key material, user names, tokens: not secrets
     * themselves, never shown all the same */
    {"key", false, MF_KAFKA_PROP_HIDDEN},
    {"token", false, MF_KAFKA_PROP_HIDDEN},
    {"credential", false, MF_KAFKA_PROP_HIDDEN},
    {"oauthbearer.config", false, MF_KAFKA_PROP_HIDDEN},
    {"sasl.username", false, MF_KAFKA_PROP_HIDDEN},
};

enum mf_kafka_prop
mf_kafka_prop_class(const char *prop)
{
    enum mf_kafka_prop cls = MF_KAFKA_PROP_PLAIN;

    for (size_t i = 0; prop && i < sizeof(prop_classes) / sizeof(prop_classes[0]); i++)
        if ((prop_classes[i].exact ? strcmp(prop, prop_classes[i].word) == 0
                                   : strstr(prop, prop_classes[i].word) != NULL) &&
            prop_classes[i].cls > cls)
            cls = prop_classes[i].cls;
    return cls;
}

bool
mf_kafka_prop_sensitive(const char *prop)
{
    return mf_kafka_prop_class(prop) != MF_KAFKA_PROP_PLAIN;
}

/* Properties owned by dedicated keys. */
static const struct {
    const char *prop;
    const char *key;
} rdkafka_owned[] = {
    {"bootstrap.servers", "brokers"},
    {"metadata.broker.list", "brokers"},
    {"compression.type", "compression"},
    {"compression.codec", "compression"},
    {NULL, NULL},
};

static bool
kv_has(const struct mf_kvlist *kl, const char *key)
{
    size_t i;

    for (i = 0; i < kl->n; i++)
        if (strcmp(kl->v[i].key, key) == 0)
            return true;
    return false;
}

/* Cross-checks of the rdkafka keys (the kind's check hook). */
static void
kafka_check(const struct mf_optctx *c, void *base, const struct mf_jval *node,
            const char *path)
{
    const struct mf_kafka_conf *o = base;
    const char *file = c->file;
    size_t k, m;
    char w[160];

    (void)node;
    for (k = 0; k < o->rdkafka.n; k++) {
        const struct mf_kv *kv = &o->rdkafka.v[k];

        if (mf_kafka_prop_class(kv->key) == MF_KAFKA_PROP_SECRET)
            mf_err_add(c->err, file, kv->line,
                          "%s.rdkafka.%s: secrets are never written "
                          "in the configuration: use rdkafka_secret_files or "
                          "rdkafka_secret_env", path, kv->key);
        for (m = 0; rdkafka_owned[m].prop; m++)
            if (strcmp(kv->key, rdkafka_owned[m].prop) == 0)
                mf_err_add(c->err, file, kv->line,
                              "%s.rdkafka.%s: set by '%s'; remove "
                              "it here", path, kv->key, rdkafka_owned[m].key);
        if (kv_has(&o->rdkafka_secret_files, kv->key) ||
            kv_has(&o->rdkafka_secret_env, kv->key))
            mf_err_add(c->err, file, kv->line,
                          "%s.rdkafka.%s: also set as a secret", path,
                          kv->key);
    }
    for (k = 0; k < o->rdkafka_secret_files.n; k++) {
        const struct mf_kv *kv = &o->rdkafka_secret_files.v[k];

        if (kv_has(&o->rdkafka_secret_env, kv->key))
            mf_err_add(c->err, file, kv->line,
                          "%s.rdkafka_secret_files.%s: also in "
                          "rdkafka_secret_env; keep one", path, kv->key);
        if (!kv->value[0])
            mf_err_add(c->err, file, kv->line,
                          "%s.rdkafka_secret_files.%s: empty path",
                          path, kv->key);
    }
    for (k = 0; k < o->rdkafka_secret_env.n; k++) {
        const struct mf_kv *kv = &o->rdkafka_secret_env.v[k];

        if (mf_check_env_name(kv->value, w, sizeof(w)) != 0)
            mf_err_add(c->err, file, kv->line,
                          "%s.rdkafka_secret_env.%s: '%s' %s", path,
                          kv->key, kv->value, w);
    }
}

static const struct mf_enum compression_choices[] = {
    {"none", MF_KAFKA_COMPRESS_NONE},
    {"gzip", MF_KAFKA_COMPRESS_GZIP},
    {"snappy", MF_KAFKA_COMPRESS_SNAPPY},
    {"lz4", MF_KAFKA_COMPRESS_LZ4},
    {"zstd", MF_KAFKA_COMPRESS_ZSTD},
    {NULL, 0},
};

#define KAF(f) offsetof(struct mf_kafka_conf, f)
static const struct mf_option kafka_opts[] = {
    {.name = "brokers", .type = MF_OPT_STR, .offset = KAF(brokers),
     .flags = MF_OPT_REQUIRED, .check = check_brokers,
     .desc = "Bootstrap brokers, `host:port[,host:port]`."},
    {.name = "topic", .type = MF_OPT_STR, .offset = KAF(topic),
     .flags = MF_OPT_REQUIRED, .check = check_topic,
     .desc = "Topic, with placeholders (see *Kafka placeholders* above), "
             "e.g. `m365.{tenant}.{area}`."},
    {.name = "key", .type = MF_OPT_STR, .def = "\"{id}\"", .offset = KAF(key),
     .check = check_key_template,
     .desc = "Message key template; the record `Id` by default."},
    {.name = "compression", .type = MF_OPT_ENUM, .def = "lz4",
     .offset = KAF(compression),
     .choices = compression_choices,
     .desc = "Compression codec (librdkafka `compression.type`)."},
    {.name = "rdkafka", .type = MF_OPT_PREFIX, .offset = KAF(rdkafka),
     .flags = MF_OPT_NOECHO,
     .desc = "librdkafka properties passed to `rd_kafka_conf_set()`, as a "
             "mapping (`rdkafka: {security.protocol: SASL_SSL}`) or as "
             "`rdkafka.<property>` keys. A property librdkafka refuses is a "
             "start-up error. Defaults `enable.idempotence=true`, "
             "`acks=all`. Passwords are refused here: use "
             "`rdkafka_secret_files` or `rdkafka_secret_env`; "
             "`bootstrap.servers` and `compression.type` come from `brokers` "
             "and `compression`."},
    {.name = "rdkafka_secret_files", .type = MF_OPT_PREFIX,
     .offset = KAF(rdkafka_secret_files),
     .flags = MF_OPT_SECRET | MF_OPT_PATH,
     .desc = "librdkafka properties whose value is read from a file, e.g. "
             "`{sasl.password: /etc/m365fwd/kafka.pw}` (same rules as "
             "secret files)."},
    {.name = "rdkafka_secret_env", .type = MF_OPT_PREFIX,
     .offset = KAF(rdkafka_secret_env),
     .flags = MF_OPT_SECRET,
     .desc = "librdkafka properties whose value is read from an environment "
             "variable, e.g. `{sasl.password: KAFKA_PASSWORD}`."},
    {.name = NULL},
};

const struct mf_optsec mf_kafka_sec = {
    .name = "kafka",
    .desc = "Produces each event as one Kafka message (librdkafka), "
            "acknowledged on the broker's delivery report.",
    .opts = kafka_opts,
    .size = sizeof(struct mf_kafka_conf),
    .check = kafka_check,
};

void
mf_kafka_doc_placeholders(struct mf_buf *b)
{
    size_t i;

    mf_buf_appends(b, "## Kafka placeholders\n\n"
                      "`topic` and `key` of Kafka outputs may contain:\n\n"
                      "| Placeholder | Topic | Key | Value |\n"
                      "|---|---|---|---|\n");
    for (i = 0; i < N_PLACEHOLDERS; i++)
        mf_buf_printf(b, "| `{%s}` | %s | yes | %s |\n", placeholders[i].name,
                      placeholders[i].in_topic ? "yes" : "no",
                      placeholders[i].desc);
    mf_buf_appends(b, "\nCharacters a Kafka topic does not allow that come "
                      "from a placeholder value are replaced by `_`.\n\n");
}
