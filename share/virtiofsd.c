/* Starting virtiofsd for one share.  virtiofsd sandboxes itself once QEMU
 * connects (namespaces, seccomp, dropped capabilities) and needs its
 * capabilities for that, so mvm adds only what virtiofsd cannot do itself:
 * read-only enforcement for the C version (it has no such option) and a
 * user namespace that maps nothing but the invoking user. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "share.h"
#include "syscalls.h"
#include "util.h"

/* Where virtiofsd lives.  Inside QEMU's own tree it is QEMU's C one
 * (QEMU dropped it in 8.0); elsewhere it may be either. */
static const struct {
    const char *path;
    bool qemu_tree;
} candidates[] = {
    {"/usr/libexec/virtiofsd", false},     /* Rust: Debian 13, Fedora */
    {"/usr/lib/qemu/virtiofsd", true},     /* C: Debian 12's qemu-system-common */
    {"/usr/libexec/qemu/virtiofsd", true}, /* C: QEMU's default install */
    {"/usr/bin/virtiofsd", false},
};

/* The Rust virtiofsd takes --shared-dir; the C one -o source=. */
static enum mvm_virtiofsd_flavor detect_flavor(const char *path)
{
    size_t len = 0;
    cleanup_free char *bin = read_file(path, 64 * 1024 * 1024, &len);
    if (bin && memmem(bin, len, "shared-dir", strlen("shared-dir")) != NULL)
        return MVM_VIRTIOFSD_RUST;
    return MVM_VIRTIOFSD_C;
}

int mvm_virtiofsd_find(struct mvm_virtiofsd *v, struct mvm_error **err)
{
    for (size_t i = 0; i < ARRAY_SIZE(candidates); i++) {
        if (access(candidates[i].path, X_OK) == 0) {
            v->path = xstrdup(candidates[i].path);
            /* Reading the binary is needed only where it is ambiguous. */
            v->flavor = candidates[i].qemu_tree ? MVM_VIRTIOFSD_C : detect_flavor(v->path);
            return 0;
        }
    }
    return mvm_error_set(err, 0,
                         "virtiofsd not found (looked in /usr/libexec and /usr/lib/qemu); "
                         "install it: apt-get install qemu-system-x86 (Debian 12) or virtiofsd");
}

void mvm_virtiofsd_clear(struct mvm_virtiofsd *v)
{
    free(v->path);
    v->path = NULL;
}

void mvm_share_init(struct mvm_share *sh, const char *host, const char *guest, bool ro,
                    const char *tag)
{
    memset(sh, 0, sizeof *sh);
    sh->host = xstrdup(host);
    sh->guest = xstrdup(guest);
    sh->ro = ro;
    sh->tag = xstrdup(tag);
    sh->qemu_fd = -1;
    sh->log_fd = -1;
    sh->system = false;
    sh->proc = (struct mvm_child)MVM_CHILD_INIT;
}

/* A listening socket for virtiofsd and a connected one for QEMU.  The
 * name exists only between bind() and the unlink() below. */
static int socket_pair_for(const char *sock_dir, const char *tag, int *listen_fd, int *qemu_fd,
                           struct mvm_error **err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int n = snprintf(addr.sun_path, sizeof addr.sun_path, "%s/vfs-%s.sock", sock_dir, tag);
    if (n < 0 || (size_t)n >= sizeof addr.sun_path)
        return mvm_error_set(err, ENAMETOOLONG, "socket path in %s", sock_dir);
    cleanup_close int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cleanup_close int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l < 0 || c < 0)
        return mvm_error_set(err, errno, "creating the virtiofs socket");
    unlink(addr.sun_path);
    int rc = 0;
    if (bind(l, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(l, 1) < 0 ||
        connect(c, (struct sockaddr *)&addr, sizeof addr) < 0)
        rc = mvm_error_set(err, errno, "setting up the virtiofs socket %s", addr.sun_path);
    unlink(addr.sun_path);
    if (rc < 0)
        return -1;
    *listen_fd = steal_fd(&l);
    *qemu_fd = steal_fd(&c);
    return 0;
}

/* In the child, for read-only shares: a private mount namespace in which
 * the share is a recursive read-only bind mount.  virtiofsd's own mount
 * namespace is copied from this one, so the guest gets EROFS even if it
 * mounts the share read-write. */
static int setup_readonly(void *arg, const char **what)
{
    const char *dir = arg;
    *what = "making the share read-only";
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount(dir, dir, NULL, MS_BIND | MS_REC, NULL) < 0)
        return -1;
    if (mvm_mount_setattr_recursive(dir, MOUNT_ATTR_RDONLY) == 0)
        return 0;
    if (errno != ENOSYS)
        return -1;
    /* Kernels before 5.12: the top mount only. */
    return mount(NULL, dir, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL);
}

static void build_argv(const struct mvm_virtiofsd *v, const struct mvm_share *sh, int fd,
                       const char **argv, char *fdarg, size_t fdlen, char *srcarg, size_t srclen)
{
    size_t i = 0;
    snprintf(fdarg, fdlen, "--fd=%d", fd);
    argv[i++] = v->path;
    argv[i++] = fdarg;
    if (v->flavor == MVM_VIRTIOFSD_C) {
        snprintf(srcarg, srclen, "source=%s", sh->host);
        argv[i++] = "-o";
        argv[i++] = srcarg;
        argv[i++] = "-o";
        /* Read-only trees never change under the guest: cache them. */
        argv[i++] = sh->ro ? "cache=always" : "cache=auto";
        argv[i++] = "-o";
        argv[i++] = "sandbox=namespace";
        argv[i++] = "-o";
        argv[i++] = "announce_submounts";
        argv[i++] = "-o";
        argv[i++] = "log_level=warn";
        argv[i++] = "--rlimit-nofile=0"; /* mvm set the limit */
    } else {
        argv[i++] = "--shared-dir";
        argv[i++] = sh->host;
        argv[i++] = "--cache";
        argv[i++] = sh->ro ? "always" : "auto";
        argv[i++] = "--sandbox";
        argv[i++] = "namespace";
        argv[i++] = "--announce-submounts";
        argv[i++] = "--log-level";
        argv[i++] = "warn";
        argv[i++] = "--rlimit-nofile=0";
    }
    argv[i] = NULL;
}

int mvm_share_start(struct mvm_share *sh, const struct mvm_virtiofsd *v, const char *sock_dir,
                    const struct mvm_share_owner *owner, struct mvm_error **err)
{
    cleanup_close int listen_fd = -1;
    if (socket_pair_for(sock_dir, sh->tag, &listen_fd, &sh->qemu_fd, err) < 0)
        return mvm_error_wrap(err, "sharing %s", sh->host);
    int logp[2];
    if (pipe2(logp, O_CLOEXEC) < 0)
        return mvm_error_set(err, errno, "sharing %s: pipe", sh->host);
    fcntl(logp[0], F_SETFL, O_NONBLOCK); /* ours only: virtiofsd's writes may block */
    sh->log_fd = logp[0];
    cleanup_close int log_w = logp[1];

    const char *argv[20];
    char fdarg[32], srcarg[4200];
    build_argv(v, sh, listen_fd, argv, fdarg, sizeof fdarg, srcarg, sizeof srcarg);
    char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    cleanup_free char *name = xasprintf("virtiofsd for %s", sh->host);
    char uid_map[64], gid_map[64];
    struct mvm_jail s = {
        .name = name,
        .path = v->path,
        .argv = (char *const *)argv,
        .envp = envp,
        .stdin_fd = -1,
        .stdout_fd = log_w,
        .stderr_fd = log_w,
        .keep = &listen_fd,
        .nkeep = 1,
        .nofile = 16384,
    };
    /* Every virtiofsd runs in a user namespace, so its capabilities count
     * there only, never in the host's.  The system's /usr keeps the host's
     * ids (identity map of the system and user range): it is read-only
     * and root's to begin with.  Any other share maps nothing but the user,
     * so the guest reads no more than the user could, and writes as them. */
    s.uid_map = uid_map;
    s.gid_map = gid_map;
    if (sh->ro) {
        s.setup = setup_readonly; /* before the user namespace: stays locked */
        s.setup_arg = sh->host;
    }
    if (sh->system) {
        snprintf(uid_map, sizeof uid_map, "0 0 65536\n");
        snprintf(gid_map, sizeof gid_map, "0 0 65536\n");
        s.ns_uid = 0;
        s.ns_gid = 0;
    } else {
        snprintf(uid_map, sizeof uid_map, "%u %u 1\n", (unsigned)owner->guest_uid,
                 (unsigned)owner->uid);
        snprintf(gid_map, sizeof gid_map, "%u %u 1\n", (unsigned)owner->guest_gid,
                 (unsigned)owner->gid);
        s.ns_uid = owner->guest_uid;
        s.ns_gid = owner->guest_gid;
        s.ambient_caps = owner->guest_uid != 0; /* ns root keeps them anyway */
    }
    return mvm_jail_start(&s, &sh->proc, err);
}

void mvm_share_stop(struct mvm_share *sh)
{
    mvm_child_kill(&sh->proc);
    if (sh->qemu_fd >= 0)
        close(sh->qemu_fd);
    if (sh->log_fd >= 0)
        close(sh->log_fd);
    sh->qemu_fd = sh->log_fd = -1;
}

void mvm_share_clear(struct mvm_share *sh)
{
    mvm_share_stop(sh);
    free(sh->host);
    free(sh->guest);
    free(sh->tag);
    sh->host = sh->guest = sh->tag = NULL;
}
