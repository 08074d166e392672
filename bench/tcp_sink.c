/* tcp_sink.c - syslog side of the forwarding benchmark
 * (bench/forward-bench.sh).
 *
 *   forward-bench-tcp sink N lf|octet-counting
 *       Listen on 127.0.0.1 (a free port, printed on the first line of
 *       stdout), accept any number of connections and count frames: LF
 *       framing counts newlines, octet-counting (RFC 6587) parses
 *       "LEN SP MSG". When N frames have arrived it prints
 *       "frames N BYTES SECONDS" (since the first byte) and goes on
 *       draining until every connection is closed, then prints
 *       "total FRAMES BYTES" and exits 0. A broken
 *       octet-counting frame prints "error ..." and exits 1.
 *   forward-bench-tcp send PORT FILE line|buffered
 *       The baseline: connect to 127.0.0.1:PORT and send every line of
 *       FILE, LF-framed, with one write() per line (line) or through a
 *       64 KiB buffer (buffered).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONN   16
#define RBUF       (256 * 1024)
#define WBUF       (64 * 1024)

struct conn {
    int fd;
    long long need;     /* octet-counting: bytes of the current message left */
    long long len;      /* octet-counting: length being parsed, -1 none */
};

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Count the frames in buf; -1 on a framing error. */
static long long
count_octet(struct conn *c, const char *buf, size_t n)
{
    long long frames = 0;
    size_t i = 0;

    while (i < n) {
        if (c->need > 0) {
            size_t take = (size_t)c->need < n - i ? (size_t)c->need : n - i;

            c->need -= (long long)take;
            i += take;
            if (c->need == 0)
                frames++;
            continue;
        }
        if (buf[i] >= '0' && buf[i] <= '9') {
            c->len = (c->len < 0 ? 0 : c->len) * 10 + (buf[i] - '0');
            if (c->len > (1LL << 30))
                return -1;
        } else if (buf[i] == ' ' && c->len > 0) {
            c->need = c->len;
            c->len = -1;
        } else {
            return -1;
        }
        i++;
    }
    return frames;
}

static long long
count_lf(const char *buf, size_t n)
{
    long long frames = 0;
    const char *p = buf, *end = buf + n;

    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        frames++;
        p++;
    }
    return frames;
}

static int
cmd_sink(const char *n_s, const char *framing)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    struct conn conns[MAX_CONN];
    struct pollfd pfd[MAX_CONN + 1];
    size_t nconn = 0;
    long long n = atoll(n_s), frames = 0, bytes = 0;
    bool octet, reached = false;
    double t0 = 0;
    char *buf = malloc(RBUF);
    int one = 1, lfd;

    if (!buf)
        abort();
    if (n <= 0 || (strcmp(framing, "lf") && strcmp(framing, "octet-counting"))) {
        fprintf(stderr, "forward-bench-tcp: sink N lf|octet-counting\n");
        return 2;
    }
    octet = strcmp(framing, "lf") != 0;
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0) {
        perror("forward-bench-tcp: socket");
        return 2;
    }
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 16) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0) {
        perror("forward-bench-tcp: bind/listen");
        return 2;
    }
    printf("%u\n", (unsigned)ntohs(sa.sin_port));
    fflush(stdout);

    for (;;) {
        size_t np = 0;

        if (reached && nconn == 0)
            break;
        pfd[np].fd = lfd;
        pfd[np++].events = POLLIN;
        for (size_t i = 0; i < nconn; i++) {
            pfd[np].fd = conns[i].fd;
            pfd[np++].events = POLLIN;
        }
        if (poll(pfd, np, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("forward-bench-tcp: poll");
            return 2;
        }
        if ((pfd[0].revents & POLLIN) && nconn < MAX_CONN) {
            int fd = accept(lfd, NULL, NULL);

            if (fd >= 0) {
                conns[nconn].fd = fd;
                conns[nconn].need = 0;
                conns[nconn].len = -1;
                nconn++;
            }
        }
        for (size_t i = 1; i < np; i++) {
            struct conn *c;
            ssize_t r;
            long long f;

            if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            c = NULL;
            for (size_t k = 0; k < nconn; k++)
                if (conns[k].fd == pfd[i].fd)
                    c = &conns[k];
            if (!c)
                continue;
            r = read(c->fd, buf, RBUF);
            if (r <= 0) {
                if (r < 0 && errno == EINTR)
                    continue;
                close(c->fd);
                *c = conns[--nconn];
                continue;
            }
            if (bytes == 0)
                t0 = now_s();
            bytes += r;
            f = octet ? count_octet(c, buf, (size_t)r) : count_lf(buf, (size_t)r);
            if (f < 0) {
                printf("error octet-counting framing broken after %lld frames\n",
                       frames);
                fflush(stdout);
                return 1;
            }
            frames += f;
            if (!reached && frames >= n) {
                reached = true;
                printf("frames %lld %lld %.3f\n", frames, bytes, now_s() - t0);
                fflush(stdout);
            }
        }
    }
    if (frames != n)
        fprintf(stderr, "forward-bench-tcp: %lld frames, expected %lld\n",
                frames, n);
    printf("total %lld %lld\n", frames, bytes);   /* every frame, at the end */
    free(buf);
    close(lfd);
    return 0;
}

static int
write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int
cmd_send(const char *port_s, const char *path, const char *mode)
{
    struct sockaddr_in sa;
    FILE *in;
    char *line = NULL, *wbuf = NULL;
    size_t cap = 0, used = 0;
    ssize_t len;
    bool buffered = strcmp(mode, "buffered") == 0;
    int fd, rc = 0;

    if (!buffered && strcmp(mode, "line") != 0) {
        fprintf(stderr, "forward-bench-tcp: send PORT FILE line|buffered\n");
        return 2;
    }
    in = fopen(path, "r");
    if (!in) {
        perror(path);
        return 2;
    }
    fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(port_s));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        perror("forward-bench-tcp: connect");
        fclose(in);
        return 2;
    }
    if (buffered && !(wbuf = malloc(WBUF)))
        abort();
    while ((len = getline(&line, &cap, in)) > 0) {
        if (line[len - 1] != '\n') {
            /* getline() leaves room for the terminating NUL */
            line[len++] = '\n';
        }
        if (!buffered) {
            if (write_all(fd, line, (size_t)len) != 0)
                goto fail;
            continue;
        }
        if (used + (size_t)len > WBUF) {
            if (write_all(fd, wbuf, used) != 0)
                goto fail;
            used = 0;
        }
        if ((size_t)len > WBUF) {
            if (write_all(fd, line, (size_t)len) != 0)
                goto fail;
        } else {
            memcpy(wbuf + used, line, (size_t)len);
            used += (size_t)len;
        }
    }
    if (used && write_all(fd, wbuf, used) != 0)
        goto fail;
    goto out;
fail:
    perror("forward-bench-tcp: write");
    rc = 1;
out:
    close(fd);
    fclose(in);
    free(line);
    free(wbuf);
    return rc;
}

int
main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "sink") == 0)
        return cmd_sink(argv[2], argv[3]);
    if (argc == 5 && strcmp(argv[1], "send") == 0)
        return cmd_send(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: forward-bench-tcp sink N lf|octet-counting\n"
                    "       forward-bench-tcp send PORT FILE line|buffered\n");
    return 2;
}
