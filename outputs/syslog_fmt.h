/* syslog_fmt.h - pure formatters of the syslog output (no I/O, no clock).
 *
 * One normalized event (core/event.h) becomes one syslog message, built
 * from the event's facts and tags and the rendered tree of the output's
 * form (no JSON is parsed again):
 *
 *   RFC 5424  <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG
 *   RFC 3164  <PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PROCID]: MSG
 *
 * PRI = facility * 8 + severity, the syslog severity following the event's
 * OCSF severity_id (highest tag severity, at least 1):
 *
 *   OCSF severity_id   syslog severity
 *   0 unknown          6 informational
 *   1 informational    6 informational
 *   2 low              5 notice
 *   3 medium           4 warning
 *   4 high             3 error
 *   5 critical         2 critical
 *   6 fatal            1 alert
 *
 * TIMESTAMP is the event time (not the send time) in UTC, RFC 3339 with 'Z'
 * and milliseconds; "-" when the event carries no time (3164 then uses
 * fmt->now_ms, as it has no NILVALUE). MSGID is the Operation (ASCII
 * 33..126, at most 32 bytes), "-" when absent. STRUCTURED-DATA is one
 * element [m365fwd@32473 ...] with tenant, tenant_id, content_type, id,
 * class_uid, severity (OCSF 1..5), tags, areas (space separated) and, when
 * the oversize policy removed parts, truncated; PARAM-VALUE escapes '"',
 * '\' and ']' with a backslash (RFC 5424 §6.3.3). MSG carries no BOM
 * (MSG-ANY, §6.4): JSON and SIEM parsers downstream read it directly; the
 * bytes are UTF-8 and non-ASCII text is kept as it is.
 *
 * Payloads:
 *   json  the normalized event as it is (one line: the JSON writer escapes
 *         every control character).
 *   cef   CEF:0|Microsoft|Microsoft 365|VERSION|Operation|Name|Severity|ext
 *         Name = title of the most severe tag, else the Operation. Severity
 *         0..10 (table in syslog_fmt.c). Header fields escape '|' and '\';
 *         extension values escape '=', '\', CR and LF (as \r \n); other
 *         control characters become a space.
 *   leef  LEEF:2.0|Microsoft|Microsoft 365|VERSION|Operation|^|key=value^...
 *         Delimiter '^' (0x5E): rsyslog and others rewrite a TAB, the LEEF
 *         1.0 delimiter, to "#011". Header fields escape '|' and '\';
 *         values escape '\', '^' (the delimiter), CR, LF and TAB (as \r \n
 *         \t); '=' is left as it is (QRadar splits a pair on the first '=');
 *         other control characters become a space.
 *
 * Records larger than max_size (the whole message, header included, framing
 * excluded) - never a silent cut:
 *   1. json payload of an ocsf or ecs event: the bulky, redundant parts are
 *      removed (ocsf: raw_data, unmapped; ecs: event.original, o365.audit)
 *      and the event says so explicitly (ocsf: unmapped.m365fwd.truncated,
 *      ecs: m365fwd.truncated = the removed paths; RFC 5424 also adds the
 *      SD-PARAM truncated="..."). The result is MF_OK with info->truncated.
 *   2. when that is not enough, or for raw events, cef and leef: MF_DROP
 *      with info->reason; the output logs it with the record Id, counts it
 *      and its next flush() fails (the checkpoint holds).
 */
#ifndef MF_SYSLOG_FMT_H
#define MF_SYSLOG_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "event.h"
#include "output.h"
#include "status.h"

enum mf_syslog_transport { MF_SYSLOG_UDP = 0, MF_SYSLOG_TCP, MF_SYSLOG_TLS, MF_SYSLOG_RELP };
enum mf_syslog_framing { MF_SYSLOG_OCTET_COUNTING = 0, MF_SYSLOG_LF };
enum mf_syslog_format { MF_SYSLOG_RFC5424 = 0, MF_SYSLOG_RFC3164 };
enum mf_syslog_payload { MF_SYSLOG_JSON = 0, MF_SYSLOG_CEF, MF_SYSLOG_LEEF };

/* The syslog output's own keys (conf->plugin of a syslog output; table
 * mf_syslog_sec in outputs/syslog_conf.c). Enums are ints. */
struct mf_syslog_conf {
    const char *address;
    int transport;                   /* enum mf_syslog_transport */
    int framing;                     /* enum mf_syslog_framing */
    int format;                      /* enum mf_syslog_format */
    int payload;                     /* enum mf_syslog_payload */
    int facility;                    /* RFC 5424 numbers: kern 0 .. local7 23 */
    const char *app_name;
    const char *ca_file;
    const char *cert_file;
    const char *key_file;
    int64_t max_message_size;
};

extern const struct mf_optsec mf_syslog_sec;

#define MF_SYSLOG_SD_ID "m365fwd@32473"
#define MF_LEEF_DELIM '^'

struct mf_syslog_fmt {
    int format;                 /* enum mf_syslog_format */
    int payload;                /* enum mf_syslog_payload */
    int facility;               /* 0..23 */
    const char *hostname;       /* NULL or "" = "-" */
    const char *app_name;       /* NULL or "" = "m365fwd" */
    const char *procid;         /* NULL or "" = "-" */
    const char *version;        /* product version for CEF/LEEF */
    size_t max_size;            /* 0 = no limit */
    int64_t now_ms;             /* fallback time for RFC 3164 */
};

struct mf_syslog_info {
    bool truncated;             /* oversize policy step 1 applied */
    int severity;               /* syslog severity used in PRI */
    char reason[160];           /* MF_DROP: why */
};

/* OCSF severity_id (0..6) to syslog severity (0..7); table above. */
int mf_syslog_severity(int ocsf_severity);
/* PRI value; -1 when facility is outside 0..23 or severity outside 0..7. */
int mf_syslog_pri(int facility, int severity);
/* OCSF severity_id (0..6) to CEF severity (0..10). */
int mf_cef_severity(int ocsf_severity);

/* RFC 3339 UTC with milliseconds ("2024-01-02T03:04:05.678Z"); buf >= 32.
 * Returns the length. */
size_t mf_syslog_ts5424(int64_t ms, char *buf, size_t n);
/* RFC 3164 "Mmm dd hh:mm:ss" (day space-padded), UTC; buf >= 16. */
size_t mf_syslog_ts3164(int64_t ms, char *buf, size_t n);

/* Escapers: append s[0..n) to b. Return 0, -1 at b's ceiling. */
int mf_syslog_sd_escape(struct mf_buf *b, const char *s, size_t n);
int mf_cef_escape_header(struct mf_buf *b, const char *s, size_t n);
int mf_cef_escape_ext(struct mf_buf *b, const char *s, size_t n);
int mf_leef_escape_header(struct mf_buf *b, const char *s, size_t n);
int mf_leef_escape_value(struct mf_buf *b, const char *s, size_t n);

/* Stream framing (RFC 6587) for tcp/tls: octet counting "LEN SP MSG", or
 * lf "MSG\n" with every LF inside the message written as the two bytes
 * "\n" (the formatters emit none; this keeps the framing safe).
 * framing: enum mf_syslog_framing. 0 / -1 at b's ceiling. */
int mf_syslog_frame(int framing, const char *msg, size_t len, struct mf_buf *b);

/* Format one message (without framing) into out (reset first): the event
 * ev sent in form (schema, as the output is configured). Thread-safe: no
 * state outside the arguments. MF_OK, or MF_DROP with info->reason
 * (oversize policy, or no form). */
enum mf_status mf_syslog_format(const struct mf_syslog_fmt *f,
                                const struct mf_event *ev, enum mf_schema schema,
                                const struct mf_event_form *form,
                                struct mf_buf *out, struct mf_syslog_info *info);

#endif
