/* The disk guard's system calls: the filesystems holding the read-write
 * shares, opened once each, and their usage from fstatvfs. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "guard.h"
#include "util.h"

static int usage_of(int fd, const char *path, struct mvm_fs_usage *u, struct mvm_error **err)
{
    struct statvfs st;
    if (fstatvfs(fd, &st) < 0)
        return mvm_error_set(err, errno, "reading the free space of the filesystem holding %s",
                             path);
    uint64_t bs = st.f_frsize ? st.f_frsize : st.f_bsize;
    *u = (struct mvm_fs_usage){
        .bytes = (uint64_t)st.f_blocks * bs,
        .bytes_used = (uint64_t)(st.f_blocks - st.f_bfree) * bs,
        .bytes_avail = (uint64_t)st.f_bavail * bs,
        .files = st.f_files,
        .files_used = st.f_files - st.f_ffree,
        .files_avail = st.f_favail,
    };
    return 0;
}

bool mvm_guard_active(const struct mvm_guard *g)
{
    return g->nfs > 0;
}

/* Adds path's filesystem unless one of g's is the same. */
static int add_fs(struct mvm_guard *g, const char *path, struct mvm_error **err)
{
    /* O_PATH: fstatvfs needs no right to read the directory (root may
     * be squashed on a network filesystem the user can read). */
    cleanup_close int fd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return mvm_error_set(err, errno, "opening %s to watch its free space", path);
    for (size_t i = 0; i < g->nfs; i++)
        if (g->fs[i].dev == st.st_dev)
            return 0;
    struct mvm_guard_fs f = {.fd = -1, .dev = st.st_dev};
    if (usage_of(fd, path, &f.base, err) < 0)
        return -1;
    f.now = f.base;
    mvm_guard_floors(&g->lim, &f.base, &f.floor_bytes, &f.floor_files);
    f.path = xstrdup(path);
    f.fd = steal_fd(&fd);
    g->fs = xrealloc(g->fs, (g->nfs + 1) * sizeof *g->fs);
    g->fs[g->nfs++] = f;
    return 0;
}

int mvm_guard_open(struct mvm_guard *g, const struct mvm_guard_limits *l, char *const *dirs,
                   size_t ndirs, struct mvm_error **err)
{
    *g = (struct mvm_guard){.lim = *l};
    if (l->share_limit == 0 && l->min_free == 0)
        return 0;
    cleanup_free char *mountinfo = read_file("/proc/self/mountinfo", 64 * 1024 * 1024, NULL);
    if (mountinfo == NULL)
        return mvm_error_set(err, errno, "reading /proc/self/mountinfo");
    for (size_t i = 0; i < ndirs; i++) {
        if (add_fs(g, dirs[i], err) < 0)
            return -1;
        /* virtiofsd serves what is mounted inside a share too. */
        size_t n;
        char **below = mvm_guard_mounts_below(mountinfo, dirs[i], &n);
        int rc = 0;
        for (size_t j = 0; j < n && rc == 0; j++)
            rc = add_fs(g, below[j], err);
        mvm_strv_free(below);
        if (rc < 0)
            return -1;
    }
    /* Below the floor already: the first write would pause the VM. */
    struct mvm_guard_verdict v;
    if (mvm_guard_check(g, &v) != MVM_GUARD_OK) {
        cleanup_free char *what = mvm_guard_describe(g, &v);
        return mvm_error_set(err, 0,
                             "%s; free some space there, or lower --min-free (0 turns the "
                             "floor off)",
                             what);
    }
    return 0;
}

int mvm_guard_sample(struct mvm_guard *g, struct mvm_error **err)
{
    for (size_t i = 0; i < g->nfs; i++)
        if (usage_of(g->fs[i].fd, g->fs[i].path, &g->fs[i].now, err) < 0)
            return -1;
    return 0;
}

void mvm_guard_clear(struct mvm_guard *g)
{
    for (size_t i = 0; i < g->nfs; i++) {
        if (g->fs[i].fd >= 0)
            close(g->fs[i].fd);
        free(g->fs[i].path);
    }
    free(g->fs);
    struct mvm_guard_limits l = g->lim;
    *g = (struct mvm_guard){.lim = l};
}
