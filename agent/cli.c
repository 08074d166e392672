/* cli.c - command table and dispatcher; see cli.h. */
#include "cli.h"
#include "buf.h"
#include "agent_conf.h"
#include "preflight.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mf_config.h"

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const char help_usage[] =
    "Usage: m365fwd help [COMMAND]\n"
    "       m365fwd help config\n"
    "\n"
    "Show the list of commands, the full help of COMMAND, or the\n"
    "configuration reference (as help-config).\n";

static const char version_usage[] =
    "Usage: m365fwd version\n"
    "\n"
    "Print the program version.\n";

static const char help_config_usage[] =
    "Usage: m365fwd help-config\n"
    "       m365fwd help config\n"
    "\n"
    "Print the configuration reference (Markdown), generated from the option\n"
    "tables the program validates configurations with (every key with its\n"
    "type, default, reload class and meaning). The README and\n"
    "docs/configuration.md carry this text; a test fails when they differ.\n";

static int
print_config_reference(void)
{
    struct mf_buf b;
    int rc = MF_EXIT_OK;

    mf_buf_init(&b, 0);
    mf_config_doc_markdown(&b);
    if (fwrite(b.data, 1, b.len, stdout) != b.len || fflush(stdout) != 0)
        rc = MF_EXIT_REJECTED;
    mf_buf_fini(&b);
    return rc;
}

static int
cmd_help_config(int argc, char **argv)
{
    const struct mf_cmd *self = mf_cli_find("help-config");

    if (argc > 1) {
        if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
            return mf_cli_help(self);
        return mf_cli_usage_error(self, "unexpected argument '%s'", argv[1]);
    }
    return print_config_reference();
}

static const struct mf_cmd commands[] = {
    {"normalize", mf_cmd_normalize,
     "normalize audit records to OCSF 1.8.0, ECS or raw JSON lines",
     mf_cmd_normalize_usage},
    {"run", mf_cmd_run,
     "collect from the Management Activity API and deliver to the outputs",
     mf_cmd_run_usage},
    {"status", mf_cmd_status,
     "show what was collected per tenant and content type, gaps, errors",
     mf_cmd_status_usage},
    {"preflight", mf_cmd_preflight,
     "check credentials, permissions, audit logging, clock and TLS per tenant",
     mf_cmd_preflight_usage},
    {"import", mf_cmd_import,
     "send exported records (CSV, JSON, NDJSON, blobs) through the outputs",
     mf_cmd_import_usage},
    {"report", mf_cmd_report,
     "write the security and governance review (html, md, json) of a period",
     mf_cmd_report_usage},
    {"help", cmd_help, "show help for a command", help_usage},
    {"help-config", cmd_help_config, "print the configuration reference",
     help_config_usage},
    {"version", cmd_version, "print the version", version_usage},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
print_main_usage(FILE *f)
{
    size_t i;

    fprintf(f,
            "Usage: m365fwd <command> [options] [args]\n"
            "       m365fwd --help | --version\n"
            "       m365fwd help <command>\n"
            "\n"
            "Pull Microsoft 365 audit records and normalize them to OCSF "
            "1.8.0 or ECS\nwith risk tags for the customer's side of the "
            "shared-responsibility model.\n"
            "\n"
            "Commands:\n");
    for (i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nRun 'm365fwd <command> --help' for the options of a "
               "command.\n");
}

const struct mf_cmd *
mf_cli_find(const char *name)
{
    size_t i;

    for (i = 0; name && i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int
mf_cli_usage_error(const struct mf_cmd *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "m365fwd%s%s: ", cmd ? " " : "", cmd ? cmd->name : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n\n", stderr);
    if (cmd)
        fputs(cmd->usage, stderr);
    else
        print_main_usage(stderr);
    return MF_EXIT_USAGE;
}

int
mf_cli_help(const struct mf_cmd *cmd)
{
    fputs(cmd->usage, stdout);
    return fflush(stdout) == 0 ? MF_EXIT_OK : MF_EXIT_REJECTED;
}

int
mf_cli_getopt(struct mf_cli_opts *o, int argc, char **argv)
{
    int ch;

    if (!o->started) {
        o->started = true;
        optind = 1;
        opterr = 0;
    }
    while ((ch = getopt_long(argc, argv, o->shortopts, o->longopts, NULL)) == 'c')
        o->config = optarg;
    switch (ch) {
    case 'h':
        o->rc = mf_cli_help(o->cmd);
        return -1;
    case '?':
        o->rc = mf_cli_usage_error(o->cmd, "unknown option '%s'", argv[optind - 1]);
        return -1;
    case -1:
        break;
    default:
        return ch;
    }
    if ((o->flags & MF_CLI_NO_ARGS) && optind < argc) {
        o->rc = mf_cli_usage_error(o->cmd, "unexpected argument '%s'", argv[optind]);
        return -1;
    }
    if ((o->flags & MF_CLI_NEED_CONFIG) && !o->config) {
        o->rc = mf_cli_usage_error(o->cmd, "-c FILE is required");
        return -1;
    }
    return 0;
}

/* Standard handling of a subcommand without options of its own: returns
 * the index of the first argument, or -1 with *rc set (help or usage). */
static int
no_options(const struct mf_cmd *cmd, int argc, char **argv, int max_args,
           int *rc)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        if (c == 'h')
            *rc = mf_cli_help(cmd);
        else
            *rc = mf_cli_usage_error(cmd, "unknown option '%s'",
                                     argv[optind - 1]);
        return -1;
    }
    if (argc - optind > max_args) {
        *rc = mf_cli_usage_error(cmd, "unexpected argument '%s'",
                                 argv[optind + max_args]);
        return -1;
    }
    return optind;
}

static int
cmd_help(int argc, char **argv)
{
    const struct mf_cmd *self = mf_cli_find("help"), *cmd;
    int rc = MF_EXIT_OK;
    int i = no_options(self, argc, argv, 1, &rc);

    if (i < 0)
        return rc;
    if (i >= argc) {
        print_main_usage(stdout);
        return fflush(stdout) == 0 ? MF_EXIT_OK : MF_EXIT_REJECTED;
    }
    if (!strcmp(argv[i], "config"))
        return print_config_reference();
    cmd = mf_cli_find(argv[i]);
    if (!cmd)
        return mf_cli_usage_error(NULL, "unknown command '%s'", argv[i]);
    return mf_cli_help(cmd);
}

static int
cmd_version(int argc, char **argv)
{
    const struct mf_cmd *self = mf_cli_find("version");
    int rc = MF_EXIT_OK;
    int i = no_options(self, argc, argv, 0, &rc);

    if (i < 0)
        return rc;
    printf("m365fwd %s\n", MF_VERSION);
    return fflush(stdout) == 0 ? MF_EXIT_OK : MF_EXIT_REJECTED;
}

int
mf_cli_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const struct mf_cmd *cmd;
    int c;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            print_main_usage(stdout);
            return fflush(stdout) == 0 ? MF_EXIT_OK : MF_EXIT_REJECTED;
        case 'V':
            return cmd_version(1, (char *[]){"version", NULL});
        default:
            return mf_cli_usage_error(NULL, "unknown option '%s'",
                                      argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return mf_cli_usage_error(NULL, "no command given");
    cmd = mf_cli_find(argv[optind]);
    if (!cmd)
        return mf_cli_usage_error(NULL, "unknown command '%s'",
                                  argv[optind]);
    return cmd->fn(argc - optind, argv + optind);
}
