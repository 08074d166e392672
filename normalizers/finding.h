/* finding.h - what an aggregate rule reports when it fires, and its
 * renderings: an OCSF Detection Finding (class 2004), an ECS alert
 * (event.kind: alert with rule.*), and a raw form (docs/aggregates.md).
 *
 * A finding is plain data: strings live in the struct mf_findings list
 * that received it (its arena) until the list is reset; tag and rule
 * strings belong to the aggregate table (struct mf_aggdb).
 */
#ifndef MF_FINDING_H
#define MF_FINDING_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "json.h"
#include "normalize.h"
#include "tags.h"

#define MF_FINDING_MAX_DISTINCT 3

struct mf_finding_distinct {
    const char *field;       /* "UserId", "$client_ip", ... */
    uint32_t n;              /* distinct values counted when it fired */
};

struct mf_finding {
    char uid[40];            /* stable: hash of (rule, tenant, key, window) */
    const struct mf_tag *tag;     /* the tag the finding carries */
    const char *rule;        /* "identity.password_spray/one_source" */
    const char *description; /* the rule's one-line description */
    int severity;            /* OCSF severity_id 1..5 */
    const char *tenant;      /* OrganizationId, "" unknown */
    const char *key;         /* what the window counted for: "ClientIP=..." ("" tenant-wide) */
    int64_t window_start_ms, window_end_ms;
    int64_t first_ms, last_ms;    /* event times of the contributing records */
    uint64_t count;          /* contributing records (distinct Ids) */
    struct mf_finding_distinct distinct[MF_FINDING_MAX_DISTINCT];
    size_t n_distinct;
    /* involved, each list capped (docs/aggregates.md) */
    const char **actors;     /* UserId */
    size_t n_actors;
    const char **ips;        /* client addresses */
    size_t n_ips;
    const char **objects;    /* the rule's object field (ObjectId by default) */
    size_t n_objects;
    const char **ids;        /* Ids of contributing records; count is the total */
    size_t n_ids;
    /* a rule with `after`: the finding of the window it follows */
    const char *after_uid;   /* NULL otherwise */
    double distance_km;      /* rules with `geo`: the largest distance, else 0 */
};

struct mf_findings {
    struct mf_finding *v;
    size_t n, cap;
    struct mf_arena arena;   /* strings and lists of the findings */
};

void mf_findings_init(struct mf_findings *l);
void mf_findings_fini(struct mf_findings *l);
/* Forget the findings (memory kept for the next ones). */
void mf_findings_reset(struct mf_findings *l);
/* A new zeroed finding at the end of the list. */
struct mf_finding *mf_findings_add(struct mf_findings *l);

/* The finding as an event of the schema, built in a. */
struct mf_jval *mf_finding_build(struct mf_arena *a, const struct mf_finding *f,
                                 enum mf_schema schema);
/* mf_finding_build() written as one JSON line (no newline) appended to out;
 * 0, or -1 when out's ceiling is reached. */
int mf_finding_write(struct mf_arena *a, const struct mf_finding *f,
                     enum mf_schema schema, struct mf_buf *out);

/* What an event needs to render a finding (caller's storage: it must
 * outlive the event's use, like f and a). */
struct mf_finding_ctx {
    const struct mf_finding *f;
    struct mf_arena *a;
};

/* Make ev (reset first) the finding f, so that outputs route and render it
 * like a record (core/event.h): its tag (area, severity, ATT&CK), class
 * 2004, id = the finding's uid, time = its last event, user / client_ip
 * when it has one actor / address, tenant_id, the content type given (the
 * record that fired it: content-type filters route the finding with its
 * records). The forms are built in ctx->a (keep_raw makes no difference:
 * a finding has no original). ev->tenant stays for the caller to name. */
void mf_finding_event(struct mf_event *ev, const struct mf_finding *f,
                      const char *content_type, struct mf_finding_ctx *ctx,
                      struct mf_arena *a);

#endif
