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
#define MVM_IMAGES_DIR         "/var/lib/mvm/images"
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

/* How mvm_disk_run_tool_with() runs a tool. */
struct mvm_disk_tool {
    int sigfd;           /* -1, or a signalfd: a signal on it SIGTERMs the tool */
    bool private_mounts; /* in a mount namespace of its own (MS_PRIVATE) */
    bool tail;           /* an error shows stderr's last lines, not its first */
    const char *tmpdir;  /* NULL, or TMPDIR in its environment */
};

/* Runs argv (argv[0] a full path) with /dev/null as stdin and stdout,
 * killed if mvm dies; a failure is "DOING with NAME: its stderr on one
 * line"; a signal on t->sigfd is "DOING: interrupted (...)" with exit
 * code 128+N. */
int mvm_disk_run_tool_with(char **argv, const struct mvm_disk_tool *t, const char *doing,
                           struct mvm_error **err);
int mvm_disk_run_tool(char **argv, const char *doing, struct mvm_error **err);

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

/* For mvm image build's provisioning VM only: root's own raw image at
 * path, opened read-write; the guest's writes go to it (no overlay). */
int mvm_image_open_writable(const char *path, struct mvm_image *img, struct mvm_error **err);

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

/* --- imagerecipe.c, imagestore.c, imagebuild.c: mvm image --- */

/* Images that mvm image build made: MVM_IMAGES_DIR/NAME.qcow2 (0644,
 * root's, in a 0755 directory: every user may boot them) beside
 * NAME.json, the recipe and the qcow2 file's digest.  A build works in
 * MVM_IMAGES_DIR/.build-NAME-PID (0700, flock'ed while it runs), which
 * its failure removes and a later build or mvm cleanup sweeps. */
#define MVM_IMAGE_NAME_MAX     64
#define MVM_IMAGE_VARIANT      "minbase"
#define MVM_IMAGE_HEADROOM_MIB 2048
#define MVM_IMAGE_SCRIPT_MAX   (64 * 1024)
/* Where a build's script waits in the image for the provisioning VM. */
#define MVM_IMAGE_SCRIPT_GUEST "/root/.mvm-provision"

/* [a-z0-9][a-z0-9._-]{0,63}.  Pure. */
bool mvm_image_name_ok(const char *name);
int mvm_image_name_check(const char *name, struct mvm_error **err);

struct mvm_image_recipe {
    const char *name;  /* borrowed */
    char *from;        /* "debian:bookworm" */
    const char *suite; /* "bookworm" (static) */
    char *mirror;      /* the Debian archive mmdebstrap fetches from */
    char **packages;   /* --packages, in the order given */
    size_t npackages;
    char *script_path; /* --script as given, or NULL */
    char *script;      /* its content */
    size_t script_len;
};

/* --from debian:bookworm|debian:trixie.  Pure. */
int mvm_image_recipe_from(struct mvm_image_recipe *r, const char *from, struct mvm_error **err);
/* --packages a,b,c: Debian package names, appended.  Pure. */
int mvm_image_recipe_packages(struct mvm_image_recipe *r, const char *list, struct mvm_error **err);
void mvm_image_recipe_clear(struct mvm_image_recipe *r);

/* The first Debian archive (http(s)://.../debian) among apt sources in
 * either format (one-line or deb822), or NULL.  Pure. */
char *mvm_image_mirror_in(const char *text);

/* The installed mmdebstrap, or NULL (mvm doctor asks). */
const char *mvm_image_mmdebstrap(void);

/* The host's configured mirror (/etc/apt/sources.list and
 * sources.list.d), else http://deb.debian.org/debian. */
char *mvm_image_host_mirror(void);

/* --image NAME: when value names no file (it has no '/' and nothing of
 * that name is in the working directory) and is an image name, *path is
 * dir/NAME.qcow2, which must exist; otherwise *path is NULL (value is a
 * path).  The refusal suggests mvm image ls and mvm image build. */
int mvm_image_resolve(const char *dir, const char *value, char **path, struct mvm_error **err);

/* --boot image: the image's own kernel, its initramfs and its kernel
 * config, kept beside NAME.qcow2 when the image's packages installed a
 * kernel (mvm image build takes /boot's newest). */
#define MVM_IMAGE_BOOT_FILES 3
extern const char
    *const mvm_image_boot_suffix[MVM_IMAGE_BOOT_FILES]; /* .vmlinuz .initrd .kconfig */
/* For the stored image NAME in dir: the paths of its kernel and
 * initramfs, which must exist, and of its config (NULL when absent).
 * Refused, naming the image, when it has no kernel. */
int mvm_image_boot_files(const char *dir, const char *name, char **kernel, char **initrd,
                         char **kconfig, struct mvm_error **err);

/* mvm image ls, inspect NAME, rm NAME. */
int mvm_image_list(const char *dir, FILE *out, struct mvm_error **err);
int mvm_image_inspect(const char *dir, const char *name, FILE *out, struct mvm_error **err);
int mvm_image_remove(const char *dir, const char *name, struct mvm_error **err);
/* Whether dir/NAME.qcow2 exists. */
bool mvm_image_exists(const char *dir, const char *name);
/* The uid that built NAME, as its recipe records it; -1 when it does not. */
long mvm_image_builder(const char *dir, const char *name);
/* Removes .build-* directories no build holds.  Returns how many. */
int mvm_image_sweep(const char *dir, struct mvm_error **err);

/* One build, step by step (imagebuild.c); the caller boots the raw image
 * for the script between filesystem and finish.  Every step reports in
 * one line on stderr first. */
struct mvm_image_build {
    const struct mvm_image_recipe *r;
    const char *store; /* MVM_IMAGES_DIR */
    const char *cache; /* where mmdebstrap's tarballs are kept */
    int sigfd;         /* SIGINT/SIGTERM/SIGHUP: the running tool stops */
    bool refresh;      /* a new tarball even when a cached one is fresh */
    bool force;        /* an existing NAME is replaced */
    long builder_uid;  /* the invoking user, recorded in the recipe */
    int lockfd;        /* the store's .NAME.lock, flock'ed for the build; -1 */
    int dirfd;         /* the build directory, flock'ed; -1 */
    char *dir;
    char *tar, *raw; /* the tarball used; the ext4 image (raw) */
    char *kernel;    /* the release of the kernel kept for --boot image, or NULL */
    uint64_t started_ns;
};

/* Makes the build directory (the store 0755, the directory 0700), and
 * holds NAME's lock until the build ends: a second build of NAME at the
 * same time is refused. */
int mvm_image_build_begin(struct mvm_image_build *b, struct mvm_error **err);
/* mmdebstrap's tarball: a cached one under a day old, else a new one
 * (then cached). */
int mvm_image_build_bootstrap(struct mvm_image_build *b, struct mvm_error **err);
/* The tarball unpacked, the script put at MVM_IMAGE_SCRIPT_GUEST, the
 * tree made into b->raw (ext4) with mkfs.ext4 -d. */
int mvm_image_build_filesystem(struct mvm_image_build *b, struct mvm_error **err);
/* b->raw converted to qcow2, its digest, the recipe, both renamed into
 * the store (an existing NAME replaced only with force). */
int mvm_image_build_finish(struct mvm_image_build *b, struct mvm_error **err);
/* Removes the build directory; safe twice. */
void mvm_image_build_end(struct mvm_image_build *b);
/* "mvm image build NAME: WHAT" on stderr, with the time so far. */
void mvm_image_build_progress(const struct mvm_image_build *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
