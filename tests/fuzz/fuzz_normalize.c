/* fuzz_normalize.c - libFuzzer target: bytes -> input reader (auto format)
 * -> mf_normalize_event() once, then every form (OCSF, ECS, raw; with and
 * without the original record) of the same event.
 *
 * Oracles besides the sanitizers: the reader always makes progress (no more
 * events than bytes), every event is one line (no raw newline) and parses
 * again with the project's own parser.
 *
 * Build: CC=clang-14 meson setup build-fuzz -Dfuzz=true && ninja -C build-fuzz
 * Run:   build-fuzz/tests/fuzz_normalize -max_total_time=60 tests/fuzz/corpus
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "input.h"
#include "json.h"
#include "normalize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mf_normalizer *norm;
static struct mf_nctx nctx;
static struct mf_event fev;
static struct mf_arena check_arena;

static void
setup(void)
{
    struct mf_norm_opts o;
    struct mf_err err;

    memset(&o, 0, sizeof(o));
    norm = mf_normalizer_new(&o, &err);
    if (!norm) {
        fprintf(stderr, "normalizer: %s\n", err.msg);
        abort();
    }
    mf_nctx_init(&nctx);
    mf_event_init(&fev, (size_t)16 << 20);
    mf_arena_init(&check_arena, 65536);
}

static void
check_event(const struct mf_buf *b)
{
    struct mf_jerror jerr;

    if (b->len && memchr(b->data, '\n', b->len)) {
        fprintf(stderr, "event contains a raw newline\n");
        abort();
    }
    mf_arena_reset(&check_arena);
    if (!mf_json_parse(&check_arena, b->data, b->len, NULL, NULL, &jerr)) {
        fprintf(stderr, "event is not JSON: %s\n%.*s\n", jerr.msg,
                (int)(b->len > 2000 ? 2000 : b->len), b->data);
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum mf_schema schemas[] = {
        MF_SCHEMA_OCSF, MF_SCHEMA_ECS, MF_SCHEMA_RAW,
    };
    struct mf_input_opts o;
    struct mf_input *in;
    struct mf_input_rec rec;
    struct mf_input_err err;
    enum mf_input_ev ev;
    size_t events = 0, i;

    if (!norm)
        setup();
    memset(&o, 0, sizeof(o));
    o.format = MF_INPUT_AUTO;
    o.max_record = (size_t)1 << 20;
    /* the size picks a read chunk: small ones cross every boundary */
    o.chunk = size % 3 == 0 ? 0 : 1 + size % 61;
    in = mf_input_new_mem((const char *)data, size, "fuzz", &o);
    while ((ev = mf_input_next(in, &rec, &err)) != MF_INPUT_EOF) {
        if (++events > size + 4) {
            fprintf(stderr, "reader does not advance\n");
            abort();
        }
        if (ev != MF_INPUT_RECORD)
            continue;
        struct mf_norm_in nin = {.data = rec.data, .len = rec.len,
                                 .first_line = rec.loc.line};

        if (mf_normalize_event(norm, &nctx, &nin, &fev) != MF_OK)
            continue;
        /* every form of one event, in an order the input picks */
        for (i = 0; i < 2 * sizeof(schemas) / sizeof(schemas[0]); i++) {
            size_t k = (i + rec.len) % (2 * sizeof(schemas) / sizeof(schemas[0]));
            const struct mf_event_form *f = mf_event_form(&fev, schemas[k / 2], k % 2);

            if (f)
                check_event(&f->text);
        }
    }
    mf_input_destroy(in);
    return 0;
}
