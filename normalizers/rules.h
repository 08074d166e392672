/* rules.h - the condition language of the risk-tag rules.
 *
 * A condition is a YAML mapping (see docs/rules.md) compiled once at start-up
 * into a small tree and evaluated against the view of a record (record.h).
 * Everything is case-insensitive; regular expressions are POSIX ERE compiled
 * with REG_ICASE at load time. Paths are dotted and resolved like
 * mf_record_get() (case-insensitive keys, keys may contain dots), except that
 * arrays are entered everywhere: a condition on a path holds when ANY value
 * reached through it satisfies it.
 *
 * Memory: a struct mf_rules owns every compiled condition (an arena plus the
 * compiled regular expressions); destroy it to release them all. Compiled
 * conditions are immutable and may be evaluated from several threads.
 */
#ifndef MF_RULES_H
#define MF_RULES_H

#include <stdbool.h>
#include <regex.h>
#include <stddef.h>

#include "json.h"
#include "record.h"

struct mf_rules;
struct mf_cond;
struct mf_sevexpr;

/* Longest operation name that can be pinned (and indexed). */
#define MF_RULES_OP_MAX 160

/* name is the table's name for error messages ("tags.yaml"). */
struct mf_rules *mf_rules_new(const char *name);
/* Declare the record fields rules may name (the first segment of every
 * path, ASCII case-insensitive); a path outside this list is a compile
 * error. Without a declaration every name is accepted. The list must
 * outlive rs. */
void mf_rules_set_fields(struct mf_rules *rs, const char *const *fields, size_t n);
void mf_rules_destroy(struct mf_rules *rs);

/* Zeroed memory from the rule set's storage (lives until destroy). */
void *mf_rules_alloc(struct mf_rules *rs, size_t n);
/* Copy a string into the rule set's storage (lives until destroy). */
char *mf_rules_strdup(struct mf_rules *rs, const char *s);

/* Compile one condition node. NULL with err = "NAME:LINE: message" on any
 * problem (unknown primitive or key, bad regular expression, empty list,
 * wrong value type). */
const struct mf_cond *mf_rules_compile(struct mf_rules *rs,
                                       const struct mf_jval *node,
                                       char *err, size_t errsz);

bool mf_cond_eval(const struct mf_cond *c, const struct mf_record *r);

/* Loading a table of rules (tags.yaml, aggregates.yaml). On a problem the
 * loaders below return -1 with *at the offending node and msg the message
 * (without the "NAME:LINE: " prefix, which the table adds). */

/* The members of mapping t whose key is in keys[0..n) go to vals at the
 * key's index (a repeated key: the last wins; others stay as they were).
 * Returns the index in t of the first member with another key, or -1. */
long mf_rules_pick(const struct mf_jval *t, const char *const *keys, size_t n,
                   const struct mf_jval **vals);
/* A table's 'fields' list: checked, then declared with
 * mf_rules_set_fields(). */
int mf_rules_load_fields(struct mf_rules *rs, const struct mf_jval *fields,
                         const struct mf_jval **at, char *msg, size_t msgsz);

/* Operation pinning for the pre-index: true when every record the condition
 * can match has one of a finite set of operations. mf_cond_each_op() then
 * calls fn once per operation (lower-cased, ASCII). */
bool mf_cond_pinned(const struct mf_cond *c);
void mf_cond_each_op(const struct mf_cond *c,
                     void (*fn)(void *ud, const char *op_lc), void *ud);

/* An index of rules by the operations their conditions pin: a table
 * (tags, aggregates) adds each pinned rule by its number, then finds, per
 * record, the rules of the record's operation with one hash lookup. */
struct mf_opindex;
struct mf_opindex *mf_opindex_new(void);
void mf_opindex_destroy(struct mf_opindex *ix);
/* Index rule number `rule` under every operation c pins (c pinned). */
void mf_opindex_add(struct mf_opindex *ix, const struct mf_cond *c, size_t rule);
/* Done adding (before any find). */
void mf_opindex_finish(struct mf_opindex *ix);
/* The numbers of the rules indexed under op (any case), ascending; *n of
 * them (0: none). */
const size_t *mf_opindex_find(const struct mf_opindex *ix, const char *op, size_t *n);

/* Severity of a hit: base, then severity_from (max of a value map over a
 * field, when any value maps), then the adjust list in order ({when, set} /
 * {when, add}), clamped to 1..5. from and adjust may be NULL. */
const struct mf_sevexpr *mf_rules_compile_severity(struct mf_rules *rs,
                                                   int base,
                                                   const struct mf_jval *from,
                                                   const struct mf_jval *adjust,
                                                   char *err, size_t errsz);
int mf_sevexpr_eval(const struct mf_sevexpr *s, const struct mf_record *r);

/* Compile a regular expression (POSIX ERE, REG_ICASE) kept by the rule
 * set; NULL with err = "NAME:LINE: message". */
regex_t *mf_rules_compile_regex(struct mf_rules *rs, const struct mf_jval *v,
                                char *err, size_t errsz);
/* Compile a field path on its own (validated like a condition's path:
 * dotted, first segment declared under 'fields'); stored in the rule set.
 * NULL with err = "NAME:LINE: message". Used by tables beside the tag
 * catalogue (aggregates) that name record fields. */
const char *mf_rules_compile_path(struct mf_rules *rs, const struct mf_jval *v,
                                  char *err, size_t errsz);
/* Call fn for every value the path reaches in the record's view (arrays
 * fanned out, keys case-insensitive, as conditions see them) until fn
 * returns true; returns whether one did. */
bool mf_rules_each_value(const struct mf_record *r, const char *path,
                         bool (*fn)(void *ud, const struct mf_jval *v), void *ud);

/* True when text holds an e-mail address whose domain is outside the
 * actor's organisation (domains of UserId, MailboxOwnerUPN and
 * OrganizationName, and the tenant's "<x>.onmicrosoft.com" prefix).
 * Exposed for tests. */
bool mf_rules_text_external(const struct mf_record *r, const char *text,
                            size_t len);

#endif
