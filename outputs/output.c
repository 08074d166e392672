/* output.c - the common output keys and the filter (their option tables),
 * filters, templates, and the file output (with its table). */
#include "output.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"
#include "file.h"
#include "log.h"
#include "mem.h"
#include "optcheck.h"
#include "units.h"

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

/* ---- configuration: the common keys and the filter -------------------- */


const struct mf_enum mf_output_areas[] = {
    {"identity_access", 0},
    {"data_protection", 1},
    {"collaboration_sharing", 2},
    {"device_posture", 3},
    {"monitoring_response", 4},
    {NULL, 0},
};

const struct mf_enum mf_content_type_choices[] = {
    {"Audit.AzureActiveDirectory", 0},
    {"Audit.Exchange", 1},
    {"Audit.SharePoint", 2},
    {"Audit.General", 3},
    {"DLP.All", 4},
    {NULL, 0},
};

static const struct mf_enum schema_choices[] = {
    {"ocsf", MF_CONF_SCHEMA_OCSF},
    {"ecs", MF_CONF_SCHEMA_ECS},
    {"raw", MF_CONF_SCHEMA_RAW},
    {NULL, 0},
};

/* Tag id syntax: area.name[.more], lower case. */
/* Tag id syntax: area.name[.more], lower case. */
static int
check_tag_id(const char *s, char *w, size_t n)
{
    static const char bad[] = "is not a tag id (e.g. identity.mfa_disabled)";
    const char *p;
    bool dot = false;

    if (!islower((unsigned char)*s))
        return mf_opt_why(w, n, bad);
    for (p = s; *p; p++) {
        if (*p == '.') {
            if (p[1] == '\0' || p[1] == '.')
                return mf_opt_why(w, n, bad);
            dot = true;
        } else if (!islower((unsigned char)*p) &&
                   !isdigit((unsigned char)*p) && *p != '_') {
            return mf_opt_why(w, n, bad);
        }
    }
    return dot ? 0 : mf_opt_why(w, n, bad);
}

#define FLT(f) offsetof(struct mf_filter_conf, f)
static const struct mf_option filter_opts[] = {
    {.name = "areas", .type = MF_OPT_STRLIST, .offset = FLT(areas),
     .choices = mf_output_areas,
     .desc = "Records with at least one tag in one of these areas."},
    {.name = "tags", .type = MF_OPT_STRLIST, .offset = FLT(tags),
     .check = check_tag_id,
     .desc = "Records with at least one of these tags (ids from the tag "
             "catalogue; unknown ids are a start-up error)."},
    {.name = "min_severity", .type = MF_OPT_INT, .offset = FLT(min_severity),
     .min = 1, .max = 5,
     .desc = "Records whose severity (highest tag severity, 1 when "
             "untagged) is at least this: 1 info, 2 low, 3 medium, 4 high, "
             "5 critical."},
    {.name = "content_types", .type = MF_OPT_STRLIST,
     .offset = FLT(content_types), .choices = mf_content_type_choices,
     .desc = "Records of these content types."},
    {.name = "tenants", .type = MF_OPT_STRLIST, .offset = FLT(tenants),
     .desc = "Records of these tenants (`name` or `id` of configured "
             "tenants)."},
    {.name = NULL},
};

static const struct mf_optsec filter_sec = {
    .name = "filter",
    .desc = "Optional: which records the output receives. Every criterion "
            "given must match; within one list any element matches. "
            "Without `filter` an output receives every record. A record an "
            "output filters out counts as acknowledged by that output.",
    .opts = filter_opts,
};

static void
output_check(const struct mf_optctx *c, void *base, const struct mf_jval *node,
             const char *path)
{
    struct mf_output_conf *o = base;
    const struct mf_jval *fnode = mf_jobj_get(node, "filter");

    (void)c;
    (void)path;
    o->line = node ? node->line : 1;
    o->filter.line = fnode ? fnode->line : o->line;
}

#define OUT(f) offsetof(struct mf_output_conf, f)
static const struct mf_option output_opts[] = {
    {.name = "name", .type = MF_OPT_STR, .offset = OUT(name),
     .flags = MF_OPT_REQUIRED, .check = mf_check_label,
     .desc = "Label of the output (logs, metrics, reload identity); unique."},
    {.name = "type", .type = MF_OPT_ENUM, .offset = OUT(type),
     .flags = MF_OPT_REQUIRED, .choices = mf_output_type_choices,
     .desc = "Kind of output; decides which other keys apply (see the "
             "tables below)."},
    {.name = "schema", .type = MF_OPT_ENUM, .def = "ocsf",
     .offset = OUT(schema), .choices = schema_choices,
     .desc = "Event format: OCSF 1.8.0, Elastic Common Schema, or the record "
             "unchanged plus an `m365fwd` object with the tags."},
    {.name = "keep_raw", .type = MF_OPT_BOOL, .def = "false",
     .offset = OUT(keep_raw),
     .desc = "Also carry the original record, as `normalize --keep-raw` "
             "does."},
    {.name = "enabled", .type = MF_OPT_BOOL, .def = "true",
     .offset = OUT(enabled),
     .desc = "`false` keeps the output configured but sends nothing to it "
             "(and does not wait for it). At least one output must be "
             "enabled."},
    {.name = "filter", .type = MF_OPT_SECTION, .offset = OUT(filter),
     .sub = &filter_sec, .desc = "Which records this output receives."},
    {.name = "max_in_flight", .type = MF_OPT_INT, .def = "10000",
     .offset = OUT(max_in_flight), .min = 1, .max = 10000000,
     .desc = "Records handed to the output and not yet acknowledged; at the "
             "limit collection pauses (backpressure), nothing is dropped."},
    {.name = "flush_timeout", .type = MF_OPT_DURATION, .def = "10s",
     .offset = OUT(flush_timeout_ms), .min = 0, .max = 10 * MF_MS_M,
     .desc = "Bound of every wait on the output: a record waiting for room "
             "(backpressure), an acknowledgement barrier, and at shutdown "
             "the outstanding acknowledgements. Records still "
             "unacknowledged are not checkpointed and are collected again."},
    {.name = NULL},
};

const struct mf_optsec mf_output_sec = {
    .name = "outputs[]",
    .desc = "Where normalized events go. Several outputs may run at once; "
            "the checkpoint moves only after every enabled output "
            "acknowledged every record it should receive.",
    .opts = output_opts,
    .size = sizeof(struct mf_output_conf),
    .disc = "type",
    .kinds = mf_output_kinds,
    .nkinds = MF_OUTPUT_NTYPES,
    .kind_offset = OUT(plugin),
    .key = "name",
    .noun = "output",
    .check = output_check,
};

size_t
mf_output_check_tags(const struct mf_output_list *outs, const char *file,
                     bool (*known)(const char *id, void *ud), void *ud,
                     struct mf_err *err)
{
    size_t added = 0;

    for (size_t i = 0; i < outs->n; i++) {
        const struct mf_output_conf *o = &outs->v[i];

        for (size_t k = 0; k < o->filter.tags.n; k++)
            if (!known(o->filter.tags.v[k], ud)) {
                mf_err_add(err, file, o->filter.line,
                           "outputs[%zu].filter.tags: unknown tag '%s'", i,
                           o->filter.tags.v[k]);
                added++;
            }
    }
    return added;
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

/* Delivery: a record is acknowledged once its line is written and
 * fsync'ed. A failed write or fsync (ENOSPC, EIO, ...) rolls the file back
 * to its last acknowledgement (no torn line, nothing unacknowledged left
 * behind), and every record sent since then fails with the next flush: the
 * caller sends them again (run: the blob comes again with backoff; import:
 * the barrier retries). A file deleted under the agent fails the records
 * written to it since the last acknowledgement; deleted or renamed
 * (rotated), the path is opened again for what follows. */
struct file_output {
    struct mf_output base;
    struct mf_file_out *f;
    struct mf_file_out *moved;   /* the file before a rotation, until the
                                    split flush that covers it is done */
    struct mf_output_stats st;
    bool failed;                 /* the batch since the last flush failed */
    int err;                     /* its errno */
    /* a split flush in progress (flush_start .. flush_done) */
    bool syncing;
    int sync_fd;
    off_t sync_end;
    uint64_t sync_queued;
    bool sync_failed;
    int sync_err;
};

static struct mf_output *
file_open(const struct mf_output_conf *conf, struct mf_err *err)
{
    struct file_output *fo = mf_xcalloc(1, sizeof(*fo));

    const struct mf_file_conf *fc = conf->plugin;

    fo->f = mf_file_out_open(fc->path, 1, 0);
    if (!fo->f) {
        mf_err_set(err, "outputs '%s': cannot open %s: %s", conf->name, fc->path,
                   strerror(errno));
        free(fo);
        return NULL;
    }
    return &fo->base;
}

/* The batch failed (errno e): the file goes back to its last
 * acknowledgement at once, so no partial line stays and no line of a
 * failed batch is ever acknowledged later. */
static void
file_fail(struct file_output *fo, int e, const char *what)
{
    struct mf_output *o = &fo->base;

    if (!fo->failed)
        mf_log(MF_LOG_ERROR, "output=%s %s %s: %s; the file is rolled back to its last "
               "complete acknowledged line, the records since then will be sent again",
               o->conf->name, what, mf_file_out_name(fo->f), strerror(e));
    fo->failed = true;
    fo->err = e;
    if (mf_file_out_rollback(fo->f) != 0)
        mf_log(MF_LOG_ERROR, "output=%s cannot roll %s back: %s", o->conf->name,
               mf_file_out_name(fo->f), strerror(errno));
}

/* The path no longer names our file: open it again. Returns what
 * mf_file_out_moved() said (2: the batch written to the deleted file is
 * gone). The file before a rotation is kept in fo->moved when keep. */
static int
file_reopen_moved(struct file_output *fo, bool keep)
{
    struct mf_output *o = &fo->base;
    const struct mf_file_conf *fc = o->conf->plugin;
    int moved = mf_file_out_moved(fo->f);
    struct mf_file_out *nf;

    if (moved == 0)
        return 0;
    nf = mf_file_out_open(fc->path, 1, 0);
    if (!nf) {
        mf_log(MF_LOG_ERROR, "output=%s %s was %s and cannot be opened again: %s",
               o->conf->name, fc->path, moved == 2 ? "deleted" : "moved", strerror(errno));
        return moved;
    }
    mf_log(MF_LOG_WARN, "output=%s %s was %s: opened again%s", o->conf->name, fc->path,
           moved == 2 ? "deleted" : "renamed or replaced (rotated)",
           moved == 2 ? "; the records written since the last acknowledgement will be "
                        "sent again" : "");
    if (moved == 1 && keep) {
        mf_file_out_flush(fo->f);        /* the end of the batch goes with it */
        fo->moved = fo->f;
    } else {
        if (moved == 1)
            mf_file_out_ack(fo->f);
        mf_file_out_close(fo->f);
    }
    fo->f = nf;
    return moved;
}

static enum mf_status
file_send(struct mf_output *o, struct mf_event *ev, struct mf_buf *scratch)
{
    struct file_output *fo = (struct file_output *)o;
    const struct mf_event_form *f = mf_output_form(o, ev);

    (void)scratch;
    if (!f)
        return MF_DROP;
    /* the first record of a batch: is the path still our file? (a batch
     * goes to the file that the path names when it begins) */
    if (fo->st.queued == 0 && !fo->failed && !fo->syncing)
        file_reopen_moved(fo, false);
    if (!fo->failed && mf_file_out_line(fo->f, f->text.data, f->text.len) != 0)
        file_fail(fo, errno, "cannot write to");
    fo->st.sent++;
    fo->st.queued++;
    return MF_OK;    /* accepted; the flush reports a failure */
}

/* The end of every flush: count what it covered; after a failure the next
 * batch starts afresh. */
static int
file_settle(struct file_output *fo, bool failed, uint64_t queued)
{
    struct mf_output *o = &fo->base;

    if (!failed) {
        fo->st.acked += queued;
        return 0;
    }
    fo->st.failed += queued;
    mf_log(MF_LOG_ERROR, "output=%s %" PRIu64 " records not acknowledged (%s): they will "
           "be sent again", o->conf->name, queued, strerror(fo->err ? fo->err : EIO));
    if (mf_file_out_rollback(fo->f) == 0)
        fo->failed = false;
    return -1;
}

static int
file_flush(struct mf_output *o, int timeout_ms)
{
    struct file_output *fo = (struct file_output *)o;
    uint64_t queued = fo->st.queued;

    (void)timeout_ms;
    fo->st.queued = 0;
    if (file_reopen_moved(fo, false) == 2 && !fo->failed) {
        fo->failed = true;
        fo->err = ENOENT;
    }
    if (!fo->failed && mf_file_out_ack(fo->f) != 0)
        file_fail(fo, errno, "cannot make the records durable in");
    return file_settle(fo, fo->failed, queued);
}

static void
file_flush_start(struct mf_output *o)
{
    struct file_output *fo = (struct file_output *)o;

    fo->sync_err = 0;
    if (file_reopen_moved(fo, true) == 2 && !fo->failed) {
        fo->failed = true;
        fo->err = ENOENT;
    }
    if (!fo->failed && (mf_file_out_flush(fo->f) != 0 ||
                        mf_file_out_written(fo->f, &fo->sync_end) != 0))
        file_fail(fo, errno, "cannot write to");
    fo->sync_failed = fo->failed;
    fo->sync_err = fo->err;
    fo->sync_fd = mf_file_out_fd(fo->f);
    fo->sync_queued = fo->st.queued;
    fo->st.queued = 0;
    fo->failed = false;
    fo->syncing = true;
}

static int
file_flush_sync(struct mf_output *o, int timeout_ms)
{
    struct file_output *fo = (struct file_output *)o;

    (void)timeout_ms;
    if (fo->sync_failed)
        return 0;
    if (fo->moved && mf_file_out_sync_fd(mf_file_out_fd(fo->moved)) != 0) {
        fo->sync_err = errno;
        return -1;
    }
    if (mf_file_out_sync_fd(fo->sync_fd) == 0)
        return 0;
    fo->sync_err = errno;
    return -1;
}

static int
file_flush_done(struct mf_output *o, int sync_rc)
{
    struct file_output *fo = (struct file_output *)o;

    fo->syncing = false;
    if (fo->moved) {
        mf_file_out_close(fo->moved);
        fo->moved = NULL;
    }
    if (sync_rc == 0 && !fo->sync_failed) {
        mf_file_out_set_acked(fo->f, fo->sync_end);
        return file_settle(fo, false, fo->sync_queued);
    }
    if (!fo->sync_failed) {
        /* the fsync failed: back to the last acknowledgement, which also
         * removes what the senders wrote meanwhile (their batch fails) */
        bool later = fo->st.queued > 0;

        file_fail(fo, fo->sync_err, "cannot make the records durable in");
        fo->failed = later;
    }
    fo->st.failed += fo->sync_queued;
    mf_log(MF_LOG_ERROR, "output=%s %" PRIu64 " records not acknowledged (%s): they will "
           "be sent again", o->conf->name, fo->sync_queued,
           strerror(fo->sync_err ? fo->sync_err : EIO));
    return -1;
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

    if (fo->moved)
        mf_file_out_close(fo->moved);
    if (fo->failed)
        mf_file_out_rollback(fo->f);
    else if (fo->st.queued && mf_file_out_ack(fo->f) != 0)
        mf_file_out_rollback(fo->f);
    mf_file_out_close(fo->f);
    free(fo);
}

#define FIL(f) offsetof(struct mf_file_conf, f)
static const struct mf_option file_opts[] = {
    {.name = "path", .type = MF_OPT_STR, .offset = FIL(path),
     .flags = MF_OPT_REQUIRED | MF_OPT_PATH | MF_OPT_UNIQUE,
     .desc = "File the events are appended to, one JSON object per line; "
             "`-` for standard output. A record is acknowledged after "
             "fsync. A failed write (disk full, I/O error) rolls the file "
             "back to its last complete acknowledged line and the records "
             "are sent again; a file deleted or rotated under the agent is "
             "opened again by its path."},
    {.name = NULL},
};

const struct mf_optsec mf_file_sec = {
    .name = "file",
    .desc = "Appends events to a file (or standard output), one JSON object "
            "per line.",
    .opts = file_opts,
    .size = sizeof(struct mf_file_conf),
};

const struct mf_output_ops mf_output_file_ops = {
    .name = "file",
    .desc = "JSON lines to a file or standard output",
    .options = &mf_file_sec,
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
