/* err.h - the one error type of m365fwd.
 *
 * struct mf_err collects errors: msg is the first one, n counts them, all
 * holds every one, one per line (bounded: when full, a final "..." line).
 * A function that can fail takes a struct mf_err * (NULL: errors are only
 * counted by nobody) and fills it; the caller prints msg or all.
 *
 * mf_err_set() reports one error (it replaces what was there);
 * mf_err_add() appends one, prefixed "FILE:LINE: " (line 0: "FILE: ";
 * file NULL: no prefix), for loaders that report every problem of a file.
 */
#ifndef MF_ERR_H
#define MF_ERR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define MF_ERR_MSG 256
#define MF_ERR_ALL 8192

struct mf_err {
    char msg[MF_ERR_MSG];
    size_t n;
    char all[MF_ERR_ALL];
};

void mf_err_reset(struct mf_err *e);
void mf_err_set(struct mf_err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void mf_err_add(struct mf_err *e, const char *file, uint32_t line,
                const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void mf_err_vadd(struct mf_err *e, const char *file, uint32_t line,
                 const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

#endif
