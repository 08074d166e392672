/* options.h - declarative option tables: one table gives parsing, defaults,
 * validation, documentation, dumping and comparison.
 *
 * A section (struct mf_optsec) is an array of struct mf_option ending with
 * a {NULL} entry. mf_opt_apply() walks a YAML mapping (an mf_jval tree from
 * config/yaml.h, every node with its line) and writes typed values into a C
 * struct through offsetof(). Unknown keys, wrong types, out-of-range values
 * and missing required keys are errors naming the file, the line and the
 * key path; errors are collected (not only the first).
 *
 * Storage per type (field at .offset):
 *   STR      const char *            (NULL when unset and no default)
 *   INT      int64_t
 *   BOOL     bool
 *   DURATION int64_t milliseconds    ("500ms", "60s", "15m", "24h", "7d",
 *                                     "1h30m")
 *   SIZE     int64_t bytes           (512, "64KiB", "1MiB", "10MB", "1G")
 *   ENUM     int                     (value of the matching struct mf_enum)
 *   STRLIST  struct mf_strlist       (sequence of strings; no duplicates)
 *   PREFIX   struct mf_kvlist        ("rdkafka: {k: v}" and "rdkafka.k: v")
 *   SECTION  the sub-struct itself   (a nested mapping, e.g. collect:)
 *   LIST     struct mf_anylist       (sequence of mappings, elements of
 *                                     sub->size bytes each)
 * Strings and arrays live in the arena given to mf_opt_apply().
 */
#ifndef MF_OPTIONS_H
#define MF_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "err.h"
#include "json.h"

enum mf_opt_type {
    MF_OPT_STR = 0,
    MF_OPT_INT,
    MF_OPT_BOOL,
    MF_OPT_DURATION,
    MF_OPT_SIZE,
    MF_OPT_ENUM,
    MF_OPT_STRLIST,
    MF_OPT_PREFIX,
    MF_OPT_SECTION,
    MF_OPT_LIST,
};

/* flags */
#define MF_OPT_REQUIRED 0x01  /* must be present (when applicable) */
#define MF_OPT_SECRET   0x02  /* names WHERE a secret is (file or env var);
                               * values of the whole entry are never echoed */
#define MF_OPT_NONEMPTY 0x04  /* STRLIST/LIST/PREFIX: at least one element;
                               * STR: always implied */
#define MF_OPT_NOECHO   0x08  /* never repeat the value in a message (it may
                               * hold credentials, e.g. a proxy URL) */
#define MF_OPT_PATH     0x10  /* STR (PREFIX: the values) is a file system
                               * path: a relative one is resolved against
                               * mf_optctx.base_dir; "-" stays as it is */

struct mf_enum {
    const char *name;
    int value;
};

struct mf_strlist {
    const char *const *v;
    size_t n;
};

struct mf_kv {
    const char *key;
    const char *value;
    uint32_t line;
};

struct mf_kvlist {
    const struct mf_kv *v;
    size_t n;
};

/* Layout every LIST field must have (pointer to elements, then count). */
struct mf_anylist {
    const void *v;
    size_t n;
};

/* Value checker for strings (STR and STRLIST elements): 0 when fine,
 * otherwise -1 with a reason ("must be an https:// URL") in why. */
typedef int (*mf_opt_check_fn)(const char *s, char *why, size_t whylen);

struct mf_optsec;

struct mf_option {
    const char *name;
    enum mf_opt_type type;
    const char *def;          /* default, written as a user would; NULL: none */
    size_t offset;
    int64_t min, max;         /* INT / DURATION (ms) / SIZE (bytes);
                               * 0, 0 = unbounded */
    const struct mf_enum *choices;   /* ENUM, and STRLIST elements when set */
    unsigned flags;
    unsigned only;            /* bit (1u << discriminator value) the key is
                               * valid for; 0 = every kind */
    const struct mf_optsec *sub;     /* SECTION / LIST */
    mf_opt_check_fn check;
    const char *defdoc;       /* documentation of a computed default */
    const char *desc;
};

struct mf_optsec {
    const char *name;         /* "tenants[]", "collect", "" for the top */
    const char *desc;         /* paragraph for the reference */
    const struct mf_option *opts;
    size_t size;              /* element size (LIST) */
    const char *disc;         /* ENUM key choosing `only` masks, or NULL */
    const struct mf_enum *disc_choices;   /* its values, for documentation */
};

/* Context of one apply: where strings go and where errors go. */
struct mf_optctx {
    struct mf_arena *a;
    const char *file;         /* for messages */
    struct mf_err *err;
    const char *base_dir;     /* MF_OPT_PATH: NULL leaves paths as written */
};

/* Apply the mapping obj (may be NULL: defaults only; parent_line is then
 * used for "missing key" errors) to base. path prefixes key names in
 * messages ("tenants[0]"; "" at the top). Returns the number of errors
 * added. */
size_t mf_opt_apply(const struct mf_optctx *c, const struct mf_optsec *sec,
                    const struct mf_jval *obj, uint32_t parent_line,
                    void *base, const char *path);

/* Find an option by name in a section (NULL when unknown). */
const struct mf_option *mf_opt_find(const struct mf_optsec *sec,
                                    const char *name);
/* Discriminator value of an element (-1 when the section has none). */
int mf_opt_disc(const struct mf_optsec *sec, const void *base);
/* True when o is valid for the element's discriminator value. */
bool mf_opt_applies(const struct mf_option *o, int disc);

const char *mf_enum_name(const struct mf_enum *choices, int value);
int mf_enum_parse(const struct mf_enum *choices, const char *s, int *out);

/* Markdown reference of a section and its sub-sections (tables). */
void mf_opt_doc(struct mf_buf *b, const struct mf_optsec *sec,
                const char *title_path, int level);

/* Effective configuration as YAML (every applicable key, defaults
 * included), loadable again. indent = spaces before keys. */
void mf_opt_dump(struct mf_buf *b, const struct mf_optsec *sec,
                 const void *base, int indent);

/* Deep equality of two elements of a section, table-driven. */
bool mf_opt_equal(const struct mf_optsec *sec, const void *x, const void *y);

#endif
