/*
 * normalize-floor: the benchmark's floor. A plain jansson loop over NDJSON:
 * read a line, json_loadb() it, json_dumps(JSON_COMPACT) it to stdout.
 * No normalization, no extra work; large stdio buffers. `m365fwd normalize`
 * is measured against this (bench/README.md).
 *
 *   normalize-floor [FILE]      (stdin when FILE is absent or "-")
 *
 * Prints "records=N errors=N" on stderr. Exit 0, 1 when a line did not
 * parse, 2 on usage or I/O error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define FLOOR_IOBUF (1u << 20)

/* glibc ignores the size passed to setvbuf() with a NULL buffer, so the
 * large stdio buffers are supplied here. */
static char inbuf[FLOOR_IOBUF];
static char outbuf[FLOOR_IOBUF];

static int
is_blank(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    }
    return 1;
}

int
main(int argc, char **argv)
{
    FILE *in = stdin;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned long long records = 0, errors = 0;
    int rc = 0;

    if (argc > 2 || (argc == 2 && strcmp(argv[1], "--help") == 0)) {
        fprintf(stderr, "usage: normalize-floor [FILE]\n");
        return 2;
    }
    if (argc == 2 && strcmp(argv[1], "-") != 0) {
        in = fopen(argv[1], "rb");
        if (in == NULL) {
            fprintf(stderr, "normalize-floor: %s: %s\n", argv[1],
                    strerror(errno));
            return 2;
        }
    }
    if (setvbuf(in, inbuf, _IOFBF, sizeof(inbuf)) != 0 ||
        setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf)) != 0) {
        fprintf(stderr, "normalize-floor: setvbuf failed\n");
        return 2;
    }

    while ((len = getline(&line, &cap, in)) != -1) {
        json_error_t err;
        json_t *root;
        char *out;

        if (is_blank(line, (size_t)len))
            continue;
        root = json_loadb(line, (size_t)len, 0, &err);
        if (root == NULL) {
            errors++;
            continue;
        }
        out = json_dumps(root, JSON_COMPACT);
        json_decref(root);
        if (out == NULL) {
            errors++;
            continue;
        }
        fputs(out, stdout);
        putc('\n', stdout);
        free(out);
        records++;
    }
    if (ferror(in)) {
        fprintf(stderr, "normalize-floor: read error: %s\n", strerror(errno));
        rc = 2;
    }
    free(line);
    if (in != stdin)
        fclose(in);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "normalize-floor: write error: %s\n", strerror(errno));
        rc = 2;
    }
    fprintf(stderr, "records=%llu errors=%llu\n", records, errors);
    if (rc == 0 && errors > 0)
        rc = 1;
    return rc;
}
