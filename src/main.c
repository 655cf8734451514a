/* mvm: command dispatch.  The only place that exits. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"
#include "cli.h"
#include "disk.h"
#include "dnsrelay.h"
#include "doctor.h"
#include "error.h"
#include "gw.h"
#include "image.h"
#include "net.h"
#include "portrelay.h"
#include "session.h"
#include "sessiondir.h"
#include "user.h"
#include "util.h"

static bool is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

static int show_config(const struct mvm_run_opts *o)
{
    cleanup_free char *text = mvm_cli_config_text(o);
    fputs(text, stdout);
    return 0;
}

/* Config files first, the command line on top; then `what` with the
 * result (--help shows `usage` instead). */
static int with_run_opts(int argc, char **argv, const char *usage,
                         int (*what)(const struct mvm_run_opts *o))
{
    struct mvm_run_opts o;
    mvm_run_opts_init(&o);
    cleanup_error struct mvm_error *err = NULL;
    int rc = 0;
    if (mvm_config_load_defaults(&o, &err) < 0 || mvm_cli_parse_run(argc, argv, &o, &err) < 0) {
        mvm_error_print(err);
        rc = 125;
    } else if (o.help) {
        fputs(usage, stdout);
    } else {
        rc = what(&o);
    }
    mvm_run_opts_clear(&o);
    return rc;
}

static const char config_usage[] =
    "Usage: mvm config [RUN OPTIONS]\n"
    "Print the settings `mvm run` would use (with these options), each with where\n"
    "it came from: /etc/mvm/config, ~/.config/mvm/config, the command line or the\n"
    "default.  The output is itself a config file.\n";

static int host_teardown(void *unused, struct mvm_error **err)
{
    (void)unused;
    return mvm_session_host_teardown(true, err);
}

/* With no session left, what they share goes; --all also puts IPv4
 * forwarding back (only then: another tool may rely on it by now). */
static int cleanup_host(bool all, struct mvm_error **err)
{
    int last = mvm_sessiondir_if_last(MVM_RUN_DIR, host_teardown, NULL, err);
    if (last < 0 || !all)
        return last < 0 ? -1 : 0;
    if (last == 0)
        return mvm_error_set(err, 0,
                             "--all: a session is still running (see mvm ps); stop it first");
    if (mvm_net_forwarding_restore(MVM_RUN_DIR "/ip_forward.orig", err) < 0)
        return -1;
    printf("removed the host table inet mvm; IPv4 forwarding is as it was before mvm\n");
    return 0;
}

static int cmd_cleanup(int argc, char **argv)
{
    if (argc > 1 && is_help(argv[1])) {
        puts("Usage: mvm cleanup [--cache] [--all]\n\nRemoves the session directories "
             "(in " MVM_RUN_DIR
             ") and cgroups of sessions\nwhose mvm process no longer exists, e.g. after kill -9, "
             "and, when no session\nis left, the host table inet mvm (the last session out "
             "removes it itself).\n"
             "  --cache   also empty " MVM_CACHE_DIR " (extracted kernels, initramfs images;\n"
             "            rebuilt on the next run)\n"
             "  --all     also restore IPv4 forwarding to what it was before mvm's first\n"
             "            session (no session may run)");
        return 0;
    }
    bool cache = false, all = false;
    for (int i = 1; i < argc; i++) {
        bool *flag = strcmp(argv[i], "--cache") == 0 ? &cache
                     : strcmp(argv[i], "--all") == 0 ? &all
                                                     : NULL;
        if (flag == NULL) {
            fprintf(stderr, "mvm cleanup: unexpected argument '%s' (see mvm cleanup --help)\n",
                    argv[i]);
            return 125;
        }
        *flag = true;
    }
    if (geteuid() != 0) {
        fputs("mvm: mvm cleanup must run as root: use sudo mvm cleanup\n", stderr);
        return 125;
    }
    cleanup_error struct mvm_error *err = NULL;
    int n = mvm_sessiondir_cleanup(MVM_RUN_DIR, &err);
    if (n < 0) {
        mvm_error_print(err);
        return 125;
    }
    int cg = mvm_cgroup_sweep("/sys/fs/cgroup", MVM_RUN_DIR);
    mvm_net_sweep_holes();
    mvm_net_wg_sweep(MVM_RUN_DIR);
    /* Scratch disks are unlinked at once; only a crash in between leaves one. */
    int sc = mvm_scratch_cleanup(MVM_SCRATCH_DIR, NULL);
    int ib = mvm_image_sweep(MVM_IMAGES_DIR, NULL);
    mvm_ps_prune();
    printf("removed %d stale session director%s", n, n == 1 ? "y" : "ies");
    if (cg > 0)
        printf(" and %d cgroup%s", cg, cg == 1 ? "" : "s");
    if (sc > 0)
        printf(" and %d scratch disk%s", sc, sc == 1 ? "" : "s");
    if (ib > 0)
        printf(" and %d interrupted image build%s", ib, ib == 1 ? "" : "s");
    printf("\n");
    if (cleanup_host(all, &err) < 0) {
        mvm_error_print(err);
        return 125;
    }
    if (cache) {
        if (remove_tree(MVM_CACHE_DIR) < 0) {
            fprintf(stderr, "mvm: removing %s: %s\n", MVM_CACHE_DIR, strerror(errno));
            return 125;
        }
        printf("emptied %s\n", MVM_CACHE_DIR);
    }
    return 0;
}

static const char volume_usage[] =
    "Usage: mvm volume ls\n"
    "       mvm volume rm NAME\n"
    "\n"
    "Your persistent volumes (mvm run --volume): ext4 disks that outlive the\n"
    "session, seen only by you (through sudo: the user who ran sudo), kept in\n"
    "  " MVM_VOLUME_DIR "/UID/.  Run as root: use sudo.\n"
    "\n"
    "  ls        list them: size, space used on the host, last use, and whether\n"
    "            a session holds one (in use) or not (idle)\n"
    "  rm NAME   delete volume NAME and all that is on it (refused while a\n"
    "            session uses it)\n";

static int volume_do(const char *sub, const char *name)
{
    if (geteuid() != 0) {
        fprintf(stderr, "mvm: mvm volume must run as root: use sudo mvm volume %s\n", sub);
        return 125;
    }
    cleanup_error struct mvm_error *err = NULL;
    struct mvm_user u;
    int rc = mvm_user_invoking(&u, &err);
    if (rc == 0 && name == NULL)
        rc = mvm_volume_list(MVM_VOLUME_DIR, u.uid, stdout, &err);
    else if (rc == 0)
        rc = mvm_volume_remove(MVM_VOLUME_DIR, u.uid, name, &err);
    mvm_user_clear(&u);
    if (rc < 0) {
        mvm_error_print(err);
        return 125;
    }
    if (name != NULL)
        printf("removed volume %s\n", name);
    return 0;
}

static int cmd_volume(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (is_help(argv[i])) {
            fputs(volume_usage, stdout);
            return 0;
        }
    const char *sub = argc > 1 ? argv[1] : "";
    int want = strcmp(sub, "ls") == 0 ? 2 : strcmp(sub, "rm") == 0 ? 3 : 0;
    if (want == 0 && argc > 1) {
        fprintf(stderr, "mvm volume: unknown command '%s' (see mvm volume --help)\n", sub);
        return 125;
    }
    if (want == 0) {
        fputs(volume_usage, stderr);
        return 125;
    }
    if (argc != want) {
        fprintf(stderr, "mvm volume %s: %s (see mvm volume --help)\n", sub,
                argc < want ? "missing the volume NAME" : "too many arguments");
        return 125;
    }
    return volume_do(sub, want == 3 ? argv[2] : NULL);
}

/* A closed 0, 1 or 2 would be handed to the first descriptor mvm opens
 * (a socket taken for stdin, a kept fd overwritten by a later dup2):
 * fill the gaps with /dev/null before anything else is opened. */
static int open_stdio(void)
{
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        int n = open("/dev/null", O_RDWR);
        if (n != fd) {
            if (n >= 0)
                close(n);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (open_stdio() < 0)
        return 125;
    if (argc < 2) {
        fputs(mvm_usage, stderr);
        return 125;
    }
    const char *cmd = argv[1];
    /* The jailed helpers: mvm started by itself, never by a user. */
    if (strcmp(cmd, "__dns-relay") == 0)
        return mvm_dns_relay_main(argc - 1, argv + 1);
    if (strcmp(cmd, "__port-relay") == 0)
        return mvm_port_relay_main(argc - 1, argv + 1);
    if (strcmp(cmd, "__api-gateway") == 0)
        return mvm_gw_main(argc - 1, argv + 1);
    if (strcmp(cmd, "run") == 0)
        return with_run_opts(argc - 1, argv + 1, mvm_run_usage, mvm_session_run);
    if (strcmp(cmd, "ps") == 0)
        return mvm_ps_main(argc - 1, argv + 1);
    if (strcmp(cmd, "stop") == 0)
        return mvm_stop_main(argc - 1, argv + 1);
    if (strcmp(cmd, "exec") == 0)
        return mvm_exec_main(argc - 1, argv + 1);
    if (strcmp(cmd, "attach") == 0)
        return mvm_attach_main(argc - 1, argv + 1);
    if (strcmp(cmd, "cleanup") == 0)
        return cmd_cleanup(argc - 1, argv + 1);
    if (strcmp(cmd, "config") == 0)
        return with_run_opts(argc - 1, argv + 1, config_usage, show_config);
    if (strcmp(cmd, "doctor") == 0)
        return mvm_doctor_main(argc - 1, argv + 1);
    if (strcmp(cmd, "volume") == 0)
        return cmd_volume(argc - 1, argv + 1);
    if (strcmp(cmd, "image") == 0)
        return mvm_image_main(argc - 1, argv + 1);
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(mvm_usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        puts("mvm " MVM_VERSION);
        return 0;
    }
    fprintf(stderr, "mvm: unknown command '%s' (see mvm --help)\n", cmd);
    return 125;
}
