/* main.c - m365fwd entry point; everything lives behind the dispatcher. */
#include <sys/prctl.h>

#include "cli.h"

int
main(int argc, char **argv)
{
    /* not dumpable: no core file, and no other user's ptrace or
     * /proc/PID/mem, can show an access token or a client secret */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    return mf_cli_main(argc, argv);
}
