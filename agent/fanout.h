/* fanout.h - the enabled outputs of a configuration, and the path of one
 * record to them: normalized once into an event, routed by each output's
 * filter, each form the routed outputs need rendered once, then sent.
 * Shared by `run` (deliver.c, one fan-out per lane) and `import`.
 *
 * Threads: the owner opens the outputs; each other thread takes a share
 * (its own event, scratch buffers and routing) on the same outputs. Sends
 * to an output that is not MF_OUTPUT_CONCURRENT are serialized by a lock
 * of the fan-out, the others go straight to the output.
 */
#ifndef MF_FANOUT_H
#define MF_FANOUT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "event.h"
#include "normalize.h"
#include "output.h"

struct mf_config;

struct mf_fanout_outs;       /* the open outputs and their locks (shared) */

struct mf_fanout {
    struct mf_fanout_outs *o;
    struct mf_output **outs;       /* o's outputs, n of them */
    size_t n;
    struct mf_event ev;            /* the record being routed */
    bool *want;                    /* per output: its filter wants ev */
    struct mf_buf *scratch;        /* per output: formatting space */
    bool shared;                   /* o belongs to another fan-out */
};

/* Open every enabled output of cfg. 0, or -1 with err set (then close). */
int mf_fanout_open(struct mf_fanout *f, const struct mf_config *cfg, char *err,
                   size_t errsz);
/* Closes the outputs, or for a share only frees its own parts. */
void mf_fanout_close(struct mf_fanout *f);
/* A share of src's outputs for another thread; close it before src. */
void mf_fanout_share(struct mf_fanout *dst, const struct mf_fanout *src);

/* Normalize one record into f->ev (tenant names still unset). MF_OK, or
 * MF_DROP with f->ev.error set. */
static inline enum mf_status
mf_fanout_normalize(struct mf_fanout *f, const struct mf_normalizer *n,
                    struct mf_nctx *c, const struct mf_norm_in *in)
{
    return mf_normalize_event(n, c, in, &f->ev);
}

/* After the caller named the tenant (f->ev.tenant, tenant_id): decide
 * which outputs want the event and render the forms they need, each once.
 * Returns how many outputs want it, or -1 when a form cannot be rendered
 * (f->ev.error: the record is rejected as by the normalizer). */
int mf_fanout_route(struct mf_fanout *f);

/* Send the event to output i (routed to it), waiting up to timeout_ms while
 * it is full (backpressure). MF_OK, MF_DROP (the output refused it for
 * good and counted it), MF_RETRY (still full), MF_FATAL. */
enum mf_status mf_fanout_send(struct mf_fanout *f, size_t i, int timeout_ms);

/* Flush output i under its lock when it has one (0 / -1, output.h). */
int mf_fanout_flush(struct mf_fanout *f, size_t i);
/* Flush every output i with use[i] (use NULL: all) at once: those that
 * split their flush (output.h) are started first and waited for without
 * their lock, so the slowest sets the time, not the sum, and senders go
 * on meanwhile; the others flush under their lock. rc[i]: each output's
 * result (0 / -1); outputs not used get 0. */
void mf_fanout_flush_all(struct mf_fanout *f, const bool *use, int *rc);
/* The last barrier of a stream on output i (mf_output_drain). */
int mf_fanout_drain(struct mf_fanout *f, size_t i);

/* Run fn(output, ud) with output i's lock held when it has one (for the
 * split flush and stats). */
void mf_fanout_locked(struct mf_fanout *f, size_t i,
                      void (*fn)(struct mf_output *o, void *ud), void *ud);

#endif
