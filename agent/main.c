/* main.c - m365fwd entry point; everything lives behind the dispatcher. */
#include "cli.h"

int
main(int argc, char **argv)
{
    return mf_cli_main(argc, argv);
}
