/* emu.h - start and stop the Management Activity API emulator
 * (tests/emulator/m365emu.py) from Check tests.
 *
 * mf_emu_require() exits 77 (skip) when python3, openssl or the emulator
 * sources are missing; call it in main() before anything else. Certificates
 * are made once per process by mf_emu_certs() (tests/emulator/mkcerts.py).
 * mf_emu_start() writes the scenario to a file, execs the emulator with
 * --port 0 --control-port 0, and reads its ready line from a pipe with a
 * deadline (no sleeps). mf_emu_stop() sends SIGTERM and reaps it.
 */
#ifndef MF_TEST_EMU_H
#define MF_TEST_EMU_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

struct mf_emu_certs {
    char dir[256];
    char ca[320];
    char server_crt[320], server_key[320];
    char wronghost_crt[320], wronghost_key[320];
    char client_crt[320], client_key[320];
    char client2_crt[320], client2_key[320];
};

struct mf_emu {
    pid_t pid;
    int out_fd;               /* emulator stdout (kept open until stop) */
    int api_port;
    int control_port;
    char base[64];            /* "https://127.0.0.1:PORT" */
    char dir[256];            /* scenario, ready file, log */
};

/* Exit 77 with a "# SKIP" line when the emulator cannot run here. */
void mf_emu_require(void);
/* Make the test CA and certificates in a fresh temp dir (once per process;
 * later calls return the same). Exits 77 when openssl fails. */
const struct mf_emu_certs *mf_emu_certs(void);
/* Start with scenario JSON text (use "@client_cert" for the client cert).
 * wronghost: serve the wrong-host certificate. 0 or -1 (message on stderr). */
int mf_emu_start(struct mf_emu *e, const char *scenario, int wronghost);
void mf_emu_stop(struct mf_emu *e);
/* Control API call (plain HTTP on loopback). body may be NULL. Returns the
 * HTTP status (out gets the body when not NULL) or -1. */
long mf_emu_ctl(const struct mf_emu *e, const char *method, const char *path,
                const char *body, struct mf_buf *out);
/* Remove every temp file made by mf_emu_certs() (call at exit). */
void mf_emu_cleanup(void);

#endif
