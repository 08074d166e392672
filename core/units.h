/* units.h - the one parser and formatter of sizes and durations, used by
 * the configuration file and the command line alike.
 *
 * Durations: a number with a unit, or several ("1h30m"): ms, s, m, h, d;
 * "0" alone is allowed. Stored as int64_t milliseconds.
 * Sizes: bytes ("512", "512b") or a number with a unit, case-insensitive:
 * K, M, G, KiB, MiB, GiB are 1024-based; KB, MB, GB are 1000-based.
 * Stored as int64_t bytes. No sign, no space, no fraction; overflow is an
 * error.
 */
#ifndef MF_UNITS_H
#define MF_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* The units as numbers, for option tables' bounds. */
#define MF_MS_S 1000LL
#define MF_MS_M (60 * MF_MS_S)
#define MF_MS_H (60 * MF_MS_M)
#define MF_MS_D (24 * MF_MS_H)
#define MF_KIB 1024LL
#define MF_MIB (1024 * MF_KIB)
#define MF_GIB (1024 * MF_MIB)

int mf_parse_duration(const char *s, int64_t *ms);   /* 0 / -1 */
int mf_parse_size(const char *s, int64_t *bytes);    /* 0 / -1 */
/* Largest exact unit: 60000 -> "1m", 1500 -> "1500ms", 0 -> "0s". */
void mf_fmt_duration(int64_t ms, char *out, size_t n);
/* Largest exact binary unit: 65536 -> "64KiB", 1048576 -> "1MiB",
 * 1000 -> "1000". Both formats parse back to the same value. */
void mf_fmt_size(int64_t bytes, char *out, size_t n);

#endif
