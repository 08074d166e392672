/* registry.c - the output types: one list gives the `type` choices, the
 * kinds of the `outputs[]` table (each type's own keys) and the ops. A new
 * output type is one line here, its ops and its table (see
 * docs/architecture.md). */
#include "output.h"

#include "file.h"
#include "kafka.h"
#include "syslog_fmt.h"

/* X(enum value, `type` name, ops, option table) in enum mf_output_type
 * order. */
#define MF_OUTPUT_REGISTRY(X)                                                  \
    X(MF_OUTPUT_FILE, "file", mf_output_file_ops, mf_file_sec)                 \
    X(MF_OUTPUT_KAFKA, "kafka", mf_output_kafka_ops, mf_kafka_sec)             \
    X(MF_OUTPUT_SYSLOG, "syslog", mf_output_syslog_ops, mf_syslog_sec)

#define AS_CHOICE(v, name, ops, sec) {name, v},
const struct mf_enum mf_output_type_choices[] = {
    MF_OUTPUT_REGISTRY(AS_CHOICE) {NULL, 0},
};

#define AS_KIND(v, name, ops, sec) [v] = &sec,
const struct mf_optsec *const mf_output_kinds[MF_OUTPUT_NTYPES] = {
    MF_OUTPUT_REGISTRY(AS_KIND)
};

#define AS_OPS(v, name, ops, sec) [v] = &ops,
static const struct mf_output_ops *const registry[MF_OUTPUT_NTYPES] = {
    MF_OUTPUT_REGISTRY(AS_OPS)
};

const struct mf_output_ops *
mf_output_ops_for(int type)
{
    if (type < 0 || type >= MF_OUTPUT_NTYPES)
        return NULL;
    return registry[type];
}

struct mf_output *
mf_output_open(const struct mf_output_conf *conf, struct mf_err *err)
{
    const struct mf_output_ops *ops = mf_output_ops_for(conf->type);
    struct mf_output *o;

    if (!ops) {
        mf_err_set(err, "outputs '%s': this output type is not available in "
                   "this build", conf->name);
        return NULL;
    }
    o = ops->open(conf, err);
    if (o) {
        if (!o->ops)            /* a type may pick ops of its own (relp) */
            o->ops = ops;
        o->conf = conf;
    }
    return o;
}
