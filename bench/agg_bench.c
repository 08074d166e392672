/* agg_bench.c - the aggregate state under a large population (bench/README.md,
 * "Aggregates").
 *
 *   agg-bench [--tenants N] [--users N] [--fail-pct N] [--sprays N]
 *             [--max-keys N] [--max-memory-mb N] [--target-mb N]
 *
 * An hour of event time for N tenants x M active users, fed in time order
 * through the real record view, per-event tagger and aggregate engine (the
 * built-in tables): every user signs in once from an address of its own
 * with one of 50 browsers (DeviceProperties OS, ApplicationId), fail-pct %
 * of them also fail once with a wrong password, 10 % download a file, 5 %
 * read mail. Sprays (6 accounts from one address within seconds) are
 * injected at spread-out moments. Printed: records/s through
 * parse+view+tag+aggregate, the state's memory as the engine counts it
 * (peak and end), windows tracked / evicted / expired, the process's RSS
 * growth, and sprays detected / injected. Exit 0 when the peak state is
 * below --target-mb (64), 1 otherwise.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "aggregate.h"
#include "arena.h"
#include "clock.h"
#include "json.h"
#include "record.h"
#include "tags.h"

static const char *const oses[] = {"Windows 10", "Windows 11", "MacOs", "iOS", "Android"};

struct bench {
    struct mf_tagdb *tags;
    struct mf_aggregates *g;
    struct mf_arena a;
    struct mf_findings out;
    unsigned long long records, sprays_found;
    uint64_t peak_bytes;
    char buf[2048];
};

static long
rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = 0;

    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

static void
feed(struct bench *b, int len)
{
    struct mf_jval *root;
    struct mf_record r;
    struct mf_tag_hits hits;
    size_t i;

    mf_arena_reset(&b->a);
    root = mf_json_parse(&b->a, b->buf, (size_t)len, NULL, NULL, NULL);
    if (!root || root->type != MF_JOBJ) {
        fprintf(stderr, "agg-bench: bad record %s\n", b->buf);
        exit(2);
    }
    mf_record_init(&r, &b->a, root, b->buf, (size_t)len, NULL, 0);
    mf_tags_eval(b->tags, &r, &hits);
    mf_findings_reset(&b->out);
    mf_aggregates_feed(b->g, &r, &hits, &b->out);
    for (i = 0; i < b->out.n; i++)
        if (strcmp(b->out.v[i].rule, "identity.password_spray/one_source") == 0)
            b->sprays_found++;
    b->records++;
}

static void
when(char *out, size_t n, int64_t s)
{
    mf_clock_fmt_utc(s * 1000, out, n);
}

static void
emit(struct bench *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
emit(struct bench *b, const char *fmt, ...)
{
    va_list ap;
    int len;

    va_start(ap, fmt);
    len = vsnprintf(b->buf, sizeof(b->buf), fmt, ap);
    va_end(ap);
    feed(b, len);
}

/* splitmix64: the bench's own reproducible randomness */
static uint64_t
rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#define REC_HEAD "{\"CreationTime\":\"%s\",\"Id\":\"%08x-0000-4000-8000-%012llx\"," \
    "\"OrganizationId\":\"%08d-0000-4000-8000-000000000000\",\"UserType\":0,"

int
main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"tenants", required_argument, NULL, 't'}, {"users", required_argument, NULL, 'u'},
        {"fail-pct", required_argument, NULL, 'f'}, {"sprays", required_argument, NULL, 's'},
        {"max-keys", required_argument, NULL, 'k'},
        {"max-memory-mb", required_argument, NULL, 'm'},
        {"target-mb", required_argument, NULL, 'T'}, {NULL, 0, NULL, 0},
    };
    long tenants = 1000, users = 10000, fail_pct = 3, sprays = 100, max_keys = 0,
         max_mb = 0, target_mb = 64;
    struct bench b;
    struct mf_err terr, err;
    struct mf_aggdb *db;
    struct mf_aggregates_opts ao;
    struct mf_aggregates_stats st;
    char t[40];
    const int64_t base = 1772445600;   /* 2026-03-02T10:00:00Z */
    long long total, rank, next_spray = 0, spray_every;
    uint64_t seed = 42, id = 0;
    long rss0, rss1;
    int64_t t0, t1;
    int c, injected = 0;

    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        long v = strtol(optarg ? optarg : "0", NULL, 10);

        switch (c) {
        case 't': tenants = v; break;
        case 'u': users = v; break;
        case 'f': fail_pct = v; break;
        case 's': sprays = v; break;
        case 'k': max_keys = v; break;
        case 'm': max_mb = v; break;
        case 'T': target_mb = v; break;
        default:
            fprintf(stderr, "usage: agg-bench [--tenants N] [--users N] [--fail-pct N] "
                    "[--sprays N] [--max-keys N] [--max-memory-mb N] [--target-mb N]\n");
            return 2;
        }
    }
    if (tenants < 1 || users < 1 || tenants * users > 16000000L) {
        fprintf(stderr, "agg-bench: 1..16,000,000 tenant users\n");
        return 2;
    }
    memset(&b, 0, sizeof(b));
    if (!(b.tags = mf_tagdb_load_builtin(&terr)) ||
        !(db = mf_aggdb_load_builtin(b.tags, &err))) {
        fprintf(stderr, "agg-bench: tables: %s%s\n", terr.msg, err.msg);
        return 2;
    }
    mf_arena_init(&b.a, 65536);
    mf_findings_init(&b.out);
    rss0 = rss_kb();
    memset(&ao, 0, sizeof(ao));
    ao.max_keys = (size_t)max_keys;
    ao.max_memory = (size_t)max_mb << 20;
    b.g = mf_aggregates_new(db, &ao);

    total = (long long)tenants * users;
    spray_every = sprays > 0 ? total / sprays : total + 1;
    t0 = mf_clock_mono_ms();
    for (rank = 0; rank < total; rank++) {
        long tn = (long)(rank % tenants), u = (long)(rank / tenants);
        long long who = (long long)tn * users + u;
        int64_t ts = base + rank * 3600 / total;
        uint64_t r = rnd(&seed);
        char ip[32];

        when(t, sizeof(t), ts);
        snprintf(ip, sizeof(ip), "10.%lld.%lld.%lld", (who >> 16) & 255, (who >> 8) & 255,
                 who & 255);
        emit(&b, REC_HEAD "\"Operation\":\"UserLoggedIn\",\"RecordType\":15,"
             "\"ResultStatus\":\"Success\",\"Workload\":\"AzureActiveDirectory\","
             "\"ClientIP\":\"%s\",\"UserId\":\"user%ld@t%ld.example\",\"ErrorNumber\":\"0\","
             "\"ApplicationId\":\"%08llx-0000-4000-8000-00000000000%d\","
             "\"ExtendedProperties\":[{\"Name\":\"UserAgent\",\"Value\":\"Mozilla/5.0 browser %d\"}],"
             "\"DeviceProperties\":[{\"Name\":\"OS\",\"Value\":\"%s\"}]}",
             t, (unsigned)tn, (unsigned long long)++id, (int)tn, ip, u, tn,
             (unsigned long long)(r % 7), (int)(r % 10), (int)((r >> 8) % 50),
             oses[(r >> 16) % 5]);
        if ((long)((r >> 24) % 100) < fail_pct)
            emit(&b, REC_HEAD "\"Operation\":\"UserLoginFailed\",\"RecordType\":15,"
                 "\"ResultStatus\":\"Failed\",\"Workload\":\"AzureActiveDirectory\","
                 "\"ClientIP\":\"%s\",\"UserId\":\"user%ld@t%ld.example\","
                 "\"ErrorNumber\":\"50126\",\"LogonError\":\"InvalidUserNameOrPassword\","
                 "\"ExtendedProperties\":[{\"Name\":\"UserAgent\",\"Value\":\"Mozilla/5.0 browser %d\"}]}",
                 t, (unsigned)tn, (unsigned long long)++id, (int)tn, ip, u, tn,
                 (int)((r >> 8) % 50));
        if ((r >> 32) % 100 < 10)
            emit(&b, REC_HEAD "\"Operation\":\"FileDownloaded\",\"RecordType\":6,"
                 "\"Workload\":\"SharePoint\",\"ClientIP\":\"%s\",\"UserId\":\"user%ld@t%ld.example\","
                 "\"SiteUrl\":\"https://t%ld.sharepoint.com/sites/s%d/\","
                 "\"ObjectId\":\"https://t%ld.sharepoint.com/sites/s%d/doc%llu.docx\"}",
                 t, (unsigned)tn, (unsigned long long)++id, (int)tn, ip, u, tn, tn,
                 (int)(r % 20), tn, (int)(r % 20), (unsigned long long)(r >> 40));
        if ((r >> 40) % 100 < 5)
            emit(&b, REC_HEAD "\"Operation\":\"MailItemsAccessed\",\"RecordType\":50,"
                 "\"Workload\":\"Exchange\",\"ResultStatus\":\"Succeeded\",\"ClientIP\":\"%s\","
                 "\"UserId\":\"user%ld@t%ld.example\",\"MailboxOwnerUPN\":\"user%ld@t%ld.example\","
                 "\"OperationProperties\":[{\"Name\":\"MailAccessType\",\"Value\":\"Bind\"},"
                 "{\"Name\":\"IsThrottled\",\"Value\":\"False\"}],"
                 "\"Folders\":[{\"Path\":\"\\\\Inbox\",\"FolderItems\":[{\"Id\":\"i%llu\"}]}]}",
                 t, (unsigned)tn, (unsigned long long)++id, (int)tn, ip, u, tn, u, tn,
                 (unsigned long long)(r >> 20));
        if (rank == next_spray && injected < sprays) {
            int k;
            unsigned long long before = b.sprays_found;

            for (k = 0; k < 6; k++) {
                when(t, sizeof(t), ts + k);
                emit(&b, REC_HEAD "\"Operation\":\"UserLoginFailed\",\"RecordType\":15,"
                     "\"ResultStatus\":\"Failed\",\"Workload\":\"AzureActiveDirectory\","
                     "\"ClientIP\":\"198.18.%d.%d\",\"UserId\":\"victim%d@t%ld.example\","
                     "\"ErrorNumber\":\"50126\"}",
                     t, (unsigned)tn, (unsigned long long)++id, (int)tn,
                     injected / 256, injected % 256, k, tn);
            }
            if (getenv("AGG_BENCH_DEBUG") && b.sprays_found == before) {
                mf_aggregates_stats(b.g, &st);
                fprintf(stderr, "spray %d at rank %lld (%s) not found; keys %llu\n", injected,
                        rank, t, (unsigned long long)st.keys);
            }
            injected++;
            next_spray += spray_every;
        }
        if (rank % 100000 == 0) {
            mf_aggregates_stats(b.g, &st);
            if (st.bytes > b.peak_bytes)
                b.peak_bytes = st.bytes;
        }
    }
    t1 = mf_clock_mono_ms();
    mf_aggregates_stats(b.g, &st);
    if (st.bytes > b.peak_bytes)
        b.peak_bytes = st.bytes;
    rss1 = rss_kb();

    printf("population: %ld tenants x %ld active users over 1 h of event time, %ld%% failing "
           "once, 10%% downloading, 5%% reading mail; %d sprays injected\n",
           tenants, users, fail_pct, injected);
    printf("records fed:         %llu in %.1f s = %.0f records/s "
           "(parse + view + tag + aggregate, one thread)\n", b.records,
           (t1 - t0) / 1000.0, b.records / ((t1 - t0) / 1000.0 + 1e-9));
    printf("state (engine):      peak %.1f MB, end %.1f MB; windows tracked %llu\n",
           b.peak_bytes / 1048576.0, st.bytes / 1048576.0, (unsigned long long)st.keys);
    printf("bounds:              evicted %llu, expired %llu, late %llu\n",
           (unsigned long long)st.evicted, (unsigned long long)st.expired,
           (unsigned long long)st.late);
    printf("process RSS growth:  %.1f MB\n", (rss1 - rss0) / 1024.0);
    printf("sprays detected:     %llu of %d\n", b.sprays_found, injected);
    printf("target: aggregate state peak %.1f MB < %ld MB  %s\n",
           b.peak_bytes / 1048576.0, target_mb,
           b.peak_bytes < (uint64_t)target_mb << 20 ? "PASS" : "FAIL");
    mf_aggregates_destroy(b.g);
    mf_aggdb_destroy(db);
    mf_tagdb_destroy(b.tags);
    mf_findings_fini(&b.out);
    mf_arena_fini(&b.a);
    return b.peak_bytes < (uint64_t)target_mb << 20 ? 0 : 1;
}
