/* builtin.h - tables embedded at build time by tools/embed.py. */
#ifndef MF_BUILTIN_H
#define MF_BUILTIN_H

#include <stddef.h>

extern const char mf_builtin_tags[];
extern const size_t mf_builtin_tags_len;
extern const char mf_builtin_ocsf[];
extern const size_t mf_builtin_ocsf_len;
extern const char mf_builtin_ecs[];
extern const size_t mf_builtin_ecs_len;
extern const char mf_builtin_aggregates[];
extern const size_t mf_builtin_aggregates_len;

#endif
