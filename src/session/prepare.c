/* Everything a session decides before it creates anything: who runs,
 * what is shared, which kernel and accelerator, the environment.  Any
 * failure here leaves nothing behind (the caches are written atomically). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "accel.h"
#include "initramfs.h"
#include "proto.h"
#include "session-int.h"
#include "session.h"
#include "util.h"

extern char **environ;

static void push_env(char ***env, size_t *nenv, char *entry)
{
    *env = xrealloc(*env, (*nenv + 1) * sizeof **env);
    (*env)[(*nenv)++] = entry;
}

/* Each argument and variable travels as one control-protocol frame. */
static int check_sizes(char *const *argv, int argc, char *const *env, size_t nenv,
                       struct mvm_error **err)
{
    size_t total = 0;
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(argv[i]);
        total += n;
        if (n > MVM_PROTO_MAX_PAYLOAD)
            return mvm_error_set(err, 0, "argument %d of the command is longer than %d KiB", i + 1,
                                 MVM_PROTO_MAX_PAYLOAD / 1024);
    }
    for (size_t i = 0; i < nenv; i++) {
        size_t n = strlen(env[i]);
        total += n;
        if (n > MVM_PROTO_MAX_PAYLOAD)
            return mvm_error_set(err, 0, "environment variable %.*s is longer than %d KiB",
                                 (int)strcspn(env[i], "="), env[i], MVM_PROTO_MAX_PAYLOAD / 1024);
    }
    if ((size_t)argc + nenv > MVM_COMMAND_MAX_STRINGS)
        return mvm_error_set(err, 0,
                             "the command has %zu arguments and environment variables; at most %d",
                             (size_t)argc + nenv, MVM_COMMAND_MAX_STRINGS);
    if (total > MVM_COMMAND_MAX_BYTES)
        return mvm_error_set(err, 0, "the command line and environment exceed %d MiB",
                             MVM_COMMAND_MAX_BYTES >> 20);
    return 0;
}

/* TERM, LANG and LC_* follow the user; --env adds to them; nothing else
 * of the host environment reaches the guest. */
int session_build_env(const struct mvm_env_opt *opts, size_t nopts, char *const *argv, int argc,
                      char ***env, size_t *nenv, struct mvm_error **err)
{
    for (char **e = environ; *e; e++)
        if (str_has_prefix(*e, "TERM=") || str_has_prefix(*e, "LANG=") || str_has_prefix(*e, "LC_"))
            push_env(env, nenv, xstrdup(*e));
    for (size_t i = 0; i < nopts; i++) {
        const struct mvm_env_opt *e = &opts[i];
        const char *v = e->value ? e->value : getenv(e->name);
        if (v == NULL)
            return mvm_error_set(err, 0,
                                 "--env %s: %s is not set in mvm's environment (sudo resets the "
                                 "environment: use sudo --preserve-env=%s, or --env %s=VALUE)",
                                 e->name, e->name, e->name, e->name);
        push_env(env, nenv, xasprintf("%s=%s", e->name, v));
    }
    return check_sizes(argv, argc, *env, *nenv, err);
}

static int resolve_dir(const char *what, const char *path, char **out, struct mvm_error **err)
{
    char buf[PATH_MAX];
    struct stat st;
    if (realpath(path, buf) == NULL || stat(buf, &st) < 0)
        return mvm_error_set(err, errno, "%s %s", what, path);
    if (!S_ISDIR(st.st_mode))
        return mvm_error_set(err, ENOTDIR, "%s %s", what, path);
    *out = xstrdup(buf);
    return 0;
}

int session_add_share(struct session *s, const char *host, const char *guest, bool ro,
                      struct mvm_error **err)
{
    if (s->nshares == MAX_SHARES)
        return mvm_error_set(err, 0, "too many shares (at most %d)", MAX_SHARES - 2);
    char tag[16];
    snprintf(tag, sizeof tag, "s%zu", s->nshares);
    mvm_share_init(&s->shares[s->nshares++], host, guest, ro, tag);
    return 0;
}

static int plan_shares(struct session *s, struct mvm_error **err)
{
    char buf[PATH_MAX];
    if (getcwd(buf, sizeof buf) == NULL)
        return mvm_error_set(err, errno, "the current directory");
    s->cwd = xstrdup(buf);
    /* The guest's root is the host's /usr, read-only, share 0 -- unless
     * an image brings its own userland. */
    bool image = s->image.fd >= 0, own = image || s->o->rootfs;
    if (s->o->rootfs) {
        /* --rootfs: share 0 is the whole tree, read-only, its root-owned
         * files root's in the guest as /usr's are. */
        cleanup_free char *tree = NULL;
        if (resolve_dir("--rootfs", s->o->rootfs, &tree, err) < 0 ||
            mvm_share_check_access(tree, true, s->user.uid, s->user.gid, err) < 0)
            return -1;
        if (strcmp(tree, "/") == 0)
            return mvm_error_set(err, 0, "--rootfs /: the host's own root is not a guest's");
        mvm_share_init(&s->shares[s->nshares], tree, "/", true, "rootfs");
        s->shares[s->nshares++].system = true;
    } else if (!image) {
        mvm_share_init(&s->shares[s->nshares], "/usr", "/usr", true, "usr");
        s->shares[s->nshares].submounts = true;
        s->shares[s->nshares++].system = true;
    }
    /* Guest root may install packages into its /usr overlay: dpkg needs
     * its database, the host's, under an overlay of the same kind. */
    if (!own && s->o->root && s->o->disk_mib > 0 && access("/var/lib/dpkg/status", F_OK) == 0) {
        mvm_share_init(&s->shares[s->nshares], "/var/lib/dpkg", "/var/lib/dpkg", true, "dpkg");
        s->shares[s->nshares].overlay = true;
        s->shares[s->nshares++].system = true;
    }
    if (!s->o->no_cwd) {
        size_t n;
        char **homes = mvm_user_homes(s->user.home, &n);
        cleanup_free char *note = NULL;
        int rc = mvm_share_auto_dir(s->cwd, s->user.uid, homes, n, &s->share_dir, &note, err);
        mvm_strv_free(homes);
        if (note)
            session_notice(s, "%s", note);
        if (rc < 0 || session_add_share(s, s->share_dir, s->share_dir, false, err) < 0)
            return -1;
    }
    for (size_t i = 0; i < s->o->nshares; i++) {
        const struct mvm_share_opt *o = &s->o->shares[i];
        cleanup_free char *host = NULL;
        if (resolve_dir("--share", o->host, &host, err) < 0)
            return -1;
        if (!o->ro && !o->overlay && !s->o->force_share) {
            size_t n;
            char **homes = mvm_user_homes(s->user.home, &n);
            int rc = mvm_share_check_rw(host, homes, n, err);
            mvm_strv_free(homes);
            if (rc < 0)
                return -1;
        }
        if (session_add_share(s, host, o->guest ? o->guest : host, o->ro || o->overlay, err) < 0)
            return -1;
        s->shares[s->nshares - 1].submounts = o->submounts;
        s->shares[s->nshares - 1].overlay = o->overlay;
    }
    /* An image's commands are its own, found on its PATH in the guest. */
    if (!own && session_resolve_program(s, err) < 0)
        return -1;
    for (size_t i = session_first_share(s); i < s->nshares; i++)
        if (mvm_share_check_access(s->shares[i].host, s->shares[i].ro, s->user.uid, s->user.gid,
                                   err) < 0)
            return -1;
    s->guest_cwd = xstrdup(s->share_dir ? s->cwd : s->guest_home);
    /* The shares are known: what they may take of the host's disk. */
    return session_guard_open(s, err);
}

static int plan_user(struct session *s, struct mvm_error **err)
{
    if (s->o->name && mvm_session_name_check(s->o->name, err) < 0)
        return -1;
    if (mvm_user_invoking(&s->user, err) < 0)
        return -1;
    if (s->o->root)
        s->guest_home = xstrdup("/root");
    else if (strcmp(s->user.home, "/") == 0)
        s->guest_home = xasprintf("/home/%s", s->user.name);
    else
        s->guest_home = xstrdup(s->user.home);
    return 0;
}

/* --volume: each opened (created on first use) and locked now, so a
 * second session on it is refused before anything boots. */
static int plan_volumes(struct session *s, struct mvm_error **err)
{
    if (s->o->nvolumes > MAX_DISKS)
        return mvm_error_set(err, 0, "--volume: at most %d volumes", MAX_DISKS);
    for (size_t i = 0; i < s->o->nvolumes; i++) {
        const struct mvm_volume_opt *v = &s->o->volumes[i];
        char *path =
            v->guest[0] == '~' ? xasprintf("%s%s", s->guest_home, v->guest + 1) : xstrdup(v->guest);
        s->disk_paths[s->ndisks] = path;
        for (size_t j = 0; j < s->ndisks; j++)
            if (strcmp(s->disk_paths[j], path) == 0)
                return mvm_error_set(err, 0, "--volume %s: %s has a volume already", v->name, path);
        if (mvm_volume_name_check(v->name, err) < 0 ||
            mvm_volume_open(MVM_VOLUME_DIR, s->user.uid, s->user.gid, v->name, v->size_mib,
                            &s->disks[s->ndisks], err) < 0)
            return mvm_error_wrap(err, "--volume %s", v->name);
        struct mvm_disk *d = &s->disks[s->ndisks++];
        uint64_t mib = d->size_bytes >> 20;
        if (d->created)
            session_notice(s, "created volume %s (%llu MiB) for %s", v->name,
                           (unsigned long long)mib, path);
        else if (v->size_mib && v->size_mib != mib)
            session_notice(s,
                           "volume %s keeps its size of %llu MiB (mvm volume rm %s, to make it "
                           "anew)",
                           v->name, (unsigned long long)mib, v->name);
    }
    return 0;
}

static int plan_accel(struct session *s, struct mvm_error **err)
{
    const char *why = NULL;
    switch (s->o->accel) {
    case MVM_ACCEL_TCG:
        s->kvm = false;
        return 0;
    case MVM_ACCEL_KVM:
        if (!mvm_kvm_usable(&why))
            return mvm_error_set(err, 0, "--accel kvm: %s; use --accel tcg (or auto)", why);
        s->kvm = true;
        return 0;
    default:
        s->kvm = mvm_kvm_usable(&why);
        if (!s->kvm)
            session_notice(s, "KVM is not usable (%s); using TCG emulation, which is slower", why);
        return 0;
    }
}

const char *session_qemu_path(void)
{
    static const char *const paths[] = {"/usr/bin/qemu-system-x86_64",
                                        "/usr/local/bin/qemu-system-x86_64",
                                        "/usr/libexec/qemu-kvm", NULL};
    for (size_t i = 0; paths[i]; i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

static int find_qemu(struct session *s, struct mvm_error **err)
{
    const char *path = session_qemu_path();
    if (path == NULL)
        return mvm_error_set(
            err, 0, "qemu-system-x86_64 not found; install it: apt-get install qemu-system-x86");
    s->qemu_bin = xstrdup(path);
    return 0;
}

size_t session_modules(bool microvm, bool net, bool disks, bool overlay,
                       const char *mods[SESSION_MAX_MODULES])
{
    size_t n = 0;
    mods[n++] = microvm ? "virtio_mmio" : "virtio_pci";
    mods[n++] = "virtio_console";
    mods[n++] = "virtiofs";
    /* The NIC's driver only when there is a NIC: it costs boot time. */
    if (net)
        mods[n++] = "virtio_net";
    if (disks) {
        mods[n++] = "virtio_blk";
        mods[n++] = "ext4";
        mods[n++] = "crc32c_generic"; /* ext4's checksums; nothing loads it on demand */
    }
    if (overlay)
        mods[n++] = "overlay"; /* the writable /usr, :overlay shares */
    return n;
}

static void progress(const char *what)
{
    cleanup_free char *line = xasprintf("mvm: %s...\n", what);
    write_all(STDERR_FILENO, line, strlen(line));
}

/* A kernel without modules (one made for mvm, contrib/kernel/) must build
 * in what mods would load; said once, naming what its config lacks, or
 * in general terms when it has no config mvm can read. */
static void check_builtin(struct session *s, const char *config, const char *const *mods, size_t n)
{
    const char *name = s->kernel.release ? s->kernel.release : s->kernel.image;
    if (config == NULL) {
        session_notice(s, "no modules found for kernel %s; its virtio drivers must be built in",
                       name);
        return;
    }
    struct buf missing = {0};
    if (mvm_kernel_config_missing(config, mods, n, &missing) > 0)
        session_notice(s, "no modules found for kernel %s, and its config does not build in %.*s",
                       name, (int)missing.len, missing.data);
    buf_free(&missing);
}

/* --boot image: the image's kernel (its vmlinux cached as a host
 * kernel's is) and initramfs; no modules, no initramfs of mvm's. */
static int plan_image_boot(struct session *s, struct mvm_error **err)
{
    s->kernel = (struct mvm_kernel){.image = xstrdup(s->boot_kernel)};
    if (mvm_kernel_vmlinux(&s->kernel, CACHE_DIR, s->o->quiet ? NULL : progress, &s->vmlinux, err) <
        0)
        return -1;
    s->microvm = s->o->machine != MVM_MACHINE_Q35;
    cleanup_free char *config = s->boot_kconfig ? read_file(s->boot_kconfig, 4u << 20, NULL) : NULL;
    s->tsc_khz = mvm_tsc_khz(CACHE_DIR);
    s->kernel_hz = config ? mvm_kernel_config_hz(config) : 0;
    return 0;
}

static const char *const image_fs_modules[] = {"xfs", "btrfs"};

static int plan_boot(struct session *s, struct mvm_error **err)
{
    if (s->o->boot_image)
        return plan_image_boot(s, err);
    struct mvm_kernel_search where = {"/boot", "/lib/modules", NULL, s->user.uid, s->user.gid};
    char release[256] = "";
    FILE *f = fopen("/proc/sys/kernel/osrelease", "re");
    if (f && fgets(release, sizeof release, f))
        release[strcspn(release, "\n")] = '\0';
    if (f)
        fclose(f);
    where.running_release = release;
    if (mvm_kernel_resolve(s->o->kernel, s->o->modules, &where, &s->kernel, err) < 0 ||
        mvm_kernel_vmlinux(&s->kernel, CACHE_DIR, s->o->quiet ? NULL : progress, &s->vmlinux, err) <
            0)
        return -1;
    s->microvm = s->o->machine != MVM_MACHINE_Q35;
    const char *mods[SESSION_MAX_MODULES];
    bool image = s->image.fd >= 0;
    bool overlay = (s->o->disk_mib > 0 && !image) || s->o->rootfs;
    for (size_t i = 0; i < s->nshares; i++)
        overlay |= s->shares[i].overlay;
    size_t nmods = session_modules(s->microvm, s->o->net != MVM_NETOPT_NONE,
                                   s->ndisks > 0 || s->o->disk_mib > 0 || image, overlay, mods);
    /* Its CONFIG_HZ sets lpj=; read once, beside the image or in /boot. */
    cleanup_free char *config = mvm_kernel_config(&s->kernel, "/boot");
    if (s->kernel.modules_dir == NULL)
        check_builtin(s, config, mods, nmods);
    struct mvm_initramfs_base spec = {
        .kernel = &s->kernel,
        .modules = mods,
        .nmodules = nmods,
        /* An image's root may be xfs or btrfs (loaded only then). */
        .fs_modules = image ? image_fs_modules : NULL,
        .nfs_modules = image ? ARRAY_SIZE(image_fs_modules) : 0,
        .init = mvm_init_blob,
        .init_len = mvm_init_blob_size,
        .init_key = mvm_init_blob_key,
        .cache_dir = CACHE_DIR,
        .progress = s->o->quiet ? NULL : progress,
    };
    if (mvm_initramfs_base_path(&spec, &s->initrd_base, err) < 0)
        return -1;
    s->tsc_khz = mvm_tsc_khz(CACHE_DIR);
    s->kernel_hz = config ? mvm_kernel_config_hz(config) : 0;
    return 0;
}

/* The network's holes and published ports, checked before anything is
 * made. */
static int plan_net(struct session *s, struct mvm_error **err)
{
    const struct mvm_run_opts *o = s->o;
    struct mvm_net_policy *pol = &s->netpolicy;
    if (o->net == MVM_NETOPT_NONE && o->npublish + o->nallow_host + o->nallow_lan > 0)
        return mvm_error_set(err, 0,
                             "--net none has no network: --publish, --allow-host and --allow-lan "
                             "need another --net mode");
    for (size_t i = 0; i < o->npublish; i++)
        if (mvm_net_policy_publish(pol, o->publish[i], err) < 0)
            return -1;
    for (size_t i = 0; i < o->nallow_host; i++)
        if (mvm_net_policy_allow_host(pol, o->allow_host[i], err) < 0)
            return -1;
    for (size_t i = 0; i < o->nallow_lan; i++)
        if (mvm_net_policy_allow_lan(pol, o->allow_lan[i], err) < 0)
            return -1;
    if (o->net == MVM_NETOPT_ALLOW && mvm_net_policy_allow(pol, o->net_allow, err) < 0)
        return -1;
    return 0;
}

/* --image: the base opened with the user's rights and probed, before
 * anything is made. */
static int plan_image(struct session *s, struct mvm_error **err)
{
    if (s->o->image && s->o->rootfs)
        return mvm_error_set(err, 0, "--image and --rootfs both name the guest's root: give one");
    if (s->o->image == NULL)
        return session_plan_boot_image(s, NULL, err);
    if (s->o->image_writable)
        return s->o->boot_image
                   ? mvm_error_set(err, 0, "--boot image: not for mvm image build's VM")
                   : mvm_image_open_writable(s->o->image, &s->image, err);
    /* A name without a file of that name: an image mvm image build made. */
    cleanup_free char *stored = NULL;
    if (mvm_image_resolve(MVM_IMAGES_DIR, s->o->image, &stored, err) < 0 ||
        mvm_image_open(stored ? stored : s->o->image, s->user.uid, s->user.gid, &s->image, err) <
            0 ||
        session_plan_boot_image(s, stored, err) < 0)
        return -1;
    if (s->o->disk_mib > 0 && s->o->disk_mib != MVM_DEFAULT_DISK_MIB)
        session_notice(s, "--disk is not used with --image: the image's overlay takes the writes");
    return 0;
}

int session_prepare(struct session *s, struct mvm_error **err)
{
    if (geteuid() != 0)
        return mvm_error_set(err, 0,
                             "mvm must run as root (it starts QEMU and virtiofsd with "
                             "namespaces): use sudo mvm run ...");
    s->stdin_tty = isatty(STDIN_FILENO);
    s->stdout_tty = isatty(STDOUT_FILENO);
    s->tty =
        s->o->tty == MVM_TTY_ALWAYS || (s->o->tty == MVM_TTY_AUTO && s->stdin_tty && s->stdout_tty);
    if (plan_net(s, err) < 0 || plan_user(s, err) < 0 || session_plan_wireguard(s, err) < 0 ||
        session_build_env(s->o->env, s->o->nenv, s->o->argv, s->o->argc, &s->env, &s->nenv, err) <
            0 ||
        session_plan_api_keys(s, err) < 0 || plan_image(s, err) < 0 || plan_shares(s, err) < 0 ||
        plan_volumes(s, err) < 0 || find_qemu(s, err) < 0 || mvm_virtiofsd_find(&s->vfsd, err) < 0)
        return -1;
    session_trace(s, "planned user, shares, helpers");
    if (plan_boot(s, err) < 0)
        return -1;
    session_trace(s, "kernel and initramfs ready");
    if (plan_accel(s, err) < 0)
        return -1;
    session_trace(s, "accelerator chosen");
    return 0;
}
