/* newc cpio writer.  Padding is computed from the start of the output
 * buffer, not of the archive: the kernel's unpacker aligns headers to
 * offsets in the whole initramfs, so an archive must begin on a 4-byte
 * boundary of it, and mvm_cpio_init() makes sure it does. */
#include "cpio.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define CPIO_HEADER_LEN 110 /* "070701" + 13 fields of 8 hex digits */

static const char zeros[512];

static void pad_to(struct buf *b, size_t align)
{
    size_t rem = b->len % align;
    if (rem != 0)
        buf_append(b, zeros, align - rem);
}

struct cpio_entry {
    const char *path;
    uint32_t mode;
    uint32_t nlink;
    uint32_t size;
    uint32_t rmajor, rminor;
};

static void put_header(struct mvm_cpio *c, const struct cpio_entry *e, uint32_t ino)
{
    const char *name = e->path;
    while (*name == '/')
        name++;
    size_t namesize = strlen(name) + 1;
    char hdr[CPIO_HEADER_LEN + 1];
    int n = snprintf(hdr, sizeof hdr, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
                     ino, e->mode, 0u /* uid */, 0u /* gid */, e->nlink, 0u /* mtime */, e->size,
                     0u, 0u, e->rmajor, e->rminor, (uint32_t)namesize, 0u /* check */);
    if (n != CPIO_HEADER_LEN)
        abort(); /* cannot happen: every field is a uint32_t */
    buf_append(c->out, hdr, CPIO_HEADER_LEN);
    buf_append(c->out, name, namesize);
    pad_to(c->out, 4);
}

/* Adds one entry with its data; sizes beyond 4 GiB cannot be described by
 * the format and are a caller bug. */
static void put_entry(struct mvm_cpio *c, const struct cpio_entry *e, const void *data)
{
    put_header(c, e, c->next_ino++);
    buf_append(c->out, data, e->size);
    pad_to(c->out, 4);
}

void mvm_cpio_init(struct mvm_cpio *c, struct buf *out)
{
    pad_to(out, 4); /* zeros between archives are skipped by the kernel */
    c->out = out;
    c->next_ino = 1;
}

void mvm_cpio_dir(struct mvm_cpio *c, const char *path, mode_t perm)
{
    struct cpio_entry e = {.path = path, .mode = S_IFDIR | (perm & 07777), .nlink = 2};
    put_entry(c, &e, NULL);
}

void mvm_cpio_file(struct mvm_cpio *c, const char *path, mode_t perm, const void *data, size_t len)
{
    if (len > UINT32_MAX)
        abort();
    struct cpio_entry e = {
        .path = path, .mode = S_IFREG | (perm & 07777), .nlink = 1, .size = (uint32_t)len};
    put_entry(c, &e, data);
}

void mvm_cpio_symlink(struct mvm_cpio *c, const char *path, const char *target)
{
    /* The link target is the entry's data, without a terminating NUL. */
    struct cpio_entry e = {
        .path = path, .mode = S_IFLNK | 0777, .nlink = 1, .size = (uint32_t)strlen(target)};
    put_entry(c, &e, target);
}

void mvm_cpio_chardev(struct mvm_cpio *c, const char *path, mode_t perm, unsigned major,
                      unsigned minor)
{
    struct cpio_entry e = {.path = path,
                           .mode = S_IFCHR | (perm & 07777),
                           .nlink = 1,
                           .rmajor = major,
                           .rminor = minor};
    put_entry(c, &e, NULL);
}

void mvm_cpio_finish(struct mvm_cpio *c)
{
    struct cpio_entry e = {.path = "TRAILER!!!", .nlink = 1};
    put_header(c, &e, 0);
    pad_to(c->out, 512);
}
