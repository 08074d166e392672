/* file.h - buffered line writer for normalized events (stdout or a file).
 *
 * Lines are gathered in one bounded buffer and written with write(2) when
 * it fills (never per record). mf_file_out_ack() makes everything written
 * so far durable (flush + fsync) so a collector can acknowledge upstream
 * only after the bytes are on disk.
 *
 * Never a torn line: a file opened for appending that ends in a partial
 * line (a crash in the middle of a write) is cut back to its last
 * complete line; after a failed write or fsync (disk full, EIO)
 * mf_file_out_rollback() truncates the file to what the last
 * acknowledgement covered, so what follows starts on a line of its own
 * and nothing unacknowledged stays behind (it is sent again). */
#ifndef MF_OUTPUT_FILE_H
#define MF_OUTPUT_FILE_H

#include <stddef.h>
#include <sys/types.h>

#define MF_FILE_OUT_DEFAULT_BUF ((size_t)1 << 20)   /* 1 MiB */

/* The file output's own keys (table mf_file_sec, outputs/output.c). */
struct mf_file_conf {
    const char *path;                /* "-" = standard output */
};
struct mf_optsec;
extern const struct mf_optsec mf_file_sec;

struct mf_file_out;

/* path NULL or "-" = standard output (not closed by close). append != 0
 * opens an existing file for appending, else it is truncated. bufsize 0 =
 * MF_FILE_OUT_DEFAULT_BUF. NULL with errno set when the file cannot be
 * opened. */
struct mf_file_out *mf_file_out_open(const char *path, int append,
                                     size_t bufsize);
/* Same over an open descriptor (not closed by close). */
struct mf_file_out *mf_file_out_fdopen(int fd, const char *name,
                                       size_t bufsize);

/* Append data and a newline. 0, or -1 with errno on a write error (the
 * writer then refuses further lines). */
int mf_file_out_line(struct mf_file_out *o, const char *data, size_t len);
/* Write what is buffered. 0 / -1. */
int mf_file_out_flush(struct mf_file_out *o);
/* Flush and fsync: everything written before is durable on return 0.
 * On pipes and terminals fsync is skipped. */
int mf_file_out_ack(struct mf_file_out *o);
/* The descriptor, and the durability step of mf_file_out_ack() on its
 * own (fsync, skipped on pipes and terminals; touches no writer state, so
 * it may run while another thread appends lines). 0 / -1 with errno. */
int mf_file_out_fd(const struct mf_file_out *o);
int mf_file_out_sync_fd(int fd);
/* After a failure (a writer that failed refuses every line): drop the
 * buffer and truncate a regular file to the end of its last
 * acknowledgement; the writer takes lines again. 0 / -1 (truncation
 * failed: the writer stays failed). */
int mf_file_out_rollback(struct mf_file_out *o);
/* The offset after everything written so far (after mf_file_out_flush):
 * 0, or -1 when the writer failed. A split acknowledgement (write under a
 * lock, fsync outside it) records it, then mf_file_out_set_acked() once
 * the fsync of that descriptor succeeded. */
int mf_file_out_written(const struct mf_file_out *o, off_t *end);
void mf_file_out_set_acked(struct mf_file_out *o, off_t end);
/* The file was moved away under the writer: 1 renamed or replaced (the
 * path names another file or none: rotated; what was written is in the
 * moved file), 2 deleted (no name left: what was written is gone), 0 not
 * (or not a file of ours). */
int mf_file_out_moved(const struct mf_file_out *o);
/* Flush, close (unless stdout / borrowed fd), free. 0 / -1 (first error
 * seen, including earlier write errors). */
int mf_file_out_close(struct mf_file_out *o);

/* Counters for summaries and tests. */
size_t mf_file_out_lines(const struct mf_file_out *o);
const char *mf_file_out_name(const struct mf_file_out *o);

#endif
