/* agg_int.h - inside the report library: the tables and the aggregate as
 * the aggregate, the rollup store and the review computation share them.
 * Not for other libraries (they use report.h). */
#ifndef MF_AGG_INT_H
#define MF_AGG_INT_H

#include <stdint.h>

#include "report.h"

/* ---- tables ------------------------------------------------------------- */

/* A condition or quantity over the counts of a period (checks.yaml). */
enum rx_op {
    RX_NUM, RX_TAG, RX_FACT, RX_AGG, RX_RECORDS, RX_AREA, RX_CT,
    RX_ADD, RX_SUB, RX_MUL, RX_GT, RX_GE, RX_LT, RX_LE, RX_EQ, RX_NE, RX_AND, RX_OR,
};

struct rx_node {
    int op;                   /* enum rx_op */
    double num;               /* RX_NUM */
    int idx;                  /* RX_FACT, RX_AGG, RX_AREA, RX_CT: index */
    const char *tag;          /* RX_TAG: tag id */
    int a, b;                 /* operands (node indexes) */
};

struct rx_expr {
    struct rx_node *n;
    int len;
    int root;                 /* -1: no expression */
};

/* What an expression reads: values it needs, by kind. */
typedef double (*rx_value_fn)(void *ud, int op, int idx, const char *tag);
double mf_rx_eval(const struct rx_expr *e, rx_value_fn fn, void *ud);
/* One quantity named in a text ("fact.signin", "tag.x.y", ...): its node
 * (op RX_TAG ... RX_CT). 0 / -1 when the name is not one. */
int mf_rx_ref(const struct mf_report_tables *t, const char *name, size_t len,
              struct rx_node *out);

enum agg_by { AGG_BY_ACTOR = 0, AGG_BY_CLIENT_IP, AGG_BY_OBJECT };

#define AGG_DISTINCT_MAX 32   /* distinct values remembered per key */

struct rt_aggdef {
    char *id, *title, *text;
    int area, severity;
    int fact;                 /* records counted: those with this fact */
    int by;                   /* enum agg_by: grouped by */
    int distinct;             /* -1, or enum agg_by: distinct values counted */
    uint64_t min_count, min_distinct;
};

struct rt_check {
    char *id, *title, *finding, *ok, *no_evidence;
    int area, severity;
    struct rx_expr applies, when, evidence;
    /* the evidence keys it shows examples of */
    int *ex_tags;             /* indexes into tables->ex_tags */
    size_t n_ex_tags;
    uint32_t ex_facts;        /* fact bits */
    int *ex_aggs;             /* aggregate indexes */
    size_t n_ex_aggs;
};

struct rt_action {
    int check;                /* index into checks */
    char *action, *owner, *effort;
    int area, horizon;        /* horizon: 30, 60 or 90 days */
};

struct mf_report_tables {
    struct rt_aggdef *aggs;
    size_t n_aggs;
    struct rt_check *checks;
    size_t n_checks;
    struct rt_action *actions;
    size_t n_actions;
    char **ex_tags;           /* tag ids some check shows examples of */
    size_t n_ex_tags;
    uint32_t ex_facts;        /* facts some check shows examples of */
    struct mf_arena arena;    /* expression nodes and texts */
};

/* ---- the aggregate ------------------------------------------------------ */

#define AGG_N_CT 6            /* the five content types, then "other" */
extern const char *const mf_agg_ct_names[AGG_N_CT];
int mf_agg_ct_index(const char *ct);

/* weight of one hit of severity s (docs/report.md "Score") */
extern const uint64_t mf_agg_weight[6];

struct agg_top_ent {
    uint64_t h;
    char *key;
    uint64_t n;               /* tagged records */
    uint64_t risk;            /* sum of the weights of their severities */
    int max_sev;
};

struct agg_top {
    size_t n, cap;
    struct agg_top_ent *e;
};

struct agg_event {
    int64_t time_ms;
    int sev;
    char *tenant, *actor, *operation, *object, *client_ip, *user_agent, *record_id,
         *workload, *content_type;
    char *tags;               /* "id:sev id:sev ..." */
    char *blk;                /* kept events: one allocation for the texts */
    size_t blk_len;
    const struct mf_report_rec *src;   /* offered events: tags made from it
                                          when kept (tags NULL) */
};

struct agg_events {
    size_t n, cap;
    struct agg_event *e;
};

struct agg_burst_ent {
    uint64_t h;
    char *key;
    uint64_t n;
    unsigned nd;              /* distinct values kept (<= AGG_DISTINCT_MAX) */
    uint32_t *dh;             /* their hashes; NULL until the first one */
};

struct agg_burst {
    size_t n, cap;
    struct agg_burst_ent *e;
};

struct agg_tagcnt {
    uint64_t n[5];            /* hits by severity 1..5 */
};

struct agg_day {
    int64_t day;
    uint64_t ct_records[AGG_N_CT], ct_tagged[AGG_N_CT];
    struct agg_tagcnt *tags;  /* by tag index (a->tag_ids) */
    size_t n_tags;
    uint64_t facts[MF_FACT_COUNT];
    struct agg_top tops[2][MF_RAREA_COUNT];   /* [0] actors, [1] objects */
    struct agg_events events[MF_RAREA_COUNT];
    struct agg_burst *bursts;                 /* [t->n_aggs] */
    struct agg_events *ex_tags;               /* [t->n_ex_tags] */
    struct agg_events ex_facts[MF_FACT_COUNT];
    struct agg_events *ex_aggs;               /* [t->n_aggs] */
};

struct agg_tenant {
    char *id, *name;
    struct agg_day **days;    /* sorted by day */
    size_t n_days, cap_days;
    struct agg_day *last;
};

struct agg_gap {
    char *tenant, *content_type, *reason;
    int64_t start_ms, end_ms;
};

#define AGG_MAX_TENANTS 4096
#define AGG_MAX_GAPS    4096
#define AGG_TAG_SLOTS   1024  /* distinct tag ids (a power of two) */

struct mf_agg {
    const struct mf_report_tables *t;
    struct mf_agg_limits lim;
    char *tag_ids[AGG_TAG_SLOTS];             /* by tag index */
    int tag_area[AGG_TAG_SLOTS];
    int tag_ex[AGG_TAG_SLOTS];                /* example slot or -1 */
    size_t n_tag_ids;
    int tag_hash[AGG_TAG_SLOTS * 2];          /* index + 1, 0 = free */
    struct agg_tenant *tenants;
    size_t n_tenants;
    struct agg_tenant *last_tenant;
    struct agg_gap *gaps;
    size_t n_gaps;
    size_t mem;
};

uint64_t mf_agg_hash(const char *s);
/* The tenant (created) for an id; name may be NULL (then the id). NULL
 * only when AGG_MAX_TENANTS are taken. */
struct agg_tenant *mf_agg_tenant(struct mf_agg *a, const char *id, const char *name);
struct agg_day *mf_agg_day(struct mf_agg *a, struct agg_tenant *t, int64_t day);
/* The day of t, or NULL (not created). */
const struct agg_day *mf_agg_find_day(const struct agg_tenant *t, int64_t day);
/* Index of a tag id (interned), or -1 when the table of ids is full. */
int mf_agg_tag(struct mf_agg *a, const char *id, int area);
/* Add n hits of severity sev of tag idx to a day. */
void mf_agg_day_tag_add(struct mf_agg *a, struct agg_day *d, int idx, int sev, uint64_t n);
/* Add to a top list (space-saving: a new key takes the place of the
 * least risky one when full). */
void mf_agg_top_add(struct mf_agg *a, struct agg_top *t, const char *key, uint64_t n,
                    uint64_t risk, int max_sev);
/* Offer an event to a bounded list (kept: most severe, then newest). The
 * event is copied. */
void mf_agg_events_offer(struct mf_agg *a, struct agg_events *l, size_t cap,
                         const struct agg_event *ev);
void mf_agg_burst_add(struct mf_agg *a, struct agg_burst *b, const char *key, uint64_t n,
                      const uint32_t *dh, unsigned nd);
/* Add day s of aggregate sa to day d of a. */
void mf_agg_merge_day(struct mf_agg *a, const struct mf_agg *sa, struct agg_day *d,
                      const struct agg_day *s);
void mf_agg_add_gap(struct mf_agg *a, const char *tenant, const char *ct, int64_t start_ms,
                    int64_t end_ms, const char *reason);
int mf_agg_event_cmp(const struct agg_event *x, const struct agg_event *y);

#endif
