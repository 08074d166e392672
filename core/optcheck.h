/* optcheck.h - value checkers for option tables (mf_opt_check_fn): the
 * syntaxes several plugins share (labels, host:port, URLs, environment
 * variable names). Each returns 0, or -1 with the reason in w ("is not
 * host:port"); the engine prefixes the key and the value. */
#ifndef MF_OPTCHECK_H
#define MF_OPTCHECK_H

#include <stdbool.h>
#include <stddef.h>

/* Copy text into out; returns -1 (for "return mf_opt_why(...)"). */
int mf_opt_why(char *out, size_t n, const char *text);
/* DNS name: labels of letters, digits, '-', '_'; need_dot: two labels. */
bool mf_is_domain(const char *s, bool need_dot);
/* Letters, digits, '.', '_', '-', starting with a letter or digit, <= 64. */
int mf_check_label(const char *s, char *w, size_t n);
/* No space or control character. */
int mf_check_token(const char *s, char *w, size_t n);
int mf_check_env_name(const char *s, char *w, size_t n);
/* host:port or [v6]:port, port 1..65535. */
int mf_check_hostport(const char *s, char *w, size_t n);
/* One of schemes ("https://", ...; NULL-terminated), then host[:port]
 * [/path]; no credentials, query or fragment. expect: the reason when the
 * scheme is not one of them. */
int mf_check_url(const char *s, char *w, size_t n, const char *const *schemes,
                 const char *expect);
/* https:// only. */
int mf_check_https_url(const char *s, char *w, size_t n);

#endif
