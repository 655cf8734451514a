/* `mvm exec` arguments -> struct mvm_exec_opts; see cli.h. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"

const char mvm_exec_usage[] =
    "Usage: mvm exec [OPTIONS] ID|NAME [--] [CMD [ARGS...]]\n"
    "\n"
    "Runs CMD (default: your login shell) in a running session's VM, as the\n"
    "session's user, in its working directory, with your terminal attached, and\n"
    "exits with CMD's status.  The session's own command goes on undisturbed;\n"
    "CMD is killed when mvm exec ends or the session does.  Only the session's\n"
    "user (or root) may exec into it; sudo is not needed.\n"
    "\n"
    "Options:\n"
    "  --env NAME[=VALUE]   set NAME for CMD; NAME alone copies your value; repeatable\n"
    "  --root               run CMD as root in the guest\n"
    "  -t, --tty            give CMD a terminal even when stdin/stdout are not terminals\n"
    "  -T, --no-tty         never give CMD a terminal (separate stdout and stderr)\n"
    "  -h, --help           show this help\n"
    "\n"
    "With a terminal, ~. after Enter kills CMD (the session keeps running), ~? shows\n"
    "the escapes.\n";

enum { OPT_ENV = 256, OPT_ROOT };

static const struct option exec_options[] = {
    {"env", required_argument, NULL, OPT_ENV}, {"root", no_argument, NULL, OPT_ROOT},
    {"tty", no_argument, NULL, 't'},           {"no-tty", no_argument, NULL, 'T'},
    {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
};

void mvm_exec_opts_clear(struct mvm_exec_opts *o)
{
    for (size_t i = 0; i < o->nenv; i++) {
        free(o->env[i].name);
        free(o->env[i].value);
    }
    free(o->env);
    memset(o, 0, sizeof *o);
}

static int option(int c, const char *arg, struct mvm_exec_opts *o, struct mvm_error **err)
{
    switch (c) {
    case OPT_ENV:
        return mvm_cli_add_env(&o->env, &o->nenv, arg, err);
    case OPT_ROOT:
        o->root = true;
        return 0;
    case 't':
        o->tty = MVM_TTY_ALWAYS;
        return 0;
    case 'T':
        o->tty = MVM_TTY_NEVER;
        return 0;
    default: /* 'h' */
        o->help = true;
        return 0;
    }
}

/* Options up to the next non-option; true when "--" ended them. */
static int parse_options(int argc, char **argv, struct mvm_exec_opts *o, bool *dashdash,
                         struct mvm_error **err)
{
    for (;;) {
        int idx = optind ? optind : 1;
        int c = getopt_long(argc, argv, "+:tTh", exec_options, NULL);
        if (c == -1)
            break;
        if (c == ':' || c == '?')
            return mvm_cli_getopt_error("exec", c, idx < argc ? argv[idx] : "?", err);
        if (option(c, optarg, o, err) < 0)
            return -1;
    }
    /* getopt eats a "--" that ends the options. */
    *dashdash = optind > 1 && strcmp(argv[optind - 1], "--") == 0;
    return 0;
}

/* Options may come before and after the session: mvm exec [OPTIONS]
 * ID|NAME [OPTIONS] [--] CMD. */
int mvm_cli_parse_exec(int argc, char **argv, struct mvm_exec_opts *o, struct mvm_error **err)
{
    memset(o, 0, sizeof *o);
    optind = 0; /* full reset: the tests parse many command lines */
    opterr = 0;
    bool dashdash = false;
    if (parse_options(argc, argv, o, &dashdash, err) < 0)
        return -1;
    if (o->help)
        return 0;
    if (optind >= argc)
        return mvm_error_set(err, 0,
                             "mvm exec: which session? give its ID or NAME (see mvm ps), then "
                             "the command");
    o->session = argv[optind++];
    if (!dashdash && optind < argc) {
        if (parse_options(argc, argv, o, &dashdash, err) < 0)
            return -1;
        if (o->help)
            return 0;
    }
    o->argc = argc - optind;
    o->argv = o->argc > 0 ? argv + optind : NULL;
    return 0;
}

const char mvm_attach_usage[] =
    "Usage: mvm attach ID|NAME\n"
    "\n"
    "Connects your terminal to the command of a session started with mvm run\n"
    "--detach; one client at a time.  After Enter, ~d detaches (the command runs\n"
    "on), ~. kills the command (which ends the session), ~? shows the escapes.\n"
    "mvm attach exits 0 when you detach, else with the command's status.  Only\n"
    "the session's user (or root) may attach; sudo is not needed.\n"
    "\n"
    "Options:\n"
    "  -h, --help   show this help\n";

int mvm_cli_parse_attach(int argc, char **argv, const char **session, struct mvm_error **err)
{
    *session = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            *session = NULL;
            return 0;
        }
        if (*session != NULL || argv[i][0] == '-')
            return mvm_error_set(
                err, 0, "mvm attach: unexpected argument '%s' (see mvm attach --help)", argv[i]);
        *session = argv[i];
    }
    if (*session == NULL)
        return mvm_error_set(err, 0, "mvm attach: which session? give its ID or NAME (see mvm ps)");
    return 0;
}
