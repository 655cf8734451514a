/* Internals of disk/: the pure helpers (format.c) and the image and
 * directory operations that volume.c and scratch.c share (image.c). */
#ifndef MVM_DISK_INT_H
#define MVM_DISK_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include "disk.h"
#include "error.h"

/* --- format.c: pure --- */

/* True for [A-Za-z0-9][A-Za-z0-9._-]{0,63} without "..". */
bool mvm_disk_name_ok(const char *name);

/* bytes as "512B", "4.0G", "12M" (1024-based, one decimal under 10). */
void mvm_disk_human_size(uint64_t bytes, char out[16]);

/* True if s ends with suffix. */
bool mvm_disk_has_suffix(const char *s, const char *suffix);

/* One line of mvm volume ls. */
struct mvm_disk_volume {
    char *name;
    uint64_t size, used;
    time_t last_use;
    bool in_use;
};

/* Prints the table (header first) or "no volumes"; local time. */
void mvm_disk_volume_table(FILE *out, const struct mvm_disk_volume *v, size_t n);

/* How an image is formatted. */
struct mvm_disk_mkfs {
    const char *label; /* NULL: none; cut to ext4's 16 bytes */
    bool journal;
    bool owner; /* root directory owned by uid:gid (else root's) */
    uid_t uid;
    gid_t gid;
};

/* mkfs.ext4's argv for image, mkfs first; free with mvm_strv_free(). */
char **mvm_disk_mkfs_argv(const char *mkfs, const char *image, const struct mvm_disk_mkfs *o);

/* --- image.c: the OS side --- */

/* The superblock's magic at byte 1080 (ext2/3/4 alike). */
#define MVM_EXT4_MAGIC_OFFSET 1080
#define MVM_EXT4_MAGIC        0xEF53

/* Opens (creating it first when create_mode != 0, its parents 0755) the
 * directory path, at a directory fd or AT_FDCWD, following a symlink only
 * when follow; it must be owned by the euid and not writable by group or
 * others.  shown names it in messages.  Returns the fd; a missing one
 * fails with errnum ENOENT. */
int mvm_disk_dir_open(int at, const char *path, const char *shown, mode_t create_mode, bool follow,
                      struct mvm_error **err);

/* Creates dirfd/name (O_EXCL, 0600; path: the same, in full, for mkfs
 * and messages), locks it (flock LOCK_EX), sizes it to size_mib and
 * formats it.  On failure nothing is left.  Fills d, created = true. */
int mvm_disk_image_create(int dirfd, const char *name, const char *path, uint64_t size_mib,
                          const char *mkfs, const struct mvm_disk_mkfs *o, struct mvm_disk *d,
                          struct mvm_error **err);

/* Runs argv (argv[0] a full path) with /dev/null as stdin and stdout,
 * killed if mvm dies; a failure is "DOING with NAME: its stderr on one
 * line". */
int mvm_disk_run_tool(char **argv, const char *doing, struct mvm_error **err);

/* Removes the regular files NAME+suffix in dir older than a minute
 * that nobody holds (flock): what a crash between creating and
 * unlinking one left.  Returns the number removed. */
int mvm_disk_sweep(const char *dir, const char *suffix, struct mvm_error **err);

/* Whether another open file holds a flock on dirfd/name (a fresh open,
 * so the caller's own fds count as others). */
bool mvm_disk_locked(int dirfd, const char *name);

/* True when the fd's image has an ext2/3/4 superblock. */
bool mvm_disk_is_ext4(int fd);

#endif
