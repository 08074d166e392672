/* geoip.c - MaxMind DB lookups (libmaxminddb), optional at build time. */
#include "geoip.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mem.h"
#include "mf_config.h"

#ifdef MF_HAVE_MAXMINDDB
#include <maxminddb.h>
#endif

double
mf_geo_distance_km(double lat1, double lon1, double lat2, double lon2)
{
    const double rad = 3.14159265358979323846 / 180.0;
    double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
    double h = sin(dlat / 2) * sin(dlat / 2) +
               cos(lat1 * rad) * cos(lat2 * rad) * sin(dlon / 2) * sin(dlon / 2);

    if (h > 1.0)
        h = 1.0;
    return 2.0 * 6371.0088 * asin(sqrt(h));
}

static void
add_str(struct mf_arena *a, struct mf_jval *o, const char *k, const char *v)
{
    if (v && v[0])
        mf_jobj_set(a, o, k, mf_jstr(a, v));
}

struct mf_jval *
mf_geo_ocsf_location(struct mf_arena *a, const struct mf_geo *geo)
{
    struct mf_jval *o;

    /* OCSF location: at least one of city, country, postal_code, region */
    if (!geo->city[0] && !geo->country_iso[0] && !geo->region_iso[0] &&
        !geo->region[0])
        return NULL;
    o = mf_jobj(a);
    add_str(a, o, "city", geo->city);
    add_str(a, o, "country", geo->country_iso);
    add_str(a, o, "continent", geo->continent);
    add_str(a, o, "region", geo->region_iso[0] ? geo->region_iso : geo->region);
    if (geo->has_coords) {
        struct mf_jval *c = mf_jarr(a);

        mf_jobj_set(a, o, "lat", mf_jreal(a, geo->lat));
        mf_jobj_set(a, o, "long", mf_jreal(a, geo->lon));
        mf_jarr_push(a, c, mf_jreal(a, geo->lon));   /* GeoJSON order */
        mf_jarr_push(a, c, mf_jreal(a, geo->lat));
        mf_jobj_set(a, o, "coordinates", c);
    }
    mf_jobj_set(a, o, "provider", mf_jstr(a, "MaxMind DB"));
    return o;
}

struct mf_jval *
mf_geo_ecs_geo(struct mf_arena *a, const struct mf_geo *geo)
{
    struct mf_jval *o;

    if (!geo->has_coords && !geo->country_iso[0] && !geo->city[0])
        return NULL;
    o = mf_jobj(a);
    if (geo->has_coords) {
        struct mf_jval *l = mf_jobj(a);

        mf_jobj_set(a, l, "lat", mf_jreal(a, geo->lat));
        mf_jobj_set(a, l, "lon", mf_jreal(a, geo->lon));
        mf_jobj_set(a, o, "location", l);
    }
    add_str(a, o, "continent_name", geo->continent);
    add_str(a, o, "country_iso_code", geo->country_iso);
    add_str(a, o, "country_name", geo->country);
    add_str(a, o, "region_iso_code",
            geo->region_iso[0] && geo->country_iso[0]
            ? mf_arena_printf(a, "%s-%s", geo->country_iso, geo->region_iso) : "");
    add_str(a, o, "region_name", geo->region);
    add_str(a, o, "city_name", geo->city);
    return o;
}

#ifdef MF_HAVE_MAXMINDDB

struct mf_geoip {
    MMDB_s db;
    char desc[160];
};

bool
mf_geoip_available(void)
{
    return true;
}

struct mf_geoip *
mf_geoip_open(const char *path, struct mf_err *err)
{
    struct mf_geoip *g = mf_xcalloc(1, sizeof(*g));
    int rc = MMDB_open(path, MMDB_MODE_MMAP, &g->db);
    char day[16] = "?";
    time_t t;
    struct tm tm;

    if (rc != MMDB_SUCCESS) {
        if (rc == MMDB_FILE_OPEN_ERROR || rc == MMDB_IO_ERROR)
            mf_err_set(err, "%s: cannot read: %s", path, strerror(errno));
        else
            mf_err_set(err, "%s: not a MaxMind DB: %s", path, MMDB_strerror(rc));
        free(g);
        return NULL;
    }
    t = (time_t)g->db.metadata.build_epoch;
    if (gmtime_r(&t, &tm))
        strftime(day, sizeof(day), "%Y-%m-%d", &tm);
    snprintf(g->desc, sizeof(g->desc), "%s, built %s, IPv%u",
             g->db.metadata.database_type ? g->db.metadata.database_type : "?",
             day, (unsigned)g->db.metadata.ip_version);
    return g;
}

void
mf_geoip_close(struct mf_geoip *g)
{
    if (!g)
        return;
    MMDB_close(&g->db);
    free(g);
}

const char *
mf_geoip_describe(const struct mf_geoip *g)
{
    return g ? g->desc : "";
}

/* Copy a UTF-8 string value at the path into out (truncated, never split
 * inside a character). */
static void
get_str(MMDB_entry_s *e, char *out, size_t n, const char *const *path)
{
    MMDB_entry_data_s d;
    size_t len;

    out[0] = '\0';
    if (MMDB_aget_value(e, &d, path) != MMDB_SUCCESS || !d.has_data ||
        d.type != MMDB_DATA_TYPE_UTF8_STRING)
        return;
    len = d.data_size < n - 1 ? d.data_size : n - 1;
    while (len > 0 && len < d.data_size &&
           ((unsigned char)d.utf8_string[len] & 0xC0) == 0x80)
        len--;
    memcpy(out, d.utf8_string, len);
    out[len] = '\0';
}

static bool
get_double(MMDB_entry_s *e, double *out, const char *const *path)
{
    MMDB_entry_data_s d;

    if (MMDB_aget_value(e, &d, path) != MMDB_SUCCESS || !d.has_data)
        return false;
    if (d.type == MMDB_DATA_TYPE_DOUBLE)
        *out = d.double_value;
    else if (d.type == MMDB_DATA_TYPE_FLOAT)
        *out = d.float_value;
    else
        return false;
    return true;
}

int
mf_geoip_lookup(const struct mf_geoip *g, const char *ip, struct mf_geo *out)
{
    static const char *const p_lat[] = {"location", "latitude", NULL};
    static const char *const p_lon[] = {"location", "longitude", NULL};
    static const char *const p_acc[] = {"location", "accuracy_radius", NULL};
    static const char *const p_ciso[] = {"country", "iso_code", NULL};
    static const char *const p_cname[] = {"country", "names", "en", NULL};
    static const char *const p_cont[] = {"continent", "names", "en", NULL};
    static const char *const p_riso[] = {"subdivisions", "0", "iso_code", NULL};
    static const char *const p_rname[] = {"subdivisions", "0", "names", "en", NULL};
    static const char *const p_city[] = {"city", "names", "en", NULL};
    MMDB_lookup_result_s res;
    MMDB_entry_data_s d;
    int gai = 0, merr = MMDB_SUCCESS;

    memset(out, 0, sizeof(*out));
    if (!g || !ip || !ip[0])
        return -1;
    res = MMDB_lookup_string((MMDB_s *)&g->db, ip, &gai, &merr);
    if (gai != 0 || merr != MMDB_SUCCESS)
        return -1;
    if (!res.found_entry)
        return 0;
    out->has_coords = get_double(&res.entry, &out->lat, p_lat) &&
                      get_double(&res.entry, &out->lon, p_lon);
    if (MMDB_aget_value(&res.entry, &d, p_acc) == MMDB_SUCCESS && d.has_data &&
        d.type == MMDB_DATA_TYPE_UINT16)
        out->accuracy_km = d.uint16;
    get_str(&res.entry, out->country_iso, sizeof(out->country_iso), p_ciso);
    get_str(&res.entry, out->country, sizeof(out->country), p_cname);
    get_str(&res.entry, out->continent, sizeof(out->continent), p_cont);
    get_str(&res.entry, out->region_iso, sizeof(out->region_iso), p_riso);
    get_str(&res.entry, out->region, sizeof(out->region), p_rname);
    get_str(&res.entry, out->city, sizeof(out->city), p_city);
    return 1;
}

#else /* !MF_HAVE_MAXMINDDB */

bool
mf_geoip_available(void)
{
    return false;
}

struct mf_geoip *
mf_geoip_open(const char *path, struct mf_err *err)
{
    mf_err_set(err, "%s: this m365fwd was built without libmaxminddb "
               "(meson option geoip)", path);
    return NULL;
}

void
mf_geoip_close(struct mf_geoip *g)
{
    (void)g;
}

const char *
mf_geoip_describe(const struct mf_geoip *g)
{
    (void)g;
    return "";
}

int
mf_geoip_lookup(const struct mf_geoip *g, const char *ip, struct mf_geo *out)
{
    (void)g;
    (void)ip;
    memset(out, 0, sizeof(*out));
    return -1;
}

#endif
