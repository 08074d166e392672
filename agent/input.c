/* input.c - streaming record reader; see input.h.
 *
 * One byte buffer holds the unread input plus the record being scanned. A
 * refill moves the bytes still needed to the front and reads one chunk; the
 * buffer grows only while a record is longer than what it holds, so memory
 * stays at (largest record kept) + chunk. A record longer than max_record is
 * reported at once and then scanned without being kept.
 *
 * The JSON scanner is a small state machine: between values (TOP), inside a
 * top-level array between elements (ARR), inside a value (VAL: depth,
 * string, escape), inside a bare scalar (SCALAR), skipping garbage to the
 * end of the line (GARBAGE). The CSV scanner decodes the AuditData field of
 * each row into its own buffer.
 */
#include "input.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "mem.h"

enum scan_state {
    ST_START = 0,   /* BOM and format detection not done yet */
    ST_TOP,
    ST_ARR,
    ST_VAL,
    ST_SCALAR,
    ST_GARBAGE,
    ST_CSV,
    ST_DONE,
};

struct mem_src {
    const char *data;
    size_t len;
    size_t pos;
};

struct mf_input {
    const char *name;
    mf_input_read_fn fn;
    void *ud;
    struct mem_src mem;
    int fd;
    enum mf_input_format req;    /* requested format */
    enum mf_input_format mode;   /* JSON, NDJSON or CSV once detected */
    bool heur;                   /* auto: line heuristics for JSON */
    size_t max_record;
    size_t chunk;

    char *buf;
    size_t cap;
    size_t len;                  /* bytes in buf */
    size_t pos;                  /* scan position */
    unsigned line;               /* line of buf[pos] */
    bool eof;                    /* no more bytes from fn */
    enum scan_state st;

    /* current value */
    size_t vstart;
    unsigned vline;
    int64_t vindex;
    char vkind;                  /* first byte of the value */
    unsigned depth;
    bool in_str;
    bool esc;
    bool vskip;                  /* over max_record: not kept */
    bool vnl_checked;            /* auto: first newline seen */
    bool vcompact;               /* auto: the value's first line holds more
                                    than brackets (NDJSON-like start) */
    bool vrewind;                /* auto: a compact value went on past its
                                    first line; rw_* is where to resume if
                                    it turns out to be a truncated line */
    size_t rw_pos;
    unsigned rw_line;
    uint64_t bstack;             /* open brackets of the value, 1 = '[' (the
                                    innermost 64 levels) */
    bool want_more;              /* a look-ahead needs the next chunk */

    /* top-level array */
    bool in_arr;
    unsigned aline;
    int64_t aindex;              /* index of the next element */
    bool a_first_line;           /* still on the array's first line */
    bool a_compact;              /* an element ended on the first line */
    char a_last;                 /* last token at array level: '[' ',' or
                                    'v' (an element) */

    /* CSV */
    struct mf_buf rec;           /* decoded AuditData of the current row */
    struct mf_buf hdr;           /* current header field */
    bool csv_header;             /* header row not finished yet */
    long csv_audit;              /* AuditData column, -1 unknown */
    long csv_field;              /* field index in the row */
    bool csv_inq;                /* inside a quoted field */
    bool csv_qpend;              /* quote seen inside a quoted field */
    bool csv_fstart;             /* at the first byte of a field */
    bool csv_over;               /* AuditData above max_record */
    bool csv_row_reset;          /* start a new row before the next byte */
    size_t csv_row_bytes;        /* content bytes in the row */
    unsigned csv_row_line;
};

static const char *const format_names[] = {
    [MF_INPUT_AUTO] = "auto",
    [MF_INPUT_JSON] = "json",
    [MF_INPUT_NDJSON] = "ndjson",
    [MF_INPUT_CSV] = "csv",
};

/* bytes that stop the fast string loop */
static const unsigned char str_special[256] = {
    ['"'] = 1, ['\\'] = 1, ['\n'] = 1,
};

/* bytes that end a bare scalar */
static const unsigned char scalar_end[256] = {
    [' '] = 1, ['\t'] = 1, ['\r'] = 1, ['\n'] = 1, [','] = 1, [']'] = 1,
    ['}'] = 1, ['['] = 1, ['{'] = 1, ['"'] = 1,
};

const char *
mf_input_format_name(enum mf_input_format f)
{
    if ((unsigned)f < sizeof(format_names) / sizeof(format_names[0]))
        return format_names[f];
    return "?";
}

int
mf_input_format_parse(const char *s, enum mf_input_format *out)
{
    size_t i;

    if (!s)
        return -1;
    for (i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++) {
        if (strcmp(s, format_names[i]) == 0) {
            *out = (enum mf_input_format)i;
            return 0;
        }
    }
    return -1;
}

char *
mf_input_loc_str(const struct mf_input_loc *loc, char *buf, size_t n)
{
    if (loc->index >= 0)
        snprintf(buf, n, "%s:%u (index %lld)", loc->name, loc->line,
                 (long long)loc->index);
    else
        snprintf(buf, n, "%s:%u", loc->name, loc->line);
    return buf;
}

/* ---- sources ---------------------------------------------------------- */

static ssize_t
read_fd(void *ud, char *buf, size_t n)
{
    int fd = *(int *)ud;
    ssize_t r;

    do {
        r = read(fd, buf, n);
    } while (r < 0 && errno == EINTR);
    return r;
}

static ssize_t
read_file(void *ud, char *buf, size_t n)
{
    FILE *f = ud;
    size_t r = fread(buf, 1, n, f);

    if (r == 0 && ferror(f)) {
        if (errno == 0)
            errno = EIO;
        return -1;
    }
    return (ssize_t)r;
}

static ssize_t
read_mem(void *ud, char *buf, size_t n)
{
    struct mem_src *m = ud;
    size_t left = m->len - m->pos;

    if (n > left)
        n = left;
    memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    return (ssize_t)n;
}

struct mf_input *
mf_input_new(const char *name, mf_input_read_fn fn, void *ud,
             const struct mf_input_opts *opts)
{
    struct mf_input *in = mf_xcalloc(1, sizeof(*in));

    in->name = name ? name : "<input>";
    in->fn = fn;
    in->ud = ud;
    in->req = opts ? opts->format : MF_INPUT_AUTO;
    in->max_record = opts && opts->max_record ? opts->max_record
                                              : MF_INPUT_DEFAULT_MAX_RECORD;
    in->chunk = opts && opts->chunk ? opts->chunk : MF_INPUT_DEFAULT_CHUNK;
    in->cap = in->chunk < 4096 ? 4096 : in->chunk * 2;
    in->buf = mf_xmalloc(in->cap);
    in->line = 1;
    in->st = ST_START;
    in->vindex = -1;
    in->csv_audit = -1;
    mf_buf_init(&in->rec, in->max_record);
    mf_buf_init(&in->hdr, 65536);
    return in;
}

struct mf_input *
mf_input_new_fd(int fd, const char *name, const struct mf_input_opts *opts)
{
    struct mf_input *in = mf_input_new(name, read_fd, NULL, opts);

    in->fd = fd;
    in->ud = &in->fd;
    return in;
}

struct mf_input *
mf_input_new_file(FILE *f, const char *name, const struct mf_input_opts *opts)
{
    return mf_input_new(name, read_file, f, opts);
}

struct mf_input *
mf_input_new_mem(const char *data, size_t len, const char *name,
                 const struct mf_input_opts *opts)
{
    struct mf_input *in = mf_input_new(name, read_mem, NULL, opts);

    in->mem.data = data;
    in->mem.len = len;
    in->mem.pos = 0;
    in->ud = &in->mem;
    return in;
}

void
mf_input_destroy(struct mf_input *in)
{
    if (!in)
        return;
    free(in->buf);
    mf_buf_fini(&in->rec);
    mf_buf_fini(&in->hdr);
    free(in);
}

enum mf_input_format
mf_input_format(const struct mf_input *in)
{
    return in->st == ST_START ? in->req : in->mode;
}

/* ---- buffer ----------------------------------------------------------- */

static bool
value_kept(const struct mf_input *in)
{
    return (in->st == ST_VAL || in->st == ST_SCALAR) && !in->vskip;
}

/* Read one more chunk. 1 = got bytes, 0 = end of input, -1 = read error
 * (errno kept, eof set). */
static int
fill(struct mf_input *in)
{
    size_t keep = value_kept(in) ? in->vstart : in->pos;
    ssize_t r;

    if (in->eof)
        return 0;
    if (keep > 0) {
        memmove(in->buf, in->buf + keep, in->len - keep);
        in->len -= keep;
        in->pos -= keep;
        if (value_kept(in)) {
            in->vstart -= keep;
            if (in->vrewind)
                in->rw_pos -= keep;
        }
    }
    /* give back the memory of a past big record */
    if (in->cap > 8 * in->chunk && in->cap > 65536 && in->len < in->chunk) {
        size_t ncap = in->chunk * 2 < 4096 ? 4096 : in->chunk * 2;
        in->buf = mf_xrealloc(in->buf, ncap);
        in->cap = ncap;
    }
    if (in->cap - in->len < in->chunk) {
        size_t ncap = in->cap * 2;
        if (ncap < in->len + in->chunk)
            ncap = in->len + in->chunk;
        in->buf = mf_xrealloc(in->buf, ncap);
        in->cap = ncap;
    }
    r = in->fn(in->ud, in->buf + in->len, in->chunk);
    if (r < 0) {
        in->eof = true;
        return -1;
    }
    if (r == 0) {
        in->eof = true;
        return 0;
    }
    in->len += (size_t)r;
    return 1;
}

/* ---- errors ----------------------------------------------------------- */

static enum mf_input_ev
fail(struct mf_input_err *err, const char *name, unsigned line,
     int64_t index, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static enum mf_input_ev
fail(struct mf_input_err *err, const char *name, unsigned line,
     int64_t index, const char *fmt, ...)
{
    va_list ap;

    err->loc.name = name;
    err->loc.line = line;
    err->loc.index = index;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return MF_INPUT_ERROR;
}

static enum mf_input_ev
value_fail(struct mf_input *in, struct mf_input_err *err, const char *what)
{
    return fail(err, in->name, in->vline, in->vindex, "%s", what);
}

static const char *
byte_desc(unsigned char c, char *tmp, size_t n)
{
    if (c >= 0x21 && c < 0x7f)
        snprintf(tmp, n, "'%c'", c);
    else
        snprintf(tmp, n, "byte 0x%02x", c);
    return tmp;
}

static const char *
kind_desc(char k)
{
    switch (k) {
    case '[': return "an array";
    case '"': return "a string";
    case 't': case 'f': return "a boolean";
    case 'n': return "null";
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        return "a number";
    default:
        return "not JSON";
    }
}

/* ---- format detection ------------------------------------------------- */

static bool
line_names_auditdata(const char *p, size_t n)
{
    static const char key[] = "auditdata";
    size_t k = sizeof(key) - 1, i;

    for (i = 0; i + k <= n; i++)
        if (strncasecmp(p + i, key, k) == 0)
            return true;
    return false;
}

/* BOM, then the format. 0 = ready, -1 = read error (reported by caller). */
static int
detect(struct mf_input *in)
{
    int r;

    while (in->len - in->pos < 3 && !in->eof)
        if (fill(in) < 0)
            return -1;
    if (in->len - in->pos >= 3 && memcmp(in->buf + in->pos, "\xef\xbb\xbf", 3) == 0)
        in->pos += 3;

    in->heur = false;
    switch (in->req) {
    case MF_INPUT_JSON:
    case MF_INPUT_NDJSON:
        in->mode = in->req;
        return 0;
    case MF_INPUT_CSV:
        in->mode = MF_INPUT_CSV;
        return 0;
    case MF_INPUT_AUTO:
        break;
    }
    in->mode = MF_INPUT_JSON;
    in->heur = true;
    /* first non-blank byte (consumed blanks are counted as lines) */
    for (;;) {
        while (in->pos < in->len) {
            char c = in->buf[in->pos];
            if (c == '{' || c == '[')
                return 0;
            if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
                goto first_line;
            if (c == '\n')
                in->line++;
            in->pos++;
        }
        if (in->eof)
            return 0;
        if (fill(in) < 0)
            return -1;
    }
first_line:
    /* not JSON-looking: a CSV header names AuditData on its first line */
    for (;;) {
        const char *nl = memchr(in->buf + in->pos, '\n', in->len - in->pos);
        size_t n = nl ? (size_t)(nl - (in->buf + in->pos)) : in->len - in->pos;

        if (nl || in->eof || n >= 65536) {
            if (line_names_auditdata(in->buf + in->pos, n))
                in->mode = MF_INPUT_CSV;
            return 0;
        }
        r = fill(in);
        if (r < 0)
            return -1;
    }
}

/* ---- JSON scanner ------------------------------------------------------ */

/* Auto mode tells a JSON text laid out over several lines from NDJSON with
 * a cut line by where the line breaks fall. In JSON a line break (blanks)
 * may only separate two tokens where the one before it opens or separates
 * ('[' '{' ',' ':') or the one after it closes or separates (']' '}' ','
 * ':'): anything else is a line that ended inside its record. */
static bool
token_opens(char c)
{
    return c == '[' || c == '{' || c == ',' || c == ':';
}

static bool
token_closes(char c)
{
    return c == ']' || c == '}' || c == ',' || c == ':';
}

/* Blanks scanned at most by a look-ahead or look-behind: a longer run is
 * valid between JSON tokens, and nobody writes NDJSON that way. */
#define BLANK_RUN_MAX 65536

/* The first non-blank byte at or after from: 1 found (*c), 0 end of input,
 * -1 the next chunk is needed, 2 only blanks for BLANK_RUN_MAX bytes. */
static int
peek_token(const struct mf_input *in, size_t from, char *c)
{
    size_t p;

    for (p = from; p < in->len && p - from <= BLANK_RUN_MAX; p++) {
        char ch = in->buf[p];

        if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n') {
            *c = ch;
            return 1;
        }
    }
    if (p - from > BLANK_RUN_MAX)
        return 2;
    return in->eof ? 0 : -1;
}

static void
start_value(struct mf_input *in, char kind, int64_t index)
{
    in->st = (kind == '{' || kind == '[' || kind == '"') ? ST_VAL : ST_SCALAR;
    in->vstart = in->pos;
    in->vline = in->line;
    in->vindex = index;
    in->vkind = kind;
    in->depth = (kind == '{' || kind == '[') ? 1 : 0;
    in->bstack = kind == '[' ? 1 : 0;
    in->in_str = kind == '"';
    in->esc = false;
    in->vskip = false;
    in->vnl_checked = false;
    in->vcompact = false;
    in->vrewind = false;
    in->pos++;   /* the first byte */
    if (in->st == ST_SCALAR)
        in->pos--;   /* scalars are scanned from their first byte */
}

enum nl_verdict { NL_KEEP, NL_ABORT, NL_MORE };

/* A newline at offset nl inside the current value (not consumed yet):
 * keep scanning, abandon the value, or look further first (NL_MORE). */
static enum nl_verdict
value_newline(struct mf_input *in, size_t nl, bool in_str)
{
    size_t i;
    char c;

    if (in->mode == MF_INPUT_NDJSON)
        return NL_ABORT;
    if (!in->heur)
        return NL_KEEP;
    if (!in->vnl_checked) {
        in->vnl_checked = true;
        if (in->vskip)
            return NL_ABORT;
        for (i = in->vstart; i < nl; i++) {
            c = in->buf[i];
            if (c != ' ' && c != '\t' && c != '\r' && c != '{' && c != '[')
                break;
        }
        /* a pretty-printed value opens with a bare bracket line */
        in->vcompact = i < nl;
    }
    if (!in->vcompact || in->vskip)
        return NL_KEEP;
    /* a value that began like an NDJSON line goes on past it: fine only
     * where JSON allows a line break */
    if (in_str)
        return NL_ABORT;
    for (i = nl; i > in->vstart && nl - i < BLANK_RUN_MAX; i--) {
        c = in->buf[i - 1];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
            break;
    }
    if (i > in->vstart && nl - i < BLANK_RUN_MAX && !token_opens(in->buf[i - 1])) {
        int pk = peek_token(in, nl + 1, &c);

        if (pk < 0)
            return NL_MORE;
        if (pk == 0 || (pk == 1 && !token_closes(c)))
            return NL_ABORT;
    }
    /* if the value later proves to be a cut line after all, the records
     * from the next line on are read again from here */
    if (!in->vrewind) {
        in->vrewind = true;
        in->rw_pos = nl + 1;
        in->rw_line = in->line + 1;
    }
    return NL_KEEP;
}

/* The value ends at in->pos (exclusive). */
static enum mf_input_ev
value_done(struct mf_input *in, struct mf_input_rec *rec,
           struct mf_input_err *err)
{
    size_t n = in->pos - in->vstart;
    bool skip = in->vskip;

    in->st = in->in_arr ? ST_ARR : ST_TOP;
    in->vrewind = false;
    if (in->in_arr) {
        if (in->a_first_line)
            in->a_compact = true;
        in->a_last = 'v';
    }
    if (skip)
        return MF_INPUT_EOF;   /* reported when it passed the limit */
    if (n > in->max_record)
        return fail(err, in->name, in->vline, in->vindex,
                    "record larger than the maximum record size (%zu bytes); "
                    "skipped", in->max_record);
    if (in->vkind != '{')
        return fail(err, in->name, in->vline, in->vindex,
                    "element is %s, not an object; skipped",
                    kind_desc(in->vkind));
    rec->data = in->buf + in->vstart;
    rec->len = n;
    rec->loc.name = in->name;
    rec->loc.line = in->vline;
    rec->loc.index = in->vindex;
    return MF_INPUT_RECORD;
}

/* Value abandoned as a cut line (in->pos is after the newline that showed
 * it, line counted; or anywhere when the value can be read again from the
 * line after its first). */
static enum mf_input_ev
value_abort(struct mf_input *in, struct mf_input_err *err, bool was_str)
{
    bool skip = in->vskip;

    if (in->vrewind && !skip) {
        in->pos = in->rw_pos;
        in->line = in->rw_line;
        was_str = false;
    }
    in->vrewind = false;
    /* a compact array whose element was cut on the array's first line is
     * a cut line too: what follows is read on its own */
    if (in->in_arr && (in->mode == MF_INPUT_NDJSON || in->aline == in->vline)) {
        in->in_arr = false;
        in->st = ST_TOP;
    } else {
        in->st = in->in_arr ? ST_ARR : ST_TOP;
        if (in->in_arr) {
            in->a_first_line = false;
            in->a_last = 'v';
        }
    }
    if (skip)
        return MF_INPUT_EOF;
    return value_fail(in, err, was_str
                      ? "unterminated string: line ends inside the record; "
                        "skipped"
                      : "truncated record: line ends inside it; skipped");
}

/* Scan inside a container or string value. Returns RECORD/ERROR when the
 * value ended or was abandoned (EOF result = nothing to report, go on), or
 * -1 when the buffer ran out or a look-ahead needs more. */
static int
scan_val(struct mf_input *in, struct mf_input_rec *rec,
         struct mf_input_err *err)
{
    const char *b = in->buf;
    size_t p = in->pos, e = in->len;
    unsigned depth = in->depth;
    uint64_t bstack = in->bstack;
    bool in_str = in->in_str, esc = in->esc;

    while (p < e) {
        unsigned char c;

        if (in_str) {
            if (esc) {
                esc = false;
                c = (unsigned char)b[p++];
                if (c == '\n')
                    goto newline;
                continue;
            }
            while (p < e && !str_special[(unsigned char)b[p]])
                p++;
            if (p == e)
                break;
            c = (unsigned char)b[p++];
            if (c == '"') {
                in_str = false;
                if (depth == 0)
                    goto done;
            } else if (c == '\\') {
                esc = true;
            } else {
                goto newline;
            }
            continue;
        }
        c = (unsigned char)b[p++];
        switch (c) {
        case '"':
            in_str = true;
            break;
        case '{':
        case '[':
            if (++depth <= 64)
                bstack = bstack << 1 | (c == '[');
            break;
        case '}':
        case ']':
            if (depth <= 64) {
                /* a bracket that does not match: the value that went on
                 * past its first line was a cut line after all */
                if (in->vrewind && !in->vskip && (bstack & 1) != (c == ']')) {
                    in->pos = p;
                    return (int)value_abort(in, err, false);
                }
                bstack >>= 1;
            }
            if (--depth == 0)
                goto done;
            break;
        case '\n':
            goto newline;
        default:
            break;
        }
        continue;
newline:
        {
            enum nl_verdict v = value_newline(in, p - 1, in_str);

            if (v == NL_MORE) {
                p--;   /* look at this newline again with more bytes */
                in->want_more = true;
                break;
            }
            in->line++;
            if (v == NL_ABORT) {
                in->pos = p;
                return (int)value_abort(in, err, in_str);
            }
            if (in->in_arr)
                in->a_first_line = false;   /* inside an element: keep */
        }
    }
    in->pos = p;
    in->depth = depth;
    in->bstack = bstack;
    in->in_str = in_str;
    in->esc = esc;
    return -1;
done:
    in->pos = p;
    in->depth = 0;
    in->in_str = false;
    in->esc = false;
    return (int)value_done(in, rec, err);
}

/* Refill the buffer for next_json when the scan reached its end or a
 * look-ahead asked for more. 1 = scan on, 0 = end of input, -1 = error
 * reported in err (a kept value went over max_record, or a read error). */
static int
json_refill(struct mf_input *in, struct mf_input_err *err)
{
    bool more = in->want_more;
    int r;

    in->want_more = false;
    if (value_kept(in) && in->len - in->vstart > in->max_record) {
        in->vskip = true;
        fail(err, in->name, in->vline, in->vindex,
             "record larger than the maximum record size (%zu bytes); "
             "skipped", in->max_record);
        return -1;
    }
    r = fill(in);
    if (r < 0) {
        fail(err, in->name, in->line, -1, "read error: %s", strerror(errno));
        return -1;
    }
    /* with more: the look-ahead now sees the end */
    return r == 0 && !more ? 0 : 1;
}

/* A '[' at the top level: the elements are read one by one. */
static void
open_array(struct mf_input *in)
{
    in->in_arr = true;
    in->aline = in->line;
    in->aindex = 0;
    in->a_first_line = true;
    in->a_compact = false;
    in->a_last = '[';
    in->st = ST_ARR;
    in->pos++;
}

/* One byte between top-level values. ERROR for a byte that starts no
 * record (the rest of its line is skipped), else EOF (nothing to report). */
static enum mf_input_ev
scan_top(struct mf_input *in, struct mf_input_err *err)
{
    char c = in->buf[in->pos], tmp[24];

    switch (c) {
    case '\n':
        in->line++;
        /* fallthrough */
    case ' ': case '\t': case '\r': case ',':
        in->pos++;
        break;
    case '{':
        start_value(in, '{', -1);
        break;
    case '[':
        open_array(in);
        break;
    default:
        in->st = ST_GARBAGE;
        in->pos++;
        return fail(err, in->name, in->line, -1,
                    "unexpected %s outside a record; skipped to the end of "
                    "the line", byte_desc((unsigned char)c, tmp, sizeof(tmp)));
    }
    return MF_INPUT_EOF;
}

/* Skip to the end of the line after a byte that started no record. */
static void
skip_garbage(struct mf_input *in)
{
    const char *nl = memchr(in->buf + in->pos, '\n', in->len - in->pos);

    if (!nl) {
        in->pos = in->len;
    } else {
        in->pos = (size_t)(nl - in->buf) + 1;
        in->line++;
        in->st = ST_TOP;
    }
}

/* A newline between the elements of a top-level array (in->pos on it).
 * ERROR when it ends an unterminated array, else EOF (nothing to report;
 * in->want_more set when the look-ahead needs the next chunk). */
static enum mf_input_ev
array_newline(struct mf_input *in, struct mf_input_err *err)
{
    bool ends = in->mode == MF_INPUT_NDJSON;

    /* an array whose first line held elements (a compact blob, or an
     * NDJSON line) goes on only where JSON allows a line break after an
     * element: before ',' or ']' (one element per line, comma leading or
     * trailing) */
    if (in->heur && in->a_compact && in->a_last == 'v') {
        char nc = 0;
        int pk = peek_token(in, in->pos + 1, &nc);

        if (pk < 0) {
            in->want_more = true;
            return MF_INPUT_EOF;
        }
        ends = pk == 0 || (pk == 1 && nc != ',' && nc != ']');
    }
    in->line++;
    in->pos++;
    in->a_first_line = false;
    if (!ends)
        return MF_INPUT_EOF;
    in->in_arr = false;
    in->st = ST_TOP;
    return fail(err, in->name, in->aline, -1,
                "unterminated array: line ends inside it after %lld elements",
                (long long)in->aindex);
}

/* One byte between the elements of a top-level array. ERROR when a
 * newline ends it unterminated, else EOF (nothing to report). */
static enum mf_input_ev
scan_arr(struct mf_input *in, struct mf_input_err *err)
{
    char c = in->buf[in->pos];

    switch (c) {
    case '\n':
        return array_newline(in, err);
    case ',':
        in->a_last = ',';
        /* fallthrough */
    case ' ': case '\t': case '\r':
        in->pos++;
        break;
    case ']':
        in->pos++;
        in->in_arr = false;
        in->st = ST_TOP;
        break;
    default:
        start_value(in, c, in->aindex++);
        break;
    }
    return MF_INPUT_EOF;
}

/* Scan a bare scalar to its end; RECORD/ERROR as value_done when it ended
 * in the buffer, else EOF (nothing to report yet). */
static enum mf_input_ev
scan_scalar(struct mf_input *in, struct mf_input_rec *rec,
            struct mf_input_err *err)
{
    size_t p = in->pos;

    while (p < in->len && !scalar_end[(unsigned char)in->buf[p]])
        p++;
    if (p == in->vstart && p < in->len)
        p++;   /* a lone delimiter such as '}' is the value */
    in->pos = p;
    if (p < in->len)
        return value_done(in, rec, err);
    return MF_INPUT_EOF;
}

/* The input ended: report the value or array it ended inside, then EOF. */
static enum mf_input_ev
json_at_eof(struct mf_input *in, struct mf_input_rec *rec,
            struct mf_input_err *err)
{
    switch (in->st) {
    case ST_VAL:
        if (in->vrewind && !in->vskip)
            return value_abort(in, err, false);   /* read on from its 2nd line */
        in->st = in->in_arr ? ST_ARR : ST_TOP;
        if (!in->vskip)
            return value_fail(in, err, in->in_str
                              ? "unterminated string at end of input; skipped"
                              : "truncated record at end of input; skipped");
        break;
    case ST_SCALAR: {
        enum mf_input_ev ev = value_done(in, rec, err);
        if (ev != MF_INPUT_EOF)
            return ev;
        break;
    }
    default:
        break;
    }
    if (in->in_arr) {
        in->in_arr = false;
        in->st = ST_DONE;
        return fail(err, in->name, in->aline, -1,
                    "unterminated array at end of input after %lld elements",
                    (long long)in->aindex);
    }
    in->st = ST_DONE;
    return MF_INPUT_EOF;
}

/* The JSON scanner: one state step at a time until a record or an error
 * is ready, or the input ended. */
static enum mf_input_ev
next_json(struct mf_input *in, struct mf_input_rec *rec,
          struct mf_input_err *err)
{
    for (;;) {
        enum mf_input_ev ev = MF_INPUT_EOF;

        if (in->pos == in->len || in->want_more) {
            int r = json_refill(in, err);

            if (r < 0)
                return MF_INPUT_ERROR;
            if (r == 0)
                return json_at_eof(in, rec, err);
            continue;
        }
        switch (in->st) {
        case ST_TOP:
            ev = scan_top(in, err);
            break;
        case ST_GARBAGE:
            skip_garbage(in);
            break;
        case ST_ARR:
            ev = scan_arr(in, err);
            break;
        case ST_VAL: {
            int r = scan_val(in, rec, err);

            if (r == (int)MF_INPUT_RECORD || r == (int)MF_INPUT_ERROR)
                ev = (enum mf_input_ev)r;
            break;
        }
        case ST_SCALAR:
            ev = scan_scalar(in, rec, err);
            break;
        default:
            return MF_INPUT_EOF;
        }
        if (ev != MF_INPUT_EOF)
            return ev;
    }
}

/* ---- CSV scanner ------------------------------------------------------- */

static void
csv_row_start(struct mf_input *in)
{
    in->csv_field = 0;
    in->csv_inq = false;
    in->csv_qpend = false;
    in->csv_fstart = true;
    in->csv_over = false;
    in->csv_row_bytes = 0;
    in->csv_row_line = in->line;
    in->csv_row_reset = false;
    mf_buf_reset(&in->rec);
    mf_buf_reset(&in->hdr);
}

static void
csv_take(struct mf_input *in, const char *p, size_t n)
{
    if (n == 0)
        return;
    in->csv_row_bytes += n;
    if (in->csv_header) {
        (void)mf_buf_append(&in->hdr, p, n);   /* over 64 KiB: ignored */
        return;
    }
    if (in->csv_field != in->csv_audit || in->csv_over)
        return;
    if (mf_buf_append(&in->rec, p, n) < 0) {
        in->csv_over = true;
        mf_buf_reset(&in->rec);
        mf_buf_shrink(&in->rec, 65536);
    }
}

static bool
csv_header_is_audit(struct mf_input *in)
{
    const char *s = in->hdr.data ? in->hdr.data : "";
    size_t n = in->hdr.len;

    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return n == 9 && strncasecmp(s, "AuditData", 9) == 0;
}

static void
csv_field_end(struct mf_input *in)
{
    if (in->csv_header && in->csv_audit < 0 && csv_header_is_audit(in))
        in->csv_audit = in->csv_field;
    mf_buf_reset(&in->hdr);
    in->csv_field++;
    in->csv_fstart = true;
}

/* End of a row: RECORD, ERROR, or EOF meaning "nothing to report". */
static enum mf_input_ev
csv_row_end(struct mf_input *in, struct mf_input_rec *rec,
            struct mf_input_err *err)
{
    in->csv_row_reset = true;
    if (in->csv_row_bytes == 0 && in->csv_field == 0)
        return MF_INPUT_EOF;   /* blank line */
    csv_field_end(in);
    if (in->csv_header) {
        in->csv_header = false;
        if (in->csv_audit < 0) {
            in->st = ST_DONE;
            return fail(err, in->name, in->csv_row_line, -1,
                        "CSV header has no AuditData column; file skipped");
        }
        return MF_INPUT_EOF;
    }
    if (in->csv_over)
        return fail(err, in->name, in->csv_row_line, -1,
                    "AuditData larger than the maximum record size "
                    "(%zu bytes); skipped", in->max_record);
    if (in->csv_field <= in->csv_audit || in->rec.len == 0)
        return fail(err, in->name, in->csv_row_line, -1,
                    "CSV row has no AuditData; skipped");
    rec->data = in->rec.data;
    rec->len = in->rec.len;
    rec->loc.name = in->name;
    rec->loc.line = in->csv_row_line;
    rec->loc.index = -1;
    return MF_INPUT_RECORD;
}

static enum mf_input_ev
next_csv(struct mf_input *in, struct mf_input_rec *rec,
         struct mf_input_err *err)
{
    for (;;) {
        const char *b;
        size_t p, e;

        if (in->st == ST_DONE)
            return MF_INPUT_EOF;
        if (in->csv_row_reset)
            csv_row_start(in);
        if (in->pos == in->len) {
            int r = fill(in);

            if (r < 0) {
                in->st = ST_DONE;
                return fail(err, in->name, in->line, -1, "read error: %s",
                            strerror(errno));
            }
            if (r == 0) {
                in->st = ST_DONE;
                if (in->csv_inq && !in->csv_qpend)
                    return fail(err, in->name, in->csv_row_line, -1,
                                "unterminated quoted field at end of input; "
                                "row skipped");
                {
                    enum mf_input_ev ev = csv_row_end(in, rec, err);
                    if (in->st != ST_DONE)
                        in->st = ST_DONE;
                    return ev;
                }
            }
            continue;
        }
        b = in->buf;
        p = in->pos;
        e = in->len;
        if (in->csv_inq) {
            if (in->csv_qpend) {
                in->csv_qpend = false;
                if (b[p] == '"') {
                    csv_take(in, b + p, 1);
                    in->pos = p + 1;
                    continue;
                }
                in->csv_inq = false;   /* closing quote; b[p] is unquoted */
                continue;
            }
            {
                const char *q = memchr(b + p, '"', e - p);
                size_t end = q ? (size_t)(q - b) : e, i;

                for (i = p; i < end; i++)
                    if (b[i] == '\n')
                        in->line++;
                csv_take(in, b + p, end - p);
                in->pos = end;
                if (q) {
                    in->pos++;
                    in->csv_qpend = true;
                }
            }
            continue;
        }
        {
            char c = b[p];

            in->pos = p + 1;
            switch (c) {
            case '"':
                if (in->csv_fstart) {
                    in->csv_inq = true;
                    in->csv_fstart = false;
                    in->csv_row_bytes++;
                } else {
                    csv_take(in, b + p, 1);
                }
                break;
            case ',':
                in->csv_row_bytes++;
                csv_field_end(in);
                break;
            case '\r':
                break;
            case '\n': {
                enum mf_input_ev ev;

                ev = csv_row_end(in, rec, err);
                in->line++;
                if (ev != MF_INPUT_EOF)
                    return ev;
                break;
            }
            default:
                in->csv_fstart = false;
                csv_take(in, b + p, 1);
                break;
            }
        }
    }
}

/* ---- entry ------------------------------------------------------------- */

enum mf_input_ev
mf_input_next(struct mf_input *in, struct mf_input_rec *rec,
              struct mf_input_err *err)
{
    if (in->st == ST_DONE)
        return MF_INPUT_EOF;
    if (in->st == ST_START) {
        if (detect(in) < 0) {
            in->st = ST_DONE;
            return fail(err, in->name, in->line, -1, "read error: %s",
                        strerror(errno));
        }
        if (in->mode == MF_INPUT_CSV) {
            in->st = ST_CSV;
            in->csv_header = true;
            in->csv_row_reset = true;
        } else {
            in->st = ST_TOP;
        }
    }
    if (in->mode == MF_INPUT_CSV)
        return next_csv(in, rec, err);
    return next_json(in, rec, err);
}
