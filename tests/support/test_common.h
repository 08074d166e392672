/* test_common.h - helpers shared by the Check tests. */
#ifndef MF_TEST_COMMON_H
#define MF_TEST_COMMON_H

#include <check.h>
#include <stddef.h>

/* Path under tests/data ($MF_TESTDATA); returns a static buffer. */
const char *mf_test_data(const char *rel);
/* ../shared next to the source tree ($MF_SHARED or $MF_SOURCE_ROOT/../shared),
 * or NULL when it is not there. */
const char *mf_test_shared_dir(void);
/* Read a whole file (malloc'd, NUL-terminated); NULL on error. */
char *mf_test_slurp(const char *path, size_t *len);
/* A fresh directory /tmp/<name>-XXXXXX in buf (fails the test when it
 * cannot be made), and its removal with everything in it. */
void mf_test_mkdtemp(char *buf, size_t n, const char *name);
void mf_test_rmtree(const char *dir);
/* Run a suite with TAP/verbosity from the environment; returns exit code. */
int mf_test_run(Suite *s);

#endif
