/* report.h - the security and governance review (`m365fwd report`).
 *
 * Data flow:
 *
 *   record facts (struct mf_report_rec, filled by the agent's adapter)
 *     -> mf_agg_add()          counts per tenant and day (in memory)
 *     -> mf_rollup_*()         the same counts kept in state_dir/report.db
 *                              by `run` and `import` as they deliver
 *     -> mf_review_build()     exposure, checks, plan, coverage as one JSON
 *                              document (the `--format json` content)
 *     -> mf_report_render()    json, md, or one self-contained html file
 *
 * The library depends on core/ and SQLite only: it never sees the
 * normalizer or the outputs. Everything it knows about a record comes in
 * struct mf_report_rec; everything it knows about the tag catalogue comes
 * in struct mf_report_catalog. The checks, the aggregate findings and the
 * plan are data (report/checks.yaml, report/plan.yaml), validated when
 * loaded. docs/report.md describes every section, the score formula, the
 * tables and the JSON schema.
 */
#ifndef MF_REPORT_H
#define MF_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "json.h"

/* ---- areas (core's enum mf_area, event.h, in the same order) ---------- */

enum mf_report_area {
    MF_RAREA_IDENTITY = 0,     /* identity_access */
    MF_RAREA_DATA,             /* data_protection */
    MF_RAREA_COLLAB,           /* collaboration_sharing */
    MF_RAREA_DEVICE,           /* device_posture */
    MF_RAREA_MONITOR,          /* monitoring_response */
    MF_RAREA_COUNT
};

const char *mf_report_area_name(int area);     /* "identity_access" */
const char *mf_report_area_title(int area);    /* "Identity and access" */
int mf_report_area_parse(const char *s);       /* area, or -1 */

/* ---- facts: what the checks need beyond the tags ----------------------- */

/* X(enum suffix, name in the tables, description) */
#define MF_REPORT_FACTS(X)                                                        \
    X(SIGNIN, "signin", "sign-in attempts (UserLoggedIn, UserLoginFailed)")       \
    X(SIGNIN_OK, "signin_ok", "successful sign-ins")                              \
    X(SIGNIN_FAILED, "signin_failed", "failed sign-ins")                          \
    X(SIGNIN_SINGLE_FACTOR, "signin_single_factor",                               \
      "successful sign-ins the record marks as single-factor")                    \
    X(SIGNIN_MULTI_FACTOR, "signin_multi_factor",                                 \
      "sign-ins the record marks as multi-factor, or that met an MFA challenge")  \
    X(MFA_DENIED, "mfa_denied", "sign-ins failed at the MFA step (500121)")       \
    X(SIGNIN_LEGACY, "signin_legacy",                                             \
      "sign-ins or mailbox logons over legacy protocols or ROPC")                 \
    X(SIGNIN_DEVICE_KNOWN, "signin_device_known",                                 \
      "sign-ins whose record says whether the device is compliant/managed")       \
    X(SIGNIN_UNMANAGED, "signin_unmanaged",                                       \
      "sign-ins from a device the record says is unmanaged or non-compliant")     \
    X(ROLE_ASSIGNED, "role_assigned", "administrative roles granted")             \
    X(ROLE_ASSIGNED_PIM, "role_assigned_pim",                                     \
      "role grants made through Privileged Identity Management")                  \
    X(GUEST_REMOVED, "guest_removed", "guest accounts deleted")                   \
    X(ACCESS_REVIEW, "access_review", "access review activity")                   \
    X(LABEL_APPLIED, "label_applied", "sensitivity labels applied or changed")    \
    X(FILE_DOWNLOAD, "file_download", "files downloaded or synced down")          \
    X(FILE_DELETED, "file_deleted", "files deleted or recycled")                  \
    X(ALERT_FOLLOWUP, "alert_followup",                                           \
      "alert status changes and investigations (AlertUpdated, AIR)")

enum mf_report_fact {
#define MF_RF_ENUM(e, n, d) MF_FACT_##e,
    MF_REPORT_FACTS(MF_RF_ENUM)
#undef MF_RF_ENUM
    MF_FACT_COUNT
};

const char *mf_report_fact_name(int fact);
const char *mf_report_fact_desc(int fact);
int mf_report_fact_parse(const char *s);      /* fact, or -1 */

/* ---- one record, as the review sees it ---------------------------------- */

#define MF_REPORT_MAX_TAGS 16

struct mf_report_tag {
    const char *id;           /* "identity.mfa_disabled" */
    int area;                 /* enum mf_report_area */
    int severity;             /* 1..5, after the catalogue's adjustments */
};

enum mf_report_outcome {
    MF_ROUTCOME_UNKNOWN = 0,
    MF_ROUTCOME_SUCCESS = 1,
    MF_ROUTCOME_FAILURE = 2,
};

/* Borrowed strings (valid for the duration of the call that takes the
 * record); NULL or "" when the record has none. */
struct mf_report_rec {
    int64_t time_ms;          /* CreationTime, UTC epoch ms */
    const char *tenant_id;    /* OrganizationId */
    const char *tenant;       /* name shown: the configured name, else the id */
    const char *content_type; /* Audit.Exchange ... */
    const char *workload;
    const char *operation;
    const char *actor;        /* UserId */
    const char *object;       /* ObjectId, file, identity the action was on */
    const char *client_ip;
    const char *user_agent;
    const char *record_id;    /* Id */
    int outcome;              /* enum mf_report_outcome */
    int class_uid;            /* OCSF class */
    const char *class_name;
    struct mf_report_tag tags[MF_REPORT_MAX_TAGS];
    size_t n_tags;
    int severity;             /* highest tag severity; 0 when untagged */
    uint32_t facts;           /* bit (1u << MF_FACT_x) per fact */
    /* a monitor.collection_gap record: the range the collector lost */
    const char *gap_content_type;
    int64_t gap_start_ms, gap_end_ms;
    const char *gap_reason;
};

/* ---- the tag catalogue, as the agent hands it over ----------------------- */

struct mf_report_tagdef {
    const char *id;
    const char *title;
    int area;
    int severity;             /* base severity */
};

struct mf_report_catalog {
    const struct mf_report_tagdef *tags;
    size_t n;
};

const struct mf_report_tagdef *mf_report_catalog_find(const struct mf_report_catalog *c,
                                                      const char *id);

/* ---- tables: checks, aggregate findings, plan ------------------------ */

struct mf_report_tables;

struct mf_report_err { char msg[320]; };

/* Load and validate: every key, area, tag (against cat), fact, aggregate,
 * expression, placeholder and plan row; errors name file:line. NULL names
 * or texts select the built-in table. */
struct mf_report_tables *mf_report_tables_load(const char *checks_name,
                                               const char *checks_text, size_t checks_len,
                                               const char *plan_name,
                                               const char *plan_text, size_t plan_len,
                                               const struct mf_report_catalog *cat,
                                               struct mf_report_err *err);
/* From files (NULL = built-in). */
struct mf_report_tables *mf_report_tables_load_files(const char *checks_file,
                                                     const char *plan_file,
                                                     const struct mf_report_catalog *cat,
                                                     struct mf_report_err *err);
void mf_report_tables_destroy(struct mf_report_tables *t);

/* ---- in-memory aggregate: counts per tenant and day ---------------------- */

struct mf_agg;

/* Bounds of one (tenant, day): see docs/report.md "Rollup footprint". */
struct mf_agg_limits {
    size_t top_per_area;      /* actors and objects kept per area; 0 = 16 */
    size_t events_per_area;   /* notable events per area; 0 = 6 */
    size_t examples_per_key;  /* check examples per evidence key; 0 = 2 */
    size_t keys_per_aggregate;/* keys tracked per aggregate finding; 0 = 32 */
};

struct mf_agg *mf_agg_new(const struct mf_report_tables *t, const struct mf_agg_limits *lim);
void mf_agg_destroy(struct mf_agg *a);
/* Count one record. */
void mf_agg_add(struct mf_agg *a, const struct mf_report_rec *r);
/* Add everything of src to dst (same tables). */
void mf_agg_merge(struct mf_agg *dst, const struct mf_agg *src);
bool mf_agg_empty(const struct mf_agg *a);
/* Days (UTC, days since 1970-01-01) of the oldest and newest record;
 * -1 when empty. */
int64_t mf_agg_first_day(const struct mf_agg *a);
int64_t mf_agg_last_day(const struct mf_agg *a);
/* Bytes held (for the benchmark and the footprint documentation). */
size_t mf_agg_memory(const struct mf_agg *a);

/* ---- the rollup: the aggregate kept in the state directory ----------- */

struct mf_rollup;

#define MF_ROLLUP_DEFAULT_RETENTION_DAYS 400

#define MF_ROLLUP_DEFAULT_FLUSH_MS 5000

struct mf_rollup_opts {
    int retention_days;       /* 0 = MF_ROLLUP_DEFAULT_RETENTION_DAYS */
    bool read_only;           /* `report -c`: never writes */
    int64_t flush_interval_ms;/* delivered counts are written at the first
                                 commit this long after the last write
                                 (0: at every commit), and at close */
};

/* Open (creating) dir/report.db. NULL with err set. */
struct mf_rollup *mf_rollup_open(const char *dir, const struct mf_report_tables *t,
                                 const struct mf_rollup_opts *o, struct mf_report_err *err);
void mf_rollup_close(struct mf_rollup *r);

/* Count one delivered record in batch (any pointer that names a unit of
 * delivery: a blob, an import chunk; NULL = "commit with the next
 * commit"). Thread-safe, provided one thread at a time adds to a given
 * batch (as a blob or a chunk is one lane's): a batch's records are
 * counted without a lock. Nothing reaches the file before a commit names
 * the batch. */
void mf_rollup_add(struct mf_rollup *r, const void *batch, const struct mf_report_rec *rec);
/* The batches whose records were delivered (with the NULL batch's): call
 * it after the delivery commit. They are written in one transaction, with
 * what else was committed since the last write, once flush_interval_ms
 * passed since it (and at close). 0, or -1 with the error logged (the
 * counts of that write are lost: the rollup undercounts, it never counts a
 * record twice). Thread-safe. */
int mf_rollup_commit(struct mf_rollup *r, const void *const *batches, size_t n);
/* Write what was committed now. 0 / -1. */
int mf_rollup_flush(struct mf_rollup *r);
/* A batch that was not delivered (it will come again): forget it. */
void mf_rollup_discard(struct mf_rollup *r, const void *batch);
/* Load days [day_from, day_to] of the tenants matching tenant (a name or
 * id; NULL = all) into a. 0 / -1 with err. */
int mf_rollup_load(struct mf_rollup *r, const char *tenant, int64_t day_from,
                   int64_t day_to, struct mf_agg *a, struct mf_report_err *err);
/* Delete days older than the retention before now_ms. 0 / -1. */
int mf_rollup_prune(struct mf_rollup *r, int64_t now_ms);

struct mf_rollup_stats {
    int64_t rows;             /* every row of every table */
    int64_t bytes;            /* report.db (and its WAL) on disk */
    int64_t first_day, last_day;   /* -1 when empty */
};
int mf_rollup_stats(struct mf_rollup *r, struct mf_rollup_stats *out);
const char *mf_rollup_path(const struct mf_rollup *r);

/* ---- the review ------------------------------------------------------- */

struct mf_review_opts {
    const char *tenant;        /* NULL = every tenant in the aggregate */
    int64_t day_from, day_to;  /* inclusive, UTC days */
    int64_t now_ms;            /* generated_at */
    const char *source_kind;   /* "export" or "rollup" */
    const char *const *inputs; /* export files, or the rollup's path */
    size_t n_inputs;
    uint64_t records_read;     /* export: records read, rejected, and */
    uint64_t records_rejected; /* outside the period (not counted) */
    uint64_t records_outside;
    const char *generator;     /* "m365fwd 0.1.0" */
};

/* The whole review as a JSON tree in arena (schema m365fwd.report/1,
 * docs/report.md). */
struct mf_jval *mf_review_build(struct mf_arena *arena, const struct mf_agg *agg,
                                const struct mf_report_tables *t,
                                const struct mf_report_catalog *cat,
                                const struct mf_review_opts *o);

/* ---- renderers -------------------------------------------------------- */

enum mf_report_format { MF_RFMT_HTML = 0, MF_RFMT_MD, MF_RFMT_JSON };

int mf_report_format_parse(const char *s);     /* format, or -1 */

/* Append the review (doc from mf_review_build) to out. 0 / -1 (out's
 * ceiling). */
int mf_report_render(struct mf_buf *out, const struct mf_jval *doc,
                     enum mf_report_format f);

/* ---- small helpers shared with the agent -------------------------------- */

/* "YYYY-MM-DD" -> days since 1970-01-01; 0 / -1. */
int mf_report_parse_day(const char *s, int64_t *day);
/* day -> "YYYY-MM-DD" (buf >= 11 bytes). */
void mf_report_fmt_day(int64_t day, char *buf, size_t n);

#endif
