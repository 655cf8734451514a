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

/* 1 to max letters (upper case too if upper), digits, '.', '_' or '-',
 * the first a letter or digit: volume and image names.  Pure. */
bool mvm_disk_name_chars_ok(const char *name, size_t max, bool upper);
/* True for [A-Za-z0-9][A-Za-z0-9._-]{0,63} without "..". */
bool mvm_disk_name_ok(const char *name);

/* bytes as "512B", "4.0G", "12M" (1024-based, one decimal under 10). */
void mvm_disk_human_size(uint64_t bytes, char out[16]);

/* True if s ends with suffix. */
bool mvm_disk_has_suffix(const char *s, const char *suffix);

/* A value from the command line (or a caller) for a message: at most 80
 * bytes of it, control characters replaced; the caller frees it. */
char *mvm_disk_shown(const char *s);

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
    const char *root_dir; /* NULL: empty; else its tree copied in (-d) */
    const int *sigfd;     /* NULL, or a signalfd that stops mkfs (image build) */
};

/* mkfs.ext4's argv for image, mkfs first; free with mvm_strv_free(). */
char **mvm_disk_mkfs_argv(const char *mkfs, const char *image, const struct mvm_disk_mkfs *o);

/* --- imagerecipe.c: mvm image's pure part --- */

char **mvm_image_mmdebstrap_argv(const char *tool, const struct mvm_image_recipe *r,
                                 const char *out);
char **mvm_image_untar_argv(const char *tool, const char *tar, const char *dir);
char **mvm_image_convert_argv(const char *tool, const char *raw, const char *qcow2);
/* The ext4 image's size for a tree of content_bytes: a quarter more plus
 * MVM_IMAGE_HEADROOM_MIB, in whole 256 MiB. */
uint64_t mvm_image_size_mib(uint64_t content_bytes);
/* The tarball cache's key: variant, suite, mirror, packages. */
void mvm_image_cache_key(const struct mvm_image_recipe *r, char hex[33]);
void mvm_image_hex(const uint8_t digest[32], char hex[65]);

/* What the recipe file records beside the recipe. */
struct mvm_image_meta {
    const char *version;
    time_t created;
    uint64_t size, virtual_size; /* the qcow2 file's bytes; the disk's */
    char digest[65];             /* the qcow2 file's SHA-256, hex */
    long builder_uid;            /* who ran mvm image build (SUDO_UID) */
    const char *kernel;          /* the release --boot image boots, or NULL */
};
/* NAME.json's text (indented, a newline at the end). */
char *mvm_image_recipe_json(const struct mvm_image_recipe *r, const struct mvm_image_meta *m);

/* One line of mvm image ls. */
struct mvm_image_entry {
    char *name, *from, *created; /* created as the recipe has it */
    uint64_t size;
};
void mvm_image_table(FILE *out, const struct mvm_image_entry *e, size_t n);

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

/* The first executable of a NULL-terminated list of paths, or NULL. */
const char *mvm_disk_find_tool(const char *const *paths);
extern const char *const mvm_disk_qemu_img[];

/* Creates dirfd/name (O_EXCL, 0600; path: the same, in full, for mkfs
 * and messages), locks it (flock LOCK_EX), sizes it to size_mib and
 * formats it.  On failure nothing is left.  Fills d, created = true. */
int mvm_disk_image_create(int dirfd, const char *name, const char *path, uint64_t size_mib,
                          const char *mkfs, const struct mvm_disk_mkfs *o, struct mvm_disk *d,
                          struct mvm_error **err);

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
