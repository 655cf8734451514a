/* --image: the base image, opened read-only with the invoking user's
 * rights and its format probed, and the session's overlay, a qcow2 file
 * that takes every write, unlinked as soon as it is open (see disk.h). */
#include "disk-int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define OVERLAY_SUFFIX ".qcow2"

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const unsigned char *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* Other formats QEMU knows, by their magic at offset 0: named in the
 * refusal rather than booted as raw bytes. */
static const struct {
    const char *magic, *name;
} foreign[] = {
    {"KDMV", "VMDK"},     {"# Disk DescriptorFile", "VMDK"},
    {"vhdxfile", "VHDX"}, {"conectix", "VHD"},
    {"<<< ", "VDI"},      {"QEVM", "QED"},
};

/* A raw image holds a filesystem mvm-init can mount or a partition
 * table whose partitions it searches. */
static const char *raw_kind(const unsigned char *h, size_t n)
{
    if (n >= 1082 && (h[1080] | h[1081] << 8) == MVM_EXT4_MAGIC)
        return "ext4";
    if (n >= 4 && memcmp(h, "XFSB", 4) == 0)
        return "xfs";
    if (n >= 0x10048 && memcmp(h + 0x10040, "_BHRfS_M", 8) == 0)
        return "btrfs";
    if (n >= 520 && memcmp(h + 512, "EFI PART", 8) == 0)
        return "gpt";
    if (n >= 512 && h[510] == 0x55 && h[511] == 0xaa)
        return "mbr";
    return NULL;
}

int mvm_image_probe(const unsigned char *h, size_t n, uint64_t file_size, const char *shown,
                    struct mvm_image_info *info, struct mvm_error **err)
{
    memset(info, 0, sizeof *info);
    if (n >= 72 && memcmp(h, "QFI\xfb", 4) == 0) {
        uint32_t version = be32(h + 4);
        if (version != 2 && version != 3)
            return mvm_error_set(err, 0, "%s: qcow2 version %u is not one QEMU reads (2 or 3)",
                                 shown, version);
        if (be64(h + 8) != 0)
            return mvm_error_set(err, 0,
                                 "%s is a qcow2 image with a backing file: flatten it first "
                                 "(qemu-img convert -O qcow2 %s FLAT.qcow2)",
                                 shown, shown);
        if (be32(h + 32) != 0)
            return mvm_error_set(err, 0, "%s is an encrypted qcow2 image: mvm cannot boot it",
                                 shown);
        info->format = MVM_IMAGE_QCOW2;
        info->virtual_size = be64(h + 24);
        info->kind = "qcow2";
    } else {
        for (size_t i = 0; i < ARRAY_SIZE(foreign); i++) {
            size_t m = strlen(foreign[i].magic);
            if (n >= m && memcmp(h, foreign[i].magic, m) == 0)
                return mvm_error_set(err, 0,
                                     "%s is a %s image: convert it (qemu-img convert -O qcow2 %s "
                                     "IMAGE.qcow2)",
                                     shown, foreign[i].name, shown);
        }
        info->kind = raw_kind(h, n);
        if (info->kind == NULL)
            return mvm_error_set(err, 0,
                                 "%s is not an image mvm recognises: no qcow2 header, ext4, xfs "
                                 "or btrfs superblock, GPT or MBR partition table",
                                 shown);
        info->format = MVM_IMAGE_RAW;
        info->virtual_size = file_size;
    }
    if (info->virtual_size < 64 * 1024 || info->virtual_size % 512 != 0)
        return mvm_error_set(err, 0, "%s: a disk of %llu bytes is not one mvm can boot", shown,
                             (unsigned long long)info->virtual_size);
    return 0;
}

struct probe_req {
    const char *path;
};

/* In a child that is the user: the file's identity, if the user may
 * open it for reading. */
static int identify_child(void *arg, int out_fd)
{
    const struct probe_req *r = arg;
    int fd = open(r->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return errno;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return errno;
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
        return EINVAL;
    dev_t id[2] = {st.st_dev, st.st_ino};
    return write_all(out_fd, id, sizeof id) < 0 ? errno : 0;
}

int mvm_image_open(const char *path, uid_t uid, gid_t gid, struct mvm_image *img,
                   struct mvm_error **err)
{
    *img = (struct mvm_image){.fd = -1, .overlay_fd = -1};
    struct buf id = {0};
    struct probe_req r = {path};
    int rc = run_as(uid, gid, identify_child, &r, &id, 64);
    if (rc == EINVAL) {
        buf_free(&id);
        return mvm_error_set(err, 0, "--image %s: not a regular file or block device", path);
    }
    if (rc != 0 || id.len != 2 * sizeof(dev_t)) {
        buf_free(&id);
        return mvm_error_set(err, rc > 0 ? rc : errno ? errno : EIO, "--image %s", path);
    }
    dev_t want[2];
    memcpy(want, id.data, sizeof want);
    buf_free(&id);
    /* mvm's own descriptor, on the file the user could open: a path
     * swapped meanwhile is refused, never opened with root's rights. */
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return mvm_error_set(err, errno, "--image %s", path);
    if (st.st_dev != want[0] || st.st_ino != want[1])
        return mvm_error_set(err, 0, "--image %s changed while mvm opened it", path);
    uint64_t size = (uint64_t)st.st_size;
    if (S_ISBLK(st.st_mode)) {
        off_t end = lseek(fd, 0, SEEK_END);
        size = end < 0 ? 0 : (uint64_t)end;
    }
    cleanup_free unsigned char *head = xmalloc(MVM_IMAGE_HEAD);
    ssize_t n = pread(fd, head, MVM_IMAGE_HEAD, 0);
    if (n < 0)
        return mvm_error_set(err, errno, "reading --image %s", path);
    cleanup_free char *shown = xasprintf("--image %s", path);
    if (mvm_image_probe(head, (size_t)n, size, shown, &img->info, err) < 0)
        return -1;
    img->fd = steal_fd(&fd);
    img->path = xstrdup(path);
    return 0;
}

int mvm_image_open_writable(const char *path, struct mvm_image *img, struct mvm_error **err)
{
    *img = (struct mvm_image){.fd = -1, .overlay_fd = -1};
    cleanup_close int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return mvm_error_set(err, errno, "opening %s", path);
    cleanup_free unsigned char *head = xmalloc(MVM_IMAGE_HEAD);
    ssize_t n = pread(fd, head, MVM_IMAGE_HEAD, 0);
    if (n < 0)
        return mvm_error_set(err, errno, "reading %s", path);
    if (!S_ISREG(st.st_mode) ||
        mvm_image_probe(head, (size_t)n, (uint64_t)st.st_size, path, &img->info, err) < 0 ||
        img->info.format != MVM_IMAGE_RAW)
        return mvm_error_set(err, 0, "%s: not a raw image file (a bug in mvm)", path);
    img->fd = steal_fd(&fd);
    img->path = xstrdup(path);
    return 0;
}

int mvm_image_overlay(const char *dir, const char *id, struct mvm_image *img,
                      struct mvm_error **err)
{
    const char *tool = mvm_disk_find_tool(mvm_disk_qemu_img);
    if (tool == NULL)
        return mvm_error_set(err, 0,
                             "qemu-img not found (--image needs it for the session's overlay): "
                             "apt-get install qemu-utils");
    if (!mvm_disk_name_ok(id))
        return mvm_error_set(err, 0, "bad overlay id (a bug in mvm)");
    cleanup_close int dirfd = mvm_disk_dir_open(AT_FDCWD, dir, dir, 0700, true, err);
    if (dirfd < 0)
        return mvm_error_wrap(err, "making the session's overlay");
    cleanup_free char *file = xasprintf("%s" OVERLAY_SUFFIX, id);
    cleanup_free char *path = xasprintf("%s/%s", dir, file);
    /* Made empty by mvm (0600, O_EXCL), then formatted by qemu-img:
     * no backing file in its header; QEMU is told the base by node. */
    cleanup_close int fd =
        openat(dirfd, file, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return mvm_error_set(err, errno, "creating %s", path);
    cleanup_free char *size = xasprintf("%llu", (unsigned long long)img->info.virtual_size);
    char *argv[] = {(char *)tool, "create", "-q", "-f", "qcow2", path, size, NULL};
    cleanup_free char *doing = xasprintf("making the overlay %s", path);
    int rc = flock(fd, LOCK_EX | LOCK_NB) < 0 ? mvm_error_set(err, errno, "locking %s", path)
                                              : mvm_disk_run_tool(argv, doing, err);
    /* The descriptor mvm opened before is the file qemu-img wrote (it
     * truncates in place); gone from the directory now, so nothing is
     * left whatever happens to mvm. */
    unlinkat(dirfd, file, 0);
    if (rc < 0)
        return -1;
    img->overlay_fd = steal_fd(&fd);
    return 0;
}

int mvm_image_overlay_cleanup(const char *dir, struct mvm_error **err)
{
    return mvm_disk_sweep(dir, OVERLAY_SUFFIX, err);
}

void mvm_image_close(struct mvm_image *img)
{
    if (img->fd >= 0)
        close(img->fd);
    if (img->overlay_fd >= 0)
        close(img->overlay_fd);
    free(img->path);
    *img = (struct mvm_image){.fd = -1, .overlay_fd = -1};
}
