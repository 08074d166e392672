/* mem.h - allocation helpers that abort on out-of-memory.
 *
 * Callers never check these for NULL: running out of memory is fatal for
 * the agent (Redis zmalloc policy). Every other failure is checked. */
#ifndef MF_MEM_H
#define MF_MEM_H

#include <stddef.h>

void *mf_xmalloc(size_t n);
void *mf_xcalloc(size_t nmemb, size_t size);
void *mf_xrealloc(void *p, size_t n);
char *mf_xstrdup(const char *s);
char *mf_xstrndup(const char *s, size_t n);

#endif
