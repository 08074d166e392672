/* options.h - the generic option-table engine: applies a table (types in
 * core/option.h) to a YAML tree, and generates the reference, the YAML
 * dump and the text of values from the same tables. */
#ifndef MF_OPTIONS_H
#define MF_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "option.h"

/* Apply the mapping obj (may be NULL: defaults only; parent_line is then
 * used for "missing key" errors) to base, then the section's and its
 * kinds' check hooks. path prefixes key names in messages ("tenants[0]";
 * "" at the top). Returns the number of errors added. */
size_t mf_opt_apply(const struct mf_optctx *c, const struct mf_optsec *sec,
                    const struct mf_jval *obj, uint32_t parent_line,
                    void *base, const char *path);

/* Find an option by name in a section (NULL when unknown). */
const struct mf_option *mf_opt_find(const struct mf_optsec *sec,
                                    const char *name);
/* Discriminator value of an element (-1 when the section has none). */
int mf_opt_disc(const struct mf_optsec *sec, const void *base);
/* The kind table of an element (NULL when none). */
const struct mf_optsec *mf_opt_kind_sec(const struct mf_optsec *sec,
                                        const void *base);
const char *mf_enum_name(const struct mf_enum *choices, int value);
int mf_enum_parse(const struct mf_enum *choices, const char *s, int *out);

/* The value of o in base as text, as the YAML dump writes it ("60s",
 * "[a, b]", "\"str\"", "{k: v}"); "(not set)" when unset. */
void mf_opt_value_text(struct mf_buf *b, const struct mf_option *o,
                       const void *base);
/* Whether the value of o is set (a string or a non-empty list given, a
 * number with a default or not 0, ...). */
bool mf_opt_is_set(const struct mf_option *o, const void *base);

/* Markdown reference of a section and its sub-sections (tables). */
void mf_opt_doc(struct mf_buf *b, const struct mf_optsec *sec,
                const char *title_path, int level);

/* Effective configuration as YAML (every applicable key, defaults
 * included), loadable again. indent = spaces before keys. */
void mf_opt_dump(struct mf_buf *b, const struct mf_optsec *sec,
                 const void *base, int indent);

#endif
