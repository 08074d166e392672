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

static void
md_events(struct mf_buf *b, const struct mf_jval *o, const char *key)
{
    size_t n;
    struct mf_jval *const *ev = mf_rj_arr(o, key, &n);

    if (!n) {
        mf_buf_appends(b, "_None._\n\n");
        return;
    }
    mf_buf_appends(b, "| Time | Severity | Tenant | Actor | Operation | Object | Tags |\n"
                      "|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < n; i++) {
        size_t nt;
        struct mf_jval *const *tags = mf_rj_arr(ev[i], "tags", &nt);

        mf_buf_appends(b, "| ");
        md_text(b, mf_rj_str(ev[i], "time"));
        mf_buf_printf(b, " | %s | ", mf_rsev_name(mf_rj_int(ev[i], "severity")));
        md_text(b, mf_rj_str(ev[i], "tenant"));
        mf_buf_appends(b, " | ");
        md_text(b, mf_rj_str(ev[i], "actor"));
        mf_buf_appends(b, " | ");
        md_text(b, mf_rj_str(ev[i], "operation"));
        mf_buf_appends(b, " | ");
        md_text(b, mf_rj_str(ev[i], "object"));
        mf_buf_appends(b, " | ");
        for (size_t k = 0; k < nt; k++) {
            if (k)
                mf_buf_appends(b, ", ");
            md_text(b, mf_rj_str(tags[k], "id"));
        }
        mf_buf_appends(b, " |\n");
    }
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
    mf_buf_appends(b, "\n\n| Name | Tagged records | Risk | Max severity |\n|---|---|---|---|\n");
    for (size_t i = 0; i < n; i++) {
        mf_buf_appends(b, "| ");
        md_text(b, mf_rj_str(t[i], "name"));
        mf_buf_printf(b, " | %lld | %lld | %s |\n", (long long)mf_rj_int(t[i], "records"),
                      (long long)mf_rj_int(t[i], "risk"),
                      mf_rsev_name(mf_rj_int(t[i], "max_severity")));
    }
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
        mf_buf_appends(b, "| Tag | What | Count | Max severity |\n|---|---|---|---|\n");
        for (size_t i = 0; i < n; i++) {
            mf_buf_appends(b, "| `");
            mf_buf_appends(b, mf_rj_str(x[i], "id"));
            mf_buf_appends(b, "` | ");
            md_text(b, mf_rj_str(x[i], "title"));
            mf_buf_printf(b, " | %lld | %s |\n", (long long)mf_rj_int(x[i], "count"),
                          mf_rsev_name(mf_rj_int(x[i], "max_severity")));
        }
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
    mf_buf_appends(b, "| Area | Score | Level | Tag hits |\n|---|---|---|---|\n");
    for (size_t i = 0; i < n; i++)
        mf_buf_printf(b, "| %s | %lld | %s | %lld |\n", mf_rj_str(x[i], "title"),
                      (long long)mf_rj_int(x[i], "score"), mf_rj_str(x[i], "level"),
                      (long long)mf_rj_int(x[i], "hits"));
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

    mf_buf_appends(b, "## 2. Protections owned but not used properly\n\n"
                      "| Check | Area | Status | Evidence |\n|---|---|---|---|\n");
    x = mf_rj_arr(doc, "checks", &n);
    for (size_t i = 0; i < n; i++)
        mf_buf_printf(b, "| %s | %s | %s | %lld |\n", mf_rj_str(x[i], "title"),
                      mf_rj_str(x[i], "area"), mf_rj_str(x[i], "status"),
                      (long long)mf_rj_int(x[i], "evidence"));
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

/* The collection gaps' table (nothing when there is none). */
static void
md_gaps(struct mf_buf *b, const struct mf_jval *cov)
{
    size_t n;
    struct mf_jval *const *x = mf_rj_arr(cov, "gaps", &n);

    if (n)
        mf_buf_appends(b, "| Tenant | Content type | Start | End | Reason |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < n; i++) {
        mf_buf_appends(b, "| ");
        md_text(b, mf_rj_str(x[i], "tenant"));
        mf_buf_appends(b, " | ");
        md_text(b, mf_rj_str(x[i], "content_type"));
        mf_buf_printf(b, " | %s | %s | ", mf_rj_str(x[i], "start"), mf_rj_str(x[i], "end"));
        md_text(b, mf_rj_str(x[i], "reason"));
        mf_buf_appends(b, " |\n");
    }
}

/* Section 4: records per content type, days with and without records,
 * the collection gaps and the notes. */
static void
md_coverage(struct mf_buf *b, const struct mf_jval *cov)
{
    struct mf_jval *const *x;
    size_t n;

    mf_buf_appends(b, "\n## 4. Coverage\n\n| Content type | Records | Days | First | Last |\n"
                      "|---|---|---|---|---|\n");
    x = mf_rj_arr(cov, "content_types", &n);
    for (size_t i = 0; i < n; i++)
        mf_buf_printf(b, "| %s | %lld | %lld | %s | %s |\n", mf_rj_str(x[i], "content_type"),
                      (long long)mf_rj_int(x[i], "records"), (long long)mf_rj_int(x[i], "days"),
                      mf_rj_str(x[i], "first_day") ? mf_rj_str(x[i], "first_day") : "-",
                      mf_rj_str(x[i], "last_day") ? mf_rj_str(x[i], "last_day") : "-");
    mf_buf_printf(b, "\n%lld of %lld days have records.", (long long)mf_rj_int(cov, "days_with_records"),
                  (long long)mf_rj_int(cov, "days_in_period"));
    x = mf_rj_arr(cov, "days_without_records", &n);
    for (size_t i = 0; i < n; i++)
        mf_buf_printf(b, "%s %s..%s", i ? "," : " Without records:", mf_rj_str(x[i], "from"),
                      mf_rj_str(x[i], "to"));
    mf_buf_appends(b, "\n\n");
    md_gaps(b, cov);
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
