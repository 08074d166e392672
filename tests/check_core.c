/* check_core.c - buf, arena, log, status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "buf.h"
#include "log.h"
#include "status.h"
#include "test_common.h"

/* |  mf_buf_*()  | */

START_TEST(mb_append_grows)
{
    struct mf_buf b;

    mf_buf_init(&b, 0);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(mf_buf_append(&b, "abcdef", 6), 0);
    ck_assert_uint_eq(b.len, 6000);
    ck_assert_int_eq(b.data[b.len], '\0');
    ck_assert_int_eq(memcmp(b.data + 5994, "abcdef", 6), 0);
    mf_buf_fini(&b);
}
END_TEST

START_TEST(mb_ceiling_refuses)
{
    struct mf_buf b;

    mf_buf_init(&b, 10);
    ck_assert_int_eq(mf_buf_append(&b, "12345678", 8), 0);
    ck_assert_int_eq(mf_buf_append(&b, "123", 3), -1);
    ck_assert_uint_eq(b.len, 8);            /* unchanged on failure */
    ck_assert_int_eq(mf_buf_append(&b, "12", 2), 0);
    ck_assert_int_eq(mf_buf_appendc(&b, 'x'), -1);
    ck_assert_int_eq(mf_buf_printf(&b, "%d", 1), -1);
    ck_assert_str_eq(b.data, "1234567812");
    mf_buf_fini(&b);
}
END_TEST

START_TEST(mb_consume_and_shrink)
{
    struct mf_buf b;

    mf_buf_init(&b, 0);
    mf_buf_printf(&b, "hello %s", "world");
    mf_buf_consume(&b, 6);
    ck_assert_str_eq(b.data, "world");
    mf_buf_reserve(&b, 1 << 20);
    ck_assert_uint_ge(b.cap, 1 << 20);
    mf_buf_shrink(&b, 4096);
    ck_assert_uint_eq(b.cap, 4096);
    ck_assert_str_eq(b.data, "world");
    mf_buf_consume(&b, 100);
    ck_assert_uint_eq(b.len, 0);
    mf_buf_fini(&b);
}
END_TEST

/* |  mf_arena_*()  | */

START_TEST(ma_alloc_aligned_and_reset)
{
    struct mf_arena a;
    size_t base;

    mf_arena_init(&a, 4096);
    base = a.total;
    for (int i = 0; i < 1000; i++) {
        char *p = mf_arena_alloc(&a, (size_t)(i % 37) + 1);

        ck_assert_uint_eq((uintptr_t)p % 16, 0);
        memset(p, 0xAB, (size_t)(i % 37) + 1);
    }
    ck_assert_uint_gt(a.total, base);
    /* a big object gets its own block */
    memset(mf_arena_alloc(&a, 1 << 20), 1, 1 << 20);
    mf_arena_reset(&a);
    ck_assert_uint_eq(a.total, base);
    ck_assert_str_eq(mf_arena_printf(&a, "%s-%d", "x", 42), "x-42");
    ck_assert_str_eq(mf_arena_strndup(&a, "abcdef", 3), "abc");
    mf_arena_fini(&a);
}
END_TEST

START_TEST(ma_big_first_allocation_freed_on_reset)
{
    struct mf_arena a;

    /* a big block made while the first block is current hangs below it;
     * reset must free it too (LeakSanitizer checks this under ASan) */
    mf_arena_init(&a, 4096);
    memset(mf_arena_alloc(&a, 70000), 7, 70000);
    memset(mf_arena_alloc(&a, 90000), 8, 90000);
    ck_assert_uint_eq(a.total, 4096 + 70000 + 90000);
    mf_arena_reset(&a);
    ck_assert_uint_eq(a.total, 4096);
    memset(mf_arena_alloc(&a, 100), 1, 100);
    mf_arena_fini(&a);
}
END_TEST

/* |  mf_log_*() and mf_status_str()  | */

static int sink_calls;
static char sink_last[256];

static void
test_sink(enum mf_log_level lvl, const char *msg, void *ud)
{
    (void)lvl;
    (void)ud;
    sink_calls++;
    snprintf(sink_last, sizeof(sink_last), "%s", msg);
}

static int evaluated;

static int
side_effect(void)
{
    evaluated++;
    return 1;
}

START_TEST(ml_threshold_skips_arguments)
{
    enum mf_log_level lvl;

    mf_log_set_sink(test_sink, NULL);
    mf_log_set_level(MF_LOG_WARN);
    mf_log(MF_LOG_DEBUG, "x %d", side_effect());
    ck_assert_int_eq(evaluated, 0);
    ck_assert_int_eq(sink_calls, 0);
    mf_log(MF_LOG_ERROR, "boom %d", side_effect());
    ck_assert_int_eq(evaluated, 1);
    ck_assert_str_eq(sink_last, "boom 1");
    ck_assert_int_eq(mf_log_level_parse("DEBUG", &lvl), 0);
    ck_assert_int_eq(lvl, MF_LOG_DEBUG);
    ck_assert_int_eq(mf_log_level_parse("loud", &lvl), -1);
    ck_assert_str_eq(mf_status_str(MF_DROP), "drop");
    mf_log_set_sink(NULL, NULL);
}
END_TEST

/* stderr goes through a pipe so the lines can be read back */
static char *
capture_stderr(void (*fn)(void))
{
    static char buf[8192];
    int fds[2], saved;
    ssize_t n;

    ck_assert_int_eq(pipe(fds), 0);
    fflush(stderr);
    saved = dup(2);
    dup2(fds[1], 2);
    close(fds[1]);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void
log_some(void)
{
    mf_log_set_level(MF_LOG_INFO);
    mf_log_set_repeat_window(60000);
    for (int i = 0; i < 5; i++)
        mf_log(MF_LOG_WARN, "tenant=%s throttled", "contoso");
    mf_log(MF_LOG_INFO, "two\nlines \"quoted\"");
}

START_TEST(ml_kv_repeats_suppressed)
{
    const char *out;

    mf_log_set_format(MF_LOG_KV);
    out = capture_stderr(log_some);
    /* one throttled line, not five; the newline did not forge a line */
    ck_assert_ptr_nonnull(strstr(out, "level=warn tenant=contoso throttled\n"));
    ck_assert_ptr_null(strstr(strstr(out, "throttled") + 1, "throttled"));
    ck_assert_ptr_nonnull(strstr(out, "level=info two lines \"quoted\"\n"));
    ck_assert_int_eq(strncmp(out, "ts=", 3), 0);
}
END_TEST

START_TEST(ml_json_lines)
{
    const char *out;

    mf_log_set_format(MF_LOG_JSON);
    out = capture_stderr(log_some);
    ck_assert_ptr_nonnull(strstr(out, "\"level\":\"warn\",\"msg\":\"tenant=contoso throttled\"}"));
    ck_assert_ptr_nonnull(strstr(out, "\"msg\":\"two lines \\\"quoted\\\"\"}"));
    mf_log_set_format(MF_LOG_KV);
}
END_TEST

static Suite *
core_suite(void)
{
    Suite *s = suite_create("core");
    TCase *tc;

    tc = tcase_create("mf_buf");
    tcase_add_test(tc, mb_append_grows);
    tcase_add_test(tc, mb_ceiling_refuses);
    tcase_add_test(tc, mb_consume_and_shrink);
    suite_add_tcase(s, tc);
    tc = tcase_create("mf_arena");
    tcase_add_test(tc, ma_alloc_aligned_and_reset);
    tcase_add_test(tc, ma_big_first_allocation_freed_on_reset);
    suite_add_tcase(s, tc);
    tc = tcase_create("mf_log");
    tcase_add_test(tc, ml_threshold_skips_arguments);
    tcase_add_test(tc, ml_kv_repeats_suppressed);
    tcase_add_test(tc, ml_json_lines);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return mf_test_run(core_suite());
}
