/* cpio: writes "newc" archives (the format the kernel unpacks as an
 * initramfs) into a memory buffer.  Pure code. */
#ifndef MVM_CPIO_H
#define MVM_CPIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

struct mvm_cpio {
    struct buf *out;
    uint32_t next_ino;
};

/* Entries are owned by root, mtime 0, so archives are reproducible.
 * Paths are written without a leading "/".  The archive is appended to
 * out, after zero padding to a 4-byte boundary if out's length is not one
 * (the kernel skips zeros between archives but needs headers aligned). */
void mvm_cpio_init(struct mvm_cpio *c, struct buf *out);
void mvm_cpio_dir(struct mvm_cpio *c, const char *path, mode_t perm);
void mvm_cpio_file(struct mvm_cpio *c, const char *path, mode_t perm, const void *data, size_t len);
void mvm_cpio_symlink(struct mvm_cpio *c, const char *path, const char *target);
void mvm_cpio_chardev(struct mvm_cpio *c, const char *path, mode_t perm, unsigned major,
                      unsigned minor);
/* Appends TRAILER!!! and pads the archive to a multiple of 512 bytes, so
 * another archive can be concatenated after it. */
void mvm_cpio_finish(struct mvm_cpio *c);

#endif
