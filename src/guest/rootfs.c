/* Assembles the guest's root: a tmpfs holding the host's /usr (read-only
 * virtiofs), symlinks for /bin /lib /lib64 /sbin, a generated /etc,
 * tmpfs for /tmp /run /var and the home directory, the shares, and the
 * kernel filesystems -- or, with --image or --rootfs, the image's or the
 * tree's own root with the same on top; then makes it the root with MS_MOVE + chroot (an
 * initramfs cannot be pivot_root'ed away). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guest.h"

#define R GUEST_NEWROOT

/* The root being set up: R, or "" for the agent of --boot image, which
 * works in the image's running root. */
static const char *root_at = R;

/* rel below that root, into buf. */
static const char *at(char buf[4096], const char *rel)
{
    snprintf(buf, 4096, "%s%s", root_at, rel);
    return buf;
}

/* mkdir -p below the new root; directories it creates get uid/gid. */
static int mkdirs(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, mode) == 0) {
            if (lchown(p, uid, gid) < 0)
                return -1;
        } else if (errno != EEXIST) {
            return -1;
        }
        if (c == '\0')
            break;
        *s = c;
    }
    return 0;
}

static int write_text(const char *path, mode_t mode, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int write_text(const char *path, mode_t mode, const char *fmt, ...)
{
    FILE *f = fopen(path, "we");
    if (f == NULL)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    if (fchmod(fileno(f), mode) < 0 || ferror(f)) {
        fclose(f);
        return -1;
    }
    return fclose(f);
}

/* The resolvers the host named, in its order; no search domain, so a
 * short name is not sent to the host's own domain. */
static int write_resolv_conf(const struct guest_net *net)
{
    char path[4096];
    at(path, "/etc/resolv.conf");
    if (!net->enabled)
        return write_text(path, 0644, "# mvm: this guest has no network (--net none)\n");
    char text[256] = "# mvm: written by mvm-init from the session\n";
    size_t len = strlen(text);
    for (size_t i = 0; i < net->ndns && i < GUEST_NET_MAX_DNS; i++) {
        char addr[16];
        guest_net_format_ipv4(net->dns[i], addr, sizeof addr);
        int n = snprintf(text + len, sizeof text - len, "nameserver %s\n", addr);
        if (n < 0 || (size_t)n >= sizeof text - len) {
            errno = ENAMETOOLONG;
            return -1;
        }
        len += (size_t)n;
    }
    return write_text(path, 0644, "%s", text);
}

/* Appends the host's system accounts to an account file, but for the
 * names this guest defines itself. */
static int append_accounts(const char *path, const char *lines, const char *const *own, size_t nown)
{
    FILE *f = fopen(path, "ae");
    if (f == NULL)
        return -1;
    for (const char *l = lines; *l;) {
        size_t len = strcspn(l, "\n"), name = strcspn(l, ":\n");
        bool skip = name == len;
        for (size_t i = 0; i < nown && !skip; i++)
            skip = own[i] && strlen(own[i]) == name && strncmp(l, own[i], name) == 0;
        if (!skip)
            fprintf(f, "%.*s\n", (int)len, l);
        l += len + (l[len] == '\n');
    }
    return ferror(f) ? (fclose(f), -1) : fclose(f);
}

static int make_etc(const struct guest_session *s, char *why, size_t whylen)
{
    /* The host's allowlisted files, shipped in the initramfs, bound rather
     * than copied: hundreds of certificates and links cost ~100 ms to copy
     * under TCG.  The bind shows that one directory and nothing else of
     * the initramfs. */
    if (mkdirs(GUEST_HOST_ETC_DIR, 0755, 0, 0) < 0 || mkdir(R "/etc", 0755) < 0 ||
        mount(GUEST_HOST_ETC_DIR, R "/etc", NULL, MS_BIND, NULL) < 0)
        return guest_fail(why, whylen, errno, "populating /etc");
    const char *group = s->group ? s->group : s->user;
    int rc = 0;
    if (s->uid == 0)
        rc |= write_text(R "/etc/passwd", 0644,
                         "root:x:0:0:root:%s:%s\n"
                         "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                         s->home, s->shell);
    else
        rc |= write_text(R "/etc/passwd", 0644,
                         "root:x:0:0:root:/root:/bin/sh\n%s:x:%u:%u:%s:%s:%s\n"
                         "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                         s->user, (unsigned)s->uid, (unsigned)s->gid, s->user, s->home, s->shell);
    if (s->gid == 0)
        rc |= write_text(R "/etc/group", 0644, "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n");
    else
        rc |= write_text(R "/etc/group", 0644, "root:x:0:\ntty:x:5:\n%s:x:%u:\nnogroup:x:65534:\n",
                         group, (unsigned)s->gid);
    if (s->sys_passwd && s->sys_group) {
        const char *const own[] = {"root", "tty", "nobody", "nogroup", s->user, group};
        rc |= append_accounts(R "/etc/passwd", s->sys_passwd, own, 6);
        rc |= append_accounts(R "/etc/group", s->sys_group, own, 6);
    }
    rc |= write_text(R "/etc/hostname", 0644, "%s\n", s->hostname);
    rc |= write_text(
        R "/etc/hosts", 0644,
        "127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        s->hostname);
    rc |= write_resolv_conf(&s->net);
    unlink(R "/etc/mtab");
    rc |= symlink("../proc/self/mounts", R "/etc/mtab");
    if (rc != 0)
        return guest_fail(why, whylen, errno, "writing /etc");
    if (sethostname(s->hostname, strlen(s->hostname)) < 0)
        return guest_fail(why, whylen, errno, "setting the hostname");
    return 0;
}

static int mount_at(const char *src, const char *dir, const char *type, unsigned long flags,
                    const char *data, char *why, size_t whylen)
{
    if (mkdirs(dir, 0755, 0, 0) < 0 || mount(src, dir, type, flags, data) < 0)
        return guest_fail(why, whylen, errno, "mounting %s on %s", type, dir + strlen(R));
    return 0;
}

/* The scratch disk, outside the new root: its directories are bound
 * into it, and it stays out of the guest's sight once the root moves. */
#define SCRATCH  "/scratch"
#define USR_BASE "/usr-base"

#define USR_UPPER SCRATCH "/usr/upper"

/* USR_UPPER/rel as a directory of the user's, with the mode the host's
 * has; nothing where the host has something else (a link stays a link). */
static int give_dir(const struct guest_session *s, const char *rel)
{
    char lower[512], upper[512];
    snprintf(lower, sizeof lower, USR_BASE "/%s", rel);
    snprintf(upper, sizeof upper, USR_UPPER "/%s", rel);
    struct stat st;
    mode_t mode = 0755;
    if (lstat(lower, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return 0;
        mode = st.st_mode & 07777;
    }
    if (mkdirs(upper, mode, s->uid, s->gid) < 0 || lchown(upper, s->uid, s->gid) < 0 ||
        chmod(upper, mode) < 0)
        return -1;
    return 0;
}

/* Below /usr/local the session's own installs land (npm -g, pip): its
 * directories are the user's.  They are made in the overlay's upper layer
 * before it is mounted, where overlayfs merges them with the host's; a
 * copy-up of each through the mounted overlay costs ~10 ms under TCG. */
static int give_usr_local(const struct guest_session *s, char *why, size_t whylen)
{
    static const char *const dirs[] = {
        "local",
        "local/bin",
        "local/lib",
        "local/share",
        "local/include",
        "local/sbin",
        "local/lib/node_modules",
    };
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        if (give_dir(s, dirs[i]) < 0)
            return guest_fail(why, whylen, errno, "giving /usr/%s to the user", dirs[i]);
    /* pip's target: /usr/local/lib/python3.X/dist-packages */
    DIR *d = opendir(USR_BASE "/local/lib");
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && d && (de = readdir(d)) != NULL) {
        char p[384];
        if (strncmp(de->d_name, "python3", 7) != 0)
            continue;
        snprintf(p, sizeof p, "local/lib/%s", de->d_name);
        rc = give_dir(s, p);
        char lower[512];
        snprintf(p, sizeof p, "local/lib/%s/dist-packages", de->d_name);
        snprintf(lower, sizeof lower, USR_BASE "/%s", p);
        if (rc == 0 && access(lower, F_OK) == 0) /* may not exist */
            rc = give_dir(s, p);
    }
    if (d)
        closedir(d);
    if (rc < 0)
        return guest_fail(why, whylen, errno, "giving /usr/local/lib's python to the user");
    return 0;
}

/* The host's /usr over virtiofs, where it goes (the overlay's lower
 * layer when there is a scratch disk), and the /bin, /lib... links into
 * it: nothing here needs the disk modules. */
static int mount_usr_base(const struct guest_session *s, char *why, size_t whylen)
{
    const char *base = s->scratch == NULL ? R "/usr" : USR_BASE;
    if (mkdirs(base, 0755, 0, 0) < 0 || mount(s->usr_tag, base, "virtiofs", MS_RDONLY, NULL) < 0)
        return guest_fail(why, whylen, errno, "mounting the host's /usr");
    static const char *const links[] = {"bin", "sbin", "lib", "lib32", "lib64", "libx32"};
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        char in_usr[64], link[64], target[64];
        snprintf(in_usr, sizeof in_usr, "%s/%s", base, links[i]);
        snprintf(link, sizeof link, R "/%s", links[i]);
        snprintf(target, sizeof target, "usr/%s", links[i]);
        if (access(in_usr, F_OK) == 0 && symlink(target, link) < 0)
            return guest_fail(why, whylen, errno, "linking /%s", links[i]);
    }
    return 0;
}

/* With a scratch disk, /usr is writable: an overlay on the host's. */
static int make_usr(const struct guest_session *s, char *why, size_t whylen)
{
    if (s->scratch == NULL)
        return 0;
    if (mkdirs(USR_UPPER, 0755, 0, 0) < 0 || mkdirs(SCRATCH "/usr/work", 0755, 0, 0) < 0)
        return guest_fail(why, whylen, errno, "making the writable /usr");
    if (give_usr_local(s, why, whylen) < 0)
        return -1;
    if (mkdirs(R "/usr", 0755, 0, 0) < 0 ||
        mount("overlay", R "/usr", "overlay", 0,
              "lowerdir=" USR_BASE ",upperdir=" USR_UPPER ",workdir=" SCRATCH
              "/usr/work,redirect_dir=off,index=off,metacopy=off,xino=off") < 0)
        return guest_fail(why, whylen, errno, "mounting the writable /usr");
    return 0;
}

/* /proc, /sys and /dev of the new root. */
static int make_kernel_fs(char *why, size_t whylen)
{
    unsigned long nosuid = MS_NOSUID | MS_NOEXEC;
    if (mount_at("proc", R "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, why, whylen) <
            0 ||
        mount_at("sysfs", R "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL,
                 why, whylen) < 0 ||
        mount_at("devtmpfs", R "/dev", "devtmpfs", MS_NOSUID, "mode=0755", why, whylen) < 0 ||
        mount_at("devpts", R "/dev/pts", "devpts", nosuid,
                 "newinstance,ptmxmode=0666,mode=0620,gid=5", why, whylen) < 0 ||
        mount_at("shm", R "/dev/shm", "tmpfs", nosuid | MS_NODEV, "mode=1777", why, whylen) < 0)
        return -1;
    /* udev would make these; devtmpfs does not. */
    static const char *const links[][2] = {
        {"/proc/self/fd", R "/dev/fd"},
        {"/proc/self/fd/0", R "/dev/stdin"},
        {"/proc/self/fd/1", R "/dev/stdout"},
        {"/proc/self/fd/2", R "/dev/stderr"},
    };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
        if (symlink(links[i][0], links[i][1]) < 0 && errno != EEXIST)
            return guest_fail(why, whylen, errno, "creating %s", links[i][1] + strlen(R));
    /* /dev/ptmx must be the one of the devpts mounted above. */
    unlink(R "/dev/ptmx");
    if (symlink("pts/ptmx", R "/dev/ptmx") < 0)
        return guest_fail(why, whylen, errno, "creating /dev/ptmx");
    return 0;
}

/* SCRATCH/name bound at dir (made with mode and owner), nosuid, nodev. */
static int bind_scratch(const char *name, const char *dir, mode_t mode, uid_t uid, gid_t gid,
                        char *why, size_t whylen)
{
    char src[256];
    snprintf(src, sizeof src, SCRATCH "/%s", name);
    if (mkdir(src, mode) < 0 || chown(src, uid, gid) < 0 || chmod(src, mode) < 0 ||
        mkdirs(dir, 0755, 0, 0) < 0 || mount(src, dir, NULL, MS_BIND, NULL) < 0 ||
        mount(NULL, dir, NULL, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV, NULL) < 0)
        return guest_fail(why, whylen, errno, "putting %s on the scratch disk", dir + strlen(R));
    return 0;
}

/* The writable places: on the scratch disk when there is one (guest RAM
 * is not for node_modules), else tmpfs.  /run is always tmpfs. */
static int make_scratch(const struct guest_session *s, char *why, size_t whylen)
{
    unsigned long f = MS_NOSUID | MS_NODEV;
    char home_opts[64];
    snprintf(home_opts, sizeof home_opts, "mode=0700,uid=%u,gid=%u", (unsigned)s->uid,
             (unsigned)s->gid);
    char home[4096];
    snprintf(home, sizeof home, R "%s", s->home);
    if (mount_at("tmpfs", R "/run", "tmpfs", f, "mode=0755", why, whylen) < 0)
        return -1;
    if (s->scratch != NULL) {
        if (bind_scratch("tmp", R "/tmp", 01777, 0, 0, why, whylen) < 0 ||
            bind_scratch("var", R "/var", 0755, 0, 0, why, whylen) < 0 ||
            bind_scratch("home", home, 0700, s->uid, s->gid, why, whylen) < 0)
            return -1;
    } else if (mount_at("tmpfs", R "/tmp", "tmpfs", f, "mode=1777", why, whylen) < 0 ||
               mount_at("tmpfs", R "/var", "tmpfs", f, "mode=0755", why, whylen) < 0 ||
               mount_at("tmpfs", home, "tmpfs", f, home_opts, why, whylen) < 0) {
        return -1;
    }
    if (mkdir(R "/var/tmp", 01777) < 0 || chmod(R "/var/tmp", 01777) < 0)
        return guest_fail(why, whylen, errno, "creating /var/tmp");
    /* What programs expect of a Debian /var (apt's directories among it). */
    static const char *const skeleton[] = {
        R "/var/log/apt",
        R "/var/cache/apt/archives/partial",
        R "/var/lib/apt/lists/partial",
        R "/var/spool",
        R "/etc/apt/apt.conf.d",
    };
    for (size_t i = 0; i < sizeof skeleton / sizeof skeleton[0]; i++)
        if (mkdirs(skeleton[i], 0755, 0, 0) < 0)
            return guest_fail(why, whylen, errno, "creating %s", skeleton[i] + strlen(R));
    return 0;
}

/* R + path into out, with the directories on the way to it made:
 * the user's inside the home (so the user can create siblings there),
 * root's elsewhere.  With parent, only up to path's directory. */
static int make_path(const struct guest_session *s, const char *path, bool parent, char *out,
                     size_t outlen)
{
    size_t hlen = strlen(s->home);
    bool in_home = strncmp(path, s->home, hlen) == 0 && path[hlen] == '/';
    if (snprintf(out, outlen, "%s%s", root_at, path) >= (int)outlen) {
        errno = ENAMETOOLONG;
        return -1;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", out);
    if (parent)
        *strrchr(dir, '/') = '\0';
    return mkdirs(dir, 0755, in_home ? s->uid : 0, in_home ? s->gid : 0);
}

/* Volumes, over the tmpfs of their place (a volume at ~ is the home). */
static int make_disks(const struct guest_session *s, char *why, size_t whylen)
{
    for (size_t i = 0; i < s->ndisks; i++) {
        const struct guest_disk *d = &s->disks[i];
        char dir[4096];
        if (make_path(s, d->path, false, dir, sizeof dir) < 0)
            return guest_fail(why, whylen, errno, "creating %s", d->path);
        if (guest_mount_disk(d->serial, dir, MS_NOSUID | MS_NODEV, d->path, why, whylen) < 0)
            return -1;
        if (strcmp(d->path, s->home) == 0 && chmod(dir, 0700) < 0) /* as a home is */
            return guest_fail(why, whylen, errno, "chmod %s", d->path);
    }
    return 0;
}

/* An overlay share: the host's read-only tree below (outside the new
 * root, like /usr's), the guest's changes above, on the scratch disk or
 * in a tmpfs; its top keeps the lower top's owner and mode. */
static int overlay_share(const struct guest_session *s, size_t i, const char *dir, char *why,
                         size_t whylen)
{
    const struct guest_share *sh = &s->shares[i];
    char lower[64], base[64], upper[80], work[80], opts[512];
    snprintf(lower, sizeof lower, "/share-lower/%zu", i);
    snprintf(base, sizeof base, "%s/share-%zu", s->scratch ? SCRATCH : "/share-rw", i);
    snprintf(upper, sizeof upper, "%s/upper", base);
    snprintf(work, sizeof work, "%s/work", base);
    struct stat st;
    if (mkdirs(lower, 0755, 0, 0) < 0 || mount(sh->tag, lower, "virtiofs", MS_RDONLY, NULL) < 0 ||
        stat(lower, &st) < 0)
        return guest_fail(why, whylen, errno, "mounting the share %s", sh->path);
    if (mkdirs(base, 0755, 0, 0) < 0 ||
        (s->scratch == NULL && mount("tmpfs", base, "tmpfs", MS_NOSUID | MS_NODEV, NULL) < 0) ||
        mkdirs(upper, 0755, 0, 0) < 0 || mkdirs(work, 0755, 0, 0) < 0 ||
        chown(upper, st.st_uid, st.st_gid) < 0 || chmod(upper, st.st_mode & 07777) < 0)
        return guest_fail(why, whylen, errno, "making the overlay of %s", sh->path);
    snprintf(opts, sizeof opts,
             "lowerdir=%s,upperdir=%s,workdir=%s,redirect_dir=off,index=off,metacopy=off,xino=off",
             lower, upper, work);
    if (mount("overlay", dir, "overlay", MS_NOSUID | MS_NODEV, opts) < 0)
        return guest_fail(why, whylen, errno, "mounting the overlay of %s", sh->path);
    return 0;
}

static int make_shares(const struct guest_session *s, char *why, size_t whylen)
{
    for (size_t i = 0; i < s->nshares; i++) {
        const struct guest_share *sh = &s->shares[i];
        char dir[4096];
        if (make_path(s, sh->path, false, dir, sizeof dir) < 0)
            return guest_fail(why, whylen, errno, "creating %s", sh->path);
        if (sh->overlay) {
            if (overlay_share(s, i, dir, why, whylen) < 0)
                return -1;
        } else if (mount(sh->tag, dir, "virtiofs", sh->ro ? MS_RDONLY : 0, NULL) < 0) {
            return guest_fail(why, whylen, errno, "mounting the share %s", sh->path);
        }
    }
    return 0;
}

/* The names the user's PATH finds the command by, pointing into its
 * shared installation. */
static int make_links(const struct guest_session *s, char *why, size_t whylen)
{
    for (size_t i = 0; i < s->nlinks; i++) {
        const struct guest_link *l = &s->links[i];
        char path[4096];
        if (make_path(s, l->path, true, path, sizeof path) < 0 || symlink(l->target, path) < 0)
            return guest_fail(why, whylen, errno, "creating the link %s", l->path);
    }
    return 0;
}

static int switch_root(char *why, size_t whylen)
{
    /* The initramfs's /proc, /sys and /dev stay mounted where no process
     * of the new root can reach them: each unmount waits for an RCU grace
     * period, ~20 ms under TCG. */
    if (chdir(R) < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 ||
        chdir("/") < 0)
        return guest_fail(why, whylen, errno, "switching to the new root");
    return 0;
}

/* --image's /etc is its own: the session's user is added to it (in the
 * overlay) when the image does not know the uid, and the names, hosts
 * and resolvers are the session's. */
static int image_etc(const struct guest_session *s, char *why, size_t whylen)
{
    char etc[4096], passwd[4096], resolv[4096], hostname[4096];
    int rc = mkdirs(at(etc, "/etc"), 0755, 0, 0);
    FILE *f = rc == 0 ? fopen(at(passwd, "/etc/passwd"), "re") : NULL;
    bool known = false;
    char line[1024];
    while (f && !known && fgets(line, sizeof line, f)) {
        char *id = strchr(line, ':');
        id = id ? strchr(id + 1, ':') : NULL;
        known = id && strtoul(id + 1, NULL, 10) == s->uid && id[1] != ':';
    }
    if (f)
        fclose(f);
    if (!known && s->uid != 0) {
        FILE *pw = fopen(passwd, "ae");
        if (pw == NULL)
            return guest_fail(why, whylen, errno, "adding the user to the image's /etc/passwd");
        fprintf(pw, "%s:x:%u:%u:%s:%s:/bin/sh\n", s->user, (unsigned)s->uid, (unsigned)s->gid,
                s->user, s->home);
        if (fclose(pw) != 0)
            return guest_fail(why, whylen, errno, "adding the user to the image's /etc/passwd");
    }
    /* A link (systemd-resolved's stub) would lead elsewhere: replaced. */
    unlink(at(resolv, "/etc/resolv.conf"));
    unlink(at(hostname, "/etc/hostname"));
    rc |= write_text(hostname, 0644, "%s\n", s->hostname);
    rc |= write_resolv_conf(&s->net);
    if (rc != 0)
        return guest_fail(why, whylen, errno, "writing the image's /etc");
    if (sethostname(s->hostname, strlen(s->hostname)) < 0)
        return guest_fail(why, whylen, errno, "setting the hostname");
    return 0;
}

/* An image's or a tree's own userland at R: what every session has on
 * top of it -- its /etc adjusted, kernel filesystems, a tmpfs /run and
 * /tmp, the home, volumes and shares -- then the switch. */
static int own_userland(const struct guest_session *s, char *why, size_t whylen)
{
    unsigned long f = MS_NOSUID | MS_NODEV;
    char home[4096];
    snprintf(home, sizeof home, R "%s", s->home);
    if (image_etc(s, why, whylen) < 0 || make_kernel_fs(why, whylen) < 0 ||
        mount_at("tmpfs", R "/run", "tmpfs", f, "mode=0755", why, whylen) < 0 ||
        mount_at("tmpfs", R "/tmp", "tmpfs", f, "mode=1777", why, whylen) < 0)
        return -1;
    if (access(home, F_OK) != 0 && mkdirs(home, 0700, s->uid, s->gid) < 0)
        return guest_fail(why, whylen, errno, "creating the home %s", s->home);
    if (make_disks(s, why, whylen) < 0 || make_shares(s, why, whylen) < 0 ||
        make_links(s, why, whylen) < 0)
        return -1;
    return switch_root(why, whylen);
}

/* --image: its root filesystem, writable (the host's overlay takes the
 * writes). */
static int image_root(const struct guest_session *s, char *why, size_t whylen)
{
    char disk[300], dev[300];
    const char *type = NULL;
    if (guest_wait_modules(why, whylen) < 0 ||
        guest_find_disk(s->image, disk, sizeof disk, "--image", why, whylen) < 0 ||
        guest_image_root(disk, dev, sizeof dev, &type, why, whylen) < 0 ||
        guest_load_fs_modules(strcmp(type, "ext4") != 0, why, whylen) < 0)
        return -1;
    if (mkdirs(R, 0755, 0, 0) < 0)
        return guest_fail(why, whylen, errno, "creating %s", R);
    if (mount(dev, R, type, MS_NOATIME, NULL) < 0) {
        if (errno == ENODEV)
            return guest_fail(why, whylen, 0,
                              "--image: the guest kernel has no %s (neither built in nor a "
                              "module for it); use a kernel that has (--kernel)",
                              type);
        return guest_fail(why, whylen, errno, "mounting --image's %s root (%s)", type, dev);
    }
    guest_trace("image root mounted");
    return own_userland(s, why, whylen);
}

/* --rootfs: the host's tree, read-only over virtiofs, below an overlay
 * whose upper layer is on the scratch disk (or in a tmpfs). */
static int rootfs_root(const struct guest_session *s, char *why, size_t whylen)
{
    const char *rw = s->scratch ? SCRATCH "/root" : "/rootfs-rw";
    char upper[64], work[64], opts[256];
    snprintf(upper, sizeof upper, "%s/upper", rw);
    snprintf(work, sizeof work, "%s/work", rw);
    if (guest_wait_modules(why, whylen) < 0)
        return -1;
    if (s->scratch != NULL &&
        (mkdirs(SCRATCH, 0755, 0, 0) < 0 ||
         guest_mount_disk(s->scratch, SCRATCH, MS_NODEV, "the scratch disk", why, whylen) < 0))
        return -1;
    if (mkdirs("/rootfs-lower", 0755, 0, 0) < 0 ||
        mount(s->usr_tag, "/rootfs-lower", "virtiofs", MS_RDONLY, NULL) < 0)
        return guest_fail(why, whylen, errno, "mounting --rootfs's tree");
    if (mkdirs(rw, 0755, 0, 0) < 0 ||
        (s->scratch == NULL && mount("tmpfs", rw, "tmpfs", 0, "mode=0755") < 0) ||
        mkdirs(upper, 0755, 0, 0) < 0 || mkdirs(work, 0755, 0, 0) < 0)
        return guest_fail(why, whylen, errno, "making --rootfs's writable layer");
    snprintf(opts, sizeof opts,
             "lowerdir=/rootfs-lower,upperdir=%s,workdir=%s,redirect_dir=off,index=off,"
             "metacopy=off,xino=off",
             upper, work);
    if (mkdirs(R, 0755, 0, 0) < 0 || mount("overlay", R, "overlay", 0, opts) < 0)
        return guest_fail(why, whylen, errno, "mounting --rootfs's tree as the root");
    guest_trace("rootfs mounted");
    return own_userland(s, why, whylen);
}

int guest_setup_agent(const struct guest_session *s, char *why, size_t whylen)
{
    root_at = "";
    if (image_etc(s, why, whylen) < 0)
        return -1;
    if (access(s->home, F_OK) != 0 && mkdirs(s->home, 0700, s->uid, s->gid) < 0)
        return guest_fail(why, whylen, errno, "creating the home %s", s->home);
    return make_disks(s, why, whylen) < 0 || make_shares(s, why, whylen) < 0 ||
                   make_links(s, why, whylen) < 0
               ? -1
               : 0;
}

int guest_setup_root(const struct guest_session *s, char *why, size_t whylen)
{
    if (s->image)
        return image_root(s, why, whylen);
    if (s->rootfs)
        return rootfs_root(s, why, whylen);
    if (mount_at("tmpfs", R, "tmpfs", 0, "mode=0755", why, whylen) < 0)
        return -1;
    /* What needs no disk module first, while a child still loads them. */
    if (mount_usr_base(s, why, whylen) < 0 || make_etc(s, why, whylen) < 0 ||
        make_kernel_fs(why, whylen) < 0)
        return -1;
    guest_trace("/usr, /etc, /dev, /proc and /sys ready");
    if (guest_wait_modules(why, whylen) < 0)
        return -1;
    guest_trace("disk modules loaded");
    if (s->scratch != NULL && mkdirs(SCRATCH, 0755, 0, 0) < 0)
        return guest_fail(why, whylen, errno, "creating " SCRATCH);
    if (s->scratch != NULL &&
        guest_mount_disk(s->scratch, SCRATCH, MS_NODEV, "the scratch disk", why, whylen) < 0)
        return -1;
    guest_trace("scratch disk mounted");
    if (make_usr(s, why, whylen) < 0 || make_scratch(s, why, whylen) < 0 ||
        make_disks(s, why, whylen) < 0 || make_shares(s, why, whylen) < 0 ||
        make_links(s, why, whylen) < 0)
        return -1;
    if (mkdirs(R "/root", 0700, 0, 0) < 0 || mkdirs(R "/mnt", 0755, 0, 0) < 0 ||
        mkdirs(R "/opt", 0755, 0, 0) < 0 || mkdirs(R "/srv", 0755, 0, 0) < 0)
        return guest_fail(why, whylen, errno, "creating top-level directories");
    return switch_root(why, whylen);
}
