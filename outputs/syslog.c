/* syslog.c - the syslog output: udp, tcp or tls (RFC 5425, OpenSSL),
 * octet-counting or lf framing (RFC 6587), messages from syslog_fmt.c.
 *
 * Delivery (output.h):
 *   tcp/tls  a record is acknowledged once the receiver's TCP acknowledged
 *            every byte of its frame (our socket's unacknowledged bytes,
 *            SIOCOUTQ; with TLS, once nothing is left unacknowledged):
 *            written is not delivered - a frame can sit in our send buffer
 *            when the receiver goes away. Plain syslog has no
 *            application-level acknowledgement, so a receiver that dies can
 *            still lose what sat in its kernel buffer or its own queue.
 *            Frames are therefore kept until acknowledged, and the last
 *            min(max_in_flight, SL_WINDOW_RECORDS) acknowledged ones (at
 *            most SL_WINDOW_BYTES) stay in a resend window: when the
 *            connection breaks (write error, or the receiver closed it -
 *            checked before every write and while waiting for
 *            acknowledgements) the window, the unacknowledged frames and
 *            everything not yet written are sent again on the next
 *            connection. Duplicate bound: at most the window plus what was
 *            unacknowledged, per broken connection. Loss bound: only what a
 *            receiver lost beyond the window after its TCP acknowledged it.
 *   udp      best effort: a record is acknowledged once sendto() accepted
 *            it; a lost datagram is not noticed. ICMP port unreachable
 *            (ECONNREFUSED) is counted as failed but not resent.
 * Not-yet-written records are bounded by max_in_flight: at the limit send()
 * answers MF_RETRY (backpressure). Reconnects back off exponentially from
 * SL_BACKOFF_MIN_MS to SL_BACKOFF_MAX_MS. All I/O is non-blocking; send()
 * writes what the socket takes and returns.
 * Oversized records: see syslog_fmt.h (json payload reduced and marked, else
 * MF_DROP, logged with the record Id and counted; the next flush() fails).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "secret.h"
#include "clock.h"
#include "log.h"
#include "mem.h"
#include "mf_config.h"
#include "output.h"
#include "tls.h"
#include "syslog_fmt.h"
#include "syslog_relp.h"

#define SL_WINDOW_RECORDS 4096
#define SL_WINDOW_BYTES ((size_t)8 << 20)
#define SL_BACKOFF_MIN_MS 100
#define SL_BACKOFF_MAX_MS 5000
#define SL_UDP_MAX 65507

enum sl_state { SL_DOWN = 0, SL_CONNECTING, SL_HANDSHAKE, SL_UP };

struct sl_entry {
    char *frame;
    size_t len;
    uint64_t end;           /* bytes written on the connection after it */
    bool acked;             /* counted in stats.acked (once) */
    char id[64];
};

/* Threads: send() formats the message and its frame on the caller's
 * thread, outside mu; mu guards the queue, the connection and the
 * counters (queueing, writing a batch, poll, flush, stats). */
struct syslog_out {
    struct mf_output base;
    const struct mf_output_conf *conf;
    pthread_mutex_t mu;
    struct mf_syslog_fmt fmt;
    char host[256];
    char port[16];
    struct mf_syslog_ident ident;
    int transport;
    int framing;
    size_t max_size;
    size_t max_in_flight;
    size_t win_records;

    int fd;
    enum sl_state state;
    SSL_CTX *ctx;
    SSL *ssl;
    int64_t next_attempt_ms;
    int backoff_ms;
    bool logged_down;       /* one warning per outage */

    /* ring of entries: [head, head + n); the first `written` are written,
     * of which the first `tacked` are acknowledged by the receiver's TCP
     * (the resend window); entry `written` has `woff` bytes written. */
    struct sl_entry *q;
    size_t qcap, head, n, written, tacked, woff;
    size_t win_bytes;       /* bytes of the acknowledged entries kept */
    uint64_t conn_bytes;    /* bytes written on this connection */
    uint64_t conn_trimmed;  /* entries acknowledged by TCP on this
                               connection that left the resend window */
    uint64_t unconfirmed;   /* such entries on connections that broke:
                               maybe lost (the next flush fails) */

    struct mf_output_stats st;
    uint64_t dropped_since_flush;
    uint64_t connects;
};

#define SL_IOV   64     /* frames per writev() */
#define SL_BATCH 64     /* records queued before send() writes them */

static struct sl_entry *
at(struct syslog_out *o, size_t i)
{
    return &o->q[(o->head + i) % o->qcap];
}

/* "host:port", "[v6]:port". */
static int
split_address(const char *addr, char *host, size_t hn, char *port, size_t pn)
{
    const char *colon;

    if (!addr || !*addr)
        return -1;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');

        if (!end || end[1] != ':' || (size_t)(end - addr - 1) >= hn)
            return -1;
        snprintf(host, hn, "%.*s", (int)(end - addr - 1), addr + 1);
        colon = end + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon || (size_t)(colon - addr) >= hn || colon == addr)
            return -1;
        snprintf(host, hn, "%.*s", (int)(colon - addr), addr);
    }
    if (!colon[1] || strlen(colon + 1) >= pn ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return -1;
    snprintf(port, pn, "%s", colon + 1);
    return 0;
}

static int
tls_setup(struct syslog_out *o, char *err, size_t errsz)
{
    const struct mf_output_conf *oc = o->conf;
    const struct mf_syslog_conf *c = oc->plugin;
    char e[256];

    o->ctx = SSL_CTX_new(TLS_client_method());
    if (!o->ctx) {
        mf_tls_reason(e, sizeof(e), NULL);
        snprintf(err, errsz, "outputs '%s': TLS: %s", oc->name, e);
        return -1;
    }
    SSL_CTX_set_min_proto_version(o->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(o->ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(o->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                     SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (c->ca_file ? SSL_CTX_load_verify_locations(o->ctx, c->ca_file, NULL) != 1
                   : SSL_CTX_set_default_verify_paths(o->ctx) != 1) {
        mf_tls_reason(e, sizeof(e), NULL);
        snprintf(err, errsz, "outputs '%s': ca_file %s: %s", oc->name,
                 c->ca_file ? c->ca_file : "(system store)", e);
        return -1;
    }
    if (c->cert_file) {
        struct mf_secret key = {0};
        BIO *bio;
        EVP_PKEY *pk;

        if (SSL_CTX_use_certificate_chain_file(o->ctx, c->cert_file) != 1) {
            mf_tls_reason(e, sizeof(e), NULL);
            snprintf(err, errsz, "outputs '%s': cert_file %s: %s", oc->name,
                     c->cert_file, e);
            return -1;
        }
        if (!c->key_file) {
            snprintf(err, errsz, "outputs '%s': cert_file needs key_file", oc->name);
            return -1;
        }
        if (mf_secret_load(c->key_file, NULL, false, "key_file", &key, e,
                                  sizeof(e)) != 0) {
            snprintf(err, errsz, "outputs '%s': %s", oc->name, e);
            return -1;
        }
        bio = BIO_new_mem_buf(key.data, (int)key.len);
        pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        mf_secret_clear(&key);
        if (!pk || SSL_CTX_use_PrivateKey(o->ctx, pk) != 1 ||
            SSL_CTX_check_private_key(o->ctx) != 1) {
            mf_tls_reason(e, sizeof(e), NULL);
            EVP_PKEY_free(pk);
            snprintf(err, errsz, "outputs '%s': key_file %s: %s", oc->name,
                     c->key_file, e);
            return -1;
        }
        EVP_PKEY_free(pk);
    }
    return 0;
}

static void
conn_close(struct syslog_out *o)
{
    if (o->ssl) {
        SSL_free(o->ssl);
        o->ssl = NULL;
    }
    if (o->fd >= 0)
        close(o->fd);
    o->fd = -1;
    o->state = SL_DOWN;
}

/* The connection broke: everything in the window goes again. */
static void
conn_fail(struct syslog_out *o, const char *what)
{
    int64_t t = mf_clock_mono_ms();

    if (!o->logged_down)
        mf_log(MF_LOG_WARN, "output=%s syslog %s:%s: %s; reconnecting (%zu "
               "records to resend)", o->conf->name, o->host, o->port, what,
               o->n);
    o->logged_down = true;
    conn_close(o);
    if (o->transport != MF_SYSLOG_UDP && o->conn_trimmed) {
        mf_log(MF_LOG_ERROR, "output=%s syslog %s:%s: %" PRIu64 " records that the "
               "receiver's TCP acknowledged on the broken connection had left the resend "
               "window (%zu records, %zu bytes): they are lost if the receiver had not "
               "read them (transport: relp acknowledges each record)", o->conf->name,
               o->host, o->port, o->conn_trimmed, o->win_records, SL_WINDOW_BYTES);
        o->unconfirmed += o->conn_trimmed;
        o->conn_trimmed = 0;
    }
    if (o->transport != MF_SYSLOG_UDP) {
        o->st.failed += o->written + (o->woff ? 1 : 0);
        o->written = 0;
        o->tacked = 0;
        o->woff = 0;
        o->win_bytes = 0;
    }
    o->next_attempt_ms = t + o->backoff_ms;
    o->backoff_ms = o->backoff_ms * 2 > SL_BACKOFF_MAX_MS ? SL_BACKOFF_MAX_MS
                                                          : o->backoff_ms * 2;
}

static void
conn_up(struct syslog_out *o)
{
    o->state = SL_UP;
    o->conn_bytes = 0;
    o->conn_trimmed = 0;
    o->backoff_ms = SL_BACKOFF_MIN_MS;
    o->connects++;
    if (o->logged_down)
        mf_log(MF_LOG_INFO, "output=%s syslog %s:%s: connected", o->conf->name,
               o->host, o->port);
    o->logged_down = false;
}

static void
conn_start(struct syslog_out *o)
{
    struct addrinfo hints = {0}, *res = NULL, *ai;
    int rc, fd = -1;
    char what[300];

    hints.ai_socktype = o->transport == MF_SYSLOG_UDP ? SOCK_DGRAM : SOCK_STREAM;
    hints.ai_family = AF_UNSPEC;
    rc = getaddrinfo(o->host, o->port, &hints, &res);
    if (rc != 0) {
        snprintf(what, sizeof(what), "resolve: %s", gai_strerror(rc));
        conn_fail(o, what);
        return;
    }
    rc = -1;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0)
            continue;
        rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc == 0 || errno == EINPROGRESS)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(what, sizeof(what), "connect: %s", strerror(errno));
        conn_fail(o, what);
        return;
    }
    o->fd = fd;
    if (o->transport != MF_SYSLOG_UDP) {
        int one = 1;

        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (rc == 0 || o->transport == MF_SYSLOG_UDP) {
        o->state = o->transport == MF_SYSLOG_TLS ? SL_HANDSHAKE : SL_UP;
        if (o->state == SL_UP)
            conn_up(o);
    } else {
        o->state = SL_CONNECTING;
    }
    if (o->transport == MF_SYSLOG_TLS) {
        X509_VERIFY_PARAM *vp;
        unsigned char tmp[16];
        bool ip = inet_pton(AF_INET, o->host, tmp) == 1 ||
                  inet_pton(AF_INET6, o->host, tmp) == 1;

        o->ssl = SSL_new(o->ctx);
        SSL_set_fd(o->ssl, fd);
        vp = SSL_get0_param(o->ssl);
        if (ip) {
            X509_VERIFY_PARAM_set1_ip_asc(vp, o->host);
        } else {
            SSL_set_tlsext_host_name(o->ssl, o->host);
            X509_VERIFY_PARAM_set1_host(vp, o->host, 0);
        }
    }
}

/* Step the connection state machine; wait at most timeout_ms for progress
 * when it is waiting on the socket. */
static void
conn_step(struct syslog_out *o, int timeout_ms)
{
    struct pollfd p;
    char what[300];

    if (o->state == SL_DOWN) {
        if (mf_clock_mono_ms() < o->next_attempt_ms)
            return;
        conn_start(o);
        if (o->state == SL_DOWN)
            return;
    }
    if (o->state == SL_CONNECTING) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);

        p = (struct pollfd){.fd = o->fd, .events = POLLOUT};
        if (poll(&p, 1, timeout_ms) <= 0)
            return;
        if (getsockopt(o->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            soerr = errno;
        if (soerr) {
            snprintf(what, sizeof(what), "connect: %s", strerror(soerr));
            conn_fail(o, what);
            return;
        }
        if (o->transport == MF_SYSLOG_TLS) {
            o->state = SL_HANDSHAKE;
        } else {
            conn_up(o);
            return;
        }
    }
    if (o->state == SL_HANDSHAKE) {
        int rc, e;

        ERR_clear_error();
        rc = SSL_connect(o->ssl);
        if (rc == 1) {
            conn_up(o);
            return;
        }
        e = SSL_get_error(o->ssl, rc);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            p = (struct pollfd){.fd = o->fd,
                                .events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT};
            poll(&p, 1, timeout_ms);
            return;
        }
        {
            char es[256];
            long vr = SSL_get_verify_result(o->ssl);

            mf_tls_reason(es, sizeof(es), NULL);
            snprintf(what, sizeof(what), "TLS handshake: %s%s%s", es,
                     vr != X509_V_OK ? "; certificate: " : "",
                     vr != X509_V_OK ? X509_verify_cert_error_string(vr) : "");
        }
        conn_fail(o, what);
    }
}

/* The receiver never sends: readable means closed (or garbage, dropped). */
static bool
peer_closed(struct syslog_out *o)
{
    struct pollfd p = {.fd = o->fd, .events = POLLIN | POLLRDHUP};
    char buf[512];

    if (poll(&p, 1, 0) <= 0)
        return false;
    if (p.revents & (POLLERR | POLLHUP | POLLRDHUP))
        return true;
    if (o->ssl) {
        int rc;

        ERR_clear_error();
        rc = SSL_read(o->ssl, buf, sizeof(buf));
        if (rc > 0)
            return false;
        rc = SSL_get_error(o->ssl, rc);
        return rc != SSL_ERROR_WANT_READ && rc != SSL_ERROR_WANT_WRITE;
    }
    {
        ssize_t r = recv(o->fd, buf, sizeof(buf), MSG_DONTWAIT);

        if (r > 0)
            return false;
        return r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    }
}

/* Oldest acknowledged entries leave the window beyond its bounds. */
static void
trim_window(struct syslog_out *o)
{
    while (o->tacked > 0 &&
           (o->tacked > o->win_records || o->win_bytes > SL_WINDOW_BYTES ||
            o->transport == MF_SYSLOG_UDP)) {
        struct sl_entry *e = at(o, 0);

        if (o->transport != MF_SYSLOG_UDP)
            o->conn_trimmed++;
        o->win_bytes -= o->transport == MF_SYSLOG_UDP ? 0 : e->len;
        free(e->frame);
        e->frame = NULL;
        o->head = (o->head + 1) % o->qcap;
        o->n--;
        o->written--;
        o->tacked--;
    }
}

/* Entries the receiver acknowledged (TCP) since the last look. */
static void
update_acks(struct syslog_out *o)
{
    uint64_t acked_to = o->conn_bytes;

    if (o->transport != MF_SYSLOG_UDP) {
        int outq = 0;

        if (o->fd < 0 || ioctl(o->fd, SIOCOUTQ, &outq) != 0)
            return;
        if (o->ssl)     /* TLS records do not map to frames: all or none */
            acked_to = outq > 0 ? 0 : o->conn_bytes;
        else
            acked_to = o->conn_bytes - (uint64_t)outq;
    }
    while (o->tacked < o->written) {
        struct sl_entry *e = at(o, o->tacked);

        if (e->end > acked_to)
            break;
        if (!e->acked) {
            e->acked = true;
            o->st.acked++;
        }
        o->tacked++;
        if (o->transport != MF_SYSLOG_UDP)
            o->win_bytes += e->len;
    }
    trim_window(o);
}

static void
entry_written(struct syslog_out *o, struct sl_entry *e)
{
    o->conn_bytes += e->len - o->woff;
    e->end = o->conn_bytes;
    o->written++;
    o->woff = 0;
}

/* Write what the socket takes. */
static void
write_frames(struct syslog_out *o)
{
    char what[300];

    if (o->state != SL_UP)
        return;
    if (o->transport != MF_SYSLOG_UDP && o->tacked < o->n && peer_closed(o)) {
        conn_fail(o, "connection closed by the receiver");
        return;
    }
    while (o->written < o->n) {
        struct sl_entry *e = at(o, o->written);
        ssize_t w;

        if (o->transport == MF_SYSLOG_UDP) {
            w = send(o->fd, e->frame, e->len, MSG_NOSIGNAL);
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                return;
            if (w < 0 && errno != ECONNREFUSED) {
                snprintf(what, sizeof(what), "send: %s", strerror(errno));
                conn_fail(o, what);
                return;
            }
            if (w < 0)
                o->st.failed++;     /* best effort: not resent */
            entry_written(o, e);
            continue;
        }
        if (!o->ssl) {
            /* plain TCP: many frames per system call */
            struct iovec iov[SL_IOV];
            int k = 0;

            for (size_t i = o->written; i < o->n && k < SL_IOV; i++, k++) {
                struct sl_entry *x = at(o, i);
                size_t off = i == o->written ? o->woff : 0;

                iov[k].iov_base = x->frame + off;
                iov[k].iov_len = x->len - off;
            }
            w = writev(o->fd, iov, k);
            if (w < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                    return;
                snprintf(what, sizeof(what), "send: %s", strerror(errno));
                conn_fail(o, what);
                return;
            }
            while (w > 0 && o->written < o->n) {
                struct sl_entry *x = at(o, o->written);
                size_t rem = x->len - o->woff;

                if ((size_t)w >= rem) {
                    w -= (ssize_t)rem;
                    entry_written(o, x);
                } else {
                    o->woff += (size_t)w;
                    o->conn_bytes += (size_t)w;
                    w = 0;
                }
            }
            continue;
        }
        {
            int rc, err;

            ERR_clear_error();
            rc = SSL_write(o->ssl, e->frame + o->woff, (int)(e->len - o->woff));
            if (rc <= 0) {
                err = SSL_get_error(o->ssl, rc);
                if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ)
                    return;
                mf_tls_reason(what, sizeof(what), NULL);
                conn_fail(o, what);
                return;
            }
            w = rc;
        }
        if (o->woff + (size_t)w == e->len) {
            entry_written(o, e);
        } else {
            o->woff += (size_t)w;
            o->conn_bytes += (size_t)w;
        }
    }
}

/* Write what the socket takes, then see what the receiver acknowledged. */
static void
pump(struct syslog_out *o)
{
    write_frames(o);
    if (o->state == SL_UP)
        update_acks(o);
}

/* Serve the transport for at most timeout_ms, returning early when every
 * record is written and acknowledged. */
static void
drive(struct syslog_out *o, int timeout_ms)
{
    int64_t deadline = mf_clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);

    for (;;) {
        int64_t left = deadline - mf_clock_mono_ms();
        int wait = left > 0 ? (int)left : 0;

        if (o->state != SL_UP)
            conn_step(o, wait > 50 ? 50 : wait);
        pump(o);
        if (o->tacked == o->n && o->state == SL_UP)
            return;
        left = deadline - mf_clock_mono_ms();
        if (left <= 0)
            return;
        if (o->state == SL_UP && o->written < o->n) {
            struct pollfd p = {.fd = o->fd, .events = POLLOUT};

            poll(&p, 1, left > 50 ? 50 : (int)left);
        } else if (o->state == SL_UP) {
            /* written, waiting for the receiver's TCP acknowledgements (no
             * event says so: look again shortly; a close wakes us) */
            struct pollfd p = {.fd = o->fd, .events = POLLIN | POLLRDHUP};

            poll(&p, 1, left > 5 ? 5 : (int)left);
        } else if (o->state == SL_DOWN) {
            int64_t until = o->next_attempt_ms - mf_clock_mono_ms();

            if (until > 0) {
                if (until > left)
                    until = left;
                poll(NULL, 0, (int)until);
            }
        }
    }
}

static void
grow(struct syslog_out *o)
{
    size_t ncap = o->qcap ? o->qcap * 2 : 64;
    struct sl_entry *nq = mf_xcalloc(ncap, sizeof(*nq));

    for (size_t i = 0; i < o->n; i++)
        nq[i] = *at(o, i);
    free(o->q);
    o->q = nq;
    o->qcap = ncap;
    o->head = 0;
}

static struct mf_output *
sl_open(const struct mf_output_conf *oc, struct mf_err *err)
{
    const struct mf_syslog_conf *c = oc->plugin;
    struct syslog_out *o = mf_xcalloc(1, sizeof(*o));
    char e[512];

    o->conf = oc;
    o->fd = -1;
    o->transport = c->transport;
    o->framing = c->framing;
    if (split_address(c->address, o->host, sizeof(o->host), o->port,
                      sizeof(o->port)) != 0) {
        mf_err_set(err, "outputs '%s': address '%s': expected host:port or "
                 "[v6]:port", oc->name, c->address ? c->address : "");
        free(o);
        return NULL;
    }
    if (o->transport == MF_SYSLOG_RELP) {
        struct mf_output *r = mf_syslog_relp_open(oc, o->host, o->port, err);

        free(o);
        return r;
    }
    o->max_size = c->max_message_size > 0 ? (size_t)c->max_message_size : 65536;
    if (o->transport == MF_SYSLOG_UDP && o->max_size > SL_UDP_MAX)
        o->max_size = SL_UDP_MAX;
    o->max_in_flight = oc->max_in_flight > 0 ? (size_t)oc->max_in_flight : 10000;
    o->win_records = o->max_in_flight < SL_WINDOW_RECORDS ? o->max_in_flight
                                                          : SL_WINDOW_RECORDS;
    mf_syslog_fmt_init(&o->fmt, &o->ident, c, o->max_size);
    if (o->transport == MF_SYSLOG_TLS && tls_setup(o, e, sizeof(e)) != 0) {
        mf_err_set(err, "%s", e);
        SSL_CTX_free(o->ctx);
        free(o);
        return NULL;
    }
    o->backoff_ms = SL_BACKOFF_MIN_MS;
    pthread_mutex_init(&o->mu, NULL);
    return &o->base;
}

void
mf_syslog_fmt_init(struct mf_syslog_fmt *fmt, struct mf_syslog_ident *id,
                   const struct mf_syslog_conf *c, size_t max_size)
{
    if (gethostname(id->hostname, sizeof(id->hostname) - 1) != 0 || !id->hostname[0])
        strcpy(id->hostname, "-");
    snprintf(id->procid, sizeof(id->procid), "%ld", (long)getpid());
    *fmt = (struct mf_syslog_fmt){
        .format = c->format, .payload = c->payload, .facility = c->facility,
        .hostname = id->hostname, .app_name = c->app_name, .procid = id->procid,
        .version = MF_VERSION, .max_size = max_size,
    };
}

enum mf_status
mf_syslog_refuse(const struct mf_output *out, pthread_mutex_t *mu,
                 struct mf_output_stats *st, uint64_t *since_flush,
                 const char *id, const char *why)
{
    pthread_mutex_lock(mu);
    st->dropped++;
    (*since_flush)++;
    pthread_mutex_unlock(mu);
    mf_log(MF_LOG_ERROR, "output=%s id=%s: record not sent: %s", out->conf->name, id, why);
    return MF_DROP;
}

enum mf_status
mf_syslog_render(const struct mf_syslog_fmt *tmpl, struct mf_output *out,
                 size_t max_size, struct mf_event *ev, struct mf_buf *scratch,
                 struct mf_syslog_info *info)
{
    struct mf_syslog_fmt fmt = *tmpl;

    fmt.now_ms = mf_clock_wall_ms();
    if (mf_syslog_format(&fmt, ev, (enum mf_schema)out->conf->schema,
                         mf_output_form(out, ev), scratch, info) != MF_OK)
        return MF_DROP;
    if (info->truncated)
        mf_log(MF_LOG_WARN, "output=%s id=%s: larger than max_message_size %zu; "
               "sent without its raw and unmapped parts (marked truncated)",
               out->conf->name, ev->id[0] ? ev->id : "-", max_size);
    return MF_OK;
}

/* A record this output cannot send: counted, logged with its Id; the next
 * flush() fails. */
static enum mf_status
sl_refuse(struct syslog_out *o, const char *id, const char *why)
{
    return mf_syslog_refuse(&o->base, &o->mu, &o->st, &o->dropped_since_flush, id, why);
}

/* The bytes of msg's frame: octet-counting adds "LEN ", LF framing a
 * newline and one byte per newline in msg (sent as "\\n"). */
static size_t
frame_size(const struct syslog_out *o, const struct mf_buf *msg)
{
    size_t n = msg->len + 24;
    const char *p = msg->data, *end = msg->data + msg->len;

    if (o->transport == MF_SYSLOG_UDP || o->framing == MF_SYSLOG_OCTET_COUNTING)
        return n;
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        n++;
        p++;
    }
    return n;
}

static enum mf_status
sl_send(struct mf_output *base, struct mf_event *ev, struct mf_buf *scratch)
{
    struct syslog_out *o = (struct syslog_out *)base;
    struct mf_buf frame;
    struct sl_entry *e;
    struct mf_syslog_info info;
    const char *id = ev->id[0] ? ev->id : "-";

    /* the message and its frame, on the caller's thread */
    if (mf_syslog_render(&o->fmt, base, o->max_size, ev, scratch, &info) != MF_OK)
        return sl_refuse(o, id, info.reason);
    /* lf: "\n" doubles; allocated to the byte (held until acknowledged) */
    mf_buf_init(&frame, o->max_size * 2 + 64);
    mf_buf_reserve_exact(&frame, frame_size(o, scratch));
    if (o->transport == MF_SYSLOG_UDP
            ? mf_buf_append(&frame, scratch->data, scratch->len) < 0
            : mf_syslog_frame(o->framing, scratch->data, scratch->len, &frame) < 0) {
        mf_buf_fini(&frame);   /* cannot happen: the frame fits */
        return sl_refuse(o, id, "frame too large");
    }
    pthread_mutex_lock(&o->mu);
    if (o->n - o->written >= o->max_in_flight) {
        drive(o, 0);
        if (o->n - o->written >= o->max_in_flight) {
            o->st.retries++;
            pthread_mutex_unlock(&o->mu);
            mf_buf_fini(&frame);
            return MF_RETRY;
        }
    }
    if (o->n + 1 > o->qcap)
        grow(o);
    e = at(o, o->n);
    e->frame = frame.data;     /* the entry owns the frame from here */
    e->len = frame.len;
    e->acked = false;
    snprintf(e->id, sizeof(e->id), "%s", id);
    o->n++;
    o->st.sent++;
    /* plain TCP writes in batches (poll() and flush() push the rest); TLS
     * writes at once: SSL_write into a connection the receiver already
     * closed still succeeds, and checking before each record keeps what
     * goes into such a dead connection inside the resend window */
    if (o->ssl || o->n - o->written >= SL_BATCH)
        drive(o, 0);
    pthread_mutex_unlock(&o->mu);
    return MF_OK;
}

static void
sl_poll(struct mf_output *base, int timeout_ms)
{
    struct syslog_out *o = (struct syslog_out *)base;

    pthread_mutex_lock(&o->mu);
    drive(o, timeout_ms);
    pthread_mutex_unlock(&o->mu);
}

/* Under mu. */
static int
flush_locked(struct syslog_out *o, int timeout_ms)
{
    int64_t deadline = mf_clock_mono_ms() + timeout_ms;
    int rc = 0;

    while (o->tacked < o->n) {
        int64_t left = deadline - mf_clock_mono_ms();

        if (left <= 0)
            break;
        drive(o, (int)left);
    }
    if (o->tacked < o->n) {
        mf_log(MF_LOG_ERROR, "output=%s syslog %s:%s: %zu records not written and %zu "
               "written but not acknowledged by the receiver within %d ms",
               o->conf->name, o->host, o->port, o->n - o->written,
               o->written - o->tacked, timeout_ms);
        rc = -1;
    }
    if (o->dropped_since_flush) {
        rc = -1;
        o->dropped_since_flush = 0;
    }
    if (o->unconfirmed) {
        mf_log(MF_LOG_ERROR, "output=%s syslog %s:%s: %" PRIu64 " records may have been "
               "lost by the receiver (logged above)", o->conf->name, o->host, o->port,
               o->unconfirmed);
        o->st.failed += o->unconfirmed;
        o->unconfirmed = 0;
        rc = -1;
    }
    return rc;
}

/* Every entry is confirmed: the queue starts empty. */
static void
release_all(struct syslog_out *o)
{
    for (size_t i = 0; i < o->n; i++) {
        struct sl_entry *e = at(o, i);

        free(e->frame);
        e->frame = NULL;
    }
    o->head = o->n = o->written = o->tacked = o->woff = 0;
    o->win_bytes = 0;
}

/* The end of the stream on this connection: half-close it and wait until
 * the receiver closes its side, which it does once it read everything we
 * wrote (a receiver that closes with bytes unread resets the connection).
 * 0 confirmed, -1 reset (the window goes again: conn_fail), -2 timeout. */
static int
close_confirm(struct syslog_out *o, int64_t deadline)
{
    char buf[4096];

    if (o->ssl) {
        ERR_clear_error();
        SSL_shutdown(o->ssl);        /* close_notify; its answer is not needed */
    }
    if (shutdown(o->fd, SHUT_WR) != 0) {
        conn_fail(o, "shutdown failed at the end of the stream");
        return -1;
    }
    mf_log(MF_LOG_INFO, "output=%s syslog %s:%s: end of the stream: waiting up to %" PRId64
           " ms for the receiver to read everything and close the connection",
           o->conf->name, o->host, o->port, deadline - mf_clock_mono_ms());
    for (;;) {
        int64_t left = deadline - mf_clock_mono_ms();
        struct pollfd p = {.fd = o->fd, .events = POLLIN | POLLRDHUP};
        ssize_t r;

        if (left <= 0) {
            mf_log(MF_LOG_ERROR, "output=%s syslog %s:%s: the receiver did not close the "
                   "connection after the end of the stream: cannot confirm that it read "
                   "the last %zu records", o->conf->name, o->host, o->port, o->n);
            conn_fail(o, "no close from the receiver at the end of the stream");
            return -2;
        }
        poll(&p, 1, left > 100 ? 100 : (int)left);
        r = recv(o->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r > 0)
            continue;                /* TLS alerts, tickets: not ours to read */
        if (r == 0) {
            mf_log(MF_LOG_INFO, "output=%s syslog %s:%s: the receiver read the stream to "
                   "its end and closed the connection", o->conf->name, o->host, o->port);
            release_all(o);
            o->conn_trimmed = 0;
            conn_close(o);
            o->next_attempt_ms = 0;
            return 0;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            continue;
        {
            char what[300];

            snprintf(what, sizeof(what), "the receiver reset the connection at the end of "
                     "the stream (%s): not everything was read", strerror(errno));
            o->logged_down = false;
            conn_fail(o, what);
        }
        return -1;
    }
}

/* Under mu: flush, then confirm the end of the stream (output.h drain). */
static int
drain_locked(struct syslog_out *o, int timeout_ms)
{
    int64_t deadline = mf_clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);

    for (;;) {
        int64_t left = deadline - mf_clock_mono_ms();
        int rc;

        if (flush_locked(o, left > 0 ? (int)left : 0) != 0)
            return -1;
        if (o->transport == MF_SYSLOG_UDP || o->state != SL_UP || o->conn_bytes == 0)
            return 0;
        rc = close_confirm(o, deadline);
        if (rc == 0)
            return 0;
        if (rc == -2)
            return -1;
    }
}

static int
sl_drain(struct mf_output *base, int timeout_ms)
{
    struct syslog_out *o = (struct syslog_out *)base;
    int rc;

    pthread_mutex_lock(&o->mu);
    rc = drain_locked(o, timeout_ms);
    pthread_mutex_unlock(&o->mu);
    return rc;
}

static int
sl_flush(struct mf_output *base, int timeout_ms)
{
    struct syslog_out *o = (struct syslog_out *)base;
    int rc;

    pthread_mutex_lock(&o->mu);
    rc = flush_locked(o, timeout_ms);
    pthread_mutex_unlock(&o->mu);
    return rc;
}

static void
sl_stats(const struct mf_output *base, struct mf_output_stats *out)
{
    struct syslog_out *o = (struct syslog_out *)base;

    pthread_mutex_lock(&o->mu);
    *out = o->st;
    out->queued = o->n - o->tacked;
    pthread_mutex_unlock(&o->mu);
}

static void
sl_close(struct mf_output *base)
{
    struct syslog_out *o = (struct syslog_out *)base;

    if (!o)
        return;
    if (o->tacked < o->n || (o->state == SL_UP && o->conn_bytes))
        drain_locked(o, (int)(o->conf->flush_timeout_ms > 0 ? o->conf->flush_timeout_ms
                                                              : 0));
    conn_close(o);
    for (size_t i = 0; i < o->n; i++)
        free(at(o, i)->frame);
    free(o->q);
    SSL_CTX_free(o->ctx);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

const struct mf_output_ops mf_output_syslog_ops = {
    .name = "syslog",
    .desc = "RFC 5424 / RFC 3164 messages over UDP, TCP or TLS",
    .options = &mf_syslog_sec,
    .flags = MF_OUTPUT_CONCURRENT,
    .open = sl_open,
    .send = sl_send,
    .poll = sl_poll,
    .flush = sl_flush,
    .stats = sl_stats,
    .close = sl_close,
    .drain = sl_drain,
};
