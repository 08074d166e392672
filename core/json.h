/* json.h - m365fwd's own JSON tree, parser and writer.
 *
 * Why not jansson on the hot path: jansson rejects a whole record for one
 * invalid UTF-8 byte or an integer above 2^63, cannot stream the elements of
 * a huge array, and its per-node malloc makes parse+dump its own ceiling.
 * Here every node lives in a per-record arena (see arena.h), strings are
 * repaired instead of rejected, and numbers keep their source text, so a
 * record is never lost to a parser's taste. jansson stays in the tests as
 * the reference implementation (differential tests and the benchmark floor).
 *
 * Ownership: every node, string and child array belongs to the arena that
 * built it; nothing is freed individually. A tree may point at nodes of
 * another tree from the same arena (the output tree borrows input nodes).
 *
 * Object keys keep their order and duplicates are kept as they came (lookup
 * returns the first). Strings are stored decoded, NUL-terminated, with an
 * explicit length (they may contain U+0000).
 */
#ifndef MF_JSON_H
#define MF_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"

enum mf_jtype {
    MF_JNULL = 0,
    MF_JFALSE,
    MF_JTRUE,
    MF_JNUM,   /* u.s = number text exactly as in the source (valid JSON) */
    MF_JSTR,   /* u.s = decoded UTF-8, NUL-terminated, len bytes */
    MF_JARR,
    MF_JOBJ,
};

/* flags */
#define MF_JF_REPAIRED 0x01  /* string: invalid UTF-8 or bad escape replaced */
#define MF_JF_USED     0x02  /* free for consumers: "this member was mapped" */
#define MF_JF_ASCII    0x04  /* string: known to need no escaping but " and \ */

struct mf_jmem;

struct mf_jval {
    uint8_t type;      /* enum mf_jtype */
    uint8_t flags;
    uint32_t line;     /* 1-based source line of the value's first byte; 0 unknown */
    size_t len;        /* NUM/STR: bytes; ARR/OBJ: number of children */
    size_t cap;        /* ARR/OBJ built with the mutators: capacity */
    union {
        const char *s;
        struct mf_jval **items;   /* ARR */
        struct mf_jmem *mem;      /* OBJ */
    } u;
};

struct mf_jmem {
    const char *key;   /* decoded, NUL-terminated */
    size_t klen;
    struct mf_jval *val;
};

/* ---- parsing -------------------------------------------------------- */

#define MF_JSON_MAX_DEPTH 512

struct mf_jparse_opts {
    uint32_t first_line;   /* line number of buf[0] (default 1 when 0) */
    int max_depth;         /* 0 = MF_JSON_MAX_DEPTH */
};

struct mf_jerror {
    char msg[160];
    uint32_t line;     /* 1-based */
    uint32_t column;   /* 1-based, bytes */
    size_t offset;     /* byte offset in buf */
};

/* Statistics of one parse, for flags on the normalized event. */
struct mf_jparse_info {
    size_t repaired_strings;   /* strings with invalid UTF-8 / escapes fixed */
};

/* Parse exactly one JSON value from buf[0..len) (whitespace around it is
 * allowed; anything else after it is an error). Invalid UTF-8 in strings and
 * lone surrogates in \u escapes are replaced by U+FFFD and the string gets
 * MF_JF_REPAIRED; that is not an error. Raw control characters inside
 * strings are accepted and kept (they are escaped again on output).
 * Returns the root or NULL with *err filled (err may be NULL). */
struct mf_jval *mf_json_parse(struct mf_arena *a, const char *buf, size_t len,
                              const struct mf_jparse_opts *opts,
                              struct mf_jparse_info *info,
                              struct mf_jerror *err);

/* ---- construction (arena-owned) ------------------------------------- */

struct mf_jval *mf_jnull(struct mf_arena *a);
struct mf_jval *mf_jbool(struct mf_arena *a, bool v);
struct mf_jval *mf_jint(struct mf_arena *a, int64_t v);
struct mf_jval *mf_jreal(struct mf_arena *a, double v);
/* Number from text; the caller promises it is valid JSON number syntax
 * (use mf_json_is_number() when unsure). Text is copied. */
struct mf_jval *mf_jnum_text(struct mf_arena *a, const char *s, size_t n);
/* Strings: copied into the arena; invalid UTF-8 is repaired (and flagged). */
struct mf_jval *mf_jstrn(struct mf_arena *a, const char *s, size_t n);
struct mf_jval *mf_jstr(struct mf_arena *a, const char *s);
/* String without copy: s must outlive the tree (static or arena memory) and
 * be valid UTF-8. */
struct mf_jval *mf_jstr_ref(struct mf_arena *a, const char *s, size_t n);
struct mf_jval *mf_jarr(struct mf_arena *a);
struct mf_jval *mf_jobj(struct mf_arena *a);

/* Append; grows in the arena. */
void mf_jarr_push(struct mf_arena *a, struct mf_jval *arr, struct mf_jval *v);
/* Set key (copied) to v: replaces the first member with that key or appends. */
void mf_jobj_set(struct mf_arena *a, struct mf_jval *obj, const char *key,
                 struct mf_jval *v);
/* Same with a key that outlives the tree (no copy). */
void mf_jobj_set_ref(struct mf_arena *a, struct mf_jval *obj, const char *key,
                     size_t klen, struct mf_jval *v);
/* Append without looking for an existing key (fast; duplicates possible). */
void mf_jobj_add_ref(struct mf_arena *a, struct mf_jval *obj, const char *key,
                     size_t klen, struct mf_jval *v);
/* Get or create the object at key ("a" only, no dots). If key holds a
 * non-object it is replaced. */
struct mf_jval *mf_jobj_child(struct mf_arena *a, struct mf_jval *obj,
                              const char *key);
/* Dotted path "a.b.c": creates intermediate objects, sets the leaf. */
void mf_jobj_set_path(struct mf_arena *a, struct mf_jval *obj,
                      const char *path, struct mf_jval *v);
/* Remove first member with key; returns it or NULL. */
struct mf_jval *mf_jobj_del(struct mf_jval *obj, const char *key);

/* ---- access --------------------------------------------------------- */

/* First member with exactly this key, or NULL (also when obj is not an
 * object or is NULL). */
struct mf_jval *mf_jobj_get(const struct mf_jval *obj, const char *key);
struct mf_jval *mf_jobj_getn(const struct mf_jval *obj, const char *key, size_t klen);
/* ASCII case-insensitive key lookup. */
struct mf_jval *mf_jobj_geti(const struct mf_jval *obj, const char *key);
struct mf_jmem *mf_jobj_member(const struct mf_jval *obj, const char *key);
/* Dotted path with exact keys, objects only; NULL when missing. */
struct mf_jval *mf_jget_path(const struct mf_jval *root, const char *path);

static inline bool mf_jis(const struct mf_jval *v, enum mf_jtype t) { return v && v->type == t; }
static inline bool mf_jis_str(const struct mf_jval *v) { return v && v->type == MF_JSTR; }
static inline bool mf_jis_obj(const struct mf_jval *v) { return v && v->type == MF_JOBJ; }
static inline bool mf_jis_arr(const struct mf_jval *v) { return v && v->type == MF_JARR; }
/* String contents or NULL (not a string). */
static inline const char *mf_jstrv(const struct mf_jval *v) { return mf_jis_str(v) ? v->u.s : NULL; }
/* True for null, "", and the usual null spellings "null", "<null>", "NULL". */
bool mf_jis_nullish(const struct mf_jval *v);

/* Integer value of a number, or of a string holding an integer
 * ("15", " 15 "); 0 on success, -1 otherwise. */
int mf_jget_int(const struct mf_jval *v, int64_t *out);
/* Boolean of true/false, or of a string "true"/"false"/"True"/"1"/"0";
 * 0 on success, -1 otherwise. */
int mf_jget_bool(const struct mf_jval *v, bool *out);

/* Text of a scalar for comparisons: STR -> contents, NUM -> its text,
 * true/false/null -> "true"/"false"/"null"; NULL for containers. */
const char *mf_jscalar_text(const struct mf_jval *v, size_t *len);

bool mf_json_is_number(const char *s, size_t n);
bool mf_json_equal(const struct mf_jval *a, const struct mf_jval *b);

/* ---- writing -------------------------------------------------------- */

/* Append the compact serialization of v to b (no newline). Strings are
 * escaped per RFC 8259 ("\u00XX" for controls, "\\" and "\"" only; '/' and
 * non-ASCII are written as they are). Returns 0, or -1 when b's ceiling is
 * reached (b keeps what was written so far; the caller resets). */
int mf_json_write(struct mf_buf *b, const struct mf_jval *v);
int mf_json_write_str(struct mf_buf *b, const char *s, size_t n);

/* Deep copy into another arena (used when a value must outlive a record). */
struct mf_jval *mf_json_clone(struct mf_arena *a, const struct mf_jval *v);

#endif
