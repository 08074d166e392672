/* auth.h - OAuth2 client-credentials tokens from Entra ID (m365-api.md §1).
 *
 * One struct mf_auth per tenant. Credentials: a client secret (from a file
 * or the environment, loaded when a token is requested and wiped right
 * after) or a certificate + private key (PEM), signed into a client_assertion
 * JWT (RS256 by default, PS256 on request; header carries x5t and x5t#S256;
 * claims aud = token URL, iss = sub = client id, jti unique, nbf/exp a few
 * minutes around now). v2 endpoint by default
 * ({login}/{tenant}/oauth2/v2.0/token, scope={resource}/.default); v1
 * ({login}/{tenant}/oauth2/token, resource=...) on request.
 *
 * Tokens are cached and refreshed before expiry (at 80% of their lifetime or
 * 5 minutes before, whichever is earlier), and once on a 401 (mf_auth_invalidate).
 * The access token never reaches a log or an error message.
 */
#ifndef MF_AUTH_H
#define MF_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "collector_conf.h"
#include "http.h"

struct mf_auth;

struct mf_auth_opts {
    bool v1;            /* v1 endpoint (resource=) instead of v2 */
    bool pss;           /* PS256 assertions instead of RS256 */
    const char *proxy;  /* or NULL */
    const char *proxy_userpwd;  /* "user:password" for the proxy, or NULL
                                   (copied; wiped on destroy) */
    int64_t request_timeout_ms;   /* no progress this long ends a token
                                     request (collect.request_timeout);
                                     0 = 60 s */
    int64_t transfer_timeout_ms;  /* ceiling of one token request; 0 = 120 s */
};

struct mf_auth *mf_auth_new(const struct mf_tenant_conf *t,
                            const struct mf_auth_opts *opts);
void mf_auth_destroy(struct mf_auth *a);

/* The cached token when it is still good at now_ms, else NULL. */
const char *mf_auth_token(struct mf_auth *a, int64_t now_ms);
/* Start a refresh on h when none is running (async; the outcome lands in
 * the cache and in mf_auth_last_error()). Returns 0 when a request is in
 * flight or was started, -1 when it could not start (error set). */
int mf_auth_refresh(struct mf_auth *a, struct mf_http *h, int64_t now_ms);
bool mf_auth_busy(const struct mf_auth *a);
/* Blocking: return a good token, fetching one when needed; NULL on error. */
const char *mf_auth_get(struct mf_auth *a, struct mf_http *h, int64_t now_ms);
/* Forget the cached token (after a 401). */
void mf_auth_invalidate(struct mf_auth *a);

/* Last failure: one line for people, no secrets ("AADSTS7000215: invalid
 * client secret ...", "connect to login host failed: ..."). "" when none. */
const char *mf_auth_last_error(const struct mf_auth *a);
/* Verdict of the last failure: MF_RETRY for what is transient (network,
 * timeouts, 5xx, 408, 429, an `error` of temporarily_unavailable or
 * server_error, throttling AADSTS codes) or MF_FATAL for a configuration
 * error (bad secret or certificate, unknown app or tenant, no consent).
 * The caller retries both: transient errors with backoff, configuration
 * errors at a slow cadence (they may be fixed without a restart). */
enum mf_status mf_auth_last_status(const struct mf_auth *a);

/* The local clock minus the token host's (from its Date header), used to
 * date client assertions when the local clock is off by more than a
 * minute; the collector also passes the API's. */
void mf_auth_set_skew(struct mf_auth *a, int64_t skew_ms);

/* Claims of the cached token (decoded JWT payload, not verified): roles
 * as a comma-separated list ("" when none), tenant id, expiry. For
 * preflight. */
const char *mf_auth_roles(const struct mf_auth *a);
int64_t mf_auth_expires_ms(const struct mf_auth *a);

/* The last token request as sent and answered (status, curl_code, af_code
 * = "AADSTS<n>", af_message, date_ms; the body is wiped): for preflight's
 * diagnosis. The token URL (no secret in it). */
const struct mf_http_req *mf_auth_last_response(const struct mf_auth *a);
const char *mf_auth_token_url(const struct mf_auth *a);
/* "tid" claim of the cached token (the tenant GUID, also when the
 * configuration names a domain), "" when unknown. */
const char *mf_auth_tid(const struct mf_auth *a);

#endif
