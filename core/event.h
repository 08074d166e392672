/* event.h - one normalized audit record, as every consumer after the
 * normalizer sees it (outputs, fan-out, aggregates, the report).
 *
 * A record is parsed and tagged once (normalizers/: mf_normalize_event());
 * the event then carries its facts, its risk tags (plain data: no pointer
 * into the normalizer's types), the areas and severity they give, and up to
 * MF_EVENT_FORMS renderings ("forms": schema x keep_raw), each made at most
 * once, on first use, by the renderer the normalizer installed. Consumers
 * include this header and core only: an output never calls the normalizer.
 *
 * Lifetime: every pointer of an event (facts, forms, trees) is valid until
 * the next record is normalized into the same event (or mf_event_fini()).
 * One thread uses an event at a time.
 */
#ifndef MF_EVENT_H
#define MF_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "json.h"

/* ---- vocabularies shared by every layer ------------------------------- */

enum mf_schema { MF_SCHEMA_OCSF = 0, MF_SCHEMA_ECS, MF_SCHEMA_RAW, MF_SCHEMA_COUNT };

/* "ocsf", "ecs", "raw" ("?" when out of range); parse: 0 / -1. */
const char *mf_schema_name(enum mf_schema s);
int mf_schema_parse(const char *s, enum mf_schema *out);

/* Areas of the shared-responsibility model (normalization.md §2). */
enum mf_area {
    MF_AREA_IDENTITY_ACCESS = 0,
    MF_AREA_DATA_PROTECTION,
    MF_AREA_COLLABORATION_SHARING,
    MF_AREA_DEVICE_POSTURE,
    MF_AREA_MONITORING_RESPONSE,
    MF_AREA_COUNT
};

/* "identity_access", ... ("unknown" out of range); parse: 0 / -1. */
const char *mf_area_name(enum mf_area a);
int mf_area_parse(const char *s, enum mf_area *out);

enum mf_outcome { MF_OUTCOME_UNKNOWN = 0, MF_OUTCOME_SUCCESS = 1, MF_OUTCOME_FAILURE = 2 };

/* ---- the event --------------------------------------------------------- */

#define MF_EVENT_MAX_TAGS 16
/* Forms: index = schema * 2 + keep_raw. */
#define MF_EVENT_FORMS (MF_SCHEMA_COUNT * 2)

struct mf_event_tag {
    const char *id;              /* "identity.mfa_disabled" */
    const char *title;           /* one line for people */
    enum mf_area area;
    int severity;                /* OCSF severity_id 1..5 after its rules */
    const char *const *attack;   /* ATT&CK technique ids */
    size_t n_attack;
};

struct mf_event_form {
    bool made;                   /* rendered (data/tree valid) */
    bool failed;                 /* rendering failed (see the event's error) */
    const struct mf_jval *tree;  /* the rendering as a tree (read only) */
    struct mf_buf text;          /* ... and as one line of JSON, no newline */
};

struct mf_event;

/* Renders form f (schema, keep_raw) of ev: fills form->tree and
 * form->text; 0, or -1 with ev->error set. Installed by the normalizer. */
typedef int (*mf_event_render_fn)(struct mf_event *ev, enum mf_schema schema,
                                  bool keep_raw, struct mf_event_form *form);

struct mf_event {
    /* identity and routing */
    const char *id;              /* record Id; "" when absent */
    const char *tenant_id;       /* OrganizationId, or set by the agent; "" */
    const char *tenant;          /* tenant name (set by the agent); "" */
    const char *content_type;    /* given or derived from RecordType/Workload */
    /* facts of the record (NULL when absent) */
    int64_t time_ms;             /* CreationTime as UTC epoch ms */
    const char *operation;       /* "" when absent */
    const char *workload;
    const char *user;            /* UserId */
    const char *client_ip;       /* parsed ClientIP & co, "" when none */
    const char *user_agent;
    const char *object;          /* ObjectId */
    const char *result_status;   /* ResultStatus as it came */
    int record_type;             /* -1 when absent */
    enum mf_outcome outcome;
    bool system_actor;
    unsigned repairs;            /* MF_REPAIR_* bits (normalizers/record.h) */
    int class_uid;               /* OCSF class (also for ecs/raw forms) */
    /* tags */
    struct mf_event_tag tags[MF_EVENT_MAX_TAGS];   /* catalogue order */
    size_t n_tags;
    int severity;                /* highest tag severity; 1 when untagged */
    unsigned areas;              /* bit (1u << enum mf_area) per tagged area */
    const struct mf_event_tag *top;   /* most severe tag (first on ties) or NULL */
    /* renderings */
    struct mf_event_form form[MF_EVENT_FORMS];
    mf_event_render_fn render;
    void *render_ud;             /* the renderer's own context */
    char error[200];             /* why the record or a form was refused */
};

/* max_form: ceiling of one rendering in bytes (0 = unbounded). */
void mf_event_init(struct mf_event *ev, size_t max_form);
void mf_event_fini(struct mf_event *ev);
/* Forget the previous record's facts and forms (buffers are kept). */
void mf_event_reset(struct mf_event *ev);
/* Free form memory above keep bytes each (after a very large record). */
void mf_event_shrink(struct mf_event *ev, size_t keep);

/* The form (schema, keep_raw), rendered now if it is not yet: NULL when it
 * cannot be made (ev->error says why). */
const struct mf_event_form *mf_event_form(struct mf_event *ev, enum mf_schema schema,
                                          bool keep_raw);

/* Tag ids joined by sep into buf (whole ids only); returns the length. */
size_t mf_event_join_tags(const struct mf_event *ev, char sep, char *buf, size_t n);

#endif
