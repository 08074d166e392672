/* norm_conf.c - the `normalizer:` section: which tables the normalizer
 * loads (struct mf_norm_opts). `normalize --tags-file/--ocsf-file/
 * --ecs-file/--aggregates-file/--geoip-db` set the same fields from the
 * command line. */
#include "normalize.h"

#define NOR(f) offsetof(struct mf_norm_opts, f)
static const struct mf_option normalizer_opts[] = {
    {.name = "tags_file", .type = MF_OPT_STR, .offset = NOR(tags_file),
     .flags = MF_OPT_PATH | MF_OPT_READABLE, .defdoc = "the built-in catalogue",
     .desc = "Risk-tag catalogue (YAML, the format of "
             "`normalizers/tags.yaml`) instead of the built-in one; as "
             "`normalize --tags-file`. Output filters name tags of this "
             "catalogue."},
    {.name = "ocsf_file", .type = MF_OPT_STR, .offset = NOR(ocsf_file),
     .flags = MF_OPT_PATH | MF_OPT_READABLE, .defdoc = "the built-in mapping",
     .desc = "OCSF mapping (YAML, the format of `normalizers/ocsf.yaml`) "
             "instead of the built-in one; as `normalize --ocsf-file`."},
    {.name = "ecs_file", .type = MF_OPT_STR, .offset = NOR(ecs_file),
     .flags = MF_OPT_PATH | MF_OPT_READABLE, .defdoc = "the built-in mapping",
     .desc = "ECS mapping (YAML, the format of `normalizers/ecs.yaml`) "
             "instead of the built-in one; as `normalize --ecs-file`."},
    {.name = "aggregates_file", .type = MF_OPT_STR, .offset = NOR(aggregates_file),
     .flags = MF_OPT_PATH | MF_OPT_READABLE, .defdoc = "the built-in rules",
     .desc = "Aggregate rules (YAML, the format of `normalizers/aggregates.yaml`, "
             "docs/aggregates.md) instead of the built-in ones; as "
             "`normalize --aggregates-file`."},
    {.name = "geoip_db", .type = MF_OPT_STR, .offset = NOR(geoip_db),
     .flags = MF_OPT_PATH | MF_OPT_READABLE,
     .defdoc = "none: no locations, the distant-sign-in aggregate is off",
     .desc = "MaxMind DB file (GeoIP2 / GeoLite2 City or Country) read with "
             "libmaxminddb: fills `src_endpoint.location` (OCSF) / "
             "`source.geo` (ECS) from the client address and turns on the "
             "aggregate rules that need places (impossible travel: "
             "docs/aggregates.md); as `normalize --geoip-db`. `preflight` "
             "says when it is off."},
    {.name = NULL},
};

const struct mf_optsec mf_normalizer_sec = {
    .name = "normalizer",
    .desc = "The tables records are normalized and tagged with. A table "
            "that does not load is a start-up error (and a reload keeps the "
            "running configuration).",
    .opts = normalizer_opts,
    .size = sizeof(struct mf_norm_opts),
};
