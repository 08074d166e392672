/* optcheck.c - shared value checkers (see optcheck.h). */
#include "optcheck.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int
mf_opt_why(char *out, size_t n, const char *text)
{
    snprintf(out, n, "%s", text);
    return -1;
}

/* DNS name: labels of letters, digits and '-', at least two labels. */
bool
mf_is_domain(const char *s, bool need_dot)
{
    size_t label = 0, labels = 1, total = strlen(s);
    const char *p;

    if (total == 0 || total > 253)
        return false;
    for (p = s; *p; p++) {
        if (*p == '.') {
            if (label == 0 || p[-1] == '-')
                return false;
            label = 0;
            labels++;
            continue;
        }
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return false;
        if (*p == '-' && label == 0)
            return false;
        if (++label > 63)
            return false;
    }
    if (label == 0 || p[-1] == '-')
        return false;
    return !need_dot || labels >= 2;
}

int
mf_check_label(const char *s, char *w, size_t n)
{
    size_t i, len = strlen(s);

    if (len > 64)
        return mf_opt_why(w, n, "is longer than 64 characters");
    if (!isalnum((unsigned char)s[0]))
        return mf_opt_why(w, n, "must start with a letter or a digit");
    for (i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
            return mf_opt_why(w, n, "may contain only letters, digits, '.', '_' "
                             "and '-'");
    return 0;
}

int
mf_check_token(const char *s, char *w, size_t n)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return mf_opt_why(w, n, "must not contain spaces or control characters");
    return 0;
}

int
mf_check_env_name(const char *s, char *w, size_t n)
{
    if (!isalpha((unsigned char)*s) && *s != '_')
        return mf_opt_why(w, n, "is not an environment variable name");
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return mf_opt_why(w, n, "is not an environment variable name");
    return 0;
}

/* host:port, [v6]:port. */
int
mf_check_hostport(const char *s, char *w, size_t n)
{
    const char *colon, *p;
    long port = 0;
    char host[256];
    size_t hl;

    if (s[0] == '[') {
        const char *end = strchr(s, ']');

        if (!end || end[1] != ':' || end == s + 1)
            return mf_opt_why(w, n, "is not host:port ([IPv6]:port for IPv6)");
        hl = (size_t)(end - s - 1);
        for (p = s + 1; p < end; p++)
            if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
                return mf_opt_why(w, n, "has an invalid IPv6 address");
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || colon == s)
            return mf_opt_why(w, n, "is not host:port");
        if (memchr(s, ':', (size_t)(colon - s)))
            return mf_opt_why(w, n, "has an IPv6 address without brackets "
                             "(write [addr]:port)");
        hl = (size_t)(colon - s);
        if (hl >= sizeof(host))
            return mf_opt_why(w, n, "has a host name that is too long");
        memcpy(host, s, hl);
        host[hl] = '\0';
        if (!mf_is_domain(host, false))
            return mf_opt_why(w, n, "has an invalid host name");
    }
    if (!colon[1])
        return mf_opt_why(w, n, "has no port");
    for (p = colon + 1; *p; p++) {
        if (!isdigit((unsigned char)*p) || port > 65535)
            return mf_opt_why(w, n, "has an invalid port");
        port = port * 10 + (*p - '0');
    }
    if (port < 1 || port > 65535)
        return mf_opt_why(w, n, "has a port outside 1-65535");
    return 0;
}

/* https://host[:port][/path]; no credentials, query or fragment. */
int
mf_check_url(const char *s, char *w, size_t n, const char *const *schemes,
                  const char *expect)
{
    const char *auth = NULL, *end;
    char host[300];
    size_t i;

    for (i = 0; schemes[i]; i++) {
        size_t k = strlen(schemes[i]);

        if (strncasecmp(s, schemes[i], k) == 0) {
            auth = s + k;
            break;
        }
    }
    if (!auth)
        return mf_opt_why(w, n, expect);
    if (mf_check_token(s, w, n) != 0)
        return -1;
    end = auth + strcspn(auth, "/?#");
    if (memchr(auth, '@', (size_t)(end - auth)))
        return mf_opt_why(w, n, "must not contain credentials");
    if (strpbrk(end, "?#"))
        return mf_opt_why(w, n, "must not have a query or fragment");
    if (end == auth || (size_t)(end - auth) >= sizeof(host))
        return mf_opt_why(w, n, "has no host");
    memcpy(host, auth, (size_t)(end - auth));
    host[end - auth] = '\0';
    if (!strchr(host, ':') || host[0] == '[') {
        if (host[0] == '[' ? strchr(host, ']') == NULL
                           : !mf_is_domain(host, false))
            return mf_opt_why(w, n, "has an invalid host");
        return 0;
    }
    return mf_check_hostport(host, w, n);
}

int
mf_check_https_url(const char *s, char *w, size_t n)
{
    static const char *const schemes[] = {"https://", NULL};

    return mf_check_url(s, w, n, schemes,
                             "must be an https:// URL (TLS is always used "
                             "and verified)");
}
