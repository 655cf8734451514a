/* Internal to the audit (audit.c, audit-walk.c): the tree walk and the
 * file operations, all relative to directory descriptors, none
 * following a symlink or crossing into another file system.  Not a
 * public interface. */
#ifndef MVM_AUDIT_INT_H
#define MVM_AUDIT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

struct audit_entry_view {
    const char *path; /* relative to the top, no leading '/' */
    size_t path_len;
    const char *name; /* its last component */
    int dirfd;        /* the directory holding it */
    struct stat st;   /* lstat */
    bool unreadable;  /* a directory that could not be opened */
};

/* 0: go on (into a directory); 1: not into this directory; <0: stop. */
typedef int (*audit_walk_fn)(void *arg, const struct audit_entry_view *e);

/* Walks the tree below rootfd (on device dev) in pre-order: every entry
 * is lstat'ed, directories on other devices or deeper than
 * MVM_AUDIT_MAX_DEPTH are not entered (*incomplete set for depth).
 * Returns 0, or what fn returned to stop it. */
int audit_walk(int rootfd, dev_t dev, audit_walk_fn fn, void *arg, bool *incomplete);

/* The directory holding rel (relative to rootfd), opened component by
 * component without following symlinks or leaving dev; *name points at
 * rel's last component.  -1 with errno. */
int audit_open_parent(int rootfd, dev_t dev, const char *rel, const char **name);

/* A regular file's content (at most max bytes), opened without
 * following a symlink or blocking on a FIFO.  NULL with errno (EFBIG
 * when larger, EINVAL when not a regular file). */
char *audit_read_at(int dirfd, const char *name, size_t max, size_t *len);

/* rm -rf of name in dirfd: nothing followed; not a directory on another
 * device. */
int audit_remove_at(int dirfd, const char *name, dev_t dev);

/* Replaces name in dirfd, atomically (a temporary name, then rename),
 * with a regular file (data, mode, mtime) or a symlink to target. */
int audit_replace_file(int dirfd, const char *name, const char *data, size_t len, mode_t mode,
                       const struct timespec *mtime);
int audit_replace_link(int dirfd, const char *name, const char *target);

/* chmod of name in dirfd without following a symlink. */
int audit_chmod_at(int dirfd, const char *name, mode_t mode);

/* ---- the snapshot (audit.c) ------------------------------------------ */

#define AUDIT_NO_DATA   UINT32_MAX
#define AUDIT_MAX_HOOKS 16 /* core.hooksPath directories inside the share */

/* One entry of the tree before the run; strings in the pool. */
struct audit_entry {
    uint64_t ino, size;
    int64_t mtime_ns, ctime_ns;
    uint32_t mode, uid;
    uint32_t path, path_len;
    uint32_t data, data_len; /* link target or kept content; AUDIT_NO_DATA: none */
};

struct audit_span {
    uint32_t off, len;
};

/* What the snapshot child sends: this, the entries, the pool. */
struct audit_snap_header {
    uint64_t magic;
    uint64_t n, pool_len;
    uint64_t dev, ino; /* the top's */
    uint32_t nhooks, incomplete;
    struct audit_span hooks[AUDIT_MAX_HOOKS];
};

struct audit_index {
    uint32_t *slots; /* entry index + 1; 0: empty */
    size_t mask;
};

struct mvm_audit_snap {
    char *dir;
    uid_t uid;
    gid_t gid;
    char *raw; /* header, entries, pool, as received */
    struct audit_snap_header h;
    const struct audit_entry *e;
    const char *pool;
    struct audit_index index;
};

void audit_index_build(struct audit_index *ix, const struct audit_entry *e, size_t n,
                       const char *pool);
/* The entry at path, or NULL. */
const struct audit_entry *audit_index_find(const struct audit_index *ix,
                                           const struct audit_entry *e, const char *pool,
                                           const char *path, size_t len);
void audit_index_free(struct audit_index *ix);

/* Whether the entry at path was one git takes hooks from (core.hooksPath
 * before the run, inside the share). */
bool audit_in_hook_dir(const struct mvm_audit_snap *snap, const char *path);

static inline int64_t audit_ns(const struct timespec *t)
{
    return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec;
}

static inline bool audit_has_data(const struct audit_entry *e)
{
    return e->data_len != AUDIT_NO_DATA;
}

#endif
