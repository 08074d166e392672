/* clock.h - the time helpers every module needs, in one place. */
#ifndef MF_CLOCK_H
#define MF_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic milliseconds: for timeouts, deadlines and rate limits. */
int64_t mf_clock_mono_ms(void);
/* Wall-clock milliseconds since the Unix epoch (UTC). */
int64_t mf_clock_wall_ms(void);
/* Days from 1970-01-01 to the proleptic Gregorian date y-m-d (m 1..12),
 * negative before 1970 (Howard Hinnant's days_from_civil). */
int64_t mf_days_from_civil(int64_t y, unsigned m, unsigned d);
/* ms as "YYYY-MM-DDTHH:MM:SS" (UTC, no zone letter): the API's time
 * parameters and the gap events. */
void mf_clock_fmt_utc(int64_t ms, char *buf, size_t n);

#endif
