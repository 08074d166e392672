/* check_golden.c - golden files: tests/data/golden/<case>.in.json through
 * mf_normalize() for every <case>.<schema>.json that exists.
 *
 * <case>.in.json   one record (bytes passed as they are, so a case may hold
 *                  invalid UTF-8 on purpose) or a content blob (a JSON array
 *                  of records; each element is normalized on its own).
 * <case>.ctype     optional: the content type to pass (else derived).
 * <case>.ocsf.json / .ecs.json / .raw.json
 *                  expected output: one object for a single record, an
 *                  array of objects for a blob. The string "<any>" as an
 *                  expected value means "present, any value" (only for
 *                  values that vary by run, e.g. the ingest time of a record
 *                  without CreationTime).
 * Comparison is semantic (jansson json_equal); a mismatch prints both sides
 * sorted and indented.
 */
#include <dirent.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "normalize.h"
#include "test_common.h"

#define MAX_CASES 256

static char *g_cases[MAX_CASES];
static size_t g_ncases;
static struct mf_normalizer *g_norm;

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
find_cases(void)
{
    const char *dir = mf_test_data("golden");
    DIR *d = opendir(dir);
    struct dirent *e;

    if (!d)
        return;
    while ((e = readdir(d)) && g_ncases < MAX_CASES) {
        size_t n = strlen(e->d_name);
        if (n > 8 && strcmp(e->d_name + n - 8, ".in.json") == 0)
            g_cases[g_ncases++] = strndup(e->d_name, n - 8);
    }
    closedir(d);
    qsort(g_cases, g_ncases, sizeof g_cases[0], cmp_str);
}

static char *
case_path(const char *name, const char *suffix)
{
    static char buf[4096];
    char rel[1024];
    snprintf(rel, sizeof rel, "golden/%s%s", name, suffix);
    snprintf(buf, sizeof buf, "%s", mf_test_data(rel));
    return buf;
}

/* "<any>" in expected: take the actual value at the same place. */
static void
apply_any(json_t *exp, json_t *act)
{
    const char *k;
    json_t *v;

    if (json_is_object(exp) && json_is_object(act)) {
        json_object_foreach(exp, k, v) {
            json_t *av = json_object_get(act, k);
            if (json_is_string(v) && strcmp(json_string_value(v), "<any>") == 0) {
                if (av)
                    json_object_set(exp, k, av);
            } else if (av) {
                apply_any(v, av);
            }
        }
    } else if (json_is_array(exp) && json_is_array(act)) {
        for (size_t i = 0; i < json_array_size(exp) && i < json_array_size(act); i++)
            apply_any(json_array_get(exp, i), json_array_get(act, i));
    }
}

/* Normalize one record text; returns the parsed output or NULL (reason in
 * why). */
static json_t *
run_one(const char *data, size_t len, const char *ctype, enum mf_schema schema,
        char *why, size_t whysz)
{
    struct mf_nctx c;
    struct mf_buf out;
    struct mf_event ev;
    struct mf_norm_in in = {.data = data, .len = len, .first_line = 1,
                            .content_type = ctype, .schema = schema};
    json_error_t jerr;
    json_t *j = NULL;
    enum mf_status st;

    mf_nctx_init(&c);
    mf_buf_init(&out, 0);
    mf_event_init(&ev, 0);
    st = mf_normalize(g_norm, &c, &in, &out, &ev);
    if (st != MF_OK) {
        snprintf(why, whysz, "mf_normalize: status %d: %s", (int)st, ev.error);
    } else {
        j = json_loadb(out.data, out.len, 0, &jerr);
        if (!j)
            snprintf(why, whysz, "output is not JSON for jansson: %s: %.200s",
                     jerr.text, out.data);
    }
    mf_buf_fini(&out);
    mf_event_fini(&ev);
    mf_nctx_fini(&c);
    return j;
}

/* Actual output for a case: object (single record) or array (blob). */
static json_t *
run_case(const char *name, enum mf_schema schema, char *why, size_t whysz)
{
    size_t len, ctlen;
    char *data = mf_test_slurp(case_path(name, ".in.json"), &len);
    char *ctype = mf_test_slurp(case_path(name, ".ctype"), &ctlen);
    json_t *result = NULL;
    size_t i = 0;

    if (!data) {
        snprintf(why, whysz, "cannot read %s.in.json", name);
        free(ctype);
        return NULL;
    }
    if (ctype)
        ctype[strcspn(ctype, "\r\n")] = '\0';
    while (len > 0 && strchr(" \t\r\n", data[len - 1]))
        len--;
    while (i < len && strchr(" \t\r\n", data[i]))
        i++;
    if (i < len && data[i] == '[') {
        /* content blob: split with jansson, normalize each element */
        json_error_t jerr;
        json_t *blob = json_loadb(data, len, 0, &jerr);
        if (!blob) {
            snprintf(why, whysz, "blob %s: %s", name, jerr.text);
        } else {
            size_t k;
            json_t *rec;
            result = json_array();
            json_array_foreach(blob, k, rec) {
                char *txt = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
                json_t *ev = run_one(txt, strlen(txt), ctype, schema, why, whysz);
                free(txt);
                if (!ev) {
                    json_decref(result);
                    result = NULL;
                    break;
                }
                json_array_append_new(result, ev);
            }
            json_decref(blob);
        }
    } else {
        result = run_one(data, len, ctype, schema, why, whysz);
    }
    free(data);
    free(ctype);
    return result;
}

/* Compare every case that has an expected file for schema; returns the
 * number of failures (details on stderr). */
static int
compare_schema(enum mf_schema schema, size_t *checked)
{
    int fails = 0;
    char suffix[32];

    snprintf(suffix, sizeof suffix, ".%s.json", mf_schema_name(schema));
    *checked = 0;
    for (size_t i = 0; i < g_ncases; i++) {
        json_error_t jerr;
        json_t *exp, *act;
        char why[512] = "";
        const char *ep = case_path(g_cases[i], suffix);

        if (access(ep, R_OK) != 0)
            continue;
        (*checked)++;
        exp = json_load_file(ep, 0, &jerr);
        if (!exp) {
            fprintf(stderr, "# %s%s: bad expected file: %s line %d\n",
                    g_cases[i], suffix, jerr.text, jerr.line);
            fails++;
            continue;
        }
        act = run_case(g_cases[i], schema, why, sizeof why);
        if (!act) {
            fprintf(stderr, "# %s%s: %s\n", g_cases[i], suffix, why);
            fails++;
        } else {
            apply_any(exp, act);
            if (!json_equal(exp, act)) {
                char *es = json_dumps(exp, JSON_SORT_KEYS | JSON_INDENT(2));
                char *as = json_dumps(act, JSON_SORT_KEYS | JSON_INDENT(2));
                fprintf(stderr, "# %s%s: MISMATCH\n# --- expected\n%s\n# --- actual\n%s\n",
                        g_cases[i], suffix, es, as);
                free(es);
                free(as);
                fails++;
            }
        }
        json_decref(exp);
        json_decref(act);
    }
    return fails;
}

static void
setup(void)
{
    struct mf_norm_opts opts = {0};
    struct mf_err err = {0};
    g_norm = mf_normalizer_new(&opts, &err);
    ck_assert_msg(g_norm != NULL, "mf_normalizer_new: %s", err.msg);
}

static void
teardown(void)
{
    mf_normalizer_destroy(g_norm);
    g_norm = NULL;
}

START_TEST(golden_cases_present)
{
    ck_assert_msg(g_ncases > 0, "no golden cases under %s", mf_test_data("golden"));
    /* every case has at least one expectation */
    for (size_t i = 0; i < g_ncases; i++) {
        static const char *const sfx[] = {".ocsf.json", ".ecs.json", ".raw.json"};
        bool any = false;
        for (size_t k = 0; k < sizeof sfx / sizeof sfx[0]; k++)
            any = any || access(case_path(g_cases[i], sfx[k]), R_OK) == 0;
        ck_assert_msg(any, "%s.in.json has no expected output file", g_cases[i]);
    }
}
END_TEST

START_TEST(golden_ocsf)
{
    size_t n;
    int fails = compare_schema(MF_SCHEMA_OCSF, &n);
    ck_assert_msg(fails == 0, "%d of %zu OCSF golden cases differ", fails, n);
}
END_TEST

START_TEST(golden_ecs)
{
    size_t n;
    int fails = compare_schema(MF_SCHEMA_ECS, &n);
    ck_assert_msg(fails == 0, "%d of %zu ECS golden cases differ", fails, n);
}
END_TEST

START_TEST(golden_raw)
{
    size_t n;
    int fails = compare_schema(MF_SCHEMA_RAW, &n);
    ck_assert_msg(fails == 0, "%d of %zu raw golden cases differ", fails, n);
}
END_TEST

/* The comparison itself must be able to fail: a changed expectation is
 * reported. */
START_TEST(golden_detects_mismatch)
{
    char why[512] = "";
    json_t *act, *exp;
    const char *name = NULL;

    for (size_t i = 0; i < g_ncases && !name; i++)
        if (access(case_path(g_cases[i], ".ocsf.json"), R_OK) == 0)
            name = g_cases[i];
    ck_assert_ptr_nonnull(name);
    act = run_case(name, MF_SCHEMA_OCSF, why, sizeof why);
    ck_assert_msg(act != NULL, "%s", why);
    exp = json_deep_copy(act);
    ck_assert(json_equal(exp, act));
    if (json_is_array(exp))
        json_object_set_new(json_array_get(exp, 0), "severity_id", json_integer(99));
    else
        json_object_set_new(exp, "severity_id", json_integer(99));
    ck_assert(!json_equal(exp, act));
    json_decref(exp);
    json_decref(act);
}
END_TEST

/* One event renders every form (schema x keep_raw) byte for byte as a
 * record normalized for that form alone, in whatever order the forms are
 * asked for: one parse and one tag evaluation serve every output. */
static int
forms_agree(const char *data, size_t len, const char *ctype, size_t rot,
            const char *where)
{
    struct mf_nctx c1, c2;
    struct mf_event one, fresh;
    struct mf_norm_in in = {.data = data, .len = len, .first_line = 1,
                            .content_type = ctype};
    const struct mf_event_form *f[MF_EVENT_FORMS];
    int fails = 0;

    mf_nctx_init(&c1);
    mf_nctx_init(&c2);
    mf_event_init(&one, 0);
    mf_event_init(&fresh, 0);
    if (mf_normalize_event(g_norm, &c1, &in, &one) != MF_OK ||
        (one.repairs & MF_REPAIR_TIME))  /* ingest time differs run to run */
        goto out;
    for (size_t i = 0; i < MF_EVENT_FORMS; i++) {
        size_t k = (i + rot) % MF_EVENT_FORMS;

        if (rot & 1)
            k = MF_EVENT_FORMS - 1 - k;
        f[k] = mf_event_form(&one, (enum mf_schema)(k / 2), k % 2);
    }
    for (size_t k = 0; k < MF_EVENT_FORMS; k++) {
        struct mf_buf out;

        mf_buf_init(&out, 0);
        in.schema = (enum mf_schema)(k / 2);
        in.keep_raw = k % 2;
        ck_assert_int_eq(mf_normalize(g_norm, &c2, &in, &out, &fresh), MF_OK);
        ck_assert_ptr_nonnull(f[k]);
        if (f[k]->text.len != out.len || memcmp(f[k]->text.data, out.data, out.len)) {
            fprintf(stderr, "# %s: form %s%s differs when rendered with the others\n",
                    where, mf_schema_name(in.schema), in.keep_raw ? "+raw" : "");
            fails++;
        }
        mf_buf_fini(&out);
    }
out:
    mf_event_fini(&one);
    mf_event_fini(&fresh);
    mf_nctx_fini(&c1);
    mf_nctx_fini(&c2);
    return fails;
}

START_TEST(golden_forms_of_one_event)
{
    int fails = 0;
    size_t checked = 0;

    for (size_t i = 0; i < g_ncases; i++) {
        size_t len, ctlen;
        char *data = mf_test_slurp(case_path(g_cases[i], ".in.json"), &len);
        char *ctype = mf_test_slurp(case_path(g_cases[i], ".ctype"), &ctlen);
        json_t *blob;

        if (ctype)
            ctype[strcspn(ctype, "\r\n")] = '\0';
        blob = json_loadb(data, len, 0, NULL);
        if (json_is_array(blob)) {
            size_t k;
            json_t *rec;

            json_array_foreach(blob, k, rec) {
                char *txt = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);

                fails += forms_agree(txt, strlen(txt), ctype, checked++, g_cases[i]);
                free(txt);
            }
        } else {
            fails += forms_agree(data, len, ctype, checked++, g_cases[i]);
        }
        json_decref(blob);
        free(data);
        free(ctype);
    }
    /* and the tag cases: one record per line under "record" */
    for (size_t t = 0; t < 6; t++) {
        static const char *const files[] = {"behavior", "collab", "data", "device",
                                            "identity", "monitor"};
        char rel[64];
        FILE *fp;
        char *line = NULL;
        size_t cap = 0;

        snprintf(rel, sizeof(rel), "tags/%s.ndjson", files[t]);
        fp = fopen(mf_test_data(rel), "r");
        ck_assert_msg(fp != NULL, "%s", rel);
        while (getline(&line, &cap, fp) > 0) {
            json_t *c = json_loads(line, 0, NULL);
            char *txt = json_dumps(json_object_get(c, "record"),
                                   JSON_COMPACT | JSON_PRESERVE_ORDER);

            if (txt)
                fails += forms_agree(txt, strlen(txt), NULL, checked++, rel);
            free(txt);
            json_decref(c);
        }
        free(line);
        fclose(fp);
    }
    ck_assert_uint_gt(checked, 200);
    ck_assert_msg(fails == 0, "%d forms differ", fails);
}
END_TEST

static Suite *
golden_suite(void)
{
    Suite *s = suite_create("golden");
    TCase *tc = tcase_create("mf_normalize");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, golden_cases_present);
    tcase_add_test(tc, golden_ocsf);
    tcase_add_test(tc, golden_ecs);
    tcase_add_test(tc, golden_raw);
    tcase_add_test(tc, golden_detects_mismatch);
    tcase_add_test(tc, golden_forms_of_one_event);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    int rc;
    find_cases();
    rc = mf_test_run(golden_suite());
    for (size_t i = 0; i < g_ncases; i++)
        free(g_cases[i]);
    return rc;
}
