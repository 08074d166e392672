/* output.c - output registry, filters, templates, and the file output. */
#include "output.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"
#include "file.h"
#include "log.h"
#include "mem.h"

const struct mf_output_ops *
mf_output_ops_for(int type)
{
    switch (type) {
    case MF_OUTPUT_FILE:
        return &mf_output_file_ops;
    case MF_OUTPUT_KAFKA:
        return &mf_output_kafka_ops;
    case MF_OUTPUT_SYSLOG:
        return &mf_output_syslog_ops;
    }
    return NULL;
}

struct mf_output *
mf_output_open(const struct mf_output_conf *conf, char *err, size_t errsz)
{
    const struct mf_output_ops *ops = mf_output_ops_for(conf->type);
    struct mf_output *o;

    if (!ops) {
        snprintf(err, errsz, "outputs '%s': this output type is not available in this "
                 "build", conf->name);
        return NULL;
    }
    o = ops->open(conf, err, errsz);
    if (o) {
        o->ops = ops;
        o->conf = conf;
    }
    return o;
}

static bool
strlist_has(const struct mf_strlist *l, const char *s)
{
    for (size_t i = 0; s && i < l->n; i++)
        if (strcasecmp(l->v[i], s) == 0)
            return true;
    return false;
}

bool
mf_output_wants(const struct mf_output_conf *conf, const struct mf_event *ev)
{
    const struct mf_filter_conf *f = &conf->filter;

    if (f->min_severity > 0 && ev->severity < f->min_severity)
        return false;
    if (f->content_types.n && !strlist_has(&f->content_types, ev->content_type))
        return false;
    if (f->tenants.n && !strlist_has(&f->tenants, ev->tenant) &&
        !strlist_has(&f->tenants, ev->tenant_id))
        return false;
    if (f->areas.n) {
        bool hit = false;

        for (int a = 0; a < MF_AREA_COUNT && !hit; a++)
            hit = (ev->areas & (1u << a)) &&
                  strlist_has(&f->areas, mf_area_name((enum mf_area)a));
        if (!hit)
            return false;
    }
    if (f->tags.n) {
        bool hit = false;

        for (size_t i = 0; i < ev->n_tags && !hit; i++)
            hit = strlist_has(&f->tags, ev->tags[i].id);
        if (!hit)
            return false;
    }
    return true;
}

enum mf_status
mf_output_send_wait(struct mf_output *o, struct mf_event *ev, struct mf_buf *scratch,
                    int timeout_ms)
{
    int64_t t0 = mf_clock_mono_ms();
    enum mf_status st;

    for (;;) {
        st = mf_output_send(o, ev, scratch);
        if (st != MF_RETRY)
            return st;
        if (mf_clock_mono_ms() - t0 >= timeout_ms)
            return MF_RETRY;
        mf_output_poll(o, 50);      /* backpressure: serve the transport */
    }
}

/* ---------------------------------------------------------------------- */
/* Templates                                                              */
/* ---------------------------------------------------------------------- */

/* Kafka topic names: [a-zA-Z0-9._-] */
static bool
topic_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
}

size_t
mf_output_expand(const char *tmpl, const struct mf_event *ev, enum mf_schema schema,
                 bool topic, char *buf, size_t n)
{
    size_t o = 0;
    char num[24];

    if (n == 0)
        return 0;
    while (*tmpl && o + 1 < n) {
        const char *val = NULL;
        const char *close;

        if (*tmpl == '{' && (close = strchr(tmpl, '}')) != NULL) {
            size_t k = (size_t)(close - tmpl - 1);
            const char *name = tmpl + 1;

            if (k == 6 && !strncmp(name, "tenant", k))
                val = ev->tenant;
            else if (k == 9 && !strncmp(name, "tenant_id", k))
                val = ev->tenant_id;
            else if (k == 12 && !strncmp(name, "content_type", k))
                val = ev->content_type;
            else if (k == 4 && !strncmp(name, "area", k))
                val = ev->top ? mf_area_name(ev->top->area) : "none";
            else if (k == 9 && !strncmp(name, "class_uid", k)) {
                snprintf(num, sizeof(num), "%d", ev->class_uid);
                val = num;
            } else if (k == 6 && !strncmp(name, "schema", k))
                val = mf_schema_name(schema);
            else if (k == 2 && !strncmp(name, "id", k))
                val = ev->id;
            if (val) {
                for (; *val && o + 1 < n; val++)
                    buf[o++] = (topic && !topic_char(*val)) ? '_' : *val;
                tmpl = close + 1;
                continue;
            }
        }
        buf[o++] = *tmpl++;
    }
    buf[o] = '\0';
    return o;
}

/* ---------------------------------------------------------------------- */
/* The file output                                                        */
/* ---------------------------------------------------------------------- */

struct file_output {
    struct mf_output base;
    struct mf_file_out *f;
    struct mf_output_stats st;
    bool failed;                 /* a write failed since the last flush */
    /* a split flush in progress (flush_start .. flush_done) */
    int sync_fd;
    uint64_t sync_queued;
    bool sync_failed;
    int sync_err;
};

static struct mf_output *
file_open(const struct mf_output_conf *conf, char *err, size_t errsz)
{
    struct file_output *fo = mf_xcalloc(1, sizeof(*fo));

    fo->f = mf_file_out_open(conf->path, 1, 0);
    if (!fo->f) {
        snprintf(err, errsz, "outputs '%s': cannot open %s: %s", conf->name, conf->path,
                 strerror(errno));
        free(fo);
        return NULL;
    }
    return &fo->base;
}

static enum mf_status
file_send(struct mf_output *o, struct mf_event *ev, struct mf_buf *scratch)
{
    struct file_output *fo = (struct file_output *)o;
    const struct mf_event_form *f = mf_output_form(o, ev);

    (void)scratch;
    if (!f)
        return MF_DROP;
    if (mf_file_out_line(fo->f, f->text.data, f->text.len) != 0) {
        if (!fo->failed)
            mf_log(MF_LOG_ERROR, "output=%s write failed: %s", o->conf->name,
                   strerror(errno));
        fo->failed = true;
        fo->st.failed++;
        return MF_OK;    /* accepted; the flush reports the failure */
    }
    fo->st.sent++;
    fo->st.queued++;
    return MF_OK;
}

/* The end of every flush: count what the flush covered, and after a
 * failure start afresh. */
static int
file_settle(struct file_output *fo, int rc, int err, bool failed, uint64_t queued)
{
    struct mf_output *o = &fo->base;

    if (rc != 0)
        mf_log(MF_LOG_ERROR, "output=%s cannot make records durable: %s", o->conf->name,
               strerror(err));
    if (rc == 0 && !failed)
        fo->st.acked += queued;
    else
        fo->st.failed += queued;
    rc = (rc == 0 && !failed) ? 0 : -1;
    if (rc != 0) {
        /* a failed writer refuses every later line: start afresh, so the
         * records sent again can land once the cause (disk full...) is gone */
        struct mf_file_out *nf = mf_file_out_open(o->conf->path, 1, 0);

        if (nf) {
            mf_file_out_close(fo->f);
            fo->f = nf;
        }
    }
    return rc;
}

static int
file_flush(struct mf_output *o, int timeout_ms)
{
    struct file_output *fo = (struct file_output *)o;
    uint64_t queued = fo->st.queued;
    bool failed = fo->failed;
    int rc;

    (void)timeout_ms;
    rc = mf_file_out_ack(fo->f);
    fo->st.queued = 0;
    fo->failed = false;
    return file_settle(fo, rc, errno, failed, queued);
}

static void
file_flush_start(struct mf_output *o)
{
    struct file_output *fo = (struct file_output *)o;

    fo->sync_err = 0;
    fo->sync_failed = fo->failed;
    if (!fo->sync_failed && mf_file_out_flush(fo->f) != 0) {
        fo->sync_failed = true;
        mf_log(MF_LOG_ERROR, "output=%s write failed: %s", o->conf->name, strerror(errno));
    }
    fo->sync_fd = mf_file_out_fd(fo->f);
    fo->sync_queued = fo->st.queued;
    fo->st.queued = 0;
    fo->failed = false;
}

static int
file_flush_sync(struct mf_output *o, int timeout_ms)
{
    struct file_output *fo = (struct file_output *)o;

    (void)timeout_ms;
    if (fo->sync_failed || mf_file_out_sync_fd(fo->sync_fd) == 0)
        return 0;
    fo->sync_err = errno;
    return -1;
}

static int
file_flush_done(struct mf_output *o, int sync_rc)
{
    struct file_output *fo = (struct file_output *)o;

    return file_settle(fo, sync_rc, fo->sync_err, fo->sync_failed, fo->sync_queued);
}

static void
file_stats(const struct mf_output *o, struct mf_output_stats *out)
{
    *out = ((const struct file_output *)o)->st;
}

static void
file_close(struct mf_output *o)
{
    struct file_output *fo = (struct file_output *)o;

    mf_file_out_close(fo->f);
    free(fo);
}

const struct mf_output_ops mf_output_file_ops = {
    .type = "file",
    .open = file_open,
    .send = file_send,
    .poll = NULL,
    .flush = file_flush,
    .flush_start = file_flush_start,
    .flush_sync = file_flush_sync,
    .flush_done = file_flush_done,
    .stats = file_stats,
    .close = file_close,
};
