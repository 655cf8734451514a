/* The jail's file system, built in the child inside its new mount
 * namespace: a small read-only tmpfs root holding /usr (read-only), the
 * /bin /lib /lib64 /sbin links (or read-only binds where /usr is not
 * merged), /etc/ld.so.cache for the loader, a /dev with only null, zero,
 * full, urandom (and kvm when used), and the files the caller binds in.
 * No /proc, no session directory, nothing else of the host. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jail.h"
#include "syscalls.h"
#include "util.h"

/* Where the new root is assembled, in our private mount namespace. */
#define STAGE "/tmp"

/* Recursive read-only (and nosuid, nodev) on a bind mount and its
 * submounts; the top mount only on kernels before 5.12. */
static int make_readonly(const char *path, bool dev)
{
    uint64_t set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | (dev ? 0 : MOUNT_ATTR_NODEV);
    if (mvm_mount_setattr_recursive(path, set) == 0)
        return 0;
    if (errno != ENOSYS)
        return -1;
    unsigned long f = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | (dev ? 0 : MS_NODEV);
    return mount(NULL, path, NULL, f, NULL);
}

/* Binds host src at dst (inside STAGE), read-only. */
static int bind_ro(const char *src, const char *dst, bool dev)
{
    char path[4096];
    if (snprintf(path, sizeof path, STAGE "%s", dst) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    struct stat st;
    if (stat(src, &st) < 0) /* src may be /proc/self/fd/N: stat and mount follow it */
        return -1;
    if (S_ISDIR(st.st_mode)) {
        if (mkdir_p(path, 0755) < 0)
            return -1;
    } else {
        char *slash = strrchr(path, '/');
        *slash = '\0';
        int rc = mkdir_p(path, 0755);
        *slash = '/';
        if (rc < 0)
            return -1;
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return -1;
        close(fd);
    }
    if (mount(src, path, NULL, MS_BIND | MS_REC, NULL) < 0)
        return -1;
    return make_readonly(path, dev);
}

/* Top-level loader directories: a link where the host links into /usr
 * (merged /usr), a read-only bind where it has a real directory. */
static int loader_dirs(void)
{
    static const char *const dirs[] = {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char target[256], path[64];
        struct stat st;
        if (lstat(dirs[i], &st) < 0)
            continue;
        snprintf(path, sizeof path, STAGE "%s", dirs[i]);
        if (S_ISLNK(st.st_mode)) {
            ssize_t n = readlink(dirs[i], target, sizeof target - 1);
            if (n < 0)
                return -1;
            target[n] = '\0';
            if (symlink(target, path) < 0)
                return -1;
        } else if (S_ISDIR(st.st_mode) && bind_ro(dirs[i], dirs[i], false) < 0) {
            return -1;
        }
    }
    return 0;
}

static int make_dev(bool kvm)
{
    static const char *const nodes[] = {"null", "zero", "full", "urandom", "kvm"};
    if (mkdir(STAGE "/dev", 0755) < 0 ||
        mount("tmpfs", STAGE "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") < 0)
        return -1;
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
        char host[32], jail[32];
        if (strcmp(nodes[i], "kvm") == 0 && !kvm)
            continue;
        snprintf(host, sizeof host, "/dev/%s", nodes[i]);
        snprintf(jail, sizeof jail, "/dev/%s", nodes[i]);
        /* Read-only mounts do not stop writes to device nodes. */
        if (bind_ro(host, jail, true) < 0)
            return -1;
    }
    return make_readonly(STAGE "/dev", true);
}

static int pivot(void)
{
    /* pivot_root(".", ".") stacks the old root on top of the new one;
     * detaching it leaves only the new root. */
    if (chdir(STAGE) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 ||
        chdir("/") < 0)
        return -1;
    return mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL);
}

/* The caller's files may live below STAGE (a kernel in /tmp): hold them
 * by descriptor before the staging tmpfs hides them, and bind them from
 * /proc/self/fd (the host's /proc is still there until the pivot). */
static int open_sources(const struct mvm_jail *j, int *fds, const char **what)
{
    for (size_t i = 0; i < j->nbinds; i++) {
        *what = j->binds[i].src;
        fds[i] = open(j->binds[i].src, O_PATH | O_CLOEXEC);
        if (fds[i] < 0)
            return -1;
    }
    return 0;
}

static int bind_sources(const struct mvm_jail *j, const int *fds, const char **what)
{
    for (size_t i = 0; i < j->nbinds; i++) {
        char src[64];
        snprintf(src, sizeof src, "/proc/self/fd/%d", fds[i]);
        *what = j->binds[i].dst;
        if (bind_ro(src, j->binds[i].dst, false) < 0)
            return -1;
        close(fds[i]);
    }
    return 0;
}

int mvm_jail_enter_root(const struct mvm_jail *j, const char **what)
{
    int fds[16];
    if (j->nbinds > 16) {
        *what = "binding files into the jail";
        errno = E2BIG;
        return -1;
    }
    if (open_sources(j, fds, what) < 0)
        return -1;
    *what = "making mounts private";
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return -1;
    *what = "creating the jail's root";
    if (mount("tmpfs", STAGE, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") < 0)
        return -1;
    *what = "binding /usr into the jail";
    if (bind_ro("/usr", "/usr", false) < 0 || loader_dirs() < 0)
        return -1;
    *what = "binding the loader cache into the jail";
    if (access("/etc/ld.so.cache", F_OK) == 0 &&
        bind_ro("/etc/ld.so.cache", "/etc/ld.so.cache", false) < 0)
        return -1;
    *what = "creating the jail's /dev";
    if (make_dev(j->dev_kvm) < 0)
        return -1;
    if (bind_sources(j, fds, what) < 0)
        return -1;
    /* A fresh procfs of the jail's own PID namespace: it shows the jail's
     * processes only, read-only, and only where a helper needs one. */
    *what = "mounting the jail's /proc";
    if (j->proc && (mkdir(STAGE "/proc", 0555) < 0 ||
                    mount("proc", STAGE "/proc", "proc",
                          MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL) < 0))
        return -1;
    *what = "entering the jail's root";
    return pivot();
}
