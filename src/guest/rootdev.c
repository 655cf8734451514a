/* --image's root: which block device holds it and what filesystem it is,
 * read from the disk itself (the superblocks, the GPT) and sysfs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"

#define HEAD 0x10048 /* past btrfs's superblock magic */

static const char *probe(const char *dev)
{
    static unsigned char head[HEAD];
    int fd = open(dev, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    ssize_t n = pread(fd, head, sizeof head, 0);
    close(fd);
    return n > 0 ? guest_fs_type(head, (size_t)n) : NULL;
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The GPT's root partition of /dev/disk (512-byte sectors), or 0. */
static unsigned gpt_root(const char *disk)
{
    char dev[64];
    snprintf(dev, sizeof dev, "/dev/%s", disk);
    int fd = open(dev, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    unsigned char hdr[92];
    unsigned part = 0;
    if (pread(fd, hdr, sizeof hdr, 512) == (ssize_t)sizeof hdr && memcmp(hdr, "EFI PART", 8) == 0) {
        uint64_t lba = le64(hdr + 72);
        uint32_t n = le32(hdr + 80), esize = le32(hdr + 84);
        if (n > 128)
            n = 128;
        size_t len = (size_t)n * esize;
        unsigned char *e = esize >= 128 && esize <= 1024 ? malloc(len) : NULL;
        if (e && lba < (UINT64_MAX >> 9) && pread(fd, e, len, (off_t)(lba << 9)) == (ssize_t)len)
            part = guest_gpt_root(e, n, esize);
        free(e);
    }
    close(fd);
    return part;
}

static bool read_line(const char *path, char *out, size_t len)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return false;
    bool ok = fgets(out, (int)len, f) != NULL;
    fclose(f);
    out[strcspn(out, "\n")] = '\0';
    return ok;
}

/* The partition's GPT name, from its uevent's PARTNAME=. */
static bool named_root(const char *part)
{
    char path[320], line[256];
    snprintf(path, sizeof path, "/sys/class/block/%s/uevent", part);
    FILE *f = fopen(path, "re");
    bool yes = false;
    while (f && !yes && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        yes = strcasecmp(line, "PARTNAME=root") == 0;
    }
    if (f)
        fclose(f);
    return yes;
}

int guest_image_root(const char *disk, char *dev, size_t devlen, const char **fstype, char *why,
                     size_t whylen)
{
    const char *name = strrchr(disk, '/') ? strrchr(disk, '/') + 1 : disk;
    if ((*fstype = probe(disk)) != NULL) {
        snprintf(dev, devlen, "%s", disk);
        return 0;
    }
    unsigned want = gpt_root(name);
    char best[300] = "", dir[96];
    unsigned long long best_size = 0;
    bool best_named = false, found_any = false;
    snprintf(dir, sizeof dir, "/sys/block/%s", name);
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        size_t nl = strlen(name);
        if (strncmp(de->d_name, name, nl) != 0 || de->d_name[nl] == '\0')
            continue;
        found_any = true;
        char path[400], num[32], size[32], pdev[300];
        snprintf(path, sizeof path, "%s/%s/partition", dir, de->d_name);
        snprintf(pdev, sizeof pdev, "/dev/%s", de->d_name);
        if (!read_line(path, num, sizeof num))
            continue;
        if (want && (unsigned)strtoul(num, NULL, 10) == want && probe(pdev)) {
            snprintf(best, sizeof best, "%s", de->d_name);
            break;
        }
        snprintf(path, sizeof path, "%s/%s/size", dir, de->d_name);
        unsigned long long sz = read_line(path, size, sizeof size) ? strtoull(size, NULL, 10) : 0;
        bool named = named_root(de->d_name);
        if (probe(pdev) && ((named && !best_named) || (named == best_named && sz > best_size))) {
            snprintf(best, sizeof best, "%s", de->d_name);
            best_size = sz;
            best_named = named;
        }
    }
    if (d)
        closedir(d);
    if (best[0] == '\0')
        return guest_fail(why, whylen, 0,
                          found_any ? "--image: no partition holds a filesystem mvm can mount "
                                      "(ext4, xfs, btrfs)"
                                    : "--image: neither a filesystem mvm can mount (ext4, xfs, "
                                      "btrfs) nor a partition table");
    snprintf(dev, devlen, "/dev/%s", best);
    /* devtmpfs may make the node a moment after sysfs shows it. */
    for (int i = 0; i < 100 && access(dev, F_OK) != 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    *fstype = probe(dev);
    return *fstype ? 0 : guest_fail(why, whylen, EIO, "--image: reading %s", dev);
}
