/* err.c - the one error type (see err.h). */
#include "err.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void
mf_err_reset(struct mf_err *e)
{
    if (!e)
        return;
    e->msg[0] = '\0';
    e->all[0] = '\0';
    e->n = 0;
}

/* Append one line to all (or the "..." mark once when full). */
static void
add_line(struct mf_err *e, const char *text, size_t k)
{
    size_t used = strlen(e->all);

    if (used + k + 2 < sizeof(e->all) - 4) {
        memcpy(e->all + used, text, k);
        e->all[used + k] = '\n';
        e->all[used + k + 1] = '\0';
    } else if (used + 4 < sizeof(e->all) &&
               (used < 4 || strcmp(e->all + used - 4, "...\n") != 0)) {
        memcpy(e->all + used, "...\n", 5);
    }
}

void
mf_err_vadd(struct mf_err *e, const char *file, uint32_t line, const char *fmt,
            va_list ap)
{
    char text[512];
    size_t k;
    int n = 0;

    if (!e)
        return;
    if (file && line)
        n = snprintf(text, sizeof(text), "%s:%" PRIu32 ": ", file, line);
    else if (file)
        n = snprintf(text, sizeof(text), "%s: ", file);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(text))
        n = (int)sizeof(text) - 1;
    vsnprintf(text + n, sizeof(text) - (size_t)n, fmt, ap);
    k = strlen(text);
    if (e->n == 0) {
        size_t m = k < sizeof(e->msg) - 1 ? k : sizeof(e->msg) - 1;

        memcpy(e->msg, text, m);
        e->msg[m] = '\0';
    }
    e->n++;
    add_line(e, text, k);
}

void
mf_err_add(struct mf_err *e, const char *file, uint32_t line, const char *fmt,
           ...)
{
    va_list ap;

    va_start(ap, fmt);
    mf_err_vadd(e, file, line, fmt, ap);
    va_end(ap);
}

void
mf_err_set(struct mf_err *e, const char *fmt, ...)
{
    va_list ap;

    mf_err_reset(e);
    va_start(ap, fmt);
    mf_err_vadd(e, NULL, 0, fmt, ap);
    va_end(ap);
}
