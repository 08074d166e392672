/* emu.c - emulator process control for Check tests (see emu.h). */
#include "emu.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "json.h"

#define READY_DEADLINE_MS 60000

static struct mf_emu_certs certs;
static int certs_made;

static const char *
src_root(void)
{
    const char *s = getenv("MF_SOURCE_ROOT");

    return s && *s ? s : ".";
}

static int
in_path(const char *prog)
{
    const char *path = getenv("PATH");
    char buf[1024];

    while (path && *path) {
        size_t n = strcspn(path, ":");
        snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, prog);
        if (access(buf, X_OK) == 0)
            return 1;
        path += n;
        if (*path == ':')
            path++;
    }
    return 0;
}

void
mf_emu_require(void)
{
    char p[1024];

    snprintf(p, sizeof(p), "%s/tests/emulator/m365emu.py", src_root());
    if (!in_path("python3") || !in_path("openssl") || access(p, R_OK) != 0) {
        printf("1..0 # SKIP emulator tests need python3, openssl and %s\n", p);
        fprintf(stderr, "skip: emulator tests need python3, openssl and %s\n",
                p);
        exit(77);
    }
}

static int
run_wait(pid_t pid)
{
    int st;

    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

const struct mf_emu_certs *
mf_emu_certs(void)
{
    char tmpl[] = "/tmp/mf-emu-certs-XXXXXX", script[1024];
    pid_t pid;
    int devnull;

    if (certs_made)
        return &certs;
    if (!mkdtemp(tmpl)) {
        perror("mkdtemp");
        exit(77);
    }
    snprintf(certs.dir, sizeof(certs.dir), "%s", tmpl);
    snprintf(script, sizeof(script), "%s/tests/emulator/mkcerts.py",
             src_root());
    pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 1);
        execlp("python3", "python3", script, certs.dir, (char *)NULL);
        _exit(127);
    }
    if (run_wait(pid) != 0) {
        printf("1..0 # SKIP mkcerts.py failed (openssl?)\n");
        exit(77);
    }
#define F(field, name) \
    snprintf(certs.field, sizeof(certs.field), "%s/%s", certs.dir, name)
    F(ca, "ca.crt");
    F(server_crt, "server.crt");
    F(server_key, "server.key");
    F(wronghost_crt, "wronghost.crt");
    F(wronghost_key, "wronghost.key");
    F(client_crt, "client.crt");
    F(client_key, "client.key");
    F(client2_crt, "client2.crt");
    F(client2_key, "client2.key");
#undef F
    chmod(certs.client_key, 0600);
    chmod(certs.client2_key, 0600);
    certs_made = 1;
    return &certs;
}

void
mf_emu_cleanup(void)
{
    char cmd[400];

    if (!certs_made || strncmp(certs.dir, "/tmp/mf-emu-certs-", 18) != 0)
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", certs.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", certs.dir);
    certs_made = 0;
}

/* Replace every "@client_cert" / "@client2_cert" with the paths. */
static void
expand(struct mf_buf *out, const char *s)
{
    const struct mf_emu_certs *c = mf_emu_certs();

    while (*s) {
        if (strncmp(s, "@client_cert", 12) == 0) {
            mf_buf_appends(out, c->client_crt);
            s += 12;
        } else if (strncmp(s, "@client2_cert", 13) == 0) {
            mf_buf_appends(out, c->client2_crt);
            s += 13;
        } else {
            mf_buf_appendc(out, *s++);
        }
    }
}

static int64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
mf_emu_start(struct mf_emu *e, const char *scenario, int wronghost)
{
    const struct mf_emu_certs *c = mf_emu_certs();
    char tmpl[] = "/tmp/mf-emu-XXXXXX", scen[320], ready[320], logf[320];
    char script[1024], line[1024];
    struct mf_buf text;
    size_t got = 0;
    int pfd[2];
    int64_t deadline;
    FILE *f;

    memset(e, 0, sizeof(*e));
    e->pid = -1;
    e->out_fd = -1;
    if (!mkdtemp(tmpl)) {
        perror("mkdtemp");
        return -1;
    }
    snprintf(e->dir, sizeof(e->dir), "%s", tmpl);
    snprintf(scen, sizeof(scen), "%s/scenario.json", e->dir);
    snprintf(ready, sizeof(ready), "%s/ready.json", e->dir);
    snprintf(logf, sizeof(logf), "%s/emu.log", e->dir);
    snprintf(script, sizeof(script), "%s/tests/emulator/m365emu.py",
             src_root());
    mf_buf_init(&text, 0);
    expand(&text, scenario);
    f = fopen(scen, "w");
    if (!f || fwrite(text.data, 1, text.len, f) != text.len || fclose(f)) {
        perror(scen);
        mf_buf_fini(&text);
        return -1;
    }
    mf_buf_fini(&text);
    if (pipe(pfd) != 0) {
        perror("pipe");
        return -1;
    }
    e->pid = fork();
    if (e->pid < 0) {
        perror("fork");
        return -1;
    }
    if (e->pid == 0) {
        int lfd = open(logf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        /* never outlive a test binary that crashed or was killed */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        dup2(pfd[1], 1);
        if (lfd >= 0)
            dup2(lfd, 2);
        close(pfd[0]);
        close(pfd[1]);
        execlp("python3", "python3", script, "-s", scen,
               "--cert", wronghost ? c->wronghost_crt : c->server_crt,
               "--key", wronghost ? c->wronghost_key : c->server_key,
               "--port", "0", "--control-port", "0", "--ready-file", ready,
               (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    e->out_fd = pfd[0];
    deadline = mono_ms() + READY_DEADLINE_MS;
    while (got < sizeof(line) - 1) {
        struct pollfd p = {.fd = e->out_fd, .events = POLLIN};
        int64_t left = deadline - mono_ms();
        ssize_t n;
        int r;
        if (left <= 0) {
            fprintf(stderr, "emulator: no ready line within %d ms (see %s)\n",
                    READY_DEADLINE_MS, logf);
            mf_emu_stop(e);
            return -1;
        }
        r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        n = read(e->out_fd, line + got, sizeof(line) - 1 - got);
        if (n <= 0) {
            fprintf(stderr, "emulator exited before ready (see %s)\n", logf);
            mf_emu_stop(e);
            return -1;
        }
        got += (size_t)n;
        line[got] = '\0';
        if (strchr(line, '\n'))
            break;
    }
    {
        struct mf_arena a;
        struct mf_jval *root;
        int64_t v;

        mf_arena_init(&a, 0);
        root = mf_json_parse(&a, line, strcspn(line, "\n"), NULL, NULL, NULL);
        if (mf_jget_int(mf_jobj_get(root, "api_port"), &v) == 0)
            e->api_port = (int)v;
        if (mf_jget_int(mf_jobj_get(root, "control_port"), &v) == 0)
            e->control_port = (int)v;
        mf_arena_fini(&a);
    }
    if (e->api_port <= 0 || e->control_port <= 0) {
        fprintf(stderr, "emulator: bad ready line: %s\n", line);
        mf_emu_stop(e);
        return -1;
    }
    snprintf(e->base, sizeof(e->base), "https://127.0.0.1:%d", e->api_port);
    return 0;
}

void
mf_emu_stop(struct mf_emu *e)
{
    char cmd[400];

    if (e->pid > 0) {
        kill(e->pid, SIGTERM);
        run_wait(e->pid);
        e->pid = -1;
    }
    if (e->out_fd >= 0) {
        close(e->out_fd);
        e->out_fd = -1;
    }
    if (strncmp(e->dir, "/tmp/mf-emu-", 12) == 0 && !getenv("MF_KEEP_EMU")) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", e->dir);
        e->dir[0] = '\0';
    }
}

static size_t
ctl_write(char *p, size_t s, size_t n, void *ud)
{
    struct mf_buf *b = ud;

    if (b)
        mf_buf_append(b, p, s * n);
    return s * n;
}

long
mf_emu_ctl(const struct mf_emu *e, const char *method, const char *path,
           const char *body, struct mf_buf *out)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char url[512];
    long status = -1;

    if (!c)
        return -1;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", e->control_port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ctl_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    if (body) {
        h = curl_slist_append(h, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}
