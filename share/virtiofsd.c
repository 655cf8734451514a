/* Starting virtiofsd for one share.  virtiofsd sandboxes itself once QEMU
 * connects (namespaces, seccomp, dropped capabilities) and needs its
 * capabilities for that, so mvm adds only what virtiofsd cannot do itself:
 * read-only enforcement for the C version (it has no such option), a user
 * namespace that maps nothing but the ids it serves as, and host ids that
 * are never root's (idmapped mounts, see share.h). */
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

/* The C virtiofsd splits -o on commas and reads backslash escapes (\,
 * \\ and octal \ooo): anything but a plain path byte goes in octal, so a
 * directory named "x,source=/home" is that directory and nothing else. */
static char *c_option_escape(const char *path)
{
    struct buf b = {0};
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("/._-+", *p) != NULL)
            buf_append(&b, p, 1);
        else
            buf_printf(&b, "\\%03o", *p);
    }
    buf_append(&b, "", 1);
    return (char *)b.data;
}

static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80             ? 0
                : (*p & 0xe0) == 0xc0 ? 1
                : (*p & 0xf0) == 0xe0 ? 2
                : (*p & 0xf8) == 0xf0 ? 3
                                      : -1;
        if (n < 0 || (n == 1 && *p < 0xc2) || (n == 3 && *p > 0xf4))
            return false;
        for (int i = 1; i <= n; i++)
            if ((p[i] & 0xc0) != 0x80)
                return false;
        p += n + 1;
    }
    return true;
}

char **mvm_virtiofsd_argv(const struct mvm_virtiofsd *v, const char *dir, bool ro, int fd,
                          struct mvm_error **err)
{
    if (dir[0] != '/')
        return mvm_error_set(err, 0, "cannot share %s: not an absolute path", dir), NULL;
    /* The Rust virtiofsd takes the path as a UTF-8 string. */
    if (v->flavor == MVM_VIRTIOFSD_RUST && !utf8_valid(dir))
        return mvm_error_set(err, 0,
                             "cannot share %s: its name is not valid UTF-8, which %s cannot take; "
                             "rename it or share a directory above it",
                             dir, v->path),
               NULL;
    /* Read-only trees never change under the guest: cache them. */
    const char *cache = ro ? "always" : "auto";
    char **argv = xmalloc(16 * sizeof *argv);
    size_t i = 0;
    argv[i++] = xstrdup(v->path);
    argv[i++] = xasprintf("--fd=%d", fd);
    if (v->flavor == MVM_VIRTIOFSD_C) {
        cleanup_free char *esc = c_option_escape(dir);
        argv[i++] = xstrdup("-o");
        argv[i++] = xasprintf("source=%s,cache=%s,sandbox=namespace,announce_submounts,"
                              "log_level=warn",
                              esc, cache);
    } else {
        argv[i++] = xasprintf("--shared-dir=%s", dir);
        argv[i++] = xasprintf("--cache=%s", cache);
        argv[i++] = xstrdup("--sandbox=namespace");
        argv[i++] = xstrdup("--announce-submounts");
        argv[i++] = xstrdup("--log-level=warn");
    }
    argv[i++] = xstrdup("--rlimit-nofile=0"); /* mvm set the limit */
    argv[i] = NULL;
    return argv;
}

/* A detached copy of dir's mount tree in which the files' owners appear
 * as what the maps turn them into: the server then runs as those ids
 * while the files on disk keep theirs.  With submounts, those that cannot
 * be idmapped (EINVAL) leave the top mount alone, without its submounts. */
static int idmapped_tree(const char *dir, bool ro, bool submounts, const char *uid_map,
                         const char *gid_map, int *tree_fd, struct mvm_error **err)
{
    cleanup_close int ns = mvm_jail_userns_fd(uid_map, gid_map, err);
    if (ns < 0)
        return -1;
    int e = 0;
    for (int recursive = submounts; recursive >= 0; recursive--) {
        cleanup_close int fd = mvm_open_tree_clone(dir, recursive);
        if (fd < 0)
            return mvm_error_set(err, errno, "cloning the mount of %s", dir);
        if (mvm_mount_setattr_idmap(fd, ns, ro, recursive) == 0) {
            *tree_fd = steal_fd(&fd);
            return 0;
        }
        e = errno;
        if (e != EINVAL)
            break;
    }
    return mvm_error_set(err, e,
                         "idmapping %s (its file system needs idmapped mounts: ext4, xfs, "
                         "btrfs, or tmpfs on Linux 6.3+)",
                         dir);
}

int mvm_share_idmap_probe(const char *dir, struct mvm_error **err)
{
    char map[64];
    snprintf(map, sizeof map, "0 %u %u\n", MVM_HELPER_ID_BASE, MVM_SHARE_SYSTEM_IDS);
    int fd = -1;
    if (idmapped_tree(dir, true, true, map, map, &fd, err) < 0)
        return -1;
    close(fd); /* detached and never attached: nothing else to undo */
    return 0;
}

/* Where the share appears in virtiofsd's mount namespace: on a tmpfs of
 * its own over /run, so the server needs no right to the share's parent
 * directories (root's /root, for one) and no host path reaches its
 * command line. */
#define SERVE_RUN "/run"
#define SERVE_DIR "/run/mvm-share"

struct share_mounts {
    const char *dir;
    bool ro, submounts;
    int tree_fd;             /* idmapped tree to attach, or -1 for a bind of dir */
    char umap[64], gmap[64]; /* the server's user namespace maps */
};

/* In the child, before its user namespace: a private mount namespace in
 * which SERVE_DIR is the idmapped tree, or a recursive bind of dir,
 * read-only for read-only shares.  virtiofsd's own mount namespace is
 * copied from this one with these mounts locked, so the guest gets EROFS
 * even if it mounts the share read-write. */
static int setup_mounts(void *arg, const char **what)
{
    const struct share_mounts *m = arg;
    *what = "making a private mount namespace";
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount("tmpfs", SERVE_RUN, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k") <
            0 ||
        mkdir(SERVE_DIR, 0755) < 0)
        return -1;
    if (m->tree_fd >= 0) {
        *what = "attaching the idmapped share";
        return mvm_move_mount_to(m->tree_fd, SERVE_DIR);
    }
    *what = "binding the share";
    if (mount(m->dir, SERVE_DIR, NULL, MS_BIND | (m->submounts ? MS_REC : 0), NULL) < 0)
        return -1;
    if (!m->ro)
        return 0;
    *what = "making the share read-only";
    if (mvm_mount_setattr_recursive(SERVE_DIR, MOUNT_ATTR_RDONLY) == 0)
        return 0;
    if (errno != ENOSYS)
        return -1;
    /* Kernels before 5.12: the top mount only. */
    return mount(NULL, SERVE_DIR, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL);
}

/* Which ids the server runs as and how the share's files appear to it.
 * Never host root: the system tree's ids 0..MVM_SHARE_SYSTEM_IDS-1 and a
 * root owner's id are idmapped onto server_id and up.  Any other owner is
 * the invoking user, who serves their own files as themselves. */
static int plan_ids(struct mvm_share *sh, const struct mvm_share_owner *owner, uid_t server_id,
                    struct mvm_jail *s, struct share_mounts *m, struct mvm_error **err)
{
    /* Shifted: the files' owners are idmapped onto the server's ids. */
    bool shift = sh->system || owner->uid == 0 || owner->gid == 0;
    if (sh->system) {
        snprintf(m->umap, sizeof m->umap, "0 %u %u\n", (unsigned)server_id, MVM_SHARE_SYSTEM_IDS);
        snprintf(m->gmap, sizeof m->gmap, "%s", m->umap);
        s->ns_uid = s->ns_gid = 0;
    } else {
        snprintf(m->umap, sizeof m->umap, "%u %u 1\n", (unsigned)owner->guest_uid,
                 (unsigned)(shift ? server_id : owner->uid));
        snprintf(m->gmap, sizeof m->gmap, "%u %u 1\n", (unsigned)owner->guest_gid,
                 (unsigned)(shift ? server_id : owner->gid));
        s->ns_uid = owner->guest_uid;
        s->ns_gid = owner->guest_gid;
        s->ambient_caps = owner->guest_uid != 0; /* ns root keeps them anyway */
    }
    s->uid_map = m->umap;
    s->gid_map = m->gmap;
    s->setup = setup_mounts;
    s->setup_arg = m;
    if (!shift)
        return 0;
    /* The mount's map takes the on-disk owner to the server's id: for the
     * system tree the same map as the server's own. */
    char mu[64], mg[64];
    snprintf(mu, sizeof mu, "%u %u 1\n", (unsigned)owner->uid, (unsigned)server_id);
    snprintf(mg, sizeof mg, "%u %u 1\n", (unsigned)owner->gid, (unsigned)server_id);
    if (idmapped_tree(sh->host, sh->ro, sh->submounts, sh->system ? m->umap : mu,
                      sh->system ? m->gmap : mg, &m->tree_fd, err) == 0)
        return 0;
    if (!sh->system)
        return mvm_error_wrap(err,
                              "sharing %s as root without giving virtiofsd host root; run mvm "
                              "through sudo from your own account",
                              sh->host);
    /* The system tree without idmapped mounts: its server still never
     * holds a host id of an account, and the guest sees /usr owned by
     * nobody (setuid binaries lose their owner). */
    mvm_error_cleanup(err);
    sh->no_idmap = true;
    return 0;
}

int mvm_share_start(struct mvm_share *sh, const struct mvm_virtiofsd *v, const char *sock_dir,
                    const struct mvm_share_owner *owner, uid_t server_id, struct mvm_error **err)
{
    cleanup_close int listen_fd = -1;
    if (socket_pair_for(sock_dir, sh->tag, &listen_fd, &sh->qemu_fd, err) < 0)
        return mvm_error_wrap(err, "sharing %s", sh->host);
    char **argv = mvm_virtiofsd_argv(v, SERVE_DIR, sh->ro, listen_fd, err);
    if (argv == NULL)
        return -1;
    int logp[2];
    if (pipe2(logp, O_CLOEXEC) < 0) {
        mvm_strv_free(argv);
        return mvm_error_set(err, errno, "sharing %s: pipe", sh->host);
    }
    fcntl(logp[0], F_SETFL, O_NONBLOCK); /* ours only: virtiofsd's writes may block */
    sh->log_fd = logp[0];
    cleanup_close int log_w = logp[1];
    char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    cleanup_free char *name = xasprintf("virtiofsd for %s", sh->host);
    /* Every virtiofsd runs in a user namespace, so its capabilities count
     * there only, and in an IPC namespace of its own: no host SysV object
     * is in reach even under the ids it runs as. */
    struct mvm_jail s = {
        .name = name,
        .path = v->path,
        .argv = argv,
        .envp = envp,
        .stdin_fd = -1,
        .stdout_fd = log_w,
        .stderr_fd = log_w,
        .keep = &listen_fd,
        .nkeep = 1,
        .nofile = 16384,
        .layers = MVM_JAIL_IPCNS | MVM_JAIL_RLIMITS,
    };
    /* ENOSYS: the guest's FUSE stops asking and copies or fills itself. */
    static const char *const unbounded[] = {"fallocate", "copy_file_range", NULL};
    void *filter = NULL;
    if (sh->bounded && !sh->ro) {
        filter = mvm_jail_filter_deny(unbounded, ENOSYS, err);
        if (filter == NULL) {
            mvm_strv_free(argv);
            return mvm_error_wrap(err, "sharing %s", sh->host);
        }
        s.layers |= MVM_JAIL_SECCOMP;
        s.seccomp = filter;
    }
    struct share_mounts m = {
        .dir = sh->host, .ro = sh->ro, .submounts = sh->submounts, .tree_fd = -1};
    int rc = plan_ids(sh, owner, server_id, &s, &m, err);
    if (rc == 0)
        rc = mvm_jail_start(&s, &sh->proc, err);
    mvm_jail_filter_free(filter);
    if (m.tree_fd >= 0)
        close(m.tree_fd);
    mvm_strv_free(argv);
    return rc;
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
