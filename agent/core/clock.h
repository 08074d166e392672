/* clock.h - the time helpers every module needs, in one place. */
#ifndef MF_CLOCK_H
#define MF_CLOCK_H

#include <stdint.h>

/* Monotonic milliseconds: for timeouts, deadlines and rate limits. */
int64_t mf_clock_mono_ms(void);
/* Wall-clock milliseconds since the Unix epoch (UTC). */
int64_t mf_clock_wall_ms(void);
/* Days from 1970-01-01 to the proleptic Gregorian date y-m-d (m 1..12),
 * negative before 1970 (Howard Hinnant's days_from_civil). */
int64_t mf_days_from_civil(int64_t y, unsigned m, unsigned d);

#endif
