/* config.h - reading a configuration file against an option table.
 *
 * config/ knows no key of its own: each plugin declares its table
 * (core/option.h) beside its code, the agent composes them into one top
 * table (agent/agent_conf.c), and this module reads the file, applies the
 * table (config/options.h) with file:line errors, runs each section's
 * cross-check hook, checks the files the flags name (secrets read once,
 * readable paths), and computes the difference of two loaded
 * configurations for a reload. Every problem is reported with file:line
 * and key path; all of them are collected in struct mf_err (msg = the
 * first, all = every one, one per line).
 *
 * Secrets are never in the configuration: it holds the file path or the
 * environment variable name, and mf_secret_load() reads the value
 * when it is needed. No function of this module writes a secret value into
 * a message, a log line or the generated documentation.
 */
#ifndef MF_CONFIG_H
#define MF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "err.h"
#include "option.h"
#include "options.h"

/* load flags */
#define MF_CONFIG_REQUIRE_TENANTS 0x01  /* run, status, preflight (checked by
                                         * the agent's top-level hook) */
#define MF_CONFIG_CHECK_FILES     0x02  /* read every secret once (and forget
                                         * it), check readable files:
                                         * start-up of run/preflight/import */

/* Read text (name used in messages; base_dir resolves relative paths, NULL
 * keeps them) into out (top->size bytes, zeroed by the caller; strings in
 * a). 0, or -1 with err filled (err may be NULL). */
int mf_config_read(const struct mf_optsec *top, void *out, struct mf_arena *a,
                   const char *name, const char *text, size_t len,
                   const char *base_dir, unsigned flags, struct mf_err *err);
/* Same from a file (at most 16 MiB); relative paths in it are relative to
 * its directory. */
int mf_config_read_file(const struct mf_optsec *top, void *out,
                        struct mf_arena *a, const char *path, unsigned flags,
                        struct mf_err *err);

/* ---- reload ------------------------------------------------------------ */

enum mf_change_kind { MF_CHANGE_CHANGED = 0, MF_CHANGE_ADDED, MF_CHANGE_REMOVED };

struct mf_change {
    const char *path;          /* "collect.poll_interval", "outputs[siem]",
                                * "outputs[siem].filter.min_severity" */
    enum mf_change_kind kind;  /* ADDED / REMOVED: a list element */
    enum mf_reload reload;     /* the key's class (the list's for elements) */
    const char *old_value;     /* CHANGED: values as text; NULL when hidden */
    const char *new_value;     /* (NOECHO / SECRET keys) */
};

typedef void (*mf_config_diff_fn)(const struct mf_change *ch, void *ud);

/* Calls cb for every difference between two configurations loaded with the
 * same top table: every changed key (sections walked key by key), every
 * list element added or removed (elements matched by the section's key,
 * case-insensitively; in old order, then the added ones in new order),
 * each key of an element present in both. When a kind (output type)
 * changed, only the keys common to both kinds are compared. Returns the
 * number of changes. */
size_t mf_config_diff(const struct mf_optsec *top, const void *old,
                      const void *new_, mf_config_diff_fn cb, void *ud);

#endif
