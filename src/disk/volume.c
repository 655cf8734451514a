/* Persistent per-user volumes: root/<uid>/<name>.ext4; see disk.h. */
#include "disk-int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define VOLUME_SUFFIX ".ext4"

static int in_use(struct mvm_error **err, const char *name)
{
    return mvm_error_set(err, 0,
                         "volume %s is in use by another session; stop that session or use "
                         "another name",
                         name);
}

static int no_volume(struct mvm_error **err, const char *name)
{
    return mvm_error_set(err, 0, "no volume %s (see mvm volume ls)", name);
}

/* Opens root/<uid>, creating it (and root) when create; *path names it. */
static int user_dir(const char *root, uid_t uid, bool create, char **path, struct mvm_error **err)
{
    cleanup_close int rootfd =
        mvm_disk_dir_open(AT_FDCWD, root, root, create ? 0755 : 0, true, err);
    if (rootfd < 0)
        return -1;
    char uid_name[16];
    snprintf(uid_name, sizeof uid_name, "%u", (unsigned)uid);
    cleanup_free char *p = xasprintf("%s/%s", root, uid_name);
    int fd = mvm_disk_dir_open(rootfd, uid_name, p, create ? 0700 : 0, false, err);
    if (fd >= 0)
        *path = steal_pointer(&p);
    return fd;
}

/* user_dir() without creating: 0 with *fd -1 when it does not exist. */
static int user_dir_existing(const char *root, uid_t uid, int *fd, char **path,
                             struct mvm_error **err)
{
    cleanup_error struct mvm_error *e = NULL;
    *fd = user_dir(root, uid, false, path, &e);
    if (*fd < 0 && e->errnum != ENOENT)
        return mvm_error_propagate(err, steal_pointer(&e));
    return 0;
}

enum { OPEN_ABSENT, OPEN_DONE, OPEN_AGAIN };

static int check_opened(int dirfd, const char *file, const char *name, const char *path, int fd,
                        struct stat *st, struct mvm_error **err)
{
    if (fstat(fd, st) < 0)
        return mvm_error_set(err, errno, "examining volume %s", name);
    if (!S_ISREG(st->st_mode))
        return mvm_error_set(err, 0, "volume %s (%s) is not a regular file; remove it", name, path);
    if (flock(fd, LOCK_EX | LOCK_NB) < 0)
        return errno == EWOULDBLOCK ? in_use(err, name)
                                    : mvm_error_set(err, errno, "locking volume %s", name);
    /* Removed (mvm volume rm) between our open and our lock: that file is
     * no volume any more. */
    struct stat now;
    if (fstatat(dirfd, file, &now, AT_SYMLINK_NOFOLLOW) < 0 || now.st_ino != st->st_ino ||
        now.st_dev != st->st_dev)
        return OPEN_AGAIN;
    return OPEN_DONE;
}

/* Opens and locks an existing volume into d. */
static int open_existing(int dirfd, const char *file, const char *name, const char *path,
                         struct mvm_disk *d, struct mvm_error **err)
{
    cleanup_close int fd = openat(dirfd, file, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return OPEN_ABSENT;
    if (fd < 0 && errno == ELOOP)
        return mvm_error_set(
            err, 0, "%s is a symlink, not a volume; remove it: sudo mvm volume rm %s", path, name);
    if (fd < 0 && errno == EISDIR)
        return mvm_error_set(err, 0, "volume %s (%s) is not a regular file; remove it", name, path);
    if (fd < 0)
        return mvm_error_set(err, errno, "opening %s", path);
    struct stat st;
    int rc = check_opened(dirfd, file, name, path, fd, &st, err);
    if (rc != OPEN_DONE)
        return rc;
    if (!mvm_disk_is_ext4(fd))
        return mvm_error_set(err, 0,
                             "volume %s (%s) has no ext4 filesystem (was its creation "
                             "interrupted?); remove it: sudo mvm volume rm %s",
                             name, path, name);
    d->fd = steal_fd(&fd);
    d->path = xstrdup(path);
    d->size_bytes = (uint64_t)st.st_size;
    d->created = false;
    return OPEN_DONE;
}

/* Creates the volume; 1 when another session created it first. */
static int create(int dirfd, const char *file, const char *path, uid_t uid, gid_t gid,
                  const char *name, uint64_t size_mib, struct mvm_disk *d, struct mvm_error **err)
{
    const char *mkfs = NULL;
    if (mvm_disk_mkfs_find(&mkfs, err) < 0)
        return -1;
    struct mvm_disk_mkfs o = {
        .label = name, .journal = true, .owner = true, .uid = uid, .gid = gid};
    cleanup_error struct mvm_error *e = NULL;
    if (mvm_disk_image_create(dirfd, file, path, size_mib ? size_mib : MVM_VOLUME_DEFAULT_MIB, mkfs,
                              &o, d, &e) == 0)
        return 0;
    if (e->errnum == EEXIST)
        return 1;
    mvm_error_propagate(err, steal_pointer(&e));
    return mvm_error_wrap(err, "creating volume %s", name);
}

static int open_or_create(int dirfd, const char *file, const char *path, uid_t uid, gid_t gid,
                          const char *name, uint64_t size_mib, struct mvm_disk *d,
                          struct mvm_error **err)
{
    /* Each retry follows another session's creation or removal. */
    for (int attempt = 0; attempt < 4; attempt++) {
        int rc = open_existing(dirfd, file, name, path, d, err);
        if (rc < 0 || rc == OPEN_DONE)
            return rc < 0 ? -1 : 0;
        if (rc == OPEN_ABSENT) {
            rc = create(dirfd, file, path, uid, gid, name, size_mib, d, err);
            if (rc <= 0)
                return rc;
        }
    }
    return mvm_error_set(err, 0, "volume %s keeps being created and removed; try again", name);
}

int mvm_volume_open(const char *root, uid_t uid, gid_t gid, const char *name, uint64_t size_mib,
                    struct mvm_disk *d, struct mvm_error **err)
{
    *d = (struct mvm_disk){.fd = -1};
    if (mvm_volume_name_check(name, err) < 0)
        return -1;
    cleanup_free char *dir = NULL;
    cleanup_close int dirfd = user_dir(root, uid, true, &dir, err);
    if (dirfd < 0)
        return mvm_error_wrap(err, "volume %s", name);
    cleanup_free char *file = xasprintf("%s" VOLUME_SUFFIX, name);
    cleanup_free char *path = xasprintf("%s/%s", dir, file);
    if (open_or_create(dirfd, file, path, uid, gid, name, size_mib, d, err) < 0)
        return -1;
    /* The last use, as mvm volume ls shows it. */
    if (futimens(d->fd, NULL) < 0) {
        int e = errno;
        mvm_disk_close(d);
        return mvm_error_set(err, e, "updating the time of last use of %s", path);
    }
    return 0;
}

static int compare_name(const void *a, const void *b)
{
    const struct mvm_disk_volume *x = a, *y = b;
    return strcmp(x->name, y->name);
}

/* The entry as a volume: false for anything that is not one. */
static bool describe(int dirfd, const char *file, struct mvm_disk_volume *v)
{
    struct stat st;
    if (!mvm_disk_has_suffix(file, VOLUME_SUFFIX) ||
        fstatat(dirfd, file, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
        return false;
    cleanup_free char *name = xstrndup(file, strlen(file) - strlen(VOLUME_SUFFIX));
    if (!mvm_disk_name_ok(name))
        return false;
    *v = (struct mvm_disk_volume){
        .name = steal_pointer(&name),
        .size = (uint64_t)st.st_size,
        .used = (uint64_t)st.st_blocks * 512,
        .last_use = st.st_mtime,
        .in_use = mvm_disk_locked(dirfd, file),
    };
    return true;
}

static int list_dir(int fd, const char *path, FILE *out, struct mvm_error **err)
{
    cleanup_dir DIR *dir = fdopendir(fd);
    if (dir == NULL) {
        int e = errno;
        close(fd);
        return mvm_error_set(err, e, "reading %s", path);
    }
    struct mvm_disk_volume *v = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        v = xrealloc(v, (n + 1) * sizeof *v);
        if (describe(dirfd(dir), de->d_name, &v[n]))
            n++;
    }
    qsort(v, n, sizeof *v, compare_name);
    mvm_disk_volume_table(out, v, n);
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
    return 0;
}

int mvm_volume_list(const char *root, uid_t uid, FILE *out, struct mvm_error **err)
{
    cleanup_free char *path = NULL;
    int fd = -1;
    if (user_dir_existing(root, uid, &fd, &path, err) < 0)
        return -1;
    if (fd < 0) {
        mvm_disk_volume_table(out, NULL, 0);
        return 0;
    }
    return list_dir(fd, path, out, err);
}

int mvm_volume_remove(const char *root, uid_t uid, const char *name, struct mvm_error **err)
{
    if (mvm_volume_name_check(name, err) < 0)
        return -1;
    cleanup_free char *dir = NULL;
    cleanup_close int dirfd = -1;
    if (user_dir_existing(root, uid, &dirfd, &dir, err) < 0)
        return -1;
    if (dirfd < 0)
        return no_volume(err, name);
    cleanup_free char *file = xasprintf("%s" VOLUME_SUFFIX, name);
    cleanup_free char *path = xasprintf("%s/%s", dir, file);
    cleanup_close int fd = openat(dirfd, file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 && errno == ENOENT)
        return no_volume(err, name);
    /* A symlink is no volume, and unlinking it leaves its target be. */
    if (fd < 0 && errno != ELOOP)
        return mvm_error_set(err, errno, "opening %s", path);
    if (fd >= 0 && fstat(fd, &st) < 0)
        return mvm_error_set(err, errno, "examining %s", path);
    if (fd >= 0 && S_ISDIR(st.st_mode))
        return mvm_error_set(err, 0, "%s is a directory, not a volume; remove it by hand", path);
    /* Held while unlinking: a session that opened it meanwhile sees it
     * gone once it has the lock, and starts over. */
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0)
        return errno == EWOULDBLOCK ? in_use(err, name)
                                    : mvm_error_set(err, errno, "locking volume %s", name);
    if (unlinkat(dirfd, file, 0) < 0)
        return mvm_error_set(err, errno, "removing %s", path);
    return 0;
}
