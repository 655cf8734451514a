/* The audit's tree walk and its file operations.  Everything goes
 * through directory descriptors opened with O_NOFOLLOW, so a name the
 * guest chose can never send mvm outside the share: a symlink is an
 * entry like any other, never a way somewhere.  The guest is gone when
 * these run (nothing races them), and they run as the invoking user. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit-int.h"
#include "audit.h"
#include "util.h"

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

struct walk {
    audit_walk_fn fn;
    void *arg;
    dev_t dev;
    struct buf path;
    bool incomplete;
};

static int walk_dir(struct walk *w, int fd, int depth);

/* Opens the directory e names if the walk goes into it: same device,
 * not too deep, and still the directory that was lstat'ed. */
static int open_subdir(struct walk *w, const struct audit_entry_view *e, int depth)
{
    if (!S_ISDIR(e->st.st_mode) || e->st.st_dev != w->dev)
        return -1;
    if (depth >= MVM_AUDIT_MAX_DEPTH) {
        w->incomplete = true;
        return -1;
    }
    int sub = openat(e->dirfd, e->name, DIR_FLAGS | O_NONBLOCK);
    struct stat st;
    if (sub >= 0 && (fstat(sub, &st) < 0 || st.st_ino != e->st.st_ino || st.st_dev != w->dev)) {
        close(sub);
        sub = -1;
    }
    return sub;
}

/* One entry of the directory open as dfd. */
static int walk_entry(struct walk *w, int dfd, const char *name, int depth)
{
    size_t saved = w->path.len;
    if (saved)
        buf_append(&w->path, "/", 1);
    buf_append(&w->path, name, strlen(name) + 1);
    w->path.len--;
    struct audit_entry_view e = {w->path.data, w->path.len, name, dfd, {0}, false};
    int rc = 0;
    /* Gone meanwhile (removed by a fix of ours): nothing to look at. */
    if (fstatat(dfd, name, &e.st, AT_SYMLINK_NOFOLLOW) == 0) {
        int sub = open_subdir(w, &e, depth);
        e.unreadable = S_ISDIR(e.st.st_mode) && e.st.st_dev == w->dev && sub < 0 &&
                       depth < MVM_AUDIT_MAX_DEPTH;
        rc = w->fn(w->arg, &e);
        if (rc == 0 && sub >= 0)
            rc = walk_dir(w, steal_fd(&sub), depth + 1);
        if (sub >= 0)
            close(sub);
        if (rc > 0)
            rc = 0;
    }
    w->path.len = saved;
    return rc;
}

/* Takes fd. */
static int walk_dir(struct walk *w, int fd, int depth)
{
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return 0;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        rc = walk_entry(w, dirfd(d), de->d_name, depth);
    }
    closedir(d);
    return rc;
}

int audit_walk(int rootfd, dev_t dev, audit_walk_fn fn, void *arg, bool *incomplete)
{
    struct walk w = {fn, arg, dev, {0}, false};
    buf_append(&w.path, "", 1);
    w.path.len = 0;
    int fd = openat(rootfd, ".", DIR_FLAGS);
    int rc = fd < 0 ? -errno : walk_dir(&w, fd, 0);
    if (w.incomplete && incomplete)
        *incomplete = true;
    buf_free(&w.path);
    return rc;
}

int audit_open_parent(int rootfd, dev_t dev, const char *rel, const char **name)
{
    int fd = openat(rootfd, ".", DIR_FLAGS);
    const char *c = rel;
    for (;;) {
        const char *slash = strchr(c, '/');
        if (fd < 0 || slash == NULL)
            break;
        char comp[NAME_MAX + 1];
        size_t n = (size_t)(slash - c);
        if (n == 0 || n > NAME_MAX) {
            close(fd);
            errno = EINVAL;
            return -1;
        }
        memcpy(comp, c, n);
        comp[n] = '\0';
        int next = openat(fd, comp, DIR_FLAGS);
        struct stat st;
        if (next >= 0 && (fstat(next, &st) < 0 || st.st_dev != dev)) {
            close(next);
            next = -1;
            errno = EXDEV;
        }
        int saved = errno;
        close(fd);
        errno = saved;
        fd = next;
        c = slash + 1;
    }
    *name = c;
    return fd;
}

char *audit_read_at(int dirfd, const char *name, size_t max, size_t *len)
{
    struct stat lst;
    if (fstatat(dirfd, name, &lst, AT_SYMLINK_NOFOLLOW) < 0)
        return NULL;
    if (!S_ISREG(lst.st_mode)) { /* never open a device node or FIFO */
        errno = EINVAL;
        return NULL;
    }
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    char *data = NULL;
    if (fstat(fd, &st) < 0)
        goto out;
    if (!S_ISREG(st.st_mode)) {
        errno = EINVAL;
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        errno = EFBIG;
        goto out;
    }
    data = xmalloc((size_t)st.st_size + 1);
    ssize_t n = read_full(fd, data, (size_t)st.st_size + 1);
    if (n < 0 || (size_t)n > (size_t)st.st_size) { /* grew under us: not what was sized */
        free(data);
        data = NULL;
        errno = n < 0 ? errno : EFBIG;
        goto out;
    }
    data[n] = '\0';
    *len = (size_t)n;
out:;
    int saved = errno;
    close(fd);
    errno = saved;
    return data;
}

/* A directory that is a mount point is refused; below the top, a
 * directory the guest made holds none (mounts are made on the host). */
int audit_remove_at(int dirfd, const char *name, dev_t dev)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -1;
    if (S_ISDIR(st.st_mode) && st.st_dev != dev) {
        errno = EXDEV;
        return -1;
    }
    return remove_tree_at(dirfd, name);
}

/* A fresh name beside the target, made by make(); renamed over it. */
static int replace_with(int dirfd, const char *name,
                        int (*make)(int dirfd, const char *tmp, const void *arg), const void *arg)
{
    char tmp[64];
    for (unsigned i = 0; i < 100; i++) {
        snprintf(tmp, sizeof tmp, ".mvm-restore-%d-%u", (int)getpid(), i);
        int rc = make(dirfd, tmp, arg);
        if (rc < 0 && errno == EEXIST)
            continue;
        if (rc < 0)
            return -1;
        if (renameat(dirfd, tmp, dirfd, name) < 0) {
            int saved = errno;
            unlinkat(dirfd, tmp, 0);
            errno = saved;
            return -1;
        }
        return 0;
    }
    errno = EEXIST;
    return -1;
}

struct file_spec {
    const char *data;
    size_t len;
    mode_t mode;
    const struct timespec *mtime;
};

static int make_file(int dirfd, const char *tmp, const void *arg)
{
    const struct file_spec *f = arg;
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    struct timespec times[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    if (f->mtime)
        times[1] = *f->mtime;
    int rc =
        write_all(fd, f->data, f->len) < 0 || fchmod(fd, f->mode) < 0 || futimens(fd, times) < 0
            ? -1
            : 0;
    int saved = errno;
    if (close(fd) < 0 && rc == 0)
        return -1;
    if (rc < 0) {
        unlinkat(dirfd, tmp, 0);
        errno = saved;
    }
    return rc;
}

int audit_replace_file(int dirfd, const char *name, const char *data, size_t len, mode_t mode,
                       const struct timespec *mtime)
{
    struct file_spec f = {data, len, mode, mtime};
    return replace_with(dirfd, name, make_file, &f);
}

static int make_link(int dirfd, const char *tmp, const void *arg)
{
    return symlinkat((const char *)arg, dirfd, tmp);
}

int audit_replace_link(int dirfd, const char *name, const char *target)
{
    return replace_with(dirfd, name, make_link, target);
}

int audit_chmod_at(int dirfd, const char *name, mode_t mode)
{
    /* glibc does this without following (O_PATH + /proc, or fchmodat2);
     * a symlink answers EOPNOTSUPP, and we never chmod one. */
    return fchmodat(dirfd, name, mode, AT_SYMLINK_NOFOLLOW);
}
