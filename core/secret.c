/* secret.c - see secret.h. */
#include "secret.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"

void
mf_secret_clear(struct mf_secret *s)
{
    if (s->data) {
        explicit_bzero(s->data, s->len);
        free(s->data);
    }
    s->data = NULL;
    s->len = 0;
}

static size_t
trim_len(const char *s, size_t n)
{
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    return n;
}

int
mf_secret_load(const char *file, const char *env, bool trim, const char *what,
               struct mf_secret *out, char *err, size_t errlen)
{
    struct stat st;
    size_t n = 0;
    char *buf;
    int fd;

    out->data = NULL;
    out->len = 0;
    if (!what)
        what = "secret";
    if (!file) {
        const char *v = env ? getenv(env) : NULL;

        if (!env) {
            snprintf(err, errlen, "%s: no secret source", what);
            return -1;
        }
        if (!v) {
            snprintf(err, errlen, "%s: environment variable %s is not set",
                     what, env);
            return -1;
        }
        n = trim ? trim_len(v, strlen(v)) : strlen(v);
        if (n == 0) {
            snprintf(err, errlen, "%s: environment variable %s is empty", what,
                     env);
            return -1;
        }
        out->data = mf_xstrndup(v, n);
        out->len = n;
        return 0;
    }
    fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s: cannot open: %s", what, file,
                 strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: %s: not a regular file", what, file);
        close(fd);
        return -1;
    }
    if (st.st_mode & (S_IROTH | S_IWOTH | S_IXOTH)) {
        snprintf(err, errlen,
                 "%s: %s: accessible by other users (mode %04o); run "
                 "'chmod o-rwx %s'", what, file,
                 (unsigned)(st.st_mode & 07777), file);
        close(fd);
        return -1;
    }
    if (st.st_size > MF_SECRET_MAX) {
        snprintf(err, errlen, "%s: %s: larger than 1 MiB", what, file);
        close(fd);
        return -1;
    }
    buf = mf_xmalloc((size_t)st.st_size + 1);
    for (;;) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "%s: %s: read error: %s", what, file,
                     strerror(errno));
            explicit_bzero(buf, n);
            free(buf);
            close(fd);
            return -1;
        }
        if (r == 0 || (n += (size_t)r) == (size_t)st.st_size)
            break;
    }
    close(fd);
    if (trim)
        n = trim_len(buf, n);
    buf[n] = '\0';
    if (n == 0) {
        snprintf(err, errlen, "%s: %s: empty", what, file);
        free(buf);
        return -1;
    }
    out->data = buf;
    out->len = n;
    return 0;
}

