/* collector_conf.h - the configuration of collection: `tenants[]` and
 * `collect` (option tables in collector_conf.c, beside the collector and
 * the authentication code that use them), the cloud table, and the
 * tenant's credentials. */
#ifndef MF_COLLECTOR_CONF_H
#define MF_COLLECTOR_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "secret.h"
#include "option.h"

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
    struct mf_strlist domains;       /* accepted e-mail domains; empty =
                                      * derived from each record */
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
    int64_t request_timeout_ms;      /* no progress this long: abandon */
    int64_t transfer_timeout_ms;     /* ceiling of one whole transfer */
    int64_t max_backoff_ms;
    int64_t max_record_size;
    int64_t max_blob_size;           /* decompressed; larger = a gap */
    int64_t max_retry_after_ms;      /* Retry-After honoured up to this */
    int64_t delivery_threads;        /* 0 = one per online CPU */
};

extern const struct mf_optsec mf_tenant_sec;
extern const struct mf_optsec mf_collect_sec;

/* The checks of the tenant list as a whole: names unique, no name equal
 * to another tenant's id (ids: the table's key). cfg_file for messages;
 * list the `tenants` node. */
void mf_tenants_check(const struct mf_optctx *c, const struct mf_tenant_list *tl,
                      const struct mf_jval *list);
/* The cloud table as a reference section. */
void mf_clouds_doc(struct mf_buf *b);

/* Cloud table (m365-api.md §1.1). */
const char *mf_cloud_name(int cloud);
const char *mf_cloud_login_endpoint(int cloud);   /* "https://login..." */
const char *mf_cloud_api_endpoint(int cloud);     /* "https://manage..." */

/* The tenant's client secret (MF_AUTH_SECRET_FILE/ENV) or private key
 * (MF_AUTH_CERTIFICATE). */
int mf_tenant_client_secret(const struct mf_tenant_conf *t,
                            struct mf_secret *out, char *err, size_t errlen);
int mf_tenant_private_key(const struct mf_tenant_conf *t,
                          struct mf_secret *out, char *err, size_t errlen);

#endif
