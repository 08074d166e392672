/* syslog_conf.c - the syslog output's own keys (option table, checks). */
#include "syslog_fmt.h"

#include <stdio.h>
#include <string.h>

#include "optcheck.h"
#include "units.h"


static const struct mf_enum transport_choices[] = {
    {"udp", MF_SYSLOG_UDP},
    {"tcp", MF_SYSLOG_TCP},
    {"tls", MF_SYSLOG_TLS},
    {"relp", MF_SYSLOG_RELP},
    {NULL, 0},
};

static const struct mf_enum framing_choices[] = {
    {"octet-counting", MF_SYSLOG_OCTET_COUNTING},
    {"lf", MF_SYSLOG_LF},
    {NULL, 0},
};

static const struct mf_enum format_choices[] = {
    {"rfc5424", MF_SYSLOG_RFC5424},
    {"rfc3164", MF_SYSLOG_RFC3164},
    {NULL, 0},
};

static const struct mf_enum payload_choices[] = {
    {"json", MF_SYSLOG_JSON},
    {"cef", MF_SYSLOG_CEF},
    {"leef", MF_SYSLOG_LEEF},
    {NULL, 0},
};

static const struct mf_enum facility_choices[] = {
    {"kern", 0}, {"user", 1}, {"mail", 2}, {"daemon", 3}, {"auth", 4},
    {"syslog", 5}, {"lpr", 6}, {"news", 7}, {"uucp", 8}, {"cron", 9},
    {"authpriv", 10}, {"ftp", 11}, {"ntp", 12}, {"security", 13},
    {"console", 14}, {"solaris-cron", 15}, {"local0", 16}, {"local1", 17},
    {"local2", 18}, {"local3", 19}, {"local4", 20}, {"local5", 21},
    {"local6", 22}, {"local7", 23},
    {NULL, 0},
};

/* RFC 5424 APP-NAME: 1*48 PRINTUSASCII. */
/* RFC 5424 APP-NAME: 1*48 PRINTUSASCII. */
static int
check_app_name(const char *s, char *w, size_t n)
{
    if (strlen(s) > 48)
        return mf_opt_why(w, n, "is longer than 48 characters (RFC 5424 APP-NAME)");
    for (; *s; s++)
        if ((unsigned char)*s < 33 || (unsigned char)*s > 126)
            return mf_opt_why(w, n, "may contain only printable ASCII without spaces");
    return 0;
}

/* Cross-checks (the kind's check hook). */
static void
syslog_check(const struct mf_optctx *c, void *base, const struct mf_jval *node,
             const char *path)
{
    static const char *const tls_only[] = {"ca_file", "cert_file", "key_file",
                                           NULL};
    const struct mf_syslog_conf *o = base;
    const char *file = c->file;
    size_t k;

    if (o->transport != MF_SYSLOG_TLS) {
        for (k = 0; tls_only[k]; k++)
            if (mf_jobj_get(node, tls_only[k]))
                mf_err_add(c->err, file, mf_opt_key_line(node, tls_only[k]),
                              "%s.%s: only used with transport: tls",
                              path, tls_only[k]);
    }
    if (o->cert_file && !o->key_file)
        mf_err_add(c->err, file, mf_opt_key_line(node, "cert_file"),
                      "%s.cert_file: needs key_file", path);
    if (o->key_file && !o->cert_file)
        mf_err_add(c->err, file, mf_opt_key_line(node, "key_file"),
                      "%s.key_file: needs cert_file", path);
    if (o->transport == MF_SYSLOG_UDP && o->max_message_size > 65507)
        mf_err_add(c->err, file,
                      mf_jobj_get(node, "max_message_size")
                          ? mf_opt_key_line(node, "max_message_size")
                          : mf_opt_key_line(node, "transport"),
                      "%s.max_message_size: at most 65507 with "
                      "transport: udp", path);
}

#define SYS(f) offsetof(struct mf_syslog_conf, f)
static const struct mf_option syslog_opts[] = {
    {.name = "address", .type = MF_OPT_STR, .offset = SYS(address),
     .flags = MF_OPT_REQUIRED, .check = mf_check_hostport,
     .desc = "Receiver, `host:port` (`[v6]:port`)."},
    {.name = "transport", .type = MF_OPT_ENUM, .def = "tcp",
     .offset = SYS(transport),
     .choices = transport_choices,
     .desc = "`udp` is best effort (no acknowledgement, losses possible); "
             "`tcp` and `tls` (RFC 5425, certificate verified) acknowledge a "
             "record once the receiver's TCP acknowledged it and resend a "
             "window of records when a connection breaks; `relp` (RELP, "
             "rsyslog's imrelp) acknowledges a record only on the "
             "receiver's RELP answer and resends whatever was not "
             "answered: nothing lost when the receiver dies."},
    {.name = "framing", .type = MF_OPT_ENUM, .def = "octet-counting",
     .offset = SYS(framing), .choices = framing_choices,
     .desc = "Stream framing for tcp/tls (RFC 6587): `octet-counting` or "
             "`lf` (one message per line; line breaks inside are "
             "escaped). Ignored with udp and relp (RELP frames each "
             "message)."},
    {.name = "format", .type = MF_OPT_ENUM, .def = "rfc5424",
     .offset = SYS(format), .choices = format_choices,
     .desc = "Syslog header: RFC 5424 (structured data with tenant, tags, "
             "severity) or RFC 3164 for old receivers."},
    {.name = "payload", .type = MF_OPT_ENUM, .def = "json",
     .offset = SYS(payload), .choices = payload_choices,
     .desc = "Message body: the normalized event as JSON, ArcSight CEF, or "
             "QRadar LEEF 2.0."},
    {.name = "facility", .type = MF_OPT_ENUM, .def = "local0",
     .offset = SYS(facility), .choices = facility_choices,
     .desc = "Syslog facility; the message severity follows the event "
             "severity."},
    {.name = "app_name", .type = MF_OPT_STR, .def = "m365fwd",
     .offset = SYS(app_name), .check = check_app_name,
     .desc = "APP-NAME (RFC 5424) / TAG (RFC 3164)."},
    {.name = "ca_file", .type = MF_OPT_STR, .offset = SYS(ca_file),
     .flags = MF_OPT_PATH | MF_OPT_READABLE,
     .desc = "tls: CA certificates (PEM) that verify the receiver; default: "
             "the system store."},
    {.name = "cert_file", .type = MF_OPT_STR, .offset = SYS(cert_file),
     .flags = MF_OPT_PATH | MF_OPT_READABLE,
     .desc = "tls: client certificate (PEM); needs `key_file`."},
    {.name = "key_file", .type = MF_OPT_STR, .offset = SYS(key_file),
     .flags = MF_OPT_SECRET | MF_OPT_PATH | MF_OPT_RAW,
     .desc = "tls: private key of `cert_file` (same permission rules as "
             "secret files)."},
    {.name = "max_message_size", .type = MF_OPT_SIZE, .def = "64KiB",
     .offset = SYS(max_message_size), .min = 480,
     .max = 16 * MF_MIB,
     .desc = "Largest message sent, header included (at most 65507 with "
             "udp). A larger record is never cut silently: see the syslog "
             "output documentation for the policy."},
    {.name = NULL},
};

const struct mf_optsec mf_syslog_sec = {
    .name = "syslog",
    .desc = "Sends each event as one syslog message (JSON, CEF or LEEF "
            "payload).",
    .opts = syslog_opts,
    .size = sizeof(struct mf_syslog_conf),
    .check = syslog_check,
};
