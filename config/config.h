/* config.h - the m365fwd configuration file (m365fwd.yaml): typed,
 * validated, immutable.
 *
 * mf_config_load*() parses the YAML once (config/yaml.h), applies the option
 * tables of config.c (config/options.h) and runs the cross-checks that one
 * key alone cannot express (two secret sources, certificate without key,
 * duplicate names, filters naming unknown tenants, ...). Every problem is
 * reported with file:line and key path; all of them are collected in
 * struct mf_cfgerr (msg = the first, all = every one, one per line).
 *
 * The result is immutable and owns all its memory (one arena), released by
 * mf_config_destroy(). Lists are arrays of structs; their identity for a
 * SIGHUP reload is: tenant = id, output = name (mf_config_diff()).
 *
 * Secrets are never in the configuration: it holds the file path or the
 * environment variable name, and mf_config_load_secret() reads the value
 * when it is needed. No function of this module writes a secret value into
 * a message, a log line or the generated documentation.
 *
 * The configuration reference (docs/configuration.md) is generated from the
 * same tables by mf_config_doc_markdown().
 */
#ifndef MF_CONFIG_H
#define MF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "options.h"

enum mf_cloud {
    MF_CLOUD_COMMERCIAL = 0,
    MF_CLOUD_GCC,
    MF_CLOUD_GCC_HIGH,
    MF_CLOUD_DOD,
};

/* How a tenant authenticates (derived from which keys are set). */
enum mf_auth_kind {
    MF_AUTH_SECRET_FILE = 0,
    MF_AUTH_SECRET_ENV,
    MF_AUTH_CERTIFICATE,
};

enum mf_output_type {
    MF_OUTPUT_FILE = 0,
    MF_OUTPUT_KAFKA,
    MF_OUTPUT_SYSLOG,
};

/* Values of `schema`: the same numbers as enum mf_schema (normalize.h). */
#define MF_CONF_SCHEMA_OCSF 0
#define MF_CONF_SCHEMA_ECS  1
#define MF_CONF_SCHEMA_RAW  2

enum mf_kafka_compression {
    MF_KAFKA_COMPRESS_NONE = 0,
    MF_KAFKA_COMPRESS_GZIP,
    MF_KAFKA_COMPRESS_SNAPPY,
    MF_KAFKA_COMPRESS_LZ4,
    MF_KAFKA_COMPRESS_ZSTD,
};

enum mf_syslog_transport { MF_SYSLOG_UDP = 0, MF_SYSLOG_TCP, MF_SYSLOG_TLS };
enum mf_syslog_framing { MF_SYSLOG_OCTET_COUNTING = 0, MF_SYSLOG_LF };
enum mf_syslog_format { MF_SYSLOG_RFC5424 = 0, MF_SYSLOG_RFC3164 };
enum mf_syslog_payload { MF_SYSLOG_JSON = 0, MF_SYSLOG_CEF, MF_SYSLOG_LEEF };
/* facility: the RFC 5424 numbers (kern 0 ... local7 23). */

enum mf_log_format { MF_LOG_FORMAT_KV = 0, MF_LOG_FORMAT_JSON };

/* Enum fields are stored as int (the option engine writes ints); compare
 * them with the enums above. */

struct mf_tenant_conf {
    const char *id;                  /* GUID or domain */
    const char *name;                /* label; default: id */
    const char *client_id;
    const char *client_secret_file;  /* exactly one credential source: */
    const char *client_secret_env;   /* secret file, secret env var, or */
    const char *certificate_file;    /* certificate + private key */
    const char *private_key_file;
    int cloud;                       /* enum mf_cloud */
    const char *login_endpoint;      /* "https://host[:port][/path]", no '/' at
                                      * the end; default from cloud */
    const char *api_endpoint;        /* idem */
    const char *resource;            /* token audience; default from cloud */
    const char *ca_file;
    struct mf_strlist content_types;
    const char *publisher_id;        /* default: id */
    bool enabled;
    /* derived */
    int auth;                        /* enum mf_auth_kind */
    uint32_t line;                   /* where the entry starts */
};

struct mf_tenant_list {
    const struct mf_tenant_conf *v;
    size_t n;
};

struct mf_collect_conf {
    int64_t poll_interval_ms;
    int64_t initial_lookback_ms;
    int64_t overlap_ms;
    int64_t dedupe_horizon_ms;
    int64_t max_concurrency;
    int64_t requests_per_minute;
    int64_t request_timeout_ms;
    int64_t max_backoff_ms;
    int64_t max_record_size;
    int64_t delivery_threads;        /* 0 = one per online CPU */
};

/* Output filter: every criterion given must match (AND); inside one list
 * any element matches (OR). Empty list / 0 = no criterion. */
struct mf_filter_conf {
    struct mf_strlist areas;         /* tag areas, names as mf_area_name() */
    struct mf_strlist tags;          /* tag ids */
    int64_t min_severity;            /* 0 = none; else 1..5 */
    struct mf_strlist content_types;
    struct mf_strlist tenants;       /* tenant names or ids */
    uint32_t line;                   /* line of the output entry */
};

struct mf_output_conf {
    const char *name;
    int type;                        /* enum mf_output_type */
    int schema;                      /* MF_CONF_SCHEMA_* */
    bool enabled;
    bool keep_raw;
    struct mf_filter_conf filter;
    /* file */
    const char *path;                /* "-" = standard output */
    /* kafka */
    const char *brokers;
    const char *topic;
    const char *key;
    int compression;                 /* enum mf_kafka_compression */
    struct mf_kvlist rdkafka;
    struct mf_kvlist rdkafka_secret_files;
    struct mf_kvlist rdkafka_secret_env;
    int64_t flush_timeout_ms;
    /* syslog */
    const char *address;
    int transport;                   /* enum mf_syslog_transport */
    int framing;                     /* enum mf_syslog_framing */
    int format;                      /* enum mf_syslog_format */
    int payload;                     /* enum mf_syslog_payload */
    int facility;
    const char *app_name;
    const char *ca_file;
    const char *cert_file;
    const char *key_file;
    int64_t max_message_size;
    /* kafka and syslog */
    int64_t max_in_flight;
    /* derived */
    uint32_t line;
};

struct mf_output_list {
    const struct mf_output_conf *v;
    size_t n;
};

struct mf_metrics_conf {
    bool enabled;
    const char *listen;              /* host:port */
};

struct mf_config {
    const char *file;                /* name used in messages */
    const char *state_dir;
    const char *geoip_db;            /* MaxMind DB, NULL: none */
    const char *proxy;               /* NULL: HTTPS_PROXY/NO_PROXY apply */
    const char *proxy_auth_file;
    int log_level;                   /* enum mf_log_level (log.h) */
    int log_format;                  /* enum mf_log_format */
    struct mf_collect_conf collect;
    struct mf_metrics_conf metrics;
    struct mf_tenant_list tenants;
    struct mf_output_list outputs;
    /* private */
    struct mf_arena arena;
};

/* load flags */
#define MF_CONFIG_REQUIRE_TENANTS 0x01  /* run, status, preflight */
#define MF_CONFIG_CHECK_FILES     0x02  /* read every secret once (and forget
                                         * it), check ca/cert files exist:
                                         * start-up of run/preflight/import */

/* NULL on any error, with err filled (err may be NULL). name is used in
 * messages ("m365fwd.yaml"). */
struct mf_config *mf_config_load(const char *name, const char *text,
                                 size_t len, unsigned flags,
                                 struct mf_cfgerr *err);
struct mf_config *mf_config_load_file(const char *path, unsigned flags,
                                      struct mf_cfgerr *err);
void mf_config_destroy(struct mf_config *cfg);

/* Lookup by identity. A tenant is found by id (case-insensitive) or name. */
const struct mf_tenant_conf *mf_config_tenant(const struct mf_config *cfg,
                                              const char *id_or_name);
const struct mf_output_conf *mf_config_output(const struct mf_config *cfg,
                                              const char *name);

/* Cloud table (m365-api.md §1.1). */
const char *mf_cloud_name(int cloud);
const char *mf_cloud_login_endpoint(int cloud);   /* "https://login..." */
const char *mf_cloud_api_endpoint(int cloud);     /* "https://manage..." */

/* ---- reload ------------------------------------------------------------ */

enum mf_config_change {
    MF_CONFIG_UNCHANGED = 0,
    MF_CONFIG_ADDED,
    MF_CONFIG_REMOVED,
    MF_CONFIG_CHANGED,
};

bool mf_config_tenant_equal(const struct mf_tenant_conf *a,
                            const struct mf_tenant_conf *b);
bool mf_config_output_equal(const struct mf_output_conf *a,
                            const struct mf_output_conf *b);

struct mf_config_diff_ops {
    /* old is NULL for ADDED, new for REMOVED. May be NULL. */
    void (*tenant)(enum mf_config_change ch, const struct mf_tenant_conf *old,
                   const struct mf_tenant_conf *new_, void *ud);
    void (*output)(enum mf_config_change ch, const struct mf_output_conf *old,
                   const struct mf_output_conf *new_, void *ud);
};

/* Calls the ops for every tenant (keyed by id) and output (keyed by name):
 * old ones in old order, then the added ones in new order. Returns true
 * when anything outside tenants and outputs differs (state_dir, collect,
 * metrics, logging, proxy). */
bool mf_config_diff(const struct mf_config *old, const struct mf_config *new_,
                    const struct mf_config_diff_ops *ops, void *ud);

/* ---- secrets ----------------------------------------------------------- */

struct mf_secret {
    char *data;   /* NUL-terminated; malloc'd; wiped by mf_secret_clear() */
    size_t len;
};

#define MF_SECRET_MAX (1024 * 1024)

/* Read a secret from a file (when file != NULL) or an environment variable.
 * File rules: a regular file (symlinks followed), not readable, writable or
 * executable by others (mode & 0007 == 0; group access is allowed), at most
 * MF_SECRET_MAX bytes, not empty. trim: drop trailing whitespace (client
 * secrets; keep false for PEM keys). Env rules: set and not empty.
 * what names the option in messages ("tenants[0].client_secret_file").
 * Returns 0, or -1 with err filled; err never contains the secret. */
int mf_config_load_secret(const char *file, const char *env, bool trim,
                          const char *what, struct mf_secret *out, char *err,
                          size_t errlen);
void mf_secret_clear(struct mf_secret *s);

/* The tenant's client secret (MF_AUTH_SECRET_FILE/ENV) or private key
 * (MF_AUTH_CERTIFICATE). */
int mf_tenant_client_secret(const struct mf_tenant_conf *t,
                            struct mf_secret *out, char *err, size_t errlen);
int mf_tenant_private_key(const struct mf_tenant_conf *t,
                          struct mf_secret *out, char *err, size_t errlen);

/* ---- external vocabularies -------------------------------------------- */

/* Filters name tags; the catalogue lives in normalizers/ (which config does
 * not depend on), so the caller checks them once the tag db is loaded:
 * known() returns true for a known tag id. Adds one error per unknown tag;
 * returns the number added. */
size_t mf_config_check_tags(const struct mf_config *cfg,
                            bool (*known)(const char *id, void *ud), void *ud,
                            struct mf_cfgerr *err);

/* The area names filters accept (NULL-terminated; same spelling as
 * mf_area_name()). */
extern const struct mf_enum mf_config_areas[];

/* ---- generated text ---------------------------------------------------- */

/* The configuration reference in Markdown (docs/configuration.md). */
void mf_config_doc_markdown(struct mf_buf *b);
/* The effective configuration (defaults filled in) as YAML that loads
 * again to an equal configuration. Holds no secret (only paths/names). */
void mf_config_dump_yaml(const struct mf_config *cfg, struct mf_buf *b);

#endif
