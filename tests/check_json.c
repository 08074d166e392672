/* check_json.c - our JSON parser/writer, checked against jansson. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "test_common.h"

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
parse(const char *s, struct mf_jerror *err)
{
    return mf_json_parse(&A, s, strlen(s), NULL, NULL, err);
}

static const char *
roundtrip(const char *s)
{
    static struct mf_buf b;
    struct mf_jval *v = parse(s, NULL);

    ck_assert_ptr_nonnull(v);
    if (!b.data)
        mf_buf_init(&b, 0);
    mf_buf_reset(&b);
    ck_assert_int_eq(mf_json_write(&b, v), 0);
    return b.data;
}

/* |  mf_json_parse()  | */

START_TEST(mjp_scalars_and_containers)
{
    ck_assert_str_eq(roundtrip(" {\"a\" : [1, -2.5e3, true, false, null, \"x\"] } "),
                     "{\"a\":[1,-2.5e3,true,false,null,\"x\"]}");
    ck_assert_str_eq(roundtrip("[]"), "[]");
    ck_assert_str_eq(roundtrip("{}"), "{}");
    ck_assert_str_eq(roundtrip("\"\\u00e9\\n\\t\\\"\\\\\\/\""), "\"\xc3\xa9\\n\\t\\\"\\\\/\"");
    /* surrogate pair */
    ck_assert_str_eq(roundtrip("\"\\ud83d\\ude00\""), "\"\xf0\x9f\x98\x80\"");
}
END_TEST

START_TEST(mjp_big_integers_kept_verbatim)
{
    /* jansson would reject the first; we keep the text */
    ck_assert_str_eq(roundtrip("[123456789012345678901234567890, 1.000000000000000000001]"),
                     "[123456789012345678901234567890,1.000000000000000000001]");
}
END_TEST

START_TEST(mjp_keys_order_and_duplicates)
{
    struct mf_jval *v = parse("{\"b\":1,\"a\":2,\"b\":3}", NULL);

    ck_assert_ptr_nonnull(v);
    ck_assert_uint_eq(v->len, 3);
    ck_assert_str_eq(v->u.mem[0].key, "b");
    ck_assert_str_eq(mf_jobj_get(v, "b")->u.s, "1");   /* first wins */
    ck_assert_str_eq(roundtrip("{\"b\":1,\"a\":2,\"b\":3}"), "{\"b\":1,\"a\":2,\"b\":3}");
}
END_TEST

START_TEST(mjp_invalid_utf8_repaired)
{
    const char in[] = "{\"k\":\"ab\xff\xfe" "c\",\"ok\":\"\xc3\xa9\",\"half\":\"\xe2\x82\"}";
    struct mf_jparse_info info;
    struct mf_jval *v = mf_json_parse(&A, in, sizeof(in) - 1, NULL, &info, NULL);
    struct mf_jval *k;

    ck_assert_ptr_nonnull(v);
    ck_assert_uint_eq(info.repaired_strings, 2);
    k = mf_jobj_get(v, "k");
    ck_assert_str_eq(k->u.s, "ab\xef\xbf\xbd\xef\xbf\xbd" "c");
    ck_assert(k->flags & MF_JF_REPAIRED);
    ck_assert(!(mf_jobj_get(v, "ok")->flags & MF_JF_REPAIRED));
    ck_assert_str_eq(mf_jobj_get(v, "half")->u.s, "\xef\xbf\xbd\xef\xbf\xbd");
}
END_TEST

START_TEST(mjp_lone_surrogates_and_bad_escapes_repaired)
{
    struct mf_jparse_info info;
    const char *in = "[\"\\ud800x\", \"\\udc00\", \"\\q\", \"\\u12G4\"]";
    struct mf_jval *v = mf_json_parse(&A, in, strlen(in), NULL, &info, NULL);

    ck_assert_ptr_nonnull(v);
    ck_assert_uint_eq(info.repaired_strings, 4);
    ck_assert_str_eq(v->u.items[0]->u.s, "\xef\xbf\xbdx");
}
END_TEST

START_TEST(mjp_raw_control_kept_and_escaped)
{
    const char in[] = "\"a\tb\x01" "c\"";

    ck_assert_str_eq(roundtrip(in), "\"a\\tb\\u0001c\"");
}
END_TEST

static const struct {
    const char *in;
    const char *msg;
    unsigned line, col;
} bad_cases[] = {
    {"", "empty input", 1, 1},
    {"{\"a\":1", "truncated input", 1, 7},
    {"{\"a\":1,\n \"b\":", "truncated input", 2, 6},
    {"[1,2,]", "unexpected character ']'", 1, 6},
    {"{\"a\" 1}", "':' expected", 1, 6},
    {"{a:1}", "string key expected", 1, 2},
    {"[01]", "',' or ']' expected", 1, 3},
    {"[1.]", "digit expected after '.'", 1, 4},
    {"[tru]", "expected true", 1, 2},
    {"{} x", "unexpected data after", 1, 4},
    {"\"abc", "unterminated string", 1, 5},
    {"[\n\n  \x01]", "unexpected byte 0x01", 3, 3},
    {"[NaN]", "unexpected character 'N'", 1, 2},
};

START_TEST(mjp_errors_have_location)
{
    struct mf_jerror err;
    struct mf_jval *v = parse(bad_cases[_i].in, &err);

    ck_assert_ptr_null(v);
    ck_assert_msg(strstr(err.msg, bad_cases[_i].msg) != NULL, "case %d: got '%s'", _i,
                  err.msg);
    ck_assert_uint_eq(err.line, bad_cases[_i].line);
    ck_assert_uint_eq(err.column, bad_cases[_i].col);
}
END_TEST

START_TEST(mjp_depth_limit)
{
    char *deep = malloc(20001);
    struct mf_jerror err;
    struct mf_jparse_opts o = {.max_depth = 0};

    memset(deep, '[', 10000);
    memset(deep + 10000, ']', 10000);
    deep[20000] = '\0';
    ck_assert_ptr_null(mf_json_parse(&A, deep, 20000, &o, NULL, &err));
    ck_assert(strstr(err.msg, "nesting deeper") != NULL);
    free(deep);
}
END_TEST

START_TEST(mjp_first_line_offset)
{
    struct mf_jparse_opts o = {.first_line = 41};
    struct mf_jerror err;

    ck_assert_ptr_null(mf_json_parse(&A, "{\n\"a\":}", 7, &o, NULL, &err));
    ck_assert_uint_eq(err.line, 42);
    ck_assert_ptr_nonnull(mf_json_parse(&A, "\xef\xbb\xbf{}", 5, NULL, NULL, NULL));
}
END_TEST

/* |  differential: ours vs jansson on random documents  | */

static unsigned rng_state = 12345;

static unsigned
rnd(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return (rng_state >> 8) & 0xffffff;
}

static json_t *
random_json(int depth)
{
    static const char *const words[] = {"", "a", "ClientIP", "é€😀", "quote\"back\\",
                                        "ctl\x01\x1f", "slash/", "tab\tnl\n"};
    unsigned k = rnd() % (depth > 4 ? 5 : 7);

    switch (k) {
    case 0:
        return json_null();
    case 1:
        return json_boolean(rnd() & 1);
    case 2:
        return json_integer((json_int_t)rnd() * (rnd() & 1 ? -1 : 1) * 1000003LL);
    case 3:
        return json_real((double)rnd() / 7.0);
    case 4:
        return json_string(words[rnd() % 8]);
    case 5: {
        json_t *a = json_array();
        unsigned n = rnd() % 6;

        for (unsigned i = 0; i < n; i++)
            json_array_append_new(a, random_json(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        unsigned n = rnd() % 6;

        for (unsigned i = 0; i < n; i++) {
            char key[32];

            snprintf(key, sizeof(key), "%s%u", words[rnd() % 8], i);
            json_object_set_new(o, key, random_json(depth + 1));
        }
        return o;
    }
    }
}

START_TEST(mjp_differential_jansson)
{
    struct mf_buf b;

    mf_buf_init(&b, 0);
    for (int iter = 0; iter < 2000; iter++) {
        json_t *doc = random_json(0);
        size_t flags = (iter % 3 == 0) ? JSON_INDENT(2) : JSON_COMPACT;
        char *text = json_dumps(doc, flags | JSON_ENCODE_ANY);
        struct mf_jval *v;
        json_t *back;
        json_error_t jerr;

        mf_arena_reset(&A);
        v = mf_json_parse(&A, text, strlen(text), NULL, NULL, NULL);
        ck_assert_msg(v != NULL, "ours failed on %s", text);
        mf_buf_reset(&b);
        ck_assert_int_eq(mf_json_write(&b, v), 0);
        back = json_loadb(b.data, b.len, JSON_DECODE_ANY, &jerr);
        ck_assert_msg(back != NULL, "jansson cannot read our output %s: %s", b.data,
                      jerr.text);
        ck_assert_msg(json_equal(doc, back), "differs:\n in: %s\nout: %s", text, b.data);
        json_decref(back);
        json_decref(doc);
        free(text);
    }
    mf_buf_fini(&b);
}
END_TEST

/* |  mutators and access  | */

START_TEST(mjo_build_and_lookup)
{
    struct mf_jval *o = mf_jobj(&A);
    struct mf_buf b;

    mf_jobj_set_path(&A, o, "metadata.product.name", mf_jstr(&A, "M365"));
    mf_jobj_set_path(&A, o, "metadata.version", mf_jstr(&A, "1.8.0"));
    mf_jobj_set(&A, o, "time", mf_jint(&A, -42));
    mf_jobj_set(&A, o, "time", mf_jint(&A, 1700000000000LL));
    mf_jobj_set(&A, o, "list", mf_jarr(&A));
    for (int i = 0; i < 20; i++)
        mf_jarr_push(&A, mf_jobj_get(o, "list"), mf_jreal(&A, i + 0.5));
    ck_assert_ptr_eq(mf_jobj_child(&A, o, "metadata"), mf_jobj_get(o, "metadata"));
    mf_buf_init(&b, 0);
    ck_assert_int_eq(mf_json_write(&b, o), 0);
    ck_assert(strncmp(b.data,
                      "{\"metadata\":{\"product\":{\"name\":\"M365\"},\"version\":\"1.8.0\"},"
                      "\"time\":1700000000000,\"list\":[0.5,1.5,",
                      90) == 0);
    ck_assert_str_eq(mf_jget_path(o, "metadata.product.name")->u.s, "M365");
    ck_assert_ptr_nonnull(mf_jobj_geti(o, "METADATA"));
    ck_assert_ptr_nonnull(mf_jobj_del(o, "time"));
    ck_assert_ptr_null(mf_jobj_get(o, "time"));
    mf_buf_fini(&b);
}
END_TEST

START_TEST(mjo_scalar_helpers)
{
    struct mf_jval *v = parse("[\"15\", 15, \" 7 \", \"x\", \"True\", false, \"<null>\", null, \"\"]",
                              NULL);
    int64_t x;
    bool bv;

    ck_assert_int_eq(mf_jget_int(v->u.items[0], &x), 0);
    ck_assert_int_eq(x, 15);
    ck_assert_int_eq(mf_jget_int(v->u.items[1], &x), 0);
    ck_assert_int_eq(mf_jget_int(v->u.items[2], &x), 0);
    ck_assert_int_eq(x, 7);
    ck_assert_int_eq(mf_jget_int(v->u.items[3], &x), -1);
    ck_assert_int_eq(mf_jget_bool(v->u.items[4], &bv), 0);
    ck_assert(bv);
    ck_assert_int_eq(mf_jget_bool(v->u.items[5], &bv), 0);
    ck_assert(!bv);
    ck_assert(mf_jis_nullish(v->u.items[6]));
    ck_assert(mf_jis_nullish(v->u.items[7]));
    ck_assert(mf_jis_nullish(v->u.items[8]));
    ck_assert(!mf_jis_nullish(v->u.items[3]));
    ck_assert(mf_json_is_number("-0.5e+3", 7));
    ck_assert(!mf_json_is_number("01", 2));
    ck_assert(mf_json_equal(parse("{\"a\":[1,2],\"b\":1.0}", NULL),
                            parse("{\"b\":1, \"a\":[1,2]}", NULL)));
    ck_assert(!mf_json_equal(parse("[1,2]", NULL), parse("[2,1]", NULL)));
    ck_assert(mf_json_equal(mf_json_clone(&A, v), v));
}
END_TEST

START_TEST(mjw_ceiling)
{
    struct mf_buf b;
    struct mf_jval *v = parse("{\"k\":\"0123456789012345678901234567890123456789\"}", NULL);

    mf_buf_init(&b, 16);
    ck_assert_int_eq(mf_json_write(&b, v), -1);
    mf_buf_fini(&b);
    /* invalid UTF-8 given to the string constructor is repaired too */
    ck_assert(mf_jstrn(&A, "a\x80", 2)->flags & MF_JF_REPAIRED);
}
END_TEST

static Suite *
json_suite(void)
{
    Suite *s = suite_create("json");
    TCase *tc;

    tc = tcase_create("mf_json_parse()");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, mjp_scalars_and_containers);
    tcase_add_test(tc, mjp_big_integers_kept_verbatim);
    tcase_add_test(tc, mjp_keys_order_and_duplicates);
    tcase_add_test(tc, mjp_invalid_utf8_repaired);
    tcase_add_test(tc, mjp_lone_surrogates_and_bad_escapes_repaired);
    tcase_add_test(tc, mjp_raw_control_kept_and_escaped);
    tcase_add_loop_test(tc, mjp_errors_have_location, 0,
                        (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
    tcase_add_test(tc, mjp_depth_limit);
    tcase_add_test(tc, mjp_first_line_offset);
    tcase_add_test(tc, mjp_differential_jansson);
    suite_add_tcase(s, tc);
    tc = tcase_create("mf_jobj_*()");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, mjo_build_and_lookup);
    tcase_add_test(tc, mjo_scalar_helpers);
    tcase_add_test(tc, mjw_ceiling);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return mf_test_run(json_suite());
}
