/* check_core.c - buf, arena, log, status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "buf.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "status.h"
#include "test_common.h"
#include "units.h"

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

START_TEST(mb_reserve_exact)
{
    struct mf_buf b;

    mf_buf_init(&b, 100);
    ck_assert_int_eq(mf_buf_reserve_exact(&b, 1000), -1);   /* over the ceiling */
    ck_assert_int_eq(mf_buf_reserve_exact(&b, 5), 0);
    ck_assert_uint_eq(b.cap, 6);                            /* 5 and the NUL */
    ck_assert_int_eq(mf_buf_append(&b, "abcde", 5), 0);
    ck_assert_uint_eq(b.cap, 6);                            /* no growth */
    ck_assert_str_eq(b.data, "abcde");
    ck_assert_int_eq(mf_buf_append(&b, "f", 1), 0);         /* grows as usual */
    ck_assert_str_eq(b.data, "abcdef");
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

/* ---- units: mf_parse_duration / _size, formatters ------------------ */

static const struct {
    const char *s;
    int64_t ms;
} durations[] = {
    {"500ms", 500}, {"60s", 60000}, {"15m", 900000}, {"24h", 86400000},
    {"7d", 604800000}, {"1h30m", 5400000}, {"0", 0}, {"0s", 0},
    {"1m30s", 90000},
};

START_TEST(opd_valid)
{
    int64_t ms = -1;

    ck_assert_int_eq(mf_parse_duration(durations[_i].s, &ms), 0);
    ck_assert_int_eq(ms, durations[_i].ms);
}
END_TEST

static const char *const bad_durations[] = {
    "", "60", "s", "5 s", "-5s", "5sec", "1.5h", "10y", "99999999999999999999d",
    "5s ", "ms",
};

START_TEST(opd_invalid)
{
    int64_t ms = 0;

    ck_assert_msg(mf_parse_duration(bad_durations[_i], &ms) == -1,
                  "'%s' accepted", bad_durations[_i]);
}
END_TEST

static const struct {
    const char *s;
    int64_t b;
} sizes[] = {
    {"512", 512}, {"64KiB", 65536}, {"1MiB", 1048576}, {"10MB", 10000000},
    {"1G", 1073741824}, {"2kb", 2000}, {"3k", 3072}, {"0", 0}, {"7B", 7},
};

START_TEST(ops_valid)
{
    int64_t b = -1;

    ck_assert_int_eq(mf_parse_size(sizes[_i].s, &b), 0);
    ck_assert_int_eq(b, sizes[_i].b);
}
END_TEST

static const char *const bad_sizes[] = {
    "", "KiB", "64 KiB", "1.5MiB", "-1", "10XB", "99999999999999999999",
    "9999999999999GiB",
};

START_TEST(ops_invalid)
{
    int64_t b = 0;

    ck_assert_msg(mf_parse_size(bad_sizes[_i], &b) == -1, "'%s' accepted",
                  bad_sizes[_i]);
}
END_TEST

START_TEST(off_formats)
{
    char s[32];

    mf_fmt_duration(60000, s, sizeof(s));
    ck_assert_str_eq(s, "1m");
    mf_fmt_duration(90000, s, sizeof(s));
    ck_assert_str_eq(s, "90s");
    mf_fmt_duration(1500, s, sizeof(s));
    ck_assert_str_eq(s, "1500ms");
    mf_fmt_duration(7 * 86400000LL, s, sizeof(s));
    ck_assert_str_eq(s, "7d");
    mf_fmt_duration(0, s, sizeof(s));
    ck_assert_str_eq(s, "0s");
    mf_fmt_size(65536, s, sizeof(s));
    ck_assert_str_eq(s, "64KiB");
    mf_fmt_size(1048576, s, sizeof(s));
    ck_assert_str_eq(s, "1MiB");
    mf_fmt_size(1000, s, sizeof(s));
    ck_assert_str_eq(s, "1000");
}
END_TEST


/* One semantics for the command line and the file (the CLI used to read
 * 16MB as 16 MiB): KB/MB/GB are 1000-based, K/M/G and KiB/MiB/GiB 1024. */
START_TEST(units_decimal_and_binary)
{
    int64_t b;

    ck_assert_int_eq(mf_parse_size("16MB", &b), 0);
    ck_assert_int_eq(b, 16000000);
    ck_assert_int_eq(mf_parse_size("16mb", &b), 0);
    ck_assert_int_eq(b, 16000000);
    ck_assert_int_eq(mf_parse_size("16MiB", &b), 0);
    ck_assert_int_eq(b, 16777216);
    ck_assert_int_eq(mf_parse_size("16M", &b), 0);
    ck_assert_int_eq(b, 16777216);
}
END_TEST

static const struct {
    const char *s;
    int rc;
    int64_t ms;
} times[] = {
    {"2020-02-07T20:49:49", 0, 1581108589000LL},
    {"2020-02-07T20:49:49Z", 0, 1581108589000LL},
    {"2020-02-07T20:49:49.1234567Z", 0, 1581108589123LL},
    {"2020-02-07T22:49:49+02:00", 0, 1581108589000LL},
    {"2020-02-07T22:49:49+0200", 0, 1581108589000LL},
    {"2020-02-07T22:49:49+02", 0, 1581108589000LL},
    {"2020-02-07t20:49:49z", 0, 1581108589000LL},
    {"2020-02-07 20:49", 0, 1581108540000LL},
    {"  2020-02-07T20:49:49  ", 0, 1581108589000LL},
    {"2020-02-07", 0, 1581033600000LL},
    {"1969-12-31T23:59:59", 0, -1000},
    {"2024-02-29T00:00:00", 0, 1709164800000LL},
    {"2023-07-23T12:32:53.5Z", 0, 1690115573500LL},
    {"2023-07-23T14:32:53.123+02:00", 0, 1690115573123LL},
    {"2000-02-29", 0, 951782400000LL},
    {"2026-02-29", -1, 0},
    {"1900-02-29", -1, 0},
    {"2026-04-31T00:00:00", -1, 0},
    {"2020-13-07T20:49:49", -1, 0},
    {"2020-02-07T24:00:00", -1, 0},
    {"yesterday", -1, 0},
    {"2020-02-07T20:49:49junk", -1, 0},
    {"2020-02-07T20:49:49.Z", -1, 0},
    {"2020-02-07T", -1, 0},
    {"", -1, 0},
};

START_TEST(time_parse)
{
    int64_t ms = 0;

    ck_assert_int_eq(mf_time_parse(times[_i].s, &ms), times[_i].rc);
    if (times[_i].rc == 0)
        ck_assert_int_eq(ms, times[_i].ms);
}
END_TEST

START_TEST(time_parse_null_and_format)
{
    char b[40];
    int64_t ms;

    ck_assert_int_eq(mf_time_parse(NULL, &ms), -1);
    ck_assert_uint_eq(mf_clock_fmt_iso(1581108589123LL, 0, b, sizeof(b)), 19);
    ck_assert_str_eq(b, "2020-02-07T20:49:49");
    mf_clock_fmt_iso(1581108589123LL, MF_UTC_Z, b, sizeof(b));
    ck_assert_str_eq(b, "2020-02-07T20:49:49Z");
    mf_clock_fmt_iso(1581108589123LL, MF_UTC_Z | MF_UTC_MS, b, sizeof(b));
    ck_assert_str_eq(b, "2020-02-07T20:49:49.123Z");
    mf_clock_fmt_iso(-1, MF_UTC_Z | MF_UTC_MS, b, sizeof(b));
    ck_assert_str_eq(b, "1969-12-31T23:59:59.999Z");
    ck_assert_uint_eq(mf_clock_fmt_iso(0, MF_UTC_Z, b, 8), 7);
    ck_assert_str_eq(b, "1970-01");
    /* what the formatter writes parses back */
    mf_clock_fmt_iso(1709164800007LL, MF_UTC_Z | MF_UTC_MS, b, sizeof(b));
    ck_assert_int_eq(mf_time_parse(b, &ms), 0);
    ck_assert_int_eq(ms, 1709164800007LL);
}
END_TEST

START_TEST(err_collects)
{
    struct mf_err e;

    mf_err_reset(&e);
    ck_assert_uint_eq(e.n, 0);
    mf_err_add(&e, "f.yaml", 3, "a: %s", "bad");
    mf_err_add(&e, "f.yaml", 0, "b");
    mf_err_add(&e, NULL, 0, "c");
    ck_assert_uint_eq(e.n, 3);
    ck_assert_str_eq(e.msg, "f.yaml:3: a: bad");
    ck_assert_str_eq(e.all, "f.yaml:3: a: bad\nf.yaml: b\nc\n");
    mf_err_set(&e, "only %d", 1);
    ck_assert_uint_eq(e.n, 1);
    ck_assert_str_eq(e.all, "only 1\n");
    for (int i = 0; i < 2000; i++)
        mf_err_add(&e, NULL, 0, "error number %d", i);
    ck_assert_uint_eq(e.n, 2001);
    ck_assert_uint_lt(strlen(e.all), sizeof(e.all));
    ck_assert_str_eq(e.all + strlen(e.all) - 4, "...\n");
    mf_err_add(NULL, NULL, 0, "ignored");
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
    tcase_add_test(tc, mb_reserve_exact);
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
    tc = tcase_create("mf_parse_duration()");
    tcase_add_loop_test(tc, opd_valid, 0,
                        sizeof(durations) / sizeof(durations[0]));
    tcase_add_loop_test(tc, opd_invalid, 0,
                        sizeof(bad_durations) / sizeof(bad_durations[0]));
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_parse_size()");
    tcase_add_loop_test(tc, ops_valid, 0, sizeof(sizes) / sizeof(sizes[0]));
    tcase_add_loop_test(tc, ops_invalid, 0,
                        sizeof(bad_sizes) / sizeof(bad_sizes[0]));
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_fmt_duration()");
    tcase_add_test(tc, off_formats);
    tcase_add_test(tc, units_decimal_and_binary);
    suite_add_tcase(s, tc);
    tc = tcase_create("mf_time_parse()");
    tcase_add_loop_test(tc, time_parse, 0, sizeof(times) / sizeof(times[0]));
    tcase_add_test(tc, time_parse_null_and_format);
    suite_add_tcase(s, tc);
    tc = tcase_create("mf_err");
    tcase_add_test(tc, err_collects);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return mf_test_run(core_suite());
}
