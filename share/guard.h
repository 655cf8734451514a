/* guard: the disk limits of read-write shares (--share-limit, --min-free).
 *
 * Owns: which filesystems hold the read-write shares (submounts inside a
 * share included: virtiofsd serves them too), their usage sampled with
 * statvfs, and the decision whether a limit is crossed.  Knows nothing
 * about QMP, the terminal or the session: the caller samples on its own
 * timer and pauses the VM.
 *
 * What counts is what the host loses: the growth of each filesystem's
 * used blocks and used inodes since the session started, summed over the
 * filesystems, each counted once.  That is what any path the guest
 * controls costs -- data, sparse files (only their allocated blocks),
 * fallocate, directories, many small files (inodes) -- and it cannot be
 * hidden by rewriting or by writing through another share.  Other host
 * writers on the same filesystems count too: the limit errs on the side
 * of pausing.  (virtiofsd's write counters would miss fallocate, mkdir
 * and the blocks a one-byte write allocates.)
 *
 * guard.c is pure (the decision, the floors, the messages, mountinfo);
 * guard-fs.c makes the system calls. */
#ifndef MVM_GUARD_H
#define MVM_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* One inode counts as this many bytes of --share-limit, so SIZE also
 * allows SIZE / 4 KiB new files and directories; --min-free SIZE keeps
 * the same fraction of the inodes free as SIZE is of the space. */
#define MVM_GUARD_INODE_BYTES 4096u

/* How fast the guest is assumed to be able to fill a filesystem: the
 * sampling interval is the headroom at that rate, within the bounds
 * below, so sampling is rare far from a limit and every 10 ms near it. */
#define MVM_GUARD_RATE_BYTES (1024ull * 1024 * 1024) /* per second */
#define MVM_GUARD_RATE_FILES 100000ull               /* per second */
#define MVM_GUARD_MIN_MS     10u
#define MVM_GUARD_MAX_MS     200u

struct mvm_guard_limits {
    uint64_t share_limit; /* bytes the session may add; 0: no limit */
    bool min_free_percent;
    uint64_t min_free; /* bytes, or a percentage (0-99); 0: no floor */
};

/* A filesystem's usage: bytes and inodes, from statvfs.  avail is what
 * an unprivileged writer (virtiofsd) may still take. */
struct mvm_fs_usage {
    uint64_t bytes, bytes_used, bytes_avail;
    uint64_t files, files_used, files_avail; /* files 0: no inode count (btrfs) */
};

struct mvm_guard_fs {
    char *path; /* a share (or a mount inside one) on it, for messages */
    int fd;
    dev_t dev;
    struct mvm_fs_usage base, now;
    uint64_t floor_bytes, floor_files;
};

struct mvm_guard {
    struct mvm_guard_limits lim;
    struct mvm_guard_fs *fs;
    size_t nfs;
};

enum mvm_guard_what {
    MVM_GUARD_OK,
    MVM_GUARD_LIMIT_BYTES, /* the shares grew by more than --share-limit */
    MVM_GUARD_LIMIT_FILES, /* ... or by more inodes than it allows */
    MVM_GUARD_FLOOR_BYTES, /* a filesystem's free space fell below --min-free */
    MVM_GUARD_FLOOR_FILES, /* ... or its free inodes */
};

struct mvm_guard_verdict {
    enum mvm_guard_what what;
    size_t fs; /* the filesystem, for the floors */
    uint64_t added_bytes, added_files;
};

/* Pure: the floors of --min-free for a filesystem of usage u. */
void mvm_guard_floors(const struct mvm_guard_limits *l, const struct mvm_fs_usage *u,
                      uint64_t *floor_bytes, uint64_t *floor_files);
/* Pure: whether g's latest samples (fs[].now against fs[].base) cross a
 * limit; the first one crossed, and what the session added, in v. */
enum mvm_guard_what mvm_guard_check(const struct mvm_guard *g, struct mvm_guard_verdict *v);
/* Pure: what v means, for the user ("the read-write shares grew by ..."). */
char *mvm_guard_describe(const struct mvm_guard *g, const struct mvm_guard_verdict *v);
/* Pure: milliseconds until the next sample (see MVM_GUARD_RATE_*). */
unsigned mvm_guard_next_ms(const struct mvm_guard *g);
/* Pure: "12.5 MiB" and the like (a buffer of 24). */
void mvm_guard_size(uint64_t bytes, char out[24]);
/* Pure: the mount points strictly below dir in a /proc/self/mountinfo
 * text, unescaped, in its order.  Free with mvm_strv_free(). */
char **mvm_guard_mounts_below(const char *mountinfo, const char *dir, size_t *n);

/* guard-fs.c: opens the filesystems holding dirs (the read-write shares)
 * and what is mounted below them, once each, takes the first sample and
 * the floors.  Refused when one is already below its floor, naming it
 * and the ways out.  With no limit at all, g stays empty. */
int mvm_guard_open(struct mvm_guard *g, const struct mvm_guard_limits *l, char *const *dirs,
                   size_t ndirs, struct mvm_error **err);
/* guard-fs.c: samples every filesystem into fs[].now. */
int mvm_guard_sample(struct mvm_guard *g, struct mvm_error **err);
bool mvm_guard_active(const struct mvm_guard *g);
void mvm_guard_clear(struct mvm_guard *g);

#endif
