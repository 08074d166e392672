/* render.c - the review as JSON (the document itself) or Markdown (for
 * tickets); the HTML renderer is render_html.c. Every renderer reads the
 * same document, so their numbers cannot disagree. */
#include "render_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const struct mf_jval empty_arr = {.type = MF_JARR};

const char *
mf_rj_str(const struct mf_jval *o, const char *k)
{
    return mf_jstrv(mf_jobj_get(o, k));
}

int64_t
mf_rj_int(const struct mf_jval *o, const char *k)
{
    int64_t v = 0;

    if (mf_jget_int(mf_jobj_get(o, k), &v) != 0)
        v = 0;
    return v;
}

const struct mf_jval *
mf_rj_obj(const struct mf_jval *o, const char *k)
{
    const struct mf_jval *v = mf_jobj_get(o, k);

    return mf_jis_obj(v) ? v : NULL;
}

struct mf_jval *const *
mf_rj_arr(const struct mf_jval *o, const char *k, size_t *n)
{
    const struct mf_jval *v = mf_jobj_get(o, k);

    if (!mf_jis_arr(v))
        v = &empty_arr;
    *n = v->len;
    return v->u.items;
}

const char *
mf_rsev_name(int64_t sev)
{
    static const char *const names[] = {"none", "info", "low", "medium", "high", "critical"};

    return sev >= 1 && sev <= 5 ? names[sev] : names[0];
}

int
mf_report_format_parse(const char *s)
{
    static const char *const names[] = {"html", "md", "json"};

    for (int i = 0; s && i < 3; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    if (s && strcasecmp(s, "markdown") == 0)
        return MF_RFMT_MD;
    return -1;
}

int
mf_report_render(struct mf_buf *out, const struct mf_jval *doc, enum mf_report_format f)
{
    switch (f) {
    case MF_RFMT_JSON:
        if (mf_json_write(out, doc) != 0)
            return -1;
        return mf_buf_appendc(out, '\n');
    case MF_RFMT_MD:
        return mf_render_md(out, doc);
    default:
        return mf_render_html(out, doc);
    }
}

/* ---- Markdown -------------------------------------------------------------- */

/* A value from a record in a table cell: nothing it holds may become
 * markup (no HTML, no link, no emphasis, no cell break). */
static void
md_text(struct mf_buf *b, const char *s)
{
    if (!s || !*s) {
        mf_buf_appends(b, "-");
        return;
    }
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '<')
            mf_buf_appends(b, "&lt;");
        else if (c == '>')
            mf_buf_appends(b, "&gt;");
        else if (c == '&')
            mf_buf_appends(b, "&amp;");
        else if (c < 0x20 || c == 0x7f)
            mf_buf_appendc(b, ' ');
        else if (strchr("\\`*_[]{}()#+!|~", c))
            mf_buf_printf(b, "\\%c", c);
        else
            mf_buf_appendc(b, (char)c);
    }
}

/* How a Markdown table cell shows its member of the row object. */
enum md_kind {
    MD_STR,    /* a string of ours (title, name, level, day) as is; "-" absent */
    MD_TEXT,   /* a value from a record, through md_text */
    MD_CODE,   /* an identifier of ours, in backticks */
    MD_INT,
    MD_SEV,    /* a severity 1..5, by name */
    MD_IDS,    /* a list of objects: their "id" members through md_text,
                  comma separated */
};

struct md_col {
    const char *title;   /* NULL ends a column list */
    const char *key;
    enum md_kind kind;
};

/* The cell of column c for the row object row. */
static void
md_cell(struct mf_buf *b, const struct mf_jval *row, const struct md_col *c)
{
    const char *s;
    struct mf_jval *const *x;
    size_t n;

    switch (c->kind) {
    case MD_STR:
        s = mf_rj_str(row, c->key);
        mf_buf_appends(b, s ? s : "-");
        break;
    case MD_TEXT:
        md_text(b, mf_rj_str(row, c->key));
        break;
    case MD_CODE:
        s = mf_rj_str(row, c->key);
        mf_buf_printf(b, "`%s`", s ? s : "");
        break;
    case MD_INT:
        mf_buf_printf(b, "%lld", (long long)mf_rj_int(row, c->key));
        break;
    case MD_SEV:
        mf_buf_appends(b, mf_rsev_name(mf_rj_int(row, c->key)));
        break;
    case MD_IDS:
        x = mf_rj_arr(row, c->key, &n);
        for (size_t k = 0; k < n; k++) {
            if (k)
                mf_buf_appends(b, ", ");
            md_text(b, mf_rj_str(x[k], "id"));
        }
        break;
    }
}

/* A table: the header of cols, then one line per row object. */
static void
md_table(struct mf_buf *b, const struct md_col *cols, struct mf_jval *const *rows, size_t n)
{
    const struct md_col *c;

    for (c = cols; c->title; c++)
        mf_buf_printf(b, "| %s ", c->title);
    mf_buf_appends(b, "|\n");
    for (c = cols; c->title; c++)
        mf_buf_appends(b, "|---");
    mf_buf_appends(b, "|\n");
    for (size_t i = 0; i < n; i++) {
        for (c = cols; c->title; c++) {
            mf_buf_appends(b, "| ");
            md_cell(b, rows[i], c);
            mf_buf_appendc(b, ' ');
        }
        mf_buf_appends(b, "|\n");
    }
}

/* The columns of each table of the review. */
static const struct md_col md_event_cols[] = {
    {"Time", "time", MD_TEXT}, {"Severity", "severity", MD_SEV},
    {"Tenant", "tenant", MD_TEXT}, {"Actor", "actor", MD_TEXT},
    {"Operation", "operation", MD_TEXT}, {"Object", "object", MD_TEXT},
    {"Tags", "tags", MD_IDS}, {NULL, NULL, 0},
};
static const struct md_col md_top_cols[] = {
    {"Name", "name", MD_TEXT}, {"Tagged records", "records", MD_INT},
    {"Risk", "risk", MD_INT}, {"Max severity", "max_severity", MD_SEV},
    {NULL, NULL, 0},
};
static const struct md_col md_tag_cols[] = {
    {"Tag", "id", MD_CODE}, {"What", "title", MD_TEXT}, {"Count", "count", MD_INT},
    {"Max severity", "max_severity", MD_SEV}, {NULL, NULL, 0},
};
static const struct md_col md_exposure_cols[] = {
    {"Area", "title", MD_STR}, {"Score", "score", MD_INT}, {"Level", "level", MD_STR},
    {"Tag hits", "hits", MD_INT}, {NULL, NULL, 0},
};
static const struct md_col md_check_cols[] = {
    {"Check", "title", MD_STR}, {"Area", "area", MD_STR}, {"Status", "status", MD_STR},
    {"Evidence", "evidence", MD_INT}, {NULL, NULL, 0},
};
static const struct md_col md_ct_cols[] = {
    {"Content type", "content_type", MD_STR}, {"Records", "records", MD_INT},
    {"Days", "days", MD_INT}, {"First", "first_day", MD_STR}, {"Last", "last_day", MD_STR},
    {NULL, NULL, 0},
};
static const struct md_col md_gap_cols[] = {
    {"Tenant", "tenant", MD_TEXT}, {"Content type", "content_type", MD_TEXT},
    {"Start", "start", MD_STR}, {"End", "end", MD_STR}, {"Reason", "reason", MD_TEXT},
    {NULL, NULL, 0},
};

static void
md_events(struct mf_buf *b, const struct mf_jval *o, const char *key)
{
    size_t n;
    struct mf_jval *const *ev = mf_rj_arr(o, key, &n);

    if (!n) {
        mf_buf_appends(b, "_None._\n\n");
        return;
    }
    md_table(b, md_event_cols, ev, n);
    mf_buf_appendc(b, '\n');
}

static void
md_top(struct mf_buf *b, const struct mf_jval *o, const char *key, const char *what)
{
    size_t n;
    struct mf_jval *const *t = mf_rj_arr(o, key, &n);

    mf_buf_printf(b, "**Riskiest %s**", what);
    if (!n) {
        mf_buf_appends(b, ": none.\n\n");
        return;
    }
    mf_buf_appends(b, "\n\n");
    md_table(b, md_top_cols, t, n);
    mf_buf_appendc(b, '\n');
}

static void
md_area(struct mf_buf *b, const struct mf_jval *ar)
{
    size_t n;
    struct mf_jval *const *x;

    mf_buf_printf(b, "### %s: score %lld (%s)\n\n", mf_rj_str(ar, "title"),
                  (long long)mf_rj_int(ar, "score"), mf_rj_str(ar, "level"));
    mf_buf_printf(b, "%lld tag hits, %lld points. Weekly scores:",
                  (long long)mf_rj_int(ar, "hits"), (long long)mf_rj_int(ar, "points"));
    x = mf_rj_arr(ar, "trend", &n);
    for (size_t i = 0; i < n; i++)
        mf_buf_printf(b, " %s %lld%s", mf_rj_str(x[i], "to"), (long long)mf_rj_int(x[i], "score"),
                      i + 1 < n ? "," : ".");
    mf_buf_appends(b, "\n\n");
    x = mf_rj_arr(ar, "tags", &n);
    if (n) {
        md_table(b, md_tag_cols, x, n);
        mf_buf_appendc(b, '\n');
    } else {
        mf_buf_appends(b, "No risk tag in this area.\n\n");
    }
    md_top(b, ar, "actors", "actors");
    md_top(b, ar, "objects", "objects");
    mf_buf_appends(b, "**Highest-severity events**\n\n");
    md_events(b, ar, "events");
    x = mf_rj_arr(ar, "findings", &n);
    mf_buf_printf(b, "**Aggregate findings** (%lld)%s\n", (long long)mf_rj_int(ar, "findings_total"),
                  n ? "" : ": none.");
    for (size_t i = 0; i < n; i++) {
        mf_buf_printf(b, "- %s, %s (%s): ", mf_rj_str(x[i], "title"), mf_rj_str(x[i], "day"),
                      mf_rsev_name(mf_rj_int(x[i], "severity")));
        md_text(b, mf_rj_str(x[i], "text"));
        mf_buf_appendc(b, '\n');
    }
    mf_buf_appendc(b, '\n');
}

/* Title, period and source, the tenants' table and the summary line. */
static void
md_head(struct mf_buf *b, const struct mf_jval *doc)
{
    const struct mf_jval *per = mf_rj_obj(doc, "period"), *sum = mf_rj_obj(doc, "summary");
    const struct mf_jval *cks = mf_rj_obj(sum, "checks");
    struct mf_jval *const *x;
    size_t n;

    mf_buf_appends(b, "# Microsoft 365 security and governance review\n\n");
    mf_buf_printf(b, "Period %s to %s (%lld days). Generated %s by %s from ",
                  mf_rj_str(per, "from"), mf_rj_str(per, "to"), (long long)mf_rj_int(per, "days"),
                  mf_rj_str(doc, "generated_at"), mf_rj_str(doc, "generator"));
    mf_buf_appends(b, strcmp(mf_rj_str(mf_rj_obj(doc, "source"), "kind") ?
                             mf_rj_str(mf_rj_obj(doc, "source"), "kind") : "", "rollup") == 0
                      ? "the agent's rollup.\n\n" : "an export.\n\n");
    x = mf_rj_arr(doc, "tenants", &n);
    mf_buf_appends(b, "| Tenant | Records | Tagged |");
    for (int a = 0; a < MF_RAREA_COUNT; a++)
        mf_buf_printf(b, " %s |", mf_report_area_title(a));
    mf_buf_appends(b, "\n|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < n; i++) {
        mf_buf_appends(b, "| ");
        md_text(b, mf_rj_str(x[i], "name"));
        mf_buf_printf(b, " | %lld | %lld |", (long long)mf_rj_int(x[i], "records"),
                      (long long)mf_rj_int(x[i], "tagged"));
        for (int a = 0; a < MF_RAREA_COUNT; a++)
            mf_buf_printf(b, " %lld |", (long long)mf_rj_int(mf_rj_obj(x[i], "scores"),
                                                               mf_report_area_name(a)));
        mf_buf_appendc(b, '\n');
    }
    mf_buf_printf(b, "\n**Summary:** %lld records, %lld with risk tags; %lld checks found a "
                  "problem, %lld found the protection in use, %lld had no evidence; %lld "
                  "aggregate findings; %lld actions planned.\n\n",
                  (long long)mf_rj_int(sum, "records"), (long long)mf_rj_int(sum, "tagged"),
                  (long long)mf_rj_int(cks, "finding"), (long long)mf_rj_int(cks, "ok"),
                  (long long)mf_rj_int(cks, "no_evidence"),
                  (long long)mf_rj_int(sum, "aggregate_findings"),
                  (long long)mf_rj_int(sum, "actions"));
}

/* Section 1: the score per area, then each area in detail. */
static void
md_exposure(struct mf_buf *b, const struct mf_jval *doc)
{
    struct mf_jval *const *x;
    size_t n;

    mf_buf_appends(b, "## 1. Exposure today\n\n");
    mf_buf_printf(b, "Score: %s.\n\n", mf_rj_str(mf_rj_obj(doc, "exposure"), "formula"));
    x = mf_rj_arr(mf_rj_obj(doc, "exposure"), "areas", &n);
    md_table(b, md_exposure_cols, x, n);
    mf_buf_appendc(b, '\n');
    for (size_t i = 0; i < n; i++)
        md_area(b, x[i]);
}

/* Section 2: the checks' table, then each check's text (and examples for
 * a finding). */
static void
md_checks(struct mf_buf *b, const struct mf_jval *doc)
{
    struct mf_jval *const *x;
    size_t n;

    mf_buf_appends(b, "## 2. Protections owned but not used properly\n\n");
    x = mf_rj_arr(doc, "checks", &n);
    md_table(b, md_check_cols, x, n);
    mf_buf_appendc(b, '\n');
    for (size_t i = 0; i < n; i++) {
        mf_buf_printf(b, "### %s (%s)\n\n", mf_rj_str(x[i], "title"), mf_rj_str(x[i], "status"));
        md_text(b, mf_rj_str(x[i], "text"));
        mf_buf_appends(b, "\n\n");
        if (!strcmp(mf_rj_str(x[i], "status") ? mf_rj_str(x[i], "status") : "", "finding")) {
            mf_buf_appends(b, "Examples:\n\n");
            md_events(b, x[i], "examples");
        }
    }
}

/* Section 3: the actions per horizon, then each area's status. */
static void
md_plan(struct mf_buf *b, const struct mf_jval *plan)
{
    struct mf_jval *const *x;
    size_t n;

    mf_buf_appends(b, "## 3. 30/60/90-day plan\n\n");
    x = mf_rj_arr(plan, "horizons", &n);
    for (size_t i = 0; i < n; i++) {
        size_t na;
        struct mf_jval *const *acts = mf_rj_arr(x[i], "actions", &na);

        mf_buf_printf(b, "### Within %lld days\n\n", (long long)mf_rj_int(x[i], "days"));
        if (!na)
            mf_buf_appends(b, "_No action._\n\n");
        for (size_t k = 0; k < na; k++) {
            mf_buf_printf(b, "%lld. **%s** (%s; owner: %s; effort: %s). Evidence: %s, %lld. ",
                          (long long)mf_rj_int(acts[k], "priority"), mf_rj_str(acts[k], "action"),
                          mf_rj_str(acts[k], "area"), mf_rj_str(acts[k], "owner"),
                          mf_rj_str(acts[k], "effort"), mf_rj_str(acts[k], "finding"),
                          (long long)mf_rj_int(acts[k], "evidence"));
            md_text(b, mf_rj_str(acts[k], "why"));
            mf_buf_appendc(b, '\n');
        }
        mf_buf_appendc(b, '\n');
    }
    x = mf_rj_arr(plan, "areas", &n);
    for (size_t i = 0; i < n; i++) {
        mf_buf_printf(b, "- **%s** (%s): ", mf_rj_str(x[i], "title"), mf_rj_str(x[i], "status"));
        md_text(b, mf_rj_str(x[i], "text"));
        mf_buf_appendc(b, '\n');
    }
}

/* Section 4: records per content type, days with and without records,
 * the collection gaps and the notes. */
static void
md_coverage(struct mf_buf *b, const struct mf_jval *cov)
{
    struct mf_jval *const *x;
    size_t n;

    mf_buf_appends(b, "\n## 4. Coverage\n\n");
    x = mf_rj_arr(cov, "content_types", &n);
    md_table(b, md_ct_cols, x, n);
    mf_buf_printf(b, "\n%lld of %lld days have records.", (long long)mf_rj_int(cov, "days_with_records"),
                  (long long)mf_rj_int(cov, "days_in_period"));
    x = mf_rj_arr(cov, "days_without_records", &n);
    for (size_t i = 0; i < n; i++)
        mf_buf_printf(b, "%s %s..%s", i ? "," : " Without records:", mf_rj_str(x[i], "from"),
                      mf_rj_str(x[i], "to"));
    mf_buf_appends(b, "\n\n");
    x = mf_rj_arr(cov, "gaps", &n);
    if (n)
        md_table(b, md_gap_cols, x, n);
    x = mf_rj_arr(cov, "notes", &n);
    for (size_t i = 0; i < n; i++) {
        mf_buf_appends(b, "\n- ");
        md_text(b, mf_jstrv(x[i]));
    }
}

int
mf_render_md(struct mf_buf *b, const struct mf_jval *doc)
{
    md_head(b, doc);
    md_exposure(b, doc);
    md_checks(b, doc);
    md_plan(b, mf_rj_obj(doc, "plan"));
    md_coverage(b, mf_rj_obj(doc, "coverage"));
    return mf_buf_appends(b, "\n");
}
