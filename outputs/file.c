/* file.c - buffered line writer; see file.h. */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"

struct mf_file_out {
    int fd;
    bool own_fd;
    bool failed;
    bool regular;       /* a regular file: rollback by truncation */
    int err;            /* errno of the first failure */
    off_t end;          /* offset after the last line written */
    off_t acked;        /* offset after the last line made durable
                           (mf_file_out_ack / mf_file_out_set_acked) */
    char *name;
    char *buf;
    size_t len;
    size_t cap;
    size_t lines;
};

/* A file that ends in a partial line (a crash in the middle of a write):
 * cut back to its last complete line, so the next line is never glued to
 * a torn one. The offset of the end, or -1 (then errno). */
static off_t
cut_partial(int fd)
{
    off_t end = lseek(fd, 0, SEEK_END), pos = end;
    char buf[4096];

    while (pos > 0) {
        size_t n = pos > (off_t)sizeof(buf) ? sizeof(buf) : (size_t)pos;
        ssize_t r = pread(fd, buf, n, pos - (off_t)n);

        if (r != (ssize_t)n)
            return errno == EBADF ? end : -1;     /* opened write-only */
        for (size_t i = n; i > 0; i--)
            if (buf[i - 1] == '\n') {
                pos -= (off_t)(n - i);
                goto found;
            }
        pos -= (off_t)n;
    }
found:
    if (pos != end && ftruncate(fd, pos) != 0)
        return -1;
    return pos;
}

static struct mf_file_out *
out_new(int fd, bool own, const char *name, size_t bufsize)
{
    struct mf_file_out *o = mf_xcalloc(1, sizeof(*o));
    struct stat st;

    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        o->regular = true;
        o->end = o->acked = lseek(fd, 0, SEEK_END);
    }
    o->fd = fd;
    o->own_fd = own;
    o->name = mf_xstrdup(name ? name : "-");
    o->cap = bufsize ? bufsize : MF_FILE_OUT_DEFAULT_BUF;
    o->buf = mf_xmalloc(o->cap);
    return o;
}

struct mf_file_out *
mf_file_out_open(const char *path, int append, size_t bufsize)
{
    int fd;

    if (!path || strcmp(path, "-") == 0)
        return out_new(STDOUT_FILENO, false, "<stdout>", bufsize);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC |
              (append ? O_APPEND : O_TRUNC), 0640);
    if (fd < 0 && errno == EACCES)     /* a write-only file (or directory) */
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC |
                  (append ? O_APPEND : O_TRUNC), 0640);
    if (fd < 0)
        return NULL;
    if (append) {
        struct stat st;

        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
            cut_partial(fd) < 0) {
            int e = errno;

            close(fd);
            errno = e;
            return NULL;
        }
    }
    return out_new(fd, true, path, bufsize);
}

struct mf_file_out *
mf_file_out_fdopen(int fd, const char *name, size_t bufsize)
{
    return out_new(fd, false, name, bufsize);
}

static int
write_all(struct mf_file_out *o, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(o->fd, p, n);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            o->failed = true;
            o->err = errno;
            return -1;
        }
        p += w;
        n -= (size_t)w;
        o->end += w;
    }
    return 0;
}

int
mf_file_out_rollback(struct mf_file_out *o)
{
    int rc = 0;

    o->len = 0;
    if (o->regular) {
        if (ftruncate(o->fd, o->acked) != 0)
            rc = -1;
        else
            o->end = o->acked;
    }
    if (rc == 0) {
        o->failed = false;
        o->err = 0;
    }
    return rc;
}

int
mf_file_out_written(const struct mf_file_out *o, off_t *end)
{
    if (o->failed) {
        errno = o->err;
        return -1;
    }
    *end = o->end;
    return 0;
}

void
mf_file_out_set_acked(struct mf_file_out *o, off_t end)
{
    if (end > o->acked)
        o->acked = end;
}

int
mf_file_out_moved(const struct mf_file_out *o)
{
    struct stat fs, ps;

    if (!o->own_fd || !o->regular || fstat(o->fd, &fs) != 0)
        return 0;
    if (fs.st_nlink == 0)
        return 2;
    if (stat(o->name, &ps) != 0 || ps.st_ino != fs.st_ino || ps.st_dev != fs.st_dev)
        return 1;
    return 0;
}

int
mf_file_out_flush(struct mf_file_out *o)
{
    int rc;

    if (o->failed) {
        errno = o->err;
        return -1;
    }
    rc = write_all(o, o->buf, o->len);
    o->len = 0;
    return rc;
}

int
mf_file_out_line(struct mf_file_out *o, const char *data, size_t len)
{
    if (o->failed) {
        errno = o->err;
        return -1;
    }
    if (len + 1 > o->cap - o->len) {
        if (mf_file_out_flush(o) < 0)
            return -1;
        if (len + 1 > o->cap) {
            /* bigger than the buffer: straight through */
            if (write_all(o, data, len) < 0 || write_all(o, "\n", 1) < 0)
                return -1;
            o->lines++;
            return 0;
        }
    }
    memcpy(o->buf + o->len, data, len);
    o->buf[o->len + len] = '\n';
    o->len += len + 1;
    o->lines++;
    return 0;
}

int
mf_file_out_fd(const struct mf_file_out *o)
{
    return o->fd;
}

int
mf_file_out_sync_fd(int fd)
{
    struct stat st;

    if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode))
        return 0;
    if (fsync(fd) < 0 && errno != EINVAL && errno != EROFS)
        return -1;
    return 0;
}

int
mf_file_out_ack(struct mf_file_out *o)
{
    if (mf_file_out_flush(o) < 0)
        return -1;
    if (mf_file_out_sync_fd(o->fd) < 0) {
        o->failed = true;
        o->err = errno;
        return -1;
    }
    o->acked = o->end;
    return 0;
}

int
mf_file_out_close(struct mf_file_out *o)
{
    int rc = 0, err = 0;

    if (!o)
        return 0;
    if (mf_file_out_flush(o) < 0) {
        rc = -1;
        err = errno;
    }
    if (o->own_fd && close(o->fd) < 0 && rc == 0) {
        rc = -1;
        err = errno;
    }
    free(o->buf);
    free(o->name);
    free(o);
    if (rc < 0)
        errno = err;
    return rc;
}

size_t
mf_file_out_lines(const struct mf_file_out *o)
{
    return o->lines;
}

const char *
mf_file_out_name(const struct mf_file_out *o)
{
    return o->name;
}
