/* report_feed.c - record facts for the review, and the rollup of `run` and
 * `import`. See report_feed.h. */
#include "report_feed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent_conf.h"
#include "clock.h"
#include "deliver.h"
#include "log.h"
#include "mem.h"
#include "units.h"

/* ---- the `report:` section ------------------------------------------------- */

#define REP(f) offsetof(struct mf_report_conf, f)
static const struct mf_option report_opts[] = {
    {.name = "rollup", .type = MF_OPT_BOOL, .def = "true", .offset = REP(rollup),
     .desc = "Count every delivered record for `m365fwd report -c` in "
             "`state_dir/report.db` (per tenant, day, area, tag, actor and "
             "object; sized by distinct keys, not records). `false` saves "
             "that work; `report` then reads exports only."},
    {.name = "retention", .type = MF_OPT_DURATION, .def = "400d",
     .offset = REP(retention_ms), .min = MF_MS_D, .max = 3660 * MF_MS_D,
     .desc = "Days kept in the rollup; older days are deleted (at most once "
             "a day)."},
    {.name = NULL},
};

const struct mf_optsec mf_report_sec = {
    .name = "report",
    .desc = "The rollup `run` and `import` keep for the security and "
            "governance review (`m365fwd report -c`, docs/report.md).",
    .opts = report_opts,
    .size = sizeof(struct mf_report_conf),
};

/* ---- the adapter ------------------------------------------------------------- */

static bool
op_is(const char *op, const char *const *names)
{
    for (size_t i = 0; names[i]; i++)
        if (strcasecmp(op, names[i]) == 0)
            return true;
    return false;
}

static bool
has_tag(const struct mf_event *ev, const char *id)
{
    for (size_t i = 0; i < ev->n_tags; i++)
        if (strcmp(ev->tags[i].id, id) == 0)
            return true;
    return false;
}

/* Any ID of an Actor/Target list (or the string itself) containing needle. */
static bool
ids_contain(const struct mf_record *rec, const char *field, const char *needle)
{
    const struct mf_jval *v = mf_record_get(rec, field);

    if (mf_jis_str(v))
        return strcasestr(v->u.s, needle) != NULL;
    for (size_t i = 0; mf_jis_arr(v) && i < v->len; i++) {
        const char *id = mf_jstrv(mf_jobj_geti(v->u.items[i], "ID"));

        if (id && strcasestr(id, needle))
            return true;
    }
    return false;
}

/* "true" / "false" of a device property: 1, 0, or -1 when absent. */
static int
device_flag(const struct mf_record *rec, const char *path)
{
    const struct mf_jval *v = mf_record_get(rec, path);
    bool b;

    return v && mf_jget_bool(v, &b) == 0 ? b : -1;
}

static void
signin_facts(const struct mf_record *rec, const struct mf_event *ev, uint32_t *f)
{
    const char *err = mf_record_str(rec, "ErrorNumber"), *req;
    bool failed = strcasecmp(rec->operation, "UserLoginFailed") == 0 ||
                  rec->outcome == MF_OUTCOME_FAILURE || (err && *err && strcmp(err, "0"));
    int managed = -1, v;

    if (!err)
        err = "";
    *f |= 1u << MF_FACT_SIGNIN;
    *f |= 1u << (failed ? MF_FACT_SIGNIN_FAILED : MF_FACT_SIGNIN_OK);
    /* MFA, only where the record says so: Entra's authentication
     * requirement, or an MFA challenge/denial code */
    req = mf_record_str(rec, "AuthenticationRequirement");
    if (!req)
        req = mf_record_str(rec, "ExtendedProperties.AuthenticationRequirement");
    if (req && strcasestr(req, "multiFactor"))
        *f |= 1u << MF_FACT_SIGNIN_MULTI_FACTOR;
    else if (req && strcasestr(req, "singleFactor") && !failed)
        *f |= 1u << MF_FACT_SIGNIN_SINGLE_FACTOR;
    if (!strcmp(err, "50074") || !strcmp(err, "50076") || !strcmp(err, "50079") ||
        !strcmp(err, "500121"))
        *f |= 1u << MF_FACT_SIGNIN_MULTI_FACTOR;
    if (!strcmp(err, "500121"))
        *f |= 1u << MF_FACT_MFA_DENIED;
    if (has_tag(ev, "identity.legacy_or_ropc_auth"))
        *f |= 1u << MF_FACT_SIGNIN_LEGACY;
    if ((v = device_flag(rec, "DeviceProperties.IsCompliantAndManaged")) >= 0)
        managed = v;
    if ((v = device_flag(rec, "DeviceProperties.IsCompliant")) >= 0)
        managed = managed < 0 ? v : managed && v;
    if ((v = device_flag(rec, "DeviceProperties.IsManaged")) >= 0)
        managed = managed < 0 ? v : managed && v;
    if (managed >= 0)
        *f |= 1u << MF_FACT_SIGNIN_DEVICE_KNOWN;
    if (managed == 0)
        *f |= 1u << MF_FACT_SIGNIN_UNMANAGED;
}

/* The facts of one record (the fact table of docs/report.md). Most
 * records are none of these operations: they are told apart by the
 * operation's first letter before any comparison. */
static uint32_t
record_facts(const struct mf_record *rec, const struct mf_event *ev)
{
    static const char *const signins[] = {"UserLoggedIn", "UserLoginFailed", NULL};
    static const char *const downloads[] = {"FileDownloaded", "FileSyncDownloadedFull",
                                            "FileSyncDownloadedPartial", NULL};
    static const char *const deletes[] = {"FileDeleted", "FileRecycled",
                                          "FileDeletedFirstStageRecycleBin",
                                          "FileDeletedSecondStageRecycleBin",
                                          "FileVersionsAllDeleted", NULL};
    static const char *const legacy_mail[] = {"POP3", "IMAP4", "Protocol=SMTP", NULL};
    const char *op = rec->operation ? rec->operation : "";
    const char *cis;
    uint32_t f = 0;

    switch (op[0] | 0x20) {   /* ASCII lower case */
    case 'u':
        if (op_is(op, signins))
            signin_facts(rec, ev, &f);
        break;
    case 'm':
        if (strcasecmp(op, "MailboxLogin") == 0 &&
            (cis = mf_record_str(rec, "ClientInfoString")))
            for (size_t i = 0; legacy_mail[i]; i++)
                if (strcasestr(cis, legacy_mail[i]))
                    f |= 1u << MF_FACT_SIGNIN_LEGACY;
        break;
    case 'd':
        if (strcasecmp(op, "Delete user.") == 0 &&
            (ids_contain(rec, "ObjectId", "#EXT#") || ids_contain(rec, "Target", "#EXT#")))
            f |= 1u << MF_FACT_GUEST_REMOVED;
        break;
    case 'f':
        if (op_is(op, downloads))
            f |= 1u << MF_FACT_FILE_DOWNLOAD;
        else if (op_is(op, deletes))
            f |= 1u << MF_FACT_FILE_DELETED;
        break;
    case 'a':
        if (strcasecmp(op, "AlertUpdated") == 0)
            f |= 1u << MF_FACT_ALERT_FOLLOWUP;
        break;
    default:
        break;
    }
    if (strcasestr(op, "SensitivityLabel") && !strcasestr(op, "Removed"))
        f |= 1u << MF_FACT_LABEL_APPLIED;
    if ((strcasestr(op, "review") && strcasestr(op, "access")) ||
        (rec->workload && strcasecmp(rec->workload, "AccessReviews") == 0))
        f |= 1u << MF_FACT_ACCESS_REVIEW;
    if (ev->n_tags) {
        if (has_tag(ev, "identity.privileged_role_assigned")) {
            f |= 1u << MF_FACT_ROLE_ASSIGNED;
            if (strcasestr(op, "eligible") || strcasestr(op, "PIM") ||
                (rec->user_id && strcasestr(rec->user_id, "MS-PIM")) ||
                ids_contain(rec, "Actor", "MS-PIM"))
                f |= 1u << MF_FACT_ROLE_ASSIGNED_PIM;
        }
        if (has_tag(ev, "monitor.alert_updated"))
            f |= 1u << MF_FACT_ALERT_FOLLOWUP;
    }
    return f;
}

/* ObjectId, else what names the object in other record shapes. */
static const char *
record_object(const struct mf_event *ev, const struct mf_record *rec)
{
    static const char *const paths[] = {"SourceFileName", "MailboxOwnerUPN",
                                        "Parameters.Identity", "Item.Subject", NULL};

    if (ev->object && *ev->object)
        return ev->object;
    for (size_t i = 0; paths[i]; i++) {
        const char *s = mf_record_str(rec, paths[i]);

        if (s && *s)
            return s;
    }
    return NULL;
}

static const char *
nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

void
mf_report_rec_fill(struct mf_report_rec *out, const struct mf_event *ev,
                   const struct mf_record *rec, const char *class_name)
{
    memset(out, 0, sizeof(*out));
    out->time_ms = ev->time_ms;
    out->tenant_id = nonempty(ev->tenant_id);
    out->tenant = nonempty(ev->tenant) ? ev->tenant : out->tenant_id;
    out->content_type = ev->content_type;
    out->workload = ev->workload;
    out->operation = ev->operation;
    out->actor = ev->user;
    out->object = record_object(ev, rec);
    out->client_ip = nonempty(ev->client_ip);
    out->user_agent = ev->user_agent;
    out->record_id = nonempty(ev->id);
    out->outcome = ev->outcome == MF_OUTCOME_SUCCESS ? MF_ROUTCOME_SUCCESS
                   : ev->outcome == MF_OUTCOME_FAILURE ? MF_ROUTCOME_FAILURE
                   : MF_ROUTCOME_UNKNOWN;
    out->class_uid = ev->class_uid;
    out->class_name = class_name;
    for (size_t i = 0; i < ev->n_tags && i < MF_REPORT_MAX_TAGS; i++) {
        const struct mf_event_tag *t = &ev->tags[i];

        out->tags[out->n_tags].id = t->id;
        out->tags[out->n_tags].area = mf_report_area_parse(mf_area_name(t->area));
        out->tags[out->n_tags].severity = t->severity;
        out->n_tags++;
        if (out->tags[i].severity > out->severity)
            out->severity = out->tags[i].severity;
        if (strcmp(t->id, "monitor.collection_gap") == 0) {
            int64_t ms;

            out->gap_content_type = mf_record_str(rec, "ContentType");
            out->gap_reason = mf_record_str(rec, "Reason");
            if (mf_time_parse(mf_record_str(rec, "GapStart"), &ms) == 0)
                out->gap_start_ms = ms;
            if (mf_time_parse(mf_record_str(rec, "GapEnd"), &ms) == 0)
                out->gap_end_ms = ms;
            if (!out->gap_start_ms && !out->gap_end_ms)
                out->gap_start_ms = out->gap_end_ms = ev->time_ms;
        }
    }
    out->facts = record_facts(rec, ev);
}

/* ---- the catalogue ------------------------------------------------------------ */

void
mf_report_catalog_init(struct mf_report_catalog *cat, const struct mf_tagdb *db)
{
    size_t n = mf_tagdb_count(db);
    struct mf_report_tagdef *defs = mf_xcalloc(n + 1, sizeof(*defs));

    for (size_t i = 0; i < n; i++) {
        const struct mf_tag *t = mf_tagdb_at(db, i);

        defs[i] = (struct mf_report_tagdef){t->id, t->title,
                                            mf_report_area_parse(mf_area_name(t->area)),
                                            t->severity};
    }
    cat->tags = defs;
    cat->n = n;
}

void
mf_report_catalog_free(struct mf_report_catalog *cat)
{
    free((void *)cat->tags);
    cat->tags = NULL;
    cat->n = 0;
}

/* ---- the feed ------------------------------------------------------------------ */

struct mf_report_feed {
    const struct mf_config *cfg;
    const struct mf_normalizer *norm;
    struct mf_report_catalog cat;
    struct mf_report_tables *tables;
    struct mf_rollup *rollup;
};

struct mf_report_feed *
mf_report_feed_open(const struct mf_config *cfg, const struct mf_normalizer *norm)
{
    struct mf_report_feed *f;
    struct mf_report_err err;

    if (!cfg->report.rollup)
        return NULL;
    f = mf_xcalloc(1, sizeof(*f));
    f->cfg = cfg;
    f->norm = norm;
    mf_report_catalog_init(&f->cat, mf_normalizer_tags(norm));
    f->tables = mf_report_tables_load(NULL, NULL, 0, NULL, NULL, 0, &f->cat, &err);
    if (f->tables) {
        struct mf_rollup_opts o = {
            .flush_interval_ms = MF_ROLLUP_DEFAULT_FLUSH_MS,
            .retention_days = (int)(cfg->report.retention_ms / MF_MS_D),
        };

        f->rollup = mf_rollup_open(cfg->state_dir, f->tables, &o, &err);
    }
    if (!f->rollup) {
        mf_log(MF_LOG_ERROR, "report rollup disabled: %s (delivery goes on; `report -c` "
               "will not see these records)", err.msg);
        mf_report_feed_close(f);
        return NULL;
    }
    return f;
}

void
mf_report_feed_record(struct mf_report_feed *f, const void *batch, const struct mf_nctx *c,
                      const struct mf_event *ev)
{
    struct mf_report_rec r;

    if (!f)
        return;
    mf_report_rec_fill(&r, ev, &c->rec, NULL);
    mf_rollup_add(f->rollup, batch, &r);
}

int
mf_report_feed_commit(struct mf_report_feed *f, const void *const *batches, size_t n)
{
    return f ? mf_rollup_commit(f->rollup, batches, n) : 0;
}

void
mf_report_feed_discard(struct mf_report_feed *f, const void *batch)
{
    if (f)
        mf_rollup_discard(f->rollup, batch);
}

void
mf_report_feed_blobs(struct mf_report_feed *f, const struct mf_dl_blob *list)
{
    const void **keys;
    size_t n = 0, cap = 0;

    if (!f)
        return;
    for (const struct mf_dl_blob *b = list; b; b = b->next)
        cap++;
    keys = mf_xcalloc(cap + 1, sizeof(*keys));
    for (const struct mf_dl_blob *b = list; b; b = b->next) {
        if (b->rc == 0)
            keys[n++] = b;
        else
            mf_rollup_discard(f->rollup, b);
    }
    mf_rollup_commit(f->rollup, keys, n);
    free(keys);
}

void
mf_report_feed_close(struct mf_report_feed *f)
{
    if (!f)
        return;
    if (f->rollup) {
        mf_rollup_commit(f->rollup, NULL, 0);
        mf_rollup_close(f->rollup);
    }
    mf_report_tables_destroy(f->tables);
    mf_report_catalog_free(&f->cat);
    free(f);
}
