/* tls.c - OpenSSL helpers; see tls.h. */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

void
mf_tls_reason(char *out, size_t n, const char *fallback)
{
    unsigned long e = ERR_get_error();

    if (e)
        ERR_error_string_n(e, out, n);
    else if (fallback)
        snprintf(out, n, "%s", fallback);
    else
        snprintf(out, n, "%s", errno ? strerror(errno) : "unknown TLS error");
    ERR_clear_error();
}
