/* `mvm image`: build, ls, inspect, rm.  The build's host steps are
 * disk/'s (imagebuild.c); the provisioning script runs here, in a
 * session of this process on the image itself, booted read-write. */
#include "image.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "disk.h"
#include "session.h"
#include "sessiondir.h"
#include "user.h"
#include "util.h"

static const char image_usage[] =
    "Usage: mvm image build NAME [--from debian:bookworm|debian:trixie]\n"
    "                       [--packages LIST] [--script FILE] [--force] [--refresh]\n"
    "       mvm image ls\n"
    "       mvm image inspect NAME\n"
    "       mvm image rm NAME\n"
    "\n"
    "Base images for mvm run --image NAME, kept in " MVM_IMAGES_DIR "\n"
    "(NAME.qcow2 and NAME.json, its recipe and digest).  Run as root: use sudo.\n"
    "\n"
    "  build NAME   bootstrap Debian with mmdebstrap (variant " MVM_IMAGE_VARIANT
    ") from the host's\n"
    "               apt mirror into an ext4 image, run --script in a throwaway VM\n"
    "               booted on it, and store it as NAME (lowercase letters, digits,\n"
    "               '.', '_', '-')\n"
    "    --from DIST        debian:bookworm (default) or debian:trixie\n"
    "    --packages LIST    also install these packages (a,b,c; repeatable)\n"
    "    --script FILE      a script (yours: read with your rights) run as root in\n"
    "                       the VM, with the network of mvm run's default --net\n"
    "                       isolated; a non-zero exit fails the build; its text is\n"
    "                       kept in the recipe, which every user can read\n"
    "    --net MODE         the VM's network, as mvm run --net (default isolated)\n"
    "    --force            replace an existing image NAME (one you built)\n"
    "    --refresh          bootstrap anew even when mmdebstrap's tarball of the same\n"
    "                       recipe, kept in " MVM_CACHE_DIR " for a day, could be reused\n"
    "  ls           list the images: name, size, when built (UTC), what from\n"
    "  inspect NAME print image NAME's recipe and digest (JSON)\n"
    "  rm NAME      remove image NAME (running sessions keep their copy)\n"
    "  -h, --help   show this help\n";

static int fail(struct mvm_error *err)
{
    mvm_error_print(err);
    mvm_error_free(err);
    return 125;
}

static int need_root(const char *sub)
{
    if (geteuid() == 0)
        return 0;
    fprintf(stderr, "mvm: mvm image %s must run as root: use sudo mvm image %s\n", sub, sub);
    return -1;
}

/* Who typed sudo mvm image ...: SUDO_UID under sudo, else the caller. */
static long invoking_uid(void)
{
    const char *su = getenv("SUDO_UID");
    char *end = NULL;
    long uid = su && getuid() == 0 ? strtol(su, &end, 10) : -1;
    return end && *end == '\0' && uid >= 0 ? uid : (long)getuid();
}

/* Images are shared by name, so one user may not remove or replace
 * another's: the others would boot what replaced it.  Root (not through
 * sudo on someone's behalf) may. */
static int may_change(const char *name, const char *what, struct mvm_error **err)
{
    long me = invoking_uid(), builder = mvm_image_builder(MVM_IMAGES_DIR, name);
    if (me == 0 || builder < 0 || builder == me)
        return 0;
    return mvm_error_set(
        err, 0, "image %s was built by another user (uid %ld): only they or root may %s it", name,
        builder, what);
}

struct build_args {
    const char *name, *from, *script, *net;
    bool force, refresh;
};

static int parse_build(int argc, char **argv, struct build_args *a, struct mvm_image_recipe *r,
                       struct mvm_error **err)
{
    enum { OPT_FROM = 256, OPT_PACKAGES, OPT_SCRIPT, OPT_NET, OPT_FORCE, OPT_REFRESH };
    static const struct option opts[] = {
        {"from", required_argument, NULL, OPT_FROM},
        {"packages", required_argument, NULL, OPT_PACKAGES},
        {"script", required_argument, NULL, OPT_SCRIPT},
        {"net", required_argument, NULL, OPT_NET},
        {"force", no_argument, NULL, OPT_FORCE},
        {"refresh", no_argument, NULL, OPT_REFRESH},
        {NULL, 0, NULL, 0},
    };
    a->from = "debian:bookworm";
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == OPT_FROM)
            a->from = optarg;
        else if (c == OPT_PACKAGES && mvm_image_recipe_packages(r, optarg, err) < 0)
            return -1;
        else if (c == OPT_SCRIPT)
            a->script = optarg;
        else if (c == OPT_NET)
            a->net = optarg;
        else if (c == OPT_FORCE)
            a->force = true;
        else if (c == OPT_REFRESH)
            a->refresh = true;
        else if (c == '?')
            return mvm_error_set(
                err, 0,
                "mvm image build: bad option '%s', or its value missing (see mvm image --help)",
                argv[optind - 1]);
    }
    if (optind != argc - 1)
        return mvm_error_set(err, 0, "mvm image build: %s (see mvm image --help)",
                             optind == argc ? "missing the image NAME" : "give one NAME");
    a->name = argv[optind];
    r->name = a->name;
    return mvm_image_name_check(a->name, err) < 0 || mvm_image_recipe_from(r, a->from, err) < 0 ? -1
                                                                                                : 0;
}

/* The script, read with the invoking user's rights. */
static int read_script(const char *path, struct mvm_image_recipe *r, struct mvm_error **err)
{
    struct mvm_user u;
    if (mvm_user_invoking(&u, err) < 0)
        return -1;
    struct stat st;
    size_t len = 0;
    char *text = read_regular_as(u.uid, u.gid, path, MVM_IMAGE_SCRIPT_MAX, false, &st, &len);
    mvm_user_clear(&u);
    if (text == NULL && errno == EINVAL)
        return mvm_error_set(err, 0, "--script %s: not a regular file of at most 64 KiB", path);
    if (text == NULL)
        return mvm_error_set(err, errno, "--script %s", path);
    r->script = text;
    r->script_len = len;
    r->script_path = xstrdup(path);
    return 0;
}

/* The VM's settings: mvm run's config, then --net as mvm run reads it. */
static int vm_options(struct mvm_run_opts *o, const char *net, struct mvm_error **err)
{
    char *args[] = {"run", "--net", (char *)net, "true", NULL};
    if (mvm_config_load_defaults(o, err) < 0 ||
        (net && mvm_cli_parse_run(ARRAY_SIZE(args) - 1, args, o, err) < 0))
        return -1;
    return 0;
}

/* The provisioning VM: mvm run's defaults and config, on the image
 * itself (read-write, no overlay), guest root, no share; the script's
 * status is the session's. */
static int provision(const struct mvm_image_build *b, const char *net, struct mvm_error **err)
{
    struct mvm_run_opts o;
    mvm_run_opts_init(&o);
    if (vm_options(&o, net, err) < 0) {
        mvm_run_opts_clear(&o);
        return -1;
    }
    free(o.image);
    free(o.rootfs);
    o.image = xstrdup(b->raw);
    o.rootfs = NULL;
    o.boot_image = false; /* a config's boot = image is for sessions */
    o.image_writable = true;
    o.no_cwd = true;
    o.quiet = true;
    o.tty = MVM_TTY_NEVER;
    /* Removed before the script ends, so the image does not keep it. */
    static char *cmd[] = {
        "/bin/sh", "-c", MVM_IMAGE_SCRIPT_GUEST "; s=$?; rm -f " MVM_IMAGE_SCRIPT_GUEST "; exit $s",
        NULL};
    o.argv = cmd;
    o.argc = 3;
    /* The guest's user is root (--root), so the image gets no passwd line
     * or home of the invoking user, while the session stays the invoking
     * user's on the host: whatever the config names (a WireGuard file, a
     * key file, a kernel) is read with that user's rights, as for mvm run.
     * Its stdin is nothing. */
    o.root = true;
    int saved = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd >= 0)
        dup2(null_fd, STDIN_FILENO);
    mvm_image_build_progress(b, "running %s in a VM booted on the image", b->r->script_path);
    int rc = mvm_session_run(&o);
    if (saved >= 0) {
        dup2(saved, STDIN_FILENO);
        close(saved);
    }
    if (null_fd >= 0)
        close(null_fd);
    mvm_run_opts_clear(&o);
    if (rc == 125)
        return mvm_error_set(err, 0, "the provisioning VM for --script %s failed (see above)",
                             b->r->script_path);
    if (rc > 128 && rc < 128 + NSIG)
        return mvm_error_set(err, 0, "--script %s ended with status %d in the VM (signal %d, %s)",
                             b->r->script_path, rc, rc - 128, strsignal(rc - 128));
    if (rc != 0)
        return mvm_error_set(err, 0,
                             "--script %s exited with status %d in the VM; fix it and build again",
                             b->r->script_path, rc);
    return 0;
}

/* Signals stop the running step; the build directory goes in any case. */
static int block_signals(sigset_t *old)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &mask, old) < 0)
        return -1;
    return signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

static int build_steps(struct mvm_image_build *b, const char *net, struct mvm_error **err)
{
    if (mvm_image_build_begin(b, err) < 0 || mvm_image_build_bootstrap(b, err) < 0 ||
        mvm_image_build_filesystem(b, err) < 0)
        return -1;
    if (b->r->script_path && provision(b, net, err) < 0)
        return -1;
    /* A signal the VM's session did not take. */
    struct signalfd_siginfo si;
    if (read(b->sigfd, &si, sizeof si) == (ssize_t)sizeof si)
        return mvm_error_set(err, 0, "interrupted (%s)", strsignal((int)si.ssi_signo));
    return mvm_image_build_finish(b, err);
}

static int cmd_build(int argc, char **argv)
{
    struct build_args a = {0};
    struct mvm_image_recipe r = {0};
    cleanup_error struct mvm_error *err = NULL;
    int rc = parse_build(argc, argv, &a, &r, &err);
    if (rc == 0 && need_root("build") < 0) {
        mvm_image_recipe_clear(&r);
        return 125;
    }
    if (rc == 0 && a.force && mvm_image_exists(MVM_IMAGES_DIR, a.name))
        rc = may_change(a.name, "replace", &err);
    if (rc == 0 && !a.force && mvm_image_exists(MVM_IMAGES_DIR, a.name))
        rc = mvm_error_set(&err, 0,
                           "image %s exists; remove it first (sudo mvm image rm %s) or replace "
                           "it (--force)",
                           a.name, a.name);
    if (rc == 0 && a.script)
        rc = read_script(a.script, &r, &err);
    if (rc == 0 && a.script) { /* --net and the config refused now, not after mmdebstrap */
        struct mvm_run_opts o;
        mvm_run_opts_init(&o);
        rc = vm_options(&o, a.net, &err);
        mvm_run_opts_clear(&o);
    }
    if (rc < 0) {
        mvm_image_recipe_clear(&r);
        return fail(steal_pointer(&err));
    }
    r.mirror = mvm_image_host_mirror();
    sigset_t old;
    struct mvm_image_build b = {.r = &r,
                                .store = MVM_IMAGES_DIR,
                                .cache = MVM_CACHE_DIR,
                                .refresh = a.refresh,
                                .force = a.force,
                                .builder_uid = invoking_uid(),
                                .lockfd = -1,
                                .dirfd = -1,
                                .sigfd = block_signals(&old)};
    if (b.sigfd < 0)
        rc = mvm_error_set(&err, errno, "blocking signals");
    else
        rc = build_steps(&b, a.net, &err);
    if (rc == 0)
        mvm_image_build_progress(&b, "done: sudo mvm run --image %s -- CMD", r.name);
    mvm_image_build_end(&b);
    /* Taken now, so that unblocking them does not kill mvm before it
     * reports. */
    struct signalfd_siginfo si;
    while (b.sigfd >= 0 && read(b.sigfd, &si, sizeof si) == (ssize_t)sizeof si)
        ;
    if (b.sigfd >= 0)
        close(b.sigfd);
    sigprocmask(SIG_SETMASK, &old, NULL);
    mvm_image_recipe_clear(&r);
    if (rc < 0) {
        mvm_error_wrap(&err, "mvm image build %s", a.name);
        return fail(steal_pointer(&err));
    }
    return 0;
}

int mvm_image_main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(image_usage, stdout);
            return 0;
        }
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "build") == 0)
        return cmd_build(argc - 1, argv + 1);
    int want = strcmp(sub, "ls") == 0                                  ? 2
               : strcmp(sub, "rm") == 0 || strcmp(sub, "inspect") == 0 ? 3
                                                                       : 0;
    if (want == 0) {
        if (argc > 1)
            fprintf(stderr, "mvm image: unknown command '%s' (see mvm image --help)\n", sub);
        else
            fputs(image_usage, stderr);
        return 125;
    }
    if (argc != want) {
        fprintf(stderr, "mvm image %s: %s (see mvm image --help)\n", sub,
                argc < want ? "missing the image NAME" : "too many arguments");
        return 125;
    }
    /* The store is world-readable: only rm changes it. */
    if (strcmp(sub, "rm") == 0 && need_root(sub) < 0)
        return 125;
    cleanup_error struct mvm_error *err = NULL;
    int rc = want == 2                ? mvm_image_list(MVM_IMAGES_DIR, stdout, &err)
             : strcmp(sub, "rm") == 0 ? (may_change(argv[2], "remove", &err) < 0
                                             ? -1
                                             : mvm_image_remove(MVM_IMAGES_DIR, argv[2], &err))
                                      : mvm_image_inspect(MVM_IMAGES_DIR, argv[2], stdout, &err);
    if (rc < 0)
        return fail(steal_pointer(&err));
    if (strcmp(sub, "rm") == 0)
        printf("removed image %s\n", argv[2]);
    return 0;
}
