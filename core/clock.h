/* clock.h - the time helpers every module needs, in one place. */
#ifndef MF_CLOCK_H
#define MF_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic milliseconds: for timeouts, deadlines and rate limits. */
int64_t mf_clock_mono_ms(void);
/* Wall-clock milliseconds since the Unix epoch (UTC). */
int64_t mf_clock_wall_ms(void);
/* The monotonic time ms from now, for pthread_cond_timedwait() on a
 * condition variable set to CLOCK_MONOTONIC (ms <= 0: now). */
struct timespec;
void mf_clock_mono_deadline(int64_t ms, struct timespec *ts);
/* Days from 1970-01-01 to the proleptic Gregorian date y-m-d (m 1..12),
 * negative before 1970 (Howard Hinnant's days_from_civil). */
int64_t mf_days_from_civil(int64_t y, unsigned m, unsigned d);
/* ms as broken-down UTC time and its milliseconds (0..999, also before
 * 1970). */
struct tm;
void mf_clock_tm(int64_t ms, struct tm *tm, int *msec);
/* The one UTC formatter: ms as "YYYY-MM-DDTHH:MM:SS", then ".mmm" with
 * MF_UTC_MS and "Z" with MF_UTC_Z (times before 1970 are fine). Returns
 * the length written (truncated to n - 1). */
#define MF_UTC_Z  0x01
#define MF_UTC_MS 0x02
size_t mf_clock_fmt_iso(int64_t ms, unsigned flags, char *buf, size_t n);
/* Without zone letter: the API's time parameters and the gap events. */
static inline void
mf_clock_fmt_utc(int64_t ms, char *buf, size_t n)
{
    mf_clock_fmt_iso(ms, 0, buf, n);
}

/* The one timestamp parser: ISO 8601 / RFC 3339 "YYYY-MM-DD" alone, or
 * with "T" (or "t" or a space) and "HH:MM[:SS]", an optional fraction
 * ("." or ",", milliseconds kept), then "Z", "+hh[:mm]", "-hh[:mm]" or no
 * zone (UTC). Spaces around are ignored. Milliseconds since the epoch;
 * 0 / -1. */
int mf_time_parse(const char *s, int64_t *ms);

#endif
