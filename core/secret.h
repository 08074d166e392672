/* secret.h - secrets are never in the configuration: it names a file or
 * an environment variable, and this reads the value when it is needed.
 * No function here writes a secret value into a message. */
#ifndef MF_SECRET_H
#define MF_SECRET_H

#include <stdbool.h>
#include <stddef.h>

struct mf_secret {
    char *data;   /* NUL-terminated; malloc'd; wiped by mf_secret_clear() */
    size_t len;
};

#define MF_SECRET_MAX (1024 * 1024)

/* Read a secret from a file (when file != NULL) or an environment variable.
 * File rules: a regular file (symlinks followed), not readable, writable or
 * executable by others (mode & 0007 == 0; group access is allowed), at most
 * MF_SECRET_MAX bytes, not empty. trim: drop trailing whitespace (client
 * secrets; keep false for PEM keys). Env rules: set and not empty.
 * what names the option in messages ("tenants[0].client_secret_file").
 * Returns 0, or -1 with err filled; err never contains the secret. */
int mf_secret_load(const char *file, const char *env, bool trim, const char *what,
                   struct mf_secret *out, char *err, size_t errlen);
void mf_secret_clear(struct mf_secret *s);

#endif
