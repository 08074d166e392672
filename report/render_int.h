/* render_int.h - what the renderers share: reading the review document. */
#ifndef MF_RENDER_INT_H
#define MF_RENDER_INT_H

#include <stdint.h>

#include "report.h"

/* Members of the review document (NULL / 0 / an empty list when absent). */
const char *mf_rj_str(const struct mf_jval *o, const char *k);
int64_t mf_rj_int(const struct mf_jval *o, const char *k);
const struct mf_jval *mf_rj_obj(const struct mf_jval *o, const char *k);
/* Items of an array member; *n its length (0 when absent). */
struct mf_jval *const *mf_rj_arr(const struct mf_jval *o, const char *k, size_t *n);

/* "info", "low", "medium", "high", "critical" for 1..5; "none" otherwise. */
const char *mf_rsev_name(int64_t sev);

int mf_render_html(struct mf_buf *out, const struct mf_jval *doc);
int mf_render_md(struct mf_buf *out, const struct mf_jval *doc);

#endif
