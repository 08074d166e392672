#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

enum mf_log_level mf_log_threshold = MF_LOG_INFO;

static mf_log_sink_fn log_sink;
static void *log_ud;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

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

void
mf_log_write(enum mf_log_level lvl, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (log_sink) {
        log_sink(lvl, msg, log_ud);
        return;
    }
    fprintf(stderr, "m365fwd: level=%s %s\n", mf_log_level_str(lvl), msg);
}
