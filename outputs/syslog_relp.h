/* syslog_relp.h - `transport: relp` of the syslog output (syslog_relp.c):
 * the same messages as syslog.c, over RELP through librelp, a record
 * acknowledged only on the receiver's RELP answer. */
#ifndef MF_SYSLOG_RELP_H
#define MF_SYSLOG_RELP_H

#include <pthread.h>
#include <stdint.h>

#include "err.h"
#include "output.h"
#include "status.h"
#include "syslog_fmt.h"

extern const struct mf_output_ops mf_output_syslog_relp_ops;

/* The output for conf (a syslog output with transport relp) sending to
 * host:port; its ops are mf_output_syslog_relp_ops. NULL with err set. */
struct mf_output *mf_syslog_relp_open(const struct mf_output_conf *conf, const char *host,
                                      const char *port, struct mf_err *err);

/* What both transports share (syslog.c). */
struct mf_syslog_ident {
    char hostname[256];         /* this host's name, "-" when unknown */
    char procid[16];            /* this process's id */
};
/* The message template of configuration c, naming this host and process
 * (kept in id, which must live as long as fmt). */
void mf_syslog_fmt_init(struct mf_syslog_fmt *fmt, struct mf_syslog_ident *id,
                        const struct mf_syslog_conf *c, size_t max_size);
/* ev's message into scratch, from template tmpl at the current time, for
 * output out (a message over max_size is logged: sent truncated). MF_OK,
 * or MF_DROP with the reason in info. */
enum mf_status mf_syslog_render(const struct mf_syslog_fmt *tmpl, struct mf_output *out,
                                size_t max_size, struct mf_event *ev,
                                struct mf_buf *scratch, struct mf_syslog_info *info);
/* A record out cannot send: counted as dropped (under mu, with since_flush
 * so that the next flush fails), logged with its Id. Returns MF_DROP. */
enum mf_status mf_syslog_refuse(const struct mf_output *out, pthread_mutex_t *mu,
                                struct mf_output_stats *st, uint64_t *since_flush,
                                const char *id, const char *why);

#endif
