/* fanout.h - the enabled outputs of a configuration, and one record
 * normalized in every form they need (schema x keep_raw), each form once.
 * Shared by `run` (collector.c) and `import`. */
#ifndef MF_FANOUT_H
#define MF_FANOUT_H

#include <stdbool.h>
#include <stddef.h>

#include "agent_conf.h"
#include "output.h"

struct mf_fanout {
    struct mf_output **outs;
    size_t n;
    bool used[MF_OUT_VARIANTS];
    struct mf_buf line[MF_OUT_VARIANTS];          /* the record per variant */
    struct mf_norm_result res[MF_OUT_VARIANTS];
    size_t max_line;
    bool shared;                                  /* outs belong to another */
};

/* Open every enabled output of cfg. 0, or -1 with err set (then close). */
int mf_fanout_open(struct mf_fanout *f, const struct mf_config *cfg, char *err,
                   size_t errsz);
/* Closes the outputs, or for a share only frees its buffers. */
void mf_fanout_close(struct mf_fanout *f);

/* Another set of per-record buffers on the outputs of src, for a second
 * thread (sends must then be serialized by the caller). src stays the
 * owner; close the share before src. */
void mf_fanout_share(struct mf_fanout *dst, const struct mf_fanout *src);

/* Normalize in every variant in use (in->schema and in->keep_raw are
 * set here). MF_OK, or MF_DROP with *first's error set. *first: the result
 * of the first variant (Id, tenant, tags are the same in all). */
enum mf_status mf_fanout_normalize(struct mf_fanout *f, const struct mf_normalizer *n,
                                   struct mf_nctx *c, struct mf_norm_in *in,
                                   const struct mf_norm_result **first);

/* The message for output i, or false when its filter does not want the
 * record. */
bool mf_fanout_msg(const struct mf_fanout *f, size_t i, const char *tenant,
                   const char *tenant_id, const char *content_type,
                   struct mf_out_msg *m);

#endif
