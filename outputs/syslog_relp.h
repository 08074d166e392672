/* syslog_relp.h - `transport: relp` of the syslog output (syslog_relp.c):
 * the same messages as syslog.c, over RELP through librelp, a record
 * acknowledged only on the receiver's RELP answer. */
#ifndef MF_SYSLOG_RELP_H
#define MF_SYSLOG_RELP_H

#include "err.h"
#include "output.h"

extern const struct mf_output_ops mf_output_syslog_relp_ops;

/* The output for conf (a syslog output with transport relp) sending to
 * host:port; its ops are mf_output_syslog_relp_ops. NULL with err set. */
struct mf_output *mf_syslog_relp_open(const struct mf_output_conf *conf, const char *host,
                                      const char *port, struct mf_err *err);

#endif
