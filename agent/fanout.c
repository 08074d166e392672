/* fanout.c - see fanout.h. */
#include "fanout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_conf.h"
#include "mem.h"

struct mf_fanout_outs {
    struct mf_output **outs;
    pthread_mutex_t *mu;          /* per output; used unless CONCURRENT */
    size_t n;
    size_t max_form;
};

static bool
serialized(const struct mf_output *o)
{
    return !(o->ops->flags & MF_OUTPUT_CONCURRENT);
}

static void
parts_init(struct mf_fanout *f, struct mf_fanout_outs *o, bool shared)
{
    memset(f, 0, sizeof(*f));
    f->o = o;
    f->outs = o->outs;
    f->n = o->n;
    f->shared = shared;
    mf_event_init(&f->ev, o->max_form);
    f->want = mf_xcalloc(o->n ? o->n : 1, sizeof(*f->want));
    f->scratch = mf_xcalloc(o->n ? o->n : 1, sizeof(*f->scratch));
    for (size_t i = 0; i < o->n; i++)
        mf_buf_init(&f->scratch[i], o->max_form * 2 + 65536);
}

int
mf_fanout_open(struct mf_fanout *f, const struct mf_config *cfg, char *err,
               size_t errsz)
{
    struct mf_fanout_outs *o = mf_xcalloc(1, sizeof(*o));
    size_t cap = cfg->outputs.n ? cfg->outputs.n : 1;
    int rc = 0;

    /* a normalized event is a few times its record at most */
    o->max_form = (size_t)cfg->collect.max_record_size * 4 + 65536;
    o->outs = mf_xcalloc(cap, sizeof(*o->outs));
    o->mu = mf_xcalloc(cap, sizeof(*o->mu));
    for (size_t i = 0; i < cfg->outputs.n && rc == 0; i++) {
        const struct mf_output_conf *oc = &cfg->outputs.v[i];
        struct mf_err e;

        if (!oc->enabled)
            continue;
        if (!(o->outs[o->n] = mf_output_open(oc, &e))) {
            snprintf(err, errsz, "%s", e.msg);
            rc = -1;
            break;
        }
        pthread_mutex_init(&o->mu[o->n], NULL);
        o->n++;
    }
    if (rc == 0 && o->n == 0) {
        snprintf(err, errsz, "%s: no enabled output", cfg->file);
        rc = -1;
    }
    parts_init(f, o, false);
    return rc;
}

void
mf_fanout_share(struct mf_fanout *dst, const struct mf_fanout *src)
{
    parts_init(dst, src->o, true);
}

void
mf_fanout_close(struct mf_fanout *f)
{
    struct mf_fanout_outs *o = f->o;

    if (!o)
        return;
    mf_event_fini(&f->ev);
    for (size_t i = 0; i < f->n; i++)
        mf_buf_fini(&f->scratch[i]);
    free(f->scratch);
    free(f->want);
    if (!f->shared) {
        for (size_t i = 0; i < o->n; i++) {
            mf_output_close(o->outs[i]);
            pthread_mutex_destroy(&o->mu[i]);
        }
        free(o->outs);
        free(o->mu);
        free(o);
    }
    memset(f, 0, sizeof(*f));
}

int
mf_fanout_route(struct mf_fanout *f)
{
    int n = 0;

    for (size_t i = 0; i < f->n; i++) {
        struct mf_output *o = f->outs[i];

        f->want[i] = mf_output_wants(o->conf, &f->ev);
        if (!f->want[i])
            continue;
        if (!mf_output_form(o, &f->ev))
            return -1;
        n++;
    }
    return n;
}

enum mf_status
mf_fanout_send(struct mf_fanout *f, size_t i, int timeout_ms)
{
    struct mf_output *o = f->outs[i];
    enum mf_status st;

    if (!serialized(o))
        return mf_output_send_wait(o, &f->ev, &f->scratch[i], timeout_ms);
    pthread_mutex_lock(&f->o->mu[i]);
    st = mf_output_send_wait(o, &f->ev, &f->scratch[i], timeout_ms);
    pthread_mutex_unlock(&f->o->mu[i]);
    return st;
}

void
mf_fanout_locked(struct mf_fanout *f, size_t i,
                 void (*fn)(struct mf_output *o, void *ud), void *ud)
{
    struct mf_output *o = f->outs[i];

    if (!serialized(o)) {
        fn(o, ud);
        return;
    }
    pthread_mutex_lock(&f->o->mu[i]);
    fn(o, ud);
    pthread_mutex_unlock(&f->o->mu[i]);
}

/* An output's flush or drain, with its flush_timeout, and its answer. */
struct out_call {
    int (*fn)(struct mf_output *o, int timeout_ms);
    int rc;
};

static void
call_one(struct mf_output *o, void *ud)
{
    struct out_call *c = ud;

    c->rc = c->fn(o, (int)o->conf->flush_timeout_ms);
}

static int
fanout_call(struct mf_fanout *f, size_t i, int (*fn)(struct mf_output *o, int timeout_ms))
{
    struct out_call c = {.fn = fn};

    mf_fanout_locked(f, i, call_one, &c);
    return c.rc;
}

int
mf_fanout_flush(struct mf_fanout *f, size_t i)
{
    return fanout_call(f, i, mf_output_flush);
}

static void
flush_start(struct mf_output *o, void *ud)
{
    (void)ud;
    o->ops->flush_start(o);
}

static void
flush_done(struct mf_output *o, void *ud)
{
    int *rc = ud;

    *rc = o->ops->flush_done(o, *rc);
}

void
mf_fanout_flush_all(struct mf_fanout *f, const bool *use, int *rc)
{
    for (size_t i = 0; i < f->n; i++) {
        rc[i] = 0;
        if (use && !use[i])
            continue;
        if (f->outs[i]->ops->flush_start)
            mf_fanout_locked(f, i, flush_start, NULL);
        else
            rc[i] = mf_fanout_flush(f, i);
    }
    for (size_t i = 0; i < f->n; i++) {
        struct mf_output *o = f->outs[i];

        if ((use && !use[i]) || !o->ops->flush_start)
            continue;
        rc[i] = o->ops->flush_sync(o, (int)o->conf->flush_timeout_ms);
        mf_fanout_locked(f, i, flush_done, &rc[i]);
    }
}

int
mf_fanout_drain(struct mf_fanout *f, size_t i)
{
    return fanout_call(f, i, mf_output_drain);
}
