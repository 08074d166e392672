#include "test_common.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *
mf_test_data(const char *rel)
{
    static char path[PATH_MAX];
    const char *root = getenv("MF_TESTDATA");

    snprintf(path, sizeof(path), "%s/%s", root ? root : "tests/data", rel);
    return path;
}

const char *
mf_test_shared_dir(void)
{
    static char path[PATH_MAX];
    const char *env = getenv("MF_SHARED");
    const char *src = getenv("MF_SOURCE_ROOT");
    struct stat st;

    if (env)
        snprintf(path, sizeof(path), "%s", env);
    else
        snprintf(path, sizeof(path), "%s/../shared", src ? src : ".");
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return NULL;
    return path;
}

char *
mf_test_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, r;

    if (!f)
        return NULL;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            cap = (cap ? cap * 2 : 131072);
            buf = realloc(buf, cap);
            if (!buf)
                abort();
        }
        r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

void
mf_test_mkdtemp(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "/tmp/%s-XXXXXX", name);
    ck_assert_ptr_nonnull(mkdtemp(buf));
}

void
mf_test_rmtree(const char *dir)
{
    char cmd[600];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

int
mf_test_run(Suite *s)
{
    SRunner *r = srunner_create(s);
    int failed;

    srunner_run_all(r, CK_ENV);
    failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
