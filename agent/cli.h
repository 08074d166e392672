/* cli.h - command-line dispatcher: `m365fwd <command> [options]`.
 *
 * Commands are a table ({name, fn, one-line help, usage}); adding one is a
 * row in cli.c plus its mf_cmd_<name>() function. Exit codes are part of the
 * public contract. */
#ifndef MF_CLI_H
#define MF_CLI_H

#include <stdbool.h>

enum mf_exit {
    MF_EXIT_OK = 0,         /* everything done */
    MF_EXIT_REJECTED = 1,   /* some input rejected or not readable */
    MF_EXIT_USAGE = 2,      /* bad command line or tables */
};

struct mf_cmd {
    const char *name;
    int (*fn)(int argc, char **argv);   /* argv[0] = command name */
    const char *help;                   /* one line */
    const char *usage;                  /* full text for --help */
};

/* main() of the program. */
int mf_cli_main(int argc, char **argv);

/* The command named name, or NULL. */
const struct mf_cmd *mf_cli_find(const char *name);

/* Print "m365fwd <cmd>: <message>" and the command's usage on stderr;
 * returns MF_EXIT_USAGE. */
int mf_cli_usage_error(const struct mf_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Print cmd's usage on stdout; returns MF_EXIT_OK. */
int mf_cli_help(const struct mf_cmd *cmd);

/* The options every command with a configuration shares, parsed with
 * mf_cli_getopt(). */
enum {
    MF_CLI_NEED_CONFIG = 1 << 0,    /* "-c FILE is required" */
    MF_CLI_NO_ARGS = 1 << 1,        /* no argument after the options */
};

struct option;
struct mf_cli_opts {
    const struct mf_cmd *cmd;
    const char *shortopts;          /* getopt_long's, with "c:" and "h" */
    const struct option *longopts;  /* with "config" ('c') and "help" ('h') */
    unsigned flags;                 /* MF_CLI_* */
    const char *config;             /* out: -c FILE, NULL when not given */
    int rc;                         /* out: the exit code, when done */
    bool started;                   /* (mf_cli_getopt's) */
};

/* getopt_long over argv (from argv[1], getopt's errors off) doing the
 * options all commands share: -c/--config FILE (o->config), -h/--help
 * (the usage on stdout), an unknown option (a usage error), and after the
 * last option the checks of o->flags. Call it in a loop: > 0 is one of
 * the command's own options (optarg set), 0 the end of the options (the
 * arguments from optind), -1 the end of the command with o->rc its exit
 * code. */
int mf_cli_getopt(struct mf_cli_opts *o, int argc, char **argv);

struct mf_config;
struct mf_normalizer;
/* Load a configuration file for a command; errors (all of them, with
 * file:line) go to stderr. With norm, *norm is the normalizer of its
 * `normalizer:` section and the tag ids named in output filters are
 * checked against its catalogue. NULL on error. */
struct mf_config *mf_cli_load_config(const char *path, unsigned flags,
                                     struct mf_normalizer **norm);

/* commands */
int mf_cmd_normalize(int argc, char **argv);
extern const char mf_cmd_normalize_usage[];
int mf_cmd_run(int argc, char **argv);
extern const char mf_cmd_run_usage[];
int mf_cmd_status(int argc, char **argv);
extern const char mf_cmd_status_usage[];
int mf_cmd_import(int argc, char **argv);
extern const char mf_cmd_import_usage[];
int mf_cmd_report(int argc, char **argv);
extern const char mf_cmd_report_usage[];

#endif
