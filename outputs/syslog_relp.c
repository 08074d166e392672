/* syslog_relp.c - the syslog output's `transport: relp`: RFC 5424 / 3164
 * messages over RELP (librelp), the acknowledged syslog transport of
 * rsyslog (imrelp).
 *
 * Delivery (output.h): a record is acknowledged only once the receiver
 * answered it with a RELP "200 OK". librelp answers no "is this frame
 * acknowledged" question, so the proof is the session itself: RELP
 * answers frames in order, and a session that is closed with the
 * receiver's answer to "close", without any error on the way (every
 * librelp error goes through the engine's onErr callback, counted here),
 * had every frame sent on it answered 200. flush() therefore closes the
 * session (the next record opens a new one) and acknowledges what was
 * sent on it. Until then every record stays in our own queue; a session
 * that breaks (reset, timeout, an error answer, the receiver restarted)
 * is given up and everything unacknowledged goes again on a new session:
 * at least once, duplicates bounded by what was sent since the last
 * flush, never a loss.
 *
 * librelp calls block (connect, a full RELP window, close): they run on
 * the output's own thread. send() formats the message on the caller's
 * thread and queues it (at most max_in_flight unacknowledged: MF_RETRY
 * beyond, backpressure); flush() waits for the thread within its timeout.
 */
#include "syslog_relp.h"

#include <errno.h>
#include <inttypes.h>
#include <librelp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "mem.h"
#include "mf_config.h"
#include "syslog_fmt.h"

#define RL_BACKOFF_MIN_MS 100
#define RL_BACKOFF_MAX_MS 5000
#define RL_WINDOW 128           /* RELP frames unanswered at once */

struct rl_entry {
    char *msg;
    size_t len;
};

struct relp_out {
    struct mf_output base;
    const struct mf_output_conf *conf;
    struct mf_syslog_fmt fmt;
    char host[256];
    char port[16];
    struct mf_syslog_ident ident;
    size_t max_size;
    size_t max_in_flight;
    unsigned timeout_s;         /* librelp's timeouts (whole seconds) */

    pthread_mutex_t mu;
    pthread_cond_t cv;          /* the thread: work; flushers: progress */
    pthread_t th;
    bool started, quit;
    /* queue [0, n): unacknowledged; the first `sent` went out on the
     * current session */
    struct rl_entry *q;
    size_t n, cap, sent;
    uint64_t queued_total;      /* records ever queued */
    uint64_t acked_total;       /* ... acknowledged (a prefix of them) */
    uint64_t want_ack;          /* a flush waits until acked_total reaches it */
    uint64_t dropped_since_flush;
    struct mf_output_stats st;
    bool down_logged;

    /* the thread's own */
    relpEngine_t *eng;
    relpClt_t *clt;
    int errs;                   /* onErr calls on the current session */
    char last_err[200];
    int64_t next_attempt_ms;
    int backoff_ms;
};

static void
on_err(void *usr, char *objinfo, char *errmsg, relpRetVal code)
{
    struct relp_out *o = usr;

    if (!o)
        return;
    o->errs++;
    snprintf(o->last_err, sizeof(o->last_err), "%s: %s (librelp %d)",
             objinfo ? objinfo : "", errmsg ? errmsg : "", code);
}

/* librelp's debug output (required: it calls it unconditionally). */
static void
dbg_none(char *fmt, ...)
{
    (void)fmt;
}

static void
on_generic_err(char *objinfo, char *errmsg, relpRetVal code)
{
    mf_log(MF_LOG_DEBUG, "librelp: %s: %s (%d)", objinfo ? objinfo : "",
           errmsg ? errmsg : "", code);
}

/* ---- the thread's side (no lock held across librelp calls) ------------ */

/* A broken session: given up (no close); what was sent goes again. */
static void
session_drop(struct relp_out *o, const char *what)
{
    if (o->clt)
        relpEngineCltDestruct(o->eng, &o->clt);
    o->clt = NULL;
    pthread_mutex_lock(&o->mu);
    if (!o->down_logged)
        mf_log(MF_LOG_WARN, "output=%s relp %s:%s: %s%s%s; reconnecting (%zu records "
               "to send again)", o->conf->name, o->host, o->port, what,
               o->last_err[0] ? ": " : "", o->last_err, o->n);
    o->down_logged = true;
    o->st.failed += o->sent;
    o->sent = 0;
    pthread_mutex_unlock(&o->mu);
    o->next_attempt_ms = mf_clock_mono_ms() + o->backoff_ms;
    o->backoff_ms = o->backoff_ms * 2 > RL_BACKOFF_MAX_MS ? RL_BACKOFF_MAX_MS
                                                          : o->backoff_ms * 2;
}

static bool
session_open(struct relp_out *o)
{
    relpRetVal rc;

    o->errs = 0;
    o->last_err[0] = '\0';
    if (relpEngineCltConstruct(o->eng, &o->clt) != RELP_RET_OK) {
        o->clt = NULL;
        session_drop(o, "cannot create a RELP client");
        return false;
    }
    relpCltSetUsrPtr(o->clt, o);
    relpCltSetTimeout(o->clt, o->timeout_s);
    relpCltSetConnTimeout(o->clt, (int)o->timeout_s);
    relpCltSetWindowSize(o->clt, RL_WINDOW);
    rc = relpCltConnect(o->clt, AF_UNSPEC, (unsigned char *)o->port,
                        (unsigned char *)o->host);
    if (rc != RELP_RET_OK) {
        char what[64];

        snprintf(what, sizeof(what), "connect failed (librelp %d)", rc);
        session_drop(o, what);
        return false;
    }
    if (o->down_logged)
        mf_log(MF_LOG_INFO, "output=%s relp %s:%s: connected", o->conf->name, o->host,
               o->port);
    pthread_mutex_lock(&o->mu);
    o->down_logged = false;
    pthread_mutex_unlock(&o->mu);
    o->backoff_ms = RL_BACKOFF_MIN_MS;
    return true;
}

/* Close the session with the receiver's answer: true when every frame sent
 * on it was answered 200. */
static bool
session_close(struct relp_out *o)
{
    relpEngineCltDestruct(o->eng, &o->clt);
    o->clt = NULL;
    return o->errs == 0;
}

static void *
relp_main(void *arg)
{
    struct relp_out *o = arg;

    pthread_mutex_lock(&o->mu);
    while (!o->quit) {
        int64_t now = mf_clock_mono_ms();

        if (o->sent < o->n && (o->clt || now >= o->next_attempt_ms)) {
            struct rl_entry e = o->q[o->sent];
            relpRetVal rc;

            pthread_mutex_unlock(&o->mu);
            if (!o->clt && !session_open(o)) {
                pthread_mutex_lock(&o->mu);
                continue;
            }
            rc = relpCltSendSyslog(o->clt, (unsigned char *)e.msg, e.len);
            if (rc != RELP_RET_OK || o->errs) {
                char what[64];

                snprintf(what, sizeof(what), "send failed (librelp %d)", rc);
                session_drop(o, what);
                pthread_mutex_lock(&o->mu);
                continue;
            }
            pthread_mutex_lock(&o->mu);
            o->sent++;
            continue;
        }
        if (o->sent == o->n && o->want_ack > o->acked_total && o->clt) {
            size_t k = o->sent;
            bool ok;

            pthread_mutex_unlock(&o->mu);
            ok = session_close(o);
            if (!ok)
                session_drop(o, "the session did not close cleanly");
            pthread_mutex_lock(&o->mu);
            if (ok) {
                for (size_t i = 0; i < k; i++)
                    free(o->q[i].msg);
                memmove(o->q, o->q + k, (o->n - k) * sizeof(*o->q));
                o->n -= k;
                o->sent -= k;
                o->acked_total += k;
                o->st.acked += k;
                pthread_cond_broadcast(&o->cv);
            }
            continue;
        }
        if (o->sent < o->n || (o->want_ack > o->acked_total && !o->clt && o->n)) {
            /* waiting to reconnect */
            struct timespec ts;
            int64_t wait = o->next_attempt_ms - mf_clock_mono_ms();

            if (wait <= 0)
                continue;
            mf_clock_mono_deadline(wait, &ts);
            pthread_cond_timedwait(&o->cv, &o->mu, &ts);
            continue;
        }
        pthread_cond_wait(&o->cv, &o->mu);
    }
    pthread_mutex_unlock(&o->mu);
    if (o->clt)
        relpEngineCltDestruct(o->eng, &o->clt);
    return NULL;
}

/* ---- the output ----------------------------------------------------------- */

static enum mf_status
rl_send(struct mf_output *base, struct mf_event *ev, struct mf_buf *scratch)
{
    struct relp_out *o = (struct relp_out *)base;
    struct mf_syslog_info info;
    const char *id = ev->id[0] ? ev->id : "-";
    char *msg;

    if (mf_syslog_render(&o->fmt, base, o->max_size, ev, scratch, &info) != MF_OK)
        return mf_syslog_refuse(base, &o->mu, &o->st, &o->dropped_since_flush, id,
                                info.reason);
    msg = mf_xmalloc(scratch->len ? scratch->len : 1);
    memcpy(msg, scratch->data, scratch->len);
    pthread_mutex_lock(&o->mu);
    if (o->n >= o->max_in_flight) {
        o->st.retries++;
        pthread_mutex_unlock(&o->mu);
        free(msg);
        return MF_RETRY;
    }
    if (o->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 256;
        o->q = mf_xrealloc(o->q, o->cap * sizeof(*o->q));
    }
    o->q[o->n++] = (struct rl_entry){.msg = msg, .len = scratch->len};
    o->queued_total++;
    o->st.sent++;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
    return MF_OK;
}

static void
rl_poll(struct mf_output *base, int timeout_ms)
{
    struct relp_out *o = (struct relp_out *)base;
    struct timespec ts;

    /* the thread does the work: wait for room (or the timeout) */
    mf_clock_mono_deadline(timeout_ms, &ts);
    pthread_mutex_lock(&o->mu);
    if (o->n >= o->max_in_flight) {
        o->want_ack = o->queued_total;     /* room comes with acknowledgements */
        pthread_cond_broadcast(&o->cv);
        pthread_cond_timedwait(&o->cv, &o->mu, &ts);
    }
    pthread_mutex_unlock(&o->mu);
}

static int
rl_flush(struct mf_output *base, int timeout_ms)
{
    struct relp_out *o = (struct relp_out *)base;
    int64_t deadline = mf_clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    uint64_t target;
    int rc = 0;

    pthread_mutex_lock(&o->mu);
    target = o->queued_total;
    if (o->want_ack < target)
        o->want_ack = target;
    pthread_cond_broadcast(&o->cv);
    while (o->acked_total < target) {
        int64_t left = deadline - mf_clock_mono_ms();
        struct timespec ts;

        if (left <= 0)
            break;
        mf_clock_mono_deadline(left, &ts);
        pthread_cond_timedwait(&o->cv, &o->mu, &ts);
    }
    if (o->acked_total < target) {
        mf_log(MF_LOG_ERROR, "output=%s relp %s:%s: %" PRIu64 " records not acknowledged "
               "by the receiver within %d ms", o->conf->name, o->host, o->port,
               target - o->acked_total, timeout_ms);
        rc = -1;
    }
    if (o->dropped_since_flush) {
        o->dropped_since_flush = 0;
        rc = -1;
    }
    pthread_mutex_unlock(&o->mu);
    return rc;
}

static void
rl_stats(const struct mf_output *base, struct mf_output_stats *out)
{
    struct relp_out *o = (struct relp_out *)base;

    pthread_mutex_lock(&o->mu);
    *out = o->st;
    out->queued = o->n;
    pthread_mutex_unlock(&o->mu);
}

static void
rl_close(struct mf_output *base)
{
    struct relp_out *o = (struct relp_out *)base;

    if (!o)
        return;
    if (o->started) {
        size_t n;

        pthread_mutex_lock(&o->mu);
        n = o->n;
        pthread_mutex_unlock(&o->mu);
        if (n && rl_flush(base, (int)o->conf->flush_timeout_ms) != 0)
            mf_log(MF_LOG_ERROR, "output=%s relp %s:%s: records not acknowledged at "
                   "shutdown (see above)", o->conf->name, o->host, o->port);
        pthread_mutex_lock(&o->mu);
        o->quit = true;
        pthread_cond_broadcast(&o->cv);
        pthread_mutex_unlock(&o->mu);
        pthread_join(o->th, NULL);
    }
    for (size_t i = 0; i < o->n; i++)
        free(o->q[i].msg);
    free(o->q);
    if (o->eng)
        relpEngineDestruct(&o->eng);
    pthread_cond_destroy(&o->cv);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

const struct mf_output_ops mf_output_syslog_relp_ops = {
    .name = "syslog",
    .desc = "RFC 5424 / RFC 3164 messages over RELP",
    .options = &mf_syslog_sec,
    .flags = MF_OUTPUT_CONCURRENT,
    .send = rl_send,
    .poll = rl_poll,
    .flush = rl_flush,
    .stats = rl_stats,
    .close = rl_close,
};

struct mf_output *
mf_syslog_relp_open(const struct mf_output_conf *oc, const char *host, const char *port,
                    struct mf_err *err)
{
    const struct mf_syslog_conf *c = oc->plugin;
    struct relp_out *o = mf_xcalloc(1, sizeof(*o));
    pthread_condattr_t ca;
    int e;

    o->base.ops = &mf_output_syslog_relp_ops;
    o->conf = oc;
    snprintf(o->host, sizeof(o->host), "%s", host);
    snprintf(o->port, sizeof(o->port), "%s", port);
    o->max_size = c->max_message_size > 0 ? (size_t)c->max_message_size : 65536;
    o->max_in_flight = oc->max_in_flight > 0 ? (size_t)oc->max_in_flight : 10000;
    o->timeout_s = (unsigned)((oc->flush_timeout_ms + 999) / 1000);
    if (o->timeout_s < 1)
        o->timeout_s = 1;
    mf_syslog_fmt_init(&o->fmt, &o->ident, c, o->max_size);
    o->backoff_ms = RL_BACKOFF_MIN_MS;
    pthread_mutex_init(&o->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&o->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (relpEngineConstruct(&o->eng) != RELP_RET_OK ||
        relpEngineSetDbgprint(o->eng, dbg_none) != RELP_RET_OK ||
        relpEngineSetEnableCmd(o->eng, (unsigned char *)"syslog",
                               eRelpCmdState_Required) != RELP_RET_OK ||
        relpEngineSetOnErr(o->eng, on_err) != RELP_RET_OK ||
        relpEngineSetOnGenericErr(o->eng, on_generic_err) != RELP_RET_OK) {
        mf_err_set(err, "outputs '%s': cannot set up librelp", oc->name);
        rl_close(&o->base);
        return NULL;
    }
    if ((e = pthread_create(&o->th, NULL, relp_main, o)) != 0) {
        mf_err_set(err, "outputs '%s': cannot start the RELP thread: %s", oc->name,
                   strerror(e));
        rl_close(&o->base);
        return NULL;
    }
    o->started = true;
    return &o->base;
}
