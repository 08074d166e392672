/* render_html.c - the review as ONE self-contained HTML file.
 *
 * No script, no external style, font or image; the charts are inline SVG
 * drawn here; a Content-Security-Policy forbids any fetch. Every value
 * that comes from a record (names, file names, user agents, subjects...)
 * goes through html_text(), so markup in a record stays text. Numbers
 * carry data-path attributes naming their place in the JSON document, so
 * a test can compare the page with `--format json`. Print styles keep the
 * page readable on paper (no navigation, colours kept, rows not split).
 */
#include "render_int.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const char css[] =
    ":root{--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--bg2:#f6f8fa;--none:#8c959f;"
    "--low:#2da44e;--elevated:#bf8700;--high:#d1242f;--critical:#8b0000}"
    "*{box-sizing:border-box}"
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;"
    "color:var(--fg);margin:0 auto;max-width:1100px;padding:24px}"
    "h1{font-size:24px;margin:0 0 4px}h2{font-size:20px;margin:32px 0 8px;"
    "border-bottom:2px solid var(--line);padding-bottom:4px}"
    "h3{font-size:16px;margin:20px 0 6px}h4{font-size:14px;margin:14px 0 4px}"
    ".meta,.muted{color:var(--muted)}"
    "table{border-collapse:collapse;width:100%;margin:6px 0 12px;font-size:13px}"
    "th,td{border:1px solid var(--line);padding:4px 6px;text-align:left;"
    "vertical-align:top;overflow-wrap:break-word}"
    "td.o{overflow-wrap:anywhere;min-width:12em}"
    "th{background:var(--bg2);white-space:nowrap}td.n,th.n{text-align:right;white-space:nowrap}"
    "td.t{white-space:nowrap;font-variant-numeric:tabular-nums}"
    "table.events,table.examples{font-size:12px}"
    ".headline{font-size:15px;margin:8px 0}"
    ".pill{display:inline-block;border-radius:10px;padding:0 8px;color:#fff;"
    "font-size:12px;white-space:nowrap}"
    ".lv-none{background:var(--none)}.lv-low{background:var(--low)}"
    ".lv-elevated{background:var(--elevated)}.lv-high{background:var(--high)}"
    ".lv-critical{background:var(--critical)}"
    ".sev-1,.sev-2{background:var(--low)}.sev-3{background:var(--elevated)}"
    ".sev-4{background:var(--high)}.sev-5{background:var(--critical)}.sev-0{background:var(--none)}"
    ".st-finding{background:var(--high)}.st-ok{background:var(--low)}"
    ".st-no_evidence{background:var(--none)}"
    ".area{border:1px solid var(--line);border-radius:6px;padding:8px 14px;margin:14px 0}"
    ".cards{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}"
    ".card{border:1px solid var(--line);border-radius:6px;padding:8px 12px;min-width:150px}"
    ".card b{display:block;font-size:22px}"
    "nav.toc a{margin-right:14px}"
    "code{font-size:12px;background:var(--bg2);padding:0 3px;border-radius:3px}"
    "svg text{font:11px system-ui,Arial,sans-serif;fill:var(--muted)}"
    ".note{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:6px 10px;"
    "margin:6px 0}"
    "@page{margin:14mm}"
    "@media print{body{max-width:none;padding:0;font-size:11px}nav.toc{display:none}"
    "h2{break-before:page}section#summary h2{break-before:auto}"
    "tr,.card,svg{break-inside:avoid}.area{break-inside:auto}"
    "*{-webkit-print-color-adjust:exact;print-color-adjust:exact}"
    "a{color:inherit;text-decoration:none}}";

/* ---- escaping -------------------------------------------------------------- */

/* Text or attribute value: & < > " ' escaped, control characters out. */
static void
html_text(struct mf_buf *b, const char *s)
{
    if (!s)
        return;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        switch (c) {
        case '&': mf_buf_appends(b, "&amp;"); break;
        case '<': mf_buf_appends(b, "&lt;"); break;
        case '>': mf_buf_appends(b, "&gt;"); break;
        case '"': mf_buf_appends(b, "&quot;"); break;
        case '\'': mf_buf_appends(b, "&#39;"); break;
        default:
            mf_buf_appendc(b, c < 0x20 || c == 0x7f ? ' ' : (char)c);
        }
    }
}

static void
cell(struct mf_buf *b, const char *s)
{
    mf_buf_appends(b, "<td>");
    if (s && *s)
        html_text(b, s);
    else
        mf_buf_appends(b, "<span class=\"muted\">-</span>");
    mf_buf_appends(b, "</td>");
}

/* A number with its JSON path. */
static void
num(struct mf_buf *b, const char *tag, const char *path, int64_t v)
{
    mf_buf_printf(b, "<%s class=\"n\" data-path=\"", tag);
    html_text(b, path);
    mf_buf_printf(b, "\">%lld</%s>", (long long)v, tag);
}

static void
pill(struct mf_buf *b, const char *cls, const char *text)
{
    mf_buf_appends(b, "<span class=\"pill ");
    html_text(b, cls);
    mf_buf_appends(b, "\">");
    html_text(b, text);
    mf_buf_appends(b, "</span>");
}

static void
sev_pill(struct mf_buf *b, int64_t sev)
{
    char cls[16];

    snprintf(cls, sizeof(cls), "sev-%lld", (long long)(sev >= 0 && sev <= 5 ? sev : 0));
    pill(b, cls, mf_rsev_name(sev));
}

static const char *
level_color(int64_t score)
{
    return score == 0 ? "#8c959f" : score < 30 ? "#2da44e" : score < 60 ? "#bf8700"
           : score < 80 ? "#d1242f" : "#8b0000";
}

/* "Identity and access" for "identity_access" (the name itself when
 * unknown). */
static const char *
area_title(const char *name)
{
    int a = mf_report_area_parse(name);

    return a >= 0 ? mf_report_area_title(a) : name;
}

/* A table cell holding a pill. */
static void
pill_cell(struct mf_buf *b, const char *cls, const char *text)
{
    mf_buf_appends(b, "<td>");
    pill(b, cls, text);
    mf_buf_appends(b, "</td>");
}

static void
sev_cell(struct mf_buf *b, int64_t sev)
{
    mf_buf_appends(b, "<td>");
    sev_pill(b, sev);
    mf_buf_appends(b, "</td>");
}

/* n rows to come: the table's head (when given) and true, or the muted
 * line none and false. */
static bool
table_or_none(struct mf_buf *b, size_t n, const char *none, const char *head)
{
    if (!n) {
        mf_buf_printf(b, "<p class=\"muted\">%s</p>", none);
        return false;
    }
    if (head)
        mf_buf_appends(b, head);
    return true;
}

/* The labels under a chart's first and last bar, at height y; the last
 * one is left open. */
static void
svg_ends(struct mf_buf *b, int x0, int x1, int y, const char *first, const char *last)
{
    mf_buf_printf(b, "<text x=\"%d\" y=\"%d\">", x0, y);
    html_text(b, first);
    mf_buf_printf(b, "</text><text x=\"%d\" y=\"%d\" text-anchor=\"end\">", x1, y);
    html_text(b, last);
}

/* ---- charts (inline SVG) -------------------------------------------------- */

/* Horizontal bars: the score of each area, 0..100. */
static void
svg_area_scores(struct mf_buf *b, struct mf_jval *const *areas, size_t n)
{
    const int w = 640, row = 26, left = 190, barw = w - left - 50;

    mf_buf_printf(b, "<svg role=\"img\" aria-label=\"Exposure score per area\" width=\"%d\" "
                  "height=\"%zu\" viewBox=\"0 0 %d %zu\">", w, n * row + 8, w, n * row + 8);
    for (size_t i = 0; i < n; i++) {
        int64_t s = mf_rj_int(areas[i], "score");
        int y = (int)i * row + 4;

        mf_buf_printf(b, "<text x=\"0\" y=\"%d\">", y + 15);
        html_text(b, mf_rj_str(areas[i], "title"));
        mf_buf_printf(b, "</text><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"18\" "
                      "fill=\"#eaeef2\"/><rect x=\"%d\" y=\"%d\" width=\"%lld\" height=\"18\" "
                      "fill=\"%s\"><title>", left, y, barw, left, y,
                      (long long)(s * barw / 100), level_color(s));
        html_text(b, mf_rj_str(areas[i], "title"));
        mf_buf_printf(b, ": %lld</title></rect><text x=\"%d\" y=\"%d\">%lld</text>", (long long)s,
                      left + barw + 6, y + 14, (long long)s);
    }
    mf_buf_appends(b, "</svg>");
}

/* Vertical bars: one per week, its score. */
static void
svg_trend(struct mf_buf *b, const struct mf_jval *area)
{
    size_t n;
    struct mf_jval *const *wk = mf_rj_arr(area, "trend", &n);
    const int h = 90, top = 6, base = 70;
    int w, bw;

    if (!n)
        return;
    bw = n > 30 ? 8 : 18;
    w = (int)n * (bw + 3) + 40;
    if (w < 200)
        w = 200;
    mf_buf_printf(b, "<svg role=\"img\" aria-label=\"Weekly score\" width=\"%d\" height=\"%d\" "
                  "viewBox=\"0 0 %d %d\"><line x1=\"30\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
                  "stroke=\"#d0d7de\"/><text x=\"0\" y=\"%d\">100</text>"
                  "<text x=\"12\" y=\"%d\">0</text>",
                  w, h, w, h, base, w, base, top + 8, base);
    for (size_t i = 0; i < n; i++) {
        int64_t s = mf_rj_int(wk[i], "score");
        int bh = (int)(s * (base - top) / 100), x = 32 + (int)i * (bw + 3);

        mf_buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\">"
                      "<title>", x, base - bh, bw, bh > 0 ? bh : 1, level_color(s));
        html_text(b, mf_rj_str(wk[i], "from"));
        mf_buf_appends(b, " .. ");
        html_text(b, mf_rj_str(wk[i], "to"));
        mf_buf_printf(b, ": score %lld, %lld hits</title></rect>", (long long)s,
                      (long long)mf_rj_int(wk[i], "hits"));
    }
    svg_ends(b, 32, w - 2, 86, mf_rj_str(wk[0], "from"), mf_rj_str(wk[n - 1], "to"));
    mf_buf_appends(b, "</text></svg>");
}

/* Records per day of the period. */
static void
svg_days(struct mf_buf *b, const struct mf_jval *cov)
{
    size_t n;
    struct mf_jval *const *d = mf_rj_arr(cov, "days", &n);
    const int w = 720, base = 80, top = 6;
    int64_t max = 0;
    double bw;

    if (!n)
        return;
    for (size_t i = 0; i < n; i++)
        if (mf_rj_int(d[i], "records") > max)
            max = mf_rj_int(d[i], "records");
    bw = (double)(w - 10) / (double)n;
    mf_buf_printf(b, "<svg role=\"img\" aria-label=\"Records per day\" width=\"%d\" "
                  "height=\"100\" viewBox=\"0 0 %d 100\"><line x1=\"0\" y1=\"%d\" x2=\"%d\" "
                  "y2=\"%d\" stroke=\"#d0d7de\"/>", w, w, base, w, base);
    for (size_t i = 0; i < n; i++) {
        int64_t r = mf_rj_int(d[i], "records");
        double bh = max ? (double)r * (base - top) / (double)max : 0;

        mf_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                      "fill=\"%s\"><title>", 5 + bw * (double)i, base - (r ? (bh < 1 ? 1 : bh) : 3),
                      bw > 2 ? bw - 1 : bw, r ? (bh < 1 ? 1 : bh) : 3.0,
                      r ? "#0969da" : "#d1242f");
        html_text(b, mf_rj_str(d[i], "day"));
        mf_buf_printf(b, ": %lld records</title></rect>", (long long)r);
    }
    svg_ends(b, 5, w - 5, 96, mf_rj_str(d[0], "day"), mf_rj_str(d[n - 1], "day"));
    mf_buf_printf(b, "</text><text x=\"%d\" y=\"12\" text-anchor=\"end\">max %lld</text></svg>",
                  w - 5, (long long)max);
}

/* ---- sections -------------------------------------------------------------- */

/* multi: several tenants in the review (then events show theirs) */
static void
events_table(struct mf_buf *b, const struct mf_jval *o, const char *key, const char *cls,
             bool multi)
{
    size_t n;
    struct mf_jval *const *ev = mf_rj_arr(o, key, &n);

    if (!table_or_none(b, n, "None.", NULL))
        return;
    mf_buf_printf(b, "<table class=\"%s\"><tr><th>Time (UTC)</th><th>Severity</th>%s"
                  "<th>Actor</th><th>Operation</th><th>Object</th>"
                  "<th>Client IP</th><th>Tags</th></tr>", cls, multi ? "<th>Tenant</th>" : "");
    for (size_t i = 0; i < n; i++) {
        size_t nt;
        struct mf_jval *const *tags = mf_rj_arr(ev[i], "tags", &nt);

        mf_buf_appends(b, "<tr title=\"");
        html_text(b, mf_rj_str(ev[i], "record_id"));
        if (mf_rj_str(ev[i], "user_agent")) {
            mf_buf_appends(b, " / ");
            html_text(b, mf_rj_str(ev[i], "user_agent"));
        }
        mf_buf_appends(b, "\">");
        mf_buf_appends(b, "<td class=\"t\">");
        html_text(b, mf_rj_str(ev[i], "time"));
        mf_buf_appends(b, "</td>");
        sev_cell(b, mf_rj_int(ev[i], "severity"));
        if (multi)
            cell(b, mf_rj_str(ev[i], "tenant"));
        cell(b, mf_rj_str(ev[i], "actor"));
        cell(b, mf_rj_str(ev[i], "operation"));
        mf_buf_appends(b, "<td class=\"o\">");
        html_text(b, mf_rj_str(ev[i], "object") ? mf_rj_str(ev[i], "object") : "-");
        mf_buf_appends(b, "</td>");
        cell(b, mf_rj_str(ev[i], "client_ip"));
        mf_buf_appends(b, "<td>");
        for (size_t k = 0; k < nt; k++) {
            mf_buf_appends(b, "<code>");
            html_text(b, mf_rj_str(tags[k], "id"));
            mf_buf_appends(b, "</code> ");
        }
        mf_buf_appends(b, "</td></tr>");
    }
    mf_buf_appends(b, "</table>");
}

static void
top_table(struct mf_buf *b, const struct mf_jval *area, const char *key, const char *what)
{
    size_t n;
    struct mf_jval *const *t = mf_rj_arr(area, key, &n);

    mf_buf_printf(b, "<h4>Riskiest %s</h4>", what);
    if (!table_or_none(b, n, "None.", NULL))
        return;
    mf_buf_printf(b, "<table class=\"top-%s\"><tr><th>Name</th><th class=\"n\">Tagged records"
                  "</th><th class=\"n\">Risk</th><th>Max severity</th></tr>", key);
    for (size_t i = 0; i < n; i++) {
        mf_buf_appends(b, "<tr>");
        cell(b, mf_rj_str(t[i], "name"));
        mf_buf_printf(b, "<td class=\"n\">%lld</td><td class=\"n\">%lld</td>",
                      (long long)mf_rj_int(t[i], "records"), (long long)mf_rj_int(t[i], "risk"));
        sev_cell(b, mf_rj_int(t[i], "max_severity"));
        mf_buf_appends(b, "</tr>");
    }
    mf_buf_appends(b, "</table>");
}

static void
area_html(struct mf_buf *b, const struct mf_jval *ar, bool multi)
{
    const char *name = mf_rj_str(ar, "area");
    char path[200];
    size_t n;
    struct mf_jval *const *x;

    mf_buf_appends(b, "<article class=\"area\" id=\"area-");
    html_text(b, name);
    mf_buf_appends(b, "\"><h3>");
    html_text(b, mf_rj_str(ar, "title"));
    mf_buf_appends(b, ": score ");
    snprintf(path, sizeof(path), "exposure.areas.%s.score", name);
    num(b, "span", path, mf_rj_int(ar, "score"));
    mf_buf_appends(b, " ");
    {
        char cls[40];

        snprintf(cls, sizeof(cls), "lv-%s", mf_rj_str(ar, "level"));
        pill(b, cls, mf_rj_str(ar, "level"));
    }
    mf_buf_appends(b, "</h3><p class=\"muted\">");
    snprintf(path, sizeof(path), "exposure.areas.%s.hits", name);
    num(b, "span", path, mf_rj_int(ar, "hits"));
    mf_buf_appends(b, " tag hits, ");
    snprintf(path, sizeof(path), "exposure.areas.%s.points", name);
    num(b, "span", path, mf_rj_int(ar, "points"));
    mf_buf_appends(b, " points. Weekly score:</p>");
    svg_trend(b, ar);

    x = mf_rj_arr(ar, "tags", &n);
    mf_buf_appends(b, "<h4>Risk tags</h4>");
    if (table_or_none(b, n, "No risk tag in this area.",
                      "<table class=\"tags\"><tr><th>Tag</th><th>What</th>"
                      "<th class=\"n\">Count</th><th>Max severity</th></tr>")) {
        for (size_t i = 0; i < n; i++) {
            mf_buf_appends(b, "<tr><td><code>");
            html_text(b, mf_rj_str(x[i], "id"));
            mf_buf_appends(b, "</code></td>");
            cell(b, mf_rj_str(x[i], "title"));
            snprintf(path, sizeof(path), "exposure.areas.%s.tags.%s.count", name,
                     mf_rj_str(x[i], "id") ? mf_rj_str(x[i], "id") : "");
            num(b, "td", path, mf_rj_int(x[i], "count"));
            sev_cell(b, mf_rj_int(x[i], "max_severity"));
            mf_buf_appends(b, "</tr>");
        }
        mf_buf_appends(b, "</table>");
    }
    top_table(b, ar, "actors", "actors");
    top_table(b, ar, "objects", "objects");
    mf_buf_appends(b, "<h4>Highest-severity events</h4>");
    events_table(b, ar, "events", "events", multi);
    x = mf_rj_arr(ar, "findings", &n);
    mf_buf_appends(b, "<h4>Aggregate findings (");
    snprintf(path, sizeof(path), "exposure.areas.%s.findings_total", name);
    num(b, "span", path, mf_rj_int(ar, "findings_total"));
    mf_buf_appends(b, ")</h4>");
    table_or_none(b, n, "None.", "<table class=\"findings\"><tr><th>Finding</th>"
                  "<th>Day</th><th>Severity</th><th>What</th></tr>");
    for (size_t i = 0; i < n; i++) {
        mf_buf_appends(b, "<tr>");
        cell(b, mf_rj_str(x[i], "title"));
        cell(b, mf_rj_str(x[i], "day"));
        sev_cell(b, mf_rj_int(x[i], "severity"));
        cell(b, mf_rj_str(x[i], "text"));
        mf_buf_appends(b, "</tr>");
    }
    if (n)
        mf_buf_appends(b, "</table>");
    mf_buf_appends(b, "</article>");
}

/* The summary's cards: a figure of summary (or summary.checks) each. */
static const struct {
    const char *label, *path, *key;
    bool in_checks;
} cards[] = {
    {"Records", "summary.records", "records", false},
    {"With risk tags", "summary.tagged", "tagged", false},
    {"Checks with findings", "summary.checks.finding", "finding", true},
    {"Checks in order", "summary.checks.ok", "ok", true},
    {"Checks without evidence", "summary.checks.no_evidence", "no_evidence", true},
    {"Aggregate findings", "summary.aggregate_findings", "aggregate_findings", false},
    {"Planned actions", "summary.actions", "actions", false},
};

static void
summary_html(struct mf_buf *b, const struct mf_jval *doc)
{
    const struct mf_jval *sum = mf_rj_obj(doc, "summary"), *cks = mf_rj_obj(sum, "checks");
    size_t n, na;
    struct mf_jval *const *t = mf_rj_arr(doc, "tenants", &n);
    struct mf_jval *const *areas = mf_rj_arr(mf_rj_obj(doc, "exposure"), "areas", &na);
    char path[200];

    mf_buf_appends(b, "<section id=\"summary\"><h2>Summary</h2><p class=\"headline\">");
    if (mf_rj_str(sum, "most_exposed_area")) {
        mf_buf_appends(b, "Most exposed: <b>");
        html_text(b, area_title(mf_rj_str(sum, "most_exposed_area")));
        mf_buf_printf(b, "</b> (score %lld). ", (long long)mf_rj_int(sum, "highest_score"));
    } else {
        mf_buf_appends(b, "No risk tag in the period. ");
    }
    {
        size_t nc, shown = 0;
        struct mf_jval *const *c = mf_rj_arr(doc, "checks", &nc);

        for (size_t i = 0; i < nc && shown < 3; i++) {
            if (strcmp(mf_rj_str(c[i], "status") ? mf_rj_str(c[i], "status") : "", "finding"))
                continue;
            mf_buf_appends(b, shown ? "; " : "First findings: ");
            html_text(b, mf_rj_str(c[i], "title"));
            shown++;
        }
        mf_buf_appends(b, shown ? "." : "No check found a protection unused.");
    }
    mf_buf_appends(b, "</p><div class=\"cards\">");
    for (size_t i = 0; i < sizeof(cards) / sizeof(cards[0]); i++) {
        mf_buf_printf(b, "<div class=\"card\">%s", cards[i].label);
        num(b, "b", cards[i].path, mf_rj_int(cards[i].in_checks ? cks : sum, cards[i].key));
        mf_buf_appends(b, "</div>");
    }
    mf_buf_appends(b, "</div>");
    svg_area_scores(b, areas, na);
    mf_buf_appends(b, "<table class=\"tenants\"><tr><th>Tenant</th><th class=\"n\">Records</th>"
                      "<th class=\"n\">Tagged</th>");
    for (int a = 0; a < MF_RAREA_COUNT; a++)
        mf_buf_printf(b, "<th class=\"n\">%s</th>", mf_report_area_title(a));
    mf_buf_appends(b, "</tr>");
    for (size_t i = 0; i < n; i++) {
        const char *id = mf_rj_str(t[i], "id") ? mf_rj_str(t[i], "id") : "";

        mf_buf_appends(b, "<tr title=\"");
        html_text(b, id);
        mf_buf_appends(b, "\">");
        cell(b, mf_rj_str(t[i], "name"));
        snprintf(path, sizeof(path), "tenants.%s.records", id);
        num(b, "td", path, mf_rj_int(t[i], "records"));
        snprintf(path, sizeof(path), "tenants.%s.tagged", id);
        num(b, "td", path, mf_rj_int(t[i], "tagged"));
        for (int a = 0; a < MF_RAREA_COUNT; a++)
            mf_buf_printf(b, "<td class=\"n\">%lld</td>",
                          (long long)mf_rj_int(mf_rj_obj(t[i], "scores"), mf_report_area_name(a)));
        mf_buf_appends(b, "</tr>");
    }
    mf_buf_appends(b, "</table></section>");
}

static bool
multi_tenant(const struct mf_jval *doc)
{
    size_t n;

    mf_rj_arr(doc, "tenants", &n);
    return n > 1;
}

static void
checks_html(struct mf_buf *b, const struct mf_jval *doc)
{
    size_t n;
    struct mf_jval *const *c = mf_rj_arr(doc, "checks", &n);
    bool multi = multi_tenant(doc);
    char path[200];

    mf_buf_appends(b, "<section id=\"checks\"><h2>2. Which protections do we own but not use "
                      "properly?</h2><p class=\"muted\">Evidence-based checks over the "
                      "activity itself (checks.yaml). A check without evidence says so.</p>"
                      "<table class=\"checks\"><tr><th>Check</th><th>Area</th><th>Status</th>"
                      "<th class=\"n\">Evidence</th><th>What the records show</th></tr>");
    for (size_t i = 0; i < n; i++) {
        const char *id = mf_rj_str(c[i], "id") ? mf_rj_str(c[i], "id") : "";
        char cls[40];

        mf_buf_appends(b, "<tr id=\"check-");
        html_text(b, id);
        mf_buf_appends(b, "\">");
        cell(b, mf_rj_str(c[i], "title"));
        cell(b, area_title(mf_rj_str(c[i], "area")));
        snprintf(cls, sizeof(cls), "st-%s", mf_rj_str(c[i], "status"));
        pill_cell(b, cls, mf_rj_str(c[i], "status"));
        snprintf(path, sizeof(path), "checks.%s.evidence", id);
        num(b, "td", path, mf_rj_int(c[i], "evidence"));
        cell(b, mf_rj_str(c[i], "text"));
        mf_buf_appends(b, "</tr>");
    }
    mf_buf_appends(b, "</table>");
    for (size_t i = 0; i < n; i++) {
        size_t ne;

        mf_rj_arr(c[i], "examples", &ne);
        if (!ne)
            continue;
        mf_buf_appends(b, "<h4>Examples: ");
        html_text(b, mf_rj_str(c[i], "title"));
        mf_buf_appends(b, "</h4>");
        events_table(b, c[i], "examples", "examples", multi);
    }
    mf_buf_appends(b, "</section>");
}

static void
plan_html(struct mf_buf *b, const struct mf_jval *doc)
{
    const struct mf_jval *plan = mf_rj_obj(doc, "plan");
    size_t n;
    struct mf_jval *const *h = mf_rj_arr(plan, "horizons", &n);

    mf_buf_appends(b, "<section id=\"plan\"><h2>3. What should we improve over the next 30, "
                      "60 and 90 days?</h2><p class=\"muted\">Actions from plan.yaml for the "
                      "checks that found something, most severe first, each citing its "
                      "evidence.</p>");
    for (size_t i = 0; i < n; i++) {
        size_t na;
        struct mf_jval *const *a = mf_rj_arr(h[i], "actions", &na);

        mf_buf_printf(b, "<h3>Within %lld days</h3>", (long long)mf_rj_int(h[i], "days"));
        if (!table_or_none(b, na, "No action.", NULL))
            continue;
        mf_buf_printf(b, "<table class=\"plan\" data-horizon=\"%lld\"><tr><th class=\"n\">#</th>"
                      "<th>Action</th><th>Area</th><th>Owner</th><th>Effort</th>"
                      "<th>Evidence</th></tr>", (long long)mf_rj_int(h[i], "days"));
        for (size_t k = 0; k < na; k++) {
            char path[200];

            mf_buf_printf(b, "<tr><td class=\"n\">%lld</td>", (long long)mf_rj_int(a[k], "priority"));
            cell(b, mf_rj_str(a[k], "action"));
            cell(b, area_title(mf_rj_str(a[k], "area")));
            cell(b, mf_rj_str(a[k], "owner"));
            cell(b, mf_rj_str(a[k], "effort"));
            mf_buf_appends(b, "<td><b>");
            html_text(b, mf_rj_str(a[k], "finding"));
            mf_buf_appends(b, "</b> (");
            snprintf(path, sizeof(path), "plan.%s.evidence", mf_rj_str(a[k], "check"));
            num(b, "span", path, mf_rj_int(a[k], "evidence"));
            mf_buf_appends(b, "): ");
            html_text(b, mf_rj_str(a[k], "why"));
            mf_buf_appends(b, "</td></tr>");
        }
        mf_buf_appends(b, "</table>");
    }
    h = mf_rj_arr(plan, "areas", &n);
    mf_buf_appends(b, "<h3>By area</h3><table class=\"plan-areas\"><tr><th>Area</th>"
                      "<th>Status</th><th>What the evidence supports</th></tr>");
    for (size_t i = 0; i < n; i++) {
        char cls[40];

        mf_buf_appends(b, "<tr>");
        cell(b, mf_rj_str(h[i], "title"));
        snprintf(cls, sizeof(cls), "st-%s", strcmp(mf_rj_str(h[i], "status"), "actions") == 0
                 ? "finding" : strcmp(mf_rj_str(h[i], "status"), "in_order") == 0 ? "ok"
                 : "no_evidence");
        pill_cell(b, cls, mf_rj_str(h[i], "status"));
        cell(b, mf_rj_str(h[i], "text"));
        mf_buf_appends(b, "</tr>");
    }
    mf_buf_appends(b, "</table></section>");
}

static void
coverage_html(struct mf_buf *b, const struct mf_jval *doc)
{
    const struct mf_jval *cov = mf_rj_obj(doc, "coverage");
    size_t n;
    struct mf_jval *const *x = mf_rj_arr(cov, "content_types", &n);
    char path[200];

    mf_buf_appends(b, "<section id=\"coverage\"><h2>4. Coverage: what the review rests on</h2>");
    x = mf_rj_arr(cov, "notes", &n);
    for (size_t i = 0; i < n; i++) {
        mf_buf_appends(b, "<p class=\"note\">");
        html_text(b, mf_jstrv(x[i]));
        mf_buf_appends(b, "</p>");
    }
    x = mf_rj_arr(cov, "content_types", &n);
    mf_buf_appends(b, "<table class=\"content-types\"><tr><th>Content type</th>"
                      "<th class=\"n\">Records</th><th class=\"n\">Days</th><th>First day</th>"
                      "<th>Last day</th></tr>");
    for (size_t i = 0; i < n; i++) {
        const char *ct = mf_rj_str(x[i], "content_type") ? mf_rj_str(x[i], "content_type") : "";

        mf_buf_appends(b, "<tr>");
        cell(b, ct);
        snprintf(path, sizeof(path), "coverage.content_types.%s.records", ct);
        num(b, "td", path, mf_rj_int(x[i], "records"));
        snprintf(path, sizeof(path), "coverage.content_types.%s.days", ct);
        num(b, "td", path, mf_rj_int(x[i], "days"));
        cell(b, mf_rj_str(x[i], "first_day"));
        cell(b, mf_rj_str(x[i], "last_day"));
        mf_buf_appends(b, "</tr>");
    }
    mf_buf_appends(b, "</table><p>");
    num(b, "span", "coverage.days_with_records", mf_rj_int(cov, "days_with_records"));
    mf_buf_appends(b, " of ");
    num(b, "span", "coverage.days_in_period", mf_rj_int(cov, "days_in_period"));
    mf_buf_appends(b, " days have records (days without any in red).</p>");
    svg_days(b, cov);
    x = mf_rj_arr(cov, "days_without_records", &n);
    if (n) {
        mf_buf_appends(b, "<p>Days without records:");
        for (size_t i = 0; i < n; i++) {
            mf_buf_appends(b, i ? ", " : " ");
            html_text(b, mf_rj_str(x[i], "from"));
            if (mf_rj_int(x[i], "days") > 1) {
                mf_buf_appends(b, " to ");
                html_text(b, mf_rj_str(x[i], "to"));
            }
        }
        mf_buf_appends(b, ".</p>");
    }
    x = mf_rj_arr(cov, "gaps", &n);
    mf_buf_appends(b, "<h3>Collection gaps (");
    num(b, "span", "coverage.gaps.length", (int64_t)n);
    mf_buf_appends(b, ")</h3>");
    if (table_or_none(b, n, "The collector recorded no gap for the period.",
                      "<table class=\"gaps\"><tr><th>Tenant</th><th>Content type</th>"
                      "<th>Start</th><th>End</th><th>Reason</th></tr>")) {
        for (size_t i = 0; i < n; i++) {
            mf_buf_appends(b, "<tr>");
            cell(b, mf_rj_str(x[i], "tenant"));
            cell(b, mf_rj_str(x[i], "content_type"));
            cell(b, mf_rj_str(x[i], "start"));
            cell(b, mf_rj_str(x[i], "end"));
            cell(b, mf_rj_str(x[i], "reason"));
            mf_buf_appends(b, "</tr>");
        }
        mf_buf_appends(b, "</table>");
    }
    mf_buf_appends(b, "</section>");
}

int
mf_render_html(struct mf_buf *b, const struct mf_jval *doc)
{
    const struct mf_jval *per = mf_rj_obj(doc, "period"), *src = mf_rj_obj(doc, "source");
    const struct mf_jval *ex = mf_rj_obj(doc, "exposure");
    size_t n;
    struct mf_jval *const *x;

    mf_buf_appends(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src "
                      "'none'; style-src 'unsafe-inline'; img-src data:\">"
                      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                      "<meta name=\"generator\" content=\"");
    html_text(b, mf_rj_str(doc, "generator"));
    mf_buf_appends(b, "\"><title>Microsoft 365 security and governance review, ");
    html_text(b, mf_rj_str(per, "from"));
    mf_buf_appends(b, " to ");
    html_text(b, mf_rj_str(per, "to"));
    mf_buf_printf(b, "</title><style>%s</style></head><body><header><h1>Microsoft 365 security "
                  "and governance review</h1><p class=\"meta\">Period <b>", css);
    html_text(b, mf_rj_str(per, "from"));
    mf_buf_appends(b, "</b> to <b>");
    html_text(b, mf_rj_str(per, "to"));
    mf_buf_appends(b, "</b> (");
    num(b, "span", "period.days", mf_rj_int(per, "days"));
    mf_buf_appends(b, " days, UTC). Tenants: ");
    x = mf_rj_arr(doc, "tenants", &n);
    for (size_t i = 0; i < n; i++) {
        if (i)
            mf_buf_appends(b, ", ");
        html_text(b, mf_rj_str(x[i], "name"));
    }
    if (!n)
        mf_buf_appends(b, "none");
    mf_buf_appends(b, ". Built from ");
    mf_buf_appends(b, mf_rj_str(src, "kind") && strcmp(mf_rj_str(src, "kind"), "rollup") == 0
                      ? "the agent's rollup" : "an export");
    x = mf_rj_arr(src, "inputs", &n);
    for (size_t i = 0; i < n; i++) {
        mf_buf_appends(b, i ? ", " : " (");
        mf_buf_appends(b, "<code>");
        html_text(b, mf_jstrv(x[i]));
        mf_buf_appends(b, "</code>");
    }
    mf_buf_appends(b, n ? ")" : "");
    mf_buf_appends(b, " on ");
    html_text(b, mf_rj_str(doc, "generated_at"));
    mf_buf_appends(b, " by ");
    html_text(b, mf_rj_str(doc, "generator"));
    mf_buf_appends(b, ".</p></header><nav class=\"toc\"><a href=\"#exposure\">1. Exposure</a>"
                      "<a href=\"#checks\">2. Protections</a><a href=\"#plan\">3. Plan</a>"
                      "<a href=\"#coverage\">4. Coverage</a></nav>");
    summary_html(b, doc);
    mf_buf_appends(b, "<section id=\"exposure\"><h2>1. Where are we most exposed today?</h2>"
                      "<p class=\"muted\">Score per area, ");
    html_text(b, mf_rj_str(ex, "formula"));
    mf_buf_appends(b, ".</p>");
    x = mf_rj_arr(ex, "areas", &n);
    for (size_t i = 0; i < n; i++)
        area_html(b, x[i], multi_tenant(doc));
    mf_buf_appends(b, "</section>");
    checks_html(b, doc);
    plan_html(b, doc);
    coverage_html(b, doc);
    mf_buf_appends(b, "<footer class=\"muted\"><p>Generated by ");
    html_text(b, mf_rj_str(doc, "generator"));
    mf_buf_appends(b, ". Tables: checks.yaml, plan.yaml; tags: tags.yaml. The same content is "
                      "available as JSON (<code>--format json</code>, schema "
                      "<code>m365fwd.report/1</code>).</p></footer></body></html>\n");
    return 0;
}
