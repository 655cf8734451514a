/* disk: the ext4 image files a session's QEMU opens as virtio-blk disks --
 * persistent per-user volumes (root/<uid>/<name>.ext4, kept between
 * sessions) and per-session scratch disks (unlinked at once, gone with the
 * last fd).  The host only creates, sizes, formats, locks, lists and
 * removes them: it never mounts them or reads what the guest wrote (only
 * the superblock magic).
 *
 * A volume belongs to the user who made it because it lives in that uid's
 * own directory (0700, root's): another uid looks in its own and cannot
 * name it.  An open volume is held by flock(LOCK_EX) on its fd, which the
 * caller hands to QEMU; the lock lasts as long as any copy of that fd. */
#ifndef MVM_DISK_H
#define MVM_DISK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "error.h"

#define MVM_VOLUME_DIR         "/var/lib/mvm/volumes"
#define MVM_SCRATCH_DIR        "/var/lib/mvm/scratch"
#define MVM_OVERLAY_DIR        "/var/lib/mvm/overlays"
#define MVM_VOLUME_DEFAULT_MIB (4 * 1024)
#define MVM_VOLUME_NAME_MAX    64

struct mvm_disk {
    int fd;              /* O_RDWR, close-on-exec; -1 when closed */
    char *path;          /* for messages (a scratch disk's is unlinked) */
    uint64_t size_bytes; /* the image's actual size */
    bool created;        /* made (and formatted) by this call */
};

/* Closes fd (the lock goes with the last copy of it) and frees path.
 * Safe with fd -1 (as every function here leaves d when it fails) and
 * twice. */
void mvm_disk_close(struct mvm_disk *d);

/* A volume name is [A-Za-z0-9][A-Za-z0-9._-]{0,63} without "..".  Pure. */
int mvm_volume_name_check(const char *name, struct mvm_error **err);

/* Opens root/<uid>/<name>.ext4 read-write and locks it, creating root
 * (0755), root/<uid> (0700) and the volume (size_mib, 0 for the default;
 * ext4 whose root directory uid:gid owns) when missing.  An existing
 * volume keeps its size (d->size_bytes says it).  Refused when another fd
 * holds it ("in use"), when it or its directory is not what mvm made
 * (symlink, other owner, writable by others), or when it has no ext4
 * superblock (an interrupted creation).  Nothing is left behind on
 * failure.  Its mtime becomes now: the "last use" that mvm volume ls
 * shows. */
int mvm_volume_open(const char *root, uid_t uid, gid_t gid, const char *name, uint64_t size_mib,
                    struct mvm_disk *d, struct mvm_error **err);

/* Prints uid's volumes as a table (NAME SIZE USED LAST-USE STATE, sorted
 * by name) to out, or the line "no volumes" when there are none. */
int mvm_volume_list(const char *root, uid_t uid, FILE *out, struct mvm_error **err);

/* Removes root/<uid>/<name>.ext4 unless a session holds it. */
int mvm_volume_remove(const char *root, uid_t uid, const char *name, struct mvm_error **err);

/* Creates dir/<id>.img (dir 0700, parents 0755) of size_mib, formats it
 * ext4 without a journal (root directory root's: the guest lays it out),
 * and unlinks it at once: only d->fd keeps it, so nothing is left once
 * its holders exit, even after kill -9. */
int mvm_scratch_create(const char *dir, const char *id, uint64_t size_mib, struct mvm_disk *d,
                       struct mvm_error **err);

/* The installed mkfs.ext4, or an error saying how to install it. */
int mvm_disk_mkfs_find(const char **path, struct mvm_error **err);

/* Removes the *.img files in dir older than a minute: what a crash
 * between creation and unlinking left.  Returns the number removed. */
int mvm_scratch_cleanup(const char *dir, struct mvm_error **err);

/* --- baseimage.c: --image --- */

/* How much of an image's start the probe reads: past btrfs's superblock. */
#define MVM_IMAGE_HEAD 0x10048

enum mvm_image_format { MVM_IMAGE_RAW, MVM_IMAGE_QCOW2 };

struct mvm_image_info {
    enum mvm_image_format format;
    uint64_t virtual_size; /* the disk the guest sees, bytes */
    const char *kind;      /* "qcow2", or a raw image's "ext4", "gpt"... */
};

/* Probes an image's first n bytes (at most MVM_IMAGE_HEAD) of a file of
 * file_size bytes: qcow2 (version 2 or 3, no backing file, not
 * encrypted) or raw holding an ext4, xfs or btrfs filesystem or a GPT or
 * MBR partition table; other formats QEMU knows are refused by name.
 * shown names it in errors.  Pure. */
int mvm_image_probe(const unsigned char *head, size_t n, uint64_t file_size, const char *shown,
                    struct mvm_image_info *info, struct mvm_error **err);

struct mvm_image {
    int fd;         /* the base, O_RDONLY; -1 when closed */
    int overlay_fd; /* the session's qcow2 overlay, O_RDWR, unlinked; or -1 */
    char *path;
    struct mvm_image_info info;
};

/* Opens path read-only for --image: a child with the user's rights must
 * be able to open it (a regular file or block device), then mvm opens
 * the same inode for itself, and probes it. */
int mvm_image_open(const char *path, uid_t uid, gid_t gid, struct mvm_image *img,
                   struct mvm_error **err);

/* The session's overlay: dir/<id>.qcow2 (dir 0700), formatted by
 * qemu-img with the base's virtual size and no backing file in its
 * header, opened, locked and unlinked at once, so it is gone with the
 * session even after kill -9 and the base is never written. */
int mvm_image_overlay(const char *dir, const char *id, struct mvm_image *img,
                      struct mvm_error **err);

/* Removes *.qcow2 in dir older than a minute that nobody holds (a crash
 * between creation and unlinking).  Returns the number removed. */
int mvm_image_overlay_cleanup(const char *dir, struct mvm_error **err);

/* Closes both descriptors; safe twice. */
void mvm_image_close(struct mvm_image *img);

#endif
