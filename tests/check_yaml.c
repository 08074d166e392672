/* check_yaml.c - YAML tables into mf_jval trees. */
#include <string.h>

#include "json.h"
#include "test_common.h"
#include "yaml_tree.h"

static struct mf_arena A;

static void
setup(void)
{
    mf_arena_init(&A, 4096);
}

static void
teardown(void)
{
    mf_arena_fini(&A);
}

static struct mf_jval *
load(const char *text, struct mf_err *err)
{
    return mf_yaml_load(&A, "t.yaml", text, strlen(text), err);
}

START_TEST(myl_types_and_lines)
{
    struct mf_err err;
    struct mf_jval *v = load("version: 1\n"
                             "tags:\n"
                             "  - id: identity.mfa_disabled\n"
                             "    severity: 4\n"
                             "    on: true\n"
                             "    quoted: \"4\"\n"
                             "    none: ~\n"
                             "    real: 2.5\n"
                             "    neg: -3\n"
                             "    attack: [T1556.006, \"T1098\"]\n",
                             &err);
    struct mf_jval *t;

    ck_assert_msg(v != NULL, "%s", err.msg);
    ck_assert_int_eq(v->type, MF_JOBJ);
    t = mf_jobj_get(v, "tags")->u.items[0];
    ck_assert_uint_eq(t->line, 3);
    ck_assert_int_eq(mf_jobj_get(t, "severity")->type, MF_JNUM);
    ck_assert_uint_eq(mf_jobj_get(t, "severity")->line, 4);
    ck_assert_int_eq(mf_jobj_get(t, "on")->type, MF_JTRUE);
    ck_assert_int_eq(mf_jobj_get(t, "quoted")->type, MF_JSTR);
    ck_assert_int_eq(mf_jobj_get(t, "none")->type, MF_JNULL);
    ck_assert_str_eq(mf_jobj_get(t, "real")->u.s, "2.5");
    ck_assert_str_eq(mf_jobj_get(t, "neg")->u.s, "-3");
    /* T1556.006 is not a number */
    ck_assert_int_eq(mf_jobj_get(t, "attack")->u.items[0]->type, MF_JSTR);
}
END_TEST

static const struct {
    const char *text;
    const char *msg;
} bad[] = {
    {"a: 1\na: 2\n", "t.yaml:2: duplicate key 'a'"},
    {"a: &x 1\nb: *x\n", "t.yaml:1: anchors are not supported"},
    {"a: [1, 2\nb: 3\n", "t.yaml:"},
    {"- a\n- b: c\n  d\n", "t.yaml:"},
    {"a: 1\n---\nb: 2\n", "t.yaml:3: only one YAML document"},
};

START_TEST(myl_errors_name_line)
{
    struct mf_err err;

    ck_assert_ptr_null(load(bad[_i].text, &err));
    ck_assert_msg(strncmp(err.msg, bad[_i].msg, strlen(bad[_i].msg)) == 0,
                  "case %d: '%s'", _i, err.msg);
}
END_TEST

START_TEST(myl_file_missing)
{
    struct mf_err err;

    ck_assert_ptr_null(mf_yaml_load_file(&A, "/nonexistent/x.yaml", &err));
    ck_assert(strstr(err.msg, "/nonexistent/x.yaml: cannot open") != NULL);
}
END_TEST

static Suite *
yaml_suite(void)
{
    Suite *s = suite_create("yaml");
    TCase *tc = tcase_create("mf_yaml_load()");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, myl_types_and_lines);
    tcase_add_loop_test(tc, myl_errors_name_line, 0, (int)(sizeof(bad) / sizeof(bad[0])));
    tcase_add_test(tc, myl_file_missing);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return mf_test_run(yaml_suite());
}
