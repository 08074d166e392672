/* config_doc.c - write the configuration reference generated from the
 * option tables (docs/configuration.md) to the file named by argv[1], or
 * to standard output. Used by `ninja config-doc`. */
#include <stdio.h>
#include <stdlib.h>

#include "buf.h"
#include "agent_conf.h"

int
main(int argc, char **argv)
{
    struct mf_buf b;
    FILE *f = stdout;
    int rc = EXIT_SUCCESS;

    mf_buf_init(&b, 0);
    mf_config_doc_markdown(&b);
    if (argc > 1 && !(f = fopen(argv[1], "w"))) {
        perror(argv[1]);
        mf_buf_fini(&b);
        return EXIT_FAILURE;
    }
    if (fwrite(b.data, 1, b.len, f) != b.len || fflush(f) != 0)
        rc = EXIT_FAILURE;
    if (f != stdout && fclose(f) != 0)
        rc = EXIT_FAILURE;
    mf_buf_fini(&b);
    return rc;
}
