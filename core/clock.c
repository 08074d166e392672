#include "clock.h"

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

static int64_t
ms_of(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
mf_clock_mono_ms(void)
{
    return ms_of(CLOCK_MONOTONIC);
}

int64_t
mf_clock_wall_ms(void)
{
    return ms_of(CLOCK_REALTIME);
}

void
mf_clock_mono_deadline(int64_t ms, struct timespec *ts)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    if (ms <= 0)
        return;
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int64_t
mf_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void
mf_clock_tm(int64_t ms, struct tm *tm, int *msec)
{
    int64_t s = ms / 1000;
    time_t t;

    *msec = (int)(ms % 1000);
    if (*msec < 0) {
        *msec += 1000;
        s--;
    }
    t = (time_t)s;
    gmtime_r(&t, tm);
}

size_t
mf_clock_fmt_iso(int64_t ms, unsigned flags, char *buf, size_t n)
{
    int msec, w;
    struct tm tm;

    mf_clock_tm(ms, &tm, &msec);
    w = snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (w >= 0 && (size_t)w < n && (flags & MF_UTC_MS))
        w += snprintf(buf + w, n - (size_t)w, ".%03d", msec);
    if (w >= 0 && (size_t)w < n && (flags & MF_UTC_Z))
        w += snprintf(buf + w, n - (size_t)w, "Z");
    if (w < 0 || n == 0)
        return 0;
    return (size_t)w < n ? (size_t)w : n - 1;
}

/* n decimal digits at s into *out. 0 / -1. */
static int
digits(const char *s, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* "Z", "+hh[:][mm]", "-hh[:][mm]" or nothing at *p: offset in seconds. */
static int
zone(const char **p, int64_t *off)
{
    const char *s = *p;
    int oh, om = 0, sign;

    *off = 0;
    if (*s == 'Z' || *s == 'z') {
        *p = s + 1;
        return 0;
    }
    if (*s != '+' && *s != '-')
        return 0;
    sign = *s == '-' ? -1 : 1;
    if (digits(s + 1, 2, &oh))
        return -1;
    s += 3;
    if (*s == ':')
        s++;
    if (*s >= '0' && *s <= '9') {
        if (digits(s, 2, &om))
            return -1;
        s += 2;
    }
    *off = sign * ((int64_t)oh * 3600 + om * 60);
    *p = s;
    return 0;
}

/* "HH:MM[:SS][.fff]" then the zone. */
static int
time_of_day(const char **p, int *h, int *mi, int *sec, int *frac, int64_t *off)
{
    const char *s = *p;

    if (digits(s, 2, h) || s[2] != ':' || digits(s + 3, 2, mi))
        return -1;
    s += 5;
    if (*s == ':') {
        if (digits(s + 1, 2, sec))
            return -1;
        s += 3;
    }
    if (*s == '.' || *s == ',') {
        int scale = 100;

        s++;
        if (*s < '0' || *s > '9')
            return -1;
        for (; *s >= '0' && *s <= '9'; s++) {
            *frac += (*s - '0') * scale;
            scale /= 10;
        }
    }
    *p = s;
    return zone(p, off);
}

static int
days_in_month(int y, int m)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : mdays[m - 1];
}

int
mf_time_parse(const char *s, int64_t *ms)
{
    int Y, M, D, h = 0, mi = 0, sec = 0, frac = 0;
    int64_t days, off = 0;
    const char *p;

    if (!s)
        return -1;
    while (*s == ' ')
        s++;
    if (digits(s, 4, &Y) || s[4] != '-' || digits(s + 5, 2, &M) || s[7] != '-' ||
        digits(s + 8, 2, &D))
        return -1;
    p = s + 10;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (time_of_day(&p, &h, &mi, &sec, &frac, &off) != 0)
            return -1;
    }
    while (*p == ' ')
        p++;
    if (*p || M < 1 || M > 12 || D < 1 || D > days_in_month(Y, M) || h > 23 ||
        mi > 59 || sec > 60)
        return -1;
    days = mf_days_from_civil(Y, (unsigned)M, (unsigned)D);
    *ms = ((days * 86400 + h * 3600 + mi * 60 + sec) - off) * 1000 + frac;
    return 0;
}
