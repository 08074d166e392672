/* input.h - streaming record reader (content blob, NDJSON, Purview CSV).
 *
 * Yields one record's JSON text at a time with its location; never loads a
 * whole file. Memory is bounded by the largest record kept (max_record) plus
 * one read chunk: a blob that is one JSON array of hundreds of MB is read
 * element by element. JSON is split by a byte scanner that knows strings,
 * escapes and bracket depth; parsing is left to mf_normalize().
 *
 * Formats:
 *   auto    first byte '{' or '[' -> JSON with line heuristics: a value
 *           (or array) whose first line holds more than brackets may go on
 *           past that line only where JSON allows a line break - after
 *           '[' '{' ',' ':' or before ']' '}' ',' ':' - so every valid JSON
 *           layout is read as JSON, while a truncated NDJSON line does not
 *           swallow the next one (if it looked like going on, the lines
 *           after it are read again on their own once it proves broken).
 *           Pretty-printed values open with a bare bracket line. A first
 *           line naming an AuditData column -> CSV.
 *   json    a sequence of top-level JSON values: objects are records, arrays
 *           are iterated element by element. No line heuristics.
 *   ndjson  line mode: every value must end on the line it starts on; a bad
 *           line never affects the next.
 *   csv     Purview audit-search export: header row with an AuditData
 *           column, RFC 4180 quoting (doubled quotes, newlines in quoted
 *           fields), UTF-8 BOM. The record is the AuditData field.
 *
 * Errors (garbage, non-object elements, truncated values, oversized
 * records, CSV rows without AuditData, read errors) come back one at a time
 * from mf_input_next() as MF_INPUT_ERROR; reading goes on after them.
 */
#ifndef MF_INPUT_H
#define MF_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

enum mf_input_format {
    MF_INPUT_AUTO = 0,
    MF_INPUT_JSON,
    MF_INPUT_NDJSON,
    MF_INPUT_CSV,
};

/* "auto", "json", "ndjson", "csv"; parse returns 0 / -1. */
const char *mf_input_format_name(enum mf_input_format f);
int mf_input_format_parse(const char *s, enum mf_input_format *out);

#define MF_INPUT_DEFAULT_MAX_RECORD ((size_t)64 << 20)   /* 64 MiB */
#define MF_INPUT_DEFAULT_CHUNK      ((size_t)256 << 10)  /* 256 KiB */

struct mf_input_opts {
    enum mf_input_format format;
    size_t max_record;   /* bytes; 0 = MF_INPUT_DEFAULT_MAX_RECORD */
    size_t chunk;        /* bytes per read; 0 = MF_INPUT_DEFAULT_CHUNK
                            (tests use tiny chunks to hit boundaries) */
};

/* Where a record or an error is. */
struct mf_input_loc {
    const char *name;    /* as given to mf_input_new*() */
    unsigned line;       /* 1-based line of the first byte; 0 = unknown */
    int64_t index;       /* 0-based index inside a JSON array, -1 if none */
};

struct mf_input_rec {
    const char *data;    /* the record's JSON text; valid until the next call */
    size_t len;
    struct mf_input_loc loc;
};

struct mf_input_err {
    struct mf_input_loc loc;
    char msg[200];
};

enum mf_input_ev {
    MF_INPUT_EOF = 0,
    MF_INPUT_RECORD,
    MF_INPUT_ERROR,
};

/* Read callback: like read(2): bytes read, 0 at end, -1 with errno set. */
typedef ssize_t (*mf_input_read_fn)(void *ud, char *buf, size_t n);

struct mf_input;

/* name is borrowed (must outlive the reader). opts may be NULL. */
struct mf_input *mf_input_new(const char *name, mf_input_read_fn fn, void *ud,
                              const struct mf_input_opts *opts);
struct mf_input *mf_input_new_fd(int fd, const char *name,
                                 const struct mf_input_opts *opts);
struct mf_input *mf_input_new_file(FILE *f, const char *name,
                                   const struct mf_input_opts *opts);
/* data is borrowed. */
struct mf_input *mf_input_new_mem(const char *data, size_t len,
                                  const char *name,
                                  const struct mf_input_opts *opts);
void mf_input_destroy(struct mf_input *in);

/* Next record or error. After MF_INPUT_EOF every call returns EOF. */
enum mf_input_ev mf_input_next(struct mf_input *in, struct mf_input_rec *rec,
                               struct mf_input_err *err);

/* The format in use (after auto detection; AUTO before the first byte). */
enum mf_input_format mf_input_format(const struct mf_input *in);

/* "FILE:LINE[ (index N)]" into buf; returns buf. */
char *mf_input_loc_str(const struct mf_input_loc *loc, char *buf, size_t n);

#endif
