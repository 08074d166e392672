/* units.c - sizes and durations (see units.h). */
#include "units.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *unit;
    int64_t ms;
} dur_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
    {NULL, 0},
};

static const struct {
    const char *unit;
    int64_t mul;
} size_units[] = {
    {"", 1}, {"b", 1},
    {"k", 1024}, {"kb", 1000}, {"kib", 1024},
    {"m", 1048576}, {"mb", 1000000}, {"mib", 1048576},
    {"g", 1073741824}, {"gb", 1000000000}, {"gib", 1073741824},
    {NULL, 0},
};

/* Leading decimal digits of *p into *num (advances *p). 0 / -1. */
static int
number(const char **p, int64_t *num)
{
    int64_t v = 0;

    if (!isdigit((unsigned char)**p))
        return -1;
    while (isdigit((unsigned char)**p)) {
        if (v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (*(*p)++ - '0');
    }
    *num = v;
    return 0;
}

int
mf_parse_duration(const char *s, int64_t *ms)
{
    int64_t total = 0;
    const char *p = s;

    if (!s || !*p)
        return -1;
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    while (*p) {
        int64_t num, mul = 0;
        size_t ulen = 0;

        if (number(&p, &num) != 0)
            return -1;
        while (isalpha((unsigned char)p[ulen]))
            ulen++;
        for (int i = 0; dur_units[i].unit; i++)
            if (strlen(dur_units[i].unit) == ulen &&
                strncmp(dur_units[i].unit, p, ulen) == 0)
                mul = dur_units[i].ms;
        if (mul == 0 || num > (INT64_MAX - total) / mul)
            return -1;
        total += num * mul;
        p += ulen;
    }
    *ms = total;
    return 0;
}

int
mf_parse_size(const char *s, int64_t *bytes)
{
    const char *p = s;
    int64_t num;

    if (!s || number(&p, &num) != 0)
        return -1;
    for (int i = 0; size_units[i].unit; i++)
        if (strcasecmp(size_units[i].unit, p) == 0) {
            if (num > INT64_MAX / size_units[i].mul)
                return -1;
            *bytes = num * size_units[i].mul;
            return 0;
        }
    return -1;
}

void
mf_fmt_duration(int64_t ms, char *out, size_t n)
{
    int i;

    if (ms == 0) {
        snprintf(out, n, "0s");
        return;
    }
    for (i = 4; i > 0; i--)
        if (ms % dur_units[i].ms == 0)
            break;
    snprintf(out, n, "%" PRId64 "%s", ms / dur_units[i].ms, dur_units[i].unit);
}

void
mf_fmt_size(int64_t bytes, char *out, size_t n)
{
    static const char *const u[] = {"GiB", "MiB", "KiB"};
    static const int64_t m[] = {1073741824, 1048576, 1024};

    for (int i = 0; i < 3; i++)
        if (bytes != 0 && bytes % m[i] == 0) {
            snprintf(out, n, "%" PRId64 "%s", bytes / m[i], u[i]);
            return;
        }
    snprintf(out, n, "%" PRId64, bytes);
}
