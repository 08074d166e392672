/* check_input.c - streaming record reader (agent/input.c).
 *
 * Every scenario runs with several read chunk sizes (1, 2, 3, 5, 13 bytes,
 * 4 KiB and the default) and must give the same records and errors at the
 * same locations: that exercises every read boundary. Records are also
 * checked with jansson (the reference parser) where they must be JSON. */
#include <check.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

#include "file.h"
#include "input.h"
#include "test_common.h"

struct ev {
    char kind;          /* 'R' record, 'E' error */
    unsigned line;
    long long index;
    const char *text;   /* R: the exact record text; E: substring of msg */
};

static const size_t chunks[] = {1, 2, 3, 5, 13, 4096, 0};
#define N_CHUNKS (sizeof(chunks) / sizeof(chunks[0]))
#define MAX_EVENTS 10000

/* Run the reader over data with each chunk size and compare to want. */
static void
expect_events(const char *data, size_t len, enum mf_input_format fmt,
              size_t max_record, const struct ev *want, size_t n_want)
{
    size_t c;

    for (c = 0; c < N_CHUNKS; c++) {
        struct mf_input_opts o = {fmt, max_record, chunks[c]};
        struct mf_input *in = mf_input_new_mem(data, len, "t.json", &o);
        struct mf_input_rec rec;
        struct mf_input_err err;
        enum mf_input_ev e;
        size_t i = 0;

        while ((e = mf_input_next(in, &rec, &err)) != MF_INPUT_EOF) {
            ck_assert_msg(i < n_want, "chunk %zu: unexpected extra event "
                          "%s at line %u: %s", chunks[c],
                          e == MF_INPUT_RECORD ? "record" : "error",
                          e == MF_INPUT_RECORD ? rec.loc.line : err.loc.line,
                          e == MF_INPUT_RECORD ? "" : err.msg);
            if (want[i].kind == 'R') {
                ck_assert_msg(e == MF_INPUT_RECORD, "chunk %zu event %zu: "
                              "want record, got error '%s' (line %u)",
                              chunks[c], i, err.msg, err.loc.line);
                ck_assert_uint_eq(rec.loc.line, want[i].line);
                ck_assert_int_eq(rec.loc.index, want[i].index);
                ck_assert_str_eq(rec.loc.name, "t.json");
                ck_assert_uint_eq(rec.len, strlen(want[i].text));
                ck_assert_msg(memcmp(rec.data, want[i].text, rec.len) == 0,
                              "chunk %zu event %zu: record text differs",
                              chunks[c], i);
            } else {
                ck_assert_msg(e == MF_INPUT_ERROR, "chunk %zu event %zu: "
                              "want error '%s', got a record", chunks[c], i,
                              want[i].text);
                ck_assert_msg(strstr(err.msg, want[i].text) != NULL,
                              "chunk %zu: '%s' does not contain '%s'",
                              chunks[c], err.msg, want[i].text);
                ck_assert_uint_eq(err.loc.line, want[i].line);
                ck_assert_int_eq(err.loc.index, want[i].index);
            }
            i++;
        }
        ck_assert_msg(i == n_want, "chunk %zu: %zu events, want %zu",
                      chunks[c], i, n_want);
        /* EOF is sticky */
        ck_assert_int_eq(mf_input_next(in, &rec, &err), MF_INPUT_EOF);
        mf_input_destroy(in);
    }
}

#define EXPECT(data, fmt, maxrec, ...)                                       \
    do {                                                                     \
        static const struct ev w_[] = {__VA_ARGS__};                         \
        expect_events((data), strlen(data), (fmt), (maxrec), w_,             \
                      sizeof(w_) / sizeof(w_[0]));                           \
    } while (0)

#define EXPECT_NONE(data, fmt)                                               \
    expect_events((data), strlen(data), (fmt), 0, NULL, 0)

/* Count records and errors (default chunk). */
static void
count_events(const char *data, size_t len, const struct mf_input_opts *o,
             size_t *n_rec, size_t *n_err)
{
    struct mf_input *in = mf_input_new_mem(data, len, "c", o);
    struct mf_input_rec rec;
    struct mf_input_err err;
    enum mf_input_ev e;
    size_t guard = 0;

    *n_rec = *n_err = 0;
    while ((e = mf_input_next(in, &rec, &err)) != MF_INPUT_EOF) {
        if (e == MF_INPUT_RECORD)
            (*n_rec)++;
        else
            (*n_err)++;
        ck_assert_msg(++guard < (len + 10) * 2, "reader does not advance");
    }
    mf_input_destroy(in);
}

/* ---- mf_input_next: JSON ----------------------------------------------- */

START_TEST(next_blob_compact)
{
    EXPECT("[{\"a\":1},{\"b\":[1,2,{\"c\":\"]}\"}]}]",
           MF_INPUT_AUTO, 0,
           {'R', 1, 0, "{\"a\":1}"},
           {'R', 1, 1, "{\"b\":[1,2,{\"c\":\"]}\"}]}"});
    EXPECT("[{\"a\":1},{\"b\":2}]", MF_INPUT_JSON, 0,
           {'R', 1, 0, "{\"a\":1}"}, {'R', 1, 1, "{\"b\":2}"});
    EXPECT("[{\"a\":1} , {\"b\":2}]\n", MF_INPUT_NDJSON, 0,
           {'R', 1, 0, "{\"a\":1}"}, {'R', 1, 1, "{\"b\":2}"});
}
END_TEST

START_TEST(next_blob_pretty)
{
    EXPECT("[\n  {\n    \"a\": \"x\\\"}\"\n  },\n  {\n    \"b\": 2\n  }\n]\n",
           MF_INPUT_AUTO, 0,
           {'R', 2, 0, "{\n    \"a\": \"x\\\"}\"\n  }"},
           {'R', 5, 1, "{\n    \"b\": 2\n  }"});
    /* PowerShell ConvertTo-Json opens with "[{" on one line */
    EXPECT("    [{\n        \"a\":  1\n    },\n    {\n        \"b\":  2\n    }]\n",
           MF_INPUT_AUTO, 0,
           {'R', 1, 0, "{\n        \"a\":  1\n    }"},
           {'R', 4, 1, "{\n        \"b\":  2\n    }"});
    /* a pretty array whose elements are compact, one per line */
    EXPECT("[\n{\"a\":1},\n{\"b\":2}\n]", MF_INPUT_AUTO, 0,
           {'R', 2, 0, "{\"a\":1}"}, {'R', 3, 1, "{\"b\":2}"});
    /* pretty single objects one after the other */
    EXPECT("{\n  \"a\": 1\n}\n{\n  \"b\": 2\n}\n", MF_INPUT_AUTO, 0,
           {'R', 1, -1, "{\n  \"a\": 1\n}"},
           {'R', 4, -1, "{\n  \"b\": 2\n}"});
}
END_TEST

START_TEST(next_ndjson_lines)
{
    EXPECT("{\"a\":1}\n{\"b\":2}\r\n\n{\"c\":3}", MF_INPUT_AUTO, 0,
           {'R', 1, -1, "{\"a\":1}"}, {'R', 2, -1, "{\"b\":2}"},
           {'R', 4, -1, "{\"c\":3}"});
    EXPECT("{\"a\":1}\n{\"b\":2}\n", MF_INPUT_NDJSON, 0,
           {'R', 1, -1, "{\"a\":1}"}, {'R', 2, -1, "{\"b\":2}"});
    EXPECT("{\"a\":1}{\"b\":2}\n", MF_INPUT_JSON, 0,
           {'R', 1, -1, "{\"a\":1}"}, {'R', 1, -1, "{\"b\":2}"});
}
END_TEST

START_TEST(next_ndjson_array_per_line)
{
    EXPECT("[{\"a\":1},{\"b\":2}]\n{\"c\":3}\n[{\"d\":4}]\n",
           MF_INPUT_AUTO, 0,
           {'R', 1, 0, "{\"a\":1}"}, {'R', 1, 1, "{\"b\":2}"},
           {'R', 2, -1, "{\"c\":3}"}, {'R', 3, 0, "{\"d\":4}"});
    EXPECT("[{\"a\":1},{\"b\":2}]\n{\"c\":3}\n[{\"d\":4}]\n",
           MF_INPUT_NDJSON, 0,
           {'R', 1, 0, "{\"a\":1}"}, {'R', 1, 1, "{\"b\":2}"},
           {'R', 2, -1, "{\"c\":3}"}, {'R', 3, 0, "{\"d\":4}"});
}
END_TEST

START_TEST(next_truncated_line)
{
    /* auto: a line that ends inside its record does not eat the next */
    EXPECT("{\"a\":1,\"b\":\n{\"c\":2}\n", MF_INPUT_AUTO, 0,
           {'E', 1, -1, "truncated record"}, {'R', 2, -1, "{\"c\":2}"});
    EXPECT("{\"a\":\"unterminated\n{\"c\":2}\n", MF_INPUT_AUTO, 0,
           {'E', 1, -1, "unterminated string"}, {'R', 2, -1, "{\"c\":2}"});
    EXPECT("{\"a\":1,\"b\":\n{\"c\":2}\n", MF_INPUT_NDJSON, 0,
           {'E', 1, -1, "truncated record"}, {'R', 2, -1, "{\"c\":2}"});
    /* ndjson: even a pretty record is a bad line */
    EXPECT("{\n\"a\":1}\n{\"c\":2}\n", MF_INPUT_NDJSON, 0,
           {'E', 1, -1, "truncated record"}, {'E', 2, -1, "unexpected '\"'"},
           {'R', 3, -1, "{\"c\":2}"});
    /* truncated compact array line: elements before it are kept, the array
     * is closed, the next line is read on its own */
    EXPECT("[{\"a\":1},{\"b\":\n[{\"c\":3}]\n", MF_INPUT_AUTO, 0,
           {'R', 1, 0, "{\"a\":1}"}, {'E', 1, 1, "truncated record"},
           {'R', 2, 0, "{\"c\":3}"});
    /* a compact line that ends after ',' goes on (the comma-trailing
     * layout); an NDJSON line after it ends the array, nothing is lost */
    EXPECT("[{\"a\":1},\n{\"c\":3}\n[{\"d\":4}]\n", MF_INPUT_AUTO, 0,
           {'R', 1, 0, "{\"a\":1}"}, {'R', 2, 1, "{\"c\":3}"},
           {'E', 1, -1, "unterminated array: line ends inside it after 2"},
           {'R', 3, 0, "{\"d\":4}"});
    EXPECT("[{\"a\":1},\n{\"c\":3}\n", MF_INPUT_AUTO, 0,
           {'R', 1, 0, "{\"a\":1}"}, {'R', 2, 1, "{\"c\":3}"},
           {'E', 1, -1, "unterminated array: line ends inside it after 2"});
    /* a cut line that ends where JSON could go on: the records after it
     * are read again on their own */
    EXPECT("{\"a\":[\n{\"x\":1}\n{\"y\":2}\n", MF_INPUT_AUTO, 0,
           {'E', 1, -1, "truncated record"}, {'R', 2, -1, "{\"x\":1}"},
           {'R', 3, -1, "{\"y\":2}"});
    EXPECT("{\"a\":1,\n{\"x\":1}", MF_INPUT_AUTO, 0,
           {'E', 1, -1, "truncated record"}, {'R', 2, -1, "{\"x\":1}"});
    EXPECT("[{\"a\":1},{\"b\":[\n{\"x\":1}\n{\"y\":2}\n", MF_INPUT_AUTO, 0,
           {'R', 1, 0, "{\"a\":1}"}, {'E', 1, 1, "truncated record"},
           {'R', 2, -1, "{\"x\":1}"}, {'R', 3, -1, "{\"y\":2}"});
    /* elements without commas between lines are not JSON: the array ends */
    EXPECT("[{\"a\":1}\n{\"b\":2}\n]\n", MF_INPUT_AUTO, 0,
           {'R', 1, 0, "{\"a\":1}"}, {'E', 1, -1, "unterminated array"},
           {'R', 2, -1, "{\"b\":2}"}, {'E', 3, -1, "unexpected ']'"});
    /* in a pretty array a broken compact element is local damage */
    EXPECT("[\n{\"a\":1},\n{\"b\":\n{\"c\":3}\n]\n", MF_INPUT_AUTO, 0,
           {'R', 2, 0, "{\"a\":1}"}, {'E', 3, 1, "truncated record"},
           {'R', 4, 2, "{\"c\":3}"});
}
END_TEST

START_TEST(next_array_layouts)
{
    /* every layout of a valid JSON array is one array in auto mode */
    static const char *const texts[] = {
        "[{\"a\":1},{\"b\":2},{\"c\":3}]",
        "[{\"a\":1}\n,{\"b\":2}\n,{\"c\":3}\n]\n",
        "[{\"a\":1},\n{\"b\":2},\n{\"c\":3}]\n",
        "[{\"a\":1}\r\n, {\"b\":2}\r\n, {\"c\":3}\r\n]\r\n",
        "[\n{\"a\":1}\n,\n{\"b\":2}\n,\n{\"c\":3}\n]",
        "[{\"a\":1}\n\n   ,\n\n{\"b\":2}  ,  {\"c\":3}\n\n]",
        "[ {\"a\":1}, {\"b\":2},\n  {\"c\":3} ]",
        "[{\"a\":1}, {\"b\":2}, {\"c\":3}\n]",
        "  [{\"a\":\n1},{\"b\"\n:2},{\n\"c\":3}]",
        "[{\"a\":1},{\"b\":2},{\"c\":\n3\n}\n]",
        "[{\"a\":1}\n,{\"b\":2},{\"c\":3}]\n",
    };

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        for (size_t c = 0; c < N_CHUNKS; c++) {
            struct mf_input_opts o = {MF_INPUT_AUTO, 0, chunks[c]};
            struct mf_input *in = mf_input_new_mem(texts[i], strlen(texts[i]),
                                                   "t.json", &o);
            struct mf_input_rec rec;
            struct mf_input_err err;
            enum mf_input_ev e;
            int n = 0;

            while ((e = mf_input_next(in, &rec, &err)) != MF_INPUT_EOF) {
                json_error_t je;
                json_t *j;

                ck_assert_msg(e == MF_INPUT_RECORD, "layout %zu chunk %zu: "
                              "error '%s' at line %u", i, chunks[c], err.msg,
                              err.loc.line);
                ck_assert_int_eq(rec.loc.index, n);
                j = json_loadb(rec.data, rec.len, 0, &je);
                ck_assert_msg(j != NULL, "layout %zu: element %d not JSON", i, n);
                json_decref(j);
                n++;
            }
            ck_assert_msg(n == 3, "layout %zu chunk %zu: %d records", i,
                          chunks[c], n);
            mf_input_destroy(in);
        }
    }
    /* a record laid out over lines in an NDJSON-looking file */
    EXPECT("{\"a\":1,\n\"b\":[2,\n3]}\n{\"c\":3}\n", MF_INPUT_AUTO, 0,
           {'R', 1, -1, "{\"a\":1,\n\"b\":[2,\n3]}"},
           {'R', 4, -1, "{\"c\":3}"});
}
END_TEST

START_TEST(next_truncated_eof)
{
    EXPECT("[{\"a\":1},{\"b\":", MF_INPUT_AUTO, 0,
           {'R', 1, 0, "{\"a\":1}"},
           {'E', 1, 1, "truncated record at end of input"},
           {'E', 1, -1, "unterminated array at end of input"});
    EXPECT("{\"a\":\"xyz", MF_INPUT_JSON, 0,
           {'E', 1, -1, "unterminated string at end of input"});
    EXPECT("{\"a\":{\"b\":1}", MF_INPUT_NDJSON, 0,
           {'E', 1, -1, "truncated record at end of input"});
    EXPECT("\n\n[\n{\"a\":1}", MF_INPUT_AUTO, 0,
           {'R', 4, 0, "{\"a\":1}"},
           {'E', 3, -1, "unterminated array at end of input after 1"});
    /* json mode has no line heuristics: a value may span lines */
    EXPECT("{\"a\":\n1}\n", MF_INPUT_JSON, 0, {'R', 1, -1, "{\"a\":\n1}"});
}
END_TEST

START_TEST(next_non_object)
{
    EXPECT("[1,{\"a\":1},\"x]\",[2,{}],null,true,-3.5e2,bogus]",
           MF_INPUT_AUTO, 0,
           {'E', 1, 0, "a number"}, {'R', 1, 1, "{\"a\":1}"},
           {'E', 1, 2, "a string"}, {'E', 1, 3, "an array"},
           {'E', 1, 4, "null"}, {'E', 1, 5, "a boolean"},
           {'E', 1, 6, "a number"}, {'E', 1, 7, "not JSON"});
    EXPECT("[}, {\"a\":1}]", MF_INPUT_JSON, 0,
           {'E', 1, 0, "not an object"}, {'R', 1, 1, "{\"a\":1}"});
}
END_TEST

START_TEST(next_garbage)
{
    EXPECT("hello world {\"x\":1}\n{\"a\":1}\n\x01\xff\n{\"b\":2} trailing\n"
           "{\"c\":3}", MF_INPUT_AUTO, 0,
           {'E', 1, -1, "unexpected 'h'"}, {'R', 2, -1, "{\"a\":1}"},
           {'E', 3, -1, "byte 0x01"}, {'R', 4, -1, "{\"b\":2}"},
           {'E', 4, -1, "unexpected 't'"}, {'R', 5, -1, "{\"c\":3}"});
    EXPECT("]\n{\"a\":1}\n", MF_INPUT_NDJSON, 0,
           {'E', 1, -1, "unexpected ']'"}, {'R', 2, -1, "{\"a\":1}"});
}
END_TEST

START_TEST(next_empty)
{
    EXPECT_NONE("", MF_INPUT_AUTO);
    EXPECT_NONE("", MF_INPUT_CSV);
    EXPECT_NONE(" \n\r\n\t", MF_INPUT_AUTO);
    EXPECT_NONE("\xef\xbb\xbf", MF_INPUT_AUTO);
    EXPECT_NONE("[]", MF_INPUT_AUTO);
    EXPECT_NONE("[\n]\n[ ]", MF_INPUT_JSON);
}
END_TEST

START_TEST(next_bom)
{
    EXPECT("\xef\xbb\xbf[{\"a\":1}]", MF_INPUT_AUTO, 0,
           {'R', 1, 0, "{\"a\":1}"});
    EXPECT("\xef\xbb\xbf{\"a\":1}\n", MF_INPUT_NDJSON, 0,
           {'R', 1, -1, "{\"a\":1}"});
}
END_TEST

/* A record of several MB, larger than any read chunk, between two small
 * ones; then the same with a limit below it. */
static char *
big_input(size_t body, bool in_array, size_t *len)
{
    char *s = malloc(body + 256);
    size_t n = 0, i;

    ck_assert_ptr_nonnull(s);
    /* a pretty array: "[" alone on the first line */
    n += (size_t)sprintf(s + n, "%s{\"a\":1}%s\n{\"big\":\"",
                         in_array ? "[\n" : "", in_array ? "," : "");
    for (i = 0; i < body; i++)
        s[n++] = (char)('a' + i % 26);
    n += (size_t)sprintf(s + n, "\",\"k\":[1,{\"x\":\"]\"}]}%s\n{\"z\":2}%s\n",
                         in_array ? "," : "", in_array ? "]" : "");
    *len = n;
    return s;
}

START_TEST(next_big_record)
{
    size_t len, c;
    char *s = big_input(5u << 20, false, &len);

    for (c = 0; c < 3; c++) {
        struct mf_input_opts o = {MF_INPUT_AUTO, 0, c == 0 ? 0 : c == 1 ? 4096 : 1000003};
        struct mf_input *in = mf_input_new_mem(s, len, "big", &o);
        struct mf_input_rec rec;
        struct mf_input_err err;
        json_t *j;
        json_error_t je;

        ck_assert_int_eq(mf_input_next(in, &rec, &err), MF_INPUT_RECORD);
        ck_assert_uint_eq(rec.len, 7);
        ck_assert_int_eq(mf_input_next(in, &rec, &err), MF_INPUT_RECORD);
        ck_assert_uint_eq(rec.loc.line, 2);
        ck_assert_uint_eq(rec.len, (5u << 20) + 28);
        j = json_loadb(rec.data, rec.len, 0, &je);
        ck_assert_msg(j != NULL, "big record not JSON: %s", je.text);
        ck_assert_uint_eq(json_string_length(json_object_get(j, "big")), 5u << 20);
        json_decref(j);
        ck_assert_int_eq(mf_input_next(in, &rec, &err), MF_INPUT_RECORD);
        ck_assert_uint_eq(rec.loc.line, 3);
        ck_assert_int_eq(mf_input_next(in, &rec, &err), MF_INPUT_EOF);
        mf_input_destroy(in);
    }
    free(s);
}
END_TEST

START_TEST(next_over_limit)
{
    size_t len;
    char *s = big_input(3u << 20, false, &len);
    char *t;

    expect_events(s, len, MF_INPUT_AUTO, 1u << 20,
                  (const struct ev[]){
                      {'R', 1, -1, "{\"a\":1}"},
                      {'E', 2, -1, "larger than the maximum record size"},
                      {'R', 3, -1, "{\"z\":2}"}}, 3);
    free(s);
    s = big_input(3u << 20, true, &len);
    expect_events(s, len, MF_INPUT_AUTO, 1u << 20,
                  (const struct ev[]){
                      {'R', 2, 0, "{\"a\":1}"},
                      {'E', 3, 1, "larger than the maximum record size"},
                      {'R', 4, 2, "{\"z\":2}"}}, 3);
    free(s);
    /* exactly at the limit passes, one byte more does not */
    EXPECT("{\"a\":1}\n{\"ab\":1}\n{\"b\":1}", MF_INPUT_AUTO, 7,
           {'R', 1, -1, "{\"a\":1}"}, {'E', 2, -1, "maximum record size"},
           {'R', 3, -1, "{\"b\":1}"});
    /* small limit in a CSV */
    t = "Operation,AuditData\nx,\"{\"\"a\"\":1}\"\ny,\"{\"\"abcdefgh\"\":1}\"\n"
        "z,\"{\"\"b\"\":2}\"\n";
    EXPECT(t, MF_INPUT_CSV, 8,
           {'R', 2, -1, "{\"a\":1}"}, {'E', 3, -1, "maximum record size"},
           {'R', 4, -1, "{\"b\":2}"});
}
END_TEST

/* Arbitrary bytes: never a crash, never a hang, always progress. */
START_TEST(next_random_bytes)
{
    static const char alphabet[] = "{}[]\",:\\\n\r abc01\xff\x00";
    char buf[4096];
    unsigned seed = 12345;
    int round, f;
    size_t i, nr, ne;

    for (round = 0; round < 300; round++) {
        size_t len = (size_t)(round * 13 % 4096);
        for (i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
        }
        for (f = MF_INPUT_AUTO; f <= MF_INPUT_CSV; f++) {
            struct mf_input_opts o = {(enum mf_input_format)f, 64,
                                      (size_t)(round % 7) + 1};
            count_events(buf, len, &o, &nr, &ne);
            ck_assert_uint_le(nr + ne, len + 2);
        }
    }
}
END_TEST

/* ---- mf_input_next: CSV ------------------------------------------------- */

START_TEST(next_csv_quotes)
{
    const char *t =
        "\xef\xbb\xbf\"RecordType\",\"CreationDate\",\"AuditData\",\"x\"\r\n"
        "\"Azure\",\"6/18/2023\",\"{\"\"Id\"\":\"\"a,b\"\",\"\"Q\"\":\"\"say "
        "\\\"\"hi\\\"\"\"\"}\",\"y\"\r\n"
        "Exch,\"multi\nline\",\"{\"\"Id\"\":\"\"2\"\",\r\n\"\"N\"\":1}\"\r\n"
        "\r\n"
        "short,row\r\n"
        "e,f,,g\r\n"
        "last,one,{\"k\":1}";

    EXPECT(t, MF_INPUT_AUTO, 0,
           {'R', 2, -1, "{\"Id\":\"a,b\",\"Q\":\"say \\\"hi\\\"\"}"},
           {'R', 3, -1, "{\"Id\":\"2\",\r\n\"N\":1}"},
           {'E', 7, -1, "no AuditData"},
           {'E', 8, -1, "no AuditData"},
           {'R', 9, -1, "{\"k\":1}"});
}
END_TEST

START_TEST(next_csv_errors)
{
    EXPECT("a,b,c\n1,2,3\n", MF_INPUT_CSV, 0,
           {'E', 1, -1, "no AuditData column"});
    EXPECT("AuditData\n\"{\"\"a\"\":1}\"\n\"{\"\"unterminated\n", MF_INPUT_CSV,
           0, {'R', 2, -1, "{\"a\":1}"},
           {'E', 3, -1, "unterminated quoted field"});
    /* a header without AuditData in auto mode is not CSV: garbage lines */
    EXPECT("a,b\n{\"a\":1}\n", MF_INPUT_AUTO, 0,
           {'E', 1, -1, "unexpected 'a'"}, {'R', 2, -1, "{\"a\":1}"});
}
END_TEST

/* ---- mf_input_new_fd: files ------------------------------------------- */

static struct mf_input *
open_fixture(const char *rel, enum mf_input_format f, size_t chunk, int *fd)
{
    struct mf_input_opts o = {f, 0, chunk};

    *fd = open(mf_test_data(rel), O_RDONLY);
    ck_assert_msg(*fd >= 0, "cannot open %s", mf_test_data(rel));
    return mf_input_new_fd(*fd, "t.json", &o);
}

START_TEST(newfd_pretty_blob)
{
    size_t c;

    for (c = 0; c < N_CHUNKS; c++) {
        int fd;
        struct mf_input *in = open_fixture("input/blob-pretty.json",
                                           MF_INPUT_AUTO, chunks[c], &fd);
        struct mf_input_rec rec;
        struct mf_input_err err;
        json_t *j;

        ck_assert_int_eq(mf_input_next(in, &rec, &err), MF_INPUT_RECORD);
        ck_assert_uint_eq(rec.loc.line, 2);
        ck_assert_int_eq(rec.loc.index, 0);
        j = json_loadb(rec.data, rec.len, 0, NULL);
        ck_assert_ptr_nonnull(j);
        ck_assert_str_eq(json_string_value(json_object_get(j, "Operation")),
                         "UserLoggedIn");
        json_decref(j);
        ck_assert_int_eq(mf_input_next(in, &rec, &err), MF_INPUT_RECORD);
        ck_assert_uint_eq(rec.loc.line, 15);
        ck_assert_int_eq(rec.loc.index, 1);
        j = json_loadb(rec.data, rec.len, 0, NULL);
        ck_assert_ptr_nonnull(j);
        ck_assert_str_eq(json_string_value(json_object_get(j, "Note")),
                         "brace } and bracket ] and quote \" inside");
        json_decref(j);
        ck_assert_int_eq(mf_input_next(in, &rec, &err), MF_INPUT_EOF);
        ck_assert_int_eq(mf_input_format(in), MF_INPUT_JSON);
        mf_input_destroy(in);
        close(fd);
    }
}
END_TEST

START_TEST(newfd_purview_csv)
{
    static const struct { char kind; unsigned line; const char *id; } want[] = {
        {'R', 2, "a1"}, {'R', 3, "a2"}, {'E', 5, NULL}, {'R', 7, "a4"},
    };
    size_t c, i;

    for (c = 0; c < N_CHUNKS; c++) {
        int fd;
        struct mf_input *in = open_fixture("input/purview.csv", MF_INPUT_AUTO,
                                           chunks[c], &fd);
        struct mf_input_rec rec;
        struct mf_input_err err;

        for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
            enum mf_input_ev e = mf_input_next(in, &rec, &err);
            if (want[i].kind == 'E') {
                ck_assert_int_eq(e, MF_INPUT_ERROR);
                ck_assert_uint_eq(err.loc.line, want[i].line);
            } else {
                json_t *j;
                ck_assert_int_eq(e, MF_INPUT_RECORD);
                ck_assert_uint_eq(rec.loc.line, want[i].line);
                j = json_loadb(rec.data, rec.len, JSON_ALLOW_NUL, NULL);
                if (strcmp(want[i].id, "a2") != 0) {
                    ck_assert_ptr_nonnull(j);
                    ck_assert_str_eq(json_string_value(json_object_get(j, "Id")),
                                     want[i].id);
                } else {
                    /* raw CR LF inside a string: not strict JSON, but the
                     * bytes are handed on unchanged */
                    ck_assert_ptr_null(j);
                    ck_assert_ptr_nonnull(memmem(rec.data, rec.len,
                                                 "line one\r\nline two", 18));
                }
                json_decref(j);
            }
        }
        ck_assert_int_eq(mf_input_next(in, &rec, &err), MF_INPUT_EOF);
        ck_assert_int_eq(mf_input_format(in), MF_INPUT_CSV);
        mf_input_destroy(in);
        close(fd);
    }
}
END_TEST

START_TEST(newfd_mixed_ndjson)
{
    static const struct ev want[] = {
        {'R', 1, -1, NULL}, {'R', 2, 0, NULL}, {'E', 2, 1, "a number"},
        {'R', 2, 2, NULL}, {'E', 3, -1, "unexpected 'n'"},
        {'E', 4, -1, "unterminated string"}, {'R', 5, -1, NULL},
    };
    size_t c, i;

    for (c = 0; c < N_CHUNKS; c++) {
        int fd;
        struct mf_input *in = open_fixture("input/mixed.ndjson", MF_INPUT_AUTO,
                                           chunks[c], &fd);
        struct mf_input_rec rec;
        struct mf_input_err err;

        for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
            enum mf_input_ev e = mf_input_next(in, &rec, &err);
            ck_assert_int_eq(e, want[i].kind == 'R' ? MF_INPUT_RECORD
                                                    : MF_INPUT_ERROR);
            if (e == MF_INPUT_RECORD) {
                json_t *j = json_loadb(rec.data, rec.len, 0, NULL);
                ck_assert_ptr_nonnull(j);
                json_decref(j);
                ck_assert_uint_eq(rec.loc.line, want[i].line);
                ck_assert_int_eq(rec.loc.index, want[i].index);
            } else {
                ck_assert_ptr_nonnull(strstr(err.msg, want[i].text));
                ck_assert_uint_eq(err.loc.line, want[i].line);
                ck_assert_int_eq(err.loc.index, want[i].index);
            }
        }
        ck_assert_int_eq(mf_input_next(in, &rec, &err), MF_INPUT_EOF);
        mf_input_destroy(in);
        close(fd);
    }
}
END_TEST

START_TEST(newfd_read_error)
{
    struct mf_input *in;
    struct mf_input_rec rec;
    struct mf_input_err err;
    int fd = open(mf_test_data("input"), O_RDONLY);   /* a directory */

    ck_assert_int_ge(fd, 0);
    in = mf_input_new_fd(fd, "dir", NULL);
    ck_assert_int_eq(mf_input_next(in, &rec, &err), MF_INPUT_ERROR);
    ck_assert_ptr_nonnull(strstr(err.msg, "read error"));
    ck_assert_int_eq(mf_input_next(in, &rec, &err), MF_INPUT_EOF);
    mf_input_destroy(in);
    close(fd);
}
END_TEST

/* ---- mf_input_new_file: stdio ------------------------------------------ */

START_TEST(newfile_stdio)
{
    FILE *f = tmpfile();
    struct mf_input_opts o = {MF_INPUT_NDJSON, 0, 3};
    struct mf_input *in;
    struct mf_input_rec rec;
    struct mf_input_err err;

    ck_assert_ptr_nonnull(f);
    fputs("{\"a\":1}\n\n{\"b\":[2]}\n", f);
    rewind(f);
    in = mf_input_new_file(f, "tmp", &o);
    ck_assert_int_eq(mf_input_next(in, &rec, &err), MF_INPUT_RECORD);
    ck_assert_uint_eq(rec.loc.line, 1);
    ck_assert_int_eq(mf_input_next(in, &rec, &err), MF_INPUT_RECORD);
    ck_assert_uint_eq(rec.loc.line, 3);
    ck_assert_uint_eq(rec.len, 9);
    ck_assert_int_eq(memcmp(rec.data, "{\"b\":[2]}", 9), 0);
    ck_assert_int_eq(mf_input_next(in, &rec, &err), MF_INPUT_EOF);
    ck_assert_int_eq(mf_input_format(in), MF_INPUT_NDJSON);
    mf_input_destroy(in);
    fclose(f);
}
END_TEST

/* ---- mf_input_format_parse / name, mf_input_loc_str ---------------------- */

START_TEST(fmtparse_names)
{
    enum mf_input_format f;

    ck_assert_int_eq(mf_input_format_parse("auto", &f), 0);
    ck_assert_int_eq(f, MF_INPUT_AUTO);
    ck_assert_int_eq(mf_input_format_parse("json", &f), 0);
    ck_assert_int_eq(f, MF_INPUT_JSON);
    ck_assert_int_eq(mf_input_format_parse("ndjson", &f), 0);
    ck_assert_int_eq(f, MF_INPUT_NDJSON);
    ck_assert_int_eq(mf_input_format_parse("csv", &f), 0);
    ck_assert_int_eq(f, MF_INPUT_CSV);
    ck_assert_int_eq(mf_input_format_parse("CSV", &f), -1);
    ck_assert_int_eq(mf_input_format_parse("", &f), -1);
    ck_assert_int_eq(mf_input_format_parse(NULL, &f), -1);
    ck_assert_str_eq(mf_input_format_name(MF_INPUT_NDJSON), "ndjson");
}
END_TEST

START_TEST(locstr_forms)
{
    struct mf_input_loc a = {"f.json", 12, -1}, b = {"f.json", 3, 7};
    char buf[64];

    ck_assert_str_eq(mf_input_loc_str(&a, buf, sizeof(buf)), "f.json:12");
    ck_assert_str_eq(mf_input_loc_str(&b, buf, sizeof(buf)),
                     "f.json:3 (index 7)");
}
END_TEST

/* ---- mf_file_out_* (outputs/file.c, the normalize command's writer) ---- */

static char *
read_back(const char *path, size_t *len)
{
    char *s = mf_test_slurp(path, len);

    ck_assert_ptr_nonnull(s);
    return s;
}

START_TEST(fileout_buffered_lines)
{
    char path[] = "/tmp/mf-fileout-XXXXXX";
    int fd = mkstemp(path);
    struct mf_file_out *o;
    size_t len;
    char *s;
    char big[100];

    ck_assert_int_ge(fd, 0);
    close(fd);
    o = mf_file_out_open(path, 0, 16);   /* tiny buffer */
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(mf_file_out_line(o, "{\"a\":1}", 7), 0);
    /* still buffered: nothing in the file yet */
    s = read_back(path, &len);
    ck_assert_uint_eq(len, 0);
    free(s);
    ck_assert_int_eq(mf_file_out_line(o, "{\"b\":2}", 7), 0);   /* fills */
    memset(big, 'x', sizeof(big));
    ck_assert_int_eq(mf_file_out_line(o, big, sizeof(big)), 0);   /* > buffer */
    ck_assert_int_eq(mf_file_out_line(o, "", 0), 0);
    ck_assert_uint_eq(mf_file_out_lines(o), 4);
    ck_assert_int_eq(mf_file_out_close(o), 0);
    s = read_back(path, &len);
    ck_assert_uint_eq(len, 8 + 8 + sizeof(big) + 1 + 1);
    ck_assert_int_eq(memcmp(s, "{\"a\":1}\n{\"b\":2}\nxxx", 19), 0);
    ck_assert_int_eq(s[len - 2], '\n');
    ck_assert_int_eq(s[len - 1], '\n');
    free(s);
    /* append mode keeps what is there */
    o = mf_file_out_open(path, 1, 0);
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(mf_file_out_line(o, "z", 1), 0);
    ck_assert_int_eq(mf_file_out_close(o), 0);
    s = read_back(path, &len);
    ck_assert_uint_eq(len, 8 + 8 + sizeof(big) + 1 + 1 + 2);
    free(s);
    unlink(path);
}
END_TEST

START_TEST(fileout_ack_and_errors)
{
    char path[] = "/tmp/mf-fileout-XXXXXX";
    int fd = mkstemp(path);
    struct mf_file_out *o;
    size_t len;
    char *s;

    ck_assert_int_ge(fd, 0);
    close(fd);
    o = mf_file_out_open(path, 0, 0);
    ck_assert_int_eq(mf_file_out_line(o, "{}", 2), 0);
    ck_assert_int_eq(mf_file_out_ack(o), 0);
    s = read_back(path, &len);   /* on disk after the ack, before close */
    ck_assert_uint_eq(len, 3);
    free(s);
    ck_assert_int_eq(mf_file_out_close(o), 0);
    unlink(path);

    /* cannot open: a directory */
    ck_assert_ptr_null(mf_file_out_open("/", 0, 0));
    /* write error: a read-only descriptor; sticky, reported by close */
    fd = open("/dev/null", O_RDONLY);
    ck_assert_int_ge(fd, 0);
    o = mf_file_out_fdopen(fd, "ro", 8);
    ck_assert_int_eq(mf_file_out_line(o, "0123456789", 10), -1);
    ck_assert_int_eq(mf_file_out_line(o, "{}", 2), -1);
    ck_assert_int_eq(mf_file_out_close(o), -1);
    close(fd);
}
END_TEST

/* A write that fails half-way (the file size limit stands in for a full
 * disk: EFBIG after a partial write) leaves a torn line; the rollback
 * takes the file back to its last acknowledgement, and what follows starts
 * on a line of its own. */
START_TEST(fileout_rollback)
{
    char path[] = "/tmp/mf-fileout-XXXXXX";
    int fd = mkstemp(path);
    struct mf_file_out *o;
    struct rlimit lim, old;
    char big[100];
    size_t len;
    char *s;

    ck_assert_int_ge(fd, 0);
    close(fd);
    signal(SIGXFSZ, SIG_IGN);
    o = mf_file_out_open(path, 1, 16);
    ck_assert_int_eq(mf_file_out_line(o, "{\"a\":1}", 7), 0);
    ck_assert_int_eq(mf_file_out_ack(o), 0);
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 8 + 10;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    memset(big, 'x', sizeof(big));
    ck_assert_int_eq(mf_file_out_line(o, big, sizeof(big)), -1);
    s = read_back(path, &len);
    ck_assert_uint_eq(len, 18);                /* a torn line */
    free(s);
    ck_assert_int_eq(mf_file_out_line(o, "{}", 2), -1);     /* failed: sticky */
    ck_assert_int_eq(mf_file_out_rollback(o), 0);
    s = read_back(path, &len);
    ck_assert_uint_eq(len, 8);
    ck_assert_int_eq(memcmp(s, "{\"a\":1}\n", 8), 0);
    free(s);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    ck_assert_int_eq(mf_file_out_line(o, "{\"b\":2}", 7), 0);
    ck_assert_int_eq(mf_file_out_ack(o), 0);
    /* lines written since the last acknowledgement go too */
    ck_assert_int_eq(mf_file_out_line(o, big, sizeof(big)), 0);
    ck_assert_int_eq(mf_file_out_rollback(o), 0);
    ck_assert_int_eq(mf_file_out_close(o), 0);
    s = read_back(path, &len);
    ck_assert_uint_eq(len, 16);
    ck_assert_int_eq(memcmp(s, "{\"a\":1}\n{\"b\":2}\n", 16), 0);
    free(s);
    /* a file that ends in a partial line is cut back when opened */
    fd = open(path, O_WRONLY | O_APPEND);
    ck_assert_int_eq(write(fd, "{\"c\":", 5), 5);
    close(fd);
    o = mf_file_out_open(path, 1, 0);
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(mf_file_out_line(o, "{\"d\":4}", 7), 0);
    ck_assert_int_eq(mf_file_out_close(o), 0);
    s = read_back(path, &len);
    ck_assert_uint_eq(len, 24);
    ck_assert_int_eq(memcmp(s + 16, "{\"d\":4}\n", 8), 0);
    free(s);
    unlink(path);
}
END_TEST

/* The path no longer names the open file: renamed (1) or deleted (2). */
START_TEST(fileout_moved)
{
    char path[] = "/tmp/mf-fileout-XXXXXX", moved[64];
    int fd = mkstemp(path);
    struct mf_file_out *o;

    ck_assert_int_ge(fd, 0);
    close(fd);
    o = mf_file_out_open(path, 1, 0);
    ck_assert_int_eq(mf_file_out_moved(o), 0);
    snprintf(moved, sizeof(moved), "%s.1", path);
    ck_assert_int_eq(rename(path, moved), 0);
    ck_assert_int_eq(mf_file_out_moved(o), 1);
    ck_assert_int_eq(unlink(moved), 0);
    ck_assert_int_eq(mf_file_out_moved(o), 2);
    ck_assert_int_eq(mf_file_out_close(o), 0);
}
END_TEST

static Suite *
input_suite(void)
{
    Suite *s = suite_create("input");
    TCase *tc;

    tc = tcase_create("mf_input_next");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, next_blob_compact);
    tcase_add_test(tc, next_blob_pretty);
    tcase_add_test(tc, next_ndjson_lines);
    tcase_add_test(tc, next_ndjson_array_per_line);
    tcase_add_test(tc, next_truncated_line);
    tcase_add_test(tc, next_array_layouts);
    tcase_add_test(tc, next_truncated_eof);
    tcase_add_test(tc, next_non_object);
    tcase_add_test(tc, next_garbage);
    tcase_add_test(tc, next_empty);
    tcase_add_test(tc, next_bom);
    tcase_add_test(tc, next_big_record);
    tcase_add_test(tc, next_over_limit);
    tcase_add_test(tc, next_random_bytes);
    tcase_add_test(tc, next_csv_quotes);
    tcase_add_test(tc, next_csv_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_input_new_fd");
    tcase_add_test(tc, newfd_pretty_blob);
    tcase_add_test(tc, newfd_purview_csv);
    tcase_add_test(tc, newfd_mixed_ndjson);
    tcase_add_test(tc, newfd_read_error);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_input_new_file");
    tcase_add_test(tc, newfile_stdio);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_file_out_line");
    tcase_add_test(tc, fileout_buffered_lines);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_file_out_ack");
    tcase_add_test(tc, fileout_ack_and_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_file_out_rollback");
    tcase_add_test(tc, fileout_rollback);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_file_out_moved");
    tcase_add_test(tc, fileout_moved);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_input_format_parse");
    tcase_add_test(tc, fmtparse_names);
    suite_add_tcase(s, tc);

    tc = tcase_create("mf_input_loc_str");
    tcase_add_test(tc, locstr_forms);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return mf_test_run(input_suite());
}
