/* tls.h - OpenSSL helpers shared by the TLS clients of the program (the
 * syslog output's TLS transport, the agent's certificate credential). */
#ifndef MF_TLS_H
#define MF_TLS_H

#include <stddef.h>

/* The reason of OpenSSL's oldest queued error into out (n bytes), the
 * queue then cleared. With no error queued: fallback, or with fallback
 * NULL the text of errno (else "unknown TLS error"). */
void mf_tls_reason(char *out, size_t n, const char *fallback);

#endif
