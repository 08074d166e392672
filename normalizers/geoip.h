/* geoip.h - optional IP geolocation from a MaxMind DB file (GeoIP2 /
 * GeoLite2 City or Country, or any database with the same layout).
 *
 * Read with libmaxminddb when the build found it (meson option geoip);
 * without it mf_geoip_open() fails with a message saying so, and everything
 * that needs a location is off (the aggregate rules with a `geo` block,
 * src_endpoint.location / source.geo). The database is memory-mapped,
 * read-only after opening, and may be shared by threads.
 */
#ifndef MF_GEOIP_H
#define MF_GEOIP_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "err.h"
#include "json.h"

struct mf_geoip;

struct mf_geo {
    bool has_coords;          /* lat/lon valid */
    double lat, lon;          /* decimal degrees */
    unsigned accuracy_km;     /* location.accuracy_radius, 0 unknown */
    char country_iso[4];      /* "FR"; "" unknown */
    char country[64];         /* English name; "" unknown */
    char continent[32];       /* English name */
    char region_iso[8];       /* first subdivision's code ("IDF") */
    char region[64];          /* first subdivision's English name */
    char city[64];
};

/* True when this build can read MaxMind databases. */
bool mf_geoip_available(void);
/* Open a .mmdb file. NULL with err filled (unreadable, not a MaxMind DB,
 * or built without libmaxminddb). */
struct mf_geoip *mf_geoip_open(const char *path, struct mf_err *err);
void mf_geoip_close(struct mf_geoip *g);
/* "GeoLite2-City, built 2024-05-01, IPv6" - for preflight and logs. */
const char *mf_geoip_describe(const struct mf_geoip *g);

/* Look an address up ("192.0.2.1", "2001:db8::1"). 1 found (out filled,
 * possibly without coordinates), 0 not in the database, -1 not an
 * address or a database error. */
int mf_geoip_lookup(const struct mf_geoip *g, const char *ip, struct mf_geo *out);

/* Great-circle distance in km (haversine, mean Earth radius). */
double mf_geo_distance_km(double lat1, double lon1, double lat2, double lon2);

/* Location objects for the normalized events, built in a: OCSF `location`
 * (city, country ISO code, continent, region, lat, long, provider) and ECS
 * `geo` (location {lat, lon}, country_iso_code, country_name, city_name,
 * continent_name, region_iso_code, region_name). NULL when geo holds
 * nothing OCSF/ECS can carry (OCSF needs a city, country or region). */
struct mf_jval *mf_geo_ocsf_location(struct mf_arena *a, const struct mf_geo *geo);
struct mf_jval *mf_geo_ecs_geo(struct mf_arena *a, const struct mf_geo *geo);

#endif
