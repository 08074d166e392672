/* report_feed.h - the agent's side of the review: record facts for the
 * report library, and the rollup that `run` and `import` keep.
 *
 * mf_report_rec_fill() is the ONE place that turns what the normalizer
 * produced (the struct mf_event, and the record view it was made from for
 * the few facts the event does not carry) into the report's struct
 * mf_report_rec.
 */
#ifndef MF_REPORT_FEED_H
#define MF_REPORT_FEED_H

#include "normalize.h"
#include "option.h"
#include "report.h"

struct mf_config;
struct mf_dl_blob;

/* Fill out from ev and the record view it was made from (c->rec of the
 * same mf_normalize_event() call; both must outlive out's use). The
 * tenant shown is ev->tenant, else its id. class_name may be NULL. */
void mf_report_rec_fill(struct mf_report_rec *out, const struct mf_event *ev,
                        const struct mf_record *rec, const char *class_name);

/* The tag catalogue as the report library sees it; free with
 * mf_report_catalog_free(). */
void mf_report_catalog_init(struct mf_report_catalog *cat, const struct mf_tagdb *db);
void mf_report_catalog_free(struct mf_report_catalog *cat);

/* ---- the rollup as `run` and `import` feed it ------------------------------- */

/* The `report:` section. */
struct mf_report_conf {
    bool rollup;                /* keep state_dir/report.db while delivering */
    int64_t retention_ms;       /* days kept in it */
};
extern const struct mf_optsec mf_report_sec;

struct mf_report_feed;

/* Open state_dir/report.db for writing. NULL when `report.rollup` is off,
 * or when it cannot be opened (logged as an error: delivery goes on
 * without it). */
struct mf_report_feed *mf_report_feed_open(const struct mf_config *cfg,
                                           const struct mf_normalizer *norm);
/* A delivered record (ev, and c the context the normalizer made it in),
 * counted in batch; see mf_rollup_add(). f may be NULL. */
void mf_report_feed_record(struct mf_report_feed *f, const void *batch,
                           const struct mf_nctx *c, const struct mf_event *ev);
/* After the delivery commit: the batches delivered go to report.db. */
int mf_report_feed_commit(struct mf_report_feed *f, const void *const *batches, size_t n);
void mf_report_feed_discard(struct mf_report_feed *f, const void *batch);
/* `run`: after a group commit, the blobs of list (rc 0 committed, else to
 * be fetched again). */
void mf_report_feed_blobs(struct mf_report_feed *f, const struct mf_dl_blob *list);
/* Commit what waits in the NULL batch, then close. */
void mf_report_feed_close(struct mf_report_feed *f);

#endif
