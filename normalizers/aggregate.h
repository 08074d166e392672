/* aggregate.h - aggregate risk tags: counts over windows of event time.
 *
 * The table (normalizers/aggregates.yaml, compiled in, overridable with a
 * file) names the aggregate tags of the catalogue and their rules: which
 * records count (a condition of the tag language, or a per-event tag),
 * what they are counted by (key), over which window, and the threshold
 * (events and/or distinct values). docs/aggregates.md describes the
 * format and the semantics. Loading validates everything with NAME:LINE
 * errors.
 *
 * The engine (struct mf_aggregates) is fed every record once, after the record
 * was tagged; a record that takes a window over its threshold yields a
 * finding (finding.h) - one per rule, key and window. Windows are aligned
 * on event time (CreationTime), so the order records arrive in does not
 * change which windows fire, within the lateness horizon. State is
 * bounded (max_keys, max_memory: least recently used windows evicted and
 * counted) and can be saved to a file and loaded again, so a window split
 * by a restart still fires once. Feeding is thread-safe.
 */
#ifndef MF_AGGREGATE_H
#define MF_AGGREGATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "finding.h"
#include "geoip.h"
#include "record.h"
#include "tags.h"

struct mf_aggdb;
struct mf_aggregates;

/* Load the table. tags: the per-event catalogue (aggregate tag ids must
 * not clash with it; `tagged:` and raised tags must be in it; it must
 * outlive the table). NULL with err->msg = "NAME:LINE: message". */
struct mf_aggdb *mf_aggdb_load(const char *name, const char *text, size_t len,
                               const struct mf_tagdb *tags, struct mf_err *err);
struct mf_aggdb *mf_aggdb_load_builtin(const struct mf_tagdb *tags,
                                       struct mf_err *err);
void mf_aggdb_destroy(struct mf_aggdb *db);

/* Tags the table defines (the aggregate tags, not the raised per-event
 * ones), in table order. */
size_t mf_aggdb_tag_count(const struct mf_aggdb *db);
const struct mf_tag *mf_aggdb_tag_at(const struct mf_aggdb *db, size_t i);
/* Rules: "tag/name" ids, in table order; geo = the rule needs locations. */
size_t mf_aggdb_rule_count(const struct mf_aggdb *db);
const char *mf_aggdb_rule_id(const struct mf_aggdb *db, size_t i, bool *geo);

struct mf_aggregates_opts {
    size_t max_keys;             /* 0 = the table's max_keys */
    size_t max_memory;           /* bytes; 0 = the table's max_memory */
    const struct mf_geoip *geo;  /* NULL: rules with `geo` are off */
};

struct mf_aggregates *mf_aggregates_new(const struct mf_aggdb *db,
                                        const struct mf_aggregates_opts *opts);
void mf_aggregates_destroy(struct mf_aggregates *g);

/* Count one tagged record (hits: its per-event tags, may be NULL). Every
 * finding it causes is appended to out; returns how many. */
size_t mf_aggregates_feed(struct mf_aggregates *g, const struct mf_record *r,
                          const struct mf_tag_hits *hits, struct mf_findings *out);
/* The same for a record that may have been fed before without its findings
 * reaching every output (a blob fetched again after a failed or
 * interrupted attempt): the record that fired a window yields that
 * window's finding again, same uid and content (docs/aggregates.md,
 * "Fired windows"). */
size_t mf_aggregates_feed_replay(struct mf_aggregates *g, const struct mf_record *r,
                                 const struct mf_tag_hits *hits, struct mf_findings *out);

struct mf_aggregates_stats {
    uint64_t records;            /* fed */
    uint64_t counted;            /* (record, rule) contributions */
    uint64_t late;               /* contributions refused: window out of the horizon */
    uint64_t findings;           /* emitted */
    uint64_t reemitted;          /* the same findings again: the record that fired
                                    one came again (its blob fetched again) */
    uint64_t evicted;            /* windows dropped to stay under the caps */
    uint64_t expired;            /* windows closed by the horizon */
    uint64_t load_dropped;       /* saved windows of rules no longer in the table */
    uint64_t keys;               /* windows tracked now */
    uint64_t bytes;              /* memory of the state now */
    uint64_t rules_off;          /* rules disabled (geo rules without geoip_db) */
};
void mf_aggregates_stats(struct mf_aggregates *g, struct mf_aggregates_stats *st);

/* Write the state to path atomically (path.tmp, fsync, rename). 0, or -1
 * with err. */
int mf_aggregates_save(struct mf_aggregates *g, const char *path,
                       struct mf_err *err);
/* Replace the state with the one saved at path. A missing file is an empty
 * state (returns 0); a damaged or foreign file returns -1 with err and
 * leaves the state empty. Windows of rules changed or removed since are
 * dropped (stats.load_dropped). */
int mf_aggregates_load(struct mf_aggregates *g, const char *path,
                       struct mf_err *err);

#endif
