/* yaml_tree.h - load a YAML document (libyaml) into an mf_jval tree.
 *
 * Mappings become MF_JOBJ, sequences MF_JARR. Scalars: quoted ones are
 * strings; plain ones are typed the YAML 1.2 core way (null/~/empty -> null,
 * true/false -> bool, integers and decimals -> MF_JNUM, anything else ->
 * string). Every node carries its 1-based source line in ->line, so table
 * validators can say "tags.yaml:123: unknown key 'severty'".
 * Anchors/aliases are refused (tables do not need them). Duplicate keys in
 * one mapping are an error. */
#ifndef MF_YAML_TREE_H
#define MF_YAML_TREE_H

#include <stddef.h>

#include "arena.h"
#include "err.h"
#include "json.h"

/* name is used in messages only. Returns the root or NULL with err set. */
struct mf_jval *mf_yaml_load(struct mf_arena *a, const char *name,
                             const char *text, size_t len,
                             struct mf_err *err);
struct mf_jval *mf_yaml_load_file(struct mf_arena *a, const char *path,
                                  struct mf_err *err);

#endif
