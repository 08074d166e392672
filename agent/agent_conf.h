/* agent_conf.h - the agent's whole configuration (m365fwd.yaml): typed,
 * validated, immutable.
 *
 * Every section is declared beside the code that uses it: `tenants[]` and
 * `collect` in agent/collector_conf.c, `metrics` in agent/metrics.c,
 * `normalizer` in normalizers/norm_conf.c, `report` in agent/report_feed.c,
 * `outputs[]` in outputs/output.c
 * with each type's own keys beside the type (outputs/registry.c). This
 * module composes them into the top table (mf_config_sec), adds the top
 * keys and the checks across sections, and loads a file with the generic
 * loader of config/ (file:line errors, every one collected in struct
 * mf_err). The same tables generate docs/configuration.md (`m365fwd help
 * config`), the YAML dump and the key-by-key difference of a reload
 * (mf_config_diff(&mf_config_sec, old, new, ...)).
 *
 * The result is immutable and owns all its memory (one arena), released by
 * mf_config_destroy(). Lists are arrays of structs; their identity for a
 * reload is: tenant = id, output = name.
 */
#ifndef MF_AGENT_CONF_H
#define MF_AGENT_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "collector_conf.h"
#include "config.h"
#include "metrics.h"
#include "report_feed.h"
#include "normalize.h"
#include "output.h"

enum mf_log_format { MF_LOG_FORMAT_KV = 0, MF_LOG_FORMAT_JSON };

struct mf_config {
    const char *file;                /* name used in messages */
    const char *state_dir;
    const char *proxy;               /* NULL: HTTPS_PROXY/NO_PROXY apply */
    const char *proxy_auth_file;
    int log_level;                   /* enum mf_log_level (log.h) */
    int log_format;                  /* enum mf_log_format */
    struct mf_collect_conf collect;
    struct mf_metrics_conf metrics;
    struct mf_norm_opts normalizer;
    struct mf_report_conf report;
    struct mf_tenant_list tenants;
    struct mf_output_list outputs;
    /* private */
    struct mf_arena arena;
};

/* The top-level table: every key of m365fwd.yaml. */
extern const struct mf_optsec mf_config_sec;

/* NULL on any error, with err filled (err may be NULL). name is used in
 * messages ("m365fwd.yaml"). flags: MF_CONFIG_* (config.h). */
struct mf_config *mf_config_load(const char *name, const char *text,
                                 size_t len, unsigned flags,
                                 struct mf_err *err);
struct mf_config *mf_config_load_file(const char *path, unsigned flags,
                                      struct mf_err *err);
void mf_config_destroy(struct mf_config *cfg);

/* Lookup by identity. A tenant is found by id (case-insensitive) or name. */
const struct mf_tenant_conf *mf_config_tenant(const struct mf_config *cfg,
                                              const char *id_or_name);
const struct mf_output_conf *mf_config_output(const struct mf_config *cfg,
                                              const char *name);

/* The configuration reference in Markdown (docs/configuration.md). */
void mf_config_doc_markdown(struct mf_buf *b);
/* The effective configuration (defaults filled in) as YAML that loads
 * again to an equal configuration. Holds no secret (only paths/names). */
void mf_config_dump_yaml(const struct mf_config *cfg, struct mf_buf *b);

#endif
