/* report_builtin.h - checks.yaml and plan.yaml, embedded at build time by
 * tools/embed.py. */
#ifndef MF_REPORT_BUILTIN_H
#define MF_REPORT_BUILTIN_H

#include <stddef.h>

extern const char mf_builtin_checks[];
extern const size_t mf_builtin_checks_len;
extern const char mf_builtin_plan[];
extern const size_t mf_builtin_plan_len;

#endif
