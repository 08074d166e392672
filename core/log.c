/* log.c - leveled key=value or JSON log lines on stderr, with repeats of
 * the same message rate-limited. */
#include "log.h"
#include "clock.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum mf_log_level mf_log_threshold = MF_LOG_INFO;

static mf_log_sink_fn log_sink;
static void *log_ud;
static enum mf_log_format_kind log_format = MF_LOG_KV;
static long log_repeat_window_ms = 10000;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* Repeat suppression: a small table of recent messages (by hash). */
#define RECENT 64

struct recent {
    uint64_t hash;
    int64_t first_ms;    /* window start */
    unsigned suppressed;
};

static struct recent recent[RECENT];
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

const char *
mf_log_level_str(enum mf_log_level lvl)
{
    if ((unsigned)lvl < sizeof(level_names) / sizeof(level_names[0]))
        return level_names[lvl];
    return "?";
}

void
mf_log_set_level(enum mf_log_level lvl)
{
    mf_log_threshold = lvl;
}

void
mf_log_set_format(enum mf_log_format_kind f)
{
    log_format = f;
}

void
mf_log_set_repeat_window(long ms)
{
    log_repeat_window_ms = ms;
    memset(recent, 0, sizeof(recent));
}

int
mf_log_level_parse(const char *s, enum mf_log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum mf_log_level)i;
            return 0;
        }
    }
    return -1;
}

void
mf_log_set_sink(mf_log_sink_fn fn, void *ud)
{
    log_sink = fn;
    log_ud = ud;
}

static uint64_t
hash_msg(enum mf_log_level lvl, const char *s)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)lvl;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* How many earlier copies of this message were suppressed, or -1 when
 * this one must be suppressed too. */
static long
repeat_check(enum mf_log_level lvl, const char *msg)
{
    uint64_t h;
    struct recent *r;
    int64_t now;
    long n;

    if (log_repeat_window_ms <= 0)
        return 0;
    h = hash_msg(lvl, msg);
    r = &recent[h % RECENT];
    now = mf_clock_mono_ms();
    if (r->hash == h && now - r->first_ms < log_repeat_window_ms) {
        r->suppressed++;
        return -1;
    }
    n = r->hash == h ? (long)r->suppressed : 0;
    r->hash = h;
    r->first_ms = now;
    r->suppressed = 0;
    return n;
}

static void
emit(enum mf_log_level lvl, const char *msg, long repeated)
{
    char ts[32], line[1400];
    size_t n = 0;

    mf_clock_fmt_iso((int64_t)time(NULL) * 1000, MF_UTC_Z, ts, sizeof(ts));
    if (log_format == MF_LOG_JSON) {
        n += (size_t)snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"",
                              ts, mf_log_level_str(lvl));
        for (const char *p = msg; *p && n + 8 < sizeof(line); p++) {
            unsigned char ch = (unsigned char)*p;

            if (ch == '"' || ch == '\\') {
                line[n++] = '\\';
                line[n++] = (char)ch;
            } else if (ch < 0x20) {
                n += (size_t)snprintf(line + n, sizeof(line) - n, "\\u%04x", ch);
            } else {
                line[n++] = (char)ch;
            }
        }
        if (n >= sizeof(line) - 40)
            n = sizeof(line) - 40;
        n += (size_t)snprintf(line + n, sizeof(line) - n, "\"");
        if (repeated > 0)
            n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"repeated\":%ld", repeated);
        snprintf(line + n, sizeof(line) - n, "}");
    } else {
        if (repeated > 0)
            snprintf(line, sizeof(line), "ts=%s level=%s %s (repeated %ld more times)", ts,
                     mf_log_level_str(lvl), msg, repeated);
        else
            snprintf(line, sizeof(line), "ts=%s level=%s %s", ts, mf_log_level_str(lvl),
                     msg);
    }
    fprintf(stderr, "%s\n", line);
}

static void
vwrite(enum mf_log_level lvl, bool suppress, const char *fmt, va_list ap)
{
    char msg[1024];
    long repeated = 0;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* one line per message: a value with a newline must not forge a line */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    /* the collector's delivery threads log too: one line at a time, and
     * the repeat table is shared */
    pthread_mutex_lock(&log_mu);
    if (log_sink) {
        log_sink(lvl, msg, log_ud);
    } else {
        if (suppress)
            repeated = repeat_check(lvl, msg);
        if (repeated >= 0)
            emit(lvl, msg, repeated);
    }
    pthread_mutex_unlock(&log_mu);
}

void
mf_log_write(enum mf_log_level lvl, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vwrite(lvl, true, fmt, ap);
    va_end(ap);
}

void
mf_log_always(enum mf_log_level lvl, const char *fmt, ...)
{
    va_list ap;

    if (lvl > mf_log_threshold)
        return;
    va_start(ap, fmt);
    vwrite(lvl, false, fmt, ap);
    va_end(ap);
}
