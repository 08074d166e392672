/* status.h - the verdict that crosses module boundaries at I/O edges.
 * Append-only: never renumber. */
#ifndef MF_STATUS_H
#define MF_STATUS_H

enum mf_status {
    MF_OK = 0,
    MF_RETRY,   /* transient: try the same thing again later */
    MF_DROP,    /* permanent for this item: count it, report it, go on */
    MF_FATAL,   /* the agent cannot continue */
};

const char *mf_status_str(enum mf_status st);

#endif
