/* option.h - the TYPES of declarative option tables: one table gives
 * parsing, defaults, validation, documentation, dumping, comparison and the
 * reload class of every key. Each plugin (output type, normalizer,
 * collector, metrics) declares its own table beside its code; the engine
 * that applies a table to a YAML tree (config/options.h) is in config/.
 *
 * A section (struct mf_optsec) is an array of struct mf_option ending with
 * a {NULL} entry. The engine walks a YAML mapping (an mf_jval tree from
 * core/yaml_tree.h, every node with its line) and writes typed values into
 * a C struct through offsetof(). Unknown keys, wrong types, out-of-range
 * values and missing required keys are errors naming the file, the line and
 * the key path; errors are collected (not only the first).
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
#ifndef MF_OPTION_H
#define MF_OPTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "arena.h"
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
#define MF_OPT_READABLE 0x20  /* STR path: must be readable at start-up */
#define MF_OPT_RAW      0x40  /* SECRET file read as it is (PEM keys); other
                               * secrets lose their trailing white space */
#define MF_OPT_UNIQUE   0x80  /* LIST element key: no two elements of the
                               * list (of the same kind) share the value */

/* Start-up file checks (load flag MF_CONFIG_CHECK_FILES), by flags:
 *   SECRET|PATH   a secret file, read once (and forgotten)
 *   SECRET        an environment variable name: it must be set, not empty
 *   READABLE      access(R_OK)
 * PREFIX options apply them to each value. Elements whose `enabled` key
 * is false are skipped. */

/* How SIGHUP applies a change of the key (shown in the reference). */
enum mf_reload {
    MF_RELOAD_RESTART = 0,   /* drain and restart collection with it */
    MF_RELOAD_LIVE,          /* applied in place */
    MF_RELOAD_NEVER,         /* refused: needs a restart of the process */
};

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
    enum mf_reload reload;
    const struct mf_optsec *sub;     /* SECTION / LIST */
    mf_opt_check_fn check;
    const char *defdoc;       /* documentation of a computed default */
    const char *desc;
};

/* Context of one load: where strings go, where errors go. */
struct mf_optctx {
    struct mf_arena *a;
    const char *file;         /* for messages */
    struct mf_err *err;
    const char *base_dir;     /* MF_OPT_PATH: NULL leaves paths as written */
    unsigned flags;           /* the load flags (MF_CONFIG_*) */
    void *top;                /* the whole configuration being loaded */
    const struct mf_jval *root;   /* its YAML tree */
};

/* Cross-check of a section or LIST element, run after its keys were
 * applied (and those of its kind): base is the struct, node its mapping
 * (NULL when absent from the file), path its key path ("outputs[0]", ""
 * at the top). Adds errors with mf_err_add(c->err, c->file, line, ...) and
 * may fill derived fields. */
typedef void (*mf_opt_secchk_fn)(const struct mf_optctx *c, void *base,
                                 const struct mf_jval *node,
                                 const char *path);

struct mf_optsec {
    const char *name;         /* "tenants[]", "collect", "" for the top */
    const char *desc;         /* paragraph for the reference */
    const struct mf_option *opts;
    size_t size;              /* size of the struct */
    /* kinds: the ENUM key disc chooses a sub-table per value: kinds[v]
     * (NULL: no keys of its own). Its struct (kinds[v]->size bytes, in the
     * arena) is reached through the const void * at kind_offset. */
    const char *disc;
    const struct mf_optsec *const *kinds;
    size_t nkinds;
    size_t kind_offset;
    /* LIST elements: identity key (reload diff, MF_OPT_UNIQUE) and the
     * noun of messages ("duplicate output name ..."). */
    const char *key;
    const char *noun;
    mf_opt_secchk_fn check;
};

/* Line of key in the mapping node (the node's own line when absent). */
static inline uint32_t
mf_opt_key_line(const struct mf_jval *node, const char *key)
{
    const struct mf_jval *v = node ? mf_jobj_get(node, key) : NULL;

    return v ? v->line : node ? node->line : 1;
}

/* The struct of an element's kind (NULL when it has none). */
static inline const void *
mf_opt_kind(const struct mf_optsec *sec, const void *base)
{
    const void *p;

    memcpy(&p, (const char *)base + sec->kind_offset, sizeof(p));
    return p;
}

#endif

