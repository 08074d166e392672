#include "clock.h"

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
mf_clock_fmt_utc(int64_t ms, char *buf, size_t n)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&s, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
}
