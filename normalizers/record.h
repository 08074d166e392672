/* record.h - one audit record, parsed once and seen through a "view".
 *
 * The view is the record object with the shapes that every consumer would
 * otherwise re-parse made uniform:
 *   - Name/Value arrays (Parameters, ExtendedProperties, DeviceProperties,
 *     OperationProperties, AppAccessContext-like lists) become objects
 *     {Name: Value} (first value wins for a repeated name, the rest are kept
 *     in an array under the same key);
 *   - ModifiedProperties becomes {Name: {"OldValue":..,"NewValue":..}};
 *   - fields that arrive as JSON-encoded strings (Data, ExceptionInfo,
 *     ExtendedProperties, OperationProperties, ...) are parsed when they hold
 *     a JSON object or array; the original string stays in the raw record;
 *   - SCC cmdlet Parameters given as a PowerShell string
 *     (-Identity "x" -Force "True") are split into a {Name: Value} object.
 * Members not rewritten are the very same nodes as in the raw record.
 *
 * Derived facts (time, outcome, actor, client address) are computed once
 * here so OCSF, ECS and the tagger agree on them.
 */
#ifndef MF_RECORD_H
#define MF_RECORD_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "event.h"
#include "json.h"

/* Repairs made while reading a record (bit set); reported on the event. */
#define MF_REPAIR_UTF8        0x0001  /* invalid UTF-8 replaced with U+FFFD */
#define MF_REPAIR_TIME        0x0002  /* CreationTime missing/unparseable */
#define MF_REPAIR_NUMSTR      0x0004  /* RecordType/UserType given as string */
#define MF_REPAIR_STRJSON     0x0008  /* a JSON-encoded string field was parsed */
#define MF_REPAIR_BADSTRJSON  0x0010  /* a field looked like JSON but was not */
#define MF_REPAIR_NO_ID       0x0020  /* Id missing */
#define MF_REPAIR_NO_OP       0x0040  /* Operation missing */
#define MF_REPAIR_COUNT       7       /* bits above: 1 << 0 .. 1 << 6 */

/* Name of one MF_REPAIR_* bit as the events show it ("invalid_utf8", ...),
 * the same in every schema; NULL for an unknown bit. */
const char *mf_repair_name(unsigned bit);

struct mf_record {
    struct mf_arena *arena;
    const struct mf_jval *raw;   /* the record as parsed (an object) */
    struct mf_jval *view;        /* see above */
    const char *src;             /* original bytes of the record, for raw_data */
    size_t src_len;

    /* derived */
    const char *id;              /* Id or NULL */
    const char *operation;       /* Operation or "" */
    const char *workload;        /* Workload or NULL */
    const char *tenant;          /* OrganizationId or NULL */
    const char *user_id;         /* UserId or NULL */
    const char *creation_time;   /* CreationTime text as it came, or NULL */
    int64_t time_ms;             /* CreationTime as UTC epoch ms; ingest time
                                    when missing (MF_REPAIR_TIME set) */
    int record_type;             /* -1 when absent or not a number */
    int user_type;               /* -1 when absent */
    enum mf_outcome outcome;     /* see mf_record_init() */
    bool is_system_actor;        /* normalization.md §2e exclusion list */
    /* Client address from ClientIPAddress, ClientIP, ActorIpAddress (first
     * usable), with brackets, port and ::ffff: removed. */
    char client_ip[64];          /* "" when none */
    int client_port;             /* 0 when none */
    const char *client_ip_raw;   /* the field's text as it came, or NULL */
    const char *user_agent;      /* UserAgent or ExtendedProperties.UserAgent */
    const char *content_type;    /* Audit.Exchange ... (caller-supplied or
                                    derived from Workload/RecordType) */
    unsigned repairs;            /* MF_REPAIR_* */
    /* The tenant's accepted e-mail domains (struct mf_norm_in; set by the
     * caller after mf_record_init()): an address under one of them is
     * inside the organization. n_domains 0: derived from the record
     * (rules.c, `external`). */
    const char *const *domains;
    size_t n_domains;
};

/* Build the view and the derived facts. raw must be an object. src/src_len
 * may be NULL/0. content_type may be NULL (then derived). Returns 0. */
int mf_record_init(struct mf_record *r, struct mf_arena *a,
                   const struct mf_jval *raw, const char *src, size_t src_len,
                   const char *content_type, unsigned parse_repairs);

/* Resolve a dotted path in the view, ASCII case-insensitive, trying the
 * longest key first at every level so "ModifiedProperties.Role.DisplayName.
 * NewValue" finds the key "Role.DisplayName". Arrays are not entered (use
 * the rule engine for fan-out). NULL when missing. */
const struct mf_jval *mf_record_get(const struct mf_record *r, const char *path);
/* Same, string only (NULL when missing or not a string). */
const char *mf_record_str(const struct mf_record *r, const char *path);

/* Parse a ClientIP-like string into ip/port. Returns 0 when an address was
 * found, -1 for null/empty/garbage (ip set to ""). */
int mf_parse_client_ip(const char *s, char *ip, size_t ipsz, int *port);
/* RecordType number -> Elastic/Microsoft name, or NULL. */
const char *mf_record_type_name(int rt);
/* Content type for a record (Audit.AzureActiveDirectory, Audit.Exchange,
 * Audit.SharePoint, Audit.General, DLP.All). */
const char *mf_content_type_guess(int record_type, const char *workload);

#endif
