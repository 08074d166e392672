/* preflight.h - `m365fwd preflight -c FILE [--tenant NAME]`: checks every
 * tenant's credentials, permissions, audit logging, subscriptions, one
 * content listing, clock and TLS, and says in plain words what to fix. */
#ifndef MF_PREFLIGHT_H
#define MF_PREFLIGHT_H

extern const char mf_cmd_preflight_usage[];
int mf_cmd_preflight(int argc, char **argv);

#endif
