/* fanout.c - see fanout.h. */
#include "fanout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

int
mf_fanout_open(struct mf_fanout *f, const struct mf_config *cfg, char *err,
               size_t errsz)
{
    size_t max = (size_t)cfg->collect.max_record_size * 4 + 65536;

    memset(f, 0, sizeof(*f));
    f->max_line = max;
    for (int v = 0; v < MF_OUT_VARIANTS; v++)
        mf_buf_init(&f->line[v], max);
    f->outs = mf_xcalloc(cfg->outputs.n ? cfg->outputs.n : 1, sizeof(*f->outs));
    for (size_t i = 0; i < cfg->outputs.n; i++) {
        const struct mf_output_conf *oc = &cfg->outputs.v[i];
        struct mf_err e;

        if (!oc->enabled)
            continue;
        if (!(f->outs[f->n] = mf_output_open(oc, &e))) {
            snprintf(err, errsz, "%s", e.msg);
            return -1;
        }
        f->n++;
        f->used[mf_output_variant(oc)] = true;
    }
    if (f->n == 0) {
        snprintf(err, errsz, "%s: no enabled output", cfg->file);
        return -1;
    }
    return 0;
}

void
mf_fanout_share(struct mf_fanout *dst, const struct mf_fanout *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->outs = src->outs;
    dst->n = src->n;
    memcpy(dst->used, src->used, sizeof(dst->used));
    dst->max_line = src->max_line;
    dst->shared = true;
    for (int v = 0; v < MF_OUT_VARIANTS; v++)
        mf_buf_init(&dst->line[v], src->max_line);
}

void
mf_fanout_close(struct mf_fanout *f)
{
    for (size_t i = 0; !f->shared && i < f->n; i++)
        mf_output_close(f->outs[i]);
    if (!f->shared)
        free(f->outs);
    f->outs = NULL;
    f->n = 0;
    for (int v = 0; v < MF_OUT_VARIANTS; v++)
        mf_buf_fini(&f->line[v]);
}

enum mf_status
mf_fanout_normalize(struct mf_fanout *f, const struct mf_normalizer *n,
                    struct mf_nctx *c, struct mf_norm_in *in,
                    const struct mf_norm_result **first)
{
    *first = NULL;
    for (int v = 0; v < MF_OUT_VARIANTS; v++) {
        if (!f->used[v])
            continue;
        mf_buf_reset(&f->line[v]);
        in->schema = (enum mf_schema)(v / 2);
        in->keep_raw = v % 2;
        if (!*first)
            *first = &f->res[v];
        if (mf_normalize(n, c, in, &f->line[v], &f->res[v]) != MF_OK) {
            *first = &f->res[v];
            return MF_DROP;
        }
    }
    return MF_OK;
}

bool
mf_fanout_msg(const struct mf_fanout *f, size_t i, const char *tenant,
              const char *tenant_id, const char *content_type, struct mf_out_msg *m)
{
    const struct mf_output_conf *oc = f->outs[i]->conf;
    int v = mf_output_variant(oc);

    if (!mf_output_wants(oc, &f->res[v], tenant, tenant_id, content_type))
        return false;
    *m = (struct mf_out_msg){.data = f->line[v].data, .len = f->line[v].len,
                             .res = &f->res[v], .tenant = tenant,
                             .tenant_id = tenant_id, .content_type = content_type,
                             .schema = (enum mf_schema)oc->schema};
    return true;
}
